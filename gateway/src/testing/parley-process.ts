/**
 * @module The `parley` command as a child process for tests: started on port 0 with the given
 * flags, its JSON log lines kept, its URL read from the "listening" line.
 */
import { type ChildProcessWithoutNullStreams, spawn } from "node:child_process";
import { once } from "node:events";
import { createInterface } from "node:readline";
import { fileURLToPath } from "node:url";

const mainScript = fileURLToPath(new URL("../main.js", import.meta.url));

/** A running `parley` process. */
export interface ParleyProcess {
  readonly child: ChildProcessWithoutNullStreams;
  /** `http://127.0.0.1:<port>`. */
  readonly url: string;
  readonly logs: Record<string, unknown>[];
  readonly exited: Promise<number | null>;
  /** SIGTERM, then the exit code. */
  stop(): Promise<number | null>;
}

/** Starts `parley --port 0 ...args` and resolves once it listens. */
export async function startParleyProcess(
  args: readonly string[],
  env: NodeJS.ProcessEnv = process.env,
): Promise<ParleyProcess> {
  const child = spawn(process.execPath, [mainScript, "--port", "0", ...args], {
    stdio: ["pipe", "pipe", "pipe"],
    env,
  });
  const exited = once(child, "exit").then(([code]) => code as number | null);
  const logs: Record<string, unknown>[] = [];
  const stderr: string[] = [];
  child.stderr.on("data", (chunk: Buffer) => stderr.push(chunk.toString()));
  const url = await new Promise<string>((resolve, reject) => {
    createInterface({ input: child.stdout }).on("line", (line) => {
      const entry = JSON.parse(line) as Record<string, unknown>;
      logs.push(entry);
      if (typeof entry.url === "string" && String(entry.msg).startsWith("Parley is listening")) {
        resolve(entry.url);
      }
    });
    void exited.then((code) => reject(new Error(`parley exited with ${code}: ${stderr.join("")}`)));
  });
  return {
    child,
    url,
    logs,
    exited,
    stop() {
      if (child.exitCode === null) child.kill("SIGTERM");
      return exited;
    },
  };
}
