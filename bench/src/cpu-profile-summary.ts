/**
 * @module Reads a V8 `.cpuprofile` (written by `node --cpu-prof`) and lists the functions with
 * the most self time: where a thread actually spent its CPU, not who called whom.
 */
import { readdir, readFile, stat } from "node:fs/promises";
import { join } from "node:path";

/** One line of a profile summary. */
export interface ProfileEntry {
  readonly functionName: string;
  /** `file:line`, shortened to the package or repository path. */
  readonly location: string;
  readonly selfMs: number;
  /** Share of the thread's busy (non-idle) sampled time. */
  readonly selfPercent: number;
}

interface CpuProfile {
  readonly nodes: readonly {
    readonly id: number;
    readonly callFrame: {
      readonly functionName: string;
      readonly url: string;
      readonly lineNumber: number;
    };
  }[];
  readonly startTime: number;
  readonly samples: readonly number[];
  readonly timeDeltas: readonly number[];
}

/** A time window on the machine's monotonic clock, in ms (V8 stamps samples on that clock, in µs). */
export interface ProfileWindow {
  readonly fromMs: number;
  readonly toMs: number;
}

function shorten(url: string): string {
  const modules = url.lastIndexOf("node_modules/");
  if (modules >= 0) return url.slice(modules + "node_modules/".length);
  const dist = url.indexOf("/gateway/dist/");
  if (dist >= 0) return url.slice(dist + 1);
  return url.replace(/^file:\/\//, "");
}

/** What a profile says: idle share, hottest functions, and self time by area. */
export interface ProfileDigest {
  readonly idlePercent: number;
  readonly top: ProfileEntry[];
  readonly byArea: { area: string; percent: number }[];
}

/** Functions that are not code: the profiler's pseudo-frames. */
const pseudoFrames = new Set(["(idle)", "(program)", "(garbage collector)", "(root)"]);

/** Where a frame belongs: an npm package, a Node subsystem, a gateway room, or a pseudo-frame. */
function areaOf(name: string, location: string): string {
  if (pseudoFrames.has(name)) return name;
  if (location.startsWith("node:internal/")) {
    const [, first = ""] = location.slice("node:internal/".length).match(/^([^/:]+)/) ?? [];
    return `node:${first.replace(/\.js$/, "")}`;
  }
  if (location.startsWith("node:")) return location.split(":").slice(0, 2).join(":");
  if (location.startsWith("gateway/dist/")) {
    return `gateway/${location.slice("gateway/dist/".length).split("/")[0]?.replace(/:\d+$/, "")}`;
  }
  if (location === "") return "(native)";
  const parts = location.split("/");
  return parts[0]?.startsWith("@") ? `${parts[0]}/${parts[1]}` : (parts[0] ?? location);
}

/**
 * The `top` functions by self time in a profile file, idle excluded from the shares; only samples
 * inside `window` count, so process startup does not dilute the load being profiled.
 */
export async function summarizeCpuProfile(
  path: string,
  window?: ProfileWindow,
  top = 12,
): Promise<ProfileDigest> {
  const profile = JSON.parse(await readFile(path, "utf8")) as CpuProfile;
  const byNode = new Map(profile.nodes.map((node) => [node.id, node]));
  const selfUs = new Map<
    string,
    { entry: Omit<ProfileEntry, "selfMs" | "selfPercent">; us: number }
  >();
  let total = 0;
  let at = profile.startTime;
  profile.samples.forEach((id, i) => {
    const delta = profile.timeDeltas[i] ?? 0;
    at += delta;
    if (window !== undefined && (at < window.fromMs * 1000 || at > window.toMs * 1000)) return;
    total += delta;
    const frame = byNode.get(id)?.callFrame;
    if (frame === undefined) return;
    const name = frame.functionName === "" ? "(anonymous)" : frame.functionName;
    const location = frame.url === "" ? "" : `${shorten(frame.url)}:${frame.lineNumber + 1}`;
    const key = `${name} ${location}`;
    const slot = selfUs.get(key) ?? { entry: { functionName: name, location }, us: 0 };
    slot.us += delta;
    selfUs.set(key, slot);
  });
  const idleUs = [...selfUs.values()]
    .filter((slot) => slot.entry.functionName === "(idle)")
    .reduce((sum, slot) => sum + slot.us, 0);
  const busy = Math.max(1, total - idleUs);
  const percent = (us: number) => Math.round((us / busy) * 1000) / 10;
  const areas = new Map<string, number>();
  for (const { entry, us } of selfUs.values()) {
    if (entry.functionName === "(idle)") continue;
    const area = areaOf(entry.functionName, entry.location);
    areas.set(area, (areas.get(area) ?? 0) + us);
  }
  return {
    idlePercent: Math.round((idleUs / Math.max(1, total)) * 1000) / 10,
    top: [...selfUs.values()]
      .filter((slot) => slot.entry.functionName !== "(idle)")
      .sort((a, b) => b.us - a.us)
      .slice(0, top)
      .map(({ entry, us }) => ({
        ...entry,
        selfMs: Math.round(us / 100) / 10,
        selfPercent: percent(us),
      })),
    byArea: [...areas.entries()]
      .sort((a, b) => b[1] - a[1])
      .slice(0, 10)
      .map(([area, us]) => ({ area, percent: percent(us) })),
  };
}

/**
 * The main thread's profile among those `--cpu-prof` wrote into `dir` (one per thread): Node
 * names them CPU.<date>.<time>.<pid>.<thread id>.<seq>.cpuprofile, and the main thread is thread 0.
 */
export async function mainThreadProfile(dir: string): Promise<string | undefined> {
  const names = (await readdir(dir).catch(() => [] as string[])).filter((n) =>
    n.endsWith(".cpuprofile"),
  );
  // No main-thread profile means the process did not exit cleanly: say nothing rather than
  // pass a worker's profile off as the main thread's.
  let best: { path: string; size: number } | undefined;
  for (const name of names.filter((n) => n.split(".")[4] === "0")) {
    const path = join(dir, name);
    const { size } = await stat(path);
    if (best === undefined || size > best.size) best = { path, size };
  }
  return best?.path;
}

/** Worker-thread profiles in `dir` (thread id other than 0). */
export async function workerProfiles(dir: string): Promise<string[]> {
  const names = await readdir(dir).catch(() => [] as string[]);
  return names
    .filter((name) => name.endsWith(".cpuprofile") && name.split(".")[4] !== "0")
    .map((name) => join(dir, name));
}
