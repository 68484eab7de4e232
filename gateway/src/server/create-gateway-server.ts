/**
 * @module The gateway's HTTP side, assembled: one port (h1, h2c and TLS sniffed per connection),
 * the RPC services (InferenceService, health, reflection) over gRPC, gRPC-Web and Connect, the
 * OpenAI-compatible `/v1` routes over the same service layer, API keys in front of both, CORS,
 * `/metrics`, the web client, and a graceful shutdown. Tests start it on port 0 with any engine.
 */

import { setMaxListeners } from "node:events";
import { readFileSync } from "node:fs";
import { createServer as createHttpServer } from "node:http";
import {
  createServer as createH2cServer,
  createSecureServer,
  type Http2SecureServer,
  type Http2Server,
  type IncomingHttpHeaders,
  type ServerHttp2Session,
  type ServerHttp2Stream,
} from "node:http2";
import type { AddressInfo, Socket } from "node:net";
import { Code, ConnectError } from "@connectrpc/connect";
import { Health } from "@parley/gen/grpc/health/v1/health_pb";
import { InferenceService } from "@parley/gen/inference/v1/inference_pb";
import type { Logger } from "pino";
import type { Registry } from "prom-client";
import type { Engine } from "../engine/engine.js";
import type { ApiKeyGuard } from "../http/api-keys.js";
import { createCorsPolicy } from "../http/cors-policy.js";
import { createSniffingListener } from "../http/create-sniffing-listener.js";
import { lingerBeforeClosing } from "../http/lingering-close.js";
import { createMetricsEndpoint } from "../http/metrics-endpoint.js";
import type { NodeRequest, NodeResponse } from "../http/node-http.js";
import { createProbeEndpoints } from "../http/probe-endpoints.js";
import { createStaticFiles } from "../http/static-files.js";
import type { CallTracer } from "../observability/call-tracer.js";
import { createRpcMetrics } from "../observability/rpc-metrics.js";
import { createOpenAiHandler } from "../openai/create-openai-handler.js";
import { createRpcHandler, type RpcHandler } from "../rpc/create-rpc-handler.js";
import { rpcService } from "../rpc/rpc-service.js";
import { createGenerationService } from "../services/generation-service.js";
import { createHealthService } from "../services/health-service.js";
import { createInferenceService } from "../services/inference-service.js";
import { createReflectionServices } from "../services/reflection-service.js";
import { isDrainedPath, refuseRequest, refuseStream } from "./draining-refusal.js";

/** What the server needs from the gateway's configuration. */
export interface GatewayServerConfig {
  /** 0 picks a free port. */
  readonly port: number;
  /**
   * A second port, serving the same, that stays open through a drain while `port` stops
   * accepting at once: for balancers that fail over only when a connection is refused (nginx
   * cannot retry a gRPC call it has sent). Undefined: `port` itself stays open through the
   * drain, so that probes sent to it are answered. 0 picks a free port.
   */
  readonly probePort?: number | undefined;
  readonly host: string;
  /** PEM files; with them, TLS connections are accepted on the same port. */
  readonly tls: { readonly certFile: string; readonly keyFile: string } | undefined;
  /** Origins allowed by CORS besides the page's own; "*" allows any. */
  readonly corsOrigins: readonly string[];
  /** Largest request message in bytes; larger ones fail with resource_exhausted. */
  readonly maxRequestBytes: number;
  /** Longest deadline a call may have; clients asking for more get this one. */
  readonly maxTimeoutMs: number;
  /** Serve common calls beside connect-node's router (rpc/fast/); default true. */
  readonly fastPaths?: boolean;
  /** The built web client served at "/". */
  readonly webRoot: string;
}

/** Options of {@link createGatewayServer}. */
export interface GatewayServerOptions {
  readonly engine: Engine;
  readonly config: GatewayServerConfig;
  /** The registry `/metrics` exposes; the server adds its RPC metrics to it. */
  readonly metrics: Registry;
  readonly logger: Logger;
  /** Records every call as a trace; absent: no tracing. */
  readonly tracer?: CallTracer | undefined;
  /** Authentication for every protocol; absent, no route needs a key. */
  readonly apiKeys?: ApiKeyGuard | undefined;
}

