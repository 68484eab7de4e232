/**
 * @module A local stand-in for huggingface.co, for tests that must never use the network. It
 * serves model repositories from memory on 127.0.0.1 through the endpoints `@huggingface/hub`
 * calls to download files, with the hub's headers and status codes: repo info, tree listing,
 * paths-info, `resolve` (plain files directly, LFS files through a redirect to a CDN path),
 * Range requests, and on demand a connection dropped in the middle of a file, wrong bytes, or a
 * Range request answered with the whole file (as some mirrors and proxies do).
 */
import { createHash } from "node:crypto";
import { createServer, type IncomingMessage, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";

/** One repository the fake hub serves, at a single commit. */
export interface FakeHubRepo {
  /** `org/name`. */
  readonly id: string;
  /** Repo path -> content. */
  readonly files: ReadonlyMap<string, Uint8Array>;
  /** Branch or tag names besides `main` that point at the commit. */
  readonly refs?: readonly string[];
}

/** The repositories to serve. */
export interface FakeHubServerOptions {
  readonly repos: readonly FakeHubRepo[];
}

/** One response that carried a file's bytes (from `resolve` or the LFS CDN path). */
export interface FakeHubDownload {
  /** Repo path of the file. */
  readonly path: string;
  /** The request's `Range` header, if any. */
  readonly range: string | undefined;
  /** 200 (whole file) or 206 (a range). */
  readonly status: number;
  /** How many body bytes were sent (fewer than asked when the connection was dropped). */
  readonly bytesSent: number;
}

/** A running fake hub. */
export interface FakeHubServer {
  /** Base URL to pass as `hubUrl`, e.g. `http://127.0.0.1:41234`. */
  readonly url: string;
  /** Every request received, as `"METHOD /path?query"`, in order. */
  readonly requests: readonly string[];
  /** Every response that sent file bytes, in order, with the Range header it answered. */
  readonly downloads: readonly FakeHubDownload[];
  /** The commit hash a repo's refs resolve to. */
  commitOf(repo: string): string;
  /** The next download of `path` (any repo) sends `afterBytes` bytes, then drops the connection. */
  dropNextDownload(path: string, afterBytes: number): void;
  /**
   * The next download of `path` (any repo) sends wrong bytes (first byte flipped); combined with
   * `dropNextDownload`, the wrong bytes come before the cut.
   */
  corruptNextDownload(path: string): void;
  /** The next Range request for `path` (other than the `bytes=0-0` probe) gets a 200, whole file. */
  ignoreNextRange(path: string): void;
  /** Stops listening and closes open connections; calling it again does nothing. */
  close(): Promise<void>;
}

interface FileRecord {
  readonly path: string;
  readonly bytes: Uint8Array;
  /** Git blob id of the file, or of its LFS pointer for LFS files. */
  readonly oid: string;
  /** SHA-256 of the content, for LFS files. */
  readonly lfsOid: string | undefined;
}

interface RepoRecord {
  readonly id: string;
  readonly commit: string;
  readonly refs: ReadonlySet<string>;
  readonly files: ReadonlyMap<string, FileRecord>;
}

/** The hub stores ONNX graphs and their weights in LFS; small text files stay in git. */
const lfsPattern = /\.onnx(?:\.data|_data(?:_\d+)?)?$/;

function hex(algorithm: "sha1" | "sha256", ...parts: (string | Uint8Array)[]): string {
  const hash = createHash(algorithm);
  for (const part of parts) hash.update(part);
  return hash.digest("hex");
}

function gitBlobId(content: Uint8Array | string): string {
  return hex("sha1", `blob ${Buffer.byteLength(content)}\0`, content);
}

function fileRecord(path: string, bytes: Uint8Array): FileRecord {
  if (!lfsPattern.test(path)) return { path, bytes, oid: gitBlobId(bytes), lfsOid: undefined };
  const lfsOid = hex("sha256", bytes);
  const pointer = `version https://git-lfs.github.com/spec/v1\noid sha256:${lfsOid}\nsize ${bytes.byteLength}\n`;
  return { path, bytes, oid: gitBlobId(pointer), lfsOid };
}

function repoRecord(repo: FakeHubRepo): RepoRecord {
  const files = new Map<string, FileRecord>();
  for (const [path, bytes] of repo.files) files.set(path, fileRecord(path, bytes));
  const commit = hex("sha1", repo.id, ...[...files.values()].map((f) => `${f.path}:${f.oid}`));
  return { id: repo.id, commit, refs: new Set(["main", ...(repo.refs ?? [])]), files };
}

/** A tree/paths-info entry as the hub's API returns it. */
function entryOf(file: FileRecord): Record<string, unknown> {
  return {
    type: "file",
    oid: file.oid,
    size: file.bytes.byteLength,
    path: file.path,
    ...(file.lfsOid === undefined
      ? {}
      : { lfs: { oid: file.lfsOid, size: file.bytes.byteLength, pointerSize: 134 } }),
  };
}

/** Every folder that holds a file, as `directory` entries. */
function directoriesOf(repo: RepoRecord): string[] {
  const dirs = new Set<string>();
  for (const path of repo.files.keys()) {
    const parts = path.split("/");
    for (let i = 1; i < parts.length; i += 1) dirs.add(parts.slice(0, i).join("/"));
  }
  return [...dirs].sort();
}

function sendJson(
  res: ServerResponse,
  status: number,
  body: unknown,
  headers: Record<string, string> = {},
): void {
  const text = JSON.stringify(body);
  res.writeHead(status, {
    "Content-Type": "application/json; charset=utf-8",
    "Content-Length": Buffer.byteLength(text),
    ...headers,
  });
  res.end(text);
}

function readBody(req: IncomingMessage): Promise<string> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    req.on("data", (chunk: Buffer) => chunks.push(chunk));
    req.on("end", () => resolve(Buffer.concat(chunks).toString("utf8")));
    req.on("error", reject);
  });
}

