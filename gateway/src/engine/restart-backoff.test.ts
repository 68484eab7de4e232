/**
 * A crashing worker is restarted after 100 ms, then after twice as long each time it crashes
 * again, never more than 10 s; a worker that served 30 s before it crashed starts over at 100 ms.
 */
import assert from "node:assert/strict";
import { test } from "node:test";
import { createRestartBackoff } from "./restart-backoff.js";

test("repeated crashes double the delay up to the cap", () => {
  const next = createRestartBackoff();
  const delays = Array.from({ length: 10 }, () => next(0));
  assert.deepEqual(delays, [100, 200, 400, 800, 1600, 3200, 6400, 10_000, 10_000, 10_000]);
});

test("a worker that served long enough resets the delay; a short run does not", () => {
  const next = createRestartBackoff({ initialMs: 10, maxMs: 1000, stableMs: 5000 });
  assert.deepEqual([next(0), next(4999), next(100)], [10, 20, 40]);
  assert.equal(next(5000), 10);
  assert.equal(next(0), 20);
});
