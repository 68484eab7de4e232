/**
 * @module The command line of `npm run bench` and the sizes of every scenario, full or `--quick`
 * (the smoke-test sizes: one round, short runs, small models only).
 */
import { resolve } from "node:path";
import { parseArgs } from "node:util";
import { defaultOutDir } from "./bench-paths.js";

/** The scenarios, in the order they run. */
export const scenarioNames = [
  "unary",
  "streaming",
  "wire-bytes",
  "engine",
  "scaling",
  "fp16",
  "openai-sse",
  "peer",
  "prefix-cache",
] as const;
export type ScenarioName = (typeof scenarioNames)[number];

/** Everything a run is sized by. */
export interface BenchSettings {
  readonly quick: boolean;
  readonly only: readonly ScenarioName[];
  readonly outDir: string;
  /** Profile the gateway (`--cpu-prof`) for every target it falls short of. */
  readonly profile: boolean;
  /**
   * Rounds of the A/B alternation for throughput comparisons. Five, not three: on this shared VM
   * one system's throughput moves by up to half between neighbouring runs (the ORT loop alone
   * measured 4,200 to 8,300 tokens/s within a minute), and a median of three still followed it.
   */
  readonly rounds: number;
  /**
   * Another build's `gateway/dist/main.js` (`--baseline-gateway`, e.g. a `git worktree` of an
   * older commit, built): the unary and fast streaming runs measure it beside this build, round
   * by round, so "not slower than before" is a ratio from one run rather than two runs on two
   * machine states.
   */
  readonly baselineGateway: string | undefined;
  readonly unary: {
    readonly concurrency: readonly number[];
    readonly durationMs: number;
    /** Load before the first round, per system and protocol, to warm the JIT of both ends. */
    readonly warmupMs: number;
  };
  readonly streaming: {
    readonly streams: readonly number[];
    readonly tokens: number;
    readonly paceMs: number;
    /** Fast runs end (open streams are cancelled) after this long. */
    readonly fastWindowMs: number;
    /** Paced runs end after this long, even when the gateway cannot keep the pace. */
    readonly pacedWindowMs: number;
    readonly pacedRounds: number;
    readonly streamsPerConnection: number;
  };
  readonly wireBytes: { readonly shortTokens: number; readonly longTokens: number };
  readonly engine: {
    readonly largeModel: boolean;
    readonly builtinTokens: number;
    readonly largeTokens: number;
  };
  readonly scaling: {
    readonly streams: readonly number[];
    readonly builtinTokens: number;
    readonly largeTokens: number;
  };
  readonly fp16: {
    /** Tokens per run on the third-party tiny-random-llama (32k vocab, sub-millisecond steps). */
    readonly sharedTokens: number;
    /** The generated fp16 model: the larger size (full runs), else the built-in size. */
    readonly generated: typeof fp16LargeModelOptions | typeof fp16SmallModelOptions;
    readonly generatedTokens: number;
  };
  readonly peer: {
    /** Its own rounds: three systems, and transformers.js decodes every stream on its own. */
    readonly rounds: number;
    readonly streams: readonly number[];
    /** Tokens per stream on the large fp32 model (full runs), else on the built-in one. */
    readonly largeTokens: number;
    /** Tokens per stream on tiny-random-llama (fp16). */
    readonly sharedTokens: number;
  };
}

/** The dimensions of the larger generated decoder (compute dominates its decode steps). */
export const largeModelOptions = { hiddenSize: 512, layers: 8, vocabSize: 32_000 } as const;

/** The larger decoder in float16, as Optimum exports fp16: its fp32 twin is `largeModelOptions`. */
export const fp16LargeModelOptions = { ...largeModelOptions, precision: "fp16" } as const;

/** The built-in model's size in float16, for `--quick`. */
export const fp16SmallModelOptions = {
  hiddenSize: 64,
  layers: 2,
  vocabSize: 512,
  precision: "fp16",
} as const;