/** A gateway server: listen once, close once. */
export interface GatewayServer {
  /**
   * Starts accepting connections; resolves with the bound address, or rejects with a
   * {@link ListenError} (port in use, address not available, no permission).
   */
  listen(): Promise<{ port: number; host: string; probePort: number | undefined }>;
  /**
   * Drains: reports NOT_SERVING at once (`/readyz` 503, `grpc.health.v1`), sends GOAWAY to the
   * HTTP/2 clients connected now, refuses new inference calls with `unavailable` (HTTP 503, so a
   * balancer retries them elsewhere) and lets calls in flight finish for up to `graceMs`, while
   * the port (or, with `probePort`, only that one) keeps accepting connections so that probes
   * are answered. Then it stops listening,
   * aborts what is left (clients get Unavailable) and closes every connection. Closing the engine
   * is the caller's business.
   */
  close(graceMs: number): Promise<void>;
}

/** Why the port could not be bound, in words an operator reads in one line. */
export class ListenError extends Error {
  override readonly name = "ListenError";
}

/**
 * The `grpc.health.v1` service name a liveness probe checks: SERVING while the process answers,
 * whereas "" and `inference.v1.InferenceService` say whether it takes inference calls.
 */
export const livenessServiceName = "liveness";

/** How long a new connection may stay silent before it is dropped. */
const sniffTimeoutMs = 10_000;

/** After the grace period, how long aborted calls get to send their status, and sockets to end. */
const flushMs = 1_000;

