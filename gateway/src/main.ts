#!/usr/bin/env node
/**
 * @module The `parley` command: configuration, models, engine, server, signals. Everything else
 * lives in the rooms it wires together.
 */
import type { Logger } from "pino";
import { ConfigError, type GatewayConfig, parseConfig } from "./config.js";
import { createEngine } from "./engine/create-engine.js";
import type { Engine } from "./engine/engine.js";
import { lowerHelperThreadsPriority } from "./engine/thread-priority.js";
import type { ModelSource } from "./models/model-source.js";
import { resolveModelSource } from "./models/resolve-model-source.js";
import { createLogger } from "./observability/logger.js";
import { createMetricsRegistry } from "./observability/metrics-registry.js";
import { createGatewayServer, type GatewayServer } from "./server/create-gateway-server.js";

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
    logger.fatal({ err: error }, "Parley could not start");
    process.exit(1);
  }
}

async function start(config: GatewayConfig, logger: Logger): Promise<void> {
  const metrics = createMetricsRegistry();
  const models: ModelSource[] = [];
  for (const spec of config.models) {
    logger.info({ model: spec }, "resolving model");
    models.push(await resolveModelSource(spec, { offline: config.offline }));
  }
  // Before the model workers exist: this lowers V8's and libuv's helpers, and the workers (which
  // start at the main thread's priority) choose their own (engine-worker.ts).
  lowerHelperThreadsPriority();
  const engine = await createEngine({
    models,
    metrics,
    logger,
    maxBatchSize: config.maxBatch,
    maxQueue: config.maxQueue,
    intraOpThreads: config.intraOpThreads,
    device: config.device,
    prefillChunkTokens: config.prefillTokens,
    prefixCacheBytes:
      config.prefixCacheMib === undefined ? undefined : config.prefixCacheMib * 1024 * 1024,
    streamIntervalMs: config.streamIntervalMs,
    defaultMaxTokens: config.defaultMaxTokens,
    parkAfterMs: config.parkAfterMs,
    maxParked: config.maxParked,
    parkTimeoutMs: config.parkTimeoutMs,
  });
  const server = createGatewayServer({ engine, config, metrics, logger });
  const { port, host } = await server.listen();
  const authority = `${host.includes(":") ? `[${host}]` : host}:${port}`;
  logger.info(
    {
      url: `http://${authority}`,
      tlsUrl: config.tls === undefined ? undefined : `https://${authority}`,
      models: engine.models().map((model) => model.id),
    },
    `Parley is listening on http://${authority}`,
  );
  handleSignals(server, engine, config.shutdownGraceMs, logger);
}

/** The first SIGTERM/SIGINT drains and exits 0; a second one exits at once with 1. */
function handleSignals(
  server: GatewayServer,
  engine: Engine,
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
    Promise.all([server.close(graceMs), engine.close(graceMs)]).then(
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
