/**
 * @module Flags, environment and defaults into the typed config, and the refusals.
 */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { ConfigError, type GatewayConfig, parseConfig } from "./config.js";

function config(argv: string[], env: Record<string, string> = {}): GatewayConfig {
  const result = parseConfig(argv, env);
  assert.equal(result.kind, "run");
  return result.config;
}

describe("parseConfig", () => {
  it("has safe defaults: loopback, port 8080, the built-in model, same-origin only", () => {
    const defaults = config([]);
    assert.equal(defaults.port, 8080);
    assert.equal(defaults.probePort, undefined, "no probe port unless asked");
    assert.equal(defaults.host, "127.0.0.1");
    assert.equal(defaults.tls, undefined);
    assert.deepEqual(defaults.corsOrigins, []);
    assert.deepEqual(defaults.models, ["builtin"]);
    assert.equal(defaults.maxQueue, undefined);
    assert.equal(defaults.parkAfterMs, undefined);
    assert.equal(defaults.maxParked, undefined);
    assert.equal(defaults.maxRequestBytes, 4 * 1024 * 1024);
    assert.equal(defaults.maxTimeoutMs, 3_600_000);
    assert.equal(defaults.fastPaths, true);
    assert.equal(defaults.shutdownGraceMs, 25_000);
    assert.equal(defaults.logLevel, "info");
    assert.equal(defaults.offline, false);
    assert.equal(defaults.otlpEndpoint, undefined, "no tracing unless asked");
    assert.equal(defaults.upstreamApiKey, undefined);
    assert.equal(defaults.upstreamTimeoutMs, undefined);
    assert.match(defaults.webRoot, /web-client[/\\]dist$/);
  });

  it("reads every flag", () => {
    const parsed = config([
      "--port=9000",
      "--probe-port",
      "9001",
      "--host",
      "0.0.0.0",
      "--tls-cert",
      "c.pem",
      "--tls-key",
      "k.pem",
      "--cors-origin",
      "https://a.example",
      "--cors-origin",
      "http://localhost:5173",
      "--model",
      "builtin",
      "--model",
      "hf:org/name@main",
      "--max-queue",
      "8",
      "--max-batch",
      "4",
      "--intra-op-threads",
      "2",
      "--worker-nice",
      "0",
      "--device",
      "webgpu",
      "--prefix-cache-mib",
      "0",
      "--prefill-tokens",
      "512",
      "--stream-interval-ms",
      "0",
      "--default-max-tokens",
      "100",
      "--park-after-ms",
      "0",
      "--max-parked",
      "2",
      "--park-timeout-ms",
      "5000",
      "--max-request-bytes",
      "1024",
      "--max-timeout-ms",
      "5000",
      "--fast-paths",
      "off",
      "--shutdown-grace-ms",
      "0",
      "--log-level",
      "debug",
      "--offline",
      "--web-root",
      "/srv/web",
      "--api-key",
      "ci:k3y-ci.1",
      "--api-key",
      "bare~key+/=",
      "--api-key-file",
      "/etc/parley/keys",
      "--protect-metrics",
      "--upstream-api-key",
      "sk-up",
      "--upstream-timeout-ms",
      "2500",
      "--otlp-endpoint",
      "http://collector:4318",
    ]);
    assert.deepEqual(parsed, {
      port: 9000,
      probePort: 9001,
      host: "0.0.0.0",
      tls: { certFile: "c.pem", keyFile: "k.pem" },
      corsOrigins: ["https://a.example", "http://localhost:5173"],
      models: ["builtin", "hf:org/name@main"],
      maxQueue: 8,
      maxBatch: 4,
      intraOpThreads: 2,
      workerNice: 0,
      device: "webgpu",
      prefixCacheMib: 0,
      prefillTokens: 512,
      streamIntervalMs: 0,
      defaultMaxTokens: 100,
      parkAfterMs: 0,
      maxParked: 2,
      parkTimeoutMs: 5000,
      maxRequestBytes: 1024,
      maxTimeoutMs: 5000,
      fastPaths: false,
      shutdownGraceMs: 0,
      logLevel: "debug",
      offline: true,
      webRoot: "/srv/web",
      apiKeys: [
        { name: "ci", key: "k3y-ci.1" },
        { name: "api-key-2", key: "bare~key+/=" },
      ],
      apiKeyFile: "/etc/parley/keys",
      protectMetrics: true,
      upstreamApiKey: "sk-up",
      upstreamTimeoutMs: 2500,
      otlpEndpoint: "http://collector:4318",
    });
  });

  it("takes the OTLP endpoint from OTEL_EXPORTER_OTLP_ENDPOINT and refuses one that is no URL", () => {
    assert.equal(
      config([], { OTEL_EXPORTER_OTLP_ENDPOINT: "https://otel.example:4318" }).otlpEndpoint,
      "https://otel.example:4318",
    );
    for (const bad of ["collector:4318", "grpc://collector:4317", "not a url"]) {
      assert.throws(() => parseConfig(["--otlp-endpoint", bad], {}), /--otlp-endpoint must be/);
    }
  });

  it("refuses API keys a Bearer header cannot carry, repeated ones, and --protect-metrics alone", () => {
    for (const [args, message] of [
      [["--api-key", "has space"], /--api-key line 1: a key holds only/],
      [["--api-key", "a:k1", "--api-key", "a:k2"], /name "a" is used twice/],
      [["--api-key", "x:same", "--api-key", "y:same"], /named "y" repeats another/],
      [["--api-key", "bad name!:key"], /a key name holds/],
      [["--protect-metrics"], /--protect-metrics needs --api-key/],
    ] as const) {
      assert.throws(
        () => parseConfig(args, {}),
        (error) => {
          assert.ok(error instanceof ConfigError);
          assert.match(error.message, message);
          assert.ok(!error.message.includes("same") && !error.message.includes("has space"));
          return true;
        },
      );
    }
  });

  it("reads the environment, with flags winning", () => {
    const env = {
      PORT: "7000",
      PARLEY_MODEL: "builtin, ./models/x",
      PARLEY_CORS_ORIGIN: "*",
      HF_HUB_OFFLINE: "1",
      PARLEY_MAX_QUEUE: "3",
    };
    const fromEnv = config([], env);
    assert.equal(fromEnv.port, 7000);
    assert.deepEqual(fromEnv.models, ["builtin", "./models/x"]);
    assert.deepEqual(fromEnv.corsOrigins, ["*"]);
    assert.equal(fromEnv.offline, true);
    assert.equal(fromEnv.maxQueue, 3);
    const flagged = config(["--port", "7001", "--model", "hf:a/b"], env);
    assert.equal(flagged.port, 7001);
    assert.deepEqual(flagged.models, ["hf:a/b"]);
  });

  it("takes --intra-op-threads auto, and a number", () => {
    assert.equal(config(["--intra-op-threads", "auto"], {}).intraOpThreads, "auto");
    assert.equal(config([], { PARLEY_INTRA_OP_THREADS: "auto" }).intraOpThreads, "auto");
    assert.equal(config([], {}).intraOpThreads, undefined);
  });

  it("prints usage for --help", () => {
    const result = parseConfig(["--help"], {});
    assert.equal(result.kind, "help");
    for (const flag of [
      "--port",
      "--tls-cert",
      "--cors-origin",
      "--model",
      "--max-timeout-ms",
      "--offline",
    ]) {
      assert.ok(result.usage.includes(flag), flag);
    }
  });

  it("refuses what it cannot use, naming the flag", () => {
    const refusals: [string[], RegExp][] = [
      [["--port", "65536"], /--port/],
      [["--fast-paths", "maybe"], /--fast-paths must be on or off/],
      [["--port", "eighty"], /--port/],
      [["--max-queue", "0"], /--max-queue/],
      [["--max-batch", "1.5"], /--max-batch/],
      [["--intra-op-threads", "many"], /--intra-op-threads/],
      [["--worker-nice", "20"], /--worker-nice must be an integer in \[0, 19\]/],
      [["--park-after-ms", "-1"], /--park-after-ms/],
      [["--park-timeout-ms", "0"], /--park-timeout-ms/],
      // Node's timers overflow above 2^31 - 1 ms and fire at once.
      [
        ["--max-timeout-ms", "2147483648"],
        /--max-timeout-ms must be an integer in \[1, 2147483647\]/,
      ],
      [["--tls-cert", "c.pem"], /--tls-cert and --tls-key/],
      [["--cors-origin", "https://a.example/path"], /--cors-origin/],
      [["--cors-origin", "a.example"], /--cors-origin/],
      [["--log-level", "loud"], /--log-level/],
      [["--device", "tpu"], /--device must be one of cpu, cuda, webgpu, coreml, dml/],
      [["--nope"], /nope/],
      [["positional"], /positional/],
    ];
    for (const [argv, pattern] of refusals) {
      assert.throws(
        () => parseConfig(argv, {}),
        (error: unknown) => error instanceof ConfigError && pattern.test(error.message),
        argv.join(" "),
      );
    }
  });
});
