/**
 * @module Serves the registered procedures over gRPC, gRPC-Web and Connect, and observes every
 * call (protocol, status code, messages, wire bytes) for its report: metrics and one log line.
 *
 * Two kinds of path share the services, the call count and the report: the hand-written fast
 * paths (fast/index.ts, whose table says which request takes which) and connect-node's router,
 * which serves every request they decline, and every request with `fastPaths: false`
 * (`--fast-paths off`).
 *
 * The router path is `connectNodeAdapter` opened up: the same router, the same exported
 * `universalRequestFromNodeRequest` / `universalResponseToNodeResponse` pair, but with the
 * request and response bodies in view. That seam is the only place where the wire bytes and the
 * status of calls that fail before any interceptor (bad body, oversized body, bad timeout) can be
 * seen, and the adapter offers no hook there.
 */

import type { IncomingHttpHeaders, ServerHttp2Stream } from "node:http2";
import { performance } from "node:perf_hooks";
import { Code, ConnectError, createConnectRouter, createContextValues } from "@connectrpc/connect";
import {
  compressionBrotli,
  compressionGzip,
  universalRequestFromNodeRequest,
  universalResponseToNodeResponse,
} from "@connectrpc/connect-node";
import type { Logger } from "pino";
import type { NodeRequest, NodeResponse } from "../http/node-http.js";
import { callReportKey } from "../observability/call-report.js";
import type { CallTracer } from "../observability/call-tracer.js";
import type { RpcMetrics } from "../observability/rpc-metrics.js";
import { clampTimeout } from "./clamp-timeout.js";
import type { UniversalHandler } from "./connect-internals.js";
import { createDirectRoutes, createFastPaths, type DirectPathOptions } from "./fast/index.js";
import { jsonOptions } from "./json-options.js";
import { createRpcCall, type RpcCall, rpcCallInterceptor, rpcCallKey } from "./rpc-call.js";
import { createRpcCallReporter, type RpcCallOutcome } from "./rpc-call-reporter.js";
import { type ObservedResponse, readRpcOutcome } from "./rpc-outcome.js";
import { rpcProtocolOf } from "./rpc-protocol.js";
import type { RpcService } from "./rpc-service.js";
import { wellFormedErrors } from "./well-formed.js";

/** Options of {@link createRpcHandler}. */
export interface RpcHandlerOptions {
  /** The services to serve. */
  readonly services: readonly RpcService[];
  /** Largest request message; larger ones fail with resource_exhausted. */
  readonly readMaxBytes: number;
  /** Longest deadline a call may have; longer ones are shortened to it. */
  readonly maxTimeoutMs: number;
  /** Aborting it aborts every handler's signal with its reason. */
  readonly shutdownSignal: AbortSignal;
  /**
   * Serve what they can on the paths beside connect-node (rpc/fast/); false serves every call
   * through connect-node's router, as a fallback and so the differential suite can compare both.
   * Default true.
   */
  readonly fastPaths?: boolean;
  readonly metrics: RpcMetrics;
  readonly logger: Logger;
  /** Records each finished call as a trace; absent: no tracing (`--otlp-endpoint` unset). */
  readonly tracer?: CallTracer | undefined;
}

/** The RPC part of the gateway's request handling. */
export interface RpcHandler {
  /** Serves the request when its path is a registered procedure; returns false otherwise. */
  handle(request: NodeRequest, response: NodeResponse): boolean;
  /**
   * Serves an HTTP/2 stream on the direct gRPC path when it can; returns false otherwise, and
   * the stream then goes to Node's compatibility API and {@link RpcHandler.handle}.
   */
  handleStream(stream: ServerHttp2Stream, headers: IncomingHttpHeaders): boolean;
  /** The number of calls in progress. */
  inFlight(): number;
  /** Resolves once no call is in progress. */
  idle(): Promise<void>;
}

