/**
 * @module One model on the main thread: its worker thread, its bounded queue and the admission
 * rules in front of it. The worker batches everything this runner dispatches; the runner keeps
 * at most `maxBatchSize` generations there and at most `maxQueue` waiting, and refuses more at
 * once (`resource_exhausted`) instead of letting a queue grow without bound. When the worker
 * dies, every generation of the model fails with `unavailable` and the model is not ready until
 * `worker-supervisor.ts` has a new worker serving.
 */
import type { Logger } from "pino";
import type { ModelSource } from "../models/model-source.js";
import type { Generation, GenerationRequest, ModelDescription } from "./engine.js";
import { EngineError } from "./engine-error.js";
import type { EngineMetrics } from "./engine-metrics.js";
import { GenerationChannel } from "./generation-channel.js";
import { createWorkerInbox } from "./worker-inbox.js";
import type { FromWorker, FromWorkerBatch, ToWorker, WorkerConfig } from "./worker-protocol.js";
import { startWorkerSupervisor } from "./worker-supervisor.js";

/** Options for `startModelRunner`. */
export interface ModelRunnerOptions {
  readonly source: ModelSource;
  readonly isDefault: boolean;
  readonly metrics: EngineMetrics;
  readonly logger: Logger;
  readonly maxBatchSize: number;
  readonly maxQueue: number;
  readonly intraOpThreads: number;
  readonly defaultMaxTokens: number;
  readonly prefillChunkTokens: number;
  readonly streamIntervalMs: number;
  /** Events a generation may have buffered on the main thread before its worker pauses it. */
  readonly creditWindow: number;
  /** Called when `ready` changes. */
  readonly onReadinessChange: () => void;
}

/** A loaded model with its queue. */
export interface ModelRunner {
  readonly description: ModelDescription;
  /** Whether the model takes generations: false from its worker's death until a new one serves. */
  readonly ready: boolean;
  submit(request: GenerationRequest, signal: AbortSignal): Generation;
  /** Refuses new work, waits up to `graceMs` for the rest, then cancels it and stops the worker. */
  close(graceMs: number): Promise<void>;
}

/** A generation the runner tracks, from admission to its last event. */
interface Tracked {
  readonly id: number;
  readonly request: GenerationRequest;
  readonly channel: GenerationChannel;
  readonly admittedAt: number;
  lastTokenAt: number | undefined;
  dispatched: boolean;
  /** Set when the caller went away: the worker still owes a `released`. */
  cancelled: boolean;
  /** Events consumed but not yet returned to the worker as credit. */
  unsentCredits: number;
  readonly detach: () => void;
}

/** Maps an abort reason to the error the caller's generator throws. */
function abortError(reason: unknown): EngineError {
  const timedOut =
    typeof reason === "object" &&
    reason !== null &&
    (reason as { name?: unknown }).name === "TimeoutError";
  return timedOut
    ? new EngineError("deadline_exceeded", "the deadline passed during generation", {
        cause: reason,
      })
    : new EngineError("cancelled", "the caller cancelled the generation", { cause: reason });
}

