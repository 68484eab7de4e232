/**
 * @module The engine ceiling: a tight greedy decode loop on onnxruntime-node in one thread of one
 * process, with the KV cache fed straight back (each step's `present.*` tensors are the next
 * step's `past_key_values.*`). No worker, no messages, no detokenizer, no sampler beyond argmax:
 * what the model costs with nothing around it. Same session options as the engine's worker.
 * A float16 model's cache stays float16 bits (fed back through the engine's `float16Tensor`)
 * and its last row of logits is converted by the conversion the run names, timed on its own.
 *
 * Child entry (`node ort-decode-loop.js <model dir>`), driven over IPC: `ready`, then `run`.
 */

import { float16Bits, float16Tensor } from "@parley/gateway/float16";
import { readModelFolder } from "@parley/gateway/model-folder";
import { createPromptEncoder } from "@parley/gateway/prompt-encoder";
import * as ort from "onnxruntime-node";
import { serveIpc } from "./ipc-channel.js";
import { type LogitsConversionName, logitsConversions } from "./logits-conversions.js";
import { createProcessStatsHandlers } from "./process-stats.js";

/** What one `run` measured. */
export interface OrtLoopResult {
  readonly tokens: number;
  /** Generated tokens after the first, per second of decoding (prefill excluded). */
  readonly tokensPerSecond: number;
  readonly cpuUs: number;
  /** Time in the float16 logits conversion per decoded token, µs; 0 for float32 models. */
  readonly conversionUsPerToken: number;
}

const modelDir = process.argv[2] ?? "";
const folder = await readModelFolder(modelDir, undefined);
const encoder = createPromptEncoder(folder);
const session = await ort.InferenceSession.create(folder.graphPath, {
  intraOpNumThreads: 1,
  interOpNumThreads: 1,
  executionMode: "sequential",
  graphOptimizationLevel: "all",
});
const config = folder.config as Record<string, number | undefined>;
const heads = config.num_attention_heads ?? 1;
const kvHeads = config.num_key_value_heads ?? heads;
const headDim = config.head_dim ?? (config.hidden_size ?? 0) / heads;
const pastNames = session.inputNames.filter((name) => name.startsWith("past_key_values."));
const hasPositionIds = session.inputNames.includes("position_ids");
const pastMeta = session.inputMetadata.find((m) => m.name === pastNames[0]);
const half = pastMeta?.isTensor === true && pastMeta.type === "float16";

/** An empty past_key_values feed; float16 as bits, which onnxruntime-node takes on every Node. */
function emptyPast(): ort.Tensor {
  const dims = [1, kvHeads, 0, headDim];
  return half
    ? float16Tensor(new Uint16Array(0), dims)
    : new ort.Tensor("float32", new Float32Array(0), dims);
}

function argmax(data: Float32Array, offset: number, length: number): number {
  let best = 0;
  let bestValue = Number.NEGATIVE_INFINITY;
  for (let i = 0; i < length; i++) {
    const value = data[offset + i] as number;
    if (value > bestValue) {
      bestValue = value;
      best = i;
    }
  }
  return best;
}

/** Prefills `prompt`, then decodes greedily until `tokens` tokens exist. */
async function decode(
  prompt: string,
  tokens: number,
  conversion: LogitsConversionName,
): Promise<OrtLoopResult> {
  const convert = logitsConversions[conversion];
  const cpu = process.cpuUsage();
  const ids = encoder.encode({ kind: "text", text: prompt });
  let past: Record<string, ort.Tensor> = Object.fromEntries(
    pastNames.map((name) => [name, emptyPast()]),
  );
  let length = 0;
  let input = ids;
  let firstAt = 0;
  let conversionMs = 0;
  for (let produced = 0; produced < tokens; produced++) {
    const count = input.length;
    const feeds: Record<string, ort.Tensor> = {
      ...past,
      input_ids: new ort.Tensor("int64", BigInt64Array.from(input, BigInt), [1, count]),
      attention_mask: new ort.Tensor("int64", new BigInt64Array(length + count).fill(1n), [
        1,
        length + count,
      ]),
    };
    if (hasPositionIds) {
      const positions = BigInt64Array.from({ length: count }, (_, i) => BigInt(length + i));
      feeds.position_ids = new ort.Tensor("int64", positions, [1, count]);
    }
    const out = await session.run(feeds);
    const logits = out.logits as ort.Tensor;
    const vocab = logits.dims[2] as number;
    let next: number;
    if (logits.type === "float16") {
      const started = performance.now();
      const row = convert(float16Bits(logits.data), (count - 1) * vocab, vocab);
      conversionMs += performance.now() - started;
      next = argmax(row, 0, vocab);
    } else {
      next = argmax(logits.data as Float32Array, (count - 1) * vocab, vocab);
    }
    if (produced === 0) {
      firstAt = performance.now();
      conversionMs = 0;
    }
    // A float16 present comes back as a Float16Array on Node 24+, which the binding refuses.
    past = Object.fromEntries(
      pastNames.map((name) => {
        const present = out[name.replace("past_key_values.", "present.")] as ort.Tensor;
        return [name, half ? float16Tensor(float16Bits(present.data), present.dims) : present];
      }),
    );
    length += count;
    input = [next];
  }
  const seconds = (performance.now() - firstAt) / 1000;
  const used = process.cpuUsage(cpu);
  return {
    tokens,
    tokensPerSecond: (tokens - 1) / seconds,
    cpuUs: used.user + used.system,
    conversionUsPerToken: (conversionMs * 1000) / Math.max(1, tokens - 1),
  };
}

const handlers = createProcessStatsHandlers();
handlers.set("ready", () => null);
handlers.set("run", (request) =>
  decode(
    String(request.prompt),
    Number(request.tokens),
    (request.conversion as LogitsConversionName | undefined) ?? "table",
  ),
);
serveIpc(handlers);
