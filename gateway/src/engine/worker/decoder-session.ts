/**
 * @module One onnxruntime-node session over a decoder graph in the Hugging Face export layout.
 * It reads the graph's inputs and outputs (names, KV shapes, dtypes) from the model itself and
 * runs one step: a prefill chunk or a decode step, for one sequence or a batch.
 */
import * as ort from "onnxruntime-node";
import type { Device } from "../devices.js";
import { deviceFailure, executionProvidersFor } from "./execution-provider.js";
import { float16Bits, float16Tensor, type LogitsRow } from "./float16.js";
import type { KvArray, KvCache, KvLayout } from "./kv-cache.js";

/** One step's inputs, `batch` rows of `tokens` new tokens each. */
export interface StepInput {
  readonly batch: number;
  readonly tokens: number;
  /** [batch, tokens] token ids. */
  readonly inputIds: BigInt64Array;
  /** [batch, past.length + tokens]: 1 for real positions, 0 for padding. */
  readonly attentionMask: BigInt64Array;
  /** [batch, tokens] positions of the new tokens in their own sequences. */
  readonly positionIds: BigInt64Array;
  readonly past: KvCache;
}

/** One step's outputs. */
export interface StepOutput {
  /** Logits of each row's last position: float32, or float16 left as the graph gave them. */
  readonly logits: readonly LogitsRow[];
  /** The cache including this step's tokens: `past.length + tokens` positions. */
  readonly present: KvCache;
}

/** A loaded decoder graph. */
export interface DecoderSession {
  readonly layout: KvLayout;
  readonly vocabSize: number;
  /**
   * Whether the graph runs several new tokens on top of a non-empty past (chunked prefill).
   * Some exports (onnxruntime-genai's, for one) accept either a prompt on an empty past or one
   * token on a past, nothing in between; their prompts are prefilled in one step.
   */
  readonly supportsChunkedPrefill: boolean;
  run(step: StepInput): Promise<StepOutput>;
  release(): Promise<void>;
}

/** Options for `createDecoderSession`. */
export interface DecoderSessionOptions {
  readonly graphPath: string;
  /** ORT intra-op threads; set explicitly because the default takes every core. */
  readonly intraOpThreads: number;
  /** The execution provider (`--device`); checked before the session is made. */
  readonly device: Device;
  /** config.json, for KV shapes the graph leaves symbolic. */
  readonly config: Readonly<Record<string, unknown>>;
}

const pastPattern = /^past_key_values\.(\d+)\.(key|value)$/;

/**
 * The inputs besides `past_key_values.*` that the engine knows how to feed. Any other input
 * (an encoder's hidden states, `token_type_ids`, pixel values…) means a graph this engine
 * cannot run correctly, so loading refuses it by name instead of guessing a value.
 */
const knownInputs = [
  "input_ids",
  "attention_mask",
  "position_ids",
  "use_cache_branch",
  "num_logits_to_keep",
  "logits_to_keep",
] as const;
const requiredInputs = ["input_ids", "attention_mask"] as const;
const logitsToKeepInputs = ["num_logits_to_keep", "logits_to_keep"] as const;

function numericDim(dim: unknown): number | undefined {
  return typeof dim === "number" && dim > 0 ? dim : undefined;
}

function configNumber(config: Readonly<Record<string, unknown>>, key: string): number | undefined {
  const value = config[key];
  return typeof value === "number" ? value : undefined;
}

/** Wraps KV storage in a tensor of its element type (float16 travels as raw Uint16 bits). */
function kvTensor(data: KvArray, dims: readonly number[]): ort.Tensor {
  return data instanceof Uint16Array
    ? float16Tensor(data, dims)
    : new ort.Tensor("float32", data, dims);
}

/** A present.* output as KV storage: float32, or float16 as bits on every Node version. */
function kvData(tensor: ort.Tensor): KvArray {
  return tensor.type === "float16" ? float16Bits(tensor.data) : (tensor.data as Float32Array);
}

