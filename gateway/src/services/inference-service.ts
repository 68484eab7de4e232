/**
 * @module The `inference.v1.InferenceService` handlers: an adapter from Protobuf messages onto
 * `generation-service.ts` (validation, the one engine call, the errors table), which the OpenAI
 * routes share. The stream handler is an async generator over the engine's iterable, so
 * connect-node's backpressure (it pulls the next message only after the previous one drained)
 * and the call's abort signal reach the engine unchanged.
 */
import type { MessageInitShape } from "@bufbuild/protobuf";
import { Code, ConnectError, type ServiceImpl } from "@connectrpc/connect";
import {
  FinishReason,
  type GenerateResponseSchema,
  type GenerateStreamResponseSchema,
  type InferenceService,
  type TokenLogprobSchema,
  type UsageSchema,
} from "@parley/gen/inference/v1/inference_pb";
import type { Engine } from "../engine/engine.js";
import { callReportKey } from "../observability/call-report.js";
import { toConnectError } from "./errors.js";
import {
  createGenerationService,
  type FinishReason as EngineFinishReason,
  type TokenLogprob,
  type Usage,
} from "./generation-service.js";
import { validateDetokenizeRequest, validateTokenizeRequest } from "./validate-request.js";

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

/** Creates the service implementation to register on a Connect router. */
export function createInferenceService(
  options: InferenceServiceOptions,
): ServiceImpl<typeof InferenceService> {
  const { engine } = options;
  const generation = createGenerationService(engine);

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
        logprobs: toLogprobs(completed.logprobs),
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
        const logprobs = event.logprobs === undefined ? [] : toLogprobs(event.logprobs);
        if (event.type === "text") {
          yield { text: event.text, tokenIds: [...event.tokenIds], logprobs };
        } else {
          yield {
            text: event.text,
            tokenIds: [...event.tokenIds],
            logprobs,
            finishReason: finishReasons[event.finishReason],
            usage: toUsage(event.usage),
          };
        }
      }
    },

    listModels() {
      if (engine.models().length === 0) {
        // Before the models have loaded (the server listens first): say so rather than "none".
        throw new ConnectError("the gateway is still loading its models", Code.Unavailable);
      }
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

    async tokenize(request, context) {
      try {
        const result = await engine.tokenize(validateTokenizeRequest(request), context.signal);
        return { model: result.model, tokenIds: [...result.tokenIds], tokens: [...result.tokens] };
      } catch (error) {
        throw toConnectError(error, context.signal);
      }
    },

    async detokenize(request, context) {
      try {
        const result = await engine.detokenize(validateDetokenizeRequest(request), context.signal);
        return { model: result.model, text: result.text };
      } catch (error) {
        throw toConnectError(error, context.signal);
      }
    },
  };
}

function toLogprobs(
  logprobs: readonly TokenLogprob[],
): MessageInitShape<typeof TokenLogprobSchema>[] {
  return logprobs.map(({ tokenId, token, logprob, top }) => ({
    tokenId,
    token,
    logprob,
    topLogprobs: top.map((alt) => ({
      tokenId: alt.tokenId,
      token: alt.token,
      logprob: alt.logprob,
    })),
  }));
}

function toUsage(usage: Usage): MessageInitShape<typeof UsageSchema> {
  return {
    promptTokens: usage.promptTokens,
    completionTokens: usage.completionTokens,
    cachedPromptTokens: usage.cachedPromptTokens ?? 0,
  };
}
