/**
 * @module Test support: runs the real command-line clients (curl, buf curl, openssl, python) the
 * end-to-end tests talk to the gateway with, and finds them in the checkout.
 */
import { spawn } from "node:child_process";
import { join } from "node:path";
import { repoRoot } from "./model-fixtures.js";

/** The pinned buf CLI from the root devDependencies. */
export const bufBin = join(repoRoot, "node_modules", ".bin", "buf");

/** What a command printed and how it exited. */
export interface CommandResult {
  readonly code: number | null;
  readonly stdout: string;
  readonly stderr: string;
}

/** Options of {@link runCommand}. */
export interface RunCommandOptions {
  /** Written to the command's stdin, which is then closed. */
  readonly input?: string;
  /** Killed after this long. @example 60000 */
  readonly timeoutMs?: number;
  readonly cwd?: string;
}

/** Runs `file` with `args` and resolves with its exit code and output, whatever the code. */
export function runCommand(
  file: string,
  args: readonly string[],
  options: RunCommandOptions = {},
): Promise<CommandResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(file, args, {
      cwd: options.cwd,
      stdio: ["pipe", "pipe", "pipe"],
      timeout: options.timeoutMs ?? 60_000,
    });
    const stdout: Buffer[] = [];
    const stderr: Buffer[] = [];
    child.stdout.on("data", (chunk: Buffer) => stdout.push(chunk));
    child.stderr.on("data", (chunk: Buffer) => stderr.push(chunk));
    child.on("error", reject);
    child.on("close", (code) =>
      resolve({
        code,
        stdout: Buffer.concat(stdout).toString("utf8"),
        stderr: Buffer.concat(stderr).toString("utf8"),
      }),
    );
    child.stdin.end(options.input ?? "");
  });
}
