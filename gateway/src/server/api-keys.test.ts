/**
 * @module API keys on a real server with the built-in model, through real clients on every
 * protocol: @grpc/grpc-js (the direct gRPC path), connect-node's gRPC-Web and Connect transports
 * (the fast paths, and the router for compressed requests), and the `openai` SDK on `/v1`. A
 * missing key and a wrong key get the same `unauthenticated`; health, the web client's files and
 * `/metrics` stay open; usage is counted by key name; keys never reach the logs.
 */
import assert from "node:assert/strict";
import { mkdtemp, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Writable } from "node:stream";
import { after, before, describe, it } from "node:test";
import { Code, ConnectError, createClient, type Transport } from "@connectrpc/connect";
import {
  compressionGzip,
  createConnectTransport,
  createGrpcTransport,
  createGrpcWebTransport,
} from "@connectrpc/connect-node";
import * as grpc from "@grpc/grpc-js";
import * as protoLoader from "@grpc/proto-loader";
import { Health, HealthCheckResponse_ServingStatus } from "@parley/gen/grpc/health/v1/health_pb";
import { InferenceService } from "@parley/gen/inference/v1/inference_pb";
import OpenAI from "openai";
import { pino } from "pino";
import { createEngine } from "../engine/create-engine.js";
import type { Engine } from "../engine/engine.js";
import { type ApiKeyGuard, createApiKeyGuard } from "../http/api-keys.js";
import { resolveModelSource } from "../models/resolve-model-source.js";
import { createMetricsRegistry } from "../observability/metrics-registry.js";
import { metricValue, repoRoot } from "../testing/model-fixtures.js";
import { createGatewayServer, type GatewayServer } from "./create-gateway-server.js";

const ciKey = "ci-0123456789abcdef";
const appKey = "app~key+/9876543210=";
const wrongKey = "not-a-key-anyone-has";
const request = { prompt: "Once upon a time", maxTokens: 4, temperature: 0 };

