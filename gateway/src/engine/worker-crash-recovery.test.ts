/**
 * A model whose worker thread dies is not ready until a new worker has loaded it again: the
 * generations it held and queued fail with `unavailable`, new ones are refused with a message
 * that says the model is restarting, the death and the restart are logged, and the restarted
 * worker gives the same greedy output as the one before. The worker is really ended (the
 * runner's own `Worker`, found through `process.on("worker")`, is terminated), never mocked.
 */
import assert from "node:assert/strict";
import { rename } from "node:fs/promises";
import { join } from "node:path";
import { test } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";
import type { Worker } from "node:worker_threads";
import type { Registry } from "prom-client";
import { createLogger } from "../observability/logger.js";
import {
  builtinSource,
  collect,
  greedy,
  metricValue,
  modelVariant,
  startTestEngine,
} from "../testing/model-fixtures.js";
import { watchWorkers } from "../testing/model-workers.js";
import type { Engine } from "./engine.js";
import { EngineError } from "./engine-error.js";

const model = { model: "parley-tiny" };
const prompt = greedy("Once upon a time", 12);
/** A generation that would run for long; its reader never reads, so it pauses for credit. */
const endless = greedy("Tell me a long story", 100_000);

function isUnavailable(error: unknown): boolean {
  return error instanceof EngineError && error.code === "unavailable";
}

/** A logger whose lines the test reads back. */
function recordingLogger() {
  const lines: Record<string, unknown>[] = [];
  const logger = createLogger({
    level: "warn",
    destination: { write: (line: string) => lines.push(JSON.parse(line)) },
  });
  return { logger, lines };
}

/** Resolves once the engine reports `ready` (a list of model ids). */
function readiness(engine: Engine, ready: readonly string[]): Promise<void> {
  return new Promise((resolve) => {
    const check = () => {
      if (engine.readyModels().join() !== ready.join()) return;
      stop();
      resolve();
    };
    const stop = engine.onReadinessChange(check);
    check();
  });
}

/** Waits until `count` tokens were generated in total and then no more come: the worker waits. */
async function pausedAt(metrics: Registry, count: number): Promise<void> {
  while ((await metricValue(metrics, "parley_completion_tokens_total", model)) < count) {
    await sleep(5);
  }
  await sleep(50);
  assert.equal(await metricValue(metrics, "parley_completion_tokens_total", model), count);
}

test("a worker crash fails its generations with unavailable; the restarted worker gives the same greedy output", async () => {
  const workers = watchWorkers();
  const { logger, lines } = recordingLogger();
  const { engine, metrics } = await startTestEngine([builtinSource()], {
    logger,
    maxBatchSize: 1,
    maxQueue: 1,
    creditWindow: 4,
  });
  try {
    const before = await collect(engine, prompt);
    const changes: string[][] = [];
    engine.onReadinessChange(() => changes.push([...engine.readyModels()]));

    // One generation in the worker (paused once its 4 credits are used), one queued behind it.
    const inFlight = engine.generate(endless, new AbortController().signal);
    const queued = collect(engine, greedy("and then", 4)).catch((error: unknown) => error);
    await pausedAt(metrics, before.tokenIds.length + 4);
    // The worker is idle: it waits for credit. Ending it now is safe (see model-workers.ts).
    const [worker] = workers.started as [Worker];
    assert.equal(workers.started.length, 1);
    const code = await worker.terminate();

    assert.deepEqual(engine.readyModels(), []);
    assert.throws(
      () => engine.generate(prompt, new AbortController().signal),
      (error: unknown) => isUnavailable(error) && /parley-tiny is restarting/.test(String(error)),
    );
    let delivered = 0;
    await assert.rejects(
      (async () => {
        for await (const event of inFlight) delivered += event.tokenIds.length;
      })(),
      isUnavailable,
    );
    assert.equal(delivered, 4, "the tokens generated before the crash are still delivered");
    assert.ok(isUnavailable(await queued), String(await queued));
    assert.equal(
      await metricValue(metrics, "parley_generations_total", { ...model, finish_reason: "error" }),
      2,
    );
    assert.equal(await metricValue(metrics, "parley_model_ready", model), 0);
    assert.equal(await metricValue(metrics, "parley_generations_in_flight", model), 0);

    await readiness(engine, ["parley-tiny"]);
    assert.deepEqual(changes, [[], ["parley-tiny"]]);
    assert.equal(workers.started.length, 2, "one new worker");
    assert.equal(await metricValue(metrics, "parley_model_worker_restarts_total", model), 1);
    assert.equal(await metricValue(metrics, "parley_model_ready", model), 1);
    const after = await collect(engine, prompt);
    assert.deepEqual(after.tokenIds, before.tokenIds);
    assert.equal(after.text, before.text);

    const died = lines.find((line) => /exited unexpectedly/.test(String(line.msg)));
    assert.deepEqual([died?.level, died?.model, died?.code], [50, "parley-tiny", code]);
    const restarted = lines.find((line) => line.msg === "model worker restarted");
    assert.deepEqual(
      [restarted?.level, restarted?.model, restarted?.code],
      [40, "parley-tiny", code],
    );
  } finally {
    await engine.close();
    workers.stop();
  }
});

test("a replacement that cannot load the model is retried with backoff until one can", async () => {
  const workers = watchWorkers();
  const { logger, lines } = recordingLogger();
  const source = await modelVariant(builtinSource(), () => {});
  const { engine, metrics } = await startTestEngine([source], { logger });
  try {
    const graph = join(source.dir, "model.onnx");
    await rename(graph, `${graph}.away`);
    await (workers.started[0] as Worker).terminate();
    // Replacements start after 100 ms, then 200 ms more, each failing to find the graph.
    const failures = () => lines.filter((line) => /could not load/.test(String(line.msg)));
    while (failures().length < 2) await sleep(10);
    assert.equal(await metricValue(metrics, "parley_model_worker_restarts_total", model), 2);
    assert.deepEqual(engine.readyModels(), []);
    assert.throws(() => engine.generate(prompt, new AbortController().signal), isUnavailable);
    await rename(`${graph}.away`, graph);
    await readiness(engine, ["parley-tiny"]);
    assert.equal((await collect(engine, prompt)).tokenIds.length, 12);
    assert.deepEqual([failures()[0]?.level, failures()[0]?.model], [50, "parley-tiny"]);
    assert.equal(workers.exited(), workers.started.length - 1, "failed replacements ended");
  } finally {
    await engine.close();
    workers.stop();
  }
});

test("close() while the worker restarts leaves no worker thread behind", async () => {
  for (const moment of ["waiting to restart", "loading the model again"] as const) {
    const workers = watchWorkers();
    const { engine } = await startTestEngine([builtinSource()]);
    await (workers.started[0] as Worker).terminate();
    if (moment === "loading the model again") await workers.startedCount(2);
    await engine.close();
    const started = workers.started.length;
    await sleep(300); // past the first restart's delay: a timer left behind would start a worker
    assert.equal(workers.started.length, started, `${moment}: no worker started after close`);
    assert.equal(workers.exited(), started, `${moment}: every worker ended`);
    workers.stop();
  }
});
