/**
 * @module Scenario 1, protocol cost: `ListModels` (no model work) at 1, 16 and 64 concurrent
 * calls, through the gateway over each protocol and against baselines serving the same response:
 * a bare `node:http2` server with pre-encoded bytes (the ceiling), a grpc-js server, a Fastify
 * JSON endpoint, and connect-node's own `connectNodeAdapter` on a bare `node:http2` server (the
 * library the gateway is built on, without the gateway around it). Load comes from h2load (one HTTP/2 connection with N streams, or N
 * HTTP/1.1 connections) and from connect-node clients. Systems alternate run by run, round after
 * round; CPU per request is read from each process.
 */
import { mkdtemp, symlink } from "node:fs/promises";
import { join } from "node:path";
import { toBinary } from "@bufbuild/protobuf";
import { builtinModelDir } from "@parley/gateway/builtin-model";
import { ListModelsResponseSchema } from "@parley/gen/inference/v1/inference_pb";
import type { BenchContext } from "./bench-context.js";
import { measured, type StatsDelta } from "./bench-context.js";
import { fixturesAsJson, gatewayClient, loadFixtures, saveFixtures } from "./bench-fixtures.js";
import type { UnaryRow } from "./bench-results.js";
import {
  baselineGatewayName,
  type ChildSystem,
  startBaseline,
  startGateway,
} from "./child-system.js";
import { runH2load } from "./h2load-runner.js";
import { listModelsBody, methodPath, requestHeaders, type WireProtocol } from "./rpc-wire.js";
import { median, roundFigure } from "./summary-stats.js";
import { checkUnary, type UnaryProbe } from "./unary-check.js";
import type { UnaryLoadResult } from "./unary-load.js";

interface H2loadCase {
  readonly system: ChildSystem;
  readonly systemName: string;
  readonly protocol: string;
  readonly probe: UnaryProbe;
}

interface NodeCase {
  readonly system: ChildSystem;
  readonly systemName: string;
  readonly protocol: WireProtocol;
  readonly httpVersion: "1.1" | "2";
}

interface Sample {
  readonly rps: number;
  readonly p50: number;
  readonly p99: number;
  readonly serverCpu: number;
  readonly mainCpu: number;
  readonly clientCpu: number;
  readonly errors: number;
}

/** What both load generators report, per run. */
interface LoadFigures {
  readonly requests: number;
  readonly requestsPerSecond: number;
  readonly latencyMs: { readonly p50: number; readonly p99: number };
  readonly clientCpuUs: number;
}

/** One run's figures, CPU divided per request. */
function perRequest(result: LoadFigures, delta: StatsDelta, errors: number): Sample {
  const n = Math.max(1, result.requests);
  return {
    rps: result.requestsPerSecond,
    p50: result.latencyMs.p50,
    p99: result.latencyMs.p99,
    serverCpu: delta.cpuUs / n,
    mainCpu: delta.mainThreadCpuUs / n,
    clientCpu: result.clientCpuUs / n,
    errors,
  };
}

const formats: Record<WireProtocol, UnaryProbe["format"]> = {
  grpc: "grpc",
  "grpc-web": "grpc-web",
  "connect-proto": "binary",
  "connect-json": "json",
};

function rpcProbe(system: ChildSystem, protocol: WireProtocol, http1: boolean): UnaryProbe {
  return {
    label: `${system.name} ${protocol}${http1 ? " HTTP/1.1" : ""}`,
    port: system.port,
    path: methodPath("ListModels"),
    headers: requestHeaders(protocol, false),
    body: listModelsBody(protocol),
    http1,
    format: formats[protocol],
  };
}

/**
 * A round's order of cases: each baseline-build case follows this build's in odd rounds and
 * precedes it in even ones, so that whatever the first of two neighbouring runs pays (the
 * previous system's load just ended) falls on both builds alike.
 */
