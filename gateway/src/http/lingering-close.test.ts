import assert from "node:assert/strict";
import { once } from "node:events";
import { createServer, type Server } from "node:http";
import { type AddressInfo, connect } from "node:net";
import { after, before, describe, it } from "node:test";
import { lingerBeforeClosing, lingerMs } from "./lingering-close.js";

/**
 * Sends a POST that announces `bodyBytes` with `Connection: close` and writes `sendBytes` of it,
 * reads nothing for `readAfterMs`, then reads until the server closes.
 */
async function postAndReadLate(
  server: Server,
  bodyBytes: number,
  sendBytes: number,
  readAfterMs: number,
): Promise<{ text: string; closedAfterMs: number }> {
  const { port } = server.address() as AddressInfo;
  const socket = connect(port, "127.0.0.1");
  const received: Buffer[] = [];
  socket.on("data", (chunk: Buffer) => received.push(chunk));
  socket.on("error", () => {}); // the upload's write fails once the server closes
  const closed = new Promise((resolve) => socket.once("close", resolve));
  socket.pause();
  const started = performance.now();
  socket.write(
    `POST / HTTP/1.1\r\nHost: test\r\nConnection: close\r\nContent-Length: ${bodyBytes}\r\n\r\n`,
  );
  socket.write(Buffer.alloc(sendBytes));
  setTimeout(() => socket.resume(), readAfterMs);
  await closed;
  return {
    text: Buffer.concat(received).toString("latin1"),
    closedAfterMs: performance.now() - started,
  };
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
    const { text } = await postAndReadLate(lingering, 8 << 20, 8 << 20, 300);
    assert.match(text, /^HTTP\/1\.1 413 /);
    assert.match(text, /too large\r\n0\r\n\r\n$/);
  });

  it("is needed: without it, Node's close resets the connection and the response is lost", async () => {
    const { text } = await postAndReadLate(plain, 8 << 20, 8 << 20, 300);
    assert.equal(text, "");
  });

  it("closes a connection whose body nobody reads any more after lingerMs", async () => {
    const { closedAfterMs } = await postAndReadLate(lingering, 8 << 20, 8 << 20, 0);
    assert.ok(closedAfterMs >= lingerMs - 50, `closed after ${closedAfterMs} ms`);
    assert.ok(closedAfterMs < lingerMs + 2000, `closed after ${closedAfterMs} ms`);
  });

  it("closes at once, as Node does, when the body had all arrived", async () => {
    const { text, closedAfterMs } = await postAndReadLate(lingering, 16, 16, 0);
    assert.match(text, /^HTTP\/1\.1 413 /);
    assert.ok(closedAfterMs < lingerMs / 2, `closed after ${closedAfterMs} ms`);
  });
});
