/**
 * The Connect unary path on its own: bare `node:http` and `node:http2` servers where every
 * request the path declines gets HTTP 404, so each success below was served by this path and
 * nothing else. Clients are curl (JSON, as a user types it) and connect-node's Connect transport
 * (binary and JSON, HTTP/1.1 and HTTP/2); the service is a small InferenceService whose unary
 * handler does what each test needs (the real engine behind the whole gateway is covered by
 * create-gateway-server.test.ts and interop.test.ts, whose Connect unary calls take this path).
 */
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { Code, ConnectError, createClient, type Transport } from "@connectrpc/connect";
import { createConnectTransport } from "@connectrpc/connect-node";
import { FinishReason, InferenceService } from "@parley/gen/inference/v1/inference_pb";
import {
  aborted,
  collectCallReports,
  type DecliningServers,
  startDecliningServers,
  testPathOptions,
} from "../../testing/beside-connect-node.js";
import { runCommand } from "../../testing/run-command.js";
import { rpcService } from "../rpc-service.js";
import { createConnectUnaryHandler } from "./connect-unary.js";

const generatePath = "/inference.v1.InferenceService/Generate";

describe("the Connect unary path", () => {
  let servers: DecliningServers;
  let url1: string;
  let url2: string;
  const reports = collectCallReports();
  const handlerAborts: unknown[] = [];
  const shutdown = new AbortController();
  const readMaxBytes = 1024;

  before(async () => {
    const handle = createConnectUnaryHandler(
      testPathOptions(
        [
          rpcService(InferenceService, {
            async generate(request, context) {
              if (request.prompt === "invalid") {
                throw new ConnectError("prompt is invalid", Code.InvalidArgument);
              }
              if (request.prompt === "crash") throw new Error("secret internal detail");
              if (request.prompt === "wait") {
                handlerAborts.push(await aborted(context.signal));
                throw ConnectError.from(context.signal.reason);
              }
              if (request.prompt === "meta") {
                context.responseHeader.set("x-parley-header", "h");
                context.responseTrailer.set("x-parley-trailer", "t");
              }
              return {
                model: "m",
                text: `echo ${request.prompt}`,
                finishReason: FinishReason.STOP,
              };
            },
            listModels: () => ({ models: [{ id: "m", isDefault: true }] }),
          }),
        ],
        readMaxBytes,
        shutdown.signal,
        reports,
      ),
    );
    servers = await startDecliningServers(handle);
    url1 = servers.url1;
    url2 = servers.url2;
  });
  after(() => servers.close());

  const transports: { name: string; transport: () => Transport }[] = [
    {
      name: "binary, HTTP/1.1",
      transport: () =>
        createConnectTransport({ baseUrl: url1, httpVersion: "1.1", useBinaryFormat: true }),
    },
    {
      name: "JSON, HTTP/2",
      transport: () => createConnectTransport({ baseUrl: url2, httpVersion: "2" }),
    },
  ];

  /** curl's view of a POST: HTTP status, headers and body. */
  async function curl(body: string, ...extra: string[]) {
    const typed = extra.some((arg) => arg.startsWith("content-type:"));
    const result = await runCommand("curl", [
      "-sS",
      "-i",
      ...(typed ? [] : ["-H", "content-type: application/json"]),
      "--data-binary",
      body,
      ...extra,
    ]);
    assert.equal(result.code, 0, result.stderr);
    const [head = "", text = ""] = result.stdout.split("\r\n\r\n");
    const status = Number(head.split(" ")[1]);
    return { status, head: head.toLowerCase(), body: text };
  }

  it("answers curl's JSON over HTTP/1.1 and HTTP/2, and reports the call", async () => {
    for (const [url, flag, version] of [
      [url1, "--http1.1", "1.1"],
      [url2, "--http2-prior-knowledge", "2.0"],
    ] as const) {
      const before = reports.ended.length;
      const response = await curl('{"prompt": "hi"}', flag, `${url}${generatePath}`);
      assert.equal(response.status, 200);
      assert.match(response.head, /content-type: application\/json/);
      assert.deepEqual(JSON.parse(response.body), {
        model: "m",
        text: "echo hi",
        finishReason: "FINISH_REASON_STOP",
      });
      const { call, error, httpVersion } = await reports.last(before + 1);
      assert.equal(error, undefined);
      assert.equal(call.protocol, "connect");
      assert.equal(call.method, "inference.v1.InferenceService/Generate");
      assert.equal(httpVersion, version);
      assert.equal(call.messagesReceived, 1);
      assert.equal(call.messagesSent, 1);
      assert.equal(call.bytesSent, Buffer.byteLength(response.body));
    }
  });

  it("answers connect-node's client in both formats and HTTP versions", async () => {
    for (const { name, transport } of transports) {
      const client = createClient(InferenceService, transport());
      assert.equal((await client.generate({ prompt: "x" })).text, "echo x", name);
      assert.equal((await client.listModels({})).models[0]?.id, "m", name);
    }
  });

  it("answers errors with the code's HTTP status and Connect's error JSON; internal ones hidden", async () => {
    const invalid = await curl('{"prompt": "invalid"}', `${url1}${generatePath}`);
    assert.equal(invalid.status, 400);
    assert.deepEqual(JSON.parse(invalid.body), {
      code: "invalid_argument",
      message: "prompt is invalid",
    });
    const crash = await curl('{"prompt": "crash"}', `${url1}${generatePath}`);
    assert.equal(crash.status, 500);
    assert.deepEqual(JSON.parse(crash.body), { code: "internal", message: "internal error" });
    for (const { name, transport } of transports) {
      const client = createClient(InferenceService, transport());
      const error = await client.generate({ prompt: "invalid" }).then(
        () => undefined,
        (e: unknown) => ConnectError.from(e),
      );
      assert.equal(error?.code, Code.InvalidArgument, name);
      assert.equal(error?.rawMessage, "prompt is invalid", name);
    }
  });

  it("sends the handler's headers, and its trailers as trailer- headers", async () => {
    const response = await curl('{"prompt": "meta"}', `${url1}${generatePath}`);
    assert.match(response.head, /x-parley-header: h/);
    assert.match(response.head, /trailer-x-parley-trailer: t/);
    let trailer: Headers | undefined;
    const client = createClient(InferenceService, transports[1]?.transport() as Transport);
    await client.generate({ prompt: "meta" }, { onTrailer: (t) => (trailer = t) });
    assert.equal(trailer?.get("x-parley-trailer"), "t");
  });

  it("ends a call at its deadline with deadline_exceeded and aborts the handler", async () => {
    const before = reports.ended.length;
    const started = performance.now();
    const response = await curl(
      '{"prompt": "wait"}',
      "-H",
      "connect-timeout-ms: 150",
      `${url1}${generatePath}`,
    );
    const elapsed = performance.now() - started;
    assert.equal(response.status, 504);
    assert.equal(JSON.parse(response.body).code, "deadline_exceeded");
    assert.ok(elapsed >= 140 && elapsed < 3_000, `after ${elapsed} ms`);
    const reason = handlerAborts.at(-1);
    assert.ok(reason instanceof ConnectError && reason.code === Code.DeadlineExceeded);
    assert.equal((await reports.last(before + 1)).error?.code, Code.DeadlineExceeded);
  });

  it("aborts the handler when the client cancels, and reports canceled", async () => {
    const before = reports.ended.length;
    const abort = new AbortController();
    const client = createClient(InferenceService, transports[0]?.transport() as Transport);
    const pending = client.generate({ prompt: "wait" }, { signal: abort.signal }).then(
      () => undefined,
      (e: unknown) => ConnectError.from(e),
    );
    await new Promise((resolve) => setTimeout(resolve, 100));
    abort.abort();
    assert.equal((await pending)?.code, Code.Canceled);
    assert.equal((await reports.last(before + 1)).error?.code, Code.Canceled);
    // As under connect-node's router: on HTTP/1.1 the signal aborts with no reason of its own.
    const reason = handlerAborts.at(-1);
    assert.ok(reason instanceof Error && reason.name === "AbortError", String(reason));
  });

  it("answers bad requests with their code, and keeps serving", async () => {
    const url = `${url1}${generatePath}`;
    const large = JSON.stringify({ prompt: "x".repeat(readMaxBytes) });
    const declared = await curl(large, url);
    assert.equal(declared.status, 429);
    assert.equal(JSON.parse(declared.body).code, "resource_exhausted");
    // No content-length: the limit is enforced as the bytes arrive.
    const chunked = await curl(large, "-H", "transfer-encoding: chunked", url);
    assert.equal(JSON.parse(chunked.body).code, "resource_exhausted");
    const malformed = await curl("{not json", url);
    assert.equal(malformed.status, 400);
    assert.equal(JSON.parse(malformed.body).code, "invalid_argument");
    const wrongType = await curl('{"prompt": 5}', url);
    assert.equal(JSON.parse(wrongType.body).code, "invalid_argument");
    const badTimeout = await curl('{"prompt": "a"}', "-H", "connect-timeout-ms: soon", url);
    assert.equal(JSON.parse(badTimeout.body).code, "invalid_argument");
    assert.equal((await curl('{"prompt": "after"}', url)).status, 200);
  });

  it("declines what connect-node serves instead: GET, compressed bodies, streams, other protocols", async () => {
    const url = `${url1}${generatePath}`;
    assert.equal((await curl("{}", "-H", "content-encoding: gzip", url)).status, 404);
    assert.equal(
      (await curl("{}", "-H", "content-type: application/connect+json", url)).status,
      404,
    );
    assert.equal(
      (await curl("{}", "-H", "content-type: application/grpc-web+json", url)).status,
      404,
    );
    assert.equal((await curl("{}", "-G", url)).status, 404, "GET");
    const stream = `${url1}/inference.v1.InferenceService/GenerateStream`;
    assert.equal((await curl("{}", stream)).status, 404, "a server-streaming method");
  });

  it("answers calls in flight with unavailable when the server shuts down", async () => {
    const client = createClient(InferenceService, transports[0]?.transport() as Transport);
    const pending = client.generate({ prompt: "wait" }).then(
      () => undefined,
      (e: unknown) => ConnectError.from(e),
    );
    await new Promise((resolve) => setTimeout(resolve, 100));
    shutdown.abort(new ConnectError("the server is shutting down", Code.Unavailable));
    assert.equal((await pending)?.code, Code.Unavailable);
  });
});
