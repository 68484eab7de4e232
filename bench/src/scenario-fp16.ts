/**
 * @module Scenario 6, float16 models: one stream through the gateway on a float16 model, beside
 * the in-process ORT loop on the same model run twice, once with the engine's table conversion
 * of the float16 logits and once with the per-value arithmetic it replaced, all three
 * alternating round by round. The two loop runs differ only in that conversion, so their ratio
 * is the change's effect on one machine at one time; the gateway's figure is the engine as it
 * is. Rates count tokens after the first, from the first token to the last (prefill excluded).
 */
import type { BenchContext } from "./bench-context.js";
import { findLongPrompt, gatewayClient } from "./bench-fixtures.js";
import type { Fp16Row } from "./bench-results.js";
import { startGateway, startOrtLoop } from "./child-system.js";
import type { LogitsConversionName } from "./logits-conversions.js";
import type { OrtLoopResult } from "./ort-decode-loop.js";
import { decodeRate, gatewayStreams } from "./scenario-engine.js";
import { median, roundFigure } from "./summary-stats.js";

/** A float16 model folder to run, and how many tokens per run. */
export interface Fp16Model {
  readonly label: string;
  readonly dir: string;
  readonly tokens: number;
}

const conversions: readonly LogitsConversionName[] = ["table", "per-value arithmetic"];

/** Runs scenario 6 on one model. */
async function runModel(ctx: BenchContext, model: Fp16Model): Promise<Fp16Row[]> {
  ctx.log(`fp16 ${model.label}: starting the gateway and the ORT loop`);
  const gateway = await startGateway({ name: `gateway-fp16-${model.label}`, models: [model.dir] });
  const ortLoop = await startOrtLoop(model.dir).catch(async (error: unknown) => {
    await gateway.stop();
    throw error;
  });
  try {
    const prompt = await findLongPrompt(gatewayClient(gateway.port), "", model.tokens);
    const underTest = { label: model.label, gateway, prompt };
    const loop = (conversion: LogitsConversionName) =>
      ortLoop.request<OrtLoopResult>({ type: "run", prompt, tokens: model.tokens, conversion });
    await gatewayStreams(ctx, underTest, 1, model.tokens);
    for (const conversion of conversions) await loop(conversion);

    const gatewayRuns: { rate: number; cpu: number }[] = [];
    const loopRuns = new Map(conversions.map((c) => [c, [] as OrtLoopResult[]]));
    for (let round = 1; round <= ctx.settings.rounds; round++) {
      ctx.log(`fp16 ${model.label}: round ${round}/${ctx.settings.rounds}`);
      const { result, delta } = await gatewayStreams(ctx, underTest, 1, model.tokens);
      gatewayRuns.push({ rate: decodeRate(result), cpu: delta.cpuUs / Math.max(1, result.tokens) });
      for (const conversion of conversions) loopRuns.get(conversion)?.push(await loop(conversion));
    }
    return [
      {
        model: model.label,
        system: "gateway",
        conversion: "table",
        tokensPerSecond: roundFigure(gatewayRuns.map((g) => g.rate)),
        cpuUsPerToken: median(gatewayRuns.map((g) => g.cpu)),
        conversionUsPerToken: null,
      },
      ...conversions.map((conversion): Fp16Row => {
        const runs = loopRuns.get(conversion) ?? [];
        return {
          model: model.label,
          system: "ort-loop",
          conversion,
          tokensPerSecond: roundFigure(runs.map((r) => r.tokensPerSecond)),
          cpuUsPerToken: median(runs.map((r) => r.cpuUs / r.tokens)),
          conversionUsPerToken: median(runs.map((r) => r.conversionUsPerToken)),
        };
      }),
    ];
  } finally {
    await Promise.all([gateway.stop(), ortLoop.stop()]);
  }
}

/** Runs scenario 6 on every model, one after the other. */
export async function runFp16Scenario(
  ctx: BenchContext,
  models: readonly Fp16Model[],
): Promise<Fp16Row[]> {
  const rows: Fp16Row[] = [];
  for (const model of models) rows.push(...(await runModel(ctx, model)));
  return rows;
}
