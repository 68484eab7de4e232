/**
 * @module Flags and environment into one typed, validated configuration. A flag wins over its
 * environment variable, which wins over the default; repeatable flags take comma-separated lists
 * in the environment.
 */

import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import type { LevelWithSilent } from "pino";
import { type Device, devices, isDevice } from "./engine/devices.js";
import { type ApiKey, ApiKeyError, checkDistinct, parseApiKeys } from "./http/api-keys.js";
import { logLevels } from "./observability/logger.js";
import type { GatewayServerConfig } from "./server/create-gateway-server.js";

/** Everything the gateway process is configured with. */
export interface GatewayConfig extends GatewayServerConfig {
  /** Model specs: a local folder, `hf:org/name[@revision]` or `builtin`; the first is the default. */
  readonly models: readonly string[];
  /** Requests waiting per model before new ones get resource_exhausted; undefined: the engine's. */
  readonly maxQueue: number | undefined;
  /** Sequences decoded together per model; undefined: the engine's default. */
  readonly maxBatch: number | undefined;
  /** onnxruntime intra-op threads per worker, or auto; undefined: the engine's default. */
  readonly intraOpThreads: number | "auto" | undefined;
  /** Nice value of model workers and their onnxruntime threads; undefined: the engine's. */
  readonly workerNice: number | undefined;
  /** onnxruntime execution provider every model runs on. */
  readonly device: Device;
  /** MiB of finished sequences' KV kept per model for prompts that start alike; undefined: the engine's. */
  readonly prefixCacheMib: number | undefined;
  /** Prompt tokens prefilled per decode turn; undefined: the engine's default. */
  readonly prefillTokens: number | undefined;
  /** Least milliseconds between two token messages of a fast stream; undefined: the engine's. */
  readonly streamIntervalMs: number | undefined;
  /** max_tokens for requests that leave it unset; undefined: the engine's default. */
  readonly defaultMaxTokens: number | undefined;
  /** How long an unread generation keeps its slot while others wait; undefined: the engine's. */
  readonly parkAfterMs: number | undefined;
  /** Parked generations per model whose readers are away; undefined: the engine's (max batch). */
  readonly maxParked: number | undefined;
  /** How long a parked generation's reader may read nothing; undefined: the engine's. */
  readonly parkTimeoutMs: number | undefined;
  /** How long calls in flight may run on after SIGTERM/SIGINT. */
  readonly shutdownGraceMs: number;
  readonly logLevel: LevelWithSilent;
  /** Never reach the Hugging Face hub: `hf:` models must already be in the cache. */
  readonly offline: boolean;
  /** Bearer key for `openai:` upstreams whose spec carries none. */
  readonly upstreamApiKey: string | undefined;
  /** How long an `openai:` upstream may send nothing; undefined: the engine's default. */
  readonly upstreamTimeoutMs: number | undefined;
  /** Where traces go over OTLP/HTTP; undefined: no tracing. */
  readonly otlpEndpoint: string | undefined;
  /** Keys given with --api-key. */
  readonly apiKeys: readonly ApiKey[];
  /** A file of keys, read at start and on SIGHUP. */
  readonly apiKeyFile: string | undefined;
  /** Whether /metrics needs a key too. */
  readonly protectMetrics: boolean;
}

/** What the command line asks for. */
export type CommandLine =
  | { readonly kind: "help"; readonly usage: string }
  | { readonly kind: "run"; readonly config: GatewayConfig };

/** A flag or variable that cannot be used; its message names it. */
export class ConfigError extends Error {
  override readonly name = "ConfigError";
}

type Env = Readonly<Record<string, string | undefined>>;

interface OptionSpec {
  readonly type: "string" | "boolean";
  readonly multiple?: boolean;
  /** Environment variables read when the flag is absent, in order. */
  readonly env: readonly string[];
  readonly value?: string;
  readonly help: string;
}

/** The default web client location: web-client/dist beside the gateway package. */
const defaultWebRoot = fileURLToPath(new URL("../../web-client/dist", import.meta.url));

