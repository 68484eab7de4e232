/**
 * @module Prometheus metrics of RPCs, protocol-neutral: the server records into them, and they
 * know nothing of Connect. Labels stay bounded: `method` is only ever a registered procedure.
 */
import { Counter, Gauge, Histogram, type Registry } from "prom-client";

/** Labels every RPC metric carries. */
export type RpcLabels = "protocol" | "method";

/** The RPC metrics of one registry. */
export interface RpcMetrics {
  /** Completed RPCs by protocol (grpc, grpc_web, connect), method and status code. */
  readonly requests: Counter<RpcLabels | "code">;
  /** RPCs in progress; every RPC is one HTTP stream (HTTP/2) or exchange (HTTP/1.1). */
  readonly streamsInFlight: Gauge<RpcLabels>;
  /** Request messages decoded by the server. */
  readonly messagesReceived: Counter<RpcLabels>;
  /** Response messages produced by the handlers. */
  readonly messagesSent: Counter<RpcLabels>;
  /** Request body bytes as read from the wire (framed, before decompression). */
  readonly bytesReceived: Counter<RpcLabels>;
  /** Response body bytes as written to the wire (framed, after compression). */
  readonly bytesSent: Counter<RpcLabels>;
  /** Wall time from request to the end of the response. */
  readonly duration: Histogram<RpcLabels | "code">;
  /**
   * Registers a function that brings the metrics up to date; it runs before every scrape. Lets a
   * recorder keep per-call tallies in plain numbers and hand them over only when read.
   */
  onCollect(flush: () => void): void;
}

/** Registers the RPC metrics in `registry`. */
export function createRpcMetrics(registry: Registry): RpcMetrics {
  const registers = [registry];
  const flushes: (() => void)[] = [];
  // Each metric is collected on its own; flushing every tally from each one is idempotent.
  const collect = () => {
    for (const flush of flushes) flush();
  };
  return {
    onCollect: (flush) => flushes.push(flush),
    requests: new Counter({
      name: "parley_rpc_requests_total",
      help: "Completed RPCs by protocol, method and status code.",
      labelNames: ["protocol", "method", "code"],
      registers,
      collect,
    }),
    streamsInFlight: new Gauge({
      name: "parley_rpc_streams_in_flight",
      help: "RPCs in progress (each one HTTP/2 stream or HTTP/1.1 exchange).",
      labelNames: ["protocol", "method"],
      registers,
      collect,
    }),
    messagesReceived: new Counter({
      name: "parley_rpc_messages_received_total",
      help: "Request messages decoded.",
      labelNames: ["protocol", "method"],
      registers,
      collect,
    }),
    messagesSent: new Counter({
      name: "parley_rpc_messages_sent_total",
      help: "Response messages sent.",
      labelNames: ["protocol", "method"],
      registers,
      collect,
    }),
    bytesReceived: new Counter({
      name: "parley_rpc_received_bytes_total",
      help: "Request body bytes read from the wire (framed, before decompression).",
      labelNames: ["protocol", "method"],
      registers,
      collect,
    }),
    bytesSent: new Counter({
      name: "parley_rpc_sent_bytes_total",
      help: "Response body bytes written to the wire (framed, after compression).",
      labelNames: ["protocol", "method"],
      registers,
      collect,
    }),
    duration: new Histogram({
      name: "parley_rpc_duration_seconds",
      help: "RPC wall time, from the request to the end of the response.",
      labelNames: ["protocol", "method", "code"],
      buckets: [0.005, 0.025, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120],
      registers,
      collect,
    }),
  };
}
