/**
 * @module The payloads the baselines serve, captured from the real gateway at the start of a
 * run: its `ListModelsResponse` and one real greedy `GenerateStream` (the first message names the
 * model, then one message per token). Baselines send exactly these messages, so every system
 * puts the same payload on the wire and only the serving stack differs.
 */

import { readFile, writeFile } from "node:fs/promises";
import { fromBinary, toBinary, toJsonString } from "@bufbuild/protobuf";
import { type Client, createClient } from "@connectrpc/connect";
import { createGrpcTransport } from "@connectrpc/connect-node";
import {
  FinishReason,
  GenerateStreamResponseSchema,
  InferenceService,
  ListModelsResponseSchema,
} from "@parley/gen/inference/v1/inference_pb";

/** What baselines serve; binary Protobuf, as the gateway sent it. */
export interface BenchFixtures {
  readonly listModelsResponse: Uint8Array;
  /** `GenerateStreamResponse` messages: [0] names the model, the rest carry one token each. */
  readonly streamMessages: readonly Uint8Array[];
}

/** The same messages as JSON, for the REST baselines. */
export function fixturesAsJson(fixtures: BenchFixtures): {
  listModelsResponse: string;
  streamMessages: string[];
} {
  return {
    listModelsResponse: toJsonString(
      ListModelsResponseSchema,
      fromBinary(ListModelsResponseSchema, fixtures.listModelsResponse),
    ),
    streamMessages: fixtures.streamMessages.map((bytes) =>
      toJsonString(GenerateStreamResponseSchema, fromBinary(GenerateStreamResponseSchema, bytes)),
    ),
  };
}

/** A gRPC client of a gateway, for setup calls the bench does not time. */
export function gatewayClient(port: number): Client<typeof InferenceService> {
  return createClient(
    InferenceService,
    createGrpcTransport({ baseUrl: `http://127.0.0.1:${port}` }),
  );
}

/**
 * Finds a prompt whose greedy completion runs to `maxTokens` without an end-of-sequence token,
 * so that streams carry the number of messages the scenario asks for. The built-in models have
 * random weights: some prompts end early, most loop on.
 */
export async function findLongPrompt(
  client: Client<typeof InferenceService>,
  model: string,
  maxTokens: number,
): Promise<string> {
  for (let i = 0; i < 40; i++) {
    const prompt = `Benchmark prompt ${i}: tell me a long story`;
    const response = await client.generate({ model, prompt, maxTokens, temperature: 0 });
    if (response.finishReason === FinishReason.LENGTH) return prompt;
  }
  throw new Error(`no prompt of 40 tried runs to ${maxTokens} tokens on model "${model}"`);
}

/**
 * Captures the fixtures from a running gateway. The stream must carry one token per message, as
 * the baselines replay it; a main thread that falls behind its worker (a busy machine, a pacer
 * step started right after a late one) merges two steps into one message, so a merged capture
 * is taken again, up to `attempts` times, and then fails loudly. `beforeAttempt` runs before
 * each (the caller spaces the decode steps wider each time: a loaded CI machine needs more).
 */
export async function captureFixtures(
  client: Client<typeof InferenceService>,
  prompt: string,
  maxTokens: number,
  beforeAttempt: (attempt: number) => Promise<void>,
  attempts = 5,
): Promise<BenchFixtures> {
  const models = await client.listModels({});
  for (let attempt = 1; attempt <= attempts; attempt++) {
    await beforeAttempt(attempt);
    const streamMessages: Uint8Array[] = [];
    let merged = false;
    for await (const message of client.generateStream({ prompt, maxTokens, temperature: 0 })) {
      merged ||= message.tokenIds.length > 1;
      streamMessages.push(toBinary(GenerateStreamResponseSchema, message));
    }
    if (!merged) {
      return { listModelsResponse: toBinary(ListModelsResponseSchema, models), streamMessages };
    }
  }
  throw new Error(
    `in ${attempts} captures a message carried several tokens; baselines send one per message`,
  );
}

/** Writes fixtures for the baseline children. */
export async function saveFixtures(path: string, fixtures: BenchFixtures): Promise<void> {
  const encode = (bytes: Uint8Array) => Buffer.from(bytes).toString("base64");
  await writeFile(
    path,
    JSON.stringify({
      listModelsResponse: encode(fixtures.listModelsResponse),
      streamMessages: fixtures.streamMessages.map(encode),
    }),
  );
}

/** Reads fixtures written by {@link saveFixtures}. */
export async function loadFixtures(path: string): Promise<BenchFixtures> {
  const raw = JSON.parse(await readFile(path, "utf8")) as {
    listModelsResponse: string;
    streamMessages: string[];
  };
  const decode = (text: string) => new Uint8Array(Buffer.from(text, "base64"));
  return {
    listModelsResponse: decode(raw.listModelsResponse),
    streamMessages: raw.streamMessages.map(decode),
  };
}
