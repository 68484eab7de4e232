import assert from "node:assert/strict";
import { once } from "node:events";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { after, before, describe, it } from "node:test";
import { postAndReadLate } from "../testing/raw-rpc.js";
import { lingerBeforeClosing, lingerMs } from "./lingering-close.js";

/**
 * POSTs `sendBytes` of an announced `bodyBytes` to `server`, reading late; after
 * `leadingRequest` on the same connection when one is given.
 */
function postAndReadLateTo(
  server: Server,
  bodyBytes: number,
  sendBytes: number,
  readAfterMs: number,
  leadingRequest?: string,
) {
  const { port } = server.address() as AddressInfo;
  return postAndReadLate({
    port,
    path: "/",
    contentLength: bodyBytes,
    body: Buffer.alloc(sendBytes),
    readAfterMs,
    ...(leadingRequest === undefined ? {} : { leadingRequest }),
  });
}

/** A server that refuses every request at its first body chunk and stops reading it. */
function refusingServer(linger: boolean): Server {
  const server = createServer((request, response) => {
    request.once("data", () => {
      request.pause();
      response.writeHead(413, { "content-type": "text/plain" }).end("too large");
    });
  });
  if (linger) lingerBeforeClosing(server);
  return server;
}

describe("lingering close of HTTP/1.1 connections", () => {
  const plain = refusingServer(false);
  const lingering = refusingServer(true);
  before(async () => {
    for (const server of [plain, lingering]) server.listen(0, "127.0.0.1");
    await Promise.all([once(plain, "listening"), once(lingering, "listening")]);
  });
  after(() => {
    plain.close();
    lingering.close();
  });

  it("keeps an early response readable for a client that is still uploading and reads late", async () => {
    const { text } = await postAndReadLateTo(lingering, 8 << 20, 8 << 20, 300);
    assert.match(text, /^HTTP\/1\.1 413 /);
    assert.match(text, /too large\r\n0\r\n\r\n$/);
  });

  it("lingers for the request that is still uploading, not an earlier one on the same keep-alive connection", async () => {
    const leading = `POST / HTTP/1.1\r\nHost: test\r\nContent-Length: 16\r\n\r\n${"x".repeat(16)}`;
    const { text } = await postAndReadLateTo(lingering, 8 << 20, 8 << 20, 300, leading);
    assert.equal(text.match(/HTTP\/1\.1 413 /g)?.length, 2, text.slice(0, 500));
  });

  it("is needed: without it, Node's close resets the connection and the response is lost", async () => {
    const { text } = await postAndReadLateTo(plain, 8 << 20, 8 << 20, 300);
    assert.equal(text, "");
  });

  it("closes a connection whose body nobody reads any more after lingerMs", async () => {
    const { closedAfterMs } = await postAndReadLateTo(lingering, 8 << 20, 8 << 20, 0);
    assert.ok(closedAfterMs >= lingerMs - 50, `closed after ${closedAfterMs} ms`);
    assert.ok(closedAfterMs < lingerMs + 2000, `closed after ${closedAfterMs} ms`);
  });

  it("closes at once, as Node does, when the body had all arrived", async () => {
    const { text, closedAfterMs } = await postAndReadLateTo(lingering, 16, 16, 0);
    assert.match(text, /^HTTP\/1\.1 413 /);
    assert.ok(closedAfterMs < lingerMs / 2, `closed after ${closedAfterMs} ms`);
  });
});
