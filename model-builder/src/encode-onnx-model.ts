/**
 * @module Encodes an ONNX `ModelProto` to bytes. Hand-written on `BinaryWriter` because npm has
 * no well-kept ONNX builder (the `onnx-proto` and protobufjs-based packages are unmaintained
 * and pull in a second protobuf runtime), while the subset a decoder graph needs is small: the
 * messages and field numbers below, copied from onnx/onnx.proto (IR version 8). Operators of
 * onnxruntime's contrib domain (`com.microsoft`, e.g. `MatMulNBits`) are nodes with a domain
 * and an opset import of their own.
 */
import { BinaryWriter, WireType } from "@bufbuild/protobuf/wire";

/** `TensorProto.DataType` values this generator writes. */
export const DataType = { FLOAT: 1, UINT8: 2, INT64: 7, BOOL: 9, FLOAT16: 10 } as const;
export type DataType = (typeof DataType)[keyof typeof DataType];

/** A node attribute; decoder graphs need only integers and integer lists. */
export type OnnxAttribute =
  | { readonly name: string; readonly kind: "int"; readonly value: number }
  | { readonly name: string; readonly kind: "ints"; readonly value: readonly number[] };

/** One operator call. */
export interface OnnxNode {
  readonly name: string;
  readonly opType: string;
  /** The operator's domain; absent for the default ONNX domain. */
  readonly domain?: string;
  readonly inputs: readonly string[];
  readonly outputs: readonly string[];
  readonly attributes: readonly OnnxAttribute[];
}

/** A graph input or output: element type and shape, a string for a symbolic dimension. */
export interface OnnxValueInfo {
  readonly name: string;
  readonly elemType: DataType;
  readonly shape: readonly (number | string)[];
}

/** Where an external tensor's bytes lie, relative to the model file's folder. */
export interface ExternalLocation {
  readonly location: string;
  readonly offset: number;
  readonly length: number;
}

/** An initializer whose bytes are either inline (`raw`, little-endian) or in an external file. */
export type OnnxTensor = {
  readonly name: string;
  readonly dataType: DataType;
  readonly dims: readonly number[];
} & ({ readonly raw: Uint8Array } | { readonly external: ExternalLocation });

export interface OnnxGraph {
  readonly name: string;
  readonly nodes: readonly OnnxNode[];
  readonly initializers: readonly OnnxTensor[];
  readonly inputs: readonly OnnxValueInfo[];
  readonly outputs: readonly OnnxValueInfo[];
}

/** An operator set the model uses beside the default domain's. */
export interface OnnxOpset {
  readonly domain: string;
  readonly version: number;
}

export interface OnnxModel {
  readonly irVersion: number;
  /** The default ONNX domain's opset. */
  readonly opsetVersion: number;
  /** Opsets of other domains the nodes use (`com.microsoft`); none by default. */
  readonly customOpsets?: readonly OnnxOpset[];
  readonly producerName: string;
  readonly producerVersion: string;
  readonly docString: string;
  readonly graph: OnnxGraph;
}

// Field numbers from onnx.proto, grouped by message.
const ModelProto = { irVersion: 1, producerName: 2, producerVersion: 3, docString: 6, graph: 7 };
const ModelProtoOpsetImport = 8;
const OperatorSetIdProto = { domain: 1, version: 2 };
const GraphProto = { node: 1, name: 2, initializer: 5, input: 11, output: 12 };
const NodeProto = { input: 1, output: 2, name: 3, opType: 4, attribute: 5, domain: 7 };
const AttributeProto = { name: 1, i: 3, ints: 8, type: 20 };
const AttributeType = { INT: 2, INTS: 7 };
const TensorProto = { dims: 1, dataType: 2, name: 8, rawData: 9, externalData: 13, location: 14 };
const TensorDataLocationExternal = 1;
const StringStringEntryProto = { key: 1, value: 2 };
const ValueInfoProto = { name: 1, type: 2 };
const TypeProto = { tensorType: 1 };
const TypeProtoTensor = { elemType: 1, shape: 2 };
const TensorShapeProto = { dim: 1 };
const Dimension = { dimValue: 1, dimParam: 2 };

const LEN = WireType.LengthDelimited;
const VARINT = WireType.Varint;

