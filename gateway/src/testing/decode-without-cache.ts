/**
 * @module The independent reference greedy decoding is checked against: a decoder with no KV
 * cache at all, which runs the whole sequence from position 0 at every step, on its own
 * onnxruntime session (none of the engine's batching, caching or worker code).
 */
import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { Tokenizer } from "@huggingface/tokenizers";
import * as ort from "onnxruntime-node";
import { float16Bits, float16Tensor, float16ToFloat32 } from "../engine/worker/float16.js";
import { argmax } from "../engine/worker/sampler.js";
import { readModelFolder } from "../models/model-folder.js";
import type { ModelSource } from "../models/model-source.js";

/**
 * Chooses the next token from a step's logits, given the prompt and the tokens so far (for
 * tests that write a sampling rule out by hand). The default is greedy.
 */
export type PickToken = (
  logits: Float32Array,
  promptIds: readonly number[],
  generated: readonly number[],
) => number;

/**
 * Decoding without a KV cache: every step runs the full sequence from position 0, until
 * `steps` tokens or an end-of-sequence id.
 */
export async function decodeWithoutCache(
  source: ModelSource,
  prompt: string,
  steps: number,
  eos: ReadonlySet<number>,
  pick: PickToken = argmax,
) {
  const json = (name: string) => readFile(join(source.dir, name), "utf8").then(JSON.parse);
  const tokenizer = new Tokenizer(
    await json("tokenizer.json"),
    await json("tokenizer_config.json"),
  );
  const { graphPath } = await readModelFolder(source.dir);
  const session = await ort.InferenceSession.create(graphPath, { intraOpNumThreads: 1 });
  const has = (name: string) => session.inputNames.includes(name);
  const pasts = session.inputMetadata.filter((m) => m.name.startsWith("past_key_values."));
  const ids = tokenizer.encode(prompt).ids;
  const promptIds = [...ids];
  const generated: number[] = [];
  for (let step = 0; step < steps; step++) {
    const n = ids.length;
    const feeds: Record<string, ort.Tensor> = {
      input_ids: new ort.Tensor("int64", BigInt64Array.from(ids, BigInt), [1, n]),
      attention_mask: new ort.Tensor("int64", new BigInt64Array(n).fill(1n), [1, n]),
    };
    // Whatever optional inputs the graph has, fed the no-cache way: every position's logits,
    // a merged decoder's no-past branch.
    if (has("position_ids")) {
      const positions = BigInt64Array.from({ length: n }, (_, i) => BigInt(i));
      feeds.position_ids = new ort.Tensor("int64", positions, [1, n]);
    }
    if (has("use_cache_branch")) {
      feeds.use_cache_branch = new ort.Tensor("bool", Uint8Array.of(0), [1]);
    }
    for (const name of ["num_logits_to_keep", "logits_to_keep"]) {
      if (has(name)) feeds[name] = new ort.Tensor("int64", BigInt64Array.of(BigInt(n)), []);
    }
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
    const next = pick(last, promptIds, generated);
    generated.push(next);
    ids.push(next);
    if (eos.has(next)) break;
  }
  await session.release();
  return generated;
}
