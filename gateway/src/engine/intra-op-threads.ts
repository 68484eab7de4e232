/**
 * @module How many onnxruntime intra-op threads a model's session gets. onnxruntime cannot change
 * them on a live session, so the number is chosen once, at load.
 */
import { availableParallelism } from "node:os";

/** `--intra-op-threads`: a number, or `auto`. */
export type IntraOpThreadsSetting = number | "auto";

/** The threads for a session: `auto` is every core this process may use. */
export function intraOpThreadsFor(
  setting: IntraOpThreadsSetting,
  cores = availableParallelism(),
): number {
  return setting === "auto" ? Math.max(1, cores) : setting;
}
