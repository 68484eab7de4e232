/**
 * @module API keys: which requests need one, whether a request carries a valid one, and the
 * answer when it does not, in the protocol the request speaks. It sits in front of every route
 * (the direct gRPC path, the fast paths, connect-node's router and `/v1`), so no protocol can be
 * served without a key. Health checks, the web client's files and (unless `protectMetrics`)
 * `/metrics` stay open. Keys are compared as SHA-256 digests with `timingSafeEqual`, against every
 * configured key without stopping at a match, and never logged: metrics and logs name keys only.
 */
import { createHash, timingSafeEqual } from "node:crypto";
import type { IncomingHttpHeaders } from "node:http2";
import { Counter, type Registry } from "prom-client";
import { type NodeRequest, type NodeResponse, writeHead } from "./node-http.js";

/** One accepted key and the name it is reported under. */
export interface ApiKey {
  readonly name: string;
  readonly key: string;
}

/** A key file or flag value that cannot be used; the message never holds a key. */
export class ApiKeyError extends Error {
  override readonly name = "ApiKeyError";
}

/** RFC 6750's b64token: what may follow "Bearer " in an Authorization header. */
const tokenPattern = /^[A-Za-z0-9\-._~+/]+=*$/;
/** Names become metric label values and log fields. */
const namePattern = /^[A-Za-z0-9_.-]{1,64}$/;

/**
 * Reads keys, one per line: `KEY` or `NAME:KEY` (a key cannot hold ":", so this is unambiguous).
 * Blank lines and lines starting with "#" are skipped. An unnamed key is called what
 * `unnamed(line number)` returns (`key-3` for line 3 by default). Throws {@link ApiKeyError}
 * naming the line, never the key.
 */
export function parseApiKeys(
  text: string,
  source: string,
  unnamed: (line: number) => string = (line) => `key-${line}`,
): ApiKey[] {
  const keys: ApiKey[] = [];
  text.split(/\r?\n/).forEach((raw, index) => {
    const line = raw.trim();
    if (line.length === 0 || line.startsWith("#")) {
      return;
    }
    const colon = line.indexOf(":");
    const name = colon === -1 ? unnamed(index + 1) : line.slice(0, colon).trim();
    const key = colon === -1 ? line : line.slice(colon + 1).trim();
    if (!namePattern.test(name)) {
      throw new ApiKeyError(
        `${source} line ${index + 1}: a key name holds 1 to 64 letters, digits, "_", "." or "-"`,
      );
    }
    if (!tokenPattern.test(key)) {
      throw new ApiKeyError(
        `${source} line ${index + 1}: a key holds only letters, digits and -._~+/ (then "=" padding), as a Bearer token must`,
      );
    }
    keys.push({ name, key });
  });
  return keys;
}

/** Fails on a repeated name or key, which would make the usage counters lie. */
export function checkDistinct(keys: readonly ApiKey[]): void {
  const names = new Set<string>();
  const digests = new Set<string>();
  for (const { name, key } of keys) {
    if (names.has(name)) throw new ApiKeyError(`the API key name "${name}" is used twice`);
    const digest = createHash("sha256").update(key).digest("hex");
    if (digests.has(digest)) throw new ApiKeyError(`the API key named "${name}" repeats another`);
    names.add(name);
    digests.add(digest);
  }
}

/** Options of {@link createApiKeyGuard}. */
export interface ApiKeyGuardOptions {
  /** The accepted keys; with none, every protected route is refused (no key can be right). */
  readonly keys: readonly ApiKey[];
  /** Whether `/metrics` needs a key too. */
  readonly protectMetrics: boolean;
  /** Where the per-key counters go. */
  readonly registry: Registry;
}

/** The gate in front of every route. */
export interface ApiKeyGuard {
  /**
   * Answers the request with `unauthenticated` when it needs a key and has no valid one, and
   * returns true; returns false (and counts the call for its key) when it may go on.
   */
  rejects(request: NodeRequest, response: NodeResponse): boolean;
  /**
   * For the direct gRPC path: runs `serve` when the stream may go on and counts it when `serve`
   * took it; returns false without running it otherwise, and the stream then reaches
   * {@link ApiKeyGuard.rejects} through Node's compatibility API.
   */
  admitStream(headers: IncomingHttpHeaders, serve: () => boolean): boolean;
  /** Swaps the accepted keys (a key file re-read on SIGHUP); calls in flight are unaffected. */
  replace(keys: readonly ApiKey[]): void;
}

/** What every client without a valid key reads: it does not say whether the key exists. */
const message = "a valid API key is required: send Authorization: Bearer <key>";

