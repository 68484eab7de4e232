/**
 * @module What stands between a model's callers and its worker: how many generations the model
 * decodes together (sized from the model's KV cache and the machine's memory unless capped),
 * the bounded queue in front of that batch, refused at once with `resource_exhausted` when full
 * instead of growing without bound. Who holds a slot, parking included, is `batch-slots.ts`; the
 * runner reports how long each generation waited (`parley_request_queue_time_seconds`).
 */
import { freemem } from "node:os";
import { BatchSlots } from "./batch-slots.js";
import { EngineError } from "./engine-error.js";
import type { EngineMetrics } from "./engine-metrics.js";

/**
 * The largest batch sized automatically. A fixed 16 left 48 of 64 concurrent streams queued
 * behind the first 16, and their time to first token was that queue (issue 16); a decode step's
 * cost grows far slower than its batch, so the batch may be wide, and 256 bounds the step.
 */
export const autoBatchCeiling = 256;

/**
 * The share of the memory free at load that one model's batch may fill with KV cache if every
 * sequence ran to the full context: the weights, the other models and the process need the rest.
 */
export const kvMemoryShare = 0.25;

/** What the batch is sized from. */
export interface BatchSizing {
  /** `--max-batch`: a cap on the automatic size; undefined: `autoBatchCeiling`. */
  readonly cap: number | undefined;
  readonly kvBytesPerPosition: number;
  readonly contextLength: number;
  /** Memory free now (`os.freemem()` unless given). */
  readonly freeBytes?: number;
}

/** The batch size: as many full-context sequences as fit `kvMemoryShare` of free memory. */
export function batchSizeFor(sizing: BatchSizing): number {
  const perSequence = sizing.kvBytesPerPosition * sizing.contextLength;
  const free = sizing.freeBytes ?? freemem();
  const fit = perSequence > 0 ? Math.floor((free * kvMemoryShare) / perSequence) : Infinity;
  return Math.max(1, Math.min(sizing.cap ?? autoBatchCeiling, fit));
}

/** Options for {@link AdmissionQueue}. */
export interface AdmissionQueueOptions<T> {
  readonly modelId: string;
  readonly metrics: EngineMetrics;
  readonly maxBatch: number;
  readonly maxQueue: number;
  readonly parkAfterMs: number;
  readonly maxParked: number;
  readonly parkTimeoutMs: number;
  /** Sends a generation to the worker: it holds a slot from now on. */
  readonly start: (entry: T) => void;
  /** Gives a parked generation its slot back. */
  readonly resume: (entry: T) => void;
  /** A parked generation's reader stayed away past a bound; the caller stops it. */
  readonly evict: (entry: T, unreadMs: number) => void;
}

/** The admission queue of one model. */
export class AdmissionQueue<T extends object> {
  readonly maxBatch: number;
  private readonly options: AdmissionQueueOptions<T>;
  private readonly slots: BatchSlots<T>;
  private readonly labels: { model: string };

  constructor(options: AdmissionQueueOptions<T>) {
    this.options = options;
    this.maxBatch = options.maxBatch;
    const labels = { model: options.modelId };
    this.labels = labels;
    const { metrics } = options;
    this.slots = new BatchSlots<T>({
      maxBatch: options.maxBatch,
      maxQueue: options.maxQueue,
      parkAfterMs: options.parkAfterMs,
      maxParked: options.maxParked,
      parkTimeoutMs: options.parkTimeoutMs,
      start: options.start,
      resume: options.resume,
      evict: options.evict,
      parked: () => metrics.parkedTotal.inc(labels),
      changed: () => this.updateGauges(),
    });
    this.updateGauges();
  }

  /** Queues a generation (it starts at once if a slot is free), or refuses it when full. */
  admit(entry: T): void {
    if (this.slots.full) {
      const { modelId, maxBatch, maxQueue } = this.options;
      throw new EngineError(
        "resource_exhausted",
        `model ${modelId} is at capacity (${maxBatch} generating, ${maxQueue} queued): retry later`,
      );
    }
    this.slots.enqueue(entry);
  }

  /** The worker has no credit left for a running generation. */
  starve(entry: T): void {
    this.slots.starve(entry);
  }

  /** The reader took events; `enough` when it returned enough credit to run on. */
  read(entry: T, enough: boolean): boolean {
    return this.slots.read(entry, enough);
  }

  /** Credit reached the worker for a generation. */
  feed(entry: T): void {
    this.slots.feed(entry);
  }

  /** The worker no longer holds it: its slot goes to the next one. */
  remove(entry: T): void {
    this.slots.remove(entry);
  }

  /** Takes a generation that never reached the worker out; true if it had not. */
  withdraw(entry: T): boolean {
    return this.slots.withdraw(entry);
  }

  /** Forgets everything (the worker died). */
  clear(): void {
    this.slots.clear();
  }

  private updateGauges(): void {
    const { metrics } = this.options;
    metrics.inFlight.set(this.labels, this.slots.running);
    metrics.queueDepth.set(this.labels, this.slots.queued);
    metrics.parked.set(this.labels, this.slots.parked);
  }
}
