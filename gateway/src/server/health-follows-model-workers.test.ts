/**
 * gRPC health follows the model workers: while the only model's worker is dead and not yet
 * replaced, Check and Watch say NOT_SERVING for the server ("") and for
 * inference.v1.InferenceService, and Generate fails with Unavailable; once a new worker serves,
 * health says SERVING again and Generate gives the greedy text it gave before the crash. A real
 * engine, a real server on port 0 and connect-node's gRPC client; the worker is really ended.
 */
import assert from "node:assert/strict";
import { rename } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";
import type { Worker } from "node:worker_threads";
import { Code, ConnectError, createClient } from "@connectrpc/connect";
import { createGrpcTransport } from "@connectrpc/connect-node";
import {
  Health,
  HealthCheckResponse_ServingStatus as ServingStatus,
} from "@parley/gen/grpc/health/v1/health_pb";
import { InferenceService } from "@parley/gen/inference/v1/inference_pb";
import { createLogger } from "../observability/logger.js";
import { builtinSource, modelVariant, startTestEngine } from "../testing/model-fixtures.js";
import { watchWorkers } from "../testing/model-workers.js";
import { createGatewayServer } from "./create-gateway-server.js";

const services = ["", InferenceService.typeName];

test("health is NOT_SERVING while the model's worker restarts, and SERVING once it serves again", async () => {
  const workers = watchWorkers();
  // A copy of the built-in model, so the test can hold the restart back by hiding its graph.
  const source = await modelVariant(builtinSource(), () => {});
  const { engine, metrics } = await startTestEngine([source]);
  const server = createGatewayServer({
    engine,
    metrics,
    logger: createLogger({ level: "silent" }),
    config: {
      port: 0,
      host: "127.0.0.1",
      tls: undefined,
      corsOrigins: [],
      maxRequestBytes: 1 << 20,
      maxTimeoutMs: 60_000,
      webRoot: join(tmpdir(), "parley-no-web-client-here"),
    },
  });
  const { port } = await server.listen();
  const transport = createGrpcTransport({ baseUrl: `http://127.0.0.1:${port}` });
  const health = createClient(Health, transport);
  const inference = createClient(InferenceService, transport);
  const request = { prompt: "Once upon a time", maxTokens: 12, temperature: 0 };
  const checks = () =>
    Promise.all(services.map(async (service) => (await health.check({ service })).status));
  try {
    const before = await inference.generate(request);
    assert.equal(before.usage?.completionTokens, 12);
    // One Watch per service, until it has seen the crash and the recovery.
    const watched = services.map(() => [] as ServingStatus[]);
    const watches = services.map(async (service, i) => {
      for await (const { status } of health.watch({ service })) {
        watched[i]?.push(status);
        if (watched[i]?.length === 3) break;
      }
    });
    const seen = async (count: number) => {
      while (!watched.every((statuses) => statuses.length >= count)) await sleep(5);
    };
    await seen(1);
    assert.deepEqual(await checks(), [ServingStatus.SERVING, ServingStatus.SERVING]);

    const graph = join(source.dir, "model.onnx");
    await rename(graph, `${graph}.away`); // replacements fail to load until it is back
    await (workers.started[0] as Worker).terminate(); // idle: nothing is generating
    await seen(2);
    assert.deepEqual(await checks(), [ServingStatus.NOT_SERVING, ServingStatus.NOT_SERVING]);
    const refused = await inference.generate(request).catch((error: unknown) => error);
    assert.ok(refused instanceof ConnectError, String(refused));
    assert.equal(refused.code, Code.Unavailable);
    assert.match(refused.rawMessage, /parley-tiny is restarting/);

    await rename(`${graph}.away`, graph);
    await Promise.all(watches);
    for (const statuses of watched) {
      assert.deepEqual(statuses, [
        ServingStatus.SERVING,
        ServingStatus.NOT_SERVING,
        ServingStatus.SERVING,
      ]);
    }
    assert.deepEqual(await checks(), [ServingStatus.SERVING, ServingStatus.SERVING]);
    const after = await inference.generate(request);
    assert.equal(after.text, before.text);
  } finally {
    await server.close(1_000);
    await engine.close(1_000);
    workers.stop();
  }
});
