/**
 * @module Where the worker's messages wait before they cross to the main thread. Every
 * `postMessage` to a main thread that sleeps wakes it, and on this kind of VM the wake-up costs
 * the posting thread 10-14 µs, against 1.6 µs to a busy thread (measured; see
 * docs/benchmarks.md). On a small model whose decode step takes 150 µs, one post per token is
 * 7-9% of the step. So text waits until at least `intervalMs` has passed since the last post:
 * a fast stream sends a few tokens per message, a stream slower than the interval (any model
 * people chat with) still sends every step's tokens at the end of that step.
 *
 * This is vLLM's `--stream-interval` trade, bounded in time rather than in tokens. A sequence's
 * first text and every other kind of message (start, end, failure, release) leave at once,
 * taking whatever text waits with them, so time to first token and the end of a stream never
 * wait. Hand-written because it is a dozen lines specific to this wire.
 */
import type { FromWorker, FromWorkerBatch } from "../worker-protocol.js";

/** Options for `createOutbox`. */
export interface OutboxOptions {
  /** Posts a batch to the main thread. */
  readonly send: (batch: FromWorkerBatch) => void;
  /** The least time between two posts that carry only text; 0 posts each step's at its end. */
  readonly intervalMs: number;
}

/** Collects the worker's messages and decides when they leave. */
export interface Outbox {
  post(message: FromWorker): void;
  /** Sends whatever waits now: before the thread ends, nothing may stay behind. */
  flush(): void;
}

/** Creates an outbox; messages always leave in the order they were posted. */
export function createOutbox(options: OutboxOptions): Outbox {
  const { send, intervalMs } = options;
  let waiting: FromWorker[] = [];
  /** Generations that have sent text, so their next text may wait. */
  const streaming = new Set<number>();
  let lastSent = Number.NEGATIVE_INFINITY;
  let flushQueued = false;
  let timer: NodeJS.Timeout | undefined;

  function flush(): void {
    flushQueued = false;
    clearTimeout(timer);
    timer = undefined;
    if (waiting.length === 0) return;
    const batch: FromWorkerBatch = waiting;
    waiting = [];
    lastSent = performance.now();
    send(batch);
  }

  function isUrgent(message: FromWorker): boolean {
    if (message.type !== "text") {
      if ("id" in message) streaming.delete(message.id);
      return true;
    }
    if (streaming.has(message.id)) return false;
    streaming.add(message.id);
    return true;
  }

  return {
    post(message) {
      waiting.push(message);
      const urgent = isUrgent(message);
      if (flushQueued || (!urgent && timer !== undefined)) return;
      const wait = urgent ? 0 : lastSent + intervalMs - performance.now();
      if (wait > 0) {
        // A decode step blocks this thread, so the timer fires between steps: text waits at
        // most the interval plus one step.
        timer = setTimeout(flush, wait);
        return;
      }
      // A step emits every row's event before its next await; a microtask sends them together.
      flushQueued = true;
      queueMicrotask(flush);
    },
    flush,
  };
}
