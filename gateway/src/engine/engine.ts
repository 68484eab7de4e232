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

/** Sampling settings; an absent field takes the model's generation_config.json default. */
export interface SamplingSettings {
  /** 0 is greedy. */
  readonly temperature?: number | undefined;
  readonly topP?: number | undefined;
  /** 0 turns top-k off. */
  readonly topK?: number | undefined;
  /** Absent: a random seed. */
  readonly seed?: bigint | undefined;
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
}

/** Why a generation ended normally. */
export type FinishReason = "stop" | "stop_sequence" | "length" | "context_length";

/** Token counts of one generation. */
export interface Usage {
  readonly promptTokens: number;
  readonly completionTokens: number;
}

/** What a generation yields, in order: one `text` per decoded step (possibly empty), then `finished`. */
export type GenerationEvent =
  | {
      readonly type: "text";
      /** New text since the previous event: whole UTF-8 characters, stop-string prefixes held back. */
      readonly text: string;
      /** The token ids decoded in this step. */
      readonly tokenIds: readonly number[];
    }
  | {
      readonly type: "finished";
      readonly finishReason: FinishReason;
      /** The last step's text, plus held-back text that turned out not to be a stop string. */
      readonly text: string;
      /** The token ids decoded in the last step (including an end-of-sequence token). */
      readonly tokenIds: readonly number[];
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
  /** Stops admitting, lets generations in flight finish until `graceMs`, then stops the workers. */
  close(graceMs?: number): Promise<void>;
}
