/**
 * @module Smoke test of the benchmark harness: `run.js --quick` against the real gateway for the
 * unary, streaming, engine and fp16 scenarios, checking that every figure it reports is a real
 * measurement (positive, finite, no failed calls). It asserts no performance threshold:
 * performance is only judged by `npm run bench`.
 */
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";
import { benchMain, gatewayMain } from "./bench-paths.js";
import type { BenchResults } from "./bench-results.js";

function runBench(args: readonly string[]): Promise<{ code: number | null; output: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [benchMain, ...args], {
      stdio: ["ignore", "pipe", "pipe"],
    });
    let output = "";
    child.stdout.setEncoding("utf8").on("data", (chunk: string) => {
      output += chunk;
    });
    child.stderr.setEncoding("utf8").on("data", (chunk: string) => {
      output += chunk;
    });
    child.once("error", reject);
    child.once("exit", (code) => resolve({ code, output }));
  });
}

const positive = (value: number, what: string) =>
  assert.ok(
    Number.isFinite(value) && value > 0,
    `${what} should be a positive number, got ${value}`,
  );

test("npm run bench -- --quick measures the real gateway and its baselines", {
  timeout: 240_000,
}, async () => {
  const out = await mkdtemp(join(tmpdir(), "parley-bench-"));
  try {
    const { code, output } = await runBench([
      "--quick",
      "--only",
      "unary,streaming,engine,fp16,peer",
      "--out",
      out,
      // This build as its own baseline: the side-by-side path runs, and must find it equal.
      "--baseline-gateway",
      gatewayMain,
    ]);
    assert.equal(code, 0, output);
    const results = JSON.parse(await readFile(join(out, "results.json"), "utf8")) as BenchResults;
    assert.equal(results.quick, true);
    assert.ok(results.machine.cores > 0);

    const unary = results.scenarios.unary;
    assert.ok(unary !== undefined, "the unary scenario ran");
    assert.ok(unary.statusChecks.length >= 8);
    for (const check of unary.statusChecks) assert.match(check, /: ok$/);
    const systems = new Set(unary.rows.map((row) => row.system));
    assert.deepEqual([...systems].sort(), [
      "connectNodeAdapter",
      "fastify",
      "gateway",
      "gateway (baseline build)",
      "grpc-js",
      "raw node:http2",
    ]);
    for (const row of unary.rows) {
      const what = `${row.system} ${row.protocol} ${row.client} c=${row.concurrency}`;
      positive(row.requestsPerSecond.median, `${what} req/s`);
      positive(row.latencyMs.p50, `${what} latency`);
      positive(row.serverCpuUsPerRequest, `${what} server CPU`);
      positive(row.clientCpuUsPerRequest, `${what} client CPU`);
      assert.equal(row.errors, 0, `${what} errors`);
    }

    const engine = results.scenarios.engine;
    assert.ok(engine !== undefined, "the engine scenario ran");
    assert.deepEqual(engine.rows.map((row) => row.system).sort(), ["gateway", "ort-loop"]);
    for (const row of engine.rows) positive(row.tokensPerSecond.median, `${row.system} tokens/s`);

    // fp16: the gateway and both conversions of the ORT loop decoded the generated fp16 model
    // (and tiny-random-llama where it is present), and the loop timed its conversions.
    const fp16 = results.scenarios.fp16;
    assert.ok(fp16 !== undefined, "the fp16 scenario ran");
    const generated = fp16.rows.filter((row) => row.model.startsWith("generated fp16"));
    assert.deepEqual(
      generated.map((row) => `${row.system} ${row.conversion}`),
      ["gateway table", "ort-loop table", "ort-loop per-value arithmetic"],
    );
    for (const row of fp16.rows) {
      const what = `${row.model} ${row.system} ${row.conversion}`;
      positive(row.tokensPerSecond.median, `${what} tokens/s`);
      if (row.system === "ort-loop") positive(row.conversionUsPerToken ?? 0, `${what} conversion`);
    }

    // Streaming: every run delivered tokens, and the gateway's token trace matched the client's
    // arrivals (the probe depends on the engine's worker messages; this catches it drifting).
    const streaming = results.scenarios.streaming;
    assert.ok(streaming !== undefined, "the streaming scenario ran");
    for (const row of streaming.rows) {
      const what = `${row.system} ${row.protocol} ${row.mode} ${row.streams} streams`;
      positive(row.tokensPerSecond.median, `${what} tokens/s`);
      positive(row.ttfbMs.p50, `${what} TTFB`);
      assert.ok(Number.isFinite(row.addedLatencyMs.p50), `${what}: server stamps matched`);
      assert.equal(row.failed, 0, `${what} failures: ${row.failures.join("; ")}`);
    }
    assert.ok(
      streaming.rows.some(
        (row) => row.system === "gateway (baseline build)" && row.mode === "fast",
      ),
      "the baseline build streamed beside the gateway",
    );
    const paced = streaming.rows.filter((row) => row.mode === "paced" && row.system === "gateway");
    assert.ok(paced.length > 0);
    for (const row of paced) positive(row.serverGapMs.p50, "the step pacer spaces tokens");

    // The peer: transformers.js loaded the same folders offline, behind SSE and in-process, and
    // decoded the same greedy ids as the gateway.
    const peer = results.scenarios.peer;
    assert.ok(peer !== undefined, "the peer scenario ran");
    assert.deepEqual([...new Set(peer.rows.map((row) => row.system))].sort(), [
      "gateway",
      "transformers.js + SSE",
      "transformers.js in-process",
    ]);
    for (const row of peer.rows) {
      const what = `${row.model} ${row.system} ${row.streams} streams`;
      positive(row.tokensPerSecond.median, `${what} tokens/s`);
      positive(row.peakRssMiB, `${what} peak RSS`);
    }
    assert.ok(peer.checks.length > 0);
    for (const check of peer.checks) assert.ok(check.identical, JSON.stringify(check));

    const computed = results.targets.filter((t) => t.verdict === "PASS" || t.verdict === "SHORT");
    assert.ok(computed.length >= 3, "unary and engine targets are computed");
    assert.ok(
      computed.some((t) =>
        t.name.startsWith("unary server CPU per call, baseline build ÷ this build, geometric mean"),
      ) &&
        computed.some((t) => t.name.startsWith("streaming tokens/s, this build ÷ baseline build")),
      "the baseline build's ratios are computed",
    );
    assert.equal(results.scenarios.wireBytes, undefined, "--only leaves other scenarios out");
  } finally {
    await rm(out, { recursive: true, force: true });
  }
});
