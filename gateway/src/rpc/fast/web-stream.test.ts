/**
 * The web stream path on its own: bare `node:http` and `node:http2` servers where every request
 * the path declines gets HTTP 404, so each success below was served by this path and nothing
 * else. Clients are connect-node's Connect and gRPC-Web transports (binary and JSON, HTTP/1.1
 * and HTTP/2) and raw requests; the service is a small InferenceService whose streaming handler
 * does what each test needs (the real engine behind the whole gateway is covered by
 * interop.test.ts and the browser tests, whose streams take this path too).
 */
import assert from "node:assert/strict";
import { request as httpRequest } from "node:http";
import { after, before, describe, it } from "node:test";
import { Code, ConnectError, createClient, type Transport } from "@connectrpc/connect";
import { createConnectTransport, createGrpcWebTransport } from "@connectrpc/connect-node";
import { FinishReason, InferenceService } from "@parley/gen/inference/v1/inference_pb";
import {
  aborted,
  collectCallReports,
  type DecliningServers,
  startDecliningServers,
  testPathOptions,
} from "../../testing/beside-connect-node.js";
import { connectEndStreamFromJson as endStreamFromJson } from "../connect-internals.js";
import { rpcService } from "../rpc-service.js";
import { frameMessage } from "./envelope.js";
import { createWebStreamHandler } from "./web-stream.js";

const streamPath = "/inference.v1.InferenceService/GenerateStream";

/** `GenerateStreamRequest { prompt }` in the protobuf binary format, framed. */
function framedPrompt(prompt: string): Buffer {
  const bytes = Buffer.from(prompt);
  return frameMessage(Buffer.from([0x12, bytes.byteLength, ...bytes]));
}

/** Splits a response body into its envelopes. */
function envelopes(body: Buffer): { flags: number; data: Buffer }[] {
  const out: { flags: number; data: Buffer }[] = [];
  for (let at = 0; at + 5 <= body.byteLength; ) {
    const length = body.readUInt32BE(at + 1);
    out.push({ flags: body[at] as number, data: body.subarray(at + 5, at + 5 + length) });
    at += 5 + length;
  }
  return out;
}

