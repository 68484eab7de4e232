/**
 * Prefix caching through the real engine: a chat's later turns reuse the KV cache of the earlier
 * turns' prompts and replies, and produce exactly what they produce without it (greedy and
 * seeded sampling), on the built-in model and on a generated fp16 model.
 */
import assert from "node:assert/strict";
import { rm } from "node:fs/promises";
import { after, before, describe, test } from "node:test";
import type { ModelSource } from "../models/model-source.js";
import {
  builtinSource,
  collect,
  generatedSource,
  halfPrecisionModels,
  metricValue,
  startTestEngine,
} from "../testing/model-fixtures.js";
import type { ChatTurn, GenerationRequest, SamplingSettings } from "./engine.js";

interface Turn {
  readonly text: string;
  readonly promptTokens: number;
}

/** Five turns of one conversation; each turn's prompt holds every earlier turn. */
async function chat(
  source: ModelSource,
  prefixCacheBytes: number,
  sampling: SamplingSettings,
): Promise<{ turns: Turn[]; cachedPerTurn: number[]; hitTokens: number; cacheBytes: number }> {
  const { engine, metrics } = await startTestEngine([source], { prefixCacheBytes });
  try {
    const messages: ChatTurn[] = [];
    const turns: Turn[] = [];
    const cachedPerTurn: number[] = [];
    for (let turn = 0; turn < 5; turn++) {
      messages.push({
        role: "user",
        content: `Question ${turn}: tell me about gateways, part ${turn}.`,
      });
      const request: GenerationRequest = {
        model: "",
        input: { kind: "messages", messages: [...messages] },
        maxTokens: 24,
        sampling,
        stop: [],
      };
      const { text, finished } = await collect(engine, request);
      turns.push({ text, promptTokens: finished.usage.promptTokens });
      cachedPerTurn.push(finished.usage.cachedPromptTokens ?? -1);
      messages.push({ role: "assistant", content: text });
    }
    const labels = { model: source.id };
    return {
      turns,
      cachedPerTurn,
      hitTokens: await metricValue(metrics, "parley_prefix_cache_hit_tokens_total", labels),
      cacheBytes: await metricValue(metrics, "parley_prefix_cache_bytes", labels),
    };
  } finally {
    await engine.close();
  }
}

function checkReuse(
  withCache: Awaited<ReturnType<typeof chat>>,
  without: Awaited<ReturnType<typeof chat>>,
) {
  assert.deepEqual(withCache.turns, without.turns);
  assert.equal(without.hitTokens, 0);
  assert.equal(without.cacheBytes, 0);
  // Each later turn reuses at least the previous turn's whole prompt.
  const reusable = withCache.turns.slice(0, -1).reduce((sum, t) => sum + t.promptTokens, 0);
  assert.ok(withCache.hitTokens >= reusable, `${withCache.hitTokens} hit < ${reusable} reusable`);
  assert.ok(withCache.cacheBytes > 0);
  // Each generation's usage says how many of its prompt tokens the cache gave (OpenAI's
  // cached_tokens); together they are the metric's count.
  assert.deepEqual(without.cachedPerTurn, [0, 0, 0, 0, 0]);
  const cachedSum = withCache.cachedPerTurn.reduce((sum, n) => sum + n, 0);
  assert.equal(cachedSum, withCache.hitTokens);
  assert.equal(withCache.cachedPerTurn[0], 0);
}

const sources: [string, () => Promise<ModelSource>, boolean][] = [
  ["the built-in model", async () => builtinSource(), false],
  ["a generated fp16 model", () => generatedSource("fp16-prefix", halfPrecisionModels.fp16), true],
];

for (const [name, makeSource, temporary] of sources) {
  describe(`prefix caching on ${name}`, () => {
    let source: ModelSource;
    before(async () => {
      source = await makeSource();
    });
    after(async () => {
      if (temporary) await rm(source.dir, { recursive: true, force: true });
    });

    for (const [kind, sampling] of [
      ["greedy", { temperature: 0 }],
      ["seeded sampling", { temperature: 0.9, topP: 0.95, seed: 7n }],
    ] as const) {
      test(`a five-turn chat gives the same ${kind} replies with the cache as without`, async () => {
        const withCache = await chat(source, 64 * 1024 * 1024, sampling);
        const without = await chat(source, 0, sampling);
        checkReuse(withCache, without);
      });
    }
  });
}

test("the cache stays within its bytes bound", async () => {
  const bound = 16 * 1024; // the built-in model's KV is 512 bytes per token
  const { turns, cacheBytes, hitTokens } = await chat(builtinSource(), bound, { temperature: 0 });
  assert.equal(turns.length, 5);
  assert.ok(cacheBytes <= bound, `${cacheBytes} > ${bound}`);
  assert.ok(hitTokens >= 0);
});
