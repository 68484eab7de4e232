/**
 * @module Scenario 2, streaming fan-out: 1, 64 and 1,000 concurrent streams of 256 messages, as
 * fast as possible and paced at 20 ms per token, over the gateway's gRPC, gRPC-Web and Connect,
 * against Server-Sent Events from Fastify (the REST alternative) and a bare `node:http2` server
 * (the ceiling). "Fast" runs the gateway on the built-in model (one decode step is well under a
 * millisecond); "paced" runs it on the synthetic pacing model with the probe's step pacer (every
 * decode step starts on a 20 ms grid), so that every stream gets one token per 20 ms at any
 * fan-out. Baselines tick their streams the same
 * way. Every token is matched between the server's stamp and the client's arrival.
 */
import { builtinModelDir } from "@parley/gateway/builtin-model";
import type { BenchContext } from "./bench-context.js";
import { measured } from "./bench-context.js";
import { findLongPrompt, gatewayClient } from "./bench-fixtures.js";
import type { StreamingRow, StreamSample } from "./bench-results.js";
import {
  baselineGatewayName,
  type ChildSystem,
  startBaseline,
  startGateway,
} from "./child-system.js";
import type { StreamLoadResult, StreamTarget } from "./stream-load.js";
import { streamSample } from "./stream-metrics.js";
import { median, roundFigure } from "./summary-stats.js";

/** Admission limits for 1,000 streams: the defaults (16 in the batch, 64 queued) refuse most. */
export const fanOutFlags = ["--max-batch", "1024", "--max-queue", "1024"];

/**
 * The paced gateway's flags. A prefill budget at which all 1,000 bench prompts fit in a few decode
 * turns. And no prefix cache: every bench stream sends the same prompt, so with the cache each
 * newcomer is prefilled alone on the cached prefix, one token on a past, which the step pacer
 * cannot tell from a decode step; it would hold every admission for a whole tick.
 */
const pacedOnlyFlags = ["--prefill-tokens", "16384", "--prefix-cache-mib", "0"];

/** Every flag of the paced gateway, shared with its profile plan so both replay one configuration. */
export const pacedFlags = [...fanOutFlags, ...pacedOnlyFlags];

interface StreamCase {
  readonly system: ChildSystem;
  readonly systemName: string;
  readonly protocol: string;
  readonly target: (streams: number) => StreamTarget;
}

/** Runs `streams` streams of `streamCase` and computes the figures. */
export async function runStreamCase(
  ctx: BenchContext,
  streamCase: StreamCase,
  streams: number,
  windowMs: number,
): Promise<StreamSample> {
  const { system } = streamCase;
  let peakRss = 0;
  const poll = setInterval(() => {
    system.stats().then(
      (s) => {
        peakRss = Math.max(peakRss, s.rssBytes);
      },
      () => {},
    );
  }, 200);
  try {
    const { result, delta } = await measured(system, () =>
      ctx.client.request<StreamLoadResult>({
        type: "stream",
        job: {
          target: streamCase.target(streams),
          streams,
          streamsPerConnection: ctx.settings.streaming.streamsPerConnection,
          windowMs,
          keyBase: ctx.nextKeys(streams),
        },
      }),
    );
    peakRss = Math.max(peakRss, delta.after.rssBytes);
    const trace = await system.request<Record<string, Float64Array>>({ type: "take-token-trace" });
    return streamSample(result, trace, delta, peakRss);
  } finally {
    clearInterval(poll);
  }
}

