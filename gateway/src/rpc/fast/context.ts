/**
 * @module The handler context of a call served beside connect-node (the direct gRPC path and the
 * web stream path), and the wait for a response stream's buffer to drain. Services see the same
 * `HandlerContext` as under connect-node's router.
 */
import type { EventEmitter } from "node:events";
import { constants, type IncomingHttpHeaders } from "node:http2";
import { performance } from "node:perf_hooks";
import type { DescMethod, DescService } from "@bufbuild/protobuf";
import {
  type ConnectError,
  type ContextValues,
  createContextValues,
  type HandlerContext,
} from "@connectrpc/connect";
import { type CallReport, callReportKey } from "../../observability/call-report.js";

/**
 * The handler context of a direct call. Its signal and header objects are made only when a
 * handler reads them: `ListModels` reads none, and on a busy server the AbortController and
 * three Headers per call are a measurable part of the cost.
 */
export class DirectContext implements HandlerContext {
  readonly method: DescMethod;
  readonly service: DescService;
  readonly requestMethod = "POST";
  readonly protocolName: string;
  deadlineAt: number | undefined;
  private readonly rawHeaders: IncomingHttpHeaders;
  private controller: AbortController | undefined;
  private reason: ConnectError | undefined;
  private requestHeaders: Headers | undefined;
  private responseHeaders: Headers | undefined;
  private responseTrailers: Headers | undefined;
  private contextValues: ContextValues | undefined;
  private readonly report: CallReport;

  /** `headers` as Node parsed them (HTTP/2 pseudo-headers are skipped). */
  constructor(
    method: DescMethod,
    headers: IncomingHttpHeaders,
    protocolName: string,
    report: CallReport,
  ) {
    this.method = method;
    this.service = method.parent;
    this.rawHeaders = headers;
    this.protocolName = protocolName;
    this.report = report;
  }

  get url(): string {
    const headers = this.rawHeaders;
    const authority = headers[constants.HTTP2_HEADER_AUTHORITY] ?? headers.host ?? "localhost";
    const path = headers[constants.HTTP2_HEADER_PATH];
    return `http://${authority}${typeof path === "string" ? path : `/${this.service.typeName}/${this.method.name}`}`;
  }

  get values(): ContextValues {
    this.contextValues ??= createContextValues().set(callReportKey, this.report);
    return this.contextValues;
  }

  get signal(): AbortSignal {
    if (this.controller === undefined) {
      this.controller = new AbortController();
      if (this.reason !== undefined) this.controller.abort(this.reason);
    }
    return this.controller.signal;
  }

  timeoutMs = (): number | undefined =>
    this.deadlineAt === undefined ? undefined : this.deadlineAt - performance.now();

  get requestHeader(): Headers {
    if (this.requestHeaders === undefined) {
      this.requestHeaders = new Headers();
      for (const [name, value] of Object.entries(this.rawHeaders)) {
        if (name.startsWith(":") || value === undefined) continue;
        for (const item of Array.isArray(value) ? value : [value]) {
          this.requestHeaders.append(name, item);
        }
      }
    }
    return this.requestHeaders;
  }

  get responseHeader(): Headers {
    this.responseHeaders ??= new Headers();
    return this.responseHeaders;
  }

  get responseTrailer(): Headers {
    this.responseTrailers ??= new Headers();
    return this.responseTrailers;
  }

  /** Aborts the signal once, with `reason`. */
  abort(reason: ConnectError): void {
    if (this.reason !== undefined) return;
    this.reason = reason;
    this.controller?.abort(reason);
  }

  /** The response headers: the call's `x-request-id` and those the handler set. */
  header(): Record<string, string> {
    const requestId = { "x-request-id": this.report.requestId };
    return this.responseHeaders === undefined
      ? requestId
      : { ...requestId, ...Object.fromEntries(this.responseHeaders) };
  }

  /** The response trailers a handler set, if any. */
  trailer(): Headers | undefined {
    return this.responseTrailers;
  }
}

/** Resolves when a response stream can take more, or has closed. */
export function drained(stream: EventEmitter): Promise<void> {
  return new Promise((resolve) => {
    const done = () => {
      stream.off("drain", done);
      stream.off("close", done);
      resolve();
    };
    stream.on("drain", done);
    stream.on("close", done);
  });
}
