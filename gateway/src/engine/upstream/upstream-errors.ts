/**
 * @module How an upstream's failures become engine errors, so that the service's one table
 * (services/errors.ts) gives clients the same codes as for a local model. The choices:
 *
 * - 400, 413, 422 (the upstream rejected this request: a prompt over its context, a bad
 *   parameter) → `invalid_argument`, with the upstream's message, which is about the request;
 * - 429 (the upstream is at capacity) → `resource_exhausted`, as Parley's own full queue;
 * - 5xx, refused or reset connections → `unavailable`: retrying later, or on another replica,
 *   may well work;
 * - no headers, or no bytes mid-stream, within the timeout → `deadline_exceeded`;
 * - 401, 403, 404 and any other status → `internal`: the caller can do nothing about a wrong
 *   key, URL or model name in Parley's configuration, and retrying will not help, so it is a
 *   server fault. Clients read "internal error"; the log has the upstream's status and message.
 */
import { EngineError, type EngineErrorCode } from "../engine-error.js";
import { errorMessageOf } from "./openai-stream.js";

/** Longest upstream message passed on. */
const maxMessageLength = 500;

/** The error for an upstream answer with HTTP status `status` and body `body`. */
export function upstreamStatusError(upstream: string, status: number, body: string): EngineError {
  let parsed: unknown;
  try {
    parsed = JSON.parse(body);
  } catch {
    parsed = undefined;
  }
  const message = (errorMessageOf(parsed) ?? body).slice(0, maxMessageLength).trim();
  const detail = message === "" ? "" : `: ${message}`;
  const code: EngineErrorCode =
    status === 400 || status === 413 || status === 422
      ? "invalid_argument"
      : status === 429
        ? "resource_exhausted"
        : status >= 500
          ? "unavailable"
          : "internal";
  const text =
    code === "invalid_argument"
      ? `the upstream ${upstream} rejected the request${detail}`
      : code === "resource_exhausted"
        ? `the upstream ${upstream} is at capacity: retry later${detail}`
        : code === "unavailable"
          ? `the upstream ${upstream} failed (HTTP ${status}): retry later`
          : `the upstream ${upstream} answered HTTP ${status}${detail}`;
  return new EngineError(code, text);
}

/** undici's error codes for a timeout waiting for headers or for body bytes. */
const timeoutCodes = new Set(["UND_ERR_HEADERS_TIMEOUT", "UND_ERR_BODY_TIMEOUT"]);

/** The error for a request that failed without an HTTP answer (network, timeout). */
export function upstreamTransportError(
  upstream: string,
  cause: unknown,
  timeoutMs: number,
): EngineError {
  if (cause instanceof EngineError) return cause;
  const code = (cause as { code?: unknown } | undefined)?.code;
  if (typeof code === "string" && timeoutCodes.has(code)) {
    return new EngineError(
      "deadline_exceeded",
      `the upstream ${upstream} sent nothing for ${timeoutMs} ms`,
      { cause },
    );
  }
  return new EngineError("unavailable", `the upstream ${upstream} cannot be reached: retry later`, {
    cause,
  });
}