/** Loads a decoder graph and checks it has the inputs and outputs a KV-cached decoder needs. */
export async function createDecoderSession(
  options: DecoderSessionOptions,
): Promise<DecoderSession> {
  const executionProviders = executionProvidersFor(options.device);
  const session = await ort.InferenceSession.create(options.graphPath, {
    executionProviders,
    intraOpNumThreads: options.intraOpThreads,
    interOpNumThreads: 1,
    executionMode: "sequential",
    graphOptimizationLevel: "all",
    // Pool threads that spin between operators hold their cores while they wait, which on a
    // machine with no core to spare takes them from the main thread and from each other.
    extra: { session: { intra_op: { allow_spinning: "0" } } },
  }).catch((cause: unknown) => {
    throw deviceFailure(options.device, cause);
  });
  const inputs = new Map(session.inputMetadata.map((m) => [m.name, m]));
  const missing = requiredInputs.filter((name) => !inputs.has(name));
  if (missing.length > 0) {
    await session.release();
    throw new Error(`${options.graphPath} has no ${missing.join(", ")} input`);
  }
  const unknown = session.inputNames.filter(
    (name) => !pastPattern.test(name) && !(knownInputs as readonly string[]).includes(name),
  );
  if (unknown.length > 0) {
    await session.release();
    throw new Error(
      `${options.graphPath} has inputs a decoder-only export does not have: ${unknown.join(", ")} ` +
        `(supported: ${knownInputs.join(", ")}, past_key_values.*)`,
    );
  }
  const pastNames = session.inputNames
    .filter((name) => pastPattern.test(name))
    .sort((a, b) => {
      const [, la, ka] = pastPattern.exec(a) ?? [];
      const [, lb, kb] = pastPattern.exec(b) ?? [];
      return Number(la) - Number(lb) || String(ka).localeCompare(String(kb));
    });
  if (pastNames.length === 0) {
    throw new Error(`${options.graphPath} has no past_key_values.* inputs (a KV cache is needed)`);
  }
  const presentNames = pastNames.map((name) =>
    name.replace(pastPattern, (_, layer: string, kind: string) => `present.${layer}.${kind}`),
  );
  for (const name of ["logits", ...presentNames]) {
    if (!session.outputNames.includes(name)) {
      throw new Error(`${options.graphPath} has no ${name} output`);
    }
  }

  const pastMeta = inputs.get(pastNames[0] as string);
  const shape = pastMeta?.isTensor ? pastMeta.shape : [];
  const dtype = pastMeta?.isTensor ? pastMeta.type : undefined;
  if (dtype !== "float32" && dtype !== "float16") {
    throw new Error(`${options.graphPath}: KV cache type ${String(dtype)} is not supported`);
  }
  const heads = configNumber(options.config, "num_attention_heads");
  const hidden = configNumber(options.config, "hidden_size");
  const kvHeads =
    numericDim(shape[1]) ??
    configNumber(options.config, "num_key_value_heads") ??
    heads ??
    Number.NaN;
  const headDim =
    numericDim(shape[3]) ??
    configNumber(options.config, "head_dim") ??
    (hidden !== undefined && heads !== undefined ? hidden / heads : Number.NaN);
  if (!Number.isInteger(kvHeads) || !Number.isInteger(headDim)) {
    throw new Error(`${options.graphPath}: cannot tell the KV cache shape from graph or config`);
  }
  const logitsMeta = session.outputMetadata.find((m) => m.name === "logits");
  const vocabSize =
    numericDim(logitsMeta?.isTensor ? logitsMeta.shape[2] : undefined) ??
    configNumber(options.config, "vocab_size") ??
    0;
  const layout: KvLayout = { tensors: pastNames.length, kvHeads, headDim, dtype };
  const hasPositionIds = inputs.has("position_ids");
  const hasUseCacheBranch = inputs.has("use_cache_branch");
  const logitsToKeep = logitsToKeepInputs.find((name) => inputs.has(name));
  const logitsToKeepMeta = logitsToKeep === undefined ? undefined : inputs.get(logitsToKeep);
  // A scalar in transformers' exports; some declare it [1].
  const logitsToKeepDims =
    logitsToKeepMeta?.isTensor && logitsToKeepMeta.shape.length === 1 ? [1] : [];

  async function run(
    step: StepInput,
    runOptions?: ort.InferenceSession.RunOptions,
  ): Promise<StepOutput> {
    const { batch, tokens, past } = step;
    const feeds: Record<string, ort.Tensor> = {
      input_ids: new ort.Tensor("int64", step.inputIds, [batch, tokens]),
      attention_mask: new ort.Tensor("int64", step.attentionMask, [batch, past.length + tokens]),
    };
    if (hasPositionIds) {
      feeds.position_ids = new ort.Tensor("int64", step.positionIds, [batch, tokens]);
    }
    if (hasUseCacheBranch) {
      // Optimum's merged graphs: the with-past branch once there is a past, the other before.
      feeds.use_cache_branch = new ort.Tensor("bool", Uint8Array.of(past.length > 0 ? 1 : 0), [1]);
    }
    if (logitsToKeep !== undefined) {
      // Only the last position's logits are sampled, so only they are computed.
      feeds[logitsToKeep] = new ort.Tensor("int64", BigInt64Array.of(1n), logitsToKeepDims);
    }
    pastNames.forEach((name, i) => {
      feeds[name] = kvTensor(past.data[i] as KvArray, [batch, kvHeads, past.length, headDim]);
    });
    const out = await (runOptions === undefined
      ? session.run(feeds)
      : session.run(feeds, runOptions));
    const logits = out.logits as ort.Tensor;
    const vocab = logits.dims[2] as number;
    // `tokens` positions per row, or fewer when the graph kept only the last ones.
    const positions = logits.dims[1] as number;
    const rows: LogitsRow[] = [];
    const bits = logits.type === "float16" ? float16Bits(logits.data) : undefined;
    for (let b = 0; b < batch; b++) {
      const offset = (b * positions + positions - 1) * vocab;
      // Views, not copies: the output is this step's own buffer, sampled and dropped.
      rows.push(
        bits !== undefined
          ? { bits, offset, length: vocab }
          : (logits.data as Float32Array).subarray(offset, offset + vocab),
      );
    }
    const present: KvCache = {
      batch,
      length: past.length + tokens,
      data: presentNames.map((name) => kvData(out[name] as ort.Tensor)),
    };
    return { logits: rows, present };
  }

  /** Runs two tokens on a one-token past: the smallest chunked prefill. */
  async function probeChunkedPrefill(): Promise<boolean> {
    const first = await run({
      batch: 1,
      tokens: 1,
      inputIds: new BigInt64Array(1),
      attentionMask: new BigInt64Array([1n]),
      positionIds: new BigInt64Array(1),
      past: { batch: 1, length: 0, data: pastNames.map(() => empty()) },
    });
    try {
      await run(
        {
          batch: 1,
          tokens: 2,
          inputIds: new BigInt64Array(2),
          attentionMask: new BigInt64Array(3).fill(1n),
          positionIds: new BigInt64Array([1n, 2n]),
          past: first.present,
        },
        { logSeverityLevel: 4 },
      );
      return true;
    } catch {
      return false;
    }
  }

  function empty(): KvArray {
    return dtype === "float16" ? new Uint16Array(0) : new Float32Array(0);
  }

  return {
    layout,
    vocabSize,
    supportsChunkedPrefill: await probeChunkedPrefill(),
    run,
    release() {
      return session.release();
    },
  };
}
