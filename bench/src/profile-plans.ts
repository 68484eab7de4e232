/**
 * @module What to replay under the profiler for each kind of shortfall: the same gateway
 * configuration and a few seconds of the scenario's load.
 */
import type { BenchContext } from "./bench-context.js";
import { findLongPrompt, gatewayClient } from "./bench-fixtures.js";
import type { ProfilePlan } from "./bench-profiles.js";
import { runH2load } from "./h2load-runner.js";
import { listModelsBody, methodPath, requestHeaders } from "./rpc-wire.js";
import { fanOutFlags, pacedFlags } from "./scenario-streaming.js";
import type { StreamLoadResult } from "./stream-load.js";

/** The plans by key (the `profile` of a target row). */
export function profilePlans(
  ctx: BenchContext,
  largePrompt: string | undefined,
): Map<string, ProfilePlan> {
  const stream = (
    port: number,
    prompt: string,
    streams: number,
    maxTokens: number,
    windowMs: number,
  ) =>
    ctx.client.request<StreamLoadResult>({
      type: "stream",
      job: {
        target: { kind: "rpc", protocol: "grpc", port, model: "", prompt, maxTokens },
        streams,
        streamsPerConnection: ctx.settings.streaming.streamsPerConnection,
        windowMs,
        keyBase: ctx.nextKeys(streams),
      },
    });
  const plans: ProfilePlan[] = [
    {
      key: "unary",
      scenario: "h2load, gateway gRPC ListModels, 64 concurrent, 5 s",
      gateway: { models: ["builtin"] },
      load: async (gateway) => {
        await runH2load({
          url: `http://127.0.0.1:${gateway.port}${methodPath("ListModels")}`,
          headers: requestHeaders("grpc", false),
          body: listModelsBody("grpc"),
          concurrency: 64,
          http1: false,
          durationMs: 5000,
          scratchDir: ctx.scratchDir,
        });
      },
    },
    {
      key: "streaming-fast",
      scenario: "64 gRPC streams of 256 tokens on the built-in model, 3 runs",
      gateway: { models: ["builtin"], trace: true, flags: fanOutFlags },
      load: async (gateway) => {
        for (let i = 0; i < 3; i++) await stream(gateway.port, ctx.builtinPrompt, 64, 256, 10_000);
      },
    },
    {
      key: "streaming-paced",
      scenario: "1,000 gRPC streams paced at 20 ms on the pacing model, 6 s",
      gateway: { models: [ctx.models.pacing], trace: true, pace: true, flags: pacedFlags },
      load: async (gateway) => {
        const prompt = await findLongPrompt(gatewayClient(gateway.port), "", 256);
        await gateway.request({ type: "pace", paceMs: ctx.settings.streaming.paceMs });
        await new Promise((resolve) => setTimeout(resolve, 100));
        await stream(gateway.port, prompt, Math.max(...ctx.settings.streaming.streams), 256, 6000);
      },
    },
    {
      key: "engine",
      scenario: "one gRPC stream of 256 tokens on the built-in model, 8 runs",
      gateway: { models: ["builtin"] },
      load: async (gateway) => {
        for (let i = 0; i < 8; i++) await stream(gateway.port, ctx.builtinPrompt, 1, 256, 60_000);
      },
    },
  ];
  if (largePrompt !== undefined) {
    plans.push(
      {
        key: "engine-large",
        scenario: "one gRPC stream of 128 tokens on the larger model, 3 runs",
        gateway: { models: [ctx.models.large] },
        load: async (gateway) => {
          for (let i = 0; i < 3; i++) await stream(gateway.port, largePrompt, 1, 128, 60_000);
        },
      },
      {
        key: "scaling-large",
        scenario: "8 gRPC streams of 64 tokens on the larger model, 3 runs",
        gateway: { models: [ctx.models.large] },
        load: async (gateway) => {
          for (let i = 0; i < 3; i++) await stream(gateway.port, largePrompt, 8, 64, 60_000);
        },
      },
    );
  }
  return new Map(plans.map((plan) => [plan.key, plan]));
}