describe("API keys", () => {
  let engine: Engine;
  let server: GatewayServer;
  let guard: ApiKeyGuard;
  let base: string;
  let port: number;
  const metrics = createMetricsRegistry();
  const logLines: string[] = [];
  let webRoot: string;

  before(async () => {
    const source = await resolveModelSource("builtin", { offline: true, progress: false });
    const logger = pino(
      { level: "debug" },
      new Writable({
        write(chunk: Buffer, _encoding, done) {
          logLines.push(chunk.toString("utf8"));
          done();
        },
      }),
    );
    engine = await createEngine({ models: [source], metrics, logger });
    guard = createApiKeyGuard({
      keys: [
        { name: "ci", key: ciKey },
        { name: "app", key: appKey },
      ],
      protectMetrics: false,
      registry: metrics,
    });
    webRoot = await mkdtemp(join(tmpdir(), "parley-web-"));
    await writeFile(join(webRoot, "index.html"), "<!doctype html><title>chat</title>");
    server = createGatewayServer({
      engine,
      metrics,
      logger,
      apiKeys: guard,
      config: {
        port: 0,
        host: "127.0.0.1",
        tls: undefined,
        corsOrigins: [],
        maxRequestBytes: 1 << 20,
        maxTimeoutMs: 60_000,
        webRoot,
      },
    });
    ({ port } = await server.listen());
    base = `http://127.0.0.1:${port}`;
  });

  after(async () => {
    await server?.close(1_000);
    await engine?.close(1_000);
  });

  /** Connect-es transports for each protocol path, sending `key` (or none) as the bearer token. */
  const transports = (key: string | undefined): [string, Transport][] => {
    const interceptors =
      key === undefined
        ? []
        : [
            ((next) => async (req) => {
              req.header.set("Authorization", `Bearer ${key}`);
              return next(req);
            }) satisfies import("@connectrpc/connect").Interceptor,
          ];
    return [
      [
        "Connect JSON, HTTP/1.1 (fast paths)",
        createConnectTransport({
          baseUrl: base,
          httpVersion: "1.1",
          useBinaryFormat: false,
          interceptors,
        }),
      ],
      [
        "Connect binary, h2c (fast paths)",
        createConnectTransport({ baseUrl: base, httpVersion: "2", interceptors }),
      ],
      [
        "Connect gzip (connect-node's router)",
        createConnectTransport({
          baseUrl: base,
          httpVersion: "1.1",
          sendCompression: compressionGzip,
          compressMinBytes: 0,
          interceptors,
        }),
      ],
      [
        "gRPC-Web, HTTP/1.1",
        createGrpcWebTransport({ baseUrl: base, httpVersion: "1.1", interceptors }),
      ],
      ["gRPC (connect-node), h2c", createGrpcTransport({ baseUrl: base, interceptors })],
    ];
  };

  for (const [name, key] of [
    ["no key", undefined],
    ["a wrong key", wrongKey],
  ] as const) {
    it(`${name}: unauthenticated on every connect-es transport, unary and streaming, same message`, async () => {
      const messages = new Set<string>();
      for (const [transportName, transport] of transports(key)) {
        const client = createClient(InferenceService, transport);
        const unary = await client.generate(request).then(
          () => undefined,
          (error: unknown) => ConnectError.from(error),
        );
        assert.equal(
          unary?.code,
          Code.Unauthenticated,
          `${transportName} unary: ${unary?.message}`,
        );
        const stream = await (async () => {
          for await (const _ of client.generateStream(request));
        })().then(
          () => undefined,
          (error: unknown) => ConnectError.from(error),
        );
        assert.equal(
          stream?.code,
          Code.Unauthenticated,
          `${transportName} stream: ${stream?.message}`,
        );
        if (!transportName.startsWith("Connect")) messages.add(unary?.rawMessage ?? "");
      }
      assert.deepEqual(
        [...messages],
        ["a valid API key is required: send Authorization: Bearer <key>"],
      );
    });
  }

  it("the right key: every connect-es transport generates, unary and streaming", async () => {
    for (const [transportName, transport] of transports(appKey)) {
      const client = createClient(InferenceService, transport);
      const response = await client.generate(request);
      assert.equal(response.usage?.completionTokens, 4, transportName);
      let text = "";
      for await (const message of client.generateStream(request)) text += message.text;
      assert.equal(text, response.text, transportName);
    }
  });

  describe("@grpc/grpc-js (the direct gRPC path)", () => {
    interface GrpcJsClient extends grpc.Client {
      Generate(
        request: object,
        metadata: grpc.Metadata,
        callback: (error: grpc.ServiceError | null, response: { text: string }) => void,
      ): void;
    }
    let client: GrpcJsClient;
    before(async () => {
      const definition = await protoLoader.load("inference/v1/inference.proto", {
        includeDirs: [join(repoRoot, "proto")],
      });
      const loaded = grpc.loadPackageDefinition(definition) as unknown as {
        inference: {
          v1: {
            InferenceService: new (
              address: string,
              credentials: grpc.ChannelCredentials,
            ) => GrpcJsClient;
          };
        };
      };
      client = new loaded.inference.v1.InferenceService(
        `127.0.0.1:${port}`,
        grpc.credentials.createInsecure(),
      );
    });
    after(() => client.close());

    const call = (authorization: string | undefined) =>
      new Promise<{ error: grpc.ServiceError | null; text: string | undefined }>((resolve) => {
        const metadata = new grpc.Metadata();
        if (authorization !== undefined) metadata.set("authorization", authorization);
        client.Generate(request, metadata, (error, response) =>
          resolve({ error, text: response?.text }),
        );
      });

    it("metadata authorization: a valid key passes, a missing or wrong one is UNAUTHENTICATED", async () => {
      const ok = await call(`Bearer ${ciKey}`);
      assert.equal(ok.error, null);
      assert.ok((ok.text ?? "").length > 0);
      for (const authorization of [undefined, `Bearer ${wrongKey}`, ciKey, "Basic Y2k6a2V5"]) {
        const { error } = await call(authorization);
        assert.equal(error?.code, grpc.status.UNAUTHENTICATED, String(authorization));
        assert.equal(
          error?.details,
          "a valid API key is required: send Authorization: Bearer <key>",
        );
      }
    });
  });

  describe("the openai SDK on /v1", () => {
    it("401 AuthenticationError without the right key, and a completion with it", async () => {
      for (const apiKey of [wrongKey, "x"]) {
        const openai = new OpenAI({ baseURL: `${base}/v1`, apiKey, maxRetries: 0 });
        await assert.rejects(
          openai.completions.create({ model: "", ...{ prompt: request.prompt, max_tokens: 4 } }),
          (error) => {
            assert.ok(error instanceof OpenAI.AuthenticationError);
            assert.equal(error.status, 401);
            assert.equal(error.code, "invalid_api_key");
            assert.equal(error.type, "authentication_error");
            return true;
          },
        );
        await assert.rejects(openai.models.list(), OpenAI.AuthenticationError);
      }
      const openai = new OpenAI({ baseURL: `${base}/v1`, apiKey: ciKey, maxRetries: 0 });
      const completion = await openai.completions.create({
        model: "",
        prompt: request.prompt,
        max_tokens: 4,
        temperature: 0,
      });
      assert.equal(completion.usage?.completion_tokens, 4);
      const stream = await openai.chat.completions.create({
        model: "",
        messages: [{ role: "user", content: "hi" }],
        max_tokens: 4,
        stream: true,
      });
      let chunks = 0;
      for await (const _ of stream) chunks++;
      assert.ok(chunks > 1);
    });
  });

  it("health, the web client's files and /metrics stay open; usage is counted per key name", async () => {
    const health = createClient(Health, createGrpcTransport({ baseUrl: base }));
    const { status } = await health.check({ service: "" });
    assert.equal(status, HealthCheckResponse_ServingStatus.SERVING);
    const page = await fetch(`${base}/`);
    assert.equal(page.status, 200);
    assert.match(await page.text(), /<title>chat<\/title>/);
    const scrape = await fetch(`${base}/metrics`);
    assert.equal(scrape.status, 200);
    const text = await scrape.text();
    assert.match(text, /parley_api_key_requests_total\{key="ci"\} [1-9]/);
    assert.match(text, /parley_api_key_requests_total\{key="app"\} [1-9]/);
    assert.match(text, /parley_api_key_rejections_total [1-9]/);
    for (const key of [ciKey, appKey]) {
      assert.ok(!text.includes(key), "/metrics never shows a key");
      assert.ok(!logLines.some((line) => line.includes(key)), "the logs never show a key");
    }
  });

  it("replace() swaps the keys for new calls: the old key is refused, the new one accepted", async () => {
    const client = (key: string) =>
      createClient(
        InferenceService,
        createConnectTransport({
          baseUrl: base,
          httpVersion: "1.1",
          interceptors: [
            (next) => async (req) => {
              req.header.set("Authorization", `Bearer ${key}`);
              return next(req);
            },
          ],
        }),
      );
    const rotated = "rotated-key-000111222";
    guard.replace([{ name: "rotated", key: rotated }]);
    try {
      const old = await client(ciKey)
        .listModels({})
        .catch((error: unknown) => ConnectError.from(error));
      assert.ok(old instanceof ConnectError && old.code === Code.Unauthenticated);
      const fresh = await client(rotated).listModels({});
      assert.equal(fresh.models.length, 1);
      assert.equal(
        await metricValue(metrics, "parley_api_key_requests_total", { key: "rotated" }),
        1,
      );
    } finally {
      guard.replace([
        { name: "ci", key: ciKey },
        { name: "app", key: appKey },
      ]);
    }
  });
});