/** Creates the server; nothing listens until `listen()`. */
export function createGatewayServer(options: GatewayServerOptions): GatewayServer {
  const { engine, config, logger } = options;
  const shutdown = new AbortController();
  // Every call in flight listens to this one signal: many listeners are expected, not a leak.
  setMaxListeners(0, shutdown.signal);
  const health = createHealthService({
    services: [InferenceService.typeName],
    livenessService: livenessServiceName,
  });
  // Health follows the engine: NOT_SERVING while no model can generate (a worker restarting).
  const followReadiness = () => health.setServing(engine.readyModels().length > 0);
  const stopFollowingReadiness = engine.onReadinessChange(followReadiness);
  followReadiness();
  const reflection = createReflectionServices({ services: [InferenceService, Health] });
  const rpcMetrics = createRpcMetrics(options.metrics);
  const rpc = createRpcHandler({
    services: [
      rpcService(InferenceService, createInferenceService({ engine })),
      rpcService(health.service, health.implementation),
      rpcService(reflection.v1[0], reflection.v1[1]),
      rpcService(reflection.v1alpha[0], reflection.v1alpha[1]),
    ],
    readMaxBytes: config.maxRequestBytes,
    maxTimeoutMs: config.maxTimeoutMs,
    fastPaths: config.fastPaths,
    shutdownSignal: shutdown.signal,
    metrics: rpcMetrics,
    logger,
    tracer: options.tracer,
  });
  const openai = createOpenAiHandler({
    generation: createGenerationService(engine),
    readMaxBytes: config.maxRequestBytes,
    maxTimeoutMs: config.maxTimeoutMs,
    shutdownSignal: shutdown.signal,
    metrics: rpcMetrics,
    logger,
    tracer: options.tracer,
  });
  const apiKeys = options.apiKeys;
  const idle = () => Promise.all([rpc.idle(), openai.idle()]);
  const inFlight = () => rpc.inFlight() + openai.inFlight();
  const corsPolicy = createCorsPolicy({ origins: config.corsOrigins });
  const metricsEndpoint = createMetricsEndpoint(options.metrics);
  const staticFiles = createStaticFiles({ root: config.webRoot });
  let closing: Promise<void> | undefined;
  const probes = createProbeEndpoints({
    notReadyReason: () =>
      closing !== undefined
        ? "shutting down"
        : engine.readyModels().length === 0
          ? engine.models().length === 0
            ? "loading models"
            : "no model is ready"
          : undefined,
  });

  const fail = (response: NodeResponse, error: unknown) => {
    logger.error({ err: error }, "request failed");
    if (!response.headersSent) {
      response.statusCode = 500;
      response.end();
    } else {
      response.destroy();
    }
  };

  const handleRequest = (request: NodeRequest, response: NodeResponse) => {
    try {
      if (closing !== undefined && request.httpVersionMajor === 1) {
        response.setHeader("Connection", "close");
      }
      const path = (request.url ?? "").split("?", 1)[0] ?? "";
      if (corsPolicy(request, response) || apiKeys?.rejects(request, response) === true) {
        return;
      }
      if (closing !== undefined && isDrainedPath(path)) {
        refuseRequest(request, response);
        return;
      }
      if (openai.handle(request, response) || rpc.handle(request, response)) {
        return;
      }
      if (probes(request, response)) {
        return;
      }
      if (path === "/metrics") {
        metricsEndpoint(request, response).catch((error: unknown) => fail(response, error));
        return;
      }
      staticFiles(request, response);
    } catch (error) {
      fail(response, error);
    }
  };

  const http1 = createHttpServer(handleRequest);
  const h2c = createH2cServer(handleRequest);
  const tls: Http2SecureServer | undefined =
    config.tls === undefined ? undefined : createTlsServer(config.tls, handleRequest);
  lingerBeforeClosing(http1);
  if (tls !== undefined) lingerBeforeClosing(tls);
  // Streams without a valid key go to the compatibility API, where `rejects` answers them.
  const admitted: RpcHandler["handleStream"] =
    apiKeys === undefined
      ? rpc.handleStream
      : (stream, headers) => apiKeys.admitStream(headers, () => rpc.handleStream(stream, headers));
  const handleStream: RpcHandler["handleStream"] = (stream, headers) => {
    if (closing !== undefined && isDrainedPath(headers[":path"] ?? "")) {
      refuseStream(stream, headers);
      return true;
    }
    return admitted(stream, headers);
  };
  routeStreams(h2c, handleStream);
  if (tls !== undefined) {
    routeStreams(tls, handleStream);
  }
  const sessions = new Set<ServerHttp2Session>();
  const trackSession = (session: ServerHttp2Session) => {
    sessions.add(session);
    session.once("close", () => sessions.delete(session));
  };
  h2c.on("session", trackSession);
  tls?.on("session", trackSession);
  tls?.on("tlsClientError", (error) => logger.debug({ err: error }, "TLS handshake failed"));

  const sockets = new Set<Socket>();
  const createListener = () => {
    const server = createSniffingListener({
      targets: { http1, h2c, tls },
      sniffTimeoutMs,
      onRefused: (reason) => logger.debug({ reason }, "connection refused"),
    });
    server.on("connection", (socket: Socket) => {
      sockets.add(socket);
      socket.once("close", () => sockets.delete(socket));
    });
    return server;
  };
  const listener = createListener();
  const probeListener = config.probePort === undefined ? undefined : createListener();
  const listenerClosed = Promise.all(
    [listener, probeListener].map(
      (server) =>
        new Promise<void>((resolve) => (server ? server.once("close", resolve) : resolve())),
    ),
  );
  const bind = (server: typeof listener, port: number) =>
    new Promise<AddressInfo>((resolve, reject) => {
      const fail = (error: NodeJS.ErrnoException) =>
        reject(new ListenError(listenFailure(error, config.host, port), { cause: error }));
      server.once("error", fail);
      server.listen(port, config.host, () => {
        server.off("error", fail);
        resolve(server.address() as AddressInfo);
      });
    });

  return {
    async listen() {
      const address = await bind(listener, config.port);
      const probeAddress =
        probeListener === undefined ? undefined : await bind(probeListener, config.probePort ?? 0);
      // The HTTP/1 servers never listen themselves; "listening" is what makes Node track their
      // connections (request and header timeouts, closeIdleConnections on close).
      http1.emit("listening");
      tls?.emit("listening");
      return { port: address.port, host: address.address, probePort: probeAddress?.port };
    },

    close(graceMs) {
      closing ??= (async () => {
        stopFollowingReadiness();
        health.shutDown();
        if (probeListener !== undefined) {
          // Probes have their own port: refuse new connections here now, so that balancers
          // move on at connect (where even nginx's grpc_pass can retry).
          listener.close();
        }
        // The port keeps accepting while calls drain: probes must be answered (kubelet and
        // balancers open a connection per probe), and a late call gets a 503 it can retry
        // elsewhere rather than a refused connection. HTTP/1.1 responses now carry
        // "Connection: close"; HTTP/2 clients connected now get GOAWAY (no new streams, open
        // ones run to their end).
        http1.closeIdleConnections();
        for (const session of sessions) {
          session.close();
        }
        logger.info({ inFlight: inFlight(), graceMs }, "draining calls in flight");
        if (!(await settlesWithin(idle(), graceMs))) {
          logger.warn({ inFlight: inFlight() }, "grace period over: aborting calls");
          shutdown.abort(new ConnectError("the server is shutting down", Code.Unavailable));
          await settlesWithin(idle(), flushMs);
        }
        if (probeListener === undefined) {
          listener.close();
        } else {
          probeListener.close();
        }
        http1.close();
        tls?.close();
        for (const session of sessions) {
          session.close();
        }
        http1.closeIdleConnections();
        // Node 20 has it on secure servers with allowHTTP1; @types/node 20 does not declare it.
        (tls as { closeIdleConnections?: () => void } | undefined)?.closeIdleConnections?.();
        if (!(await settlesWithin(listenerClosed, flushMs))) {
          for (const socket of sockets) {
            socket.destroy();
          }
        }
        await listenerClosed;
      })();
      return closing;
    },
  };
}

