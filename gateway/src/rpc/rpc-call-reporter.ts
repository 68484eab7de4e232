/**
 * @module Turns each finished RPC into its metrics, its one log line and, when tracing is on, its
 * trace. The log line carries what an operator needs to find a call (request id, protocol,
 * method, code, duration, sizes; the model and token counts of a generation; the trace id) and,
 * for failures, the server-side cause, which never reaches the client.
 */
import { Code, ConnectError } from "@connectrpc/connect";
import type { Logger } from "pino";
import type { CallTracer } from "../observability/call-tracer.js";
import type { RpcMetrics } from "../observability/rpc-metrics.js";
import { codeToString } from "./connect-internals.js";
import type { RpcCall } from "./rpc-call.js";

/** Options of {@link createRpcCallReporter}. */
export interface RpcCallReporterOptions {
  readonly metrics: RpcMetrics;
  readonly logger: Logger;
  /** Absent: no tracing, and nothing of it runs per call. */
  readonly tracer?: CallTracer | undefined;
}

/** How a call ended. */
export interface RpcCallOutcome {
  /** The status the client received; undefined for success. */
  readonly error: ConnectError | undefined;
  readonly durationMs: number;
  /** "1.1" or "2.0". */
  readonly httpVersion: string;
}

/** Reports calls as they start and end. */
export interface RpcCallReporter {
  started(call: RpcCall): void;
  finished(call: RpcCall, outcome: RpcCallOutcome): void;
}

/**
 * The tallies of one protocol and method. Calls add to plain numbers, handed to prom-client when
 * `/metrics` is read: prom-client hashes the label set on every update, which cost more than the
 * rest of the bookkeeping on a server doing tens of thousands of calls a second.
 */
interface MethodSeries {
  readonly labels: { readonly protocol: string; readonly method: string };
  /** Logs with the labels already serialized (a pino child). */
  readonly logger: Logger;
  inFlight: number;
  messagesReceived: number;
  messagesSent: number;
  bytesReceived: number;
  bytesSent: number;
  readonly byCode: Map<Code | undefined, CodeSeries>;
}

interface CodeSeries {
  readonly code: string;
  requests: number;
  /** The duration histogram's child: buckets cannot be handed over later, so it is fed per call. */
  readonly duration: { observe(value: number): void };
}

/** Creates the reporter. */
export function createRpcCallReporter(options: RpcCallReporterOptions): RpcCallReporter {
  const { metrics, logger, tracer } = options;
  /** By protocol, then method: two lookups of strings the call already holds, no key to build. */
  const series = new Map<string, Map<string, MethodSeries>>();
  metrics.onCollect(() => {
    for (const method of [...series.values()].flatMap((byMethod) => [...byMethod.values()])) {
      const { labels } = method;
      metrics.streamsInFlight.set(labels, method.inFlight);
      metrics.messagesReceived.inc(labels, method.messagesReceived);
      metrics.messagesSent.inc(labels, method.messagesSent);
      metrics.bytesReceived.inc(labels, method.bytesReceived);
      metrics.bytesSent.inc(labels, method.bytesSent);
      method.messagesReceived = method.messagesSent = method.bytesReceived = method.bytesSent = 0;
      for (const byCode of method.byCode.values()) {
        metrics.requests.inc({ ...labels, code: byCode.code }, byCode.requests);
        byCode.requests = 0;
      }
    }
  });
  const seriesOf = (call: RpcCall): MethodSeries => {
    let byMethod = series.get(call.protocol);
    if (byMethod === undefined) {
      byMethod = new Map();
      series.set(call.protocol, byMethod);
    }
    let found = byMethod.get(call.method);
    if (found === undefined) {
      const labels = { protocol: call.protocol, method: call.method };
      found = {
        labels,
        logger: logger.child(labels),
        inFlight: 0,
        messagesReceived: 0,
        messagesSent: 0,
        bytesReceived: 0,
        bytesSent: 0,
        byCode: new Map(),
      };
      byMethod.set(call.method, found);
    }
    return found;
  };
  const codeSeriesOf = (method: MethodSeries, error: Code | undefined) => {
    let found = method.byCode.get(error);
    if (found === undefined) {
      const code = error === undefined ? "ok" : codeToString(error);
      found = {
        code,
        requests: 0,
        duration: metrics.duration.labels({ ...method.labels, code }),
      };
      method.byCode.set(error, found);
    }
    return found;
  };

  return {
    started(call) {
      seriesOf(call).inFlight++;
    },
    finished(call, { error, durationMs, httpVersion }) {
      const method = seriesOf(call);
      const byCode = codeSeriesOf(method, error?.code);
      const { code } = byCode;
      method.inFlight--;
      byCode.requests++;
      byCode.duration.observe(durationMs / 1000);
      method.messagesReceived += call.messagesReceived;
      method.messagesSent += call.messagesSent;
      method.bytesReceived += call.bytesReceived;
      method.bytesSent += call.bytesSent;
      const { generation } = call;
      const traceId = tracer?.record({
        method: call.method,
        protocol: call.protocol,
        requestId: call.requestId,
        traceparent: call.traceparent,
        tracestate: call.tracestate,
        startedAt: call.startedAt,
        endedAt: call.startedAt + durationMs,
        code,
        errorMessage: error?.rawMessage,
        generation,
      });
      const line = {
        requestId: call.requestId,
        ...(traceId === undefined ? {} : { traceId }),
        code,
        durationMs: Math.round(durationMs * 100) / 100,
        httpVersion,
        messagesReceived: call.messagesReceived,
        messagesSent: call.messagesSent,
        bytesReceived: call.bytesReceived,
        bytesSent: call.bytesSent,
        ...(generation === undefined
          ? {}
          : {
              model: generation.model,
              promptTokens: generation.promptTokens,
              completionTokens: generation.completionTokens,
              finishReason: generation.finishReason,
            }),
      };
      if (error === undefined) {
        method.logger.info(line, "rpc");
        return;
      }
      // The cause is what the client must not see: the engine's error, an unexpected throw.
      // A plain ConnectError (a validation message) is all in `error` already.
      const thrown = call.handlerError;
      const cause = thrown instanceof ConnectError ? thrown.cause : thrown;
      method.logger[levelOf(error.code, cause !== undefined && !isZlibError(cause))](
        { ...line, error: error.rawMessage, ...(cause === undefined ? {} : { err: cause }) },
        "rpc",
      );
    },
  };
}

/**
 * Server faults are errors; load and deadline problems are warnings; client mistakes are info.
 * An internal, unknown or data_loss status is a server fault when something unexpected was
 * thrown (`thrown`: a cause to log). Without one, it is the protocol layer refusing a request
 * (a malformed protobuf message, a compressed envelope without an encoding, a wrong content
 * type), or zlib failing on a corrupt compressed body: the client's doing, a warning, so
 * clients cannot flood the error log (issue 13).
 */
function levelOf(code: Code, thrown: boolean): "error" | "warn" | "info" {
  switch (code) {
    case Code.Internal:
    case Code.Unknown:
    case Code.DataLoss:
      return thrown ? "error" : "warn";
    case Code.ResourceExhausted:
    case Code.Unavailable:
    case Code.DeadlineExceeded:
      return "warn";
    default:
      return "info";
  }
}

/** Whether `error` is zlib's (Z_DATA_ERROR, Z_BUF_ERROR, …): a request's compressed bytes were bad. */
function isZlibError(error: unknown): boolean {
  const code = (error as { code?: unknown } | null)?.code;
  return typeof code === "string" && code.startsWith("Z_");
}
