#!/usr/bin/env node
/**
 * @module The `parley` command: configuration, server, signals, then models and engine.
 * Everything else lives in the rooms it wires together. The port is bound before any model is
 * downloaded or loaded, so a port in use or a bad TLS file is reported at once, and health,
 * `/metrics` and the UI answer (NOT_SERVING) while models load.
 */
import { readFileSync } from "node:fs";
import type { Logger } from "pino";
import type { Registry } from "prom-client";
import { ConfigError, type GatewayConfig, parseConfig } from "./config.js";
import { createEngine } from "./engine/create-engine.js";
import { createDeferredEngine } from "./engine/deferred-engine.js";
import type { Engine } from "./engine/engine.js";
import { lowerHelperThreadsPriority } from "./engine/thread-priority.js";
import {
  type ApiKey,
  type ApiKeyGuard,
  checkDistinct,
  createApiKeyGuard,
  parseApiKeys,
} from "./http/api-keys.js";
import type { AnyModelSource } from "./models/model-source.js";
import { resolveModelSource } from "./models/resolve-model-source.js";
import { redactModelSpec } from "./models/sources/openai-upstream-source.js";
import type { CallTracer } from "./observability/call-tracer.js";
import { gatewayVersion } from "./observability/gateway-version.js";
import { createLogger } from "./observability/logger.js";
import { createMetricsRegistry } from "./observability/metrics-registry.js";
import {
  createGatewayServer,
  type GatewayServer,
  ListenError,
} from "./server/create-gateway-server.js";

async function main(): Promise<void> {
  let config: GatewayConfig;
  try {
    const commandLine = parseConfig(process.argv.slice(2), process.env);
    if (commandLine.kind === "help") {
      process.stdout.write(commandLine.usage);
      return;
    }
    config = commandLine.config;
  } catch (error) {
    if (error instanceof ConfigError) {
      process.stderr.write(`parley: ${error.message}\nRun parley --help for the options.\n`);
      process.exit(2);
    }
    throw error;
  }

  const logger = createLogger({ level: config.logLevel });
  try {
    await start(config, logger);
  } catch (error) {
    // One line an operator reads at a glance; the stack, for a bug report, only at debug level.
    logger.debug({ err: error }, "start-up failed");
    process.stderr.write(`parley: could not start: ${errorChain(error)}\n`);
    process.exit(1);
  }
}

/** An error's message followed by its causes' ("cannot load model: no such file"). */
function errorChain(error: unknown): string {
  if (error instanceof ListenError) return error.message; // already says it all
  const messages: string[] = [];
  for (let at: unknown = error; at !== undefined && messages.length < 5; ) {
    const message = at instanceof Error ? at.message : String(at);
    if (!messages.some((seen) => seen.includes(message))) messages.push(message);
    at = at instanceof Error ? at.cause : undefined;
  }
  return messages.join(": ").replaceAll(/\s*\n\s*/g, " ");
}

async function start(config: GatewayConfig, logger: Logger): Promise<void> {
  const metrics = createMetricsRegistry();
  // Before the models: a bad key file fails the start at once, not after a download.
  const apiKeys = createApiKeys(config, metrics, logger);
  const tracer = await startTracer(config, logger);
  const engine = createDeferredEngine();
  const server = createGatewayServer({ engine, config, metrics, logger, apiKeys, tracer });
  const { port, host, probePort } = await server.listen();
  const authority = `${host.includes(":") ? `[${host}]` : host}:${port}`;
  const probeAddress =
    probePort === undefined
      ? undefined
      : `http://${host.includes(":") ? `[${host}]` : host}:${probePort}`;
  // `url` and "Parley is listening" are logged once models are ready (below): scripts wait for them.
  logger.info(
    {
      address: `http://${authority}`,
      tlsAddress: config.tls === undefined ? undefined : `https://${authority}`,
      probeAddress,
    },
    `Bound http://${authority}; loading models`,
  );
  handleSignals(server, engine, tracer, config.shutdownGraceMs, logger);

  const models: AnyModelSource[] = [];
  for (const spec of config.models) {
    logger.info({ model: redactModelSpec(spec) }, "resolving model");
    models.push(
      await resolveModelSource(spec, {
        offline: config.offline,
        upstreamApiKey: config.upstreamApiKey,
      }),
    );
  }
  // Before the model workers exist: this lowers V8's and libuv's helpers, and the workers (which
  // start at the main thread's priority) choose their own (engine-worker.ts).
  lowerHelperThreadsPriority();
  const loaded = await createEngine({
    models,
    metrics,
    logger,
    maxBatchSize: config.maxBatch,
    maxQueue: config.maxQueue,
    intraOpThreads: config.intraOpThreads,
    workerNice: config.workerNice,
    device: config.device,
    prefillChunkTokens: config.prefillTokens,
    prefixCacheBytes:
      config.prefixCacheMib === undefined ? undefined : config.prefixCacheMib * 1024 * 1024,
    streamIntervalMs: config.streamIntervalMs,
    defaultMaxTokens: config.defaultMaxTokens,
    parkAfterMs: config.parkAfterMs,
    maxParked: config.maxParked,
    parkTimeoutMs: config.parkTimeoutMs,
    upstreamTimeoutMs: config.upstreamTimeoutMs,
  });
  await engine.resolve(loaded);
  logger.info(
    {
      url: `http://${authority}`,
      tlsUrl: config.tls === undefined ? undefined : `https://${authority}`,
      probeUrl: probeAddress,
      models: loaded.models().map((model) => model.id),
    },
    `Parley is listening on http://${authority}`,
  );
}

