import assert from "node:assert/strict";
import { test } from "node:test";
import { BinaryWriter, WireType } from "@bufbuild/protobuf/wire";
import * as ort from "onnxruntime-node";
import { float16Argmax, float16Bits, float16Tensor, float16ToFloat32 } from "./float16.js";
import { argmax } from "./sampler.js";

/** Every half-precision bit pattern, 0x0000 to 0xffff. */
const everyBits = Uint16Array.from({ length: 65536 }, (_, bits) => bits);

/** The value of half-precision `bits` by the IEEE 754 definition, written independently. */
function definition(bits: number): number {
  const negative = bits >= 0x8000;
  const exponent = Math.floor(bits / 1024) % 32;
  const fraction = bits % 1024;
  const magnitude =
    exponent === 31
      ? fraction === 0
        ? Number.POSITIVE_INFINITY
        : Number.NaN
      : exponent === 0
        ? (fraction / 1024) * 2 ** -14
        : (1 + fraction / 1024) * 2 ** (exponent - 15);
  return negative ? -magnitude : magnitude;
}

function float32Bits(value: number): number {
  return new Uint32Array(new Float32Array([value]).buffer)[0] as number;
}

test("float16ToFloat32 is bit-exact over all 65,536 inputs (NaN stays NaN)", () => {
  const converted = float16ToFloat32(everyBits, 0, everyBits.length);
  let nans = 0;
  for (let bits = 0; bits < 65536; bits++) {
    const expected = definition(bits);
    const actual = converted[bits] as number;
    if (Number.isNaN(expected)) {
      nans++;
      assert.ok(Number.isNaN(actual), `0x${bits.toString(16)}`);
    } else {
      assert.equal(float32Bits(actual), float32Bits(expected), `0x${bits.toString(16)}`);
    }
  }
  assert.equal(nans, 2046);
});

const NativeFloat16Array = (globalThis as { Float16Array?: Float32ArrayConstructor }).Float16Array;

test("float16ToFloat32 agrees with this Node's native Float16Array over all inputs", {
  skip: NativeFloat16Array === undefined && `Node ${process.version} has no Float16Array`,
}, () => {
  const Native = NativeFloat16Array as Float32ArrayConstructor;
  const native = new Float32Array(new Native(everyBits.buffer));
  const converted = float16ToFloat32(everyBits, 0, everyBits.length);
  for (let bits = 0; bits < 65536; bits++) {
    const [a, b] = [converted[bits] as number, native[bits] as number];
    assert.ok(Number.isNaN(a) ? Number.isNaN(b) : float32Bits(a) === float32Bits(b));
  }
});

test("float16ToFloat32 converts a window at an offset into a given array", () => {
  const out = new Float32Array(3);
  assert.equal(float16ToFloat32(Uint16Array.of(0, 0x3c00, 0xc000, 0x7c00, 1), 1, 3, out), out);
  assert.deepEqual([...out], [1, -2, Number.POSITIVE_INFINITY]);
});

test("float16Bits reads both representations onnxruntime may give as the same bits", {
  skip: NativeFloat16Array === undefined && `Node ${process.version} has no Float16Array`,
}, () => {
  const bits = Uint16Array.of(0x3c00, 0xc000, 0x0001);
  assert.equal(float16Bits(bits), bits);
  const native = new (NativeFloat16Array as Float32ArrayConstructor)(bits.buffer, 2, 2);
  assert.deepEqual([...float16Bits(native)], [0xc000, 0x0001]);
  assert.throws(() => float16Bits(new Float32Array(2)), TypeError);
});

/** ONNX `TensorProto.DataType.FLOAT16`. */
const FLOAT16 = 10;

/**
 * The smallest float16 round trip: a graph y = x + x over a float16 [2] tensor, as `ModelProto`
 * bytes (field numbers from onnx/onnx.proto), so the test needs no model file.
 */
