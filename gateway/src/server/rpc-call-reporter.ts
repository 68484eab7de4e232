/**
 * @module Turns each finished RPC into its metrics and its one log line. The log line carries
 * what an operator needs to find a call (protocol, method, code, duration, sizes) and, for
 * failures, the server-side cause, which never reaches the client.
 */
import { Code, ConnectError } from "@connectrpc/connect";
import { codeToString } from "@connectrpc/connect/protocol-connect";
import type { Logger } from "pino";
import type { RpcMetrics } from "../observability/rpc-metrics.js";
import type { RpcCall } from "./rpc-call.js";

/** Options of {@link createRpcCallReporter}. */
export interface RpcCallReporterOptions {
  readonly metrics: RpcMetrics;
  readonly logger: Logger;
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

/** Creates the reporter. */
export function createRpcCallReporter(options: RpcCallReporterOptions): RpcCallReporter {
  const { metrics, logger } = options;
  return {
    started(call) {
      metrics.streamsInFlight.inc({ protocol: call.protocol, method: call.method });
    },
    finished(call, { error, durationMs, httpVersion }) {
      const code = error === undefined ? "ok" : codeToString(error.code);
      const labels = { protocol: call.protocol, method: call.method };
      metrics.streamsInFlight.dec(labels);
      metrics.requests.inc({ ...labels, code });
      metrics.duration.observe({ ...labels, code }, durationMs / 1000);
      metrics.messagesReceived.inc(labels, call.messagesReceived);
      metrics.messagesSent.inc(labels, call.messagesSent);
      metrics.bytesReceived.inc(labels, call.bytesReceived);
      metrics.bytesSent.inc(labels, call.bytesSent);
      const line = {
        ...labels,
        code,
        durationMs: Math.round(durationMs * 100) / 100,
        httpVersion,
        messagesReceived: call.messagesReceived,
        messagesSent: call.messagesSent,
        bytesReceived: call.bytesReceived,
        bytesSent: call.bytesSent,
      };
      if (error === undefined) {
        logger.info(line, "rpc");
        return;
      }
      // The cause is what the client must not see: the engine's error, an unexpected throw.
      // A plain ConnectError (a validation message) is all in `error` already.
      const thrown = call.handlerError;
      const cause = thrown instanceof ConnectError ? thrown.cause : thrown;
      logger[levelOf(error.code)](
        { ...line, error: error.rawMessage, ...(cause === undefined ? {} : { err: cause }) },
        "rpc",
      );
    },
  };
}

/** Server faults are errors; load and deadline problems are warnings; client mistakes are info. */
function levelOf(code: Code): "error" | "warn" | "info" {
  switch (code) {
    case Code.Internal:
    case Code.Unknown:
    case Code.DataLoss:
      return "error";
    case Code.ResourceExhausted:
    case Code.Unavailable:
    case Code.DeadlineExceeded:
      return "warn";
    default:
      return "info";
  }
}
