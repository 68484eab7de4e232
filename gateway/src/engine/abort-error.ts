/**
 * @module What a generation throws when its caller's signal aborted, for every kind of model.
 */
import { EngineError } from "./engine-error.js";

/** Maps an abort reason to the error the caller's generator throws. */
export function abortError(reason: unknown): EngineError {
  const timedOut =
    typeof reason === "object" &&
    reason !== null &&
    (reason as { name?: unknown }).name === "TimeoutError";
  return timedOut
    ? new EngineError("deadline_exceeded", "the deadline passed during generation", {
        cause: reason,
      })
    : new EngineError("cancelled", "the caller cancelled the generation", { cause: reason });
}
