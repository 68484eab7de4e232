/**
 * @module Requests a hostile client sends, against the `parley` process itself (a child, so that
 * "the process stays up" is a fact, not an assumption): issue 13's findings, each on every
 * protocol path it reached. Statuses are read from the raw responses (testing/raw-rpc.ts), since
 * real clients refuse to send these requests.
 */
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { once } from "node:events";
import { request as h1Request } from "node:http";
import type { ClientHttp2Session } from "node:http2";
import { after, before, describe, it } from "node:test";
import { fileURLToPath } from "node:url";
import { gzipSync } from "node:zlib";
import { create, toBinary } from "@bufbuild/protobuf";
import { Code } from "@connectrpc/connect";
import { GenerateRequestSchema } from "@parley/gen/inference/v1/inference_pb";
import { type GatewayProcess, startGatewayProcess } from "../testing/gateway-process.js";
import {
  openSession,
  postAndReadLate,
  type RawRequest,
  type RawResponse,
  sendHttp1,
  sendHttp2,
  type WireProtocol,
  wireStatus,
} from "../testing/raw-rpc.js";

const service = "/inference.v1.InferenceService";

/** One way to reach the gateway: a protocol and format, over HTTP/1.1 or h2c. */
interface Route {
  readonly name: string;
  readonly protocol: WireProtocol;
  readonly http: "1.1" | "2";
  readonly contentType: string;
  /** Frames a request message for this protocol. */
  readonly frame: (message: Buffer) => Buffer;
}

function envelope(message: Buffer, flags = 0, length = message.byteLength): Buffer {
  const prefix = Buffer.alloc(5);
  prefix[0] = flags;
  prefix.writeUInt32BE(length, 1);
  return Buffer.concat([prefix, message]);
}

const enveloped = (message: Buffer) => envelope(message);

