/**
 * Continuous batching must not change what any sequence generates: greedy output of sequences
 * decoded together (joining and leaving the batch at different steps, with different prompt
 * lengths) equals each one decoded alone, token for token.
 */
import assert from "node:assert/strict";
import { rm } from "node:fs/promises";
import { test } from "node:test";
import type { ModelSource } from "../models/model-source.js";
import {
  builtinSource,
  collect,
  generatedSource,
  greedy,
  metricValue,
  randomTinyModel,
  sharedModelSkip,
  sharedSource,
  startTestEngine,
} from "../testing/model-fixtures.js";

const prompts = [
  "Hi",
  "Once upon a time there was a small gateway that",
  "A",
  "Streaming tokens over HTTP/2 is",
  "The five boxing wizards jump quickly; the quick brown fox jumps over the lazy dog again and again",
  "Parley",
];

async function checkBatching(source: ModelSource): Promise<void> {
  // Alone: one generation at a time, so the batch never holds more than one row.
  const alone = await startTestEngine([source], { maxBatchSize: 1 });
  const expected: number[][] = [];
  try {
    for (const [i, prompt] of prompts.entries()) {
      expected.push((await collect(alone.engine, greedy(prompt, 12 + i * 5))).tokenIds);
    }
  } finally {
    await alone.engine.close();
  }

  // Together: all at once, plus late joiners while the first ones are mid-generation.
  const together = await startTestEngine([source], { maxBatchSize: 8, prefillChunkTokens: 4 });
  try {
    const first = prompts
      .slice(0, 3)
      .map((p, i) => collect(together.engine, greedy(p, 12 + i * 5)));
    await new Promise((resolve) => setTimeout(resolve, 5));
    const later = prompts
      .slice(3)
      .map((p, i) => collect(together.engine, greedy(p, 12 + (i + 3) * 5)));
    const results = await Promise.all([...first, ...later]);
    results.forEach((result, i) => {
      assert.deepEqual(result.tokenIds, expected[i], `prompt ${i} ${JSON.stringify(prompts[i])}`);
    });
    assert.equal(await metricValue(together.metrics, "parley_generations_in_flight"), 0);
  } finally {
    await together.engine.close();
  }
}

test("batched greedy output equals unbatched output on the built-in model", async () => {
  await checkBatching(builtinSource());
});

test("batched greedy output equals unbatched output on the built-in size with random weights", async () => {
  // The built-in model's attention output is zero (a bigram model); this one attends.
  const random = await generatedSource("random-tiny", randomTinyModel);
  try {
    await checkBatching(random);
  } finally {
    await rm(random.dir, { recursive: true, force: true });
  }
});

test("batched greedy output equals unbatched output on the third-party tiny-random-llama", {
  skip: sharedModelSkip,
}, async () => {
  await checkBatching(sharedSource());
});

test("prompts prefilled together in one padded run decode exactly as each alone", async () => {
  const source = builtinSource();
  const alone = await startTestEngine([source], { maxBatchSize: 1 });
  const expected: number[][] = [];
  try {
    for (const prompt of prompts)
      expected.push((await collect(alone.engine, greedy(prompt, 16))).tokenIds);
  } finally {
    await alone.engine.close();
  }
  // A budget every prompt fits, all submitted at once: they wait in one prefill turn together.
  const together = await startTestEngine([source], { prefillChunkTokens: 1024 });
  try {
    const results = await Promise.all(prompts.map((p) => collect(together.engine, greedy(p, 16))));
    results.forEach((result, i) => {
      assert.deepEqual(result.tokenIds, expected[i], `prompt ${i} ${JSON.stringify(prompts[i])}`);
    });
  } finally {
    await together.engine.close();
  }
});
