/**
 * @module Test support for hostile clients: sends a request exactly as given (any bytes, any
 * headers, a body of any size, HTTP/1.1 or h2c) and reads the status of the response in the
 * protocol's own form, failing when the response is not a well-formed answer of that protocol.
 * A client we write ourselves on purpose: real clients refuse to send malformed requests.
 */
import { request as h1Request } from "node:http";
import { type ClientHttp2Session, connect } from "node:http2";
import { connect as connectTcp } from "node:net";
import { Code, ConnectError } from "@connectrpc/connect";
import { endStreamFromJson, errorFromJsonBytes } from "@connectrpc/connect/protocol-connect";
import { findTrailerError } from "@connectrpc/connect/protocol-grpc";
import { trailerParse } from "@connectrpc/connect/protocol-grpc-web";

/** How a response carries its status. */
export type WireProtocol = "grpc" | "grpc_web" | "grpc_web_text" | "connect_stream" | "connect";

/** A request as it goes on the wire. */
export interface RawRequest {
  readonly method?: "POST" | "GET";
  /** Path and query. */
  readonly path: string;
  readonly headers: Readonly<Record<string, string>>;
  /** The body, or `size` bytes that start with `head` and continue with `fill`. */
  readonly body: Buffer | { readonly head: Buffer; readonly size: number; readonly fill: number };
}

/** What came back. */
export interface RawResponse {
  /** 0 when no response head arrived. */
  readonly status: number;
  readonly headers: Readonly<Record<string, string>>;
  readonly trailers: Readonly<Record<string, string>>;
  readonly body: Buffer;
  /** Body bytes the client managed to send before the server stopped it or answered. */
  readonly sent: number;
  /** How the exchange broke, if it did (a reset, a socket error). */
  readonly broken: string | undefined;
}

const chunkBytes = 1 << 20;

function* bodyChunks(body: RawRequest["body"]): Generator<Buffer> {
  if (Buffer.isBuffer(body)) {
    if (body.byteLength > 0) yield body;
    return;
  }
  yield body.head;
  const filler = Buffer.alloc(chunkBytes, body.fill);
  for (let left = body.size - body.head.byteLength; left > 0; left -= chunkBytes) {
    yield left >= chunkBytes ? filler : filler.subarray(0, left);
  }
}

function flat(headers: Record<string, unknown>): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [name, value] of Object.entries(headers)) {
    if (name.startsWith(":")) continue;
    if (typeof value === "string") out[name] = value;
    else if (typeof value === "number") out[name] = String(value);
    else if (Array.isArray(value)) out[name] = value.join(", ");
  }
  return out;
}

/** Sends over HTTP/1.1 on a new connection. */
export function sendHttp1(
  base: string,
  request: RawRequest,
  timeoutMs = 30_000,
): Promise<RawResponse> {
  return new Promise((resolve) => {
    const url = new URL(request.path, base);
    let sent = 0;
    let status = 0;
    let headers: Record<string, string> = {};
    let trailers: Record<string, string> = {};
    const chunks: Buffer[] = [];
    let settled = false;
    const done = (broken: string | undefined) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      resolve({ status, headers, trailers, body: Buffer.concat(chunks), sent, broken });
    };
    const req = h1Request(url, {
      method: request.method ?? "POST",
      headers: request.headers,
      agent: false,
    });
    const timer = setTimeout(() => {
      req.destroy();
      done("timeout");
    }, timeoutMs);
    req.on("response", (res) => {
      status = res.statusCode ?? 0;
      headers = flat(res.headers);
      res.on("data", (chunk: Buffer) => chunks.push(chunk));
      res.on("end", () => {
        trailers = flat(res.trailers);
        done(undefined);
      });
      res.on("error", (error) => done(error.message));
    });
    req.on("error", (error) => {
      // A write failing after the response arrived (the server stopped reading) is no break.
      if (status === 0) done(error.message);
    });
    void (async () => {
      for (const chunk of bodyChunks(request.body)) {
        if (req.destroyed || settled) return;
        sent += chunk.byteLength;
        if (!req.write(chunk)) {
          await new Promise((r) => {
            req.once("drain", r);
            req.once("close", r);
          });
        }
      }
      req.end();
    })();
  });
}

/**
 * Sends a `Connection: close` HTTP/1.1 POST over a raw socket, reads nothing for `readAfterMs`
 * (a client busy writing its upload), then reads until the server closes: what reached it, and
 * when the connection closed. `body` may be shorter than `contentLength` (an upload cut short).
 */
export async function postAndReadLate(options: {
  readonly port: number;
  readonly path: string;
  readonly headers?: Readonly<Record<string, string>>;
  readonly contentLength: number;
  readonly body: Buffer;
  readonly readAfterMs: number;
  /** A whole request sent first on the same connection, kept alive. */
  readonly leadingRequest?: string;
}): Promise<{ text: string; closedAfterMs: number }> {
  const socket = connectTcp(options.port, "127.0.0.1");
  const received: Buffer[] = [];
  socket.on("data", (chunk: Buffer) => received.push(chunk));
  socket.on("error", () => {}); // the upload's write fails once the server closes: expected
  const closed = new Promise((resolve) => socket.once("close", resolve));
  socket.pause();
  const started = performance.now();
  const headers = Object.entries(options.headers ?? {})
    .map(([name, value]) => `${name}: ${value}\r\n`)
    .join("");
  if (options.leadingRequest !== undefined) socket.write(options.leadingRequest);
  socket.write(
    `POST ${options.path} HTTP/1.1\r\nHost: test\r\nConnection: close\r\n${headers}` +
      `Content-Length: ${options.contentLength}\r\n\r\n`,
  );
  socket.write(options.body);
  setTimeout(() => socket.resume(), options.readAfterMs);
  await closed;
  return {
    text: Buffer.concat(received).toString("latin1"),
    closedAfterMs: performance.now() - started,
  };
}

