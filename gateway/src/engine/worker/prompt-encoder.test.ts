/**
 * The encoder's `decode` keeps what it decoded for windows of one or two ids: whatever it has
 * kept, and after it has cleared itself for being full, it answers exactly what the tokenizer
 * library decodes, with the built-in tokenizer (byte-level BPE) and the third-party Llama one
 * (SentencePiece with byte fallback, where a lone id's text differs from its text after another).
 */
import assert from "node:assert/strict";
import { test } from "node:test";
import { Tokenizer } from "@huggingface/tokenizers";
import { readModelFolder } from "../../models/model-folder.js";
import { builtinSource, sharedModelSkip, sharedSource } from "../../testing/model-fixtures.js";
import { createPromptEncoder } from "./prompt-encoder.js";

for (const [name, source, skip] of [
  ["the built-in tokenizer", builtinSource, undefined],
  ["the third-party Llama tokenizer", sharedSource, sharedModelSkip],
] as const) {
  test(`decoding short windows again, and past the kept windows' bound, matches the library with ${name}`, {
    skip,
  }, async () => {
    const folder = await readModelFolder(source().dir);
    const encoder = createPromptEncoder(folder);
    const library = new Tokenizer(folder.tokenizerJson, folder.tokenizerConfig);
    const expected = (ids: number[]) => library.decode(ids, { skip_special_tokens: true });
    const ids = encoder.encode({ kind: "text", text: "Grüße, 中文 🙂 and plain words\n\tagain" });
    const vocab = Math.min(folder.vocabSize ?? 256, 2000);
    // Enough distinct pairs (about 2^17) that the kept windows fill and clear at least once.
    const windows: number[][] = [];
    for (const id of ids) windows.push([id]);
    for (let a = 0; a < vocab && windows.length < 140_000; a++) {
      for (let b = 0; b < 70; b++) windows.push([a, (a * 7 + b * 13) % vocab]);
    }
    for (let i = 0; i + 1 < ids.length; i++) windows.push([ids[i] as number, ids[i + 1] as number]);
    for (const round of [1, 2]) {
      for (const window of windows) {
        assert.equal(encoder.decode(window), expected(window), `round ${round}: [${window}]`);
      }
    }
    // Longer windows are not kept, and still decode as the library does.
    assert.equal(encoder.decode(ids), expected(ids));
  });
}
