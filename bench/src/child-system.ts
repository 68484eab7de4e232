/**
 * @module A server or helper the bench runs as a child process: spawned with an IPC channel,
 * asked for its stats, stopped with SIGTERM (so `--cpu-prof` profiles get written). Every system
 * runs in its own process so that its CPU time is its own and the bench's never counts.
 */
import { type ChildProcess, spawn } from "node:child_process";
import { once } from "node:events";
import { request as httpRequest } from "node:http";
import { createServer } from "node:net";
import { pathToFileURL } from "node:url";
import {
  baselineServerMain,
  gatewayMain,
  gatewayProbe,
  loadClientMain,
  ortLoopMain,
  peerMain,
} from "./bench-paths.js";
import { createIpcClient, type IpcRequest } from "./ipc-channel.js";
import type { ProcessStats } from "./process-stats.js";

/** A running child. */
export interface ChildSystem {
  readonly name: string;
  /** The port it serves on; 0 for helpers that do not listen. */
  readonly port: number;
  readonly pid: number;
  request<T>(request: IpcRequest): Promise<T>;
  stats(): Promise<ProcessStats>;
  /** SIGTERM, then SIGKILL if it has not exited after `graceMs`. */
  stop(graceMs?: number): Promise<void>;
}

/** Children still running; killed if the bench exits without stopping them (a crash, an error). */
const running = new Set<ChildProcess>();
process.once("exit", () => {
  for (const child of running) child.kill("SIGKILL");
});

/** The baseline servers. */
export type BaselineKind = "raw-h2" | "grpc-js" | "fastify" | "connect-node";

/** A free TCP port on the loopback interface. */
export async function freePort(): Promise<number> {
  const server = createServer();
  server.listen(0, "127.0.0.1");
  await once(server, "listening");
  const address = server.address();
  server.close();
  if (address === null || typeof address === "string") throw new Error("no port");
  return address.port;
}

interface SpawnOptions {
  readonly name: string;
  readonly port: number;
  readonly execArgv: readonly string[];
  readonly args: readonly string[];
  readonly env?: NodeJS.ProcessEnv;
}

function spawnChild(options: SpawnOptions): {
  child: ChildProcess;
  system: ChildSystem;
  stderr: () => string;
} {
  // stdout goes to /dev/null: the gateway logs one line per call and a pipe would make the
  // bench's own process read them, on the same two cores.
  const child = spawn(process.execPath, [...options.execArgv, ...options.args], {
    stdio: ["ignore", "ignore", "pipe", "ipc"],
    serialization: "advanced",
    env: { ...process.env, ...options.env },
  });
  running.add(child);
  child.once("exit", () => running.delete(child));
  let stderr = "";
  child.stderr?.setEncoding("utf8").on("data", (chunk: string) => {
    stderr = (stderr + chunk).slice(-4000);
  });
  const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()));
  const ipc = createIpcClient(child);
  const system: ChildSystem = {
    name: options.name,
    port: options.port,
    pid: child.pid ?? 0,
    request: <T>(request: IpcRequest) =>
      ipc.request<T>(request).catch((error: unknown): never => {
        throw new Error(
          `${options.name}: ${error instanceof Error ? error.message : String(error)}\n${stderr}`,
        );
      }),
    stats: () => system.request<ProcessStats>({ type: "stats" }),
    async stop(graceMs = 10_000) {
      if (child.exitCode !== null || child.signalCode !== null) return;
      child.kill("SIGTERM");
      const timer = setTimeout(() => child.kill("SIGKILL"), graceMs);
      await exited;
      clearTimeout(timer);
    },
  };
  return { child, system, stderr: () => stderr };
}

/** Posts a Connect JSON `ListModels` over HTTP/1.1; resolves with the HTTP status. */
function listModelsStatus(port: number): Promise<number> {
  return new Promise((resolve) => {
    const request = httpRequest(
      {
        host: "127.0.0.1",
        port,
        method: "POST",
        path: "/inference.v1.InferenceService/ListModels",
        headers: { "content-type": "application/json" },
        agent: false,
      },
      (response) => {
        response.resume();
        resolve(response.statusCode ?? 0);
      },
    );
    request.on("error", () => resolve(0));
    request.end("{}");
  });
}

