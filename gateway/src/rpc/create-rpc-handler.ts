/**
 * @module Serves the registered procedures over gRPC, gRPC-Web and Connect, and observes every
 * call (protocol, status code, messages, wire bytes) for its report: metrics and one log line.
 *
 * Four paths share the services, the call count and the report, all for speed but the last:
 * gRPC calls of unary and server-streaming methods on HTTP/2 take the direct path
 * (grpc-stream-handler.ts); Connect server streams and gRPC-Web calls take
 * web-stream-handler.ts; Connect unary POSTs take connect-unary-handler.ts; everything else
 * (compressed requests, GET, gRPC-Web text, `+json` gRPC, client and bidi streaming) takes
 * connect-node's router.
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
import type { UniversalHandler } from "@connectrpc/connect/protocol";
import {
  compressionBrotli,
  compressionGzip,
  universalRequestFromNodeRequest,
  universalResponseToNodeResponse,
} from "@connectrpc/connect-node";
import type { Logger } from "pino";
import type { NodeRequest, NodeResponse } from "../http/node-http.js";
import type { RpcMetrics } from "../observability/rpc-metrics.js";
import { clampTimeout } from "./clamp-timeout.js";
import { createConnectUnaryHandler } from "./fast/connect-unary.js";
import { createGrpcStreamHandler } from "./fast/grpc.js";
import { createDirectRoutes, type DirectPathOptions } from "./fast/routes.js";
import { createWebStreamHandler } from "./fast/web-stream.js";
import { jsonOptions } from "./json-options.js";
import { type RpcCall, rpcCallInterceptor, rpcCallKey } from "./rpc-call.js";
import { createRpcCallReporter, type RpcCallOutcome } from "./rpc-call-reporter.js";
import { type ObservedResponse, readRpcOutcome } from "./rpc-outcome.js";
import { rpcProtocolOf } from "./rpc-protocol.js";
import type { RpcService } from "./rpc-service.js";

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
  readonly metrics: RpcMetrics;
  readonly logger: Logger;
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
    interceptors: [rpcCallInterceptor],
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
  const handleStream = createGrpcStreamHandler(besideConnectNode);
  const handleWebStream = createWebStreamHandler(besideConnectNode);
  const handleConnectUnary = createConnectUnaryHandler(besideConnectNode);

  function handle(request: NodeRequest, response: NodeResponse): boolean {
    const path = (request.url ?? "").split("?", 1)[0] ?? "";
    const handler = procedures.get(path);
    if (handler === undefined) {
      return false;
    }
    if (handleWebStream(request, response, path) || handleConnectUnary(request, response, path)) {
      return true;
    }
    const call: RpcCall = {
      protocol: rpcProtocolOf(request.method, request.headers["content-type"]),
      method: path.slice(1),
      messagesReceived: 0,
      messagesSent: 0,
      bytesReceived: 0,
      bytesSent: 0,
      handlerError: undefined,
    };
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
        createContextValues().set(rpcCallKey, call),
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
      const outcome = await readRpcOutcome(call.protocol, unary, observed);
      // null: the response never completed, so the client saw no status; the call was cut off.
      error = outcome === null ? cutOff(call.handlerError) : outcome;
    } catch (cause) {
      error = cutOff(cause);
    }
    ended(call, { error, durationMs, httpVersion: request.httpVersion });
  }

  return {
    handle,
    handleStream,
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
