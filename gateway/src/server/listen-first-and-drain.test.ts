/**
 * @module The `parley` process's life at its edges, with clients we did not write (curl and
 * @grpc/grpc-js): it binds its port before any model loads and answers probes, health and
 * `/metrics` meanwhile; a port in use or a bad TLS file ends it at once with one line on stderr;
 * on SIGTERM it reports not ready on every HTTP version while it keeps answering, refuses new
 * calls with `unavailable`, lets the stream in flight finish, and exits 0.
 */

import assert from "node:assert/strict";
import { once } from "node:events";
import { mkdtemp, writeFile } from "node:fs/promises";
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import { connect } from "node:http2";
import { type AddressInfo, createServer as createTcpServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import type { ServiceError } from "@grpc/grpc-js";
import { createGrpcJsClients } from "../testing/grpc-js-clients.js";
import { runCommand } from "../testing/run-command.js";
import { createSelfSignedCert } from "../testing/self-signed-cert.js";
import { spawnParley } from "../testing/spawn-parley.js";

const noWebRoot = join(tmpdir(), "parley-no-web-client");

/** A Hugging Face endpoint that takes requests and never answers: a model download that hangs. */
async function startStallingHub(): Promise<{
  url: string;
  requests: string[];
  /** Resolves on the next request. */
  nextRequest(): Promise<unknown>;
  close(): void;
}> {
  const requests: string[] = [];
  const held: ServerResponse[] = [];
  const server: Server = createServer((request: IncomingMessage, response: ServerResponse) => {
    requests.push(`${request.method} ${request.url}`);
    held.push(response);
  });
  const nextRequest = () => once(server, "request");
  server.listen(0, "127.0.0.1");
  await once(server, "listening");
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    requests,
    nextRequest,
    close() {
      for (const response of held) response.destroy();
      server.close();
    },
  };
}

/** GET with curl; resolves with the HTTP status and body. */
async function curl(
  url: string,
  args: readonly string[] = [],
): Promise<{ status: number; body: string }> {
  const result = await runCommand("curl", ["-s", "-k", "-w", "\n%{http_code}", ...args, url]);
  assert.equal(result.code, 0, `curl ${args.join(" ")} ${url}: ${result.stderr}`);
  const cut = result.stdout.lastIndexOf("\n");
  return {
    status: Number(result.stdout.slice(cut + 1)),
    body: result.stdout.slice(0, cut).trimEnd(),
  };
}

/** curl's flags for each HTTP version the port speaks, and the URL scheme they need. */
const httpVersions = [
  { name: "HTTP/1.1", args: ["--http1.1"], tls: false },
  { name: "h2c", args: ["--http2-prior-knowledge"], tls: false },
  { name: "TLS HTTP/1.1", args: ["--http1.1"], tls: true },
  { name: "TLS h2", args: ["--http2"], tls: true },
] as const;

const generateJson = JSON.stringify({ prompt: "Hello", maxTokens: 4, temperature: 0 });

/** A Connect JSON Generate with curl. */
function curlGenerate(url: string): Promise<{ status: number; body: string }> {
  return curl(`${url}/inference.v1.InferenceService/Generate`, [
    "-H",
    "content-type: application/json",
    "-d",
    generateJson,
  ]);
}

