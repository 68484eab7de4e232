/**
 * @module One model on the main thread: its worker thread, the generations it tracks from
 * admission to their last event, and the credit that paces each. What may reach the worker, and
 * when, is the admission queue's (`admission-queue.ts`); what each generation adds to the
 * metrics is `generation-metrics.ts`'s. When the worker dies, every generation of the model fails
 * with `unavailable` and the model is not ready until `worker-supervisor.ts` has a new worker
 * serving.
 */

import type { Logger } from "pino";
import type { ModelSource } from "../models/model-source.js";
import { abortError } from "./abort-error.js";
import { AdmissionQueue, batchSizeFor } from "./admission-queue.js";
import type { Device } from "./devices.js";
import type {
  Detokenization,
  DetokenizationRequest,
  Generation,
  GenerationRequest,
  ModelDescription,
  Tokenization,
  TokenizationRequest,
} from "./engine.js";
import { EngineError } from "./engine-error.js";
import type { EngineMetrics } from "./engine-metrics.js";
import { epochMs } from "./epoch-ms.js";
import { GenerationChannel, type MutableTimings } from "./generation-channel.js";
import { createGenerationMetrics } from "./generation-metrics.js";
import { WorkerCalls } from "./worker-calls.js";
import { createWorkerInbox } from "./worker-inbox.js";
import type { FromWorker, FromWorkerBatch, ToWorker, WorkerConfig } from "./worker-protocol.js";
import { startWorkerSupervisor } from "./worker-supervisor.js";

/** Options for `startModelRunner`. */
export interface ModelRunnerOptions {
  readonly source: ModelSource;
  readonly isDefault: boolean;
  readonly metrics: EngineMetrics;
  readonly logger: Logger;
  /** Caps the batch the runner sizes from the model's KV cache and free memory. */
  readonly maxBatchSize: number | undefined;
  readonly maxQueue: number;
  readonly intraOpThreads: number;
  /** The model worker's nice value (Linux). */
  readonly workerNice: number;
  readonly device: Device;
  readonly defaultMaxTokens: number;
  readonly prefixCacheBytes: number;
  readonly prefillChunkTokens: number;
  readonly streamIntervalMs: number;
  /** Events a generation may have buffered on the main thread before its worker pauses it. */
  readonly creditWindow: number;
  /** How long a generation may be paused for credit before it gives its slot to a waiting one. */
  readonly parkAfterMs: number;
  /** Parked generations whose readers are away, per model; undefined: the batch size. */
  readonly maxParked: number | undefined;
  /** How long a parked generation's reader may read nothing before it is stopped. */
  readonly parkTimeoutMs: number;
  /** Called when `ready` changes. */
  readonly onReadinessChange: () => void;
}

/** A loaded model with its queue. */
export interface ModelRunner {
  readonly description: ModelDescription;
  /** Whether the model takes generations: false from its worker's death until a new one serves. */
  readonly ready: boolean;
  submit(request: GenerationRequest, signal: AbortSignal): Generation;
  /** Tokenizes in the worker, beside the generations (not through their queue: it is short). */
  tokenize(request: TokenizationRequest, signal: AbortSignal): Promise<Tokenization>;
  detokenize(request: DetokenizationRequest, signal: AbortSignal): Promise<Detokenization>;
  /** Refuses new work, waits up to `graceMs` for the rest, then cancels it and stops the worker. */
  close(graceMs: number): Promise<void>;
}

/** A generation the runner tracks, from admission to its last event. */
interface Tracked {
  readonly id: number;
  readonly request: GenerationRequest;
  readonly channel: GenerationChannel;
  /** The channel's timings: `epochMs()`, so the worker's prefill times compare with them. */
  readonly timings: MutableTimings;
  lastTokenAt: number | undefined;
  /** Set when the caller went away: the worker still owes a `released`. */
  cancelled: boolean;
  /** What a stopped generation counts as: `cancelled`, or `unread` when the runner stopped it. */
  stopReason: "cancelled" | "unread";
  /** Events consumed but not yet returned to the worker as credit. */
  unsentCredits: number;
  /**
   * The worker's credit for this generation as far as the runner knows: the window, plus credit
   * sent, less text events received. At 0 the worker has paused it (what is in flight can only
   * be more credit), so it is exact and needs no message from the worker.
   */
  workerCredits: number;
  readonly detach: () => void;
}

