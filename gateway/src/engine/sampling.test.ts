/** Seeded sampling is reproducible, and its settings change what is sampled. */
import assert from "node:assert/strict";
import { test } from "node:test";
import { builtinSource, collect, greedy, startTestEngine } from "../testing/model-fixtures.js";
import type { GenerationRequest } from "./engine.js";

function sampled(
  seed: bigint,
  extra: Partial<GenerationRequest["sampling"]> = {},
): GenerationRequest {
  return { ...greedy("Once upon a time", 40), sampling: { temperature: 1, seed, ...extra } };
}

test("the same seed gives the same tokens; another seed gives others", async () => {
  const { engine } = await startTestEngine([builtinSource()]);
  try {
    const a = await collect(engine, sampled(42n));
    const b = await collect(engine, sampled(42n));
    const c = await collect(engine, sampled(43n));
    assert.deepEqual(a.tokenIds, b.tokenIds);
    assert.equal(a.text, b.text);
    assert.notDeepEqual(a.tokenIds, c.tokenIds);
    // Seeds differing only in their high 32 bits are different seeds too.
    const high = await collect(engine, sampled(42n + (1n << 32n)));
    assert.notDeepEqual(a.tokenIds, high.tokenIds);
  } finally {
    await engine.close();
  }
});

test("top_k 1 is greedy whatever the temperature and seed", async () => {
  const { engine } = await startTestEngine([builtinSource()]);
  try {
    const greedyIds = (await collect(engine, greedy("Once upon a time", 40))).tokenIds;
    const topK1 = await collect(engine, sampled(9n, { temperature: 1.5, topK: 1 }));
    assert.deepEqual(topK1.tokenIds, greedyIds);
  } finally {
    await engine.close();
  }
});

test("concurrent seeded generations in one batch give the same tokens as alone", async () => {
  const { engine } = await startTestEngine([builtinSource()]);
  try {
    const alone = await collect(engine, sampled(5n, { topP: 0.9 }));
    const together = await Promise.all(
      [1n, 5n, 2n, 5n].map((seed) => collect(engine, sampled(seed, { topP: 0.9 }))),
    );
    assert.deepEqual(together[1]?.tokenIds, alone.tokenIds);
    assert.deepEqual(together[3]?.tokenIds, alone.tokenIds);
  } finally {
    await engine.close();
  }
});
