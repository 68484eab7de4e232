/**
 * @module How long a model's worker waits before it is started again after a crash: short at
 * first (a one-off crash costs little downtime), doubling while the crashes repeat (a worker that
 * dies at once does not spin a core reloading the model), back to short once a worker has served
 * for a while.
 */

/** Options for {@link createRestartBackoff}. */
export interface RestartBackoffOptions {
  /** The first delay, and the delay again after a worker served for `stableMs`. @default 100 */
  readonly initialMs?: number;
  /** The longest delay. @default 10_000 */
  readonly maxMs?: number;
  /** How long a worker must have served for its crash to count as a first one. @default 30_000 */
  readonly stableMs?: number;
}

/**
 * Returns the delay before the next start, given how long the worker that just went down had
 * served (0 for one that never loaded the model).
 */
export type RestartBackoff = (servedMs: number) => number;

/** Creates a backoff: `initialMs`, doubled on each crash up to `maxMs`, reset by a stable run. */
export function createRestartBackoff(options: RestartBackoffOptions = {}): RestartBackoff {
  const initialMs = options.initialMs ?? 100;
  const maxMs = options.maxMs ?? 10_000;
  const stableMs = options.stableMs ?? 30_000;
  let next = initialMs;
  return (servedMs) => {
    if (servedMs >= stableMs) next = initialMs;
    const delay = next;
    next = Math.min(next * 2, maxMs);
    return delay;
  };
}
