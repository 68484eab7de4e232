import assert from "node:assert/strict";
import { test } from "node:test";
import { float16Array, float16BitsOf } from "@parley/model-builder";
import { decodeFloat16 } from "./float16.js";

test("every half-precision value converts back to its own bits (NaN to the quiet NaN)", () => {
  for (let bits = 0; bits < 65536; bits++) {
    const value = decodeFloat16(bits);
    const expected = Number.isNaN(value) ? 0x7e00 : bits;
    assert.equal(float16BitsOf(value), expected, `0x${bits.toString(16)}`);
  }
});

test("a value halfway between two half-precision neighbours rounds to the even one", () => {
  // Normal numbers: between 1 and 1 + 2^-10 (odd mantissa above) lies 1 + 2^-11.
  assert.equal(float16BitsOf(1 + 2 ** -11), 0x3c00);
  assert.equal(float16BitsOf(1 + 3 * 2 ** -11), 0x3c02);
  assert.equal(float16BitsOf(1 + 2 ** -11 + 2 ** -20), 0x3c01);
  // Subnormals: 2^-25 is halfway between 0 and the smallest subnormal 2^-24.
  assert.equal(float16BitsOf(2 ** -25), 0x0000);
  assert.equal(float16BitsOf(3 * 2 ** -25), 0x0002);
  assert.equal(float16BitsOf(-(2 ** -25) * 1.5), 0x8001);
  // The largest subnormal rounds up into the smallest normal number.
  assert.equal(float16BitsOf(2 ** -14 - 2 ** -26), 0x0400);
});

test("values beyond the half-precision range overflow to infinity or underflow to zero", () => {
  assert.equal(float16BitsOf(65504), 0x7bff);
  assert.equal(float16BitsOf(65520), 0x7c00); // halfway to 65536: ties to even, i.e. infinity
  assert.equal(float16BitsOf(-1e9), 0xfc00);
  assert.equal(float16BitsOf(Number.POSITIVE_INFINITY), 0x7c00);
  assert.equal(float16BitsOf(1e-30), 0x0000);
  assert.equal(float16BitsOf(-0), 0x8000);
});

const f16round = (Math as { f16round?: (value: number) => number }).f16round;

test("float16BitsOf rounds as this Node's Math.f16round does, over a million float32 values", {
  skip: f16round === undefined && `Node ${process.version} has no Math.f16round`,
}, () => {
  const round = f16round as (value: number) => number;
  const samples = new Float32Array(
    new Uint32Array(1 << 20).map((_, i) => Math.imul(i, 2654435761)).buffer,
  );
  const converted = float16Array(samples);
  for (let i = 0; i < samples.length; i++) {
    const expected = round(samples[i] as number);
    const actual = decodeFloat16(converted[i] as number);
    assert.ok(
      Number.isNaN(expected) ? Number.isNaN(actual) : Object.is(actual, expected),
      `${samples[i]}`,
    );
  }
});
