/**
 * @module The engine ceiling: a tight greedy decode loop on onnxruntime-node in one thread of one
 * process, with the KV cache fed straight back (each step's `present.*` tensors are the next
 * step's `past_key_values.*`). No worker, no messages, no detokenizer, no sampler beyond argmax:
 * what the model costs with nothing around it. Same session options as the engine's worker.
 *
 * Child entry (`node ort-decode-loop.js <model dir>`), driven over IPC: `ready`, then `run`.
 */
import * as ort from "onnxruntime-node";
import { createPromptEncoder } from "../engine/worker/prompt-encoder.js";
import { readModelFolder } from "../models/model-folder.js";
import { serveIpc } from "./ipc-channel.js";
import { createProcessStatsHandlers } from "./process-stats.js";

/** What one `run` measured. */
export interface OrtLoopResult {
  readonly tokens: number;
  /** Generated tokens after the first, per second of decoding (prefill excluded). */
  readonly tokensPerSecond: number;
  readonly cpuUs: number;
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
async function decode(prompt: string, tokens: number): Promise<OrtLoopResult> {
  const cpu = process.cpuUsage();
  const ids = encoder.encode({ kind: "text", text: prompt });
  let past: Record<string, ort.Tensor> = Object.fromEntries(
    pastNames.map((name) => [
      name,
      new ort.Tensor("float32", new Float32Array(0), [1, kvHeads, 0, headDim]),
    ]),
  );
  let length = 0;
  let input = ids;
  let firstAt = 0;
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
    const next = argmax(logits.data as Float32Array, (count - 1) * vocab, vocab);
    if (produced === 0) firstAt = performance.now();
    past = Object.fromEntries(
      pastNames.map((name) => [
        name,
        out[name.replace("past_key_values.", "present.")] as ort.Tensor,
      ]),
    );
    length += count;
    input = [next];
  }
  const seconds = (performance.now() - firstAt) / 1000;
  const used = process.cpuUsage(cpu);
  return { tokens, tokensPerSecond: (tokens - 1) / seconds, cpuUs: used.user + used.system };
}

const handlers = createProcessStatsHandlers();
handlers.set("ready", () => null);
handlers.set("run", (request) => decode(String(request.prompt), Number(request.tokens)));
serveIpc(handlers);