function doublingGraph(): Uint8Array {
  const valueInfo = (w: BinaryWriter, name: string) => {
    w.tag(1, WireType.LengthDelimited).string(name); // ValueInfoProto.name
    w.tag(2, WireType.LengthDelimited).fork(); // .type: TypeProto
    w.tag(1, WireType.LengthDelimited).fork(); // .tensor_type
    w.tag(1, WireType.Varint).int32(FLOAT16); // .elem_type
    w.tag(2, WireType.LengthDelimited).fork(); // .shape
    w.tag(1, WireType.LengthDelimited).fork().tag(1, WireType.Varint).int64(2).join(); // dim 2
    w.join().join().join();
  };
  const w = new BinaryWriter();
  w.tag(1, WireType.Varint).int64(8); // ModelProto.ir_version
  w.tag(7, WireType.LengthDelimited).fork(); // .graph
  w.tag(1, WireType.LengthDelimited).fork(); // GraphProto.node
  w.tag(1, WireType.LengthDelimited).string("x").tag(1, WireType.LengthDelimited).string("x");
  w.tag(2, WireType.LengthDelimited).string("y").tag(4, WireType.LengthDelimited).string("Add");
  w.join();
  w.tag(2, WireType.LengthDelimited).string("doubling"); // GraphProto.name
  w.tag(11, WireType.LengthDelimited).fork(); // .input
  valueInfo(w, "x");
  w.join();
  w.tag(12, WireType.LengthDelimited).fork(); // .output
  valueInfo(w, "y");
  w.join();
  w.join();
  w.tag(8, WireType.LengthDelimited).fork().tag(2, WireType.Varint).int64(17).join(); // opset 17
  return w.finish();
}

test("a float16 tensor goes into onnxruntime and comes back as the same bits on this Node", async () => {
  const session = await ort.InferenceSession.create(doublingGraph());
  try {
    // 1.5 and -0.25; doubled: 3 and -0.5.
    const out = await session.run({ x: float16Tensor(Uint16Array.of(0x3e00, 0xb400), [2]) });
    const y = out.y as ort.Tensor;
    assert.equal(y.type, "float16");
    assert.deepEqual([...float16Bits(y.data)], [0x4200, 0xb800]);
    // The output fed back in, as the KV cache is on every decode step.
    const again = await session.run({ x: float16Tensor(float16Bits(y.data), [2]) });
    assert.deepEqual([...float16Bits((again.y as ort.Tensor).data)], [0x4600, 0xbc00]);
  } finally {
    await session.release();
  }
});

test("float16Argmax picks what argmax of the float32 conversion picks, on rows of every kind", () => {
  // Zeros of both signs, infinities, NaNs of both signs, the smallest subnormals, 1 and -1:
  // where ties, equal zeros and skipped NaNs decide the answer.
  const special = [0x0000, 0x8000, 0x7c00, 0xfc00, 0x7e00, 0xfe01, 0x0001, 0x8001, 0x3c00, 0xbc00];
  let seed = 7;
  const random = () => {
    seed = (seed * 1103515245 + 12345) % 2 ** 31;
    return seed / 2 ** 31;
  };
  for (let r = 0; r < 20_000; r++) {
    const length = 1 + (r % 40);
    const bits = new Uint16Array(length + 3);
    for (let i = 0; i < bits.length; i++) {
      bits[i] =
        random() < 0.4
          ? (special[Math.floor(random() * special.length)] as number)
          : Math.floor(random() * 65536);
    }
    const row = { bits, offset: 3, length };
    assert.equal(
      float16Argmax(row),
      argmax(float16ToFloat32(bits, 3, length)),
      `row ${Array.from(bits.subarray(3), (b) => b.toString(16))}`,
    );
  }
  // Every value at once, in order and reversed: the largest finite half is 0x7bff's, +Infinity
  // beats it, and among equals the lowest index wins.
  assert.equal(float16Argmax({ bits: everyBits, offset: 0, length: 65536 }), 0x7c00);
  assert.equal(float16Argmax({ bits: Uint16Array.of(0x8000, 0x0000), offset: 0, length: 2 }), 0);
  assert.equal(float16Argmax({ bits: Uint16Array.of(0xfc00, 0x7e00), offset: 0, length: 2 }), 0);
});
