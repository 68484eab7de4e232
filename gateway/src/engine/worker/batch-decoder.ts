/**
 * @module The worker's decode loop with continuous batching. Each turn it prefills waiting
 * prompts up to a token budget (so a long prompt cannot starve sequences already decoding), new
 * prompts that fit the budget together in one left-padded run (so 64 arrivals cost a few runs,
 * not 64, before their first tokens), then
 * runs one decode step over every active sequence in a single `session.run`: left padding, the
 * attention mask and per-sequence positions keep the rows independent. Sequences join and leave
 * between steps; the batch KV cache is rebuilt only when its membership changes.
 */
import { epochMs } from "../epoch-ms.js";
import type { FromWorker } from "../worker-protocol.js";
import type { DecoderSession } from "./decoder-session.js";
import type { LogitsRow } from "./float16.js";
import {
  emptyKvCache,
  gatherKvRows,
  type KvCache,
  type KvRowSource,
  ownKvRow,
  takeKvRow,
} from "./kv-cache.js";
import type { PrefixCache } from "./prefix-cache.js";
import type { SampledToken } from "./sampler.js";
import type { Sequence } from "./sequence.js";

/** Options for `createBatchDecoder`. */
export interface BatchDecoderOptions {
  readonly session: DecoderSession;
  /** Prompt tokens per prefill step. */
  readonly prefillChunkTokens: number;
  readonly post: (message: FromWorker) => void;
  /** Where the decoder keeps the KV positions it holds (see `WorkerConfig.kvPositions`). */
  readonly kvPositions: BigInt64Array;
  /** Where finished sequences leave their KV for prompts that start the same way. */
  readonly prefixCache: PrefixCache;
}

/** The decode loop of one model. */
export interface BatchDecoder {
  /** Adds a sequence whose prompt is encoded; it is prefilled, then joins the batch. */
  add(sequence: Sequence): void;
  /** Marks a sequence cancelled; it leaves at the next step boundary and its cache is freed. */
  cancel(id: number): void;
  /** Gives a sequence more credit; a paused sequence rejoins the batch. */
  credit(id: number, count: number): void;
  /** Runs until `stop()`; resolves between steps, never during one. */
  run(): Promise<void>;
  /** Ends `run()` after the step under way. */
  stop(): void;
}

