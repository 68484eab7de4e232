/**
 * @module The record of one RPC as it runs, and the Connect interceptor that fills in what only
 * the handler side sees: decoded messages in and out, and the error a handler threw with its
 * cause (which never reaches the client, only the server's log).
 */
import type { IncomingHttpHeaders } from "node:http";
import { createContextKey, type Interceptor } from "@connectrpc/connect";
import type { CallReport } from "../observability/call-report.js";
import { requestIdOf, singleHeader } from "./request-id.js";
import type { RpcProtocol } from "./rpc-protocol.js";

/** What one RPC did; counters grow while it runs, and its handler fills in `generation`. */
export interface RpcCall extends CallReport {
  readonly protocol: RpcProtocol;
  /** The procedure without the leading slash, e.g. "inference.v1.InferenceService/Generate". */
  readonly method: string;
  messagesReceived: number;
  messagesSent: number;
  bytesReceived: number;
  bytesSent: number;
  /** What the handler, or the request decoding it consumed, threw. */
  handlerError: unknown;
  /** The client's W3C trace context, continued by the call's trace when tracing is on. */
  readonly traceparent: string | undefined;
  readonly tracestate: string | undefined;
  /** When the call started, in milliseconds since the Unix epoch (for its trace span). */
  readonly startedAt: number;
}

/** A new call's record, from its request headers. */
export function createRpcCall(
  protocol: RpcProtocol,
  method: string,
  headers: IncomingHttpHeaders,
): RpcCall {
  return {
    protocol,
    method,
    messagesReceived: 0,
    messagesSent: 0,
    bytesReceived: 0,
    bytesSent: 0,
    handlerError: undefined,
    requestId: requestIdOf(headers["x-request-id"]),
    traceparent: singleHeader(headers.traceparent),
    tracestate: singleHeader(headers.tracestate),
    startedAt: performance.timeOrigin + performance.now(),
    generation: undefined,
  };
}

/** The context value under which the server hands each call's record to the interceptor. */
export const rpcCallKey = createContextKey<RpcCall | undefined>(undefined, {
  description: "parley rpc call",
});

/**
 * Counts messages and captures handler errors. Streams are wrapped in async generators, which
 * pull one message per `next()`, so backpressure passes through unchanged.
 */
export const rpcCallInterceptor: Interceptor = (next) => async (request) => {
  const call = request.contextValues.get(rpcCallKey);
  if (call === undefined) {
    return next(request);
  }
  const captureError = (error: unknown) => {
    call.handlerError ??= error;
  };
  try {
    if (request.stream) {
      const message = tap(request.message, () => call.messagesReceived++, captureError);
      request = { ...request, message };
    } else {
      call.messagesReceived++;
    }
    const response = await next(request);
    if (!response.stream) {
      call.messagesSent++;
      return response;
    }
    const message = tap(response.message, () => call.messagesSent++, captureError);
    return { ...response, message };
  } catch (error) {
    captureError(error);
    throw error;
  }
};

async function* tap<T>(
  source: AsyncIterable<T>,
  onItem: () => void,
  onError: (error: unknown) => void,
): AsyncGenerator<T> {
  try {
    for await (const item of source) {
      onItem();
      yield item;
    }
  } catch (error) {
    onError(error);
    throw error;
  }
}
