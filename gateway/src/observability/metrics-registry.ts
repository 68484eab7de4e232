/**
 * @module The Prometheus registry every part of the gateway records into. Observability is used
 * by all rooms and uses none of them.
 */
import { collectDefaultMetrics, Registry } from "prom-client";

/** Creates a registry with Node's default process metrics (CPU, memory, event loop, GC). */
export function createMetricsRegistry(): Registry {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry });
  return registry;
}
