/**
 * @module Download progress for model files. On a terminal it is one line redrawn in place
 * (file, bytes, percent); in a log or pipe it is one line when a file starts and one when it
 * ends, so logs stay readable. Hand-written because it is a few lines: `cli-progress` (the
 * hub library's optional bar) brings multi-bar layouts, presets and timers Parley does not need.
 */

/** Where progress goes. */
export interface DownloadProgressOptions {
  /** The stream to write to; `isTTY` on it selects the in-place bar. */
  readonly stream: NodeJS.WritableStream;
}

/** Progress of one file at a time. */
export interface DownloadProgress {
  /**
   * A file download begins; `totalBytes` is its size on the hub. `resumeAt` is how many bytes an
   * interrupted earlier run left, which are not fetched again. Default: 0.
   */
  start(file: string, totalBytes: number, resumeAt?: number): void;
  /** `bytes` of the current file are on disk; ignored when no file is in progress. */
  update(bytes: number): void;
  /** The current file is complete. */
  finish(): void;
  /** The current file failed: end the line so the error that follows starts on its own line. */
  abort(): void;
  /** A one-line notice (e.g. "using the cached snapshot"). */
  note(message: string): void;
}

const units = ["B", "KiB", "MiB", "GiB", "TiB"];

/** Formats a byte count for people: `1.5 MiB`. */
export function formatBytes(bytes: number): string {
  let value = bytes;
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit += 1;
  }
  return unit === 0 ? `${value} B` : `${value.toFixed(1)} ${units[unit]}`;
}

function percent(bytes: number, total: number): number {
  return total > 0 ? Math.min(100, Math.floor((bytes / total) * 100)) : 100;
}

/** A progress reporter writing to `options.stream`. */
export function createDownloadProgress(options: DownloadProgressOptions): DownloadProgress {
  const { stream } = options;
  const tty = (stream as { isTTY?: boolean }).isTTY === true;
  let current: { file: string; total: number; bytes: number; resumeAt: number } | undefined;

  const draw = (): void => {
    if (current === undefined) return;
    const width = 20;
    const pct = percent(current.bytes, current.total);
    const filled = Math.round((pct / 100) * width);
    const bar = `[${"#".repeat(filled)}${"-".repeat(width - filled)}]`;
    const sizes = `${formatBytes(current.bytes)} / ${formatBytes(current.total)}`;
    // \r + "erase line" redraws in place; the line is cut to the terminal width so it never wraps.
    const columns = (stream as { columns?: number }).columns || 100; // 0 when unknown
    const resumed = current.resumeAt > 0 ? ` (resumed at ${formatBytes(current.resumeAt)})` : "";
    const line = `${current.file} ${bar} ${sizes} ${String(pct).padStart(3)}%${resumed}`;
    stream.write(`\r\x1b[2K${line.slice(0, Math.max(columns - 1, 20))}`);
  };

  return {
    start(file, totalBytes, resumeAt = 0) {
      current = { file, total: totalBytes, bytes: resumeAt, resumeAt };
      if (tty) draw();
      else if (resumeAt > 0) {
        stream.write(
          `Resuming ${file} at ${formatBytes(resumeAt)} of ${formatBytes(totalBytes)}\n`,
        );
      } else stream.write(`Downloading ${file} (${formatBytes(totalBytes)})\n`);
    },
    update(bytes) {
      if (current === undefined) return;
      current.bytes = bytes;
      if (tty) draw();
    },
    finish() {
      if (current === undefined) return;
      current.bytes = current.total;
      if (tty) {
        draw();
        stream.write("\n");
      } else {
        stream.write(`Downloaded ${current.file} (${formatBytes(current.total)})\n`);
      }
      current = undefined;
    },
    abort() {
      if (current === undefined) return;
      stream.write(tty ? "\n" : `Failed ${current.file}\n`);
      current = undefined;
    },
    note(message) {
      stream.write(`${message}\n`);
    },
  };
}
