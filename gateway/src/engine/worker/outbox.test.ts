import assert from "node:assert/strict";
import { test } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";
import type { FromWorker, FromWorkerBatch } from "../worker-protocol.js";
import { createOutbox } from "./outbox.js";

function text(id: number, token: number): FromWorker {
  return { type: "text", id, text: `t${token}`, tokenIds: [token] };
}

function recorder(intervalMs: number) {
  const sent: { at: number; batch: FromWorkerBatch }[] = [];
  const outbox = createOutbox({
    intervalMs,
    send: (batch) => sent.push({ at: performance.now(), batch }),
  });
  return { outbox, sent };
}

/** Lets queued microtasks run, as they would once a decode step's synchronous work ends. */
const afterStep = () => new Promise<void>((resolve) => setImmediate(resolve));

test("a step's messages leave together once its synchronous work ends", async () => {
  const { outbox, sent } = recorder(0);
  outbox.post({ type: "started", id: 1, promptTokens: 3, cachedTokens: 0 });
  outbox.post(text(1, 10));
  outbox.post(text(2, 20));
  assert.equal(sent.length, 0, "nothing leaves while the step still runs");
  await afterStep();
  assert.deepEqual(
    sent.map((s) => s.batch.length),
    [3],
  );
  outbox.post(text(1, 11));
  await afterStep();
  assert.equal(sent.length, 2, "with no interval, every step's text leaves at its end");
});

test("a fast stream's text waits for the interval and then leaves in order", async () => {
  const intervalMs = 80;
  const { outbox, sent } = recorder(intervalMs);
  outbox.post(text(1, 1));
  await afterStep();
  assert.equal(sent.length, 1, "the first text of a generation leaves at once");
  const firstAt = (sent[0] as { at: number }).at;
  for (let token = 2; token <= 4; token++) {
    outbox.post(text(1, token));
    await afterStep();
  }
  assert.equal(sent.length, 1, "later text within the interval waits");
  while (sent.length < 2) await sleep(5);
  const second = sent[1] as { at: number; batch: FromWorkerBatch };
  // Timers run on libuv's loop clock, cached once per turn: on a loaded machine it lags the real
  // clock by milliseconds, so a timer can fire that much early by performance.now(). Half the
  // interval still tells waiting from not waiting.
  assert.ok(second.at - firstAt >= intervalMs / 2, `left after ${second.at - firstAt} ms`);
  assert.deepEqual(
    second.batch.map((m) => (m.type === "text" ? m.tokenIds[0] : undefined)),
    [2, 3, 4],
  );
});

test("the end of a generation takes the waiting text with it at once", async () => {
  const { outbox, sent } = recorder(60_000);
  outbox.post(text(1, 1));
  await afterStep();
  outbox.post(text(1, 2));
  await afterStep();
  assert.equal(sent.length, 1);
  outbox.post({
    type: "finished",
    id: 1,
    finishReason: "length",
    text: "t3",
    tokenIds: [3],
    usage: { promptTokens: 1, completionTokens: 3 },
  });
  await afterStep();
  assert.deepEqual(
    sent.map((s) => s.batch.map((m) => m.type)),
    [["text"], ["text", "finished"]],
  );
});

test("text slower than the interval is not held", async () => {
  const { outbox, sent } = recorder(20);
  outbox.post(text(1, 1));
  await afterStep();
  await sleep(40);
  outbox.post(text(1, 2));
  await afterStep();
  assert.equal(sent.length, 2, "a token after a long step leaves at the end of that step");
});

test("a new generation's first text is not held behind another's interval", async () => {
  const { outbox, sent } = recorder(60_000);
  outbox.post(text(1, 1));
  await afterStep();
  outbox.post(text(1, 2));
  outbox.post(text(2, 1));
  await afterStep();
  assert.deepEqual(
    sent.map((s) => s.batch.length),
    [1, 2],
    "generation 2's first token leaves at once, with generation 1's waiting text",
  );
});

test("flush sends what waits at once, and nothing when nothing waits", async () => {
  const { outbox, sent } = recorder(60_000);
  outbox.post(text(1, 1));
  await afterStep();
  outbox.post(text(1, 2));
  outbox.flush();
  assert.equal(sent.length, 2, "the waiting text left without its timer");
  outbox.flush();
  await afterStep();
  assert.equal(sent.length, 2, "no empty batch");
});
