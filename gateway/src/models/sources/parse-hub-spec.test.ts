import assert from "node:assert/strict";
import { test } from "node:test";
import { HubModelError } from "./hub-model-error.js";
import { parseHubSpec } from "./parse-hub-spec.js";

test("parseHubSpec reads the repo and defaults the revision to main", () => {
  assert.deepEqual(parseHubSpec("hf:onnx-community/Qwen2.5-0.5B-Instruct"), {
    repo: "onnx-community/Qwen2.5-0.5B-Instruct",
    revision: "main",
  });
});

test("parseHubSpec reads a branch, a tag path or a commit after @", () => {
  assert.deepEqual(parseHubSpec("hf:org/name@v1.0"), { repo: "org/name", revision: "v1.0" });
  assert.deepEqual(parseHubSpec("hf:org/name@refs/pr/1"), {
    repo: "org/name",
    revision: "refs/pr/1",
  });
  const commit = "0123456789abcdef0123456789abcdef01234567";
  assert.equal(parseHubSpec(`hf:org/name@${commit}`).revision, commit);
});

test("parseHubSpec rejects malformed specs with an invalid HubModelError", () => {
  for (const spec of [
    "org/name",
    "hf:",
    "hf:name-without-org",
    "hf:a/b/c",
    "hf:org/na me",
    "hf:org/name@",
    "hf:org/name@../../etc",
    "hf:org/name@/abs",
    "hf:org--x/name",
    "hf:-org/name",
  ]) {
    assert.throws(
      () => parseHubSpec(spec),
      (error: unknown) =>
        error instanceof HubModelError && error.reason === "invalid" && error.message.length > 0,
      spec,
    );
  }
});

test("parseHubSpec names the expected form in its message", () => {
  assert.throws(() => parseHubSpec("org/name"), /hf:org\/name/);
});
