/**
 * @module The response bodies of `/v1/chat/completions`, `/v1/completions` and `/v1/models`,
 * shaped as the OpenAI API reference defines them, from the service layer's generation results.
 */
import { randomUUID } from "node:crypto";
import type {
  CompletedGeneration,
  FinishReason,
  ModelDescription,
  TokenLogprob,
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
    ...(usage.cachedPromptTokens === undefined
      ? {}
      : { prompt_tokens_details: { cached_tokens: usage.cachedPromptTokens } }),
  };
}

/** Chat's `logprobs`: one entry per token, with its UTF-8 bytes and alternatives. */
export function chatLogprobs(entries: readonly TokenLogprob[]) {
  const entry = (e: { readonly token: string; readonly logprob: number }) => ({
    token: e.token,
    logprob: e.logprob,
    bytes: [...Buffer.from(e.token, "utf8")],
  });
  return {
    content: entries.map((e) => ({ ...entry(e), top_logprobs: e.top.map(entry) })),
    refusal: null,
  };
}

/**
 * The legacy completions' `logprobs`: parallel arrays, alternatives as `{token: logprob}` maps,
 * and each token's character offset in the text, counted on from `offset` (a stream's earlier
 * chunks).
 */
export function completionLogprobs(entries: readonly TokenLogprob[], offset: number) {
  const text_offset: number[] = [];
  let at = offset;
  for (const e of entries) {
    text_offset.push(at);
    at += e.token.length;
  }
  return {
    tokens: entries.map((e) => e.token),
    token_logprobs: entries.map((e) => e.logprob),
    top_logprobs: entries.map((e) => Object.fromEntries(e.top.map((t) => [t.token, t.logprob]))),
    text_offset,
  };
}

/** The non-streaming response of either route; `logprobs` null when not asked for. */
export function completionResponse(
  route: OpenAiRoute,
  completed: CompletedGeneration,
  wantsLogprobs: boolean,
) {
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
          logprobs: wantsLogprobs ? chatLogprobs(completed.logprobs) : null,
          finish_reason,
        },
      ],
      usage,
    };
  }
  return {
    ...head,
    object: "text_completion",
    choices: [
      {
        index: 0,
        text: completed.text,
        logprobs: wantsLogprobs ? completionLogprobs(completed.logprobs, 0) : null,
        finish_reason,
      },
    ],
    usage,
  };
}

/** What one chunk carries besides the call's head. */
export interface ChunkDelta {
  readonly role?: "assistant";
  readonly text?: string;
  /** Set when the request asked for logprobs: this chunk's tokens. */
  readonly logprobs?: readonly TokenLogprob[] | undefined;
}

/**
 * Makes the chunks of one stream: new text (and its tokens' logprobs), and the finish reason on
 * the last one. Keeps the text offset the completions' logprobs count in.
 */
export function createChunker(route: OpenAiRoute, head: ResponseHead, includeUsage: boolean) {
  let offset = 0;
  // With include_usage, every chunk carries usage: null and one last chunk carries it.
  const usage = includeUsage ? { usage: null } : {};
  return (delta: ChunkDelta, finishReason?: FinishReason) => {
    const finish_reason = finishReason === undefined ? null : openAiFinishReasons[finishReason];
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
            logprobs: delta.logprobs === undefined ? null : chatLogprobs(delta.logprobs),
            finish_reason,
          },
        ],
        ...usage,
      };
    }
    const logprobs =
      delta.logprobs === undefined ? null : completionLogprobs(delta.logprobs, offset);
    offset += delta.text?.length ?? 0;
    return {
      ...head,
      object: "text_completion",
      choices: [{ index: 0, text: delta.text ?? "", logprobs, finish_reason }],
      ...usage,
    };
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
