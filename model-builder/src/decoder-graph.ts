/**
 * @module The Llama decoder as an ONNX graph, with the inputs and outputs of a Hugging Face
 * (optimum) export with KV cache, so the engine runs it exactly like a downloaded model. Only
 * standard opset-17 operators, all of which onnxruntime's CPU provider implements, plus
 * `com.microsoft.MatMulNBits` in q4f16 models.
 *
 * In fp16 and q4f16 models every tensor between operators is float16, except where Hugging
 * Face's Llama computes in float32 under half precision: RMSNorm's statistics, the rotary
 * tables, and the attention scores through softmax (so the mask can stay -1e9). Those are Cast
 * up and back down; fp32 models have no Cast at all.
 *
 * Attention works on 5-D tensors [batch, kv_heads, group, seq, head_dim]: the query heads that
 * share a key/value head form one group, and MatMul broadcasting does grouped-query attention
 * without copying keys and values.
 */
import { type DecoderModelDimensions, Q4_BLOCK_SIZE } from "./decoder-model-options.js";
import { DataType } from "./encode-onnx-model.js";
import {
  createGraphBuilder,
  type GraphBuilder,
  type GraphSpec,
  type WeightInit,
} from "./graph-builder.js";

/** Values for some weights by name, in place of drawn ones (the built-in model's corpus weights). */
export type WeightOverrides = Readonly<Record<string, WeightInit>>;

/** Added to the scores of keys a query may not see: large but finite, so a row never turns NaN. */
const MASKED_SCORE = -1e9;

const BATCH = "batch_size";
const SEQ = "sequence_length";
const PAST = "past_sequence_length";
const TOTAL = "total_sequence_length";

/** The element type of activations, weights, KV cache and logits. */
function activationType(d: DecoderModelDimensions) {
  return d.precision === "fp32" ? DataType.FLOAT : DataType.FLOAT16;
}

/** `x` as float32: itself in fp32 models, else a Cast named `name`. */
function toFloat32(g: GraphBuilder, x: string, name: string, d: DecoderModelDimensions): string {
  return d.precision === "fp32" ? x : g.node("Cast", [x], name, { to: DataType.FLOAT });
}

/** A float32 `x` back in the activation type: itself in fp32 models, else a Cast. */
function toActivation(g: GraphBuilder, x: string, name: string, d: DecoderModelDimensions): string {
  return d.precision === "fp32" ? x : g.node("Cast", [x], name, { to: DataType.FLOAT16 });
}

/** RMSNorm (Llama): x / sqrt(mean(x²) + eps) × weight, over the last axis, in float32. */
function rmsNorm(g: GraphBuilder, input: string, name: string, d: DecoderModelDimensions): string {
  const weight = g.weight(`${name}.weight`, [d.hiddenSize], { kind: "ones" }, activationType(d));
  const x = toFloat32(g, input, `${name}/x_float`, d);
  const squared = g.node("Mul", [x, x], `${name}/squared`);
  const meanSquare = g.node("ReduceMean", [squared], `${name}/mean_square`, {
    axes: [-1],
    keepdims: 1,
  });
  const variance = g.node("Add", [meanSquare, g.float32(d.rmsNormEps)], `${name}/variance`);
  const rms = g.node("Sqrt", [variance], `${name}/rms`);
  const normed = g.node("Div", [x, rms], `${name}/normed`);
  const back = toActivation(g, normed, `${name}/normed_half`, d);
  return g.node("Mul", [back, weight], `${name}/out`);
}

/**
 * x @ W with W stored [in, out] and drawn like PyTorch's nn.Linear: a MatMul, or in q4f16
 * models a MatMulNBits over the quantized W.
 */
