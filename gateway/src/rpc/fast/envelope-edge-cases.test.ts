/**
 * Every envelope edge case, answered by the paths beside connect-node and by connect-node 2.3.0
 * itself (`connectNodeAdapter` over the same service), side by side: lengths shorter or longer
 * than the body, bytes after the one message, a second message, every flag, a compressed flag
 * without an encoding, an empty body, a partial prefix, an oversized prefix. The paths must give
 * the status connect-node gives (envelope.ts says why each is what it is). The one deliberate
 * difference, skipped envelopes beyond readMaxBytes in all (connect-node reads them without
 * end), has its own case at the end.
 */
import assert from "node:assert/strict";
import { once } from "node:events";
import { createServer as createHttpServer, type Server } from "node:http";
import {
  type ClientHttp2Session,
  createServer as createH2cServer,
  type Http2Server,
} from "node:http2";
import type { AddressInfo } from "node:net";
import { after, before, describe, it } from "node:test";
import { create, toBinary } from "@bufbuild/protobuf";
import type { ConnectRouter, ServiceImpl } from "@connectrpc/connect";
import { Code } from "@connectrpc/connect";
import { connectNodeAdapter } from "@connectrpc/connect-node";
import {
  FinishReason,
  GenerateRequestSchema,
  InferenceService,
} from "@parley/gen/inference/v1/inference_pb";
import {
  collectCallReports,
  startDecliningServers,
  testPathOptions,
} from "../../testing/beside-connect-node.js";
import {
  openSession,
  type RawRequest,
  sendHttp1,
  sendHttp2,
  type WireProtocol,
  wireStatus,
} from "../../testing/raw-rpc.js";
import { rpcService } from "../rpc-service.js";
import { createGrpcStreamHandler } from "./grpc.js";
import { createWebStreamHandler } from "./web-stream.js";

const readMaxBytes = 1024;

const implementation: Partial<ServiceImpl<typeof InferenceService>> = {
  listModels: () => ({ models: [] }),
  generate: (request) => ({ model: "m", text: request.prompt, finishReason: FinishReason.STOP }),
  async *generateStream(request) {
    yield { model: "m" };
    yield { text: request.prompt, finishReason: FinishReason.STOP };
  },
};

function envelope(message: Uint8Array, flags = 0, length = message.byteLength): Buffer {
  const prefix = Buffer.alloc(5);
  prefix[0] = flags;
  prefix.writeUInt32BE(length, 1);
  return Buffer.concat([prefix, message]);
}

/** The bodies, each a name and its bytes, for a message in one format. */
function edgeCases(message: Buffer, endFlag: number): [string, Buffer][] {
  const other = Buffer.from(message);
  return [
    ["one message", envelope(message)],
    ["an empty message", envelope(Buffer.alloc(0))],
    ["an empty body", Buffer.alloc(0)],
    ["a partial prefix", Buffer.from([0, 0, 0])],
    ["a length shorter than the body", envelope(message, 0, message.byteLength - 2)],
    ["a length one shorter than the body", envelope(message, 0, message.byteLength - 1)],
    ["a length longer than the body", envelope(message, 0, message.byteLength + 3)],
    ["trailing bytes after the message", Buffer.concat([envelope(message), Buffer.from([1, 2])])],
    ["trailing zeros after the message", Buffer.concat([envelope(message), Buffer.alloc(5)])],
    ["a second message", Buffer.concat([envelope(message), envelope(other)])],
    [
      "a second, undecodable message",
      Buffer.concat([envelope(message), envelope(Buffer.from([0xff]))]),
    ],
    ["an oversized prefix", envelope(Buffer.alloc(0), 0, readMaxBytes + 1)],
    [
      "an oversized second prefix",
      Buffer.concat([envelope(message), envelope(Buffer.alloc(0), 0, 2 ** 32 - 1)]),
    ],
    ["the compressed flag without an encoding", envelope(message, 0x01)],
    ["flags 0x02", envelope(message, 0x02)],
    ["flags 0x04", envelope(message, 0x04)],
    ["flags 0x80", envelope(message, 0x80)],
    ["flags 0xff", envelope(message, 0xff)],
    ["flags 0x7e", envelope(message, 0x7e)],
    [
      "an end envelope, then the message",
      Buffer.concat([envelope(Buffer.from("x"), endFlag), envelope(message)]),
    ],
    [
      "the message, then an end envelope",
      Buffer.concat([envelope(message), envelope(Buffer.from("x"), endFlag)]),
    ],
    ["only an end envelope", envelope(Buffer.from("x"), endFlag)],
    ["an undecodable message", envelope(Buffer.from([0xff, 0xff]))],
  ];
}

interface Flavour {
  readonly name: string;
  readonly protocol: WireProtocol;
  readonly http: "1.1" | "2";
  readonly contentType: string;
  readonly method: string;
  readonly message: Buffer;
  readonly endFlag: number;
}

const binary = Buffer.from(
  toBinary(GenerateRequestSchema, create(GenerateRequestSchema, { prompt: "hello" })),
);
const json = Buffer.from('{"prompt":"hello"}');

