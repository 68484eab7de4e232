/**
 * @module What every call served beside connect-node does the same way, whatever its protocol:
 * its record for the report, its handler context, its deadline, aborting it (deadline, client
 * gone, shutdown), reading and parsing the request, turning what a handler threw into a status,
 * streaming a handler's messages under backpressure, and reporting once its response closed.
 * Each protocol's subclass only writes its response: gRPC on an `Http2Stream`
 * (grpc.ts), gRPC-Web and Connect streams (web-stream.ts), Connect unary
 * (connect-unary.ts).
 *
 * A class rather than a closure per step: on a busy server the per-call garbage is a large part
 * of the cost.
 */
import type { EventEmitter } from "node:events";
import type { IncomingHttpHeaders } from "node:http";
import { constants, type Http2ServerRequest, type Http2Stream } from "node:http2";
import { performance } from "node:perf_hooks";
import { Code, ConnectError, type MethodImplSpec } from "@connectrpc/connect";
import { compressionBrotli, compressionGzip } from "@connectrpc/connect-node";
import { lingerMs } from "../../http/lingering-close.js";
import type { NodeRequest } from "../../http/node-http.js";
import { type Compression, compressedFlag, compressionNegotiate } from "../connect-internals.js";
import { createRpcCall, type RpcCall } from "../rpc-call.js";
import type { RpcProtocol } from "../rpc-protocol.js";
import { wellFormedError } from "../well-formed.js";
import { clientGoneReason, DirectContext, drained } from "./context.js";
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

/** Reads a request body and yields its one message, parsed. */
export interface RequestReader {
  /** Adds a body chunk; throws (a ConnectError) as soon as the request is refused. */
  push(chunk: Buffer): void;
  /** The parsed request message, once the body has ended; throws when there is none. */
  end(): unknown;
}

/** One value of a request header as Node parsed it; null when absent or repeated. */
export function headerValue(value: string | string[] | undefined): string | null {
  return typeof value === "string" ? value : null;
}

/** The response compressions the paths offer: connect-node's router's, in its order. */
const responseCompressions = [compressionGzip, compressionBrotli];

/** Smallest message compressed, as connect-es's default `compressMinBytes`. */
export const compressMinBytes = 1024;

/**
 * The compression of the response to a request with an identity body that accepts `accepted`
 * (an accept-encoding header value), as connect-node's router negotiates it; null: identity.
 */
export function responseCompression(accepted: string | string[] | undefined): Compression | null {
  if (accepted === undefined) return null;
  const value = Array.isArray(accepted) ? accepted.join(",") : accepted;
  let negotiated = negotiatedByHeader.get(value);
  if (negotiated === undefined) {
    negotiated = compressionNegotiate(responseCompressions, null, value, "").response;
    // Clients send a handful of values ("identity,deflate,gzip"); a client sending new ones
    // each call only stops them from being remembered.
    if (negotiatedByHeader.size < 64) negotiatedByHeader.set(value, negotiated);
  }
  return negotiated;
}

const negotiatedByHeader = new Map<string, Compression | null>();

/** An enveloped message compressed in place of its data when it is large enough. */
export function compressFrame(frame: Buffer, compression: Compression): Buffer | Promise<Buffer> {
  if (frame.byteLength - 5 < compressMinBytes) return frame;
  const flags = (frame[0] as number) | compressedFlag;
  return compression.compress(frame.subarray(5)).then((data) => frameMessage(data, flags));
}

/** Whether a content-encoding header allows the body to be read as is. */
export function isIdentity(encoding: string | string[] | undefined): boolean {
  return encoding === undefined || encoding === "identity";
}

/** Where a streamed response goes: an `Http2Stream` or a compatibility-API response. */
interface ResponseSink extends EventEmitter {
  readonly destroyed: boolean;
  destroy(): void;
}

