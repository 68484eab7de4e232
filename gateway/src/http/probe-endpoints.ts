/**
 * @module `GET /healthz` and `GET /readyz`: plain-text probes for balancers and orchestrators
 * that cannot speak `grpc.health.v1` (HTTP health checks, Docker's HEALTHCHECK, kubelet's httpGet).
 */
import type { NodeRequest, NodeResponse } from "./node-http.js";

/** Options of {@link createProbeEndpoints}. */
export interface ProbeEndpointsOptions {
  /** Why the server does not take inference calls now, or undefined when it does. */
  readonly notReadyReason: () => string | undefined;
}

/** Answers `/healthz` and `/readyz`; returns false for any other path. */
export type ProbeEndpoints = (request: NodeRequest, response: NodeResponse) => boolean;

/**
 * Creates the probes. `/healthz` is 200 while the process serves HTTP at all (loading, serving
 * and draining alike), so a liveness check never kills a server that is loading or draining;
 * `/readyz` is 200 only while a model takes generations and the server is not shutting down.
 */
export function createProbeEndpoints(options: ProbeEndpointsOptions): ProbeEndpoints {
  return (request, response) => {
    const path = (request.url ?? "").split("?", 1)[0];
    if (path !== "/healthz" && path !== "/readyz") {
      return false;
    }
    if (request.method !== "GET" && request.method !== "HEAD") {
      response.statusCode = 405;
      response.setHeader("Allow", "GET, HEAD");
      response.end();
      return true;
    }
    const reason = path === "/readyz" ? options.notReadyReason() : undefined;
    const body = reason === undefined ? "ok\n" : `not ready: ${reason}\n`;
    response.statusCode = reason === undefined ? 200 : 503;
    response.setHeader("Content-Type", "text/plain; charset=utf-8");
    response.setHeader("Cache-Control", "no-store");
    response.setHeader("Content-Length", Buffer.byteLength(body));
    if (request.method === "HEAD") {
      response.end();
    } else {
      response.end(body);
    }
    return true;
  };
}
