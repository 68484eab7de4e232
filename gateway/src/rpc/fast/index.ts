/**
 * @module The hand-written paths beside connect-node, behind one entry. They exist for speed
 * only (each module says what connect-node's pipeline cost on its path); every request they
 * decline is served by connect-node's router, which serves all of the three protocols.
 *
 * Which request takes which path (a request must also name a unary or server-streaming method
 * and be a POST):
 *
 * | request                                                             | path               |
 * | ------------------------------------------------------------------- | ------------------ |
 * | gRPC on an HTTP/2 stream, `application/grpc[+proto]`, identity body | `grpc.ts`          |
 * | gRPC-Web binary, proto or JSON, identity body, HTTP/1.1 or HTTP/2   | `web-stream.ts`    |
 * | Connect server stream, proto or JSON, identity body                 | `web-stream.ts`    |
 * | Connect unary, proto or JSON, identity body                         | `connect-unary.ts` |
 * | anything else: compressed bodies, Connect GET, gRPC-Web text,       | connect-node       |
 * | `application/grpc+json`, gRPC over HTTP/1.1, client and bidi streams |                    |
 *
 * Responses are compressed on every path as connect-node compresses them.
 */
import type { IncomingHttpHeaders, ServerHttp2Stream } from "node:http2";
import type { NodeRequest, NodeResponse } from "../../http/node-http.js";
import { createConnectUnaryHandler } from "./connect-unary.js";
import { createGrpcStreamHandler } from "./grpc.js";
import type { DirectPathOptions } from "./routes.js";
import { createWebStreamHandler } from "./web-stream.js";

export { createDirectRoutes, type DirectPathOptions } from "./routes.js";

/** The fast paths; each method serves the request and returns true, or returns false. */
export interface FastPaths {
  /** A raw HTTP/2 stream, before Node's compatibility API sees it (gRPC). */
  readonly handleStream: (stream: ServerHttp2Stream, headers: IncomingHttpHeaders) => boolean;
  /** A request on Node's request/response API (gRPC-Web, Connect); `path` has no query. */
  readonly handleRequest: (request: NodeRequest, response: NodeResponse, path: string) => boolean;
}

/** The paths of the table above, or, with `enabled` false, none: connect-node serves all. */
export function createFastPaths(options: DirectPathOptions, enabled: boolean): FastPaths {
  if (!enabled) {
    return { handleStream: () => false, handleRequest: () => false };
  }
  const webStream = createWebStreamHandler(options);
  const connectUnary = createConnectUnaryHandler(options);
  return {
    handleStream: createGrpcStreamHandler(options),
    handleRequest: (request, response, path) =>
      webStream(request, response, path) || connectUnary(request, response, path),
  };
}
