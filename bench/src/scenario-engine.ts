/**
 * @module Scenario 4, engine efficiency: the decode rate of one stream through the whole gateway
 * (client, server, service, engine, worker, ORT) against a tight in-process onnxruntime-node loop
 * on the same model (the ceiling), alternating run by run, with the gateway's event-loop delay
 * during its runs. Rates count tokens after the first, over the time from the first token to the
 * last, so prefill and connection setup are left out on both sides.
 */
import type { BenchContext } from "./bench-context.js";
import { measured } from "./bench-context.js";
import type { EngineRow } from "./bench-results.js";
import type { ChildSystem } from "./child-system.js";
import type { OrtLoopResult } from "./ort-decode-loop.js";
import type { StreamLoadResult } from "./stream-load.js";
import { median, roundFigure } from "./summary-stats.js";

/** One model under test. */
export interface ModelUnderTest {
  readonly label: string;
  readonly gateway: ChildSystem;
  readonly prompt: string;
}

/** Streams one gRPC completion of `tokens` tokens; returns the run and the gateway's stats. */
export async function gatewayStreams(
  ctx: BenchContext,
  model: ModelUnderTest,
  streams: number,
  tokens: number,
) {
  return measured(model.gateway, () =>
    ctx.client.request<StreamLoadResult>({
      type: "stream",
      job: {
        target: {
          kind: "rpc",
          protocol: "grpc",
          port: model.gateway.port,
          model: "",
          prompt: model.prompt,
          maxTokens: tokens,
        },
        streams,
        streamsPerConnection: 100,
        windowMs: 120_000,
        keyBase: ctx.nextKeys(streams),
      },
    }),
  );
}

/** Decode rate of the only stream of a run: tokens after the first per second. */
export function decodeRate(result: StreamLoadResult): number {
  const arrivals = Object.values(result.arrivals)[0];
  if (arrivals === undefined || arrivals.length < 2) return Number.NaN;
  const span = (arrivals[arrivals.length - 1] as number) - (arrivals[0] as number);
  return ((arrivals.length - 1) / span) * 1000;
}

/** Runs scenario 4 for one model. */
export async function runEngineScenario(
  ctx: BenchContext,
  model: ModelUnderTest,
  ortLoop: ChildSystem,
  tokens: number,
): Promise<EngineRow[]> {
  const run = () => ortLoop.request<OrtLoopResult>({ type: "run", prompt: model.prompt, tokens });
  await gatewayStreams(ctx, model, 1, tokens);
  await run();
  const gateway: { rate: number; cpu: number; eld: number; wait: number }[] = [];
  const ort: { rate: number; cpu: number }[] = [];
  for (let round = 1; round <= ctx.settings.rounds; round++) {
    ctx.log(`engine ${model.label}: round ${round}/${ctx.settings.rounds}`);
    const { result, delta } = await gatewayStreams(ctx, model, 1, tokens);
    gateway.push({
      rate: decodeRate(result),
      cpu: delta.cpuUs / Math.max(1, result.tokens),
      eld: delta.eventLoopDelayP99Ms,
      wait: delta.mainThreadWaitMsPerS,
    });
    const loop = await run();
    ort.push({ rate: loop.tokensPerSecond, cpu: loop.cpuUs / loop.tokens });
  }
  return [
    {
      model: model.label,
      system: "gateway",
      tokensPerSecond: roundFigure(gateway.map((g) => g.rate)),
      cpuUsPerToken: median(gateway.map((g) => g.cpu)),
      eventLoopDelayP99Ms: median(gateway.map((g) => g.eld)),
      mainThreadWaitMsPerS: median(gateway.map((g) => g.wait)),
    },
    {
      model: model.label,
      system: "ort-loop",
      tokensPerSecond: roundFigure(ort.map((o) => o.rate)),
      cpuUsPerToken: median(ort.map((o) => o.cpu)),
      eventLoopDelayP99Ms: null,
      mainThreadWaitMsPerS: null,
    },
  ];
}
