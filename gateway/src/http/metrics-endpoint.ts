/**
 * @module `GET /metrics`: the Prometheus text exposition of the shared registry.
 */
import type { Registry } from "prom-client";
import type { NodeRequest, NodeResponse } from "./node-http.js";

/** Answers a scrape. */
export type MetricsEndpoint = (request: NodeRequest, response: NodeResponse) => Promise<void>;

/** Creates the endpoint over `registry`. */
export function createMetricsEndpoint(registry: Registry): MetricsEndpoint {
  return async (request, response) => {
    if (request.method !== "GET" && request.method !== "HEAD") {
      response.statusCode = 405;
      response.setHeader("Allow", "GET, HEAD");
      response.end();
      return;
    }
    const text = await registry.metrics();
    response.statusCode = 200;
    response.setHeader("Content-Type", registry.contentType);
    response.setHeader("Cache-Control", "no-store");
    if (request.method === "HEAD") {
      response.end();
    } else {
      response.end(text);
    }
  };
}
