/**
 * @module The dimensions of a generated decoder model, their defaults (the built-in
 * `parley-tiny` model) and their checks. Fields left out are derived from `hiddenSize` the way
 * Llama-family models size them, so `{ hiddenSize: 512, layers: 8, vocabSize: 32000 }` is enough.
 * `precision` picks the export it looks like: fp32 (the built-in model), fp16 (Optimum's fp16
 * exports) or q4f16 (onnx-community's `model_q4f16.onnx`).
 */
import { MIN_VOCAB_SIZE } from "./tokenizer-files.js";

/** The precisions a generated model can have. */
export const modelPrecisions = ["fp32", "fp16", "q4f16"] as const;

/**
 * fp32: float32 everywhere. fp16: float16 weights, activations, past_key_values/present and
 * logits; norms and softmax computed in float32, as Hugging Face's Llama does in half precision.
 * q4f16: fp16 with every MatMul weight 4-bit quantized for `com.microsoft.MatMulNBits` (blocks
 * of 32, float16 scales); the embedding table stays float16.
 */
export type ModelPrecision = (typeof modelPrecisions)[number];

/** Where a generated model's weights come from. */
export const modelWeightSources = ["random", "corpus"] as const;

/**
 * random: every weight drawn from the seed (text is noise). corpus: the built-in model's bigram
 * model of the bundled corpus in the embedding and output matrices, attention and MLP outputs
 * zero (see corpus-bigram.ts), so text is a stream of the corpus's words.
 */
export type ModelWeightSource = (typeof modelWeightSources)[number];

/** What a caller may set; every field has a default. */
export interface DecoderModelOptions {
  /** @example 64 */
  readonly hiddenSize?: number;
  /** Decoder layers. @example 2 */
  readonly layers?: number;
  /** Attention heads; default max(4, hiddenSize / 64), so heads are 16 wide at 64 and 64 at 512. */
  readonly heads?: number;
  /** Key/value heads (grouped-query attention); default heads / 2 when heads is even. */
  readonly kvHeads?: number;
  /** SwiGLU width; default 8/3 × hiddenSize rounded up to a multiple of 16. */
  readonly intermediateSize?: number;
  /** Tokens in the vocabulary, specials included; at least 261 (5 specials + 256 bytes). @example 512 */
  readonly vocabSize?: number;
  /** max_position_embeddings. @example 2048 */
  readonly contextLength?: number;
  /** Seed of the weights (an unsigned 32-bit integer). The tokenizer does not depend on it. */
  readonly seed?: number;
  /** Write weights to `model.onnx.data`; default: when they exceed 64 MiB. */
  readonly externalData?: boolean;
  /** @example "fp32" */
  readonly precision?: ModelPrecision;
  /**
   * q4f16 only: asymmetric blocks with uint8 zero points. Default false: symmetric blocks and
   * no zero-point input, as onnx-community's q4f16 exports have.
   */
  readonly zeroPoints?: boolean;
  /** @example "random" (the default) */
  readonly weights?: ModelWeightSource;
  /** Which inputs the graph declares, to look like another exporter's graph. */
  readonly signature?: DecoderSignature;
}

/**
 * The input signature of a decoder graph. The default is Optimum's and onnx-community's
 * current exports (`input_ids`, `attention_mask`, `position_ids`, `past_key_values.*`); the
 * other shapes are the ones real exports have, so the engine can be tested on each.
 */
export interface DecoderSignature {
  /** Declare `position_ids`; without it the graph derives positions from the mask, as older exports do. Default true. */
  readonly positionIds?: boolean;
  /** Optimum's merged decoders' `use_cache_branch` (bool [1]): false ignores the past. Default false. */
  readonly useCacheBranch?: boolean;
  /** A scalar int64 input limiting logits to the last N positions, by either name transformers used. */
  readonly logitsToKeep?: "num_logits_to_keep" | "logits_to_keep";
  /** Further int64 [batch, sequence] inputs, which the engine does not feed (to test refusal). */
  readonly extraInputs?: readonly string[];
}

/** Every dimension, resolved and checked. */
export interface DecoderModelDimensions {
  readonly hiddenSize: number;
  readonly layers: number;
  readonly heads: number;
  readonly kvHeads: number;
  readonly headDim: number;
  readonly intermediateSize: number;
  readonly vocabSize: number;
  readonly contextLength: number;
  readonly seed: number;
  readonly rmsNormEps: number;
  readonly ropeTheta: number;
  readonly externalData: boolean;
  readonly precision: ModelPrecision;
  readonly zeroPoints: boolean;
  readonly signature: {
    readonly positionIds: boolean;
    readonly useCacheBranch: boolean;
    readonly logitsToKeep: DecoderSignature["logitsToKeep"];
    readonly extraInputs: readonly string[];
  };
  readonly weights: ModelWeightSource;
}

/** Most tokens a corpus-weight model may have: its bigram table is counted densely per context. */
export const MAX_CORPUS_VOCAB_SIZE = 8192;

/**
 * The built-in model: a decode step takes well under a millisecond on one core, and the 2048
 * tokens hold about 800 whole words and punctuation marks of the corpus, the ones it can emit.
 */
export const TINY_MODEL_OPTIONS = {
  hiddenSize: 64,
  layers: 2,
  vocabSize: 2048,
  contextLength: 2048,
  seed: 1234,
  weights: "corpus",
} as const satisfies DecoderModelOptions;

