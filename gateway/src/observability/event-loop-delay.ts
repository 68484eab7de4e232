/**
 * @module Event-loop delay of the main thread as `parley_event_loop_delay_seconds`. The main
 * thread does only I/O; a growing delay means something blocks it and every stream stutters.
 */
import { monitorEventLoopDelay } from "node:perf_hooks";
import { Gauge, type Registry } from "prom-client";

/** Options of {@link createEventLoopDelayMetric}. */
export interface EventLoopDelayMetricOptions {
  readonly registry: Registry;
  /** Sampling resolution of the delay timer. @example 10 */
  readonly resolutionMs?: number;
}

/** The running monitor; `stop()` disables its timer. */
export interface EventLoopDelayMetric {
  stop(): void;
}

/**
 * Registers a gauge with `quantile` 0.5, 0.99 and 1 (the maximum), computed over the delays
 * sampled since the previous scrape (the histogram is reset at each scrape, as prom-client does
 * for its own `nodejs_eventloop_lag_*`).
 */
export function createEventLoopDelayMetric(
  options: EventLoopDelayMetricOptions,
): EventLoopDelayMetric {
  const resolutionMs = options.resolutionMs ?? 10;
  const histogram = monitorEventLoopDelay({ resolution: resolutionMs });
  histogram.enable();
  new Gauge({
    name: "parley_event_loop_delay_seconds",
    help: "Main-thread event loop delay since the previous scrape; quantile 1 is the maximum.",
    labelNames: ["quantile"],
    registers: [options.registry],
    collect() {
      // The histogram records nanoseconds, and each sample includes the sampling timer's own
      // period: subtract it so an idle loop reads 0. With no sample yet, percentiles are 0.
      const seconds = (ns: number) =>
        Number.isFinite(ns) ? Math.max(0, ns / 1e6 - resolutionMs) / 1e3 : 0;
      this.set({ quantile: "0.5" }, seconds(histogram.percentile(50)));
      this.set({ quantile: "0.99" }, seconds(histogram.percentile(99)));
      this.set({ quantile: "1" }, histogram.count > 0 ? seconds(histogram.max) : 0);
      histogram.reset();
    },
  });
  return { stop: () => histogram.disable() };
}
