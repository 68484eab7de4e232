/**
 * @module One greedy streamed `/v1/completions` call (OpenAI SSE over HTTP/1.1), read to its
 * end: the client side of the SSE and prefix-cache scenarios.
 */
import { request as httpRequest } from "node:http";

/** What a completed stream delivered. */
export interface SseCompletion {
  /** From sending the request to the first event carrying text, ms. */
  readonly ttftMs: number;
  /** The generated text, joined from the events. */
  readonly text: string;
  /** From the final usage event. */
  readonly promptTokens: number;
  readonly completionTokens: number;
  /** Prompt tokens the prefix cache gave (usage.prompt_tokens_details), 0 when not reported. */
  readonly cachedTokens: number;
}

/** Streams a greedy completion of `prompt`; rejects unless it ends with usage and `[DONE]`. */
export function sseCompletion(
  port: number,
  prompt: string,
  maxTokens: number,
): Promise<SseCompletion> {
  return new Promise((resolve, reject) => {
    const startedAt = performance.now();
    let firstAt: number | undefined;
    const body = JSON.stringify({
      prompt,
      max_tokens: maxTokens,
      temperature: 0,
      stream: true,
      stream_options: { include_usage: true },
    });
    const request = httpRequest(
      { host: "127.0.0.1", port, path: "/v1/completions", method: "POST", agent: false },
      (response) => {
        let raw = "";
        response.setEncoding("utf8");
        response.on("data", (chunk: string) => {
          if (firstAt === undefined && chunk.includes('"text":"')) firstAt = performance.now();
          raw += chunk;
        });
        response.on("end", () => {
          const prompted = /"prompt_tokens":(\d+)/.exec(raw);
          const completed = /"completion_tokens":(\d+)/.exec(raw);
          const cached = /"cached_tokens":(\d+)/.exec(raw);
          if (
            response.statusCode !== 200 ||
            prompted === null ||
            completed === null ||
            firstAt === undefined ||
            !raw.endsWith("data: [DONE]\n\n")
          ) {
            reject(new Error(`SSE completion failed (${response.statusCode}): ${raw.slice(-300)}`));
            return;
          }
          const text = [...raw.matchAll(/"text":"((?:[^"\\]|\\.)*)"/g)]
            .map((m) => JSON.parse(`"${m[1]}"`) as string)
            .join("");
          resolve({
            ttftMs: firstAt - startedAt,
            text,
            promptTokens: Number(prompted[1]),
            completionTokens: Number(completed[1]),
            cachedTokens: Number(cached?.[1] ?? 0),
          });
        });
        response.on("error", reject);
      },
    );
    request.on("error", reject);
    request.setHeader("content-type", "application/json");
    request.end(body);
  });
}