describe("hostile requests against the parley process", () => {
  let gateway: GatewayProcess;
  let session: ClientHttp2Session;

  before(async () => {
    gateway = await startGatewayProcess(["--max-timeout-ms", "2147483647"]);
    session = openSession(gateway.url);
  });
  after(async () => {
    session.close();
    assert.equal(await gateway.stop(), 0, "parley exits cleanly after it all");
  });

  const send = (route: { http: "1.1" | "2" }, request: RawRequest): Promise<RawResponse> =>
    route.http === "2" ? sendHttp2(session, request) : sendHttp1(gateway.url, request);

  const codeOf = async (route: Route, method: string, body: RawRequest["body"], extra = {}) => {
    const response = await send(route, {
      path: `${service}/${method}`,
      headers: { "content-type": route.contentType, ...extra },
      body,
    });
    assert.ok(gateway.alive(), `parley is alive after ${route.name} ${method}`);
    return wireStatus(route.protocol, response)?.code;
  };

  const jsonRoutes: Route[] = [
    {
      name: "gRPC-Web JSON h1",
      protocol: "grpc_web",
      http: "1.1",
      contentType: "application/grpc-web+json",
      frame: enveloped,
    },
    {
      name: "gRPC-Web JSON h2",
      protocol: "grpc_web",
      http: "2",
      contentType: "application/grpc-web+json",
      frame: enveloped,
    },
    {
      name: "gRPC +json h2",
      protocol: "grpc",
      http: "2",
      contentType: "application/grpc+json",
      frame: enveloped,
    },
    {
      name: "Connect stream JSON h1",
      protocol: "connect_stream",
      http: "1.1",
      contentType: "application/connect+json",
      frame: enveloped,
    },
    {
      name: "Connect stream JSON h2",
      protocol: "connect_stream",
      http: "2",
      contentType: "application/connect+json",
      frame: enveloped,
    },
    {
      name: "Connect unary JSON h1",
      protocol: "connect",
      http: "1.1",
      contentType: "application/json",
      frame: (m) => m,
    },
    {
      name: "Connect unary JSON h2",
      protocol: "connect",
      http: "2",
      contentType: "application/json",
      frame: (m) => m,
    },
  ];

  it("answers a lone surrogate in a JSON field with invalid_argument on every path, and stays up", async () => {
    const texts = [
      String.raw`{"prompt":"a","maxTokens":"\ud800"}`,
      String.raw`{"prompt":"a","temperature":"\udc00"}`,
      String.raw`{"prompt":"\ud800"}`,
      String.raw`{"prompt":"a","stop":["\udfff\ud800"]}`,
    ];
    for (const route of jsonRoutes) {
      for (const method of ["Generate", "GenerateStream"]) {
        if (route.protocol === "connect" && method === "GenerateStream") continue;
        if (route.protocol === "connect_stream" && method === "Generate") continue;
        for (const text of texts) {
          const code = await codeOf(route, method, route.frame(Buffer.from(text)));
          assert.equal(code, Code.InvalidArgument, `${route.name} ${method} ${text}`);
        }
      }
    }
    // An undecodable value without surrogates was always a proper status; it still is on gRPC +json.
    const grpcJson = jsonRoutes.find((r) => r.name === "gRPC +json h2") as Route;
    const abc = await codeOf(grpcJson, "Generate", enveloped(Buffer.from('{"maxTokens":"abc"}')));
    assert.equal(abc, Code.InvalidArgument);
    assert.ok(gateway.alive());
  });

  const fastStreamRoutes: Route[] = [
    {
      name: "gRPC h2",
      protocol: "grpc",
      http: "2",
      contentType: "application/grpc",
      frame: enveloped,
    },
    {
      name: "gRPC-Web h1",
      protocol: "grpc_web",
      http: "1.1",
      contentType: "application/grpc-web+proto",
      frame: enveloped,
    },
    {
      name: "gRPC-Web h2",
      protocol: "grpc_web",
      http: "2",
      contentType: "application/grpc-web+proto",
      frame: enveloped,
    },
    {
      name: "Connect stream JSON h1",
      protocol: "connect_stream",
      http: "1.1",
      contentType: "application/connect+json",
      frame: enveloped,
    },
    {
      name: "Connect stream JSON h2",
      protocol: "connect_stream",
      http: "2",
      contentType: "application/connect+json",
      frame: enveloped,
    },
  ];

  it("stops reading a lying envelope (7 bytes announced, 128 MiB sent) with resource_exhausted, in bounded memory", async () => {
    // RSS may grow this much at most over all five 128 MiB bodies; buffering one would take 128.
    const limitBytes = 64 * 2 ** 20;
    const rssBefore = await gateway.metric("process_resident_memory_bytes");
    assert.ok(rssBefore !== undefined);
    let peak = rssBefore;
    for (const route of fastStreamRoutes) {
      const json = route.contentType.endsWith("json");
      const message = json
        ? Buffer.from("{}     ") // an empty request, padded: unknown fields would be refused first
        : Buffer.from([0x12, 0x05, ...Buffer.from("hello")]);
      assert.equal(message.byteLength, 7);
      const request: RawRequest = {
        path: `${service}/${route.protocol === "connect_stream" ? "GenerateStream" : "Generate"}`,
        headers: { "content-type": route.contentType },
        // "A" bytes: the next envelope announces 0x41414141 bytes, over the 4 MiB limit.
        body: { head: envelope(message), size: 128 * 2 ** 20, fill: 0x41 },
      };
      // Its own session: one that floods a session is refused new streams there (Node's maxSessionMemory).
      const own = openSession(gateway.url);
      const response =
        route.http === "2" ? await sendHttp2(own, request) : await sendHttp1(gateway.url, request);
      own.destroy();
      assert.ok(gateway.alive(), route.name);
      assert.equal(wireStatus(route.protocol, response)?.code, Code.ResourceExhausted, route.name);
      assert.ok(
        response.sent < 64 * 2 ** 20,
        `${route.name}: the gateway stopped reading (${response.sent} sent)`,
      );
      peak = Math.max(peak, (await gateway.metric("process_resident_memory_bytes")) ?? 0);
    }
    assert.ok(peak - rssBefore < limitBytes, `RSS grew by ${(peak - rssBefore) / 2 ** 20} MiB`);
  });

  it("keeps an early status readable over HTTP/1.1 for a client that sent Connection: close and reads late", async () => {
    // Node destroys such a connection as soon as the response is written; with the upload still
    // arriving, the kernel's RST then discards the status before this client reads it.
    const cases = [
      {
        path: "Generate",
        contentType: "application/grpc-web+proto",
        status: /grpc-status: ?8\r\n/,
      },
      {
        path: "GenerateStream",
        contentType: "application/connect+json",
        status: /"resource_exhausted"/,
      },
      { path: "Generate", contentType: "application/json", status: /^HTTP\/1\.1 429 / },
    ];
    const { port } = new URL(gateway.url);
    for (const { path, contentType, status } of cases) {
      const size = 8 * 2 ** 20; // over the default --max-request-bytes (4 MiB)
      const { text } = await postAndReadLate({
        port: Number(port),
        path: `${service}/${path}`,
        headers: { "Content-Type": contentType },
        contentLength: size,
        // A body that announces itself as one 8 MiB message, so every path refuses it by size.
        body: contentType.startsWith("application/json")
          ? Buffer.alloc(size, 0x20)
          : envelope(Buffer.alloc(size - 5), 0, size - 5),
        readAfterMs: 300,
      });
      assert.match(text, status, `${contentType} ${path}: ${JSON.stringify(text.slice(0, 200))}`);
    }
    assert.ok(gateway.alive());
  });

  it("ends an already expired deadline with deadline_exceeded on every fast path, never OK", async () => {
    const empty = enveloped(Buffer.alloc(0));
    const cases: [Route, string, Record<string, string>][] = [
      [fastStreamRoutes[0] as Route, "ListModels", { "grpc-timeout": "0n" }],
      [fastStreamRoutes[1] as Route, "ListModels", { "grpc-timeout": "0n" }],
      [fastStreamRoutes[2] as Route, "ListModels", { "grpc-timeout": "0m" }],
      [fastStreamRoutes[3] as Route, "GenerateStream", { "connect-timeout-ms": "0" }],
      [fastStreamRoutes[4] as Route, "GenerateStream", { "connect-timeout-ms": "0" }],
    ];
    for (const [route, method, timeout] of cases) {
      const body = method === "ListModels" ? empty : enveloped(Buffer.from('{"prompt":"a"}'));
      for (let i = 0; i < 20; i++) {
        assert.equal(await codeOf(route, method, body, timeout), Code.DeadlineExceeded, route.name);
      }
    }
    const unary = jsonRoutes.filter((r) => r.protocol === "connect");
    for (const route of unary) {
      for (let i = 0; i < 20; i++) {
        const code = await codeOf(route, "ListModels", Buffer.from("{}"), {
          "connect-timeout-ms": "0",
        });
        assert.equal(code, Code.DeadlineExceeded, route.name);
      }
    }
  });

  it("serves a client timeout beyond 2^31 ms under --max-timeout-ms 2147483647 instead of failing it at once", async () => {
    const grpc = fastStreamRoutes[0] as Route;
    const body = enveloped(
      Buffer.from(
        toBinary(
          GenerateRequestSchema,
          create(GenerateRequestSchema, { prompt: "a", maxTokens: 1 }),
        ),
      ),
    );
    // 99999999 S is about 3.2 years, the longest timeout gRPC can say.
    assert.equal(await codeOf(grpc, "Generate", body, { "grpc-timeout": "99999999S" }), undefined);
    // The same on connect-node's path (a compressed request).
    const gzip = envelope(gzipSync(body.subarray(5)), 1);
    const code = await codeOf(grpc, "Generate", gzip, {
      "grpc-timeout": "99999999S",
      "grpc-encoding": "gzip",
    });
    assert.equal(code, undefined);
  });

  it("refuses --max-timeout-ms above 2^31 - 1 with a clear message and exit code 2", async () => {
    const child = spawn(process.execPath, [
      fileURLToPath(new URL("../main.js", import.meta.url)),
      "--max-timeout-ms",
      "4294967296",
    ]);
    const stderr: Buffer[] = [];
    child.stderr.on("data", (c: Buffer) => stderr.push(c));
    child.stdout.on("data", (c: Buffer) => stderr.push(c));
    assert.equal((await once(child, "exit"))[0], 2);
    assert.match(
      Buffer.concat(stderr).toString(),
      /--max-timeout-ms must be an integer in \[1, 2147483647\]/,
    );
  });

  it("logs client errors at warn or info with the code they got, never at error", async () => {
    const from = gateway.logs.length;
    const garbage = Buffer.from([0xff, 0xff, 0xff]);
    const grpc = fastStreamRoutes[0] as Route;
    const webBinary = fastStreamRoutes[1] as Route;
    // A malformed protobuf message, on the fast paths and connect-node's.
    assert.equal(await codeOf(grpc, "Generate", enveloped(garbage)), Code.Internal);
    assert.equal(await codeOf(webBinary, "Generate", enveloped(garbage)), Code.Internal);
    const unary: Route = {
      ...grpc,
      name: "Connect unary proto h1",
      protocol: "connect",
      http: "1.1",
      contentType: "application/proto",
    };
    assert.equal(await codeOf(unary, "Generate", garbage), Code.Internal);
    const gzip = envelope(gzipSync(garbage), 1);
    assert.equal(await codeOf(grpc, "Generate", gzip, { "grpc-encoding": "gzip" }), Code.Internal);
    // A compressed envelope without grpc-encoding.
    assert.equal(
      await codeOf(grpc, "Generate", envelope(Buffer.from([0x12, 0x01, 0x61]), 1)),
      Code.Internal,
    );
    assert.equal(
      await codeOf(webBinary, "Generate", envelope(Buffer.from([0x12, 0x01, 0x61]), 1)),
      Code.Internal,
    );
    // A wrong content type (connect-node refuses it with HTTP 415).
    const wrongType = await sendHttp2(session, {
      path: `${service}/Generate`,
      headers: { "content-type": "application/grpc-unknown" },
      body: enveloped(Buffer.alloc(0)),
    });
    assert.equal(wrongType.status, 415);
    await waitFor(() => gateway.logs.length >= from + 7);
    const lines = gateway.logs.slice(from).filter((l) => l.msg === "rpc");
    assert.ok(lines.length >= 7, `${lines.length} rpc lines`);
    for (const line of lines) {
      assert.ok((line.level as number) <= 40, `not an error-level line: ${JSON.stringify(line)}`);
      assert.notEqual(line.code, "ok");
    }
    assert.ok(lines.some((l) => l.code === "internal"));
  });

  it("counts a client cancelling a compressed unary call as canceled, without an error line", async () => {
    const from = gateway.logs.length;
    const before = await canceledConnectGenerates();
    const compressed = gzipSync(Buffer.from(JSON.stringify({ prompt: "a".repeat(100_000) })));
    const request = h1Request(`${gateway.url}${service}/Generate`, {
      method: "POST",
      agent: false,
      headers: {
        "content-type": "application/json",
        "content-encoding": "gzip",
        "content-length": String(compressed.byteLength),
      },
    });
    request.on("error", () => {});
    request.write(compressed.subarray(0, 100));
    await new Promise((resolve) => setTimeout(resolve, 200));
    request.destroy();
    await waitFor(async () => (await canceledConnectGenerates()) > before);
    const lines = gateway.logs.slice(from).filter((l) => l.msg === "rpc");
    assert.ok(
      lines.every((l) => (l.level as number) < 50 && l.error !== "HTTP 0"),
      JSON.stringify(lines),
    );
    assert.ok(gateway.alive());
  });

  async function canceledConnectGenerates(): Promise<number> {
    return (
      (await gateway.metric(
        'parley_rpc_requests_total{protocol="connect",method="inference.v1.InferenceService/Generate",code="canceled"}',
      )) ?? 0
    );
  }
});

async function waitFor(condition: () => boolean | Promise<boolean>): Promise<void> {
  for (let i = 0; i < 200; i++) {
    if (await condition()) return;
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
  assert.fail("the condition did not come true within 5 s");
}
