/**
 * @module Continues a hub download that an earlier run left in `blobs/<etag>.incomplete`.
 * Hand-written because `@huggingface/hub` (2.17.5) cannot resume: `downloadFileToCacheDir`
 * opens the `.incomplete` file with a truncating write stream and fetches from byte 0, so a
 * download cut at 4 of 5 GB costs 5 GB again. Its `WebBlob.slice` can send a Range request but
 * hides the status, and a server that ignores the Range (200, whole body) would then be
 * appended to the partial file. This sends `Range: bytes=<have>-` to the file's `resolve`
 * URL, as Python's huggingface_hub does, appends a 206 and starts over on a 200.
 */
import { createWriteStream } from "node:fs";
import { Readable } from "node:stream";
import { pipeline } from "node:stream/promises";
import { HubApiError } from "@huggingface/hub";
import { HubModelError } from "./hub-model-error.js";

/** The partial file and where its bytes come from. */
export interface ResumeDownloadOptions {
  /**
   * The file's `resolve` URL. Plain files are served there; LFS and Xet files are redirected to
   * a CDN that honours Range too (no Xet `Accept` header is sent, so no Xet protocol is needed).
   * @example "https://huggingface.co/org/name/resolve/<commit>/onnx/model.onnx_data"
   */
  readonly url: string;
  /** The `.incomplete` file: appended to on a 206, rewritten on a 200. */
  readonly incompletePath: string;
  /** How many bytes the partial file holds; the request asks for the rest. */
  readonly offset: number;
  /** The file's size on the hub: a partial file of that size needs no request at all. */
  readonly size: number;
  /** Sent as a bearer token, as the library sends it. */
  readonly accessToken?: string | undefined;
  /** The fetch implementation. Default: the global `fetch`. */
  readonly fetch?: typeof fetch | undefined;
}

/**
 * Brings the partial file to the file's full length. It does not check the bytes: the caller
 * verifies the whole file, which also catches a partial file that was wrong before the cut.
 * Throws `HubApiError` for an HTTP error, and the fetch error when the body is cut again (the
 * bytes that did arrive stay appended, so the next run resumes further on).
 */
export async function resumeDownload(options: ResumeDownloadOptions): Promise<void> {
  const { offset } = options;
  if (offset >= options.size) return;
  const response = await (options.fetch ?? fetch)(options.url, {
    headers: {
      Range: `bytes=${offset}-`,
      ...(options.accessToken === undefined
        ? {}
        : { Authorization: `Bearer ${options.accessToken}` }),
    },
  });
  if (response.status !== 206 && response.status !== 200) {
    await response.body?.cancel();
    throw new HubApiError(
      response.url,
      response.status,
      response.headers.get("X-Request-Id") ?? undefined,
      `HTTP ${response.status} when resuming the download at byte ${offset}`,
    );
  }
  if (response.status === 206) {
    // Appending bytes that start anywhere else would corrupt the file beyond repair.
    const range = response.headers.get("Content-Range") ?? "";
    if (/^bytes (\d+)-/.exec(range)?.[1] !== String(offset)) {
      await response.body?.cancel();
      throw new HubModelError(
        "network",
        `asked ${response.url} for bytes from ${offset}, got Content-Range "${range}"`,
      );
    }
  }
  // 200: the server (a mirror or proxy) ignored the Range and sends the whole file.
  const flags = response.status === 206 ? "a" : "w";
  const body = response.body === null ? Readable.from([]) : Readable.fromWeb(response.body);
  await pipeline(body, createWriteStream(options.incompletePath, { flags }));
}
