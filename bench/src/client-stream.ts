/**
 * @module One `GenerateStream` call from a real connect-node client, for the wire-bytes count:
 * what goes on the wire is whatever the protocol's own client and the gateway exchange.
 */
import { createClient } from "@connectrpc/connect";
import { InferenceService } from "@parley/gen/inference/v1/inference_pb";
import { createBenchTransport } from "./connect-transports.js";
import type { WireProtocol } from "./rpc-wire.js";

/** One call. */
export interface ClientStreamJob {
  readonly protocol: WireProtocol;
  readonly httpVersion: "1.1" | "2";
  readonly port: number;
  readonly prompt: string;
  readonly maxTokens: number;
}

/** Streams one greedy completion; resolves with the messages and tokens received. */
export async function runClientStream(
  job: ClientStreamJob,
): Promise<{ messages: number; tokens: number }> {
  const bench = createBenchTransport(job.protocol, job.httpVersion, job.port, 1);
  try {
    const client = createClient(InferenceService, bench.transport);
    let messages = 0;
    let tokens = 0;
    const request = { prompt: job.prompt, maxTokens: job.maxTokens, temperature: 0 };
    for await (const message of client.generateStream(request)) {
      messages++;
      tokens += message.tokenIds.length;
    }
    return { messages, tokens };
  } finally {
    bench.close();
  }
}
