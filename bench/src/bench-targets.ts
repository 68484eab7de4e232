/**
 * @module The targets, computed from one run's rows: each becomes PASS or SHORT (with by
 * how much), REPORT for figures that have no pass mark, or NOT RUN when its scenario was left
 * out. A SHORT names the profile plan that explains it.
 */
import type { BenchResults, PeerRow, StreamingRow, TargetRow, UnaryRow } from "./bench-results.js";
import { baselineGatewayName } from "./child-system.js";
import { pairedRatio } from "./summary-stats.js";

/** Formats a number for tables: 3 significant digits, thousands separated. */
export function fmt(value: number | null | undefined, digits = 3): string {
  if (value === null || value === undefined || !Number.isFinite(value)) return "–";
  if (Math.abs(value) >= 1000) return Math.round(value).toLocaleString("en-US");
  return Number(value.toPrecision(digits)).toString();
}

function ratioTarget(
  name: string,
  minimum: number,
  numerator: number | undefined,
  denominator: number | undefined,
  unit: string,
  profile: string,
): TargetRow {
  if (numerator === undefined || denominator === undefined) {
    return { name, target: `≥ ${minimum}`, value: "–", verdict: "NOT RUN", detail: "" };
  }
  const ratio = numerator / denominator;
  const pass = ratio >= minimum;
  return {
    name,
    target: `≥ ${minimum}`,
    value: `${ratio.toFixed(2)} (${fmt(numerator)} ÷ ${fmt(denominator)} ${unit})`,
    verdict: pass ? "PASS" : "SHORT",
    detail: pass ? "" : `${((1 - ratio / minimum) * 100).toFixed(0)}% below the target ratio`,
    ...(pass ? {} : { profile }),
  };
}

const unaryRps = (rows: readonly UnaryRow[], system: string, concurrency: number) =>
  rows.find(
    (r) =>
      r.system === system &&
      r.protocol === "grpc" &&
      r.client === "h2load" &&
      r.concurrency === concurrency,
  )?.requestsPerSecond.median;

function streamRow(
  rows: readonly StreamingRow[],
  system: string,
  mode: "fast" | "paced",
  streams: number,
): StreamingRow | undefined {
  return rows.find(
    (r) => r.system === system && r.protocol === "grpc" && r.mode === mode && r.streams === streams,
  );
}

/**
 * One protocol's unary cost: the baseline build's server CPU per call ÷ this build's, as the
 * median of the rounds' paired ratios, with the paired RPS ratio beside it. CPU per call is the
 * server's own cost; requests per second on two cores shared with the load generator also
 * measure how the client fared. A figure, not a pass mark: one protocol's ratio moved between
 * 0.86 and 1.11 across identical runs of one pair of builds.
 */
function unaryBuildRow(base: UnaryRow, ours: UnaryRow): { row: TargetRow; cpu: number } {
  const cpu = pairedRatio(base.serverCpuUsPerRequestRounds, ours.serverCpuUsPerRequestRounds);
  const rps = pairedRatio(ours.requestsPerSecond.rounds, base.requestsPerSecond.rounds);
  return {
    cpu,
    row: {
      name: `unary server CPU per call, baseline build ÷ this build, ${base.protocol} over HTTP/${base.httpVersion} (${base.client}, ${base.concurrency} concurrent)`,
      target: "report",
      value: `${cpu.toFixed(2)} (${fmt(base.serverCpuUsPerRequest)} ÷ ${fmt(ours.serverCpuUsPerRequest)} µs, medians)`,
      verdict: "REPORT",
      detail: `paired RPS ratio, this build ÷ baseline: ${rps.toFixed(2)}`,
    },
  };
}

/**
 * The pass mark over all protocols and clients: the geometric mean of their CPU ratios, ≥ 0.95
 * (at most about 5% more CPU per call). Nine ratios average out the noise one of them carries.
 */
function unaryBuildTarget(ratios: readonly number[]): TargetRow {
  const name =
    "unary server CPU per call, baseline build ÷ this build, geometric mean over every protocol and client";
  const finite = ratios.filter(Number.isFinite);
  if (finite.length === 0) {
    return { name, target: "≥ 0.95", value: "–", verdict: "NOT RUN", detail: "" };
  }
  const mean = Math.exp(finite.reduce((sum, r) => sum + Math.log(r), 0) / finite.length);
  const pass = mean >= 0.95;
  return {
    name,
    target: "≥ 0.95",
    value: `${mean.toFixed(2)} (${finite.length} ratios, ${Math.min(...finite).toFixed(2)}–${Math.max(...finite).toFixed(2)})`,
    verdict: pass ? "PASS" : "SHORT",
    detail: pass ? "" : `${((1 - mean / 0.95) * 100).toFixed(0)}% below the target ratio`,
    ...(pass ? {} : { profile: "unary" }),
  };
}

