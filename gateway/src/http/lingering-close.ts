/**
 * @module Lingering close for HTTP/1.1 connections (RFC 9112 §9.6). Node closes a connection
 * it will not keep alive (the client sent `Connection: close`, or spoke HTTP/1.0) with
 * `socket.destroySoon()` as soon as the response is written. When the request body is still
 * arriving (an early refusal: too large, a deadline, a 404 for a POST), closing a socket with
 * unread input makes the kernel send RST, and the client's kernel then drops the response the
 * client has not read yet: the client sees `EPIPE` or `ECONNRESET` instead of the status. nginx
 * (`lingering_close`) and Apache half-close and keep reading for a moment; Node has no option for
 * it, so this module does the same. A leaf: it imports only Node.
 */
import type { EventEmitter } from "node:events";
import type { IncomingMessage } from "node:http";
import { Socket } from "node:net";

/** How long a connection whose response is complete stays open for an upload still arriving. */
export const lingerMs = 1000;

/**
 * Makes every HTTP/1.1 request of `server` (a `node:http` server, or an HTTP/2 secure server with
 * `allowHTTP1`) close its connection in stages when its body has not all arrived by the time
 * Node closes it: the write side ends at once (FIN: the response is complete), and the socket is
 * destroyed once the body has arrived (read by the handler, or dumped by Node), or after
 * `lingerMs` when nobody reads it any more.
 */
export function lingerBeforeClosing(server: EventEmitter): void {
  server.on("request", (request: IncomingMessage) => {
    if (request.httpVersionMajor !== 1) return;
    const socket = request.socket as LingeringSocket;
    const state = socket[lingering];
    if (state === undefined) {
      lingerOn(socket, request);
    } else {
      state.request = request;
    }
  });
}

/** A socket's last request, read when Node closes the connection. */
interface LingerState {
  request: IncomingMessage;
}

const lingering = Symbol("parley.linger");

type LingeringSocket = Socket & { [lingering]?: LingerState };

/**
 * Replaces the socket's `destroySoon` once, for its whole life: a keep-alive connection's later
 * requests only update the state. A new closure per request, stored on the long-lived socket,
 * cost 7 µs per keep-alive HTTP/1.1 call: young collections promoted 8.5 MB each instead of
 * 0.3 MB (measured with --trace-gc-nvp under h2load; docs/benchmarks.md, session 13).
 */
function lingerOn(socket: LingeringSocket, request: IncomingMessage): void {
  const state: LingerState = { request };
  socket[lingering] = state;
  socket.destroySoon = () => {
    const { request } = state;
    if (request.complete || socket.destroyed) {
      Socket.prototype.destroySoon.call(socket);
      return;
    }
    socket.end();
    const destroy = () => {
      clearTimeout(timer);
      socket.destroy();
    };
    const timer = setTimeout(destroy, lingerMs).unref();
    request.once("end", destroy);
  };
}
