/**
 * @module Scenario 5, concurrency scaling: 1, 2, 4, 8 and 16 concurrent gRPC streams on one model,
 * the levels interleaved round by round: aggregate tokens per second (all tokens over the time
 * from the first request to the last token), each stream's inter-token latency, time to first
 * token under that load, and the gateway's event-loop delay.
 */
import type { BenchContext } from "./bench-context.js";
import type { ScalingRow } from "./bench-results.js";
import { gatewayStreams, type ModelUnderTest } from "./scenario-engine.js";
import { distribution, median, roundFigure } from "./summary-stats.js";

interface Sample {
  readonly rate: number;
  readonly itl: { p50: number; p99: number };
  readonly ttft: { p50: number; p99: number };
  readonly cpu: number;
  readonly eld: number;
  readonly wait: number;
}

/** Runs scenario 5 for one model. */
export async function runScalingScenario(
  ctx: BenchContext,
  model: ModelUnderTest,
  tokens: number,
): Promise<ScalingRow[]> {
  const levels = ctx.settings.scaling.streams;
  const samples = new Map<number, Sample[]>();
  for (let round = 1; round <= ctx.settings.rounds; round++) {
    ctx.log(`scaling ${model.label}: round ${round}/${ctx.settings.rounds}`);
    for (const streams of levels) {
      const { result, delta } = await gatewayStreams(ctx, model, streams, tokens);
      const gaps: number[] = [];
      for (const arrivals of Object.values(result.arrivals)) {
        for (let i = 1; i < arrivals.length; i++) {
          gaps.push((arrivals[i] as number) - (arrivals[i - 1] as number));
        }
      }
      const itl = distribution(gaps);
      const ttft = distribution(result.ttftMs.filter(Number.isFinite));
      samples.set(streams, [
        ...(samples.get(streams) ?? []),
        {
          rate: (result.tokens / result.elapsedMs) * 1000,
          itl: { p50: itl.p50, p99: itl.p99 },
          ttft: { p50: ttft.p50, p99: ttft.p99 },
          cpu: delta.cpuUs / Math.max(1, result.tokens),
          eld: delta.eventLoopDelayP99Ms,
          wait: delta.mainThreadWaitMsPerS,
        },
      ]);
    }
  }
  return levels.map((streams) => {
    const list = samples.get(streams) ?? [];
    const med = (pick: (s: Sample) => number) => median(list.map(pick));
    return {
      model: model.label,
      streams,
      aggregateTokensPerSecond: roundFigure(list.map((s) => s.rate)),
      interTokenMs: { p50: med((s) => s.itl.p50), p99: med((s) => s.itl.p99) },
      ttftMs: { p50: med((s) => s.ttft.p50), p99: med((s) => s.ttft.p99) },
      serverCpuUsPerToken: med((s) => s.cpu),
      eventLoopDelayP99Ms: med((s) => s.eld),
      mainThreadWaitMsPerS: med((s) => s.wait),
    };
  });
}
