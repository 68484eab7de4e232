/**
 * @module The streaming load generator: opens many server streams at once and stamps the arrival
 * of every message. RPC streams (gRPC, gRPC-Web, Connect) go over `node:http2`, at most
 * `streamsPerConnection` per connection; Server-Sent Events go over HTTP/1.1, one connection per
 * stream as EventSource does. Envelopes and events are split without decoding their payloads,
 * so the client costs the same per message whatever it measures. The first message of every
 * stream (the gateway's model announcement, or the baselines' copy of it) carries no token and is
 * counted apart.
 */
import { Agent, request as httpRequest } from "node:http";
import { type ClientHttp2Session, connect, constants } from "node:http2";
import {
  endFlag,
  FrameReader,
  generateStreamBody,
  methodPath,
  requestHeaders,
  streamStatus,
  type WireProtocol,
} from "./rpc-wire.js";
import { monotonicMs } from "./summary-stats.js";
import { countJsonTokenIds, countProtoTokenIds } from "./token-count.js";

/** Where the streams go. */
export type StreamTarget =
  | {
      readonly kind: "rpc";
      readonly protocol: WireProtocol;
      readonly port: number;
      readonly model: string;
      readonly prompt: string;
      readonly maxTokens: number;
    }
  | {
      readonly kind: "sse";
      readonly port: number;
      readonly maxTokens: number;
      /** Sent as `&prompt=` to servers that generate (the transformers.js peer). */
      readonly prompt?: string;
    };

/** One streaming run. */
export interface StreamLoadJob {
  readonly target: StreamTarget;
  readonly streams: number;
  readonly streamsPerConnection: number;
  /** Streams still open after this long are cancelled, and the run ends. */
  readonly windowMs: number;
  /** Stream i is keyed keyBase + i (sent as seed / x-bench-key / ?key=). */
  readonly keyBase: number;
}

/** What the client saw. */
export interface StreamLoadResult {
  readonly streams: number;
  readonly completed: number;
  readonly cancelled: number;
  /** Up to 5 distinct failures (status or error messages). */
  readonly failures: readonly string[];
  readonly failed: number;
  /** Messages that carried tokens. */
  readonly messages: number;
  /** Tokens received. */
  readonly tokens: number;
  /** From the first request to the last message, or to the window's end. */
  readonly elapsedMs: number;
  /** Per stream: response headers arrived, ms after the stream was requested. */
  readonly ttfbMs: Float64Array;
  /** Per stream: first token arrived, ms after the stream was requested. */
  readonly ttftMs: Float64Array;
  /** Per stream key: the monotonic ms at which each token arrived. */
  readonly arrivals: Record<string, Float64Array>;
  readonly clientCpuUs: number;
}

interface StreamRecord {
  readonly key: string;
  requestedAt: number;
  headersAt: number;
  readonly arrivals: number[];
  /** Messages with tokens that arrived before the window closed. */
  messages: number;
  /** When the run's window closes. */
  readonly deadline: number;
  done: boolean;
  cancel: () => void;
}

function openRpc(
  target: Extract<StreamTarget, { kind: "rpc" }>,
  session: ClientHttp2Session,
  record: StreamRecord,
  onEnd: (record: StreamRecord, status: string) => void,
): void {
  const reader = new FrameReader();
  const end = endFlag(target.protocol);
  let endPayload: Buffer | undefined;
  let trailers: Record<string, string | string[] | undefined> = {};
  const stream = session.request({
    ":method": "POST",
    ":path": methodPath("GenerateStream"),
    ...requestHeaders(target.protocol, true),
    "x-bench-key": record.key,
    "x-bench-tokens": String(target.maxTokens),
  });
  record.cancel = () => stream.close(constants.NGHTTP2_CANCEL);
  stream.on("response", (headers) => {
    record.headersAt = monotonicMs();
    if (headers[":status"] !== 200) trailers = { "grpc-status": `http ${headers[":status"]}` };
    else trailers = headers as Record<string, string>;
  });
  stream.on("trailers", (received) => {
    trailers = received as Record<string, string>;
  });
  stream.on("data", (chunk: Buffer) => {
    const now = monotonicMs();
    for (const frame of reader.push(chunk)) {
      if ((frame.flags & end) === end) {
        endPayload = Buffer.from(frame.payload);
        continue;
      }
      const tokens =
        target.protocol === "connect-json"
          ? countJsonTokenIds(frame.payload.toString("utf8"))
          : countProtoTokenIds(frame.payload);
      if (tokens > 0 && now <= record.deadline) record.messages++;
      for (let i = 0; i < tokens; i++) record.arrivals.push(now);
    }
  });
  stream.on("error", (error) => onEnd(record, error.message));
  stream.on("close", () => onEnd(record, streamStatus(target.protocol, endPayload, trailers)));
  stream.end(
    generateStreamBody(target.protocol, {
      model: target.model,
      prompt: target.prompt,
      maxTokens: target.maxTokens,
      key: BigInt(record.key),
    }),
  );
}

