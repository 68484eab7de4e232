/**
 * @module 4-bit block quantization of a MatMul weight into the initializers of onnxruntime's
 * `com.microsoft.MatMulNBits` (bits 4), the format of onnx-community's `model_q4f16.onnx`:
 * for each output column n and each block of `blockSize` rows of K, one scale and 4-bit codes
 * with `weight ≈ (code - zeroPoint) × scale`.
 *
 * - `B`: uint8 [N, kBlocks, blockSize / 2], two codes per byte, the first in the low nibble;
 *   a last block that runs past K is padded with zeros.
 * - `scales`: [N, kBlocks], the activations' type (float16 here).
 * - `zero_points` (optional): uint8 [N, ceil(kBlocks / 2)], packed like B. Without it the
 *   zero point is 8 and blocks are symmetric, as onnx-community's exports are.
 */
import { float16BitsOf } from "./half-precision.js";

/** How a weight is quantized. */
export interface Q4Options {
  /** Rows of K per scale; a power of two of at least 16. @example 32 */
  readonly blockSize: number;
  /** Asymmetric blocks with their own zero points; default symmetric around 8. */
  readonly zeroPoints: boolean;
}

/** The initializers' contents, dims in MatMulNBits order. */
export interface Q4Weight {
  readonly kBlocks: number;
  readonly b: Uint8Array;
  /** float16 bits. */
  readonly scales: Uint16Array;
  readonly zeroPoints: Uint8Array | undefined;
}

const SYMMETRIC_ZERO_POINT = 8;
const MAX_CODE = 15;

/** Quantizes `weight`, row-major [K, N] (the `x @ W` layout), for MatMulNBits. */
export function quantizeMatMulNBits(
  weight: Float32Array,
  k: number,
  n: number,
  { blockSize, zeroPoints }: Q4Options,
): Q4Weight {
  if (blockSize < 16 || (blockSize & (blockSize - 1)) !== 0) {
    throw new RangeError(`blockSize must be a power of two of at least 16, got ${blockSize}`);
  }
  if (weight.length !== k * n) throw new RangeError(`weight has ${weight.length} values, not K×N`);
  const kBlocks = Math.ceil(k / blockSize);
  const blobSize = blockSize / 2;
  const b = new Uint8Array(n * kBlocks * blobSize);
  const scales = new Uint16Array(n * kBlocks);
  const zeroPointBytes = Math.ceil(kBlocks / 2);
  const points = zeroPoints ? new Uint8Array(n * zeroPointBytes) : undefined;
  const block = new Float32Array(blockSize);
  for (let column = 0; column < n; column++) {
    for (let kb = 0; kb < kBlocks; kb++) {
      block.fill(0);
      const start = kb * blockSize;
      for (let i = 0; i < blockSize && start + i < k; i++) {
        block[i] = weight[(start + i) * n + column] as number;
      }
      const { scale, zeroPoint } = zeroPoints ? asymmetric(block) : symmetric(block);
      scales[column * kBlocks + kb] = float16BitsOf(scale);
      if (points !== undefined) {
        const at = column * zeroPointBytes + (kb >> 1);
        points[at] = (points[at] as number) | (zeroPoint << ((kb & 1) * 4));
      }
      const blob = (column * kBlocks + kb) * blobSize;
      for (let i = 0; i < blockSize; i++) {
        const value = block[i] as number;
        const code = scale === 0 ? zeroPoint : Math.round(value / scale) + zeroPoint;
        const clamped = Math.min(MAX_CODE, Math.max(0, code));
        b[blob + (i >> 1)] = (b[blob + (i >> 1)] as number) | (clamped << ((i & 1) * 4));
      }
    }
  }
  return { kBlocks, b, scales, zeroPoints: points };
}

/** Codes 1-15 around 8: the largest magnitude maps to ±7. */
function symmetric(block: Float32Array): { scale: number; zeroPoint: number } {
  let max = 0;
  for (const value of block) max = Math.max(max, Math.abs(value));
  return { scale: max / 7, zeroPoint: SYMMETRIC_ZERO_POINT };
}

/** Codes 0-15 over [min, max] (widened to hold 0, so zero stays exact). */
function asymmetric(block: Float32Array): { scale: number; zeroPoint: number } {
  let min = 0;
  let max = 0;
  for (const value of block) {
    min = Math.min(min, value);
    max = Math.max(max, value);
  }
  const scale = (max - min) / MAX_CODE;
  const zeroPoint = scale === 0 ? 0 : Math.min(MAX_CODE, Math.max(0, Math.round(-min / scale)));
  return { scale, zeroPoint };
}
