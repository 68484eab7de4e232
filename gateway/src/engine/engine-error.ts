/**
 * @module The one error type the engine throws. It carries a protocol-neutral code; the service
 * layer (service/errors.ts) is the one place that turns it into a Connect `Code`.
 */

/** Why the engine refused or ended a generation. */
export type EngineErrorCode =
  /** A request parameter, the prompt or the chat template rendering is invalid. */
  | "invalid_argument"
  /** The requested model is not loaded. */
  | "not_found"
  /**
   * The model's queue is full (the caller should retry later), or a parked generation's reader
   * read nothing past the parking bounds.
   */
  | "resource_exhausted"
  /** The engine is shutting down or its worker died. */
  | "unavailable"
  /** The caller cancelled or went away. */
  | "cancelled"
  /** The caller's deadline passed. */
  | "deadline_exceeded"
  /** The model cannot do this at all (an upstream model has no tokenizer to call). */
  | "unimplemented"
  /** A bug or a runtime failure inside the engine. */
  | "internal";

/** An engine failure with a code the service maps to a protocol status. */
export class EngineError extends Error {
  override readonly name = "EngineError";
  readonly code: EngineErrorCode;

  constructor(code: EngineErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.code = code;
  }
}
