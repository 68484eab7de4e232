/**
 * @module What a child process reports about itself: CPU time (whole process, and the main
 * thread alone where Linux exposes it), resident memory and event-loop delay. Client and server
 * share this machine's cores, so every throughput figure is read beside the CPU it cost.
 */
import { readFileSync } from "node:fs";
import { monitorEventLoopDelay } from "node:perf_hooks";
import type { IpcHandler } from "./ipc-channel.js";

/** One reading; CPU figures are cumulative since the process started. */
export interface ProcessStats {
  /** User + system CPU of every thread (main, workers, ORT, libuv pool), in µs. */
  readonly cpuUs: number;
  /** CPU of the main thread alone in µs (Linux schedstat); NaN elsewhere. */
  readonly mainThreadCpuUs: number;
  /**
   * Time the main thread was ready to run but waited for a core, in µs (Linux schedstat); NaN
   * elsewhere. Event-loop delay includes it: on a busy 2-core machine a thread can be late
   * because every core was taken, not because JavaScript blocked it.
   */
  readonly mainThreadRunQueueUs: number;
  readonly rssBytes: number;
  /** The most resident memory the process has held since it started. */
  readonly peakRssBytes: number;
  /** Event-loop delay since the last reset, in ms: the timer's lateness, resolution removed. */
  readonly eventLoopDelayMs: { readonly p50: number; readonly p99: number; readonly max: number };
}

/** The delay timer's period. Node records whole periods, so it is subtracted from each figure. */
const resolutionMs = 5;

/**
 * The main thread's on-CPU and run-queue times in µs from /proc (nanosecond resolution, unlike
 * the clock ticks of /proc/…/stat).
 */
function mainThreadSchedstat(): { cpuUs: number; runQueueUs: number } {
  try {
    const [cpu = "", wait = ""] = readFileSync(
      `/proc/self/task/${process.pid}/schedstat`,
      "utf8",
    ).split(" ");
    return { cpuUs: Number(cpu) / 1000, runQueueUs: Number(wait) / 1000 };
  } catch {
    return { cpuUs: Number.NaN, runQueueUs: Number.NaN };
  }
}

/**
 * Starts the event-loop delay monitor and returns the IPC handlers `stats` (a reading) and
 * `reset-event-loop-delay` (starts a new delay window).
 */
export function createProcessStatsHandlers(): Map<string, IpcHandler> {
  const histogram = monitorEventLoopDelay({ resolution: resolutionMs });
  histogram.enable();
  // monitorEventLoopDelay records the time between timer runs, so an idle loop reads as the
  // resolution itself; the delay is what exceeds it.
  const delayMs = (ns: number) =>
    histogram.count === 0 ? 0 : Math.max(0, ns / 1e6 - resolutionMs);
  const read = (): ProcessStats => {
    const cpu = process.cpuUsage();
    const main = mainThreadSchedstat();
    return {
      cpuUs: cpu.user + cpu.system,
      mainThreadCpuUs: main.cpuUs,
      mainThreadRunQueueUs: main.runQueueUs,
      rssBytes: process.memoryUsage.rss(),
      peakRssBytes: process.resourceUsage().maxRSS * 1024,
      eventLoopDelayMs: {
        p50: delayMs(histogram.percentile(50)),
        p99: delayMs(histogram.percentile(99)),
        max: delayMs(histogram.max),
      },
    };
  };
  return new Map<string, IpcHandler>([
    ["stats", read],
    [
      "reset-event-loop-delay",
      () => {
        histogram.reset();
        return null;
      },
    ],
  ]);
}
