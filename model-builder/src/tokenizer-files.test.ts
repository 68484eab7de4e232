/**
 * @module The generated tokenizer through the libraries the engine uses: @huggingface/tokenizers
 * for encoding and decoding, @huggingface/jinja for the chat template.
 */
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { Template } from "@huggingface/jinja";
import { Tokenizer } from "@huggingface/tokenizers";
import { BYTE_TO_CHAR } from "./byte-level-bpe.js";
import {
  createTokenizerFiles,
  MIN_VOCAB_SIZE,
  SPECIAL_TOKENS,
  SpecialTokenId,
} from "./tokenizer-files.js";

const TEXTS = [
  "Hello, world! The quick brown fox jumps over the lazy dog.",
  "  leading spaces, tabs\tand\nnew lines  \n",
  "Crème brûlée in Zürich, déjà vu, naïve señor, façade.",
  "中文字符和日本語のテキスト：你好，世界！",
  "Emoji 🙂👍🎉 and a family 👨‍👩‍👧 with a flag 🇫🇷.",
  "Numbers 3.14159, 2024-06-01, and code: const x = a[i] ?? 0;",
];

function tokenizerFor(vocabSize: number) {
  const files = createTokenizerFiles({ vocabSize, contextLength: 2048 });
  return { files, tokenizer: new Tokenizer(files.tokenizerJson, files.tokenizerConfig) };
}

/** Checks that the vocabulary has ids 0..size-1 and that every merge joins two earlier tokens. */
function assertValidBpe(files: ReturnType<typeof createTokenizerFiles>, vocabSize: number) {
  const model = files.tokenizerJson.model as { vocab: Record<string, number>; merges: string[] };
  const ids = Object.values(model.vocab).sort((a, b) => a - b);
  assert.deepEqual(
    ids,
    Array.from({ length: vocabSize }, (_, i) => i),
  );
  assert.equal(model.merges.length, vocabSize - MIN_VOCAB_SIZE);
  for (const [rank, merge] of model.merges.entries()) {
    const [left, right] = merge.split(" ") as [string, string];
    const merged = model.vocab[left + right];
    assert.equal(merged, MIN_VOCAB_SIZE + rank, `merge ${rank} "${merge}" makes the next token`);
    assert.ok((model.vocab[left] as number) < merged, `"${left}" exists before merge ${rank}`);
    assert.ok((model.vocab[right] as number) < merged, `"${right}" exists before merge ${rank}`);
  }
}

describe("built-in tokenizer", () => {
  const { files, tokenizer } = tokenizerFor(512);

  test("is a valid byte-level BPE of exactly the requested size", () => {
    assertValidBpe(files, 512);
    assert.equal(tokenizer.get_vocab().size, 512);
    BYTE_TO_CHAR.forEach((char, byte) => {
      assert.equal(tokenizer.token_to_id(char), SPECIAL_TOKENS.length + byte);
    });
    SPECIAL_TOKENS.forEach((token, id) => {
      assert.equal(tokenizer.token_to_id(token), id);
    });
  });

  test("round-trips ASCII, accented, CJK and emoji text, adding BOS", () => {
    for (const text of TEXTS) {
      const { ids } = tokenizer.encode(text);
      assert.equal(ids[0], SpecialTokenId.bos, text);
      assert.ok(ids.length > 1 && ids.length < new TextEncoder().encode(text).length + 1, text);
      assert.equal(tokenizer.decode(ids, { skip_special_tokens: true }), text);
      assert.equal(tokenizer.decode(ids.slice(1)), text);
    }
  });

  test("merges common words and keeps common multi-byte characters whole", () => {
    for (const piece of [" the", " and", "é", "ü", "中", "🙂"]) {
      const { ids } = tokenizer.encode(piece, { add_special_tokens: false });
      assert.equal(ids.length, 1, `"${piece}" is one token, got ${ids.length}`);
    }
  });

  test("splits a rare character into byte tokens that decode to U+FFFD until complete", () => {
    const { ids } = tokenizer.encode("龍", { add_special_tokens: false });
    assert.equal(ids.length, 3, "three UTF-8 bytes, three byte tokens");
    assert.equal(tokenizer.decode(ids.slice(0, 1)), "\uFFFD");
    assert.ok(tokenizer.decode(ids.slice(0, 2)).endsWith("\uFFFD"));
    assert.equal(tokenizer.decode(ids), "龍");
  });

  test("encodes chat special tokens as single tokens", () => {
    const { ids } = tokenizer.encode("<|im_start|>user\nHi<|im_end|>\n", {
      add_special_tokens: false,
    });
    assert.equal(ids[0], SpecialTokenId.imStart);
    assert.ok(ids.includes(SpecialTokenId.imEnd));
    assert.equal(tokenizer.decode(ids, { skip_special_tokens: true }), "user\nHi\n");
  });

  test("rejects a vocabulary smaller than the specials and bytes", () => {
    assert.throws(
      () => createTokenizerFiles({ vocabSize: MIN_VOCAB_SIZE - 1, contextLength: 16 }),
      RangeError,
    );
  });
});

describe("large-vocabulary tokenizer", () => {
  test("fills 5000 tokens with valid merges and still round-trips", () => {
    const { files, tokenizer } = tokenizerFor(5000);
    assertValidBpe(files, 5000);
    assert.equal(tokenizer.get_vocab().size, 5000);
    for (const text of TEXTS) {
      const { ids } = tokenizer.encode(text);
      assert.equal(tokenizer.decode(ids, { skip_special_tokens: true }), text);
    }
  });
});

describe("chat template", () => {
  const { files } = tokenizerFor(512);
  const template = new Template(files.tokenizerConfig.chat_template as string);
  const render = (messages: { role: string; content: string }[], addGenerationPrompt = true) =>
    template.render({
      messages,
      bos_token: files.tokenizerConfig.bos_token,
      eos_token: files.tokenizerConfig.eos_token,
      add_generation_prompt: addGenerationPrompt,
    });

  test("renders ChatML with an optional system message and a generation prompt", () => {
    assert.equal(
      render([
        { role: "system", content: "Be brief." },
        { role: "user", content: "Hi" },
        { role: "assistant", content: "Hello!" },
        { role: "user", content: "Bye" },
      ]),
      "<|bos|><|im_start|>system\nBe brief.<|im_end|>\n" +
        "<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\nHello!<|im_end|>\n" +
        "<|im_start|>user\nBye<|im_end|>\n<|im_start|>assistant\n",
    );
    assert.equal(
      render([{ role: "user", content: "Hi" }], false),
      "<|bos|><|im_start|>user\nHi<|im_end|>\n",
    );
  });

  test("rejects roles that do not alternate user/assistant", () => {
    const cases = [
      [
        { role: "user", content: "a" },
        { role: "user", content: "b" },
      ],
      [{ role: "assistant", content: "a" }],
      [
        { role: "user", content: "a" },
        { role: "system", content: "b" },
      ],
      [
        { role: "system", content: "a" },
        { role: "system", content: "b" },
      ],
    ];
    for (const messages of cases) {
      assert.throws(() => render(messages), /roles must alternate/, JSON.stringify(messages));
    }
  });
});
