/**
 * @module The built-in model's text through the real engine (tokenizer, chat template, ORT,
 * sampler, detokenizer): never a control character or U+FFFD, whatever the prompt and seed, and
 * made of the corpus's words, so a newcomer's first reply does not look like a bug.
 */
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { after, before, test } from "node:test";
import { builtinSource, collect, repoRoot, startTestEngine } from "../testing/model-fixtures.js";
import type { Engine, GenerationRequest, PromptInput } from "./engine.js";

const PROMPTS: readonly PromptInput[] = [
  { kind: "text", text: "" },
  { kind: "text", text: "Hello" },
  { kind: "text", text: "日本語 🙂 naïve \u0000 \uFFFD é" },
  { kind: "messages", messages: [{ role: "user", content: "Tell me about Mr. Darcy." }] },
];
const SEEDS = 100;
const TOKENS = 64;

/** A control character (the model emits no newline or tab either) or the replacement character. */
const BROKEN = /[\p{Cc}\uFFFD]/u;

const corpusWords = new Set(
  readFileSync(join(repoRoot, "model-builder/corpus/pride-and-prejudice-1-20.txt"), "utf8")
    .toLowerCase()
    .match(/\p{L}+/gu),
);

let engine: Engine;
before(async () => {
  ({ engine } = await startTestEngine([builtinSource()]));
});
after(async () => {
  await engine?.close();
});

function request(input: PromptInput, seed: bigint | undefined): GenerationRequest {
  return {
    model: "",
    input,
    maxTokens: TOKENS,
    sampling: seed === undefined ? { temperature: 0 } : { temperature: 0.8, seed },
    stop: [],
  };
}

/** Every sampled (seeds 0..SEEDS-1) and greedy generation of `input`. */
async function generations(input: PromptInput): Promise<string[]> {
  const seeds = [undefined, ...Array.from({ length: SEEDS }, (_, i) => BigInt(i))];
  const texts: string[] = [];
  // A batch's worth at a time, as concurrent clients would send them.
  for (let i = 0; i < seeds.length; i += 16) {
    const batch = seeds.slice(i, i + 16).map((seed) => collect(engine, request(input, seed)));
    for (const { text } of await Promise.all(batch)) texts.push(text);
  }
  return texts;
}

test("no generation of the built-in model holds a control character or U+FFFD", async () => {
  for (const input of PROMPTS) {
    for (const text of await generations(input)) {
      assert.doesNotMatch(text, BROKEN, `${JSON.stringify(input)} → ${JSON.stringify(text)}`);
    }
  }
});

test("the built-in model writes the corpus's words, and ends some replies itself", async () => {
  let words = 0;
  let known = 0;
  let ended = 0;
  const input = PROMPTS[3] as PromptInput;
  const seeds = Array.from({ length: 32 }, (_, i) => BigInt(i));
  const results = await Promise.all(seeds.map((seed) => collect(engine, request(input, seed))));
  for (const { text, finished } of results) {
    for (const word of text.toLowerCase().match(/\p{L}+/gu) ?? []) {
      words++;
      if (corpusWords.has(word)) known++;
    }
    if (finished.finishReason === "stop") ended++;
  }
  assert.ok(words > 32 * 10, `${words} words`);
  assert.ok(known / words > 0.95, `${known} of ${words} words are the corpus's`);
  assert.ok(ended > 0, "some replies end at <|im_end|> before the token limit");
});
