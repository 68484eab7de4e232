/**
 * Each way a generation ends gives its own finish reason and the right text: EOS (every id the
 * config names), a stop string (never returned, never leaked in part), max_tokens, and the
 * context length; a prompt that does not fit is refused.
 */
import assert from "node:assert/strict";
import { test } from "node:test";
import {
  builtinSource,
  collect,
  greedy,
  modelVariant,
  startTestEngine,
} from "../testing/model-fixtures.js";
import { EngineError } from "./engine-error.js";

const prompt = "The quick brown fox";

test("max_tokens ends a generation with finish reason length", async () => {
  const { engine } = await startTestEngine([builtinSource()]);
  try {
    const result = await collect(engine, { ...greedy(prompt, 3), model: "parley-tiny" });
    assert.equal(result.finished.finishReason, "length");
    assert.equal(result.finished.usage.completionTokens, 3);
    assert.equal(result.tokenIds.length, 3);
  } finally {
    await engine.close();
  }
});

test("an id listed as eos_token_id in config.json ends a generation with finish reason stop", async () => {
  const reference = await startTestEngine([builtinSource()]);
  const { tokenIds } = await collect(reference.engine, greedy(prompt, 8));
  await reference.engine.close();
  const fifth = tokenIds[4] as number;
  const eosModel = await modelVariant(builtinSource(), (config) => {
    config.eos_token_id = [2, fifth];
  });
  const { engine } = await startTestEngine([eosModel]);
  try {
    const result = await collect(engine, greedy(prompt, 8));
    assert.equal(result.finished.finishReason, "stop");
    assert.deepEqual(result.tokenIds, tokenIds.slice(0, tokenIds.indexOf(fifth) + 1));
  } finally {
    await engine.close();
  }
});

test("a stop string ends the text right before it, and no part of it is streamed", async () => {
  const { engine } = await startTestEngine([builtinSource()]);
  try {
    // Find greedy text long enough to pick a stop string from its middle.
    const full = await collect(engine, { ...greedy("Once upon a time", 60) });
    const text = full.text.replace(/\uFFFD/g, "");
    assert.ok(
      text.length >= 8,
      `greedy text too short to pick a stop string: ${JSON.stringify(full.text)}`,
    );
    const at = Math.floor(full.text.length / 2);
    const stop = full.text.slice(at, at + 3);
    const expected = full.text.slice(0, full.text.indexOf(stop));
    const stopped = await collect(engine, {
      ...greedy("Once upon a time", 60),
      stop: ["zzzz-never", stop],
    });
    assert.equal(stopped.finished.finishReason, "stop_sequence");
    assert.equal(stopped.text, expected);
    // Streamed pieces never contained the stop string's text beyond the returned prefix.
    let streamed = "";
    for (const event of stopped.events) {
      streamed += event.text;
      assert.ok(expected.startsWith(streamed), "a piece of the stop string was streamed");
    }
  } finally {
    await engine.close();
  }
});

test("a full context ends a generation with finish reason context_length", async () => {
  const short = await modelVariant(builtinSource(), (config) => {
    config.max_position_embeddings = 12;
  });
  const { engine } = await startTestEngine([short]);
  try {
    const result = await collect(engine, {
      ...greedy("Hi", 100),
      sampling: { temperature: 1, seed: 7n },
    });
    assert.equal(result.finished.finishReason, "context_length");
    assert.equal(result.finished.usage.promptTokens + result.finished.usage.completionTokens, 12);
    await assert.rejects(
      collect(engine, greedy("This prompt is far longer than twelve tokens of context", 5)),
      (error: unknown) => error instanceof EngineError && error.code === "invalid_argument",
    );
  } finally {
    await engine.close();
  }
});
