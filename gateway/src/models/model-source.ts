/**
 * @module What the engine needs to know about where a model lives, whatever its source.
 */

/** A model folder ready to load. */
export interface ModelSource {
  /** The id clients put in a request's `model` field. */
  readonly id: string;
  /** The local folder in Hugging Face export layout. */
  readonly dir: string;
  /** Where the model comes from and what to expect of its text (shown by ListModels). */
  readonly description: string;
  /** The ONNX graph variant under `onnx/` (fp32, fp16, int8, q4…); undefined picks the best. */
  readonly variant?: string | undefined;
}