function casesFor(
  gateway: ChildSystem,
  raw: ChildSystem,
  fastify: ChildSystem,
  prompt: string,
  tokens: number,
): StreamCase[] {
  const rpc =
    (system: ChildSystem, protocol: "grpc" | "grpc-web" | "connect-proto") => (): StreamTarget => ({
      kind: "rpc",
      protocol,
      port: system.port,
      model: "",
      prompt,
      maxTokens: tokens,
    });
  return [
    { system: gateway, systemName: "gateway", protocol: "grpc", target: rpc(gateway, "grpc") },
    { system: raw, systemName: "raw node:http2", protocol: "grpc", target: rpc(raw, "grpc") },
    {
      system: gateway,
      systemName: "gateway",
      protocol: "grpc-web",
      target: rpc(gateway, "grpc-web"),
    },
    {
      system: gateway,
      systemName: "gateway",
      protocol: "connect-proto",
      target: rpc(gateway, "connect-proto"),
    },
    {
      system: fastify,
      systemName: "fastify SSE",
      protocol: "sse",
      target: () => ({ kind: "sse", port: fastify.port, maxTokens: tokens }),
    },
  ];
}

/** `streamCase`'s target, sent to `system` instead. */
function retarget(streamCase: StreamCase, system: ChildSystem): (streams: number) => StreamTarget {
  return (streams) => ({ ...streamCase.target(streams), port: system.port });
}

function toRow(
  streamCase: StreamCase,
  mode: "fast" | "paced",
  streams: number,
  list: readonly StreamSample[],
): StreamingRow {
  const med = (pick: (s: StreamSample) => number) => median(list.map(pick));
  const rss = list.map((s) => s.rssPerStreamKiB).filter((v): v is number => v !== null);
  return {
    system: streamCase.systemName,
    protocol: streamCase.protocol,
    mode,
    streams,
    tokensPerSecond: roundFigure(list.map((s) => s.tokensPerSecond)),
    messagesPerSecond: med((s) => s.messagesPerSecond),
    tokensPerStream: med((s) => s.tokensPerStream),
    ttfbMs: { p50: med((s) => s.ttfbMs.p50), p99: med((s) => s.ttfbMs.p99) },
    ttftMs: { p50: med((s) => s.ttftMs.p50), p99: med((s) => s.ttftMs.p99) },
    addedLatencyMs: {
      p50: med((s) => s.addedLatencyMs.p50),
      p99: med((s) => s.addedLatencyMs.p99),
    },
    gapDifferenceMs: {
      p50: med((s) => s.gapDifferenceMs.p50),
      p99: med((s) => s.gapDifferenceMs.p99),
    },
    serverGapMs: { p50: med((s) => s.serverGapMs.p50), p99: med((s) => s.serverGapMs.p99) },
    clientGapMs: { p50: med((s) => s.clientGapMs.p50), p99: med((s) => s.clientGapMs.p99) },
    rssPerStreamKiB: rss.length === 0 ? null : median(rss),
    serverCpuUsPerToken: med((s) => s.serverCpuUsPerToken),
    serverMainThreadCpuUsPerToken: med((s) => s.serverMainThreadCpuUsPerToken),
    clientCpuUsPerToken: med((s) => s.clientCpuUsPerToken),
    eventLoopDelayP99Ms: med((s) => s.eventLoopDelayP99Ms),
    mainThreadWaitMsPerS: med((s) => s.mainThreadWaitMsPerS),
    failed: list.reduce((sum, s) => sum + s.failed, 0),
    failures: [...new Set(list.flatMap((s) => s.failures))].slice(0, 5),
  };
}

async function runPhase(
  ctx: BenchContext,
  mode: "fast" | "paced",
  cases: readonly StreamCase[],
  rounds: number,
  windowMs: number,
): Promise<StreamingRow[]> {
  const samples = new Map<string, StreamSample[]>();
  const key = (c: StreamCase, n: number) => `${c.systemName}|${c.protocol}|${n}`;
  for (let round = 1; round <= rounds; round++) {
    for (const streams of ctx.settings.streaming.streams) {
      ctx.log(`streaming ${mode}: round ${round}/${rounds}, ${streams} streams`);
      for (const c of cases) {
        const sample = await runStreamCase(ctx, c, streams, windowMs);
        samples.set(key(c, streams), [...(samples.get(key(c, streams)) ?? []), sample]);
      }
    }
  }
  return ctx.settings.streaming.streams.flatMap((streams) =>
    cases.map((c) => toRow(c, mode, streams, samples.get(key(c, streams)) ?? [])),
  );
}

