/**
 * @module The sampling and inspection controls through the real engine on the built-in model:
 * penalties against a reference decoder that applies them by hand with no KV cache, logprobs
 * against a log-softmax of that reference's logits, stop_token_ids, and Tokenize/Detokenize
 * against what generation does.
 */
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { readModelFolder } from "../models/model-folder.js";
import { decodeWithoutCache } from "../testing/decode-without-cache.js";
import { builtinSource, collect, greedy, startTestEngine } from "../testing/model-fixtures.js";
import type { Engine, GenerationRequest, TokenLogprob } from "./engine.js";
import { EngineError } from "./engine-error.js";
import { argmax } from "./worker/sampler.js";

const prompt = "Once upon a time, once upon a time";
const steps = 40;

/** The repetition, frequency and presence penalties written out by hand, in float32 as vLLM. */
function penalize(
  logits: Float32Array,
  promptIds: readonly number[],
  generated: readonly number[],
  penalties: { repetition: number; frequency: number; presence: number },
): Float32Array {
  const out = Float32Array.from(logits);
  for (const id of new Set([...promptIds, ...generated])) {
    const v = out[id] as number;
    out[id] = v > 0 ? v / penalties.repetition : v * penalties.repetition;
  }
  const counts = new Map<number, number>();
  for (const id of generated) counts.set(id, (counts.get(id) ?? 0) + 1);
  for (const [id, count] of counts) {
    out[id] = (out[id] as number) - penalties.frequency * count - penalties.presence;
  }
  return out;
}

/** log softmax(row)[id] in float64. */
function logSoftmaxAt(row: Float32Array, id: number): number {
  let max = Number.NEGATIVE_INFINITY;
  for (const v of row) max = Math.max(max, v);
  let total = 0;
  for (const v of row) total += Math.exp(v - max);
  return (row[id] as number) - max - Math.log(total);
}

function logprobsOf(events: readonly { logprobs?: readonly TokenLogprob[] | undefined }[]) {
  return events.flatMap((e) => [...(e.logprobs ?? [])]);
}

