/**
 * @module The 4-bit weights against their definition and against onnxruntime's own
 * `MatMulNBits`: a one-node graph written by the generator must compute x @ dequantize(W) with
 * the dequantization read straight from the contrib operator's specification.
 */
import assert from "node:assert/strict";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";
import {
  createGraphBuilder,
  DataType,
  float16Array,
  type Q4Weight,
  quantizeMatMulNBits,
  weightChunks,
  writeOnnxModel,
} from "@parley/model-builder";
import * as ort from "onnxruntime-node";
import { decodeFloat16, float16Bits, float16Tensor } from "./float16.js";

/** K spans three blocks of 32, the last one half full: an odd count and a padded block. */
const K = 80;
const N = 24;
const M = 3;
const BLOCK = 32;

/** W[k][n] as the specification defines it: (code - zero point) × scale, per block of K. */
function dequantize(q: Q4Weight, k: number, n: number, zeroPoints: boolean): Float64Array {
  const out = new Float64Array(k * n);
  const blob = BLOCK / 2;
  for (let column = 0; column < n; column++) {
    for (let row = 0; row < k; row++) {
      const kb = Math.floor(row / BLOCK);
      const i = row % BLOCK;
      const byte = q.b[(column * q.kBlocks + kb) * blob + Math.floor(i / 2)] as number;
      const code = i % 2 === 0 ? byte & 0x0f : byte >> 4;
      const pointByte = q.zeroPoints?.[column * Math.ceil(q.kBlocks / 2) + Math.floor(kb / 2)] ?? 0;
      const zeroPoint = zeroPoints ? (kb % 2 === 0 ? pointByte & 0x0f : pointByte >> 4) : 8;
      const scale = decodeFloat16(q.scales[column * q.kBlocks + kb] as number);
      out[row * n + column] = (code - zeroPoint) * scale;
    }
  }
  return out;
}

function drawn(name: string, seed: number): Float32Array {
  const spec = {
    name,
    dims: [K, N],
    init: { kind: "uniform", bound: 1 / Math.sqrt(K) },
    storage: { kind: "float", dataType: DataType.FLOAT },
  } as const;
  return Float32Array.from([...weightChunks(spec, seed)].flatMap((chunk) => [...chunk]));
}

for (const zeroPoints of [false, true]) {
  const kind = zeroPoints ? "asymmetric blocks with zero points" : "symmetric blocks";
  test(`quantized weights stay within half a step of the drawn ones (${kind})`, () => {
    const weight = drawn("w", 5);
    const q = quantizeMatMulNBits(weight, K, N, { blockSize: BLOCK, zeroPoints });
    assert.equal(q.kBlocks, 3);
    assert.equal(q.b.length, N * 3 * 16);
    assert.equal(q.zeroPoints?.length, zeroPoints ? N * 2 : undefined);
    const restored = dequantize(q, K, N, zeroPoints);
    for (let row = 0; row < K; row++) {
      for (let column = 0; column < N; column++) {
        const step = decodeFloat16(q.scales[column * 3 + Math.floor(row / BLOCK)] as number);
        const error = Math.abs(
          (restored[row * N + column] as number) - (weight[row * N + column] as number),
        );
        // Half a step, plus the scale's own float16 rounding over up to 15 steps.
        assert.ok(error <= step * (0.5 + 15 * 2 ** -11), `W[${row}][${column}] off by ${error}`);
      }
    }
  });

  test(`onnxruntime's MatMulNBits computes x @ dequantize(W) of the written weight (${kind})`, async () => {
    const dir = await mkdtemp(join(tmpdir(), "parley-nbits-"));
    try {
      const g = createGraphBuilder();
      const x = g.input("x", DataType.FLOAT16, [M, K]);
      g.output("y", DataType.FLOAT16, [M, N]);
      const init = { kind: "uniform", bound: 1 / Math.sqrt(K) } as const;
      const names = g.q4Weight("w", [K, N], init, { blockSize: BLOCK, zeroPoints });
      const inputs = [x, names.b, names.scales, ...(zeroPoints ? [names.zeroPoints] : [])];
      g.contribNode("MatMulNBits", inputs, "y", { K, N, bits: 4, block_size: BLOCK });
      const path = join(dir, "model.onnx");
      await writeOnnxModel(path, g.build("nbits"), {
        seed: 5,
        externalData: false,
        docString: "",
        producerVersion: "test",
      });

      const xs = float16Array(Float32Array.from({ length: M * K }, (_, i) => Math.sin(i * 0.7)));
      const session = await ort.InferenceSession.create(path, { intraOpNumThreads: 1 });
      const y = (await session.run({ x: float16Tensor(xs, [M, K]) })).y as ort.Tensor;
      await session.release();
      assert.deepEqual(y.dims, [M, N]);
      const actual = float16Bits(y.data);

      const weight = dequantize(
        quantizeMatMulNBits(drawn("w", 5), K, N, { blockSize: BLOCK, zeroPoints }),
        K,
        N,
        zeroPoints,
      );
      for (let m = 0; m < M; m++) {
        for (let n = 0; n < N; n++) {
          let expected = 0;
          for (let k = 0; k < K; k++) {
            expected += decodeFloat16(xs[m * K + k] as number) * (weight[k * N + n] as number);
          }
          const got = decodeFloat16(actual[m * N + n] as number);
          assert.ok(
            Math.abs(got - expected) <= 2e-3 * Math.max(1, Math.abs(expected)),
            `y[${m}][${n}]: ${got} vs ${expected}`,
          );
        }
      }
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
}