const EXTERNAL_DATA_THRESHOLD_BYTES = 64 * 1024 * 1024;

/** Bytes per parameter, at most (a q4f16 model's embedding table is float16). */
const parameterBytes: Record<ModelPrecision, number> = { fp32: 4, fp16: 2, q4f16: 2 };

/** The 4-bit block size of q4f16 models, onnx-community's. */
export const Q4_BLOCK_SIZE = 32;

function positiveInteger(name: string, value: number): number {
  if (!Number.isSafeInteger(value) || value < 1) {
    throw new RangeError(`${name} must be a positive integer, got ${value}`);
  }
  return value;
}

/** Parameter count of a model with these dimensions. */
export function parameterCount(
  d: Omit<
    DecoderModelDimensions,
    "externalData" | "precision" | "zeroPoints" | "signature" | "weights"
  >,
): number {
  const attention = d.hiddenSize * d.headDim * (2 * d.heads + 2 * d.kvHeads);
  const mlp = 3 * d.hiddenSize * d.intermediateSize;
  const norms = 2 * d.hiddenSize;
  return 2 * d.vocabSize * d.hiddenSize + d.hiddenSize + d.layers * (attention + mlp + norms);
}

/** Fills in defaults and checks that the dimensions make a valid Llama decoder. */
export function resolveDecoderModelOptions(
  options: DecoderModelOptions = {},
): DecoderModelDimensions {
  const hiddenSize = positiveInteger(
    "hiddenSize",
    options.hiddenSize ?? TINY_MODEL_OPTIONS.hiddenSize,
  );
  const layers = positiveInteger("layers", options.layers ?? TINY_MODEL_OPTIONS.layers);
  const heads = positiveInteger("heads", options.heads ?? Math.max(4, Math.floor(hiddenSize / 64)));
  const kvHeads = positiveInteger(
    "kvHeads",
    options.kvHeads ?? (heads % 2 === 0 ? heads / 2 : heads),
  );
  const intermediateSize = positiveInteger(
    "intermediateSize",
    options.intermediateSize ?? Math.ceil((hiddenSize * 8) / 3 / 16) * 16,
  );
  const vocabSize = positiveInteger("vocabSize", options.vocabSize ?? TINY_MODEL_OPTIONS.vocabSize);
  const contextLength = positiveInteger(
    "contextLength",
    options.contextLength ?? TINY_MODEL_OPTIONS.contextLength,
  );
  const seed = options.seed ?? TINY_MODEL_OPTIONS.seed;
  if (!Number.isSafeInteger(seed) || seed < 0 || seed > 0xffffffff) {
    throw new RangeError(`seed must be an integer in [0, 2^32), got ${seed}`);
  }
  if (hiddenSize % heads !== 0 || (hiddenSize / heads) % 2 !== 0) {
    throw new RangeError(
      `hiddenSize ${hiddenSize} must split into ${heads} heads of an even width (for RoPE)`,
    );
  }
  if (heads % kvHeads !== 0) {
    throw new RangeError(`heads (${heads}) must be a multiple of kvHeads (${kvHeads})`);
  }
  if (vocabSize < MIN_VOCAB_SIZE) {
    throw new RangeError(`vocabSize must be at least ${MIN_VOCAB_SIZE}, got ${vocabSize}`);
  }
  if (contextLength < 2) {
    throw new RangeError(`contextLength must be at least 2, got ${contextLength}`);
  }
  const precision = options.precision ?? "fp32";
  if (!modelPrecisions.includes(precision)) {
    throw new RangeError(
      `precision must be one of ${modelPrecisions.join(", ")}, got ${precision}`,
    );
  }
  const zeroPoints = options.zeroPoints ?? false;
  if (zeroPoints && precision !== "q4f16") {
    throw new RangeError("zeroPoints applies to q4f16 models only");
  }
  const weights = options.weights ?? "random";
  if (!modelWeightSources.includes(weights)) {
    throw new RangeError(`weights must be one of ${modelWeightSources.join(", ")}, got ${weights}`);
  }
  if (weights === "corpus" && vocabSize > MAX_CORPUS_VOCAB_SIZE) {
    throw new RangeError(
      `corpus weights take at most ${MAX_CORPUS_VOCAB_SIZE} tokens, got vocabSize ${vocabSize}`,
    );
  }
  if (weights === "corpus" && hiddenSize < 3) {
    throw new RangeError(`corpus weights need hiddenSize >= 3, got ${hiddenSize}`);
  }
  const dimensions = {
    hiddenSize,
    layers,
    heads,
    kvHeads,
    headDim: hiddenSize / heads,
    intermediateSize,
    vocabSize,
    contextLength,
    seed,
    rmsNormEps: 1e-5,
    ropeTheta: 10000,
  };
  return {
    ...dimensions,
    externalData:
      options.externalData ??
      parameterCount(dimensions) * parameterBytes[precision] > EXTERNAL_DATA_THRESHOLD_BYTES,
    precision,
    zeroPoints,
    signature: {
      positionIds: options.signature?.positionIds ?? true,
      useCacheBranch: options.signature?.useCacheBranch ?? false,
      logitsToKeep: options.signature?.logitsToKeep ?? undefined,
      extraInputs: options.signature?.extraInputs ?? [],
    },
    weights,
  };
}
