/**
 * @module The sampler on a tiny vocabulary against hand computations: min-p's cut (after
 * temperature), penalties steering greedy choices, and log probabilities equal to a log-softmax
 * written out here of the distribution the token was drawn from.
 */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { argmax, createSampler, type SamplerSettings } from "./sampler.js";

const base: SamplerSettings = {
  temperature: 1,
  topP: 1,
  topK: 0,
  minP: 0,
  seed: 1n,
  presencePenalty: 0,
  frequencyPenalty: 0,
  repetitionPenalty: 1,
  topLogprobs: undefined,
};

/** Logits whose probabilities at temperature 1 are in the ratio 1 : e^-1 : e^-2 : e^-5. */
const logits = Float32Array.from([2, 1, 0, -3]);

/** The natural-log softmax of `values / temperature` over the ids in `kept`, by hand. */
function logSoftmax(values: ArrayLike<number>, temperature: number, kept: number[]) {
  const scaled = kept.map((id) => (values[id] as number) / temperature);
  const max = Math.max(...scaled);
  const logZ = max + Math.log(scaled.reduce((sum, v) => sum + Math.exp(v - max), 0));
  return new Map(kept.map((id, i) => [id, (scaled[i] as number) - logZ]));
}

/** The ids one sampler draws from the same row, many times. */
function drawn(settings: Partial<SamplerSettings>, row = logits, draws = 400): Set<number> {
  const ids = new Set<number>();
  const sampler = createSampler({ ...base, ...settings }, []);
  for (let i = 0; i < draws; i++) ids.add(sampler.sample(row).tokenId);
  return ids;
}

function closeTo(actual: number, expected: number, message?: string): void {
  assert.ok(Math.abs(actual - expected) < 1e-9, `${message ?? ""} ${actual} vs ${expected}`);
}

describe("min_p", () => {
  it("drops tokens below min_p times the largest probability (hand: e^-1 = 0.37, e^-2 = 0.14)", () => {
    // At temperature 1 the ratios to the top token are 1, 0.368, 0.135, 0.0067.
    assert.deepEqual([...drawn({ minP: 0.3 })].sort(), [0, 1]);
    assert.deepEqual([...drawn({ minP: 0.1 })].sort(), [0, 1, 2]);
    assert.deepEqual([...drawn({})].sort(), [0, 1, 2, 3]);
    assert.deepEqual([...drawn({ minP: 1 })], [0]);
  });

  it("compares probabilities after temperature", () => {
    // At temperature 2 the ratios are 1, e^-0.5 = 0.61, e^-1 = 0.37, e^-2.5 = 0.082.
    assert.deepEqual([...drawn({ minP: 0.3, temperature: 2 })].sort(), [0, 1, 2]);
    // At temperature 0.5: 1, e^-2 = 0.135, ...; min_p 0.3 keeps the top token alone.
    assert.deepEqual([...drawn({ minP: 0.3, temperature: 0.5 })], [0]);
  });

  it("reports the renormalized distribution it kept", () => {
    const sampled = createSampler({ ...base, minP: 0.3, topLogprobs: 4 }, []).sample(logits);
    const expected = logSoftmax(logits, 1, [0, 1]);
    assert.deepEqual(
      sampled.logprobs?.top.map((t) => t.tokenId),
      [0, 1],
    );
    for (const { tokenId, logprob } of sampled.logprobs?.top ?? []) {
      closeTo(logprob, expected.get(tokenId) as number, `token ${tokenId}`);
    }
    // Hand: log(1 / (1 + e^-1)) = -0.3133.
    closeTo(sampled.logprobs?.top[0]?.logprob as number, -Math.log(1 + Math.exp(-1)));
  });

  it("does not change greedy decoding", () => {
    assert.deepEqual([...drawn({ minP: 0.9, temperature: 0 })], [0]);
  });
});

