/**
 * @module Test fixtures shared by the gateway's tests: where the models are, and a real engine
 * over them. Nothing here fakes a component; it only finds and starts the real ones.
 */
import { existsSync } from "node:fs";
import { cp, mkdtemp, readFile, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import {
  type DecoderModelOptions,
  TINY_MODEL_OPTIONS,
  writeDecoderModel,
} from "@parley/model-builder";
import { pino } from "pino";
import { Registry } from "prom-client";
import { createEngine, type EngineOptions } from "../engine/create-engine.js";
import type { Engine, GenerationEvent, GenerationRequest } from "../engine/engine.js";
import { builtinModelDir } from "../models/builtin/builtin-model.js";
import type { ModelSource } from "../models/model-source.js";

/** The repository root (this file runs from gateway/test-build/testing/). */
export const repoRoot = fileURLToPath(new URL("../../../", import.meta.url));

/** The third-party model the brief provides beside the repository; absent on some machines. */
export const sharedModelDir = resolve(repoRoot, "../shared/models/tiny-random-llama");

/** Why tests of the shared model skip, or undefined when it is there. */
export const sharedModelSkip = existsSync(join(sharedModelDir, "model.onnx"))
  ? undefined
  : `../shared/models/tiny-random-llama is absent (${sharedModelDir}): third-party model tests skipped`;

/** The built-in model, as a source. */
export function builtinSource(): ModelSource {
  return { id: "parley-tiny", dir: builtinModelDir(), description: "built-in test model" };
}

/** The shared third-party model, as a source. */
export function sharedSource(): ModelSource {
  return { id: "tiny-random-llama", dir: sharedModelDir, description: "third-party test model" };
}

/**
 * The built-in model's size and tokenizer with random weights. The built-in model's own corpus
 * weights zero the attention output (it is a bigram model), so tests of the KV cache, masks and
 * batching run this one too, whose every token depends on the whole context.
 */
export const randomTinyModel = {
  ...TINY_MODEL_OPTIONS,
  weights: "random",
} as const satisfies DecoderModelOptions;

/**
 * Generated models in the layouts of half-precision exports, at the built-in model's size with
 * random weights (each writes in about a second): Optimum's fp16, and onnx-community's q4f16
 * without zero points (as they ship) and with them.
 */
export const halfPrecisionModels = {
  fp16: { ...randomTinyModel, precision: "fp16" },
  q4f16: { ...randomTinyModel, precision: "q4f16" },
  "q4f16-zero-points": { ...randomTinyModel, precision: "q4f16", zeroPoints: true },
} as const satisfies Record<string, DecoderModelOptions>;

/** Writes a generated model into a fresh temp dir; the caller removes `dir` when done. */
export async function generatedSource(
  id: string,
  options: DecoderModelOptions,
): Promise<ModelSource> {
  const dir = await mkdtemp(join(tmpdir(), `parley-${id}-`));
  await writeDecoderModel(dir, options);
  return { id, dir, description: `generated ${options.precision ?? "fp32"} test model` };
}

/**
 * Copies a model folder into a temp dir and rewrites config.json, for tests that need another
 * EOS id or a shorter context than the model ships with.
 */
export async function modelVariant(
  source: ModelSource,
  edit: (config: Record<string, unknown>) => void,
): Promise<ModelSource> {
  const dir = await mkdtemp(join(tmpdir(), "parley-model-"));
  await cp(source.dir, dir, { recursive: true });
  const configPath = join(dir, "config.json");
  const config = JSON.parse(await readFile(configPath, "utf8")) as Record<string, unknown>;
  edit(config);
  await writeFile(configPath, JSON.stringify(config));
  return { ...source, dir };
}

/** A real engine with its own metrics registry. */
export async function startTestEngine(
  models: readonly ModelSource[],
  options: Partial<EngineOptions> = {},
): Promise<{ engine: Engine; metrics: Registry }> {
  const metrics = new Registry();
  const engine = await createEngine({
    models,
    metrics,
    logger: pino({ level: "silent" }),
    ...options,
  });
  return { engine, metrics };
}

/** A greedy request for `text`. */
export function greedy(text: string, maxTokens: number, model = ""): GenerationRequest {
  return {
    model,
    input: { kind: "text", text },
    maxTokens,
    sampling: { temperature: 0 },
    stop: [],
  };
}

/** Everything one generation produced. */
export interface Collected {
  readonly events: GenerationEvent[];
  readonly text: string;
  readonly tokenIds: number[];
  readonly finished: Extract<GenerationEvent, { type: "finished" }>;
}

/** Runs a generation to its end. */
export async function collect(
  engine: Engine,
  request: GenerationRequest,
  signal: AbortSignal = new AbortController().signal,
): Promise<Collected> {
  const events: GenerationEvent[] = [];
  for await (const event of engine.generate(request, signal)) events.push(event);
  const finished = events.at(-1);
  if (finished?.type !== "finished") throw new Error("generation ended without a finished event");
  return {
    events,
    text: events.map((e) => e.text).join(""),
    tokenIds: events.flatMap((e) => [...e.tokenIds]),
    finished,
  };
}

/** Reads one sample of a metric from a registry (0 when absent). */
export async function metricValue(
  registry: Registry,
  name: string,
  labels: Record<string, string> = {},
): Promise<number> {
  const metric = registry.getSingleMetric(name);
  if (metric === undefined) return 0;
  const { values } = await metric.get();
  const sample = values.find((v) =>
    Object.entries(labels).every(([k, l]) => String(v.labels[k]) === l),
  );
  return sample?.value ?? 0;
}