/**
 * Stops a request body that kept arriving, unread, after its status was sent (a refused body, a
 * deadline; see `DirectCall.onData`). Over HTTP/2 the stream is reset with NO_ERROR, as RFC 9113
 * §8.1 allows once the response is complete. HTTP/1.1 has no way to end an upload but closing
 * the connection, and closing a socket with unread input makes the kernel send RST, which can
 * discard the response before the client read it; so reading stops (the client's writes block,
 * its response is there to read) and the connection closes `lingerMs` later (see
 * http/lingering-close.ts; connect-node drains 256 KiB, then closes after 500 ms). Not at the
 * status itself either way: nghttp2 sends RST_STREAM ahead of queued DATA, so an immediate reset
 * can overtake the status.
 */
export function stopReadingRequest(request: NodeRequest): void {
  if (request.httpVersionMajor === 1) {
    request.pause();
    const { socket } = request;
    setTimeout(() => socket.destroy(), lingerMs).unref();
    return;
  }
  // The compatibility request reads its stream itself: pause both, or it resumes the stream.
  request.pause();
  stopReadingStream((request as Http2ServerRequest).stream);
}

/**
 * Stops reading an HTTP/2 stream whose response is complete (RFC 9113 §8.1: the client may stop
 * sending). Flow control stops the client at once, as connect-node's adapter does; the stream is
 * closed with NO_ERROR only after `lingerMs`, because a client still sending when that reset
 * arrives reports an error instead of the status it already has (Node 22's http2 client does).
 */
export function stopReadingStream(stream: Http2Stream): void {
  stream.pause();
  setTimeout(() => {
    if (!stream.closed) stream.close(constants.NGHTTP2_NO_ERROR);
  }, lingerMs).unref();
}

/** One call beside connect-node, from its request body to its status. */
export abstract class DirectCall {
  /** The status sent to the client; null until one is. */
  protected status: ConnectError | undefined | null = null;
  /** How response messages are compressed (`responseCompression`); null: not at all. */
  protected compression: Compression | null = null;
  protected readonly record: RpcCall;
  protected readonly context: DirectContext;
  private readonly started = performance.now();
  private deadline: NodeJS.Timeout | undefined;
  /** Body bytes that arrived after the status was sent; -1 once reading stopped. */
  private discarded = 0;
  private sink: ResponseSink | undefined;

  constructor(
    private readonly tracker: CallTracker,
    protocol: Exclude<RpcProtocol, "unknown" | "openai">,
    protected readonly route: DirectRoute,
    headers: IncomingHttpHeaders,
    private readonly reader: RequestReader,
    protected readonly serialization: DirectSerialization,
  ) {
    this.record = createRpcCall(protocol, route.name, headers);
    this.context = new DirectContext(
      route.spec.method,
      headers,
      protocol === "grpc_web" ? "grpc-web" : protocol,
      this.record,
    );
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
    // Date.now(), as the context's timeoutMs() reads it.
    this.context.deadlineAt = Date.now() + ms;
    if (ms <= 0) {
      // Already expired (`grpc-timeout: 0n`): a timer would let a quick handler answer first.
      this.timedOut();
      return;
    }
    // maxTimeoutMs is at most 2^31 - 1 (config.ts), so the timer cannot overflow.
    this.deadline = setTimeout(this.timedOut, ms);
  }

  private readonly timedOut = (): void => {
    this.abort(new ConnectError("the operation timed out", Code.DeadlineExceeded));
  };

  /** Aborts the handler and ends the call with `reason`. */
  abort(reason: ConnectError): void {
    this.context.abort(reason);
    this.fail(reason);
  }

  /**
   * Ends the call with the status of `error` (internal, unless it is a ConnectError), its message
   * made well-formed first: gRPC's status encoding throws on a lone surrogate (well-formed.ts).
   */
  readonly fail = (error: unknown): void => {
    this.record.handlerError ??= error;
    try {
      this.end(
        error instanceof ConnectError
          ? wellFormedError(error)
          : new ConnectError("internal error", Code.Internal, undefined, undefined, error),
      );
    } catch (thrown) {
      this.crash(thrown);
    }
  };

