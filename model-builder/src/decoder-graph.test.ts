/**
 * @module Runs generated decoders in onnxruntime: the Hugging Face export IO, KV-cache
 * equivalence, left-padded batches, and non-degenerate greedy output.
 */
import assert from "node:assert/strict";
import { existsSync } from "node:fs";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import * as ort from "onnxruntime-node";
import {
  type DecoderModelDimensions,
  type DecoderModelOptions,
  TINY_MODEL_OPTIONS,
} from "./decoder-model-options.js";
import { writeDecoderModel } from "./write-decoder-model.js";

type Feeds = Record<string, ort.Tensor>;

interface Step {
  /** [batch, seq, vocab] */
  readonly logits: Float32Array;
  /** The present.* outputs renamed to the past_key_values.* inputs of the next step. */
  readonly past: Feeds;
}

function int64(rows: readonly (readonly number[])[]): ort.Tensor {
  const width = rows[0]?.length ?? 0;
  return new ort.Tensor("int64", BigInt64Array.from(rows.flat(), BigInt), [rows.length, width]);
}

function emptyPast(d: DecoderModelDimensions, batch: number): Feeds {
  const feeds: Feeds = {};
  for (let i = 0; i < d.layers; i++) {
    for (const kind of ["key", "value"]) {
      feeds[`past_key_values.${i}.${kind}`] = new ort.Tensor("float32", new Float32Array(0), [
        batch,
        d.kvHeads,
        0,
        d.headDim,
      ]);
    }
  }
  return feeds;
}

async function run(
  session: ort.InferenceSession,
  d: DecoderModelDimensions,
  ids: readonly (readonly number[])[],
  mask: readonly (readonly number[])[],
  positions: readonly (readonly number[])[],
  past: Feeds = emptyPast(d, ids.length),
): Promise<Step> {
  const results = await session.run({
    input_ids: int64(ids),
    attention_mask: int64(mask),
    position_ids: int64(positions),
    ...past,
  });
  const next: Feeds = {};
  for (let i = 0; i < d.layers; i++) {
    for (const kind of ["key", "value"]) {
      next[`past_key_values.${i}.${kind}`] = results[`present.${i}.${kind}`] as ort.Tensor;
    }
  }
  return { logits: (results.logits as ort.Tensor).data as Float32Array, past: next };
}

/** Logits of row `row` at position `position` of a [batch, seq, vocab] output. */
function logitsAt(
  step: Step,
  d: DecoderModelDimensions,
  seq: number,
  row: number,
  position: number,
) {
  const start = (row * seq + position) * d.vocabSize;
  return step.logits.subarray(start, start + d.vocabSize);
}

function argmax(values: Float32Array): number {
  let best = 0;
  for (let i = 1; i < values.length; i++)
    if ((values[i] as number) > (values[best] as number)) best = i;
  return best;
}

function maxAbsDiff(a: Float32Array, b: Float32Array): number {
  assert.equal(a.length, b.length);
  let max = 0;
  for (let i = 0; i < a.length; i++)
    max = Math.max(max, Math.abs((a[i] as number) - (b[i] as number)));
  return max;
}

const range = (start: number, length: number) => Array.from({ length }, (_, i) => start + i);

/** Runs one unpadded sequence from scratch and returns its last-position logits. */
async function lastLogits(session: ort.InferenceSession, d: DecoderModelDimensions, ids: number[]) {
  const step = await run(session, d, [ids], [ids.map(() => 1)], [range(0, ids.length)]);
  return logitsAt(step, d, ids.length, 0, ids.length - 1);
}

/** Token ids valid in both vocabularies below. */
const PROMPT = [1, 77, 191, 116, 218, 142, 49, 285];

const configurations: { readonly label: string; readonly options: DecoderModelOptions }[] = [
  // Random weights: the built-in model's own (corpus) weights zero the attention output, which
  // would hide a broken cache or mask; corpus-bigram.test.ts runs those.
  {
    label: "built-in size, random weights (grouped-query attention, inline weights)",
    options: { ...TINY_MODEL_OPTIONS, weights: "random" },
  },
  {
    label: "one kv head, three layers, external data",
    options: {
      hiddenSize: 48,
      layers: 3,
      heads: 3,
      kvHeads: 1,
      vocabSize: 300,
      contextLength: 64,
      seed: 7,
      externalData: true,
    },
  },
];

