/**
 * Greedy token ids of one fixed prompt on the half-precision models equal ids recorded in this
 * file, so every supported Node version (22, 24, 26) decodes them identically. Node 24 and later
 * hand float16 tensors over as `Float16Array` and Node 22 as `Uint16Array`; a conversion that
 * went wrong on one of them (bits read as numbers, a view of the wrong length) changes the ids.
 *
 * Recorded on Node 22.23.5 (onnxruntime-node 1.30.0, x64) with the engine, `greedy(PROMPT, 32)`,
 * by printing `collect(...).tokenIds` for each model below; Node 24.22.3 and 26.12.1 printed the
 * same ids. A change to the generator's weights, graph or tokenizer changes the generated models'
 * ids: then record them again on Node 22 and check 24 and 26 agree. (The generated models, random
 * weights at the built-in model's size, end this prompt with <|im_end|> after six tokens.)
 */
import assert from "node:assert/strict";
import { rm } from "node:fs/promises";
import { test } from "node:test";
import type { ModelSource } from "../models/model-source.js";
import {
  collect,
  generatedSource,
  greedy,
  halfPrecisionModels,
  sharedModelSkip,
  sharedSource,
  startTestEngine,
} from "../testing/model-fixtures.js";

const PROMPT = "The quick brown fox jumps over the lazy dog. Then";

const recorded = {
  "tiny-random-llama": [
    4577, 7344, 31422, 31527, 10089, 8580, 21887, 13122, 23418, 18799, 8904, 9408, 127, 22164,
    22410, 4839, 213, 23512, 5236, 8489, 24116, 20372, 29249, 18428, 29572, 31252, 1404, 2376,
    17393, 314, 20892, 3094,
  ],
  fp16: [1398, 1080, 806, 1213, 1916, 1257, 4],
  q4f16: [1398, 1080, 806, 1213, 1916, 1257, 4],
  "q4f16-zero-points": [1398, 1080, 806, 1213, 1916, 1257, 4],
} as const;

async function greedyIds(source: ModelSource): Promise<number[]> {
  const { engine } = await startTestEngine([source]);
  try {
    return (await collect(engine, greedy(PROMPT, 32))).tokenIds;
  } finally {
    await engine.close();
  }
}

test(`greedy ids on the third-party fp16 tiny-random-llama equal those recorded (${process.version})`, {
  skip: sharedModelSkip,
}, async () => {
  assert.deepEqual(await greedyIds(sharedSource()), recorded["tiny-random-llama"]);
});

for (const [name, options] of Object.entries(halfPrecisionModels)) {
  test(`greedy ids on a generated ${name} model equal those recorded (${process.version})`, async () => {
    const source = await generatedSource(name, options);
    try {
      assert.deepEqual(await greedyIds(source), recorded[name as keyof typeof halfPrecisionModels]);
    } finally {
      await rm(source.dir, { recursive: true, force: true });
    }
  });
}
