/**
 * @module The engine's public face: what the service layer may ask of generation. It knows
 * nothing of HTTP, Connect or Protobuf; a test can drive it with no server.
 */

/** One turn of a conversation. */
export interface ChatTurn {
  readonly role: string;
  readonly content: string;
}

/** What to complete: raw text, or a conversation rendered with the model's chat template. */
export type PromptInput =
  | { readonly kind: "text"; readonly text: string }
  | { readonly kind: "messages"; readonly messages: readonly ChatTurn[] };

/**
 * Sampling settings. An absent temperature, top-p or top-k takes the model's
 * generation_config.json default; absent penalties and min-p are off (the proto says what each
 * means and whose definition it follows).
 */
export interface SamplingSettings {
  /** 0 is greedy. */
  readonly temperature?: number | undefined;
  readonly topP?: number | undefined;
  /** 0 turns top-k off. */
  readonly topK?: number | undefined;
  /** Absent: a random seed. */
  readonly seed?: bigint | undefined;
  /** OpenAI's and vLLM's presence penalty, in [-2, 2]; absent: 0 (off). */
  readonly presencePenalty?: number | undefined;
  /** OpenAI's and vLLM's frequency penalty, in [-2, 2]; absent: 0 (off). */
  readonly frequencyPenalty?: number | undefined;
  /** transformers' and vLLM's repetition penalty, above 0; absent: 1 (off). */
  readonly repetitionPenalty?: number | undefined;
  /** transformers' and vLLM's min-p, in [0, 1]; absent: 0 (off). */
  readonly minP?: number | undefined;
}

/** One generation, already validated for shape by the service. */
export interface GenerationRequest {
  /** A model id from `Engine.models()`; "" selects the default model. */
  readonly model: string;
  readonly input: PromptInput;
  /** Absent: the engine's default limit, bounded by the context length. */
  readonly maxTokens?: number | undefined;
  readonly sampling: SamplingSettings;
  /** Generation stops before the first of these strings appears in the text. */
  readonly stop: readonly string[];
  /** Generation stops at these ids as at end-of-sequence (reason `stop`, no text for them). */
  readonly stopTokenIds?: readonly number[] | undefined;
  /**
   * How many alternatives to report with each token's log probability; absent: no log
   * probabilities at all.
   */
  readonly topLogprobs?: number | undefined;
}

/** A token and its log probability in the distribution it was drawn from. */
export interface TokenAlternative {
  readonly tokenId: number;
  /** The token's text decoded on its own, special tokens included. */
  readonly token: string;
  /** Natural log; -Infinity never appears (such alternatives are left out). */
  readonly logprob: number;
}

/** A generated token's log probability and its likeliest alternatives, most likely first. */
export interface TokenLogprob extends TokenAlternative {
  readonly top: readonly TokenAlternative[];
}

/** Why a generation ended normally. */
export type FinishReason = "stop" | "stop_sequence" | "length" | "context_length";

/** Token counts of one generation. */
export interface Usage {
  readonly promptTokens: number;
  readonly completionTokens: number;
  /** Prompt tokens whose KV came from the prefix cache; absent where unknown (upstream models). */
  readonly cachedPromptTokens?: number;
}

/** What a generation yields, in order: one `text` per decoded step (possibly empty), then `finished`. */
export type GenerationEvent =
  | {
      readonly type: "text";
      /** New text since the previous event: whole UTF-8 characters, stop-string prefixes held back. */
      readonly text: string;
      /** The token ids decoded in this step. */
      readonly tokenIds: readonly number[];
      /** With `topLogprobs`: one entry per id in `tokenIds`. */
      readonly logprobs?: readonly TokenLogprob[] | undefined;
    }
  | {
      readonly type: "finished";
      readonly finishReason: FinishReason;
      /** The last step's text, plus held-back text that turned out not to be a stop string. */
      readonly text: string;
      /** The token ids decoded in the last step (including an end-of-sequence token). */
      readonly tokenIds: readonly number[];
      /** With `topLogprobs`: one entry per id in `tokenIds`. */
      readonly logprobs?: readonly TokenLogprob[] | undefined;
      readonly usage: Usage;
    };

