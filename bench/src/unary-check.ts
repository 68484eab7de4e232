/**
 * @module Checks one unary answer of each system the way its protocol reports success: h2load
 * counts HTTP 2xx only, and a gRPC failure is HTTP 200 with a non-zero `grpc-status`. Every
 * system must also answer with the same `ListModelsResponse` (the captured fixture), so all of
 * them do the same work.
 */
import { request as httpRequest } from "node:http";
import { connect } from "node:http2";
import { isDeepStrictEqual } from "node:util";
import { FrameReader } from "./rpc-wire.js";

/** A unary request as h2load sends it. */
export interface UnaryProbe {
  readonly label: string;
  readonly port: number;
  readonly path: string;
  readonly headers: Readonly<Record<string, string>>;
  readonly body: Buffer | undefined;
  readonly http1: boolean;
  /** How to read the answer: enveloped (gRPC, gRPC-Web), raw binary, or JSON. */
  readonly format: "grpc" | "grpc-web" | "binary" | "json";
}

interface Answer {
  readonly status: number;
  readonly trailers: Record<string, unknown>;
  readonly body: Buffer;
}

function callHttp2(probe: UnaryProbe): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const session = connect(`http://127.0.0.1:${probe.port}`);
    session.on("error", reject);
    const stream = session.request({
      ":method": probe.body === undefined ? "GET" : "POST",
      ":path": probe.path,
      ...probe.headers,
    });
    let status = 0;
    let trailers: Record<string, unknown> = {};
    const chunks: Buffer[] = [];
    stream.on("response", (headers) => {
      status = Number(headers[":status"]);
      trailers = { ...headers };
    });
    stream.on("trailers", (received) => {
      trailers = { ...trailers, ...received };
    });
    stream.on("data", (chunk: Buffer) => chunks.push(chunk));
    stream.on("error", reject);
    stream.on("close", () => {
      session.close();
      resolve({ status, trailers, body: Buffer.concat(chunks) });
    });
    stream.end(probe.body);
  });
}

function callHttp1(probe: UnaryProbe): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const request = httpRequest(
      {
        host: "127.0.0.1",
        port: probe.port,
        path: probe.path,
        method: probe.body === undefined ? "GET" : "POST",
        headers: probe.headers,
        agent: false,
      },
      (response) => {
        const chunks: Buffer[] = [];
        response.on("data", (chunk: Buffer) => chunks.push(chunk));
        response.on("end", () =>
          resolve({ status: response.statusCode ?? 0, trailers: {}, body: Buffer.concat(chunks) }),
        );
      },
    );
    request.on("error", reject);
    request.end(probe.body);
  });
}

/** Sends one request; returns "ok" or what was wrong. */
export async function checkUnary(
  probe: UnaryProbe,
  expected: { readonly binary: Uint8Array; readonly json: string },
): Promise<string> {
  const answer = await (probe.http1 ? callHttp1(probe) : callHttp2(probe));
  if (answer.status !== 200) return `HTTP ${answer.status}`;
  const sameBinary = (payload: Buffer | undefined) =>
    payload !== undefined && Buffer.compare(payload, Buffer.from(expected.binary)) === 0;
  switch (probe.format) {
    case "grpc": {
      const frames = new FrameReader().push(answer.body);
      const status = answer.trailers["grpc-status"];
      if (status !== "0") return `grpc-status ${String(status)}`;
      return sameBinary(frames[0]?.payload) ? "ok" : "grpc-status 0 but a different message";
    }
    case "grpc-web": {
      const frames = new FrameReader().push(answer.body);
      const trailer = frames.find((f) => (f.flags & 0x80) === 0x80)?.payload.toString("latin1");
      const status = /grpc-status:\s*(\d+)/i.exec(trailer ?? "")?.[1];
      if (status !== "0") return `grpc-status ${String(status)}`;
      return sameBinary(frames[0]?.payload) ? "ok" : "grpc-status 0 but a different message";
    }
    case "binary":
      return sameBinary(answer.body) ? "ok" : "a different message";
    case "json":
      return isDeepStrictEqual(JSON.parse(answer.body.toString("utf8")), JSON.parse(expected.json))
        ? "ok"
        : "a different message";
  }
}