describe("sampling controls on the built-in model", () => {
  let engine: Engine;
  let eos: Set<number>;
  let plain: number[];

  before(async () => {
    ({ engine } = await startTestEngine([builtinSource()]));
    eos = new Set((await readModelFolder(builtinSource().dir)).eosTokenIds);
    plain = (await collect(engine, greedy(prompt, steps))).tokenIds;
  });
  after(() => engine.close());

  it("greedy with neutral penalties and min_p equals plain greedy", async () => {
    const request: GenerationRequest = {
      ...greedy(prompt, steps),
      sampling: {
        temperature: 0,
        presencePenalty: 0,
        frequencyPenalty: 0,
        repetitionPenalty: 1,
        minP: 0.9,
      },
    };
    assert.deepEqual((await collect(engine, request)).tokenIds, plain);
  });

  it("penalized greedy equals a reference decoder that penalizes by hand", async () => {
    const penalties = { repetition: 1.3, frequency: 0.4, presence: 0.3 };
    const expected = await decodeWithoutCache(builtinSource(), prompt, steps, eos, (row, p, g) =>
      argmax(penalize(row, p, g, penalties)),
    );
    const request: GenerationRequest = {
      ...greedy(prompt, steps),
      sampling: {
        temperature: 0,
        repetitionPenalty: penalties.repetition,
        frequencyPenalty: penalties.frequency,
        presencePenalty: penalties.presence,
      },
    };
    const { tokenIds } = await collect(engine, request);
    assert.deepEqual(tokenIds, expected);
    assert.notDeepEqual(tokenIds, plain, "the penalties change what greedy decoding picks");
  });

  it("each penalty alone matches the reference too", async () => {
    for (const penalties of [
      { repetition: 1.8, frequency: 0, presence: 0 },
      // Plain greedy output here never repeats a token, so only negative output penalties (which
      // favour repeats) change it; a negative frequency penalty grows with every occurrence.
      { repetition: 1, frequency: -1.5, presence: 0 },
      { repetition: 1, frequency: 0, presence: -2 },
    ]) {
      const expected = await decodeWithoutCache(builtinSource(), prompt, steps, eos, (row, p, g) =>
        argmax(penalize(row, p, g, penalties)),
      );
      const { tokenIds } = await collect(engine, {
        ...greedy(prompt, steps),
        sampling: {
          temperature: 0,
          repetitionPenalty: penalties.repetition,
          frequencyPenalty: penalties.frequency,
          presencePenalty: penalties.presence,
        },
      });
      assert.deepEqual(tokenIds, expected, JSON.stringify(penalties));
      assert.notDeepEqual(tokenIds, plain, `${JSON.stringify(penalties)} changes the output`);
    }
  });

  it("greedy logprobs are the log-softmax of the reference decoder's logits", async () => {
    const rows: Float32Array[] = [];
    await decodeWithoutCache(builtinSource(), prompt, steps, eos, (row) => {
      rows.push(Float32Array.from(row));
      return argmax(row);
    });
    const result = await collect(engine, { ...greedy(prompt, steps), topLogprobs: 5 });
    assert.deepEqual(result.tokenIds, plain, "asking for logprobs changes no token");
    for (const event of result.events) {
      assert.equal(event.logprobs?.length, event.tokenIds.length, "one entry per token id");
    }
    const logprobs = logprobsOf(result.events);
    logprobs.forEach((entry, i) => {
      const row = rows[i] as Float32Array;
      assert.equal(entry.tokenId, result.tokenIds[i]);
      assert.ok(Math.abs(entry.logprob - logSoftmaxAt(row, entry.tokenId)) < 1e-4, `step ${i}`);
      assert.equal(entry.top.length, 5);
      assert.equal(entry.top[0]?.tokenId, entry.tokenId, "greedy picks the likeliest");
      let mass = 0;
      entry.top.forEach((alt, k) => {
        assert.ok(Math.abs(alt.logprob - logSoftmaxAt(row, alt.tokenId)) < 1e-4);
        if (k > 0) assert.ok(alt.logprob <= (entry.top[k - 1]?.logprob as number));
        mass += Math.exp(alt.logprob);
      });
      assert.ok(mass <= 1 + 1e-9);
    });
  });

  it("sampled logprobs cover the kept tokens and sum to 1; they change no draw", async () => {
    const request: GenerationRequest = {
      ...greedy(prompt, steps),
      sampling: { temperature: 0.8, topK: 8, minP: 0.05, seed: 7n },
    };
    const without = await collect(engine, request);
    const withLogprobs = await collect(engine, { ...request, topLogprobs: 20 });
    assert.deepEqual(withLogprobs.tokenIds, without.tokenIds);
    for (const entry of logprobsOf(withLogprobs.events)) {
      assert.ok(entry.top.length >= 1 && entry.top.length <= 8, "top_k 8 bounds the list");
      const mass = entry.top.reduce((sum, alt) => sum + Math.exp(alt.logprob), 0);
      assert.ok(Math.abs(mass - 1) < 1e-9, `the kept tokens hold all the mass (${mass})`);
      const own = entry.top.find((alt) => alt.tokenId === entry.tokenId);
      assert.equal(own?.logprob, entry.logprob, "the drawn token is one of those kept");
    }
  });

  it("token strings of logprobs are each token decoded alone", async () => {
    const result = await collect(engine, { ...greedy(prompt, 8), topLogprobs: 1 });
    for (const entry of logprobsOf(result.events)) {
      const alone = await engine.detokenize(
        { model: "", tokenIds: [entry.tokenId], skipSpecialTokens: false },
        new AbortController().signal,
      );
      assert.equal(entry.token, alone.text);
    }
  });

  it("stop_token_ids end generation with reason stop, and the id's text is left out", async () => {
    // A token that first appears a few steps in.
    const at = plain.findIndex((id, i) => i >= 3 && plain.indexOf(id) === i);
    assert.ok(at >= 3, "the greedy output has a token that first appears after step 3");
    const stopId = plain[at] as number;
    const result = await collect(engine, { ...greedy(prompt, steps), stopTokenIds: [stopId] });
    assert.deepEqual(result.tokenIds, plain.slice(0, at + 1));
    assert.equal(result.finished.finishReason, "stop");
    assert.equal(result.finished.usage.completionTokens, at + 1);
    const before = await engine.detokenize(
      { model: "", tokenIds: plain.slice(0, at), skipSpecialTokens: true },
      new AbortController().signal,
    );
    assert.equal(result.text, before.text);
  });

  it("stop_token_ids outside the vocabulary are refused before admission", () => {
    assert.throws(
      () =>
        engine.generate(
          { ...greedy(prompt, 4), stopTokenIds: [3, 1_000_000] },
          new AbortController().signal,
        ),
      (e: unknown) =>
        e instanceof EngineError &&
        e.code === "invalid_argument" &&
        /^stop_token_ids\[1\] is 1000000/.test(e.message),
    );
  });
});

