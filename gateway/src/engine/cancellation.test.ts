/**
 * A caller who goes away stops the engine: after cancellation the completion-token counter stops
 * growing, generations in flight return to zero, and the cancellation is counted.
 */
import assert from "node:assert/strict";
import { test } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";
import type { Registry } from "prom-client";
import { builtinSource, greedy, metricValue, startTestEngine } from "../testing/model-fixtures.js";
import { EngineError } from "./engine-error.js";

const model = { model: "parley-tiny" };
/** Waits until no generation runs, then returns how many were cancelled. */
async function cancellationsOnceIdle(metrics: Registry): Promise<number> {
  while ((await metricValue(metrics, "parley_generations_in_flight", model)) !== 0) await sleep(5);
  return metricValue(metrics, "parley_generations_total", { ...model, finish_reason: "cancelled" });
}

/** Never ends by itself: the built-in (bigram) model's greedy text cycles without <|im_end|>. */
const long = greedy("Tell me a long story", 100_000);

test("aborting the signal stops generation within a step and frees the slot", async () => {
  const { engine, metrics } = await startTestEngine([builtinSource()]);
  try {
    const controller = new AbortController();
    const generation = engine.generate(long, controller.signal);
    let received = 0;
    // A fast stream's tokens arrive a few per event (the worker's stream interval).
    let atAbort: number | undefined;
    await assert.rejects(
      (async () => {
        for await (const event of generation) {
          received += event.tokenIds.length;
          if (received >= 5 && atAbort === undefined) {
            atAbort = received;
            controller.abort();
          }
        }
      })(),
      (error: unknown) => error instanceof EngineError && error.code === "cancelled",
    );
    // The worker confirms the release asynchronously; wait for it, then watch the counter.
    assert.equal(await cancellationsOnceIdle(metrics), 1);
    const after = await metricValue(metrics, "parley_completion_tokens_total", model);
    await sleep(100);
    assert.equal(await metricValue(metrics, "parley_completion_tokens_total", model), after);
    assert.ok(
      after < (atAbort ?? 0) + 20,
      `the worker ran on after cancel: ${after} tokens counted, ${atAbort} at the abort`,
    );
  } finally {
    await engine.close();
  }
});

test("a consumer that stops iterating cancels its generation", async () => {
  const { engine, metrics } = await startTestEngine([builtinSource()]);
  try {
    for await (const event of engine.generate(long, new AbortController().signal)) {
      if (event.tokenIds.length > 0) break;
    }
    assert.equal(await cancellationsOnceIdle(metrics), 1);
  } finally {
    await engine.close();
  }
});

test("a deadline signal ends the generation with deadline_exceeded", async () => {
  const { engine } = await startTestEngine([builtinSource()]);
  try {
    const generation = engine.generate(long, AbortSignal.timeout(50));
    await assert.rejects(
      (async () => {
        for await (const _ of generation) await sleep(1);
      })(),
      (error: unknown) => error instanceof EngineError && error.code === "deadline_exceeded",
    );
  } finally {
    await engine.close();
  }
});

test("a slow reader pauses its own sequence instead of buffering without bound", async () => {
  const { engine, metrics } = await startTestEngine([builtinSource()], { creditWindow: 4 });
  try {
    const controller = new AbortController();
    const iterator = engine.generate(long, controller.signal)[Symbol.asyncIterator]();
    const first = await iterator.next();
    // One event, which may carry a few tokens if they arrived together.
    const taken = first.done === true ? 0 : first.value.tokenIds.length;
    await sleep(200);
    const produced = await metricValue(metrics, "parley_completion_tokens_total", model);
    // What the reader took plus the four credits outstanding (and the one slack the check always
    // had): nothing more until the reader reads.
    assert.ok(
      produced <= taken + 4 + 1,
      `the worker produced ${produced} tokens for a reader that took ${taken}`,
    );
    await iterator.next();
    await sleep(50);
    assert.ok((await metricValue(metrics, "parley_completion_tokens_total", model)) > produced);
    controller.abort();
    await iterator.return?.();
  } finally {
    await engine.close();
  }
});
