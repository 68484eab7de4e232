/**
 * @module What one model's generations add to the engine metrics, from admission to their end:
 * queue time, time to first token and between tokens, prefill and decode time, token counts,
 * lengths and how each generation ended. The model runner calls it at each of those moments;
 * the times are the generation's own `epochMs()` timings, so the worker's prefill times compare.
 */
import type { Usage } from "./engine.js";
import type { EngineMetrics } from "./engine-metrics.js";
import { epochMs } from "./epoch-ms.js";
import type { MutableTimings } from "./generation-channel.js";
import type { PrefillTimes } from "./worker-protocol.js";

/** What the recorder reads and stamps on a generation. */
export interface RecordedGeneration {
  readonly timings: MutableTimings;
  /** When its last token reached the main thread; undefined before the first. */
  lastTokenAt: number | undefined;
}

/** Records one model's generations. */
export interface GenerationMetrics {
  /** The generation went to the worker; only its first start counts as its queue time. */
  scheduled(generation: RecordedGeneration): void;
  /** The worker encoded its prompt; `cachedTokens` of it came from the prefix cache. */
  started(promptTokens: number, cachedTokens: number): void;
  /** Its prefill ran (reported with its first token). */
  prefilled(generation: RecordedGeneration, prefill: PrefillTimes): void;
  /** `count` tokens reached the main thread in one event. */
  tokens(generation: RecordedGeneration, count: number): void;
  /** It finished (not cancelled or failed), with its usage. */
  finished(generation: RecordedGeneration, usage: Usage): void;
  /** It left the runner, however it ended. */
  ended(generation: RecordedGeneration, finishReason: string): void;
  prefixCacheBytes(bytes: number): void;
}

/** Creates the recorder of model `model`'s generations. */
export function createGenerationMetrics(metrics: EngineMetrics, model: string): GenerationMetrics {
  const labels = { model };
  return {
    scheduled({ timings }) {
      if (timings.scheduledAt !== undefined) return;
      timings.scheduledAt = epochMs();
      metrics.queueTime.observe(labels, (timings.scheduledAt - timings.admittedAt) / 1000);
    },
    started(promptTokens, cachedTokens) {
      metrics.promptTokens.inc(labels, promptTokens);
      metrics.prefixCacheHitTokens.inc(labels, cachedTokens);
    },
    prefilled({ timings }, prefill) {
      timings.prefillStartAt = prefill.startAt;
      timings.prefillEndAt = prefill.endAt;
      metrics.prefillTime.observe(labels, (prefill.endAt - prefill.startAt) / 1000);
    },
    tokens(generation, count) {
      if (count === 0) return;
      const now = epochMs();
      if (generation.lastTokenAt === undefined) {
        metrics.timeToFirstToken.observe(labels, (now - generation.timings.admittedAt) / 1000);
      } else {
        metrics.interTokenLatency.observe(labels, (now - generation.lastTokenAt) / 1000);
      }
      generation.lastTokenAt = now;
      metrics.completionTokens.inc(labels, count);
    },
    finished({ timings }, usage) {
      const endedAt = epochMs();
      timings.endedAt = endedAt;
      metrics.e2eLatency.observe(labels, (endedAt - timings.admittedAt) / 1000);
      if (timings.prefillEndAt !== undefined) {
        metrics.decodeTime.observe(labels, Math.max(0, endedAt - timings.prefillEndAt) / 1000);
      }
      metrics.promptLength.observe(labels, usage.promptTokens);
      metrics.generationLength.observe(labels, usage.completionTokens);
    },
    ended({ timings }, finishReason) {
      timings.endedAt ??= epochMs();
      metrics.generations.inc({ ...labels, finish_reason: finishReason });
    },
    prefixCacheBytes(bytes) {
      metrics.prefixCacheBytes.set(labels, bytes);
    },
  };
}
