/**
 * @module The synthetic pacing of the "paced" streaming runs, inside a model worker: every decode
 * step of onnxruntime starts on a fixed grid, as if each step over the whole batch took exactly
 * `paceMs`. The engine then emits one token per stream every `paceMs` for any number of streams,
 * in one batch per step, and sits idle in between like a worker waiting on a slow model would.
 * Prefill runs are not held (they are not on a real model's token grid either), so streams join
 * as fast as the engine admits them. Everything else (the batch decoder, sampling, detokenizing,
 * the message to the main thread and all that follows) is the gateway's own code.
 *
 * It exists because a model whose compute takes a known 20 ms per step for 1,000 streams is not
 * available on a 2-core machine; the pacing is the bench's, and its results say so.
 */
import { BroadcastChannel } from "node:worker_threads";
import { InferenceSession } from "onnxruntime-node";

type Run = InferenceSession["run"];

/** A decode step feeds one new token per row; a prefill feeds the prompt (or a chunk of it). */
function isDecodeStep(feeds: InferenceSession.FeedsType): boolean {
  const dims = feeds.input_ids?.dims;
  return dims !== undefined && dims.length === 2 && dims[1] === 1;
}

/**
 * Wraps `InferenceSession.prototype.run` with the grid; starts with pacing off. The main-thread
 * probe sets the pace (0 turns it off) over the BroadcastChannel `channelName`.
 */
export function installStepPacer(channelName: string): void {
  let paceMs = 0;
  let nextTick = 0;
  const untilNextTick = () => {
    const now = performance.now();
    // Ticks stay on a fixed grid (no drift from late timers); a late step starts a new grid.
    nextTick = Math.max(nextTick + paceMs, now);
    return new Promise<void>((resolve) => setTimeout(resolve, nextTick - now));
  };

  // The typings describe a factory; at run time it is the class every session is made from.
  const prototype = (InferenceSession as unknown as { prototype: { run: Run } }).prototype;
  const run = prototype.run;
  prototype.run = async function (
    this: InferenceSession,
    feeds: InferenceSession.FeedsType,
    ...rest: unknown[]
  ) {
    if (paceMs > 0 && isDecodeStep(feeds)) await untilNextTick();
    return (run as (...args: unknown[]) => ReturnType<Run>).call(this, feeds, ...rest);
  } as Run;

  const channel = new BroadcastChannel(channelName);
  channel.unref();
  channel.onmessage = (event) => {
    paceMs = Math.max(0, Number((event as { data: { paceMs: number } }).data.paceMs) || 0);
  };
}
