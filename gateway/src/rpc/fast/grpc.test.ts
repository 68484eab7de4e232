/**
 * The direct gRPC path on its own: a bare `node:http2` server where every stream the path
 * declines gets HTTP 404, so each success below was served by the direct path and nothing else.
 * Clients are connect-node's gRPC transport and @grpc/grpc-js; the service is a small
 * InferenceService whose handlers do what each test needs (the real engine behind the whole
 * gateway is covered by interop.test.ts, whose gRPC calls take this path too).
 */
import assert from "node:assert/strict";
import { once } from "node:events";
import {
  connect,
  constants,
  createServer,
  type Http2Server,
  type ServerHttp2Session,
} from "node:http2";
import type { AddressInfo } from "node:net";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { Code, ConnectError, createClient } from "@connectrpc/connect";
import { createGrpcTransport } from "@connectrpc/connect-node";
import * as grpc from "@grpc/grpc-js";
import * as protoLoader from "@grpc/proto-loader";
import { FinishReason, InferenceService } from "@parley/gen/inference/v1/inference_pb";
import { aborted, collectCallReports, testPathOptions } from "../../testing/beside-connect-node.js";
import { repoRoot } from "../../testing/model-fixtures.js";
import { rpcService } from "../rpc-service.js";
import { frameMessage } from "./envelope.js";
import { createGrpcStreamHandler } from "./grpc.js";