/** What a client needs to know about a loaded model. */
export interface ModelDescription {
  readonly id: string;
  readonly contextLength: number;
  readonly hasChatTemplate: boolean;
  readonly isDefault: boolean;
  readonly description: string;
  readonly vocabSize: number;
  readonly dtype: string;
}

/**
 * When a generation reached each stage, in milliseconds since the Unix epoch
 * (`performance.timeOrigin + performance.now()`, comparable across threads). A stage not reached
 * is undefined. Plain numbers, so the service layer can turn them into trace spans after the
 * fact and the engine stays free of any tracing library.
 */
export interface GenerationTimings {
  /** Admitted into the model's queue. */
  readonly admittedAt: number;
  /** Left the queue: sent to the worker (or, upstream, the request was sent). */
  readonly scheduledAt: number | undefined;
  /** The prompt's prefill began. */
  readonly prefillStartAt: number | undefined;
  /** The prefill ended and the first token was sampled (upstream: the first token arrived). */
  readonly prefillEndAt: number | undefined;
  /** The generation ended, however it ended. */
  readonly endedAt: number | undefined;
}

/** Text or a conversation to turn into token ids with a model's tokenizer. */
export interface TokenizationRequest {
  /** A model id from `Engine.models()`; "" selects the default model. */
  readonly model: string;
  readonly input: PromptInput;
  /** Absent: what generation does (special tokens for text, none for rendered messages). */
  readonly addSpecialTokens?: boolean | undefined;
}

/** The ids of a tokenization, and each id's vocabulary entry. */
export interface Tokenization {
  readonly model: string;
  readonly tokenIds: readonly number[];
  readonly tokens: readonly string[];
}

/** Token ids to turn back into text. */
export interface DetokenizationRequest {
  /** A model id from `Engine.models()`; "" selects the default model. */
  readonly model: string;
  readonly tokenIds: readonly number[];
  readonly skipSpecialTokens: boolean;
}

/** The text of some token ids. */
export interface Detokenization {
  readonly model: string;
  readonly text: string;
}

/** A started generation: its model is resolved and it holds a place in that model's queue. */
export interface Generation extends AsyncIterable<GenerationEvent> {
  /** The id of the model that serves this generation. */
  readonly model: string;
  /** The stages reached so far; complete once the iterator has ended or thrown. */
  readonly timings: GenerationTimings;
}

/** The generation engine: models, their queues and the workers that run them. */
export interface Engine {
  /** The loaded models, the default first. */
  models(): readonly ModelDescription[];
  /**
   * The ids of the models that take generations now. A model whose worker died is missing from
   * the moment of the death until a new worker has loaded it again.
   */
  readyModels(): readonly string[];
  /** Calls `listener` after a model stops or starts taking generations; returns the unsubscribe. */
  onReadinessChange(listener: () => void): () => void;
  /**
   * Admits a generation. Throws `EngineError` at once for an unknown model (`not_found`), a full
   * queue (`resource_exhausted`), a model that is restarting or a shut-down engine
   * (`unavailable`); errors found later (a chat template that rejects the messages, a prompt
   * longer than the context) are thrown by the iterator, and so are `unavailable` for every
   * generation of a model whose worker dies and `resource_exhausted` for one whose reader stopped
   * reading while others waited, past the parking bounds (`batch-slots.ts`). Aborting `signal`
   * stops the generation within one decode step and frees its KV cache; the iterator then throws
   * `EngineError` `cancelled` (or `deadline_exceeded` when the signal's reason says so).
   */
  generate(request: GenerationRequest, signal: AbortSignal): Generation;
  /**
   * Tokenizes in the model's worker, exactly as `generate` encodes its prompt. Fails with
   * `not_found`, `unavailable` as `generate` does, `invalid_argument` for messages the chat
   * template rejects, and `cancelled` / `deadline_exceeded` when `signal` aborts first.
   */
  tokenize(request: TokenizationRequest, signal: AbortSignal): Promise<Tokenization>;
  /** Decodes ids in the model's worker; ids outside the vocabulary are `invalid_argument`. */
  detokenize(request: DetokenizationRequest, signal: AbortSignal): Promise<Detokenization>;
  /** Stops admitting, lets generations in flight finish until `graceMs`, then stops the workers. */
  close(graceMs?: number): Promise<void>;
}
