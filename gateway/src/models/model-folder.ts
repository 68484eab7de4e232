/**
 * @module Reads a model folder in the layout Hugging Face ONNX exports use: `config.json`,
 * `tokenizer.json`, `tokenizer_config.json`, optional `generation_config.json` and
 * `chat_template.jinja`, and one ONNX graph (`model.onnx`, or a variant under `onnx/`).
 * Everything a generation needs to know about the model comes from these files, never from
 * hard-coded numbers.
 */
import { existsSync } from "node:fs";
import { readdir, readFile } from "node:fs/promises";
import { join } from "node:path";

/**
 * ONNX graph variants and the file names exports give them under `onnx/`, best first. The hub
 * source fetches by the same table, so the graph it downloads is the one read here.
 */
export const graphVariants: Readonly<Record<string, readonly string[]>> = {
  fp32: ["model.onnx", "decoder_model_merged.onnx"],
  fp16: ["model_fp16.onnx", "decoder_model_merged_fp16.onnx"],
  int8: [
    "model_int8.onnx",
    "model_quantized.onnx",
    "decoder_model_merged_int8.onnx",
    "decoder_model_merged_quantized.onnx",
  ],
  uint8: ["model_uint8.onnx", "decoder_model_merged_uint8.onnx"],
  q4: ["model_q4.onnx", "decoder_model_merged_q4.onnx"],
  q4f16: ["model_q4f16.onnx", "decoder_model_merged_q4f16.onnx"],
  bnb4: ["model_bnb4.onnx", "decoder_model_merged_bnb4.onnx"],
};

/**
 * fp32 graphs an export may put at the folder root: Optimum's `optimum-cli export onnx` writes
 * `decoder_model_merged.onnx` there (beside the unmerged pair, which Parley does not need).
 */
export const rootGraphs: readonly string[] = ["model.onnx", "decoder_model_merged.onnx"];

/** The variants `readModelFolder` accepts, for flags and error messages. */
export const modelVariants = Object.keys(graphVariants);

/** Sampling defaults a model's generation_config.json sets. */
export interface GenerationDefaults {
  readonly temperature?: number;
  readonly topP?: number;
  readonly topK?: number;
}

/** The facts of a model folder. */
export interface ModelFolder {
  readonly dir: string;
  /** Absolute path of the ONNX graph to load. */
  readonly graphPath: string;
  /** config.json as written: the graph's shapes are read from the graph, with this as fallback. */
  readonly config: Readonly<Record<string, unknown>>;
  readonly tokenizerJson: object;
  readonly tokenizerConfig: Record<string, unknown>;
  /** The Jinja chat template, if the model has one. */
  readonly chatTemplate: string | undefined;
  /** Special tokens by name (`bos_token`, `eos_token`, …) for the chat template. */
  readonly specialTokens: Readonly<Record<string, string>>;
  readonly bosTokenId: number | undefined;
  /** Every id that ends a sequence: config.json, generation_config.json and the tokenizer's eos. */
  readonly eosTokenIds: readonly number[];
  /** Whether a raw prompt must start with BOS (`add_bos_token: true`); otherwise tokenizer.json decides. */
  readonly addBosToken: boolean;
  /** The most tokens one sequence may hold. */
  readonly contextLength: number;
  readonly vocabSize: number | undefined;
  readonly defaults: GenerationDefaults;
}

/** A model folder that cannot be used: the message says which file and why. */
export class ModelFolderError extends Error {
  override readonly name = "ModelFolderError";
}

async function readJson(path: string): Promise<Record<string, unknown>> {
  try {
    return JSON.parse(await readFile(path, "utf8")) as Record<string, unknown>;
  } catch (cause) {
    throw new ModelFolderError(`cannot read ${path}: ${(cause as Error).message}`, { cause });
  }
}

async function readOptionalJson(path: string): Promise<Record<string, unknown>> {
  return existsSync(path) ? readJson(path) : {};
}

/** Finds the graph: a root graph (`rootGraphs`), else the requested (or best) variant in `onnx/`. */
async function findGraph(dir: string, variant: string | undefined): Promise<string> {
  // A root graph is the plain export: the default, and what fp32 means when onnx/ is absent.
  if (variant === undefined || variant === "fp32") {
    const root = rootGraphs.find((name) => existsSync(join(dir, name)));
    if (root !== undefined) return join(dir, root);
  }
  const onnxDir = join(dir, "onnx");
  const present = existsSync(onnxDir) ? new Set(await readdir(onnxDir)) : new Set<string>();
  if (variant !== undefined) {
    const names = graphVariants[variant];
    if (names === undefined) {
      throw new ModelFolderError(
        `unknown graph variant "${variant}"; known: ${modelVariants.join(", ")}`,
      );
    }
    const name = names.find((n) => present.has(n));
    if (name === undefined) {
      throw new ModelFolderError(`${dir} has no ${variant} graph (${names.join(" or ")} in onnx/)`);
    }
    return join(onnxDir, name);
  }
  for (const names of Object.values(graphVariants)) {
    const name = names.find((n) => present.has(n));
    if (name !== undefined) return join(onnxDir, name);
  }
  throw new ModelFolderError(`${dir} has no ONNX graph (model.onnx or onnx/model*.onnx)`);
}

