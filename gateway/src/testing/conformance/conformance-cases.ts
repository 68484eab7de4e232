/**
 * @module The differential suite's table of cases: every protocol (Connect, gRPC, gRPC-Web binary
 * and text) × codec × compression × HTTP version × method kind, over scenarios (echo, headers and
 * trailers, errors before and after messages, large and many messages, deadlines, size limits,
 * cancellation), plus raw requests no client would send (bad envelopes, bodies and content
 * types, Connect GET, gRPC-Web text). Each case is one call; the suite sends it to every system
 * and compares the outcomes.
 */
import type { JsonObject } from "@bufbuild/protobuf";
import { Code, type Transport } from "@connectrpc/connect";
import {
  type CallSpec,
  type Codec,
  type CompressionName,
  callRaw,
  callWithGrpcJs,
  callWithTransport,
  connectNodeTransport,
  envelope,
  type HttpKind,
  type MethodName,
  type Outcome,
  protoBytes,
  type RawRequest,
  type Target,
} from "./conformance-clients.js";
import { maxTimeoutMs, readMaxBytes } from "./conformance-servers.js";

/** One call of the table. */
export interface ConformanceCase {
  /** Unique, e.g. "connect/json/gzip/h2c/serverStream/fail-after". */
  readonly id: string;
  /** For the count per protocol: connect, grpc, grpc-web, grpc-web-text. */
  readonly protocol: string;
  readonly run: (target: Target) => Promise<Outcome>;
}

const procedure = "/parley.conformance.v1.ConformanceService/";
const detail: JsonObject = { why: "because", n: 2 };
const requestHeaders = { "x-case": "one", "x-bin-bin": "AAEC" };

interface Scenario {
  readonly name: string;
  readonly methods: readonly MethodName[];
  /** Compressions it runs with; default identity only. */
  readonly compressions?: readonly CompressionName[];
  /** Runs over TLS too (h2 and http/1.1), with identity only: what TLS changes is the URL. */
  readonly tls?: boolean;
  readonly call: (method: MethodName, key: string) => Omit<CallSpec, "method">;
}

const all: readonly CompressionName[] = ["identity", "gzip", "br", "unsupported", "accept-gzip"];
const compressing: readonly CompressionName[] = ["gzip", "br"];
const unaryAndServer: readonly MethodName[] = ["unary", "serverStream"];

