/**
 * @module Checks a freshly downloaded blob against what the hub's file list promised. The hub
 * library renames `<blob>.incomplete` to `<blob>` once the HTTP body ends and never checks it;
 * a body cut short in a way the HTTP client does not notice would then be trusted for ever.
 * Hashing here turns "probably complete" into "these are the bytes the repo holds".
 */
import { createHash } from "node:crypto";
import { createReadStream } from "node:fs";
import { stat } from "node:fs/promises";

/** What the hub's tree listing says about a file. */
export interface ExpectedBlob {
  /** Size in bytes. */
  readonly size: number;
  /** Git blob id (SHA-1 of `blob <size>\0<content>`) of a plain file. */
  readonly oid?: string | undefined;
  /** SHA-256 of the content of an LFS (or Xet-backed) file. */
  readonly lfsOid?: string | undefined;
}

async function digest(path: string, algorithm: "sha1" | "sha256", prefix: string): Promise<string> {
  const hash = createHash(algorithm).update(prefix);
  for await (const chunk of createReadStream(path)) hash.update(chunk as Buffer);
  return hash.digest("hex");
}

/**
 * Returns why the file at `path` is not the expected blob, or `undefined` when it is.
 * Size is always checked; the content hash when the listing gives one.
 */
export async function verifyBlob(
  path: string,
  expected: ExpectedBlob,
): Promise<string | undefined> {
  const { size } = await stat(path);
  if (size !== expected.size) {
    return `size ${size} bytes, expected ${expected.size}`;
  }
  if (expected.lfsOid !== undefined) {
    const actual = await digest(path, "sha256", "");
    return actual === expected.lfsOid ? undefined : `sha256 ${actual}, expected ${expected.lfsOid}`;
  }
  if (expected.oid !== undefined) {
    const actual = await digest(path, "sha1", `blob ${size}\0`);
    return actual === expected.oid ? undefined : `git blob id ${actual}, expected ${expected.oid}`;
  }
  return undefined;
}
