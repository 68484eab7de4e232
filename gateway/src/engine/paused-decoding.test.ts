/**
 * Credit-based backpressure moves a sequence out of the batch when its reader falls behind and
 * back in when it catches up; its cache travels with it. A sequence paused many times, while
 * other rows join, leave and keep decoding, must generate exactly what it generates alone.
 */
import assert from "node:assert/strict";
import { test } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";
import { builtinSource, collect, greedy, startTestEngine } from "../testing/model-fixtures.js";
import type { GenerationRequest } from "./engine.js";

const slowPrompt = "Once upon a time there was a small gateway that";
const fastPrompts = ["Hi", "Streaming tokens over HTTP/2 is", "Parley"];

test("a sequence paused and resumed on credit generates what it generates alone", async () => {
  const requests: GenerationRequest[] = [
    greedy(slowPrompt, 40),
    ...fastPrompts.map((p, i) => greedy(p, 20 + i * 7)),
  ];
  const alone = await startTestEngine([builtinSource()], { maxBatchSize: 1 });
  const expected: number[][] = [];
  try {
    for (const request of requests) expected.push((await collect(alone.engine, request)).tokenIds);
  } finally {
    await alone.engine.close();
  }

  // A window of two events: the slow reader's row leaves the batch every other token.
  const together = await startTestEngine([builtinSource()], { maxBatchSize: 8, creditWindow: 2 });
  try {
    const slow = (async () => {
      const ids: number[] = [];
      for await (const event of together.engine.generate(
        requests[0] as GenerationRequest,
        new AbortController().signal,
      )) {
        ids.push(...event.tokenIds);
        await sleep(3);
      }
      return ids;
    })();
    const fast = requests.slice(1).map(async (request, i) => {
      await sleep(2 * i);
      return (await collect(together.engine, request)).tokenIds;
    });
    const [slowIds, ...fastIds] = await Promise.all([slow, ...fast]);
    assert.deepEqual(slowIds, expected[0], "the paused sequence");
    for (const [i, ids] of fastIds.entries()) {
      assert.deepEqual(ids, expected[i + 1], `fast prompt ${i}`);
    }
  } finally {
    await together.engine.close();
  }
});
