/**
 * @module A real gateway on loopback port 0 for tests: the real engine on the given models (the
 * built-in one by default), the real server, a registry with the default process metrics, and
 * the log lines kept for the test to read.
 */
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { Registry } from "prom-client";
import { createEngine, type EngineOptions } from "../engine/create-engine.js";
import type { Engine } from "../engine/engine.js";
import type { CallTracer } from "../observability/call-tracer.js";
import { createLogger } from "../observability/logger.js";
import { createMetricsRegistry } from "../observability/metrics-registry.js";
import {
  createGatewayServer,
  type GatewayServer,
  type GatewayServerConfig,
} from "../server/create-gateway-server.js";
import { builtinSource } from "./model-fixtures.js";

/** Options of {@link startRealGateway}. */
export interface RealGatewayOptions {
  readonly models?: EngineOptions["models"];
  readonly engine?: Partial<Omit<EngineOptions, "models" | "metrics" | "logger">>;
  readonly config?: Partial<GatewayServerConfig>;
  readonly tracer?: CallTracer;
}

/** A running gateway; `close()` stops the server and the engine. */
export interface RealGateway {
  readonly base: string;
  readonly port: number;
  readonly engine: Engine;
  readonly server: GatewayServer;
  readonly metrics: Registry;
  /** Every log line so far, parsed. */
  readonly logs: Record<string, unknown>[];
  close(): Promise<void>;
}

/** Starts the engine and the server. */
export async function startRealGateway(options: RealGatewayOptions = {}): Promise<RealGateway> {
  const logs: Record<string, unknown>[] = [];
  const logger = createLogger({
    level: "debug",
    destination: { write: (line: string) => logs.push(JSON.parse(line)) },
  });
  const metrics = createMetricsRegistry();
  const engine = await createEngine({
    models: options.models ?? [builtinSource()],
    metrics,
    logger,
    ...options.engine,
  });
  const server = createGatewayServer({
    engine,
    metrics,
    logger,
    ...(options.tracer === undefined ? {} : { tracer: options.tracer }),
    config: {
      port: 0,
      host: "127.0.0.1",
      tls: undefined,
      corsOrigins: [],
      maxRequestBytes: 1 << 20,
      maxTimeoutMs: 60_000,
      webRoot: join(tmpdir(), "parley-no-web-client-here"),
      ...options.config,
    },
  });
  const { port } = await server.listen();
  return {
    base: `http://127.0.0.1:${port}`,
    port,
    engine,
    server,
    metrics,
    logs,
    async close() {
      await server.close(1_000);
      await engine.close(1_000);
    },
  };
}