/** How a gateway child is started. */
export interface GatewayOptions {
  readonly name: string;
  /** The entry point to run: this build's `gateway/dist/main.js` unless another build's. */
  readonly main?: string;
  /** `--model` values. */
  readonly models: readonly string[];
  readonly flags?: readonly string[];
  /** Stamp token arrivals on the main thread (PARLEY_BENCH_TRACE). */
  readonly trace?: boolean;
  /** Install the pacing line in model workers (PARLEY_BENCH_PACE); off until `pace` is sent. */
  readonly pace?: boolean;
  /** Write `--cpu-prof` profiles of every thread here. */
  readonly cpuProfileDir?: string;
}

/** Starts `node gateway/dist/main.js` (or `options.main`) with the probe and waits until it answers ListModels. */
export async function startGateway(options: GatewayOptions): Promise<ChildSystem> {
  const port = await freePort();
  const profile =
    options.cpuProfileDir === undefined
      ? []
      : ["--cpu-prof", `--cpu-prof-dir=${options.cpuProfileDir}`];
  const { child, system, stderr } = spawnChild({
    name: options.name,
    port,
    execArgv: [...profile, "--import", pathToFileURL(gatewayProbe).href],
    args: [
      options.main ?? gatewayMain,
      "--port",
      String(port),
      "--host",
      "127.0.0.1",
      "--shutdown-grace-ms",
      "500",
      ...options.models.flatMap((model) => ["--model", model]),
      ...(options.flags ?? []),
    ],
    env: {
      PARLEY_BENCH_TRACE: options.trace === true ? "1" : "0",
      PARLEY_BENCH_PACE: options.pace === true ? "1" : "0",
    },
  });
  const deadline = Date.now() + 120_000;
  while ((await listModelsStatus(port)) !== 200) {
    if (child.exitCode !== null || Date.now() > deadline) {
      await system.stop(1000);
      const exit = child.exitCode === null ? "still running" : `exit code ${child.exitCode}`;
      throw new Error(`${options.name} did not start (${exit}):\n${stderr()}`);
    }
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  return system;
}

/** The system name of the `--baseline-gateway` build in results. */
export const baselineGatewayName = "gateway (baseline build)";

/** Starts a baseline server and waits until it listens. */
export async function startBaseline(
  kind: BaselineKind,
  fixturesPath: string,
): Promise<ChildSystem> {
  const port = await freePort();
  const { system } = spawnChild({
    name: kind,
    port,
    execArgv: [],
    args: [baselineServerMain, kind, String(port), fixturesPath],
  });
  await system.request({ type: "ready" });
  return system;
}

/** Starts the Node load generator (connect-node clients and the raw streaming client). */
export async function startLoadClient(): Promise<ChildSystem> {
  const { system } = spawnChild({
    name: "load-client",
    port: 0,
    execArgv: [],
    args: [loadClientMain],
  });
  await system.request({ type: "stats" });
  return system;
}

/** Starts the in-process onnxruntime-node decode loop on a model folder. */
export async function startOrtLoop(modelDir: string): Promise<ChildSystem> {
  const { system } = spawnChild({
    name: "ort-loop",
    port: 0,
    execArgv: [],
    args: [ortLoopMain, modelDir],
  });
  await system.request({ type: "ready" });
  return system;
}

/** Starts the transformers.js peer (`sse` server or `in-process`) on a folder it can load. */
export async function startPeer(
  mode: "sse" | "in-process",
  localModelPath: string,
  name: string,
): Promise<ChildSystem> {
  const port = mode === "sse" ? await freePort() : 0;
  const { system } = spawnChild({
    name: `transformers.js ${mode}`,
    port,
    execArgv: [],
    args: [peerMain, mode, String(port), localModelPath, name],
  });
  await system.request({ type: "ready" });
  return system;
}
