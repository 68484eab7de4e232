/**
 * @module The clients of the differential suite and the one outcome shape they all report, so
 * that what connect-node's router answered and what Parley answered compare field by field:
 * connect-node's own transports (Connect, gRPC, gRPC-Web), @grpc/grpc-js, and raw `node:http` /
 * `node:http2` requests for what a client would hide or never send (bad envelopes, GET, gRPC-Web
 * text, wrong content types).
 */
import { request as httpRequest } from "node:http";
import { connect as http2Connect } from "node:http2";
import { request as httpsRequest } from "node:https";
import { fromBinary, type JsonObject, toBinary, toJson } from "@bufbuild/protobuf";
import { type Struct, StructSchema } from "@bufbuild/protobuf/wkt";
import {
  type CallOptions,
  Code,
  ConnectError,
  createClient,
  type Transport,
} from "@connectrpc/connect";
import {
  compressionBrotli,
  compressionGzip,
  createConnectTransport,
  createGrpcTransport,
  createGrpcWebTransport,
} from "@connectrpc/connect-node";
import * as grpc from "@grpc/grpc-js";
import { abortReasons, ConformanceService, startedCalls, struct } from "./conformance-service.js";

/** What a call ended with, as the client saw it: the part the suite compares. */
export interface Outcome {
  /** "ok", a code name ("invalid_argument"), or for raw requests the HTTP status. */
  readonly status: string;
  readonly message?: string;
  readonly details?: unknown[];
  readonly headers: Record<string, string>;
  readonly trailers?: Record<string, string>;
  readonly messages: unknown[];
  /** The reason the handler's signal aborted with, for cancellation cases. */
  readonly handlerSaw?: string;
  /** The raw response body: JSON text, or base64. */
  readonly body?: string;
}

export type HttpKind = "h1" | "h2c" | "tls-h2" | "tls-h1";
export type Codec = "proto" | "json";
/** "accept-gzip": an identity request from a client that accepts gzip responses. */
export type CompressionName = "identity" | "gzip" | "br" | "unsupported" | "accept-gzip";
export type MethodName = "unary" | "serverStream" | "clientStream" | "bidiStream";

/** Where a client connects. */
export interface Target {
  readonly http1Url: string;
  readonly h2cUrl: string;
  readonly tlsUrl: string;
  /** The test certificate, trusted by the clients. */
  readonly ca: Buffer;
}

/**
 * Response headers that say nothing about the RPC layer (set by Node per connection or time),
 * and `x-request-id`, which Parley adds to every response on purpose (a fresh id unless the
 * client sent one; `server/request-ids-and-traces.test.ts` checks it).
 */
const ignoredHeaders = new Set([
  "x-request-id",
  "date",
  "connection",
  "keep-alive",
  "transfer-encoding",
  "content-length",
]);

function headerRecord(headers: Iterable<[string, string]>): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [name, value] of headers) {
    if (!ignoredHeaders.has(name) && !name.startsWith(":")) out[name] = value;
  }
  return out;
}

type Compression = typeof compressionGzip;

/** A compression connect-node's clients can announce but no server supports. */
const unsupportedCompression: Compression = {
  name: "snappy",
  compress: (bytes) => Promise.resolve(new Uint8Array(bytes)),
  decompress: (bytes) => Promise.resolve(new Uint8Array(bytes)),
};

function compressionOf(name: CompressionName): Compression | undefined {
  switch (name) {
    case "gzip":
      return compressionGzip;
    case "br":
      return compressionBrotli;
    case "unsupported":
      return unsupportedCompression;
    default:
      return undefined;
  }
}

/** A connect-node transport of `protocol` for one HTTP kind, codec and compression. */
export function connectNodeTransport(
  target: Target,
  protocol: "connect" | "grpc" | "grpc-web",
  http: HttpKind,
  codec: Codec,
  compression: CompressionName,
): Transport {
  const baseUrl = http === "h1" ? target.http1Url : http === "h2c" ? target.h2cUrl : target.tlsUrl;
  const httpVersion = http === "h1" || http === "tls-h1" ? "1.1" : "2";
  const send = compression === "accept-gzip" ? undefined : compressionOf(compression);
  const options = {
    baseUrl,
    httpVersion,
    useBinaryFormat: codec === "proto",
    sendCompression: send,
    acceptCompression:
      compression === "accept-gzip" ? [compressionGzip] : send === undefined ? [] : [send],
    compressMinBytes: 0,
    nodeOptions: { ca: target.ca },
  } as const;
  if (protocol === "connect") return createConnectTransport(options);
  if (protocol === "grpc") {
    const { httpVersion: _, ...grpcOptions } = options;
    return createGrpcTransport(grpcOptions);
  }
  return createGrpcWebTransport(options);
}

