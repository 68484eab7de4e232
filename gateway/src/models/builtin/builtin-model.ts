/**
 * @module The built-in model `parley-tiny`: where the build puts it and how to make sure it is
 * there. It is what Parley serves when no other model is configured, with no network at all.
 */
import { fileURLToPath } from "node:url";
import { TINY_MODEL_OPTIONS } from "./decoder-model-options.js";
import { type WriteDecoderModelResult, writeDecoderModel } from "./write-decoder-model.js";

/** The built-in model's id. */
export const BUILTIN_MODEL_ID = "parley-tiny";

/** The built-in model's folder: `gateway/models/parley-tiny` (this file is in `gateway/dist/models/builtin/`). */
export function builtinModelDir(): string {
  return fileURLToPath(new URL(`../../../models/${BUILTIN_MODEL_ID}`, import.meta.url));
}

/** Writes the built-in model into its folder unless it is already there and up to date. */
export function ensureBuiltinModel(): Promise<WriteDecoderModelResult> {
  return writeDecoderModel(builtinModelDir(), TINY_MODEL_OPTIONS);
}
