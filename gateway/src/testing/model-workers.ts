/**
 * @module Finds the engine's model worker threads from a test, so that a test can crash one for
 * real. Node emits `process.on("worker")` for every `Worker` the process creates; listening to it
 * needs no hook in the runner and fakes nothing: the test holds the runner's own `Worker` and
 * ends the actual thread with `terminate()`. To the runner that is what any fatal error in a
 * worker looks like: an "exit" it did not ask for. A test file runs in its own process (node
 * --test), and the engine's model workers are the only threads it starts.
 *
 * Terminate a worker only while it waits between steps (no generation, or every generation
 * paused for credit): terminating a thread inside onnxruntime's native `session.run` aborts the
 * whole process (see `stopWorker` in worker-supervisor.ts), which would end the test run.
 */
import type { Worker } from "node:worker_threads";

/** The worker threads started since {@link watchWorkers}, in order, and whether each ended. */
export interface WatchedWorkers {
  readonly started: readonly Worker[];
  /** How many of `started` have exited. */
  exited(): number;
  /** Resolves once `count` workers have been started. */
  startedCount(count: number): Promise<void>;
  /** Stops watching. */
  stop(): void;
}

/** Starts recording every worker thread this process creates. */
export function watchWorkers(): WatchedWorkers {
  const started: Worker[] = [];
  let exited = 0;
  const waiters = new Set<() => void>();
  const onWorker = (worker: Worker) => {
    started.push(worker);
    worker.once("exit", () => exited++);
    for (const waiter of waiters) waiter();
  };
  process.on("worker", onWorker);
  return {
    started,
    exited: () => exited,
    startedCount: (count) =>
      new Promise<void>((resolve) => {
        const check = () => {
          if (started.length < count) return;
          waiters.delete(check);
          resolve();
        };
        waiters.add(check);
        check();
      }),
    stop: () => process.off("worker", onWorker),
  };
}
