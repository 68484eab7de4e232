/**
 * @module The length-prefixed messages of gRPC, gRPC-Web and Connect streams (one flags byte, a
 * 4-byte big-endian length, the bytes) for the paths beside connect-node: framing a response
 * message, and reading the one request message of a unary or server-streaming call. Errors and
 * their codes are connect-es's, so a client sees the same status whichever path served it.
 */
import { Code, ConnectError } from "@connectrpc/connect";
import { compressedFlag } from "../connect-internals.js";

const prefixBytes = 5;

/**
 * Frames one uncompressed message; `flags` marks the end-of-stream envelopes of gRPC-Web
 * (trailers) and Connect (end-stream JSON).
 */
export function frameMessage(message: Uint8Array, flags = 0): Buffer {
  const frame = Buffer.allocUnsafe(prefixBytes + message.byteLength);
  frame[0] = flags;
  frame.writeUInt32BE(message.byteLength, 1);
  frame.set(message, prefixBytes);
  return frame;
}

/**
 * Collects a request body that must hold exactly one message. It checks the declared length as
 * soon as the prefix arrives, so an oversized request fails before its bytes are buffered.
 */
export class SingleMessageReader {
  private chunks: Buffer[] = [];
  private bytes = 0;
  private lengthChecked = false;

  constructor(private readonly readMaxBytes: number) {}

  /** Adds a body chunk; throws resource_exhausted when the message is larger than allowed. */
  push(chunk: Buffer): void {
    this.chunks.push(chunk);
    this.bytes += chunk.byteLength;
    if (!this.lengthChecked && this.bytes >= prefixBytes) {
      this.lengthChecked = true;
      const length = this.joined().readUInt32BE(1);
      if (length > this.readMaxBytes) {
        throw new ConnectError(
          `message size ${length} is larger than configured readMaxBytes ${this.readMaxBytes}`,
          Code.ResourceExhausted,
        );
      }
    }
  }

  /** The request message, once the body has ended; `kind` names the method kind in errors. */
  message(kind: string): Uint8Array {
    const body = this.joined();
    if (body.byteLength === 0) {
      throw new ConnectError(
        `protocol error: missing input message for ${kind} method`,
        Code.Unimplemented,
      );
    }
    const length = body.byteLength >= prefixBytes ? body.readUInt32BE(1) : -1;
    if (length < 0 || body.byteLength < prefixBytes + length) {
      throw new ConnectError("protocol error: incomplete envelope", Code.InvalidArgument);
    }
    if (body.byteLength > prefixBytes + length) {
      throw new ConnectError(
        `protocol error: received extra input message for ${kind} method`,
        Code.Unimplemented,
      );
    }
    const flags = body[0] as number;
    if ((flags & compressedFlag) === compressedFlag) {
      // Compressed requests announce grpc-encoding and go to connect-node; this one did not.
      throw new ConnectError(
        "received compressed envelope, but do not know how to decompress",
        Code.Internal,
      );
    }
    if (flags !== 0) {
      throw new ConnectError(
        `protocol error: invalid envelope flags ${flags}`,
        Code.InvalidArgument,
      );
    }
    return body.subarray(prefixBytes);
  }

  private joined(): Buffer {
    if (this.chunks.length > 1) {
      this.chunks = [Buffer.concat(this.chunks, this.bytes)];
    }
    return this.chunks[0] ?? Buffer.alloc(0);
  }
}
