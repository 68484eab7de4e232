/**
 * @module OpenAI's error object and the HTTP status clients expect for each Connect code. The
 * service layer fails with `ConnectError`s from the one errors table; this maps them for `/v1`,
 * so a full queue is 429 here and `resource_exhausted` on gRPC, from the same decision.
 */
import { Code, ConnectError } from "@connectrpc/connect";

/** A failure as OpenAI reports it: an HTTP status and `{"error": {message, type, param, code}}`. */
export class OpenAiError extends Error {
  override readonly name = "OpenAiError";
  readonly status: number;
  /** The request field at fault, or null. */
  readonly param: string | null;
  readonly code: string | null;

  constructor(
    status: number,
    message: string,
    param: string | null,
    code: string | null = null,
    cause?: unknown,
  ) {
    super(message, { cause });
    this.status = status;
    this.param = param;
    this.code = code;
  }

  /** OpenAI's `type`: what SDKs and users switch on besides the status. */
  get type(): string {
    return errorTypes[this.status] ?? "server_error";
  }

  /** The response body. */
  toJSON(): {
    error: { message: string; type: string; param: string | null; code: string | null };
  } {
    return {
      error: { message: this.message, type: this.type, param: this.param, code: this.code },
    };
  }
}

const errorTypes: Readonly<Record<number, string>> = {
  400: "invalid_request_error",
  401: "authentication_error",
  404: "not_found_error",
  413: "invalid_request_error",
  429: "rate_limit_error",
  503: "service_unavailable",
  504: "timeout_error",
};

/** HTTP status and OpenAI `code` per Connect code; the rest are 500. */
const byCode: Partial<Record<Code, { readonly status: number; readonly code: string | null }>> = {
  [Code.InvalidArgument]: { status: 400, code: "invalid_value" },
  [Code.Unauthenticated]: { status: 401, code: "invalid_api_key" },
  [Code.NotFound]: { status: 404, code: "model_not_found" },
  [Code.ResourceExhausted]: { status: 429, code: "rate_limit_exceeded" },
  [Code.Unavailable]: { status: 503, code: "service_unavailable" },
  [Code.DeadlineExceeded]: { status: 504, code: "timeout" },
  // The client went away: nobody reads the status; 499 is what nginx logs for it.
  [Code.Canceled]: { status: 499, code: "cancelled" },
};

/** Request fields the service layer's messages start with, to name as `param`. */
const knownParams = [
  "max_tokens",
  "temperature",
  "top_p",
  "top_k",
  "seed",
  "stop",
  "messages",
  "prompt",
  "presence_penalty",
  "frequency_penalty",
  "repetition_penalty",
  "min_p",
  "stop_token_ids",
  "top_logprobs",
  "logprobs",
];

/** The field name a service message starts with: "stop" of "stop[0] is empty". */
function leadingName(message: string): string {
  return /^[a-z_]+/.exec(message)?.[0] ?? "";
}

/** Turns what a route caught into the error the client receives. */
export function toOpenAiError(error: unknown): OpenAiError {
  if (error instanceof OpenAiError) {
    return error;
  }
  if (!(error instanceof ConnectError)) {
    // Not the service layer's: its details are the server's business.
    return new OpenAiError(500, "internal error", null, null, error);
  }
  const connectError = error;
  const mapped = byCode[connectError.code] ?? { status: 500, code: null };
  const message = connectError.rawMessage;
  const param =
    connectError.code === Code.NotFound && message.startsWith("model")
      ? "model"
      : (knownParams.find((name) => leadingName(message) === name) ?? null);
  return new OpenAiError(mapped.status, message, param, mapped.code, connectError);
}