const specs = {
  port: {
    type: "string",
    env: ["PORT", "PARLEY_PORT"],
    value: "N",
    help: "TCP port for every protocol (default 8080; 0 picks a free one)",
  },
  "probe-port": {
    type: "string",
    env: ["PARLEY_PROBE_PORT"],
    value: "N",
    help: "a second port serving the same that stays open through a shutdown while --port stops accepting at once, so balancers that fail over only on a refused connection (nginx's grpc_pass) move on; without it, --port itself stays open for probes while draining (default none; 0 picks a free one)",
  },
  host: {
    type: "string",
    env: ["PARLEY_HOST"],
    value: "ADDR",
    help: "address to bind (default 127.0.0.1: without --api-key nothing is authenticated, so it is not exposed unless asked; use 0.0.0.0 in a container)",
  },
  "tls-cert": {
    type: "string",
    env: ["PARLEY_TLS_CERT"],
    value: "FILE",
    help: "PEM certificate chain: enables TLS (ALPN h2 and http/1.1) on the same port",
  },
  "tls-key": {
    type: "string",
    env: ["PARLEY_TLS_KEY"],
    value: "FILE",
    help: "PEM private key for --tls-cert",
  },
  "cors-origin": {
    type: "string",
    multiple: true,
    env: ["PARLEY_CORS_ORIGIN"],
    value: "ORIGIN",
    help: "an origin browsers may call from, e.g. https://app.example.com, or * for any (repeatable; default none: same origin only)",
  },
  model: {
    type: "string",
    multiple: true,
    env: ["PARLEY_MODEL"],
    value: "SPEC",
    help: "a model folder, hf:org/name[@revision], builtin, or openai:BASE-URL#REMOTE-MODEL to forward to a server with an OpenAI-compatible API (vLLM, TGI, Ollama, llama.cpp), e.g. openai:http://gpu-1:8000/v1#meta-llama/Llama-3.1-8B-Instruct (repeatable; the first is the default; default builtin)",
  },
  "upstream-api-key": {
    type: "string",
    env: ["PARLEY_UPSTREAM_API_KEY"],
    value: "KEY",
    help: "bearer key sent to openai: upstreams whose URL carries none (https://:KEY@host/v1 does); never logged",
  },
  "upstream-timeout-ms": {
    type: "string",
    env: ["PARLEY_UPSTREAM_TIMEOUT_MS"],
    value: "MS",
    help: "an openai: upstream that sends nothing for MS (no response headers, or no bytes mid-stream) fails the call with deadline_exceeded (default 60000)",
  },
  "otlp-endpoint": {
    type: "string",
    env: ["PARLEY_OTLP_ENDPOINT", "OTEL_EXPORTER_OTLP_ENDPOINT"],
    value: "URL",
    help: "export a trace of every call (spans for the call, queue, prefill and decode) over OTLP/HTTP protobuf to URL, e.g. http://collector:4318 (/v1/traces is added); default: no tracing",
  },
  "max-queue": {
    type: "string",
    env: ["PARLEY_MAX_QUEUE"],
    value: "N",
    help: "requests waiting per model before resource_exhausted (default: the engine's)",
  },
  "max-batch": {
    type: "string",
    env: ["PARLEY_MAX_BATCH"],
    value: "N",
    help: "caps the sequences decoded together per model; the batch is sized from the model's KV cache and free memory (default: that size, at most 256)",
  },
  "intra-op-threads": {
    type: "string",
    env: ["PARLEY_INTRA_OP_THREADS"],
    value: "N|auto",
    help: "onnxruntime intra-op threads per model worker, or auto: every core (default auto)",
  },
  "worker-nice": {
    type: "string",
    env: ["PARLEY_WORKER_NICE"],
    value: "N",
    help: "nice value (0-19, Linux) of model workers and their onnxruntime threads; above the main thread's 0, its I/O for every stream wins a busy core over a decode step (default 5)",
  },
  device: {
    type: "string",
    env: ["PARLEY_DEVICE"],
    value: "NAME",
    help: `onnxruntime execution provider: ${devices.join(", ")} (default cpu; cuda needs onnxruntime-node's CUDA download, see the README)`,
  },
  "prefix-cache-mib": {
    type: "string",
    env: ["PARLEY_PREFIX_CACHE_MIB"],
    value: "N",
    help: "MiB of finished sequences' KV cache kept per model, so a prompt that starts like an earlier one (a chat's next turn) skips that prefill; 0 turns it off (default: the engine's, 256)",
  },
  "prefill-tokens": {
    type: "string",
    env: ["PARLEY_PREFILL_TOKENS"],
    value: "N",
    help: "prompt tokens prefilled between two decode steps: more admits new requests sooner, fewer keeps running streams smoother (default: the engine's)",
  },
  "stream-interval-ms": {
    type: "string",
    env: ["PARLEY_STREAM_INTERVAL_MS"],
    value: "N",
    help: "a stream faster than one token per N ms gets several tokens per message, which saves a thread wake-up per token; 0 sends every decode step's tokens at once (default: the engine's, 1)",
  },
  "default-max-tokens": {
    type: "string",
    env: ["PARLEY_DEFAULT_MAX_TOKENS"],
    value: "N",
    help: "max_tokens when a request leaves it unset (default: the engine's)",
  },
  "park-after-ms": {
    type: "string",
    env: ["PARLEY_PARK_AFTER_MS"],
    value: "MS",
    help: "a generation whose client reads nothing for MS (it is paused for credit) gives its batch slot to a waiting request: it is parked with its KV cache kept and resumes where it stopped once its client reads again; nothing is parked while nobody waits (default 1000)",
  },
  "max-parked": {
    type: "string",
    env: ["PARLEY_MAX_PARKED"],
    value: "N",
    help: "parked generations kept per model while their clients read nothing; beyond, the one unread longest fails with resource_exhausted; 0 fails instead of parking (default: the batch size)",
  },
  "park-timeout-ms": {
    type: "string",
    env: ["PARLEY_PARK_TIMEOUT_MS"],
    value: "MS",
    help: "a parked generation whose client reads nothing for MS fails with resource_exhausted (default 30000)",
  },
  "max-request-bytes": {
    type: "string",
    env: ["PARLEY_MAX_REQUEST_BYTES"],
    value: "N",
    help: "largest request message; larger get resource_exhausted (default 4194304)",
  },
  "max-timeout-ms": {
    type: "string",
    env: ["PARLEY_MAX_TIMEOUT_MS"],
    value: "MS",
    help: "longest deadline a call may have; longer ones are shortened to it (default 3600000, at most 2147483647, the longest timer Node can set)",
  },
  "fast-paths": {
    type: "string",
    env: ["PARLEY_FAST_PATHS"],
    value: "on|off",
    help: "serve common gRPC, gRPC-Web and Connect calls on Parley's own paths beside connect-node's router; off sends every call through the router (default on)",
  },
  "shutdown-grace-ms": {
    type: "string",
    env: ["PARLEY_SHUTDOWN_GRACE_MS"],
    value: "MS",
    help: "how long calls in flight may finish after SIGTERM (default 25000, under Kubernetes' 30 s)",
  },
  "log-level": {
    type: "string",
    env: ["PARLEY_LOG_LEVEL"],
    value: "LEVEL",
    help: `${logLevels.join(", ")} (default info)`,
  },
  offline: {
    type: "boolean",
    env: ["PARLEY_OFFLINE", "HF_HUB_OFFLINE"],
    help: "never contact the Hugging Face hub; hf: models must be cached",
  },
  "api-key": {
    type: "string",
    multiple: true,
    env: ["PARLEY_API_KEY"],
    value: "[NAME:]KEY",
    help: "a key that calls on every protocol must send as Authorization: Bearer KEY; NAME labels its usage in /metrics (repeatable; default none: no authentication)",
  },
  "api-key-file": {
    type: "string",
    env: ["PARLEY_API_KEY_FILE"],
    value: "FILE",
    help: "keys, one [NAME:]KEY per line (# comments), added to --api-key; re-read on SIGHUP",
  },
  "protect-metrics": {
    type: "boolean",
    env: ["PARLEY_PROTECT_METRICS"],
    help: "/metrics needs a key too (health checks and the web client's files never do)",
  },
  "web-root": {
    type: "string",
    env: ["PARLEY_WEB_ROOT"],
    value: "DIR",
    help: `the built web client served at / (default ${defaultWebRoot})`,
  },
  help: { type: "boolean", env: [], help: "print this help" },
} as const satisfies Record<string, OptionSpec>;