/**
 * Offers every new HTTP/2 stream to `direct` first, and hands the streams it declines to Node's
 * compatibility API (the "request" event). Node implements that API as a "stream" listener,
 * which the server registers when it is created with a request handler; it is taken out and
 * called from here, so that a stream is served by exactly one of the two.
 */
export function routeStreams(
  server: Http2Server | Http2SecureServer,
  direct: (...args: Parameters<RpcHandler["handleStream"]>) => boolean,
): void {
  const compat = server.listeners("stream") as ((...args: unknown[]) => void)[];
  if (compat.length !== 1) {
    throw new Error(`expected Node's one compatibility "stream" listener, found ${compat.length}`);
  }
  server.removeAllListeners("stream");
  const route = (
    stream: ServerHttp2Stream,
    headers: IncomingHttpHeaders,
    flags: number,
    rawHeaders: string[],
  ) => {
    if (!direct(stream, headers)) {
      compat[0]?.call(server, stream, headers, flags, rawHeaders);
    }
  };
  (server as Http2Server).on("stream", route);
}

/** The TLS server, with a readable error for a certificate or key that cannot be used. */
function createTlsServer(
  files: NonNullable<GatewayServerConfig["tls"]>,
  handleRequest: (request: NodeRequest, response: NodeResponse) => void,
): Http2SecureServer {
  const read = (flag: string, file: string) => {
    try {
      return readFileSync(file);
    } catch (error) {
      throw new ListenError(`cannot read ${flag} ${file}: ${errorText(error)}`, { cause: error });
    }
  };
  const cert = read("--tls-cert", files.certFile);
  const key = read("--tls-key", files.keyFile);
  try {
    return createSecureServer(
      { cert, key, allowHTTP1: true, ALPNProtocols: ["h2", "http/1.1"] },
      handleRequest,
    );
  } catch (error) {
    throw new ListenError(
      `--tls-cert ${files.certFile} and --tls-key ${files.keyFile} are not a usable PEM certificate and key: ${errorText(error)}`,
      { cause: error },
    );
  }
}

/** What went wrong binding the port, for the operator. */
function listenFailure(error: NodeJS.ErrnoException, host: string, port: number): string {
  const where = `${host}:${port}`;
  switch (error.code) {
    case "EADDRINUSE":
      return `port ${port} on ${host} is already in use`;
    case "EADDRNOTAVAIL":
      return `cannot listen on ${where}: the address is not on this machine (set --host)`;
    case "EACCES":
      return `cannot listen on ${where}: permission denied (ports below 1024 need privileges)`;
    default:
      return `cannot listen on ${where}: ${error.message}`;
  }
}

function errorText(error: unknown): string {
  if (error instanceof Error) {
    const code = (error as NodeJS.ErrnoException).code;
    return code === "ENOENT" ? "no such file" : error.message;
  }
  return String(error);
}

/** Whether `promise` settled within `ms`. */
async function settlesWithin(promise: Promise<unknown>, ms: number): Promise<boolean> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<false>((resolve) => {
    timer = setTimeout(() => resolve(false), ms);
  });
  try {
    return await Promise.race([promise.then(() => true), timeout]);
  } finally {
    clearTimeout(timer);
  }
}
