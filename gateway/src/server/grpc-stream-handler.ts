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
import { performance } from "node:perf_hooks";
import { Code, ConnectError, type MethodImplSpec } from "@connectrpc/connect";
import { parseTimeout, setTrailerStatus } from "@connectrpc/connect/protocol-grpc";
import { DirectContext, drained } from "./direct-context.js";
import type { DirectPathOptions, DirectRoute } from "./direct-routes.js";
import { frameMessage, SingleMessageReader } from "./grpc-framing.js";
import type { RpcCall } from "./rpc-call.js";

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

/** Creates the handler for the methods of `options.services` it can serve. */
export function createGrpcStreamHandler(options: GrpcStreamHandlerOptions): GrpcStreamHandler {
  const { routes } = options;
  const active = new Set<DirectCall>();
  options.shutdownSignal.addEventListener("abort", () => {
    const reason = ConnectError.from(options.shutdownSignal.reason, Code.Unavailable);
    for (const call of active) call.abort(reason);
  });

  return (stream, headers) => {
    const path = headers[constants.HTTP2_HEADER_PATH];
    const route = typeof path === "string" ? routes.get(path) : undefined;
    const encoding = headers["grpc-encoding"];
    if (
      route === undefined ||
      headers[constants.HTTP2_HEADER_METHOD] !== "POST" ||
      !contentTypes.has(headerValue(headers[constants.HTTP2_HEADER_CONTENT_TYPE]) ?? "") ||
      (encoding !== undefined && encoding !== "identity")
    ) {
      return false;
    }
    serveCall(stream, headers, route, options, active);
    return true;
  };
}

function serveCall(
  stream: ServerHttp2Stream,
  headers: IncomingHttpHeaders,
  route: DirectRoute,
  options: GrpcStreamHandlerOptions,
  active: Set<DirectCall>,
): void {
  const timeout = parseTimeout(headerValue(headers["grpc-timeout"]), Number.POSITIVE_INFINITY);
  const call = new DirectCall(stream, headers, route, options, active);
  if (timeout.error !== undefined) {
    call.fail(timeout.error);
  } else if (timeout.timeoutMs !== undefined) {
    call.setDeadline(Math.min(timeout.timeoutMs, options.maxTimeoutMs));
  }
}

/**
 * One call on the direct path, from its request body to its status. A class rather than a
 * closure per step: on a busy server the per-call garbage is a large part of the cost.
 */
class DirectCall {
  /** The status sent to the client; null until one is. */
  private status: ConnectError | undefined | null = null;
  private readonly record: RpcCall;
  private readonly context: DirectContext;
  private readonly reader: SingleMessageReader;
  private readonly started = performance.now();
  private deadline: NodeJS.Timeout | undefined;

  constructor(
    private readonly stream: ServerHttp2Stream,
    headers: IncomingHttpHeaders,
    private readonly route: DirectRoute,
    private readonly options: GrpcStreamHandlerOptions,
    private readonly active: Set<DirectCall>,
  ) {
    const { method } = route.spec;
    this.record = {
      protocol: "grpc",
      method: route.name,
      messagesReceived: 0,
      messagesSent: 0,
      bytesReceived: 0,
      bytesSent: 0,
      handlerError: undefined,
    };
    this.context = new DirectContext(method, headers, "grpc");
    this.reader = new SingleMessageReader(options.readMaxBytes);
    active.add(this);
    options.onStart(this.record);
    stream.on("error", ignore); // a reset or a broken connection; "close" follows and reports
    stream.on("close", this.onClose);
    stream.on("data", this.onData);
    stream.on("end", this.onEnd);
  }

  setDeadline(ms: number): void {
    this.context.deadlineAt = performance.now() + ms;
    this.deadline = setTimeout(() => {
      this.abort(new ConnectError("the operation timed out", Code.DeadlineExceeded));
    }, ms);
  }

  /** Aborts the handler and ends the call with `reason`. */
  abort(reason: ConnectError): void {
    this.context.abort(reason);
    this.fail(reason);
  }

  /** Ends the call with the status of `error` (internal, unless it is a ConnectError). */
  fail = (error: unknown): void => {
    this.record.handlerError ??= error;
    this.finish(
      error instanceof ConnectError
        ? error
        : new ConnectError("internal error", Code.Internal, undefined, undefined, error),
    );
  };

