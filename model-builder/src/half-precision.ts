/**
 * @module float32 to IEEE 754 half precision, rounding to nearest even, as PyTorch's `.half()`
 * does: how the generator stores float16 weights and scales. Integer arithmetic on the float32
 * bits, so the result is the same on every Node version (Node 22 has no `Math.f16round`).
 */

const float = new Float32Array(1);
const bits = new Uint32Array(float.buffer);

/** The half-precision bits nearest to `value` (ties to even; overflow to ±Infinity). */
export function float16BitsOf(value: number): number {
  float[0] = value;
  const x = bits[0] as number;
  const sign = (x >>> 16) & 0x8000;
  const exponent = (x >>> 23) & 0xff;
  const mantissa = x & 0x7fffff;
  if (exponent === 0xff) return sign | 0x7c00 | (mantissa === 0 ? 0 : 0x200);
  const halfExponent = exponent - 127 + 15;
  if (halfExponent >= 0x1f) return sign | 0x7c00;
  if (halfExponent <= 0) {
    // Subnormal (or zero): the value in units of 2^-24, rounded. A carry into 0x400 is the
    // smallest normal number, which is the right answer.
    if (halfExponent < -10) return sign;
    const full = mantissa | 0x800000;
    const shift = 14 - halfExponent;
    return sign | roundShifted(full, shift);
  }
  // A carry out of the mantissa bumps the exponent, up to Infinity: also the right answer.
  return sign | ((halfExponent << 10) + roundShifted(mantissa, 13));
}

/** `value >> shift`, rounded to nearest, ties to even. */
function roundShifted(value: number, shift: number): number {
  const kept = value >>> shift;
  const rest = value & ((1 << shift) - 1);
  const half = 1 << (shift - 1);
  return rest > half || (rest === half && (kept & 1) === 1) ? kept + 1 : kept;
}

/** Every value of `values` as half-precision bits. */
export function float16Array(values: Float32Array): Uint16Array {
  const out = new Uint16Array(values.length);
  for (let i = 0; i < values.length; i++) out[i] = float16BitsOf(values[i] as number);
  return out;
}