/** Starts a fake hub on a random loopback port. */
export async function createFakeHubServer(options: FakeHubServerOptions): Promise<FakeHubServer> {
  const repos = new Map(options.repos.map((repo) => [repo.id, repoRecord(repo)]));
  const lfsBlobs = new Map<string, FileRecord>();
  for (const repo of repos.values()) {
    for (const file of repo.files.values()) {
      if (file.lfsOid !== undefined) lfsBlobs.set(file.lfsOid, file);
    }
  }
  const requests: string[] = [];
  const downloads: FakeHubDownload[] = [];
  const drops = new Map<string, number>();
  const corruptions = new Set<string>();
  const ignoredRanges = new Set<string>();
  let baseUrl = "";

  const repoNotFound = (res: ServerResponse): void =>
    // huggingface.co answers 401, not 404, for a repo it will not show an anonymous caller.
    sendJson(res, 401, { error: "Repository not found" }, { "X-Error-Code": "RepoNotFound" });

  /** The commit a revision names, or undefined after answering 404. */
  const resolveRevision = (
    res: ServerResponse,
    repo: RepoRecord,
    revision: string,
  ): string | undefined => {
    if (repo.refs.has(revision) || revision === repo.commit) return repo.commit;
    sendJson(
      res,
      404,
      { error: `Invalid rev id: ${revision}` },
      { "X-Error-Code": "RevisionNotFound" },
    );
    return undefined;
  };

  /** Sends a file's bytes, honouring `Range: bytes=a-b`, or drops the connection when asked. */
  const sendBytes = (
    req: IncomingMessage,
    res: ServerResponse,
    file: FileRecord,
    headers: Record<string, string>,
  ): void => {
    const total = file.bytes.byteLength;
    // The library probes with `bytes=0-0` before downloading: only a real download is altered.
    const probe = req.headers.range === "bytes=0-0";
    const ignoreRange =
      !probe && req.headers.range !== undefined && ignoredRanges.delete(file.path);
    const range = ignoreRange ? null : /^bytes=(\d+)-(\d*)$/.exec(req.headers.range ?? "");
    const start = range === null ? 0 : Number(range[1]);
    const end =
      range === null || range[2] === "" ? total - 1 : Math.min(Number(range[2]), total - 1);
    if (start > end) {
      res.writeHead(416, { "Content-Range": `bytes */${total}` });
      res.end();
      return;
    }
    const partial = range !== null;
    const body = file.bytes.subarray(start, end + 1);
    res.writeHead(partial ? 206 : 200, {
      ...headers,
      "Accept-Ranges": "bytes",
      "Content-Type": "application/octet-stream",
      "Content-Length": body.byteLength,
      ...(partial ? { "Content-Range": `bytes ${start}-${end}/${total}` } : {}),
    });
    if (req.method === "HEAD") {
      res.end();
      return;
    }
    let sent: Uint8Array = body;
    if (!probe && corruptions.delete(file.path)) {
      const wrong = Buffer.from(body);
      wrong[0] = (wrong[0] ?? 0) ^ 0xff;
      sent = wrong;
    }
    const dropAfter = probe ? undefined : drops.get(file.path);
    const record = { path: file.path, range: req.headers.range, status: res.statusCode };
    if (dropAfter !== undefined) {
      drops.delete(file.path);
      const head = sent.subarray(0, dropAfter);
      downloads.push({ ...record, bytesSent: head.byteLength });
      // The cut comes a moment after the bytes: a fetch body stream that errors drops the chunks
      // its reader has not taken yet, and on a busy machine the reader may not have taken any.
      res.write(head, () => setTimeout(() => res.destroy(), 100));
      return;
    }
    downloads.push({ ...record, bytesSent: sent.byteLength });
    res.end(sent);
  };

  const handle = async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    requests.push(`${req.method} ${req.url}`);
    const url = new URL(req.url ?? "/", baseUrl);
    const segments = url.pathname.split("/").slice(1).map(decodeURIComponent);

    if (segments[0] === "lfs" && segments.length === 2) {
      const file = lfsBlobs.get(segments[1] ?? "");
      if (file === undefined) return sendJson(res, 404, { error: "Not found" });
      return sendBytes(req, res, file, { ETag: `"${file.lfsOid}"` });
    }

    if (segments[0] === "api" && segments[1] === "models") {
      const repo = repos.get(`${segments[2]}/${segments[3]}`);
      if (repo === undefined) return repoNotFound(res);
      const [action, revision = ""] = segments.slice(4);
      const commit = resolveRevision(res, repo, revision);
      if (commit === undefined) return;
      if (action === "revision" && req.method === "GET") {
        return sendJson(res, 200, {
          _id: hex("sha1", repo.id).slice(0, 24),
          id: repo.id,
          modelId: repo.id,
          sha: commit,
          private: false,
          gated: false,
          downloads: 0,
          likes: 0,
          lastModified: new Date(0).toISOString(),
          siblings: [...repo.files.keys()].map((rfilename) => ({ rfilename })),
        });
      }
      if (action === "tree" && req.method === "GET") {
        const prefix = segments.slice(6).join("/");
        const recursive = url.searchParams.get("recursive") === "true";
        const inScope = (path: string): boolean => {
          const rest = prefix === "" ? path : path.slice(prefix.length + 1);
          const under = prefix === "" || path.startsWith(`${prefix}/`);
          return under && (recursive || !rest.includes("/"));
        };
        const entries = [
          ...directoriesOf(repo)
            .filter(inScope)
            .map((path) => ({ type: "directory", oid: hex("sha1", path), size: 0, path })),
          ...[...repo.files.values()].filter((f) => inScope(f.path)).map(entryOf),
        ];
        return sendJson(res, 200, entries);
      }
      if (action === "paths-info" && req.method === "POST") {
        const body = JSON.parse(await readBody(req)) as { paths?: string[] };
        const found = (body.paths ?? []).flatMap((path) => {
          const file = repo.files.get(path);
          if (file === undefined) return [];
          const lastCommit = { id: commit, title: "Upload", date: new Date(0).toISOString() };
          return [{ ...entryOf(file), lastCommit, securityFileStatus: { status: "safe" } }];
        });
        return sendJson(res, 200, found);
      }
      return sendJson(res, 404, { error: "Not found" });
    }

    if (segments[2] === "resolve" && (req.method === "GET" || req.method === "HEAD")) {
      const repo = repos.get(`${segments[0]}/${segments[1]}`);
      if (repo === undefined) return repoNotFound(res);
      const commit = resolveRevision(res, repo, segments[3] ?? "");
      if (commit === undefined) return;
      const file = repo.files.get(segments.slice(4).join("/"));
      if (file === undefined) {
        return sendJson(
          res,
          404,
          { error: "Entry not found" },
          { "X-Error-Code": "EntryNotFound" },
        );
      }
      if (file.lfsOid === undefined) {
        return sendBytes(req, res, file, { ETag: `"${file.oid}"`, "X-Repo-Commit": commit });
      }
      // LFS content lives on a CDN: the hub redirects there and names the blob in X-Linked-*.
      res.writeHead(302, {
        Location: `${baseUrl}/lfs/${file.lfsOid}`,
        ETag: `"${file.oid}"`,
        "X-Linked-Etag": `"${file.lfsOid}"`,
        "X-Linked-Size": String(file.bytes.byteLength),
        "X-Repo-Commit": commit,
        "Content-Length": 0,
      });
      res.end();
      return;
    }
    sendJson(res, 404, { error: "Not found" });
  };

  const server = createServer((req, res) => {
    handle(req, res).catch((error: unknown) => {
      if (!res.headersSent) sendJson(res, 500, { error: String(error) });
      else res.destroy();
    });
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  baseUrl = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;

  return {
    url: baseUrl,
    requests,
    downloads,
    commitOf(repo) {
      const record = repos.get(repo);
      if (record === undefined) throw new Error(`the fake hub has no repo ${repo}`);
      return record.commit;
    },
    dropNextDownload(path, afterBytes) {
      drops.set(path, afterBytes);
    },
    corruptNextDownload(path) {
      corruptions.add(path);
    },
    ignoreNextRange(path) {
      ignoredRanges.add(path);
    },
    close() {
      if (!server.listening) return Promise.resolve();
      const closed = new Promise<void>((resolve, reject) =>
        server.close((error) => (error ? reject(error) : resolve())),
      );
      server.closeAllConnections();
      return closed;
    },
  };
}
