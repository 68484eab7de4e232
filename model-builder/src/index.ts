/**
 * @module The model builder's public surface: what the gateway's build, its tests and the
 * benchmarks use. Everything else in this package is internal.
 */
export { type BuiltinModelResult, buildBuiltinModel } from "./build-builtin-model-folder.js";
export { buildDecoderGraph } from "./decoder-graph.js";
export {
  type DecoderModelDimensions,
  type DecoderModelOptions,
  type ModelPrecision,
  type ModelWeightSource,
  modelPrecisions,
  modelWeightSources,
  parameterCount,
  resolveDecoderModelOptions,
  TINY_MODEL_OPTIONS,
} from "./decoder-model-options.js";
export { DataType } from "./encode-onnx-model.js";
export { createGraphBuilder } from "./graph-builder.js";
export { float16Array, float16BitsOf } from "./half-precision.js";
export { type Q4Weight, quantizeMatMulNBits } from "./matmul-nbits.js";
export { weightChunks } from "./seeded-weights.js";
export {
  MARKER_FILE,
  type WriteDecoderModelResult,
  writeDecoderModel,
} from "./write-decoder-model.js";
export { writeOnnxModel } from "./write-onnx-model.js";
