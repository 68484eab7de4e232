/**
 * @module The messages between the main thread and a model's worker thread. Only plain data
 * crosses: requests and cancellations in, token text and outcomes out.
 */

import type { Device } from "./devices.js";
import type { FinishReason, PromptInput, SamplingSettings, TokenLogprob, Usage } from "./engine.js";
import type { EngineErrorCode } from "./engine-error.js";

/** What a worker is started with (`workerData`). */
export interface WorkerConfig {
  readonly modelDir: string;
  readonly variant: string | undefined;
  readonly intraOpThreads: number;
  /** The worker's nice value, which its onnxruntime threads inherit (`thread-priority.ts`). */
  readonly nice: number;
  readonly device: Device;
  /** The most prompt tokens prefilled per decode turn, so prefills cannot starve decoding. */
  readonly prefillChunkTokens: number;
  /** The least time between two posts of text alone (`worker/outbox.ts` says why). */
  readonly streamIntervalMs: number;
  readonly defaultMaxTokens: number;
  /**
   * One BigInt64 the worker keeps at the KV positions it holds (batch rows times the batch's
   * padded length, plus the caches of sequences outside the batch), for the KV-cache gauges:
   * shared memory, so a scrape reads it without a message and a step pays one store.
   */
  readonly kvPositions: SharedArrayBuffer;
  /** Bytes of finished sequences' KV kept for prompts that start the same way; 0: none. */
  readonly prefixCacheBytes: number;
}

/** A generation as the worker receives it. */
export interface WorkerGeneration {
  readonly input: PromptInput;
  readonly maxTokens: number | undefined;
  readonly sampling: SamplingSettings;
  readonly stop: readonly string[];
  readonly stopTokenIds: readonly number[] | undefined;
  /** Alternatives per token's log probability; undefined: no log probabilities. */
  readonly topLogprobs: number | undefined;
  /** How many text events the worker may send before it must wait for more credit. */
  readonly credits: number;
}

/** Main thread to worker. */
export type ToWorker =
  | { readonly type: "generate"; readonly id: number; readonly generation: WorkerGeneration }
  /** Stop generating `id` and free its KV cache; the worker answers `released`. */
  | { readonly type: "cancel"; readonly id: number }
  /** The consumer of `id` took `count` more events: it may send that many more. */
  | { readonly type: "credit"; readonly id: number; readonly count: number }
  /** Tokenize as a generation's prompt would be; the worker answers `tokenized` or `failed`. */
  | {
      readonly type: "tokenize";
      readonly id: number;
      readonly input: PromptInput;
      readonly addSpecialTokens: boolean | undefined;
    }
  /** Decode ids; the worker answers `detokenized` or `failed`. */
  | {
      readonly type: "detokenize";
      readonly id: number;
      readonly tokenIds: readonly number[];
      readonly skipSpecialTokens: boolean;
    }
  /** Finish the step under way, release the session and end the thread. */
  | { readonly type: "shutdown" };

/** What the worker learned about its model when it loaded it. */
export interface WorkerModelFacts {
  readonly contextLength: number;
  readonly hasChatTemplate: boolean;
  readonly vocabSize: number;
  readonly dtype: string;
  /** Bytes one KV position of one sequence takes across all layers (keys and values). */
  readonly kvBytesPerPosition: number;
}

/**
 * Worker to main thread: what the worker posts is a `FromWorkerBatch`, every message it produced
 * since its last post, in order. One decode step's events for all its rows travel together, so a
 * step wakes the main thread once and pays one `postMessage`, not one per row.
 */
export type FromWorkerBatch = readonly FromWorker[];

/** When a sequence's prefill started and ended, in the worker, as `epochMs()`. */
export interface PrefillTimes {
  readonly startAt: number;
  readonly endAt: number;
}

/** One message inside a {@link FromWorkerBatch}. */
export type FromWorker =
  | { readonly type: "ready"; readonly facts: WorkerModelFacts }
  | { readonly type: "load-failed"; readonly message: string }
  | {
      readonly type: "started";
      readonly id: number;
      readonly promptTokens: number;
      /** Prompt tokens whose KV came from the prefix cache instead of a prefill. */
      readonly cachedTokens: number;
    }
  /** The prefix cache's size changed. */
  | { readonly type: "prefix-cache"; readonly bytes: number; readonly entries: number }
  | {
      readonly type: "text";
      readonly id: number;
      readonly text: string;
      readonly tokenIds: readonly number[];
      /** On the first token only: when its prefill ran. */
      readonly prefill?: PrefillTimes;
      readonly logprobs?: readonly TokenLogprob[] | undefined;
    }
  | {
      readonly type: "finished";
      readonly id: number;
      readonly finishReason: FinishReason;
      readonly text: string;
      readonly tokenIds: readonly number[];
      readonly logprobs?: readonly TokenLogprob[] | undefined;
      readonly usage: Usage;
      /** On the first token only: when its prefill ran. */
      readonly prefill?: PrefillTimes;
    }
  | {
      readonly type: "failed";
      readonly id: number;
      readonly code: EngineErrorCode;
      readonly message: string;
    }
  | {
      readonly type: "tokenized";
      readonly id: number;
      readonly tokenIds: readonly number[];
      readonly tokens: readonly string[];
    }
  | { readonly type: "detokenized"; readonly id: number; readonly text: string }
  /** `id` was cancelled and its KV cache is freed. */
  | { readonly type: "released"; readonly id: number; readonly completionTokens: number };
