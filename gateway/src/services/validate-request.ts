/**
 * @module Checks the shape of a generation request and turns it into the engine's
 * `GenerationRequest`. Only what can be judged without the model is checked here; the engine
 * rejects what needs it (unknown model, prompt longer than the context, chat template errors).
 */
import { Code, ConnectError } from "@connectrpc/connect";
import type {
  ChatMessage,
  DetokenizeRequest,
  GenerateRequest,
  GenerateStreamRequest,
  TokenizeRequest,
} from "@parley/gen/inference/v1/inference_pb";
import type {
  DetokenizationRequest,
  GenerationRequest,
  PromptInput,
  TokenizationRequest,
} from "../engine/engine.js";

/**
 * The limits a request must respect. They bound the work one request can ask of the main thread
 * and the tokenizer before the engine sees it; the body size limit (`--max-request-bytes`) bounds
 * the bytes before parsing.
 */
export const requestLimits = {
  /** UTF-16 code units in the prompt, or in all message contents together. */
  maxPromptChars: 1_000_000,
  /** Turns in a conversation. */
  maxMessages: 1_000,
  /** Characters of a role name. */
  maxRoleChars: 64,
  /** top_k beyond this is no longer a filter worth its sort: use 0 (off) instead. */
  maxTopK: 1_000,
  /** Stop strings per request: each is matched against every decoded step. */
  maxStopStrings: 16,
  /** Characters of one stop string. */
  maxStopChars: 256,
  /** The temperature range of the proto contract. */
  maxTemperature: 2,
  /** The presence and frequency penalty range: OpenAI's. */
  maxAbsPenalty: 2,
  /** stop_token_ids per request. */
  maxStopTokenIds: 256,
  /** Alternatives per token's logprob: OpenAI's limit, and vLLM's default one. */
  maxTopLogprobs: 20,
  /** Ids one Detokenize call decodes. */
  maxDetokenizeIds: 1_000_000,
} as const;

/** The fields GenerateRequest and GenerateStreamRequest share. */
export type GenerationFields = Omit<GenerateRequest | GenerateStreamRequest, "$typeName">;

/** Validates `request` and maps it to the engine; throws `ConnectError` InvalidArgument. */
export function validateGenerateRequest(request: GenerationFields): GenerationRequest {
  const input = validatePromptInput("prompt", request.prompt, request.messages);
  if (request.maxTokens !== undefined && request.maxTokens < 1) {
    throw invalid("max_tokens must be at least 1 when set");
  }
  const { temperature, topP, topK } = request;
  if (
    temperature !== undefined &&
    !(
      Number.isFinite(temperature) &&
      temperature >= 0 &&
      temperature <= requestLimits.maxTemperature
    )
  ) {
    throw invalid(
      `temperature must be in [0, ${requestLimits.maxTemperature}], got ${temperature}`,
    );
  }
  if (topP !== undefined && !(Number.isFinite(topP) && topP > 0 && topP <= 1)) {
    throw invalid(`top_p must be in (0, 1], got ${topP}`);
  }
  if (topK !== undefined && topK > requestLimits.maxTopK) {
    throw invalid(`top_k must be at most ${requestLimits.maxTopK} (0 turns it off), got ${topK}`);
  }
  const { presencePenalty, frequencyPenalty, repetitionPenalty, minP } = request;
  checkPenalty("presence_penalty", presencePenalty);
  checkPenalty("frequency_penalty", frequencyPenalty);
  if (
    repetitionPenalty !== undefined &&
    !(Number.isFinite(repetitionPenalty) && repetitionPenalty > 0)
  ) {
    throw invalid(
      `repetition_penalty must be above 0 and finite (1 is off), got ${repetitionPenalty}`,
    );
  }
  if (minP !== undefined && !(Number.isFinite(minP) && minP >= 0 && minP <= 1)) {
    throw invalid(`min_p must be in [0, 1], got ${minP}`);
  }
  if (request.stop.length > requestLimits.maxStopStrings) {
    throw invalid(`stop has more than ${requestLimits.maxStopStrings} strings`);
  }
  request.stop.forEach((stop, index) => {
    if (stop.length === 0) {
      throw invalid(`stop[${index}] is empty`);
    }
    if (stop.length > requestLimits.maxStopChars) {
      throw invalid(`stop[${index}] is longer than ${requestLimits.maxStopChars} characters`);
    }
  });
  if (request.stopTokenIds.length > requestLimits.maxStopTokenIds) {
    throw invalid(`stop_token_ids has more than ${requestLimits.maxStopTokenIds} ids`);
  }
  const { topLogprobs } = request;
  if (topLogprobs !== undefined && !request.logprobs) {
    throw invalid("top_logprobs needs logprobs set to true");
  }
  if (topLogprobs !== undefined && topLogprobs > requestLimits.maxTopLogprobs) {
    throw invalid(
      `top_logprobs must be in [0, ${requestLimits.maxTopLogprobs}], got ${topLogprobs}`,
    );
  }
  return {
    model: request.model,
    input,
    maxTokens: request.maxTokens,
    sampling: {
      temperature,
      topP,
      topK,
      seed: request.seed,
      presencePenalty,
      frequencyPenalty,
      repetitionPenalty,
      minP,
    },
    stop: [...request.stop],
    stopTokenIds: [...request.stopTokenIds],
    topLogprobs: request.logprobs ? (topLogprobs ?? 0) : undefined,
  };
}

