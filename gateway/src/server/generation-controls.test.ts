/**
 * @module The sampling and inspection fields (penalties, min_p, stop_token_ids, logprobs) and
 * Tokenize/Detokenize on every protocol, through the real server and engine on the built-in
 * model: Connect (JSON and binary), gRPC (@grpc/grpc-js) and gRPC-Web (JSON and binary) give
 * what the engine gives with no server in between, and refuse out-of-range values with
 * invalid_argument naming the field. Also: a misspelled field in Connect or gRPC-Web JSON
 * (`{"max_token": 3}`) is invalid_argument naming it on every path that parses JSON (curl).
 */

import assert from "node:assert/strict";
import { mkdtemp, readFile, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { gzipSync } from "node:zlib";
import { Code, ConnectError, createClient, type Transport } from "@connectrpc/connect";
import { createConnectTransport, createGrpcWebTransport } from "@connectrpc/connect-node";
import * as grpc from "@grpc/grpc-js";
import * as protoLoader from "@grpc/proto-loader";
import { FinishReason, InferenceService } from "@parley/gen/inference/v1/inference_pb";
import { createEngine } from "../engine/create-engine.js";
import type { Engine, GenerationRequest, TokenLogprob } from "../engine/engine.js";
import { createLogger } from "../observability/logger.js";
import { createMetricsRegistry } from "../observability/metrics-registry.js";
import { builtinSource, collect, repoRoot } from "../testing/model-fixtures.js";
import { runCommand } from "../testing/run-command.js";
import { createGatewayServer, type GatewayServer } from "./create-gateway-server.js";

const prompt = "Once upon a time, once upon a time";
/** The new fields, in the camelCase both protobuf-es and proto-loader use. */
const controls = {
  prompt,
  maxTokens: 16,
  temperature: 0,
  repetitionPenalty: 1.3,
  frequencyPenalty: 0.4,
  presencePenalty: 0.3,
  minP: 0.1,
  logprobs: true,
  topLogprobs: 3,
};

/** What every protocol must return, normalized: enum names, float32 logprobs. */
interface Outcome {
  text: string;
  tokenIds: number[];
  finishReason: string;
  logprobs: { tokenId: number; token: string; logprob: number; top: [number, string, number][] }[];
}

/**
 * Equal outcomes, logprobs within 1e-5: the server's engine reuses the prompt's KV from its
 * prefix cache for the later calls, and a prefill on a cached past rounds the last float32 bit
 * differently from one over the whole prompt (the tokens are the same).
 */
function assertSameOutcome(actual: Outcome, expected: Outcome): void {
  const strip = (o: Outcome) => ({
    ...o,
    logprobs: o.logprobs.map((l) => ({ ...l, logprob: 0, top: l.top.map(([id, t]) => [id, t]) })),
  });
  assert.deepEqual(strip(actual), strip(expected));
  actual.logprobs.forEach((l, i) => {
    const e = expected.logprobs[i];
    assert.ok(e !== undefined && Math.abs(l.logprob - e.logprob) <= 1e-5, `logprob ${i}`);
    l.top.forEach(([, , value], j) => {
      const other = e.top[j]?.[2];
      assert.ok(other !== undefined && Math.abs(value - other) <= 1e-5, `top ${j} of ${i}`);
    });
  });
}

interface WireLogprob {
  tokenId?: number;
  token?: string;
  logprob?: number;
  topLogprobs?: { tokenId?: number; token?: string; logprob?: number }[];
}

/**
 * Binary carries a float field's 32 bits; JSON carries the server's number in full, which
 * rounds to the same float32.
 */
function fromWire(logprobs: readonly WireLogprob[] | undefined): Outcome["logprobs"] {
  return (logprobs ?? []).map((l) => ({
    tokenId: l.tokenId ?? 0,
    token: l.token ?? "",
    logprob: Math.fround(l.logprob ?? 0),
    top: (l.topLogprobs ?? []).map((t) => [
      t.tokenId ?? 0,
      t.token ?? "",
      Math.fround(t.logprob ?? 0),
    ]),
  }));
}

/** The engine's logprobs as the wire carries them: float32. */
function fromEngine(logprobs: readonly TokenLogprob[]): Outcome["logprobs"] {
  return logprobs.map((l) => ({
    tokenId: l.tokenId,
    token: l.token,
    logprob: Math.fround(l.logprob),
    top: l.top.map((t) => [t.tokenId, t.token, Math.fround(t.logprob)]),
  }));
}

const reasonName = (reason: string | number | undefined) =>
  String(typeof reason === "number" ? FinishReason[reason] : reason).replace("FINISH_REASON_", "");

/** One protocol's client, reduced to what these tests compare. */
interface ProtocolClient {
  generate(request: object): Promise<Outcome>;
  generateStream(request: object): Promise<{ outcome: Outcome; perMessageOk: boolean }>;
  tokenize(request: object): Promise<{ tokenIds: number[]; tokens: string[]; model: string }>;
  detokenize(request: object): Promise<{ text: string; model: string }>;
  /** The status code name and message of a failing Generate call. */
  failure(request: object): Promise<{ code: string; message: string }>;
}

interface StreamWire {
  text?: string;
  tokenIds?: number[];
  finishReason?: string | number;
  logprobs?: WireLogprob[];
}

function streamOutcome(messages: readonly StreamWire[]): {
  outcome: Outcome;
  perMessageOk: boolean;
} {
  return {
    outcome: {
      text: messages.map((m) => m.text ?? "").join(""),
      tokenIds: messages.flatMap((m) => m.tokenIds ?? []),
      finishReason: reasonName(messages.at(-1)?.finishReason),
      logprobs: messages.flatMap((m) => fromWire(m.logprobs)),
    },
    perMessageOk: messages.every((m) => (m.logprobs ?? []).length === (m.tokenIds ?? []).length),
  };
}

function connectEsClient(transport: Transport): ProtocolClient {
  const client = createClient(InferenceService, transport);
  return {
    async generate(request) {
      const r = await client.generate(request);
      return {
        text: r.text,
        tokenIds: [],
        finishReason: reasonName(r.finishReason),
        logprobs: fromWire(r.logprobs),
      };
    },
    async generateStream(request) {
      const messages: StreamWire[] = [];
      for await (const m of client.generateStream(request)) messages.push(m);
      return streamOutcome(messages);
    },
    tokenize: (request) => client.tokenize(request),
    detokenize: (request) => client.detokenize(request),
    async failure(request) {
      const error = await client.generate(request).then(
        () => assert.fail("the call succeeded"),
        (e: unknown) => ConnectError.from(e),
      );
      return { code: Code[error.code], message: error.rawMessage };
    },
  };
}

interface GrpcJsClient extends grpc.Client {
  Generate(request: object, callback: grpc.requestCallback<StreamWire>): void;
  GenerateStream(request: object): grpc.ClientReadableStream<StreamWire>;
  Tokenize(
    request: object,
    callback: grpc.requestCallback<{ tokenIds: number[]; tokens: string[]; model: string }>,
  ): void;
  Detokenize(
    request: object,
    callback: grpc.requestCallback<{ text: string; model: string }>,
  ): void;
}

function unary<T>(call: (callback: grpc.requestCallback<T>) => void): Promise<T> {
  return new Promise((resolve, reject) =>
    call((error, value) => (error ? reject(error) : resolve(value as T))),
  );
}

async function grpcJsClient(port: number): Promise<{ client: ProtocolClient; close: () => void }> {
  const definition = await protoLoader.load("inference/v1/inference.proto", {
    includeDirs: [join(repoRoot, "proto")],
    enums: String,
    longs: String,
    defaults: false,
    arrays: true,
  });
  const loaded = grpc.loadPackageDefinition(definition) as unknown as {
    inference: {
      v1: {
        InferenceService: new (address: string, c: grpc.ChannelCredentials) => GrpcJsClient;
      };
    };
  };
  const raw = new loaded.inference.v1.InferenceService(
    `127.0.0.1:${port}`,
    grpc.credentials.createInsecure(),
  );
  return {
    close: () => raw.close(),
    client: {
      async generate(request) {
        const r = await unary<StreamWire>((cb) => raw.Generate(request, cb));
        return {
          text: r.text ?? "",
          tokenIds: [],
          finishReason: reasonName(r.finishReason),
          logprobs: fromWire(r.logprobs),
        };
      },
      async generateStream(request) {
        const messages: StreamWire[] = [];
        for await (const m of raw.GenerateStream(request)) messages.push(m as StreamWire);
        return streamOutcome(messages);
      },
      tokenize: (request) => unary((cb) => raw.Tokenize(request, cb)),
      detokenize: (request) => unary((cb) => raw.Detokenize(request, cb)),
      async failure(request) {
        const error = await unary((cb) => raw.Generate(request, cb)).then(
          () => assert.fail("the call succeeded"),
          (e: grpc.ServiceError) => e,
        );
        const names: Record<number, string> = { [grpc.status.INVALID_ARGUMENT]: "InvalidArgument" };
        return { code: names[error.code] ?? String(error.code), message: error.details };
      },
    },
  };
}

describe("generation controls on every protocol", () => {
  let engine: Engine;
  let server: GatewayServer;
  let port: number;
  let base: string;
  let expected: Outcome;
  let stopTokenId: number;
  let grpcJs: { client: ProtocolClient; close: () => void };

  before(async () => {
    const metrics = createMetricsRegistry();
    const logger = createLogger({ level: "silent" });
    engine = await createEngine({ models: [builtinSource()], metrics, logger });
    const request: GenerationRequest = {
      model: "",
      input: { kind: "text", text: prompt },
      maxTokens: controls.maxTokens,
      sampling: {
        temperature: 0,
        repetitionPenalty: controls.repetitionPenalty,
        frequencyPenalty: controls.frequencyPenalty,
        presencePenalty: controls.presencePenalty,
        minP: controls.minP,
      },
      stop: [],
      topLogprobs: controls.topLogprobs,
    };
    // A stop id that first appears at step 6, so the wire's stop_token_ids end the text early.
    const free = await collect(engine, request);
    const at = free.tokenIds.findIndex((id, i) => i >= 6 && free.tokenIds.indexOf(id) === i);
    stopTokenId = free.tokenIds[at] as number;
    const stopped = await collect(engine, { ...request, stopTokenIds: [stopTokenId] });
    assert.equal(stopped.finished.finishReason, "stop");
    expected = {
      text: stopped.text,
      tokenIds: stopped.tokenIds,
      finishReason: "STOP",
      logprobs: fromEngine(stopped.events.flatMap((e) => [...(e.logprobs ?? [])])),
    };
    assert.equal(expected.logprobs.length, at + 1);
    server = createGatewayServer({
      engine,
      metrics,
      logger,
      config: {
        port: 0,
        host: "127.0.0.1",
        tls: undefined,
        corsOrigins: [],
        maxRequestBytes: 1 << 20,
        maxTimeoutMs: 60_000,
        webRoot: join(tmpdir(), "parley-no-web-client-here"),
      },
    });
    ({ port } = await server.listen());
    base = `http://127.0.0.1:${port}`;
    grpcJs = await grpcJsClient(port);
  });

  after(async () => {
    grpcJs?.close();
    await server?.close(1_000);
    await engine?.close(1_000);
  });

  const protocols: [string, () => ProtocolClient][] = [
    [
      "Connect JSON",
      () => connectEsClient(createConnectTransport({ baseUrl: base, httpVersion: "1.1" })),
    ],
    [
      "Connect binary over HTTP/2",
      () =>
        connectEsClient(
          createConnectTransport({ baseUrl: base, httpVersion: "2", useBinaryFormat: true }),
        ),
    ],
    ["gRPC (@grpc/grpc-js)", () => grpcJs.client],
    [
      "gRPC-Web binary",
      () =>
        connectEsClient(
          createGrpcWebTransport({ baseUrl: base, httpVersion: "1.1", useBinaryFormat: true }),
        ),
    ],
    [
      "gRPC-Web JSON",
      () =>
        connectEsClient(
          createGrpcWebTransport({ baseUrl: base, httpVersion: "1.1", useBinaryFormat: false }),
        ),
    ],
  ];

  for (const [name, client] of protocols) {
    describe(name, () => {
      const request = () => ({ ...controls, stopTokenIds: [stopTokenId] });

      it("Generate applies every control as the engine does, with logprobs", async () => {
        const outcome = await client().generate(request());
        assertSameOutcome(outcome, { ...expected, tokenIds: [] });
      });

      it("GenerateStream too, one logprob per token id in each message", async () => {
        const { outcome, perMessageOk } = await client().generateStream(request());
        assertSameOutcome(outcome, expected);
        assert.ok(perMessageOk);
      });

      it("Tokenize and Detokenize", async () => {
        const tokenized = await client().tokenize({ text: prompt });
        const direct = await engine.tokenize(
          { model: "", input: { kind: "text", text: prompt } },
          new AbortController().signal,
        );
        assert.deepEqual(tokenized.tokenIds, direct.tokenIds);
        assert.deepEqual(tokenized.tokens, direct.tokens);
        assert.equal(tokenized.model, "parley-tiny");
        const text = await client().detokenize({
          tokenIds: tokenized.tokenIds,
          skipSpecialTokens: true,
        });
        assert.equal(text.text, prompt);
        assert.equal(text.model, "parley-tiny");
      });

      it("refuses out-of-range values with invalid_argument naming the field", async () => {
        for (const [field, value] of [
          ["top_logprobs", { logprobs: true, topLogprobs: 21 }],
          ["min_p", { minP: 1.5 }],
          ["presence_penalty", { presencePenalty: -2.5 }],
          ["frequency_penalty", { frequencyPenalty: 3 }],
          ["repetition_penalty", { repetitionPenalty: 0 }],
          ["stop_token_ids", { stopTokenIds: [1 << 30] }],
        ] as const) {
          const { code, message } = await client().failure({ prompt, ...value });
          assert.equal(code, "InvalidArgument", field);
          assert.ok(message.startsWith(field), `${field}: ${message}`);
        }
      });
    });
  }

  describe("a misspelled field in JSON is invalid_argument naming it", () => {
    const body = JSON.stringify({ prompt, max_token: 3 });

    /** 5-byte envelope + JSON, the framing of Connect streams and gRPC-Web. */
    const envelope = (json: string) => {
      const data = Buffer.from(json);
      const head = Buffer.alloc(5);
      head.writeUInt32BE(data.length, 1);
      return Buffer.concat([head, data]);
    };
    const envelopes = (bytes: Buffer) => {
      const out: { flags: number; data: string }[] = [];
      for (let at = 0; at + 5 <= bytes.length; ) {
        const length = bytes.readUInt32BE(at + 1);
        out.push({
          flags: bytes[at] as number,
          data: bytes.subarray(at + 5, at + 5 + length).toString(),
        });
        at += 5 + length;
      }
      return out;
    };

    /** curl with `data` as the body; resolves with the status, headers and body bytes. */
    async function curl(data: Buffer | string, ...args: string[]) {
      const dir = await mkdtemp(join(tmpdir(), "parley-json-"));
      await writeFile(join(dir, "request"), data);
      const result = await runCommand("curl", [
        "-sS",
        "-o",
        join(dir, "body"),
        "-D",
        join(dir, "headers"),
        "-w",
        "%{http_code}",
        "--data-binary",
        `@${join(dir, "request")}`,
        ...args,
      ]);
      assert.equal(result.code, 0, result.stderr);
      return {
        status: Number(result.stdout),
        headers: await readFile(join(dir, "headers"), "utf8"),
        body: await readFile(join(dir, "body")),
      };
    }

    it("Connect unary (the fast path)", async () => {
      const answer = await curl(
        body,
        "-H",
        "Content-Type: application/json",
        `${base}/inference.v1.InferenceService/Generate`,
      );
      assert.equal(answer.status, 400);
      const error = JSON.parse(answer.body.toString()) as { code: string; message: string };
      assert.equal(error.code, "invalid_argument");
      assert.match(error.message, /"max_token" is unknown/);
    });

    it("Connect unary, gzip-compressed (connect-node's router)", async () => {
      const answer = await curl(
        gzipSync(body),
        "-H",
        "Content-Type: application/json",
        "-H",
        "Content-Encoding: gzip",
        `${base}/inference.v1.InferenceService/Generate`,
      );
      assert.equal(answer.status, 400);
      const error = JSON.parse(answer.body.toString()) as { code: string; message: string };
      assert.equal(error.code, "invalid_argument");
      assert.match(error.message, /"max_token" is unknown/);
    });

    it("Connect server stream", async () => {
      const answer = await curl(
        envelope(body),
        "-H",
        "Content-Type: application/connect+json",
        `${base}/inference.v1.InferenceService/GenerateStream`,
      );
      assert.equal(answer.status, 200);
      const messages = envelopes(answer.body);
      assert.equal(messages.length, 1, "no message before the end-stream one");
      assert.equal(messages[0]?.flags, 2);
      const end = JSON.parse(messages[0]?.data ?? "") as {
        error: { code: string; message: string };
      };
      assert.equal(end.error.code, "invalid_argument");
      assert.match(end.error.message, /"max_token" is unknown/);
    });

    for (const method of ["Generate", "GenerateStream"]) {
      it(`gRPC-Web JSON ${method}`, async () => {
        const answer = await curl(
          envelope(body),
          "-H",
          "Content-Type: application/grpc-web+json",
          `${base}/inference.v1.InferenceService/${method}`,
        );
        assert.equal(answer.status, 200);
        // The status arrives in the headers (trailers-only) or in the trailers frame.
        const trailers =
          answer.headers +
          envelopes(answer.body)
            .map((m) => m.data)
            .join("");
        assert.match(trailers, /grpc-status: ?3\r?\n/i);
        assert.match(decodeURIComponent(trailers), /"max_token" is unknown/);
      });
    }

    it("known fields under either JSON name are accepted", async () => {
      for (const json of [
        { prompt, maxTokens: 2, temperature: 0 },
        { prompt, max_tokens: 2, temperature: 0 },
      ]) {
        const answer = await curl(
          JSON.stringify(json),
          "-H",
          "Content-Type: application/json",
          `${base}/inference.v1.InferenceService/Generate`,
        );
        assert.equal(answer.status, 200, answer.body.toString());
        const reply = JSON.parse(answer.body.toString()) as { usage: { completionTokens: number } };
        assert.equal(reply.usage.completionTokens, 2);
      }
    });
  });
});
