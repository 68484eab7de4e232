/**
 * @module Finds a sampled request that generates many tokens on the built-in model, for tests
 * that must interrupt a generation while it is still running (cancel, shutdown).
 */
import type { Client } from "@connectrpc/connect";
import type { InferenceService } from "@parley/gen/inference/v1/inference_pb";

/** A seeded request and how many tokens it generates. */
export interface LongGeneration {
  readonly request: {
    readonly prompt: string;
    readonly maxTokens: number;
    readonly temperature: number;
    readonly seed: bigint;
  };
  readonly tokens: number;
}

/**
 * Tries seeds 1..10 of a hot sampled request (temperature 1.5, up to 2000 tokens) and returns
 * the first that runs 200 tokens or more; undefined when none does.
 */
export async function findLongGeneration(
  client: Client<typeof InferenceService>,
  prompt: string,
): Promise<LongGeneration | undefined> {
  for (let seed = 1n; seed <= 10n; seed++) {
    const request = { prompt, maxTokens: 2000, temperature: 1.5, seed };
    const { usage } = await client.generate(request);
    const tokens = usage?.completionTokens ?? 0;
    if (tokens >= 200) return { request, tokens };
  }
  return undefined;
}
