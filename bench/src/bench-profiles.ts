/**
 * @module The profiles behind targets the gateway falls short of: the scenario's load is replayed
 * on a fresh gateway started with `node --cpu-prof`, the gateway is stopped (which writes one
 * profile per thread), and the main thread's and model worker's profiles are summarized over the
 * load's time window only.
 */
import { mkdir, rm } from "node:fs/promises";
import { join } from "node:path";
import type { BenchContext } from "./bench-context.js";
import type { ProfileSummary } from "./bench-results.js";
import { type ChildSystem, type GatewayOptions, startGateway } from "./child-system.js";
import {
  mainThreadProfile,
  type ProfileWindow,
  summarizeCpuProfile,
  workerProfiles,
} from "./cpu-profile-summary.js";
import { monotonicMs } from "./summary-stats.js";

/** A load to replay under the profiler. */
export interface ProfilePlan {
  readonly key: string;
  readonly scenario: string;
  readonly gateway: Omit<GatewayOptions, "cpuProfileDir" | "name">;
  readonly load: (gateway: ChildSystem) => Promise<void>;
}

/** Runs one plan and summarizes the main thread and the busiest worker. */
export async function profileGateway(
  ctx: BenchContext,
  outDir: string,
  plan: ProfilePlan,
): Promise<ProfileSummary[]> {
  const dir = join(outDir, "profiles", plan.key);
  await rm(dir, { recursive: true, force: true });
  await mkdir(dir, { recursive: true });
  ctx.log(`profile ${plan.key}: ${plan.scenario}`);
  const gateway = await startGateway({
    ...plan.gateway,
    name: `gateway-profile-${plan.key}`,
    cpuProfileDir: dir,
  });
  let window: ProfileWindow;
  try {
    const fromMs = monotonicMs();
    await plan.load(gateway);
    window = { fromMs, toMs: monotonicMs() };
  } finally {
    // A gateway that fell behind may take a while to drain; SIGKILL would lose the profile.
    await gateway.stop(60_000);
  }
  const summaries: ProfileSummary[] = [];
  const main = await mainThreadProfile(dir);
  if (main !== undefined) {
    summaries.push({
      key: plan.key,
      scenario: plan.scenario,
      thread: "main",
      file: main,
      ...(await summarizeCpuProfile(main, window)),
    });
  }
  let busiest:
    | { file: string; digest: Awaited<ReturnType<typeof summarizeCpuProfile>> }
    | undefined;
  for (const file of await workerProfiles(dir)) {
    const digest = await summarizeCpuProfile(file, window);
    if (busiest === undefined || digest.idlePercent < busiest.digest.idlePercent)
      busiest = { file, digest };
  }
  // A worker that idled through the load (unary calls never reach it) says nothing.
  if (busiest !== undefined && busiest.digest.idlePercent < 90) {
    summaries.push({
      key: plan.key,
      scenario: plan.scenario,
      thread: "worker",
      file: busiest.file,
      ...busiest.digest,
    });
  }
  return summaries;
}
