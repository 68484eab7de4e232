/**
 * @module The KV caches of finished sequences, kept so a new request that starts with the same
 * tokens skips their prefill. A chat resends its whole history each turn, so the next turn's
 * prompt begins with the last turn's prompt and reply; vLLM (automatic prefix caching),
 * SGLang (RadixAttention) and llama.cpp server (`cache_prompt`) reuse that work the same way.
 *
 * Written here rather than taken from a library: the entries are this engine's own KV arrays.
 * Bounded by bytes, least recently used first out. Entries are whole token sequences, matched
 * by their longest common prefix with the prompt; a causal decoder's KV for a prefix does not
 * depend on what follows it, so any prefix of an entry is reusable as it is.
 */
import type { KvArray, KvCache, KvLayout } from "./kv-cache.js";

/** What a lookup found: the cache of the first `tokens` prompt tokens, a copy the caller owns. */
export interface PrefixHit {
  readonly tokens: number;
  readonly kv: KvCache;
}

/** A model's prefix cache. */
export interface PrefixCache {
  /**
   * The longest cached prefix of `promptIds`, leaving at least one prompt token to run (its
   * logits give the first sampled token); undefined when nothing useful matches.
   */
  lookup(promptIds: readonly number[]): PrefixHit | undefined;
  /** Keeps `kv` (one sequence, `tokens.length` positions) for later lookups. */
  store(tokens: readonly number[], kv: KvCache): void;
  /** False when built with no bytes to hold: callers skip copying KV for it. */
  readonly enabled: boolean;
  /** Bytes of KV held now. */
  readonly bytes: number;
  /** Entries held now. */
  readonly entries: number;
}

interface Entry {
  readonly tokens: readonly number[];
  readonly kv: KvCache;
  readonly bytes: number;
}

/** Prefixes shorter than this are not worth a copy (a few tokens prefill in one cheap step). */
const MIN_REUSE_TOKENS = 4;

function commonPrefix(a: readonly number[], b: readonly number[]): number {
  const n = Math.min(a.length, b.length);
  let i = 0;
  while (i < n && a[i] === b[i]) i++;
  return i;
}

function bytesOf(kv: KvCache): number {
  return kv.data.reduce((sum, array) => sum + array.byteLength, 0);
}

/** The first `length` positions of a one-sequence cache, copied (positions are per head). */
function kvPrefix(layout: KvLayout, kv: KvCache, length: number): KvCache {
  const { kvHeads, headDim } = layout;
  const data = kv.data.map((source): KvArray => {
    const target =
      source instanceof Uint16Array
        ? new Uint16Array(kvHeads * length * headDim)
        : new Float32Array(kvHeads * length * headDim);
    for (let h = 0; h < kvHeads; h++) {
      const from = h * kv.length * headDim;
      target.set(source.subarray(from, from + length * headDim), h * length * headDim);
    }
    return target;
  });
  return { batch: 1, length, data };
}

/** Creates an LRU prefix cache holding at most `maxBytes` of KV (0: keeps nothing). */
export function createPrefixCache(layout: KvLayout, maxBytes: number): PrefixCache {
  // A Map iterates in insertion order: re-inserting on use makes its first entry the LRU one.
  const entries = new Map<Entry, true>();
  let bytes = 0;

  function remove(entry: Entry): void {
    entries.delete(entry);
    bytes -= entry.bytes;
  }

  return {
    lookup(promptIds) {
      let best: Entry | undefined;
      let bestLength = 0;
      for (const entry of entries.keys()) {
        const length = Math.min(commonPrefix(entry.tokens, promptIds), promptIds.length - 1);
        if (length > bestLength) {
          best = entry;
          bestLength = length;
        }
      }
      if (best === undefined || bestLength < MIN_REUSE_TOKENS) return undefined;
      entries.delete(best);
      entries.set(best, true);
      return { tokens: bestLength, kv: kvPrefix(layout, best.kv, bestLength) };
    },
    store(tokens, kv) {
      const size = bytesOf(kv);
      if (size > maxBytes || tokens.length < MIN_REUSE_TOKENS) return;
      for (const entry of [...entries.keys()]) {
        const shared = commonPrefix(entry.tokens, tokens);
        // Already held by a longer (or equal) entry, or this one supersedes a shorter one.
        if (shared === tokens.length) {
          entries.delete(entry);
          entries.set(entry, true);
          return;
        }
        if (shared === entry.tokens.length) remove(entry);
      }
      const entry = { tokens: [...tokens], kv, bytes: size };
      entries.set(entry, true);
      bytes += size;
      for (const oldest of entries.keys()) {
        if (bytes <= maxBytes) break;
        remove(oldest);
      }
    },
    enabled: maxBytes > 0,
    get bytes() {
      return bytes;
    },
    get entries() {
      return entries.size;
    },
  };
}
