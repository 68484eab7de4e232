/**
 * @module Turns a `--model` value into a model folder on disk: `builtin` (the model the build
 * generates), `hf:org/name[@revision]` (downloaded from the Hugging Face hub into its cache), or a
 * local folder. Any of them may end in `#variant` to pick an ONNX graph variant (fp16, q4…).
 */
import { existsSync } from "node:fs";
import { basename, resolve } from "node:path";
import { BUILTIN_MODEL_ID, builtinModelDir } from "./builtin/builtin-model.js";
import type { ModelSource } from "./model-source.js";
import { fetchHubModel, parseHubSpec } from "./sources/hf-hub-source.js";

/** Options for `resolveModelSource`. */
export interface ResolveModelSourceOptions {
  /** Never touch the network: hub models must already be in the cache. */
  readonly offline?: boolean | undefined;
  /** Where download progress goes; false for none. @default process.stderr */
  readonly progress?: NodeJS.WritableStream | false;
}

/** A `--model` value that does not name a usable model. */
export class ModelSourceError extends Error {
  override readonly name = "ModelSourceError";
}

const builtinDescription =
  "Built into Parley: a small Llama-architecture decoder generated at build time, whose " +
  "weights are a bigram table of a public-domain novel (Pride and Prejudice). It is not a real " +
  "language model: its text is real words but not meaningful; it exists so the gateway works " +
  "offline. Load a real model with --model hf:org/name or --model ./folder.";

/** Resolves one `--model` value. */
export async function resolveModelSource(
  spec: string,
  options: ResolveModelSourceOptions = {},
): Promise<ModelSource> {
  const hash = spec.lastIndexOf("#");
  const variant = hash > 0 ? spec.slice(hash + 1) : undefined;
  const location = hash > 0 ? spec.slice(0, hash) : spec;

  if (location === "builtin" || location === BUILTIN_MODEL_ID) {
    const dir = builtinModelDir();
    if (!existsSync(dir)) {
      throw new ModelSourceError(`the built-in model is not built at ${dir}: run npm run build`);
    }
    return { id: BUILTIN_MODEL_ID, dir, description: builtinDescription, variant };
  }
  if (location.startsWith("hf:")) {
    const { repo, revision } = parseHubSpec(location);
    const dir = await fetchHubModel({
      repo,
      revision,
      variant,
      ...(options.offline === true ? { offline: true } : {}),
      ...(options.progress === undefined ? {} : { progress: options.progress }),
    });
    return {
      id: revision === "main" ? repo : `${repo}@${revision}`,
      dir,
      description: `Hugging Face hub: ${repo}@${revision}${variant === undefined ? "" : ` (${variant})`}`,
      variant,
    };
  }
  const dir = resolve(location);
  if (!existsSync(dir)) {
    throw new ModelSourceError(
      `model folder ${dir} does not exist (use builtin, hf:org/name[@revision], or a folder)`,
    );
  }
  return { id: basename(dir), dir, description: `Local folder ${dir}`, variant };
}