/**
 * With `--baseline-gateway`: this build ÷ the other build, per protocol, unary at the top
 * concurrency and fast streaming at every fan-out. "Not slower" allows 5% for noise: neighbouring
 * runs of one build on this shared machine differ by that much.
 */
function baselineBuildTargets(
  unaryRows: readonly UnaryRow[],
  streamRows: readonly StreamingRow[],
  topConcurrency: number,
): TargetRow[] {
  const targets: TargetRow[] = [];
  const unaryFigures: TargetRow[] = [];
  const cpuRatios: number[] = [];
  for (const base of unaryRows) {
    if (base.system !== baselineGatewayName || base.concurrency !== topConcurrency) continue;
    const ours = unaryRows.find(
      (r) =>
        r.system === "gateway" &&
        r.protocol === base.protocol &&
        r.client === base.client &&
        r.httpVersion === base.httpVersion &&
        r.concurrency === base.concurrency,
    );
    if (ours === undefined) continue;
    const { row, cpu } = unaryBuildRow(base, ours);
    unaryFigures.push(row);
    cpuRatios.push(cpu);
  }
  if (unaryFigures.length > 0) targets.push(unaryBuildTarget(cpuRatios), ...unaryFigures);
  for (const base of streamRows) {
    if (base.system !== baselineGatewayName || base.mode !== "fast") continue;
    const ours = streamRows.find(
      (r) =>
        r.system === "gateway" &&
        r.protocol === base.protocol &&
        r.mode === "fast" &&
        r.streams === base.streams,
    );
    targets.push(
      ratioTarget(
        `streaming tokens/s, this build ÷ baseline build, ${base.protocol} (fast, ${base.streams} streams)`,
        0.95,
        ours?.tokensPerSecond.median,
        base.tokensPerSecond.median,
        "tokens/s",
        "streaming-fast",
      ),
    );
  }
  return targets;
}

