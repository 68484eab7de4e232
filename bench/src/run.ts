/**
 * @module `npm run bench`: every comparison of issues 5 and 12 in one run. It generates the
 * models it needs (cached), captures the payloads baselines serve from the real gateway, runs the
 * selected scenarios with the compared systems alternating round by round, computes the targets,
 * profiles the gateway for every target it falls short of, and writes results.json, the tables on
 * stdout and (for a full run) docs/benchmarks.md.
 */
import { existsSync } from "node:fs";
import { mkdir } from "node:fs/promises";
import { arch, cpus, release, totalmem, type } from "node:os";
import { join } from "node:path";
import { builtinModelDir } from "@parley/gateway/builtin-model";
import type { BenchContext } from "./bench-context.js";
import { captureFixtures, findLongPrompt, gatewayClient, saveFixtures } from "./bench-fixtures.js";
import { benchmarksDoc, defaultOutDir, sharedModelDir } from "./bench-paths.js";
import { profileGateway } from "./bench-profiles.js";
import { figureTables, targetsTable, writeOutputs } from "./bench-report.js";
import type { BenchResults, EngineRow, ScalingRow } from "./bench-results.js";
import {
  type BenchSettings,
  benchUsage,
  largeModelOptions,
  pacingModelOptions,
  parseBenchArgs,
  scenarioNames,
} from "./bench-settings.js";
import { computeTargets } from "./bench-targets.js";
import { type ChildSystem, startGateway, startLoadClient, startOrtLoop } from "./child-system.js";
import { writeDecoderModel } from "./model-generator.js";
import { writePeerModelFolder } from "./peer-model-folder.js";
import { profilePlans } from "./profile-plans.js";
import { runEngineScenario } from "./scenario-engine.js";
import { type Fp16Model, runFp16Scenario } from "./scenario-fp16.js";
import { runOpenAiSseScenario } from "./scenario-openai-sse.js";
import { type PeerModel, runPeerScenario } from "./scenario-peer.js";
import { runPrefixCacheScenario } from "./scenario-prefix-cache.js";
import { runScalingScenario } from "./scenario-scaling.js";
import { runStreamingScenario } from "./scenario-streaming.js";
import { runUnaryScenario } from "./scenario-unary.js";
import { runWireBytesScenario } from "./scenario-wire-bytes.js";

/** Tokens of the captured stream: the streaming scenario's 256 messages. */
const fixtureTokens = 256;

const startedAt = performance.now();
const log = (message: string) =>
  console.log(
    `[bench ${((performance.now() - startedAt) / 1000).toFixed(0).padStart(3)} s] ${message}`,
  );

/** The float16 models scenario 6 runs on, and notes on any it cannot. */
async function fp16Models(settings: BenchSettings, modelCache: string) {
  const models: Fp16Model[] = [];
  const notes: string[] = [];
  if (existsSync(`${sharedModelDir}/model.onnx`)) {
    models.push({
      label: "tiny-random-llama (third-party fp16, hidden 16, vocab 32k)",
      dir: sharedModelDir,
      tokens: settings.fp16.sharedTokens,
    });
  } else {
    notes.push(`tiny-random-llama is absent (${sharedModelDir}): not run`);
  }
  const options = settings.fp16.generated;
  const dir = join(modelCache, `fp16-hidden${options.hiddenSize}`);
  log(`generating the fp16 model in ${dir} unless it is there`);
  await writeDecoderModel(dir, options);
  models.push({
    label: `generated fp16 (hidden ${options.hiddenSize}, ${options.layers} layers, vocab ${options.vocabSize})`,
    dir,
    tokens: settings.fp16.generatedTokens,
  });
  return { models, notes };
}

/** The models scenarios 4 and 5 run on. */
function modelsToRun(settings: BenchSettings, largeDir: string) {
  const models = [
    {
      label: "built-in",
      spec: "builtin",
      dir: builtinModelDir(),
      tokens: settings.engine.builtinTokens,
      scalingTokens: settings.scaling.builtinTokens,
    },
  ];
  if (settings.engine.largeModel) {
    models.push({
      label: "large (hidden 512, 8 layers, vocab 32k)",
      spec: largeDir,
      dir: largeDir,
      tokens: settings.engine.largeTokens,
      scalingTokens: settings.scaling.largeTokens,
    });
  }
  return models;
}

