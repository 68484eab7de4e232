/**
 * @module Writes the built-in model `parley-tiny`: the generated decoder at its own size, with
 * weights derived from the bundled corpus. The gateway's build calls it through the command line.
 */
import { TINY_MODEL_OPTIONS } from "./decoder-model-options.js";
import { type WriteDecoderModelResult, writeDecoderModel } from "./write-decoder-model.js";

/** What `buildBuiltinModel` did. */
export type BuiltinModelResult = WriteDecoderModelResult;

/** Writes the built-in model into `dir`, unless it already holds it. */
export function buildBuiltinModel(dir: string): Promise<BuiltinModelResult> {
  return writeDecoderModel(dir, TINY_MODEL_OPTIONS);
}
