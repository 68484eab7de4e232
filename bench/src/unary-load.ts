/**
 * @module Closed-loop unary load from real connect-node clients: `concurrency` callers each send
 * `ListModels` again as soon as the previous answer arrived, for a fixed time, over one of the
 * connect-node transports (gRPC, gRPC-Web, Connect binary or JSON; HTTP/2 or HTTP/1.1).
 */
import { createClient } from "@connectrpc/connect";
import { InferenceService } from "@parley/gen/inference/v1/inference_pb";
import { createBenchTransport } from "./connect-transports.js";
import type { WireProtocol } from "./rpc-wire.js";
import { type Distribution, distribution } from "./summary-stats.js";

/** One unary load run. */
export interface UnaryLoadJob {
  readonly protocol: WireProtocol;
  readonly httpVersion: "1.1" | "2";
  readonly port: number;
  readonly concurrency: number;
  /** Calls made before measuring, to open connections and warm the JIT of both ends. */
  readonly warmupMs: number;
  readonly durationMs: number;
}

/** What a unary load run measured. */
export interface UnaryLoadResult {
  readonly requests: number;
  readonly errors: number;
  readonly requestsPerSecond: number;
  readonly latencyMs: Distribution;
  readonly clientCpuUs: number;
}

/** Runs the load and reports it. */
export async function runUnaryLoad(job: UnaryLoadJob): Promise<UnaryLoadResult> {
  const bench = createBenchTransport(job.protocol, job.httpVersion, job.port, job.concurrency);
  const client = createClient(InferenceService, bench.transport);
  const latencies: number[] = [];
  let errors = 0;
  const loop = async (until: number, record: boolean) => {
    while (performance.now() < until) {
      const started = performance.now();
      try {
        await client.listModels({});
        if (record) latencies.push(performance.now() - started);
      } catch {
        if (record) errors++;
      }
    }
  };
  const callers = (until: number, record: boolean) =>
    Promise.all(Array.from({ length: job.concurrency }, () => loop(until, record)));
  try {
    await callers(performance.now() + job.warmupMs, false);
    const cpu = process.cpuUsage();
    const started = performance.now();
    await callers(started + job.durationMs, true);
    const elapsed = performance.now() - started;
    const used = process.cpuUsage(cpu);
    return {
      requests: latencies.length,
      errors,
      requestsPerSecond: (latencies.length / elapsed) * 1000,
      latencyMs: distribution(latencies),
      clientCpuUs: used.user + used.system,
    };
  } finally {
    bench.close();
  }
}
