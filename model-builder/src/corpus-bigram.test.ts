/**
 * @module The built-in model as onnxruntime runs it: its logits are a bigram model of the
 * corpus (the last token alone decides them), and only whole corpus words and punctuation can
 * ever be emitted, whatever the context.
 */
import assert from "node:assert/strict";
import { mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { Tokenizer } from "@huggingface/tokenizers";
import * as ort from "onnxruntime-node";
import { buildBuiltinModel } from "./build-builtin-model-folder.js";
import { PRE_TOKENIZE } from "./byte-level-bpe.js";
import { BLOCKED_LOGIT } from "./corpus-bigram.js";
import type { DecoderModelDimensions } from "./decoder-model-options.js";
import { corpusParagraphs } from "./training-corpus.js";

function int64(rows: readonly (readonly number[])[]): ort.Tensor {
  const width = rows[0]?.length ?? 0;
  return new ort.Tensor("int64", BigInt64Array.from(rows.flat(), BigInt), [rows.length, width]);
}

/** Last-position logits of each row (all rows the same length, no padding). */
async function lastLogits(
  session: ort.InferenceSession,
  d: DecoderModelDimensions,
  rows: readonly (readonly number[])[],
): Promise<Float32Array[]> {
  const width = rows[0]?.length ?? 0;
  const feeds: Record<string, ort.Tensor> = {
    input_ids: int64(rows),
    attention_mask: int64(rows.map((row) => row.map(() => 1))),
    position_ids: int64(rows.map((row) => row.map((_, i) => i))),
  };
  for (let i = 0; i < d.layers; i++) {
    for (const kind of ["key", "value"]) {
      feeds[`past_key_values.${i}.${kind}`] = new ort.Tensor("float32", new Float32Array(0), [
        rows.length,
        d.kvHeads,
        0,
        d.headDim,
      ]);
    }
  }
  const logits = (await session.run(feeds)).logits as ort.Tensor;
  const data = logits.data as Float32Array;
  return rows.map((_, r) => {
    const start = (r * width + width - 1) * d.vocabSize;
    return data.subarray(start, start + d.vocabSize);
  });
}

describe("built-in model (corpus bigram weights)", () => {
  let dir: string;
  let d: DecoderModelDimensions;
  let session: ort.InferenceSession;
  let tokenizer: Tokenizer;

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), "parley-builtin-"));
    d = (await buildBuiltinModel(dir)).dimensions;
    session = await ort.InferenceSession.create(join(dir, "model.onnx"));
    const read = async (name: string) => JSON.parse(await readFile(join(dir, name), "utf8"));
    tokenizer = new Tokenizer(await read("tokenizer.json"), await read("tokenizer_config.json"));
  });
  after(async () => {
    await session?.release();
    await rm(dir, { recursive: true, force: true });
  });

  test("after any token, only whole corpus pieces (and <|im_end|>) have a logit above blocked", async () => {
    const pieces = new Set(corpusParagraphs().flatMap((p) => p.match(PRE_TOKENIZE) ?? []));
    const everyToken = Array.from({ length: d.vocabSize }, (_, id) => [id]);
    const rows = await lastLogits(session, d, everyToken);
    const emittable = new Set<number>();
    for (const logits of rows) {
      logits.forEach((logit, id) => {
        if (logit > BLOCKED_LOGIT / 2) emittable.add(id);
      });
    }
    assert.ok(emittable.has(4), "<|im_end|> can end a reply");
    for (const id of [0, 1, 2, 3]) assert.ok(!emittable.has(id), `special ${id} is never emitted`);
    for (let byte = 0x80; byte < 0x100; byte++) {
      assert.ok(!emittable.has(5 + byte), `byte token 0x${byte.toString(16)} is never emitted`);
    }
    for (const id of emittable) {
      if (id === 4) continue;
      const text = tokenizer.decode([id], { skip_special_tokens: true });
      assert.ok(pieces.has(text), `token ${id} ${JSON.stringify(text)} is a whole corpus piece`);
      assert.doesNotMatch(text, /[\p{Cc}\uFFFD]/u);
    }
    assert.ok(emittable.size > 500, `${emittable.size} emittable tokens`);
  });

  test("the next-token logits depend on the last token only", async () => {
    const [last] = tokenizer.encode(" the", { add_special_tokens: false }).ids;
    assert.ok(last !== undefined);
    const contexts = [
      [1, 300, 400, last],
      [1, 1000, 77, last],
      [1, 1, 1, last],
    ];
    const [a, b, c] = await lastLogits(session, d, contexts);
    for (const other of [b, c]) {
      let max = 0;
      other?.forEach((logit, id) => {
        max = Math.max(max, Math.abs(logit - (a?.[id] as number)));
      });
      assert.ok(max < 1e-3, `max logit difference ${max}`);
    }
  });
});
