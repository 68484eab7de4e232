/**
 * @module A small server that speaks the OpenAI API the way vLLM does (`/v1/models` with
 * `max_model_len`, `/v1/chat/completions` and `/v1/completions`, streamed as SSE with a usage
 * chunk when asked), for testing Parley's `openai:` upstream. The remote model named in a request
 * picks its behaviour:
 *
 * - `echo`: a deterministic text of `max_tokens` words from the prompt ({@link echoText}), one
 *   SSE event per word, finish_reason "length";
 * - `slow`: the same, one word every 20 ms, up to 10,000 words (for cancellation);
 * - `stall`: response headers and one word, then nothing until the client goes;
 * - `stall-headers`: no answer at all until the client goes;
 * - `fail-500`, `fail-429`, `fail-401`, `bad-request`: that HTTP error with an OpenAI error body;
 * - `break`: a 200 stream that closes after one word, with no finish.
 *
 * It records every request (body and authorization header), every TCP connection, and how each
 * request's connection ended, so tests can see that Parley pooled connections, sent its key and
 * closed a stream its client cancelled.
 */
import { once } from "node:events";
import { createServer, type IncomingMessage, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";

/** The models the server lists. */
export const testModels = [
  "echo",
  "slow",
  "stall",
  "stall-headers",
  "fail-500",
  "fail-429",
  "fail-401",
  "bad-request",
  "break",
] as const;

/** The context length `/v1/models` reports for every model. */
export const testContextLength = 4096;

/** What the server saw of one request. */
export interface SeenRequest {
  readonly path: string;
  readonly authorization: string | undefined;
  readonly body: Record<string, unknown>;
  /** Set when the response ended: "done" (sent whole) or "closed" (the client went first). */
  ending: "done" | "closed" | undefined;
}

/** The running server. */
export interface OpenAiTestServer {
  /** The base URL with `/v1`, as `--model openai:<base-url>#<model>` takes it. */
  readonly baseUrl: string;
  readonly port: number;
  readonly requests: SeenRequest[];
  /** TCP connections accepted so far. */
  connections(): number;
  /** Resolves once `request` has ended (its response was sent or its client went). */
  ended(request: SeenRequest): Promise<void>;
  close(): Promise<void>;
}

/** The text `echo` generates: `count` words derived from the prompt. */
export function echoText(prompt: string, count: number): string {
  return echoWords(prompt, count).join("");
}

function echoWords(prompt: string, count: number): string[] {
  let seed = 7;
  for (const char of prompt) seed = (seed * 31 + (char.codePointAt(0) ?? 0)) % 9973;
  return Array.from({ length: count }, (_, i) => ` w${(seed + i * 17) % 100}`);
}

/** The prompt as the server flattens it: a completion's prompt, or the messages' contents. */
export function promptOf(body: Record<string, unknown>): string {
  if (typeof body.prompt === "string") return body.prompt;
  const messages = (body.messages ?? []) as { role: string; content: string }[];
  return messages.map((m) => `${m.role}: ${m.content}`).join("\n");
}

function sendError(response: ServerResponse, status: number, message: string): void {
  const body = JSON.stringify({ error: { message, type: "test_error", code: status } });
  response.writeHead(status, { "content-type": "application/json" }).end(body);
}

/** Starts the server on a loopback port. */
export async function startOpenAiTestServer(): Promise<OpenAiTestServer> {
  const requests: SeenRequest[] = [];
  const waiters = new Map<SeenRequest, (() => void)[]>();
  let connections = 0;
  const finish = (seen: SeenRequest, ending: "done" | "closed") => {
    if (seen.ending !== undefined) return;
    seen.ending = ending;
    for (const wake of waiters.get(seen) ?? []) wake();
  };

  async function handle(request: IncomingMessage, response: ServerResponse): Promise<void> {
    const path = (request.url ?? "").split("?", 1)[0] ?? "";
    if (request.method === "GET" && path === "/v1/models") {
      response.writeHead(200, { "content-type": "application/json" }).end(
        JSON.stringify({
          object: "list",
          data: testModels.map((id) => ({ id, object: "model", max_model_len: testContextLength })),
        }),
      );
      return;
    }
    const chunks: Buffer[] = [];
    for await (const chunk of request) chunks.push(chunk as Buffer);
    const body = JSON.parse(Buffer.concat(chunks).toString("utf8")) as Record<string, unknown>;
    const seen: SeenRequest = {
      path,
      authorization: request.headers.authorization,
      body,
      ending: undefined,
    };
    requests.push(seen);
    response.on("close", () => finish(seen, response.writableFinished ? "done" : "closed"));
    const chat = path === "/v1/chat/completions";
    if (!chat && path !== "/v1/completions") {
      sendError(response, 404, `no route ${path}`);
      return;
    }
    const model = String(body.model);
    switch (model) {
      case "fail-500":
        sendError(response, 500, "the GPU fell over");
        return;
      case "fail-429":
        sendError(response, 429, "too many requests in flight");
        return;
      case "fail-401":
        sendError(response, 401, "invalid api key");
        return;
      case "bad-request":
        sendError(response, 400, "This model's maximum context length is 4096 tokens");
        return;
      case "stall-headers":
        return; // nothing, until the client goes
    }
    const count = model === "slow" ? 10_000 : Number(body.max_tokens ?? 16);
    const words = echoWords(promptOf(body), count);
    const id = `cmpl-${requests.length}`;
    const created = Math.floor(Date.now() / 1000);
    const piece = (text: string | undefined, finishReason: string | null) =>
      chat
        ? {
            index: 0,
            delta: text === undefined ? {} : { content: text },
            finish_reason: finishReason,
          }
        : { index: 0, text: text ?? "", finish_reason: finishReason };
    const object = chat ? "chat.completion.chunk" : "text_completion";
    const event = (data: unknown) => `data: ${JSON.stringify(data)}\n\n`;
    const promptTokens = promptOf(body)
      .split(/\s+/)
      .filter((w) => w !== "").length;

    if (body.stream !== true) {
      const text = words.join("");
      const choice = chat
        ? { index: 0, message: { role: "assistant", content: text }, finish_reason: "length" }
        : { index: 0, text, finish_reason: "length" };
      response.writeHead(200, { "content-type": "application/json" }).end(
        JSON.stringify({
          id,
          object: chat ? "chat.completion" : "text_completion",
          created,
          model,
          choices: [choice],
          usage: { prompt_tokens: promptTokens, completion_tokens: count },
        }),
      );
      return;
    }
    response.writeHead(200, { "content-type": "text/event-stream", "cache-control": "no-cache" });
    const write = (data: string) =>
      new Promise<void>((resolve) => {
        if (response.destroyed || !response.write(data)) {
          response.once("drain", resolve);
          response.once("close", resolve);
        } else {
          resolve();
        }
      });
    // A comment line first, as llama.cpp's keep-alives: SSE parsers must skip it.
    await write(": keep-alive\n\n");
    for (const [i, word] of words.entries()) {
      if (response.destroyed) return;
      await write(event({ id, object, created, model, choices: [piece(word, null)] }));
      if (i === 0 && (model === "stall" || model === "break")) {
        if (model === "break") response.end();
        return; // stall: hold the stream open until the client goes
      }
      if (model === "slow") await new Promise((resolve) => setTimeout(resolve, 20));
    }
    await write(event({ id, object, created, model, choices: [piece(undefined, "length")] }));
    if (
      typeof body.stream_options === "object" &&
      (body.stream_options as { include_usage?: boolean }).include_usage === true
    ) {
      await write(
        event({
          id,
          object,
          created,
          model,
          choices: [],
          usage: {
            prompt_tokens: promptTokens,
            completion_tokens: count,
            total_tokens: promptTokens + count,
          },
        }),
      );
    }
    await write("data: [DONE]\n\n");
    response.end();
  }

  const server = createServer((request, response) => {
    handle(request, response).catch((error: unknown) => {
      if (!response.headersSent) sendError(response, 500, String(error));
      else response.destroy();
    });
  });
  server.on("connection", () => connections++);
  server.listen(0, "127.0.0.1");
  await once(server, "listening");
  const { port } = server.address() as AddressInfo;
  return {
    baseUrl: `http://127.0.0.1:${port}/v1`,
    port,
    requests,
    connections: () => connections,
    async ended(seen) {
      if (seen.ending !== undefined) return;
      await new Promise<void>((resolve) => {
        waiters.set(seen, [...(waiters.get(seen) ?? []), resolve]);
      });
    },
    async close() {
      server.closeAllConnections();
      server.close();
      await once(server, "close");
    },
  };
}
