/**
 * @module Scenario 7, the OpenAI-compatible Server-Sent Events path beside gRPC and Connect: the
 * same greedy completion streamed from the same gateway over `/v1/completions` (SSE, HTTP/1.1,
 * the way curl and the openai SDK call it) and over gRPC and Connect (connect-node's clients),
 * each through a counting TCP proxy. Per token: bytes on the wire (down) and the gateway's CPU
 * (whole process and main thread), over a run of streams one after another. The engine's work is
 * the same on every row, so the main-thread column is where the transports differ.
 */
import { type BenchContext, measured } from "./bench-context.js";
import { startGateway } from "./child-system.js";
import { startCountingProxy } from "./counting-proxy.js";
import type { WireProtocol } from "./rpc-wire.js";
import { sseCompletion } from "./sse-completion.js";

/** One protocol's figures. */
export interface OpenAiSseRow {
  readonly protocol: WireProtocol | "openai-sse";
  readonly httpVersion: "1.1" | "2";
  readonly streams: number;
  readonly tokens: number;
  readonly bytesPerToken: number;
  readonly cpuUsPerToken: number;
  readonly mainThreadCpuUsPerToken: number;
}

/** Runs scenario 7. */
export async function runOpenAiSseScenario(ctx: BenchContext): Promise<{ rows: OpenAiSseRow[] }> {
  const maxTokens = ctx.settings.quick ? 32 : 256;
  const streams = ctx.settings.quick ? 3 : 30;
  const gateway = await startGateway({
    name: "gateway",
    models: ["builtin"],
    flags: ["--stream-interval-ms", "0"],
  });
  try {
    const cases = [
      ["openai-sse", "1.1"],
      ["grpc", "2"],
      ["connect-proto", "2"],
      ["connect-json", "1.1"],
    ] as const;
    const rows: OpenAiSseRow[] = [];
    for (const [protocol, httpVersion] of cases) {
      const proxy = await startCountingProxy(gateway.port);
      try {
        const one = (): Promise<number> =>
          protocol === "openai-sse"
            ? sseCompletion(proxy.port, ctx.builtinPrompt, maxTokens).then(
                (c) => c.completionTokens,
              )
            : ctx.client
                .request<{ tokens: number }>({
                  type: "client-stream",
                  job: {
                    protocol,
                    httpVersion,
                    port: proxy.port,
                    prompt: ctx.builtinPrompt,
                    maxTokens,
                  },
                })
                .then((result) => result.tokens);
        await one(); // warm-up: JIT, connection paths
        proxy.reset();
        const { result: tokens, delta } = await measured(gateway, async () => {
          let total = 0;
          for (let i = 0; i < streams; i++) total += await one();
          return total;
        });
        // Closing frames (GOAWAY, FIN) may still be in flight when the client resolves.
        await new Promise((resolve) => setTimeout(resolve, 100));
        const row: OpenAiSseRow = {
          protocol,
          httpVersion,
          streams,
          tokens,
          bytesPerToken: proxy.counts().down / Math.max(1, tokens),
          cpuUsPerToken: delta.cpuUs / Math.max(1, tokens),
          mainThreadCpuUsPerToken: delta.mainThreadCpuUs / Math.max(1, tokens),
        };
        rows.push(row);
        ctx.log(
          `openai sse: ${protocol} HTTP/${httpVersion}: ${row.bytesPerToken.toFixed(1)} B/token, ${row.cpuUsPerToken.toFixed(1)} µs CPU/token (main thread ${row.mainThreadCpuUsPerToken.toFixed(1)})`,
        );
      } finally {
        await proxy.close();
      }
    }
    return { rows };
  } finally {
    await gateway.stop();
  }
}

/** The rows as a Markdown table for the report. */
export function openAiSseTable(rows: readonly OpenAiSseRow[]): string {
  return [
    "| protocol | HTTP | tokens | bytes/token | gateway CPU µs/token | main thread µs/token |",
    "| --- | --- | ---: | ---: | ---: | ---: |",
    ...rows.map(
      (r) =>
        `| ${r.protocol} | ${r.httpVersion} | ${r.tokens} | ${r.bytesPerToken.toFixed(1)} | ${r.cpuUsPerToken.toFixed(1)} | ${r.mainThreadCpuUsPerToken.toFixed(1)} |`,
    ),
  ].join("\n");
}
