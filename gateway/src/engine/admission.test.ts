/**
 * The engine refuses what it cannot serve with a precise code, at once: unknown models, a full
 * queue, messages a chat template rejects, messages to a model without a template.
 */
import assert from "node:assert/strict";
import { test } from "node:test";
import {
  builtinSource,
  collect,
  greedy,
  sharedModelSkip,
  sharedSource,
  startTestEngine,
} from "../testing/model-fixtures.js";
import type { GenerationRequest } from "./engine.js";
import { EngineError, type EngineErrorCode } from "./engine-error.js";

/** A greedy chat request: `[role, content]` pairs in order. */
function chat(...turns: [string, string][]): GenerationRequest {
  return {
    ...greedy("", 4),
    input: { kind: "messages", messages: turns.map(([role, content]) => ({ role, content })) },
  };
}

function hasCode(code: EngineErrorCode) {
  return (error: unknown) => error instanceof EngineError && error.code === code;
}

test("an unknown model is not_found and lists the loaded ones", async () => {
  const { engine } = await startTestEngine([builtinSource()]);
  try {
    assert.throws(
      () => engine.generate(greedy("x", 1, "no-such-model"), new AbortController().signal),
      (error: unknown) => hasCode("not_found")(error) && String(error).includes("parley-tiny"),
    );
  } finally {
    await engine.close();
  }
});

test("beyond the batch and the queue, requests are refused with resource_exhausted", async () => {
  const { engine } = await startTestEngine([builtinSource()], { maxBatchSize: 1, maxQueue: 1 });
  try {
    const controller = new AbortController();
    const long = greedy("a", 100_000);
    const running = collect(engine, long, controller.signal).catch((e: unknown) => e);
    const queued = collect(engine, long, controller.signal).catch((e: unknown) => e);
    assert.throws(() => engine.generate(long, controller.signal), hasCode("resource_exhausted"));
    controller.abort();
    assert.ok(hasCode("cancelled")(await running));
    assert.ok(hasCode("cancelled")(await queued));
    // Capacity comes back once they are gone.
    const after = await collect(engine, greedy("a", 2));
    assert.equal(after.finished.usage.completionTokens, 2);
  } finally {
    await engine.close();
  }
});

test("messages are rendered with the chat template; a rejected conversation is invalid_argument", async () => {
  const { engine } = await startTestEngine([builtinSource()]);
  try {
    const ok = await collect(engine, chat(["user", "Hello!"]));
    assert.ok(ok.finished.usage.promptTokens > 3);
    await assert.rejects(
      collect(engine, chat(["user", "one"], ["user", "two"])),
      (error: unknown) => hasCode("invalid_argument")(error) && /alternate/i.test(String(error)),
    );
  } finally {
    await engine.close();
  }
});

test("the third-party model's Llama-2 template rejects non-alternating roles", {
  skip: sharedModelSkip,
}, async () => {
  const { engine } = await startTestEngine([sharedSource()]);
  try {
    await assert.rejects(
      collect(engine, chat(["assistant", "first"], ["user", "second"])),
      hasCode("invalid_argument"),
    );
  } finally {
    await engine.close();
  }
});

test("several models load side by side; the first is the default", {
  skip: sharedModelSkip,
}, async () => {
  const { engine } = await startTestEngine([builtinSource(), sharedSource()]);
  try {
    const [first, second] = engine.models();
    assert.equal(first?.id, "parley-tiny");
    assert.equal(first?.isDefault, true);
    assert.equal(first?.dtype, "float32");
    assert.equal(second?.id, "tiny-random-llama");
    assert.equal(second?.dtype, "float16");
    assert.equal(second?.vocabSize, 32000);
    const byDefault = await collect(engine, greedy("Hello", 5));
    const named = await collect(engine, greedy("Hello", 5, "parley-tiny"));
    assert.deepEqual(byDefault.tokenIds, named.tokenIds);
    const other = await collect(engine, greedy("Hello", 5, "tiny-random-llama"));
    assert.notDeepEqual(other.tokenIds, named.tokenIds);
  } finally {
    await engine.close();
  }
});
