/**
 * @module The OpenAI-compatible routes on a real server, the real engine and the built-in model,
 * with the official `openai` SDK and curl as clients: chat and completions, streamed and not,
 * over HTTP/1.1 and HTTP/2 (undici's h2c client as the SDK's fetch); the text equals Connect's
 * `Generate` for the same greedy request; each field reaches the engine; each error has its
 * status and OpenAI's error object; a client that goes away cancels its generation.
 */
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { once } from "node:events";
import { request as httpRequest } from "node:http";
import { connect as connectHttp2 } from "node:http2";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { type Client, createClient } from "@connectrpc/connect";
import { createConnectTransport } from "@connectrpc/connect-node";
import { InferenceService } from "@parley/gen/inference/v1/inference_pb";
import OpenAI from "openai";
import type { Registry } from "prom-client";
import { H2CClient, fetch as undiciFetch } from "undici";
import { createEngine, type EngineOptions } from "../engine/create-engine.js";
import type { Engine } from "../engine/engine.js";
import type { ModelSource } from "../models/model-source.js";
import { resolveModelSource } from "../models/resolve-model-source.js";
import { createLogger } from "../observability/logger.js";
import { createMetricsRegistry } from "../observability/metrics-registry.js";
import { createGatewayServer, type GatewayServer } from "../server/create-gateway-server.js";
import { endlessBuiltinModel } from "../testing/endless-model.js";
import { findLongGeneration, type LongGeneration } from "../testing/find-long-generation.js";
import { builtinSource, metricValue } from "../testing/model-fixtures.js";
import { runCommand } from "../testing/run-command.js";

const prompt = "Once upon a time";
const messages = [{ role: "user" as const, content: "Tell me a story." }];
const maxTokens = 24;
/**
 * The fewest pieces a streamed completion of `maxTokens` comes in. A sequence's first text
 * leaves the worker alone (`engine/worker/outbox.ts`) and is written as it arrives; the rest may
 * come as one piece on a loaded machine, since the gateway joins the tokens a reader has not
 * taken yet. More than three pieces failed a CI run that way.
 */
const leastStreamedPieces = 2;

interface Gateway {
  readonly engine: Engine;
  readonly server: GatewayServer;
  readonly metrics: Registry;
  readonly base: string;
  readonly modelId: string;
  readonly connect: Client<typeof InferenceService>;
  /** The official SDK over HTTP/1.1 (Node's fetch), retries off so errors show as they are. */
  readonly openai: OpenAI;
  close(): Promise<void>;
}

/** A gateway on port 0 with the built-in model. */
async function startGateway(
  engineOptions: Partial<EngineOptions> = {},
  maxTimeoutMs = 60_000,
  options: { source?: ModelSource; corsOrigins?: string[] } = {},
): Promise<Gateway> {
  const source =
    options.source ?? (await resolveModelSource("builtin", { offline: true, progress: false }));
  const metrics = createMetricsRegistry();
  const logger = createLogger({ level: "silent" });
  const engine = await createEngine({ models: [source], metrics, logger, ...engineOptions });
  const server = createGatewayServer({
    engine,
    metrics,
    logger,
    config: {
      port: 0,
      host: "127.0.0.1",
      tls: undefined,
      corsOrigins: options.corsOrigins ?? [],
      maxRequestBytes: 1 << 16,
      maxTimeoutMs,
      webRoot: join(tmpdir(), "parley-no-web-client-here"),
    },
  });
  const { port } = await server.listen();
  const base = `http://127.0.0.1:${port}`;
  return {
    engine,
    server,
    metrics,
    base,
    modelId: source.id,
    connect: createClient(
      InferenceService,
      createConnectTransport({ baseUrl: base, httpVersion: "1.1" }),
    ),
    openai: new OpenAI({ baseURL: `${base}/v1`, apiKey: "unused", maxRetries: 0 }),
    async close() {
      await server.close(1_000);
      await engine.close(1_000);
    },
  };
}

/** POSTs `body` as JSON with Node's fetch and returns the status and decoded body. */
async function postJson(
  url: string,
  body: unknown,
): Promise<{
  status: number;
  body: { error?: Record<string, unknown> } & Record<string, unknown>;
}> {
  const response = await fetch(url, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: typeof body === "string" ? body : JSON.stringify(body),
  });
  return { status: response.status, body: (await response.json()) as never };
}