type Name = keyof typeof specs;

/** The usage text `--help` prints, wrapped to 100 columns. */
export function usage(): string {
  const indent = 30;
  const lines = Object.entries(specs).flatMap(([name, spec]: [string, OptionSpec]) => {
    const flag = `  --${name}${spec.value ? ` ${spec.value}` : ""}`.padEnd(indent);
    const env = spec.env.length > 0 ? ` [env ${spec.env.join(", ")}]` : "";
    return wrap(`${spec.help}${env}`, 100 - indent).map((text, i) =>
      i === 0 ? `${flag}${text}` : `${" ".repeat(indent)}${text}`,
    );
  });
  return [
    "Usage: parley [options]",
    "",
    "Serves inference.v1.InferenceService over gRPC, gRPC-Web and Connect, an OpenAI-compatible",
    "API under /v1, the web client and /metrics, all on one port (HTTP/1.1, HTTP/2 cleartext and,",
    "with a certificate, TLS).",
    "",
    "Options:",
    ...lines,
    "",
  ].join("\n");
}

function wrap(text: string, width: number): string[] {
  const lines: string[] = [];
  let line = "";
  for (const word of text.split(" ")) {
    if (line.length > 0 && line.length + 1 + word.length > width) {
      lines.push(line);
      line = word;
    } else {
      line = line.length === 0 ? word : `${line} ${word}`;
    }
  }
  return [...lines, line];
}

