/**
 * The decoder signatures real exports have, beyond the default one: graphs without
 * `position_ids` (positions from the mask), Optimum's merged decoders (`use_cache_branch`,
 * `decoder_model_merged.onnx`), and graphs that compute only the logits asked for
 * (`num_logits_to_keep` / `logits_to_keep`). Each is a generated graph of exactly that
 * signature, decoded greedily through the engine and compared with the no-cache reference; a
 * graph with an input the engine cannot feed is refused at load, by name.
 */
import assert from "node:assert/strict";
import { rename, rm } from "node:fs/promises";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import type { DecoderModelOptions } from "@parley/model-builder";
import { readModelFolder } from "../models/model-folder.js";
import type { ModelSource } from "../models/model-source.js";
import { decodeWithoutCache } from "../testing/decode-without-cache.js";
import {
  collect,
  generatedSource,
  greedy,
  randomTinyModel,
  startTestEngine,
} from "../testing/model-fixtures.js";

interface SignatureCase {
  readonly options: DecoderModelOptions;
  /** The file name the export gives its graph. */
  readonly graphFile?: string;
}

const signatures: Record<string, SignatureCase> = {
  "without position_ids": { options: { signature: { positionIds: false } } },
  "merged (use_cache_branch, decoder_model_merged.onnx)": {
    options: { signature: { useCacheBranch: true } },
    graphFile: "decoder_model_merged.onnx",
  },
  "with num_logits_to_keep": { options: { signature: { logitsToKeep: "num_logits_to_keep" } } },
  "with logits_to_keep, fp16": {
    options: { precision: "fp16", signature: { logitsToKeep: "logits_to_keep" } },
  },
  "merged, without position_ids, with num_logits_to_keep": {
    options: {
      signature: { positionIds: false, useCacheBranch: true, logitsToKeep: "num_logits_to_keep" },
    },
    graphFile: "decoder_model_merged.onnx",
  },
};

async function writeSignature(name: string, { options, graphFile }: SignatureCase) {
  // Random weights: attention that matters, so a wrong past or position changes the tokens.
  const source = await generatedSource(name.replace(/\W+/g, "-"), {
    ...randomTinyModel,
    ...options,
  });
  if (graphFile !== undefined) {
    await rename(join(source.dir, "model.onnx"), join(source.dir, graphFile));
  }
  return source;
}

for (const [name, signature] of Object.entries(signatures)) {
  describe(`a graph ${name}`, () => {
    let source: ModelSource;
    before(async () => {
      source = await writeSignature(name, signature);
    });
    after(async () => {
      await rm(source.dir, { recursive: true, force: true });
    });

    test("is found in its folder and decodes greedily as recomputing without a cache", async () => {
      const folder = await readModelFolder(source.dir);
      assert.equal(folder.graphPath, join(source.dir, signature.graphFile ?? "model.onnx"));
      const { engine } = await startTestEngine([source]);
      try {
        const eos = new Set(folder.eosTokenIds);
        for (const prompt of ["Hello", "The quick brown fox jumps over the lazy dog. Then"]) {
          const expected = await decodeWithoutCache(source, prompt, 24, eos);
          const { tokenIds } = await collect(engine, greedy(prompt, 24));
          assert.deepEqual(tokenIds, expected, `prompt ${JSON.stringify(prompt)}`);
        }
      } finally {
        await engine.close();
      }
    });

    test("decodes a left-padded, chunk-prefilled batch as each sequence alone", async () => {
      const prompts = ["Hi", "Once upon a time there was a small gateway that", "1, 2, 3,"];
      const alone = await startTestEngine([source], { maxBatchSize: 1 });
      const expected: number[][] = [];
      try {
        for (const prompt of prompts) {
          expected.push((await collect(alone.engine, greedy(prompt, 16))).tokenIds);
        }
      } finally {
        await alone.engine.close();
      }
      const together = await startTestEngine([source], { maxBatchSize: 8, prefillChunkTokens: 4 });
      try {
        const results = await Promise.all(
          prompts.map((prompt) => collect(together.engine, greedy(prompt, 16))),
        );
        assert.deepEqual(
          results.map((r) => r.tokenIds),
          expected,
        );
      } finally {
        await together.engine.close();
      }
    });
  });
}

describe("a graph with an input a decoder-only export does not have", () => {
  let source: ModelSource;
  before(async () => {
    source = await writeSignature("extra-input", {
      options: { signature: { extraInputs: ["token_type_ids", "encoder_hidden_states"] } },
    });
  });
  after(async () => {
    await rm(source.dir, { recursive: true, force: true });
  });

  test("is refused at load with a message naming the inputs", async () => {
    await assert.rejects(
      async () => {
        const { engine } = await startTestEngine([source]);
        await engine.close();
      },
      (error: Error) => {
        assert.match(error.message, /token_type_ids, encoder_hidden_states/);
        assert.match(error.message, /supported: input_ids, attention_mask/);
        return true;
      },
    );
  });
});