function roundOrder<T extends { readonly system: ChildSystem }>(
  cases: readonly T[],
  round: number,
  baseline: ChildSystem | undefined,
): T[] {
  const ordered = [...cases];
  if (baseline === undefined || round % 2 === 1) return ordered;
  for (let i = 0; i + 1 < ordered.length; i++) {
    const first = ordered[i] as T;
    const second = ordered[i + 1] as T;
    if (second.system !== baseline) continue;
    ordered[i] = second;
    ordered[i + 1] = first;
    i++;
  }
  return ordered;
}

/** The binary `ListModelsResponse` a gateway sends. */
async function listModelsAnswer(system: ChildSystem): Promise<Uint8Array> {
  return toBinary(ListModelsResponseSchema, await gatewayClient(system.port).listModels({}));
}

/**
 * Starts this build's gateway and, when asked, the baseline build, both serving the built-in
 * model through links in the scratch folder, so that the two answer ListModels with the same
 * number of bytes. Each build describes a local folder in its own words (an earlier one by its
 * absolute path, this one by its name): serving each its own built-in model, or one folder by
 * one name, measured answers of different sizes, not the stacks. The shorter answer's link
 * gets a longer name (each character adds one to the id and one to the description).
 */
async function startGateways(ctx: BenchContext): Promise<{
  gateway: ChildSystem;
  baseline: ChildSystem | undefined;
  sizes: string;
}> {
  const folders = await mkdtemp(join(ctx.scratchDir, "unary-models-"));
  const link = async (name: string) => {
    const path = join(folders, name);
    await symlink(builtinModelDir(), path).catch((error: NodeJS.ErrnoException) => {
      if (error.code !== "EEXIST") throw error;
    });
    return path;
  };
  const start = async (main: string | undefined, name: string) =>
    main === undefined
      ? startGateway({ name: "gateway", models: [await link(name)] })
      : startGateway({ name: baselineGatewayName, main, models: [await link(name)] });
  let gateway = await start(undefined, "m");
  const baselineMain = ctx.settings.baselineGateway;
  if (baselineMain === undefined) {
    const size = (await listModelsAnswer(gateway)).length;
    return { gateway, baseline: undefined, sizes: `${size} bytes: ok` };
  }
  let baseline = await start(baselineMain, "m");
  const difference =
    (await listModelsAnswer(baseline)).length - (await listModelsAnswer(gateway)).length;
  const padded = `m${"-".repeat(Math.floor(Math.abs(difference) / 2))}`;
  if (difference >= 2) {
    await gateway.stop();
    gateway = await start(undefined, padded);
  } else if (difference <= -2) {
    await baseline.stop();
    baseline = await start(baselineMain, padded);
  }
  const gatewaySize = (await listModelsAnswer(gateway)).length;
  const baselineSize = (await listModelsAnswer(baseline)).length;
  return {
    gateway,
    baseline,
    sizes: `${gatewaySize} bytes from this build, ${baselineSize} from the baseline build (both serve the built-in model's folder): ${gatewaySize === baselineSize ? "ok" : "sizes differ"}`,
  };
}

