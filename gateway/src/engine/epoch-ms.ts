/**
 * @module The clock of generation timings: milliseconds since the Unix epoch with sub-millisecond
 * precision. `performance.now()` alone starts at each thread's own origin, so a worker's reading
 * means nothing on the main thread; adding `performance.timeOrigin` makes both comparable and
 * lets OpenTelemetry take them as span times as they are.
 */

/** Now, in milliseconds since the Unix epoch. */
export function epochMs(): number {
  return performance.timeOrigin + performance.now();
}