describe("parley listens first, loads second", () => {
  let hub: Awaited<ReturnType<typeof startStallingHub>>;
  before(async () => {
    hub = await startStallingHub();
  });
  after(() => hub.close());

  /** Environment that sends `hf:` downloads to the stalling hub, with an empty cache. */
  async function hubEnv(): Promise<Record<string, string>> {
    const cache = await mkdtemp(join(tmpdir(), "parley-hf-cache-"));
    return { HF_ENDPOINT: hub.url, HF_HUB_CACHE: cache, HF_HOME: cache };
  }

  it("answers probes, health, /metrics and inference (unavailable) while a model downloads", async () => {
    const downloading = hub.nextRequest();
    const parley = spawnParley(
      ["--port", "0", "--model", "hf:parley-test/slow-model", "--web-root", noWebRoot],
      { env: await hubEnv() },
    );
    try {
      const url = await parley.listening;
      const address = url.replace("http://", "");
      await downloading; // the model download has begun, and hangs from here on
      for (const version of httpVersions.filter((v) => !v.tls)) {
        assert.deepEqual(await curl(`${url}/healthz`, version.args), { status: 200, body: "ok" });
        assert.deepEqual(await curl(`${url}/readyz`, version.args), {
          status: 503,
          body: "not ready: loading models",
        });
      }
      const metrics = await curl(`${url}/metrics`);
      assert.equal(metrics.status, 200);
      assert.match(metrics.body, /^# TYPE parley_rpc_requests_total counter$/m);

      const grpc = await createGrpcJsClients(address);
      try {
        assert.equal(await grpc.check(""), "NOT_SERVING");
        assert.equal(await grpc.check("inference.v1.InferenceService"), "NOT_SERVING");
        assert.equal(await grpc.check("liveness"), "SERVING");
        const refused = await grpc.generate({ prompt: "Hi", maxTokens: 2 }).then(
          () => assert.fail("Generate succeeded before the model loaded"),
          (error: ServiceError) => error,
        );
        assert.equal(refused.code, 14, "UNAVAILABLE");
        assert.match(refused.details, /still loading its models/);
      } finally {
        grpc.close();
      }
      const connect = await curlGenerate(url);
      assert.equal(connect.status, 503);
      assert.equal((JSON.parse(connect.body) as { code: string }).code, "unavailable");
      const models = await curl(`${url}/inference.v1.InferenceService/ListModels`, [
        "-H",
        "content-type: application/json",
        "-d",
        "{}",
      ]);
      assert.equal(models.status, 503, models.body);

      parley.child.kill("SIGTERM");
      assert.equal(await parley.exited, 0);
    } finally {
      parley.child.kill("SIGKILL");
    }
  });

  it("reports a port in use at once, in one line on stderr, before downloading a model", async () => {
    const taken = createTcpServer();
    taken.listen(0, "127.0.0.1");
    await once(taken, "listening");
    const { port } = taken.address() as AddressInfo;
    try {
      const before = hub.requests.length;
      const parley = spawnParley(["--port", String(port), "--model", "hf:parley-test/slow-model"], {
        env: await hubEnv(),
      });
      assert.equal(await parley.exited, 1);
      assert.equal(
        parley.stderr(),
        `parley: could not start: port ${port} on 127.0.0.1 is already in use\n`,
      );
      assert.equal(hub.requests.length, before, "no model download was started");
    } finally {
      taken.close();
    }
  });

  it("reports an unreadable or unusable TLS file at once, in one line on stderr", async () => {
    const dir = await mkdtemp(join(tmpdir(), "parley-bad-tls-"));
    const notPem = join(dir, "not.pem");
    await writeFile(notPem, "not a certificate\n");
    const cases = [
      {
        files: [join(dir, "missing.pem"), notPem],
        message: /cannot read --tls-cert .*missing\.pem: no such file/,
      },
      { files: [notPem, notPem], message: /are not a usable PEM certificate and key/ },
    ];
    for (const { files, message } of cases) {
      const before = hub.requests.length;
      const parley = spawnParley(
        [
          "--port",
          "0",
          "--tls-cert",
          files[0] as string,
          "--tls-key",
          files[1] as string,
          "--model",
          "hf:parley-test/slow-model",
        ],
        { env: await hubEnv() },
      );
      assert.equal(await parley.exited, 1);
      const lines = parley
        .stderr()
        .split("\n")
        .filter((line) => line !== "");
      assert.equal(lines.length, 1, parley.stderr());
      assert.match(lines[0] as string, /^parley: could not start: /);
      assert.match(lines[0] as string, message);
      assert.equal(hub.requests.length, before, "no model download was started");
    }
  });
});

/** A gRPC message with a JSON payload: the 5-byte envelope, then the bytes. */
function grpcJsonFrame(message: object): Buffer {
  const bytes = Buffer.from(JSON.stringify(message));
  const frame = Buffer.alloc(5 + bytes.length);
  frame.writeUInt32BE(bytes.length, 1);
  bytes.copy(frame, 5);
  return frame;
}

/** The JSON messages in a gRPC body. */
function grpcJsonMessages(body: Buffer): Record<string, unknown>[] {
  const messages: Record<string, unknown>[] = [];
  for (let at = 0; at + 5 <= body.length; ) {
    const length = body.readUInt32BE(at + 1);
    messages.push(
      JSON.parse(body.subarray(at + 5, at + 5 + length).toString()) as Record<string, unknown>,
    );
    at += 5 + length;
  }
  return messages;
}

describe("parley on SIGTERM", () => {
  it("flips readiness and health at once, keeps answering probes, refuses new calls, finishes the stream in flight, exits 0", async () => {
    const cert = await createSelfSignedCert();
    const parley = spawnParley([
      "--port",
      "0",
      "--tls-cert",
      cert.certFile,
      "--tls-key",
      cert.keyFile,
      "--shutdown-grace-ms",
      "60000",
      "--web-root",
      noWebRoot,
    ]);
    // Window 0: the server can send the stream's headers but no message until the test widens
    // it, so the stream is still in flight, paused, for as long as the checks below take.
    let session: ReturnType<typeof connect> | undefined;
    try {
      const url = await parley.ready;
      const tlsUrl = url.replace("http://", "https://");
      const address = url.replace("http://", "");
      for (const version of httpVersions) {
        const base = version.tls ? tlsUrl : url;
        assert.equal((await curl(`${base}/readyz`, version.args)).status, 200, version.name);
      }
      // What the stream below must deliver in full (greedy: the same text every time).
      const request = { prompt: "Once upon a time", maxTokens: 48, temperature: 0 };
      const expected = await curl(`${url}/inference.v1.InferenceService/Generate`, [
        "-H",
        "content-type: application/json",
        "-d",
        JSON.stringify(request),
      ]);
      const whole = JSON.parse(expected.body) as {
        text: string;
        usage: { completionTokens: number };
      };
      session = connect(url, { settings: { initialWindowSize: 0 } });
      const stream = session.request({
        ":method": "POST",
        ":path": "/inference.v1.InferenceService/GenerateStream",
        "content-type": "application/grpc+json",
        te: "trailers",
      });
      stream.end(grpcJsonFrame(request));
      const chunks: Buffer[] = [];
      stream.on("data", (chunk: Buffer) => chunks.push(chunk));
      const trailers = once(stream, "trailers").then(
        ([headers]) => headers as Record<string, string>,
      );
      const ended = once(stream, "end");
      const [headers] = (await once(stream, "response")) as [Record<string, string | number>];
      assert.equal(headers[":status"], 200);

      parley.child.kill("SIGTERM");
      // Readiness flips as soon as the signal is handled; wait for that, not for a time.
      while ((await curl(`${url}/readyz`)).status !== 503) {
        /* the signal is on its way */
      }
      for (const version of httpVersions) {
        const base = version.tls ? tlsUrl : url;
        assert.deepEqual(
          await curl(`${base}/readyz`, version.args),
          { status: 503, body: "not ready: shutting down" },
          version.name,
        );
        assert.deepEqual(
          await curl(`${base}/healthz`, version.args),
          { status: 200, body: "ok" },
          version.name,
        );
      }
      const grpc = await createGrpcJsClients(address);
      try {
        assert.equal(await grpc.check(""), "NOT_SERVING");
        assert.equal(await grpc.check("inference.v1.InferenceService"), "NOT_SERVING");
        assert.equal(await grpc.check("liveness"), "SERVING");
        const refused = await grpc.generate({ prompt: "Hi", maxTokens: 2 }).then(
          () => assert.fail("a new call succeeded while draining"),
          (error: ServiceError) => error,
        );
        assert.equal(refused.code, 14, "UNAVAILABLE");
        assert.match(refused.details, /shutting down/);
      } finally {
        grpc.close();
      }
      for (const base of [url, tlsUrl]) {
        const connectCall = await curlGenerate(base);
        assert.equal(connectCall.status, 503);
        assert.deepEqual(JSON.parse(connectCall.body), {
          code: "unavailable",
          message: "the server is shutting down, retry on another replica",
        });
      }
      assert.equal(chunks.length, 0, "the stream in flight is still paused");

      // Let the stream run: it finishes whole, with status OK.
      session.settings({ initialWindowSize: 65_535 });
      await ended;
      const messages = grpcJsonMessages(Buffer.concat(chunks));
      const tokens = messages.reduce(
        (n, m) => n + ((m.tokenIds as unknown[] | undefined)?.length ?? 0),
        0,
      );
      assert.equal(tokens, whole.usage.completionTokens);
      assert.equal(messages.map((m) => m.text ?? "").join(""), whole.text);
      assert.ok(messages.at(-1)?.finishReason, "the last message says why the stream ended");
      assert.equal((await trailers)["grpc-status"], "0");
      assert.equal(await parley.exited, 0);
    } finally {
      session?.destroy();
      parley.child.kill("SIGKILL");
    }
  });
});
