/**
 * @module The interface between a finished call and tracing. It imports no OpenTelemetry code:
 * with `--otlp-endpoint` unset the gateway has no tracer and never loads the SDK
 * (`otlp-call-tracer.ts` is imported only when the flag is set), so calls pay nothing for it.
 */
import type { CallGeneration } from "./call-report.js";

/** One finished call, as the tracer turns it into spans. */
export interface TracedCall {
  /** The procedure, e.g. "inference.v1.InferenceService/GenerateStream". */
  readonly method: string;
  /** "grpc", "grpc_web", "connect" or "openai" (the `/v1` routes). */
  readonly protocol: string;
  readonly requestId: string;
  /** The client's W3C trace context headers, if it sent them. */
  readonly traceparent: string | undefined;
  readonly tracestate: string | undefined;
  /** Milliseconds since the Unix epoch. */
  readonly startedAt: number;
  readonly endedAt: number;
  /** The status code as Connect names it: "ok", "deadline_exceeded"… */
  readonly code: string;
  /** The status message the client got, for failed calls. */
  readonly errorMessage: string | undefined;
  readonly generation: CallGeneration | undefined;
}

/** Records finished calls as traces. */
export interface CallTracer {
  /** Records the call's spans (after the fact, with their real times); returns the trace id. */
  record(call: TracedCall): string;
  /** Exports what is buffered and stops. */
  shutdown(): Promise<void>;
}
