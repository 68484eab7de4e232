/**
 * @module What every call served beside connect-node does the same way, whatever its protocol:
 * its record for the report, its handler context, its deadline, aborting it (deadline, client
 * gone, shutdown), reading and parsing the request, turning what a handler threw into a status,
 * streaming a handler's messages under backpressure, and reporting once its response closed.
 * Each protocol's subclass only writes its response: gRPC on an `Http2Stream`
 * (grpc-stream-handler.ts), gRPC-Web and Connect streams (web-stream-handler.ts), Connect unary
 * (connect-unary-handler.ts).
 *
 * A class rather than a closure per step: on a busy server the per-call garbage is a large part
 * of the cost.
 */
import type { EventEmitter } from "node:events";
import type { IncomingHttpHeaders } from "node:http";
import { performance } from "node:perf_hooks";
import { Code, ConnectError, type MethodImplSpec } from "@connectrpc/connect";
import { createRpcCall, type RpcCall } from "../rpc-call.js";
import type { RpcProtocol } from "../rpc-protocol.js";
import { DirectContext, drained } from "./context.js";
import { frameMessage } from "./envelope.js";
import type { DirectPathOptions, DirectRoute, DirectSerialization } from "./routes.js";

/** The calls of one path in progress, all aborted with unavailable when the server shuts down. */
export interface CallTracker {
  readonly options: DirectPathOptions;
  readonly active: Set<DirectCall>;
}

/** Creates the tracker of one path. */
export function trackCalls(options: DirectPathOptions): CallTracker {
  const active = new Set<DirectCall>();
  options.shutdownSignal.addEventListener("abort", () => {
    const reason = ConnectError.from(options.shutdownSignal.reason, Code.Unavailable);
    for (const call of active) call.abort(reason);
  });
  return { options, active };
}

/** Collects a request body and yields its one message. */
export interface RequestReader {
  /** Adds a body chunk; throws (a ConnectError) when the request breaks a limit. */
  push(chunk: Buffer): void;
  /** The request message, once the body has ended; `kind` names the method kind in errors. */
  message(kind: string): Uint8Array;
}

/** One value of a request header as Node parsed it; null when absent or repeated. */
export function headerValue(value: string | string[] | undefined): string | null {
  return typeof value === "string" ? value : null;
}

/** Whether a content-encoding header allows the body to be read as is. */
export function isIdentity(encoding: string | string[] | undefined): boolean {
  return encoding === undefined || encoding === "identity";
}

/** Where a streamed response goes: an `Http2Stream` or a compatibility-API response. */
interface ResponseSink extends EventEmitter {
  readonly destroyed: boolean;
}

/** One call beside connect-node, from its request body to its status. */
export abstract class DirectCall {
  /** The status sent to the client; null until one is. */
  protected status: ConnectError | undefined | null = null;
  protected readonly record: RpcCall;
  protected readonly context: DirectContext;
  private readonly started = performance.now();
  private deadline: NodeJS.Timeout | undefined;

  constructor(
    private readonly tracker: CallTracker,
    protocol: Exclude<RpcProtocol, "unknown">,
    protected readonly route: DirectRoute,
    headers: IncomingHttpHeaders,
    private readonly reader: RequestReader,
    protected readonly serialization: DirectSerialization,
  ) {
    this.record = createRpcCall(protocol, route.name, headers);
    this.context = new DirectContext(route.spec.method, headers, protocol, this.record);
    tracker.active.add(this);
    tracker.options.onStart(this.record);
  }

