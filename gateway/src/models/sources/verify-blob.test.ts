import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, test } from "node:test";
import { verifyBlob } from "./verify-blob.js";

const dir = await mkdtemp(join(tmpdir(), "parley-verify-"));
after(() => rm(dir, { recursive: true, force: true }));

const content = Buffer.from("hello weights");
const sha256 = createHash("sha256").update(content).digest("hex");
// `git hash-object` of the same content.
const gitOid = createHash("sha1").update(`blob ${content.length}\0`).update(content).digest("hex");

test("accepts a blob with the listed size and hash", async () => {
  const path = join(dir, "ok");
  await writeFile(path, content);
  assert.equal(await verifyBlob(path, { size: content.length, lfsOid: sha256 }), undefined);
  assert.equal(await verifyBlob(path, { size: content.length, oid: gitOid }), undefined);
});

test("rejects a truncated blob by size and a changed one by hash", async () => {
  const path = join(dir, "bad");
  await writeFile(path, content.subarray(0, 5));
  assert.match((await verifyBlob(path, { size: content.length, lfsOid: sha256 })) ?? "", /size 5/);
  await writeFile(path, Buffer.from("hello weightz"));
  assert.match((await verifyBlob(path, { size: content.length, lfsOid: sha256 })) ?? "", /sha256/);
  assert.match((await verifyBlob(path, { size: content.length, oid: gitOid })) ?? "", /git blob/);
});
