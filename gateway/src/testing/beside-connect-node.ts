/**
 * @module Test set-up shared by the tests of the paths beside connect-node: servers on which
 * whatever the path under test declines gets HTTP 404 (so each success was served by that path
 * alone), a path's options, the report of each call, and the wait for a handler's abort.
 */
import assert from "node:assert/strict";
import { once } from "node:events";
import { createServer as createHttpServer } from "node:http";
import { createServer as createH2cServer, type ServerHttp2Session } from "node:http2";
import type { AddressInfo } from "node:net";
import type { ConnectError } from "@connectrpc/connect";
import type { NodeRequest, NodeResponse } from "../http/node-http.js";
import {
  createDirectRoutes,
  type DirectPathOptions,
  type DirectRequestHandler,
} from "../rpc/fast/routes.js";
import type { RpcCall } from "../rpc/rpc-call.js";
import type { RpcService } from "../rpc/rpc-service.js";

/** One call as the path reported it. */
export interface EndedCall {
  readonly call: RpcCall;
  readonly error: ConnectError | undefined;
  readonly httpVersion: string;
}

/** The reports of a path's calls, in order. */
export interface CallReports {
  readonly ended: EndedCall[];
  readonly onEnd: DirectPathOptions["onEnd"];
  /** Waits until `count` calls were reported; returns the last. */
  last(count: number): Promise<EndedCall>;
}

/** Creates an empty list of reports. */
export function collectCallReports(): CallReports {
  const ended: EndedCall[] = [];
  return {
    ended,
    onEnd: (call, error, _durationMs, httpVersion) => ended.push({ call, error, httpVersion }),
    async last(count) {
      for (let i = 0; i < 100 && ended.length < count; i++) {
        await new Promise((resolve) => setTimeout(resolve, 10));
      }
      const last = ended.at(-1);
      assert.ok(last !== undefined && ended.length >= count, "the call was reported");
      return last;
    },
  };
}

/**
 * The options of a path under test: `services` with a request limit of `readMaxBytes`, a
 * one-minute deadline limit, `shutdown`, and every call reported to `reports`.
 */
export function testPathOptions(
  services: readonly RpcService[],
  readMaxBytes: number,
  shutdown: AbortSignal,
  reports: CallReports,
): DirectPathOptions {
  return {
    routes: createDirectRoutes(services, readMaxBytes),
    readMaxBytes,
    maxTimeoutMs: 60_000,
    shutdownSignal: shutdown,
    onStart: () => {},
    onEnd: reports.onEnd,
  };
}

/** Resolves when `signal` aborts, with its reason. */
export function aborted(signal: AbortSignal): Promise<unknown> {
  return new Promise((resolve) => {
    if (signal.aborted) resolve(signal.reason);
    signal.addEventListener("abort", () => resolve(signal.reason), { once: true });
  });
}

/** An HTTP/1.1 and an h2c server on loopback, serving one request/response path. */
export interface DecliningServers {
  /** "http://127.0.0.1:port" of the HTTP/1.1 server. */
  readonly url1: string;
  /** "http://127.0.0.1:port" of the h2c server. */
  readonly url2: string;
  close(): void;
}

/** Starts both servers; requests `handle` declines get 404. */
export async function startDecliningServers(
  handle: DirectRequestHandler,
): Promise<DecliningServers> {
  const serve = (request: NodeRequest, response: NodeResponse) => {
    const path = (request.url ?? "").split("?", 1)[0] ?? "";
    if (!handle(request, response, path)) {
      request.resume();
      response.statusCode = 404;
      response.end();
    }
  };
  const http1 = createHttpServer(serve);
  const http2 = createH2cServer(serve);
  // Clients keep their connections for reuse; closing the server waits for them.
  const sessions = new Set<ServerHttp2Session>();
  http2.on("session", (session) => {
    sessions.add(session);
    session.once("close", () => sessions.delete(session));
  });
  http1.listen(0, "127.0.0.1");
  http2.listen(0, "127.0.0.1");
  await Promise.all([once(http1, "listening"), once(http2, "listening")]);
  return {
    url1: `http://127.0.0.1:${(http1.address() as AddressInfo).port}`,
    url2: `http://127.0.0.1:${(http2.address() as AddressInfo).port}`,
    close() {
      http1.closeAllConnections();
      http1.close();
      http2.close();
      for (const session of sessions) session.destroy();
    },
  };
}
