/**
 * @module Counts bytes at the socket: a TCP proxy on loopback that forwards each connection to
 * the target and adds up what passed each way. Everything a protocol puts on the wire counts
 * (HTTP/2 frames, HPACK headers, envelopes, SSE framing), and nothing else.
 */
import { once } from "node:events";
import { connect, createServer, type Server } from "node:net";

/** A running proxy. */
export interface CountingProxy {
  readonly port: number;
  /** Bytes server to client and client to server since the last reset. */
  counts(): { down: number; up: number };
  reset(): void;
  close(): Promise<void>;
}

/** Starts a proxy in front of `targetPort`. */
export async function startCountingProxy(targetPort: number): Promise<CountingProxy> {
  let down = 0;
  let up = 0;
  const server: Server = createServer((client) => {
    const upstream = connect(targetPort, "127.0.0.1");
    client.setNoDelay(true);
    upstream.setNoDelay(true);
    client.on("data", (chunk: Buffer) => {
      up += chunk.byteLength;
      upstream.write(chunk);
    });
    upstream.on("data", (chunk: Buffer) => {
      down += chunk.byteLength;
      client.write(chunk);
    });
    const close = () => {
      client.destroy();
      upstream.destroy();
    };
    client.on("close", close);
    upstream.on("close", close);
    client.on("error", close);
    upstream.on("error", close);
  });
  server.listen(0, "127.0.0.1");
  await once(server, "listening");
  const address = server.address();
  if (address === null || typeof address === "string") throw new Error("proxy has no port");
  return {
    port: address.port,
    counts: () => ({ down, up }),
    reset() {
      down = 0;
      up = 0;
    },
    async close() {
      server.close();
    },
  };
}