const scenarios: readonly Scenario[] = [
  {
    name: "echo",
    tls: true,
    methods: unaryAndServer,
    compressions: all,
    call: () => ({ requests: [{ hello: "world", n: 1 }], headers: requestHeaders }),
  },
  {
    name: "headers-and-trailers",
    tls: true,
    methods: unaryAndServer,
    compressions: ["identity", "gzip"],
    call: () => ({ requests: [{ headers: { "x-head": "h1" }, trailers: { "x-trail": "t1" } }] }),
  },
  {
    name: "fail",
    tls: true,
    methods: unaryAndServer,
    compressions: ["identity", "gzip"],
    call: () => ({
      requests: [
        {
          failCode: Code.InvalidArgument,
          failMessage: "bad thing: é ✓ %",
          failDetail: detail,
          headers: { "x-head": "h1" },
          trailers: { "x-trail": "t1" },
        },
      ],
    }),
  },
  {
    name: "large-error",
    methods: unaryAndServer,
    compressions: ["identity", "accept-gzip"],
    call: () => ({
      requests: [{ failCode: Code.FailedPrecondition, failMessage: "e".repeat(3000) }],
    }),
  },
  {
    name: "fail-after-messages",
    methods: ["serverStream"],
    call: () => ({
      requests: [
        {
          count: 3,
          failAfter: 2,
          failCode: Code.Aborted,
          failMessage: "after two",
          trailers: { "x-trail": "t" },
        },
      ],
    }),
  },
  {
    name: "internal",
    methods: unaryAndServer,
    call: () => ({ requests: [{ throwPlain: true }] }),
  },
  {
    name: "empty-stream",
    tls: true,
    methods: ["serverStream"],
    call: () => ({
      requests: [{ count: 0, headers: { "x-head": "h" }, trailers: { "x-trail": "t" } }],
    }),
  },
  {
    name: "empty-stream-fail",
    methods: ["serverStream"],
    call: () => ({
      requests: [
        { count: 0, failCode: Code.NotFound, failMessage: "none", headers: { "x-head": "h" } },
      ],
    }),
  },
  {
    name: "large-response",
    methods: unaryAndServer,
    compressions: ["identity", "gzip", "br", "accept-gzip"],
    call: () => ({ requests: [{ size: 5000, count: 2 }] }),
  },
  {
    name: "many-messages",
    methods: ["serverStream"],
    call: () => ({ requests: [{ size: 10, count: 200 }] }),
  },
  {
    name: "deadline-after",
    tls: true,
    methods: unaryAndServer,
    call: () => ({ requests: [{ hello: "deadline" }], timeoutMs: 30_000 }),
  },
  {
    name: "deadline-above-max",
    methods: unaryAndServer,
    call: () => ({ requests: [{ hello: "long" }], timeoutMs: maxTimeoutMs * 2 }),
  },
  {
    name: "deadline-during",
    methods: unaryAndServer,
    call: () => ({ requests: [{ sleepMs: 3000 }], timeoutMs: 150 }),
  },
  {
    name: "request-over-limit",
    tls: true,
    methods: unaryAndServer,
    compressions: ["identity", "gzip"],
    call: () => ({ requests: [{ pad: "y".repeat(readMaxBytes + 1000) }] }),
  },
  {
    name: "compressed-request-inflating-over-limit",
    methods: unaryAndServer,
    compressions: compressing,
    call: () => ({ requests: [{ pad: "z".repeat(readMaxBytes * 3) }] }),
  },
  {
    name: "cancel",
    tls: true,
    methods: unaryAndServer,
    call: (_method, key) => ({
      requests: [{ sleepMs: 3000, recordAbort: key }],
      cancel: true,
      abortKey: key,
    }),
  },
];

/** Scenarios of client and bidi streams, served by the router in every system. */
const streamingScenarios: readonly Scenario[] = [
  {
    name: "echo",
    methods: ["clientStream", "bidiStream"],
    call: () => ({
      requests: [{ headers: { "x-head": "h" } }, { n: 2 }] as JsonObject[],
      headers: requestHeaders,
    }),
  },
  {
    name: "fail",
    methods: ["clientStream", "bidiStream"],
    call: () => ({
      requests: [{ failCode: Code.PermissionDenied, failMessage: "no", failDetail: detail }],
    }),
  },
];

const httpKinds: readonly HttpKind[] = ["h1", "h2c", "tls-h2", "tls-h1"];
const codecs: readonly Codec[] = ["proto", "json"];

let abortKeys = 0;

/** One transport per system and configuration, so calls share connections as real clients do. */
const transports = new WeakMap<Target, Map<string, Transport>>();

function transportFor(
  target: Target,
  protocol: "connect" | "grpc" | "grpc-web",
  http: HttpKind,
  codec: Codec,
  compression: CompressionName,
): Transport {
  let byKey = transports.get(target);
  if (byKey === undefined) {
    byKey = new Map();
    transports.set(target, byKey);
  }
  const key = `${protocol}/${http}/${codec}/${compression}`;
  let transport = byKey.get(key);
  if (transport === undefined) {
    transport = connectNodeTransport(target, protocol, http, codec, compression);
    byKey.set(key, transport);
  }
  return transport;
}

