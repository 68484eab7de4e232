/**
 * Streaming text that contains multi-byte characters never yields half a character, and the
 * pieces add up to exactly what decoding all ids at once gives, with the real tokenizers of the
 * built-in model (byte-level BPE) and of the third-party Llama model (SentencePiece, byte fallback).
 */
import assert from "node:assert/strict";
import { test } from "node:test";
import { readModelFolder } from "../../models/model-folder.js";
import { builtinSource, sharedModelSkip, sharedSource } from "../../testing/model-fixtures.js";
import { IncrementalDetokenizer } from "./incremental-detokenizer.js";
import { createPromptEncoder } from "./prompt-encoder.js";

const samples = [
  "Grüße aus Köln, naïve café — 中文字符 and emoji 🙂🚀👩‍👩‍👧 with ZWJ, 𝔘𝔫𝔦𝔠𝔬𝔡𝔢!",
  "  leading spaces, tabs\tand\nnewlines 日本語のテキスト 🇫🇷🇯🇵",
];

/** A lone surrogate means a character was split between two pieces. */
function isWellFormed(text: string): boolean {
  return !/[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/.test(text);
}

for (const [name, source, skip] of [
  ["the built-in tokenizer", builtinSource, undefined],
  ["the third-party Llama tokenizer", sharedSource, sharedModelSkip],
] as const) {
  test(`incremental decoding of multi-byte text with ${name} is whole and exact`, {
    skip,
  }, async () => {
    const encoder = createPromptEncoder(await readModelFolder(source().dir));
    for (const sample of samples) {
      const ids = encoder.encode({ kind: "text", text: sample });
      const detokenizer = new IncrementalDetokenizer(encoder.decode);
      const pieces = ids.map((id) => detokenizer.push(id));
      pieces.push(detokenizer.flush());
      for (const piece of pieces) {
        assert.ok(isWellFormed(piece), `split character in ${JSON.stringify(piece)}`);
        assert.ok(!piece.includes("\uFFFD"), `replacement character in ${JSON.stringify(piece)}`);
      }
      assert.equal(pieces.join(""), encoder.decode(ids));
      assert.ok(pieces.filter((p) => p === "").length > 0, "some token completed no character");
    }
  });
}

test("random byte tokens decode to the same text streamed as all at once", async () => {
  // The built-in model emits arbitrary byte tokens; incomplete sequences must come out exactly
  // as a one-shot decode renders them.
  const encoder = createPromptEncoder(await readModelFolder(builtinSource().dir));
  const ids = [5 + 0xe4, 5 + 0xb8, 40, 5 + 0xf0, 5 + 0x9f, 5 + 0x99, 5 + 0x82, 5 + 0xe4, 41];
  const detokenizer = new IncrementalDetokenizer(encoder.decode);
  const streamed = ids.map((id) => detokenizer.push(id)).join("") + detokenizer.flush();
  assert.equal(streamed, encoder.decode(ids));
  assert.ok(isWellFormed(streamed));
});