/** Creates the guard. */
export function createApiKeyGuard(options: ApiKeyGuardOptions): ApiKeyGuard {
  let digests: readonly { readonly name: string; readonly digest: Buffer }[] = [];
  const replace = (keys: readonly ApiKey[]) => {
    checkDistinct(keys);
    digests = keys.map(({ name, key }) => ({ name, digest: sha256(key) }));
  };
  replace(options.keys);
  // Tallies in plain numbers, handed to prom-client when scraped (see rpc-call-reporter.ts).
  const accepted = new Map<string, number>();
  let rejected = 0;
  const registers = [options.registry];
  const requests = new Counter({
    name: "parley_api_key_requests_total",
    help: "Requests let through by API key, by the key's name (never the key).",
    labelNames: ["key"],
    registers,
    collect() {
      for (const [key, count] of accepted) requests.inc({ key }, count);
      accepted.clear();
    },
  });
  const rejections = new Counter({
    name: "parley_api_key_rejections_total",
    help: "Requests refused as unauthenticated: no key, or one that is not accepted.",
    registers,
    collect() {
      rejections.inc(rejected);
      rejected = 0;
    },
  });

  /** The name of the key `authorization` holds, or undefined. Constant time in the key. */
  const keyName = (authorization: string | string[] | undefined): string | undefined => {
    const value = Array.isArray(authorization) ? authorization[0] : authorization;
    const match = /^Bearer[ \t]+(\S+)[ \t]*$/i.exec(value ?? "");
    const presented = sha256(match?.[1] ?? "");
    let found: string | undefined;
    for (const { name, digest } of digests) {
      if (timingSafeEqual(presented, digest) && match !== null) found = name;
    }
    return found;
  };

  const needsKey = (method: string | undefined, path: string): boolean => {
    if (openPaths.has(path) || path.startsWith(healthPrefix)) {
      return false;
    }
    if (path === "/metrics") {
      return options.protectMetrics;
    }
    // The web client's files: everything read with GET that is no API route.
    return !(
      (method === "GET" || method === "HEAD") &&
      !path.startsWith("/v1/") &&
      !procedurePath.test(path)
    );
  };

  return {
    rejects(request, response) {
      const path = (request.url ?? "").split("?", 1)[0] ?? "";
      if (!needsKey(request.method, path)) {
        return false;
      }
      const name = keyName(request.headers.authorization);
      if (name !== undefined) {
        accepted.set(name, (accepted.get(name) ?? 0) + 1);
        return false;
      }
      rejected++;
      request.resume();
      writeUnauthenticated(path, request.headers["content-type"], response);
      return true;
    },
    admitStream(headers, serve) {
      const path = String(headers[":path"] ?? "").split("?", 1)[0] ?? "";
      if (!needsKey(String(headers[":method"] ?? ""), path)) {
        return serve();
      }
      const name = keyName(headers.authorization);
      if (name === undefined || !serve()) {
        return false;
      }
      accepted.set(name, (accepted.get(name) ?? 0) + 1);
      return true;
    },
    replace,
  };
}

/** Paths that never need a key: liveness and readiness probes. */
const openPaths = new Set(["/healthz", "/readyz", "/livez"]);
/** grpc.health.v1: load balancers and Kubernetes probe it without credentials. */
const healthPrefix = "/grpc.health.v1.Health/";
/** An RPC path, `/package.Service/Method`: Connect GETs of idempotent methods look like this. */
const procedurePath = /^\/[A-Za-z_][\w]*(\.[A-Za-z_]\w*)+\/[A-Za-z_]\w*$/;

function sha256(text: string): Buffer {
  return createHash("sha256").update(text).digest();
}

/**
 * The `unauthenticated` answer in the request's protocol: gRPC-Web as a trailers-only response
 * (HTTP 200, grpc-status 16 in the headers), gRPC with no message and grpc-status 16 in the
 * trailers, `/v1` as OpenAI's error object with 401, Connect and the
 * rest as Connect's error JSON with 401 (what Connect maps `unauthenticated` to).
 */
function writeUnauthenticated(
  path: string,
  contentType: string | undefined,
  response: NodeResponse,
): void {
  const type = contentType ?? "";
  // The message is printable ASCII without "%": gRPC's percent-encoding leaves it as it is.
  const status = { "grpc-status": "16", "grpc-message": message };
  if (type.startsWith("application/grpc-web")) {
    // gRPC-Web's trailers-only form: the status in the headers, no body.
    writeHead(response, 200, { "content-type": type, ...status });
    response.end();
    return;
  }
  if (type.startsWith("application/grpc")) {
    // HTTP/2 trailers: Node's compatibility API cannot end the stream on the headers frame.
    writeHead(response, 200, { "content-type": type });
    response.addTrailers(status);
    response.end();
    return;
  }
  const body = path.startsWith("/v1/")
    ? {
        error: { message, type: "authentication_error", param: null, code: "invalid_api_key" },
      }
    : { code: "unauthenticated", message };
  writeHead(response, 401, { "content-type": "application/json", "www-authenticate": "Bearer" });
  response.end(JSON.stringify(body));
}
