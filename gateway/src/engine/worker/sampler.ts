/**
 * @module Picks the next token from logits: greedy at temperature 0, else temperature, top-k and
 * top-p (nucleus) sampling from a seeded generator, so the same seed gives the same text.
 */
import { uniformFloat64 } from "pure-rand/distribution/uniformFloat64";
import { xoroshiro128plusFromState } from "pure-rand/generator/xoroshiro128plus";
import type { RandomGenerator } from "pure-rand/types/RandomGenerator";

/** Resolved sampling settings (defaults already applied). */
export interface SamplerSettings {
  /** 0 is greedy. */
  readonly temperature: number;
  /** In (0, 1]; 1 turns nucleus sampling off. */
  readonly topP: number;
  /** 0 turns top-k off. */
  readonly topK: number;
  /** Any 64-bit value; the same seed gives the same choices. */
  readonly seed: bigint;
}

/** Chooses one token id from a row of logits. */
export interface Sampler {
  sample(logits: Float32Array): number;
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

/** Seeds xoroshiro128+ with all 64 bits of the seed (pure-rand's `xoroshiro128plus` takes 32). */
function seededGenerator(seed: bigint): RandomGenerator {
  const low = Number(BigInt.asUintN(32, seed)) | 0;
  const high = Number(BigInt.asUintN(32, seed >> 32n)) | 0;
  // The state must not be all zero; mixing with odd constants guarantees that.
  return xoroshiro128plusFromState([high ^ 0x9e3779b9, low ^ 0x7f4a7c15, ~high, ~low]);
}

/** Creates a sampler. Greedy settings never touch the generator. */
export function createSampler(settings: SamplerSettings): Sampler {
  if (settings.temperature === 0) return { sample: argmax };
  const rng = seededGenerator(settings.seed);
  const { temperature, topP, topK } = settings;
  return {
    sample(logits) {
      // Candidates: every id, or the top k. Sorting is needed only for top-k and top-p.
      let ids: number[] = Array.from({ length: logits.length }, (_, i) => i);
      const needsSort = topK > 0 || topP < 1;
      if (needsSort) {
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
      let r = uniformFloat64(rng) * total;
      for (let i = 0; i < count; i++) {
        r -= weights[i] as number;
        if (r < 0) return ids[i] as number;
      }
      return ids[count - 1] as number;
    },
  };
}
