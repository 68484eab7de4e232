/**
 * @module The response bodies of `/v1/chat/completions`, `/v1/completions` and `/v1/models`,
 * shaped as the OpenAI API reference defines them, from the service layer's generation results.
 */
import { randomUUID } from "node:crypto";
import type {
  CompletedGeneration,
  FinishReason,
  ModelDescription,
  Usage,
} from "../services/generation-service.js";
import type { OpenAiRoute } from "./openai-request.js";

/**
 * Identifies the serving stack (OpenAI: "the backend configuration that the model runs with"),
 * so clients comparing seeded runs can tell servers apart.
 */
export const systemFingerprint = "fp_parley_0.1";

/** OpenAI has two reasons for a normal end: the stop strings and EOS are both "stop". */
export const openAiFinishReasons: Readonly<Record<FinishReason, "stop" | "length">> = {
  stop: "stop",
  stop_sequence: "stop",
  length: "length",
  context_length: "length",
};

/** What every chunk and response of one call shares. */
export interface ResponseHead {
  readonly id: string;
  readonly created: number;
  readonly model: string;
  readonly system_fingerprint: string;
}

/** A fresh id (`chatcmpl-…` or `cmpl-…`) and creation time for one call. */
export function responseHead(route: OpenAiRoute, model: string): ResponseHead {
  const prefix = route === "chat" ? "chatcmpl-" : "cmpl-";
  return {
    id: `${prefix}${randomUUID().replaceAll("-", "")}`,
    created: Math.floor(Date.now() / 1000),
    model,
    system_fingerprint: systemFingerprint,
  };
}

/** OpenAI's usage object. */
export function openAiUsage(usage: Usage) {
  return {
    prompt_tokens: usage.promptTokens,
    completion_tokens: usage.completionTokens,
    total_tokens: usage.promptTokens + usage.completionTokens,
  };
}

/** The non-streaming response of either route. */
export function completionResponse(route: OpenAiRoute, completed: CompletedGeneration) {
  const head = responseHead(route, completed.model);
  const finish_reason = openAiFinishReasons[completed.finishReason];
  const usage = openAiUsage(completed.usage);
  if (route === "chat") {
    return {
      ...head,
      object: "chat.completion",
      choices: [
        {
          index: 0,
          message: { role: "assistant", content: completed.text, refusal: null },
          logprobs: null,
          finish_reason,
        },
      ],
      usage,
    };
  }
  return {
    ...head,
    object: "text_completion",
    choices: [{ index: 0, text: completed.text, logprobs: null, finish_reason }],
    usage,
  };
}

/** One chunk of a stream: new text, and the finish reason on the last one. */
export function streamChunk(
  route: OpenAiRoute,
  head: ResponseHead,
  delta: { readonly role?: "assistant"; readonly text?: string },
  finishReason: FinishReason | undefined,
  includeUsage: boolean,
) {
  const finish_reason = finishReason === undefined ? null : openAiFinishReasons[finishReason];
  // With include_usage, every chunk carries usage: null and one last chunk carries it.
  const usage = includeUsage ? { usage: null } : {};
  if (route === "chat") {
    return {
      ...head,
      object: "chat.completion.chunk",
      choices: [
        {
          index: 0,
          delta: {
            ...(delta.role === undefined ? {} : { role: delta.role }),
            ...(delta.text === undefined ? {} : { content: delta.text }),
          },
          logprobs: null,
          finish_reason,
        },
      ],
      ...usage,
    };
  }
  return {
    ...head,
    object: "text_completion",
    choices: [{ index: 0, text: delta.text ?? "", logprobs: null, finish_reason }],
    ...usage,
  };
}

/** The last chunk under `stream_options.include_usage`: no choices, the call's usage. */
export function usageChunk(route: OpenAiRoute, head: ResponseHead, usage: Usage) {
  return {
    ...head,
    object: route === "chat" ? "chat.completion.chunk" : "text_completion",
    choices: [],
    usage: openAiUsage(usage),
  };
}

/** One entry of `/v1/models`. */
export function modelObject(model: ModelDescription, created: number) {
  return {
    id: model.id,
    object: "model",
    created,
    owned_by: "parley",
    // vLLM's name for it, which tools built for vLLM read.
    max_model_len: model.contextLength,
  };
}