/** Starts a model's worker and resolves once the model is loaded. */
export async function startModelRunner(options: ModelRunnerOptions): Promise<ModelRunner> {
  const { source, metrics, logger } = options;
  const labels = { model: source.id };
  const record = createGenerationMetrics(metrics, source.id);
  const workerConfig: WorkerConfig = {
    modelDir: source.dir,
    variant: source.variant,
    intraOpThreads: options.intraOpThreads,
    nice: options.workerNice,
    device: options.device,
    prefillChunkTokens: options.prefillChunkTokens,
    streamIntervalMs: options.streamIntervalMs,
    defaultMaxTokens: options.defaultMaxTokens,
    kvPositions: new SharedArrayBuffer(BigInt64Array.BYTES_PER_ELEMENT),
    prefixCacheBytes: options.prefixCacheBytes,
  };
  const kvPositions = new BigInt64Array(workerConfig.kvPositions);
  const tracked = new Map<number, Tracked>();
  const calls = new WorkerCalls();
  const creditChunk = Math.max(1, Math.floor(options.creditWindow / 2));
  let nextId = 1;
  let closing = false;
  let drained: (() => void) | undefined;

  const send = (message: ToWorker) => supervisor.post(message);

  function start(entry: Tracked): void {
    const { request } = entry;
    record.scheduled(entry);
    entry.workerCredits = options.creditWindow;
    send({
      type: "generate",
      id: entry.id,
      generation: {
        input: request.input,
        maxTokens: request.maxTokens,
        sampling: request.sampling,
        stop: request.stop,
        stopTokenIds: request.stopTokenIds,
        topLogprobs: request.topLogprobs,
        credits: options.creditWindow,
      },
    });
  }

  function sendCredit(entry: Tracked): void {
    if (entry.unsentCredits === 0) return;
    send({ type: "credit", id: entry.id, count: entry.unsentCredits });
    entry.workerCredits += entry.unsentCredits;
    entry.unsentCredits = 0;
    queue.feed(entry);
  }

  /** Forgets a generation the worker no longer holds; its slot goes to the next one. */
  function settle(entry: Tracked, finishReason: string): void {
    forget(entry, finishReason);
    queue.remove(entry);
    if (tracked.size === 0) drained?.();
  }

  /** Stops tracking a generation and counts how it ended. */
  function forget(entry: Tracked, finishReason: string): void {
    tracked.delete(entry.id);
    entry.detach();
    record.ended(entry, finishReason);
  }

  function onMessage(message: FromWorker): void {
    if (message.type === "ready" || message.type === "load-failed") return;
    if (message.type === "prefix-cache") {
      record.prefixCacheBytes(message.bytes);
      return;
    }
    if (calls.settle(message)) return;
    const entry = tracked.get(message.id);
    if (entry === undefined) return;
    switch (message.type) {
      case "started":
        record.started(message.promptTokens, message.cachedTokens);
        break;
      case "text":
        if (message.prefill !== undefined) record.prefilled(entry, message.prefill);
        if (entry.cancelled) break;
        record.tokens(entry, message.tokenIds.length);
        entry.channel.push({
          type: "text",
          text: message.text,
          tokenIds: message.tokenIds,
          logprobs: message.logprobs,
        });
        if (--entry.workerCredits === 0) queue.starve(entry);
        break;
      case "finished":
        if (message.prefill !== undefined) record.prefilled(entry, message.prefill);
        record.tokens(entry, message.tokenIds.length);
        if (!entry.cancelled) record.finished(entry, message.usage);
        entry.channel.push({
          type: "finished",
          finishReason: message.finishReason,
          text: message.text,
          tokenIds: message.tokenIds,
          logprobs: message.logprobs,
          usage: message.usage,
        });
        settle(entry, entry.cancelled ? entry.stopReason : message.finishReason);
        break;
      case "failed":
        entry.channel.fail(new EngineError(message.code, message.message));
        settle(entry, entry.cancelled ? entry.stopReason : "error");
        break;
      case "released":
        settle(entry, entry.stopReason);
        break;
      case "tokenized":
      case "detokenized":
        break;
    }
  }

  /** Stops a generation; a slot or parking place frees when the worker confirms. */
  function cancel(entry: Tracked, error: EngineError, reason: Tracked["stopReason"]): void {
    if (entry.cancelled || !tracked.has(entry.id)) return;
    entry.cancelled = true;
    entry.stopReason = reason;
    entry.channel.fail(error);
    if (queue.withdraw(entry)) {
      settle(entry, reason);
    } else {
      send({ type: "cancel", id: entry.id });
    }
  }

  /** The worker died: nothing it held will be answered, and what waits has no worker to go to. */
  function failAll(): void {
    const error = new EngineError(
      "unavailable",
      `model ${source.id} stopped unexpectedly and is restarting: retry shortly`,
    );
    for (const entry of [...tracked.values()]) {
      entry.channel.fail(error);
      forget(entry, entry.cancelled ? entry.stopReason : "error");
    }
    calls.failAll(error);
    queue.clear();
    drained?.();
  }

  function setReady(ready: boolean): void {
    metrics.modelReady.set(labels, ready ? 1 : 0);
    options.onReadinessChange();
  }

  const inbox = createWorkerInbox<FromWorkerBatch>((batches) => {
    for (const batch of batches) for (const message of batch) onMessage(message);
  });
  const supervisor = await startWorkerSupervisor({
    modelId: source.id,
    config: workerConfig,
    logger,
    onMessage: inbox.push,
    onDown: () => {
      inbox.flush(); // what the worker sent before it died still counts
      failAll();
      setReady(false);
    },
    onRestart: () => metrics.workerRestarts.inc(labels),
    onReady: () => setReady(true),
  });
  const { facts } = supervisor;
  const maxBatch = batchSizeFor({
    cap: options.maxBatchSize,
    kvBytesPerPosition: facts.kvBytesPerPosition,
    contextLength: facts.contextLength,
  });
  // Built here, once the worker has told the model's KV cache size; nothing is admitted before.
  const queue = new AdmissionQueue<Tracked>({
    modelId: source.id,
    metrics,
    maxBatch,
    maxQueue: options.maxQueue,
    parkAfterMs: options.parkAfterMs,
    maxParked: options.maxParked ?? maxBatch,
    parkTimeoutMs: options.parkTimeoutMs,
    start,
    resume: sendCredit,
    // resource_exhausted (Connect/gRPC RESOURCE_EXHAUSTED) rather than cancelled (the caller did
    // not cancel), deadline_exceeded (no deadline of the caller's passed) or unavailable (which
    // invites a retry that would end the same way): gRPC itself reports flow-control limits
    // reached as RESOURCE_EXHAUSTED, and that is what happened, with the limit the server's.
    evict: (entry, unreadMs) =>
      cancel(
        entry,
        new EngineError(
          "resource_exhausted",
          `the client read nothing from this stream for ${(unreadMs / 1000).toFixed(1)} s while other requests waited for model ${source.id}, so its generation was stopped`,
        ),
        "unread",
      ),
  });
  logger.info(
    { model: source.id, maxBatch, intraOpThreads: options.intraOpThreads },
    "model batch sized",
  );
  const fullBatchBytes = maxBatch * facts.contextLength * facts.kvBytesPerPosition;
  const stopWatchingKv = metrics.watchKvCache(source.id, () => {
    const bytes = Number(Atomics.load(kvPositions, 0)) * facts.kvBytesPerPosition;
    return { bytes, usage: fullBatchBytes > 0 ? bytes / fullBatchBytes : 0 };
  });
  metrics.modelReady.set(labels, 1);
  metrics.workerRestarts.inc(labels, 0);

  const description: ModelDescription = {
    id: source.id,
    contextLength: facts.contextLength,
    hasChatTemplate: facts.hasChatTemplate,
    isDefault: options.isDefault,
    description: source.description,
    vocabSize: facts.vocabSize,
    dtype: facts.dtype,
  };

  /** Throws what refuses any work now: shutting down, a restarting worker, an aborted caller. */
  function checkAvailable(signal: AbortSignal): void {
    if (closing) throw new EngineError("unavailable", "the gateway is shutting down");
    if (!supervisor.serving) {
      throw new EngineError(
        "unavailable",
        `model ${source.id} is restarting after its worker stopped: retry shortly`,
      );
    }
    if (signal.aborted) throw abortError(signal.reason);
  }

  /** Throws invalid_argument for the first id outside the model's vocabulary. */
  function checkTokenIds(field: string, ids: readonly number[] | undefined): void {
    const outside = ids?.findIndex((id) => id >= facts.vocabSize) ?? -1;
    if (outside >= 0) {
      throw new EngineError(
        "invalid_argument",
        `${field}[${outside}] is ${ids?.[outside]}, outside model ${source.id}'s vocabulary of ${facts.vocabSize} tokens`,
      );
    }
  }

  return {
    description,
    get ready() {
      return supervisor.serving;
    },
    submit(request, signal) {
      checkAvailable(signal);
      checkTokenIds("stop_token_ids", request.stopTokenIds);
      const id = nextId++;
      const onAbort = () => cancel(entry, abortError(signal.reason), "cancelled");
      const timings: MutableTimings = {
        admittedAt: epochMs(),
        scheduledAt: undefined,
        prefillStartAt: undefined,
        prefillEndAt: undefined,
        endedAt: undefined,
      };
      const entry: Tracked = {
        id,
        request,
        timings,
        lastTokenAt: undefined,
        cancelled: false,
        stopReason: "cancelled",
        unsentCredits: 0,
        workerCredits: 0,
        detach: () => signal.removeEventListener("abort", onAbort),
        channel: new GenerationChannel(source.id, timings, {
          onConsumed: (count) => {
            // Credit goes back in chunks of half the window: one message per token would double
            // the traffic between the threads, and the worker still never runs dry.
            // A parked generation holds its credit back until it has a slot again.
            entry.unsentCredits += count;
            if (entry.cancelled || !tracked.has(id)) return;
            const enough = entry.unsentCredits >= creditChunk;
            if (queue.read(entry, enough) && enough) sendCredit(entry);
          },
          onAbandoned: () =>
            cancel(
              entry,
              new EngineError("cancelled", "the consumer stopped reading"),
              "cancelled",
            ),
        }),
      };
      queue.admit(entry);
      signal.addEventListener("abort", onAbort, { once: true });
      tracked.set(id, entry);
      return entry.channel;
    },
    async tokenize(request, signal) {
      checkAvailable(signal);
      const id = nextId++;
      const answer = await calls.call(id, "tokenized", signal, abortError, () =>
        send({
          type: "tokenize",
          id,
          input: request.input,
          addSpecialTokens: request.addSpecialTokens,
        }),
      );
      return { model: source.id, ...answer };
    },
    async detokenize(request, signal) {
      checkAvailable(signal);
      checkTokenIds("token_ids", request.tokenIds);
      const id = nextId++;
      const answer = await calls.call(id, "detokenized", signal, abortError, () =>
        send({
          type: "detokenize",
          id,
          tokenIds: request.tokenIds,
          skipSpecialTokens: request.skipSpecialTokens,
        }),
      );
      return { model: source.id, ...answer };
    },
    async close(graceMs) {
      closing = true;
      if (tracked.size > 0) {
        const done = new Promise<void>((resolve) => {
          drained = resolve;
        });
        let timer: NodeJS.Timeout | undefined;
        const timeout = new Promise<void>((resolve) => {
          timer = setTimeout(resolve, graceMs);
        });
        await Promise.race([done, timeout]);
        clearTimeout(timer);
      }
      for (const entry of [...tracked.values()]) {
        cancel(
          entry,
          new EngineError("unavailable", "the gateway shut down before this finished"),
          "cancelled",
        );
      }
      await supervisor.stop();
      calls.failAll(new EngineError("unavailable", "the gateway shut down before this finished"));
      stopWatchingKv();
    },
  };
}
