/**
 * @module The one implementation of generation every transport calls: validate the request, make
 * one engine call, and map every failure through the errors table. `InferenceService` (gRPC,
 * gRPC-Web, Connect) and the OpenAI-compatible routes are adapters onto it, so a request means
 * the same on every protocol and fails with the same code.
 */
import type {
  Engine,
  FinishReason,
  Generation,
  GenerationEvent,
  ModelDescription,
  TokenLogprob,
  Usage,
} from "../engine/engine.js";
import type { CallReport } from "../observability/call-report.js";
import { toConnectError } from "./errors.js";
import { type GenerationFields, validateGenerateRequest } from "./validate-request.js";

export type { FinishReason, GenerationEvent, ModelDescription, TokenLogprob, Usage };

/** An admitted generation, whose events throw only `ConnectError`s. */
export interface StartedGeneration {
  /** The id of the model that serves it. */
  readonly model: string;
  /** The engine's events, ending with `finished`; failures are mapped by the errors table. */
  readonly events: AsyncIterable<GenerationEvent>;
}

/** A whole generation, as a unary call returns it. */
export interface CompletedGeneration {
  readonly model: string;
  readonly text: string;
  readonly tokenIds: readonly number[];
  /** One per token id when the request asked for logprobs, else empty. */
  readonly logprobs: readonly TokenLogprob[];
  readonly finishReason: FinishReason;
  readonly usage: Usage;
}

/** What transports may ask of generation. */
export interface GenerationService {
  /**
   * Validates `request` and admits it; throws `ConnectError` at once for a bad request, an
   * unknown model or a full queue. Aborting `signal` stops the generation within a decode step.
   */
  start(request: GenerationFields, signal: AbortSignal, report?: CallReport): StartedGeneration;
  /** Runs a generation to its end and joins its text. */
  complete(
    request: GenerationFields,
    signal: AbortSignal,
    report?: CallReport,
  ): Promise<CompletedGeneration>;
  /** The loaded models, the default first. */
  models(): readonly ModelDescription[];
}

/** Creates the service over `engine`. */
export function createGenerationService(engine: Engine): GenerationService {
  function start(
    request: GenerationFields,
    signal: AbortSignal,
    report?: CallReport,
  ): StartedGeneration {
    const validated = validateGenerateRequest(request);
    try {
      const generation = engine.generate(validated, signal);
      return { model: generation.model, events: mapErrors(generation, signal, report) };
    } catch (error) {
      throw toConnectError(error, signal);
    }
  }

  return {
    start,
    async complete(request, signal, report) {
      const { model, events } = start(request, signal, report);
      const pieces: string[] = [];
      const tokenIds: number[] = [];
      const logprobs: TokenLogprob[] = [];
      for await (const event of events) {
        pieces.push(event.text);
        tokenIds.push(...event.tokenIds);
        if (event.logprobs !== undefined) logprobs.push(...event.logprobs);
        if (event.type === "finished") {
          const { finishReason, usage } = event;
          return { model, text: pieces.join(""), tokenIds, logprobs, finishReason, usage };
        }
      }
      throw toConnectError(new Error("the generation ended without a finished event"));
    },
    models: () => engine.models(),
  };
}

/**
 * The engine's events until `finished`, with every failure turned into a `ConnectError`. However
 * it ends, the generation (model, token counts, stage times) goes to the call's `report`, for
 * its log line and trace.
 */
async function* mapErrors(
  generation: Generation,
  signal: AbortSignal,
  report: CallReport | undefined,
): AsyncGenerator<GenerationEvent> {
  let finished: Extract<GenerationEvent, { type: "finished" }> | undefined;
  try {
    for await (const event of generation) {
      if (event.type === "finished") finished = event;
      yield event;
      if (event.type === "finished") {
        return;
      }
    }
  } catch (error) {
    throw toConnectError(error, signal);
  } finally {
    if (report !== undefined) {
      report.generation = {
        model: generation.model,
        promptTokens: finished?.usage.promptTokens,
        completionTokens: finished?.usage.completionTokens,
        finishReason: finished?.finishReason,
        timings: generation.timings,
      };
    }
  }
  throw toConnectError(new Error("the generation ended without a finished event"));
}
