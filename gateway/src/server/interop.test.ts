/**
 * @module Interoperability on the real engine and the built-in model: one greedy request gives
 * the same text over every protocol and client (curl over HTTP/1.1, h2c and TLS; buf curl with
 * Connect, gRPC and gRPC-Web; connect-node; @grpc/grpc-js; Python grpcio), and that text is the
 * one the engine generates with no server in between. Streams deliver more than one message.
 */

import assert from "node:assert/strict";
import { mkdtemp, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { Code, ConnectError, createClient } from "@connectrpc/connect";
import { createConnectTransport, createGrpcTransport } from "@connectrpc/connect-node";
import * as grpc from "@grpc/grpc-js";
import * as protoLoader from "@grpc/proto-loader";
import { FinishReason, InferenceService } from "@parley/gen/inference/v1/inference_pb";
import { createEngine } from "../engine/create-engine.js";
import type { Engine, GenerationRequest } from "../engine/engine.js";
import { resolveModelSource } from "../models/resolve-model-source.js";
import { createLogger } from "../observability/logger.js";
import { createMetricsRegistry } from "../observability/metrics-registry.js";
import { findLongGeneration } from "../testing/find-long-generation.js";
import { repoRoot } from "../testing/model-fixtures.js";
import { parseJsonStream } from "../testing/parse-json-stream.js";
import { bufBin, runCommand } from "../testing/run-command.js";
import { type CertificateFiles, createSelfSignedCert } from "../testing/self-signed-cert.js";
import { createGatewayServer, type GatewayServer } from "./create-gateway-server.js";

const prompt = "Once upon a time";
const maxTokens = 24;
/** The request every client sends, in proto JSON. */
const requestJson = JSON.stringify({ prompt, maxTokens, temperature: 0 });

interface StreamMessage {
  text?: string;
  tokenIds?: number[];
  model?: string;
  finishReason?: string;
  usage?: { promptTokens?: number; completionTokens?: number };
}

/** Checks a stream's shape and returns its text. */
function streamText(messages: readonly StreamMessage[], modelId: string): string {
  assert.ok(messages.length > 2, `more than one message before the end (got ${messages.length})`);
  const [first, ...rest] = messages;
  assert.equal(first?.model, modelId, "the first message names the model");
  assert.equal(first?.text ?? "", "", "the first message carries no text");
  const last = rest.at(-1);
  assert.ok(last?.finishReason !== undefined && last.finishReason !== "FINISH_REASON_UNSPECIFIED");
  assert.equal(last?.usage?.completionTokens, maxTokens);
  for (const message of rest.slice(0, -1)) {
    assert.equal(message.finishReason ?? "FINISH_REASON_UNSPECIFIED", "FINISH_REASON_UNSPECIFIED");
  }
  const tokenCount = rest.reduce((n, m) => n + (m.tokenIds?.length ?? 0), 0);
  assert.equal(tokenCount, maxTokens, "every generated token id is delivered once");
  return rest.map((m) => m.text ?? "").join("");
}

describe("interop on the real engine", () => {
  let engine: Engine;
  let server: GatewayServer;
  let base: string;
  let port: number;
  let cert: CertificateFiles;
  let modelId: string;
  /** What the engine generates for the request with no server in between. */
  let expected: string;

  before(async () => {
    const source = await resolveModelSource("builtin", { offline: true, progress: false });
    const metrics = createMetricsRegistry();
    const logger = createLogger({ level: "silent" });
    engine = await createEngine({ models: [source], metrics, logger });
    modelId = source.id;
    const request: GenerationRequest = {
      model: "",
      input: { kind: "text", text: prompt },
      maxTokens,
      sampling: { temperature: 0 },
      stop: [],
    };
    expected = "";
    for await (const event of engine.generate(request, new AbortController().signal)) {
      expected += event.text;
    }
    assert.ok(expected.length > 0, "the model generates text");
    cert = await createSelfSignedCert();
    server = createGatewayServer({
      engine,
      metrics,
      logger,
      config: {
        port: 0,
        host: "127.0.0.1",
        tls: cert,
        corsOrigins: [],
        maxRequestBytes: 1 << 20,
        maxTimeoutMs: 60_000,
        webRoot: join(tmpdir(), "parley-no-web-client-here"),
      },
    });
    ({ port } = await server.listen());
    base = `http://127.0.0.1:${port}`;
  });

  after(async () => {
    await server?.close(1_000);
    await engine?.close(1_000);
  });

  describe("Generate (unary)", () => {
    for (const [name, options] of [
      ["curl, Connect JSON over HTTP/1.1", () => ({ url: base, flags: [] })],
      ["curl, Connect JSON over h2c", () => ({ url: base, flags: ["--http2-prior-knowledge"] })],
      [
        "curl, Connect JSON over TLS h2",
        () => ({ url: `https://127.0.0.1:${port}`, flags: ["--http2", "--cacert", cert.certFile] }),
      ],
      [
        "curl, Connect JSON over TLS HTTP/1.1",
        () => ({
          url: `https://127.0.0.1:${port}`,
          flags: ["--http1.1", "--cacert", cert.certFile],
        }),
      ],
    ] as const) {
      it(name, async () => {
        const { url, flags } = options();
        const result = await runCommand("curl", [
          "-sS",
          "--fail-with-body",
          ...flags,
          "-H",
          "Content-Type: application/json",
          "--data-binary",
          requestJson,
          `${url}/inference.v1.InferenceService/Generate`,
        ]);
        assert.equal(result.code, 0, result.stderr + result.stdout);
        const response = JSON.parse(result.stdout) as StreamMessage;
        assert.equal(response.model, modelId);
        assert.equal(response.text, expected);
        assert.equal(response.finishReason, "FINISH_REASON_LENGTH");
        assert.equal(response.usage?.completionTokens, maxTokens);
      });
    }

    for (const [protocol, flags] of [
      ["connect", []],
      ["grpc", ["--http2-prior-knowledge"]],
      ["grpcweb", []],
    ] as const) {
      it(`buf curl --protocol ${protocol}`, async () => {
        const result = await runCommand(bufBin, [
          "curl",
          "--protocol",
          protocol,
          ...flags,
          "--schema",
          join(repoRoot, "proto"),
          "-d",
          requestJson,
          `${base}/inference.v1.InferenceService/Generate`,
        ]);
        assert.equal(result.code, 0, result.stderr);
        const [response] = parseJsonStream<StreamMessage>(result.stdout);
        assert.equal(response?.text, expected);
        assert.equal(response?.model, modelId);
      });
    }
  });

  describe("GenerateStream", () => {
    for (const [protocol, flags, transport] of [
      ["connect", [], "HTTP/1.1"],
      ["grpcweb", [], "HTTP/1.1"],
      ["connect", ["--http2-prior-knowledge"], "h2c"],
      ["grpcweb", ["--http2-prior-knowledge"], "h2c"],
      ["grpc", ["--http2-prior-knowledge"], "h2c"],
    ] as const) {
      it(`buf curl --protocol ${protocol} over ${transport}`, async () => {
        const result = await runCommand(bufBin, [
          "curl",
          "--protocol",
          protocol,
          ...flags,
          "-d",
          requestJson,
          `${base}/inference.v1.InferenceService/GenerateStream`,
        ]);
        assert.equal(result.code, 0, result.stderr);
        assert.equal(streamText(parseJsonStream<StreamMessage>(result.stdout), modelId), expected);
      });
    }

    it("buf curl --protocol grpc over TLS", async () => {
      const result = await runCommand(bufBin, [
        "curl",
        "--protocol",
        "grpc",
        "--cacert",
        cert.certFile,
        "-d",
        requestJson,
        `https://127.0.0.1:${port}/inference.v1.InferenceService/GenerateStream`,
      ]);
      assert.equal(result.code, 0, result.stderr);
      assert.equal(streamText(parseJsonStream<StreamMessage>(result.stdout), modelId), expected);
    });

    it("connect-node over HTTP/1.1 (Connect) and HTTP/2 (gRPC)", async () => {
      for (const transport of [
        createConnectTransport({ baseUrl: base, httpVersion: "1.1" }),
        createGrpcTransport({ baseUrl: base }),
      ]) {
        const client = createClient(InferenceService, transport);
        const messages: StreamMessage[] = [];
        for await (const message of client.generateStream({ prompt, maxTokens, temperature: 0 })) {
          messages.push({
            text: message.text,
            tokenIds: message.tokenIds,
            model: message.model,
            finishReason:
              FinishReason[message.finishReason] === "UNSPECIFIED"
                ? undefined
                : `FINISH_REASON_${FinishReason[message.finishReason]}`,
            usage: message.usage,
          });
        }
        assert.equal(streamText(messages, modelId), expected);
        const unary = await client.generate({ prompt, maxTokens, temperature: 0 });
        assert.equal(unary.text, expected);
      }
    });

    it("stops generating when the client cancels, and reports it", async () => {
      const client = createClient(InferenceService, createGrpcTransport({ baseUrl: base }));
      // A sampled generation long enough to be cut off.
      const long = await findLongGeneration(client, prompt);
      assert.ok(long, "one of seeds 1..10 generates 200 tokens or more");
      const metric = async (name: string) => {
        const text = await (await fetch(`${base}/metrics`)).text();
        return text
          .split("\n")
          .filter((line) => line.startsWith(name))
          .reduce((sum, line) => sum + Number(line.slice(line.lastIndexOf(" ") + 1)), 0);
      };
      const tokensBefore = await metric("parley_completion_tokens_total");

      const controller = new AbortController();
      let received = 0;
      const error = await (async () => {
        for await (const _ of client.generateStream(long.request, { signal: controller.signal })) {
          if (++received === 3) controller.abort();
        }
      })().catch((e: unknown) => ConnectError.from(e));
      assert.ok(error instanceof ConnectError);
      assert.equal(error.code, Code.Canceled);

      for (let i = 0; i < 100; i++) {
        const busy =
          (await metric("parley_rpc_streams_in_flight{")) +
          (await metric("parley_generations_in_flight{"));
        if (busy === 0) break;
        await new Promise((resolve) => setTimeout(resolve, 50));
      }
      assert.equal(
        await metric(
          'parley_rpc_requests_total{protocol="grpc",method="inference.v1.InferenceService/GenerateStream",code="canceled"}',
        ),
        1,
        "the server saw the call cancelled",
      );
      const generated = (await metric("parley_completion_tokens_total")) - tokensBefore;
      assert.ok(
        generated < long.tokens,
        `the engine stopped early: ${generated} of ${long.tokens} tokens`,
      );
    });
  });

  describe("engine errors on the wire", () => {
    it("an unknown model -> not_found; a prompt longer than the context -> invalid_argument", async () => {
      const client = createClient(InferenceService, createGrpcTransport({ baseUrl: base }));
      const unknown = await client
        .generate({ prompt, model: "no-such-model" })
        .catch((e: unknown) => ConnectError.from(e));
      assert.ok(unknown instanceof ConnectError);
      assert.equal(unknown.code, Code.NotFound);
      assert.match(unknown.rawMessage, /no-such-model/);

      // Found only once the prompt is tokenized: the stream is already open (its first message
      // arrived), so the error comes as the stream's status.
      const long = "lorem ipsum dolor sit amet ".repeat(2_000);
      const messages: unknown[] = [];
      const tooLong = await (async () => {
        for await (const message of client.generateStream({ prompt: long, maxTokens: 4 })) {
          messages.push(message);
        }
      })().catch((e: unknown) => ConnectError.from(e));
      assert.ok(tooLong instanceof ConnectError);
      assert.equal(tooLong.code, Code.InvalidArgument, tooLong.message);
      assert.equal(messages.length, 1);
    });
  });

  describe("@grpc/grpc-js with @grpc/proto-loader", () => {
    interface GrpcJsClient extends grpc.Client {
      Generate(
        request: object,
        callback: (error: grpc.ServiceError | null, response: StreamMessage) => void,
      ): void;
      GenerateStream(request: object): grpc.ClientReadableStream<StreamMessage>;
      ListModels(
        request: object,
        callback: (error: grpc.ServiceError | null, response: { models: { id: string }[] }) => void,
      ): void;
    }
    let client: GrpcJsClient;

    before(async () => {
      const definition = await protoLoader.load("inference/v1/inference.proto", {
        includeDirs: [join(repoRoot, "proto")],
        enums: String,
        longs: String,
        defaults: false,
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

    // proto-loader camel-cases field names (keepCase: false), as protobuf-es does.
    const request = { prompt, maxTokens, temperature: 0 };

    it("Generate", async () => {
      const response = await new Promise<StreamMessage>((resolve, reject) =>
        client.Generate(request, (error, value) => (error ? reject(error) : resolve(value))),
      );
      assert.equal(response.text, expected);
      assert.equal(response.finishReason, "FINISH_REASON_LENGTH");
    });

    it("GenerateStream", async () => {
      const messages: StreamMessage[] = [];
      for await (const message of client.GenerateStream(request)) {
        messages.push(message as StreamMessage);
      }
      assert.equal(streamText(messages, modelId), expected);
    });

    it("ListModels", async () => {
      const response = await new Promise<{ models: { id: string }[] }>((resolve, reject) =>
        client.ListModels({}, (error, value) => (error ? reject(error) : resolve(value))),
      );
      assert.deepEqual(
        response.models.map((m) => m.id),
        [modelId],
      );
    });

    it("gets the gRPC status of a bad request", async () => {
      const error = await new Promise<grpc.ServiceError>((resolve, reject) =>
        client.Generate({ prompt, temperature: 9 }, (e) =>
          e ? resolve(e) : reject(new Error("no error")),
        ),
      );
      assert.equal(error.code, grpc.status.INVALID_ARGUMENT);
      assert.match(error.details, /temperature/);
    });
  });

  it("Python grpcio calls Generate, GenerateStream and ListModels", async () => {
    // Debian's python3-grpc-tools (1.14) bundles protoc 3.5, which rejects proto3 `optional`, so
    // its codegen cannot read inference.proto. buf compiles proto/ into a FileDescriptorSet
    // instead, and the script builds its message classes from it with the protobuf runtime:
    // the same messages, called through grpcio's generic stubs.
    const out = await mkdtemp(join(tmpdir(), "parley-py-"));
    const descriptors = join(out, "inference.binpb");
    const built = await runCommand(
      bufBin,
      ["build", "--as-file-descriptor-set", "--path", "proto/inference", "-o", descriptors],
      { cwd: repoRoot },
    );
    assert.equal(built.code, 0, built.stderr);
    const script = join(out, "call.py");
    await writeFile(
      script,
      `import json, sys
import grpc
from google.protobuf import descriptor_pb2, descriptor_pool, message_factory

pool = descriptor_pool.DescriptorPool()
with open(sys.argv[2], "rb") as f:
    for file in descriptor_pb2.FileDescriptorSet.FromString(f.read()).file:
        pool.Add(file)
factory = message_factory.MessageFactory(pool)
def message(name):
    return factory.GetPrototype(pool.FindMessageTypeByName("inference.v1." + name))
finish_reason = pool.FindEnumTypeByName("inference.v1.FinishReason").values_by_number

channel = grpc.insecure_channel(sys.argv[1])
def method(kind, name, request, response):
    return getattr(channel, kind)("/inference.v1.InferenceService/" + name,
        request_serializer=message(request).SerializeToString,
        response_deserializer=message(response).FromString)
generate = method("unary_unary", "Generate", "GenerateRequest", "GenerateResponse")
generate_stream = method("unary_stream", "GenerateStream", "GenerateStreamRequest", "GenerateStreamResponse")
list_models = method("unary_unary", "ListModels", "ListModelsRequest", "ListModelsResponse")

fields = dict(prompt=${JSON.stringify(prompt)}, max_tokens=${maxTokens}, temperature=0)
unary = generate(message("GenerateRequest")(**fields), timeout=60)
stream = []
for m in generate_stream(message("GenerateStreamRequest")(**fields), timeout=60):
    item = {"text": m.text, "tokenIds": list(m.token_ids), "model": m.model}
    if m.finish_reason != 0:
        item["finishReason"] = finish_reason[m.finish_reason].name
        item["usage"] = {"completionTokens": m.usage.completion_tokens}
    stream.append(item)
models = [m.id for m in list_models(message("ListModelsRequest")(), timeout=60).models]
try:
    generate(message("GenerateRequest")(), timeout=60)
    empty = "OK"
except grpc.RpcError as e:
    empty = e.code().name
print(json.dumps({"unary": unary.text, "stream": stream, "models": models, "empty": empty}))
`,
    );
    const result = await runCommand("/usr/bin/python3", [script, `127.0.0.1:${port}`, descriptors]);
    assert.equal(result.code, 0, result.stderr);
    const answer = JSON.parse(result.stdout) as {
      unary: string;
      stream: StreamMessage[];
      models: string[];
      empty: string;
    };
    assert.equal(answer.unary, expected);
    assert.equal(streamText(answer.stream, modelId), expected);
    assert.deepEqual(answer.models, [modelId]);
    assert.equal(answer.empty, "INVALID_ARGUMENT");
  });
});