/** Creates the decode loop. */
export function createBatchDecoder(options: BatchDecoderOptions): BatchDecoder {
  const { session, post, prefixCache } = options;
  const { layout } = session;
  const sequences = new Map<number, Sequence>();
  /** Sequences whose prompts still need prefill, first come first served. */
  const prefillQueue: Sequence[] = [];
  /** The batch: its rows and their shared, left-padded cache. */
  let rows: Sequence[] = [];
  let batchKv: KvCache = emptyKvCache(layout, 0);
  let wake: (() => void) | undefined;
  let stopped = false;
  /** KV positions held outside the batch; recounted only when caches moved (`kvMoved`). */
  let outsidePositions = 0;
  let kvMoved = false;

  /** Publishes the KV positions held now: the batch (with its padding) and the rest. */
  function publishKvPositions(): void {
    if (kvMoved) {
      kvMoved = false;
      outsidePositions = 0;
      for (const sequence of sequences.values()) outsidePositions += sequence.kv?.length ?? 0;
    }
    Atomics.store(
      options.kvPositions,
      0,
      BigInt(batchKv.batch * batchKv.length + outsidePositions),
    );
  }

  function notify(): void {
    wake?.();
    wake = undefined;
  }

  function removeFromPrefillQueue(sequence: Sequence): void {
    const index = prefillQueue.indexOf(sequence);
    if (index >= 0) prefillQueue.splice(index, 1);
  }

  function release(sequence: Sequence): void {
    sequences.delete(sequence.id);
    post({ type: "released", id: sequence.id, completionTokens: sequence.generated.length });
  }

  /** Offers a leaving sequence's KV (one row, `cachedLength` positions) to the prefix cache. */
  function keep(sequence: Sequence, kv: KvCache): void {
    const before = prefixCache.bytes;
    const entries = prefixCache.entries;
    prefixCache.store(sequence.cachedTokens(), kv);
    if (prefixCache.bytes !== before || prefixCache.entries !== entries) {
      post({ type: "prefix-cache", bytes: prefixCache.bytes, entries: prefixCache.entries });
    }
  }

  function emit(sequence: Sequence, sampled: SampledToken): void {
    const event = sequence.accept(sampled);
    const startAt = sequence.generated.length === 1 ? sequence.prefillStartAt : undefined;
    post(startAt === undefined ? event : { ...event, prefill: { startAt, endAt: epochMs() } });
    if (event.type === "finished") {
      sequences.delete(sequence.id);
      kvMoved = true;
    }
  }

  /** Runs one prefill chunk of at most `budget` tokens (whole prompts on unchunkable graphs). */
  async function prefillStep(sequence: Sequence, budget: number): Promise<number> {
    const start = sequence.prefilled;
    sequence.prefillStartAt ??= epochMs(); // a prefix-cache hit starts past 0
    const remaining = sequence.promptIds.length - start;
    const count = session.supportsChunkedPrefill ? Math.min(budget, remaining) : remaining;
    const inputIds = new BigInt64Array(count);
    const positionIds = new BigInt64Array(count);
    for (let i = 0; i < count; i++) {
      inputIds[i] = BigInt(sequence.promptIds[start + i] as number);
      positionIds[i] = BigInt(start + i);
    }
    const past = sequence.kv ?? emptyKvCache(layout);
    const out = await session.run({
      batch: 1,
      tokens: count,
      inputIds,
      positionIds,
      attentionMask: new BigInt64Array(start + count).fill(1n),
      past,
    });
    sequence.kv = out.present;
    kvMoved = true;
    sequence.prefilled += count;
    sequence.cachedLength = sequence.prefilled;
    if (sequence.prefilled === sequence.promptIds.length) {
      // By identity: a cancel during the run may already have taken it out of the queue.
      removeFromPrefillQueue(sequence);
      // Before the first token leaves: whoever sees it sees the cache it took.
      publishKvPositions();
      if (!sequence.done) emit(sequence, sequence.sampler.sample(out.logits[0] as LogitsRow));
      // Finished on its first token: it never joins the batch, so its prompt's KV is kept here.
      if (sequence.done && prefixCache.enabled) keep(sequence, out.present);
    }
    return count;
  }

  /**
   * Prefills several new prompts in one run, left-padded to the longest as decode batches are:
   * the attention mask hides the padding, and each row's cache is its last positions. One run
   * reads the weights once for all of them, where one run per prompt reads them per prompt.
   */
  async function prefillTogether(group: readonly Sequence[], width: number): Promise<void> {
    const batch = group.length;
    const inputIds = new BigInt64Array(batch * width);
    const positionIds = new BigInt64Array(batch * width);
    const attentionMask = new BigInt64Array(batch * width);
    group.forEach((sequence, r) => {
      const { promptIds } = sequence;
      const pad = width - promptIds.length;
      promptIds.forEach((id, i) => {
        inputIds[r * width + pad + i] = BigInt(id);
        positionIds[r * width + pad + i] = BigInt(i);
      });
      attentionMask.fill(1n, r * width + pad, (r + 1) * width);
    });
    const out = await session.run({
      batch,
      tokens: width,
      inputIds,
      positionIds,
      attentionMask,
      past: emptyKvCache(layout, batch),
    });
    group.forEach((sequence, r) => {
      removeFromPrefillQueue(sequence);
      // A cancel during the run already released it: keep no cache for it.
      if (sequence.done) return;
      const length = sequence.promptIds.length;
      const kv = takeKvRow(layout, out.present, r, length);
      sequence.kv = kv;
      sequence.prefilled = length;
      sequence.cachedLength = length;
      emit(sequence, sequence.sampler.sample(out.logits[r] as LogitsRow));
      // Finished on its first token: it never joins the batch, so its prompt's KV is kept here.
      if (sequence.done && prefixCache.enabled) keep(sequence, kv);
    });
  }

  /**
   * The new prompts at the head of the queue whose padded run fits `budget`: two or more, or
   * none (one alone takes the ordinary path). Graphs that cannot prefill on a past (GQA exports)
   * are left to that path too: their attention reads the mask as sequence lengths, not padding.
   */
  function prefillGroup(budget: number): { group: Sequence[]; width: number } {
    const group: Sequence[] = [];
    let width = 0;
    if (!session.supportsChunkedPrefill) return { group, width };
    for (const sequence of prefillQueue) {
      // One that starts from a cached prefix (or a chunk already run) takes the ordinary path.
      if (sequence.prefilled !== 0 || sequence.kv !== undefined) break;
      const wider = Math.max(width, sequence.promptIds.length);
      if (wider * (group.length + 1) > budget) break;
      group.push(sequence);
      width = wider;
    }
    return group.length > 1 ? { group, width } : { group: [], width: 0 };
  }

  /**
   * A turn's prefill budget: the chunk, times the prompts waiting per decoding sequence (up to
   * 8). A burst of 63 arrivals behind one running stream gets 8 chunks at once, since their
   * first tokens then outweigh one stream's next; a trickle behind many streams gets one chunk.
   */
  function prefillBudget(): number {
    const perDecoding = Math.floor(prefillQueue.length / Math.max(1, rows.length));
    return options.prefillChunkTokens * Math.min(8, Math.max(1, perDecoding));
  }

  /**
   * Prefills waiting prompts, first come first served, up to one step's token budget (counted
   * with padding): several short prompts start in the same turn (time to first token under
   * load), while a long one is split so the decodes already running wait at most one budget's
   * worth of work.
   */
  async function prefillTurn(): Promise<void> {
    const full = prefillBudget();
    let budget = full;
    for (let next = prefillQueue[0]; next !== undefined && budget > 0; next = prefillQueue[0]) {
      const { group, width } = prefillGroup(budget);
      if (group.length > 0) {
        await prefillTogether(group, width);
        budget -= group.length * width;
        continue;
      }
      const whole = next.promptIds.length - next.prefilled;
      const fits = session.supportsChunkedPrefill || whole <= budget;
      if (!fits && budget < full) break;
      budget -= await prefillStep(next, budget);
    }
  }

  /** Moves sequences in and out of the batch when the set of decodable ones changed. */
  function regroup(): void {
    const wanted = [...sequences.values()].filter(
      (s) => s.decodable && s.prefilled === s.promptIds.length,
    );
    const same =
      wanted.length === rows.length && rows.every((s, i) => s === wanted[i] && s.decodable);
    if (same) return;
    kvMoved = true;
    // Rows that stay are copied once, batch to batch; only a row that pauses (leaves without
    // finishing) is copied out, to keep its cache until it resumes.
    const staying = new Map<Sequence, KvRowSource>();
    rows.forEach((sequence, row) => {
      if (wanted.includes(sequence)) {
        staying.set(sequence, { cache: batchKv, row, length: sequence.cachedLength });
      } else if (!sequence.done) {
        sequence.kv = takeKvRow(layout, batchKv, row, sequence.cachedLength);
      } else if (prefixCache.enabled && sequence.cachedLength > 0) {
        // Finished or cancelled: what it computed is still valid KV for its tokens.
        keep(sequence, takeKvRow(layout, batchKv, row, sequence.cachedLength));
      }
    });
    batchKv = gatherKvRows(
      layout,
      wanted.map((s) => staying.get(s) ?? ownKvRow(s.kv as KvCache)),
    );
    rows = wanted;
    for (const sequence of rows) sequence.kv = undefined;
  }

  async function decodeStep(): Promise<void> {
    const batch = rows.length;
    const length = batchKv.length;
    const inputIds = new BigInt64Array(batch);
    const positionIds = new BigInt64Array(batch);
    const attentionMask = new BigInt64Array(batch * (length + 1));
    rows.forEach((sequence, r) => {
      inputIds[r] = BigInt(sequence.pendingToken as number);
      positionIds[r] = BigInt(sequence.cachedLength);
      attentionMask.fill(
        1n,
        r * (length + 1) + (length - sequence.cachedLength),
        (r + 1) * (length + 1),
      );
    });
    const out = await session.run({
      batch,
      tokens: 1,
      inputIds,
      positionIds,
      attentionMask,
      past: batchKv,
    });
    batchKv = out.present;
    rows.forEach((sequence, r) => {
      sequence.cachedLength++;
      sequence.pendingToken = undefined;
      if (!sequence.done) emit(sequence, sequence.sampler.sample(out.logits[r] as LogitsRow));
    });
  }

  function failAll(cause: unknown): void {
    const message = cause instanceof Error ? cause.message : String(cause);
    for (const sequence of sequences.values()) {
      post({ type: "failed", id: sequence.id, code: "internal", message });
    }
    sequences.clear();
    prefillQueue.length = 0;
    rows = [];
    batchKv = emptyKvCache(layout, 0);
    kvMoved = true;
  }

  return {
    add(sequence) {
      sequences.set(sequence.id, sequence);
      prefillQueue.push(sequence);
      notify();
    },
    cancel(id) {
      const sequence = sequences.get(id);
      if (sequence === undefined) return;
      sequence.done = true;
      removeFromPrefillQueue(sequence);
      // A row leaves the batch at the next regroup; anything else holds no shared state.
      if (!rows.includes(sequence)) sequence.kv = undefined;
      kvMoved = true;
      release(sequence);
      notify();
    },
    credit(id, count) {
      const sequence = sequences.get(id);
      if (sequence === undefined) return;
      sequence.credits += count;
      notify();
    },
    stop() {
      stopped = true;
      notify();
    },
    async run(): Promise<void> {
      while (!stopped) {
        try {
          await prefillTurn();
          regroup();
          if (rows.length > 0) {
            await decodeStep();
            // At once, not after the next wake-up: finished rows leave their KV to the prefix
            // cache before the next request (often the same chat's next turn) is looked up.
            regroup();
          }
          const idle =
            prefillQueue.length === 0 && ![...sequences.values()].some((s) => s.decodable);
          publishKvPositions();
          if (idle && !stopped) {
            await new Promise<void>((resolve) => {
              wake = resolve;
            });
          }
        } catch (cause) {
          // A failed run leaves the batch in an unknown state: end every sequence with an error
          // and keep serving new ones.
          failAll(cause);
          publishKvPositions();
        }
      }
    },
  };
}
