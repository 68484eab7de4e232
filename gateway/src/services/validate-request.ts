/**
 * @module Checks the shape of a generation request and turns it into the engine's
 * `GenerationRequest`. Only what can be judged without the model is checked here; the engine
 * rejects what needs it (unknown model, prompt longer than the context, chat template errors).
 */
import { Code, ConnectError } from "@connectrpc/connect";
import type { GenerateRequest, GenerateStreamRequest } from "@parley/gen/inference/v1/inference_pb";
import type { GenerationRequest } from "../engine/engine.js";

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
} as const;

/** The fields GenerateRequest and GenerateStreamRequest share. */
export type GenerationFields = Omit<GenerateRequest | GenerateStreamRequest, "$typeName">;

/** Validates `request` and maps it to the engine; throws `ConnectError` InvalidArgument. */
export function validateGenerateRequest(request: GenerationFields): GenerationRequest {
  const hasPrompt = request.prompt.length > 0;
  const hasMessages = request.messages.length > 0;
  if (hasPrompt === hasMessages) {
    throw invalid(
      hasPrompt
        ? "set either prompt or messages, not both"
        : "set prompt or messages: both are empty",
    );
  }
  if (hasPrompt && request.prompt.length > requestLimits.maxPromptChars) {
    throw invalid(`prompt is longer than ${requestLimits.maxPromptChars} characters`);
  }
  if (request.messages.length > requestLimits.maxMessages) {
    throw invalid(`messages has more than ${requestLimits.maxMessages} turns`);
  }
  let contentChars = 0;
  request.messages.forEach((message, index) => {
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
  return {
    model: request.model,
    input: hasPrompt
      ? { kind: "text", text: request.prompt }
      : {
          kind: "messages",
          messages: request.messages.map(({ role, content }) => ({ role, content })),
        },
    maxTokens: request.maxTokens,
    sampling: { temperature, topP, topK, seed: request.seed },
    stop: [...request.stop],
  };
}

function invalid(message: string): ConnectError {
  return new ConnectError(message, Code.InvalidArgument);
}
