/**
 * @module Shortens a client's deadline to the server's limit instead of refusing the call.
 * connect-node answers a timeout above `maxTimeoutMs` with invalid_argument, which breaks
 * clients that ask for exactly the limit (grpcio adds ~100 ms of slack to what it sends) or for
 * "a long time"; gRPC servers and proxies (Envoy's max_grpc_timeout) clamp instead.
 */
import {
  connectHeaderTimeout as connectTimeoutHeader,
  grpcHeaderTimeout as grpcTimeoutHeader,
  parseConnectTimeout,
  parseGrpcTimeout,
} from "./connect-internals.js";

/**
 * Rewrites the timeout header in `header` (the request's, before connect-node reads it) to at
 * most `maxMs`. Malformed values are left alone for connect-node to refuse.
 */
export function clampTimeout(header: Headers, maxMs: number): void {
  const grpc = parseGrpcTimeout(header.get(grpcTimeoutHeader), Number.POSITIVE_INFINITY);
  if (grpc.error === undefined && grpc.timeoutMs !== undefined && grpc.timeoutMs > maxMs) {
    // gRPC allows at most 8 digits: whole seconds when milliseconds would not fit.
    header.set(grpcTimeoutHeader, maxMs < 1e8 ? `${maxMs}m` : `${Math.floor(maxMs / 1000)}S`);
  }
  const connect = parseConnectTimeout(header.get(connectTimeoutHeader), Number.POSITIVE_INFINITY);
  if (connect.error === undefined && connect.timeoutMs !== undefined && connect.timeoutMs > maxMs) {
    header.set(connectTimeoutHeader, String(maxMs));
  }
}