  private readonly onData = (chunk: Buffer) => {
    this.record.bytesReceived += chunk.byteLength;
    if (this.status !== null) return; // failed early: the rest of the body is drained unread
    try {
      this.reader.push(chunk);
    } catch (error) {
      this.fail(error);
    }
  };

  private readonly onEnd = () => {
    if (this.status !== null) return;
    const { spec } = this.route;
    let request: never;
    try {
      request = this.route.binary.parse(this.reader.message(spec.kind)) as never;
      this.record.messagesReceived = 1;
    } catch (error) {
      this.fail(error);
      return;
    }
    if (spec.kind === "server_streaming") {
      this.runServerStreaming(spec, request).catch(this.fail);
      return;
    }
    try {
      const response = spec.impl(request, this.context);
      if (response instanceof Promise) {
        response.then(this.sendUnary, this.fail);
      } else {
        this.sendUnary(response);
      }
    } catch (error) {
      this.fail(error);
    }
  };

  private readonly onClose = () => {
    this.active.delete(this);
    clearTimeout(this.deadline);
    const { record } = this;
    let error = this.status;
    if (error === null) {
      this.context.abort(new ConnectError("the client cancelled the call", Code.Canceled));
      error =
        record.handlerError instanceof ConnectError
          ? record.handlerError
          : new ConnectError("the call ended before its response was complete", Code.Canceled);
    }
    this.options.onEnd(record, error, performance.now() - this.started, "2.0");
  };

  private readonly sendTrailers = () => {
    this.stream.sendTrailers(trailersOf(this.status ?? undefined, this.context));
  };

  private readonly sendUnary = (response: unknown) => {
    if (this.status !== null || this.stream.destroyed) return;
    const bytes = this.frame(response);
    this.respond();
    this.status = undefined;
    clearTimeout(this.deadline);
    this.stream.end(bytes);
  };

  private async runServerStreaming(
    spec: MethodImplSpec & { kind: "server_streaming" },
    request: never,
  ): Promise<void> {
    const { stream } = this;
    const responses = spec.impl(request, this.context)[Symbol.asyncIterator]();
    let done = false;
    try {
      while (this.status === null && !stream.destroyed) {
        const next = await responses.next();
        done = next.done === true;
        if (done || this.status !== null || stream.destroyed) break;
        const bytes = this.frame(next.value);
        if (!stream.headersSent) this.respond();
        // Pull the next message only once this one is on its way: a slow client slows the
        // generator, and through it the engine (credit), instead of growing a buffer here.
        if (!stream.write(bytes)) await drained(stream);
      }
    } finally {
      if (!done) await responses.return?.();
    }
    this.finish(undefined);
  }

  /** Sends the final status: trailers after a response, or a trailers-only response. */
  private finish(error: ConnectError | undefined): void {
    const { stream } = this;
    if (this.status !== null || stream.destroyed) return;
    this.status = error;
    clearTimeout(this.deadline);
    if (stream.headersSent) {
      stream.end();
      return;
    }
    stream.respond(
      { ...responseHeaders, ...this.context.header(), ...trailersOf(error, this.context) },
      { endStream: true },
    );
  }

  private respond(): void {
    const own = this.context.header();
    this.stream.respond(own === undefined ? responseHeaders : { ...responseHeaders, ...own }, {
      waitForTrailers: true,
    });
    this.stream.on("wantTrailers", this.sendTrailers);
  }

  private frame(message: unknown): Buffer {
    const { route, record } = this;
    const bytes = frameMessage(route.binary.serialize(message));
    record.messagesSent++;
    record.bytesSent += bytes.byteLength;
    return bytes;
  }
}

function ignore(): void {}

/** The status trailers of `error` (OK when undefined), with the handler's own trailers. */
function trailersOf(
  error: ConnectError | undefined,
  context: DirectContext,
): Record<string, string> {
  const own = context.trailer();
  if (error === undefined && own === undefined) return okTrailers;
  return Object.fromEntries(setTrailerStatus(new Headers(own), error));
}

function headerValue(value: string | string[] | undefined): string | null {
  return typeof value === "string" ? value : null;
}