/**
 * The synthetic pacing model stands for a model on an accelerator, whose steps cost the host
 * little CPU: one layer, one KV head of width 4. The KV cache is what a step over 1,000 rows
 * copies (onnxruntime-node copies every output into a new buffer); hidden 16 with two KV heads
 * took 6.4-6.8 ms of a 20 ms tick on one thread, this shape 2.5-2.8 ms.
 * Seed 1 because with it greedy decoding of the bench prompts runs on without end-of-sequence.
 */
export const pacingModelOptions = {
  hiddenSize: 8,
  heads: 2,
  kvHeads: 1,
  layers: 1,
  vocabSize: 261,
  seed: 1,
} as const;

const usage = `usage: npm run bench -- [--quick] [--only ${scenarioNames.join(",")}] [--out DIR] [--no-profile]
  --quick       smoke-test sizes: one round, short runs, small models only; does not touch docs/
  --only LIST   run only these scenarios (comma-separated); does not touch docs/
  --out DIR     where results.json, fixtures and profiles go (default test-output/bench)
  --no-profile  skip the --cpu-prof runs for targets that fall short
  --baseline-gateway MAIN
                another build's gateway/dist/main.js, measured beside this one in the unary
                and fast streaming runs (e.g. a built \`git worktree\` of an older commit)`;

/** Parses the bench's arguments; throws with the usage on a bad one. */
export function parseBenchArgs(argv: readonly string[]): BenchSettings | "help" {
  const { values } = parseArgs({
    args: [...argv],
    strict: true,
    options: {
      quick: { type: "boolean" },
      only: { type: "string" },
      out: { type: "string" },
      "no-profile": { type: "boolean" },
      "baseline-gateway": { type: "string" },
      help: { type: "boolean", short: "h" },
    },
  });
  if (values.help === true) return "help";
  const only = (values.only ?? scenarioNames.join(","))
    .split(",")
    .map((name) => name.trim())
    .filter((name) => name.length > 0);
  for (const name of only) {
    if (!(scenarioNames as readonly string[]).includes(name)) {
      throw new Error(`unknown scenario "${name}"\n${usage}`);
    }
  }
  const quick = values.quick === true;
  return {
    quick,
    only: only as ScenarioName[],
    outDir: values.out ?? (quick ? `${defaultOutDir}/quick` : defaultOutDir),
    profile: !quick && values["no-profile"] !== true,
    rounds: quick ? 1 : 5,
    baselineGateway:
      values["baseline-gateway"] === undefined ? undefined : resolve(values["baseline-gateway"]),
    unary: {
      concurrency: [1, 16, 64],
      durationMs: quick ? 150 : 700,
      warmupMs: quick ? 150 : 1000,
    },
    streaming: {
      streams: quick ? [1, 8] : [1, 64, 1000],
      tokens: quick ? 32 : 256,
      paceMs: 20,
      fastWindowMs: quick ? 2000 : 3000,
      pacedWindowMs: quick ? 3000 : 10_000,
      pacedRounds: 1,
      streamsPerConnection: 100,
    },
    wireBytes: { shortTokens: quick ? 8 : 64, longTokens: quick ? 32 : 256 },
    engine: { largeModel: !quick, builtinTokens: quick ? 32 : 1024, largeTokens: 128 },
    scaling: {
      streams: quick ? [1, 2] : [1, 2, 4, 8, 16],
      builtinTokens: quick ? 32 : 256,
      largeTokens: 64,
    },
    // Three systems per round: runs are kept short so the scenario adds about a minute.
    fp16: {
      sharedTokens: quick ? 32 : 128,
      generated: quick ? fp16SmallModelOptions : fp16LargeModelOptions,
      generatedTokens: quick ? 32 : 64,
    },
    // transformers.js decodes each stream on its own (no batching): at 64 streams of the large
    // model a run of 16 tokens each is 1,024 unbatched decode steps, a minute of a shared core.
    peer: {
      rounds: quick ? 1 : 3,
      streams: quick ? [1, 2] : [1, 4, 16, 64],
      largeTokens: quick ? 8 : 16,
      sharedTokens: quick ? 8 : 32,
    },
  };
}

export { usage as benchUsage };