function project(
  g: GraphBuilder,
  x: string,
  weightName: string,
  inputs: number,
  outputs: number,
  output: string,
  d: DecoderModelDimensions,
  overrides: WeightOverrides,
): string {
  const init = overrides[weightName] ?? { kind: "uniform", bound: 1 / Math.sqrt(inputs) };
  if (d.precision !== "q4f16") {
    const weight = g.weight(weightName, [inputs, outputs], init, activationType(d));
    return g.node("MatMul", [x, weight], output);
  }
  const options = { blockSize: Q4_BLOCK_SIZE, zeroPoints: d.zeroPoints };
  const q = g.q4Weight(weightName, [inputs, outputs], init, options);
  return g.contribNode(
    "MatMulNBits",
    [x, q.b, q.scales, ...(d.zeroPoints ? [q.zeroPoints] : [])],
    output,
    { K: inputs, N: outputs, bits: 4, block_size: Q4_BLOCK_SIZE },
  );
}

/** A bias-free linear layer named `name`. */
function linear(
  g: GraphBuilder,
  x: string,
  name: string,
  inputs: number,
  outputs: number,
  { d, overrides }: LayerContext,
): string {
  return project(g, x, `${name}.weight`, inputs, outputs, `${name}/out`, d, overrides);
}

/** cos and sin tables, broadcastable against the tensor they rotate. */
interface Rotary {
  readonly cos: string;
  readonly sin: string;
}

/** Rotary embedding, rotate-half form: x·cos + rotate_half(x)·sin. */
function rope(
  g: GraphBuilder,
  x: string,
  { cos, sin }: Rotary,
  name: string,
  half: number,
): string {
  const halves = g.int64([half, half]);
  const [x1, x2] = g.nodeN("Split", [x, halves], [`${name}/x1`, `${name}/x2`], { axis: -1 });
  const negated = g.node("Neg", [x2], `${name}/neg_x2`);
  const rotated = g.node("Concat", [negated, x1], `${name}/rotated`, { axis: -1 });
  const xCos = g.node("Mul", [x, cos], `${name}/x_cos`);
  const rotatedSin = g.node("Mul", [rotated, sin], `${name}/rotated_sin`);
  return g.node("Add", [xCos, rotatedSin], `${name}/out`);
}

/** cos and sin of position × inverse frequency, computed in the graph from `position_ids`. */
function rotaryTables(g: GraphBuilder, positionIds: string, d: DecoderModelDimensions) {
  const half = d.headDim / 2;
  const inverseFrequency = Float32Array.from(
    { length: half },
    (_, i) => 1 / d.ropeTheta ** ((2 * i) / d.headDim),
  );
  const invFreq = g.float32Tensor("rotary_emb.inv_freq", [half], inverseFrequency);
  const positions = g.node("Cast", [positionIds], "rotary/positions", { to: DataType.FLOAT });
  const column = g.node("Unsqueeze", [positions, g.int64([2])], "rotary/positions_column");
  const freqs = g.node("Mul", [column, invFreq], "rotary/freqs"); // [B, S, D/2]
  const angles = g.node("Concat", [freqs, freqs], "rotary/angles", { axis: -1 }); // [B, S, D]
  const cos = toActivation(g, g.node("Cos", [angles], "rotary/cos"), "rotary/cos_half", d);
  const sin = toActivation(g, g.node("Sin", [angles], "rotary/sin"), "rotary/sin_half", d);
  // Keys are [B, KVH, S, D]; queries are [B, KVH, group, S, D].
  const spread = (axes: number[], name: string): Rotary => ({
    cos: g.node("Unsqueeze", [cos, g.int64(axes)], `rotary/${name}_cos`),
    sin: g.node("Unsqueeze", [sin, g.int64(axes)], `rotary/${name}_sin`),
  });
  return { key: spread([1], "key"), query: spread([1, 2], "query") };
}

/**
 * The additive attention bias [B, 1, 1, S, T]: 0 where query i may see key j, else
 * MASKED_SCORE. Query i sits at column T - S + i of the keys (past first), so it sees key j when
 * j <= T - S + i and attention_mask[j] is 1; left padding is masked out by the latter.
 */
