/**
 * @module The one place where float16 tensors cross into and out of onnxruntime-node. Inside the
 * engine a float16 tensor is always its raw IEEE 754 half-precision bits in a `Uint16Array`,
 * whatever Node version runs it; the KV cache stays in float16 and only logits are converted.
 *
 * Why this is needed: where `globalThis.Float16Array` exists (Node 24 and later),
 * onnxruntime-common hands float16 outputs over as `Float16Array` and turns a `Uint16Array`
 * given for a float16 tensor into a `Float16Array` view, but onnxruntime-node 1.30's binding
 * reads a `Float16Array`'s byte length as 0 and refuses it ("not enough space: expected 64,
 * got 0", microsoft/onnxruntime#32323, open). On Node 22 both directions are `Uint16Array`.
 */
import type * as ort from "onnxruntime-node";

/** The float16 data of a tensor onnxruntime gave (`Uint16Array` or `Float16Array`), as bits. */
export function float16Bits(data: ort.Tensor["data"]): Uint16Array {
  if (data instanceof Uint16Array) return data;
  if (ArrayBuffer.isView(data) && data.BYTES_PER_ELEMENT === 2) {
    return new Uint16Array(data.buffer, data.byteOffset, data.byteLength / 2);
  }
  throw new TypeError(`float16 tensor data is a ${data.constructor.name}`);
}

/**
 * A float16 input tensor that onnxruntime-node accepts on every Node version: the plain
 * `{ type, dims, data, location }` its binding reads, with the data as `Uint16Array` bits.
 * `new ort.Tensor("float16", bits)` would wrap the bits in the `Float16Array` the binding
 * refuses, and onnxruntime-common passes feeds to the binding as they are.
 */
export function float16Tensor(bits: Uint16Array, dims: readonly number[]): ort.Tensor {
  return { type: "float16", dims, data: bits, location: "cpu" } as unknown as ort.Tensor;
}

let table: Float32Array | undefined;

/**
 * Every half-precision value as float32, indexed by its bits (256 KiB, built on first use).
 * A lookup is the fastest conversion measured on Node 20, 24 and 26: 40-60 µs per 32,000
 * logits, against 60-100 µs for a native `Float16Array` copy and 1,200-2,800 µs for the
 * arithmetic per value it replaces (transformers.js converts the same way).
 */
function float16Table(): Float32Array {
  if (table === undefined) {
    table = new Float32Array(65536);
    for (let bits = 0; bits < 65536; bits++) table[bits] = decodeFloat16(bits);
  }
  return table;
}

/** Decodes one half-precision value from its bits, exactly (every float16 is a float32). */
export function decodeFloat16(bits: number): number {
  const sign = bits & 0x8000 ? -1 : 1;
  const exponent = (bits >> 10) & 0x1f;
  const fraction = bits & 0x3ff;
  if (exponent === 0) return sign * fraction * 2 ** -24;
  if (exponent === 0x1f) return fraction === 0 ? sign * Number.POSITIVE_INFINITY : Number.NaN;
  return sign * (1 + fraction / 1024) * 2 ** (exponent - 15);
}

/** Converts half-precision bits to float32, `count` values from `offset`, into `out`. */
export function float16ToFloat32(
  bits: Uint16Array,
  offset: number,
  count: number,
  out: Float32Array = new Float32Array(count),
): Float32Array {
  const values = float16Table();
  for (let i = 0; i < count; i++) {
    out[i] = values[bits[offset + i] as number] as number;
  }
  return out;
}

/**
 * One row of float16 logits as the graph gave them, converted to float32 only when a sampler
 * needs their values: greedy decoding needs only the largest, and on a small model converting
 * 32,000 logits (and the new array's garbage) cost as much per token as the step itself.
 */
export interface Float16Logits {
  readonly bits: Uint16Array;
  readonly offset: number;
  readonly length: number;
}

/** A row of logits as a decoder session hands it over: float32, or float16 as the graph gave them. */
export type LogitsRow = Float32Array | Float16Logits;

/**
 * The index of the largest of `row`'s values, exactly as `argmax` of its float32 conversion picks
 * it: ties to the lowest index, NaN never chosen, -0 equal to +0, index 0 when nothing beats
 * -Infinity. It compares keys instead of values: a half's bits with the sign bit flipped when
 * positive, and every bit flipped when negative, order as the values do.
 */
export function float16Argmax(row: Float16Logits): number {
  const { bits, offset, length } = row;
  let best = 0;
  let bestKey = 0x03ff; // -Infinity's key: only larger values win, as in the float32 argmax
  for (let i = 0; i < length; i++) {
    let half = bits[offset + i] as number;
    if (half === 0x8000) half = 0;
    if ((half & 0x7fff) > 0x7c00) continue; // NaN
    // Branch-free: with random signs a branch here mispredicts and costs four times the loop.
    const key = half ^ (((half >> 15) * 0x7fff) | 0x8000);
    if (key > bestKey) {
      bestKey = key;
      best = i;
    }
  }
  return best;
}
