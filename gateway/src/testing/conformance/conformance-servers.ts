/**
 * @module The systems the differential suite compares, all serving {@link ConformanceService}
 * with the same limits: connect-node's own `connectNodeAdapter` on plain Node servers (one port
 * each for HTTP/1.1, h2c and TLS with ALPN h2 + http/1.1), and Parley's stack (the sniffing
 * listener in front of the same three servers, `createRpcHandler`, HTTP/2 streams offered to the
 * direct gRPC path first) with its fast paths on, and with them off.
 */
import { once } from "node:events";
import { readFileSync } from "node:fs";
import { createServer as createHttpServer, type Server as HttpServer } from "node:http";
import {
  createServer as createH2cServer,
  createSecureServer,
  type Http2SecureServer,
  type Http2Server,
} from "node:http2";
import type { AddressInfo, Server } from "node:net";
import type { ConnectRouter } from "@connectrpc/connect";
import { compressionBrotli, compressionGzip, connectNodeAdapter } from "@connectrpc/connect-node";
import { pino } from "pino";
import { Registry } from "prom-client";
import { createSniffingListener } from "../../http/create-sniffing-listener.js";
import type { NodeRequest, NodeResponse } from "../../http/node-http.js";
import { createRpcMetrics } from "../../observability/rpc-metrics.js";
import { createRpcHandler } from "../../rpc/create-rpc-handler.js";
import { rpcService } from "../../rpc/rpc-service.js";
import { routeStreams } from "../../server/create-gateway-server.js";
import type { CertificateFiles } from "../self-signed-cert.js";
import { ConformanceService, conformanceImplementation } from "./conformance-service.js";

/** Largest request message every system accepts. */
export const readMaxBytes = 64 * 1024;

/** Longest deadline every system allows: Parley shortens longer ones, connect-node refuses them. */
export const maxTimeoutMs = 600_000;

/** The systems, by name. */
export type SystemName = "connect-node" | "parley" | "parley-router";

/** Where one system listens. */
export interface SystemUnderTest {
  readonly name: SystemName;
  /** Cleartext HTTP/1.1 and h2c (on Parley one port, on connect-node two). */
  readonly http1Url: string;
  readonly h2cUrl: string;
  /** TLS, h2 or http/1.1 by ALPN. */
  readonly tlsUrl: string;
  close(): Promise<void>;
}

/** The system names in the order the suite reports them. */
export const systemNames: readonly SystemName[] = ["connect-node", "parley", "parley-router"];

async function listen(server: Server | HttpServer | Http2Server | Http2SecureServer) {
  (server as Server).listen(0, "127.0.0.1");
  await once(server, "listening");
  return ((server as Server).address() as AddressInfo).port;
}

function closeAll(servers: readonly (Server | HttpServer | Http2Server | Http2SecureServer)[]) {
  return Promise.all(
    servers.map(
      (server) =>
        new Promise<void>((resolve) => {
          (server as HttpServer).closeAllConnections?.();
          server.close(() => resolve());
        }),
    ),
  ).then(() => undefined);
}

/** connect-node's router, served the way its documentation shows. */
export async function startConnectNode(cert: CertificateFiles): Promise<SystemUnderTest> {
  const handler = connectNodeAdapter({
    routes: (router: ConnectRouter) =>
      router.service(ConformanceService, conformanceImplementation),
    acceptCompression: [compressionGzip, compressionBrotli],
    readMaxBytes,
    maxTimeoutMs,
  });
  const http1 = createHttpServer(handler);
  const h2c = createH2cServer(handler);
  const tls = createSecureServer(
    {
      cert: readFileSync(cert.certFile),
      key: readFileSync(cert.keyFile),
      allowHTTP1: true,
      ALPNProtocols: ["h2", "http/1.1"],
    },
    handler,
  );
  const sessions = trackSessions(h2c, tls);
  const [p1, p2, p3] = await Promise.all([listen(http1), listen(h2c), listen(tls)]);
  return {
    name: "connect-node",
    http1Url: `http://127.0.0.1:${p1}`,
    h2cUrl: `http://127.0.0.1:${p2}`,
    tlsUrl: `https://localhost:${p3}`,
    close: () => {
      sessions.destroy();
      return closeAll([http1, h2c, tls]);
    },
  };
}

/** Parley's stack as createGatewayServer assembles it, with the conformance service. */
export async function startParley(
  cert: CertificateFiles,
  fastPaths: boolean,
): Promise<SystemUnderTest> {
  const shutdown = new AbortController();
  const rpc = createRpcHandler({
    services: [rpcService(ConformanceService, conformanceImplementation)],
    readMaxBytes,
    maxTimeoutMs,
    shutdownSignal: shutdown.signal,
    fastPaths,
    metrics: createRpcMetrics(new Registry()),
    logger: pino({ level: "silent" }),
  });
  const handle = (request: NodeRequest, response: NodeResponse) => {
    if (!rpc.handle(request, response)) {
      response.statusCode = 404;
      response.end();
    }
  };
  const http1 = createHttpServer(handle);
  const h2c = createH2cServer(handle);
  const tls = createSecureServer(
    {
      cert: readFileSync(cert.certFile),
      key: readFileSync(cert.keyFile),
      allowHTTP1: true,
      ALPNProtocols: ["h2", "http/1.1"],
    },
    handle,
  );
  routeStreams(h2c, rpc.handleStream);
  routeStreams(tls, rpc.handleStream);
  const sessions = trackSessions(h2c, tls);
  const listener = createSniffingListener({
    targets: { http1, h2c, tls },
    sniffTimeoutMs: 10_000,
    onRefused: () => {},
  });
  const port = await listen(listener);
  http1.emit("listening");
  tls.emit("listening");
  return {
    name: fastPaths ? "parley" : "parley-router",
    http1Url: `http://127.0.0.1:${port}`,
    h2cUrl: `http://127.0.0.1:${port}`,
    tlsUrl: `https://localhost:${port}`,
    close: async () => {
      shutdown.abort();
      sessions.destroy();
      http1.closeAllConnections();
      (tls as unknown as HttpServer).closeAllConnections?.();
      await new Promise<void>((resolve) => listener.close(() => resolve()));
    },
  };
}

function trackSessions(...servers: (Http2Server | Http2SecureServer)[]) {
  const sessions = new Set<{ destroy(): void }>();
  for (const server of servers) {
    server.on("session", (session) => {
      sessions.add(session);
      session.once("close", () => sessions.delete(session));
    });
  }
  return {
    destroy: () => {
      for (const session of sessions) session.destroy();
    },
  };
}
