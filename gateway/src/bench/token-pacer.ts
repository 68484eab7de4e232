/**
 * @module The synthetic pacing of the "paced" streaming runs, inside a model worker: token events
 * bound for the main thread wait in a per-generation line and leave on a fixed grid, one per
 * generation per tick and all of a tick's in one batch, as if every decode step took exactly
 * `paceMs`. Everything downstream (the engine's main-thread runner, the service, the server, the
 * client) sees a model emitting one token per stream every `paceMs`, for any number of streams,
 * while the real decode loop runs ahead of the line by at most the engine's credit window.
 *
 * It exists because a model whose compute takes a known 20 ms per step for 1,000 streams is not
 * available on a 2-core machine; the pacing is the bench's, and its results say so.
 */
import { BroadcastChannel, type MessagePort } from "node:worker_threads";
import type { FromWorker, FromWorkerBatch } from "../engine/worker-protocol.js";

/** The channel the main-thread probe uses to change the pace (0 turns the line off). */
export const paceChannelName = "parley-bench-pace";

/**
 * Wraps `port.postMessage` with the pacing line; starts with the line off. The worker posts a
 * batch per step, and so does the line: one batch per tick with every stream's next token.
 */
export function installTokenPacer(port: MessagePort): void {
  const post = port.postMessage.bind(port);
  const lines = new Map<number, FromWorker[]>();
  let paceMs = 0;
  let timer: NodeJS.Timeout | undefined;
  let nextTick = 0;

  const send = (batch: FromWorker[]) => {
    if (batch.length > 0) post(batch satisfies FromWorkerBatch);
  };
  const flushAll = () => {
    const all = [...lines.values()].flat();
    lines.clear();
    send(all);
  };
  const tick = () => {
    timer = undefined;
    const step: FromWorker[] = [];
    for (const [id, line] of lines) {
      const message = line.shift();
      if (message !== undefined) step.push(message);
      if (line.length === 0) lines.delete(id);
    }
    send(step);
    schedule();
  };
  // Ticks stay on a fixed grid (no drift from late timers); an idle line stops the timer.
  const schedule = () => {
    if (timer !== undefined || paceMs === 0 || lines.size === 0) return;
    const now = performance.now();
    nextTick = Math.max(nextTick + paceMs, now);
    timer = setTimeout(tick, nextTick - now);
  };

  port.postMessage = (batch: FromWorkerBatch, transfer?: never) => {
    if (paceMs === 0 && lines.size === 0) return post(batch, transfer);
    const now: FromWorker[] = [];
    for (const message of batch) {
      const id = "id" in message ? message.id : undefined;
      const line = id === undefined ? undefined : lines.get(id);
      if (id === undefined) {
        now.push(message);
      } else if (message.type === "text" || message.type === "finished") {
        if (line === undefined) {
          lines.set(id, [message]);
          // A line that was idle starts on the grid's next tick.
          if (timer === undefined) nextTick = performance.now();
        } else {
          line.push(message);
        }
      } else if (message.type === "released") {
        lines.delete(id); // the caller is gone: its queued tokens would be dropped anyway
        now.push(message);
      } else {
        if (line !== undefined) now.push(...line);
        lines.delete(id);
        now.push(message);
      }
    }
    send(now);
    schedule();
  };
  const channel = new BroadcastChannel(paceChannelName);
  channel.unref();
  channel.onmessage = (event) => {
    paceMs = Math.max(0, Number((event as { data: { paceMs: number } }).data.paceMs) || 0);
    if (paceMs === 0) {
      clearTimeout(timer);
      timer = undefined;
      flushAll();
    } else {
      schedule();
    }
  };
}