/** One call's request: instructions (or several, for client and bidi streams) and options. */
export interface CallSpec {
  readonly method: MethodName;
  readonly requests: readonly JsonObject[];
  readonly headers?: Record<string, string>;
  readonly timeoutMs?: number;
  /** Abort the call once its handler started; the outcome adds what the handler saw. */
  readonly cancel?: boolean;
  /** The `recordAbort` key of the request, to read the handler's abort reason with. */
  readonly abortKey?: string;
}

function errorOutcome(
  error: unknown,
  headers: Record<string, string>,
  trailers: Record<string, string> | undefined,
  messages: unknown[],
): Outcome {
  const connectError = ConnectError.from(error);
  return {
    status: codeName(connectError.code),
    message: connectError.rawMessage,
    details: connectError.findDetails(StructSchema).map((detail) => toJson(StructSchema, detail)),
    headers: { ...headers, ...metadataOf(connectError) },
    trailers,
    messages,
  };
}

function metadataOf(error: ConnectError): Record<string, string> {
  return headerRecord(error.metadata);
}

/** A code's wire name, "ok" for none. */
export function codeName(code: Code | undefined): string {
  if (code === undefined) return "ok";
  const name = Code[code] ?? String(code);
  return name
    .replace(/^[A-Z]/, (c) => c.toLowerCase())
    .replace(/[A-Z]/g, (c) => `_${c.toLowerCase()}`);
}

/** Calls the conformance service with a connect-node transport. */
export async function callWithTransport(transport: Transport, spec: CallSpec): Promise<Outcome> {
  const client = createClient(ConformanceService, transport) as unknown as ConformanceClient;
  let headers: Record<string, string> = {};
  let trailers: Record<string, string> | undefined;
  const messages: unknown[] = [];
  const abort = new AbortController();
  if (spec.cancel === true) void whenStarted(spec.abortKey).then(() => abort.abort());
  const options = {
    headers: spec.headers,
    timeoutMs: spec.timeoutMs,
    signal: abort.signal,
    onHeader: (h: Headers) => {
      headers = headerRecord(h);
    },
    onTrailer: (t: Headers) => {
      trailers = headerRecord(t);
    },
  };
  const requests = spec.requests.map(struct);
  const take = (message: Struct) => messages.push(stripVolatile(toJson(StructSchema, message)));
  let outcome: Outcome;
  try {
    switch (spec.method) {
      case "unary":
        take(await client.unary(requests[0] as Struct, options));
        break;
      case "serverStream":
        for await (const message of client.serverStream(requests[0] as Struct, options))
          take(message);
        break;
      case "clientStream":
        take(await client.clientStream(iterate(requests), options));
        break;
      case "bidiStream":
        for await (const message of client.bidiStream(iterate(requests), options)) take(message);
        break;
    }
    outcome = { status: "ok", headers, trailers, messages };
  } catch (error) {
    outcome = errorOutcome(error, headers, trailers, messages);
  }
  return withHandlerView(outcome, spec.abortKey);
}

/** The client of the conformance service (its descriptor is built at run time, so untyped). */
interface ConformanceClient {
  unary(request: Struct, options: CallOptions): Promise<Struct>;
  serverStream(request: Struct, options: CallOptions): AsyncIterable<Struct>;
  clientStream(requests: AsyncIterable<Struct>, options: CallOptions): Promise<Struct>;
  bidiStream(requests: AsyncIterable<Struct>, options: CallOptions): AsyncIterable<Struct>;
}

async function* iterate<T>(items: readonly T[]): AsyncGenerator<T> {
  yield* items;
}

/** The response messages carry the handler's view; `pad` is compared by length. */
function stripVolatile(json: unknown): unknown {
  if (json !== null && typeof json === "object" && "pad" in json) {
    const { pad, ...rest } = json as { pad: string };
    return { ...rest, padLength: pad.length };
  }
  return json;
}