describe("penalties in the sampler", () => {
  it("steer greedy choices as the hand-computed logits say", () => {
    // Token 0 (2) against token 1 (1): once 0 was generated, presence 1.5 makes it 0.5 < 1.
    const sampler = createSampler({ ...base, temperature: 0, presencePenalty: 1.5 }, []);
    assert.equal(sampler.sample(logits).tokenId, 0);
    assert.equal(sampler.sample(logits).tokenId, 1);
    // Now 0 is at 0.5 and 1 at -0.5: 0 again, then frequency would matter but presence does not
    // grow: 0 stays at 0.5 and wins again.
    assert.equal(sampler.sample(logits).tokenId, 0);
    assert.equal(sampler.sample(logits).tokenId, 0);
  });

  it("frequency grows with every repeat", () => {
    // Token 0: 2 - 1.25 n; token 1: 1 - 1.25 m; token 2 stays 0. Greedy: 0, then 1 (0.75 vs 1),
    // then 0 (0.75 vs -0.25 and 0), then 2 (0 beats -0.5 and -0.25), where a presence penalty of
    // 1.25 would have kept 0 at 0.75.
    const sampler = createSampler({ ...base, temperature: 0, frequencyPenalty: 1.25 }, []);
    const ids = [1, 2, 3, 4].map(() => sampler.sample(logits).tokenId);
    assert.deepEqual(ids, [0, 1, 0, 2]);
  });

  it("repetition counts the prompt", () => {
    // Token 0 in the prompt: 2 / 3 = 0.67 < 1, so greedy picks token 1 at the first step.
    const sampler = createSampler({ ...base, temperature: 0, repetitionPenalty: 3 }, [0]);
    assert.equal(sampler.sample(logits).tokenId, 1);
    // Then 1 is seen too: 1 / 3 = 0.33 < 0.67: token 0 again.
    assert.equal(sampler.sample(logits).tokenId, 0);
  });

  it("leave greedy decoding alone when neutral", () => {
    const row = Float32Array.from([0.1, 0.7, 0.7, -1, 0.3]);
    const sampler = createSampler({ ...base, temperature: 0 }, [1, 2, 1]);
    for (let i = 0; i < 3; i++) assert.equal(sampler.sample(row).tokenId, argmax(row));
  });

  it("leave seeded sampling alone when neutral: the same draws as before they existed", () => {
    // The draws of an explicit neutral setting equal those of the plain sampler, seed by seed.
    for (let seed = 0n; seed < 50n; seed++) {
      const plain = createSampler({ ...base, seed, topP: 0.9 }, []);
      const neutral = createSampler(
        { ...base, seed, topP: 0.9, presencePenalty: 0, frequencyPenalty: 0, repetitionPenalty: 1 },
        [0, 1, 2],
      );
      for (let i = 0; i < 5; i++) {
        assert.equal(plain.sample(logits).tokenId, neutral.sample(logits).tokenId);
      }
    }
  });
});

describe("seeds", () => {
  it("nearby seeds draw different first tokens", () => {
    // Ten equally likely tokens: 20 consecutive seeds must not all open with the same one (they
    // did when the seed's bits went into xoroshiro's state unmixed).
    const row = new Float32Array(10);
    const firsts = new Set<number>();
    for (let seed = 0n; seed < 20n; seed++) {
      firsts.add(createSampler({ ...base, seed }, []).sample(row).tokenId);
    }
    assert.ok(firsts.size >= 5, `first draws of seeds 0-19: ${[...firsts].join(" ")}`);
  });

  it("the same seed draws the same tokens", () => {
    const draws = (seed: bigint) => {
      const sampler = createSampler({ ...base, seed }, []);
      return Array.from({ length: 20 }, () => sampler.sample(logits).tokenId);
    };
    assert.deepEqual(draws(2n ** 64n - 1n), draws(2n ** 64n - 1n));
    assert.notDeepEqual(draws(5n), draws(6n));
  });
});

