/**
 * What a `--model` value resolves to, as far as clients see it: a folder model's description is
 * public (ListModels), so it names the folder, never where the folder is on the server.
 */
import assert from "node:assert/strict";
import { mkdirSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, it } from "node:test";
import { resolveModelSource } from "./resolve-model-source.js";

describe("resolveModelSource", () => {
  it("describes a folder model by its folder name, without the server's path", async () => {
    const parent = mkdtempSync(join(tmpdir(), "parley-secret-path-"));
    try {
      const dir = join(parent, "my-model");
      mkdirSync(dir);
      const source = await resolveModelSource(dir);
      assert.equal(source.id, "my-model");
      assert.equal(source.description, "Local folder my-model");
      assert.ok(!source.description.includes(parent), source.description);
      assert.ok("dir" in source && source.dir === dir, "the server itself still knows where it is");
    } finally {
      rmSync(parent, { recursive: true, force: true });
    }
  });
});
