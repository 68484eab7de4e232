/**
 * @module Command line of the model generator, run by the gateway's build:
 * `node model-builder/dist/build-builtin-model.js --out DIR` writes the built-in model into DIR, and
 * `… --out DIR --hidden 512 --layers 8 --vocab 32000` writes a bigger one (for benchmarks), and
 * `--precision fp16` or `q4f16` (with `--zero-points`) a half-precision or 4-bit one.
 * Unset dimensions take the built-in model's values, or are derived from --hidden; weights are
 * random unless `--weights corpus` (the built-in model's bigram weights) is given.
 */
import { parseArgs } from "node:util";
import { buildBuiltinModel } from "./build-builtin-model-folder.js";
import {
  type DecoderModelOptions,
  type ModelPrecision,
  type ModelWeightSource,
  modelPrecisions,
  modelWeightSources,
} from "./decoder-model-options.js";
import { writeDecoderModel } from "./write-decoder-model.js";

const USAGE = `usage: node build-builtin-model.js --out DIR [--hidden N] [--layers N] [--heads N]
  [--kv-heads N] [--intermediate N] [--vocab N] [--context N] [--seed N] [--external-data]
  [--precision ${modelPrecisions.join("|")}] [--zero-points] [--weights ${modelWeightSources.join("|")}]
Without other options, writes the built-in model (parley-tiny) into DIR.`;

const dimensionFlags = {
  hidden: "hiddenSize",
  layers: "layers",
  heads: "heads",
  "kv-heads": "kvHeads",
  intermediate: "intermediateSize",
  vocab: "vocabSize",
  context: "contextLength",
  seed: "seed",
} as const satisfies Record<string, keyof DecoderModelOptions>;

function integer(flag: string, text: string): number {
  if (!/^\d+$/.test(text)) {
    throw new RangeError(`--${flag} must be a non-negative integer, got "${text}"`);
  }
  return Number(text);
}

/** Errors in the command line itself (exit code 2, with usage); anything else exits 1. */
function isUsageError(error: unknown): boolean {
  const code = (error as { code?: unknown }).code;
  return (
    error instanceof RangeError || (typeof code === "string" && code.startsWith("ERR_PARSE_ARGS"))
  );
}

async function main(argv: readonly string[]): Promise<void> {
  const { values } = parseArgs({
    args: [...argv],
    strict: true,
    options: {
      out: { type: "string" },
      hidden: { type: "string" },
      layers: { type: "string" },
      heads: { type: "string" },
      "kv-heads": { type: "string" },
      intermediate: { type: "string" },
      vocab: { type: "string" },
      context: { type: "string" },
      seed: { type: "string" },
      "external-data": { type: "boolean" },
      precision: { type: "string" },
      "zero-points": { type: "boolean" },
      weights: { type: "string" },
      help: { type: "boolean", short: "h" },
    },
  });
  if (values.help === true) {
    console.log(USAGE);
    return;
  }
  const options: { -readonly [K in keyof DecoderModelOptions]: DecoderModelOptions[K] } = {};
  for (const [flag, key] of Object.entries(dimensionFlags)) {
    const text = values[flag as keyof typeof dimensionFlags];
    if (typeof text === "string") options[key] = integer(flag, text);
  }
  if (values["external-data"] === true) options.externalData = true;
  if (values.precision !== undefined) {
    if (!(modelPrecisions as readonly string[]).includes(values.precision)) {
      throw new RangeError(`--precision must be one of ${modelPrecisions.join(", ")}`);
    }
    options.precision = values.precision as ModelPrecision;
  }
  if (values["zero-points"] === true) options.zeroPoints = true;
  if (values.weights !== undefined) {
    if (!(modelWeightSources as readonly string[]).includes(values.weights)) {
      throw new RangeError(`--weights must be one of ${modelWeightSources.join(", ")}`);
    }
    options.weights = values.weights as ModelWeightSource;
  }
  const custom = Object.keys(options).length > 0;
  const out = values.out;
  if (out === undefined) throw new RangeError("--out is required");

  const started = performance.now();
  const result = custom ? await writeDecoderModel(out, options) : await buildBuiltinModel(out);
  const d = result.dimensions;
  const seconds = ((performance.now() - started) / 1000).toFixed(1);
  const shape = `${d.precision}, hidden ${d.hiddenSize}, ${d.layers} layers, ${d.heads}/${d.kvHeads} heads, vocab ${d.vocabSize}, ${(result.parameters / 1e6).toFixed(2)}M parameters`;
  console.log(
    result.written
      ? `wrote ${result.dir} (${shape}) in ${seconds} s`
      : `${result.dir} is up to date (${shape})`,
  );
}

try {
  await main(process.argv.slice(2));
} catch (error) {
  console.error(`build-builtin-model: ${error instanceof Error ? error.message : String(error)}`);
  if (isUsageError(error)) console.error(USAGE);
  process.exitCode = isUsageError(error) ? 2 : 1;
}