const flavours: Flavour[] = [
  {
    name: "gRPC h2",
    protocol: "grpc",
    http: "2",
    contentType: "application/grpc",
    method: "Generate",
    message: binary,
    endFlag: 0x80,
  },
  {
    name: "gRPC-Web binary h1",
    protocol: "grpc_web",
    http: "1.1",
    contentType: "application/grpc-web+proto",
    method: "Generate",
    message: binary,
    endFlag: 0x80,
  },
  {
    name: "gRPC-Web JSON h2",
    protocol: "grpc_web",
    http: "2",
    contentType: "application/grpc-web+json",
    method: "GenerateStream",
    message: json,
    endFlag: 0x80,
  },
  {
    name: "Connect stream binary h2",
    protocol: "connect_stream",
    http: "2",
    contentType: "application/connect+proto",
    method: "GenerateStream",
    message: binary,
    endFlag: 0x02,
  },
  {
    name: "Connect stream JSON h1",
    protocol: "connect_stream",
    http: "1.1",
    contentType: "application/connect+json",
    method: "GenerateStream",
    message: json,
    endFlag: 0x02,
  },
];

describe("envelope edge cases: the fast paths answer as connect-node does", () => {
  const closers: (() => void)[] = [];
  let reference: { url1: string; url2: string; session: ClientHttp2Session };
  let fast: {
    url1: string;
    url2: string;
    session: ClientHttp2Session;
    grpcSession: ClientHttp2Session;
  };

  before(async () => {
    // connect-node's own adapter, as a user of connect-node would serve the service.
    const adapter = connectNodeAdapter({
      readMaxBytes,
      routes: (router: ConnectRouter) => router.service(InferenceService, implementation),
    });
    const h1: Server = createHttpServer(adapter);
    const h2: Http2Server = createH2cServer(adapter);
    h1.listen(0, "127.0.0.1");
    h2.listen(0, "127.0.0.1");
    await Promise.all([once(h1, "listening"), once(h2, "listening")]);
    const url1 = `http://127.0.0.1:${(h1.address() as AddressInfo).port}`;
    const url2 = `http://127.0.0.1:${(h2.address() as AddressInfo).port}`;
    reference = { url1, url2, session: openSession(url2) };
    closers.push(() => {
      reference.session.destroy();
      h1.closeAllConnections();
      h1.close();
      h2.close();
    });

    const options = testPathOptions(
      [rpcService(InferenceService, implementation)],
      readMaxBytes,
      new AbortController().signal,
      collectCallReports(),
    );
    const web = await startDecliningServers(createWebStreamHandler(options));
    const grpcHandle = createGrpcStreamHandler(options);
    const grpcServer = createH2cServer();
    grpcServer.on("stream", (stream, headers) => {
      if (!grpcHandle(stream, headers)) stream.respond({ ":status": 404 }, { endStream: true });
    });
    grpcServer.listen(0, "127.0.0.1");
    await once(grpcServer, "listening");
    const grpcUrl = `http://127.0.0.1:${(grpcServer.address() as AddressInfo).port}`;
    fast = {
      url1: web.url1,
      url2: web.url2,
      session: openSession(web.url2),
      grpcSession: openSession(grpcUrl),
    };
    closers.push(() => {
      fast.session.destroy();
      fast.grpcSession.destroy();
      web.close();
      grpcServer.close();
    });
  });
  after(() => {
    for (const close of closers) close();
  });

  for (const flavour of flavours) {
    it(`${flavour.name}: every case gets connect-node's status`, async () => {
      const differences: string[] = [];
      for (const [name, body] of edgeCases(flavour.message, flavour.endFlag)) {
        const request: RawRequest = {
          path: `/inference.v1.InferenceService/${flavour.method}`,
          headers: { "content-type": flavour.contentType },
          body,
        };
        const expected = wireStatus(
          flavour.protocol,
          flavour.http === "2"
            ? await sendHttp2(reference.session, request)
            : await sendHttp1(reference.url1, request),
        );
        const actual = wireStatus(
          flavour.protocol,
          flavour.http === "2"
            ? await sendHttp2(
                flavour.protocol === "grpc" ? fast.grpcSession : fast.session,
                request,
              )
            : await sendHttp1(fast.url1, request),
        );
        const show = (e: typeof expected) =>
          e === undefined ? "ok" : `${Code[e.code]} "${e.rawMessage}"`;
        if (show(expected) !== show(actual)) {
          differences.push(`${name}: connect-node ${show(expected)}, fast path ${show(actual)}`);
        }
      }
      assert.deepEqual(differences, []);
    });
  }

  it("bounds skipped end envelopes, which connect-node reads without end, at readMaxBytes", async () => {
    const skipped = envelope(Buffer.alloc(200), 0x02);
    const body = Buffer.concat([...Array.from({ length: 6 }, () => skipped), envelope(binary)]);
    const request: RawRequest = {
      path: "/inference.v1.InferenceService/GenerateStream",
      headers: { "content-type": "application/connect+proto" },
      body,
    };
    const referenceStatus = wireStatus(
      "connect_stream",
      await sendHttp2(reference.session, request),
    );
    assert.equal(referenceStatus, undefined, "connect-node skips them all");
    const status = wireStatus("connect_stream", await sendHttp2(fast.session, request));
    assert.equal(status?.code, Code.ResourceExhausted);
  });
});
