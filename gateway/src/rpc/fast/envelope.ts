/**
 * @module The length-prefixed messages of gRPC, gRPC-Web and Connect streams (one flags byte, a
 * 4-byte big-endian length, the bytes) for the paths beside connect-node: framing a response
 * message, and reading the one request message of a unary or server-streaming call.
 *
 * The reader decides every malformed body the way connect-node 2.3.0 does (its
 * `transformSplitEnvelope`, `envelopeDecompress`, `transformParseEnvelope` and `ensureSingle`,
 * in that order, envelope by envelope as the bytes arrive), so a client sees the same status
 * whichever path served it, with connect-es's codes and texts:
 * - a prefix whose length exceeds readMaxBytes: resource_exhausted, as soon as the prefix is in;
 * - the compressed flag (0x01; these paths serve only identity requests): internal, which is
 *   also what the gRPC spec asks for ("compression.md": a compressed message without an encoding);
 * - the end-of-stream flag of the protocol (Connect 0x02, gRPC-Web 0x80) marks an envelope
 *   connect-node skips; other flag bits (and every bit but 0x01 on gRPC) are ignored;
 * - the message is parsed as soon as it is complete (its parse error is the status);
 * - a second message: unimplemented ("received extra input message"), once it is complete;
 * - a body that ends inside an envelope: invalid_argument ("incomplete envelope"), and without
 *   a message: unimplemented ("missing input message").
 * One bound connect-node lacks: skipped envelopes may add up to readMaxBytes at most (it reads
 * them without end), so that nothing a call receives is unbounded. At any time the reader holds
 * at most one envelope, so memory stays within readMaxBytes plus a chunk whatever the body says.
 */
import { Code, ConnectError } from "@connectrpc/connect";
import { compressedFlag } from "../connect-internals.js";

const prefixBytes = 5;
const empty = Buffer.alloc(0);

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

/** Options of {@link SingleMessageReader}. */
export interface SingleMessageReaderOptions {
  /** Largest envelope payload, and most bytes of skipped envelopes. */
  readonly readMaxBytes: number;
  /** The flag of envelopes to skip (Connect's end-stream, gRPC-Web's trailers); none for gRPC. */
  readonly skipFlag: number | undefined;
  /** Parses the message's bytes; what it throws is the call's status. */
  readonly parse: (bytes: Uint8Array) => unknown;
  /** The method kind, for connect-es's error texts. */
  readonly kind: "unary" | "server_streaming";
}

/** Reads a request body that must hold exactly one message; see the module comment. */
export class SingleMessageReader {
  private chunks: Buffer[] = [];
  private buffered = 0;
  /** The current envelope's flags and length, once its prefix is in. */
  private flags = 0;
  private length = -1;
  private skipped = 0;
  private messages = 0;
  private request: unknown;

  constructor(private readonly options: SingleMessageReaderOptions) {}

  /** Adds a body chunk; throws (a ConnectError) as soon as the body decides the call's status. */
  push(chunk: Buffer): void {
    this.chunks.push(chunk);
    this.buffered += chunk.byteLength;
    for (;;) {
      if (this.length < 0) {
        if (this.buffered < prefixBytes) return;
        const prefix = this.take(prefixBytes);
        this.flags = prefix[0] as number;
        this.length = prefix.readUInt32BE(1);
        const { readMaxBytes } = this.options;
        if (this.length > readMaxBytes) {
          throw new ConnectError(
            `message size ${this.length} is larger than configured readMaxBytes ${readMaxBytes}`,
            Code.ResourceExhausted,
          );
        }
      }
      if (this.buffered < this.length) return;
      const data = this.take(this.length);
      const { flags } = this;
      this.length = -1;
      this.envelope(flags, data);
    }
  }

  /** The parsed request, once the body has ended. */
  end(): unknown {
    if (this.buffered > 0 || this.length >= 0) {
      throw new ConnectError("protocol error: incomplete envelope", Code.InvalidArgument);
    }
    if (this.messages === 0) {
      throw new ConnectError(
        `protocol error: missing input message for ${kindText(this.options.kind)} method`,
        Code.Unimplemented,
      );
    }
    return this.request;
  }

  private envelope(flags: number, data: Buffer): void {
    const { skipFlag, readMaxBytes } = this.options;
    if ((flags & compressedFlag) === compressedFlag) {
      // Compressed requests announce their encoding and go to connect-node; this one did not.
      throw new ConnectError(
        "received compressed envelope, but do not know how to decompress",
        Code.Internal,
      );
    }
    if (skipFlag !== undefined && (flags & skipFlag) === skipFlag) {
      this.skipped += prefixBytes + data.byteLength;
      if (this.skipped > readMaxBytes) {
        throw new ConnectError(
          `skipped envelopes are larger than configured readMaxBytes ${readMaxBytes}`,
          Code.ResourceExhausted,
        );
      }
      return;
    }
    const message = this.options.parse(data);
    if (++this.messages > 1) {
      throw new ConnectError(
        `protocol error: received extra input message for ${kindText(this.options.kind)} method`,
        Code.Unimplemented,
      );
    }
    this.request = message;
  }

  /** Removes the first `bytes` buffered bytes (there are at least that many). */
  private take(bytes: number): Buffer {
    if (bytes === 0) return empty;
    let first = this.chunks[0] as Buffer;
    if (first.byteLength < bytes) {
      first = Buffer.concat(this.chunks, this.buffered);
      this.chunks = [first];
    }
    const taken = first.subarray(0, bytes);
    if (first.byteLength === bytes) {
      this.chunks.shift();
    } else {
      this.chunks[0] = first.subarray(bytes);
    }
    this.buffered -= bytes;
    return taken;
  }
}

/** How connect-es names the method kind in its protocol errors. */
export function kindText(kind: "unary" | "server_streaming"): string {
  return kind === "unary" ? "unary" : "server-streaming";
}
