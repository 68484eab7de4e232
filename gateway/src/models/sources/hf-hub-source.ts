/**
 * @module The `--model hf:org/name[@revision]` source: downloads the files Parley needs from a
 * Hugging Face hub into the standard Hugging Face cache with `@huggingface/hub`, and returns
 * the snapshot folder. Once cached, the model is reused without the network.
 *
 * Interrupted downloads: `@huggingface/hub` (2.17.5) writes each file to
 * `blobs/<etag>.incomplete` and renames it only when the body has fully arrived, but it cannot
 * resume: its next run would truncate the `.incomplete` file and fetch from byte 0. So when a
 * partial file is there, resume-download.ts fetches only the rest with a Range request; the
 * library does every fresh download (keeping its Xet transfer) and links the snapshot. A partial
 * file is never trusted: each new blob is checked against the size and hash the hub lists (see
 * verify-blob.ts) before it is used, and a resumed one that fails is downloaded again from 0.
 */
import { mkdir, rename, rm, stat, writeFile } from "node:fs/promises";
import { dirname, join } from "node:path";
import {
  downloadFileToCacheDir,
  getHFHubCachePath,
  getRepoFolderName,
  HUB_URL,
  HubApiError,
  type ListFileEntry,
  listFiles,
  modelInfo,
} from "@huggingface/hub";
import { createDownloadProgress, type DownloadProgress } from "./download-progress.js";
import { findCachedSnapshot } from "./find-cached-snapshot.js";
import { HubModelError } from "./hub-model-error.js";
import { checkRepoId, checkRevision } from "./parse-hub-spec.js";
import { resumeDownload } from "./resume-download.js";
import { checkVariant, downloadOrder, selectModelFiles } from "./select-model-files.js";
import { type ExpectedBlob, verifyBlob } from "./verify-blob.js";

export type { HubModelErrorReason } from "./hub-model-error.js";
export { HubModelError } from "./hub-model-error.js";
export type { HubSpec } from "./parse-hub-spec.js";
export { parseHubSpec } from "./parse-hub-spec.js";

/** What to fetch from the hub, and how. */
export interface HubModelOptions {
  /** The model repo id, `org/name`. */
  readonly repo: string;
  /** Branch, tag or commit hash. @example "main" (the default) */
  readonly revision?: string;
  /**
   * ONNX graph variant: `fp32`, `fp16`, `int8`, `uint8`, `q4`, `q4f16`, `bnb4`.
   * Default: fp32 when the repo has it, else the first of that list it has.
   */
  readonly variant?: string;
  /**
   * Cache root. Default: the library's `getHFHubCachePath()`: `HF_HUB_CACHE`, else
   * `HF_HOME/hub`, else `~/.cache/huggingface/hub`.
   */
  readonly cacheDir?: string;
  /** Hub base URL. Default: `HF_ENDPOINT`, else https://huggingface.co. */
  readonly hubUrl?: string;
  /** Never touch the network; use the cache only. Default: `HF_HUB_OFFLINE` is 1/true/yes/on. */
  readonly offline?: boolean;
  /** Token for private or gated repos (`hf_…`). Default: `HF_TOKEN`. */
  readonly accessToken?: string;
  /** Where download progress goes; `false` for none. Default: `process.stderr`. */
  readonly progress?: NodeJS.WritableStream | false;
  /** The fetch implementation for every request (a proxy, extra headers, a test's counter). */
  readonly fetch?: typeof fetch;
}

/** Settings resolved from options and environment, shared by the steps below. */
interface Context {
  readonly repo: string;
  readonly revision: string;
  readonly variant: string | undefined;
  readonly label: string;
  readonly cacheDir: string;
  readonly storageFolder: string;
  readonly hubUrl: string;
  readonly accessToken: string | undefined;
  readonly fetch: typeof fetch | undefined;
  readonly progress: DownloadProgress | undefined;
}

/** How often the size of a file being downloaded is read for the progress bar. */
const progressIntervalMs = 250;

/** Boolean environment flags as huggingface_hub reads them. */
function envFlag(value: string | undefined): boolean {
  return ["1", "true", "yes", "on"].includes((value ?? "").trim().toLowerCase());
}

