/**
 * @module Finds a complete model snapshot in the Hugging Face cache without any request: the
 * revision is resolved through `refs/<revision>` (or is a commit hash already), and the
 * snapshot counts as complete when it holds the files `selectModelFiles` would pick, the graph
 * included. The graph is downloaded last, so its presence vouches for its external data.
 */
import { readdir, readFile, stat } from "node:fs/promises";
import { join, sep } from "node:path";
import { HubModelError } from "./hub-model-error.js";
import { selectModelFiles } from "./select-model-files.js";

/** Which snapshot to look for. */
export interface CachedSnapshotQuery {
  /** The repo's cache folder, `<cache>/models--org--name`. */
  readonly storageFolder: string;
  readonly repo: string;
  readonly revision: string;
  readonly variant?: string | undefined;
}

const commitHash = /^[0-9a-f]{40}$/;

async function readRef(storageFolder: string, revision: string): Promise<string | undefined> {
  if (commitHash.test(revision)) return revision;
  try {
    const commit = (await readFile(join(storageFolder, "refs", revision), "utf8")).trim();
    return commitHash.test(commit) ? commit : undefined;
  } catch {
    return undefined; // no ref: this revision was never downloaded
  }
}

/** Repo paths (`/`-separated) of the snapshot's files whose blobs exist. */
async function presentFiles(snapshotDir: string): Promise<string[]> {
  let entries: string[];
  try {
    entries = await readdir(snapshotDir, { recursive: true });
  } catch {
    return [];
  }
  const present: string[] = [];
  for (const entry of entries) {
    // stat() follows the snapshot's symlink: a link to a missing blob does not count.
    const isFile = await stat(join(snapshotDir, entry)).then(
      (s) => s.isFile(),
      () => false,
    );
    if (isFile) present.push(entry.split(sep).join("/"));
  }
  return present;
}

/** The snapshot folder when the cache holds a complete copy of the model, else `undefined`. */
export async function findCachedSnapshot(query: CachedSnapshotQuery): Promise<string | undefined> {
  const commit = await readRef(query.storageFolder, query.revision);
  if (commit === undefined) return undefined;
  const snapshotDir = join(query.storageFolder, "snapshots", commit);
  try {
    selectModelFiles(query.repo, await presentFiles(snapshotDir), query.variant);
    return snapshotDir;
  } catch (error) {
    // A missing file means an incomplete snapshot, not a broken repo.
    if (error instanceof HubModelError && error.reason === "not_found") return undefined;
    throw error;
  }
}