/** Resolves once the handler of the call with `key` started (or after 3 s). */
async function whenStarted(key: string | undefined): Promise<void> {
  for (let i = 0; i < 600 && (key === undefined || !startedCalls.has(key)); i++) {
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
}

/** Adds the abort reason the handler saw, once it was recorded (or "none" after 3 s). */
async function withHandlerView(outcome: Outcome, key: string | undefined): Promise<Outcome> {
  if (key === undefined) return outcome;
  for (let i = 0; i < 300 && !abortReasons.has(key); i++) {
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
  return { ...outcome, handlerSaw: abortReasons.get(key) ?? "none" };
}

/** Calls the conformance service with @grpc/grpc-js over h2c or TLS. */
export async function callWithGrpcJs(
  target: Target,
  http: "h2c" | "tls-h2",
  compression: "identity" | "gzip",
  spec: CallSpec,
): Promise<Outcome> {
  const serialize = (value: JsonObject) => Buffer.from(toBinary(StructSchema, struct(value)));
  const deserialize = (bytes: Buffer) =>
    stripVolatile(toJson(StructSchema, fromBinary(StructSchema, bytes)));
  const path = `/${ConformanceService.typeName}/`;
  const Constructor = grpc.makeGenericClientConstructor(
    {
      unary: {
        path: `${path}Unary`,
        requestStream: false,
        responseStream: false,
        requestSerialize: serialize,
        requestDeserialize: () => ({}),
        responseSerialize: () => Buffer.alloc(0),
        responseDeserialize: deserialize,
      },
      serverStream: {
        path: `${path}ServerStream`,
        requestStream: false,
        responseStream: true,
        requestSerialize: serialize,
        requestDeserialize: () => ({}),
        responseSerialize: () => Buffer.alloc(0),
        responseDeserialize: deserialize,
      },
    },
    "ConformanceService",
  );
  const url = new URL(http === "h2c" ? target.h2cUrl : target.tlsUrl);
  const client = new Constructor(
    `${url.hostname}:${url.port}`,
    http === "h2c" ? grpc.credentials.createInsecure() : grpc.credentials.createSsl(target.ca),
    compression === "gzip" ? { "grpc.default_compression_algorithm": 2 } : {},
  );
  const metadata = new grpc.Metadata();
  for (const [name, value] of Object.entries(spec.headers ?? {})) metadata.set(name, value);
  const deadline = spec.timeoutMs === undefined ? undefined : new Date(Date.now() + spec.timeoutMs);
  const messages: unknown[] = [];
  const outcome = await new Promise<Outcome>((resolve) => {
    let headers: Record<string, string> = {};
    const request = spec.requests[0] ?? {};
    const call: grpc.ClientUnaryCall | grpc.ClientReadableStream<unknown> =
      spec.method === "unary"
        ? (client as unknown as UnaryClient).unary(
            request,
            metadata,
            { deadline },
            (_e: unknown, value: unknown) => {
              if (value !== undefined) messages.push(value);
            },
          )
        : (client as unknown as StreamClient).serverStream(request, metadata, { deadline });
    call.on("metadata", (m: grpc.Metadata) => {
      headers = grpcMetadataRecord(m);
    });
    call.on("data", (value: unknown) => messages.push(value));
    call.on("error", () => {});
    call.on("status", (status: grpc.StatusObject) => {
      resolve({
        status: codeName(status.code === 0 ? undefined : (status.code as unknown as Code)),
        // grpc-js words its own deadline errors with timings ("Deadline exceeded after 0.170s").
        message:
          status.code === 0
            ? undefined
            : status.details.startsWith("Deadline exceeded after")
              ? "Deadline exceeded (by the client)"
              : status.details,
        headers,
        trailers: grpcMetadataRecord(status.metadata),
        messages,
      });
    });
    if (spec.cancel === true) void whenStarted(spec.abortKey).then(() => call.cancel());
  });
  client.close();
  return withHandlerView(outcome, spec.abortKey);
}

interface UnaryClient {
  unary(
    r: unknown,
    m: grpc.Metadata,
    o: grpc.CallOptions,
    cb: (e: unknown, v: unknown) => void,
  ): grpc.ClientUnaryCall;
}
interface StreamClient {
  serverStream(
    r: unknown,
    m: grpc.Metadata,
    o: grpc.CallOptions,
  ): grpc.ClientReadableStream<unknown>;
}

function grpcMetadataRecord(metadata: grpc.Metadata): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [name, values] of Object.entries(metadata.getMap())) {
    if (!ignoredHeaders.has(name))
      out[name] = Buffer.isBuffer(values) ? values.toString("base64") : String(values);
  }
  return out;
}