/** Validates a Tokenize request and maps it to the engine. */
export function validateTokenizeRequest(request: TokenizeRequest): TokenizationRequest {
  return {
    model: request.model,
    input: validatePromptInput("text", request.text, request.messages),
    addSpecialTokens: request.addSpecialTokens,
  };
}

/** Validates a Detokenize request and maps it to the engine. */
export function validateDetokenizeRequest(request: DetokenizeRequest): DetokenizationRequest {
  if (request.tokenIds.length > requestLimits.maxDetokenizeIds) {
    throw invalid(`token_ids has more than ${requestLimits.maxDetokenizeIds} ids`);
  }
  return {
    model: request.model,
    tokenIds: [...request.tokenIds],
    skipSpecialTokens: request.skipSpecialTokens,
  };
}

/** Presence and frequency penalties share OpenAI's range. */
function checkPenalty(field: string, value: number | undefined): void {
  const max = requestLimits.maxAbsPenalty;
  if (value !== undefined && !(Number.isFinite(value) && Math.abs(value) <= max)) {
    throw invalid(`${field} must be in [-${max}, ${max}], got ${value}`);
  }
}

/** Exactly one of a text (the field `textField`) and messages, within the limits. */
function validatePromptInput(
  textField: string,
  text: string,
  messages: readonly ChatMessage[],
): PromptInput {
  const hasText = text.length > 0;
  const hasMessages = messages.length > 0;
  if (hasText === hasMessages) {
    throw invalid(
      hasText
        ? `set either ${textField} or messages, not both`
        : `set ${textField} or messages: both are empty`,
    );
  }
  if (hasText && text.length > requestLimits.maxPromptChars) {
    throw invalid(`${textField} is longer than ${requestLimits.maxPromptChars} characters`);
  }
  if (messages.length > requestLimits.maxMessages) {
    throw invalid(`messages has more than ${requestLimits.maxMessages} turns`);
  }
  let contentChars = 0;
  messages.forEach((message, index) => {
    if (message.role.trim().length === 0) {
      throw invalid(`messages[${index}].role is empty`);
    }
    if (message.role.length > requestLimits.maxRoleChars) {
      throw invalid(
        `messages[${index}].role is longer than ${requestLimits.maxRoleChars} characters`,
      );
    }
    contentChars += message.content.length;
  });
  if (contentChars > requestLimits.maxPromptChars) {
    throw invalid(`messages hold more than ${requestLimits.maxPromptChars} characters of content`);
  }
  return hasText
    ? { kind: "text", text }
    : { kind: "messages", messages: messages.map(({ role, content }) => ({ role, content })) };
}

function invalid(message: string): ConnectError {
  return new ConnectError(message, Code.InvalidArgument);
}
