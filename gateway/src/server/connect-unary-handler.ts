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
 * with uncompressed bodies; GET requests and compressed bodies stay on connect-node. Responses
 * are never compressed.
 */
import type { IncomingHttpHeaders } from "node:http";
import { performance } from "node:perf_hooks";
import { Code, ConnectError, type MethodImplSpec } from "@connectrpc/connect";
import {
  codeToHttpStatus,
  errorToJsonBytes,
  headerUnaryEncoding,
  parseContentType,
  parseTimeout,
  trailerMux,
} from "@connectrpc/connect/protocol-connect";
import type { NodeRequest, NodeResponse } from "./create-rpc-handler.js";
import { DirectContext } from "./direct-context.js";
import type { DirectPathOptions, DirectRoute, DirectSerialization } from "./direct-routes.js";
import type { RpcCall } from "./rpc-call.js";

/** Options of {@link createConnectUnaryHandler}. */
export type ConnectUnaryHandlerOptions = DirectPathOptions;

/** Serves the request and returns true, or returns false when connect-node should serve it. */
export type ConnectUnaryHandler = (
  request: NodeRequest,
  response: NodeResponse,
  path: string,
) => boolean;

/** Creates the handler for the unary methods of `options.routes`. */
export function createConnectUnaryHandler(
  options: ConnectUnaryHandlerOptions,
): ConnectUnaryHandler {
  const active = new Set<ConnectUnaryCall>();
  options.shutdownSignal.addEventListener("abort", () => {
    const reason = ConnectError.from(options.shutdownSignal.reason, Code.Unavailable);
    for (const call of active) call.abort(reason);
  });
  return (request, response, path) => {
    const route = options.routes.get(path);
    if (route === undefined || route.spec.kind !== "unary" || request.method !== "POST") {
      return false;
    }
    const type = parseContentType(request.headers["content-type"] ?? null);
    const encoding = request.headers[headerUnaryEncoding.toLowerCase()];
    if (type === undefined || type.stream || (encoding !== undefined && encoding !== "identity")) {
      return false;
    }
    const serialization = type.binary ? route.binary : route.json;
    const contentType = type.binary ? "application/proto" : "application/json";
    const call = new ConnectUnaryCall(request, response, route, serialization, contentType, {
      options,
      active,
    });
    const timeout = parseTimeout(headerValue(request.headers["connect-timeout-ms"]), Infinity);
    if (timeout.error !== undefined) {
      call.fail(timeout.error);
    } else if (timeout.timeoutMs !== undefined) {
      call.setDeadline(Math.min(timeout.timeoutMs, options.maxTimeoutMs));
    }
    return true;
  };
}

function headerValue(value: string | string[] | undefined): string | null {
  return typeof value === "string" ? value : null;
}

/** The declared body length, when it is one number. */
function contentLength(headers: IncomingHttpHeaders): number | undefined {
  const value = headers["content-length"];
  if (value === undefined || !/^\d+$/.test(value)) return undefined;
  return Number(value);
}

/** One call, from its request body to its response. */
class ConnectUnaryCall {
  /** The status sent to the client; null until one is. */
  private status: ConnectError | undefined | null = null;
  private readonly record: RpcCall;
  private readonly context: DirectContext;
  private readonly chunks: Buffer[] = [];
  private readonly started = performance.now();
  private readonly options: ConnectUnaryHandlerOptions;
  private readonly active: Set<ConnectUnaryCall>;
  private deadline: NodeJS.Timeout | undefined;

  constructor(
    private readonly request: NodeRequest,
    private readonly response: NodeResponse,
    route: DirectRoute,
    private readonly serialization: DirectSerialization,
    private readonly contentType: string,
    owner: { options: ConnectUnaryHandlerOptions; active: Set<ConnectUnaryCall> },
  ) {
    this.options = owner.options;
    this.active = owner.active;
    this.record = {
      protocol: "connect",
      method: route.name,
      messagesReceived: 0,
      messagesSent: 0,
      bytesReceived: 0,
      bytesSent: 0,
      handlerError: undefined,
    };
    this.context = new DirectContext(route.spec.method, request.headers, "connect");
    this.active.add(this);
    this.options.onStart(this.record);
    request.on("error", ignore); // a reset or a broken connection; the response's "close" reports
    request.on("data", this.onData);
    request.on("end", () => this.onEnd(route.spec as MethodImplSpec & { kind: "unary" }));
    response.on("error", ignore);
    response.on("close", this.onClose);
    const declared = contentLength(request.headers);
    if (declared !== undefined && declared > this.options.readMaxBytes) {
      this.fail(
        new ConnectError(
          `message size ${declared} is larger than configured readMaxBytes ${this.options.readMaxBytes}`,
          Code.ResourceExhausted,
        ),
      );
    }
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

  /** Answers with the error JSON of `error` (internal, unless it is a ConnectError). */
  fail = (error: unknown): void => {
    this.record.handlerError ??= error;
    const status =
      error instanceof ConnectError
        ? error
        : new ConnectError("internal error", Code.Internal, undefined, undefined, error);
    const header = new Headers(this.context.header());
    header.set("content-type", "application/json");
    for (const [name, value] of status.metadata) header.set(name, value);
    this.send(codeToHttpStatus(status.code), header, errorToJsonBytes(status, undefined), status);
  };

  private readonly onData = (chunk: Buffer) => {
    this.record.bytesReceived += chunk.byteLength;
    if (this.status !== null) return; // answered early: the rest of the body is drained unread
    this.chunks.push(chunk);
    if (this.record.bytesReceived > this.options.readMaxBytes) {
      this.fail(
        new ConnectError(
          `message size is larger than configured readMaxBytes ${this.options.readMaxBytes}`,
          Code.ResourceExhausted,
        ),
      );
    }
  };

  private onEnd(spec: MethodImplSpec & { kind: "unary" }): void {
    if (this.status !== null) return;
    let request: never;
    try {
      request = this.serialization.parse(Buffer.concat(this.chunks)) as never;
      this.record.messagesReceived = 1;
    } catch (error) {
      this.fail(error);
      return;
    }
    try {
      const response = spec.impl(request, this.context);
      if (response instanceof Promise) {
        response.then(this.succeed, this.fail);
      } else {
        this.succeed(response);
      }
    } catch (error) {
      this.fail(error);
    }
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
    const header = new Headers(this.context.header());
    header.set("content-type", this.contentType);
    this.record.messagesSent = 1;
    this.send(200, header, body, undefined);
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
    this.options.onEnd(record, error, performance.now() - this.started, this.request.httpVersion);
  };

  /** Sends the one response; the handler's trailers travel as `trailer-` headers. */
  private send(
    httpStatus: number,
    header: Headers,
    body: Uint8Array,
    status: ConnectError | undefined,
  ): void {
    const { response } = this;
    if (this.status !== null || response.destroyed || response.headersSent) return;
    this.status = status;
    clearTimeout(this.deadline);
    const trailer = this.context.trailer();
    const all = trailer === undefined ? header : trailerMux(header, trailer);
    all.set("content-length", String(body.byteLength));
    response.statusCode = httpStatus;
    for (const [name, value] of all) response.setHeader(name, value);
    this.record.bytesSent += body.byteLength;
    response.end(body);
  }
}

function ignore(): void {}
