/**
 * @module Serves unary calls over the Connect protocol (what curl and browsers send: a plain
 * POST of a JSON or binary message) on Node's request/response API, HTTP/1.1 and HTTP/2 alike.
 *
 * Why by hand, beside connect-node: connect-node's universal handler costs about 150-300 µs of
 * CPU per unary call (an async-iterable pipeline, two AbortControllers aborted without a reason,
 * so two stack-capturing `DOMException`s; `npm run bench`), several times a Fastify JSON
 * endpoint. Like the other paths beside connect-node, this one keeps connect-es's parts
 * (service implementations, serialization, timeout parsing, the error JSON, the HTTP status of
 * each code, `trailer-` headers, error texts) and drops the pipeline. It takes POST requests
 * with uncompressed bodies; GET requests and compressed bodies stay on connect-node. Bodies of
 * 1 KiB and more are compressed as connect-node's router compresses them (accept-encoding).
 */
import type { IncomingHttpHeaders } from "node:http";
import { Code, ConnectError } from "@connectrpc/connect";
import type { NodeRequest, NodeResponse } from "../../http/node-http.js";
import {
  connectCodeToHttpStatus as codeToHttpStatus,
  connectErrorToJsonBytes as errorToJsonBytes,
  connectHeaderUnaryEncoding as headerUnaryEncoding,
  parseConnectContentType as parseContentType,
  parseConnectTimeout as parseTimeout,
  connectTrailerMux as trailerMux,
} from "../connect-internals.js";
import {
  type CallTracker,
  compressMinBytes,
  DirectCall,
  headerValue,
  isIdentity,
  type RequestReader,
  responseCompression,
  stopReadingRequest,
  trackCalls,
} from "./call.js";
import type { DirectPathOptions, DirectRequestHandler, DirectRoute } from "./routes.js";

/** Options of {@link createConnectUnaryHandler}. */
export type ConnectUnaryHandlerOptions = DirectPathOptions;

/** Serves the request, or returns false for connect-node. */
export type ConnectUnaryHandler = DirectRequestHandler;

/** Creates the handler for the unary methods of `options.routes`. */
export function createConnectUnaryHandler(
  options: ConnectUnaryHandlerOptions,
): ConnectUnaryHandler {
  const tracker = trackCalls(options);
  return (request, response, path) => {
    const route = options.routes.get(path);
    if (route === undefined || route.spec.kind !== "unary" || request.method !== "POST") {
      return false;
    }
    const type = parseContentType(request.headers["content-type"] ?? null);
    const encoding = request.headers[headerUnaryEncoding.toLowerCase()];
    if (type === undefined || type.stream || !isIdentity(encoding)) {
      return false;
    }
    new ConnectUnaryCall(tracker, request, response, route, type.binary).applyTimeout(
      parseTimeout(headerValue(request.headers["connect-timeout-ms"]), Infinity),
    );
    return true;
  };
}

/** The declared body length, when it is one number. */
function contentLength(headers: IncomingHttpHeaders): number | undefined {
  const value = headers["content-length"];
  if (value === undefined || !/^\d+$/.test(value)) return undefined;
  return Number(value);
}

/** Collects an unenveloped request body up to the size limit, with connect-es's error texts. */
class RawMessageReader implements RequestReader {
  private readonly chunks: Buffer[] = [];
  private bytes = 0;

  constructor(
    private readonly readMaxBytes: number,
    private readonly parse: (bytes: Uint8Array) => unknown,
  ) {}

  push(chunk: Buffer): void {
    this.chunks.push(chunk);
    this.bytes += chunk.byteLength;
    if (this.bytes > this.readMaxBytes) {
      throw new ConnectError(
        `message size is larger than configured readMaxBytes ${this.readMaxBytes}`,
        Code.ResourceExhausted,
      );
    }
  }

  end(): unknown {
    return this.parse(Buffer.concat(this.chunks, this.bytes));
  }
}

/** One call: the response message, or the error JSON with the code's HTTP status. */
class ConnectUnaryCall extends DirectCall {
  private readonly contentType: string;

  constructor(
    tracker: CallTracker,
    private readonly request: NodeRequest,
    private readonly response: NodeResponse,
    route: DirectRoute,
    binary: boolean,
  ) {
    const { readMaxBytes } = tracker.options;
    const serialization = binary ? route.binary : route.json;
    super(
      tracker,
      "connect",
      route,
      request.headers,
      new RawMessageReader(readMaxBytes, serialization.parse),
      serialization,
    );
    this.contentType = binary ? "application/proto" : "application/json";
    this.compression = responseCompression(request.headers["accept-encoding"]);
    this.listen(request, response, request.httpVersion);
    const declared = contentLength(request.headers);
    if (declared !== undefined && declared > readMaxBytes) {
      this.fail(
        new ConnectError(
          `message size ${declared} is larger than configured readMaxBytes ${readMaxBytes}`,
          Code.ResourceExhausted,
        ),
      );
    }
  }

  protected respond(request: never): void {
    this.callUnary(request, this.succeed);
  }

  protected stopReading(): void {
    stopReadingRequest(this.request);
  }

  private readonly succeed = (message: unknown): void => {
    if (this.status !== null) return;
    let body: Uint8Array;
    try {
      body = this.serialization.serialize(message);
    } catch (error) {
      this.fail(error);
      return;
    }
    const header = { ...this.context.header(), "content-type": this.contentType };
    this.record.messagesSent = 1;
    this.send(200, header, body, undefined);
  };

  /** Answers with the error JSON of `error`; a success is answered by `succeed`. */
  protected end(error: ConnectError | undefined): void {
    if (error === undefined) return;
    const header: Record<string, string> = {
      ...this.context.header(),
      "content-type": "application/json",
    };
    for (const [name, value] of error.metadata) header[name] = value;
    this.send(codeToHttpStatus(error.code), header, errorToJsonBytes(error, undefined), error);
  }

  /**
   * Sends the one response; the handler's trailers travel as `trailer-` headers. Headers are a
   * plain record of lowercase names, not a fetch `Headers`: building one cost about 2 µs of a
   * unary call's ~60 (docs/benchmarks.md).
   */
  private send(
    httpStatus: number,
    header: Record<string, string>,
    body: Uint8Array,
    status: ConnectError | undefined,
  ): void {
    const { response, compression } = this;
    if (response.destroyed || response.headersSent || !this.settle(status)) return;
    if (compression !== null && body.byteLength >= compressMinBytes) {
      header["content-encoding"] = compression.name;
      compression.compress(body).then(
        (compressed) => this.write(httpStatus, header, compressed),
        () => response.destroy(),
      );
      return;
    }
    this.write(httpStatus, header, body);
  }

  private write(httpStatus: number, header: Record<string, string>, body: Uint8Array): void {
    const { response } = this;
    if (response.destroyed) return;
    const trailer = this.context.trailer();
    const all =
      trailer === undefined ? header : Object.fromEntries(trailerMux(new Headers(header), trailer));
    all["content-length"] = String(body.byteLength);
    response.statusCode = httpStatus;
    for (const name in all) response.setHeader(name, all[name] as string);
    this.record.bytesSent += body.byteLength;
    response.end(body);
  }
}