  /** Applies the client's parsed timeout: a deadline (at most the server's), or its error. */
  applyTimeout(timeout: { readonly timeoutMs?: number; readonly error?: ConnectError }): void {
    if (timeout.error !== undefined) {
      this.fail(timeout.error);
      return;
    }
    if (timeout.timeoutMs === undefined) return;
    const ms = Math.min(timeout.timeoutMs, this.tracker.options.maxTimeoutMs);
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
  readonly fail = (error: unknown): void => {
    this.record.handlerError ??= error;
    this.end(
      error instanceof ConnectError
        ? error
        : new ConnectError("internal error", Code.Internal, undefined, undefined, error),
    );
  };

  /** Sends the final status the protocol's way; called at most once per call (see `settle`). */
  protected abstract end(error: ConnectError | undefined): void;

  /** Answers the parsed request. */
  protected abstract respond(request: never): void;

  /** Records that `status` is being sent; false when a status was sent already. */
  protected settle(status: ConnectError | undefined): boolean {
    if (this.status !== null) return false;
    this.status = status;
    clearTimeout(this.deadline);
    return true;
  }

  /**
   * Reads the request from `body` and reports the call when `response` closes (on HTTP/2 gRPC
   * both are the one stream). Errors (a reset, a broken connection) are left to "close".
   */
  protected listen(body: EventEmitter, response: EventEmitter, httpVersion: string): void {
    body.on("error", ignore);
    body.on("data", this.onData);
    body.on("end", this.onEnd);
    if (response !== body) response.on("error", ignore);
    response.on("close", () => this.closed(httpVersion));
  }

  private readonly onData = (chunk: Buffer): void => {
    this.record.bytesReceived += chunk.byteLength;
    if (this.status !== null) return; // answered early: the rest of the body is drained unread
    try {
      this.reader.push(chunk);
    } catch (error) {
      this.fail(error);
    }
  };

  private readonly onEnd = (): void => {
    if (this.status !== null) return;
    let request: never;
    try {
      request = this.serialization.parse(this.reader.message(this.route.spec.kind)) as never;
      this.record.messagesReceived = 1;
    } catch (error) {
      this.fail(error);
      return;
    }
    this.respond(request);
  };

  /** Reports the call once its response closed; a call closed before its status was canceled. */
  private closed(httpVersion: string): void {
    this.tracker.active.delete(this);
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
    this.tracker.options.onEnd(record, error, performance.now() - this.started, httpVersion);
  }

  /** Calls a unary implementation: its response goes to `send`, what it throws to `fail`. */
  protected callUnary(request: never, send: (response: unknown) => void): void {
    const spec = this.route.spec as MethodImplSpec & { kind: "unary" };
    try {
      const response = spec.impl(request, this.context);
      if (response instanceof Promise) {
        response.then(send, this.fail);
      } else {
        send(response);
      }
    } catch (error) {
      this.fail(error);
    }
  }

  /** The implementation's response messages: a streaming one's, or a unary one's only message. */
  protected invoke(request: never): AsyncIterator<unknown> {
    const { spec } = this.route;
    return spec.kind === "server_streaming"
      ? spec.impl(request, this.context)[Symbol.asyncIterator]()
      : oneMessage(spec.impl(request, this.context));
  }

  /**
   * Writes every message `open` yields, framed, to `sink` with `write`, then ends the call OK.
   * The next message is pulled only once this one is on its way: a slow client slows the
   * generator, and through it the engine (credit), instead of growing a buffer here. `open` is
   * called in here so that a handler throwing at once rejects like one throwing later.
   */
  protected async pump(
    open: () => AsyncIterator<unknown>,
    sink: ResponseSink,
    write: (bytes: Buffer) => boolean,
  ): Promise<void> {
    const messages = open();
    let done = false;
    try {
      while (this.status === null && !sink.destroyed) {
        const next = await messages.next();
        done = next.done === true;
        if (done || this.status !== null || sink.destroyed) break;
        if (!write(this.frame(next.value))) await drained(sink);
      }
    } finally {
      if (!done) await messages.return?.();
    }
    this.end(undefined);
  }

  /** Serializes and frames one response message, and counts it. */
  protected frame(message: unknown): Buffer {
    const bytes = frameMessage(this.serialization.serialize(message));
    this.record.messagesSent++;
    this.record.bytesSent += bytes.byteLength;
    return bytes;
  }
}

function ignore(): void {}

async function* oneMessage(response: unknown): AsyncGenerator<unknown> {
  yield await response;
}