function describe(error: unknown): string {
  if (!(error instanceof Error)) return String(error);
  return error.cause instanceof Error ? `${error.message}: ${error.cause.message}` : error.message;
}

/** A filesystem failure (disk full, permissions) is neither the hub's nor the network's fault. */
function isFilesystemError(error: unknown): boolean {
  return error instanceof Error && "syscall" in error && "path" in error;
}

/** Failures where a cached copy may stand in: no connection, a cut body, a hub outage. */
function isUnreachable(error: unknown): boolean {
  if (error instanceof HubModelError) return error.reason === "network";
  if (error instanceof HubApiError) return error.statusCode >= 500 || error.statusCode === 429;
  // Node's fetch fails with a TypeError ("fetch failed", "terminated" for a cut body); the
  // library's WebBlob aborts its stream with the bare message string.
  return error instanceof TypeError || typeof error === "string";
}

function toHubModelError(error: unknown, ctx: Context): unknown {
  if (error instanceof HubModelError || isFilesystemError(error)) return error;
  if (error instanceof HubApiError && [401, 403, 404].includes(error.statusCode)) {
    return new HubModelError(
      "not_found",
      `${ctx.label} was not found on ${ctx.hubUrl} (HTTP ${error.statusCode}: ${error.message}). ` +
        "Check the repo id and revision; a private or gated repo needs an access token (HF_TOKEN).",
      { cause: error },
    );
  }
  return new HubModelError(
    "network",
    `cannot download ${ctx.label} from ${ctx.hubUrl}: ${describe(error)}`,
    { cause: error },
  );
}

/**
 * `downloadFileToCacheDir` announces each file with `console.debug`, which Node writes to stdout:
 * a stray line among JSON log lines that also garbles the progress bar. The library has no
 * switch for it, so it is muted while downloads run; the count makes overlapping downloads
 * restore the original once, when the last one ends.
 */
let mutedDownloads = 0;
let savedDebug: typeof console.debug = console.debug;

async function withLibraryDebugMuted<T>(run: () => Promise<T>): Promise<T> {
  if (mutedDownloads === 0) {
    savedDebug = console.debug;
    console.debug = () => undefined;
  }
  mutedDownloads += 1;
  try {
    return await run();
  } finally {
    mutedDownloads -= 1;
    if (mutedDownloads === 0) console.debug = savedDebug;
  }
}

async function isFile(path: string): Promise<boolean> {
  return stat(path).then(
    (s) => s.isFile(),
    () => false,
  );
}

/** The size of a partial download an earlier run left, or 0 when there is none. */
async function partialSize(path: string): Promise<number> {
  return stat(path).then(
    (s) => (s.isFile() ? s.size : 0),
    () => 0,
  );
}

/**
 * Neither the library nor the resume request reports progress: the bar follows the size of the
 * `.incomplete` file, which works the same for plain, LFS, Xet and resumed downloads.
 */
function followProgress(
  progress: DownloadProgress | undefined,
  incomplete: string,
): NodeJS.Timeout | undefined {
  if (progress === undefined) return undefined;
  return setInterval(() => {
    void stat(incomplete).then(
      (s) => progress.update(s.size),
      () => undefined, // not created yet, or just renamed: nothing to show
    );
  }, progressIntervalMs).unref();
}

/**
 * The URL the library downloads a file from (see its `fileDownloadInfo`); each path segment is
 * encoded, so a name with `#` or `?` still names the file.
 */
function resolveUrl(ctx: Context, commit: string, path: string): string {
  const encodedPath = path.split("/").map(encodeURIComponent).join("/");
  return `${ctx.hubUrl}/${ctx.repo}/resolve/${commit}/${encodedPath}`;
}

/**
 * Continues `<blob>.incomplete` from where an earlier run stopped, and renames it to the blob
 * once the whole file verifies. A partial file that turns out wrong (bytes damaged before the
 * cut) is deleted, so the caller's fresh download starts from byte 0.
 */
