/**
 * @module End-to-end tests of the gateway's HTTP side on a real socket, with real clients (curl,
 * buf curl, connect-node). The engine here is a small in-test object that never produces text:
 * it serves ListModels and the error paths (unknown model, full queue, a crash, a stall until
 * the deadline). Everything that generates text is in interop.test.ts, on the real engine.
 */

import assert from "node:assert/strict";
import { once } from "node:events";
import { mkdir, mkdtemp, writeFile } from "node:fs/promises";
import { connect as connectTcp } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { fromBinary } from "@bufbuild/protobuf";
import { FileDescriptorProtoSchema } from "@bufbuild/protobuf/wkt";
import { Code, ConnectError, createClient } from "@connectrpc/connect";
import {
  createConnectTransport,
  createGrpcTransport,
  createGrpcWebTransport,
} from "@connectrpc/connect-node";
import { Health, HealthCheckResponse_ServingStatus } from "@parley/gen/grpc/health/v1/health_pb";
import {
  ServerReflection,
  type ServerReflectionResponse,
} from "@parley/gen/grpc/reflection/v1/reflection_pb";
import { ServerReflection as ServerReflectionV1alpha } from "@parley/gen/grpc/reflection/v1alpha/reflection_pb";
import { InferenceService } from "@parley/gen/inference/v1/inference_pb";
import type { Engine, Generation, ModelDescription } from "../engine/engine.js";
import { EngineError } from "../engine/engine-error.js";
import { sniffProtocol } from "../http/create-sniffing-listener.js";
import { createLogger } from "../observability/logger.js";
import { createMetricsRegistry } from "../observability/metrics-registry.js";
import { repoRoot } from "../testing/model-fixtures.js";
import { parseJsonStream } from "../testing/parse-json-stream.js";
import { bufBin, runCommand } from "../testing/run-command.js";
import { type CertificateFiles, createSelfSignedCert } from "../testing/self-signed-cert.js";
import {
  createGatewayServer,
  type GatewayServer,
  type GatewayServerConfig,
} from "./create-gateway-server.js";

const models: ModelDescription[] = [
  {
    id: "first",
    contextLength: 256,
    hasChatTemplate: true,
    isDefault: true,
    description: "the default model of the in-test engine",
    vocabSize: 300,
    dtype: "float32",
  },
  {
    id: "second",
    contextLength: 128,
    hasChatTemplate: false,
    isDefault: false,
    description: "another model",
    vocabSize: 300,
    dtype: "float16",
  },
];

/** Model ids the in-test engine answers with a failure; it never generates text. */
const failing = {
  missing: () => {
    throw new EngineError("not_found", 'model "missing" is not loaded');
  },
  full: () => {
    throw new EngineError("resource_exhausted", 'the queue of model "full" is full');
  },
  closed: () => {
    throw new EngineError("unavailable", "the engine is shutting down");
  },
};

/** Implements the Engine interface for ListModels and error paths only. */
function createErrorPathEngine(): Engine {
  /** A generation whose first step fails with what `fail` throws. */
  const failingGeneration = (model: string, fail: () => Promise<never>): Generation => ({
    model,
    [Symbol.asyncIterator]: () => ({ next: fail }),
  });
  return {
    models: () => models,
    readyModels: () => models.map((m) => m.id),
    onReadinessChange: () => () => {},
    generate(request, signal) {
      switch (request.model) {
        case "missing":
        case "full":
        case "closed":
          return failing[request.model]();
        case "crash":
          return failingGeneration("crash", async () => {
            throw new EngineError("internal", "worker 3 died: secret-detail-42");
          });
        case "stall":
          // Holds the call open until it is aborted, then fails the way the engine does.
          return failingGeneration("stall", async () => {
            if (!signal.aborted) {
              await once(signal, "abort");
            }
            throw new EngineError("cancelled", "generation stopped");
          });
        default:
          throw new EngineError("not_found", `model "${request.model}" is not loaded`);
      }
    },
    // Tokenization fails as generation does for the failing models, and is not found otherwise.
    tokenize: async (request) => refuse(request.model),
    detokenize: async (request) => refuse(request.model),
    close: async () => {},
  };
}

function refuse(model: string): never {
  if (model === "missing" || model === "full" || model === "closed") return failing[model]();
  throw new EngineError("not_found", `model "${model}" is not loaded`);
}

interface TestServer {
  readonly server: GatewayServer;
  readonly port: number;
  readonly base: string;
  readonly logs: Record<string, unknown>[];
}

