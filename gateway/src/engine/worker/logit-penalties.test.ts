/**
 * @module Each penalty against a hand computation on a four-token vocabulary, written out from
 * its definition (vLLM's `apply_penalties`, transformers' `RepetitionPenaltyLogitsProcessor`).
 */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { createLogitPenalties, type PenaltySettings } from "./logit-penalties.js";

const neutral: PenaltySettings = { presencePenalty: 0, frequencyPenalty: 0, repetitionPenalty: 1 };
/** Token 0 is positive, 1 negative, 2 zero, 3 the largest. */
const logits = Float32Array.from([1.5, -2, 0, 3]);

function penalized(
  settings: Partial<PenaltySettings>,
  promptIds: number[],
  generated: number[],
): number[] {
  const penalties = createLogitPenalties({ ...neutral, ...settings }, promptIds);
  assert.ok(penalties !== undefined);
  for (const id of generated) penalties.record(id);
  return [...penalties.apply(logits)];
}

describe("logit penalties", () => {
  it("are absent when every penalty is neutral", () => {
    assert.equal(createLogitPenalties(neutral, [0, 1, 2]), undefined);
  });

  it("presence subtracts once from each token of the output, never the prompt", () => {
    // Output: token 0 twice, token 1 once; token 3 only in the prompt.
    assert.deepEqual(penalized({ presencePenalty: 0.5 }, [3], [0, 1, 0]), [1.0, -2.5, 0, 3]);
  });

  it("frequency subtracts once per occurrence in the output", () => {
    // 1.5 - 0.25 * 2 = 1.0; -2 - 0.25 * 1 = -2.25.
    assert.deepEqual(penalized({ frequencyPenalty: 0.25 }, [3], [0, 1, 0]), [1.0, -2.25, 0, 3]);
  });

  it("a negative frequency or presence penalty favours repeats", () => {
    assert.deepEqual(
      penalized({ frequencyPenalty: -1, presencePenalty: -0.5 }, [], [2, 2]),
      [1.5, -2, 2.5, 3],
    );
  });

  it("frequency and presence add up: count * frequency + presence", () => {
    // Token 0 twice: 1.5 - 2 * 0.25 - 0.5 = 0.5.
    assert.deepEqual(
      penalized({ frequencyPenalty: 0.25, presencePenalty: 0.5 }, [], [0, 0]),
      [0.5, -2, 0, 3],
    );
  });

  it("repetition divides positive logits and multiplies negative ones, prompt and output", () => {
    // Prompt has 0 and 1, output has 3; 2 is zero and unseen.
    const out = penalized({ repetitionPenalty: 2 }, [0, 1], [3]);
    assert.deepEqual(out, [0.75, -4, 0, 1.5]);
    // Each seen token is penalized once, however often it was seen.
    assert.deepEqual(penalized({ repetitionPenalty: 2 }, [0, 0, 1], [0, 3, 3]), out);
  });

  it("repetition below 1 favours seen tokens", () => {
    assert.deepEqual(penalized({ repetitionPenalty: 0.5 }, [0, 1], []), [3, -1, 0, 3]);
  });

  it("run repetition first, then frequency and presence (vLLM's order)", () => {
    // Token 0, seen in the output twice: 1.5 / 1.5 = 1, then 1 - 2 * 0.25 - 0.125 = 0.375.
    // Token 1, seen in the prompt only: -2 * 1.5 = -3, no output penalty.
    const out = penalized(
      { repetitionPenalty: 1.5, frequencyPenalty: 0.25, presencePenalty: 0.125 },
      [1],
      [0, 0],
    );
    assert.deepEqual(out, [0.375, -3, 0, 3]);
  });

  it("leaves the input row as it is", () => {
    const before = [...logits];
    penalized({ repetitionPenalty: 3, presencePenalty: 1 }, [0, 1, 2, 3], [0, 1, 2, 3]);
    assert.deepEqual([...logits], before);
  });
});