/** Node's timers fire at once for a delay above 2^31 - 1 ms (about 24.8 days), so no deadline may be longer. */
const maxTimerMs = 2_147_483_647;

/** Parses `argv` (without node and the script) and `env`; throws {@link ConfigError}. */
export function parseConfig(argv: readonly string[], env: Env): CommandLine {
  let values: Partial<Record<Name, string | boolean | string[]>>;
  try {
    ({ values } = parseArgs({
      args: [...argv],
      options: Object.fromEntries(
        Object.entries(specs).map(([name, spec]: [string, OptionSpec]) => [
          name,
          { type: spec.type, multiple: spec.multiple ?? false },
        ]),
      ),
      strict: true,
      allowPositionals: false,
    }) as { values: Partial<Record<Name, string | boolean | string[]>> });
  } catch (error) {
    throw new ConfigError(error instanceof Error ? error.message : String(error));
  }
  if (values.help === true) {
    return { kind: "help", usage: usage() };
  }

  const text = (name: Name): string | undefined => {
    const flag = values[name];
    if (typeof flag === "string") {
      return flag;
    }
    const found = specs[name].env.find(
      (variable) => env[variable] !== undefined && env[variable] !== "",
    );
    return found === undefined ? undefined : env[found];
  };
  const list = (name: Name): string[] | undefined => {
    const flag = values[name];
    if (Array.isArray(flag)) {
      return flag;
    }
    return text(name)
      ?.split(",")
      .map((item) => item.trim())
      .filter((item) => item.length > 0);
  };
  const integer = (name: Name, min: number, max = Number.MAX_SAFE_INTEGER): number | undefined => {
    const raw = text(name);
    if (raw === undefined) {
      return undefined;
    }
    const value = Number(raw);
    if (!/^\d+$/.test(raw.trim()) || !Number.isSafeInteger(value) || value < min || value > max) {
      throw new ConfigError(`--${name} must be an integer in [${min}, ${max}], got "${raw}"`);
    }
    return value;
  };
  const flag = (name: Name): boolean => {
    if (values[name] === true) {
      return true;
    }
    const raw = text(name)?.toLowerCase();
    return raw === "1" || raw === "true" || raw === "yes";
  };

  const certFile = text("tls-cert");
  const keyFile = text("tls-key");
  if ((certFile === undefined) !== (keyFile === undefined)) {
    throw new ConfigError("--tls-cert and --tls-key go together: set both or neither");
  }
  const corsOrigins = list("cors-origin") ?? [];
  for (const origin of corsOrigins) {
    if (origin !== "*" && !isOrigin(origin)) {
      throw new ConfigError(
        `--cors-origin must be * or an origin such as https://app.example.com, got "${origin}"`,
      );
    }
  }
  const logLevel = text("log-level") ?? "info";
  if (!isLogLevel(logLevel)) {
    throw new ConfigError(`--log-level must be one of ${logLevels.join(", ")}, got "${logLevel}"`);
  }
  const models = list("model") ?? [];
  const otlpEndpoint = text("otlp-endpoint");
  if (otlpEndpoint !== undefined && !isHttpUrl(otlpEndpoint)) {
    throw new ConfigError(
      `--otlp-endpoint must be an http:// or https:// URL such as http://collector:4318, got "${otlpEndpoint}"`,
    );
  }
  let apiKeys: ApiKey[];
  try {
    apiKeys = (list("api-key") ?? []).flatMap((value, index) =>
      parseApiKeys(value, "--api-key", () => `api-key-${index + 1}`),
    );
    checkDistinct(apiKeys);
  } catch (error) {
    throw new ConfigError(error instanceof ApiKeyError ? error.message : String(error));
  }
  const apiKeyFile = text("api-key-file");
  const protectMetrics = flag("protect-metrics");
  if (protectMetrics && apiKeys.length === 0 && apiKeyFile === undefined) {
    throw new ConfigError("--protect-metrics needs --api-key or --api-key-file");
  }
  const device = text("device") ?? "cpu";
  if (!isDevice(device)) {
    throw new ConfigError(`--device must be one of ${devices.join(", ")}, got "${device}"`);
  }
  const fastPaths = text("fast-paths")?.toLowerCase() ?? "on";
  if (fastPaths !== "on" && fastPaths !== "off") {
    throw new ConfigError(`--fast-paths must be on or off, got "${fastPaths}"`);
  }

  return {
    kind: "run",
    config: {
      port: integer("port", 0, 65_535) ?? 8080,
      probePort: integer("probe-port", 0, 65_535),
      host: text("host") ?? "127.0.0.1",
      tls: certFile !== undefined && keyFile !== undefined ? { certFile, keyFile } : undefined,
      corsOrigins,
      models: models.length > 0 ? models : ["builtin"],
      maxQueue: integer("max-queue", 1),
      maxBatch: integer("max-batch", 1),
      intraOpThreads: text("intra-op-threads") === "auto" ? "auto" : integer("intra-op-threads", 1),
      workerNice: integer("worker-nice", 0, 19),
      device,
      prefixCacheMib: integer("prefix-cache-mib", 0),
      prefillTokens: integer("prefill-tokens", 1),
      streamIntervalMs: integer("stream-interval-ms", 0, 1000),
      defaultMaxTokens: integer("default-max-tokens", 1),
      parkAfterMs: integer("park-after-ms", 0),
      maxParked: integer("max-parked", 0),
      parkTimeoutMs: integer("park-timeout-ms", 1),
      maxRequestBytes: integer("max-request-bytes", 1, 0xffffffff) ?? 4 * 1024 * 1024,
      maxTimeoutMs: integer("max-timeout-ms", 1, maxTimerMs) ?? 3_600_000,
      fastPaths: fastPaths === "on",
      shutdownGraceMs: integer("shutdown-grace-ms", 0) ?? 25_000,
      logLevel,
      offline: flag("offline"),
      upstreamApiKey: text("upstream-api-key"),
      upstreamTimeoutMs: integer("upstream-timeout-ms", 1),
      otlpEndpoint,
      webRoot: text("web-root") ?? defaultWebRoot,
      apiKeys,
      apiKeyFile,
      protectMetrics,
    },
  };
}

function isOrigin(value: string): boolean {
  try {
    const url = new URL(value);
    return (url.protocol === "http:" || url.protocol === "https:") && url.origin === value;
  } catch {
    return false;
  }
}

function isHttpUrl(value: string): boolean {
  try {
    const { protocol } = new URL(value);
    return protocol === "http:" || protocol === "https:";
  } catch {
    return false;
  }
}

function isLogLevel(value: string): value is LevelWithSilent {
  return (logLevels as readonly string[]).includes(value);
}
