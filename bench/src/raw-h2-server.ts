/**
 * @module The ceiling: a bare `node:http2` server that answers gRPC calls with pre-encoded bytes.
 * No routing, no decoding, no Protobuf work per call: what Node's HTTP/2 stack costs by itself.
 * `ListModels` gets the captured response in one envelope; `GenerateStream` gets the captured
 * messages, each in its own write, driven by the stream ticker.
 */
import { constants, createServer, type Http2Server, type ServerHttp2Stream } from "node:http2";
import type { BenchFixtures } from "./bench-fixtures.js";
import { envelope, methodPath } from "./rpc-wire.js";
import type { StreamTicker } from "./stream-ticker.js";

const responseHeaders = {
  [constants.HTTP2_HEADER_STATUS]: 200,
  [constants.HTTP2_HEADER_CONTENT_TYPE]: "application/grpc",
};

function respondGrpc(stream: ServerHttp2Stream): void {
  stream.respond(responseHeaders, { waitForTrailers: true });
  stream.once("wantTrailers", () => stream.sendTrailers({ "grpc-status": "0" }));
  stream.on("error", () => stream.destroy());
}

/** Creates the server; the caller listens. */
export function createRawH2Server(fixtures: BenchFixtures, ticker: StreamTicker): Http2Server {
  const listModels = envelope(fixtures.listModelsResponse);
  const [first, ...tokens] = fixtures.streamMessages.map((m) => envelope(m));
  const server = createServer();
  server.on("stream", (stream, headers) => {
    stream.resume(); // the request body is not needed: every call gets the same answer
    const path = headers[constants.HTTP2_HEADER_PATH];
    if (path === methodPath("ListModels")) {
      respondGrpc(stream);
      stream.end(listModels);
      return;
    }
    if (path === methodPath("GenerateStream")) {
      respondGrpc(stream);
      stream.write(first);
      const key = headers["x-bench-key"];
      ticker.add({
        key: typeof key === "string" ? key : undefined,
        tokens: Math.min(Number(headers["x-bench-tokens"]) || tokens.length, tokens.length),
        write: (index) => stream.write(tokens[index - 1]),
        end: () => stream.end(),
        onceDrain: (callback) => stream.once("drain", callback),
        get closed() {
          return stream.closed || stream.destroyed;
        },
      });
      return;
    }
    stream.respond({ [constants.HTTP2_HEADER_STATUS]: 404 });
    stream.end();
  });
  return server;
}
