/**
 * @module What a service handler tells the call's report about the generation it ran: the model,
 * its token counts and when it reached each stage. The RPC layer hands each call's record to the
 * handler under {@link callReportKey}; the handler fills in `generation`, and the per-call log
 * line and the trace (when tracing is on) read it once the call has ended. Plain data, so neither
 * side knows the other: services do not import rpc/, and the engine's timings need no tracing
 * library.
 */
import { createContextKey } from "@connectrpc/connect";

/** When a generation reached each stage, in milliseconds since the Unix epoch. */
export interface StageTimes {
  readonly admittedAt: number;
  readonly scheduledAt: number | undefined;
  readonly prefillStartAt: number | undefined;
  readonly prefillEndAt: number | undefined;
  readonly endedAt: number | undefined;
}

/** The generation one call ran. */
export interface CallGeneration {
  readonly model: string;
  /** Undefined when the generation failed or was stopped before it finished. */
  readonly promptTokens: number | undefined;
  readonly completionTokens: number | undefined;
  readonly finishReason: string | undefined;
  readonly timings: StageTimes;
}

/** The part of a call's record a handler writes. */
export interface CallReport {
  /** The call's request id (rpc/request-id.ts). */
  readonly requestId: string;
  generation: CallGeneration | undefined;
}

/** The context value under which each call's report reaches its handler. */
export const callReportKey = createContextKey<CallReport | undefined>(undefined, {
  description: "parley call report",
});
