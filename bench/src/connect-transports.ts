/**
 * @module connect-node transports for each protocol and HTTP version, each with its own
 * connections (an HTTP/2 session manager or an HTTP/1.1 agent) so a run starts cold of others'
 * connections and leaves none behind.
 */

import { Agent } from "node:http";
import type { Transport } from "@connectrpc/connect";
import {
  createConnectTransport,
  createGrpcTransport,
  createGrpcWebTransport,
  Http2SessionManager,
} from "@connectrpc/connect-node";
import type { WireProtocol } from "./rpc-wire.js";

/** A transport and the way to close its connections. */
export interface BenchTransport {
  readonly transport: Transport;
  close(): void;
}

/** Creates a transport to `http://127.0.0.1:port`; gRPC is always HTTP/2. */
export function createBenchTransport(
  protocol: WireProtocol,
  httpVersion: "1.1" | "2",
  port: number,
  maxSockets = 64,
): BenchTransport {
  const baseUrl = `http://127.0.0.1:${port}`;
  const agent = new Agent({ keepAlive: true, maxSockets });
  const sessionManager = new Http2SessionManager(baseUrl);
  const version =
    httpVersion === "2"
      ? { httpVersion: "2" as const, sessionManager }
      : { httpVersion: "1.1" as const, nodeOptions: { agent } };
  const transport = (() => {
    switch (protocol) {
      case "grpc":
        return createGrpcTransport({ baseUrl, sessionManager });
      case "grpc-web":
        return createGrpcWebTransport({ baseUrl, ...version });
      case "connect-proto":
        return createConnectTransport({ baseUrl, useBinaryFormat: true, ...version });
      case "connect-json":
        return createConnectTransport({ baseUrl, useBinaryFormat: false, ...version });
    }
  })();
  return {
    transport,
    close() {
      sessionManager.abort();
      agent.destroy();
    },
  };
}
