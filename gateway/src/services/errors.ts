/**
 * @module The one table from engine failures to Connect codes. Every error that leaves a service
 * handler passes through {@link toConnectError}, so clients see a precise code and a message
 * meant for them, while the original error travels in `cause` for the server's logs.
 */
import { Code, ConnectError } from "@connectrpc/connect";
import { EngineError, type EngineErrorCode } from "../engine/engine-error.js";

/** The Connect code of each engine error code; exhaustive, so a new engine code cannot be missed. */
export const engineErrorCodes: Readonly<Record<EngineErrorCode, Code>> = {
  invalid_argument: Code.InvalidArgument,
  not_found: Code.NotFound,
  resource_exhausted: Code.ResourceExhausted,
  unavailable: Code.Unavailable,
  cancelled: Code.Canceled,
  deadline_exceeded: Code.DeadlineExceeded,
  unimplemented: Code.Unimplemented,
  internal: Code.Internal,
};

/** What clients read for failures whose details are the server's business. */
const internalMessage = "internal error";

/**
 * Turns anything a handler caught into the `ConnectError` the client receives.
 *
 * When the call's `signal` was aborted, its reason decides the code: connect-node aborts it with
 * DeadlineExceeded when the deadline passes, with the shutdown error when the server stops, and
 * with Canceled when the client goes away; the engine only knows it was stopped.
 */
export function toConnectError(error: unknown, signal?: AbortSignal): ConnectError {
  if (error instanceof ConnectError) {
    return error;
  }
  if (error instanceof EngineError) {
    if ((error.code === "cancelled" || error.code === "deadline_exceeded") && signal?.aborted) {
      const reason = ConnectError.from(signal.reason, engineErrorCodes[error.code]);
      return new ConnectError(reason.rawMessage, reason.code, undefined, undefined, error);
    }
    const code = engineErrorCodes[error.code];
    const message = code === Code.Internal ? internalMessage : error.message;
    return new ConnectError(message, code, undefined, undefined, error);
  }
  return new ConnectError(internalMessage, Code.Internal, undefined, undefined, error);
}
