/**
 * @module Reads an OpenAI streaming response (`stream: true`): Server-Sent Events whose data are
 * JSON chunks, ended by `data: [DONE]`. SSE framing (fields split across network chunks, CRLF,
 * comments such as llama.cpp's keep-alives) is eventsource-parser's; this module only knows the
 * OpenAI chunk shapes of chat (`choices[0].delta.content`) and plain completions
 * (`choices[0].text`), the `usage` chunk that `stream_options.include_usage` adds, and the error
 * objects vLLM and TGI send mid-stream.
 */
import { createParser, type EventSourceMessage } from "eventsource-parser";
import { EngineError } from "../engine-error.js";

/** One piece of a streamed completion. */
export type OpenAiStreamPart =
  | { readonly type: "text"; readonly text: string }
  | {
      readonly type: "finish";
      /** OpenAI's `finish_reason`: "stop", "length", "content_filter", "tool_calls"… */
      readonly reason: string;
      /** vLLM's `stop_reason`: the stop string that matched, or a stop token id. */
      readonly stopReason: unknown;
    }
  | { readonly type: "usage"; readonly promptTokens: number; readonly completionTokens: number };

interface Chunk {
  readonly choices?: readonly {
    readonly delta?: { readonly content?: string | null };
    readonly text?: string | null;
    readonly finish_reason?: string | null;
    readonly stop_reason?: unknown;
  }[];
  readonly usage?: { readonly prompt_tokens?: number; readonly completion_tokens?: number } | null;
  readonly error?: unknown;
}

/** The message of an OpenAI-style error object (`{error: {message}}`, `{error: "…"}`, `{message}`). */
export function errorMessageOf(body: unknown): string | undefined {
  if (typeof body !== "object" || body === null) return undefined;
  const { error, message } = body as { error?: unknown; message?: unknown };
  if (typeof error === "string") return error;
  if (typeof error === "object" && error !== null) {
    const inner = (error as { message?: unknown }).message;
    if (typeof inner === "string") return inner;
  }
  return typeof message === "string" ? message : undefined;
}

/**
 * Yields the parts of a streamed completion as the body arrives, reading the body only as fast
 * as the caller pulls (so a slow reader slows the upstream through TCP). Ends at `[DONE]` or at
 * the end of the body; throws `EngineError` for a chunk that is not JSON or carries an error.
 */
export async function* readOpenAiStream(
  body: AsyncIterable<Uint8Array>,
): AsyncGenerator<OpenAiStreamPart> {
  const events: EventSourceMessage[] = [];
  const parser = createParser({ onEvent: (event) => events.push(event) });
  const decoder = new TextDecoder();
  for await (const bytes of body) {
    parser.feed(decoder.decode(bytes, { stream: true }));
    for (const event of events.splice(0)) {
      if (event.data === "[DONE]") return;
      yield* partsOf(event.data);
    }
  }
}

function partsOf(data: string): OpenAiStreamPart[] {
  let chunk: Chunk;
  try {
    chunk = JSON.parse(data) as Chunk;
  } catch (cause) {
    throw new EngineError("unavailable", "the upstream sent a stream chunk that is not JSON", {
      cause,
    });
  }
  if (chunk.error !== undefined && chunk.error !== null) {
    throw new EngineError(
      "unavailable",
      `the upstream failed mid-stream: ${errorMessageOf(chunk) ?? "no message"}`,
    );
  }
  const parts: OpenAiStreamPart[] = [];
  const choice = chunk.choices?.[0];
  const text = choice?.delta?.content ?? choice?.text;
  if (typeof text === "string" && text !== "") parts.push({ type: "text", text });
  if (typeof choice?.finish_reason === "string") {
    parts.push({ type: "finish", reason: choice.finish_reason, stopReason: choice.stop_reason });
  }
  const { usage } = chunk;
  if (typeof usage?.prompt_tokens === "number" || typeof usage?.completion_tokens === "number") {
    parts.push({
      type: "usage",
      promptTokens: usage?.prompt_tokens ?? 0,
      completionTokens: usage?.completion_tokens ?? 0,
    });
  }
  return parts;
}
