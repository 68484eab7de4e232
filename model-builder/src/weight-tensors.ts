/**
 * @module A weight's initializers and their bytes, in its storage: float32 and float16 in
 * chunks (so a big tensor streams to the data file), a 4-bit weight as its `MatMulNBits`
 * initializers, quantized from the whole drawn tensor. The values are drawn the same way in
 * every storage, so an fp16 or q4f16 model is its fp32 twin rounded.
 */
import { DataType } from "./encode-onnx-model.js";
import { q4TensorNames, type WeightSpec } from "./graph-builder.js";
import { float16Array } from "./half-precision.js";
import { quantizeMatMulNBits } from "./matmul-nbits.js";
import { elementCount, weightChunks } from "./seeded-weights.js";

/** One initializer: its header and its little-endian bytes, chunk by chunk. */
export interface WeightTensor {
  readonly name: string;
  readonly dataType: DataType;
  readonly dims: readonly number[];
  readonly byteLength: number;
  readonly chunks: Iterable<Uint8Array>;
}

function asBytes(view: Float32Array | Uint16Array | Uint8Array): Uint8Array {
  return new Uint8Array(view.buffer, view.byteOffset, view.byteLength);
}

function* mapChunks(
  weight: WeightSpec,
  seed: number,
  convert: (chunk: Float32Array) => Float32Array | Uint16Array,
): Generator<Uint8Array> {
  for (const chunk of weightChunks(weight, seed)) yield asBytes(convert(chunk));
}

function drawWhole(weight: WeightSpec, seed: number): Float32Array {
  const values = new Float32Array(elementCount(weight.dims));
  let offset = 0;
  for (const chunk of weightChunks(weight, seed)) {
    values.set(chunk, offset);
    offset += chunk.length;
  }
  return values;
}

/** The initializers `weight` is stored as, drawn from `seed`. */
export function weightTensors(weight: WeightSpec, seed: number): WeightTensor[] {
  const { name, dims, storage } = weight;
  const count = elementCount(dims);
  if (storage.kind === "float") {
    const half = storage.dataType === DataType.FLOAT16;
    return [
      {
        name,
        dataType: storage.dataType,
        dims,
        byteLength: count * (half ? 2 : 4),
        chunks: {
          [Symbol.iterator]: () => mapChunks(weight, seed, half ? float16Array : (c) => c),
        },
      },
    ];
  }
  const [k, n] = dims as [number, number];
  const q = quantizeMatMulNBits(drawWhole(weight, seed), k, n, storage.options);
  const names = q4TensorNames(name);
  const tensor = (
    tensorName: string,
    dataType: DataType,
    tensorDims: readonly number[],
    data: Uint8Array | Uint16Array,
  ): WeightTensor => ({
    name: tensorName,
    dataType,
    dims: tensorDims,
    byteLength: data.byteLength,
    chunks: [asBytes(data)],
  });
  const tensors = [
    tensor(names.b, DataType.UINT8, [n, q.kBlocks, storage.options.blockSize / 2], q.b),
    tensor(names.scales, DataType.FLOAT16, [n, q.kBlocks], q.scales),
  ];
  if (q.zeroPoints !== undefined) {
    const dimsOfPoints = [n, q.zeroPoints.length / n];
    tensors.push(tensor(names.zeroPoints, DataType.UINT8, dimsOfPoints, q.zeroPoints));
  }
  return tensors;
}
