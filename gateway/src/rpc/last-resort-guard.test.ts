/**
 * Status messages are made well-formed before encoding on every path, and the last-resort guard
 * of the paths beside connect-node: a call whose own code throws where
 * nothing expects it fails alone with internal, logged once with its cause, while other calls go
 * on. The throw is a real one: a handler sets a response header HTTP/2 forbids (`transfer-encoding`),
 * and Node throws from `respond` / `setHeader` when the path writes the response, inside a
 * promise callback or a stream write (before the guard, an unhandled rejection: the process
 * exits). Served by createRpcHandler on a real h2c server, called by connect-node's clients.
 */
import assert from "node:assert/strict";
import { once } from "node:events";
import { createServer, type Http2Server, type ServerHttp2Session } from "node:http2";
import type { AddressInfo } from "node:net";
import { Writable } from "node:stream";
import { after, before, describe, it } from "node:test";
import { Code, ConnectError, createClient, type Transport } from "@connectrpc/connect";
import {
  createConnectTransport,
  createGrpcTransport,
  createGrpcWebTransport,
} from "@connectrpc/connect-node";
import { FinishReason, InferenceService } from "@parley/gen/inference/v1/inference_pb";
import { pino } from "pino";
import { Registry } from "prom-client";
import { createRpcMetrics } from "../observability/rpc-metrics.js";
import { createRpcHandler } from "./create-rpc-handler.js";
import { rpcService } from "./rpc-service.js";

describe("the last-resort guard of the fast paths", () => {
  let server: Http2Server;
  let base: string;
  const sessions = new Set<ServerHttp2Session>();
  const logLines: Record<string, unknown>[] = [];
  const release: (() => void)[] = [];

  before(async () => {
    const logger = pino(
      { level: "info" },
      new Writable({
        write(chunk: Buffer, _encoding, done) {
          for (const line of chunk.toString().split("\n").filter(Boolean)) {
            logLines.push(JSON.parse(line) as Record<string, unknown>);
          }
          done();
        },
      }),
    );
    const rpc = createRpcHandler({
      services: [
        rpcService(InferenceService, {
          listModels: () => ({ models: [] }),
          async generate(request, context) {
            if (request.prompt === "surrogate") {
              throw new ConnectError("bad \ud800 value", Code.InvalidArgument);
            }
            if (request.prompt === "bad header")
              context.responseHeader.set("transfer-encoding", "chunked");
            return { model: "m", text: request.prompt, finishReason: FinishReason.STOP };
          },
          async *generateStream(request, context) {
            if (request.prompt === "bad header")
              context.responseHeader.set("transfer-encoding", "chunked");
            if (request.prompt === "wait") {
              yield { model: "m" };
              await new Promise<void>((resolve) => release.push(resolve));
            }
            yield { text: request.prompt };
            yield { finishReason: FinishReason.STOP };
          },
        }),
      ],
      readMaxBytes: 1 << 20,
      maxTimeoutMs: 60_000,
      shutdownSignal: new AbortController().signal,
      metrics: createRpcMetrics(new Registry()),
      logger,
    });
    server = createServer((request, response) => {
      if (!rpc.handle(request, response)) {
        response.statusCode = 404;
        response.end();
      }
    });
    // As the gateway does (routeStreams): the direct gRPC path first, then the compatibility API.
    const compat = server.listeners("stream") as ((...args: unknown[]) => void)[];
    server.removeAllListeners("stream");
    server.on("stream", (stream, headers, flags, raw) => {
      if (!rpc.handleStream(stream, headers)) compat[0]?.call(server, stream, headers, flags, raw);
    });
    server.on("session", (session) => {
      sessions.add(session);
      session.once("close", () => sessions.delete(session));
    });
    server.listen(0, "127.0.0.1");
    await once(server, "listening");
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  after(() => {
    server.close();
    for (const session of sessions) session.destroy();
  });

  const transports: [string, () => Transport][] = [
    ["gRPC", () => createGrpcTransport({ baseUrl: base })],
    ["gRPC-Web", () => createGrpcWebTransport({ baseUrl: base, httpVersion: "2" })],
    ["Connect", () => createConnectTransport({ baseUrl: base, httpVersion: "2" })],
  ];

  it("sends a handler's error whose message holds a lone surrogate as its code, on every path", async () => {
    const paths: [string, Transport][] = [
      ["gRPC (fast path)", createGrpcTransport({ baseUrl: base })],
      ["gRPC +json (connect-node)", createGrpcTransport({ baseUrl: base, useBinaryFormat: false })],
      ["gRPC-Web (fast path)", createGrpcWebTransport({ baseUrl: base, httpVersion: "2" })],
      ["Connect (fast path)", createConnectTransport({ baseUrl: base, httpVersion: "2" })],
    ];
    for (const [name, transport] of paths) {
      const error = await createClient(InferenceService, transport)
        .generate({ prompt: "surrogate" })
        .then(
          () => undefined,
          (e: unknown) => ConnectError.from(e),
        );
      assert.equal(error?.code, Code.InvalidArgument, name);
      assert.equal(error?.rawMessage, "bad \ufffd value", name);
    }
  });

  for (const [name, transport] of transports) {
    it(`${name}: a call that throws while its response is written fails alone with internal, logged once`, async () => {
      const client = createClient(InferenceService, transport());
      // Another call is in flight the whole time, and must end normally.
      const texts: string[] = [];
      const other = (async () => {
        for await (const message of client.generateStream({ prompt: "wait" })) {
          texts.push(message.text);
        }
      })();
      await waitFor(() => release.length > 0);
      const from = logLines.length;
      const failures: (ConnectError | undefined)[] = [];
      failures.push(
        await client.generate({ prompt: "bad header" }).then(
          () => undefined,
          (e: unknown) => ConnectError.from(e),
        ),
      );
      failures.push(
        await (async () => {
          for await (const _ of client.generateStream({ prompt: "bad header" })) {
            // nothing arrives before the failure
          }
        })().then(
          () => undefined,
          (e: unknown) => ConnectError.from(e),
        ),
      );
      for (const failure of failures) {
        assert.ok(failure instanceof ConnectError, "the call failed");
        // The status could not be written (the headers are refused): internal, or a reset stream.
        assert.ok(
          [Code.Internal, Code.Unknown, Code.Canceled, Code.Unavailable].includes(failure.code),
          `${name}: ${failure.code} ${failure.rawMessage}`,
        );
      }
      release.shift()?.();
      await other;
      assert.deepEqual(texts, ["", "wait", ""], "the other call went on");
      assert.equal(
        (await client.generate({ prompt: "after" })).text,
        "after",
        "and the next call is served",
      );
      await waitFor(() => logLines.length >= from + 4);
      const errors = logLines.slice(from).filter((l) => (l.level as number) >= 50);
      assert.equal(errors.length, 2, `${name}: one error line per failed call`);
      for (const line of errors) {
        assert.equal(line.code, "internal");
        const cause = line.err as { code?: string } | undefined;
        assert.equal(cause?.code, "ERR_HTTP2_INVALID_CONNECTION_HEADERS", JSON.stringify(line));
      }
    });
  }
});

async function waitFor(condition: () => boolean): Promise<void> {
  for (let i = 0; i < 200 && !condition(); i++) {
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
  assert.ok(condition(), "the condition came true within 2 s");
}
