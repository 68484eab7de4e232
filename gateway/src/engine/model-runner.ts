/**
 * @module One model on the main thread: its worker thread, its bounded queue and the admission
 * rules in front of it. The worker batches everything this runner dispatches; the runner keeps
 * at most `maxBatchSize` generations there and at most `maxQueue` waiting, and refuses more at
 * once (`resource_exhausted`) instead of letting a queue grow without bound.
 */
import { Worker } from "node:worker_threads";
import type { Logger } from "pino";
import type { ModelSource } from "../models/model-source.js";
import type { Generation, GenerationRequest, ModelDescription } from "./engine.js";
import { EngineError } from "./engine-error.js";
import type { EngineMetrics } from "./engine-metrics.js";
import { GenerationChannel } from "./generation-channel.js";
import type {
  FromWorker,
  FromWorkerBatch,
  ToWorker,
  WorkerConfig,
  WorkerModelFacts,
} from "./worker-protocol.js";

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
  /** Events a generation may have buffered on the main thread before its worker pauses it. */
  readonly creditWindow: number;
}

/** A loaded model with its queue. */
export interface ModelRunner {
  readonly description: ModelDescription;
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

/** How long a worker gets to finish its step and exit before it is terminated. */
const workerStopTimeoutMs = 30_000;

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
    defaultMaxTokens: options.defaultMaxTokens,
  };
  const worker = new Worker(new URL("./worker/engine-worker.js", import.meta.url), {
    workerData: workerConfig,
    name: `parley-model-${source.id}`,
  });
  const tracked = new Map<number, Tracked>();
  const creditChunk = Math.max(1, Math.floor(options.creditWindow / 2));
  const waiting: Tracked[] = [];
  let nextId = 1;
  let active = 0;
  let closing = false;
  let dead: EngineError | undefined;
  let drained: (() => void) | undefined;

  const send = (message: ToWorker) => worker.postMessage(message);

  /**
   * Asks the worker to end after its current step. `worker.terminate()` during a
   * `session.run` aborts the whole process from native code, so it is only the last resort
   * for a worker that does not answer.
   */
  async function stopWorker(): Promise<void> {
    if (dead !== undefined) return;
    const exited = new Promise<void>((resolve) => worker.once("exit", () => resolve()));
    send({ type: "shutdown" });
    let timer: NodeJS.Timeout | undefined;
    const late = new Promise<"late">((resolve) => {
      timer = setTimeout(() => resolve("late"), workerStopTimeoutMs);
    });
    const outcome = await Promise.race([exited, late]);
    clearTimeout(timer);
    if (outcome === "late") await worker.terminate();
  }

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
    tracked.delete(entry.id);
    entry.detach();
    metrics.generations.inc({ ...labels, finish_reason: finishReason });
    if (entry.dispatched) active--;
    dispatch();
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
    if (entry.cancelled) return;
    entry.cancelled = true;
    entry.channel.fail(error);
    if (entry.dispatched) {
      send({ type: "cancel", id: entry.id });
    } else {
      waiting.splice(waiting.indexOf(entry), 1);
      settle(entry, "cancelled");
    }
  }

  // Listeners are removed one by one: Worker keeps internal listeners that removeAllListeners()
  // would drop, after which no message arrives.
  let startupListeners: (() => void) | undefined;
  const facts = await new Promise<WorkerModelFacts>((resolve, reject) => {
    const onStartup = (batch: FromWorkerBatch) => {
      for (const message of batch) {
        if (message.type === "ready") resolve(message.facts);
        if (message.type === "load-failed") {
          reject(
            new Error(`model ${source.id} (${source.dir}) failed to load: ${message.message}`),
          );
        }
      }
    };
    const onExit = (code: number) => reject(new Error(`model worker exited with code ${code}`));
    worker.on("message", onStartup);
    worker.on("error", reject);
    worker.on("exit", onExit);
    startupListeners = () => {
      worker.off("message", onStartup);
      worker.off("error", reject);
      worker.off("exit", onExit);
    };
  }).catch(async (error: unknown) => {
    await worker.terminate();
    throw error;
  });
  startupListeners?.();

  worker.on("message", (batch: FromWorkerBatch) => {
    for (const message of batch) onMessage(message);
  });
  worker.on("error", (error) => {
    logger.error({ err: error, model: source.id }, "model worker failed");
  });
  worker.on("exit", (code) => {
    dead = new EngineError("unavailable", `model ${source.id} is not available`);
    if (!closing) logger.error({ model: source.id, code }, "model worker exited");
    for (const entry of tracked.values()) {
      entry.channel.fail(dead);
      settle(entry, "error");
    }
    waiting.length = 0;
    active = 0;
    updateGauges();
    drained?.();
  });
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
    submit(request, signal) {
      if (dead !== undefined) throw dead;
      if (closing) throw new EngineError("unavailable", "the gateway is shutting down");
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
      if (tracked.size > 0 && dead === undefined) {
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
      await stopWorker();
    },
  };
}