/** Starts a model's worker and resolves once the model is loaded. */
export async function startModelRunner(options: ModelRunnerOptions): Promise<ModelRunner> {
  const { source, metrics, logger } = options;
  const labels = { model: source.id };
  const workerConfig: WorkerConfig = {
    modelDir: source.dir,
    variant: source.variant,
    intraOpThreads: options.intraOpThreads,
    prefillChunkTokens: options.prefillChunkTokens,
    streamIntervalMs: options.streamIntervalMs,
    defaultMaxTokens: options.defaultMaxTokens,
  };
  const tracked = new Map<number, Tracked>();
  const creditChunk = Math.max(1, Math.floor(options.creditWindow / 2));
  const waiting: Tracked[] = [];
  let nextId = 1;
  let active = 0;
  let closing = false;
  let drained: (() => void) | undefined;

  const send = (message: ToWorker) => supervisor.post(message);

  function updateGauges(): void {
    metrics.inFlight.set(labels, active);
    metrics.queueDepth.set(labels, waiting.length);
  }

  function dispatch(): void {
    while (active < options.maxBatchSize && waiting.length > 0) {
      const entry = waiting.shift() as Tracked;
      entry.dispatched = true;
      active++;
      const { request } = entry;
      send({
        type: "generate",
        id: entry.id,
        generation: {
          input: request.input,
          maxTokens: request.maxTokens,
          sampling: request.sampling,
          stop: request.stop,
          credits: options.creditWindow,
        },
      });
    }
    updateGauges();
    if (active === 0 && waiting.length === 0) drained?.();
  }

  /** Forgets a generation whose worker slot is free again. */
  function settle(entry: Tracked, finishReason: string): void {
    forget(entry, finishReason);
    if (entry.dispatched) active--;
    dispatch();
  }

  /** Stops tracking a generation and counts how it ended. */
  function forget(entry: Tracked, finishReason: string): void {
    tracked.delete(entry.id);
    entry.detach();
    metrics.generations.inc({ ...labels, finish_reason: finishReason });
  }

  function countTokens(entry: Tracked, count: number): void {
    if (count === 0) return;
    const now = performance.now();
    if (entry.lastTokenAt === undefined) {
      metrics.timeToFirstToken.observe(labels, (now - entry.admittedAt) / 1000);
    } else {
      metrics.interTokenLatency.observe(labels, (now - entry.lastTokenAt) / 1000);
    }
    entry.lastTokenAt = now;
    metrics.completionTokens.inc(labels, count);
  }

  function onMessage(message: FromWorker): void {
    if (message.type === "ready" || message.type === "load-failed") return;
    const entry = tracked.get(message.id);
    if (entry === undefined) return;
    switch (message.type) {
      case "started":
        metrics.promptTokens.inc(labels, message.promptTokens);
        break;
      case "text":
        if (entry.cancelled) break;
        countTokens(entry, message.tokenIds.length);
        entry.channel.push({ type: "text", text: message.text, tokenIds: message.tokenIds });
        break;
      case "finished":
        countTokens(entry, message.tokenIds.length);
        entry.channel.push({
          type: "finished",
          finishReason: message.finishReason,
          text: message.text,
          tokenIds: message.tokenIds,
          usage: message.usage,
        });
        settle(entry, entry.cancelled ? "cancelled" : message.finishReason);
        break;
      case "failed":
        entry.channel.fail(new EngineError(message.code, message.message));
        settle(entry, entry.cancelled ? "cancelled" : "error");
        break;
      case "released":
        settle(entry, "cancelled");
        break;
    }
  }

  /** Stops a generation whose caller is gone; the slot frees when the worker confirms. */
  function cancel(entry: Tracked, error: EngineError): void {
    if (entry.cancelled || !tracked.has(entry.id)) return;
    entry.cancelled = true;
    entry.channel.fail(error);
    if (entry.dispatched) {
      send({ type: "cancel", id: entry.id });
    } else {
      waiting.splice(waiting.indexOf(entry), 1);
      settle(entry, "cancelled");
    }
  }

  /** The worker died: nothing it held will be answered, and what waits has no worker to go to. */
  function failAll(): void {
    const error = new EngineError(
      "unavailable",
      `model ${source.id} stopped unexpectedly and is restarting: retry shortly`,
    );
    waiting.length = 0;
    for (const entry of [...tracked.values()]) {
      entry.channel.fail(error);
      forget(entry, entry.cancelled ? "cancelled" : "error");
    }
    active = 0;
    updateGauges();
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
  metrics.modelReady.set(labels, 1);
  metrics.workerRestarts.inc(labels, 0);
  updateGauges();

  const description: ModelDescription = {
    id: source.id,
    contextLength: facts.contextLength,
    hasChatTemplate: facts.hasChatTemplate,
    isDefault: options.isDefault,
    description: source.description,
    vocabSize: facts.vocabSize,
    dtype: facts.dtype,
  };

  return {
    description,
    get ready() {
      return supervisor.serving;
    },
    submit(request, signal) {
      if (closing) throw new EngineError("unavailable", "the gateway is shutting down");
      if (!supervisor.serving) {
        throw new EngineError(
          "unavailable",
          `model ${source.id} is restarting after its worker stopped: retry shortly`,
        );
      }
      if (signal.aborted) throw abortError(signal.reason);
      if (active >= options.maxBatchSize && waiting.length >= options.maxQueue) {
        throw new EngineError(
          "resource_exhausted",
          `model ${source.id} is at capacity (${options.maxBatchSize} generating, ${options.maxQueue} queued): retry later`,
        );
      }
      const id = nextId++;
      const onAbort = () => cancel(entry, abortError(signal.reason));
      const entry: Tracked = {
        id,
        request,
        admittedAt: performance.now(),
        lastTokenAt: undefined,
        dispatched: false,
        cancelled: false,
        unsentCredits: 0,
        detach: () => signal.removeEventListener("abort", onAbort),
        channel: new GenerationChannel(source.id, {
          onConsumed: (count) => {
            // Credit goes back in chunks of half the window: one message per token would double
            // the traffic between the threads, and the worker still never runs dry.
            entry.unsentCredits += count;
            if (entry.unsentCredits < creditChunk || entry.cancelled || !tracked.has(id)) return;
            send({ type: "credit", id, count: entry.unsentCredits });
            entry.unsentCredits = 0;
          },
          onAbandoned: () =>
            cancel(entry, new EngineError("cancelled", "the consumer stopped reading")),
        }),
      };
      signal.addEventListener("abort", onAbort, { once: true });
      tracked.set(id, entry);
      waiting.push(entry);
      dispatch();
      return entry.channel;
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
        cancel(entry, new EngineError("unavailable", "the gateway shut down before this finished"));
      }
      await supervisor.stop();
    },
  };
}
