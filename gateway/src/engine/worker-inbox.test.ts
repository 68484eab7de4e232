/**
 * A worker that posts faster than the main thread handles its messages does not keep the main
 * thread from its other work (timers, sockets): through the inbox, the event loop turns while
 * the flood lasts, and what piled up meanwhile is handed on in one call. Handled straight in the
 * "message" event, Node's MessagePort runs the whole flood before anything else.
 */
import assert from "node:assert/strict";
import { test } from "node:test";
import { Worker } from "node:worker_threads";
import { createWorkerInbox } from "./worker-inbox.js";

const messages = 150;
/** Messages posted at once, before the rest: more than half, queued before the first is handled. */
const burst = messages / 2 + 1;
/**
 * Posts `burst` numbers at once, then the rest one every 0.2 ms: fifteen times faster than the
 * handler takes them (3 ms each). The burst is what a MessagePort runs in a row whatever the
 * machine's load; the paced tail is what the inbox interleaves with timers. The worker raises
 * `workerData`'s flag once the burst is posted, and the main thread waits for it before it
 * handles anything: on a loaded machine the worker could otherwise be descheduled after its
 * first message, and the main thread would find a queue of one.
 */
const floodSource = `
const { parentPort, workerData } = require("node:worker_threads");
const pause = new Int32Array(new SharedArrayBuffer(4));
const posted = new Int32Array(workerData);
for (let i = 0; i < ${messages}; i++) {
  parentPort.postMessage(i);
  if (i === ${burst} - 1) {
    Atomics.store(posted, 0, 1);
    Atomics.notify(posted, 0);
  }
  if (i >= ${burst}) Atomics.wait(pause, 0, 0, 0.2);
}
`;

/** Keeps the thread busy, as handing a decode step's tokens to many streams does. */
function busy(ms: number): void {
  const end = performance.now() + ms;
  while (performance.now() < end) {
    // spin
  }
}

interface FloodResult {
  /** Messages handled when a timer set at the first message fired. */
  readonly handledWhenTimerFired: number;
  readonly handled: number[];
}

/** Floods the main thread; `listen` wires the worker's messages to the handler under test. */
async function flood(
  listen: (worker: Worker, handle: (items: readonly number[]) => void) => void,
): Promise<FloodResult> {
  const burstPosted = new SharedArrayBuffer(4);
  const worker = new Worker(floodSource, { eval: true, workerData: burstPosted });
  const handled: number[] = [];
  let handledWhenTimerFired = -1;
  const done = new Promise<void>((resolve) => {
    listen(worker, (items) => {
      if (handled.length === 0) {
        setTimeout(() => {
          handledWhenTimerFired = handled.length;
        }, 1);
      }
      handled.push(...items);
      busy(3);
      if (handled.length === messages) resolve();
    });
  });
  // Blocks this thread, so no message is handled before the whole burst is queued.
  Atomics.wait(new Int32Array(burstPosted), 0, 0, 10_000);
  await done;
  await worker.terminate();
  await new Promise((resolve) => setTimeout(resolve, 5));
  return { handledWhenTimerFired, handled };
}

test("through the inbox, timers run while a worker floods the main thread, and nothing is lost or reordered", async () => {
  const result = await flood((worker, handle) => {
    const inbox = createWorkerInbox<number>(handle);
    worker.on("message", inbox.push);
  });
  assert.deepEqual(
    result.handled,
    Array.from({ length: messages }, (_, i) => i),
  );
  assert.ok(
    result.handledWhenTimerFired >= 0 && result.handledWhenTimerFired < messages,
    `the timer fired after ${result.handledWhenTimerFired} of ${messages} messages`,
  );
});

test("handled in the message event, the same flood holds timers back until it is nearly over", async () => {
  const result = await flood((worker, handle) => {
    worker.on("message", (item: number) => handle([item]));
  });
  assert.ok(
    result.handledWhenTimerFired > messages / 2,
    `the timer fired after ${result.handledWhenTimerFired} of ${messages} messages`,
  );
});

test("flush hands on what is queued at once, and the pending turn then has nothing to do", async () => {
  const calls: number[][] = [];
  const inbox = createWorkerInbox<number>((items) => calls.push([...items]));
  inbox.push(1);
  inbox.push(2);
  inbox.flush();
  assert.deepEqual(calls, [[1, 2]]);
  await new Promise((resolve) => setImmediate(resolve));
  assert.deepEqual(calls, [[1, 2]]);
  inbox.push(3);
  await new Promise((resolve) => setImmediate(resolve));
  assert.deepEqual(calls, [[1, 2], [3]]);
});
