/**
 * @module Runs the real gateway (gateway/dist/main.js) as a child process on a free loopback
 * port for the browser tests, and reads its Prometheus metrics.
 */
import { spawn } from "node:child_process";
import { existsSync } from "node:fs";
import { createServer } from "node:net";
import path from "node:path";

/** The repository root (this file is web-client/test/gateway-process.mjs). */
export const repoRoot = path.resolve(import.meta.dirname, "../..");
const gatewayMain = path.join(repoRoot, "gateway/dist/main.js");

/** Asks the OS for a port nobody listens on. */
export async function freePort() {
  const server = createServer();
  await new Promise((resolve, reject) => {
    server.once("error", reject);
    server.listen(0, "127.0.0.1", resolve);
  });
  const { port } = server.address();
  await new Promise((resolve) => server.close(resolve));
  return port;
}

/**
 * Starts the gateway with `args` added to `--host 127.0.0.1 --port <free>` and waits until
 * /readyz says its models are ready (it listens before they load). Resolves to
 * { url, metrics(), stop() }.
 */
export async function startGateway(args = []) {
  if (!existsSync(gatewayMain)) {
    throw new Error(`${gatewayMain} is missing: build the gateway first (npm run build)`);
  }
  const port = await freePort();
  const url = `http://127.0.0.1:${port}`;
  const child = spawn(
    process.execPath,
    [gatewayMain, "--host", "127.0.0.1", "--port", String(port), ...args],
    { cwd: repoRoot, stdio: ["ignore", "pipe", "pipe"] },
  );
  let output = "";
  const collect = (chunk) => {
    output = (output + chunk).slice(-20_000);
  };
  child.stdout.on("data", collect);
  child.stderr.on("data", collect);
  const exited = new Promise((resolve) => child.once("exit", resolve));

  const deadline = Date.now() + 120_000;
  for (;;) {
    if (child.exitCode !== null || child.signalCode !== null) {
      throw new Error(`the gateway exited (${child.exitCode ?? child.signalCode}):\n${output}`);
    }
    if (Date.now() > deadline) {
      child.kill("SIGKILL");
      throw new Error(`the gateway did not answer on ${url} within 120 s:\n${output}`);
    }
    try {
      const response = await fetch(`${url}/readyz`);
      if (response.ok) {
        break;
      }
    } catch {
      // Not listening yet.
    }
    await new Promise((resolve) => setTimeout(resolve, 250));
  }

  return {
    url,
    /** The gateway's recent log lines, for assertion messages. */
    log: () => output,
    /** The sum of a metric's samples whose labels include every `labels` pair. */
    async metric(name, labels = {}) {
      const text = await (await fetch(`${url}/metrics`)).text();
      return sumSamples(text, name, labels);
    },
    async stop() {
      if (child.exitCode === null && child.signalCode === null) {
        child.kill("SIGTERM");
        const timer = setTimeout(() => child.kill("SIGKILL"), 15_000);
        await exited;
        clearTimeout(timer);
      }
    },
  };
}

/** Sums the samples of `name` in Prometheus text format that carry all of `labels`. */
export function sumSamples(text, name, labels) {
  let sum = 0;
  for (const line of text.split("\n")) {
    const match = /^([a-zA-Z_:][\w:]*)(?:\{(.*)\})?\s+(\S+)/.exec(line);
    if (match === null || match[1] !== name) {
      continue;
    }
    const found = Object.fromEntries(
      [...(match[2] ?? "").matchAll(/(\w+)="((?:[^"\\]|\\.)*)"/g)].map((m) => [m[1], m[2]]),
    );
    if (Object.entries(labels).every(([key, value]) => found[key] === value)) {
      sum += Number(match[3]);
    }
  }
  return sum;
}
