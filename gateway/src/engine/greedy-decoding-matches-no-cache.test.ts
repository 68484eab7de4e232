/**
 * Greedy decoding through the engine (KV cache, worker thread, batching code path) must pick the
 * same tokens as an independent decoder that recomputes the whole sequence every step with no
 * cache at all.
 */
import assert from "node:assert/strict";
import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { test } from "node:test";
import { Tokenizer } from "@huggingface/tokenizers";
import * as ort from "onnxruntime-node";
import { readModelFolder } from "../models/model-folder.js";
import type { ModelSource } from "../models/model-source.js";
import {
  builtinSource,
  collect,
  greedy,
  sharedModelSkip,
  sharedSource,
  startTestEngine,
} from "../testing/model-fixtures.js";
import { float16Bits, float16Tensor, float16ToFloat32 } from "./worker/float16.js";
import { argmax } from "./worker/sampler.js";

/**
 * Greedy decoding without a KV cache: every step runs the full sequence from position 0, until
 * `steps` tokens or an end-of-sequence id.
 */
async function decodeWithoutCache(
  source: ModelSource,
  prompt: string,
  steps: number,
  eos: ReadonlySet<number>,
) {
  const json = (name: string) => readFile(join(source.dir, name), "utf8").then(JSON.parse);
  const tokenizer = new Tokenizer(
    await json("tokenizer.json"),
    await json("tokenizer_config.json"),
  );
  const session = await ort.InferenceSession.create(join(source.dir, "model.onnx"), {
    intraOpNumThreads: 1,
  });
  const pasts = session.inputMetadata.filter((m) => m.name.startsWith("past_key_values."));
  const ids = tokenizer.encode(prompt).ids;
  const generated: number[] = [];
  for (let step = 0; step < steps; step++) {
    const n = ids.length;
    const feeds: Record<string, ort.Tensor> = {
      input_ids: new ort.Tensor("int64", BigInt64Array.from(ids, BigInt), [1, n]),
      attention_mask: new ort.Tensor("int64", new BigInt64Array(n).fill(1n), [1, n]),
      position_ids: new ort.Tensor(
        "int64",
        BigInt64Array.from({ length: n }, (_, i) => BigInt(i)),
        [1, n],
      ),
    };
    for (const past of pasts) {
      if (!past.isTensor) continue;
      const [, heads, , dim] = past.shape as number[];
      const dims = [1, heads ?? 1, 0, dim ?? 1];
      feeds[past.name] =
        past.type === "float16"
          ? float16Tensor(new Uint16Array(0), dims)
          : new ort.Tensor("float32", new Float32Array(0), dims);
    }
    const logits = (await session.run(feeds)).logits as ort.Tensor;
    const vocab = logits.dims[2] as number;
    const last =
      logits.type === "float16"
        ? float16ToFloat32(float16Bits(logits.data), (n - 1) * vocab, vocab)
        : (logits.data as Float32Array).subarray((n - 1) * vocab, n * vocab);
    const next = argmax(last);
    generated.push(next);
    ids.push(next);
    if (eos.has(next)) break;
  }
  await session.release();
  return generated;
}

for (const [name, source, skip] of [
  ["the built-in model", builtinSource, undefined],
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