describe("the direct gRPC path", () => {
  let server: Http2Server;
  let base: string;
  let port: number;
  const reports = collectCallReports();
  const sessions = new Set<ServerHttp2Session>();
  const handlerAborts: unknown[] = [];
  const shutdown = new AbortController();
  const readMaxBytes = 1024;

  before(async () => {
    const handle = createGrpcStreamHandler(
      testPathOptions(
        [
          rpcService(InferenceService, {
            listModels: () => ({ models: [{ id: "m", isDefault: true }] }),
            async generate(request, context) {
              if (request.prompt === "invalid") {
                throw new ConnectError("prompt is invalid", Code.InvalidArgument);
              }
              if (request.prompt === "crash") {
                throw new Error("secret internal detail");
              }
              if (request.prompt === "wait") {
                handlerAborts.push(await aborted(context.signal));
                throw ConnectError.from(context.signal.reason);
              }
              return {
                model: "m",
                text: `echo ${request.prompt}`,
                finishReason: FinishReason.STOP,
              };
            },
            async *generateStream(request, context) {
              yield { model: "m" };
              const count = request.maxTokens ?? 3;
              for (let i = 0; i < count; i++) {
                yield { text: `t${i}`, tokenIds: [i] };
              }
              if (request.prompt === "wait") {
                handlerAborts.push(await aborted(context.signal));
                return;
              }
              yield { finishReason: FinishReason.LENGTH };
            },
          }),
        ],
        readMaxBytes,
        shutdown.signal,
        reports,
      ),
    );
    server = createServer();
    // Clients keep their connections for reuse; closing the server waits for them.
    server.on("session", (session) => {
      sessions.add(session);
      session.once("close", () => sessions.delete(session));
    });
    server.on("stream", (stream, headers) => {
      if (!handle(stream, headers)) {
        stream.respond({ ":status": 404 }, { endStream: true });
      }
    });
    server.listen(0, "127.0.0.1");
    await once(server, "listening");
    port = (server.address() as AddressInfo).port;
    base = `http://127.0.0.1:${port}`;
  });
  after(() => {
    server.close();
    for (const session of sessions) session.destroy();
  });

  const client = () => createClient(InferenceService, createGrpcTransport({ baseUrl: base }));

  it("answers a unary call and reports it", async () => {
    const before = reports.ended.length;
    const response = await client().generate({ prompt: "hello" });
    assert.equal(response.text, "echo hello");
    const { call, error } = await reports.last(before + 1);
    assert.equal(error, undefined);
    assert.equal(call.method, "inference.v1.InferenceService/Generate");
    assert.equal(call.messagesReceived, 1);
    assert.equal(call.messagesSent, 1);
    assert.ok(call.bytesReceived > 5 && call.bytesSent > 5);
  });

  it("streams every message in order, then OK", async () => {
    const texts: string[] = [];
    let finish: FinishReason | undefined;
    for await (const message of client().generateStream({ prompt: "s", maxTokens: 50 })) {
      texts.push(message.text);
      if (message.finishReason !== FinishReason.UNSPECIFIED) finish = message.finishReason;
    }
    assert.deepEqual(
      texts,
      ["", ...Array.from({ length: 50 }, (_, i) => `t${i}`), ""],
      "model message, tokens, end",
    );
    assert.equal(finish, FinishReason.LENGTH);
  });

  it("sends a handler's ConnectError as its status, and hides other errors", async () => {
    const invalid = await client()
      .generate({ prompt: "invalid" })
      .catch((e: unknown) => ConnectError.from(e));
    assert.ok(invalid instanceof ConnectError);
    assert.equal(invalid.code, Code.InvalidArgument);
    assert.equal(invalid.rawMessage, "prompt is invalid");
    const crash = await client()
      .generate({ prompt: "crash" })
      .catch((e: unknown) => ConnectError.from(e));
    assert.ok(crash instanceof ConnectError);
    assert.equal(crash.code, Code.Internal);
    assert.equal(crash.rawMessage, "internal error");
  });

  it("ends a call at its deadline with deadline_exceeded and aborts the handler", async () => {
    // A raw request: a client library would also cancel at its own deadline, racing the server.
    const before = reports.ended.length;
    const session = connect(base);
    try {
      const started = performance.now();
      const stream = session.request({
        ":method": "POST",
        ":path": "/inference.v1.InferenceService/Generate",
        "content-type": "application/grpc",
        "grpc-timeout": "150m",
      });
      stream.end(frameMessage(Buffer.from([0x12, 4, ...Buffer.from("wait")])));
      stream.resume();
      // Headers, then the status in trailers, as connect-node's router sends them.
      const [trailers] = (await once(stream, "trailers")) as [Record<string, string>];
      const elapsed = performance.now() - started;
      assert.equal(trailers["grpc-status"], String(Code.DeadlineExceeded));
      assert.ok(elapsed >= 140 && elapsed < 2_000, `answered after ${elapsed} ms`);
    } finally {
      session.close();
    }
    const reason = handlerAborts.at(-1);
    assert.ok(reason instanceof ConnectError && reason.code === Code.DeadlineExceeded);
    assert.equal((await reports.last(before + 1)).error?.code, Code.DeadlineExceeded);
  });

  it("aborts the handler when the client cancels a stream, and reports canceled", async () => {
    const before = reports.ended.length;
    const abort = new AbortController();
    const handlerAbortsBefore = handlerAborts.length;
    const outcome = await (async () => {
      for await (const message of client().generateStream(
        { prompt: "wait", maxTokens: 2 },
        { signal: abort.signal },
      )) {
        if (message.text === "t1") abort.abort();
      }
    })().catch((e: unknown) => ConnectError.from(e));
    assert.ok(outcome instanceof ConnectError);
    assert.equal(outcome.code, Code.Canceled);
    const { error } = await reports.last(before + 1);
    assert.equal(error?.code, Code.Canceled);
    for (let i = 0; i < 100 && handlerAborts.length === handlerAbortsBefore; i++) {
      await new Promise((resolve) => setTimeout(resolve, 10));
    }
    const reason = handlerAborts.at(-1);
    assert.ok(reason instanceof ConnectError && reason.code === Code.Canceled, String(reason));
  });

  it("refuses a request larger than the limit with resource_exhausted", async () => {
    const error = await client()
      .generate({ prompt: "x".repeat(readMaxBytes * 4) })
      .catch((e: unknown) => ConnectError.from(e));
    assert.ok(error instanceof ConnectError);
    assert.equal(error.code, Code.ResourceExhausted, error.message);
    // The server keeps serving.
    assert.equal((await client().generate({ prompt: "after" })).text, "echo after");
  });

  it("answers a malformed body with a gRPC status, not a broken stream", async () => {
    const session = connect(base);
    try {
      const statusOf = async (body: Buffer) => {
        const stream = session.request({
          ":method": "POST",
          ":path": "/inference.v1.InferenceService/Generate",
          "content-type": "application/grpc",
        });
        stream.end(body);
        const [headers] = (await once(stream, "response")) as [Record<string, string>];
        const trailers = new Promise<Record<string, string>>((resolve) =>
          stream.once("trailers", resolve),
        );
        stream.resume();
        await once(stream, "end");
        return headers["grpc-status"] ?? (await trailers)["grpc-status"];
      };
      assert.equal(await statusOf(Buffer.from([0, 0, 0, 0, 9, 1])), String(Code.InvalidArgument));
      assert.equal(await statusOf(Buffer.alloc(0)), String(Code.Unimplemented));
      const two = Buffer.concat([frameMessage(new Uint8Array()), frameMessage(new Uint8Array())]);
      assert.equal(await statusOf(two), String(Code.Unimplemented));
      assert.equal(await statusOf(Buffer.from([1, 0, 0, 0, 0])), String(Code.Internal));
    } finally {
      session.close();
    }
  });

  it("declines what connect-node serves instead: compression, +json, GET, unknown paths", async () => {
    const session = connect(base);
    try {
      const statusOf = async (headers: Record<string, string>) => {
        const stream = session.request(
          {
            ":method": "POST",
            ":path": "/inference.v1.InferenceService/ListModels",
            "content-type": "application/grpc",
            ...headers,
          },
          { endStream: false },
        );
        stream.end(frameMessage(new Uint8Array()));
        const [response] = (await once(stream, "response")) as [Record<string, number>];
        stream.resume();
        return response[constants.HTTP2_HEADER_STATUS];
      };
      assert.equal(await statusOf({}), 200, "the plain call is served");
      assert.equal(await statusOf({ "grpc-encoding": "gzip" }), 404);
      assert.equal(await statusOf({ "content-type": "application/grpc+json" }), 404);
      assert.equal(await statusOf({ "content-type": "application/grpc-web" }), 404);
      assert.equal(await statusOf({ ":method": "GET" }), 404);
      assert.equal(await statusOf({ ":path": "/inference.v1.InferenceService/Nope" }), 404);
    } finally {
      session.close();
    }
  });

  it("serves @grpc/grpc-js unary and streaming calls", async () => {
    const definition = await protoLoader.load("inference/v1/inference.proto", {
      includeDirs: [join(repoRoot, "proto")],
      enums: String,
      defaults: false,
    });
    const loaded = grpc.loadPackageDefinition(definition) as unknown as {
      inference: { v1: { InferenceService: typeof grpc.Client } };
    };
    const grpcClient = new loaded.inference.v1.InferenceService(
      `127.0.0.1:${port}`,
      grpc.credentials.createInsecure(),
    ) as grpc.Client & {
      Generate(request: object, callback: (e: grpc.ServiceError | null, r: object) => void): void;
      GenerateStream(request: object): grpc.ClientReadableStream<{ text?: string }>;
    };
    try {
      const unary = await new Promise<object>((resolve, reject) =>
        grpcClient.Generate({ prompt: "js" }, (e, r) => (e ? reject(e) : resolve(r))),
      );
      assert.equal((unary as { text?: string }).text, "echo js");
      const texts: string[] = [];
      for await (const message of grpcClient.GenerateStream({ prompt: "s", maxTokens: 5 })) {
        texts.push((message as { text?: string }).text ?? "");
      }
      assert.deepEqual(texts.join(""), "t0t1t2t3t4");
      const invalid = await new Promise<grpc.ServiceError | null>((resolve) =>
        grpcClient.Generate({ prompt: "invalid" }, (e) => resolve(e)),
      );
      assert.equal(invalid?.code, grpc.status.INVALID_ARGUMENT);
      assert.equal(invalid?.details, "prompt is invalid");
    } finally {
      grpcClient.close();
    }
  });

  it("ends calls in flight with unavailable when the server shuts down", async () => {
    const pending = client()
      .generate({ prompt: "wait" })
      .catch((e: unknown) => ConnectError.from(e));
    await new Promise((resolve) => setTimeout(resolve, 100));
    shutdown.abort(new ConnectError("the server is shutting down", Code.Unavailable));
    const error = await pending;
    assert.ok(error instanceof ConnectError);
    assert.equal(error.code, Code.Unavailable);
  });
});
