/**
 * @module Test support: `parley` (gateway/dist's `main.js`, here test-build's) as a real child
 * process, with its JSON log lines and stderr collected, for the tests of start-up, probes,
 * draining and replicas behind a balancer.
 */
import { type ChildProcessWithoutNullStreams, spawn } from "node:child_process";
import { once } from "node:events";
import { createInterface } from "node:readline";
import { fileURLToPath } from "node:url";

const mainScript = fileURLToPath(new URL("../main.js", import.meta.url));

/** A started `parley` process. */
export interface ParleyProcess {
  readonly child: ChildProcessWithoutNullStreams;
  /** Its log lines, parsed, in order; grows while it runs. */
  readonly logs: Record<string, unknown>[];
  /** What it wrote to stderr so far. */
  stderr(): string;
  /** Resolves with the exit code. */
  readonly exited: Promise<number | null>;
  /** Resolves with `http://host:port` once the port is bound (models may still load). */
  readonly listening: Promise<string>;
  /** Resolves with the same URL once the models are ready. */
  readonly ready: Promise<string>;
}

/** Options of {@link spawnParley}. */
export interface SpawnParleyOptions {
  /** Added to the test's own environment. */
  readonly env?: Readonly<Record<string, string>>;
  /** The script to run instead of this build's `main.js` (e.g. an image's, built elsewhere). */
  readonly script?: string;
  readonly cwd?: string;
}

/** Starts `parley` with `args` (add `--port 0` for a free port). */
export function spawnParley(
  args: readonly string[],
  options: SpawnParleyOptions = {},
): ParleyProcess {
  const child = spawn(process.execPath, [options.script ?? mainScript, ...args], {
    stdio: ["pipe", "pipe", "pipe"],
    cwd: options.cwd,
    env: { ...process.env, ...options.env },
  });
  const exited = once(child, "exit").then(([code]) => code as number | null);
  const logs: Record<string, unknown>[] = [];
  const stderr: string[] = [];
  child.stderr.on("data", (chunk: Buffer) => stderr.push(chunk.toString()));
  const early = (what: string) =>
    exited.then((code) => {
      throw new Error(`parley exited with ${code} before ${what}: ${stderr.join("")}`);
    });
  let onListening: (url: string) => void = () => {};
  let onReady: (url: string) => void = () => {};
  const listening = Promise.race([
    new Promise<string>((resolve) => {
      onListening = resolve;
    }),
    early("listening"),
  ]);
  const ready = Promise.race([
    new Promise<string>((resolve) => {
      onReady = resolve;
    }),
    early("its models were ready"),
  ]);
  // Either may never be awaited (a test of a failed start); their rejections are not errors.
  listening.catch(() => {});
  ready.catch(() => {});
  createInterface({ input: child.stdout }).on("line", (line) => {
    const entry = JSON.parse(line) as Record<string, unknown>;
    logs.push(entry);
    if (typeof entry.address === "string") onListening(entry.address);
    if (typeof entry.url === "string") {
      onListening(entry.url);
      onReady(entry.url);
    }
  });
  return { child, logs, stderr: () => stderr.join(""), exited, listening, ready };
}
