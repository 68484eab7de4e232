/**
 * @module The `inference.v1.InferenceService` handlers: validate a request, make one engine call,
 * and turn its events into response messages. The stream handler is an async generator over the
 * engine's iterable, so connect-node's backpressure (it pulls the next message only after the
 * previous one drained) and the call's abort signal reach the engine unchanged.
 */
import type { MessageInitShape } from "@bufbuild/protobuf";
import type { HandlerContext, ServiceImpl } from "@connectrpc/connect";
import {
  FinishReason,
  type GenerateResponseSchema,
  type GenerateStreamResponseSchema,
  type InferenceService,
  type TokenLogprobSchema,
  type UsageSchema,
} from "@parley/gen/inference/v1/inference_pb";
import type {
  Engine,
  FinishReason as EngineFinishReason,
  Generation,
  GenerationRequest,
  TokenLogprob,
  Usage,
} from "../engine/engine.js";
import { toConnectError } from "./errors.js";
import {
  validateDetokenizeRequest,
  validateGenerateRequest,
  validateTokenizeRequest,
} from "./validate-request.js";

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

  function start(request: GenerationRequest, context: HandlerContext): Generation {
    try {
      return engine.generate(request, context.signal);
    } catch (error) {
      throw toConnectError(error, context.signal);
    }
  }

  return {
    async generate(request, context): Promise<MessageInitShape<typeof GenerateResponseSchema>> {
      const generation = start(validateGenerateRequest(request), context);
      const pieces: string[] = [];
      const logprobs: MessageInitShape<typeof TokenLogprobSchema>[] = [];
      try {
        for await (const event of generation) {
          pieces.push(event.text);
          if (event.logprobs !== undefined) logprobs.push(...toLogprobs(event.logprobs));
          if (event.type === "finished") {
            return {
              model: generation.model,
              text: pieces.join(""),
              finishReason: finishReasons[event.finishReason],
              usage: toUsage(event.usage),
              logprobs,
            };
          }
        }
      } catch (error) {
        throw toConnectError(error, context.signal);
      }
      throw toConnectError(new Error("the generation ended without a finished event"));
    },

    async *generateStream(
      request,
      context,
    ): AsyncGenerator<MessageInitShape<typeof GenerateStreamResponseSchema>> {
      const generation = start(validateGenerateRequest(request), context);
      // The request is admitted: this first message makes connect-node send the response headers
      // now, so clients and proxies see the stream open before prefill is done.
      yield { model: generation.model };
      try {
        for await (const event of generation) {
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
            return;
          }
        }
      } catch (error) {
        throw toConnectError(error, context.signal);
      }
      throw toConnectError(new Error("the generation ended without a finished event"));
    },

    listModels() {
      return {
        models: engine.models().map((model) => ({
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
  return { promptTokens: usage.promptTokens, completionTokens: usage.completionTokens };
}
