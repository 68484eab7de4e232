/**
 * @module The request and response types of Node's two HTTP servers, as one pair. HTTP/1.1
 * (`node:http`) and HTTP/2's compatibility API (`node:http2`) deliver different classes with
 * the same shape; everything that serves both takes these. A leaf: it imports only Node's types.
 */
import type { IncomingMessage, ServerResponse } from "node:http";
import type { Http2ServerRequest, Http2ServerResponse } from "node:http2";

/** A request as either Node HTTP server delivers it. */
export type NodeRequest = IncomingMessage | Http2ServerRequest;
/** A response as either Node HTTP server delivers it. */
export type NodeResponse = ServerResponse | Http2ServerResponse;
