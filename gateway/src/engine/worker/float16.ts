/**
 * @module IEEE 754 half-precision to single-precision conversion for float16 logits.
 * Hand-written because Node 20 has no `Float16Array` and onnxruntime-node hands float16 tensors
 * over as raw `Uint16Array` bits; the KV cache stays in float16 and is never converted.
 */

/** Converts half-precision bits to numbers, `count` values from `offset`, into `out`. */
export function float16ToFloat32(
  bits: Uint16Array,
  offset: number,
  count: number,
  out: Float32Array = new Float32Array(count),
): Float32Array {
  for (let i = 0; i < count; i++) {
    const h = bits[offset + i] ?? 0;
    const sign = h & 0x8000 ? -1 : 1;
    const exponent = (h >> 10) & 0x1f;
    const fraction = h & 0x3ff;
    if (exponent === 0) {
      out[i] = sign * fraction * 2 ** -24;
    } else if (exponent === 0x1f) {
      out[i] = fraction === 0 ? sign * Number.POSITIVE_INFINITY : Number.NaN;
    } else {
      out[i] = sign * (1 + fraction / 1024) * 2 ** (exponent - 15);
    }
  }
  return out;
}
