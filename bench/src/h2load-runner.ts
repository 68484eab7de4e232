/**
 * @module Runs h2load (nghttp2-client) for a fixed duration and reads back what it measured:
 * requests done, their latencies from its per-request log, and its own CPU time (from the shell's
 * `times`, since h2load is a grandchild Node cannot time).
 */
import { spawn } from "node:child_process";
import { readFile, rm, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { type Distribution, distribution } from "./summary-stats.js";

/** One h2load run. */
export interface H2loadOptions {
  readonly url: string;
  readonly headers: Readonly<Record<string, string>>;
  /** The request body (POST); undefined sends a GET. */
  readonly body: Buffer | undefined;
  /** Concurrent requests: streams on one connection (HTTP/2) or connections (HTTP/1.1). */
  readonly concurrency: number;
  readonly http1: boolean;
  readonly durationMs: number;
  /** Scratch folder for the body and the request log. */
  readonly scratchDir: string;
}

/** What h2load reported. */
export interface H2loadResult {
  readonly requests: number;
  readonly succeeded: number;
  readonly failed: number;
  readonly requestsPerSecond: number;
  readonly latencyMs: Distribution;
  /** h2load's user + system CPU time in µs. */
  readonly clientCpuUs: number;
}

function secondsOf(text: string): number {
  const match = /(\d+)m([\d.]+)s/.exec(text);
  return match === null ? Number.NaN : Number(match[1]) * 60 + Number(match[2]);
}

function field(output: string, pattern: RegExp): number {
  const match = pattern.exec(output);
  if (match?.[1] === undefined) throw new Error(`h2load output lacks ${pattern}:\n${output}`);
  return Number(match[1]);
}

/** Runs h2load and parses its report. */
export async function runH2load(options: H2loadOptions): Promise<H2loadResult> {
  const bodyFile = join(options.scratchDir, "h2load-body.bin");
  const logFile = join(options.scratchDir, "h2load-requests.log");
  if (options.body !== undefined) await writeFile(bodyFile, options.body);
  await rm(logFile, { force: true });
  const args = [
    "-D",
    `${Math.max(1, Math.round(options.durationMs))}ms`,
    ...(options.body === undefined ? [] : ["-d", bodyFile]),
    `--log-file=${logFile}`,
    ...(options.http1
      ? ["--h1", "-c", String(options.concurrency), "-m", "1"]
      : ["-c", "1", "-m", String(options.concurrency)]),
    ...Object.entries(options.headers).flatMap(([name, value]) => ["-H", `${name}: ${value}`]),
    options.url,
  ];
  const output = await new Promise<string>((resolve, reject) => {
    // `times` prints the shell's and then its children's CPU: the second line is h2load's.
    const child = spawn("bash", ["-c", 'h2load "$@" && times', "bash", ...args], {
      stdio: ["ignore", "pipe", "pipe"],
    });
    let text = "";
    child.stdout.setEncoding("utf8").on("data", (chunk: string) => {
      text += chunk;
    });
    child.stderr.setEncoding("utf8").on("data", (chunk: string) => {
      text += chunk;
    });
    child.once("error", reject);
    child.once("exit", (code) =>
      code === 0 ? resolve(text) : reject(new Error(`h2load exited with ${code}:\n${text}`)),
    );
  });
  const timesLine = output.trimEnd().split("\n").at(-1) ?? "";
  const [user = "", system = ""] = timesLine.trim().split(/\s+/);
  const latencies = (await readFile(logFile, "utf8").catch(() => ""))
    .split("\n")
    .filter((line) => line.length > 0)
    .map((line) => Number(line.split("\t")[2]) / 1000);
  return {
    requests: field(output, /requests: (\d+) total/),
    succeeded: field(output, /(\d+) succeeded/),
    // "failed" includes HTTP-level failures (non-2xx), errors and timeouts.
    failed: field(output, /(\d+) failed/),
    requestsPerSecond: field(output, /finished in [^,]+, ([\d.]+) req\/s/),
    latencyMs: distribution(latencies),
    clientCpuUs: (secondsOf(user) + secondsOf(system)) * 1e6,
  };
}
