/**
 * @module Test support: the `parley` process itself as a child, for tests whose point is that
 * the process survives (a crash in a test's own process would end the test run, not prove much).
 * Its JSON log lines are kept, and its own `/metrics` tell its resident memory.
 */
import { type ChildProcessWithoutNullStreams, spawn } from "node:child_process";
import { once } from "node:events";
import { createInterface } from "node:readline";
import { fileURLToPath } from "node:url";

const mainScript = fileURLToPath(new URL("../main.js", import.meta.url));

/** A running gateway process. */
export interface GatewayProcess {
  readonly child: ChildProcessWithoutNullStreams;
  /** "http://127.0.0.1:port" */
  readonly url: string;
  /** Every JSON log line so far. */
  readonly logs: Record<string, unknown>[];
  /** Whether the process is still running. */
  alive(): boolean;
  /** The value of a metric sample line of `/metrics`, e.g. `process_resident_memory_bytes`. */
  metric(sample: string): Promise<number | undefined>;
  /** SIGTERM, then the exit code. */
  stop(): Promise<number | null>;
}

/** Starts `parley --port 0 --web-root /nonexistent ...args` and waits until it listens. */
export async function startGatewayProcess(args: readonly string[]): Promise<GatewayProcess> {
  const child = spawn(
    process.execPath,
    [mainScript, "--port", "0", "--web-root", "/nonexistent", ...args],
    { stdio: ["pipe", "pipe", "pipe"] },
  );
  const exited = once(child, "exit").then(([code]) => code as number | null);
  const logs: Record<string, unknown>[] = [];
  const stderr: string[] = [];
  child.stderr.on("data", (chunk: Buffer) => stderr.push(chunk.toString()));
  const url = await new Promise<string>((resolve, reject) => {
    createInterface({ input: child.stdout }).on("line", (line) => {
      try {
        const entry = JSON.parse(line) as Record<string, unknown>;
        logs.push(entry);
        if (typeof entry.url === "string") resolve(entry.url);
      } catch {
        stderr.push(line);
      }
    });
    void exited.then((code) => reject(new Error(`parley exited with ${code}: ${stderr.join("")}`)));
  });
  return {
    child,
    url,
    logs,
    alive: () => child.exitCode === null && child.signalCode === null,
    async metric(sample) {
      const text = await (await fetch(`${url}/metrics`)).text();
      const line = text.split("\n").find((l) => l.startsWith(`${sample} `));
      return line === undefined ? undefined : Number(line.slice(sample.length + 1));
    },
    async stop() {
      if (child.exitCode === null && child.signalCode === null) child.kill("SIGTERM");
      return exited;
    },
  };
}
