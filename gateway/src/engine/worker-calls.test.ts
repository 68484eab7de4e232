/**
 * @module How a call to the worker ends: with the answer carrying its id, with the worker's
 * failure, with the caller's abort (a late answer is then dropped), or with the worker's death.
 */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { EngineError } from "./engine-error.js";
import { WorkerCalls } from "./worker-calls.js";

const abortError = (reason: unknown) =>
  new EngineError("cancelled", "the caller cancelled", { cause: reason });
const live = () => new AbortController().signal;

describe("WorkerCalls", () => {
  it("resolves each call with the answer carrying its id, and sends it once", async () => {
    const calls = new WorkerCalls();
    const sent: number[] = [];
    const first = calls.call(1, "tokenized", live(), abortError, () => sent.push(1));
    const second = calls.call(2, "detokenized", live(), abortError, () => sent.push(2));
    assert.equal(calls.settle({ type: "detokenized", id: 2, text: "hi" }), true);
    assert.equal(
      calls.settle({ type: "tokenized", id: 1, tokenIds: [5, 6], tokens: ["a", "b"] }),
      true,
    );
    assert.deepEqual(await first, { tokenIds: [5, 6], tokens: ["a", "b"] });
    assert.deepEqual(await second, { text: "hi" });
    assert.deepEqual(sent, [1, 2]);
  });

  it("leaves messages of generations to their owner", () => {
    const calls = new WorkerCalls();
    assert.equal(calls.settle({ type: "released", id: 9, completionTokens: 0 }), false);
    assert.equal(
      calls.settle({
        type: "ready",
        facts: {
          contextLength: 8,
          hasChatTemplate: false,
          vocabSize: 8,
          dtype: "float32",
          kvBytesPerToken: 256,
        },
      }),
      false,
    );
  });

  it("rejects with the worker's failure, code and message", async () => {
    const calls = new WorkerCalls();
    const call = calls.call(3, "detokenized", live(), abortError, () => {});
    calls.settle({ type: "failed", id: 3, code: "invalid_argument", message: "token id 9 is not" });
    await assert.rejects(
      call,
      (e: unknown) =>
        e instanceof EngineError &&
        e.code === "invalid_argument" &&
        e.message === "token id 9 is not",
    );
  });

  it("rejects at once when the caller aborts, and drops the late answer", async () => {
    const calls = new WorkerCalls();
    const controller = new AbortController();
    const call = calls.call(4, "tokenized", controller.signal, abortError, () => {});
    controller.abort(new Error("gone"));
    await assert.rejects(call, (e: unknown) => e instanceof EngineError && e.code === "cancelled");
    assert.equal(calls.settle({ type: "tokenized", id: 4, tokenIds: [], tokens: [] }), false);
    let sent = false;
    await assert.rejects(
      calls.call(5, "tokenized", controller.signal, abortError, () => {
        sent = true;
      }),
      (e: unknown) => e instanceof EngineError && e.code === "cancelled",
    );
    assert.equal(sent, false, "an aborted caller's call is never sent");
  });

  it("rejects every waiting call when the worker dies", async () => {
    const calls = new WorkerCalls();
    const a = calls.call(6, "tokenized", live(), abortError, () => {});
    const b = calls.call(7, "detokenized", live(), abortError, () => {});
    calls.failAll(new EngineError("unavailable", "model restarting"));
    for (const call of [a, b]) {
      await assert.rejects(
        call,
        (e: unknown) => e instanceof EngineError && e.code === "unavailable",
      );
    }
    assert.equal(calls.settle({ type: "detokenized", id: 7, text: "" }), false);
  });
});
