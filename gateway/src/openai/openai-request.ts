/**
 * @module Reads an OpenAI `/v1/chat/completions` or `/v1/completions` body into the
 * `GenerateRequest` every other protocol sends, so the same validator and engine call serve it.
 * Only the OpenAI shape is checked here (types, and what has no proto field such as `n`);
 * ranges are `validate-request.ts`'s business. Unknown fields are ignored, as OpenAI does;
 * `null` means unset, as in OpenAI's schema.
 *
 * Hand-written rather than a schema library: it is a few dozen fields, and each failure must name
 * its field as OpenAI's `param` for SDKs to show.
 */
import { create } from "@bufbuild/protobuf";
import { type GenerateRequest, GenerateRequestSchema } from "@parley/gen/inference/v1/inference_pb";
import { OpenAiError } from "./openai-error.js";

/** Which of the two generation routes a body was sent to. */
export type OpenAiRoute = "chat" | "completion";

/** A parsed body: the proto request, and what only the OpenAI response needs. */
export interface OpenAiRequest {
  readonly route: OpenAiRoute;
  readonly generate: GenerateRequest;
  readonly stream: boolean;
  /** `stream_options.include_usage`: a last chunk with usage and no choices. */
  readonly includeUsage: boolean;
  /** The model name as the client sent it ("" when absent). */
  readonly model: string;
}

type Json = Record<string, unknown>;

/** Parses `body` (already JSON-decoded); throws {@link OpenAiError} for a 400. */
export function parseOpenAiRequest(route: OpenAiRoute, body: unknown): OpenAiRequest {
  if (typeof body !== "object" || body === null || Array.isArray(body)) {
    throw new OpenAiError(400, "the request body must be a JSON object", null);
  }
  const json = body as Json;
  const model = optional(json, "model", isString, "a string") ?? "";
  const n = optional(json, "n", isInteger, "an integer");
  if (n !== undefined && n !== 1) {
    throw invalid("n", "only n=1 is supported: send one request per choice");
  }
  const stream = optional(json, "stream", isBoolean, "a boolean") ?? false;
  const streamOptions = optional(json, "stream_options", isObject, "an object");
  if (streamOptions !== undefined && !stream) {
    throw invalid("stream_options", "stream_options is only allowed when stream is true");
  }
  const includeUsage =
    streamOptions === undefined
      ? false
      : (optional(streamOptions, "include_usage", isBoolean, "a boolean", "stream_options.") ??
        false);
  optional(json, "user", isString, "a string");

  const maxCompletionTokens = optional(json, "max_completion_tokens", isInteger, "an integer");
  const maxTokens = maxCompletionTokens ?? optional(json, "max_tokens", isInteger, "an integer");
  const seed = optional(json, "seed", isInteger, "an integer");
  if (seed !== undefined && seed < 0) {
    throw invalid("seed", `seed must be a non-negative integer, got ${seed}`);
  }
  const topK = optional(json, "top_k", isInteger, "an integer");
  const stop = stopStrings(json);
  const stopTokenIds = optional(json, "stop_token_ids", isIntegerArray, "an array of integers");
  const { logprobs, topLogprobs } = logprobFields(route, json);

  const generate = create(GenerateRequestSchema, {
    model,
    ...(route === "chat" ? { messages: chatMessages(json) } : { prompt: completionPrompt(json) }),
    maxTokens: maxTokens === undefined ? undefined : uint32("max_tokens", maxTokens),
    temperature: optional(json, "temperature", isNumber, "a number"),
    topP: optional(json, "top_p", isNumber, "a number"),
    // vLLM's convention: -1 (like 0) turns top-k off.
    topK: topK === undefined ? undefined : topK === -1 ? 0 : uint32("top_k", topK),
    seed: seed === undefined ? undefined : BigInt(seed),
    stop,
    presencePenalty: optional(json, "presence_penalty", isNumber, "a number"),
    frequencyPenalty: optional(json, "frequency_penalty", isNumber, "a number"),
    repetitionPenalty: optional(json, "repetition_penalty", isNumber, "a number"),
    minP: optional(json, "min_p", isNumber, "a number"),
    stopTokenIds: stopTokenIds?.map((id) => uint32("stop_token_ids", id)) ?? [],
    logprobs,
    topLogprobs,
  });
  return { route, generate, stream, includeUsage, model };
}

/**
 * Chat takes `logprobs: bool` and `top_logprobs: N`; completions take `logprobs: N` (the
 * alternatives per position, up to 5 in OpenAI's legacy API), which means both at once.
 */
