/**
 * @module One TCP listener for every protocol: it reads the first bytes of each connection and
 * hands the socket to the server that speaks them. Browsers never speak cleartext HTTP/2 and
 * Node's `allowHTTP1` works only with TLS (nodejs/node#44887), so one cleartext port for gRPC
 * (HTTP/2) and browsers (HTTP/1.1) needs this.
 *
 * Hand-written (after the technique of @httptoolkit/httpolyglot) rather than taken from that
 * package because the gateway must build and own the three servers itself: the TLS one with
 * ALPN h2 + http/1.1 in a single `http2.createSecureServer`, and all of them reachable for
 * graceful shutdown (HTTP/2 sessions to send GOAWAY to, HTTP/1 connections to close).
 */
import type { Server as HttpServer } from "node:http";
import type { Http2SecureServer, Http2Server } from "node:http2";
import { createServer, type Server, type Socket } from "node:net";

/** The servers connections are handed to. */
export interface SniffingTargets {
  /** Plain HTTP/1.x. */
  readonly http1: HttpServer;
  /** HTTP/2 with prior knowledge (h2c): gRPC clients without TLS. */
  readonly h2c: Http2Server;
  /** TLS, then ALPN h2 or http/1.1; absent when no certificate is configured. */
  readonly tls: Http2SecureServer | undefined;
}

/** Options of {@link createSniffingListener}. */
export interface SniffingListenerOptions {
  readonly targets: SniffingTargets;
  /** How long a connection may stay silent before its protocol shows. @example 10000 */
  readonly sniffTimeoutMs: number;
  /** Called with a reason when a connection is closed without being handed over. */
  readonly onRefused: (reason: string) => void;
}

/** What the first bytes of a connection say. */
export type SniffedProtocol = "tls" | "h2c" | "http1";

/** The client connection preface of HTTP/2 (RFC 9113 §3.4). */
const http2Preface = Buffer.from("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", "latin1");

/** A TLS record of type handshake: the ClientHello. */
const tlsHandshakeRecord = 0x16;

/**
 * Classifies the first bytes of a connection, or returns undefined while they could still be
 * the start of the HTTP/2 preface (which may arrive split over several packets).
 */
export function sniffProtocol(bytes: Buffer): SniffedProtocol | undefined {
  if (bytes.length === 0) {
    return undefined;
  }
  if (bytes[0] === tlsHandshakeRecord) {
    return "tls";
  }
  const length = Math.min(bytes.length, http2Preface.length);
  if (bytes.compare(http2Preface, 0, length, 0, length) !== 0) {
    return "http1";
  }
  return bytes.length >= http2Preface.length ? "h2c" : undefined;
}

/** Creates the listener; call `listen()` on it. */
export function createSniffingListener(options: SniffingListenerOptions): Server {
  // noDelay: a streamed token is a small write that must leave at once, not wait for Nagle.
  return createServer({ noDelay: true, keepAlive: true }, (socket) => sniff(socket, options));
}

function sniff(socket: Socket, options: SniffingListenerOptions): void {
  let seen: Buffer = Buffer.alloc(0);
  const refuse = (reason: string) => {
    detach();
    options.onRefused(reason);
    socket.destroy();
  };
  const onTimeout = () => refuse("no request within the sniff timeout");
  const onError = (error: Error) =>
    refuse(`socket error before a protocol showed: ${error.message}`);
  const onEnd = () => refuse("closed before a protocol showed");
  const onReadable = () => {
    // Paused-mode reads leave the socket unconsumed, so the bytes can be put back (unshift)
    // for the server that takes it over; Node's http, http2 and tls servers all read them.
    for (let chunk: Buffer | null = socket.read(); chunk !== null; chunk = socket.read()) {
      seen = seen.length === 0 ? chunk : Buffer.concat([seen, chunk]);
    }
    const protocol = sniffProtocol(seen);
    if (protocol === undefined) {
      return;
    }
    detach();
    socket.unshift(seen);
    const { targets } = options;
    switch (protocol) {
      case "tls":
        if (targets.tls === undefined) {
          options.onRefused("TLS ClientHello, but no certificate is configured");
          socket.destroy();
        } else {
          targets.tls.emit("connection", socket);
        }
        break;
      case "h2c":
        targets.h2c.emit("connection", socket);
        break;
      case "http1":
        targets.http1.emit("connection", socket);
        break;
    }
  };
  const detach = () => {
    socket.setTimeout(0);
    socket.off("timeout", onTimeout);
    socket.off("error", onError);
    socket.off("end", onEnd);
    socket.off("readable", onReadable);
  };
  socket.setTimeout(options.sniffTimeoutMs);
  socket.on("timeout", onTimeout);
  socket.on("error", onError);
  socket.on("end", onEnd);
  socket.on("readable", onReadable);
}
