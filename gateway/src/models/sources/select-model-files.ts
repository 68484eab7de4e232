/**
 * @module Decides which files of a Hugging Face ONNX repository Parley needs: the tokenizer and
 * config files and ONE graph with its external data, so a repo holding ten quantisations of a
 * model costs one download, not ten. Used on the hub's file list and on a cached snapshot alike.
 */
import { posix } from "node:path";
import { graphVariants, rootGraphs } from "../model-folder.js";
import { HubModelError } from "./hub-model-error.js";

/** Files a model folder cannot do without (see models/model-folder.ts). */
const requiredFiles = ["config.json", "tokenizer.json", "tokenizer_config.json"] as const;

/** Files a model folder reads when the repo has them. */
const optionalFiles = [
  "generation_config.json",
  "special_tokens_map.json",
  "chat_template.jinja",
] as const;

/** The files to fetch, in a safe download order (see `downloadOrder`). */
export interface ModelFiles {
  /** The variant the chosen graph is. */
  readonly variant: string;
  /** Repo path of the ONNX graph, e.g. `onnx/model_fp16.onnx`. */
  readonly graph: string;
  /** The graph's external weight files (`<graph>.onnx.data`, `<graph>.onnx_data`, `_data_1`…). */
  readonly externalData: readonly string[];
  /** Config and tokenizer files. */
  readonly metadata: readonly string[];
}

/** Throws `HubModelError("invalid")` unless `variant` is one of the known graph variants. */
export function checkVariant(variant: string): void {
  if (!Object.hasOwn(graphVariants, variant)) {
    throw new HubModelError(
      "invalid",
      `unknown ONNX variant "${variant}"; known: ${Object.keys(graphVariants).join(", ")}`,
    );
  }
}

/** Candidate graph paths of a variant: fp32 may also sit at the repo root (`rootGraphs`). */
function graphCandidates(variant: string, names: readonly string[]): string[] {
  const inOnnxDir = names.map((name) => `onnx/${name}`);
  return variant === "fp32" ? [...rootGraphs, ...inOnnxDir] : inOnnxDir;
}

function escapeRegExp(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
}

/** The graph's external data files among `paths`: same folder, `<graph>` + `.data`/`_data[_N]`. */
function externalDataOf(graph: string, paths: ReadonlySet<string>): string[] {
  const dir = posix.dirname(graph);
  const pattern = new RegExp(`^${escapeRegExp(posix.basename(graph))}(?:\\.data|_data(?:_\\d+)?)$`);
  return [...paths]
    .filter((path) => posix.dirname(path) === dir && pattern.test(posix.basename(path)))
    .sort((a, b) => a.localeCompare(b, "en", { numeric: true }));
}

/** Picks the graph: the requested variant, else fp32 when present, else the first in table order. */
function chooseGraph(
  repo: string,
  paths: ReadonlySet<string>,
  variant: string | undefined,
): { variant: string; graph: string } {
  if (variant !== undefined) {
    checkVariant(variant);
    const names = graphVariants[variant] ?? [];
    const graph = graphCandidates(variant, names).find((path) => paths.has(path));
    if (graph !== undefined) return { variant, graph };
  }
  const available: { variant: string; graph: string }[] = [];
  for (const [name, files] of Object.entries(graphVariants)) {
    const graph = graphCandidates(name, files).find((path) => paths.has(path));
    if (graph !== undefined) available.push({ variant: name, graph });
  }
  const [first] = available;
  if (first === undefined) {
    throw new HubModelError(
      "not_found",
      `${repo} has no ONNX graph (model.onnx, or onnx/model.onnx, onnx/model_fp16.onnx, …): ` +
        "Parley runs ONNX exports only",
    );
  }
  if (variant !== undefined) {
    throw new HubModelError(
      "not_found",
      `${repo} has no ${variant} ONNX graph; available variants: ${available.map((a) => a.variant).join(", ")}`,
    );
  }
  return first;
}

/**
 * Chooses the files of `repo` (given as the list of its file paths) that Parley needs.
 * Throws `HubModelError` when a required file or the requested graph is missing.
 */
export function selectModelFiles(
  repo: string,
  filePaths: Iterable<string>,
  variant?: string,
): ModelFiles {
  const paths = new Set(filePaths);
  const missing = requiredFiles.filter((file) => !paths.has(file));
  if (missing.length > 0) {
    throw new HubModelError("not_found", `${repo} has no ${missing.join(", ")}`);
  }
  const chosen = chooseGraph(repo, paths, variant);
  return {
    variant: chosen.variant,
    graph: chosen.graph,
    externalData: externalDataOf(chosen.graph, paths),
    metadata: [...requiredFiles, ...optionalFiles.filter((file) => paths.has(file))],
  };
}

/**
 * The order to download in: metadata, then external data, then the graph LAST. A snapshot that
 * holds the graph therefore holds everything it needs, which is how the offline path knows a
 * cached model is complete without asking the hub.
 */
export function downloadOrder(files: ModelFiles): string[] {
  return [...files.metadata, ...files.externalData, files.graph];
}