/** A special token in tokenizer_config.json is a string or an AddedToken object. */
function tokenContent(value: unknown): string | undefined {
  if (typeof value === "string") return value;
  if (typeof value === "object" && value !== null && "content" in value) {
    const content = (value as { content: unknown }).content;
    return typeof content === "string" ? content : undefined;
  }
  return undefined;
}

function idList(value: unknown): number[] {
  if (typeof value === "number") return [value];
  if (Array.isArray(value)) return value.filter((v): v is number => typeof v === "number");
  return [];
}

function finiteNumber(value: unknown): number | undefined {
  return typeof value === "number" && Number.isFinite(value) ? value : undefined;
}

/** Looks a token's id up in tokenizer.json's added tokens and model vocabulary. */
function tokenId(tokenizerJson: Record<string, unknown>, token: string): number | undefined {
  const added = tokenizerJson.added_tokens;
  if (Array.isArray(added)) {
    for (const entry of added as { id?: unknown; content?: unknown }[]) {
      if (entry.content === token && typeof entry.id === "number") return entry.id;
    }
  }
  const model = tokenizerJson.model as { vocab?: unknown } | undefined;
  const vocab = model?.vocab;
  if (vocab !== null && typeof vocab === "object" && !Array.isArray(vocab)) {
    const id = (vocab as Record<string, unknown>)[token];
    if (typeof id === "number") return id;
  }
  return undefined;
}

/** The chat template: `chat_template.jinja`, else tokenizer_config.json (a string or named list). */
async function findChatTemplate(
  dir: string,
  tokenizerConfig: Record<string, unknown>,
): Promise<string | undefined> {
  const file = join(dir, "chat_template.jinja");
  if (existsSync(file)) return readFile(file, "utf8");
  const template = tokenizerConfig.chat_template;
  if (typeof template === "string") return template;
  if (Array.isArray(template)) {
    const named = template as { name?: unknown; template?: unknown }[];
    const chosen = named.find((t) => t.name === "default") ?? named[0];
    return typeof chosen?.template === "string" ? chosen.template : undefined;
  }
  return undefined;
}

/** Reads and checks a model folder. `variant` picks a graph under `onnx/` (fp32, fp16, int8, q4…). */
export async function readModelFolder(dir: string, variant?: string): Promise<ModelFolder> {
  const config = await readJson(join(dir, "config.json"));
  const tokenizerJson = await readJson(join(dir, "tokenizer.json"));
  const tokenizerConfig = await readOptionalJson(join(dir, "tokenizer_config.json"));
  const generationConfig = await readOptionalJson(join(dir, "generation_config.json"));
  const graphPath = await findGraph(dir, variant);

  const specialTokens: Record<string, string> = {};
  for (const name of ["bos_token", "eos_token", "pad_token", "unk_token"]) {
    const content = tokenContent(tokenizerConfig[name]);
    if (content !== undefined) specialTokens[name] = content;
  }
  const bosFromTokenizer =
    specialTokens.bos_token === undefined
      ? undefined
      : tokenId(tokenizerJson, specialTokens.bos_token);
  const eosFromTokenizer =
    specialTokens.eos_token === undefined
      ? undefined
      : tokenId(tokenizerJson, specialTokens.eos_token);
  const eosTokenIds = new Set([
    ...idList(config.eos_token_id),
    ...idList(generationConfig.eos_token_id),
    ...(eosFromTokenizer === undefined ? [] : [eosFromTokenizer]),
  ]);

  // Context length: the model's positions bound it; a smaller tokenizer limit narrows it
  // (tokenizers often carry a huge sentinel value there, which min() ignores).
  const contextLength = Math.min(
    finiteNumber(config.max_position_embeddings) ??
      finiteNumber(config.n_positions) ??
      finiteNumber(config.max_sequence_length) ??
      Number.POSITIVE_INFINITY,
    finiteNumber(tokenizerConfig.model_max_length) ?? Number.POSITIVE_INFINITY,
  );
  if (!Number.isFinite(contextLength) || contextLength < 2) {
    throw new ModelFolderError(
      `${dir}/config.json does not give a context length (max_position_embeddings)`,
    );
  }

  const doSample = generationConfig.do_sample === true;
  const defaults: GenerationDefaults = {
    // A model whose generation_config.json does not sample is greedy by default, as in transformers.
    temperature: doSample ? (finiteNumber(generationConfig.temperature) ?? 1) : 0,
    ...(finiteNumber(generationConfig.top_p) === undefined
      ? {}
      : { topP: finiteNumber(generationConfig.top_p) as number }),
    ...(finiteNumber(generationConfig.top_k) === undefined
      ? {}
      : { topK: finiteNumber(generationConfig.top_k) as number }),
  };

  return {
    dir,
    graphPath,
    config,
    tokenizerJson,
    tokenizerConfig,
    chatTemplate: await findChatTemplate(dir, tokenizerConfig),
    specialTokens,
    bosTokenId: finiteNumber(config.bos_token_id) ?? bosFromTokenizer,
    eosTokenIds: [...eosTokenIds],
    addBosToken: tokenizerConfig.add_bos_token === true,
    contextLength,
    vocabSize: finiteNumber(config.vocab_size),
    defaults,
  };
}
