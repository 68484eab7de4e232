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

/**
 * A model served by another inference server over the OpenAI API (`--model
 * openai:<base-url>#<remote-model>`): nothing is loaded here, generations are forwarded.
 */
export interface UpstreamModelSource {
  /** The only upstream API spoken so far. */
  readonly upstream: "openai";
  /** The id clients put in a request's `model` field: the remote model's name. */
  readonly id: string;
  /** The API's base URL as the OpenAI SDKs take it (`http://host:8000/v1`), without credentials. */
  readonly baseUrl: string;
  /** The model name the upstream knows. */
  readonly remoteModel: string;
  /** Sent as `Authorization: Bearer`; never logged. */
  readonly apiKey: string | undefined;
  readonly description: string;
}

/** Any `--model`: a local folder or an upstream server. */
export type AnyModelSource = ModelSource | UpstreamModelSource;

/** Whether `source` is an upstream server rather than a folder. */
export function isUpstreamSource(source: AnyModelSource): source is UpstreamModelSource {
  return "upstream" in source;
}
