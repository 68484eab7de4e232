/**
 * @module What every scenario gets from the run: its settings, the shared load generator, the
 * captured fixtures and prompts, a log line writer and unique stream keys.
 */
import type { BenchSettings } from "./bench-settings.js";
import type { ChildSystem } from "./child-system.js";
import type { ProcessStats } from "./process-stats.js";

/** Shared state of one bench run. */
export interface BenchContext {
  readonly settings: BenchSettings;
  readonly scratchDir: string;
  readonly fixturesPath: string;
  /** Folders of the generated models. */
  readonly models: { readonly pacing: string; readonly large: string };
  /** A prompt whose greedy completion on the built-in model runs 256 tokens. */
  readonly builtinPrompt: string;
  /** The Node load generator child. */
  readonly client: ChildSystem;
  log(message: string): void;
  /** Reserves `count` stream keys; returns the first. */
  nextKeys(count: number): number;
}

/** CPU and memory deltas of a child across a measured run. */
export interface StatsDelta {
  readonly cpuUs: number;
  readonly mainThreadCpuUs: number;
  /** Share of the run's wall time the main thread spent waiting for a core, in ms per s. */
  readonly mainThreadWaitMsPerS: number;
  readonly eventLoopDelayP99Ms: number;
  readonly before: ProcessStats;
  readonly after: ProcessStats;
}

/** Runs `work` between two stats readings of `system`, with its event-loop window reset. */
export async function measured<T>(
  system: ChildSystem,
  work: () => Promise<T>,
): Promise<{ result: T; delta: StatsDelta }> {
  await system.request({ type: "reset-event-loop-delay" });
  const before = await system.stats();
  const started = performance.now();
  const result = await work();
  const wallMs = performance.now() - started;
  const after = await system.stats();
  return {
    result,
    delta: {
      cpuUs: after.cpuUs - before.cpuUs,
      mainThreadCpuUs: after.mainThreadCpuUs - before.mainThreadCpuUs,
      mainThreadWaitMsPerS: (after.mainThreadRunQueueUs - before.mainThreadRunQueueUs) / wallMs,
      eventLoopDelayP99Ms: after.eventLoopDelayMs.p99,
      before,
      after,
    },
  };
}