describe("the web stream path (Connect server streams, gRPC-Web calls)", () => {
  let servers: DecliningServers;
  let port1: number;
  let port2: number;
  const reports = collectCallReports();
  const handlerAborts: unknown[] = [];
  const shutdown = new AbortController();
  const readMaxBytes = 1024;

  before(async () => {
    const handle = createWebStreamHandler(
      testPathOptions(
        [
          rpcService(InferenceService, {
            generate: (request) => {
              if (request.prompt === "")
                throw new ConnectError("empty prompt", Code.InvalidArgument);
              return { model: "m", text: request.prompt };
            },
            async *generateStream(request, context) {
              if (request.prompt === "invalid") {
                throw new ConnectError("prompt is invalid", Code.InvalidArgument);
              }
              if (request.prompt === "crash") throw new Error("secret internal detail");
              if (request.prompt === "meta") {
                context.responseHeader.set("x-parley-header", "h");
                context.responseTrailer.set("x-parley-trailer", "t");
              }
              yield { model: "m" };
              if (request.prompt === "late") {
                throw new ConnectError("failed after the first message", Code.ResourceExhausted);
              }
              if (request.prompt === "wait") {
                handlerAborts.push(await aborted(context.signal));
                throw ConnectError.from(context.signal.reason);
              }
              const count = request.maxTokens ?? 3;
              for (let i = 0; i < count; i++) yield { text: `t${i}`, tokenIds: [i] };
              yield { finishReason: FinishReason.LENGTH };
            },
          }),
        ],
        readMaxBytes,
        shutdown.signal,
        reports,
      ),
    );
    servers = await startDecliningServers(handle);
    port1 = Number(new URL(servers.url1).port);
    port2 = Number(new URL(servers.url2).port);
  });
  after(() => servers.close());

  type Flavour = { name: string; transport: () => Transport };
  const flavours: Flavour[] = [
    {
      name: "Connect binary, HTTP/1.1",
      transport: () =>
        createConnectTransport({
          baseUrl: `http://127.0.0.1:${port1}`,
          httpVersion: "1.1",
          useBinaryFormat: true,
        }),
    },
    {
      name: "Connect JSON, HTTP/2",
      transport: () =>
        createConnectTransport({ baseUrl: `http://127.0.0.1:${port2}`, httpVersion: "2" }),
    },
    {
      name: "gRPC-Web binary, HTTP/2",
      transport: () =>
        createGrpcWebTransport({
          baseUrl: `http://127.0.0.1:${port2}`,
          httpVersion: "2",
          useBinaryFormat: true,
        }),
    },
    {
      name: "gRPC-Web JSON, HTTP/1.1",
      transport: () =>
        createGrpcWebTransport({ baseUrl: `http://127.0.0.1:${port1}`, httpVersion: "1.1" }),
    },
  ];

  async function collect(transport: Transport, prompt: string, maxTokens?: number) {
    const texts: string[] = [];
    let finish: FinishReason | undefined;
    const client = createClient(InferenceService, transport);
    const error = await (async () => {
      for await (const message of client.generateStream({ prompt, maxTokens })) {
        texts.push(message.text);
        if (message.finishReason !== FinishReason.UNSPECIFIED) finish = message.finishReason;
      }
    })().then(
      () => undefined,
      (e: unknown) => ConnectError.from(e),
    );
    return { texts, finish, error };
  }

  for (const flavour of flavours) {
    it(`${flavour.name}: streams every message in order, then OK, and reports the call`, async () => {
      const before = reports.ended.length;
      const { texts, finish, error } = await collect(flavour.transport(), "s", 40);
      assert.equal(error, undefined);
      assert.deepEqual(texts, ["", ...Array.from({ length: 40 }, (_, i) => `t${i}`), ""]);
      assert.equal(finish, FinishReason.LENGTH);
      const { call, error: status, httpVersion } = await reports.last(before + 1);
      assert.equal(status, undefined);
      assert.equal(call.protocol, flavour.name.startsWith("Connect") ? "connect" : "grpc_web");
      assert.equal(call.method, "inference.v1.InferenceService/GenerateStream");
      assert.equal(httpVersion, flavour.name.endsWith("HTTP/2") ? "2.0" : "1.1");
      assert.equal(call.messagesReceived, 1);
      assert.equal(call.messagesSent, 42);
    });

    it(`${flavour.name}: a handler's ConnectError is the status, before or after messages; other errors are hidden`, async () => {
      const invalid = await collect(flavour.transport(), "invalid");
      assert.deepEqual(invalid.texts, []);
      assert.equal(invalid.error?.code, Code.InvalidArgument);
      assert.equal(invalid.error?.rawMessage, "prompt is invalid");
      const late = await collect(flavour.transport(), "late");
      assert.deepEqual(late.texts, [""], "the message before the error arrives");
      assert.equal(late.error?.code, Code.ResourceExhausted);
      assert.equal(late.error?.rawMessage, "failed after the first message");
      const crash = await collect(flavour.transport(), "crash");
      assert.equal(crash.error?.code, Code.Internal);
      assert.equal(crash.error?.rawMessage, "internal error");
    });
  }

  it("serves gRPC-Web unary calls as a stream of one message, errors included", async () => {
    for (const flavour of flavours.filter((f) => f.name.startsWith("gRPC-Web"))) {
      const client = createClient(InferenceService, flavour.transport());
      assert.equal((await client.generate({ prompt: "x" })).text, "x", flavour.name);
      const error = await client.generate({ prompt: "" }).then(
        () => undefined,
        (e: unknown) => ConnectError.from(e),
      );
      assert.equal(error?.code, Code.InvalidArgument, flavour.name);
      assert.equal(error?.rawMessage, "empty prompt", flavour.name);
    }
  });

  it("passes the handler's response headers and trailers to the client", async () => {
    for (const flavour of flavours) {
      const client = createClient(InferenceService, flavour.transport());
      let header: Headers | undefined;
      let trailer: Headers | undefined;
      for await (const _ of client.generateStream(
        { prompt: "meta", maxTokens: 1 },
        { onHeader: (h) => (header = h), onTrailer: (t) => (trailer = t) },
      )) {
        // drain
      }
      assert.equal(header?.get("x-parley-header"), "h", flavour.name);
      assert.equal(trailer?.get("x-parley-trailer"), "t", flavour.name);
    }
  });

  /** A raw HTTP/1.1 POST to the streaming method; resolves with the status and whole body. */
  function post(
    headers: Record<string, string>,
    body: Buffer,
    method = "POST",
  ): Promise<{ status: number; body: Buffer; elapsedMs: number }> {
    const started = performance.now();
    return new Promise((resolve, reject) => {
      const request = httpRequest(
        { host: "127.0.0.1", port: port1, path: streamPath, method, headers },
        (response) => {
          const chunks: Buffer[] = [];
          response.on("data", (chunk: Buffer) => chunks.push(chunk));
          response.on("end", () =>
            resolve({
              status: response.statusCode ?? 0,
              body: Buffer.concat(chunks),
              elapsedMs: performance.now() - started,
            }),
          );
        },
      );
      request.on("error", reject);
      request.end(body);
    });
  }

  /** The error code of a Connect stream's end-stream message. */
  function connectEndCode(body: Buffer): Code | undefined {
    const last = envelopes(body).at(-1);
    assert.equal(last?.flags, 2, "the stream ends with an end-stream message");
    return endStreamFromJson(last.data).error?.code;
  }

  it("ends a call at its deadline with deadline_exceeded and aborts the handler", async () => {
    const before = reports.ended.length;
    const response = await post(
      { "content-type": "application/connect+proto", "connect-timeout-ms": "150" },
      framedPrompt("wait"),
    );
    assert.equal(response.status, 200);
    assert.equal(connectEndCode(response.body), Code.DeadlineExceeded);
    assert.ok(
      response.elapsedMs >= 140 && response.elapsedMs < 2_000,
      `after ${response.elapsedMs} ms`,
    );
    const reason = handlerAborts.at(-1);
    assert.ok(reason instanceof ConnectError && reason.code === Code.DeadlineExceeded);
    assert.equal((await reports.last(before + 1)).error?.code, Code.DeadlineExceeded);
    const grpcWeb = await post(
      { "content-type": "application/grpc-web+proto", "grpc-timeout": "100m" },
      framedPrompt("wait"),
    );
    const trailer = Buffer.from(envelopes(grpcWeb.body).at(-1)?.data ?? []).toString();
    assert.match(trailer, new RegExp(`grpc-status: ?${Code.DeadlineExceeded}\\r\\n`, "i"));
  });

  it("aborts the handler when the client cancels, and reports canceled", async () => {
    for (const flavour of flavours) {
      const before = reports.ended.length;
      const handlerAbortsBefore = handlerAborts.length;
      const abort = new AbortController();
      const client = createClient(InferenceService, flavour.transport());
      const outcome = await (async () => {
        for await (const _ of client.generateStream({ prompt: "wait" }, { signal: abort.signal })) {
          abort.abort();
        }
      })().catch((e: unknown) => ConnectError.from(e));
      assert.equal(outcome?.code, Code.Canceled, flavour.name);
      assert.equal((await reports.last(before + 1)).error?.code, Code.Canceled, flavour.name);
      for (let i = 0; i < 100 && handlerAborts.length === handlerAbortsBefore; i++) {
        await new Promise((resolve) => setTimeout(resolve, 10));
      }
      // As under connect-node's router: canceled on HTTP/2 (the stream's reset code), the
      // platform's AbortError on HTTP/1.1.
      const reason = handlerAborts.at(-1);
      assert.ok(
        (reason instanceof ConnectError && reason.code === Code.Canceled) ||
          (reason instanceof Error && reason.name === "AbortError"),
        `${flavour.name}: ${String(reason)}`,
      );
    }
  });

  it("answers bad requests in the stream's own status, and keeps serving", async () => {
    const connect = { "content-type": "application/connect+proto" };
    const tooLarge = await post(connect, framedPrompt("x".repeat(200)).subarray(0, 5));
    assert.equal(connectEndCode(tooLarge.body), Code.InvalidArgument, "incomplete envelope");
    const oversized = frameMessage(Buffer.alloc(readMaxBytes * 2));
    assert.equal(connectEndCode((await post(connect, oversized)).body), Code.ResourceExhausted);
    assert.equal(connectEndCode((await post(connect, Buffer.alloc(0))).body), Code.Unimplemented);
    // An unreadable message is internal, as connect-node and grpc-go answer it.
    const garbage = frameMessage(Buffer.from([0xff, 0xff, 0xff]));
    assert.equal(connectEndCode((await post(connect, garbage)).body), Code.Internal);
    const badTimeout = await post({ ...connect, "connect-timeout-ms": "soon" }, framedPrompt("s"));
    assert.equal(connectEndCode(badTimeout.body), Code.InvalidArgument);
    const json = await post(
      { "content-type": "application/connect+json" },
      frameMessage(Buffer.from('{"prompt": 5}')),
    );
    assert.equal(connectEndCode(json.body), Code.InvalidArgument);
    const ok = await collect(flavours[0]?.transport() as Transport, "s", 2);
    assert.equal(ok.error, undefined);
  });

  it("declines what connect-node serves instead: Connect unary, compression, gRPC-Web text, GET", async () => {
    const connect = { "content-type": "application/connect+proto" };
    assert.equal((await post(connect, framedPrompt("s"))).status, 200, "the plain call is served");
    const declined: Record<string, string>[] = [
      { "content-type": "application/proto" },
      { ...connect, "connect-content-encoding": "gzip" },
      { "content-type": "application/grpc-web-text" },
      { "content-type": "application/grpc-web", "grpc-encoding": "gzip" },
      { "content-type": "application/grpc" },
    ];
    for (const headers of declined) {
      assert.equal((await post(headers, framedPrompt("s"))).status, 404, JSON.stringify(headers));
    }
    assert.equal((await post(connect, Buffer.alloc(0), "GET")).status, 404, "GET");
  });

  it("ends calls in flight with unavailable when the server shuts down", async () => {
    const client = createClient(InferenceService, flavours[0]?.transport() as Transport);
    const pending = (async () => {
      for await (const _ of client.generateStream({ prompt: "wait" })) {
        // the model message; then the handler waits
      }
    })().catch((e: unknown) => ConnectError.from(e));
    await new Promise((resolve) => setTimeout(resolve, 100));
    shutdown.abort(new ConnectError("the server is shutting down", Code.Unavailable));
    const error = await pending;
    assert.equal(error?.code, Code.Unavailable);
  });
});