function writeAttribute(w: BinaryWriter, attribute: OnnxAttribute): void {
  w.tag(AttributeProto.name, LEN).string(attribute.name);
  if (attribute.kind === "int") {
    w.tag(AttributeProto.i, VARINT).int64(attribute.value);
    w.tag(AttributeProto.type, VARINT).int32(AttributeType.INT);
  } else {
    // onnx.proto is proto2 and `ints` is not declared packed: one tag per element.
    for (const value of attribute.value) w.tag(AttributeProto.ints, VARINT).int64(value);
    w.tag(AttributeProto.type, VARINT).int32(AttributeType.INTS);
  }
}

function writeNode(w: BinaryWriter, node: OnnxNode): void {
  for (const input of node.inputs) w.tag(NodeProto.input, LEN).string(input);
  for (const output of node.outputs) w.tag(NodeProto.output, LEN).string(output);
  w.tag(NodeProto.name, LEN).string(node.name);
  w.tag(NodeProto.opType, LEN).string(node.opType);
  for (const attribute of node.attributes) {
    w.tag(NodeProto.attribute, LEN).fork();
    writeAttribute(w, attribute);
    w.join();
  }
  if (node.domain !== undefined) w.tag(NodeProto.domain, LEN).string(node.domain);
}

function writeEntry(w: BinaryWriter, key: string, value: string): void {
  w.tag(TensorProto.externalData, LEN).fork();
  w.tag(StringStringEntryProto.key, LEN).string(key);
  w.tag(StringStringEntryProto.value, LEN).string(value);
  w.join();
}

function writeTensor(w: BinaryWriter, tensor: OnnxTensor): void {
  for (const dim of tensor.dims) w.tag(TensorProto.dims, VARINT).int64(dim);
  w.tag(TensorProto.dataType, VARINT).int32(tensor.dataType);
  w.tag(TensorProto.name, LEN).string(tensor.name);
  if ("raw" in tensor) {
    w.tag(TensorProto.rawData, LEN).bytes(tensor.raw);
  } else {
    writeEntry(w, "location", tensor.external.location);
    writeEntry(w, "offset", String(tensor.external.offset));
    writeEntry(w, "length", String(tensor.external.length));
    w.tag(TensorProto.location, VARINT).int32(TensorDataLocationExternal);
  }
}

function writeValueInfo(w: BinaryWriter, info: OnnxValueInfo): void {
  w.tag(ValueInfoProto.name, LEN).string(info.name);
  w.tag(ValueInfoProto.type, LEN).fork();
  w.tag(TypeProto.tensorType, LEN).fork();
  w.tag(TypeProtoTensor.elemType, VARINT).int32(info.elemType);
  w.tag(TypeProtoTensor.shape, LEN).fork();
  for (const dim of info.shape) {
    w.tag(TensorShapeProto.dim, LEN).fork();
    if (typeof dim === "number") w.tag(Dimension.dimValue, VARINT).int64(dim);
    else w.tag(Dimension.dimParam, LEN).string(dim);
    w.join();
  }
  w.join().join().join();
}

function writeGraph(w: BinaryWriter, graph: OnnxGraph): void {
  const repeated = <T>(
    field: number,
    items: readonly T[],
    write: (w: BinaryWriter, item: T) => void,
  ) => {
    for (const item of items) {
      w.tag(field, LEN).fork();
      write(w, item);
      w.join();
    }
  };
  repeated(GraphProto.node, graph.nodes, writeNode);
  w.tag(GraphProto.name, LEN).string(graph.name);
  repeated(GraphProto.initializer, graph.initializers, writeTensor);
  repeated(GraphProto.input, graph.inputs, writeValueInfo);
  repeated(GraphProto.output, graph.outputs, writeValueInfo);
}

function writeOpset(w: BinaryWriter, opset: OnnxOpset): void {
  w.tag(ModelProtoOpsetImport, LEN).fork();
  w.tag(OperatorSetIdProto.domain, LEN).string(opset.domain);
  w.tag(OperatorSetIdProto.version, VARINT).int64(opset.version);
  w.join();
}

/** The `ModelProto` bytes of `model`. */
export function encodeOnnxModel(model: OnnxModel): Uint8Array {
  const w = new BinaryWriter();
  w.tag(ModelProto.irVersion, VARINT).int64(model.irVersion);
  w.tag(ModelProto.producerName, LEN).string(model.producerName);
  w.tag(ModelProto.producerVersion, LEN).string(model.producerVersion);
  w.tag(ModelProto.docString, LEN).string(model.docString);
  w.tag(ModelProto.graph, LEN).fork();
  writeGraph(w, model.graph);
  w.join();
  writeOpset(w, { domain: "", version: model.opsetVersion });
  for (const opset of model.customOpsets ?? []) writeOpset(w, opset);
  return w.finish();
}
