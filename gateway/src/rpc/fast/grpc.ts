/**
 * @module Serves gRPC calls of unary and server-streaming methods straight on Node's HTTP/2
 * streams: the path every backend client (grpc-js, grpcio, grpc-go, h2load) takes.
 *
 * Why by hand, beside connect-node: connect-node runs each gRPC call through its universal
 * handler, a pipeline of async iterables over Node's HTTP/2 compatibility API that aborts two
 * AbortControllers per call. `npm run bench` measured it at about 500 µs of CPU per unary call
 * against 36 µs for @grpc/grpc-js, with one tenth of grpc-js's requests per second
 * (docs/benchmarks.md). This path keeps connect-es's parts (the same service implementations,
 * its serialization, timeout parsing, status trailers and error messages) and drops only the
 * pipeline. It takes the common case and declines the rest to connect-node, which serves all of
 * gRPC: compressed requests, `+json`, client and bidi streaming, anything but POST.
 *
 * Responses are compressed as connect-node's router compresses them: with the first of gzip and
 * br the client accepts (grpc-accept-encoding), messages of 1 KiB and more.
 */
import { constants, type IncomingHttpHeaders, type ServerHttp2Stream } from "node:http2";
import type { ConnectError } from "@connectrpc/connect";
import {
  parseGrpcTimeout as parseTimeout,
  grpcSetTrailerStatus as setTrailerStatus,
} from "../connect-internals.js";
import {
  type CallTracker,
  DirectCall,
  headerValue,
  isIdentity,
  responseCompression,
  stopReadingStream,
  trackCalls,
} from "./call.js";
import type { DirectContext } from "./context.js";
import { SingleMessageReader } from "./envelope.js";
import type { DirectPathOptions, DirectRoute } from "./routes.js";

/** Options of {@link createGrpcStreamHandler}. */
export type GrpcStreamHandlerOptions = DirectPathOptions;

/** Serves the stream and returns true, or returns false when connect-node should serve it. */
export type GrpcStreamHandler = (
  stream: ServerHttp2Stream,
  headers: IncomingHttpHeaders,
) => boolean;

const contentTypes = new Set(["application/grpc", "application/grpc+proto"]);
const responseHeaders = {
  [constants.HTTP2_HEADER_STATUS]: 200,
  [constants.HTTP2_HEADER_CONTENT_TYPE]: "application/grpc+proto",
};
const okTrailers = { "grpc-status": "0" };
/** The response headers of a compressed response, by compression name. */
const compressedResponseHeaders = new Map(
  ["gzip", "br"].map((name) => [name, { ...responseHeaders, "grpc-encoding": name }]),
);

/** Creates the handler for the methods of `options.routes` it can serve. */
export function createGrpcStreamHandler(options: GrpcStreamHandlerOptions): GrpcStreamHandler {
  const { routes } = options;
  const tracker = trackCalls(options);
  return (stream, headers) => {
    const path = headers[constants.HTTP2_HEADER_PATH];
    const route = typeof path === "string" ? routes.get(path) : undefined;
    if (
      route === undefined ||
      headers[constants.HTTP2_HEADER_METHOD] !== "POST" ||
      !contentTypes.has(headerValue(headers[constants.HTTP2_HEADER_CONTENT_TYPE]) ?? "") ||
      !isIdentity(headers["grpc-encoding"])
    ) {
      return false;
    }
    new GrpcCall(tracker, stream, headers, route).applyTimeout(
      parseTimeout(headerValue(headers["grpc-timeout"]), Number.POSITIVE_INFINITY),
    );
    return true;
  };
}

/** One gRPC call on its HTTP/2 stream: messages, then the status in trailers. */
class GrpcCall extends DirectCall {
  constructor(
    tracker: CallTracker,
    private readonly stream: ServerHttp2Stream,
    headers: IncomingHttpHeaders,
    route: DirectRoute,
  ) {
    super(
      tracker,
      "grpc",
      route,
      headers,
      new SingleMessageReader({
        readMaxBytes: tracker.options.readMaxBytes,
        skipFlag: undefined,
        parse: route.binary.parse,
        kind: route.spec.kind,
      }),
      route.binary,
    );
    this.compression = responseCompression(headers["grpc-accept-encoding"]);
    this.listen(stream, stream, "2.0");
  }

  protected stopReading(): void {
    stopReadingStream(this.stream);
  }

  protected respond(request: never): void {
    const { spec } = this.route;
    if (spec.kind === "server_streaming") {
      this.pump(() => this.invoke(request), this.stream, this.write).catch(this.fail);
      return;
    }
    // Unary calls skip the async iterator: one message, written with the end of the stream.
    this.callUnary(request, this.sendUnary);
  }

  private readonly write = (bytes: Buffer): boolean => {
    if (!this.stream.headersSent) this.sendHeaders();
    return this.stream.write(bytes);
  };

  private readonly sendTrailers = () => {
    try {
      this.stream.sendTrailers(trailersOf(this.status ?? undefined, this.context));
    } catch (error) {
      this.crash(error);
    }
  };

  private readonly sendUnary = (response: unknown) => {
    if (this.status !== null || this.stream.destroyed) return;
    let frame: Buffer | Promise<Buffer>;
    try {
      frame = this.frame(response);
    } catch (error) {
      this.fail(error);
      return;
    }
    if (frame instanceof Promise) {
      frame.then(this.endUnary, this.fail);
      return;
    }
    this.endUnary(frame);
  };

  private readonly endUnary = (bytes: Buffer) => {
    if (this.status !== null || this.stream.destroyed) return;
    this.sendHeaders();
    this.settle(undefined);
    this.stream.end(bytes);
  };

  /**
   * Sends the final status in trailers, after the response headers if none were sent yet. Never
   * a trailers-only response: connect-node's router sends headers and trailers apart, and
   * clients (grpc-js) then show the handler's headers as headers and its trailers as trailers.
   */
  protected end(error: ConnectError | undefined): void {
    const { stream } = this;
    if (stream.destroyed || !this.settle(error)) return;
    if (!stream.headersSent) this.sendHeaders();
    stream.end();
  }

  private sendHeaders(): void {
    const headers =
      this.compression === null
        ? responseHeaders
        : (compressedResponseHeaders.get(this.compression.name) ?? responseHeaders);
    this.stream.respond({ ...headers, ...this.context.header() }, { waitForTrailers: true });
    this.stream.on("wantTrailers", this.sendTrailers);
  }
}

/** The status trailers of `error` (OK when undefined), with the handler's own trailers. */
function trailersOf(
  error: ConnectError | undefined,
  context: DirectContext,
): Record<string, string> {
  const own = context.trailer();
  if (error === undefined && own === undefined) return okTrailers;
  return Object.fromEntries(setTrailerStatus(new Headers(own), error));
}