/** Polls `check` until it holds; the test's own timeout bounds the wait. */
async function eventually(check: () => Promise<boolean>): Promise<void> {
  while (!(await check())) {
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

describe("OpenAI-compatible API", () => {
  let gateway: Gateway;
  /** Connect's Generate for the prompt and for the conversation: what /v1 must equal. */
  let connectPromptText: string;
  let connectChatText: string;

  before(async () => {
    gateway = await startGateway();
    const [byPrompt, byChat] = await Promise.all([
      gateway.connect.generate({ prompt, maxTokens, temperature: 0 }),
      gateway.connect.generate({ messages, maxTokens, temperature: 0 }),
    ]);
    connectPromptText = byPrompt.text;
    connectChatText = byChat.text;
    assert.ok(connectPromptText.length > 0 && connectChatText.length > 0);
  });

  after(async () => {
    await gateway?.close();
  });

  describe("with the openai SDK", () => {
    it("chat completion: OpenAI's shape and Connect's text", async () => {
      const completion = await gateway.openai.chat.completions.create({
        model: gateway.modelId,
        messages,
        max_tokens: maxTokens,
        temperature: 0,
      });
      assert.match(completion.id, /^chatcmpl-[0-9a-f]{32}$/);
      assert.equal(completion.object, "chat.completion");
      assert.equal(completion.model, gateway.modelId);
      assert.ok(Math.abs(completion.created - Date.now() / 1000) < 60, "created is in seconds");
      assert.equal(typeof completion.system_fingerprint, "string");
      assert.equal(completion.choices.length, 1);
      const [choice] = completion.choices;
      assert.equal(choice?.index, 0);
      assert.equal(choice?.message.role, "assistant");
      assert.equal(choice?.message.content, connectChatText);
      assert.equal(choice?.finish_reason, "length");
      assert.equal(completion.usage?.completion_tokens, maxTokens);
      assert.ok((completion.usage?.prompt_tokens ?? 0) > 0);
      assert.equal(
        completion.usage?.total_tokens,
        (completion.usage?.prompt_tokens ?? 0) + maxTokens,
      );
      // The prefix cache's share of the prompt; at least one prompt token always runs.
      const cached = completion.usage?.prompt_tokens_details?.cached_tokens;
      assert.equal(typeof cached, "number");
      assert.ok((cached ?? -1) >= 0 && (cached ?? 0) < (completion.usage?.prompt_tokens ?? 0));
    });

    it("streamed chat completion: the chunks join to the same text, usage last", async () => {
      const stream = await gateway.openai.chat.completions.create({
        model: gateway.modelId,
        messages,
        max_completion_tokens: maxTokens,
        temperature: 0,
        stream: true,
        stream_options: { include_usage: true },
      });
      const chunks = [];
      for await (const chunk of stream) chunks.push(chunk);
      // Two choice chunks and the usage chunk at least: see `leastStreamedPieces`.
      assert.ok(chunks.length >= leastStreamedPieces + 1, `several chunks (got ${chunks.length})`);
      const ids = new Set(chunks.map((chunk) => chunk.id));
      assert.equal(ids.size, 1, "every chunk has the call's id");
      assert.match([...ids][0] ?? "", /^chatcmpl-/);
      assert.ok(chunks.every((chunk) => chunk.object === "chat.completion.chunk"));
      assert.equal(chunks[0]?.choices[0]?.delta.role, "assistant");
      const usageChunk = chunks.at(-1);
      assert.deepEqual(usageChunk?.choices, []);
      assert.equal(usageChunk?.usage?.completion_tokens, maxTokens);
      const choiceChunks = chunks.slice(0, -1);
      assert.ok(choiceChunks.every((chunk) => chunk.usage === null));
      assert.equal(choiceChunks.at(-1)?.choices[0]?.finish_reason, "length");
      assert.ok(choiceChunks.slice(0, -1).every((c) => c.choices[0]?.finish_reason === null));
      const text = choiceChunks.map((chunk) => chunk.choices[0]?.delta.content ?? "").join("");
      assert.equal(text, connectChatText);
    });

    it("completion, streamed and not: the same text as Connect's Generate", async () => {
      const request = { model: gateway.modelId, prompt, max_tokens: maxTokens, temperature: 0 };
      const whole = await gateway.openai.completions.create(request);
      assert.match(whole.id, /^cmpl-[0-9a-f]{32}$/);
      assert.equal(whole.object, "text_completion");
      assert.equal(whole.choices[0]?.text, connectPromptText);
      assert.equal(whole.choices[0]?.finish_reason, "length");
      assert.equal(whole.usage?.completion_tokens, maxTokens);
      const stream = await gateway.openai.completions.create({ ...request, stream: true });
      const pieces: string[] = [];
      let finishReason: string | null = null;
      for await (const chunk of stream) {
        assert.equal(chunk.object, "text_completion");
        assert.equal(chunk.id.startsWith("cmpl-"), true);
        pieces.push(chunk.choices[0]?.text ?? "");
        finishReason = chunk.choices[0]?.finish_reason ?? finishReason;
        assert.equal(chunk.usage, undefined, "no usage field without include_usage");
      }
      assert.ok(pieces.length >= leastStreamedPieces, `several pieces (got ${pieces.length})`);
      assert.equal(pieces.join(""), connectPromptText);
      assert.equal(finishReason, "length");
    });

    it("over HTTP/2 (undici's h2c client as the SDK's fetch), streamed", async () => {
      const dispatcher = new H2CClient(gateway.base);
      try {
        const openai = new OpenAI({
          baseURL: `${gateway.base}/v1`,
          apiKey: "unused",
          maxRetries: 0,
          fetch: undiciFetch as unknown as typeof fetch,
          fetchOptions: { dispatcher } as never,
        });
        const stream = await openai.chat.completions.create({
          model: gateway.modelId,
          messages,
          max_tokens: maxTokens,
          temperature: 0,
          stream: true,
        });
        let text = "";
        for await (const chunk of stream) text += chunk.choices[0]?.delta.content ?? "";
        assert.equal(text, connectChatText);
        const whole = await openai.chat.completions
          .create({ model: gateway.modelId, messages, max_tokens: maxTokens, temperature: 0 })
          .withResponse();
        assert.equal(whole.data.choices[0]?.message.content, connectChatText);
        const metrics = await fetch(`${gateway.base}/metrics`).then((r) => r.text());
        assert.match(
          metrics,
          /parley_rpc_requests_total\{protocol="openai",method="v1\/chat\/completions",code="ok"\}/,
        );
      } finally {
        await dispatcher.close();
      }
    });

    it("lists models and gets one; an unknown one is a 404 NotFoundError", async () => {
      const models = await gateway.openai.models.list();
      assert.deepEqual(
        models.data.map((model) => [model.id, model.object, model.owned_by]),
        [[gateway.modelId, "model", "parley"]],
      );
      const model = await gateway.openai.models.retrieve(gateway.modelId);
      assert.equal(model.id, gateway.modelId);
      await assert.rejects(gateway.openai.models.retrieve("no-such-model"), (error) => {
        assert.ok(error instanceof OpenAI.NotFoundError);
        assert.equal(error.status, 404);
        assert.equal(error.code, "model_not_found");
        return true;
      });
    });

    it("an invalid field is a 400 BadRequestError naming the field", async () => {
      await assert.rejects(
        gateway.openai.chat.completions.create({
          model: gateway.modelId,
          messages,
          temperature: 3,
        }),
        (error) => {
          assert.ok(error instanceof OpenAI.BadRequestError);
          assert.equal(error.status, 400);
          assert.equal(error.param, "temperature");
          assert.equal(error.type, "invalid_request_error");
          assert.match(error.message, /temperature must be in \[0, 2\]/);
          return true;
        },
      );
    });
  });

  describe("fields", () => {
    const chat = (body: Record<string, unknown>) =>
      postJson(`${gateway.base}/v1/chat/completions`, { messages, ...body });
    const completion = (body: Record<string, unknown>) =>
      postJson(`${gateway.base}/v1/completions`, { prompt, ...body });

    it("max_tokens and max_completion_tokens bound the completion", async () => {
      for (const field of ["max_tokens", "max_completion_tokens"]) {
        const { status, body } = await chat({ [field]: 3, temperature: 0 });
        assert.equal(status, 200, JSON.stringify(body));
        assert.equal((body.usage as { completion_tokens: number }).completion_tokens, 3, field);
      }
    });

    it("stop, as a string and as an array, ends the text before it with finish_reason stop", async () => {
      const full = connectPromptText;
      const word = full.trim().split(/\s+/)[2] ?? full.slice(5, 8);
      const before = full.slice(0, full.indexOf(word));
      for (const stop of [word, [word, "\u0000never"]]) {
        const { status, body } = await completion({ max_tokens: maxTokens, temperature: 0, stop });
        assert.equal(status, 200, JSON.stringify(body));
        const [choice] = body.choices as { text: string; finish_reason: string }[];
        assert.equal(choice?.text, before);
        assert.equal(choice?.finish_reason, "stop");
      }
    });

    it("seed makes sampling repeatable; temperature, top_p and top_k reach the sampler", async () => {
      const sampled = { max_tokens: 16, temperature: 1.5, seed: 7 };
      const a = await completion(sampled);
      const b = await completion(sampled);
      assert.equal(a.status, 200, JSON.stringify(a.body));
      assert.deepEqual(a.body.choices, b.body.choices);
      const connect = await gateway.connect.generate({
        prompt,
        maxTokens: 16,
        temperature: 1.5,
        seed: 7n,
      });
      assert.equal((a.body.choices as { text: string }[])[0]?.text, connect.text);
      // top_k 1 and a tiny top_p leave one candidate: greedy, whatever the temperature and seed.
      for (const narrow of [{ top_k: 1 }, { top_p: 1e-9 }]) {
        const { body } = await completion({ ...sampled, max_tokens: maxTokens, ...narrow });
        assert.equal((body.choices as { text: string }[])[0]?.text, connectPromptText);
      }
      // top_k -1 means off (vLLM's convention), as 0 does.
      const off = await completion({ ...sampled, top_k: -1 });
      const zero = await completion({ ...sampled, top_k: 0 });
      assert.equal(off.status, 200, JSON.stringify(off.body));
      assert.deepEqual(off.body.choices, zero.body.choices);
    });

    it("penalties and min_p reach the engine: the same text as Connect with the same field", async () => {
      const plain = { prompt, maxTokens, temperature: 0 };
      for (const [field, value, protoField] of [
        // The built-in model's greedy text repeats itself, so each penalty changes it.
        ["presence_penalty", 2, "presencePenalty"],
        ["frequency_penalty", 2, "frequencyPenalty"],
        ["repetition_penalty", 3, "repetitionPenalty"],
      ] as const) {
        const connect = await gateway.connect.generate({ ...plain, [protoField]: value });
        assert.notEqual(connect.text, connectPromptText, `${field} changes the greedy text`);
        const { status, body } = await completion({
          max_tokens: maxTokens,
          temperature: 0,
          [field]: value,
        });
        assert.equal(status, 200, JSON.stringify(body));
        assert.equal((body.choices as { text: string }[])[0]?.text, connect.text, field);
      }
      const sampled = { prompt, maxTokens: 16, temperature: 1.5, seed: 3n, minP: 0.3 };
      const connect = await gateway.connect.generate(sampled);
      const { body } = await completion({ max_tokens: 16, temperature: 1.5, seed: 3, min_p: 0.3 });
      assert.equal((body.choices as { text: string }[])[0]?.text, connect.text);
    });

    it("stop_token_ids end generation at the token with finish_reason stop", async () => {
      const ids: number[] = [];
      for await (const message of gateway.connect.generateStream({
        prompt,
        maxTokens,
        temperature: 0,
      })) {
        ids.push(...message.tokenIds);
      }
      const stopAt = ids.findIndex((id, index) => index >= 1 && ids.indexOf(id) === index);
      assert.ok(stopAt > 0, "a token that first appears after the first");
      const { status, body } = await completion({
        max_tokens: maxTokens,
        temperature: 0,
        stop_token_ids: [ids[stopAt]],
      });
      assert.equal(status, 200, JSON.stringify(body));
      const [choice] = body.choices as { text: string; finish_reason: string }[];
      assert.equal(choice?.finish_reason, "stop");
      assert.ok(connectPromptText.startsWith(choice?.text ?? "-"));
      assert.ok((choice?.text.length ?? 0) < connectPromptText.length);
      assert.equal((body.usage as { completion_tokens: number }).completion_tokens, stopAt + 1);
    });

    it("chat logprobs: one entry per token with top_logprobs alternatives, as Connect reports them, streamed the same", async () => {
      const connect = await gateway.connect.generate({
        messages,
        maxTokens: 8,
        temperature: 0,
        logprobs: true,
        topLogprobs: 3,
      });
      const request = { messages, max_tokens: 8, temperature: 0, logprobs: true, top_logprobs: 3 };
      const whole = await chat(request);
      assert.equal(whole.status, 200, JSON.stringify(whole.body));
      const [choice] = whole.body.choices as {
        logprobs: {
          content: {
            token: string;
            logprob: number;
            bytes: number[];
            top_logprobs: { token: string; logprob: number }[];
          }[];
        };
      }[];
      const content = choice?.logprobs.content ?? [];
      assert.equal(content.length, connect.logprobs.length);
      assert.equal(content.length, 8);
      content.forEach((entry, index) => {
        const expected = connect.logprobs[index];
        assert.equal(entry.token, expected?.token);
        // The proto's logprob is a float32, and a prefill on a prefix-cached past may round the
        // last bit differently: equal within 1e-5, as the Connect tests compare them.
        assert.ok(Math.abs(entry.logprob - (expected?.logprob ?? 1)) < 1e-5, entry.token);
        assert.ok(entry.logprob <= 0);
        assert.deepEqual(entry.bytes, [...Buffer.from(entry.token, "utf8")]);
        assert.equal(entry.top_logprobs.length, 3);
        assert.deepEqual(
          entry.top_logprobs.map((top) => top.token),
          expected?.topLogprobs.map((top) => top.token),
        );
      });
      // The SDK over SSE: each chunk's logprobs joined give the same entries.
      const stream = await gateway.openai.chat.completions.create({
        model: gateway.modelId,
        ...request,
        stream: true,
      });
      const streamed = [];
      for await (const chunk of stream)
        streamed.push(...(chunk.choices[0]?.logprobs?.content ?? []));
      // Tokens equal; values within 1e-5 (the second call may prefill on a prefix-cached past).
      assert.deepEqual(
        streamed.map((entry) => [entry.token, entry.top_logprobs.map((top) => top.token)]),
        content.map((entry) => [entry.token, entry.top_logprobs.map((top) => top.token)]),
      );
      streamed.forEach((entry, index) => {
        assert.ok(Math.abs(entry.logprob - (content[index]?.logprob ?? 1)) < 1e-5);
      });
      const plain = await chat({ messages, max_tokens: 8, temperature: 0 });
      assert.equal((plain.body.choices as { logprobs: unknown }[])[0]?.logprobs, null);
    });

    it("completion logprobs N: tokens, token_logprobs, N alternatives and text offsets", async () => {
      const { status, body } = await completion({ max_tokens: 6, temperature: 0, logprobs: 2 });
      assert.equal(status, 200, JSON.stringify(body));
      const [choice] = body.choices as {
        text: string;
        logprobs: {
          tokens: string[];
          token_logprobs: number[];
          top_logprobs: Record<string, number>[];
          text_offset: number[];
        };
      }[];
      const logprobs = choice?.logprobs;
      assert.equal(logprobs?.tokens.length, 6);
      assert.equal(logprobs?.token_logprobs.length, 6);
      assert.ok(
        logprobs?.top_logprobs.every(
          (top) => Object.keys(top).length >= 1 && Object.keys(top).length <= 2,
        ),
      );
      assert.equal(logprobs?.text_offset[0], 0);
      assert.ok(logprobs?.token_logprobs.every((value) => value <= 0));
    });

    it("content-part arrays of type text are joined; model, user, n 1 and unknown fields are accepted", async () => {
      const { status, body } = await chat({
        messages: [
          {
            role: "user",
            content: [
              { type: "text", text: "Tell me " },
              { type: "text", text: "a story." },
            ],
          },
        ],
        model: gateway.modelId,
        user: "someone",
        n: 1,
        max_tokens: maxTokens,
        temperature: 0,
        some_future_field: { nested: true },
      });
      assert.equal(status, 200, JSON.stringify(body));
      const [choice] = body.choices as { message: { content: string } }[];
      assert.equal(choice?.message.content, connectChatText);
    });

    it("null means unset, as in OpenAI's schema", async () => {
      const { status, body } = await completion({
        max_tokens: maxTokens,
        temperature: 0,
        stop: null,
        seed: null,
        top_p: null,
        user: null,
      });
      assert.equal(status, 200, JSON.stringify(body));
      assert.equal((body.choices as { text: string }[])[0]?.text, connectPromptText);
    });

    const refused: [
      string,
      "chat" | "completion",
      Record<string, unknown>,
      string | null,
      RegExp,
    ][] = [
      ["n > 1", "chat", { n: 2 }, "n", /only n=1 is supported/],
      ["n of the wrong type", "chat", { n: "2" }, "n", /n must be an integer/],
      ["temperature out of range", "completion", { temperature: -1 }, "temperature", /temperature/],
      ["temperature as a string", "chat", { temperature: "0" }, "temperature", /must be a number/],
      ["top_p out of range", "chat", { top_p: 0 }, "top_p", /top_p must be in \(0, 1\]/],
      ["top_k too large", "chat", { top_k: 5000 }, "top_k", /top_k must be at most/],
      ["top_k negative", "chat", { top_k: -2 }, "top_k", /top_k/],
      ["top_k fractional", "chat", { top_k: 1.5 }, "top_k", /integer/],
      ["max_tokens 0", "completion", { max_tokens: 0 }, "max_tokens", /at least 1/],
      ["max_tokens negative", "completion", { max_tokens: -5 }, "max_tokens", /max_tokens/],
      [
        "max_completion_tokens as a string",
        "chat",
        { max_completion_tokens: "3" },
        "max_completion_tokens",
        /integer/,
      ],
      ["seed negative", "chat", { seed: -1 }, "seed", /non-negative/],
      ["seed fractional", "chat", { seed: 0.5 }, "seed", /integer/],
      ["stop of numbers", "chat", { stop: [1] }, "stop", /string or an array of strings/],
      ["an empty stop string", "chat", { stop: "" }, "stop", /stop\[0\] is empty/],
      ["stream as a string", "chat", { stream: "yes" }, "stream", /boolean/],
      [
        "stream_options without stream",
        "chat",
        { stream_options: { include_usage: true } },
        "stream_options",
        /only allowed when stream/,
      ],
      [
        "include_usage as a number",
        "chat",
        { stream: true, stream_options: { include_usage: 1 } },
        "stream_options.include_usage",
        /boolean/,
      ],
      ["user as a number", "chat", { user: 5 }, "user", /string/],
      ["model as a number", "chat", { model: 5 }, "model", /string/],
      ["messages missing", "chat", { messages: undefined }, "messages", /array/],
      ["messages empty", "chat", { messages: [] }, "messages", /at least one/],
      [
        "a message without role",
        "chat",
        { messages: [{ content: "hi" }] },
        "messages[0].role",
        /string/,
      ],
      [
        "an image content part",
        "chat",
        { messages: [{ role: "user", content: [{ type: "image_url", image_url: { url: "x" } }] }] },
        "messages[0].content[0]",
        /only content parts of type "text"/,
      ],
      [
        "presence_penalty out of range",
        "chat",
        { presence_penalty: 2.5 },
        "presence_penalty",
        /presence_penalty must be in \[-2, 2\]/,
      ],
      [
        "frequency_penalty as a string",
        "chat",
        { frequency_penalty: "1" },
        "frequency_penalty",
        /must be a number/,
      ],
      [
        "repetition_penalty 0",
        "completion",
        { repetition_penalty: 0 },
        "repetition_penalty",
        /above 0/,
      ],
      ["min_p above 1", "completion", { min_p: 1.5 }, "min_p", /min_p must be in \[0, 1\]/],
      [
        "stop_token_ids of strings",
        "completion",
        { stop_token_ids: ["2"] },
        "stop_token_ids",
        /array of integers/,
      ],
      [
        "a negative stop token id",
        "completion",
        { stop_token_ids: [-1] },
        "stop_token_ids",
        /stop_token_ids/,
      ],
      ["chat logprobs as a number", "chat", { logprobs: 2 }, "logprobs", /boolean/],
      [
        "top_logprobs without logprobs",
        "chat",
        { top_logprobs: 2 },
        "top_logprobs",
        /requires logprobs/,
      ],
      [
        "top_logprobs over 20",
        "chat",
        { logprobs: true, top_logprobs: 21 },
        "top_logprobs",
        /top_logprobs must be in \[0, 20\]/,
      ],
      [
        "completion logprobs over 5",
        "completion",
        { logprobs: 6 },
        "logprobs",
        /logprobs must be in \[0, 5\]/,
      ],
      ["completion logprobs as a boolean", "completion", { logprobs: true }, "logprobs", /integer/],
      ["several prompts", "completion", { prompt: ["a", "b"] }, "prompt", /exactly one string/],
      ["a token-id prompt", "completion", { prompt: [1, 2, 3] }, "prompt", /token id/],
    ];
    for (const [name, route, body, param, message] of refused) {
      it(`400 for ${name}`, async () => {
        const { status, body: reply } = await (route === "chat" ? chat : completion)(body);
        assert.equal(status, 400, JSON.stringify(reply));
        assert.equal(reply.error?.type, "invalid_request_error");
        assert.equal(reply.error?.param, param);
        assert.match(String(reply.error?.message), message);
        assert.ok("code" in (reply.error ?? {}), "the error object has all four fields");
      });
    }

    it("400 for a body that is not JSON or not an object", async () => {
      for (const body of ["{nope", "[1]"]) {
        const { status, body: reply } = await postJson(`${gateway.base}/v1/completions`, body);
        assert.equal(status, 400);
        assert.equal(reply.error?.type, "invalid_request_error");
      }
    });

    it("413 for a body over --max-request-bytes", async () => {
      const { status, body } = await completion({ prompt: "x".repeat(1 << 17) });
      assert.equal(status, 413);
      assert.match(String(body.error?.message), /larger than/);
    });

    it("404 for an unknown model and an unknown route, 405 for a wrong method", async () => {
      const missing = await chat({ model: "no-such-model" });
      assert.equal(missing.status, 404);
      const { message, ...rest } = missing.body.error ?? {};
      assert.match(String(message), /^model "no-such-model" is not loaded/);
      assert.deepEqual(rest, { type: "not_found_error", param: "model", code: "model_not_found" });
      const route = await postJson(`${gateway.base}/v1/embeddings`, { input: "x" });
      assert.equal(route.status, 404);
      assert.equal(route.body.error?.code, "unknown_url");
      const method = await fetch(`${gateway.base}/v1/chat/completions`);
      assert.equal(method.status, 405);
      assert.equal(method.headers.get("allow"), "POST");
    });
  });

  describe("curl", () => {
    it("curl -N prints each token's event as it comes, then [DONE]", async () => {
      const result = await runCommand("curl", [
        "-sS",
        "-N",
        "--fail-with-body",
        "-H",
        "Content-Type: application/json",
        "--data-binary",
        JSON.stringify({ prompt, max_tokens: maxTokens, temperature: 0, stream: true }),
        `${gateway.base}/v1/completions`,
      ]);
      assert.equal(result.code, 0, result.stderr + result.stdout);
      const events = result.stdout.split("\n\n").filter((event) => event.length > 0);
      assert.equal(events.at(-1), "data: [DONE]");
      const chunks = events
        .slice(0, -1)
        .map(
          (event) => JSON.parse(event.replace(/^data: /, "")) as { choices: { text: string }[] },
        );
      assert.ok(chunks.length >= leastStreamedPieces, `several chunks (got ${chunks.length})`);
      assert.equal(chunks.map((chunk) => chunk.choices[0]?.text).join(""), connectPromptText);
    });
  });

  describe("a stream whose client goes away", () => {
    let long: LongGeneration;
    before(async () => {
      const found = await findLongGeneration(gateway.connect, prompt);
      assert.ok(found !== undefined, "a seed of the built-in model runs 200 tokens or more");
      long = found;
    });

    it("curl killed after its first tokens: the generation is counted cancelled and its slot freed", async () => {
      const cancelled = () =>
        metricValue(gateway.metrics, "parley_generations_total", { finish_reason: "cancelled" });
      const cancelledBefore = await cancelled();
      const curl = spawn("curl", [
        "-sS",
        "-N",
        "-H",
        "Content-Type: application/json",
        "--data-binary",
        JSON.stringify({
          prompt: long.request.prompt,
          max_tokens: long.request.maxTokens,
          temperature: long.request.temperature,
          seed: Number(long.request.seed),
          stream: true,
        }),
        `${gateway.base}/v1/completions`,
      ]);
      let received = "";
      await new Promise<void>((resolve) => {
        curl.stdout.on("data", (chunk: Buffer) => {
          received += chunk.toString("utf8");
          // Three events with text in hand: the stream is flowing before the generation ended.
          if ((received.match(/"text":"[^"]/g) ?? []).length >= 3) resolve();
        });
      });
      assert.ok(!received.includes("[DONE]"), "the generation was still running");
      curl.kill("SIGKILL");
      await eventually(async () => (await cancelled()) === cancelledBefore + 1);
      await eventually(
        async () => (await metricValue(gateway.metrics, "parley_generations_in_flight")) === 0,
      );
      // Slot freed: the same long request now runs to its end.
      const after = await postJson(`${gateway.base}/v1/completions`, {
        prompt: long.request.prompt,
        max_tokens: long.request.maxTokens,
        temperature: long.request.temperature,
        seed: Number(long.request.seed),
      });
      assert.equal(after.status, 200);
      assert.equal(
        (after.body.usage as { completion_tokens: number }).completion_tokens,
        long.tokens,
      );
    });

    it("a non-streaming request whose socket closes is cancelled too", async () => {
      const cancelled = () =>
        metricValue(gateway.metrics, "parley_generations_total", { finish_reason: "cancelled" });
      const cancelledBefore = await cancelled();
      const started = () => metricValue(gateway.metrics, "parley_generations_in_flight");
      const request = httpRequest(`${gateway.base}/v1/completions`, {
        method: "POST",
        headers: { "content-type": "application/json" },
      });
      request.on("error", () => {});
      request.end(
        JSON.stringify({
          prompt: long.request.prompt,
          max_tokens: long.request.maxTokens,
          temperature: long.request.temperature,
          seed: Number(long.request.seed),
        }),
      );
      await eventually(async () => (await started()) === 1);
      request.destroy();
      await eventually(async () => (await cancelled()) === cancelledBefore + 1);
    });
  });
});

describe("OpenAI-compatible API under load and limits", () => {
  it("429 rate_limit_error when the queue is full, as resource_exhausted elsewhere", async () => {
    const gateway = await startGateway({ maxBatchSize: 1, maxQueue: 1 });
    try {
      const long = await findLongGeneration(gateway.connect, prompt);
      assert.ok(long !== undefined);
      const body = {
        prompt: long.request.prompt,
        max_tokens: long.request.maxTokens,
        temperature: long.request.temperature,
        seed: Number(long.request.seed),
        stream: true,
      };
      const controller = new AbortController();
      // One generating, one waiting: the third is refused at once.
      const running = [1, 2].map(() =>
        fetch(`${gateway.base}/v1/completions`, {
          method: "POST",
          headers: { "content-type": "application/json" },
          body: JSON.stringify(body),
          signal: controller.signal,
        }).catch(() => undefined),
      );
      await eventually(
        async () => (await metricValue(gateway.metrics, "parley_queue_depth")) === 1,
      );
      await assert.rejects(
        gateway.openai.completions.create({ ...body, model: gateway.modelId, stream: false }),
        (error) => {
          assert.ok(error instanceof OpenAI.RateLimitError);
          assert.equal(error.status, 429);
          assert.equal(error.type, "rate_limit_error");
          return true;
        },
      );
      controller.abort();
      await Promise.all(running);
    } finally {
      await gateway.close();
    }
  });

  it("504 timeout_error when the server's deadline passes first", async () => {
    const gateway = await startGateway({}, 1);
    try {
      const { status, body } = await postJson(`${gateway.base}/v1/completions`, {
        prompt,
        max_tokens: 2000,
        temperature: 1.5,
        seed: 1,
      });
      assert.equal(status, 504, JSON.stringify(body));
      assert.equal(body.error?.type, "timeout_error");
    } finally {
      await gateway.close();
    }
  });

  it("503 when the server shuts down under a call, and as a late event on a stream", async () => {
    const gateway = await startGateway();
    try {
      const long = await findLongGeneration(gateway.connect, prompt);
      assert.ok(long !== undefined);
      const body = {
        prompt: long.request.prompt,
        max_tokens: long.request.maxTokens,
        temperature: long.request.temperature,
        seed: Number(long.request.seed),
      };
      const whole = postJson(`${gateway.base}/v1/completions`, body);
      const stream = await gateway.openai.completions.create({
        ...body,
        model: gateway.modelId,
        stream: true,
      });
      const iterator = stream[Symbol.asyncIterator]();
      await iterator.next();
      await eventually(
        async () => (await metricValue(gateway.metrics, "parley_generations_in_flight")) === 2,
      );
      const closed = gateway.server.close(0);
      const reply = await whole;
      assert.equal(reply.status, 503, JSON.stringify(reply.body));
      assert.equal(reply.body.error?.type, "service_unavailable");
      await assert.rejects(
        (async () => {
          for (;;) if ((await iterator.next()).done) return;
        })(),
        (error) => {
          assert.ok(error instanceof OpenAI.APIError);
          assert.match(error.message, /shutting down/);
          return true;
        },
      );
      await closed;
    } finally {
      await gateway.engine.close(1_000);
    }
  });
});

describe("OpenAI-compatible API: backpressure and CORS", () => {
  it("an SSE reader that reads nothing pauses its generation, which is parked for a waiting call", async () => {
    const gateway = await startGateway({ maxBatchSize: 1, parkAfterMs: 200 }, 60_000, {
      source: { ...builtinSource(), dir: await endlessBuiltinModel() },
    });
    // HTTP/2 with a flow-control window of 0: the server can send headers but no body byte, so
    // its writes back up at once (an HTTP/1.1 socket would first fill the kernel's buffers).
    const session = connectHttp2(gateway.base, { settings: { initialWindowSize: 0 } });
    try {
      const stalled = session.request({
        ":method": "POST",
        ":path": "/v1/completions",
        "content-type": "application/json",
      });
      stalled.end(JSON.stringify({ prompt, max_tokens: 8000, temperature: 0, stream: true }));
      const [headers] = (await once(stalled, "response")) as [Record<string, unknown>];
      assert.equal(headers[":status"], 200);
      await eventually(
        async () => (await metricValue(gateway.metrics, "parley_generations_in_flight")) === 1,
      );
      // The only batch slot is held by the unread stream; this call waits for it, and gets it
      // only because the paused generation is parked: SSE writes stopped pulling from the engine.
      const served = await gateway.openai.completions.create({
        model: gateway.modelId,
        prompt,
        max_tokens: 4,
        temperature: 0,
      });
      assert.equal(served.usage?.completion_tokens, 4);
      assert.equal(await metricValue(gateway.metrics, "parley_generations_parked_total"), 1);
      const generated = await metricValue(gateway.metrics, "parley_completion_tokens_total");
      assert.ok(generated < 8000, `the unread generation stopped early (${generated} tokens)`);
      stalled.close();
    } finally {
      session.destroy();
      await gateway.close();
    }
  });

  it("the CORS policy of the other protocols applies: a preflight for /v1 with Authorization passes", async () => {
    const origin = "https://app.example";
    const gateway = await startGateway({}, 60_000, { corsOrigins: [origin] });
    try {
      const preflight = await fetch(`${gateway.base}/v1/chat/completions`, {
        method: "OPTIONS",
        headers: {
          origin,
          "access-control-request-method": "POST",
          "access-control-request-headers": "authorization, content-type",
        },
      });
      assert.equal(preflight.status, 204);
      assert.equal(preflight.headers.get("access-control-allow-origin"), origin);
      assert.match(preflight.headers.get("access-control-allow-headers") ?? "", /Authorization/);
      const call = await fetch(`${gateway.base}/v1/models`, { headers: { origin } });
      assert.equal(call.headers.get("access-control-allow-origin"), origin);
      const other = await fetch(`${gateway.base}/v1/models`, {
        headers: { origin: "https://elsewhere.example" },
      });
      assert.equal(other.headers.get("access-control-allow-origin"), null);
    } finally {
      await gateway.close();
    }
  });
});
