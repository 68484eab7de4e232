/**
 * @module Files that appear whole or not at all: written under a temporary name beside the
 * target, then renamed over it. Two processes generating the same model at once (parallel test
 * runs, a build beside a starting gateway) write identical bytes, so whichever rename lands last
 * leaves a complete file, and a reader never sees half of one.
 */
import { randomUUID } from "node:crypto";
import { type FileHandle, open, rename, rm } from "node:fs/promises";

/** A file being written; `commit` puts it in place, `abort` throws it away. */
export interface AtomicFile {
  readonly handle: FileHandle;
  commit(): Promise<void>;
  abort(): Promise<void>;
}

/** Opens a temporary file that `commit` will rename to `path`. */
export async function createAtomicFile(path: string): Promise<AtomicFile> {
  const temporary = `${path}.${process.pid}-${randomUUID()}.tmp`;
  const handle = await open(temporary, "w");
  return {
    handle,
    async commit() {
      await handle.close();
      await rename(temporary, path);
    },
    async abort() {
      await handle.close().catch(() => undefined);
      await rm(temporary, { force: true });
    },
  };
}

/** Writes `data` to `path` atomically. */
export async function writeFileAtomically(path: string, data: Uint8Array | string): Promise<void> {
  const file = await createAtomicFile(path);
  try {
    await file.handle.writeFile(data);
  } catch (error) {
    await file.abort();
    throw error;
  }
  await file.commit();
}
