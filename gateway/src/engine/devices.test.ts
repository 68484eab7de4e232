/**
 * `--device`: a device this onnxruntime-node install or this machine lacks is refused when the
 * model loads, with a message that says what to install or check, instead of a dlopen error or
 * a silent fall back to the CPU. (This machine has no GPU: the CPU path is every other test.)
 */
import assert from "node:assert/strict";
import { test } from "node:test";
import { builtinSource, startTestEngine } from "../testing/model-fixtures.js";
import type { Device } from "./devices.js";

async function loadError(device: Device): Promise<string | undefined> {
  try {
    const { engine } = await startTestEngine([builtinSource()], { device });
    await engine.close();
    return undefined;
  } catch (error) {
    return (error as Error).message;
  }
}

test("--device cuda without the CUDA provider names the install switch", async (t) => {
  const message = await loadError("cuda");
  if (message === undefined) return t.skip("this machine runs CUDA");
  assert.match(message, /--device cuda/);
  assert.match(message, /ONNXRUNTIME_NODE_INSTALL=cuda12|could not create a session/);
});

test("--device coreml and dml off their platforms name the build they need", async () => {
  if (process.platform !== "darwin") {
    assert.match(
      (await loadError("coreml")) ?? "",
      /--device coreml needs onnxruntime-node's macOS build/,
    );
  }
  if (process.platform !== "win32") {
    assert.match(
      (await loadError("dml")) ?? "",
      /--device dml needs onnxruntime-node's Windows build/,
    );
  }
});

test("--device webgpu without an adapter says so in one line, naming the device", async (t) => {
  const message = await loadError("webgpu");
  if (message === undefined) return t.skip("this machine has a WebGPU adapter");
  assert.match(message, /--device webgpu: onnxruntime could not create a session on it/);
  assert.doesNotMatch(message, /onnxruntime_src|\n/);
});
