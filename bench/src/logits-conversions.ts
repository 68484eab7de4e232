/**
 * @module The float16 logits conversions the fp16 scenario compares in the ORT loop: the
 * engine's own (a 65,536-entry table, `engine/worker/float16.ts`) and the one it replaced in
 * 03efe4a, kept here as the "before" of that change: arithmetic per value, `2 ** n` and all.
 */
import { float16ToFloat32 } from "@parley/gateway/float16";

/** Converts `count` half-precision values from `offset` of `bits` to float32. */
export type LogitsConversion = (bits: Uint16Array, offset: number, count: number) => Float32Array;

/** The engine's conversion before 03efe4a, as it was (Node 20's engine, before the table). */
function perValueArithmetic(bits: Uint16Array, offset: number, count: number): Float32Array {
  const out = new Float32Array(count);
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

/** The conversions by name, as the scenario asks the ORT loop for them. */
export const logitsConversions = {
  table: (bits, offset, count) => float16ToFloat32(bits, offset, count),
  "per-value arithmetic": perValueArithmetic,
} as const satisfies Record<string, LogitsConversion>;

export type LogitsConversionName = keyof typeof logitsConversions;
