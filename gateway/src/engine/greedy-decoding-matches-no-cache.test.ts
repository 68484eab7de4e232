/**
 * Greedy decoding through the engine (KV cache, worker thread, batching code path) must pick the
 * same tokens as an independent decoder that recomputes the whole sequence every step with no
 * cache at all.
 */
import assert from "node:assert/strict";
import { rm } from "node:fs/promises";
import { after, before, test } from "node:test";
import { readModelFolder } from "../models/model-folder.js";
import type { ModelSource } from "../models/model-source.js";
import { decodeWithoutCache } from "../testing/decode-without-cache.js";
import {
  builtinSource,
  collect,
  generatedSource,
  greedy,
  randomTinyModel,
  sharedModelSkip,
  sharedSource,
  startTestEngine,
} from "../testing/model-fixtures.js";

// The built-in model is a bigram model (its attention output is zero); the random-weight model
// of its size and the third-party one make every token depend on the cache.
let random: ModelSource;
before(async () => {
  random = await generatedSource("random-tiny", randomTinyModel);
});
after(async () => {
  await rm(random.dir, { recursive: true, force: true });
});

for (const [name, source, skip] of [
  ["the built-in model", builtinSource, undefined],
  ["the built-in model's size with random weights", () => random, undefined],
  ["the third-party tiny-random-llama", sharedSource, sharedModelSkip],
] as const) {
  test(`greedy output with the KV cache equals recomputing without it, on ${name}`, {
    skip,
  }, async () => {
    const { engine } = await startTestEngine([source()]);
    try {
      for (const prompt of ["Hello", "The quick brown fox jumps over the lazy dog. Then"]) {
        const steps = 40;
        const eos = new Set((await readModelFolder(source().dir)).eosTokenIds);
        const expected = await decodeWithoutCache(source(), prompt, steps, eos);
        const { tokenIds, finished } = await collect(engine, greedy(prompt, steps));
        assert.deepEqual(tokenIds, expected, `prompt ${JSON.stringify(prompt)}`);
        const endedOnEos = eos.has(expected.at(-1) as number);
        assert.equal(finished.finishReason, endedOnEos ? "stop" : "length");
        assert.equal(finished.usage.completionTokens, expected.length);
      }
    } finally {
      await engine.close();
    }
  });
}
