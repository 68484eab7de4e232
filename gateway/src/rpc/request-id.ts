/**
 * @module A call's request id: the client's `x-request-id` when it sent a usable one (what nginx,
 * Envoy and most gateways set and forward), otherwise a new one. Every protocol returns it as
 * the `x-request-id` response header, and the call's log line and trace span carry it, so one
 * id finds a call from the balancer's log to Parley's.
 */
import { randomBytes } from "node:crypto";

/**
 * Ids longer than this, or with characters outside visible ASCII, are replaced rather than
 * echoed: the id lands in logs and headers, where a client must not be able to inject anything.
 */
const maxLength = 128;
const usable = /^[\x21-\x7e]+$/;

/**
 * Generated ids are this process's random prefix and a counter, as Fastify's `req-1`, `req-2`,
 * rather than UUIDs: every response carries its id in a header HPACK cannot index, and a UUID's
 * generation and 36 characters were a few percent of a unary gRPC call (docs/benchmarks.md). The
 * prefix keeps the ids of replicas and restarts apart.
 */
const processPrefix = randomBytes(4).toString("hex");
let generated = 0;

/** The request id for a call whose `x-request-id` header is `header` (Node's parsed value). */
export function requestIdOf(header: string | string[] | undefined): string {
  return typeof header === "string" && header.length <= maxLength && usable.test(header)
    ? header
    : `${processPrefix}-${(++generated).toString(36)}`;
}

/** One value of a header as Node parsed it; undefined when absent or repeated. */
export function singleHeader(value: string | string[] | undefined): string | undefined {
  return typeof value === "string" ? value : undefined;
}
