/**
 * @module The engine's Prometheus metrics. The names are part of Parley's interface (dashboards
 * and tests read them), so they are defined once, here.
 */
import { Counter, Gauge, Histogram, type Registry } from "prom-client";

/** Admission (`admission-queue.ts`): how long generations wait for a batch slot. */
export interface AdmissionMetrics {
  readonly queueTime: Histogram<"model">;
}

function createAdmissionMetrics(registers: Registry[]): AdmissionMetrics {
  return {
    queueTime: new Histogram({
      name: "parley_queue_time_seconds",
      help: "Time from admission until a generation first holds a place in its model's batch.",
      labelNames: ["model"],
      buckets: [0.0005, 0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
      registers,
    }),
  };
}

/** The engine's metrics, labelled by model. */
export interface EngineMetrics extends AdmissionMetrics {
  readonly inFlight: Gauge<"model">;
  readonly queueDepth: Gauge<"model">;
  readonly promptTokens: Counter<"model">;
  readonly completionTokens: Counter<"model">;
  /** Generations out of the batch because their readers stopped reading while others waited. */
  readonly parked: Gauge<"model">;
  /** Times a generation was parked. */
  readonly parkedTotal: Counter<"model">;
  /**
   * `finish_reason` is a FinishReason, `cancelled`, `unread` (parked, and its reader stayed away
   * past a bound) or `error`.
   */
  readonly generations: Counter<"model" | "finish_reason">;
  readonly timeToFirstToken: Histogram<"model">;
  readonly interTokenLatency: Histogram<"model">;
  /** 1 while the model's worker has it loaded and takes generations, 0 while it restarts. */
  readonly modelReady: Gauge<"model">;
  /** Replacement workers started after a worker exited unexpectedly. */
  readonly workerRestarts: Counter<"model">;
  /** Prompt tokens whose prefill the prefix cache saved. */
  readonly prefixCacheHitTokens: Counter<"model">;
  /** KV bytes the prefix cache holds. */
  readonly prefixCacheBytes: Gauge<"model">;
}

/** Registers the engine's metrics in `registry`. */
export function createEngineMetrics(registry: Registry): EngineMetrics {
  const registers = [registry];
  return {
    ...createAdmissionMetrics(registers),
    inFlight: new Gauge({
      name: "parley_generations_in_flight",
      help: "Generations running in a model worker (prefilling or decoding).",
      labelNames: ["model"],
      registers,
    }),
    queueDepth: new Gauge({
      name: "parley_queue_depth",
      help: "Generations admitted and waiting for a place in a model's batch.",
      labelNames: ["model"],
      registers,
    }),
    parked: new Gauge({
      name: "parley_generations_parked",
      help: "Generations parked: out of the batch with their KV cache kept, because their reader read nothing for --park-after-ms while others waited (including those whose reader came back and that wait for a slot).",
      labelNames: ["model"],
      registers,
    }),
    parkedTotal: new Counter({
      name: "parley_generations_parked_total",
      help: "Times a generation gave its batch slot to a waiting one because its reader read nothing for --park-after-ms.",
      labelNames: ["model"],
      registers,
    }),
    promptTokens: new Counter({
      name: "parley_prompt_tokens_total",
      help: "Prompt tokens processed.",
      labelNames: ["model"],
      registers,
    }),
    completionTokens: new Counter({
      name: "parley_completion_tokens_total",
      help: "Tokens generated.",
      labelNames: ["model"],
      registers,
    }),
    generations: new Counter({
      name: "parley_generations_total",
      help: "Generations ended, by finish reason (stop, stop_sequence, length, context_length, cancelled, unread, error); unread: parked and stopped because its reader stayed away (--max-parked, --park-timeout-ms).",
      labelNames: ["model", "finish_reason"],
      registers,
    }),
    timeToFirstToken: new Histogram({
      name: "parley_time_to_first_token_seconds",
      help: "Time from admission to the first generated token.",
      labelNames: ["model"],
      buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
      registers,
    }),
    interTokenLatency: new Histogram({
      name: "parley_inter_token_latency_seconds",
      help: "Time between two arrivals of new tokens of one generation; tokens that arrive together (a stream faster than --stream-interval-ms) count once.",
      labelNames: ["model"],
      buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1],
      registers,
    }),
    modelReady: new Gauge({
      name: "parley_model_ready",
      help: "1 while the model's worker has it loaded and takes generations, 0 while the worker restarts.",
      labelNames: ["model"],
      registers,
    }),
    workerRestarts: new Counter({
      name: "parley_model_worker_restarts_total",
      help: "Model workers started again after the previous one exited unexpectedly (each attempt).",
      labelNames: ["model"],
      registers,
    }),
    prefixCacheHitTokens: new Counter({
      name: "parley_prefix_cache_hit_tokens_total",
      help: "Prompt tokens whose KV came from the prefix cache (finished sequences' KV) instead of a prefill.",
      labelNames: ["model"],
      registers,
    }),
    prefixCacheBytes: new Gauge({
      name: "parley_prefix_cache_bytes",
      help: "Bytes of KV cache the prefix cache holds for prompts that start like earlier ones (bounded by --prefix-cache-mib).",
      labelNames: ["model"],
      registers,
    }),
  };
}
