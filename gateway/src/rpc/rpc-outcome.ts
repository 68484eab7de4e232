/**
 * @module Reads the status an RPC ended with from the response as it went on the wire. Connect
 * interceptors do not see every failure: a malformed or oversized request body, a bad timeout
 * header or a wrong content type fail before any interceptor runs. The response is the one place
 * where every outcome shows, in each protocol's own form: gRPC trailers, the gRPC-Web trailer
 * frame, the Connect end-stream frame, or the Connect unary error body.
 */
import { Code, ConnectError } from "@connectrpc/connect";
import { compressedFlag, type UniversalServerResponse } from "@connectrpc/connect/protocol";
import {
  codeFromHttpStatus as connectCodeFromHttpStatus,
  endStreamFlag,
  endStreamFromJson,
  errorFromJsonBytes,
  headerStreamEncoding,
  headerUnaryEncoding,
} from "@connectrpc/connect/protocol-connect";
import {
  findTrailerError,
  codeFromHttpStatus as grpcCodeFromHttpStatus,
  headerEncoding as headerGrpcEncoding,
} from "@connectrpc/connect/protocol-grpc";
import { trailerFlag, trailerParse } from "@connectrpc/connect/protocol-grpc-web";
import { compressionBrotli, compressionGzip } from "@connectrpc/connect-node";
import type { RpcProtocol } from "./rpc-protocol.js";

/** A response as it was written, filled in while it is written. */
export interface ObservedResponse {
  response: UniversalServerResponse;
  /** The last body chunk: connect-node writes one enveloped message per chunk. */
  lastChunk: Uint8Array | undefined;
  /** Whether the whole body was handed to Node; false when the client went away first. */
  complete: boolean;
}

/** An envelope header: one flags byte and a four-byte length. */
const envelopeHeaderBytes = 5;

/** Response trailers and errors are small; a larger frame is not read for its status. */
const statusReadMaxBytes = 1 << 20;

/**
 * Returns the error the client received, `undefined` for success, or `null` when the response
 * never completed (the caller then decides from what the handler saw).
 */
export async function readRpcOutcome(
  protocol: RpcProtocol,
  unary: boolean,
  observed: ObservedResponse,
): Promise<ConnectError | undefined | null> {
  const { response, lastChunk } = observed;
  const header = response.header ?? new Headers();
  if (response.status !== 200) {
    // A Connect unary error (its JSON body names the code), or a request refused before any
    // protocol handling (405, 415, 505: no body, the HTTP status is all there is).
    if (protocol !== "connect") {
      return new ConnectError(`HTTP ${response.status}`, grpcCodeFromHttpStatus(response.status));
    }
    const fallback = new ConnectError(
      `HTTP ${response.status}`,
      connectCodeFromHttpStatus(response.status),
    );
    const body =
      lastChunk === undefined
        ? undefined
        : await decompress(lastChunk, header.get(headerUnaryEncoding));
    return body === undefined ? fallback : parseConnectError(body, fallback);
  }
  if (!observed.complete) {
    return null;
  }
  switch (protocol) {
    case "grpc":
      return findTrailerError(response.trailer ?? new Headers()) ?? findTrailerError(header);
    case "grpc_web": {
      const frame = await readFrame(lastChunk, trailerFlag, header.get(headerGrpcEncoding));
      if (frame === undefined) {
        return new ConnectError("missing gRPC-Web trailer", Code.Internal);
      }
      return findTrailerError(trailerParse(frame));
    }
    case "connect": {
      if (unary) {
        return undefined;
      }
      const frame = await readFrame(lastChunk, endStreamFlag, header.get(headerStreamEncoding));
      if (frame === undefined) {
        return new ConnectError("missing Connect end-stream message", Code.Internal);
      }
      try {
        return endStreamFromJson(frame).error;
      } catch (error) {
        return ConnectError.from(error);
      }
    }
    case "openai": // Served by openai/, which reports its own outcome.
    case "unknown":
      return new ConnectError("unsupported protocol", Code.Unknown);
  }
}

/** The payload of `chunk` when it is an envelope with `flag`, decompressed when it says so. */
async function readFrame(
  chunk: Uint8Array | undefined,
  flag: number,
  encoding: string | null,
): Promise<Uint8Array | undefined> {
  if (chunk === undefined || chunk.byteLength < envelopeHeaderBytes) {
    return undefined;
  }
  const flags = chunk[0] ?? 0;
  if ((flags & flag) !== flag) {
    return undefined;
  }
  const data = chunk.subarray(envelopeHeaderBytes);
  return (flags & compressedFlag) === compressedFlag ? decompress(data, encoding) : data;
}

async function decompress(
  data: Uint8Array,
  encoding: string | null,
): Promise<Uint8Array | undefined> {
  if (encoding === null || encoding === "identity") {
    return data;
  }
  const compression = [compressionGzip, compressionBrotli].find((c) => c.name === encoding);
  try {
    return await compression?.decompress(data, statusReadMaxBytes);
  } catch {
    return undefined;
  }
}

function parseConnectError(body: Uint8Array, fallback: ConnectError): ConnectError {
  try {
    return errorFromJsonBytes(body, undefined, fallback);
  } catch (error) {
    return ConnectError.from(error);
  }
}
