/**
 * @module Issue 13, item 4, end to end: one HTTP/2 connection opens `--max-batch` gRPC streams
 * at flow-control window 0 and never reads them. Once their generations have filled what the
 * server buffers and paused for credit, another client's Generate must still be served: the
 * paused ones are parked and give their slots away. The `parley` process runs as in production
 * (`main.js` with flags); the other client is connect-node's gRPC transport.
 *
 * A stream is paused only once the server's write buffer for it is full (64 KiB on Node 22+).
 * That is about 5,000 tokens of the built-in model in binary gRPC but about 2,000 in gRPC's JSON
 * codec (`application/grpc+json`), and a decode step's cost grows with the length, so these
 * streams use JSON; the model is the built-in one with a 16k context and no end-of-sequence
 * token, so that they run long enough to be paused.
 */

import assert from "node:assert/strict";
import { type ChildProcess, spawn } from "node:child_process";
import { once } from "node:events";
import { rm } from "node:fs/promises";
import { type ClientHttp2Stream, connect } from "node:http2";
import { join } from "node:path";
import { createInterface } from "node:readline";
import { describe, it } from "node:test";
import { fileURLToPath } from "node:url";
import { createClient } from "@connectrpc/connect";
import { createGrpcTransport } from "@connectrpc/connect-node";
import { InferenceService } from "@parley/gen/inference/v1/inference_pb";
import { endlessBuiltinModel } from "../testing/endless-model.js";

const mainScript = fileURLToPath(new URL("../main.js", import.meta.url));
const maxBatch = 2;

/** Starts `parley` on port 0 and resolves with its URL once it listens. */
async function startParley(
  args: readonly string[],
): Promise<{ child: ChildProcess; url: string; exited: Promise<unknown> }> {
  const child = spawn(process.execPath, [mainScript, "--port", "0", ...args], {
    stdio: ["ignore", "pipe", "pipe"],
  });
  const exited = once(child, "exit");
  const stderr: string[] = [];
  child.stderr?.on("data", (chunk: Buffer) => stderr.push(chunk.toString()));
  const url = await new Promise<string>((resolve, reject) => {
    createInterface({ input: child.stdout as NodeJS.ReadableStream }).on("line", (line) => {
      const entry = JSON.parse(line) as Record<string, unknown>;
      if (typeof entry.url === "string") resolve(entry.url);
    });
    void exited.then(([code]) =>
      reject(new Error(`parley exited with ${code}: ${stderr.join("")}`)),
    );
  });
  return { child, url, exited };
}

/** A gRPC message: the 5-byte envelope, then the message's bytes. */
function grpcFrame(message: Uint8Array): Buffer {
  const frame = Buffer.alloc(5 + message.length);
  frame.writeUInt32BE(message.length, 1);
  frame.set(message, 5);
  return frame;
}

async function metric(url: string, name: string): Promise<number> {
  const text = await (await fetch(`${url}/metrics`)).text();
  const line = text.split("\n").find((l) => l.startsWith(`${name}{`));
  return line === undefined ? 0 : Number(line.slice(line.lastIndexOf(" ") + 1));
}

describe("streams whose client never reads", () => {
  it(`${maxBatch} (--max-batch) unread gRPC streams on one connection leave the model serving others`, async () => {
    const modelDir = await endlessBuiltinModel();
    const { child, url, exited } = await startParley([
      "--model",
      modelDir,
      "--max-batch",
      String(maxBatch),
      "--park-after-ms",
      "200",
      "--shutdown-grace-ms",
      "0",
      "--web-root",
      join(modelDir, "no-web-client"),
    ]);
    // Window 0: the server may send headers, never a byte of data, and nothing here reads.
    const hostile = connect(url, { settings: { initialWindowSize: 0 } });
    try {
      const request = { prompt: "Once upon a time", maxTokens: 12_000, temperature: 0 };
      const closed: boolean[] = [];
      const unread: ClientHttp2Stream[] = Array.from({ length: maxBatch }, (_, i) => {
        const stream = hostile.request({
          ":method": "POST",
          ":path": "/inference.v1.InferenceService/GenerateStream",
          "content-type": "application/grpc+json",
          te: "trailers",
        });
        closed[i] = false;
        stream.on("close", () => {
          closed[i] = true;
        });
        stream.end(grpcFrame(Buffer.from(JSON.stringify(request))));
        return stream;
      });
      await Promise.all(unread.map((stream) => once(stream, "response")));

      // Every slot is taken by a stream nobody reads; a short request from another client.
      const client = createClient(InferenceService, createGrpcTransport({ baseUrl: url }));
      const reply = await client.generate(
        { prompt: "Hi", maxTokens: 4, temperature: 0 },
        { timeoutMs: 120_000 },
      );
      assert.equal(reply.usage?.completionTokens, 4);
      assert.deepEqual(closed, Array(maxBatch).fill(false), "the unread streams are still open");
      assert.ok((await metric(url, "parley_generations_parked_total")) >= 1);
      assert.ok((await metric(url, "parley_generations_parked")) >= 1);
    } finally {
      hostile.destroy();
      child.kill("SIGKILL");
      await exited;
      await rm(modelDir, { recursive: true, force: true });
    }
  });
});
