import assert from "node:assert/strict";
import { Writable } from "node:stream";
import { test } from "node:test";
import { createDownloadProgress, formatBytes } from "./download-progress.js";

/** A real writable stream that keeps what it is given; `isTTY` set like a terminal's. */
function capture(isTTY: boolean): Writable & { text: () => string; isTTY: boolean } {
  let text = "";
  const stream = new Writable({
    write(chunk: Buffer, _encoding, callback) {
      text += chunk.toString();
      callback();
    },
  });
  return Object.assign(stream, { text: () => text, isTTY, columns: 80 });
}

test("formatBytes uses binary units", () => {
  assert.equal(formatBytes(512), "512 B");
  assert.equal(formatBytes(1536), "1.5 KiB");
  assert.equal(formatBytes(3 * 1024 ** 3), "3.0 GiB");
});

test("without a terminal, writes one line per file start and finish", () => {
  const out = capture(false);
  const progress = createDownloadProgress({ stream: out });
  progress.start("onnx/model.onnx", 2048);
  progress.update(1024);
  progress.finish();
  assert.equal(
    out.text(),
    "Downloading onnx/model.onnx (2.0 KiB)\nDownloaded onnx/model.onnx (2.0 KiB)\n",
  );
});

test("on a terminal, redraws one line with file, bytes and percent, then ends it", () => {
  const out = capture(true);
  const progress = createDownloadProgress({ stream: out });
  progress.start("model.onnx", 4096);
  progress.update(1024);
  progress.finish();
  const frames = out
    .text()
    .split("\r\x1b[2K")
    .filter((frame) => frame !== "");
  assert.equal(frames.length, 3);
  assert.match(frames[1] ?? "", /^model\.onnx \[#{5}-{15}\] 1\.0 KiB \/ 4\.0 KiB {2}25%$/);
  assert.match(frames[2] ?? "", /4\.0 KiB \/ 4\.0 KiB 100%\n$/);
});

test("an aborted file ends its line, and late updates are ignored", () => {
  const out = capture(false);
  const progress = createDownloadProgress({ stream: out });
  progress.start("a.bin", 10);
  progress.abort();
  progress.update(5);
  progress.finish();
  assert.equal(out.text(), "Downloading a.bin (10 B)\nFailed a.bin\n");
});

test("a resumed file says where it resumes, in a log and on a terminal", () => {
  const log = capture(false);
  const logProgress = createDownloadProgress({ stream: log });
  logProgress.start("model.onnx_data", 4096, 1024);
  logProgress.finish();
  assert.equal(
    log.text(),
    "Resuming model.onnx_data at 1.0 KiB of 4.0 KiB\nDownloaded model.onnx_data (4.0 KiB)\n",
  );

  // Wide enough for the whole line: a narrow terminal cuts the "resumed at" note first.
  const tty = Object.assign(capture(true), { columns: 120 });
  const ttyProgress = createDownloadProgress({ stream: tty });
  ttyProgress.start("model.onnx_data", 4096, 1024);
  const [first] = tty
    .text()
    .split("\r\x1b[2K")
    .filter((frame) => frame !== "");
  // The bar starts at the bytes already on disk, not at 0.
  assert.match(
    first ?? "",
    /^model\.onnx_data \[#{5}-{15}\] 1\.0 KiB \/ 4\.0 KiB {2}25% \(resumed at 1\.0 KiB\)$/,
  );
});
