/**
 * @module The three RPC protocols as bytes, for the bench's raw clients (h2load and the
 * streaming client): request headers and bodies, response envelope parsing and the status each
 * protocol ends a call with. Written against the protocol specs rather than taken from
 * connect-node's client so that the load generator spends as little CPU per message as possible
 * and costs the same for every system it measures.
 */
import { create, toBinary, toJsonString } from "@bufbuild/protobuf";
import { GenerateStreamRequestSchema } from "@parley/gen/inference/v1/inference_pb";

/** A protocol as the bench names it. */
export type WireProtocol = "grpc" | "grpc-web" | "connect-proto" | "connect-json";

/** Every protocol the gateway serves, in the order tables list them. */
export const wireProtocols: readonly WireProtocol[] = [
  "grpc",
  "grpc-web",
  "connect-proto",
  "connect-json",
];

/** The path of a method of `inference.v1.InferenceService`. */
export function methodPath(method: "ListModels" | "GenerateStream"): string {
  return `/inference.v1.InferenceService/${method}`;
}

/** The 5-byte envelope prefix (flags, big-endian length) and payload. */
export function envelope(payload: Uint8Array, flags = 0): Buffer {
  const framed = Buffer.alloc(5 + payload.byteLength);
  framed[0] = flags;
  framed.writeUInt32BE(payload.byteLength, 1);
  framed.set(payload, 5);
  return framed;
}

/** Request headers of a unary call (`streaming` false) or a server-streaming call. */
export function requestHeaders(protocol: WireProtocol, streaming: boolean): Record<string, string> {
  switch (protocol) {
    case "grpc":
      return { "content-type": "application/grpc", te: "trailers" };
    case "grpc-web":
      return { "content-type": "application/grpc-web+proto", "x-grpc-web": "1" };
    case "connect-proto":
      return {
        "content-type": streaming ? "application/connect+proto" : "application/proto",
        "connect-protocol-version": "1",
      };
    case "connect-json":
      return {
        "content-type": streaming ? "application/connect+json" : "application/json",
        "connect-protocol-version": "1",
      };
  }
}

/**
 * The body of an empty `ListModelsRequest`. Connect binary carries one unknown varint field
 * (2 bytes, ignored by the server) because h2load cannot post an empty file.
 */
export function listModelsBody(protocol: WireProtocol): Buffer {
  switch (protocol) {
    case "grpc":
    case "grpc-web":
      return envelope(new Uint8Array(0));
    case "connect-proto":
      return Buffer.from([0x78, 0x00]);
    case "connect-json":
      return Buffer.from("{}");
  }
}

/** What one benchmark stream asks for. */
export interface StreamAsk {
  readonly model: string;
  readonly prompt: string;
  readonly maxTokens: number;
  /** The stream's key: sent as the seed, which greedy decoding ignores, to match traces. */
  readonly key: bigint;
}

/** The enveloped `GenerateStreamRequest` body, greedy (temperature 0). */
export function generateStreamBody(protocol: WireProtocol, ask: StreamAsk): Buffer {
  const message = create(GenerateStreamRequestSchema, {
    model: ask.model,
    prompt: ask.prompt,
    maxTokens: ask.maxTokens,
    temperature: 0,
    seed: ask.key,
  });
  const payload =
    protocol === "connect-json"
      ? Buffer.from(toJsonString(GenerateStreamRequestSchema, message))
      : toBinary(GenerateStreamRequestSchema, message);
  return envelope(payload);
}

/** One response envelope. */
export interface Frame {
  readonly flags: number;
  readonly payload: Buffer;
}

/** Splits a response body into envelopes as bytes arrive; partial ones wait for more. */
export class FrameReader {
  private pending: Buffer = Buffer.alloc(0);

  /** Adds bytes; returns the envelopes they completed. */
  push(chunk: Buffer): Frame[] {
    this.pending = this.pending.length === 0 ? chunk : Buffer.concat([this.pending, chunk]);
    const frames: Frame[] = [];
    let offset = 0;
    while (this.pending.length - offset >= 5) {
      const length = this.pending.readUInt32BE(offset + 1);
      if (this.pending.length - offset < 5 + length) break;
      frames.push({
        flags: this.pending[offset] as number,
        payload: this.pending.subarray(offset + 5, offset + 5 + length),
      });
      offset += 5 + length;
    }
    this.pending = this.pending.subarray(offset);
    return frames;
  }
}

/** The flag of a response envelope that ends the stream (trailers or end-stream message). */
export function endFlag(protocol: WireProtocol): number {
  switch (protocol) {
    case "grpc":
      return 0x100; // gRPC ends in HTTP/2 trailers, never in an envelope
    case "grpc-web":
      return 0x80;
    case "connect-proto":
    case "connect-json":
      return 0x02;
  }
}

/**
 * The status an ended stream reports: "ok", or the error code. `end` is the end envelope's
 * payload (gRPC-Web trailers, Connect end-stream JSON); `trailers` are HTTP/2 trailers (gRPC).
 */
export function streamStatus(
  protocol: WireProtocol,
  end: Buffer | undefined,
  trailers: Record<string, string | string[] | undefined>,
): string {
  switch (protocol) {
    case "grpc": {
      const status = trailers["grpc-status"];
      return status === "0" ? "ok" : `grpc-status ${String(status)}`;
    }
    case "grpc-web": {
      const match = /grpc-status:\s*(\d+)/i.exec(end?.toString("latin1") ?? "");
      return match?.[1] === "0" ? "ok" : `grpc-status ${match?.[1] ?? "missing"}`;
    }
    case "connect-proto":
    case "connect-json": {
      if (end === undefined) return "missing end-stream";
      const parsed = JSON.parse(end.toString("utf8")) as { error?: { code?: string } };
      return parsed.error === undefined ? "ok" : (parsed.error.code ?? "unknown");
    }
  }
}