function logprobFields(
  route: OpenAiRoute,
  json: Json,
): { logprobs: boolean; topLogprobs: number | undefined } {
  if (route === "chat") {
    const logprobs = optional(json, "logprobs", isBoolean, "a boolean") ?? false;
    const top = optional(json, "top_logprobs", isInteger, "an integer");
    if (top !== undefined && !logprobs) {
      throw invalid("top_logprobs", "top_logprobs requires logprobs to be true");
    }
    return { logprobs, topLogprobs: top === undefined ? undefined : uint32("top_logprobs", top) };
  }
  const top = optional(json, "logprobs", isInteger, "an integer");
  if (top === undefined) {
    return { logprobs: false, topLogprobs: undefined };
  }
  if (top < 0 || top > maxCompletionLogprobs) {
    throw invalid("logprobs", `logprobs must be in [0, ${maxCompletionLogprobs}], got ${top}`);
  }
  return { logprobs: true, topLogprobs: top };
}

/** OpenAI's bound for the legacy completions' `logprobs`. */
const maxCompletionLogprobs = 5;

function chatMessages(json: Json): { role: string; content: string }[] {
  const messages = json.messages;
  if (!Array.isArray(messages)) {
    throw invalid("messages", "messages must be an array of messages");
  }
  if (messages.length === 0) {
    throw invalid("messages", "messages must hold at least one message");
  }
  return messages.map((message: unknown, index) => {
    const param = `messages[${index}]`;
    if (!isObject(message)) {
      throw invalid(param, `${param} must be an object`);
    }
    const role = message.role;
    if (typeof role !== "string") {
      throw invalid(`${param}.role`, `${param}.role must be a string`);
    }
    return { role, content: messageContent(message.content, `${param}.content`) };
  });
}

/** String content, or an array of `{"type": "text", "text": …}` parts joined without separator. */
function messageContent(content: unknown, param: string): string {
  if (typeof content === "string") {
    return content;
  }
  if (content === null || content === undefined) {
    return "";
  }
  if (!Array.isArray(content)) {
    throw invalid(param, `${param} must be a string or an array of content parts`);
  }
  return content
    .map((part: unknown, index) => {
      const partParam = `${param}[${index}]`;
      if (!isObject(part) || part.type !== "text") {
        throw invalid(partParam, `${partParam}: only content parts of type "text" are supported`);
      }
      if (typeof part.text !== "string") {
        throw invalid(`${partParam}.text`, `${partParam}.text must be a string`);
      }
      return part.text;
    })
    .join("");
}

/** A prompt string, or an array holding one (several prompts per request are not supported). */
function completionPrompt(json: Json): string {
  const prompt = json.prompt;
  if (typeof prompt === "string") {
    return prompt;
  }
  if (Array.isArray(prompt) && prompt.length === 1 && typeof prompt[0] === "string") {
    return prompt[0];
  }
  throw invalid(
    "prompt",
    Array.isArray(prompt) && prompt.every((item) => typeof item === "string")
      ? "prompt must hold exactly one string: send one request per prompt"
      : "prompt must be a string (token id prompts are not supported)",
  );
}

function stopStrings(json: Json): string[] {
  const stop = json.stop;
  if (stop === undefined || stop === null) {
    return [];
  }
  if (typeof stop === "string") {
    return [stop];
  }
  if (Array.isArray(stop) && stop.every(isString)) {
    return stop;
  }
  throw invalid("stop", "stop must be a string or an array of strings");
}

/**
 * The value of `json[name]` when it passes `check`; undefined when absent or null; a 400 naming
 * the field otherwise.
 */
function optional<T>(
  json: Json,
  name: string,
  check: (value: unknown) => value is T,
  expected: string,
  prefix = "",
): T | undefined {
  const value = json[name];
  if (value === undefined || value === null) {
    return undefined;
  }
  if (!check(value)) {
    throw invalid(`${prefix}${name}`, `${prefix}${name} must be ${expected}`);
  }
  return value;
}

/** A value for a uint32 proto field; the validator judges its range further. */
function uint32(name: string, value: number): number {
  if (value < 0 || value > 0xffff_ffff) {
    throw invalid(name, `${name} must be in [0, ${0xffff_ffff}], got ${value}`);
  }
  return value;
}

function invalid(param: string, message: string): OpenAiError {
  return new OpenAiError(400, message, param);
}

function isString(value: unknown): value is string {
  return typeof value === "string";
}

function isBoolean(value: unknown): value is boolean {
  return typeof value === "boolean";
}

function isNumber(value: unknown): value is number {
  return typeof value === "number" && Number.isFinite(value);
}

/** A whole number JavaScript holds exactly. */
function isInteger(value: unknown): value is number {
  return typeof value === "number" && Number.isSafeInteger(value);
}

function isIntegerArray(value: unknown): value is number[] {
  return Array.isArray(value) && value.every(isInteger);
}

function isObject(value: unknown): value is Json {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}