/** Computes the target table of a run. */
export function computeTargets(results: BenchResults): TargetRow[] {
  const { unary, streaming, wireBytes, engine, scaling, peer } = results.scenarios;
  const targets: TargetRow[] = [];
  const unaryRows = unary?.rows ?? [];
  const topConcurrency = Math.max(0, ...unaryRows.map((r) => r.concurrency));
  targets.push(
    ratioTarget(
      `unary RPS, gateway gRPC ÷ grpc-js server (h2load, ${topConcurrency} concurrent)`,
      1.0,
      unaryRps(unaryRows, "gateway", topConcurrency),
      unaryRps(unaryRows, "grpc-js", topConcurrency),
      "req/s",
      "unary",
    ),
    ratioTarget(
      `unary RPS, gateway gRPC ÷ raw node:http2 ceiling (h2load, ${topConcurrency} concurrent)`,
      0.6,
      unaryRps(unaryRows, "gateway", topConcurrency),
      unaryRps(unaryRows, "raw node:http2", topConcurrency),
      "req/s",
      "unary",
    ),
  );

  const streamRows = streaming?.rows ?? [];
  const fastLevels = streamRows.filter((r) => r.mode === "fast").map((r) => r.streams);
  const midStreams = fastLevels.includes(64) ? 64 : Math.max(0, ...fastLevels);
  targets.push(
    ratioTarget(
      `streaming token messages/s, gateway gRPC ÷ raw node:http2 ceiling (fast, ${midStreams} streams; counted in tokens, as the gateway may coalesce)`,
      0.5,
      streamRow(streamRows, "gateway", "fast", midStreams)?.tokensPerSecond.median,
      streamRow(streamRows, "raw node:http2", "fast", midStreams)?.tokensPerSecond.median,
      "tokens/s",
      "streaming-fast",
    ),
  );
  targets.push(...baselineBuildTargets(unaryRows, streamRows, topConcurrency));
  const pacedLevels = streamRows.filter((r) => r.mode === "paced").map((r) => r.streams);
  const topPaced = Math.max(0, ...pacedLevels);
  const paced = streamRow(streamRows, "gateway", "paced", topPaced);
  const ceiling = streamRow(streamRows, "raw node:http2", "paced", topPaced);
  const pacedName = `added inter-token latency p99, gateway gRPC ÷ raw node:http2 ceiling, ${topPaced > 0 ? topPaced : "1,000"} paced streams (client gap − server gap)`;
  if (paced === undefined || ceiling === undefined) {
    targets.push({ name: pacedName, target: "≤ 1.5", value: "–", verdict: "NOT RUN", detail: "" });
  } else {
    // The issue defines the added latency as the client-observed gap minus the server's gap for
    // the same token, which cancels any constant delay, and judges the gateway's p99 against the
    // ceiling's in the same run: on two shared cores the ceiling's own p99 is milliseconds. The
    // absolute delay from the server's stamp to the client is shown beside it, as it also counts
    // where a token sits in a step's burst of 1,000.
    const ratio = paced.gapDifferenceMs.p99 / ceiling.gapDifferenceMs.p99;
    const pass = ratio <= 1.5;
    targets.push({
      name: pacedName,
      target: "≤ 1.5",
      value: `${fmt(ratio, 2)} (p99 ${fmt(paced.gapDifferenceMs.p99)} ÷ ${fmt(ceiling.gapDifferenceMs.p99)} ms)`,
      verdict: Number.isFinite(ratio) ? (pass ? "PASS" : "SHORT") : "NOT RUN",
      detail: `gap difference p50: gateway ${fmt(paced.gapDifferenceMs.p50)}, ceiling ${fmt(ceiling.gapDifferenceMs.p50)} ms; server stamp → client p50 / p99: gateway ${fmt(paced.addedLatencyMs.p50)} / ${fmt(paced.addedLatencyMs.p99)}, ceiling ${fmt(ceiling.addedLatencyMs.p50)} / ${fmt(ceiling.addedLatencyMs.p99)} ms; gateway ${fmt(paced.tokensPerStream)} tokens per stream`,
      ...(pass ? {} : { profile: "streaming-paced" }),
    });
  }

  const engineRows = engine?.rows ?? [];
  const scalingRows = scaling?.rows ?? [];
  const models = [...new Set([...engineRows, ...scalingRows].map((r) => r.model))];
  for (const model of models.length > 0 ? models : ["built-in"]) {
    const rate = (system: "gateway" | "ort-loop") =>
      engineRows.find((r) => r.model === model && r.system === system)?.tokensPerSecond.median;
    targets.push(
      ratioTarget(
        `single-stream tokens/s, gateway ÷ in-process ORT loop (${model})`,
        0.95,
        rate("gateway"),
        rate("ort-loop"),
        "tok/s",
        model.startsWith("built") ? "engine" : "engine-large",
      ),
    );
  }
  for (const model of models.length > 0 ? models : ["built-in"]) {
    const delays = [
      ...engineRows
        .filter((r) => r.model === model && r.system === "gateway")
        .map((r) => r.eventLoopDelayP99Ms ?? 0),
      ...scalingRows.filter((r) => r.model === model).map((r) => r.eventLoopDelayP99Ms),
    ];
    if (delays.length === 0) {
      targets.push({
        name: `event-loop delay p99 during generation (${model})`,
        target: "< 5 ms",
        value: "–",
        verdict: "NOT RUN",
        detail: "",
      });
      continue;
    }
    const worst = Math.max(...delays);
    const waits = [
      ...engineRows
        .filter((r) => r.model === model && r.system === "gateway")
        .map((r) => r.mainThreadWaitMsPerS ?? 0),
      ...scalingRows.filter((r) => r.model === model).map((r) => r.mainThreadWaitMsPerS),
    ];
    targets.push({
      name: `event-loop delay p99 during generation (${model}, worst configuration of scenarios 4-5)`,
      target: "< 5 ms",
      value: `${fmt(worst)} ms (main thread waited for a core up to ${fmt(Math.max(...waits))} ms/s)`,
      verdict: worst < 5 ? "PASS" : "SHORT",
      detail: worst < 5 ? "" : `${fmt(worst - 5)} ms over`,
      ...(worst < 5 ? {} : { profile: model.startsWith("built") ? "engine" : "scaling-large" }),
    });
  }
  const large = scalingRows.filter((r) => !r.model.startsWith("built"));
  const at = (rows: typeof scalingRows, n: number) =>
    rows.find((r) => r.streams === n)?.aggregateTokensPerSecond.median;
  targets.push(
    ratioTarget(
      "aggregate tokens/s at 8 streams ÷ 1 stream (larger model)",
      3,
      at(large, 8),
      at(large, 1),
      "tok/s",
      "scaling-large",
    ),
  );
  const wire = (protocol: string) =>
    wireBytes?.rows.find((r) => r.protocol === protocol && r.httpVersion === "2")
      ?.marginalBytesPerToken;
  const grpc = wire("grpc");
  const json = wire("connect-json");
  targets.push(
    grpc === undefined || json === undefined
      ? {
          name: "wire bytes per token, gRPC ÷ Connect JSON",
          target: "report (expected < 0.6)",
          value: "–",
          verdict: "NOT RUN",
          detail: "",
        }
      : {
          name: "wire bytes per token, gRPC ÷ Connect JSON (HTTP/2, marginal bytes per token)",
          target: "report (expected < 0.6)",
          value: `${(grpc / json).toFixed(2)} (${fmt(grpc)} ÷ ${fmt(json)} B)`,
          verdict: "REPORT",
          detail: grpc / json < 0.6 ? "as expected" : "above the expected 0.6",
        },
  );
  targets.push(...peerTargets(peer?.rows ?? [], peer?.checks ?? []));
  const prefix = results.scenarios.prefixCache?.rows;
  const on = prefix?.find((r) => r.system === "prefix cache on");
  const off = prefix?.find((r) => r.system === "prefix cache off");
  targets.push(
    on === undefined || off === undefined
      ? {
          name: "fifth-turn TTFT, with ÷ without prefix cache",
          target: "≤ 0.2",
          value: "–",
          verdict: "NOT RUN",
          detail: "",
        }
      : {
          name: `fifth-turn TTFT of a chat (${on.historyTokens} prompt tokens, ${on.cachedTokens} from the cache), with ÷ without prefix cache`,
          target: "≤ 0.2",
          value: `${(on.fifthTurnTtftMs.median / off.fifthTurnTtftMs.median).toFixed(2)} (${fmt(on.fifthTurnTtftMs.median)} ÷ ${fmt(off.fifthTurnTtftMs.median)} ms)`,
          verdict:
            on.fifthTurnTtftMs.median / off.fifthTurnTtftMs.median <= 0.2 && on.historyTokens >= 512
              ? "PASS"
              : "SHORT",
          detail: on.historyTokens >= 512 ? "" : "history under 512 tokens",
        },
  );
  return targets;
}

