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
    const { socket } = request;
    // An own property on this socket only; a keep-alive connection's next request replaces it.
    socket.destroySoon = () => {
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
  });
}