/** The OTLP tracer when `--otlp-endpoint` is set; the SDK is not even loaded otherwise. */
async function startTracer(config: GatewayConfig, logger: Logger): Promise<CallTracer | undefined> {
  if (config.otlpEndpoint === undefined) return undefined;
  const { createOtlpCallTracer, otlpTracesUrl } = await import(
    "./observability/otlp-call-tracer.js"
  );
  logger.info({ tracesUrl: otlpTracesUrl(config.otlpEndpoint) }, "exporting traces over OTLP/HTTP");
  return createOtlpCallTracer({
    endpoint: config.otlpEndpoint,
    serviceName: process.env.OTEL_SERVICE_NAME ?? "parley",
    serviceVersion: gatewayVersion(),
  });
}

/**
 * The API key guard when keys are configured (undefined: no authentication, as before keys
 * existed). With a key file, SIGHUP re-reads it; a file that cannot be read or parsed, or holds
 * no key, leaves the keys as they were and logs why.
 */
function createApiKeys(
  config: GatewayConfig,
  registry: Registry,
  logger: Logger,
): ApiKeyGuard | undefined {
  const { apiKeyFile } = config;
  if (config.apiKeys.length === 0 && apiKeyFile === undefined) {
    return undefined;
  }
  const load = (): ApiKey[] => {
    const keys = [...config.apiKeys];
    if (apiKeyFile !== undefined) {
      keys.push(...parseApiKeys(readFileSync(apiKeyFile, "utf8"), apiKeyFile));
    }
    if (keys.length === 0) {
      throw new Error(`${apiKeyFile} holds no API key`);
    }
    checkDistinct(keys);
    return keys;
  };
  const keys = load();
  const guard = createApiKeyGuard({ keys, protectMetrics: config.protectMetrics, registry });
  logger.info({ apiKeys: keys.map((key) => key.name) }, "API keys required");
  if (apiKeyFile !== undefined) {
    process.on("SIGHUP", () => {
      try {
        const reloaded = load();
        guard.replace(reloaded);
        logger.info({ apiKeys: reloaded.map((key) => key.name) }, "API keys reloaded");
      } catch (error) {
        logger.error(
          { err: error, file: apiKeyFile },
          "API keys not reloaded: keeping the old ones",
        );
      }
    });
  }
  return guard;
}

/** The first SIGTERM/SIGINT drains and exits 0; a second one exits at once with 1. */
function handleSignals(
  server: GatewayServer,
  engine: Engine,
  tracer: CallTracer | undefined,
  graceMs: number,
  logger: Logger,
): void {
  let stopping = false;
  const onSignal = (signal: NodeJS.Signals) => {
    if (stopping) {
      logger.warn({ signal }, "second signal: exiting without waiting");
      process.exit(1);
    }
    stopping = true;
    logger.info({ signal, graceMs }, "shutting down");
    Promise.all([server.close(graceMs), engine.close(graceMs)])
      .then(() => tracer?.shutdown())
      .then(
        () => {
          logger.info("shut down");
          process.exit(0);
        },
        (error: unknown) => {
          logger.error({ err: error }, "shutdown failed");
          process.exit(1);
        },
      );
  };
  process.on("SIGTERM", onSignal);
  process.on("SIGINT", onSignal);
}

await main();
