/**
 * @module Picks the next token from logits: the penalties first (`logit-penalties.ts`), then
 * greedy at temperature 0, else temperature, top-k, top-p (nucleus) and min-p sampling from a
 * seeded generator, so the same seed gives the same text. The filters run in transformers'
 * order (temperature, top-k, top-p, min-p, as `GenerationMixin._get_logits_processor` lists its
 * warpers); vLLM applies min-p before top-k/top-p instead, which differs only when top-p and
 * min-p are both set. With log probabilities it also reports the log-softmax of exactly the
 * distribution it drew from (vLLM's `logprobs_mode=processed_logprobs`).
 */
import { uniformFloat64 } from "pure-rand/distribution/uniformFloat64";
import { xoroshiro128plusFromState } from "pure-rand/generator/xoroshiro128plus";
import type { RandomGenerator } from "pure-rand/types/RandomGenerator";
import { float16Argmax, float16ToFloat32, type LogitsRow } from "./float16.js";
import { createLogitPenalties, type PenaltySettings } from "./logit-penalties.js";

/** Resolved sampling settings (defaults already applied). */
export interface SamplerSettings extends PenaltySettings {
  /** 0 is greedy. */
  readonly temperature: number;
  /** In (0, 1]; 1 turns nucleus sampling off. */
  readonly topP: number;
  /** 0 turns top-k off. */
  readonly topK: number;
  /** In [0, 1]; 0 turns min-p off. */
  readonly minP: number;
  /** Any 64-bit value; the same seed gives the same choices. */
  readonly seed: bigint;
  /** Alternatives to report per token; undefined reports no log probabilities. */
  readonly topLogprobs: number | undefined;
}

/** A token id and its natural-log probability. */
export interface IdLogprob {
  readonly tokenId: number;
  readonly logprob: number;
}

/** What the sampler chose, with its log probabilities when they were asked for. */
export interface SampledToken {
  readonly tokenId: number;
  readonly logprobs: { readonly logprob: number; readonly top: readonly IdLogprob[] } | undefined;
}

/** Chooses one token id from a row of logits; one sampler follows one sequence. */
export interface Sampler {
  /** Chooses the next token and counts it in the history the penalties read. */
  sample(logits: LogitsRow): SampledToken;
}

/** The row's values as float32: itself, or a new array converted from float16. */
function float32Values(row: LogitsRow): Float32Array {
  return row instanceof Float32Array ? row : float16ToFloat32(row.bits, row.offset, row.length);
}

/** Index of the largest logit; ties go to the lowest id, so greedy output is deterministic. */
export function argmax(logits: Float32Array): number {
  let best = 0;
  let bestValue = Number.NEGATIVE_INFINITY;
  for (let i = 0; i < logits.length; i++) {
    const v = logits[i] as number;
    if (v > bestValue) {
      bestValue = v;
      best = i;
    }
  }
  return best;
}

const mask64 = (1n << 64n) - 1n;

/** One step of SplitMix64 (Steele, Lea and Flood 2014): the next state and its output. */
function splitMix64(state: bigint): [bigint, bigint] {
  const next = (state + 0x9e3779b97f4a7c15n) & mask64;
  let z = next;
  z = ((z ^ (z >> 30n)) * 0xbf58476d1ce4e5b9n) & mask64;
  z = ((z ^ (z >> 27n)) * 0x94d049bb133111ebn) & mask64;
  return [next, z ^ (z >> 31n)];
}

/**
 * Seeds xoroshiro128+ with all 64 bits of the seed (pure-rand's `xoroshiro128plus` takes 32),
 * through SplitMix64 as xoroshiro's authors advise (prng.di.unimi.it): seeding the state with
 * the seed's bits directly made nearby seeds (0, 1, 2, …) draw the same first token. SplitMix64's
 * output is a bijection of its state, so two outputs are never both zero (an all-zero state
 * would be stuck). Hand-written: pure-rand has no SplitMix64, and it is four lines.
 */
function seededGenerator(seed: bigint): RandomGenerator {
  const [state, first] = splitMix64(BigInt.asUintN(64, seed));
  const [, second] = splitMix64(state);
  const int32 = (value: bigint) => Number(BigInt.asIntN(32, value));
  return xoroshiro128plusFromState([
    int32(first >> 32n),
    int32(first),
    int32(second >> 32n),
    int32(second),
  ]);
}

/**
 * The `n` indices with the largest `values[index]` among `indices`, largest first, ties to the
 * lower id; those with value 0 or less are left out. `n` is at most 20, so a sorted insertion
 * into a short list beats sorting the vocabulary.
 */
function largest(
  n: number,
  size: number,
  valueAt: (i: number) => number,
  idAt: (i: number) => number,
): number[] {
  const best: number[] = [];
  if (n === 0) return best;
  for (let i = 0; i < size; i++) {
    const v = valueAt(i);
    if (!(v > 0)) continue;
    if (best.length === n && v <= valueAt(best[n - 1] as number)) continue;
    let at = best.length;
    while (at > 0) {
      const other = best[at - 1] as number;
      const ov = valueAt(other);
      if (ov > v || (ov === v && idAt(other) < idAt(i))) break;
      at--;
    }
    best.splice(at, 0, i);
    if (best.length > n) best.pop();
  }
  return best;
}

