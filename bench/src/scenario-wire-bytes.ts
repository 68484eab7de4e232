/**
 * @module Scenario 3, bytes on the wire per token: one greedy stream through a counting TCP proxy
 * for each protocol and HTTP version the gateway serves (with connect-node's own clients), and
 * for the Server-Sent Events baseline (same messages as JSON). Each is run with a short and a long
 * completion: bytes per token over the whole connection, and the marginal bytes of one more token.
 * The gateway's decode steps are held 5 ms apart, so every message carries one token, as the
 * baseline's do.
 */
import type { BenchContext } from "./bench-context.js";
import type { WireBytesRow } from "./bench-results.js";
import { type ChildSystem, startBaseline, startGateway } from "./child-system.js";
import { startCountingProxy } from "./counting-proxy.js";
import type { WireProtocol } from "./rpc-wire.js";
import type { StreamLoadResult } from "./stream-load.js";

interface WireCase {
  readonly system: ChildSystem;
  readonly systemName: string;
  readonly protocol: WireProtocol | "sse";
  readonly httpVersion: "1.1" | "2";
}

/** Runs scenario 3. */
export async function runWireBytesScenario(ctx: BenchContext): Promise<{ rows: WireBytesRow[] }> {
  const { shortTokens, longTokens } = ctx.settings.wireBytes;
  const gateway = await startGateway({
    name: "gateway",
    models: ["builtin"],
    pace: true,
    flags: ["--stream-interval-ms", "0"],
  });
  const fastify = await startBaseline("fastify", ctx.fixturesPath);
  try {
    // Bytes per token are compared at one token per message: decode steps 5 ms apart, so the
    // main thread never falls behind the worker and merges steps into one message, and no
    // stream interval (the grid can start a step right after a late one).
    await gateway.request({ type: "pace", paceMs: 5 });
    const rpcCases: WireCase[] = (
      [
        ["grpc", "2"],
        ["grpc-web", "2"],
        ["grpc-web", "1.1"],
        ["connect-proto", "2"],
        ["connect-proto", "1.1"],
        ["connect-json", "2"],
        ["connect-json", "1.1"],
      ] as const
    ).map(([protocol, httpVersion]) => ({
      system: gateway,
      systemName: "gateway",
      protocol,
      httpVersion,
    }));
    const cases: WireCase[] = [
      ...rpcCases,
      { system: fastify, systemName: "fastify SSE", protocol: "sse", httpVersion: "1.1" },
    ];
    const rows: WireBytesRow[] = [];
    for (const c of cases) {
      const proxy = await startCountingProxy(c.system.port);
      try {
        const count = async (maxTokens: number) => {
          proxy.reset();
          let tokens: number;
          if (c.protocol === "sse") {
            const result = await ctx.client.request<StreamLoadResult>({
              type: "stream",
              job: {
                target: { kind: "sse", port: proxy.port, maxTokens },
                streams: 1,
                streamsPerConnection: 1,
                windowMs: 60_000,
                keyBase: ctx.nextKeys(1),
              },
            });
            tokens = result.tokens;
          } else {
            const result = await ctx.client.request<{ tokens: number }>({
              type: "client-stream",
              job: {
                protocol: c.protocol,
                httpVersion: c.httpVersion,
                port: proxy.port,
                prompt: ctx.builtinPrompt,
                maxTokens,
              },
            });
            tokens = result.tokens;
          }
          // Closing frames (GOAWAY, FIN) may still be in flight when the client resolves.
          await new Promise((resolve) => setTimeout(resolve, 100));
          return { tokens, ...proxy.counts() };
        };
        const short = await count(shortTokens);
        const long = await count(longTokens);
        rows.push({
          system: c.systemName,
          protocol: c.protocol,
          httpVersion: c.httpVersion,
          tokens: long.tokens,
          bytesDown: long.down,
          bytesUp: long.up,
          bytesPerToken: long.down / Math.max(1, long.tokens),
          marginalBytesPerToken: (long.down - short.down) / Math.max(1, long.tokens - short.tokens),
        });
        ctx.log(
          `wire bytes: ${c.systemName} ${c.protocol} HTTP/${c.httpVersion}: ${long.down} B for ${long.tokens} tokens`,
        );
      } finally {
        await proxy.close();
      }
    }
    return { rows };
  } finally {
    await Promise.all([gateway.stop(), fastify.stop()]);
  }
}
