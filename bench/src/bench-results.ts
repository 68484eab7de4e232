/**
 * @module The shape of `results.json`: one row per measured configuration, figures as medians
 * over rounds (with every round's value for throughput), latencies as p50/p99 over samples.
 */
import type { ProfileEntry } from "./cpu-profile-summary.js";
import type { RoundFigure } from "./summary-stats.js";

/** p50 and p99 of a latency, in ms. */
export interface Quantiles {
  readonly p50: number;
  readonly p99: number;
}

/** Scenario 1: one system, protocol, client and concurrency. */
export interface UnaryRow {
  readonly system: string;
  readonly protocol: string;
  readonly client: "h2load" | "connect-node";
  readonly httpVersion: "1.1" | "2";
  readonly concurrency: number;
  readonly requestsPerSecond: RoundFigure;
  readonly latencyMs: Quantiles;
  /** The median of `serverCpuUsPerRequestRounds`. */
  readonly serverCpuUsPerRequest: number;
  /** Server CPU per request in each round, in round order (paired with other systems' rounds). */
  readonly serverCpuUsPerRequestRounds: readonly number[];
  readonly serverMainThreadCpuUsPerRequest: number;
  readonly clientCpuUsPerRequest: number;
  readonly errors: number;
}

/** Scenario 2: the figures of one streaming run. */
export interface StreamSample {
  /** Tokens delivered per second (baselines send one token per message). */
  readonly tokensPerSecond: number;
  /** Messages carrying tokens per second: fewer than tokens when the gateway coalesced. */
  readonly messagesPerSecond: number;
  readonly tokensPerStream: number;
  readonly ttfbMs: Quantiles;
  readonly ttftMs: Quantiles;
  /** Client arrival minus the server's stamp (gateway: token reached its main thread). */
  readonly addedLatencyMs: Quantiles;
  /** Client inter-token gap minus the server's gap for the same token. */
  readonly gapDifferenceMs: Quantiles;
  /** Inter-token gaps as the server stamped them (gateway: as the engine delivered them). */
  readonly serverGapMs: Quantiles;
  /** Inter-token gaps as the client saw them. */
  readonly clientGapMs: Quantiles;
  /** Peak RSS growth while the streams were open, per stream; null below 64 streams. */
  readonly rssPerStreamKiB: number | null;
  readonly serverCpuUsPerToken: number;
  readonly serverMainThreadCpuUsPerToken: number;
  readonly clientCpuUsPerToken: number;
  readonly eventLoopDelayP99Ms: number;
  /** The server's main thread waiting for a core (ms per s of the run). */
  readonly mainThreadWaitMsPerS: number;
  readonly failed: number;
  readonly failures: readonly string[];
}

/** Scenario 2: one system, protocol, mode and fan-out; throughput as a median over rounds. */
export interface StreamingRow extends Omit<StreamSample, "tokensPerSecond"> {
  readonly system: string;
  readonly protocol: string;
  readonly mode: "fast" | "paced";
  readonly streams: number;
  /** Tokens delivered per second (baselines send one token per message). */
  readonly tokensPerSecond: RoundFigure;
}

/** Scenario 3: bytes on the wire for one protocol. */
export interface WireBytesRow {
  readonly system: string;
  readonly protocol: string;
  readonly httpVersion: "1.1" | "2";
  readonly tokens: number;
  /** Server to client, whole connection (preface, settings, headers, frames). */
  readonly bytesDown: number;
  readonly bytesUp: number;
  readonly bytesPerToken: number;
  /** Extra bytes per extra token between the short and the long stream: framing + payload. */
  readonly marginalBytesPerToken: number;
}

/** Scenario 4: single-stream decode rate. */
export interface EngineRow {
  readonly model: string;
  readonly system: "gateway" | "ort-loop";
  readonly tokensPerSecond: RoundFigure;
  readonly cpuUsPerToken: number;
  /** Gateway main thread during the runs (median over rounds); null for the ORT loop. */
  readonly eventLoopDelayP99Ms: number | null;
  /** Gateway main thread waiting for a core, ms per s; null for the ORT loop. */
  readonly mainThreadWaitMsPerS: number | null;
}

