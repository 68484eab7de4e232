/**
 * @module The one error type the Hugging Face hub source throws. Its `reason` lets the caller
 * turn a failed `--model hf:…` into a precise startup failure without parsing messages.
 */

/** Why a hub model could not be made available locally. */
export type HubModelErrorReason =
  /** The spec or an option is malformed (repo id, revision, variant, token). */
  | "invalid"
  /** The repo, revision, a required file or the requested ONNX graph does not exist (or is private). */
  | "not_found"
  /** Offline mode is on and the model is not in the cache. */
  | "offline"
  /** The hub could not be reached or a download failed, and the cache cannot stand in. */
  | "network";

/** A hub model failure; the message is meant for the person who typed `--model`. */
export class HubModelError extends Error {
  override readonly name = "HubModelError";
  readonly reason: HubModelErrorReason;

  constructor(reason: HubModelErrorReason, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.reason = reason;
  }
}