async function startServer(config: Partial<GatewayServerConfig> = {}): Promise<TestServer> {
  const logs: Record<string, unknown>[] = [];
  const server = createGatewayServer({
    engine: createErrorPathEngine(),
    metrics: createMetricsRegistry(),
    logger: createLogger({
      level: "debug",
      destination: { write: (line: string) => logs.push(JSON.parse(line)) },
    }),
    config: {
      port: 0,
      host: "127.0.0.1",
      tls: undefined,
      corsOrigins: [],
      maxRequestBytes: 64 * 1024,
      maxTimeoutMs: 60_000,
      webRoot: join(tmpdir(), "parley-no-web-client-here"),
      ...config,
    },
  });
  const { port } = await server.listen();
  return { server, port, base: `http://127.0.0.1:${port}`, logs };
}

/** curl with a status line appended: `<body>\n<http code> <http version>`. */
async function curl(args: readonly string[], input?: string) {
  const result = await runCommand(
    "curl",
    ["-sS", "-w", "\n%{http_code} %{http_version}", ...args],
    input === undefined ? {} : { input },
  );
  assert.equal(result.code, 0, `curl failed: ${result.stderr}`);
  const end = result.stdout.lastIndexOf("\n");
  const [status, version] = result.stdout.slice(end + 1).split(" ");
  return { body: result.stdout.slice(0, end), status: Number(status), version };
}

/** A Connect unary JSON call with curl. */
function curlConnect(base: string, method: string, body: string, extra: readonly string[] = []) {
  return curl(
    [
      "-X",
      "POST",
      "-H",
      "Content-Type: application/json",
      ...extra,
      "--data-binary",
      "@-",
      `${base}/inference.v1.InferenceService/${method}`,
    ],
    body,
  );
}

/** buf curl; returns the parsed JSON output or error. */
async function bufCurl(args: readonly string[], input?: string) {
  const result = await runCommand(bufBin, ["curl", ...args], input === undefined ? {} : { input });
  return { ...result, json: result.code === 0 ? parseJsonStream(result.stdout) : [] };
}

function bufErrorCode(stderr: string): string | undefined {
  const [error] = parseJsonStream(stderr) as { code?: string }[];
  return error?.code;
}

async function makeWebRoot(): Promise<string> {
  const parent = await mkdtemp(join(tmpdir(), "parley-web-"));
  const root = join(parent, "dist");
  await mkdir(join(root, "assets"), { recursive: true });
  await writeFile(join(root, "index.html"), "<!doctype html><title>Parley test page</title>\n");
  await writeFile(join(root, "assets", "index-Ab12Cd34.js"), "console.log('parley');\n");
  await writeFile(join(parent, "secret.txt"), "outside the web root\n");
  return root;
}

const listModelsJson = (body: string) =>
  (JSON.parse(body) as { models: { id: string }[] }).models.map((m) => m.id);

