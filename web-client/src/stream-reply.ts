/**
 * @module Runs one GenerateStream call and measures it: time to first token, decode speed and
 * token count, the numbers shown under each reply.
 */
import type { Client } from "@connectrpc/connect";
import {
  FinishReason,
  type GenerateStreamRequest,
  type InferenceService,
} from "@parley/gen/inference/v1/inference_pb";

/** Options of `streamReply`. */
export interface StreamReplyOptions {
  readonly client: Client<typeof InferenceService>;
  readonly request: GenerateStreamRequest;
  /** Aborting it cancels the call, and the server stops generating. */
  readonly signal: AbortSignal;
  /** Called with each piece of new text, in order. */
  readonly onText: (text: string) => void;
  /** Called after each message that carried tokens, with the numbers so far. */
  readonly onProgress?: (progress: StreamProgress) => void;
  /** The clock; `performance.now` in the page. */
  readonly now: () => number;
}

/** What a reply measured so far, while it streams. */
export interface StreamProgress {
  readonly tokens: number;
  /** Decode speed after the first token; undefined until there are two. */
  readonly tokensPerSecond: number | undefined;
}

/** How a call ended and what it measured. */
export interface StreamReplyOutcome {
  /** True when `signal` aborted the call; the text received until then is kept. */
  readonly stopped: boolean;
  readonly model: string;
  readonly ttftMs: number | undefined;
  readonly tokensPerSecond: number | undefined;
  readonly completionTokens: number;
  readonly promptTokens: number | undefined;
  /** The finish reason as the proto names it, lower-cased: "stop", "length", … */
  readonly finishReason: string | undefined;
}

/**
 * Streams a reply. Errors other than the caller's own abort are thrown as they came from the
 * client (a `ConnectError`), after `onText` has received whatever text arrived first.
 */
export async function streamReply(options: StreamReplyOptions): Promise<StreamReplyOutcome> {
  const { client, request, signal, now } = options;
  const startedAt = now();
  let model = request.model;
  let firstTokenAt: number | undefined;
  let firstBatch = 0;
  let lastTokenAt: number | undefined;
  let tokens = 0;
  let promptTokens: number | undefined;
  let finishReason: string | undefined;
  let stopped = false;
  try {
    for await (const message of client.generateStream(request, { signal })) {
      const at = now();
      if (message.model !== "") {
        model = message.model;
      }
      if (message.tokenIds.length > 0) {
        if (firstTokenAt === undefined) {
          firstTokenAt = at;
          firstBatch = message.tokenIds.length;
        }
        lastTokenAt = at;
        tokens += message.tokenIds.length;
      }
      if (message.text !== "") {
        options.onText(message.text);
      }
      if (message.tokenIds.length > 0) {
        options.onProgress?.({
          tokens,
          tokensPerSecond: decodeRate(tokens - firstBatch, firstTokenAt, lastTokenAt),
        });
      }
      if (message.finishReason !== FinishReason.UNSPECIFIED) {
        finishReason = finishReasonName(message.finishReason);
      }
      if (message.usage !== undefined) {
        promptTokens = message.usage.promptTokens;
        tokens = Math.max(tokens, message.usage.completionTokens);
      }
    }
  } catch (error) {
    if (!signal.aborted) {
      throw error;
    }
    stopped = true;
  }
  return {
    stopped,
    model,
    ttftMs: firstTokenAt === undefined ? undefined : firstTokenAt - startedAt,
    tokensPerSecond: decodeRate(tokens - firstBatch, firstTokenAt, lastTokenAt),
    completionTokens: tokens,
    promptTokens,
    finishReason,
  };
}

/** Tokens per second after the first token, so prefill time does not blur decode speed. */
function decodeRate(
  tokens: number,
  firstAt: number | undefined,
  lastAt: number | undefined,
): number | undefined {
  if (firstAt === undefined || lastAt === undefined || tokens <= 0 || lastAt <= firstAt) {
    return undefined;
  }
  return (tokens * 1000) / (lastAt - firstAt);
}

function finishReasonName(reason: FinishReason): string {
  return (FinishReason[reason] ?? String(reason)).toLowerCase();
}
