/**
 * @module The metrics operators expect, scraped from a real gateway's `/metrics` after real
 * generations on the built-in model: queue, prefill, decode and end-to-end times, prompt and
 * generation lengths (their counts and sums match what the responses said was generated), the
 * KV cache a held-open stream occupies, `parley_build_info`, and prom-client's event-loop lag as
 * the only event-loop metric.
 */
import assert from "node:assert/strict";
import { readFile } from "node:fs/promises";
import { createRequire } from "node:module";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { createClient } from "@connectrpc/connect";
import { createConnectTransport } from "@connectrpc/connect-node";
import { InferenceService } from "@parley/gen/inference/v1/inference_pb";
import { builtinModelDir } from "../models/builtin/builtin-model.js";
import { type RealGateway, startRealGateway } from "../testing/real-gateway.js";

/** One sample of the text exposition: `name{labels} value`. */
const sampleLine = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{.*\})? (\S+)$/;

/** Scrapes `/metrics` into samples keyed by `name{labels}` exactly as exposed. */
async function scrape(base: string): Promise<Map<string, number>> {
  const response = await fetch(`${base}/metrics`);
  assert.equal(response.status, 200);
  const samples = new Map<string, number>();
  for (const line of (await response.text()).split("\n")) {
    if (line === "" || line.startsWith("#")) continue;
    const match = sampleLine.exec(line);
    assert.ok(match, `a sample line: ${line}`);
    samples.set(`${match[1]}${match[2] ?? ""}`, Number(match[3]));
  }
  return samples;
}

/** Scrapes until `done` holds (the test's timeout bounds the wait). */
async function scrapeUntil(
  base: string,
  done: (samples: Map<string, number>) => boolean,
): Promise<Map<string, number>> {
  for (;;) {
    const samples = await scrape(base);
    if (done(samples)) return samples;
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

function sample(samples: Map<string, number>, key: string): number {
  const value = samples.get(key);
  assert.ok(value !== undefined, `no sample ${key}`);
  return value;
}

const model = '{model="parley-tiny"}';
const maxBatch = 4;

describe("operator metrics on a real gateway", () => {
  let gateway: RealGateway;
  let client: ReturnType<typeof createClient<typeof InferenceService>>;
  const usages: { promptTokens: number; completionTokens: number }[] = [];

  before(async () => {
    gateway = await startRealGateway({ engine: { maxBatchSize: maxBatch } });
    client = createClient(
      InferenceService,
      createConnectTransport({ baseUrl: gateway.base, httpVersion: "1.1" }),
    );
    for (const [prompt, maxTokens] of [
      ["Hello", 3],
      ["Once upon a time there was", 9],
      ["The quick brown fox jumps over the lazy dog", 5],
    ] as const) {
      const response = await client.generate({ prompt, maxTokens, temperature: 0 });
      assert.ok(response.usage !== undefined);
      usages.push(response.usage);
    }
  });
  after(() => gateway.close());

  it("counts each generation once in the queue, prefill, decode and end-to-end histograms", async () => {
    const samples = await scrape(gateway.base);
    for (const name of [
      "parley_request_queue_time_seconds",
      "parley_request_prefill_time_seconds",
      "parley_request_decode_time_seconds",
      "parley_e2e_request_latency_seconds",
    ]) {
      assert.equal(sample(samples, `${name}_count${model}`), usages.length, name);
      assert.ok(sample(samples, `${name}_sum${model}`) > 0, `${name} measured some time`);
      assert.equal(sample(samples, `${name}_bucket{le="+Inf",model="parley-tiny"}`), usages.length);
    }
  });

  it("has prompt and generation length histograms whose sums are the tokens generated", async () => {
    const samples = await scrape(gateway.base);
    const prompt = usages.reduce((n, u) => n + u.promptTokens, 0);
    const generated = usages.reduce((n, u) => n + u.completionTokens, 0);
    assert.equal(sample(samples, `parley_request_prompt_tokens_count${model}`), usages.length);
    assert.equal(sample(samples, `parley_request_prompt_tokens_sum${model}`), prompt);
    assert.equal(sample(samples, `parley_request_generation_tokens_count${model}`), usages.length);
    assert.equal(sample(samples, `parley_request_generation_tokens_sum${model}`), generated);
    assert.equal(sample(samples, `parley_prompt_tokens_total${model}`), prompt);
    assert.equal(sample(samples, `parley_completion_tokens_total${model}`), generated);
    // The 3-token generation is in the le=5 bucket, the 9-token one is not.
    const shortOnes = usages.filter((u) => u.completionTokens <= 5).length;
    assert.equal(
      sample(samples, 'parley_request_generation_tokens_bucket{le="5",model="parley-tiny"}'),
      shortOnes,
    );
  });

  it("says which Parley, Node.js and onnxruntime-node run in parley_build_info", async () => {
    const samples = await scrape(gateway.base);
    const require = createRequire(import.meta.url);
    const gatewayVersion = (require("../../package.json") as { version: string }).version;
    const ortVersion = (require("onnxruntime-node/package.json") as { version: string }).version;
    const key = `parley_build_info{version="${gatewayVersion}",node_version="${process.versions.node}",onnxruntime_version="${ortVersion}"}`;
    assert.equal(sample(samples, key), 1);
  });

  it("exposes the event-loop delay once, as prom-client's nodejs_eventloop_lag_*", async () => {
    const samples = await scrape(gateway.base);
    for (const name of ["p50", "p90", "p99", "max"]) {
      assert.ok(samples.has(`nodejs_eventloop_lag_${name}_seconds`), name);
    }
    assert.ok(![...samples.keys()].some((key) => key.startsWith("parley_event_loop_delay")));
  });

  it("reports the KV cache a stream holds, and none once it is gone", async () => {
    const config = JSON.parse(await readFile(join(builtinModelDir(), "config.json"), "utf8")) as {
      num_hidden_layers: number;
      num_key_value_heads: number;
      head_dim: number;
      max_position_embeddings: number;
    };
    // Keys and values, float32.
    const bytesPerPosition =
      config.num_hidden_layers * 2 * config.num_key_value_heads * config.head_dim * 4;
    // The worker frees the last generation's cache as it goes idle, a moment after its end.
    const idle = await scrapeUntil(
      gateway.base,
      (s) => s.get(`parley_kv_cache_bytes${model}`) === 0,
    );
    assert.equal(sample(idle, `parley_kv_cache_usage_ratio${model}`), 0);

    const abort = new AbortController();
    const messages = client
      .generateStream(
        { prompt: "Once upon a time", maxTokens: 1000, temperature: 0 },
        { signal: abort.signal },
      )
      [Symbol.asyncIterator]();
    await messages.next(); // the stream is open
    const first = await messages.next(); // a token: the prompt is prefilled
    assert.ok((first.value?.tokenIds.length ?? 0) > 0);
    // Not reading on: the generation stays paused with its cache (the credit window is 16).
    const held = await scrape(gateway.base);
    const bytes = sample(held, `parley_kv_cache_bytes${model}`);
    assert.ok(bytes > 0, `the paused stream's cache, got ${bytes}`);
    assert.equal(bytes % bytesPerPosition, 0, "whole positions");
    const full = maxBatch * config.max_position_embeddings * bytesPerPosition;
    assert.ok(Math.abs(sample(held, `parley_kv_cache_usage_ratio${model}`) - bytes / full) < 1e-12);

    abort.abort();
    await messages.next().catch(() => undefined);
    await scrapeUntil(gateway.base, (s) => s.get(`parley_kv_cache_bytes${model}`) === 0);
  });
});
