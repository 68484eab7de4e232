import assert from "node:assert/strict";
import { test } from "node:test";
import { StopMatcher } from "./stop-matcher.js";

test("text that may start a stop string is held back until it cannot", () => {
  const matcher = new StopMatcher(["</end>"]);
  assert.deepEqual(matcher.push("Hello </"), { text: "Hello ", stopped: false });
  assert.deepEqual(matcher.push("e"), { text: "", stopped: false });
  assert.deepEqual(matcher.push("x"), { text: "</ex", stopped: false });
  assert.deepEqual(matcher.push(" ok </en"), { text: " ok ", stopped: false });
  assert.deepEqual(matcher.push("d> tail"), { text: "", stopped: true });
});

test("the earliest of several stop strings wins, across pieces", () => {
  const matcher = new StopMatcher(["world", "lo w"]);
  // "l" could begin "lo w", so it waits.
  assert.deepEqual(matcher.push("hel"), { text: "he", stopped: false });
  assert.deepEqual(matcher.push("lo wor"), { text: "l", stopped: true });
});

test("held text is released by flush when generation ends otherwise", () => {
  const matcher = new StopMatcher(["STOP"]);
  assert.deepEqual(matcher.push("abc ST"), { text: "abc ", stopped: false });
  assert.equal(matcher.flush(), "ST");
});

test("without stop strings text passes straight through", () => {
  assert.deepEqual(new StopMatcher([]).push("anything"), { text: "anything", stopped: false });
});

test("multi-byte stop strings are matched whole", () => {
  const matcher = new StopMatcher(["🙂!"]);
  assert.deepEqual(matcher.push("ok 🙂"), { text: "ok ", stopped: false });
  assert.deepEqual(matcher.push("!"), { text: "", stopped: true });
});
