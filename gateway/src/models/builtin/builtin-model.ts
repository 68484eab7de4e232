/**
 * @module The built-in model `parley-tiny`: where the build puts it (the gateway's build runs
 * the `@parley/model-builder` workspace, which writes it). It is what Parley serves when no
 * other model is configured, with no network at all.
 */
import { fileURLToPath } from "node:url";

/** The built-in model's id. */
export const BUILTIN_MODEL_ID = "parley-tiny";

/** The built-in model's folder: `gateway/models/parley-tiny` (this file is in `gateway/dist/models/builtin/`). */
export function builtinModelDir(): string {
  return fileURLToPath(new URL(`../../../models/${BUILTIN_MODEL_ID}`, import.meta.url));
}