describe("API keys with --protect-metrics", () => {
  it("/metrics needs a key; health stays open", async () => {
    const metrics = createMetricsRegistry();
    const logger = pino({ level: "silent" });
    const engine: Engine = {
      models: () => [],
      readyModels: () => ["m"],
      onReadinessChange: () => () => {},
      generate: () => {
        throw new Error("not used");
      },
      tokenize: () => Promise.reject(new Error("not used")),
      detokenize: () => Promise.reject(new Error("not used")),
      close: async () => {},
    };
    const server = createGatewayServer({
      engine,
      metrics,
      logger,
      apiKeys: createApiKeyGuard({
        keys: [{ name: "ops", key: ciKey }],
        protectMetrics: true,
        registry: metrics,
      }),
      config: {
        port: 0,
        host: "127.0.0.1",
        tls: undefined,
        corsOrigins: [],
        maxRequestBytes: 1 << 20,
        maxTimeoutMs: 60_000,
        webRoot: tmpdir(),
      },
    });
    const { port } = await server.listen();
    try {
      const base = `http://127.0.0.1:${port}`;
      const refused = await fetch(`${base}/metrics`);
      assert.equal(refused.status, 401);
      assert.equal(refused.headers.get("www-authenticate"), "Bearer");
      const allowed = await fetch(`${base}/metrics`, {
        headers: { authorization: `Bearer ${ciKey}` },
      });
      assert.equal(allowed.status, 200);
      assert.match(await allowed.text(), /parley_api_key_requests_total\{key="ops"\} 1/);
      const health = createClient(
        Health,
        createConnectTransport({ baseUrl: base, httpVersion: "1.1" }),
      );
      assert.equal(
        (await health.check({ service: "" })).status,
        HealthCheckResponse_ServingStatus.SERVING,
      );
    } finally {
      await server.close(1_000);
    }
  });
});