for (const { label, options } of configurations) {
  describe(`generated decoder: ${label}`, () => {
    let dir: string;
    let d: DecoderModelDimensions;
    let session: ort.InferenceSession;

    before(async () => {
      dir = await mkdtemp(join(tmpdir(), "parley-decoder-"));
      d = (await writeDecoderModel(dir, options)).dimensions;
      session = await ort.InferenceSession.create(join(dir, "model.onnx"));
    });
    after(async () => {
      await session?.release();
      await rm(dir, { recursive: true, force: true });
    });

    test("has the inputs and outputs of a Hugging Face export with KV cache", () => {
      assert.equal(existsSync(join(dir, "model.onnx.data")), d.externalData);
      const summary = (metadata: readonly ort.InferenceSession.ValueMetadata[]) =>
        metadata.map((m) => (m.isTensor ? `${m.name} ${m.type} [${m.shape.join(", ")}]` : m.name));
      const cache = (prefix: string, length: string) =>
        range(0, d.layers).flatMap((i) =>
          ["key", "value"].map(
            (kind) =>
              `${prefix}.${i}.${kind} float32 [batch_size, ${d.kvHeads}, ${length}, ${d.headDim}]`,
          ),
        );
      assert.deepEqual(summary(session.inputMetadata), [
        "input_ids int64 [batch_size, sequence_length]",
        "attention_mask int64 [batch_size, total_sequence_length]",
        "position_ids int64 [batch_size, sequence_length]",
        ...cache("past_key_values", "past_sequence_length"),
      ]);
      assert.deepEqual(summary(session.outputMetadata), [
        `logits float32 [batch_size, sequence_length, ${d.vocabSize}]`,
        ...cache("present", "total_sequence_length"),
      ]);
    });

    test("greedy decoding with the KV cache equals recomputing the whole sequence", async () => {
      const cachedTokens: number[] = [];
      const cachedLogits: Float32Array[] = [];
      let step = await run(session, d, [PROMPT], [PROMPT.map(() => 1)], [range(0, PROMPT.length)]);
      let logits = logitsAt(step, d, PROMPT.length, 0, PROMPT.length - 1);
      for (let i = 0; i < 20; i++) {
        const token = argmax(logits);
        cachedTokens.push(token);
        cachedLogits.push(logits);
        const length = PROMPT.length + cachedTokens.length;
        step = await run(session, d, [[token]], [Array(length).fill(1)], [[length - 1]], step.past);
        logits = logitsAt(step, d, 1, 0, 0);
      }

      const sequence = [...PROMPT];
      for (let i = 0; i < 20; i++) {
        const full = await lastLogits(session, d, sequence);
        assert.ok(maxAbsDiff(full, cachedLogits[i] as Float32Array) < 1e-4, `step ${i} logits`);
        sequence.push(argmax(full));
      }
      assert.deepEqual(sequence.slice(PROMPT.length), cachedTokens);
    });

    test("a left-padded batch gives each sequence the logits it gets alone", async () => {
      const long = PROMPT.slice(0, 6);
      const short = [1, 200, 33];
      const pad = 0;
      const step = await run(
        session,
        d,
        [long, [pad, pad, pad, ...short]],
        [long.map(() => 1), [0, 0, 0, 1, 1, 1]],
        // As transformers does: real tokens count from 0, pad columns get position 1.
        [range(0, 6), [1, 1, 1, 0, 1, 2]],
      );
      assert.ok(step.logits.every(Number.isFinite), "fully masked pad rows stay finite");
      const aloneLong = await lastLogits(session, d, long);
      const aloneShort = await lastLogits(session, d, short);
      assert.ok(maxAbsDiff(logitsAt(step, d, 6, 0, 5), aloneLong) < 1e-4, "prefill, long row");
      assert.ok(maxAbsDiff(logitsAt(step, d, 6, 1, 5), aloneShort) < 1e-4, "prefill, padded row");

      const nextLong = argmax(aloneLong);
      const nextShort = argmax(aloneShort);
      const decoded = await run(
        session,
        d,
        [[nextLong], [nextShort]],
        [Array(7).fill(1), [0, 0, 0, 1, 1, 1, 1]],
        [[6], [3]],
        step.past,
      );
      assert.ok(
        maxAbsDiff(
          logitsAt(decoded, d, 1, 0, 0),
          await lastLogits(session, d, [...long, nextLong]),
        ) < 1e-4,
        "decode, long row",
      );
      assert.ok(
        maxAbsDiff(
          logitsAt(decoded, d, 1, 1, 0),
          await lastLogits(session, d, [...short, nextShort]),
        ) < 1e-4,
        "decode, padded row",
      );
    });

    test("greedy output is not one token repeated", async () => {
      const tokens: number[] = [];
      let step = await run(session, d, [PROMPT], [PROMPT.map(() => 1)], [range(0, PROMPT.length)]);
      let logits = logitsAt(step, d, PROMPT.length, 0, PROMPT.length - 1);
      for (let i = 0; i < 50; i++) {
        const token = argmax(logits);
        tokens.push(token);
        const length = PROMPT.length + tokens.length;
        step = await run(session, d, [[token]], [Array(length).fill(1)], [[length - 1]], step.past);
        logits = logitsAt(step, d, 1, 0, 0);
      }
      assert.ok(new Set(tokens).size >= 8, `distinct greedy tokens: ${new Set(tokens).size}`);
    });
  });
}
