/**
 * @module Builds the GenerateStreamRequest for one reply from the conversation and settings.
 * Chat mode sends the earlier turns as `messages` so the model's chat template applies;
 * Complete mode sends the one prompt as raw text.
 */
import { create } from "@bufbuild/protobuf";
import { Code, ConnectError } from "@connectrpc/connect";
import {
  type ChatMessage,
  ChatMessageSchema,
  type GenerateStreamRequest,
  GenerateStreamRequestSchema,
} from "@parley/gen/inference/v1/inference_pb";
import type { Turn, UserTurn } from "./conversation-store.js";
import type { Settings } from "./settings-store.js";
import { withoutThinking } from "./thinking.js";

/** Options of `buildStreamRequest`. */
export interface BuildStreamRequestOptions {
  /** The conversation so far; turns after `prompt` are ignored. */
  readonly turns: readonly Turn[];
  /** The turn to answer. */
  readonly prompt: UserTurn;
  readonly settings: Settings;
}

const maxUint32 = 2 ** 32 - 1;
const maxUint64 = 2n ** 64n - 1n;

/**
 * Builds the request. Throws `ConnectError` `invalid_argument` for a setting that cannot be
 * encoded at all (a negative max_tokens, a seed that is not a whole number), so the page shows
 * it like any error from the server; ranges the server checks are left to the server.
 */
export function buildStreamRequest(options: BuildStreamRequestOptions): GenerateStreamRequest {
  const { settings, prompt } = options;
  const request = create(GenerateStreamRequestSchema, {
    model: settings.model,
    maxTokens: parseWhole("max_tokens", settings.maxTokens),
    temperature: parseReal("temperature", settings.temperature),
    topP: parseReal("top_p", settings.topP),
    topK: parseWhole("top_k", settings.topK),
    seed: parseSeed(settings.seed),
    stop: settings.stop.split("\n").filter((line) => line !== ""),
  });
  if (prompt.mode === "completion") {
    request.prompt = prompt.text;
  } else {
    request.messages = chatMessages(options.turns, prompt, settings.systemPrompt);
  }
  return request;
}

/**
 * The conversation up to `prompt` as chat messages. Only exchanges that got a reply are sent,
 * so roles keep alternating: many chat templates reject two user turns in a row.
 */
function chatMessages(
  turns: readonly Turn[],
  prompt: UserTurn,
  systemPrompt: string,
): ChatMessage[] {
  const messages: ChatMessage[] = [];
  if (systemPrompt.trim() !== "") {
    messages.push(create(ChatMessageSchema, { role: "system", content: systemPrompt }));
  }
  const end = turns.indexOf(prompt);
  for (let index = 0; index < end; index++) {
    const question = turns[index];
    const answer = turns[index + 1];
    if (
      question?.role === "user" &&
      question.mode === "chat" &&
      answer?.role === "assistant" &&
      answer.mode === "chat" &&
      answer.status !== "error" &&
      answer.status !== "streaming" &&
      answer.text !== ""
    ) {
      messages.push(create(ChatMessageSchema, { role: "user", content: question.text }));
      // A reasoning model's <think> section is not sent back, as its own template would drop it.
      messages.push(
        create(ChatMessageSchema, { role: "assistant", content: withoutThinking(answer.text) }),
      );
      index++;
    }
  }
  messages.push(create(ChatMessageSchema, { role: "user", content: prompt.text }));
  return messages;
}

function parseWhole(name: string, raw: string): number | undefined {
  const text = raw.trim();
  if (text === "") {
    return undefined;
  }
  const value = Number(text);
  if (!Number.isInteger(value) || value < 0 || value > maxUint32) {
    throw invalid(`${name} must be a whole number from 0 to ${maxUint32}, not "${text}"`);
  }
  return value;
}

function parseReal(name: string, raw: string): number | undefined {
  const text = raw.trim();
  if (text === "") {
    return undefined;
  }
  const value = Number(text);
  if (!Number.isFinite(value)) {
    throw invalid(`${name} must be a number, not "${text}"`);
  }
  return value;
}

function parseSeed(raw: string): bigint | undefined {
  const text = raw.trim();
  if (text === "") {
    return undefined;
  }
  if (!/^\d+$/.test(text) || BigInt(text) > maxUint64) {
    throw invalid(`seed must be a whole number from 0 to ${maxUint64}, not "${text}"`);
  }
  return BigInt(text);
}

function invalid(message: string): ConnectError {
  return new ConnectError(`${message} (checked in the browser)`, Code.InvalidArgument);
}