/** Runs scenario 2. */
export async function runStreamingScenario(
  ctx: BenchContext,
): Promise<{ rows: StreamingRow[]; notes: string[] }> {
  const { streaming } = ctx.settings;
  const raw = await startBaseline("raw-h2", ctx.fixturesPath);
  const fastify = await startBaseline("fastify", ctx.fixturesPath);
  const rows: StreamingRow[] = [];
  const notes: string[] = [];
  try {
    const fast = await startGateway({
      name: "gateway",
      models: ["builtin"],
      trace: true,
      flags: fanOutFlags,
    });
    // The baseline build (fast runs only: the paced runs measure latency, not a build's speed).
    const baseline =
      ctx.settings.baselineGateway === undefined
        ? undefined
        : await startGateway({
            name: baselineGatewayName,
            main: ctx.settings.baselineGateway,
            // This build's built-in model: the two builds' own may differ.
            models: [builtinModelDir()],
            trace: true,
            flags: fanOutFlags,
          });
    try {
      const cases = casesFor(fast, raw, fastify, ctx.builtinPrompt, streaming.tokens).flatMap(
        (c) =>
          baseline === undefined || c.system !== fast
            ? [c]
            : [
                c,
                {
                  ...c,
                  system: baseline,
                  systemName: baselineGatewayName,
                  target: retarget(c, baseline),
                },
              ],
      );
      ctx.log("streaming fast: warming up");
      for (const c of cases) await runStreamCase(ctx, c, 64, streaming.fastWindowMs);
      rows.push(
        ...(await runPhase(ctx, "fast", cases, ctx.settings.rounds, streaming.fastWindowMs)),
      );
    } finally {
      await Promise.all([fast.stop(), baseline?.stop()]);
    }

    // The step pacer holds decode steps, not prefills, but the engine interleaves the two: with
    // the default budget, admitting 1,000 prompts would take hundreds of paced steps.
    const paced = await startGateway({
      name: "gateway-paced",
      models: [ctx.models.pacing],
      trace: true,
      pace: true,
      flags: pacedFlags,
    });
    try {
      const prompt = await findLongPrompt(gatewayClient(paced.port), "", streaming.tokens);
      const cases = casesFor(paced, raw, fastify, prompt, streaming.tokens);
      ctx.log("streaming paced: warming up");
      for (const c of cases) await runStreamCase(ctx, c, 64, streaming.fastWindowMs);
      for (const system of [paced, raw, fastify]) {
        await system.request({ type: "pace", paceMs: streaming.paceMs });
      }
      // The pace reaches the model worker over a BroadcastChannel: give it a moment.
      await new Promise((resolve) => setTimeout(resolve, 100));
      rows.push(
        ...(await runPhase(ctx, "paced", cases, streaming.pacedRounds, streaming.pacedWindowMs)),
      );
    } finally {
      await paced.stop();
    }
    notes.push(
      `Gateways run with ${fanOutFlags.join(" ")}: the default admission limits (16 decoding, 64 queued) refuse most of 1,000 concurrent streams with resource_exhausted. The paced gateway also runs with ${pacedOnlyFlags.join(" ")}, so that admitting 1,000 prompts takes a few paced decode steps rather than hundreds (and no prefix-cache hit makes a prefill look like a decode step to the pacer).`,
      `Fast runs end after ${streaming.fastWindowMs} ms and paced runs after ${streaming.pacedWindowMs} ms; streams still open then are cancelled, and tokens/s counts what arrived in that window.`,
      `RPC streams share HTTP/2 connections, ${streaming.streamsPerConnection} streams per connection; SSE uses one HTTP/1.1 connection per stream.`,
    );
    return { rows, notes };
  } finally {
    await Promise.all([raw.stop(), fastify.stop()]);
  }
}