describe("createGatewayServer", () => {
  let main: TestServer;
  let cert: CertificateFiles;
  let webRoot: string;

  before(async () => {
    cert = await createSelfSignedCert();
    webRoot = await makeWebRoot();
    main = await startServer({ tls: cert, corsOrigins: ["https://app.example"], webRoot });
  });
  after(() => main.server.close(1_000));

  describe("one port, three transports", () => {
    it("serves Connect JSON unary over HTTP/1.1 to curl", async () => {
      const response = await curlConnect(main.base, "ListModels", "{}");
      assert.equal(response.status, 200);
      assert.equal(response.version, "1.1");
      assert.deepEqual(listModelsJson(response.body), ["first", "second"]);
    });

    it("serves Connect JSON unary over cleartext HTTP/2 (prior knowledge) to curl", async () => {
      const response = await curlConnect(main.base, "ListModels", "{}", [
        "--http2-prior-knowledge",
      ]);
      assert.equal(response.status, 200);
      assert.equal(response.version, "2");
      assert.deepEqual(listModelsJson(response.body), ["first", "second"]);
    });

    it("serves TLS with ALPN h2 and http/1.1 on the same port", async () => {
      const https = `https://127.0.0.1:${main.port}`;
      for (const [flag, version] of [
        ["--http2", "2"],
        ["--http1.1", "1.1"],
      ] as const) {
        const response = await curlConnect(https, "ListModels", "{}", [
          "--cacert",
          cert.certFile,
          flag,
        ]);
        assert.equal(response.status, 200);
        assert.equal(response.version, version);
        assert.deepEqual(listModelsJson(response.body), ["first", "second"]);
      }
    });

    it("serves gRPC over TLS to buf curl", async () => {
      const result = await bufCurl([
        "--protocol",
        "grpc",
        "--cacert",
        cert.certFile,
        `https://127.0.0.1:${main.port}/inference.v1.InferenceService/ListModels`,
      ]);
      assert.equal(result.code, 0, result.stderr);
      assert.equal((result.json[0] as { models: unknown[] }).models.length, 2);
    });

    for (const [protocol, flags] of [
      ["grpc", ["--http2-prior-knowledge"]],
      ["grpcweb", []],
      ["grpcweb", ["--http2-prior-knowledge"]],
      ["connect", []],
      ["connect", ["--http2-prior-knowledge"]],
    ] as const) {
      it(`serves ${protocol} ${flags.length > 0 ? "over h2c" : "over HTTP/1.1"} to buf curl (reflection and --schema)`, async () => {
        for (const schema of [[], ["--schema", join(repoRoot, "proto")]]) {
          const result = await bufCurl([
            "--protocol",
            protocol,
            ...flags,
            ...schema,
            `${main.base}/inference.v1.InferenceService/ListModels`,
          ]);
          assert.equal(result.code, 0, result.stderr);
          const [response] = result.json as { models: { id: string; isDefault?: boolean }[] }[];
          assert.deepEqual(
            response?.models.map((m) => [m.id, m.isDefault ?? false]),
            [
              ["first", true],
              ["second", false],
            ],
          );
        }
      });
    }

    it("routes an HTTP/2 preface split over several packets to the HTTP/2 server", async () => {
      const socket = connectTcp(main.port, "127.0.0.1");
      await once(socket, "connect");
      const received = new Promise<Buffer>((resolve) => socket.once("data", resolve));
      socket.write("PRI * HTTP/2.0\r\n");
      await new Promise((resolve) => setTimeout(resolve, 50));
      socket.write("\r\nSM");
      await new Promise((resolve) => setTimeout(resolve, 50));
      // The rest of the preface, then an empty SETTINGS frame.
      socket.write(
        Buffer.concat([Buffer.from("\r\n\r\n"), Buffer.from([0, 0, 0, 4, 0, 0, 0, 0, 0])]),
      );
      const frame = await received;
      socket.destroy();
      assert.equal(frame[3], 0x04, "the server's first frame is SETTINGS");
    });

    it("routes HTTP/1.1 that starts like the preface ('P…') to the HTTP/1 server", async () => {
      const socket = connectTcp(main.port, "127.0.0.1");
      await once(socket, "connect");
      const received = new Promise<Buffer>((resolve) => socket.once("data", resolve));
      socket.write("P");
      await new Promise((resolve) => setTimeout(resolve, 50));
      socket.write(
        "OST /inference.v1.InferenceService/ListModels HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 2\r\nConnection: close\r\n\r\n{}",
      );
      const response = (await received).toString("latin1");
      socket.destroy();
      assert.match(response, /^HTTP\/1\.1 200 /);
    });

    it("classifies first bytes", () => {
      assert.equal(sniffProtocol(Buffer.alloc(0)), undefined);
      assert.equal(sniffProtocol(Buffer.from("P")), undefined);
      assert.equal(sniffProtocol(Buffer.from("PRI * HTTP/2.0\r\n\r\nSM\r\n")), undefined);
      assert.equal(sniffProtocol(Buffer.from("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n")), "h2c");
      assert.equal(sniffProtocol(Buffer.from("PRI * HTTP/1.1\r\n")), "http1");
      assert.equal(sniffProtocol(Buffer.from("POST / HTTP/1.1")), "http1");
      assert.equal(sniffProtocol(Buffer.from("GET")), "http1");
      assert.equal(sniffProtocol(Buffer.from([0x16, 0x03, 0x01])), "tls");
    });
  });

  describe("reflection and health", () => {
    it("lists every method through reflection for buf curl (v1 and v1alpha)", async () => {
      for (const reflectProtocol of ["grpc-v1", "grpc-v1alpha"]) {
        const result = await runCommand(bufBin, [
          "curl",
          "--http2-prior-knowledge",
          "--reflect-protocol",
          reflectProtocol,
          "--list-methods",
          main.base,
        ]);
        assert.equal(result.code, 0, result.stderr);
        assert.deepEqual(result.stdout.trim().split("\n"), [
          "grpc.health.v1.Health/Check",
          "grpc.health.v1.Health/Watch",
          "grpc.reflection.v1.ServerReflection/ServerReflectionInfo",
          "grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo",
          "inference.v1.InferenceService/Detokenize",
          "inference.v1.InferenceService/Generate",
          "inference.v1.InferenceService/GenerateStream",
          "inference.v1.InferenceService/ListModels",
          "inference.v1.InferenceService/Tokenize",
        ]);
      }
    });

    it("answers file and symbol requests with descriptors, and NOT_FOUND for unknown ones", async () => {
      const client = createClient(ServerReflection, createGrpcTransport({ baseUrl: main.base }));
      const requests = [
        { messageRequest: { case: "fileByFilename", value: "inference/v1/inference.proto" } },
        {
          messageRequest: { case: "fileContainingSymbol", value: "inference.v1.InferenceService" },
        },
        {
          messageRequest: {
            case: "fileContainingSymbol",
            value: "inference.v1.InferenceService.GenerateStream",
          },
        },
        { messageRequest: { case: "fileContainingSymbol", value: "inference.v1.GenerateRequest" } },
        { messageRequest: { case: "fileContainingSymbol", value: "inference.v1.FinishReason" } },
        {
          messageRequest: {
            case: "fileContainingSymbol",
            value: "grpc.health.v1.HealthCheckResponse.ServingStatus",
          },
        },
        { messageRequest: { case: "fileContainingSymbol", value: "inference.v1.Nope" } },
        { messageRequest: { case: "fileByFilename", value: "nope.proto" } },
        { messageRequest: { case: "listServices", value: "" } },
      ] as const;
      async function* send() {
        yield* requests;
      }
      const answers: ServerReflectionResponse[] = [];
      for await (const response of client.serverReflectionInfo(send())) {
        answers.push(response);
      }
      assert.equal(answers.length, requests.length);
      const files = (index: number) => {
        const answer = answers[index]?.messageResponse;
        assert.equal(answer?.case, "fileDescriptorResponse");
        return answer.value.fileDescriptorProto.map((bytes) =>
          fromBinary(FileDescriptorProtoSchema, bytes),
        );
      };
      const fileNames = (index: number) => files(index).map((file) => file.name);
      for (const index of [0, 1, 2, 3, 4]) {
        assert.deepEqual(fileNames(index), ["inference/v1/inference.proto"]);
      }
      assert.deepEqual(fileNames(5), ["grpc/health/v1/health.proto"]);
      assert.deepEqual(
        files(0)[0]?.service[0]?.method.map((m) => m.name),
        ["Generate", "GenerateStream", "ListModels", "Tokenize", "Detokenize"],
      );
      for (const index of [6, 7]) {
        const answer = answers[index]?.messageResponse;
        assert.equal(answer?.case, "errorResponse");
        assert.equal(answer.value.errorCode, Code.NotFound);
      }
      assert.equal(answers[6]?.originalRequest?.messageRequest.value, "inference.v1.Nope");
      const services = answers[8]?.messageResponse;
      assert.equal(services?.case, "listServicesResponse");
      assert.ok(services.value.service.some((s) => s.name === "inference.v1.InferenceService"));
    });

    it("serves reflection v1alpha to a v1alpha client", async () => {
      const client = createClient(
        ServerReflectionV1alpha,
        createGrpcTransport({ baseUrl: main.base }),
      );
      async function* send() {
        yield {
          messageRequest: { case: "fileContainingSymbol" as const, value: "grpc.health.v1.Health" },
        };
      }
      for await (const response of client.serverReflectionInfo(send())) {
        assert.equal(response.messageResponse.case, "fileDescriptorResponse");
      }
    });

    it("answers health Watch with the current status, SERVICE_UNKNOWN for unknown services", async () => {
      const client = createClient(Health, createGrpcTransport({ baseUrl: main.base }));
      for (const [service, status] of [
        ["", HealthCheckResponse_ServingStatus.SERVING],
        ["nope.v1.Nope", HealthCheckResponse_ServingStatus.SERVICE_UNKNOWN],
      ] as const) {
        let first: HealthCheckResponse_ServingStatus | undefined;
        for await (const response of client.watch({ service })) {
          first = response.status;
          break; // Cancels the stream: Watch would go on until the status changes.
        }
        assert.equal(first, status);
      }
    });

    it("answers health Check for the server and the inference service, NOT_FOUND for others", async () => {
      for (const service of ["", "inference.v1.InferenceService"]) {
        const result = await bufCurl([
          "--http2-prior-knowledge",
          "--protocol",
          "grpc",
          "-d",
          JSON.stringify({ service }),
          `${main.base}/grpc.health.v1.Health/Check`,
        ]);
        assert.equal(result.code, 0, result.stderr);
        assert.deepEqual(result.json, [{ status: "SERVING" }]);
      }
      const unknown = await bufCurl([
        "--http2-prior-knowledge",
        "--protocol",
        "grpc",
        "-d",
        '{"service":"nope.v1.Nope"}',
        `${main.base}/grpc.health.v1.Health/Check`,
      ]);
      assert.notEqual(unknown.code, 0);
      assert.equal(bufErrorCode(unknown.stderr), "not_found");
    });
  });

  describe("browsers: CORS and the web client", () => {
    const headersOf = (text: string) => {
      const headers = new Map<string, string>();
      for (const line of text.split("\r\n")) {
        const colon = line.indexOf(":");
        if (colon > 0)
          headers.set(line.slice(0, colon).toLowerCase(), line.slice(colon + 1).trim());
      }
      return headers;
    };

    it("answers a preflight from an allowed origin with the Connect, gRPC-Web headers", async () => {
      const result = await curl([
        "-i",
        "-X",
        "OPTIONS",
        "-H",
        "Origin: https://app.example",
        "-H",
        "Access-Control-Request-Method: POST",
        "-H",
        "Access-Control-Request-Headers: content-type,connect-protocol-version,connect-timeout-ms",
        `${main.base}/inference.v1.InferenceService/GenerateStream`,
      ]);
      assert.equal(result.status, 204);
      const headers = headersOf(result.body);
      assert.equal(headers.get("access-control-allow-origin"), "https://app.example");
      assert.match(headers.get("access-control-allow-methods") ?? "", /POST/);
      const allowed = (headers.get("access-control-allow-headers") ?? "").toLowerCase();
      for (const header of [
        "content-type",
        "connect-protocol-version",
        "connect-timeout-ms",
        "grpc-timeout",
        "x-grpc-web",
        "x-user-agent",
      ]) {
        assert.ok(allowed.includes(header), `${header} in ${allowed}`);
      }
      assert.equal(headers.get("access-control-max-age"), "7200");
    });

    it("exposes the gRPC status headers to scripts on actual requests", async () => {
      const result = await curlConnect(main.base, "ListModels", "{}", [
        "-i",
        "-H",
        "Origin: https://app.example",
      ]);
      const headers = headersOf(result.body);
      assert.equal(headers.get("access-control-allow-origin"), "https://app.example");
      const exposed = (headers.get("access-control-expose-headers") ?? "").toLowerCase();
      for (const header of ["grpc-status", "grpc-message", "grpc-status-details-bin"]) {
        assert.ok(exposed.includes(header), `${header} in ${exposed}`);
      }
    });

    it("gives other origins no CORS grant", async () => {
      const result = await curlConnect(main.base, "ListModels", "{}", [
        "-i",
        "-H",
        "Origin: https://evil.example",
      ]);
      assert.equal(result.status, 200);
      assert.equal(headersOf(result.body).get("access-control-allow-origin"), undefined);
    });

    it("serves the web client with content types and cache headers", async () => {
      const page = await curl(["-i", `${main.base}/`]);
      assert.equal(page.status, 200);
      const pageHeaders = headersOf(page.body);
      assert.match(pageHeaders.get("content-type") ?? "", /^text\/html/);
      assert.equal(pageHeaders.get("cache-control"), "no-cache");
      assert.match(page.body, /Parley test page/);
      const asset = await curl([
        "-i",
        "--http2-prior-knowledge",
        `${main.base}/assets/index-Ab12Cd34.js`,
      ]);
      assert.equal(asset.status, 200);
      const assetHeaders = headersOf(asset.body.replaceAll("\n", "\r\n"));
      assert.match(assetHeaders.get("content-type") ?? "", /javascript/);
      assert.equal(assetHeaders.get("cache-control"), "public, max-age=31536000, immutable");
    });

    it("does not serve files outside the web root", async () => {
      for (const path of [
        "/../secret.txt",
        "/assets/../../secret.txt",
        "/%2e%2e/secret.txt",
        "/assets/..%2f..%2fsecret.txt",
      ]) {
        const result = await curl(["--path-as-is", `${main.base}${path}`]);
        assert.ok(result.status === 403 || result.status === 404, `${path}: ${result.status}`);
        assert.doesNotMatch(result.body, /outside the web root/);
      }
      const missing = await curl([`${main.base}/nope.html`]);
      assert.equal(missing.status, 404);
    });
  });

  describe("bad input gets its code, and the server keeps serving", () => {
    const cases: [string, Record<string, unknown>, string][] = [
      ["neither prompt nor messages", {}, "invalid_argument"],
      [
        "both prompt and messages",
        { prompt: "hi", messages: [{ role: "user", content: "hi" }] },
        "invalid_argument",
      ],
      [
        "a message without a role",
        { messages: [{ role: " ", content: "hi" }] },
        "invalid_argument",
      ],
      ["max_tokens 0", { prompt: "hi", maxTokens: 0 }, "invalid_argument"],
      ["temperature above 2", { prompt: "hi", temperature: 2.5 }, "invalid_argument"],
      ["temperature NaN", { prompt: "hi", temperature: "NaN" }, "invalid_argument"],
      ["top_p 0", { prompt: "hi", topP: 0 }, "invalid_argument"],
      ["top_p above 1", { prompt: "hi", topP: 1.5 }, "invalid_argument"],
      ["top_k above 1000", { prompt: "hi", topK: 5000 }, "invalid_argument"],
      [
        "17 stop strings",
        { prompt: "hi", stop: Array.from({ length: 17 }, (_, i) => `s${i}`) },
        "invalid_argument",
      ],
      ["an empty stop string", { prompt: "hi", stop: [""] }, "invalid_argument"],
      ["an unknown model", { prompt: "hi", model: "missing" }, "not_found"],
      ["a full queue", { prompt: "hi", model: "full" }, "resource_exhausted"],
      ["an engine shutting down", { prompt: "hi", model: "closed" }, "unavailable"],
    ];
    for (const [name, request, code] of cases) {
      it(`${name} -> ${code} (Connect unary, curl)`, async () => {
        const response = await curlConnect(main.base, "Generate", JSON.stringify(request));
        const error = JSON.parse(response.body) as { code: string; message: string };
        assert.equal(error.code, code, response.body);
        assert.ok(error.message.length > 0);
      });
    }

    for (const protocol of ["grpc", "grpcweb", "connect"] as const) {
      it(`validation and engine errors reach ${protocol} streams (buf curl)`, async () => {
        for (const [request, code] of [
          [{ prompt: "hi", topP: 2 }, "invalid_argument"],
          [{ prompt: "hi", model: "missing" }, "not_found"],
          [{ prompt: "hi", model: "full" }, "resource_exhausted"],
        ] as const) {
          const result = await bufCurl([
            "--protocol",
            protocol,
            "--http2-prior-knowledge",
            "-d",
            JSON.stringify(request),
            `${main.base}/inference.v1.InferenceService/GenerateStream`,
          ]);
          assert.notEqual(result.code, 0);
          assert.equal(bufErrorCode(result.stderr), code, result.stderr);
        }
      });
    }

    it("an oversized body -> resource_exhausted (Connect and gRPC)", async () => {
      const prompt = "x".repeat(100 * 1024);
      const connect = await curlConnect(main.base, "Generate", JSON.stringify({ prompt }));
      assert.equal(connect.status, 429);
      assert.equal((JSON.parse(connect.body) as { code: string }).code, "resource_exhausted");
      const grpc = await bufCurl(
        [
          "--protocol",
          "grpc",
          "--http2-prior-knowledge",
          "-d",
          "@-",
          `${main.base}/inference.v1.InferenceService/Generate`,
        ],
        JSON.stringify({ prompt }),
      );
      assert.equal(bufErrorCode(grpc.stderr), "resource_exhausted", grpc.stderr);
    });

    it("malformed JSON -> invalid_argument; a wrong content type -> 415; then calls still work", async () => {
      const malformed = await curlConnect(main.base, "Generate", '{"prompt": ');
      assert.equal(malformed.status, 400);
      assert.equal((JSON.parse(malformed.body) as { code: string }).code, "invalid_argument");
      const wrongType = await curl([
        "-X",
        "POST",
        "-H",
        "Content-Type: text/plain",
        "-d",
        "hello",
        `${main.base}/inference.v1.InferenceService/Generate`,
      ]);
      assert.equal(wrongType.status, 415);
      // No body: the server answers 415 without reading one, and curl 7.88 sometimes reports
      // the RST_STREAM(NO_ERROR) that ends an unread HTTP/2 request body as a framing error.
      const grpcWrong = await curl([
        "--http2-prior-knowledge",
        "-X",
        "POST",
        "-H",
        "Content-Type: application/grpc+nope",
        `${main.base}/inference.v1.InferenceService/Generate`,
      ]);
      assert.equal(grpcWrong.status, 415);
      const after = await curlConnect(main.base, "ListModels", "{}");
      assert.equal(after.status, 200);
    });

    it("an engine crash -> internal with a generic message; the cause only in the log", async () => {
      const client = createClient(
        InferenceService,
        createConnectTransport({ baseUrl: main.base, httpVersion: "1.1" }),
      );
      const error = await client
        .generate({ prompt: "hi", model: "crash" })
        .catch((e: unknown) => ConnectError.from(e));
      assert.ok(error instanceof ConnectError);
      assert.equal(error.code, Code.Internal);
      assert.equal(error.rawMessage, "internal error");
      assert.doesNotMatch(JSON.stringify(error), /secret-detail/);
      const line = main.logs.findLast(
        (l) => l.method === "inference.v1.InferenceService/Generate" && l.code === "internal",
      );
      assert.ok(line, "the call was logged");
      assert.equal(line.level, 50);
      assert.match(JSON.stringify(line.err), /secret-detail-42/);
    });

    for (const [name, transport] of [
      [
        "connect over HTTP/1.1",
        () => createConnectTransport({ baseUrl: main.base, httpVersion: "1.1" }),
      ],
      [
        "gRPC-Web over HTTP/1.1",
        () => createGrpcWebTransport({ baseUrl: main.base, httpVersion: "1.1" }),
      ],
      ["gRPC", () => createGrpcTransport({ baseUrl: main.base })],
    ] as const) {
      it(`a stream past its deadline -> deadline_exceeded (${name})`, async () => {
        const client = createClient(InferenceService, transport());
        const error = await (async () => {
          for await (const _ of client.generateStream(
            { prompt: "hi", model: "stall" },
            { timeoutMs: 300 },
          )) {
            // The first message (the accepted one) arrives; then the stall.
          }
        })().catch((e: unknown) => ConnectError.from(e));
        assert.ok(error instanceof ConnectError);
        assert.equal(error.code, Code.DeadlineExceeded);
      });
    }

    it("a deadline above --max-timeout-ms is shortened to it; a malformed one is invalid_argument", async () => {
      const short = await startServer({ maxTimeoutMs: 300 });
      try {
        const started = Date.now();
        const connect = await curlConnect(
          short.base,
          "Generate",
          '{"prompt":"hi","model":"stall"}',
          ["-H", "Connect-Timeout-Ms: 99999999"],
        );
        assert.equal((JSON.parse(connect.body) as { code: string }).code, "deadline_exceeded");
        const client = createClient(InferenceService, createGrpcTransport({ baseUrl: short.base }));
        const error = await client
          .generate({ prompt: "hi", model: "stall" }, { timeoutMs: 3_600_000 })
          .catch((e: unknown) => ConnectError.from(e));
        assert.ok(error instanceof ConnectError);
        assert.equal(error.code, Code.DeadlineExceeded);
        assert.ok(Date.now() - started < 10_000);
        const malformed = await curlConnect(short.base, "ListModels", "{}", [
          "-H",
          "Connect-Timeout-Ms: soon",
        ]);
        assert.equal((JSON.parse(malformed.body) as { code: string }).code, "invalid_argument");
      } finally {
        await short.server.close(1_000);
      }
    });
  });

  describe("observability", () => {
    it("logs one line per call with protocol, method, code and duration", async () => {
      const before = main.logs.length;
      await curlConnect(main.base, "Generate", JSON.stringify({ prompt: "hi", topK: 5000 }), [
        "--http2-prior-knowledge",
      ]);
      const lines = main.logs.slice(before).filter((l) => l.msg === "rpc");
      assert.equal(lines.length, 1);
      const [line] = lines;
      assert.equal(line?.protocol, "connect");
      assert.equal(line?.method, "inference.v1.InferenceService/Generate");
      assert.equal(line?.code, "invalid_argument");
      assert.equal(line?.httpVersion, "2.0");
      assert.equal(typeof line?.durationMs, "number");
      assert.match(String(line?.error), /top_k/);
    });

    it("exposes RPC metrics by protocol, method and code, and the event loop delay", async () => {
      await bufCurl([
        "--protocol",
        "grpcweb",
        `${main.base}/inference.v1.InferenceService/ListModels`,
      ]);
      await bufCurl([
        "--protocol",
        "grpc",
        "--http2-prior-knowledge",
        `${main.base}/inference.v1.InferenceService/ListModels`,
      ]);
      await curlConnect(main.base, "Generate", JSON.stringify({ prompt: "hi", model: "missing" }));
      const response = await fetch(`${main.base}/metrics`);
      assert.equal(response.status, 200);
      assert.match(response.headers.get("content-type") ?? "", /^text\/plain/);
      const text = await response.text();
      const value = (pattern: string) => {
        const line = text.split("\n").find((l) => l.startsWith(pattern));
        assert.ok(line, `no metric line starting with ${pattern}`);
        return Number(line.slice(line.lastIndexOf(" ") + 1));
      };
      const method = 'method="inference.v1.InferenceService/ListModels"';
      assert.ok(value(`parley_rpc_requests_total{protocol="grpc",${method},code="ok"}`) >= 1);
      assert.ok(value(`parley_rpc_requests_total{protocol="grpc_web",${method},code="ok"}`) >= 1);
      assert.ok(value(`parley_rpc_requests_total{protocol="connect",${method},code="ok"}`) >= 1);
      assert.ok(
        value(
          'parley_rpc_requests_total{protocol="connect",method="inference.v1.InferenceService/Generate",code="not_found"}',
        ) >= 1,
      );
      assert.ok(value(`parley_rpc_messages_received_total{protocol="grpc",${method}}`) >= 1);
      assert.ok(value(`parley_rpc_messages_sent_total{protocol="grpc",${method}}`) >= 1);
      assert.ok(value(`parley_rpc_received_bytes_total{protocol="grpc",${method}}`) >= 5);
      assert.ok(value(`parley_rpc_sent_bytes_total{protocol="grpc_web",${method}}`) > 100);
      assert.equal(value(`parley_rpc_streams_in_flight{protocol="grpc",${method}}`), 0);
      assert.ok(value('parley_event_loop_delay_seconds{quantile="0.99"}') >= 0);
      assert.ok(value('parley_event_loop_delay_seconds{quantile="1"}') > 0);
      assert.ok(
        value(`parley_rpc_duration_seconds_count{protocol="grpc",${method},code="ok"}`) >= 1,
      );
    });
  });
});