function openSse(
  target: Extract<StreamTarget, { kind: "sse" }>,
  agent: Agent,
  record: StreamRecord,
  onEnd: (record: StreamRecord, status: string) => void,
): void {
  let pending = "";
  let status = "closed before the end";
  const request = httpRequest(
    {
      host: "127.0.0.1",
      port: target.port,
      path: `/v1/stream?key=${record.key}&tokens=${target.maxTokens}${
        target.prompt === undefined ? "" : `&prompt=${encodeURIComponent(target.prompt)}`
      }`,
      agent,
    },
    (response) => {
      record.headersAt = monotonicMs();
      response.setEncoding("utf8");
      response.on("data", (chunk: string) => {
        const now = monotonicMs();
        pending += chunk;
        let boundary = pending.indexOf("\n\n");
        while (boundary >= 0) {
          const tokens = countJsonTokenIds(pending.slice(0, boundary));
          if (tokens > 0 && now <= record.deadline) record.messages++;
          for (let i = 0; i < tokens; i++) record.arrivals.push(now);
          pending = pending.slice(boundary + 2);
          boundary = pending.indexOf("\n\n");
        }
      });
      response.on("end", () => {
        status = response.statusCode === 200 ? "ok" : `http ${response.statusCode}`;
      });
      response.on("close", () => onEnd(record, status));
    },
  );
  record.cancel = () => request.destroy();
  request.on("error", (error) => onEnd(record, error.message));
  request.end();
}

/** Runs the streams and reports what arrived. */
export async function runStreamLoad(job: StreamLoadJob): Promise<StreamLoadResult> {
  const { target } = job;
  const cpu = process.cpuUsage();
  const agent = new Agent({ keepAlive: false, maxSockets: Number.POSITIVE_INFINITY });
  const sessions: ClientHttp2Session[] = [];
  if (target.kind === "rpc") {
    const count = Math.ceil(job.streams / job.streamsPerConnection);
    for (let i = 0; i < count; i++) {
      const session = connect(`http://127.0.0.1:${target.port}`);
      session.on("error", () => {});
      sessions.push(session);
    }
    await Promise.all(
      sessions.map((s) => new Promise<void>((resolve) => s.once("connect", () => resolve()))),
    );
  }
  const records: StreamRecord[] = [];
  const failures = new Set<string>();
  let failed = 0;
  let completed = 0;
  let cancelled = 0;
  let windowClosed = false;
  let open = job.streams;
  let lastArrival = 0;
  let allDone: () => void = () => {};
  const finished = new Promise<void>((resolve) => {
    allDone = resolve;
  });
  const onEnd = (record: StreamRecord, status: string) => {
    if (record.done) return;
    record.done = true;
    lastArrival = Math.max(lastArrival, record.arrivals.at(-1) ?? 0);
    if (status === "ok") completed++;
    else if (windowClosed) cancelled++;
    else {
      failed++;
      if (failures.size < 5) failures.add(status);
    }
    if (--open === 0) allDone();
  };

  const startedAt = monotonicMs();
  for (let i = 0; i < job.streams; i++) {
    const record: StreamRecord = {
      key: String(job.keyBase + i),
      requestedAt: monotonicMs(),
      headersAt: Number.NaN,
      arrivals: [],
      messages: 0,
      deadline: startedAt + job.windowMs,
      done: false,
      cancel: () => {},
    };
    records.push(record);
    if (target.kind === "rpc") {
      openRpc(
        target,
        sessions[Math.floor(i / job.streamsPerConnection)] as ClientHttp2Session,
        record,
        onEnd,
      );
    } else {
      openSse(target, agent, record, onEnd);
    }
  }
  const timer = setTimeout(() => {
    windowClosed = true;
    for (const record of records) if (!record.done) record.cancel();
  }, job.windowMs);
  await finished;
  clearTimeout(timer);
  const windowEnd = startedAt + job.windowMs;
  for (const session of sessions) session.close();
  agent.destroy();
  const used = process.cpuUsage(cpu);
  const inWindow = (t: number) => t <= windowEnd;
  let tokens = 0;
  let messages = 0;
  for (const record of records) {
    for (const t of record.arrivals) if (inWindow(t)) tokens++;
    messages += record.messages;
  }
  return {
    streams: job.streams,
    completed,
    cancelled,
    failed,
    failures: [...failures],
    messages,
    tokens,
    elapsedMs: (windowClosed ? windowEnd : lastArrival) - startedAt,
    ttfbMs: Float64Array.from(records, (r) => r.headersAt - r.requestedAt),
    ttftMs: Float64Array.from(records, (r) => (r.arrivals[0] ?? Number.NaN) - r.requestedAt),
    arrivals: Object.fromEntries(records.map((r) => [r.key, Float64Array.from(r.arrivals)])),
    clientCpuUs: used.user + used.system,
  };
}