describe("logprobs", () => {
  it("equal a hand log-softmax at the temperature sampled with, and sum to 1", () => {
    const sampled = createSampler({ ...base, temperature: 0.7, topLogprobs: 4 }, []).sample(logits);
    const expected = logSoftmax(logits, 0.7, [0, 1, 2, 3]);
    const top = sampled.logprobs?.top ?? [];
    assert.deepEqual(
      top.map((t) => t.tokenId),
      [0, 1, 2, 3],
    );
    for (const { tokenId, logprob } of top) closeTo(logprob, expected.get(tokenId) as number);
    closeTo(
      top.reduce((sum, t) => sum + Math.exp(t.logprob), 0),
      1,
    );
    closeTo(sampled.logprobs?.logprob as number, expected.get(sampled.tokenId) as number);
  });

  it("of greedy decoding are the log-softmax at temperature 1 (as vLLM reports them)", () => {
    const sampled = createSampler({ ...base, temperature: 0, topLogprobs: 2 }, []).sample(logits);
    const expected = logSoftmax(logits, 1, [0, 1, 2, 3]);
    assert.equal(sampled.tokenId, 0);
    closeTo(sampled.logprobs?.logprob as number, expected.get(0) as number);
    assert.deepEqual(
      sampled.logprobs?.top.map((t) => t.tokenId),
      [0, 1],
    );
    for (const { tokenId, logprob } of sampled.logprobs?.top ?? []) {
      closeTo(logprob, expected.get(tokenId) as number);
    }
  });

  it("follow the penalized logits, and leave out what top_k removed", () => {
    // Presence 2 on token 0 after it was generated: logits become [0, 1, 0, -3]; top_k 2 keeps
    // token 1 and token 0 (the tie with 2 goes to the lower id).
    const sampler = createSampler({ ...base, presencePenalty: 2, topK: 2, topLogprobs: 5 }, []);
    assert.equal(sampler.sample(Float32Array.from([30, 0, 0, 0])).tokenId, 0);
    const sampled = sampler.sample(logits);
    const expected = logSoftmax([0, 1, 0, -3], 1, [1, 0]);
    assert.deepEqual(
      sampled.logprobs?.top.map((t) => t.tokenId),
      [1, 0],
    );
    for (const { tokenId, logprob } of sampled.logprobs?.top ?? []) {
      closeTo(logprob, expected.get(tokenId) as number);
    }
  });

  it("list ties by the lower id, and at most top_logprobs of them", () => {
    const row = Float32Array.from([0, 1, 1, 1, 0.5]);
    const sampled = createSampler({ ...base, temperature: 0, topLogprobs: 2 }, []).sample(row);
    assert.equal(sampled.tokenId, 1);
    assert.deepEqual(
      sampled.logprobs?.top.map((t) => t.tokenId),
      [1, 2],
    );
    const none = createSampler({ ...base, temperature: 0, topLogprobs: 0 }, []).sample(row);
    assert.deepEqual(none.logprobs?.top, []);
    closeTo(none.logprobs?.logprob as number, logSoftmax(row, 1, [0, 1, 2, 3, 4]).get(1) as number);
  });

  it("are absent unless asked for", () => {
    assert.equal(createSampler(base, []).sample(logits).logprobs, undefined);
    assert.equal(createSampler({ ...base, temperature: 0 }, []).sample(logits).logprobs, undefined);
  });
});

describe("float16 rows", () => {
  // 2, 1, 0, -3 and 1 in half precision, behind two values that are not part of the row.
  const bits = Uint16Array.of(0x7bff, 0x7bff, 0x4000, 0x3c00, 0x0000, 0xc200, 0x3c00);
  const row = { bits, offset: 2, length: 5 };
  const values = Float32Array.from([2, 1, 0, -3, 1]);

  it("decode as their float32 values would, greedy or sampled, with penalties and logprobs", () => {
    const settings: SamplerSettings[] = [
      { ...base, temperature: 0 },
      { ...base, temperature: 0, topLogprobs: 2 },
      { ...base, temperature: 0, repetitionPenalty: 3 },
      { ...base, temperature: 0.7, topP: 0.9, topLogprobs: 3 },
    ];
    for (const [index, setting] of settings.entries()) {
      const fromBits = createSampler(setting, [0]);
      const fromValues = createSampler(setting, [0]);
      for (let i = 0; i < 4; i++) {
        assert.deepEqual(fromBits.sample(row), fromValues.sample(values), `settings ${index}`);
      }
    }
  });
});
