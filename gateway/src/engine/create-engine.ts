/**
 * @module Builds the engine: one model runner per model source (a worker thread and a queue for
 * a model folder, a connection pool for an `openai:` upstream), and the routing of each request
 * to its model.
 */

import type { Logger } from "pino";
import type { Registry } from "prom-client";
import { type AnyModelSource, isUpstreamSource } from "../models/model-source.js";
import type { Device } from "./devices.js";
import type { Engine } from "./engine.js";
import { EngineError } from "./engine-error.js";
import { createEngineMetrics } from "./engine-metrics.js";
import { type IntraOpThreadsSetting, intraOpThreadsFor } from "./intra-op-threads.js";
import { type ModelRunner, startModelRunner } from "./model-runner.js";
import { startOpenAiUpstream } from "./upstream/openai-upstream-model.js";

/** Options for `createEngine`. */
export interface EngineOptions {
  /** The models to load or connect to; the first is the default. */
  readonly models: readonly AnyModelSource[];
  readonly metrics: Registry;
  readonly logger: Logger;
  /**
   * Caps the generations one model decodes together. The batch is sized per model from its KV
   * cache and the memory free at load (`admission-queue.ts`). @default no cap below 256
   */
  readonly maxBatchSize?: number;
  /** Generations one model holds waiting beyond its batch; more are refused. @default 64 */
  readonly maxQueue?: number;
  /** ORT intra-op threads per model worker (`intra-op-threads.ts`). @default "auto" */
  readonly intraOpThreads?: IntraOpThreadsSetting;
  /**
   * The nice value of each model worker and its onnxruntime threads (Linux; 0-19). Above the
   * main thread's 0, the main thread's I/O for every stream wins a contended core over a
   * decode step. @default 5
   */
  readonly workerNice?: number;
  /** The execution provider every model runs on. @default "cpu" */
  readonly device?: Device;
  /**
   * Bytes of finished sequences' KV each model keeps, so a prompt that starts like an earlier
   * one (a chat's next turn) skips that prefill. 0 turns it off. @default 256 MiB
   */
  readonly prefixCacheBytes?: number;
  /** Tokens generated when a request sets no max_tokens. @default 256 */
  readonly defaultMaxTokens?: number;
  /** Prompt tokens prefilled per decode turn, so prefills interleave with decoding. @default 128 */
  readonly prefillChunkTokens?: number;
  /**
   * The least time between two worker-to-main-thread posts that carry only text: a fast stream
   * gets a few tokens per message instead of waking the main thread per token. @default 1
   */
  readonly streamIntervalMs?: number;
  /** Events buffered per generation before its worker pauses it. @default 16 */
  readonly creditWindow?: number;
  /**
   * How long a generation may be paused because its reader does not read before it gives its
   * batch slot to a waiting generation (it is parked: out of the batch, its KV cache kept, and
   * it resumes ahead of new arrivals once its reader reads again). @default 1000
   */
  readonly parkAfterMs?: number;
  /**
   * Parked generations whose readers are away, per model; beyond it the one unread longest
   * fails with `resource_exhausted`. 0 fails a reader-less generation instead of parking it.
   * @default the model's batch size (parked caches never outweigh the batch's own)
   */
  readonly maxParked?: number;
  /** How long a parked generation's reader may read nothing before it fails. @default 30000 */
  readonly parkTimeoutMs?: number;
  /**
   * How long an `openai:` upstream may send nothing (no response headers, or no bytes
   * mid-stream) before its generation fails with `deadline_exceeded`. @default 60000
   */
  readonly upstreamTimeoutMs?: number | undefined;
}

/** Loads every model (in parallel, each in its own worker) and returns the engine. */
export async function createEngine(options: EngineOptions): Promise<Engine> {
  if (options.models.length === 0) throw new Error("createEngine needs at least one model");
  const ids = new Set<string>();
  for (const { id } of options.models) {
    if (ids.has(id)) throw new Error(`two models have the id "${id}"`);
    ids.add(id);
  }
  const metrics = createEngineMetrics(options.metrics);
  const readinessListeners = new Set<() => void>();
  const onReadinessChange = () => {
    for (const listener of readinessListeners) listener();
  };
  const maxQueue = options.maxQueue ?? 64;
  const defaultMaxTokens = options.defaultMaxTokens ?? 256;
  const started = await Promise.allSettled(
    options.models.map((source, index) =>
      isUpstreamSource(source)
        ? startOpenAiUpstream({
            source,
            isDefault: index === 0,
            metrics,
            logger: options.logger,
            // What a local model holds at most, generating and queued.
            maxInFlight: (options.maxBatchSize ?? 16) + maxQueue,
            timeoutMs: options.upstreamTimeoutMs ?? 60_000,
            defaultMaxTokens,
          })
        : startModelRunner({
            source,
            isDefault: index === 0,
            metrics,
            logger: options.logger,
            maxBatchSize: options.maxBatchSize,
            maxQueue,
            intraOpThreads: intraOpThreadsFor(options.intraOpThreads ?? "auto"),
            workerNice: options.workerNice ?? 5,
            device: options.device ?? "cpu",
            defaultMaxTokens,
            prefixCacheBytes: options.prefixCacheBytes ?? 256 * 1024 * 1024,
            prefillChunkTokens: options.prefillChunkTokens ?? 128,
            streamIntervalMs: options.streamIntervalMs ?? 1,
            creditWindow: options.creditWindow ?? 16,
            parkAfterMs: options.parkAfterMs ?? 1000,
            maxParked: options.maxParked,
            parkTimeoutMs: options.parkTimeoutMs ?? 30_000,
            onReadinessChange,
          }),
    ),
  );
  const runners: ModelRunner[] = [];
  for (const result of started) if (result.status === "fulfilled") runners.push(result.value);
  const failure = started.find((r) => r.status === "rejected");
  if (failure !== undefined) {
    await Promise.all(runners.map((r) => r.close(0)));
    throw failure.reason;
  }
  const byId = new Map(runners.map((r) => [r.description.id, r]));
  const fallback = runners[0] as ModelRunner;

  function runnerFor(model: string): ModelRunner {
    const runner = model === "" ? fallback : byId.get(model);
    if (runner === undefined) {
      throw new EngineError(
        "not_found",
        `model "${model}" is not loaded; loaded models: ${[...byId.keys()].join(", ")}`,
      );
    }
    return runner;
  }

  return {
    models: () => runners.map((r) => r.description),
    readyModels: () => runners.filter((r) => r.ready).map((r) => r.description.id),
    onReadinessChange(listener) {
      readinessListeners.add(listener);
      return () => {
        readinessListeners.delete(listener);
      };
    },
    generate(request, signal) {
      return runnerFor(request.model).submit(request, signal);
    },
    async tokenize(request, signal) {
      return runnerFor(request.model).tokenize(request, signal);
    },
    async detokenize(request, signal) {
      return runnerFor(request.model).detokenize(request, signal);
    },
    async close(graceMs = 0) {
      await Promise.all(runners.map((r) => r.close(graceMs)));
    },
  };
}
