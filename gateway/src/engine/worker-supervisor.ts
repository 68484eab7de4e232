/**
 * @module Keeps one model's worker thread running. It starts the worker and waits until the model
 * is loaded; when the worker exits without being asked to (an uncaught error, a fatal error in
 * native code that ends the thread, `terminate()`), it reports the loss, starts a new worker on
 * the same model folder after a bounded backoff, and reports again once that one has loaded it.
 * It knows nothing of generations: the model runner decides what a loss means for them.
 */
import { Worker } from "node:worker_threads";
import type { Logger } from "pino";
import { createRestartBackoff, type RestartBackoff } from "./restart-backoff.js";
import type {
  FromWorkerBatch,
  ToWorker,
  WorkerConfig,
  WorkerModelFacts,
} from "./worker-protocol.js";

/** Options for `startWorkerSupervisor`. */
export interface WorkerSupervisorOptions {
  readonly modelId: string;
  readonly config: WorkerConfig;
  readonly logger: Logger;
  /** Receives what the serving worker posts. */
  readonly onMessage: (batch: FromWorkerBatch) => void;
  /** The serving worker exited unexpectedly: nothing it was doing will be answered. */
  readonly onDown: () => void;
  /** A replacement is being started (each attempt, including ones that fail to load). */
  readonly onRestart: () => void;
  /** A replacement has loaded the model and serves. */
  readonly onReady: () => void;
  /** The delays between restarts. @default createRestartBackoff() */
  readonly backoff?: RestartBackoff;
}

/** A model's worker, kept running. */
export interface WorkerSupervisor {
  /** What the first worker learned about the model; every replacement loads the same folder. */
  readonly facts: WorkerModelFacts;
  /** Whether a worker has the model loaded and takes messages. */
  readonly serving: boolean;
  /**
   * Sends to the serving worker. While none serves the message is dropped: it could only concern
   * a generation the runner already failed when the worker went down.
   */
  post(message: ToWorker): void;
  /** Stops restarting and ends the worker (serving or still loading); resolves once it is gone. */
  stop(): Promise<void>;
}

/** One worker thread and the two moments the supervisor waits for. */
interface WorkerHandle {
  readonly worker: Worker;
  /** Resolves with the model's facts once loaded; rejects (after terminating it) if it cannot. */
  readonly loaded: Promise<WorkerModelFacts>;
  /** Resolves with the exit code; listened to from the start, so it cannot be missed. */
  readonly exited: Promise<number>;
}

/** How long a worker gets to finish its step and exit before it is terminated. */
const workerStopTimeoutMs = 30_000;

/** Starts a worker on the model folder; `loaded` settles once it has loaded it or cannot. */
function startWorker(modelId: string, config: WorkerConfig): WorkerHandle {
  const worker = new Worker(new URL("./worker/engine-worker.js", import.meta.url), {
    workerData: config,
    name: `parley-model-${modelId}`,
  });
  const exited = new Promise<number>((resolve) => worker.once("exit", resolve));
  // Listeners are removed one by one: Worker keeps internal listeners that removeAllListeners()
  // would drop, after which no message arrives.
  let removeListeners: (() => void) | undefined;
  const loaded = new Promise<WorkerModelFacts>((resolve, reject) => {
    const onStartup = (batch: FromWorkerBatch) => {
      for (const message of batch) {
        if (message.type === "ready") resolve(message.facts);
        if (message.type === "load-failed") {
          reject(
            new Error(`model ${modelId} (${config.modelDir}) failed to load: ${message.message}`),
          );
        }
      }
    };
    const onExit = (code: number) => reject(new Error(`model worker exited with code ${code}`));
    worker.on("message", onStartup);
    worker.on("error", reject);
    worker.on("exit", onExit);
    removeListeners = () => {
      worker.off("message", onStartup);
      worker.off("error", reject);
      worker.off("exit", onExit);
    };
  })
    .finally(() => removeListeners?.())
    .catch(async (error: unknown) => {
      await worker.terminate();
      throw error;
    });
  return { worker, loaded, exited };
}

/**
 * Asks a worker to end after its current step. `worker.terminate()` during a `session.run`
 * aborts the whole process from native code, so it is only the last resort for a worker that
 * does not answer. A worker still loading reads the request once it has loaded.
 */
async function stopWorker({ worker, exited }: WorkerHandle): Promise<void> {
  worker.postMessage({ type: "shutdown" } satisfies ToWorker);
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<"late">((resolve) => {
    timer = setTimeout(() => resolve("late"), workerStopTimeoutMs);
  });
  const outcome = await Promise.race([exited, late]);
  clearTimeout(timer);
  if (outcome === "late") await worker.terminate();
}

/** Starts a model's worker and resolves once the model is loaded; rejects if it cannot be. */
export async function startWorkerSupervisor(
  options: WorkerSupervisorOptions,
): Promise<WorkerSupervisor> {
  const { modelId, config, logger } = options;
  const backoff = options.backoff ?? createRestartBackoff();
  let serving: WorkerHandle | undefined;
  /** A replacement that is loading the model. */
  let loading: WorkerHandle | undefined;
  let restartTimer: NodeJS.Timeout | undefined;
  let stopping = false;
  /** Replacements started since a worker last served. */
  let attempts = 0;

  function serve(handle: WorkerHandle): void {
    serving = handle;
    const since = performance.now();
    const { worker } = handle;
    worker.on("message", options.onMessage);
    worker.on("error", (error) => {
      logger.error({ err: error, model: modelId }, "model worker failed");
    });
    worker.on("exit", (code) => {
      serving = undefined;
      if (stopping) return;
      const servedMs = Math.round(performance.now() - since);
      const restartInMs = backoff(servedMs);
      logger.error(
        { model: modelId, code, servedMs, restartInMs },
        "model worker exited unexpectedly: failing its generations and restarting it",
      );
      options.onDown();
      scheduleRestart(restartInMs, code);
    });
  }

  function scheduleRestart(delayMs: number, code: number): void {
    restartTimer = setTimeout(() => {
      restartTimer = undefined;
      void restart(code);
    }, delayMs);
  }

  /** Starts a replacement; never rejects. `code` is the exit code of the worker it replaces. */
  async function restart(code: number): Promise<void> {
    attempts++;
    options.onRestart();
    const handle = startWorker(modelId, config);
    loading = handle;
    try {
      await handle.loaded;
    } catch (error) {
      if (stopping) return;
      loading = undefined;
      const restartInMs = backoff(0);
      logger.error(
        { err: error, model: modelId, code, attempt: attempts, restartInMs },
        "restarted model worker could not load the model",
      );
      scheduleRestart(restartInMs, code);
      return;
    }
    // stop() came while it loaded: it already asked this worker to end.
    if (stopping) return;
    loading = undefined;
    logger.warn({ model: modelId, code, attempt: attempts }, "model worker restarted");
    attempts = 0;
    serve(handle);
    options.onReady();
  }

  const first = startWorker(modelId, config);
  const facts = await first.loaded;
  serve(first);

  return {
    facts,
    get serving() {
      return serving !== undefined;
    },
    post(message) {
      serving?.worker.postMessage(message);
    },
    async stop() {
      stopping = true;
      clearTimeout(restartTimer);
      const workers = [serving, loading].filter((h): h is WorkerHandle => h !== undefined);
      await Promise.all(workers.map(stopWorker));
    },
  };
}