/** Sends on a stream of `session` (h2c). */
export function sendHttp2(
  session: ClientHttp2Session,
  request: RawRequest,
  timeoutMs = 30_000,
): Promise<RawResponse> {
  return new Promise((resolve) => {
    let sent = 0;
    let status = 0;
    let headers: Record<string, string> = {};
    let trailers: Record<string, string> = {};
    const chunks: Buffer[] = [];
    let broken: string | undefined;
    const stream = session.request({
      ":method": request.method ?? "POST",
      ":path": request.path,
      ...request.headers,
    });
    const timer = setTimeout(() => {
      broken = "timeout";
      stream.close();
    }, timeoutMs);
    stream.on("response", (h) => {
      status = Number(h[":status"] ?? 0);
      headers = flat(h);
    });
    stream.on("trailers", (t) => {
      trailers = flat(t);
    });
    stream.on("data", (chunk: Buffer) => chunks.push(chunk));
    stream.on("error", (error) => {
      broken ??= error.message;
    });
    stream.on("close", () => {
      clearTimeout(timer);
      // NO_ERROR after a complete response is the server asking the client to stop sending.
      if (stream.rstCode !== 0 && broken === undefined) broken = `RST_STREAM ${stream.rstCode}`;
      resolve({ status, headers, trailers, body: Buffer.concat(chunks), sent, broken });
    });
    void (async () => {
      for (const chunk of bodyChunks(request.body)) {
        if (stream.destroyed || stream.closed) return;
        sent += chunk.byteLength;
        if (!stream.write(chunk)) {
          await new Promise((r) => {
            stream.once("drain", r);
            stream.once("close", r);
          });
        }
      }
      if (!stream.destroyed) stream.end();
    })();
  });
}

/** Opens an h2c session whose errors are kept, not thrown. */
export function openSession(base: string): ClientHttp2Session {
  const session = connect(base);
  session.on("error", () => {});
  return session;
}

/**
 * The status `response` carries (undefined: OK), read the way `protocol` carries it; throws
 * when the response is not a well-formed answer of that protocol.
 */
export function wireStatus(
  protocol: WireProtocol,
  response: RawResponse,
): ConnectError | undefined {
  const { status, headers, trailers, body } = response;
  const malformed = (why: string) =>
    new Error(
      `malformed ${protocol} response (${why}): HTTP ${status}, ${JSON.stringify(headers)}, ${JSON.stringify(trailers)}, ${body.byteLength} body bytes, broken: ${response.broken}`,
    );
  if (status === 0) throw malformed("no response");
  if (protocol === "connect") {
    const type = headers["content-type"] ?? "";
    if (status === 200) {
      if (!/^application\/(proto|json)/.test(type)) throw malformed("content type");
      return undefined;
    }
    if (!type.startsWith("application/json")) throw malformed("error without JSON");
    return errorFromJsonBytes(body, undefined, new ConnectError("none", Code.Unknown));
  }
  if (status !== 200) throw malformed("HTTP status");
  if (protocol === "grpc") {
    const source = headers["grpc-status"] !== undefined ? headers : trailers;
    if (source["grpc-status"] === undefined) throw malformed("no grpc-status");
    frames(body, malformed); // the messages before the status must be whole envelopes
    return findTrailerError(new Headers(source));
  }
  if (headers["grpc-status"] !== undefined) {
    // A trailers-only gRPC-Web response.
    return findTrailerError(new Headers(headers));
  }
  const bytes =
    protocol === "grpc_web_text" ? Buffer.from(body.toString("latin1"), "base64") : body;
  const last = frames(bytes, malformed).at(-1);
  if (protocol === "connect_stream") {
    if (last === undefined || (last.flags & 0x02) !== 0x02) throw malformed("no end-stream");
    return endStreamFromJson(last.data).error;
  }
  if (last === undefined || (last.flags & 0x80) !== 0x80) throw malformed("no trailers frame");
  const trailer = trailerParse(last.data);
  if (trailer.get("grpc-status") === null) throw malformed("no grpc-status in trailers frame");
  return findTrailerError(trailer);
}

function frames(
  body: Buffer,
  malformed: (why: string) => Error,
): { flags: number; data: Buffer }[] {
  const out: { flags: number; data: Buffer }[] = [];
  let offset = 0;
  while (offset < body.byteLength) {
    if (body.byteLength - offset < 5) throw malformed("partial envelope prefix");
    const flags = body[offset] as number;
    const length = body.readUInt32BE(offset + 1);
    if (offset + 5 + length > body.byteLength) throw malformed("partial envelope");
    out.push({ flags, data: body.subarray(offset + 5, offset + 5 + length) });
    offset += 5 + length;
  }
  return out;
}
