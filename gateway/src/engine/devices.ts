/**
 * @module The devices a model can run on, by the name of onnxruntime's execution provider.
 * A leaf (no onnxruntime import), so configuration can check a `--device` value on the main
 * thread; the worker's `execution-provider.ts` checks the device is really available.
 */

/** `--device` values: onnxruntime-node's execution providers, CPU first. */
export const devices = ["cpu", "cuda", "webgpu", "coreml", "dml"] as const;

/** A device a model runs on. */
export type Device = (typeof devices)[number];

/** Whether `value` names a device. */
export function isDevice(value: string): value is Device {
  return (devices as readonly string[]).includes(value);
}