/** Every case of the table. */
export function conformanceCases(): ConformanceCase[] {
  const cases: ConformanceCase[] = [];
  for (const protocol of ["connect", "grpc", "grpc-web"] as const) {
    for (const codec of codecs) {
      for (const http of httpKinds) {
        if (protocol === "grpc" && (http === "h1" || http === "tls-h1")) continue;
        for (const scenario of [...scenarios, ...streamingScenarios]) {
          for (const method of scenario.methods) {
            // Bidi streams need HTTP/2 (connect-node's clients refuse them on HTTP/1.1).
            if (method === "bidiStream" && (http === "h1" || http === "tls-h1")) continue;
            const tls = http === "tls-h2" || http === "tls-h1";
            if (tls && scenario.tls !== true) continue;
            for (const compression of tls
              ? ["identity" as const]
              : (scenario.compressions ?? ["identity"])) {
              const id = `${protocol}/${codec}/${compression}/${http}/${method}/${scenario.name}`;
              cases.push({
                id,
                protocol,
                run: (target) => {
                  const key = `${id}#${abortKeys++}`;
                  return callWithTransport(
                    transportFor(target, protocol, http, codec, compression),
                    { method, ...scenario.call(method, key) },
                  );
                },
              });
            }
          }
        }
      }
    }
  }
  for (const http of ["h2c", "tls-h2"] as const) {
    for (const scenario of scenarios) {
      for (const method of scenario.methods) {
        if (method !== "unary" && method !== "serverStream") continue;
        for (const compression of ["identity", "gzip"] as const) {
          if (!(scenario.compressions ?? ["identity"]).includes(compression)) continue;
          const id = `grpc-js/proto/${compression}/${http}/${method}/${scenario.name}`;
          cases.push({
            id,
            protocol: "grpc",
            run: (target) => {
              const key = `${id}#${abortKeys++}`;
              return callWithGrpcJs(target, http, compression, {
                method,
                ...scenario.call(method, key),
              });
            },
          });
        }
      }
    }
  }
  for (const raw of rawCases()) {
    for (const http of httpKinds) {
      if (raw.protocol === "grpc" && (http === "h1" || http === "tls-h1")) continue;
      cases.push({
        id: `raw/${raw.protocol}/${http}/${raw.name}`,
        protocol: raw.protocol,
        run: (target) => callRaw(target, http, raw.request),
      });
    }
  }
  return cases;
}

interface RawCase {
  readonly name: string;
  readonly protocol: "connect" | "grpc" | "grpc-web" | "grpc-web-text";
  readonly request: RawRequest;
}

function post(method: string, headers: Record<string, string>, body: Uint8Array): RawRequest {
  return { method: "POST", path: `${procedure}${method}`, headers, body };
}

