/**
 * @module The generated folder: its files and their contents, byte-for-byte determinism, the
 * up-to-date check, and the option checks.
 */
import assert from "node:assert/strict";
import { mkdtemp, readdir, readFile, rm, truncate, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { Tokenizer } from "@huggingface/tokenizers";
import { resolveDecoderModelOptions, TINY_MODEL_OPTIONS } from "./decoder-model-options.js";
import { MARKER_FILE, writeDecoderModel } from "./write-decoder-model.js";

/** Small enough to write in milliseconds; external data exercises the streaming path. */
const SMALL_EXTERNAL = {
  hiddenSize: 32,
  layers: 2,
  vocabSize: 400,
  contextLength: 128,
  seed: 99,
  externalData: true,
} as const;

async function readJson(path: string): Promise<Record<string, unknown>> {
  return JSON.parse(await readFile(path, "utf8")) as Record<string, unknown>;
}

async function folderBytes(dir: string): Promise<Map<string, Buffer>> {
  const files = new Map<string, Buffer>();
  for (const name of (await readdir(dir)).sort()) files.set(name, await readFile(join(dir, name)));
  return files;
}

describe("writeDecoderModel", () => {
  let root: string;
  before(async () => {
    root = await mkdtemp(join(tmpdir(), "parley-write-"));
  });
  after(async () => {
    await rm(root, { recursive: true, force: true });
  });

  test("writes the Hugging Face folder layout with consistent config and tokenizer", async () => {
    const dir = join(root, "tiny");
    const result = await writeDecoderModel(dir, TINY_MODEL_OPTIONS);
    assert.equal(result.written, true);
    assert.deepEqual((await readdir(dir)).sort(), [
      "config.json",
      "generation_config.json",
      "model.onnx",
      MARKER_FILE,
      "special_tokens_map.json",
      "tokenizer.json",
      "tokenizer_config.json",
    ]);

    const config = await readJson(join(dir, "config.json"));
    assert.equal(config.model_type, "llama");
    assert.equal(config.torch_dtype, "float32");
    assert.equal(config.hidden_size, 64);
    assert.equal(config.num_hidden_layers, 2);
    assert.equal(config.num_attention_heads, 4);
    assert.equal(config.num_key_value_heads, 2);
    assert.equal(config.head_dim, 16);
    assert.equal(config.max_position_embeddings, 2048);
    assert.match(String(config.parley), /not meaningful/);

    const tokenizerConfig = await readJson(join(dir, "tokenizer_config.json"));
    const tokenizer = new Tokenizer(await readJson(join(dir, "tokenizer.json")), tokenizerConfig);
    assert.equal(tokenizer.get_vocab().size, config.vocab_size);
    assert.equal(tokenizer.token_to_id(String(tokenizerConfig.bos_token)), config.bos_token_id);
    assert.equal(tokenizer.token_to_id(String(tokenizerConfig.eos_token)), config.eos_token_id);
    assert.equal(tokenizer.token_to_id(String(tokenizerConfig.pad_token)), config.pad_token_id);
    assert.equal(tokenizerConfig.model_max_length, config.max_position_embeddings);

    const generation = await readJson(join(dir, "generation_config.json"));
    assert.deepEqual(generation.eos_token_id, [
      config.eos_token_id,
      tokenizer.token_to_id("<|im_end|>"),
    ]);
    assert.equal(generation.do_sample, true);
  });

  test("writes the same bytes every time", async () => {
    for (const options of [TINY_MODEL_OPTIONS, SMALL_EXTERNAL]) {
      const first = join(root, `same-${options.seed}-a`);
      const second = join(root, `same-${options.seed}-b`);
      await writeDecoderModel(first, options);
      await writeDecoderModel(second, options);
      assert.deepEqual(await folderBytes(first), await folderBytes(second));
    }
  });

  test("a different seed changes the weights but not the tokenizer", async () => {
    const a = join(root, "seed-a");
    const b = join(root, "seed-b");
    await writeDecoderModel(a, { ...SMALL_EXTERNAL, seed: 1 });
    await writeDecoderModel(b, { ...SMALL_EXTERNAL, seed: 2 });
    const [filesA, filesB] = [await folderBytes(a), await folderBytes(b)];
    assert.deepEqual(filesA.get("tokenizer.json"), filesB.get("tokenizer.json"));
    assert.notDeepEqual(filesA.get("model.onnx.data"), filesB.get("model.onnx.data"));
  });

  test("skips a complete, up-to-date folder and repairs an incomplete or stale one", async () => {
    const dir = join(root, "skip");
    assert.equal((await writeDecoderModel(dir, SMALL_EXTERNAL)).written, true);
    const original = await folderBytes(dir);
    assert.equal((await writeDecoderModel(dir, SMALL_EXTERNAL)).written, false);

    await truncate(join(dir, "model.onnx.data"), 100);
    assert.equal((await writeDecoderModel(dir, SMALL_EXTERNAL)).written, true);
    assert.deepEqual(await folderBytes(dir), original);

    await rm(join(dir, "tokenizer.json"));
    assert.equal((await writeDecoderModel(dir, SMALL_EXTERNAL)).written, true);
    assert.deepEqual(await folderBytes(dir), original);

    await writeFile(join(dir, MARKER_FILE), "{ not json");
    assert.equal((await writeDecoderModel(dir, SMALL_EXTERNAL)).written, true);

    // Other options: regenerated, and the inline model leaves no stale external data behind.
    assert.equal(
      (await writeDecoderModel(dir, { ...SMALL_EXTERNAL, externalData: false })).written,
      true,
    );
    assert.ok(!(await readdir(dir)).includes("model.onnx.data"));
  });
});

describe("resolveDecoderModelOptions", () => {
  test("derives Llama-like dimensions from the hidden size", () => {
    const big = resolveDecoderModelOptions({ hiddenSize: 512, layers: 8, vocabSize: 32000 });
    assert.deepEqual(
      [big.heads, big.kvHeads, big.headDim, big.intermediateSize, big.externalData],
      [8, 4, 64, 1376, true],
    );
    const tiny = resolveDecoderModelOptions();
    assert.deepEqual(
      [tiny.hiddenSize, tiny.layers, tiny.heads, tiny.kvHeads, tiny.headDim, tiny.externalData],
      [64, 2, 4, 2, 16, false],
    );
  });

  test("rejects dimensions that make no valid decoder", () => {
    const invalid = [
      { hiddenSize: 0 },
      { hiddenSize: 64, heads: 3 },
      { hiddenSize: 36, heads: 4 },
      { heads: 4, kvHeads: 3 },
      { vocabSize: 100 },
      { contextLength: 1 },
      { seed: -1 },
      { layers: 1.5 },
    ];
    for (const options of invalid) {
      assert.throws(() => resolveDecoderModelOptions(options), RangeError, JSON.stringify(options));
    }
  });
});
