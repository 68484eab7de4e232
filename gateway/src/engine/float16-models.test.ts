/**
 * fp16 and q4f16 models through the engine: float16 KV cache fed back step to step, float16
 * logits converted, MatMulNBits weights. Greedy decoding must pick the same tokens as the
 * independent no-cache reference, on generated models in the layouts of Optimum's fp16 exports
 * and onnx-community's q4f16 ones (the third-party fp16 model is covered beside the built-in
 * one in greedy-decoding-matches-no-cache.test.ts).
 */
import assert from "node:assert/strict";
import { rm } from "node:fs/promises";
import { after, before, describe, test } from "node:test";
import { readModelFolder } from "../models/model-folder.js";
import type { ModelSource } from "../models/model-source.js";
import { decodeWithoutCache } from "../testing/decode-without-cache.js";
import {
  collect,
  generatedSource,
  greedy,
  halfPrecisionModels,
  startTestEngine,
} from "../testing/model-fixtures.js";

for (const [name, options] of Object.entries(halfPrecisionModels)) {
  describe(`a generated ${name} model`, () => {
    let source: ModelSource;
    before(async () => {
      source = await generatedSource(name, options);
    });
    after(async () => {
      await rm(source.dir, { recursive: true, force: true });
    });

    test("decodes greedily with the KV cache exactly as recomputing without it", async () => {
      const { engine } = await startTestEngine([source]);
      try {
        const eos = new Set((await readModelFolder(source.dir)).eosTokenIds);
        for (const prompt of ["Hello", "The quick brown fox jumps over the lazy dog. Then"]) {
          const steps = 40;
          const expected = await decodeWithoutCache(source, prompt, steps, eos);
          const { tokenIds, finished } = await collect(engine, greedy(prompt, steps));
          assert.deepEqual(tokenIds, expected, `prompt ${JSON.stringify(prompt)}`);
          assert.equal(finished.usage.completionTokens, expected.length);
        }
      } finally {
        await engine.close();
      }
    });

    test("decodes a batch (joining, chunked, leaving at different steps) as each alone", async () => {
      const prompts = ["Hello", "Once upon a time there was a small gateway that", "1, 2, 3,"];
      const tokens = (i: number) => 12 + i * 8;
      const alone = await startTestEngine([source], { maxBatchSize: 1 });
      const expected: number[][] = [];
      try {
        for (const [i, prompt] of prompts.entries()) {
          expected.push((await collect(alone.engine, greedy(prompt, tokens(i)))).tokenIds);
        }
      } finally {
        await alone.engine.close();
      }
      const together = await startTestEngine([source], { maxBatchSize: 8, prefillChunkTokens: 4 });
      try {
        const results = await Promise.all(
          prompts.map((prompt, i) => collect(together.engine, greedy(prompt, tokens(i)))),
        );
        assert.deepEqual(
          results.map((r) => r.tokenIds),
          expected,
        );
      } finally {
        await together.engine.close();
      }
    });
  });
}