function attentionBias(g: GraphBuilder, inputIds: string, attentionMask: string): string {
  const seqLen = g.node(
    "Gather",
    [g.node("Shape", [inputIds], "mask/ids_shape"), g.int64(1)],
    "mask/seq_len",
  );
  const totalLen = g.node(
    "Gather",
    [g.node("Shape", [attentionMask], "mask/mask_shape"), g.int64(1)],
    "mask/total_len",
  );
  const pastLen = g.node("Sub", [totalLen, seqLen], "mask/past_len");
  const queryPositions = g.node("Range", [pastLen, totalLen, g.int64(1)], "mask/query_positions");
  const keyPositions = g.node("Range", [g.int64(0), totalLen, g.int64(1)], "mask/key_positions");
  const causal = g.node(
    "LessOrEqual",
    [
      g.node("Unsqueeze", [keyPositions, g.int64([0])], "mask/key_row"),
      g.node("Unsqueeze", [queryPositions, g.int64([1])], "mask/query_column"),
    ],
    "mask/causal",
  ); // [S, T]
  const present = g.node("Cast", [attentionMask], "mask/present", { to: DataType.BOOL });
  const keyMask = g.node("Unsqueeze", [present, g.int64([1, 2, 3])], "mask/key_mask"); // [B,1,1,1,T]
  const allowed = g.node("And", [keyMask, causal], "mask/allowed"); // [B, 1, 1, S, T]
  return g.node("Where", [allowed, g.float32(0), g.float32(MASKED_SCORE)], "mask/bias");
}

/**
 * Positions computed from the mask, for graphs without a `position_ids` input: the count of
 * real tokens before each one (padding gets 1), as transformers derives them; the new tokens'
 * are the last `sequence_length` columns.
 */
function positionsFromMask(g: GraphBuilder, inputIds: string, attentionMask: string): string {
  const counted = g.node("CumSum", [attentionMask, g.int64(1)], "positions/cumsum");
  const positions = g.node("Sub", [counted, g.int64(1)], "positions/all");
  const padding = g.node("Equal", [attentionMask, g.int64(0)], "positions/padding");
  const filled = g.node("Where", [padding, g.int64(1), positions], "positions/filled");
  const seqLen = g.node(
    "Gather",
    [g.node("Shape", [inputIds], "positions/ids_shape"), g.int64(1)],
    "positions/seq_len",
  );
  const start = g.node(
    "Unsqueeze",
    [g.node("Neg", [seqLen], "positions/neg_seq_len"), g.int64([0])],
    "positions/start",
  );
  return g.node(
    "Slice",
    [filled, start, g.int64([Number.MAX_SAFE_INTEGER]), g.int64([1])],
    "positions/new",
  );
}

/**
 * A merged decoder's past: all of it when `use_cache_branch` is true, none when false (Optimum
 * merges a no-past and a with-past graph under an If; slicing to zero length is the same contract).
 */
function pastOf(g: GraphBuilder, past: string, useCache: string, name: string): string {
  const pastLen = g.node(
    "Gather",
    [g.node("Shape", [past], `${name}/shape`), g.int64(2)],
    `${name}/length`,
  );
  const keep = g.node("Mul", [useCache, pastLen], `${name}/kept_length`); // [1]
  return g.node("Slice", [past, g.int64([0]), keep, g.int64([2])], `${name}/used`);
}

interface LayerContext {
  readonly d: DecoderModelDimensions;
  readonly overrides: WeightOverrides;
  readonly rotary: ReturnType<typeof rotaryTables>;
  readonly bias: string;
  /** int64 [1]: 1 to use the past, 0 to ignore it (merged decoders); absent: always use it. */
  readonly useCache: string | undefined;
}

