/**
 * @module CORS for browsers on other origins, fed with connect-es's `cors` constants so that
 * every protocol header (Connect-Timeout-Ms, Grpc-Timeout, X-Grpc-Web…) may be sent and the
 * status headers (Grpc-Status, Grpc-Message…) may be read by scripts. Same-origin browsers (the
 * bundled web client) need none of it, which is why the default list is empty.
 */
import { cors as connectCors } from "@connectrpc/connect";
import cors from "cors";
import type { NodeRequest, NodeResponse } from "./node-http.js";

/** Options of {@link createCorsPolicy}. */
export interface CorsPolicyOptions {
  /** Exact origins such as "https://chat.example.com", or "*" for any origin. */
  readonly origins: readonly string[];
}

/**
 * Applies CORS headers to a request. Returns true when it answered the request itself (a
 * preflight), false when the request should go on.
 */
export type CorsPolicy = (request: NodeRequest, response: NodeResponse) => boolean;

/** How long browsers may cache a preflight answer, in seconds (Chromium caps it at 7200). */
const preflightMaxAgeSeconds = 7200;

/** Creates the policy; with no origins it does nothing (same origin only). */
export function createCorsPolicy(options: CorsPolicyOptions): CorsPolicy {
  if (options.origins.length === 0) {
    return () => false;
  }
  const middleware = cors({
    origin: options.origins.includes("*") ? "*" : [...options.origins],
    methods: [...connectCors.allowedMethods],
    // Authorization: the API key, on Connect, gRPC-Web and /v1 calls alike. Request ids and W3C
    // trace context travel from a browser too (rpc/request-id.ts).
    allowedHeaders: [
      ...connectCors.allowedHeaders,
      "Authorization",
      "X-Request-Id",
      "Traceparent",
      "Tracestate",
    ],
    exposedHeaders: [...connectCors.exposedHeaders, "X-Request-Id"],
    maxAge: preflightMaxAgeSeconds,
  });
  return (request, response) => {
    // The middleware calls next() synchronously unless it answered a preflight.
    let handled = true;
    middleware(request, response, () => {
      handled = false;
    });
    return handled;
  };
}