/** Runs scenario 1. */
export async function runUnaryScenario(
  ctx: BenchContext,
): Promise<{ rows: UnaryRow[]; statusChecks: string[] }> {
  const { settings } = ctx;
  const { gateway, baseline, sizes } = await startGateways(ctx);
  // Every system answers with the bytes this build's gateway sends, so only the stack differs.
  const gatewayAnswer = await listModelsAnswer(gateway);
  const fixturesPath = join(ctx.scratchDir, "unary-fixtures.json");
  await saveFixtures(fixturesPath, {
    ...(await loadFixtures(ctx.fixturesPath)),
    listModelsResponse: gatewayAnswer,
  });
  const expectedOf = (answer: Uint8Array) => ({
    binary: answer,
    json: fixturesAsJson({ listModelsResponse: answer, streamMessages: [] }).listModelsResponse,
  });
  const expected = expectedOf(gatewayAnswer);
  const baselineExpected =
    baseline === undefined ? expected : expectedOf(await listModelsAnswer(baseline));
  const raw = await startBaseline("raw-h2", fixturesPath);
  const grpcJs = await startBaseline("grpc-js", fixturesPath);
  const fastify = await startBaseline("fastify", fixturesPath);
  const connectNode = await startBaseline("connect-node", fixturesPath);
  try {
    const gatewayH2loadCases: H2loadCase[] = [
      {
        system: gateway,
        systemName: "gateway",
        protocol: "grpc",
        probe: rpcProbe(gateway, "grpc", false),
      },
      {
        system: raw,
        systemName: "raw node:http2",
        protocol: "grpc",
        probe: rpcProbe(raw, "grpc", false),
      },
      {
        system: grpcJs,
        systemName: "grpc-js",
        protocol: "grpc",
        probe: rpcProbe(grpcJs, "grpc", false),
      },
      {
        system: connectNode,
        systemName: "connectNodeAdapter",
        protocol: "grpc",
        probe: rpcProbe(connectNode, "grpc", false),
      },
      {
        system: gateway,
        systemName: "gateway",
        protocol: "grpc-web",
        probe: rpcProbe(gateway, "grpc-web", false),
      },
      {
        system: gateway,
        systemName: "gateway",
        protocol: "connect-proto",
        probe: rpcProbe(gateway, "connect-proto", false),
      },
      {
        system: connectNode,
        systemName: "connectNodeAdapter",
        protocol: "connect-proto",
        probe: rpcProbe(connectNode, "connect-proto", false),
      },
      {
        system: gateway,
        systemName: "gateway",
        protocol: "connect-json",
        probe: rpcProbe(gateway, "connect-json", false),
      },
      {
        system: gateway,
        systemName: "gateway",
        protocol: "connect-json",
        probe: rpcProbe(gateway, "connect-json", true),
      },
      {
        system: fastify,
        systemName: "fastify",
        protocol: "rest-json",
        probe: {
          label: "fastify GET /v1/models",
          port: fastify.port,
          path: "/v1/models",
          headers: {},
          body: undefined,
          http1: true,
          format: "json",
        },
      },
    ];
    const gatewayNodeCases: NodeCase[] = [
      { system: gateway, systemName: "gateway", protocol: "grpc", httpVersion: "2" },
      { system: grpcJs, systemName: "grpc-js", protocol: "grpc", httpVersion: "2" },
      { system: gateway, systemName: "gateway", protocol: "grpc-web", httpVersion: "1.1" },
      { system: gateway, systemName: "gateway", protocol: "connect-proto", httpVersion: "2" },
      { system: gateway, systemName: "gateway", protocol: "connect-json", httpVersion: "1.1" },
    ];

    // The baseline build runs every case the gateway runs, next to it in each round.
    const h2loadCases = gatewayH2loadCases.flatMap((c): H2loadCase[] =>
      baseline === undefined || c.system !== gateway
        ? [c]
        : [
            c,
            {
              system: baseline,
              systemName: baselineGatewayName,
              protocol: c.protocol,
              probe: rpcProbe(baseline, c.protocol as WireProtocol, c.probe.http1),
            },
          ],
    );
    const nodeCases = gatewayNodeCases.flatMap((c): NodeCase[] =>
      baseline === undefined || c.system !== gateway
        ? [c]
        : [c, { ...c, system: baseline, systemName: baselineGatewayName }],
    );

    const statusChecks: string[] = [`ListModels answer: ${sizes}`];
    for (const c of h2loadCases) {
      const want = c.system === baseline ? baselineExpected : expected;
      statusChecks.push(`${c.probe.label}: ${await checkUnary(c.probe, want)}`);
    }
    const h2load = (c: H2loadCase, concurrency: number, durationMs: number) =>
      runH2load({
        url: `http://127.0.0.1:${c.probe.port}${c.probe.path}`,
        headers: c.probe.headers,
        body: c.probe.body,
        concurrency,
        http1: c.probe.http1,
        durationMs,
        scratchDir: ctx.scratchDir,
      });
    const nodeLoad = (c: NodeCase, concurrency: number, durationMs: number, warmupMs: number) =>
      ctx.client.request<UnaryLoadResult>({
        type: "unary",
        job: {
          protocol: c.protocol,
          httpVersion: c.httpVersion,
          port: c.system.port,
          concurrency,
          warmupMs,
          durationMs,
        },
      });

    ctx.log("unary: warming up every system and protocol");
    for (const c of h2loadCases) await h2load(c, 16, settings.unary.warmupMs);
    for (const c of nodeCases) await nodeLoad(c, 16, settings.unary.warmupMs / 2, 0);

    const samples = new Map<string, Sample[]>();
    const push = (key: string, sample: Sample) =>
      samples.set(key, [...(samples.get(key) ?? []), sample]);
    const h2loadKey = (c: H2loadCase, n: number) => `h2load|${c.probe.label}|${n}`;
    const nodeKey = (c: NodeCase, n: number) =>
      `node|${c.systemName}|${c.protocol}|${c.httpVersion}|${n}`;
    for (let round = 1; round <= settings.rounds; round++) {
      for (const concurrency of settings.unary.concurrency) {
        ctx.log(`unary: round ${round}/${settings.rounds}, ${concurrency} concurrent`);
        for (const c of roundOrder(h2loadCases, round, baseline)) {
          const { result, delta } = await measured(c.system, () =>
            h2load(c, concurrency, settings.unary.durationMs),
          );
          push(h2loadKey(c, concurrency), perRequest(result, delta, result.failed));
        }
        for (const c of roundOrder(nodeCases, round, baseline)) {
          const { result, delta } = await measured(c.system, () =>
            nodeLoad(c, concurrency, settings.unary.durationMs, 0),
          );
          push(nodeKey(c, concurrency), perRequest(result, delta, result.errors));
        }
      }
    }

    const row = (
      base: Omit<
        UnaryRow,
        | "requestsPerSecond"
        | "latencyMs"
        | "serverCpuUsPerRequest"
        | "serverCpuUsPerRequestRounds"
        | "serverMainThreadCpuUsPerRequest"
        | "clientCpuUsPerRequest"
        | "errors"
      >,
      list: readonly Sample[],
    ): UnaryRow => ({
      ...base,
      requestsPerSecond: roundFigure(list.map((s) => s.rps)),
      latencyMs: { p50: median(list.map((s) => s.p50)), p99: median(list.map((s) => s.p99)) },
      serverCpuUsPerRequest: median(list.map((s) => s.serverCpu)),
      serverCpuUsPerRequestRounds: list.map((s) => s.serverCpu),
      serverMainThreadCpuUsPerRequest: median(list.map((s) => s.mainCpu)),
      clientCpuUsPerRequest: median(list.map((s) => s.clientCpu)),
      errors: list.reduce((sum, s) => sum + s.errors, 0),
    });
    const rows: UnaryRow[] = [];
    for (const concurrency of settings.unary.concurrency) {
      for (const c of h2loadCases) {
        rows.push(
          row(
            {
              system: c.systemName,
              protocol: c.protocol,
              client: "h2load",
              httpVersion: c.probe.http1 ? "1.1" : "2",
              concurrency,
            },
            samples.get(h2loadKey(c, concurrency)) ?? [],
          ),
        );
      }
      for (const c of nodeCases) {
        rows.push(
          row(
            {
              system: c.systemName,
              protocol: c.protocol,
              client: "connect-node",
              httpVersion: c.httpVersion,
              concurrency,
            },
            samples.get(nodeKey(c, concurrency)) ?? [],
          ),
        );
      }
    }
    return { rows, statusChecks };
  } finally {
    await Promise.all([gateway, baseline, raw, grpcJs, fastify, connectNode].map((s) => s?.stop()));
  }
}
