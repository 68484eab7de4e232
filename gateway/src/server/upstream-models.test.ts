/**
 * @module `--model openai:<base-url>#<remote-model>` end to end: a real gateway (the built-in
 * model beside upstream ones) forwarding to a local OpenAI-compatible test server that streams,
 * fails and stalls. Upstream models look like any other on every protocol (ListModels, Generate,
 * GenerateStream, the same text streamed or not); the caller's cancel and deadline reach the
 * upstream as a closed connection; upstream failures arrive as the right codes; connections are
 * kept alive between calls; the bearer key is sent and never logged.
 */
import assert from "node:assert/strict";
import { once } from "node:events";
import { createServer } from "node:net";
import { after, before, describe, it } from "node:test";
import { type Client, Code, ConnectError, createClient, type Transport } from "@connectrpc/connect";
import {
  createConnectTransport,
  createGrpcTransport,
  createGrpcWebTransport,
} from "@connectrpc/connect-node";
import { FinishReason, InferenceService } from "@parley/gen/inference/v1/inference_pb";
import type { AnyModelSource } from "../models/model-source.js";
import { resolveModelSource } from "../models/resolve-model-source.js";
import { builtinSource } from "../testing/model-fixtures.js";
import {
  echoText,
  type OpenAiTestServer,
  promptOf,
  type SeenRequest,
  startOpenAiTestServer,
  testContextLength,
} from "../testing/openai-test-server.js";
import { type RealGateway, startRealGateway } from "../testing/real-gateway.js";

const secret = "sk-test-secret-7d41";
/** How long an upstream may send nothing, for these tests. */
const upstreamTimeoutMs = 1_000;

type Inference = Client<typeof InferenceService>;

/** A loopback port nothing listens on. */
async function closedPort(): Promise<number> {
  const server = createServer();
  server.listen(0, "127.0.0.1");
  await once(server, "listening");
  const { port } = server.address() as { port: number };
  server.close();
  await once(server, "close");
  return port;
}

/** The last request the test server saw for `model`. */
function lastRequest(upstream: OpenAiTestServer, model: string): SeenRequest {
  const seen = upstream.requests.filter((r) => r.body.model === model).at(-1);
  assert.ok(seen, `the upstream saw a request for ${model}`);
  return seen;
}

async function codeOf(call: Promise<unknown>): Promise<ConnectError> {
  try {
    await call;
  } catch (error) {
    return ConnectError.from(error);
  }
  assert.fail("the call succeeded");
}

