/**
 * @module A small builder for ONNX graphs, so the decoder graph reads as a list of operator
 * calls. Constants are kept inline; weights are only described (shape and how to draw them),
 * because the writer generates their bytes one tensor at a time, straight to the output file.
 */
import {
  DataType,
  type OnnxAttribute,
  type OnnxNode,
  type OnnxTensor,
  type OnnxValueInfo,
} from "./encode-onnx-model.js";
import type { Q4Options } from "./matmul-nbits.js";

/**
 * How a weight's values are made: drawn uniform in [-bound, bound), all ones (norm scales), all
 * zeros, or given (row-major, as derived from the corpus for the built-in model).
 */
export type WeightInit =
  | { readonly kind: "uniform"; readonly bound: number }
  | { readonly kind: "ones" }
  | { readonly kind: "zeros" }
  | { readonly kind: "values"; readonly values: Float32Array };

/**
 * How a weight's values (always drawn as float32) are stored: as float32 or float16, or
 * 4-bit quantized for `MatMulNBits` (several initializers, see {@link q4TensorNames}).
 */
export type WeightStorage =
  | { readonly kind: "float"; readonly dataType: typeof DataType.FLOAT | typeof DataType.FLOAT16 }
  | { readonly kind: "q4"; readonly options: Q4Options };

/** A weight whose values the writer generates. */
export interface WeightSpec {
  readonly name: string;
  readonly dims: readonly number[];
  readonly init: WeightInit;
  readonly storage: WeightStorage;
}

/** The initializers of a 4-bit weight, named as onnxruntime's quantizer names them. */
export interface Q4TensorNames {
  readonly b: string;
  readonly scales: string;
  readonly zeroPoints: string;
}

/** The initializer names of the 4-bit weight `name`. */
export function q4TensorNames(name: string): Q4TensorNames {
  return { b: `${name}_Q4`, scales: `${name}_scales`, zeroPoints: `${name}_zero_points` };
}

/** onnxruntime's contrib operator domain. */
export const MS_DOMAIN = "com.microsoft";

/** A finished graph: nodes and IO, inline constants, and weights still to generate. */
export interface GraphSpec {
  readonly name: string;
  readonly nodes: readonly OnnxNode[];
  readonly constants: readonly OnnxTensor[];
  readonly weights: readonly WeightSpec[];
  readonly inputs: readonly OnnxValueInfo[];
  readonly outputs: readonly OnnxValueInfo[];
}

/** Attributes by name: a number is an INT attribute, an array an INTS attribute. */
export type Attributes = Readonly<Record<string, number | readonly number[]>>;

export interface GraphBuilder {
  /** Declares a graph input and returns its name. */
  input(name: string, elemType: DataType, shape: readonly (number | string)[]): string;
  /** Declares a graph output; a node must produce a value of that name. */
  output(name: string, elemType: DataType, shape: readonly (number | string)[]): void;
  /** Adds a single-output node and returns the output's name. */
  node(op: string, inputs: readonly string[], output: string, attrs?: Attributes): string;
  /** Adds a single-output node of onnxruntime's `com.microsoft` domain. */
  contribNode(op: string, inputs: readonly string[], output: string, attrs?: Attributes): string;
  /** Adds a node with several outputs and returns their names. */
  nodeN<const T extends readonly string[]>(
    op: string,
    inputs: readonly string[],
    outputs: T,
    attrs?: Attributes,
  ): T;
  /** An int64 constant; a number is a scalar, an array a 1-D tensor. Shared by value. */
  int64(value: number | readonly number[]): string;
  /** A float32 constant; a number is a scalar. Shared by value when scalar. */
  float32(value: number): string;
  /** A named float32 constant tensor computed by the caller. */
  float32Tensor(name: string, dims: readonly number[], data: Float32Array): string;
  /** A weight drawn by the writer, stored as `dataType` (default float32). */
  weight(
    name: string,
    dims: readonly number[],
    init: WeightInit,
    dataType?: typeof DataType.FLOAT | typeof DataType.FLOAT16,
  ): string;
  /** A [K, N] weight drawn by the writer and stored 4-bit quantized for `MatMulNBits`. */
  q4Weight(
    name: string,
    dims: readonly [number, number],
    init: WeightInit,
    options: Q4Options,
  ): Q4TensorNames;
  build(name: string): GraphSpec;
}

function attributeList(attrs: Attributes): OnnxAttribute[] {
  return Object.entries(attrs).map(([name, value]) =>
    typeof value === "number"
      ? { name, kind: "int", value }
      : { name, kind: "ints", value: [...value] },
  );
}

function bytesOf(view: Float32Array | BigInt64Array): Uint8Array {
  return new Uint8Array(view.buffer, view.byteOffset, view.byteLength);
}

/** A fresh, empty graph builder. */
export function createGraphBuilder(): GraphBuilder {
  const nodes: OnnxNode[] = [];
  const constants = new Map<string, OnnxTensor>();
  const weights: WeightSpec[] = [];
  const inputs: OnnxValueInfo[] = [];
  const outputs: OnnxValueInfo[] = [];

  const nodeN = <const T extends readonly string[]>(
    op: string,
    nodeInputs: readonly string[],
    nodeOutputs: T,
    attrs: Attributes = {},
    domain?: string,
  ): T => {
    nodes.push({
      name: `${nodeOutputs[0]}/${op}`,
      opType: op,
      inputs: [...nodeInputs],
      outputs: [...nodeOutputs],
      attributes: attributeList(attrs),
      ...(domain === undefined ? {} : { domain }),
    });
    return nodeOutputs;
  };

  return {
    input(name, elemType, shape) {
      inputs.push({ name, elemType, shape: [...shape] });
      return name;
    },
    output(name, elemType, shape) {
      outputs.push({ name, elemType, shape: [...shape] });
    },
    node(op, nodeInputs, output, attrs) {
      nodeN(op, nodeInputs, [output], attrs);
      return output;
    },
    contribNode(op, nodeInputs, output, attrs) {
      nodeN(op, nodeInputs, [output], attrs, MS_DOMAIN);
      return output;
    },
    nodeN: (op, nodeInputs, nodeOutputs, attrs) => nodeN(op, nodeInputs, nodeOutputs, attrs),
    int64(value) {
      const name = `const_i64_${JSON.stringify(value)}`;
      if (!constants.has(name)) {
        const values = typeof value === "number" ? [value] : value;
        constants.set(name, {
          name,
          dataType: DataType.INT64,
          dims: typeof value === "number" ? [] : [values.length],
          raw: bytesOf(BigInt64Array.from(values, (v) => BigInt(v))),
        });
      }
      return name;
    },
    float32(value) {
      const name = `const_f32_${value}`;
      if (!constants.has(name)) {
        constants.set(name, {
          name,
          dataType: DataType.FLOAT,
          dims: [],
          raw: bytesOf(Float32Array.of(value)),
        });
      }
      return name;
    },
    float32Tensor(name, dims, data) {
      constants.set(name, { name, dataType: DataType.FLOAT, dims: [...dims], raw: bytesOf(data) });
      return name;
    },
    weight(name, dims, init, dataType = DataType.FLOAT) {
      weights.push({ name, dims: [...dims], init, storage: { kind: "float", dataType } });
      return name;
    },
    q4Weight(name, dims, init, options) {
      weights.push({ name, dims: [...dims], init, storage: { kind: "q4", options } });
      return q4TensorNames(name);
    },
    build(name) {
      return { name, nodes, constants: [...constants.values()], weights, inputs, outputs };
    },
  };
}
