/**
 * @module Checks that a `--device` is usable by this onnxruntime-node install on this machine,
 * and says what to install when it is not. onnxruntime-node ships CPU and (on Linux, Windows
 * and macOS) WebGPU in its npm package; CUDA's provider is too large for npm and is fetched by
 * its install script only when asked; CoreML exists only in the macOS build, DirectML only in
 * the Windows one. Without this check a missing provider surfaces as a dlopen error deep inside
 * session creation.
 */
import { existsSync } from "node:fs";
import { createRequire } from "node:module";
import { dirname, join } from "node:path";
import * as ort from "onnxruntime-node";
import type { Device } from "../devices.js";

/** A device this install or machine cannot run; the message names what to do. */
export class DeviceUnavailableError extends Error {
  override readonly name = "DeviceUnavailableError";
}

const platformOnly: Partial<Record<Device, { platform: NodeJS.Platform; name: string }>> = {
  coreml: { platform: "darwin", name: "macOS" },
  dml: { platform: "win32", name: "Windows" },
};

/** Whether the CUDA provider library sits beside the binding (the install script puts it there). */
function cudaProviderInstalled(): boolean {
  const require = createRequire(import.meta.url);
  const root = dirname(dirname(require.resolve("onnxruntime-node")));
  const folder = join(root, "bin", "napi-v6", process.platform, process.arch);
  const library =
    process.platform === "win32"
      ? "onnxruntime_providers_cuda.dll"
      : "libonnxruntime_providers_cuda.so";
  return existsSync(join(folder, library));
}

/**
 * Throws `DeviceUnavailableError` when `device` cannot work with this install; returns the
 * session's `executionProviders`. onnxruntime still runs on the CPU the operators a provider
 * lacks, as it always does.
 */
export function executionProvidersFor(
  device: Device,
): ort.InferenceSession.ExecutionProviderConfig[] {
  if (device === "cpu") return ["cpu"];
  const only = platformOnly[device];
  if (only !== undefined && process.platform !== only.platform) {
    throw new DeviceUnavailableError(
      `--device ${device} needs onnxruntime-node's ${only.name} build; this is ${process.platform}`,
    );
  }
  const backend = ort.listSupportedBackends().find((b) => b.name === device);
  if (backend === undefined) {
    throw new DeviceUnavailableError(
      `--device ${device}: this onnxruntime-node build has no ${device} provider ` +
        `(it has ${ort
          .listSupportedBackends()
          .map((b) => b.name)
          .join(", ")})`,
    );
  }
  if (device === "cuda" && !cudaProviderInstalled()) {
    throw new DeviceUnavailableError(
      "--device cuda: onnxruntime-node's CUDA provider is not installed (npm does not ship it). " +
        'Allow its install script ("allowScripts": {"onnxruntime-node": true} in package.json) ' +
        "and reinstall with ONNXRUNTIME_NODE_INSTALL=cuda12 (needs CUDA 12 and cuDNN 9 on the machine)",
    );
  }
  return [device];
}

/** Wraps a session-creation failure on a non-CPU device in a message that names the device. */
export function deviceFailure(device: Device, cause: unknown): Error {
  if (device === "cpu") return cause instanceof Error ? cause : new Error(String(cause));
  const first = (cause instanceof Error ? cause.message : String(cause)).split("\n")[0] ?? "";
  // onnxruntime prefixes its source location and failed condition; the last sentence says why.
  const reason = first.includes("onnxruntime_src") ? (first.split(/\.\s+/).at(-1) ?? first) : first;
  return new DeviceUnavailableError(
    `--device ${device}: onnxruntime could not create a session on it (${reason}); ` +
      "check the machine has the device and its driver, or use --device cpu",
    { cause },
  );
}