async function resumeBlob(
  ctx: Context,
  commit: string,
  entry: ListFileEntry,
  blobPath: string,
  offset: number,
  expected: ExpectedBlob,
): Promise<void> {
  const incomplete = `${blobPath}.incomplete`;
  const { progress } = ctx;
  progress?.start(entry.path, expected.size, offset);
  const timer = followProgress(progress, incomplete);
  try {
    await resumeDownload({
      url: resolveUrl(ctx, commit, entry.path),
      incompletePath: incomplete,
      offset,
      size: expected.size,
      accessToken: ctx.accessToken,
      fetch: ctx.fetch,
    });
  } catch (error) {
    progress?.abort();
    throw error;
  } finally {
    clearInterval(timer);
  }
  const problem = await verifyBlob(incomplete, expected);
  if (problem === undefined) {
    await rename(incomplete, blobPath);
    progress?.finish();
    return;
  }
  await rm(incomplete, { force: true });
  progress?.abort();
  progress?.note(
    `The resumed download of ${entry.path} was corrupt (${problem}); downloading it from the start`,
  );
}

/**
 * Downloads one file into the cache unless the snapshot already has it; resumes a partial
 * download; verifies new blobs.
 */
async function fetchFile(
  ctx: Context,
  commit: string,
  snapshotDir: string,
  entry: ListFileEntry,
): Promise<void> {
  const pointer = join(snapshotDir, entry.path);
  if (await isFile(pointer)) return;
  // The blob name the library derives from the same listing (LFS sha256, Xet hash or git oid).
  const etag = entry.lfs?.oid ?? entry.xetHash ?? entry.oid;
  if (etag === undefined) {
    throw new HubModelError("network", `the hub listed ${entry.path} without a content id`);
  }
  const blobPath = join(ctx.storageFolder, "blobs", etag);
  const expected: ExpectedBlob = {
    size: entry.lfs?.size ?? entry.size,
    lfsOid: entry.lfs?.oid,
    // A plain file's oid hashes its content; an LFS or Xet file's oid hashes its pointer.
    oid: entry.lfs === undefined && entry.xetHash === undefined ? entry.oid : undefined,
  };
  if (!(await isFile(blobPath))) {
    const offset = await partialSize(`${blobPath}.incomplete`);
    // A partial file longer than the file cannot be a prefix of it: the library starts over.
    if (offset > 0 && offset <= expected.size) {
      await resumeBlob(ctx, commit, entry, blobPath, offset, expected);
    }
  }
  const fresh = !(await isFile(blobPath));
  const { progress } = ctx;
  if (fresh) progress?.start(entry.path, expected.size);
  const timer = fresh ? followProgress(progress, `${blobPath}.incomplete`) : undefined;
  try {
    // With the blob already there (cached, or just resumed) the library only links
    // `snapshots/<commit>/<path>` to it, with its own relative symlink (`createSymlink` is not
    // exported), so the layout stays the one huggingface_hub reads.
    await withLibraryDebugMuted(() =>
      downloadFileToCacheDir({
        repo: { type: "model", name: ctx.repo },
        path: entry.path,
        revision: commit,
        cacheDir: ctx.cacheDir,
        hubUrl: ctx.hubUrl,
        ...(ctx.accessToken === undefined ? {} : { accessToken: ctx.accessToken }),
        ...(ctx.fetch === undefined ? {} : { fetch: ctx.fetch }),
      }),
    );
  } catch (error) {
    if (fresh) progress?.abort();
    throw error;
  } finally {
    clearInterval(timer);
  }
  if (!fresh) return;
  const problem = await verifyBlob(blobPath, expected);
  if (problem !== undefined) {
    await rm(pointer, { force: true });
    await rm(blobPath, { force: true });
    progress?.abort();
    throw new HubModelError(
      "network",
      `the download of ${entry.path} from ${ctx.label} was corrupt (${problem}); ` +
        "it was removed from the cache, run again to download it anew",
    );
  }
  progress?.finish();
}

