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
 * Responses are never compressed (a server may always answer with identity).
 */
import { constants, type IncomingHttpHeaders, type ServerHttp2Stream } from "node:http2";
import type { ConnectError } from "@connectrpc/connect";
import { parseTimeout, setTrailerStatus } from "@connectrpc/connect/protocol-grpc";
import { type CallTracker, DirectCall, headerValue, isIdentity, trackCalls } from "./call.js";
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
      new SingleMessageReader(tracker.options.readMaxBytes),
      route.binary,
    );
    this.listen(stream, stream, "2.0");
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
    this.stream.sendTrailers(trailersOf(this.status ?? undefined, this.context));
  };

  private readonly sendUnary = (response: unknown) => {
    if (this.status !== null || this.stream.destroyed) return;
    const bytes = this.frame(response);
    this.sendHeaders();
    this.settle(undefined);
    this.stream.end(bytes);
  };

  /** Sends the final status: trailers after a response, or a trailers-only response. */
  protected end(error: ConnectError | undefined): void {
    const { stream } = this;
    if (stream.destroyed || !this.settle(error)) return;
    if (stream.headersSent) {
      stream.end();
      return;
    }
    stream.respond(
      { ...responseHeaders, ...this.context.header(), ...trailersOf(error, this.context) },
      { endStream: true },
    );
  }

  private sendHeaders(): void {
    this.stream.respond(
      { ...responseHeaders, ...this.context.header() },
      { waitForTrailers: true },
    );
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
