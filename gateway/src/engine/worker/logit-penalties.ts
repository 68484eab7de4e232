/**
 * @module The repetition, frequency and presence penalties, applied to a row of logits before
 * temperature, in vLLM's order (`vllm/model_executor/layers/utils.py` `apply_penalties`:
 * repetition first, then frequency, then presence):
 *
 * - repetition (CTRL, Keskar et al. 2019, as transformers' `RepetitionPenaltyLogitsProcessor`
 *   and vLLM apply it): every token seen in the prompt or the output has a positive logit
 *   divided by the penalty and a negative one multiplied by it;
 * - frequency (OpenAI's definition, vLLM's too): `logit -= frequency_penalty * count`, with
 *   `count` the token's occurrences in the output only;
 * - presence (likewise): `logit -= presence_penalty` once for every token in the output.
 *
 * Hand-written because no JavaScript library implements these processors; each is a loop over
 * the tokens seen, not over the vocabulary.
 */

/** The penalties of one sequence; their neutral values are 0, 0 and 1. */
export interface PenaltySettings {
  readonly presencePenalty: number;
  readonly frequencyPenalty: number;
  readonly repetitionPenalty: number;
}

/** A sequence's token history, as the penalties need it. */
export interface LogitPenalties {
  /** A penalized copy of `logits` (the input is left as it is). */
  apply(logits: Float32Array): Float32Array;
  /** Counts a generated token. */
  record(tokenId: number): void;
}

/** Creates the penalties of one sequence, or undefined when all are neutral. */
export function createLogitPenalties(
  settings: PenaltySettings,
  promptIds: readonly number[],
): LogitPenalties | undefined {
  const { presencePenalty, frequencyPenalty, repetitionPenalty } = settings;
  const usesOutput = presencePenalty !== 0 || frequencyPenalty !== 0;
  const usesRepetition = repetitionPenalty !== 1;
  if (!usesOutput && !usesRepetition) return undefined;
  /** Occurrences of each token in the output. */
  const outputCounts = new Map<number, number>();
  /** Every token of the prompt and the output, for the repetition penalty. */
  const seen = new Set<number>(usesRepetition ? promptIds : []);

  return {
    apply(logits) {
      const out = logits.slice();
      if (usesRepetition) {
        for (const id of seen) {
          const value = out[id];
          if (value === undefined) continue;
          out[id] = value > 0 ? value / repetitionPenalty : value * repetitionPenalty;
        }
      }
      if (usesOutput) {
        for (const [id, count] of outputCounts) {
          const value = out[id];
          if (value === undefined) continue;
          out[id] = value - frequencyPenalty * count - presencePenalty;
        }
      }
      return out;
    },
    record(tokenId) {
      if (usesRepetition) seen.add(tokenId);
      if (usesOutput) outputCounts.set(tokenId, (outputCounts.get(tokenId) ?? 0) + 1);
    },
  };
}