/** Issue 16's targets against transformers.js (scenario 7). */
function peerTargets(
  rows: readonly PeerRow[],
  checks: NonNullable<BenchResults["scenarios"]["peer"]>["checks"],
): TargetRow[] {
  const large = rows.find((r) => !r.model.includes("fp16"))?.model ?? "large";
  const fp16 = rows.find((r) => r.model.includes("fp16"))?.model ?? "fp16";
  const find = (model: string, system: PeerRow["system"], streams: number) =>
    rows.find((r) => r.model === model && r.system === system && r.streams === streams);
  const top = Math.max(0, ...rows.map((r) => r.streams));
  const rate = (model: string, system: PeerRow["system"], streams: number) =>
    find(model, system, streams)?.tokensPerSecond.median;
  const targets: TargetRow[] = [
    ratioTarget(
      `single-stream tokens/s, gateway ÷ transformers.js + SSE (${large}, defaults)`,
      1.1,
      rate(large, "gateway", 1),
      rate(large, "transformers.js + SSE", 1),
      "tok/s",
      "",
    ),
  ];
  for (const streams of [16, top].filter((n, i, all) => all.indexOf(n) === i)) {
    targets.push(
      ratioTarget(
        `aggregate tokens/s at ${streams} streams, gateway ÷ transformers.js + SSE (${large})`,
        5,
        rate(large, "gateway", streams),
        rate(large, "transformers.js + SSE", streams),
        "tok/s",
        "",
      ),
    );
  }
  const ours = find(large, "gateway", top)?.ttftMs.p99;
  const theirs = find(large, "transformers.js in-process", top)?.ttftMs.p99;
  targets.push(
    ours === undefined || theirs === undefined
      ? {
          name: "TTFT p99 ÷ transformers.js in-process",
          target: "≤ 1",
          value: "–",
          verdict: "NOT RUN",
          detail: "",
        }
      : {
          name: `TTFT p99 at ${top} streams, gateway ÷ transformers.js in-process (${large})`,
          target: "≤ 1",
          value: `${(ours / theirs).toFixed(2)} (${fmt(ours)} ÷ ${fmt(theirs)} ms)`,
          verdict: ours / theirs <= 1 ? "PASS" : "SHORT",
          detail:
            ours / theirs <= 1
              ? ""
              : `${((ours / theirs - 1) * 100).toFixed(0)}% above the target ratio`,
        },
  );
  for (const [streams, minimum] of [
    [1, 1.5],
    [top, 3],
  ] as const) {
    targets.push(
      ratioTarget(
        `tokens/s at ${streams} stream${streams === 1 ? "" : "s"}, gateway ÷ transformers.js + SSE (${fp16})`,
        minimum,
        rate(fp16, "gateway", streams),
        rate(fp16, "transformers.js + SSE", streams),
        "tok/s",
        "",
      ),
    );
  }
  for (const check of checks) {
    targets.push({
      name: `same greedy token ids, gateway and transformers.js (${check.model})`,
      target: "identical",
      value: check.identical
        ? `identical (${check.tokens} tokens)`
        : `differ from token ${check.firstDifference}`,
      verdict: check.identical ? "PASS" : "SHORT",
      detail: check.identical
        ? ""
        : `gateway ${check.gateway.join(" ")} … ; transformers.js ${check.peer.join(" ")} …`,
    });
  }
  return targets;
}