/**
 * Scenario 7 on the large fp32 model (the built-in one with `--quick`) and on tiny-random-llama
 * (fp16), each with a fresh gateway so its peak RSS is the scenario's own.
 */
async function peerScenario(ctx: BenchContext, largeDir: string) {
  const { settings } = ctx;
  const peerRoot = join(settings.outDir, "peer-models");
  const candidates = [
    settings.engine.largeModel
      ? {
          label: "large fp32 (hidden 512, 8 layers, vocab 32k)",
          spec: largeDir,
          name: "large",
          tokens: settings.peer.largeTokens,
        }
      : {
          label: "built-in",
          spec: builtinModelDir(),
          name: "builtin",
          tokens: settings.peer.largeTokens,
        },
  ];
  const notes: string[] = [];
  if (existsSync(`${sharedModelDir}/model.onnx`)) {
    candidates.push({
      label: "tiny-random-llama (fp16)",
      spec: sharedModelDir,
      name: "tiny-random-llama",
      tokens: settings.peer.sharedTokens,
    });
  } else {
    notes.push(`tiny-random-llama is absent (${sharedModelDir}): not run`);
  }
  const rows = [];
  const checks = [];
  for (const candidate of candidates) {
    await writePeerModelFolder(candidate.spec, peerRoot, candidate.name);
    log(`peer ${candidate.label}: starting the gateway`);
    const gateway = await startGateway({
      name: `gateway-peer-${candidate.name}`,
      models: [candidate.spec],
    });
    try {
      const prompt = await findLongPrompt(gatewayClient(gateway.port), "", candidate.tokens);
      const model: PeerModel = { ...candidate, gateway, prompt, localModelPath: peerRoot };
      const result = await runPeerScenario(ctx, model);
      rows.push(...result.rows);
      checks.push(result.check);
    } finally {
      await gateway.stop();
    }
  }
  return { rows, checks, notes };
}

