/**
 * @module Token arrival times on the gateway's main thread, for the gateway-added latency: the
 * moment each token from a model worker reaches the main thread (where the engine's own
 * `parley_inter_token_latency_seconds` observes it) is stamped before the engine's listener
 * runs. Streams are told apart by the request's `seed`, which the bench sets to a unique key per
 * stream and which greedy decoding (temperature 0) ignores.
 *
 * Installed by patching `Worker.prototype` from a `--import` preload: the gateway's code is
 * not changed, and the patch adds one clock read and one array push per token.
 */
import { Worker } from "node:worker_threads";
import type { FromWorker, FromWorkerBatch, ToWorker } from "@parley/gateway/worker-protocol";
import type { IpcHandler } from "./ipc-channel.js";
import { monotonicMs } from "./summary-stats.js";

/** The engine's own message types: a change there fails this module's type check. */
type GenerateMessage = Extract<ToWorker, { type: "generate" }>;
type TokenMessage = Extract<FromWorker, { type: "text" | "finished" }>;

function isGenerate(message: unknown): message is GenerateMessage {
  return (message as { type?: unknown } | null)?.type === "generate";
}

function isToken(message: unknown): message is TokenMessage {
  const type = (message as { type?: unknown } | null)?.type;
  return type === "text" || type === "finished";
}

/** Patches the worker message paths and returns the IPC handler `take-token-trace`. */
export function installTokenTrace(): Map<string, IpcHandler> {
  /** Per worker (generation ids are per model), generation id to its stream key and stamps. */
  const byWorker = new WeakMap<Worker, Map<number, { key: string; times: number[] }>>();
  const finished: { key: string; times: number[] }[] = [];
  const tracesOf = (worker: Worker) => {
    let traces = byWorker.get(worker);
    if (traces === undefined) {
      traces = new Map();
      byWorker.set(worker, traces);
    }
    return traces;
  };
  const live = new Set<Map<number, { key: string; times: number[] }>>();

  const postMessage = Worker.prototype.postMessage;
  Worker.prototype.postMessage = function (this: Worker, message: unknown, transfer?: never) {
    if (isGenerate(message) && message.generation.sampling.seed !== undefined) {
      const traces = tracesOf(this);
      live.add(traces);
      traces.set(message.id, { key: String(message.generation.sampling.seed), times: [] });
    }
    return postMessage.call(this, message, transfer);
  };
  const emit = Worker.prototype.emit;
  Worker.prototype.emit = function (this: Worker, name: string | symbol, ...args: unknown[]) {
    // The worker posts a batch of events; every token in it arrived now.
    const traces = byWorker.get(this);
    if (name === "message" && traces !== undefined && Array.isArray(args[0])) {
      const batch = args[0] as FromWorkerBatch;
      const now = monotonicMs();
      for (const message of batch) {
        if (!isToken(message)) continue;
        const trace = traces.get(message.id);
        if (trace === undefined) continue;
        for (let i = 0; i < message.tokenIds.length; i++) trace.times.push(now);
        if (message.type === "finished") {
          traces.delete(message.id);
          finished.push(trace);
        }
      }
    }
    return emit.call(this, name, ...args);
  };

  return new Map<string, IpcHandler>([
    [
      "take-token-trace",
      () => {
        // Streams still open (cancelled ones) are taken too; their stamps stop where they did.
        const all = [...finished];
        for (const traces of live) {
          all.push(...traces.values());
          traces.clear();
        }
        finished.length = 0;
        return Object.fromEntries(all.map((t) => [t.key, Float64Array.from(t.times)]));
      },
    ],
  ]);
}
