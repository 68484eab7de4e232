/**
 * @module Turns one streaming run into figures: the client's arrival times are matched, stream by
 * stream and token by token, with the server's stamps (the gateway probe's token arrivals on the
 * main thread, or the baseline's writes). Both sides read the same monotonic clock, so the
 * difference is the time the serving stack (and the client's own reading) added to each token.
 */
import type { StatsDelta } from "./bench-context.js";
import type { Quantiles, StreamSample } from "./bench-results.js";
import type { StreamLoadResult } from "./stream-load.js";
import { distribution } from "./summary-stats.js";

function quantiles(values: ArrayLike<number>): Quantiles {
  const { p50, p99 } = distribution(values);
  return { p50, p99 };
}

/** Computes a run's figures; `peakRssBytes` is the highest RSS sampled while it ran. */
export function streamSample(
  result: StreamLoadResult,
  serverTrace: Record<string, Float64Array>,
  delta: StatsDelta,
  peakRssBytes: number,
): StreamSample {
  const added: number[] = [];
  const gapDifference: number[] = [];
  const serverGap: number[] = [];
  const clientGap: number[] = [];
  for (const [key, arrivals] of Object.entries(result.arrivals)) {
    const stamps = serverTrace[key];
    for (let i = 1; i < arrivals.length; i++) {
      clientGap.push((arrivals[i] as number) - (arrivals[i - 1] as number));
    }
    if (stamps === undefined) continue;
    const count = Math.min(arrivals.length, stamps.length);
    for (let i = 0; i < count; i++) {
      added.push((arrivals[i] as number) - (stamps[i] as number));
      if (i === 0) continue;
      const server = (stamps[i] as number) - (stamps[i - 1] as number);
      const client = (arrivals[i] as number) - (arrivals[i - 1] as number);
      serverGap.push(server);
      gapDifference.push(client - server);
    }
  }
  const tokens = Math.max(1, result.tokens);
  const elapsedS = Math.max(1, result.elapsedMs) / 1000;
  const rssGrowth = peakRssBytes - delta.before.rssBytes;
  return {
    tokensPerSecond: result.tokens / elapsedS,
    messagesPerSecond: result.messages / elapsedS,
    tokensPerStream: result.tokens / result.streams,
    ttfbMs: quantiles(result.ttfbMs.filter(Number.isFinite)),
    ttftMs: quantiles(result.ttftMs.filter(Number.isFinite)),
    addedLatencyMs: quantiles(added),
    gapDifferenceMs: quantiles(gapDifference),
    serverGapMs: quantiles(serverGap),
    clientGapMs: quantiles(clientGap),
    rssPerStreamKiB: result.streams >= 64 ? Math.max(0, rssGrowth) / result.streams / 1024 : null,
    serverCpuUsPerToken: delta.cpuUs / tokens,
    serverMainThreadCpuUsPerToken: delta.mainThreadCpuUs / tokens,
    clientCpuUsPerToken: result.clientCpuUs / tokens,
    eventLoopDelayP99Ms: delta.eventLoopDelayP99Ms,
    mainThreadWaitMsPerS: delta.mainThreadWaitMsPerS,
    failed: result.failed,
    failures: result.failures,
  };
}