/** Resolves the revision on the hub, downloads what is missing, then records `refs/<revision>`. */
async function download(ctx: Context): Promise<string> {
  const hub = {
    hubUrl: ctx.hubUrl,
    ...(ctx.accessToken === undefined ? {} : { accessToken: ctx.accessToken }),
    ...(ctx.fetch === undefined ? {} : { fetch: ctx.fetch }),
  };
  const info = await modelInfo({
    ...hub,
    name: ctx.repo,
    revision: ctx.revision,
    additionalFields: ["sha"],
  });
  const commit = info.sha;
  const entries = new Map<string, ListFileEntry>();
  const listing = listFiles({
    ...hub,
    repo: { type: "model", name: ctx.repo },
    revision: commit,
    recursive: true,
  });
  for await (const entry of listing) {
    if (entry.type === "file") entries.set(entry.path, entry);
  }
  const files = selectModelFiles(ctx.repo, entries.keys(), ctx.variant);
  const snapshotDir = join(ctx.storageFolder, "snapshots", commit);
  for (const path of downloadOrder(files)) {
    const entry = entries.get(path);
    if (entry !== undefined) await fetchFile(ctx, commit, snapshotDir, entry);
  }
  // Written last, so an offline run never follows a ref to a half-downloaded snapshot.
  if (ctx.revision !== commit) {
    const refPath = join(ctx.storageFolder, "refs", ctx.revision);
    await mkdir(dirname(refPath), { recursive: true });
    await writeFile(refPath, commit);
  }
  return snapshotDir;
}

/**
 * Makes a hub model available locally and returns its snapshot folder
 * (`<cache>/models--org--name/snapshots/<commit>`). Offline, or when the hub cannot be reached,
 * a complete cached snapshot is used without any request. Throws `HubModelError`.
 * @example await fetchHubModel({ repo: "onnx-community/Qwen2.5-0.5B-Instruct", variant: "q4" })
 */
export async function fetchHubModel(options: HubModelOptions): Promise<string> {
  const revision = options.revision ?? "main";
  checkRepoId(options.repo);
  checkRevision(revision);
  if (options.variant !== undefined) checkVariant(options.variant);
  const accessToken = options.accessToken ?? (process.env.HF_TOKEN || undefined);
  if (accessToken !== undefined && !accessToken.startsWith("hf_")) {
    throw new HubModelError(
      "invalid",
      "the Hugging Face access token (HF_TOKEN) must start with hf_",
    );
  }
  const cacheDir = options.cacheDir ?? getHFHubCachePath();
  const ctx: Context = {
    repo: options.repo,
    revision,
    variant: options.variant,
    label: `${options.repo}@${revision}${options.variant === undefined ? "" : ` (${options.variant})`}`,
    cacheDir,
    storageFolder: join(cacheDir, getRepoFolderName({ type: "model", name: options.repo })),
    hubUrl: (options.hubUrl ?? (process.env.HF_ENDPOINT || HUB_URL)).replace(/\/+$/, ""),
    accessToken,
    fetch: options.fetch,
    progress:
      options.progress === false
        ? undefined
        : createDownloadProgress({ stream: options.progress ?? process.stderr }),
  };
  const cached = (): Promise<string | undefined> => findCachedSnapshot(ctx);

  if (options.offline ?? envFlag(process.env.HF_HUB_OFFLINE)) {
    const snapshot = await cached();
    if (snapshot !== undefined) return snapshot;
    throw new HubModelError(
      "offline",
      `${ctx.label} is not in the Hugging Face cache at ${ctx.storageFolder}, and offline mode is ` +
        "on (HF_HUB_OFFLINE=1 or offline: true). Run once with network access to download it, " +
        "or set HF_ENDPOINT to a hub mirror you can reach.",
    );
  }
  try {
    return await download(ctx);
  } catch (error) {
    if (!isUnreachable(error)) throw toHubModelError(error, ctx);
    const snapshot = await cached();
    if (snapshot === undefined) {
      throw new HubModelError(
        "network",
        `cannot download ${ctx.label} from ${ctx.hubUrl} (${describe(error)}), and it is not in ` +
          `the Hugging Face cache at ${ctx.storageFolder}. Check the network or HF_ENDPOINT and ` +
          "run again: files already downloaded are kept.",
        { cause: error },
      );
    }
    ctx.progress?.note(
      `Cannot reach ${ctx.hubUrl} (${describe(error)}); using the cached snapshot of ${ctx.label}`,
    );
    return snapshot;
  }
}