describe("Tokenize and Detokenize on the built-in model", () => {
  let engine: Engine;
  const signal = new AbortController().signal;

  before(async () => {
    ({ engine } = await startTestEngine([builtinSource()]));
  });
  after(() => engine.close());

  it("tokenize a prompt into the ids generation runs", async () => {
    const tokenized = await engine.tokenize(
      { model: "", input: { kind: "text", text: prompt } },
      signal,
    );
    const generated = await collect(engine, greedy(prompt, 1));
    assert.equal(tokenized.model, "parley-tiny");
    assert.equal(tokenized.tokenIds.length, generated.finished.usage.promptTokens);
    assert.equal(tokenized.tokens.length, tokenized.tokenIds.length);
    const folder = await readModelFolder(builtinSource().dir);
    assert.equal(tokenized.tokenIds[0], folder.bosTokenId, "text gets BOS, as generation does");
    const bare = await engine.tokenize(
      { model: "", input: { kind: "text", text: prompt }, addSpecialTokens: false },
      signal,
    );
    assert.deepEqual(bare.tokenIds, tokenized.tokenIds.slice(1));
  });

  it("tokenize a conversation as the chat template renders it", async () => {
    const messages = [{ role: "user", content: "Tell me a story." }];
    const tokenized = await engine.tokenize(
      { model: "", input: { kind: "messages", messages } },
      signal,
    );
    const generated = await collect(engine, {
      ...greedy("", 1),
      input: { kind: "messages", messages },
    });
    assert.equal(tokenized.tokenIds.length, generated.finished.usage.promptTokens);
    const content = await engine.tokenize(
      { model: "", input: { kind: "text", text: "Tell me a story." }, addSpecialTokens: false },
      signal,
    );
    assert.ok(tokenized.tokenIds.length > content.tokenIds.length, "the template adds tokens");
  });

  it("detokenize gives back the text, with or without special tokens", async () => {
    const { tokenIds } = await engine.tokenize(
      { model: "", input: { kind: "text", text: prompt } },
      signal,
    );
    const skipped = await engine.detokenize(
      { model: "", tokenIds, skipSpecialTokens: true },
      signal,
    );
    assert.equal(skipped.text, prompt);
    const kept = await engine.detokenize({ model: "", tokenIds, skipSpecialTokens: false }, signal);
    const { specialTokens } = await readModelFolder(builtinSource().dir);
    assert.equal(kept.text, `${specialTokens.bos_token}${prompt}`);
    const empty = await engine.detokenize(
      { model: "", tokenIds: [], skipSpecialTokens: true },
      signal,
    );
    assert.equal(empty.text, "");
  });

  it("refuse ids outside the vocabulary, unknown models and aborted callers", async () => {
    const vocabSize = engine.models()[0]?.vocabSize as number;
    await assert.rejects(
      engine.detokenize({ model: "", tokenIds: [5, vocabSize], skipSpecialTokens: false }, signal),
      (e: unknown) =>
        e instanceof EngineError &&
        e.code === "invalid_argument" &&
        e.message.startsWith(`token_ids[1] is ${vocabSize}, outside`),
    );
    await assert.rejects(
      engine.tokenize({ model: "nope", input: { kind: "text", text: "a" } }, signal),
      (e: unknown) => e instanceof EngineError && e.code === "not_found",
    );
    await assert.rejects(
      engine.tokenize(
        { model: "", input: { kind: "text", text: "a" } },
        AbortSignal.abort(new Error("gone")),
      ),
      (e: unknown) => e instanceof EngineError && e.code === "cancelled",
    );
  });
});