/** Scenario 5: one model at one concurrency. */
export interface ScalingRow {
  readonly model: string;
  readonly streams: number;
  readonly aggregateTokensPerSecond: RoundFigure;
  readonly interTokenMs: Quantiles;
  readonly ttftMs: Quantiles;
  readonly serverCpuUsPerToken: number;
  /** Median over rounds of each run's p99. */
  readonly eventLoopDelayP99Ms: number;
  readonly mainThreadWaitMsPerS: number;
}

/** Scenario 6: single-stream decode rate of a float16 model, by logits conversion. */
export interface Fp16Row {
  readonly model: string;
  readonly system: "gateway" | "ort-loop";
  /** The float16 logits conversion: the engine's table, or the per-value arithmetic before it. */
  readonly conversion: "table" | "per-value arithmetic";
  readonly tokensPerSecond: RoundFigure;
  readonly cpuUsPerToken: number;
  /** Time in the conversion per token (ORT loop only, median over rounds); null for the gateway. */
  readonly conversionUsPerToken: number | null;
}

/** A target of the issue and where this run stands. */
/** Scenario 7: one system at one concurrency on one model, against the transformers.js peer. */
export interface PeerRow {
  readonly model: string;
  readonly system: "gateway" | "transformers.js + SSE" | "transformers.js in-process";
  readonly streams: number;
  readonly tokensPerSecond: RoundFigure;
  readonly interTokenMs: Quantiles;
  readonly ttftMs: Quantiles;
  readonly serverCpuUsPerToken: number;
  /** The process's peak resident memory over the whole scenario on this model. */
  readonly peakRssMiB: number;
}

/** Scenario 7: whether the gateway and transformers.js decode the same greedy token ids. */
export interface PeerCheck {
  readonly model: string;
  readonly tokens: number;
  readonly identical: boolean;
  /** Index of the first differing token, -1 when identical. */
  readonly firstDifference: number;
  readonly gateway: readonly number[];
  readonly peer: readonly number[];
}

export interface TargetRow {
  readonly name: string;
  readonly target: string;
  readonly value: string;
  readonly verdict: "PASS" | "SHORT" | "REPORT" | "NOT RUN";
  /** How far off, for SHORT. */
  readonly detail: string;
  /** Which profile (by key) explains a SHORT. */
  readonly profile?: string;
}

/** A `--cpu-prof` run of the gateway and its hottest functions. */
export interface ProfileSummary {
  readonly key: string;
  readonly scenario: string;
  readonly thread: "main" | "worker";
  readonly file: string;
  readonly idlePercent: number;
  readonly top: readonly ProfileEntry[];
  /** Self time grouped by package or Node subsystem, as % of busy time. */
  readonly byArea: readonly { readonly area: string; readonly percent: number }[];
}

/** The machine the run measured. */
export interface MachineInfo {
  readonly cpuModel: string;
  readonly cores: number;
  readonly node: string;
  readonly platform: string;
  readonly memoryGiB: number;
}

/** results.json. */
export interface BenchResults {
  readonly command: string;
  readonly date: string;
  durationS: number;
  readonly machine: MachineInfo;
  readonly quick: boolean;
  readonly rounds: number;
  readonly scenarios: {
    unary?: { rows: UnaryRow[]; statusChecks: string[] };
    streaming?: { rows: StreamingRow[]; notes: string[] };
    wireBytes?: { rows: WireBytesRow[] };
    engine?: { rows: EngineRow[] };
    scaling?: { rows: ScalingRow[] };
    fp16?: { rows: Fp16Row[]; notes: string[] };
    openAiSse?: { rows: import("./scenario-openai-sse.js").OpenAiSseRow[] };
    peer?: { rows: PeerRow[]; checks: PeerCheck[]; notes: string[] };
    prefixCache?: { rows: import("./scenario-prefix-cache.js").PrefixCacheRow[] };
  };
  targets: TargetRow[];
  profiles: ProfileSummary[];
}
