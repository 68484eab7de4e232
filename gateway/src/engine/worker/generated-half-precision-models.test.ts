/**
 * @module Generated fp16 and q4f16 models against their fp32 twin (same seed, same draws): the
 * graph's IO types and operators, and logits that follow the fp32 model's within what float16
 * and 4-bit weights allow.
 */
import assert from "node:assert/strict";
import { mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import {
  buildDecoderGraph,
  type DecoderModelOptions,
  resolveDecoderModelOptions,
  writeDecoderModel,
} from "@parley/model-builder";
import * as ort from "onnxruntime-node";
import { randomTinyModel } from "../../testing/model-fixtures.js";
import { float16Bits, float16Tensor, float16ToFloat32 } from "./float16.js";

const PROMPT = [1, 70, 80, 90, 100, 110, 120, 130];

/** Logits of every prompt position, as float32, from an empty cache. */
async function prefill(dir: string): Promise<{ logits: Float32Array; types: Set<string> }> {
  const session = await ort.InferenceSession.create(join(dir, "model.onnx"), {
    intraOpNumThreads: 1,
  });
  const n = PROMPT.length;
  const feeds: Record<string, ort.Tensor> = {
    input_ids: new ort.Tensor("int64", BigInt64Array.from(PROMPT, BigInt), [1, n]),
    attention_mask: new ort.Tensor("int64", new BigInt64Array(n).fill(1n), [1, n]),
    position_ids: new ort.Tensor(
      "int64",
      BigInt64Array.from(PROMPT, (_, i) => BigInt(i)),
      [1, n],
    ),
  };
  const types = new Set<string>();
  for (const meta of [...session.inputMetadata, ...session.outputMetadata]) {
    if (!meta.isTensor || !/^(past_key_values|present|logits)/.test(meta.name)) continue;
    types.add(meta.type);
    if (meta.name.startsWith("past_key_values.")) {
      feeds[meta.name] =
        meta.type === "float16"
          ? float16Tensor(new Uint16Array(0), [1, 2, 0, 16])
          : new ort.Tensor("float32", new Float32Array(0), [1, 2, 0, 16]);
    }
  }
  const logits = (await session.run(feeds)).logits as ort.Tensor;
  await session.release();
  const data =
    logits.type === "float16"
      ? float16ToFloat32(
          float16Bits(logits.data),
          0,
          logits.dims.reduce((a, b) => a * b, 1),
        )
      : (logits.data as Float32Array);
  return { logits: data, types };
}

function maxDifference(a: Float32Array, b: Float32Array): number {
  let max = 0;
  for (let i = 0; i < a.length; i++)
    max = Math.max(max, Math.abs((a[i] as number) - (b[i] as number)));
  return max;
}

function correlation(a: Float32Array, b: Float32Array): number {
  const mean = (x: Float32Array) => x.reduce((s, v) => s + v, 0) / x.length;
  const [ma, mb] = [mean(a), mean(b)];
  let [ab, aa, bb] = [0, 0, 0];
  for (let i = 0; i < a.length; i++) {
    const [da, db] = [(a[i] as number) - ma, (b[i] as number) - mb];
    ab += da * db;
    aa += da * da;
    bb += db * db;
  }
  return ab / Math.sqrt(aa * bb);
}

describe("half-precision generated models", () => {
  let root: string;
  let fp32: Float32Array;
  const write = async (name: string, options: DecoderModelOptions) => {
    const dir = join(root, name);
    await writeDecoderModel(dir, { ...randomTinyModel, ...options });
    return dir;
  };
  before(async () => {
    root = await mkdtemp(join(tmpdir(), "parley-half-"));
    const twin = await prefill(await write("fp32", {}));
    assert.deepEqual([...twin.types], ["float32"]);
    fp32 = twin.logits;
  });
  after(async () => {
    await rm(root, { recursive: true, force: true });
  });

  test("fp16: float16 cache and logits, logits within 0.005 of the fp32 twin's", async () => {
    const dir = await write("fp16", { precision: "fp16" });
    const { logits, types } = await prefill(dir);
    assert.deepEqual([...types], ["float16"]);
    assert.ok(maxDifference(logits, fp32) < 0.005, `max difference ${maxDifference(logits, fp32)}`);
    const config = JSON.parse(await readFile(join(dir, "config.json"), "utf8"));
    assert.equal(config.torch_dtype, "float16");
  });

  for (const zeroPoints of [false, true]) {
    test(`q4f16${zeroPoints ? " with zero points" : ""}: every weight MatMul is a MatMulNBits, logits follow the fp32 twin's`, async () => {
      const options = { precision: "q4f16", zeroPoints } as const;
      const graph = buildDecoderGraph(
        resolveDecoderModelOptions({ ...randomTinyModel, ...options }),
      );
      const nbits = graph.nodes.filter((node) => node.opType === "MatMulNBits");
      assert.equal(nbits.length, randomTinyModel.layers * 7 + 1); // q k v o gate up down, lm_head
      for (const node of nbits) {
        assert.equal(node.domain, "com.microsoft");
        assert.equal(node.inputs.length, zeroPoints ? 4 : 3);
      }
      const weights = new Set(graph.weights.map((w) => w.name));
      const plain = graph.nodes.filter(
        (n) => n.opType === "MatMul" && n.inputs.some((i) => weights.has(i)),
      );
      assert.deepEqual(plain, []);

      const { logits, types } = await prefill(await write(`q4f16-${zeroPoints}`, options));
      assert.deepEqual([...types], ["float16"]);
      const r = correlation(logits, fp32);
      assert.ok(r > 0.98 && r < 0.9995, `correlation with the fp32 logits ${r}`);
    });
  }

  test("zeroPoints is refused on models that are not q4f16, and unknown precisions", () => {
    assert.throws(() => resolveDecoderModelOptions({ zeroPoints: true }), /q4f16 models only/);
    assert.throws(
      () => resolveDecoderModelOptions({ precision: "int8" as "fp16" }),
      /precision must be one of fp32, fp16, q4f16/,
    );
  });
});
