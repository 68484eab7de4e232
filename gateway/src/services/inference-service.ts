/**
 * @module The `inference.v1.InferenceService` handlers: an adapter from Protobuf messages onto
 * `generation-service.ts` (validation, the one engine call, the errors table), which the OpenAI
 * routes share. The stream handler is an async generator over the
 * engine's iterable, so connect-node's backpressure (it pulls the next message only after the
 * previous one drained) and the call's abort signal reach the engine unchanged.
 */
import type { MessageInitShape } from "@bufbuild/protobuf";
import type { ServiceImpl } from "@connectrpc/connect";
import {
  FinishReason,
  type GenerateResponseSchema,
  type GenerateStreamResponseSchema,
  type InferenceService,
  type UsageSchema,
} from "@parley/gen/inference/v1/inference_pb";
import type { Engine } from "../engine/engine.js";
import { callReportKey } from "../observability/call-report.js";
import {
  createGenerationService,
  type FinishReason as EngineFinishReason,
  type Usage,
} from "./generation-service.js";

/** Options of {@link createInferenceService}. */
export interface InferenceServiceOptions {
  readonly engine: Engine;
}

const finishReasons: Readonly<Record<EngineFinishReason, FinishReason>> = {
  stop: FinishReason.STOP,
  stop_sequence: FinishReason.STOP_SEQUENCE,
  length: FinishReason.LENGTH,
  context_length: FinishReason.CONTEXT_LENGTH,
};

/**
 * Creates the service implementation to register on a Connect router. Tokenize and Detokenize
 * are not implemented yet, so the router answers them with unimplemented.
 */
export function createInferenceService(
  options: InferenceServiceOptions,
): Omit<ServiceImpl<typeof InferenceService>, "tokenize" | "detokenize"> {
  const generation = createGenerationService(options.engine);

  return {
    async generate(request, context): Promise<MessageInitShape<typeof GenerateResponseSchema>> {
      const completed = await generation.complete(
        request,
        context.signal,
        context.values.get(callReportKey),
      );
      return {
        model: completed.model,
        text: completed.text,
        finishReason: finishReasons[completed.finishReason],
        usage: toUsage(completed.usage),
      };
    },

    async *generateStream(
      request,
      context,
    ): AsyncGenerator<MessageInitShape<typeof GenerateStreamResponseSchema>> {
      const { model, events } = generation.start(
        request,
        context.signal,
        context.values.get(callReportKey),
      );
      // The request is admitted: this first message makes connect-node send the response headers
      // now, so clients and proxies see the stream open before prefill is done.
      yield { model };
      for await (const event of events) {
        if (event.type === "text") {
          yield { text: event.text, tokenIds: [...event.tokenIds] };
        } else {
          yield {
            text: event.text,
            tokenIds: [...event.tokenIds],
            finishReason: finishReasons[event.finishReason],
            usage: toUsage(event.usage),
          };
        }
      }
    },

    listModels() {
      return {
        models: generation.models().map((model) => ({
          id: model.id,
          contextLength: model.contextLength,
          hasChatTemplate: model.hasChatTemplate,
          isDefault: model.isDefault,
          description: model.description,
          vocabSize: model.vocabSize,
          dtype: model.dtype,
        })),
      };
    },
  };
}

function toUsage(usage: Usage): MessageInitShape<typeof UsageSchema> {
  return { promptTokens: usage.promptTokens, completionTokens: usage.completionTokens };
}