/** Creates the RPC handler; see the module comment for why it is not `connectNodeAdapter`. */
export function createRpcHandler(options: RpcHandlerOptions): RpcHandler {
  const reporter = createRpcCallReporter(options);
  const router = createConnectRouter({
    acceptCompression: [compressionGzip, compressionBrotli],
    readMaxBytes: options.readMaxBytes,
    maxTimeoutMs: options.maxTimeoutMs,
    shutdownSignal: options.shutdownSignal,
    interceptors: [rpcCallInterceptor, wellFormedErrors],
    jsonOptions,
  });
  for (const { service, implementation } of options.services) {
    router.service(service, implementation);
  }
  const procedures = new Map(router.handlers.map((handler) => [handler.requestPath, handler]));
  let inFlight = 0;
  let idleWaiters: (() => void)[] = [];

  const started = (call: RpcCall) => {
    inFlight++;
    reporter.started(call);
  };
  const ended = (call: RpcCall, outcome: RpcCallOutcome) => {
    reporter.finished(call, outcome);
    inFlight--;
    if (inFlight === 0) {
      const waiters = idleWaiters;
      idleWaiters = [];
      for (const resolve of waiters) {
        resolve();
      }
    }
  };
  const besideConnectNode: DirectPathOptions = {
    routes: createDirectRoutes(options.services, options.readMaxBytes),
    readMaxBytes: options.readMaxBytes,
    maxTimeoutMs: options.maxTimeoutMs,
    shutdownSignal: options.shutdownSignal,
    onStart: started,
    onEnd: (call, error, durationMs, httpVersion) =>
      ended(call, { error, durationMs, httpVersion }),
  };
  const fast = createFastPaths(besideConnectNode, options.fastPaths ?? true);

  function handle(request: NodeRequest, response: NodeResponse): boolean {
    const path = (request.url ?? "").split("?", 1)[0] ?? "";
    const handler = procedures.get(path);
    if (handler === undefined) {
      return false;
    }
    if (fast.handleRequest(request, response, path)) {
      return true;
    }
    const call = createRpcCall(
      rpcProtocolOf(request.method, request.headers["content-type"]),
      path.slice(1),
      request.headers,
    );
    // Node merges headers set here with those connect-node writes with writeHead.
    response.setHeader("x-request-id", call.requestId);
    started(call);
    const startedAt = performance.now();
    const observed: ObservedResponse = {
      response: { status: 0 },
      lastChunk: undefined,
      complete: false,
    };
    response.once("close", () => {
      void finish(call, request, handler, observed, performance.now() - startedAt);
    });
    void serve(handler, call, request, response, observed);
    return true;
  }

  async function serve(
    handler: UniversalHandler,
    call: RpcCall,
    request: NodeRequest,
    response: NodeResponse,
    observed: ObservedResponse,
  ): Promise<void> {
    try {
      const universalRequest = universalRequestFromNodeRequest(
        request,
        response,
        undefined,
        createContextValues().set(rpcCallKey, call).set(callReportKey, call),
      );
      clampTimeout(universalRequest.header, options.maxTimeoutMs);
      const body = universalRequest.body as AsyncIterable<Uint8Array>;
      const universalResponse = await handler({
        ...universalRequest,
        body: countBytes(body, (bytes) => {
          call.bytesReceived += bytes;
        }),
      });
      observed.response = universalResponse;
      // Rejects on a write failure and otherwise never settles: it waits for an "end" event that
      // Node's responses do not emit. Completion is read from the body instead (observeBody), and
      // the call is finished on the response's "close".
      await universalResponseToNodeResponse(
        { ...universalResponse, body: observeBody(universalResponse.body, call, observed) },
        response,
      );
    } catch (error) {
      call.handlerError ??= error;
      if (!response.headersSent) {
        if (!response.destroyed) observed.response = { status: 400 };
        response.statusCode = 400;
        response.end();
      } else {
        response.destroy();
      }
    }
  }

  async function finish(
    call: RpcCall,
    request: NodeRequest,
    handler: UniversalHandler,
    observed: ObservedResponse,
    durationMs: number,
  ): Promise<void> {
    let error: ConnectError | undefined;
    try {
      const unary = handler.method.methodKind === "unary";
      // Status 0: the handler never produced a response (the client went away while its body was
      // read or decompressed); the client saw no status, so there is none to read.
      const outcome =
        observed.response.status === 0
          ? null
          : await readRpcOutcome(call.protocol, unary, observed);
      // null: the response never completed, so the client saw no status; the call was cut off.
      error = outcome === null ? cutOff(call.handlerError) : outcome;
    } catch (cause) {
      error = cutOff(cause);
    }
    ended(call, { error, durationMs, httpVersion: request.httpVersion });
  }

  return {
    handle,
    handleStream: fast.handleStream,
    inFlight: () => inFlight,
    idle: () =>
      inFlight === 0 ? Promise.resolve() : new Promise((resolve) => idleWaiters.push(resolve)),
  };
}

/** The status of a call whose response never completed: what the handler threw, else Canceled. */
function cutOff(handlerError: unknown): ConnectError {
  return handlerError instanceof ConnectError
    ? handlerError
    : new ConnectError("the call ended before its response was complete", Code.Canceled);
}

async function* countBytes(
  body: AsyncIterable<Uint8Array>,
  onBytes: (bytes: number) => void,
): AsyncGenerator<Uint8Array> {
  for await (const chunk of body) {
    onBytes(chunk.byteLength);
    yield chunk;
  }
}

async function* observeBody(
  body: AsyncIterable<Uint8Array> | undefined,
  call: RpcCall,
  observed: ObservedResponse,
): AsyncGenerator<Uint8Array> {
  if (body !== undefined) {
    for await (const chunk of body) {
      call.bytesSent += chunk.byteLength;
      observed.lastChunk = chunk;
      yield chunk;
    }
  }
  observed.complete = true;
}
