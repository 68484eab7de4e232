/**
 * The batch is sized from the model's KV cache and free memory, `--max-batch` only caps it, and
 * every generation's wait for its first batch slot is observed in `parley_request_queue_time_seconds`.
 */
import assert from "node:assert/strict";
import { test } from "node:test";
import { builtinSource, collect, greedy, startTestEngine } from "../testing/model-fixtures.js";
import { autoBatchCeiling, batchSizeFor } from "./admission-queue.js";

const MiB = 2 ** 20;

test("the batch holds as many full-context sequences as a quarter of free memory fits", () => {
  // 16 KiB of KV per position over 2,048 positions: 32 MiB per sequence.
  const large = { kvBytesPerPosition: 16 * 1024, contextLength: 2048 };
  assert.equal(batchSizeFor({ ...large, cap: undefined, freeBytes: 4096 * MiB }), 32);
  assert.equal(batchSizeFor({ ...large, cap: 8, freeBytes: 4096 * MiB }), 8);
  assert.equal(batchSizeFor({ ...large, cap: undefined, freeBytes: 10 * MiB }), 1);
  assert.equal(
    batchSizeFor({
      kvBytesPerPosition: 64,
      contextLength: 512,
      cap: undefined,
      freeBytes: 4096 * MiB,
    }),
    autoBatchCeiling,
  );
});

test("64 concurrent generations all get a batch slot on the built-in model, none refused", async () => {
  // A queue of one: with the old fixed batch of 16, the 18th generation would be refused.
  const { engine, metrics } = await startTestEngine([builtinSource()], { maxQueue: 1 });
  try {
    const results = await Promise.all(
      Array.from({ length: 64 }, (_, i) => collect(engine, greedy(`stream ${i}`, 4))),
    );
    assert.ok(results.every((r) => r.finished.usage.completionTokens === 4));
    const text = await metrics.metrics();
    const count = /parley_request_queue_time_seconds_count\{model="parley-tiny"\} (\d+)/.exec(text);
    assert.equal(Number(count?.[1]), 64);
  } finally {
    await engine.close();
  }
});

test("with --max-batch as a cap, the generations beyond it wait and their wait is observed", async () => {
  const { engine, metrics } = await startTestEngine([builtinSource()], { maxBatchSize: 1 });
  try {
    await Promise.all([collect(engine, greedy("a", 30)), collect(engine, greedy("b", 30))]);
    const text = await metrics.metrics();
    const count = /parley_request_queue_time_seconds_count\{model="parley-tiny"\} (\d+)/.exec(text);
    const sum = /parley_request_queue_time_seconds_sum\{model="parley-tiny"\} ([\d.e-]+)/.exec(
      text,
    );
    assert.equal(Number(count?.[1]), 2);
    // The second waited for the whole of the first: more than nothing.
    assert.ok(Number(sum?.[1]) > 0);
  } finally {
    await engine.close();
  }
});
