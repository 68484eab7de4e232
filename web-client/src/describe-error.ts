/**
 * @module Turns a failed call into words a person can act on: the Connect code, the server's
 * own message, and a hint about what to try. The page shows these; nothing ends up console-only.
 */
import { Code, ConnectError } from "@connectrpc/connect";
import { codeToString } from "@connectrpc/connect/protocol-connect";

/** A failed call, ready to show. */
export interface ErrorInfo {
  /** The Connect code as it appears on the wire, e.g. "resource_exhausted". */
  readonly code: string;
  /** A short headline, e.g. "The gateway is busy". */
  readonly title: string;
  /** The message the server (or the browser) gave. */
  readonly message: string;
  /** What the user might do about it. */
  readonly hint: string;
}

/** Options of `describeError`. */
export interface DescribeErrorOptions {
  /** The gateway that was called. */
  readonly gatewayUrl: string;
  /** The page's own origin, to suggest the right `--cors-origin`. */
  readonly pageOrigin: string;
  /** The protocol label the call used, e.g. "gRPC-Web". */
  readonly protocol: string;
}

/** Describes any thrown value; a non-Connect error is reported as `unknown` with its message. */
export function describeError(error: unknown, options: DescribeErrorOptions): ErrorInfo {
  const connectError = ConnectError.from(error);
  const code = codeToString(connectError.code);
  const message = connectError.rawMessage || "(no message)";
  // connect-web reports a fetch that never got a response (refused connection, DNS failure,
  // CORS rejection) as `unknown` with the browser's TypeError as its cause.
  if (connectError.code === Code.Unknown && connectError.cause instanceof TypeError) {
    return {
      code,
      title: "Can't reach the gateway",
      message,
      hint: sameOrigin(options)
        ? `Nothing answered at ${options.gatewayUrl}. Is the gateway running?`
        : `Nothing usable answered at ${options.gatewayUrl}. Is the gateway running there, and was it started with --cors-origin ${options.pageOrigin}?`,
    };
  }
  const [title, hint] = explain(connectError.code, options);
  return { code, title, message, hint };
}

function sameOrigin(options: DescribeErrorOptions): boolean {
  return (
    URL.canParse(options.gatewayUrl) && new URL(options.gatewayUrl).origin === options.pageOrigin
  );
}

function explain(code: Code, options: DescribeErrorOptions): [string, string] {
  switch (code) {
    case Code.Canceled:
      return ["Cancelled", "The call was cancelled before it finished."];
    case Code.InvalidArgument:
      return [
        "The request was rejected",
        "Check the sampling settings and the prompt, then retry.",
      ];
    case Code.NotFound:
      return ["Not found", "The model may not be loaded on this gateway. Pick another model."];
    case Code.FailedPrecondition:
      return [
        "The model can't do that",
        "Models without a chat template need Complete mode instead of Chat.",
      ];
    case Code.ResourceExhausted:
      return ["The gateway is busy", "Its queue is full. Wait a moment, then retry."];
    case Code.OutOfRange:
      return ["Too long for the model", "Shorten the prompt or clear the conversation."];
    case Code.DeadlineExceeded:
      return ["Timed out", "The gateway took too long to answer. Retry, or lower max tokens."];
    case Code.Unavailable:
      return ["The gateway is unavailable", "It may be starting or shutting down. Retry shortly."];
    case Code.Unimplemented:
      return [
        "Not served here",
        `${options.gatewayUrl} does not serve inference.v1.InferenceService over ${options.protocol}.` +
          (sameOrigin(options)
            ? " To call a gateway elsewhere, add ?gateway=http://host:port to this page's address."
            : " Is it a Parley gateway?"),
      ];
    case Code.Unauthenticated:
      return [
        "API key needed",
        "The gateway requires an API key: enter it under Settings → Connection → API key.",
      ];
    case Code.PermissionDenied:
      return ["Not allowed", "The gateway refused this call."];
    default:
      return ["The call failed", "Retry; if it keeps failing, the gateway's log says more."];
  }
}