/** Self-attention of layer `i` with past keys/values; declares that layer's cache IO. */
function attention(g: GraphBuilder, x: string, i: number, context: LayerContext): string {
  const { d, rotary, bias, useCache } = context;
  const p = `model.layers.${i}.self_attn`;
  const group = d.heads / d.kvHeads;
  const pastShape = [BATCH, d.kvHeads, PAST, d.headDim];
  const kvType = activationType(d);
  const pastKeyInput = g.input(`past_key_values.${i}.key`, kvType, pastShape);
  const pastValueInput = g.input(`past_key_values.${i}.value`, kvType, pastShape);
  const pastKey =
    useCache === undefined ? pastKeyInput : pastOf(g, pastKeyInput, useCache, `${p}/past_key`);
  const pastValue =
    useCache === undefined
      ? pastValueInput
      : pastOf(g, pastValueInput, useCache, `${p}/past_value`);

  const q = linear(g, x, `${p}.q_proj`, d.hiddenSize, d.heads * d.headDim, context);
  const qHeads = g.node(
    "Reshape",
    [q, g.int64([0, 0, d.kvHeads, group, d.headDim])],
    `${p}/q_heads`,
  );
  const query = g.node("Transpose", [qHeads], `${p}/query`, { perm: [0, 2, 3, 1, 4] });
  const queryRope = rope(g, query, rotary.query, `${p}/q_rope`, d.headDim / 2);

  const headsOf = (projection: string, name: string) => {
    const heads = g.node(
      "Reshape",
      [projection, g.int64([0, 0, d.kvHeads, d.headDim])],
      `${p}/${name}_heads`,
    );
    return g.node("Transpose", [heads], `${p}/${name}`, { perm: [0, 2, 1, 3] }); // [B, KVH, S, D]
  };
  const kvWidth = d.kvHeads * d.headDim;
  const key = headsOf(linear(g, x, `${p}.k_proj`, d.hiddenSize, kvWidth, context), "key");
  const keyRope = rope(g, key, rotary.key, `${p}/k_rope`, d.headDim / 2);
  const value = headsOf(linear(g, x, `${p}.v_proj`, d.hiddenSize, kvWidth, context), "value");

  const presentKey = g.node("Concat", [pastKey, keyRope], `present.${i}.key`, { axis: 2 });
  const presentValue = g.node("Concat", [pastValue, value], `present.${i}.value`, { axis: 2 });
  const presentShape = [BATCH, d.kvHeads, TOTAL, d.headDim];
  g.output(presentKey, kvType, presentShape);
  g.output(presentValue, kvType, presentShape);

  const keys = g.node("Unsqueeze", [presentKey, g.int64([2])], `${p}/keys`); // [B, KVH, 1, T, D]
  const keysT = g.node("Transpose", [keys], `${p}/keys_t`, { perm: [0, 1, 2, 4, 3] });
  const values = g.node("Unsqueeze", [presentValue, g.int64([2])], `${p}/values`);
  const scores = g.node("MatMul", [queryRope, keysT], `${p}/scores`); // [B, KVH, group, S, T]
  const scores32 = toFloat32(g, scores, `${p}/scores_float`, d);
  const scaled = g.node("Mul", [scores32, g.float32(1 / Math.sqrt(d.headDim))], `${p}/scaled`);
  const masked = g.node("Add", [scaled, bias], `${p}/masked`);
  const probs32 = g.node("Softmax", [masked], `${p}/probs`, { axis: -1 });
  const probs = toActivation(g, probs32, `${p}/probs_half`, d);
  const attended = g.node("MatMul", [probs, values], `${p}/context`); // [B, KVH, group, S, D]
  const merged = g.node("Transpose", [attended], `${p}/context_t`, { perm: [0, 3, 1, 2, 4] });
  const flat = g.node(
    "Reshape",
    [merged, g.int64([0, 0, d.heads * d.headDim])],
    `${p}/context_flat`,
  );
  return linear(g, flat, `${p}.o_proj`, d.heads * d.headDim, d.hiddenSize, context);
}

