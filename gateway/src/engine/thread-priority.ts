/**
 * @module Thread priorities on Linux, where each thread has its own nice value and a new thread
 * starts with its creator's. When the machine has fewer free cores than busy threads, the kernel
 * should run the main thread first (it writes every stream's tokens), then the model workers'
 * inference, then garbage collection helpers, which can fill a core. Model workers choose their
 * own value (`--worker-nice`): they and the onnxruntime threads they create take it before the
 * session exists.
 */
import { readdirSync, readlinkSync } from "node:fs";
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

/**
 * Sets the nice value of the calling thread (a worker thread), so threads it creates later (an
 * onnxruntime session's pool) start with it too.
 */
export function setThisThreadNice(nice: number): void {
  try {
    // /proc/thread-self is a link to /proc/<pid>/task/<this thread's id>.
    const threadId = Number(readlinkSync("/proc/thread-self").split("/").pop());
    setPriority(threadId, nice);
  } catch {
    // Not Linux, or a value below the process's without the privilege: the thread keeps its own.
  }
}
