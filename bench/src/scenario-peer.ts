/**
 * @module Scenario 7, the Node peer: Parley against transformers.js on the same model folders
 * (greedy, same prompt), at 1, 4, 16 and 64 concurrent streams. Three systems alternate run by
 * run, their order rotating each round: the gateway over gRPC (its defaults), transformers.js
 * behind a Fastify Server-Sent Events server (what a Node team would write), and transformers.js
 * in-process (N concurrent `generate` calls stamped in its streamer callback: its ceiling with
 * no HTTP at all). Measured: aggregate tokens/s (all tokens over the time from the first request
 * to the last token), inter-token latency and time to first token over every stream, server CPU
 * per token, the process's peak RSS; and once per model, whether both produce the same greedy
 * token ids for the prompt.
 */
import type { BenchContext } from "./bench-context.js";
import { measured } from "./bench-context.js";
import { gatewayClient } from "./bench-fixtures.js";
import type { PeerCheck, PeerRow } from "./bench-results.js";
import { type ChildSystem, startPeer } from "./child-system.js";
import type { PeerRunResult } from "./peer-transformers.js";
import { gatewayStreams, type ModelUnderTest } from "./scenario-engine.js";
import type { StreamLoadResult } from "./stream-load.js";
import { distribution, median, roundFigure } from "./summary-stats.js";

/** One model the peer scenario runs on. */
export interface PeerModel extends ModelUnderTest {
  /** Where transformers.js finds it: `<localModelPath>/<name>/`. */
  readonly localModelPath: string;
  readonly name: string;
  readonly tokens: number;
}

type PeerSystem = PeerRow["system"];

interface Sample {
  readonly rate: number;
  readonly itl: { p50: number; p99: number };
  readonly ttft: { p50: number; p99: number };
  readonly cpu: number;
}

function sample(
  run: Pick<StreamLoadResult, "tokens" | "elapsedMs"> & {
    ttftMs: ArrayLike<number>;
    arrivals: Record<string, ArrayLike<number>>;
  },
  cpuUs: number,
): Sample {
  const gaps: number[] = [];
  for (const arrivals of Object.values(run.arrivals)) {
    for (let i = 1; i < arrivals.length; i++) {
      gaps.push((arrivals[i] as number) - (arrivals[i - 1] as number));
    }
  }
  const itl = distribution(gaps);
  const ttft = distribution(Array.from(run.ttftMs).filter(Number.isFinite));
  return {
    rate: (run.tokens / run.elapsedMs) * 1000,
    itl: { p50: itl.p50, p99: itl.p99 },
    ttft: { p50: ttft.p50, p99: ttft.p99 },
    cpu: cpuUs / Math.max(1, run.tokens),
  };
}

/** The gateway's greedy token ids for the prompt, from its stream. */
async function gatewayIds(model: PeerModel, tokens: number): Promise<number[]> {
  const ids: number[] = [];
  const client = gatewayClient(model.gateway.port);
  for await (const message of client.generateStream({
    model: "",
    prompt: model.prompt,
    maxTokens: tokens,
    temperature: 0,
  })) {
    ids.push(...message.tokenIds);
  }
  return ids;
}

async function checkIds(model: PeerModel, peer: ChildSystem): Promise<PeerCheck> {
  const [ours, theirs] = await Promise.all([
    gatewayIds(model, model.tokens),
    peer.request<number[]>({ type: "ids", prompt: model.prompt, tokens: model.tokens }),
  ]);
  let firstDifference = -1;
  for (let i = 0; i < Math.max(ours.length, theirs.length); i++) {
    if (ours[i] !== theirs[i]) {
      firstDifference = i;
      break;
    }
  }
  return {
    model: model.label,
    tokens: Math.max(ours.length, theirs.length),
    identical: firstDifference < 0,
    firstDifference,
    gateway: ours.slice(0, 12),
    peer: theirs.slice(0, 12),
  };
}

/** Runs scenario 7 for one model; the gateway is already running on it. */
export async function runPeerScenario(
  ctx: BenchContext,
  model: PeerModel,
): Promise<{ rows: PeerRow[]; check: PeerCheck }> {
  const levels = ctx.settings.peer.streams;
  const sse = await startPeer("sse", model.localModelPath, model.name);
  const inProcess = await startPeer("in-process", model.localModelPath, model.name);
  try {
    const check = await checkIds(model, inProcess);
    ctx.log(`peer ${model.label}: greedy ids ${check.identical ? "identical" : "DIFFER"}`);
    const runs: Record<PeerSystem, (streams: number) => Promise<Sample>> = {
      gateway: async (streams) => {
        const { result, delta } = await gatewayStreams(ctx, model, streams, model.tokens);
        return sample(result, delta.cpuUs);
      },
      "transformers.js + SSE": async (streams) => {
        const { result, delta } = await measured(sse, () =>
          ctx.client.request<StreamLoadResult>({
            type: "stream",
            job: {
              target: {
                kind: "sse",
                port: sse.port,
                maxTokens: model.tokens,
                prompt: model.prompt,
              },
              streams,
              streamsPerConnection: 100,
              windowMs: 600_000,
              keyBase: ctx.nextKeys(streams),
            },
          }),
        );
        return sample(result, delta.cpuUs);
      },
      "transformers.js in-process": async (streams) => {
        const { result, delta } = await measured(inProcess, () =>
          inProcess.request<PeerRunResult>({
            type: "run",
            streams,
            prompt: model.prompt,
            tokens: model.tokens,
          }),
        );
        return sample(result, delta.cpuUs);
      },
    };
    const systems = Object.keys(runs) as PeerSystem[];
    const samples = new Map<string, Sample[]>();
    for (let round = 1; round <= ctx.settings.peer.rounds; round++) {
      ctx.log(`peer ${model.label}: round ${round}/${ctx.settings.peer.rounds}`);
      const order = systems.map((_, i) => systems[(i + round) % systems.length] as PeerSystem);
      for (const streams of levels) {
        for (const system of order) {
          const key = `${system}|${streams}`;
          samples.set(key, [...(samples.get(key) ?? []), await runs[system](streams)]);
        }
      }
    }
    const peakRss: Record<PeerSystem, number> = {
      gateway: (await model.gateway.stats()).peakRssBytes,
      "transformers.js + SSE": (await sse.stats()).peakRssBytes,
      "transformers.js in-process": (await inProcess.stats()).peakRssBytes,
    };
    const rows = levels.flatMap((streams) =>
      systems.map((system): PeerRow => {
        const list = samples.get(`${system}|${streams}`) ?? [];
        const med = (pick: (s: Sample) => number) => median(list.map(pick));
        return {
          model: model.label,
          system,
          streams,
          tokensPerSecond: roundFigure(list.map((s) => s.rate)),
          interTokenMs: { p50: med((s) => s.itl.p50), p99: med((s) => s.itl.p99) },
          ttftMs: { p50: med((s) => s.ttft.p50), p99: med((s) => s.ttft.p99) },
          serverCpuUsPerToken: med((s) => s.cpu),
          peakRssMiB: peakRss[system] / 2 ** 20,
        };
      }),
    );
    return { rows, check };
  } finally {
    await Promise.all([sse.stop(), inProcess.stop()]);
  }
}
