/**
 * @module deploy/nginx/parley.conf, run: Debian's nginx with the reference configuration (its
 * ports and replica addresses replaced) in front of three `parley` processes on loopback, with
 * clients we did not write: @grpc/grpc-js through the h2c listener, connect-node's gRPC-Web and
 * Connect transports through the HTTP/1.1 listener. Calls spread over the replicas (each one's
 * `/metrics` says how many it served); a replica that gets SIGTERM in the middle of its streams
 * finishes them, while every call started after the signal succeeds on the others.
 *
 * The replicas run with `--probe-port`: at SIGTERM their main port refuses new connections at
 * once (nginx retries a call elsewhere only when nothing of it was sent: grpc_pass streams the
 * request body, so a 503 after it cannot be retried), while the probe port answers through the
 * drain.
 */

import assert from "node:assert/strict";
import { type ChildProcess, spawn } from "node:child_process";
import { once } from "node:events";
import { existsSync } from "node:fs";
import { mkdir, mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { type AddressInfo, connect as connectTcp, createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, it } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";
import { type Client, createClient } from "@connectrpc/connect";
import { createConnectTransport, createGrpcWebTransport } from "@connectrpc/connect-node";
import { FinishReason, InferenceService } from "@parley/gen/inference/v1/inference_pb";
import { endlessBuiltinModel } from "../testing/endless-model.js";
import { createGrpcJsClients, type GrpcJsClients } from "../testing/grpc-js-clients.js";
import { repoRoot } from "../testing/model-fixtures.js";
import { type ParleyProcess, spawnParley } from "../testing/spawn-parley.js";

const nginxBin = "/usr/sbin/nginx";
const skip = existsSync(nginxBin)
  ? false
  : `${nginxBin} is absent: install Debian's nginx (.ci/run does) to run this test`;

/** Tokens of each long stream: far more than a replica generates while the test checks things. */
const longTokens = 1000;
const generateMethod = "inference.v1.InferenceService/Generate";

/** A free loopback port (bound, read, released: nginx binds it right after). */
async function freePort(): Promise<number> {
  const server = createServer();
  server.listen(0, "127.0.0.1");
  await once(server, "listening");
  const { port } = server.address() as AddressInfo;
  server.close();
  await once(server, "close");
  return port;
}

async function accepts(port: number): Promise<boolean> {
  const socket = connectTcp(port, "127.0.0.1");
  try {
    await once(socket, "connect");
    return true;
  } catch {
    return false;
  } finally {
    socket.destroy();
  }
}

/**
 * The reference configuration with the test's ports and replicas in place of the example ones;
 * each replacement must find exactly what it replaces, so the file cannot drift from the test.
 */
async function templatedConfig(
  replicas: readonly string[],
  grpcPort: number,
  httpPort: number,
): Promise<string> {
  let text = await readFile(join(repoRoot, "deploy", "nginx", "parley.conf"), "utf8");
  const replace = (pattern: RegExp, count: number, replacement: (i: number) => string) => {
    let i = 0;
    text = text.replace(pattern, () => replacement(i++));
    assert.equal(i, count, `${pattern} appears ${count} times in parley.conf`);
  };
  replace(/server 10\.0\.0\.1[123]:8080/g, 6, (i) => `server ${replicas[i % 3]}`);
  replace(/^ {4}listen 8081 http2;$/gm, 1, () => `    listen 127.0.0.1:${grpcPort} http2;`);
  replace(/^ {4}listen 8080;$/gm, 1, () => `    listen 127.0.0.1:${httpPort};`);
  return text;
}

/** Starts nginx, not as a daemon, with everything it writes under `dir`. */
async function startNginx(dir: string, site: string, ports: readonly number[]) {
  await writeFile(join(dir, "parley.conf"), site);
  for (const temp of ["client_body", "proxy", "fastcgi", "uwsgi", "scgi"]) {
    await mkdir(join(dir, temp));
  }
  const main = [
    "daemon off;",
    "worker_processes 1;",
    // As root, nginx's workers would switch to an unprivileged user that cannot read `dir`.
    ...(process.getuid?.() === 0 ? ["user root;"] : []),
    `pid ${join(dir, "nginx.pid")};`,
    `error_log ${join(dir, "error.log")} notice;`,
    "events { worker_connections 512; }",
    "http {",
    `    log_format upstreams '$request $status $upstream_addr $upstream_status';`,
    `    access_log ${join(dir, "access.log")} upstreams;`,
    ...["client_body", "proxy", "fastcgi", "uwsgi", "scgi"].map(
      (temp) => `    ${temp}_temp_path ${join(dir, temp)};`,
    ),
    `    include ${join(dir, "parley.conf")};`,
    "}",
  ].join("\n");
  await writeFile(join(dir, "nginx.conf"), main);
  const child = spawn(
    nginxBin,
    ["-p", dir, "-c", join(dir, "nginx.conf"), "-e", join(dir, "error.log")],
    { stdio: ["ignore", "inherit", "inherit"] },
  );
  const exited = once(child, "exit");
  for (;;) {
    if ((await Promise.all(ports.map(accepts))).every(Boolean)) break;
    const gone = await Promise.race([exited.then(() => true), sleep(50).then(() => false)]);
    if (gone) {
      assert.fail(`nginx exited: ${await readFile(join(dir, "error.log"), "utf8")}`);
    }
  }
  return child;
}

/** A counter or gauge's samples on one replica, summed over the label sets that match. */
async function metricSum(url: string, name: string, labels: string): Promise<number> {
  const text = await (await fetch(`${url}/metrics`)).text();
  return text
    .split("\n")
    .filter((line) => line.startsWith(`${name}{`) && line.includes(labels))
    .reduce((sum, line) => sum + Number(line.slice(line.lastIndexOf(" ") + 1)), 0);
}

type ConnectClient = Client<typeof InferenceService>;

/** A stream through nginx: `started` once its first message is in, `done` at its end. */
function stream(
  via: { grpc: GrpcJsClients } | { connect: ConnectClient },
  maxTokens = longTokens,
): {
  started: Promise<void>;
  done: Promise<{ tokens: number; finished: boolean }>;
} {
  const request = { prompt: "Once upon a time", maxTokens, temperature: 0 };
  let onStart: () => void = () => {};
  const started = new Promise<void>((resolve) => {
    onStart = resolve;
  });
  const done = (async () => {
    let tokens = 0;
    let finished = false;
    const messages =
      "grpc" in via ? via.grpc.generateStream(request) : via.connect.generateStream(request);
    for await (const message of messages as AsyncIterable<{
      tokenIds: unknown[];
      finishReason: unknown;
    }>) {
      onStart();
      tokens += message.tokenIds?.length ?? 0;
      const reason = message.finishReason;
      finished ||= reason === FinishReason.LENGTH || reason === "FINISH_REASON_LENGTH";
    }
    return { tokens, finished };
  })();
  done.catch(onStart); // a failed stream must not leave the test waiting for its start
  return { started, done };
}

describe("three replicas behind nginx (deploy/nginx/parley.conf)", { skip }, () => {
  it("spreads gRPC, gRPC-Web and Connect calls; a replica stopped mid-stream finishes its streams while new calls succeed", {
    timeout: 60_000,
  }, async () => {
    const dir = await mkdtemp(join(tmpdir(), "parley-nginx-"));
    const model = await endlessBuiltinModel();
    const replicas: ParleyProcess[] = [];
    let nginx: ChildProcess | undefined;
    let grpc: GrpcJsClients | undefined;
    try {
      for (let i = 0; i < 3; i++) {
        replicas.push(
          spawnParley([
            "--port",
            "0",
            "--model",
            model,
            // Far above what the streams need: a cut stream would fail the test.
            "--shutdown-grace-ms",
            "50000",
            "--probe-port",
            "0",
            "--web-root",
            join(dir, "no-web-client"),
          ]),
        );
      }
      const urls = await Promise.all(replicas.map((r) => r.ready));
      const [grpcPort, httpPort] = [await freePort(), await freePort()];
      const site = await templatedConfig(
        urls.map((url) => url.replace("http://", "")),
        grpcPort,
        httpPort,
      );
      nginx = await startNginx(dir, site, [grpcPort, httpPort]);

      grpc = await createGrpcJsClients(`127.0.0.1:${grpcPort}`);
      const base = `http://127.0.0.1:${httpPort}`;
      const connect = createClient(
        InferenceService,
        createConnectTransport({ baseUrl: base, httpVersion: "1.1" }),
      );
      const grpcWeb = createClient(
        InferenceService,
        createGrpcWebTransport({ baseUrl: base, httpVersion: "1.1" }),
      );
      const short = { prompt: "Hello", maxTokens: 4, temperature: 0 };
      /** One unary call per protocol; each must succeed with its 4 tokens. */
      const unaryRound = async () => {
        const replies = [
          await (grpc as GrpcJsClients).generate(short),
          await connect.generate(short),
          await grpcWeb.generate(short),
        ];
        for (const reply of replies) {
          assert.equal(Number((reply.usage as { completionTokens: number }).completionTokens), 4);
        }
      };

      // Calls spread: nine unary calls, three per protocol, over three replicas.
      for (let round = 0; round < 3; round++) await unaryRound();
      const served = await Promise.all(
        urls.map((url) =>
          metricSum(url, "parley_rpc_requests_total", `method="${generateMethod}"`),
        ),
      );
      assert.equal(
        served.reduce((a, b) => a + b, 0),
        9,
        `each call served once: ${served}`,
      );
      assert.ok(
        served.every((n) => n >= 1),
        `every replica served calls: ${served}`,
      );

      // Long streams over all three protocols, spread over the replicas.
      const streams = [
        ...Array.from({ length: 2 }, () => stream({ grpc: grpc as GrpcJsClients })),
        ...Array.from({ length: 2 }, () => stream({ connect })),
        ...Array.from({ length: 2 }, () => stream({ connect: grpcWeb })),
      ];
      await Promise.all(streams.map((s) => s.started));
      const inFlight = await Promise.all(
        urls.map((url) => metricSum(url, "parley_rpc_streams_in_flight", "GenerateStream")),
      );
      const victimIndex = inFlight.indexOf(Math.max(...inFlight));
      const victim = replicas[victimIndex] as ParleyProcess;
      const victimStreams = inFlight[victimIndex] as number;
      assert.ok(victimStreams >= 1, `streams in flight per replica: ${inFlight}`);

      victim.child.kill("SIGTERM");
      const probeUrl = String(victim.logs.find((l) => typeof l.probeUrl === "string")?.probeUrl);
      while ((await fetch(`${probeUrl}/readyz`)).status !== 503) {
        /* the signal is on its way */
      }
      // The victim drains: its main port refuses connections, its probe port answers, and its
      // streams still run...
      assert.equal(await accepts(Number(new URL(urls[victimIndex] as string).port)), false);
      assert.equal((await fetch(`${probeUrl}/healthz`)).status, 200);
      assert.equal(
        await metricSum(probeUrl, "parley_rpc_streams_in_flight", "GenerateStream"),
        victimStreams,
      );
      // ...and new calls, over every protocol, all succeed elsewhere.
      for (let round = 0; round < 3; round++) await unaryRound();
      const newStreams = [
        stream({ grpc }, 32),
        stream({ connect }, 32),
        stream({ connect: grpcWeb }, 32),
      ];
      for (const started of newStreams) {
        assert.deepEqual(await started.done, { tokens: 32, finished: true });
      }

      for (const running of streams) {
        assert.deepEqual(await running.done, { tokens: longTokens, finished: true });
      }
      assert.equal(await victim.exited, 0, "the stopped replica exits 0 once drained");
      const streamedByVictim = victim.logs.filter(
        (l) => l.msg === "rpc" && l.method === "inference.v1.InferenceService/GenerateStream",
      );
      assert.equal(streamedByVictim.length, victimStreams);
      assert.ok(streamedByVictim.every((l) => l.code === "ok"));
    } finally {
      grpc?.close();
      nginx?.kill("SIGTERM");
      for (const replica of replicas) replica.child.kill("SIGKILL");
      if (nginx !== undefined && nginx.exitCode === null) await once(nginx, "exit");
      await rm(dir, { recursive: true, force: true });
      await rm(model, { recursive: true, force: true });
    }
  });
});