async function main(argv: readonly string[]): Promise<void> {
  const parsed = parseBenchArgs(argv);
  if (parsed === "help") {
    console.log(benchUsage);
    return;
  }
  const settings = parsed;
  const selected = (name: (typeof scenarioNames)[number]) => settings.only.includes(name);
  const scratchDir = join(settings.outDir, "scratch");
  await mkdir(scratchDir, { recursive: true });
  const modelCache = join(defaultOutDir, "models");
  const pacingDir = join(modelCache, "pacing");
  const largeDir = join(modelCache, "large");
  await writeDecoderModel(pacingDir, pacingModelOptions);
  if (
    settings.engine.largeModel &&
    (["engine", "scaling", "peer", "prefix-cache"] as const).some(selected)
  ) {
    log(`generating the larger model in ${largeDir} unless it is there`);
    await writeDecoderModel(largeDir, largeModelOptions);
  }

  log("capturing fixtures from the gateway");
  const fixturesPath = join(settings.outDir, "fixtures.json");
  // No stream interval: each message of the capture must carry one token.
  const setup = await startGateway({
    name: "gateway-setup",
    models: ["builtin"],
    pace: true,
    flags: ["--stream-interval-ms", "0"],
  });
  let builtinPrompt: string;
  try {
    const client = gatewayClient(setup.port);
    builtinPrompt = await findLongPrompt(client, "", fixtureTokens);
    // Baselines replay one token per message. A main thread that falls behind its worker hands a
    // stream several steps' tokens in one message, so the stream is captured with decode steps
    // held 5 ms apart, where the main thread never falls behind. (The pacer's grid can start a
    // step right after a late one: with the default stream interval, those two would merge.)
    // 5 ms, then 10, 20, 40, 80 ms when a loaded machine still merged steps.
    const spaceSteps = (attempt: number) =>
      setup.request({ type: "pace", paceMs: 5 * 2 ** (attempt - 1) }).then(() => undefined);
    await saveFixtures(
      fixturesPath,
      await captureFixtures(client, builtinPrompt, fixtureTokens, spaceSteps),
    );
  } finally {
    await setup.stop();
  }

  const loadClient = await startLoadClient();
  let nextKey = 1_000_000;
  const ctx: BenchContext = {
    settings,
    scratchDir,
    fixturesPath,
    models: { pacing: pacingDir, large: largeDir },
    builtinPrompt,
    client: loadClient,
    log,
    nextKeys(count) {
      const first = nextKey;
      nextKey += count;
      return first;
    },
  };
  const results: BenchResults = {
    command: `npm run bench${argv.length > 0 ? ` -- ${argv.join(" ")}` : ""}`,
    date: new Date().toISOString(),
    durationS: 0,
    machine: {
      cpuModel: cpus()[0]?.model ?? "unknown",
      cores: cpus().length,
      node: process.version,
      platform: `${type()} ${release()} ${arch()}`,
      memoryGiB: Math.round(totalmem() / 2 ** 30),
    },
    quick: settings.quick,
    rounds: settings.rounds,
    scenarios: {},
    targets: [],
    profiles: [],
  };
  let largePrompt: string | undefined;
  try {
    if (selected("unary")) results.scenarios.unary = await runUnaryScenario(ctx);
    if (selected("streaming")) results.scenarios.streaming = await runStreamingScenario(ctx);
    if (selected("wire-bytes")) results.scenarios.wireBytes = await runWireBytesScenario(ctx);
    if (selected("engine") || selected("scaling")) {
      const engineRows: EngineRow[] = [];
      const scalingRows: ScalingRow[] = [];
      for (const model of modelsToRun(settings, largeDir)) {
        log(`model ${model.label}: starting the gateway`);
        const gateway = await startGateway({
          name: `gateway-${model.label}`,
          models: [model.spec],
        });
        let ortLoop: ChildSystem | undefined;
        try {
          const tokens = Math.max(model.tokens, model.scalingTokens);
          const prompt =
            model.spec === "builtin" && tokens <= fixtureTokens
              ? builtinPrompt
              : await findLongPrompt(gatewayClient(gateway.port), "", tokens);
          if (model.spec !== "builtin") largePrompt = prompt;
          const underTest = { label: model.label, gateway, prompt };
          if (selected("engine")) {
            ortLoop = await startOrtLoop(model.dir);
            engineRows.push(...(await runEngineScenario(ctx, underTest, ortLoop, model.tokens)));
            await ortLoop.stop();
          }
          if (selected("scaling")) {
            scalingRows.push(...(await runScalingScenario(ctx, underTest, model.scalingTokens)));
          }
        } finally {
          await Promise.all([gateway.stop(), ortLoop?.stop()]);
        }
      }
      if (selected("engine")) results.scenarios.engine = { rows: engineRows };
      if (selected("scaling")) results.scenarios.scaling = { rows: scalingRows };
    }
    if (selected("peer")) results.scenarios.peer = await peerScenario(ctx, largeDir);
    if (selected("fp16")) {
      const { models, notes } = await fp16Models(settings, modelCache);
      results.scenarios.fp16 = { rows: await runFp16Scenario(ctx, models), notes };
    }

    if (selected("openai-sse")) results.scenarios.openAiSse = await runOpenAiSseScenario(ctx);
    if (selected("prefix-cache")) {
      results.scenarios.prefixCache = await runPrefixCacheScenario(ctx);
    }
    results.targets = computeTargets(results);
    if (settings.profile) {
      const plans = profilePlans(ctx, largePrompt);
      const keys = [
        ...new Set(results.targets.flatMap((t) => (t.profile === undefined ? [] : [t.profile]))),
      ];
      for (const key of keys) {
        const plan = plans.get(key);
        if (plan !== undefined)
          results.profiles.push(...(await profileGateway(ctx, settings.outDir, plan)));
      }
    }
  } finally {
    await loadClient.stop();
  }

  results.durationS = (performance.now() - startedAt) / 1000;
  const fullRun = !settings.quick && settings.only.length === scenarioNames.length;
  const jsonPath = join(settings.outDir, "results.json");
  await writeOutputs(results, jsonPath, fullRun ? benchmarksDoc : undefined);
  console.log(
    `\n## Targets\n\n${targetsTable(results)}\n\n## Figures\n\n${figureTables(results)}\n`,
  );
  log(`wrote ${jsonPath}${fullRun ? ` and ${benchmarksDoc}` : ""}`);
}

try {
  await main(process.argv.slice(2));
} catch (error) {
  console.error(
    `bench: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}`,
  );
  process.exitCode = 1;
}