  /**
   * The last resort, for this call's own code throwing where nothing expects it (an event
   * listener, a write callback, sending the status): the call ends with internal, or its stream
   * is destroyed when no status can be sent any more; the thrown error is the cause its report
   * logs; every other call goes on. Never throws.
   */
  protected readonly crash = (error: unknown): void => {
    this.record.handlerError = error;
    const internal = new ConnectError("internal error", Code.Internal, undefined, undefined, error);
    try {
      if (this.status === null) {
        this.end(internal);
        if (this.status !== null) return;
      }
    } catch {
      // Sending the status threw as well: the stream is destroyed below.
    }
    this.status = internal;
    clearTimeout(this.deadline);
    try {
      this.sink?.destroy();
    } catch {
      // Nothing is left to do for this call.
    }
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

  /** More than readMaxBytes arrived after the status: stop reading (see stopReadingRequest). */
  protected abstract stopReading(): void;

  /**
   * Reads the request from `body` and reports the call when `response` closes (on HTTP/2 gRPC
   * both are the one stream). Errors (a reset, a broken connection) are left to "close".
   */
  protected listen(body: EventEmitter, response: ResponseSink, httpVersion: string): void {
    this.context.request = body;
    this.sink = response;
    body.on("error", ignore);
    body.on("data", this.onData);
    body.on("end", this.onEnd);
    if (response !== body) response.on("error", ignore);
    response.on("close", () => this.closed(httpVersion, body));
  }

  private readonly onData = (chunk: Buffer): void => {
    this.record.bytesReceived += chunk.byteLength;
    if (this.status !== null) {
      // Answered early: what follows is dropped unread, and reading stops after readMaxBytes.
      if (this.discarded < 0) return;
      this.discarded += chunk.byteLength;
      if (this.discarded > this.tracker.options.readMaxBytes) {
        this.discarded = -1;
        try {
          this.stopReading();
        } catch (error) {
          this.crash(error);
        }
      }
      return;
    }
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
      request = this.reader.end() as never;
      this.record.messagesReceived = 1;
    } catch (error) {
      this.fail(error);
      return;
    }
    try {
      this.respond(request);
    } catch (error) {
      this.crash(error);
    }
  };

  /** Reports the call once its response closed; a call closed before its status was canceled. */
  private closed(httpVersion: string, body: EventEmitter): void {
    this.tracker.active.delete(this);
    clearTimeout(this.deadline);
    const { record } = this;
    let error = this.status;
    if (error === null) {
      this.context.abort(clientGoneReason(body));
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
        response.then(send, this.fail).catch(this.crash);
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
        let frame = this.frame(next.value);
        if (frame instanceof Promise) {
          frame = await frame;
          if (this.status !== null || sink.destroyed) break;
        }
        if (!write(frame)) await drained(sink);
      }
    } finally {
      if (!done) await messages.return?.();
    }
    this.end(undefined);
  }

  /**
   * Serializes and frames one response message, and counts it; compressed when the response is
   * and the message is large enough, which is the only case that waits (small messages of a
   * compressed response stay synchronous).
   */
  protected frame(message: unknown): Buffer | Promise<Buffer> {
    const data = this.serialization.serialize(message);
    const { compression } = this;
    if (compression === null || data.byteLength < compressMinBytes) {
      return this.counted(frameMessage(data));
    }
    return compression
      .compress(data)
      .then((compressed) => this.counted(frameMessage(compressed, compressedFlag)));
  }

  private counted(frame: Buffer): Buffer {
    this.record.messagesSent++;
    this.record.bytesSent += frame.byteLength;
    return frame;
  }
}

function ignore(): void {}

async function* oneMessage(response: unknown): AsyncGenerator<unknown> {
  yield await response;
}