/** A raw request: method, path (with query), headers and body bytes. */
export interface RawRequest {
  readonly method: "GET" | "POST";
  readonly path: string;
  readonly headers: Record<string, string>;
  readonly body: Uint8Array;
}

/** Sends a raw request over HTTP/1.1 (cleartext or TLS) or HTTP/2 (h2c or TLS). */
export async function callRaw(target: Target, http: HttpKind, raw: RawRequest): Promise<Outcome> {
  const chunks: Buffer[] = [];
  if (http === "h1" || http === "tls-h1") {
    const base = http === "h1" ? target.http1Url : target.tlsUrl;
    return new Promise<Outcome>((resolve, reject) => {
      const send = http === "h1" ? httpRequest : httpsRequest;
      const request = send(
        new URL(raw.path, base),
        { method: raw.method, headers: raw.headers, ca: target.ca, agent: false },
        (response) => {
          response.on("data", (chunk: Buffer) => chunks.push(chunk));
          response.on("end", () =>
            resolve(
              rawOutcome(
                String(response.statusCode),
                headerRecord(Object.entries(response.headers).map(([k, v]) => [k, String(v)])),
                headerRecord(Object.entries(response.trailers).map(([k, v]) => [k, String(v)])),
                Buffer.concat(chunks),
              ),
            ),
          );
          response.on("error", reject);
        },
      );
      request.on("error", (error) =>
        resolve({
          status: `error ${(error as NodeJS.ErrnoException).code ?? error.message}`,
          headers: {},
          messages: [],
        }),
      );
      request.end(raw.body);
    });
  }
  const session = http2Connect(http === "h2c" ? target.h2cUrl : target.tlsUrl, { ca: target.ca });
  try {
    return await new Promise<Outcome>((resolve) => {
      session.on("error", () => {});
      const stream = session.request({ ":method": raw.method, ":path": raw.path, ...raw.headers });
      let status = "";
      let headers: Record<string, string> = {};
      let trailers: Record<string, string> | undefined;
      stream.on("response", (h) => {
        status = String(h[":status"]);
        headers = headerRecord(Object.entries(h).map(([k, v]) => [k, String(v)]));
      });
      stream.on("trailers", (t) => {
        trailers = headerRecord(Object.entries(t).map(([k, v]) => [k, String(v)]));
      });
      stream.on("data", (chunk: Buffer) => chunks.push(chunk));
      stream.on("error", () => {});
      stream.on("close", () => {
        const reset =
          stream.rstCode !== 0 && stream.rstCode !== undefined ? ` reset ${stream.rstCode}` : "";
        resolve(rawOutcome(`${status}${reset}`, headers, trailers, Buffer.concat(chunks)));
      });
      stream.end(raw.body);
    });
  } finally {
    session.close();
  }
}

function rawOutcome(
  status: string,
  headers: Record<string, string>,
  trailers: Record<string, string> | undefined,
  body: Buffer,
): Outcome {
  const type = headers["content-type"] ?? "";
  const text = type.includes("json") || type.startsWith("text/") || type.includes("grpc-web-text");
  return {
    status,
    headers,
    trailers: trailers === undefined || Object.keys(trailers).length === 0 ? undefined : trailers,
    messages: [],
    body: text ? body.toString("utf8") : body.toString("base64"),
  };
}

/** A length-prefixed message: flags, big-endian length, bytes. */
export function envelope(bytes: Uint8Array, flags = 0, length = bytes.byteLength): Buffer {
  const frame = Buffer.alloc(5 + bytes.byteLength);
  frame[0] = flags;
  frame.writeUInt32BE(length, 1);
  frame.set(bytes, 5);
  return frame;
}

/** The binary form of a request. */
export function protoBytes(json: JsonObject): Uint8Array {
  return toBinary(StructSchema, struct(json));
}
