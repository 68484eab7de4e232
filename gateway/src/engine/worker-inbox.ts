/**
 * @module Hands a worker's messages to the main thread a turn of the event loop later, all that
 * arrived meanwhile at once.
 *
 * Why not handle them in the "message" event: Node's `MessagePort` keeps handling messages that
 * arrive while it handles one (up to 1,000 in a row), running microtasks after each, before it
 * returns to the event loop. When handing one decode step's tokens to the streams takes longer
 * than the worker's next step, the main thread never gets back to the sockets: at 1,000 paced
 * streams on connect-node's path it delivered 200 tokens/s, with the event loop stalled for
 * seconds, while the engine had generated every token. Deferred, the port's loop only queues,
 * and the steps that pile up while the main thread is busy are handed on together, so each
 * stream gets one message with several tokens instead of falling further behind.
 */

/** Queues items and hands them to `handle`, in order, on the next `setImmediate`. */
export interface WorkerInbox<T> {
  push(item: T): void;
  /** Hands on what is queued now (e.g. before the worker's death fails what is left). */
  flush(): void;
}

/** Creates an inbox that calls `handle` with every item queued since its last call. */
export function createWorkerInbox<T>(handle: (items: readonly T[]) => void): WorkerInbox<T> {
  let queued: T[] = [];
  const flush = () => {
    if (queued.length === 0) return;
    const items = queued;
    queued = [];
    handle(items);
  };
  return {
    push(item) {
      queued.push(item);
      if (queued.length === 1) setImmediate(flush);
    },
    flush,
  };
}
