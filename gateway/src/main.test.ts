/**
 * @module The `parley` process end to end: it starts on the built-in model, serves, and on
 * SIGTERM lets a stream in flight finish before it exits 0; on SIGHUP it re-reads its key file.
 */

import assert from "node:assert/strict";
import { type ChildProcessWithoutNullStreams, spawn } from "node:child_process";
import { once } from "node:events";
import { mkdtemp, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createInterface } from "node:readline";
import { describe, it } from "node:test";
import { fileURLToPath } from "node:url";
import { Code, ConnectError, createClient } from "@connectrpc/connect";
import { createGrpcTransport } from "@connectrpc/connect-node";
import { FinishReason, InferenceService } from "@parley/gen/inference/v1/inference_pb";
import { findLongGeneration } from "./testing/find-long-generation.js";

const mainScript = fileURLToPath(new URL("./main.js", import.meta.url));

interface Gateway {
  readonly child: ChildProcessWithoutNullStreams;
  readonly url: string;
  readonly logs: Record<string, unknown>[];
  readonly exited: Promise<number | null>;
}

async function startGateway(args: readonly string[]): Promise<Gateway> {
  const child = spawn(process.execPath, [mainScript, "--port", "0", ...args], {
    stdio: ["pipe", "pipe", "pipe"],
  });
  const exited = once(child, "exit").then(([code]) => code as number | null);
  const logs: Record<string, unknown>[] = [];
  const stderr: string[] = [];
  child.stderr.on("data", (chunk: Buffer) => stderr.push(chunk.toString()));
  const listening = new Promise<string>((resolve, reject) => {
    createInterface({ input: child.stdout }).on("line", (line) => {
      const entry = JSON.parse(line) as Record<string, unknown>;
      logs.push(entry);
      if (typeof entry.url === "string") resolve(entry.url);
    });
    void exited.then((code) => reject(new Error(`parley exited with ${code}: ${stderr.join("")}`)));
  });
  return { child, url: await listening, logs, exited };
}

describe("parley (the process)", () => {
  it("prints usage for --help and refuses bad flags with exit code 2", async () => {
    const help = spawn(process.execPath, [mainScript, "--help"]);
    const chunks: Buffer[] = [];
    help.stdout.on("data", (chunk: Buffer) => chunks.push(chunk));
    assert.equal((await once(help, "exit"))[0], 0);
    assert.match(Buffer.concat(chunks).toString(), /Usage: parley/);
    const bad = spawn(process.execPath, [mainScript, "--port", "-1"]);
    assert.equal((await once(bad, "exit"))[0], 2);
  });

  it("drains a stream in flight on SIGTERM, then exits 0", async () => {
    const gateway = await startGateway([
      "--shutdown-grace-ms",
      "20000",
      "--web-root",
      "/nonexistent",
    ]);
    try {
      const client = createClient(InferenceService, createGrpcTransport({ baseUrl: gateway.url }));
      // A sampled generation long enough to still run when the signal arrives.
      const long = await findLongGeneration(client, "Once upon a time");
      assert.ok(long, "one of seeds 1..10 generates 200 tokens or more");

      let text = "";
      let tokens = 0;
      let finishReason = FinishReason.UNSPECIFIED;
      let signalled = false;
      for await (const message of client.generateStream(long.request)) {
        if (!signalled) {
          // The call is accepted (this is its first message): stop the process now.
          gateway.child.kill("SIGTERM");
          signalled = true;
        }
        text += message.text;
        tokens += message.tokenIds.length;
        finishReason = message.finishReason;
      }
      assert.equal(finishReason, FinishReason.STOP);
      assert.equal(tokens, long.tokens, "the whole generation arrived");
      assert.ok(text.length > 0);
      assert.equal(await gateway.exited, 0);

      const shutdown = gateway.logs.findIndex((l) => l.msg === "shutting down");
      const streamed = gateway.logs.findIndex(
        (l) => l.msg === "rpc" && l.method === "inference.v1.InferenceService/GenerateStream",
      );
      assert.ok(shutdown >= 0 && streamed > shutdown, "the stream ended after shutdown began");
      assert.equal(gateway.logs[streamed]?.code, "ok");
      assert.ok(gateway.logs.some((l) => l.msg === "shut down"));
    } finally {
      gateway.child.kill("SIGKILL");
    }
  });

  it("re-reads --api-key-file on SIGHUP: the new key works, the removed one is refused", async () => {
    const dir = await mkdtemp(join(tmpdir(), "parley-keys-"));
    const file = join(dir, "keys");
    await writeFile(file, "# operators\nfirst:first-key-0001\n");
    const gateway = await startGateway(["--api-key-file", file, "--web-root", "/nonexistent"]);
    try {
      const listWith = (key: string) =>
        createClient(
          InferenceService,
          createGrpcTransport({
            baseUrl: gateway.url,
            interceptors: [
              (next) => async (request) => {
                request.header.set("authorization", `Bearer ${key}`);
                return next(request);
              },
            ],
          }),
        )
          .listModels({})
          .then(
            (): Code | 0 => 0,
            (error: unknown) => ConnectError.from(error).code,
          );
      assert.equal(await listWith("first-key-0001"), 0);
      assert.equal(await listWith("second-key-0002"), Code.Unauthenticated);
      await writeFile(file, "second:second-key-0002\n");
      const reloaded = new Promise<void>((resolve) => {
        gateway.child.stdout.on("data", (chunk: Buffer) => {
          if (chunk.toString().includes("API keys reloaded")) resolve();
        });
      });
      gateway.child.kill("SIGHUP");
      await reloaded;
      assert.equal(await listWith("second-key-0002"), 0);
      assert.equal(await listWith("first-key-0001"), Code.Unauthenticated);
      const logs = JSON.stringify(gateway.logs);
      assert.ok(logs.includes('"second"'), "the reload names the keys");
      assert.ok(!logs.includes("key-000"), "and never shows them");
    } finally {
      gateway.child.kill("SIGKILL");
    }
  });
});
