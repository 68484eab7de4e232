/**
 * Inference never runs on the event loop: while a generation whose prefill step takes a long
 * time runs in its worker, the gateway's main thread keeps answering ListModels quickly and its
 * event loop stays free. The assertions compare against the measured length of the blocking
 * work, not against wall-clock targets (those belong to `npm run bench`).
 */
import assert from "node:assert/strict";
import { mkdtemp } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { monitorEventLoopDelay } from "node:perf_hooks";
import { test } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";
import { createClient } from "@connectrpc/connect";
import { createConnectTransport } from "@connectrpc/connect-node";
import { InferenceService } from "@parley/gen/inference/v1/inference_pb";
import { writeDecoderModel } from "@parley/model-builder";
import { pino } from "pino";
import { startTestEngine } from "../testing/model-fixtures.js";
import { createGatewayServer } from "./create-gateway-server.js";

test("ListModels answers and the event loop stays free during a long prefill", async (t) => {
  // A model large enough that one unchunked prefill of a long prompt takes a while.
  const dir = await mkdtemp(join(tmpdir(), "parley-heavy-"));
  await writeDecoderModel(dir, {
    hiddenSize: 256,
    layers: 4,
    vocabSize: 2000,
    contextLength: 4096,
  });
  const { engine, metrics } = await startTestEngine(
    [{ id: "heavy", dir, description: "generated for this test" }],
    { prefillChunkTokens: 4096 },
  );
  const server = createGatewayServer({
    engine,
    metrics,
    logger: pino({ level: "silent" }),
    config: {
      port: 0,
      host: "127.0.0.1",
      tls: undefined,
      corsOrigins: [],
      maxRequestBytes: 1 << 22,
      maxTimeoutMs: 600_000,
      webRoot: join(tmpdir(), "parley-no-web-client-here"),
    },
  });
  const { port } = await server.listen();
  const client = createClient(
    InferenceService,
    createConnectTransport({ baseUrl: `http://127.0.0.1:${port}`, httpVersion: "1.1" }),
  );
  try {
    await client.listModels({}); // warm the connection and the handler
    const loop = monitorEventLoopDelay({ resolution: 1 });
    loop.enable();
    const started = performance.now();
    let firstTokenAt = 0;
    const generation = (async () => {
      const stream = client.generateStream({
        prompt: "the gateway streams tokens while the worker computes. ".repeat(80),
        maxTokens: 8,
        temperature: 0,
      });
      for await (const message of stream) {
        if (message.tokenIds.length > 0 && firstTokenAt === 0) firstTokenAt = performance.now();
      }
    })();
    const latencies: number[] = [];
    let done = false;
    void generation.finally(() => {
      done = true;
    });
    while (!done) {
      const t0 = performance.now();
      const { models } = await client.listModels({});
      latencies.push(performance.now() - t0);
      assert.equal(models[0]?.id, "heavy");
      await sleep(5);
    }
    await generation;
    loop.disable();
    const prefillMs = firstTokenAt - started;
    const slowestListModels = Math.max(...latencies);
    const loopMaxMs = loop.max / 1e6;
    t.diagnostic(
      `prefill ${prefillMs.toFixed(1)} ms; ${latencies.length} ListModels calls, slowest ${slowestListModels.toFixed(1)} ms; event loop max ${loopMaxMs.toFixed(1)} ms, p99 ${(loop.percentile(99) / 1e6).toFixed(1)} ms`,
    );
    assert.ok(
      prefillMs > 100,
      `the prefill took only ${prefillMs.toFixed(1)} ms: too short to show anything; make the model bigger`,
    );
    assert.ok(
      latencies.length >= 5,
      `only ${latencies.length} ListModels calls during the prefill`,
    );
    // Were the prefill on the main thread, one call and one loop turn would wait for all of it.
    assert.ok(
      slowestListModels < prefillMs / 4,
      `ListModels took ${slowestListModels.toFixed(1)} ms during a ${prefillMs.toFixed(1)} ms prefill`,
    );
    assert.ok(
      loopMaxMs < prefillMs / 4,
      `the event loop stalled ${loopMaxMs.toFixed(1)} ms during a ${prefillMs.toFixed(1)} ms prefill`,
    );
  } finally {
    await server.close(1_000);
    await engine.close();
  }
});
