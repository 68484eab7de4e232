/**
 * @module Thread priorities on Linux, where each thread has its own nice value. Garbage
 * collection helpers can fill a core; when the machine has fewer free cores than busy threads,
 * the kernel should run the main thread's I/O and the model workers' inference first. Model
 * workers keep the main thread's priority: lowered, they lost their cores to other processes on
 * a busy machine (docs/benchmarks.md, issue 16).
 */
import { readdirSync } from "node:fs";
import { setPriority } from "node:os";

/** The nice value of the helper threads. */
export const backgroundNice = 10;

/**
 * Lowers the priority of every thread of this process that exists now except the main thread;
 * called before the model workers start, so it reaches only V8's platform workers (concurrent
 * and parallel garbage collection for every isolate, the model workers' included) and libuv's
 * pool. A model worker's isolate collects often (each
 * decode step allocates new output tensors outside the JS heap) and its GC helpers otherwise
 * compete with the main thread at the default priority. The main thread's own collections do
 * not wait on them: V8 lets the joining thread do the work its helpers have not started.
 */
export function lowerHelperThreadsPriority(): void {
  try {
    for (const entry of readdirSync("/proc/self/task")) {
      const threadId = Number(entry);
      if (Number.isInteger(threadId) && threadId !== process.pid) {
        setPriority(threadId, backgroundNice);
      }
    }
  } catch {
    // Not Linux, or not permitted: helpers keep the default priority.
  }
}