/**
 * Log probabilities of greedy decoding: the log-softmax of the (penalized) logits at
 * temperature 1 with no filters, as vLLM reports greedy requests (it samples them at
 * temperature 1 for that purpose).
 */
function greedyLogprobs(
  logits: Float32Array,
  tokenId: number,
  topLogprobs: number,
): SampledToken["logprobs"] {
  const max = logits[tokenId] as number;
  let total = 0;
  for (let i = 0; i < logits.length; i++) total += Math.exp((logits[i] as number) - max);
  const logTotal = Math.log(total);
  const logprobOf = (id: number) => (logits[id] as number) - max - logTotal;
  const weightOf = (id: number) => Math.exp((logits[id] as number) - max);
  const top = largest(topLogprobs, logits.length, weightOf, (i) => i);
  return {
    logprob: logprobOf(tokenId),
    top: top.map((id) => ({ tokenId: id, logprob: logprobOf(id) })),
  };
}

/** Creates a sampler. Greedy settings never touch the generator. */
export function createSampler(settings: SamplerSettings, promptIds: readonly number[]): Sampler {
  const penalties = createLogitPenalties(settings, promptIds);
  const { topLogprobs } = settings;
  if (settings.temperature === 0) {
    // Top-k, top-p and min-p never remove the most likely token, so greedy ignores them.
    return {
      sample(row) {
        if (penalties === undefined && topLogprobs === undefined) {
          // Only the largest is needed: float16 rows are searched as they are, never converted.
          return {
            tokenId: row instanceof Float32Array ? argmax(row) : float16Argmax(row),
            logprobs: undefined,
          };
        }
        const raw = float32Values(row);
        const logits = penalties === undefined ? raw : penalties.apply(raw);
        const tokenId = argmax(logits);
        penalties?.record(tokenId);
        return {
          tokenId,
          logprobs:
            topLogprobs === undefined ? undefined : greedyLogprobs(logits, tokenId, topLogprobs),
        };
      },
    };
  }
  const rng = seededGenerator(settings.seed);
  const { temperature, topP, topK, minP } = settings;
  return {
    sample(row) {
      const raw = float32Values(row);
      const logits = penalties === undefined ? raw : penalties.apply(raw);
      // Candidates: every id, or the top k. Sorting is needed only for top-k, top-p and min-p.
      let ids: number[] = Array.from({ length: logits.length }, (_, i) => i);
      const sorted = topK > 0 || topP < 1 || minP > 0;
      if (sorted) {
        ids.sort((a, b) => (logits[b] as number) - (logits[a] as number) || a - b);
        if (topK > 0) ids = ids.slice(0, topK);
      }
      let max = Number.NEGATIVE_INFINITY;
      for (const id of ids) max = Math.max(max, logits[id] as number);
      const weights = new Float64Array(ids.length);
      let total = 0;
      for (let i = 0; i < ids.length; i++) {
        const w = Math.exp(((logits[ids[i] as number] as number) - max) / temperature);
        weights[i] = w;
        total += w;
      }
      let count = ids.length;
      if (topP < 1) {
        // Keep the smallest prefix (most likely first) whose mass reaches topP.
        let mass = 0;
        for (let i = 0; i < ids.length; i++) {
          mass += (weights[i] as number) / total;
          if (mass >= topP) {
            count = i + 1;
            break;
          }
        }
        total = 0;
        for (let i = 0; i < count; i++) total += weights[i] as number;
      }
      if (minP > 0) {
        // transformers' MinPLogitsWarper, applied as it is after temperature, top-k and top-p:
        // drop every token whose probability is below minP times the largest. Probabilities are
        // in the ratio of the weights, and weights[0] (the most likely) is exp(0) = 1.
        let kept = 1;
        while (kept < count && (weights[kept] as number) >= minP) kept++;
        if (kept < count) {
          count = kept;
          total = 0;
          for (let i = 0; i < count; i++) total += weights[i] as number;
        }
      }
      let chosen = count - 1;
      let r = uniformFloat64(rng) * total;
      for (let i = 0; i < count; i++) {
        r -= weights[i] as number;
        if (r < 0) {
          chosen = i;
          break;
        }
      }
      const tokenId = ids[chosen] as number;
      penalties?.record(tokenId);
      if (topLogprobs === undefined) return { tokenId, logprobs: undefined };
      // The log-softmax of the distribution just sampled from: the kept candidates' weights.
      const logTotal = Math.log(total);
      const logprobAt = (i: number) =>
        ((logits[ids[i] as number] as number) - max) / temperature - logTotal;
      const top = largest(
        topLogprobs,
        count,
        (i) => weights[i] as number,
        (i) => ids[i] as number,
      );
      return {
        tokenId,
        logprobs: {
          logprob: logprobAt(chosen),
          top: top.map((i) => ({ tokenId: ids[i] as number, logprob: logprobAt(i) })),
        },
      };
    },
  };
}
