/**
 * @module Test support: the built-in model made endless, for tests that need a stream to run
 * until they stop it (max_tokens decides, not an end-of-sequence token).
 */
import { cp, mkdtemp, readFile, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { builtinSource } from "./model-fixtures.js";

/** A copy of the built-in model with a 16k context and nothing that ends a sequence early. */
export async function endlessBuiltinModel(): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), "parley-endless-"));
  await cp(builtinSource().dir, dir, { recursive: true });
  const edit = async (file: string, change: (json: Record<string, unknown>) => void) => {
    const path = join(dir, file);
    const json = JSON.parse(await readFile(path, "utf8")) as Record<string, unknown>;
    change(json);
    await writeFile(path, JSON.stringify(json));
  };
  await edit("config.json", (config) => {
    config.max_position_embeddings = 16_384;
    delete config.eos_token_id;
  });
  await edit("generation_config.json", (config) => {
    delete config.eos_token_id;
  });
  await edit("tokenizer_config.json", (config) => {
    config.model_max_length = 16_384;
    delete config.eos_token;
  });
  return dir;
}