describe("createGatewayServer without TLS or web client", () => {
  let plain: TestServer;
  before(async () => {
    plain = await startServer();
  });
  after(() => plain.server.close(1_000));

  it("drops TLS connections when no certificate is configured, and keeps serving", async () => {
    const tls = await runCommand("curl", ["-sS", "-k", `https://127.0.0.1:${plain.port}/`]);
    assert.notEqual(tls.code, 0);
    const response = await curlConnect(plain.base, "ListModels", "{}");
    assert.equal(response.status, 200);
  });

  it("answers / with a page that says how to build the web client", async () => {
    const page = await curl([`${plain.base}/`]);
    assert.equal(page.status, 404);
    assert.match(page.body, /web client is not built/);
    assert.match(page.body, /npm run build/);
  });
});

describe("createGatewayServer.close", () => {
  it("reports NOT_SERVING, ends Watch, drains within the grace period, then aborts with unavailable", async () => {
    const { server, base, port } = await startServer();
    const transport = createGrpcTransport({ baseUrl: base });
    const health = createClient(Health, transport);
    const watched: HealthCheckResponse_ServingStatus[] = [];
    const watch = (async () => {
      for await (const response of health.watch({ service: "" })) {
        watched.push(response.status);
      }
    })().catch((e: unknown) => ConnectError.from(e));
    const inference = createClient(
      InferenceService,
      createConnectTransport({ baseUrl: base, httpVersion: "1.1" }),
    );
    const messages: unknown[] = [];
    const stalled = (async () => {
      for await (const message of inference.generateStream({ prompt: "hi", model: "stall" })) {
        messages.push(message);
      }
    })().catch((e: unknown) => ConnectError.from(e));
    while (watched.length === 0 || messages.length === 0) {
      await new Promise((resolve) => setTimeout(resolve, 10));
    }

    const started = Date.now();
    await server.close(400);
    const elapsed = Date.now() - started;

    assert.deepEqual(watched, [
      HealthCheckResponse_ServingStatus.SERVING,
      HealthCheckResponse_ServingStatus.NOT_SERVING,
    ]);
    const watchError = await watch;
    assert.ok(watchError instanceof ConnectError);
    assert.equal(watchError.code, Code.Unavailable);
    const streamError = await stalled;
    assert.ok(streamError instanceof ConnectError);
    assert.equal(streamError.code, Code.Unavailable, String(streamError));
    assert.ok(elapsed >= 400, `waited the grace period (${elapsed} ms)`);
    const refused = await runCommand("curl", ["-sS", `http://127.0.0.1:${port}/`]);
    assert.notEqual(refused.code, 0, "no longer accepting connections");
  });

  it("returns at once when nothing is in flight", async () => {
    const { server } = await startServer();
    const started = Date.now();
    await server.close(10_000);
    assert.ok(Date.now() - started < 5_000);
  });
});
