/**
 * @module The model folder as transformers.js expects it. Its loader looks for
 * `<localModelPath>/<name>/config.json`, the tokenizer files beside it and the graph under
 * `onnx/model.onnx` (the `dtype: "fp32"` file name; `model_fp16.onnx` would be "fp16", but an
 * fp16 graph named `model.onnx` loads as "fp32" too, since its tensors' types come from the graph).
 * Symbolic links make that layout from Parley's (a Hugging Face folder with `model.onnx` at its
 * root) without copying weights; onnxruntime finds `model.onnx.data` beside the link.
 */
import { existsSync } from "node:fs";
import { mkdir, rm, symlink } from "node:fs/promises";
import { join, resolve } from "node:path";

const besideConfig = [
  "config.json",
  "generation_config.json",
  "tokenizer.json",
  "tokenizer_config.json",
  "special_tokens_map.json",
];
const graphFiles = ["model.onnx", "model.onnx.data"];

/** Lays out `<root>/<name>/` for transformers.js from `modelDir`. */
export async function writePeerModelFolder(
  modelDir: string,
  root: string,
  name: string,
): Promise<void> {
  const dir = join(root, name);
  await rm(dir, { recursive: true, force: true });
  await mkdir(join(dir, "onnx"), { recursive: true });
  for (const file of besideConfig) {
    const from = resolve(modelDir, file);
    if (existsSync(from)) await symlink(from, join(dir, file));
  }
  for (const file of graphFiles) {
    const from = resolve(modelDir, file);
    if (existsSync(from)) await symlink(from, join(dir, "onnx", file));
  }
}