describe("openai: upstream models", () => {
  let upstream: OpenAiTestServer;
  let gateway: RealGateway;
  let transports: Record<"grpc" | "grpcWeb" | "connect", Transport>;
  let client: Inference;

  before(async () => {
    upstream = await startOpenAiTestServer();
    const withKey = upstream.baseUrl.replace("http://", `http://:${secret}@`);
    const specs = [
      `openai:${withKey}#echo`,
      ...["slow", "stall", "stall-headers", "fail-500", "fail-429", "fail-401", "bad-request"].map(
        (model) => `openai:${upstream.baseUrl}#${model}`,
      ),
      `openai:${upstream.baseUrl}#break`,
      `openai:http://127.0.0.1:${await closedPort()}/v1#gone`,
    ];
    const models: AnyModelSource[] = [builtinSource()];
    for (const spec of specs) models.push(await resolveModelSource(spec));
    gateway = await startRealGateway({ models, engine: { upstreamTimeoutMs } });
    const baseUrl = gateway.base;
    transports = {
      grpc: createGrpcTransport({ baseUrl }),
      grpcWeb: createGrpcWebTransport({ baseUrl, httpVersion: "1.1" }),
      connect: createConnectTransport({ baseUrl, httpVersion: "1.1" }),
    };
    client = createClient(InferenceService, transports.connect);
  });
  after(async () => {
    await gateway.close();
    await upstream.close();
  });

  it("lists upstream models beside local ones, with the context length the upstream reports", async () => {
    const { models } = await client.listModels({});
    const echo = models.find((m) => m.id === "echo");
    assert.ok(echo);
    assert.equal(echo.contextLength, testContextLength);
    assert.equal(echo.hasChatTemplate, true);
    assert.equal(echo.isDefault, false);
    assert.match(echo.description, /127\.0\.0\.1/);
    assert.doesNotMatch(echo.description, new RegExp(secret));
    assert.equal(models.find((m) => m.isDefault)?.id, "parley-tiny");
    // An upstream that was down at start-up is listed with an unknown context length.
    assert.equal(models.find((m) => m.id === "gone")?.contextLength, 0);
  });

  for (const name of ["grpc", "grpcWeb", "connect"] as const) {
    it(`${name}: streams the upstream's text, the same as unary, with its usage`, async () => {
      const protocol = createClient(InferenceService, transports[name]);
      const request = { model: "echo", prompt: `Hello over ${name}`, maxTokens: 7 };
      const unary = await protocol.generate(request);
      let streamed = "";
      let messages = 0;
      let last: { finishReason: FinishReason; completionTokens?: number } | undefined;
      for await (const message of protocol.generateStream(request)) {
        messages++;
        streamed += message.text;
        if (message.finishReason !== FinishReason.UNSPECIFIED) {
          last = {
            finishReason: message.finishReason,
            completionTokens: message.usage?.completionTokens,
          };
        }
      }
      const expected = echoText(request.prompt, request.maxTokens);
      assert.equal(unary.text, expected);
      assert.equal(streamed, expected);
      assert.equal(unary.model, "echo");
      assert.equal(unary.finishReason, FinishReason.LENGTH);
      assert.equal(unary.usage?.completionTokens, request.maxTokens);
      assert.equal(unary.usage?.promptTokens, 3);
      assert.ok(messages > request.maxTokens, "one message per upstream chunk, plus the first");
      assert.deepEqual(last, { finishReason: FinishReason.LENGTH, completionTokens: 7 });
      const seen = lastRequest(upstream, "echo");
      assert.equal(seen.path, "/v1/completions");
      assert.equal(seen.body.prompt, request.prompt);
      assert.equal(seen.body.stream, true);
    });
  }

  it("forwards a conversation to /chat/completions with the sampling settings", async () => {
    const response = await client.generate({
      model: "echo",
      messages: [
        { role: "system", content: "Be brief." },
        { role: "user", content: "Hi" },
      ],
      maxTokens: 5,
      temperature: 0.5,
      topP: 0.9,
      topK: 40,
      seed: 7n,
      stop: ["\n\n"],
      presencePenalty: 0.5,
      frequencyPenalty: 0.25,
      minP: 0.05,
      stopTokenIds: [7, 9],
    });
    const seen = lastRequest(upstream, "echo");
    assert.equal(seen.path, "/v1/chat/completions");
    assert.deepEqual(seen.body.messages, [
      { role: "system", content: "Be brief." },
      { role: "user", content: "Hi" },
    ]);
    assert.equal(response.text, echoText(promptOf(seen.body), 5));
    assert.equal(seen.body.max_tokens, 5);
    assert.equal(seen.body.temperature, 0.5);
    assert.equal(seen.body.top_p, 0.9);
    assert.equal(seen.body.top_k, 40);
    assert.equal(seen.body.seed, 7);
    assert.deepEqual(seen.body.stop, ["\n\n"]);
    assert.deepEqual(seen.body.stream_options, { include_usage: true });
    assert.equal(seen.body.presence_penalty, 0.5);
    assert.equal(seen.body.frequency_penalty, 0.25);
    assert.equal(seen.body.min_p, 0.05);
    assert.deepEqual(seen.body.stop_token_ids, [7, 9]);
    assert.equal(seen.body.repetition_penalty, undefined, "unset fields are not sent");
  });

  it("sends the URL's key as a bearer token, to that upstream only, and logs it nowhere", async () => {
    await client.generate({ model: "echo", prompt: "key", maxTokens: 2 });
    assert.equal(lastRequest(upstream, "echo").authorization, `Bearer ${secret}`);
    await codeOf(client.generate({ model: "fail-500", prompt: "key", maxTokens: 2 }));
    assert.equal(lastRequest(upstream, "fail-500").authorization, undefined);
    assert.ok(gateway.logs.length > 0);
    assert.doesNotMatch(JSON.stringify(gateway.logs), new RegExp(secret));
  });

  it("keeps connections to the upstream alive between calls", async () => {
    await client.generate({ model: "echo", prompt: "warm", maxTokens: 2 });
    const before = upstream.connections();
    for (let i = 0; i < 4; i++)
      await client.generate({ model: "echo", prompt: "again", maxTokens: 2 });
    assert.equal(upstream.connections(), before, "four calls, no new connection");
  });

  it("closes the upstream request when the client cancels its stream", async () => {
    const abort = new AbortController();
    const stream = createClient(InferenceService, transports.grpc).generateStream(
      { model: "slow", prompt: "a long story" },
      { signal: abort.signal },
    );
    let texts = 0;
    await assert.rejects(async () => {
      for await (const message of stream) {
        if (message.text !== "" && ++texts === 3) abort.abort();
      }
    });
    const seen = lastRequest(upstream, "slow");
    await upstream.ended(seen);
    assert.equal(seen.ending, "closed");
  });

  it("ends a call past its deadline with deadline_exceeded and closes the upstream request", async () => {
    const error = await codeOf(
      client.generate({ model: "stall", prompt: "wait", maxTokens: 50 }, { timeoutMs: 300 }),
    );
    assert.equal(error.code, Code.DeadlineExceeded);
    const seen = lastRequest(upstream, "stall");
    await upstream.ended(seen);
    assert.equal(seen.ending, "closed");
  });

  it("fails with deadline_exceeded when the upstream sends nothing for the upstream timeout", async () => {
    const error = await codeOf(
      createClient(InferenceService, transports.grpc).generate({
        model: "stall-headers",
        prompt: "wait",
      }),
    );
    assert.equal(error.code, Code.DeadlineExceeded);
    assert.match(error.rawMessage, new RegExp(`sent nothing for ${upstreamTimeoutMs} ms`));
    const seen = lastRequest(upstream, "stall-headers");
    await upstream.ended(seen);
    assert.equal(seen.ending, "closed");
  });

  for (const [model, code, message] of [
    ["fail-429", Code.ResourceExhausted, /at capacity: retry later: too many requests/],
    ["fail-500", Code.Unavailable, /failed \(HTTP 500\): retry later/],
    ["bad-request", Code.InvalidArgument, /rejected the request: This model's maximum context/],
    ["fail-401", Code.Internal, /^internal error$/],
    ["gone", Code.Unavailable, /cannot be reached: retry later/],
    ["break", Code.Unavailable, /ended the stream before the generation finished/],
  ] as const) {
    it(`maps ${model} to ${Code[code]} on unary and streaming calls`, async () => {
      const request = { model, prompt: "x", maxTokens: 3 };
      const unary = await codeOf(client.generate(request));
      assert.equal(unary.code, code, unary.message);
      assert.match(unary.rawMessage, message);
      const streamed = await codeOf(
        (async () => {
          for await (const _ of createClient(InferenceService, transports.grpc).generateStream(
            request,
          )) {
            // drain
          }
        })(),
      );
      assert.equal(streamed.code, code, streamed.message);
    });
  }

  it("refuses logprobs for an upstream model with unimplemented rather than dropping them", async () => {
    const error = await codeOf(
      client.generate({ model: "echo", prompt: "x", maxTokens: 2, logprobs: true, topLogprobs: 2 }),
    );
    assert.equal(error.code, Code.Unimplemented);
    assert.match(error.rawMessage, /log probabilities are not forwarded/);
  });

  it("answers Tokenize and Detokenize for an upstream model with unimplemented", async () => {
    const tokenize = await codeOf(client.tokenize({ model: "echo", text: "hi" }));
    assert.equal(tokenize.code, Code.Unimplemented);
    assert.match(tokenize.rawMessage, /no tokenizer endpoint/);
    const detokenize = await codeOf(client.detokenize({ model: "echo", tokenIds: [1, 2] }));
    assert.equal(detokenize.code, Code.Unimplemented);
  });

  it("counts upstream generations in the engine's metrics", async () => {
    const text = await (await fetch(`${gateway.base}/metrics`)).text();
    const match = /^parley_generations_total\{model="echo",finish_reason="length"\} (\d+)$/m.exec(
      text,
    );
    assert.ok(match && Number(match[1]) >= 3, "finished echo generations are counted");
    assert.match(text, /^parley_request_generation_tokens_count\{model="echo"\} [1-9]/m);
    assert.match(
      text,
      /^parley_generations_total\{model="fail-500",finish_reason="error"\} [1-9]/m,
    );
  });
});