/** SwiGLU MLP: down(silu(gate(x)) × up(x)), SiLU as x·sigmoid(x). */
function mlp(g: GraphBuilder, x: string, i: number, context: LayerContext): string {
  const { d } = context;
  const p = `model.layers.${i}.mlp`;
  const gate = linear(g, x, `${p}.gate_proj`, d.hiddenSize, d.intermediateSize, context);
  const up = linear(g, x, `${p}.up_proj`, d.hiddenSize, d.intermediateSize, context);
  const silu = g.node("Mul", [gate, g.node("Sigmoid", [gate], `${p}/gate_sigmoid`)], `${p}/silu`);
  const product = g.node("Mul", [silu, up], `${p}/product`);
  return linear(g, product, `${p}.down_proj`, d.intermediateSize, d.hiddenSize, context);
}

/** The whole decoder graph for dimensions `d`; weights not in `overrides` are drawn. */
export function buildDecoderGraph(
  d: DecoderModelDimensions,
  overrides: WeightOverrides = {},
): GraphSpec {
  const g = createGraphBuilder();
  const inputIds = g.input("input_ids", DataType.INT64, [BATCH, SEQ]);
  const attentionMask = g.input("attention_mask", DataType.INT64, [BATCH, TOTAL]);
  const { signature } = d;
  const positionIds = signature.positionIds
    ? g.input("position_ids", DataType.INT64, [BATCH, SEQ])
    : positionsFromMask(g, inputIds, attentionMask);
  const useCache = signature.useCacheBranch
    ? g.node("Cast", [g.input("use_cache_branch", DataType.BOOL, [1])], "use_cache_branch/int", {
        to: DataType.INT64,
      })
    : undefined;
  const logitsToKeep =
    signature.logitsToKeep === undefined
      ? undefined
      : g.input(signature.logitsToKeep, DataType.INT64, []);
  // Declared and unused: a graph input stays in the signature, which is all a refusal test needs.
  for (const name of signature.extraInputs) g.input(name, DataType.INT64, [BATCH, SEQ]);
  g.output("logits", activationType(d), [
    BATCH,
    logitsToKeep === undefined ? SEQ : "logits_kept",
    d.vocabSize,
  ]);

  // Embeddings have unit variance (uniform in ±√3), so the residual stream starts at unit scale.
  const embeddings = g.weight(
    "model.embed_tokens.weight",
    [d.vocabSize, d.hiddenSize],
    overrides["model.embed_tokens.weight"] ?? { kind: "uniform", bound: Math.sqrt(3) },
    activationType(d),
  );
  let hidden = g.node("Gather", [embeddings, inputIds], "model.embed_tokens/out");
  const context: LayerContext = {
    d,
    overrides,
    rotary: rotaryTables(g, positionIds, d),
    bias: attentionBias(g, inputIds, attentionMask),
    useCache,
  };
  for (let i = 0; i < d.layers; i++) {
    const p = `model.layers.${i}`;
    const attended = attention(g, rmsNorm(g, hidden, `${p}.input_layernorm`, d), i, context);
    hidden = g.node("Add", [hidden, attended], `${p}/attn_residual`);
    const transformed = mlp(g, rmsNorm(g, hidden, `${p}.post_attention_layernorm`, d), i, context);
    hidden = g.node("Add", [hidden, transformed], `${p}/mlp_residual`);
  }
  const normed = rmsNorm(g, hidden, "model.norm", d);
  const kept =
    logitsToKeep === undefined
      ? normed
      : g.node(
          "Slice",
          [
            normed,
            g.node(
              "Unsqueeze",
              [g.node("Neg", [logitsToKeep], "logits_to_keep/neg"), g.int64([0])],
              "logits_to_keep/start",
            ),
            g.int64([Number.MAX_SAFE_INTEGER]),
            g.int64([1]),
          ],
          "logits_to_keep/hidden",
        );
  project(g, kept, "lm_head.weight", d.hiddenSize, d.vocabSize, "logits", d, overrides);
  return g.build("parley_llama_decoder");
}
