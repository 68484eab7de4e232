/**
 * @module The handler context of a call served beside connect-node (the direct gRPC path and the
 * web stream path), and the wait for a response stream's buffer to drain. Services see the same
 * `HandlerContext` as under connect-node's router.
 */
import type { EventEmitter } from "node:events";
import { constants, type IncomingHttpHeaders } from "node:http2";
import type { DescMethod, DescService } from "@bufbuild/protobuf";
import {
  Code,
  ConnectError,
  type ContextValues,
  createContextValues,
  type HandlerContext,
} from "@connectrpc/connect";
import { type CallReport, callReportKey } from "../../observability/call-report.js";

/** connect-es's name of each protocol (`HandlerContext.protocolName`). */
export type ProtocolName = "grpc" | "grpc-web" | "connect";

/**
 * The handler context of a direct call. Its signal and header objects are made only when a
 * handler reads them: `ListModels` reads none, and on a busy server the AbortController and
 * three Headers per call are a measurable part of the cost.
 */
export class DirectContext implements HandlerContext {
  readonly method: DescMethod;
  readonly service: DescService;
  readonly requestMethod = "POST";
  readonly protocolName: ProtocolName;
  /** When the deadline passes, in `Date.now()` milliseconds, as connect-es keeps it. */
  deadlineAt: number | undefined;
  /** The request (an Http2Stream or a compatibility-API request); on TLS the URL is https. */
  request: EventEmitter | undefined;
  private readonly rawHeaders: IncomingHttpHeaders;
  private controller: AbortController | undefined;
  private aborted = false;
  private reason: unknown;
  private requestHeaders: Headers | undefined;
  private responseHeaders: Headers | undefined;
  private responseTrailers: Headers | undefined;
  private contextValues: ContextValues | undefined;
  private readonly report: CallReport;

  /** `headers` as Node parsed them (HTTP/2 pseudo-headers are skipped). */
  constructor(
    method: DescMethod,
    headers: IncomingHttpHeaders,
    protocolName: ProtocolName,
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
    const scheme = isEncrypted(this.request) ? "https" : "http";
    return `${scheme}://${authority}${typeof path === "string" ? path : `/${this.service.typeName}/${this.method.name}`}`;
  }

  get values(): ContextValues {
    this.contextValues ??= createContextValues().set(callReportKey, this.report);
    return this.contextValues;
  }

  get signal(): AbortSignal {
    if (this.controller === undefined) {
      this.controller = new AbortController();
      if (this.aborted) this.controller.abort(this.reason);
    }
    return this.controller.signal;
  }

  /** Whole milliseconds, like connect-es's (service code may convert it with `BigInt`). */
  timeoutMs = (): number | undefined =>
    this.deadlineAt === undefined ? undefined : this.deadlineAt - Date.now();

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

  /** Aborts the signal once, with `reason` (undefined: the platform's AbortError). */
  abort(reason: unknown): void {
    if (this.aborted) return;
    this.aborted = true;
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

/** Whether a request came over TLS; read only when a handler asks for the URL. */
function isEncrypted(request: EventEmitter | undefined): boolean {
  const source = request as
    | { session?: { socket?: { encrypted?: boolean } }; socket?: { encrypted?: boolean } }
    | undefined;
  return (source?.session?.socket ?? source?.socket)?.encrypted === true;
}

/**
 * What a handler's signal aborts with when the client went away, as under connect-node's
 * adapter: on HTTP/2 the error of the stream's reset code, on HTTP/1.1 no reason (the
 * platform's AbortError). `body` is the request: an Http2Stream, or a compatibility-API request.
 */
export function clientGoneReason(body: EventEmitter): ConnectError | undefined {
  const stream = (body as { stream?: { rstCode?: number } }).stream ?? body;
  const rstCode = (stream as { rstCode?: number }).rstCode;
  if (rstCode === undefined) return undefined;
  const code = resetCodes.get(rstCode);
  if (code === undefined) return undefined;
  const name = resetNames.get(rstCode) ?? String(rstCode);
  return new ConnectError(
    `http/2 stream closed with error code ${name} (0x${rstCode.toString(16)})`,
    code,
  );
}

/** The status connect-node gives each HTTP/2 reset code (its node-error.ts, not exported). */
const resetCodes = new Map<number, Code>([
  [constants.NGHTTP2_PROTOCOL_ERROR, Code.Internal],
  [constants.NGHTTP2_INTERNAL_ERROR, Code.Internal],
  [constants.NGHTTP2_FLOW_CONTROL_ERROR, Code.Internal],
  [constants.NGHTTP2_SETTINGS_TIMEOUT, Code.Internal],
  [constants.NGHTTP2_FRAME_SIZE_ERROR, Code.Internal],
  [constants.NGHTTP2_COMPRESSION_ERROR, Code.Internal],
  [constants.NGHTTP2_CONNECT_ERROR, Code.Internal],
  [constants.NGHTTP2_REFUSED_STREAM, Code.Unavailable],
  [constants.NGHTTP2_CANCEL, Code.Canceled],
  [constants.NGHTTP2_ENHANCE_YOUR_CALM, Code.ResourceExhausted],
  [constants.NGHTTP2_INADEQUATE_SECURITY, Code.PermissionDenied],
  [constants.NGHTTP2_HTTP_1_1_REQUIRED, Code.PermissionDenied],
]);

const resetNames = new Map<number, string>(
  Object.entries(constants)
    .filter(([name]) => name.startsWith("NGHTTP2_") && !name.startsWith("NGHTTP2_ERR"))
    .map(([name, value]) => [value as number, name.slice("NGHTTP2_".length)] as const)
    .filter(([value]) => resetCodes.has(value)),
);

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
