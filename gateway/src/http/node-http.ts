/**
 * @module The request and response types of Node's two HTTP servers, as one pair. HTTP/1.1
 * (`node:http`) and HTTP/2's compatibility API (`node:http2`) deliver different classes with
 * the same shape; everything that serves both takes these, and the helpers below write to either.
 * A leaf: it imports only Node's types.
 */
import type { IncomingMessage, ServerResponse } from "node:http";
import type { Http2ServerRequest, Http2ServerResponse } from "node:http2";

/** A request as either Node HTTP server delivers it. */
export type NodeRequest = IncomingMessage | Http2ServerRequest;
/** A response as either Node HTTP server delivers it. */
export type NodeResponse = ServerResponse | Http2ServerResponse;

/**
 * Sets the status and headers. Both classes take these arguments; TypeScript cannot call a union
 * of overloaded methods, hence the cast.
 */
export function writeHead(
  response: NodeResponse,
  status: number,
  headers: Readonly<Record<string, string>>,
): void {
  (response as ServerResponse).writeHead(status, headers);
}

/** Sends the headers now: HTTP/2's `writeHead` already does, HTTP/1.1's waits for the body. */
export function flushHeaders(response: NodeResponse): void {
  if ("flushHeaders" in response) {
    response.flushHeaders();
  }
}

/** Writes `chunk`; false when the buffer is full and the caller should wait for `drain`. */
export function writeChunk(response: NodeResponse, chunk: Uint8Array): boolean {
  return (response as ServerResponse).write(chunk);
}