function rawCases(): RawCase[] {
  const hello = protoBytes({ hello: "raw" });
  const grpcHeaders = { "content-type": "application/grpc", te: "trailers" };
  const webHeaders = { "content-type": "application/grpc-web+proto" };
  const textHeaders = { "content-type": "application/grpc-web-text" };
  const streamHeaders = { "content-type": "application/connect+proto" };
  const cases: RawCase[] = [];
  const enveloped = [
    ["grpc", grpcHeaders],
    ["grpc-web", webHeaders],
    ["connect", streamHeaders],
  ] as const;
  for (const [protocol, headers] of enveloped) {
    // Connect unary is not enveloped; its envelope cases use the server stream.
    const method = protocol === "connect" ? "ServerStream" : "Unary";
    cases.push(
      { name: "ok", protocol, request: post(method, headers, envelope(hello)) },
      { name: "empty-body", protocol, request: post(method, headers, new Uint8Array(0)) },
      {
        name: "truncated-prefix",
        protocol,
        request: post(method, headers, envelope(hello).subarray(0, 3)),
      },
      {
        name: "length-longer-than-body",
        protocol,
        request: post(method, headers, envelope(hello, 0, hello.byteLength + 10)),
      },
      {
        name: "two-messages",
        protocol,
        request: post(method, headers, Buffer.concat([envelope(hello), envelope(hello)])),
      },
      {
        name: "bad-proto",
        protocol,
        request: post(method, headers, envelope(new Uint8Array([0xff, 0xff, 0xff]))),
      },
      {
        name: "compressed-flag-without-encoding",
        protocol,
        request: post(method, headers, envelope(hello, 1)),
      },
      {
        name: "over-limit",
        protocol,
        request: post(method, headers, envelope(protoBytes({ pad: "o".repeat(readMaxBytes) }))),
      },
      {
        name: "declared-over-limit",
        protocol,
        request: post(method, headers, envelope(hello, 0, readMaxBytes + 1)),
      },
      { name: "unknown-procedure", protocol, request: post("Nope", headers, envelope(hello)) },
      {
        name: "bad-timeout",
        protocol,
        request: post(
          method,
          { ...headers, [protocol === "connect" ? "connect-timeout-ms" : "grpc-timeout"]: "soon" },
          envelope(hello),
        ),
      },
      {
        name: "expired-timeout",
        protocol,
        request: post(
          method,
          {
            ...headers,
            [protocol === "connect" ? "connect-timeout-ms" : "grpc-timeout"]:
              protocol === "connect" ? "0" : "0n",
          },
          envelope(protoBytes({ sleepMs: 200 })),
        ),
      },
    );
  }
  cases.push(
    {
      name: "json-ok",
      protocol: "connect",
      request: post("Unary", { "content-type": "application/json" }, Buffer.from('{"a":1}')),
    },
    {
      name: "bad-json",
      protocol: "connect",
      request: post("Unary", { "content-type": "application/json" }, Buffer.from("{not json")),
    },
    {
      name: "proto-ok",
      protocol: "connect",
      request: post("Unary", { "content-type": "application/proto" }, hello),
    },
    {
      name: "missing-content-type",
      protocol: "connect",
      request: post("Unary", {}, Buffer.from("{}")),
    },
    {
      name: "wrong-content-type",
      protocol: "connect",
      request: post("Unary", { "content-type": "text/plain" }, Buffer.from("{}")),
    },
    {
      name: "grpc-wrong-subtype",
      protocol: "grpc",
      request: post(
        "Unary",
        { ...grpcHeaders, "content-type": "application/grpc+xml" },
        envelope(hello),
      ),
    },
    {
      name: "unary-over-limit-declared",
      protocol: "connect",
      request: post(
        "Unary",
        { "content-type": "application/proto" },
        new Uint8Array(readMaxBytes + 1),
      ),
    },
    {
      name: "get-json",
      protocol: "connect",
      request: {
        method: "GET",
        path: `${procedure}Unary?connect=v1&encoding=json&message=${encodeURIComponent('{"get":true}')}`,
        headers: {},
        body: new Uint8Array(0),
      },
    },
    {
      name: "get-proto-base64",
      protocol: "connect",
      request: {
        method: "GET",
        path: `${procedure}Unary?connect=v1&encoding=proto&base64=1&message=${Buffer.from(hello).toString("base64url")}`,
        headers: {},
        body: new Uint8Array(0),
      },
    },
    {
      name: "get-stream-method",
      protocol: "connect",
      request: {
        method: "GET",
        path: `${procedure}ServerStream?connect=v1&encoding=json&message=%7B%7D`,
        headers: {},
        body: new Uint8Array(0),
      },
    },
    {
      name: "unary",
      protocol: "grpc-web-text",
      request: post("Unary", textHeaders, Buffer.from(envelope(hello).toString("base64"))),
    },
    {
      name: "stream",
      protocol: "grpc-web-text",
      request: post(
        "ServerStream",
        textHeaders,
        Buffer.from(envelope(protoBytes({ count: 2 })).toString("base64")),
      ),
    },
    {
      name: "fail",
      protocol: "grpc-web-text",
      request: post(
        "Unary",
        textHeaders,
        Buffer.from(
          envelope(protoBytes({ failCode: Code.Unavailable, failMessage: "later" })).toString(
            "base64",
          ),
        ),
      ),
    },
    {
      name: "bad-base64",
      protocol: "grpc-web-text",
      request: post("Unary", textHeaders, Buffer.from("!!!")),
    },
  );
  return cases;
}
