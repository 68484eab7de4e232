/**
 * @module The differential suite's test service: one method of each kind, whose request says
 * what to do (set headers and trailers, send N messages of a size, fail with a code, message and
 * details after some messages, sleep) and whose responses echo what the handler saw (the request,
 * its headers, its deadline, protocol, URL). Request and response are `google.protobuf.Struct`,
 * so the descriptor is built here from a FileDescriptorProto, without generated code or a .proto
 * in the product's schema.
 */
import { setTimeout as sleep } from "node:timers/promises";
import { create, createFileRegistry, type DescService, type JsonObject } from "@bufbuild/protobuf";
import {
  FileDescriptorProtoSchema,
  file_google_protobuf_struct,
  type Struct,
  StructSchema,
} from "@bufbuild/protobuf/wkt";
import { Code, ConnectError, type HandlerContext, type ServiceImpl } from "@connectrpc/connect";

const file = create(FileDescriptorProtoSchema, {
  name: "parley/conformance/v1/conformance.proto",
  package: "parley.conformance.v1",
  dependency: ["google/protobuf/struct.proto"],
  syntax: "proto3",
  service: [
    {
      name: "ConformanceService",
      method: [
        { name: "Unary" },
        { name: "ServerStream", serverStreaming: true },
        { name: "ClientStream", clientStreaming: true },
        { name: "BidiStream", clientStreaming: true, serverStreaming: true },
      ].map((method) => ({
        ...method,
        inputType: ".google.protobuf.Struct",
        outputType: ".google.protobuf.Struct",
      })),
    },
  ],
});

/** The service's descriptor. */
export const ConformanceService: DescService = (() => {
  const registry = createFileRegistry(file, (name) =>
    name === "google/protobuf/struct.proto" ? file_google_protobuf_struct : undefined,
  );
  const service = registry.getService("parley.conformance.v1.ConformanceService");
  if (service === undefined) throw new Error("the conformance service did not build");
  return service;
})();

/** What a request asks the handler to do; every field is optional. */
export interface Instructions {
  /** Response headers and trailers the handler sets. */
  readonly headers?: Record<string, string>;
  readonly trailers?: Record<string, string>;
  /** Response messages (server and bidi streams; unary always answers one). */
  readonly count?: number;
  /** Characters of padding in each response message. */
  readonly size?: number;
  /** Milliseconds to wait before answering, ended early by the call's signal. */
  readonly sleepMs?: number;
  /** Fail with this code (a number), message and one Struct detail, after `failAfter` messages. */
  readonly failCode?: number;
  readonly failMessage?: string;
  readonly failDetail?: JsonObject;
  readonly failAfter?: number;
  /** Throw a plain Error (not a ConnectError), which servers must turn into internal. */
  readonly throwPlain?: boolean;
  /** A key under which the handler records the reason its signal aborted with (cancellation). */
  readonly recordAbort?: string;
  /** Anything else: echoed back. */
  readonly [key: string]: unknown;
}

/** The abort reasons handlers saw, by `recordAbort` key: "code: message" or the error's name. */
export const abortReasons = new Map<string, string>();

/** The `recordAbort` keys of the calls whose handler started, so a client cancels only then. */
export const startedCalls = new Set<string>();

/** Request headers whose value a client computes per call (the deadline left); echoed as "set". */
const computedRequestHeaders = new Set(["grpc-timeout", "connect-timeout-ms"]);

/** Request headers a client or HTTP stack adds on its own and that are not the handler's view. */
const volatileRequestHeaders = new Set([
  "user-agent",
  "x-user-agent",
  "host",
  "content-length",
  "connection",
  "te",
  "accept-encoding",
  "grpc-accept-encoding",
  "connect-accept-encoding",
  "transfer-encoding",
  "keep-alive",
]);

function instructionsOf(request: Struct): Instructions {
  return toJsonObject(request) as Instructions;
}

/** A Struct's JSON without the schema registry: its fields as plain values. */
function toJsonObject(struct: Struct): JsonObject {
  const out: JsonObject = {};
  for (const [key, value] of Object.entries(struct.fields)) out[key] = valueToJson(value);
  return out;
}

function valueToJson(value: Struct["fields"][string]): JsonObject[string] {
  const kind = value.kind;
  switch (kind.case) {
    case "nullValue":
      return null;
    case "numberValue":
    case "stringValue":
    case "boolValue":
      return kind.value;
    case "structValue":
      return toJsonObject(kind.value);
    case "listValue":
      return kind.value.values.map(valueToJson);
    default:
      return null;
  }
}

/** A Struct from plain JSON. */
export function struct(json: JsonObject): Struct {
  return create(StructSchema, {
    fields: Object.fromEntries(
      Object.entries(json).map(([key, value]) => [key, jsonToValue(value)]),
    ),
  });
}

function jsonToValue(value: JsonObject[string]): Struct["fields"][string] {
  const init = (kind: Struct["fields"][string]["kind"]) => ({ kind }) as Struct["fields"][string];
  if (value === null) return init({ case: "nullValue", value: 0 });
  if (typeof value === "number") return init({ case: "numberValue", value });
  if (typeof value === "string") return init({ case: "stringValue", value });
  if (typeof value === "boolean") return init({ case: "boolValue", value });
  if (Array.isArray(value)) {
    return init({
      case: "listValue",
      value: { $typeName: "google.protobuf.ListValue", values: value.map(jsonToValue) },
    });
  }
  return init({ case: "structValue", value: struct(value) });
}

/** What the handler saw: the part of the response the suite compares. */
function observed(context: HandlerContext, request: JsonObject): JsonObject {
  const headers: JsonObject = {};
  for (const [name, value] of context.requestHeader) {
    if (!volatileRequestHeaders.has(name)) {
      headers[name] = computedRequestHeaders.has(name) ? "set" : value;
    }
  }
  const timeoutMs = context.timeoutMs();
  let deadline: string;
  if (timeoutMs === undefined) {
    deadline = "none";
  } else {
    // As connect-es's conformance service does: a fractional deadline throws here.
    const whole = BigInt(timeoutMs);
    deadline = whole > 0n ? "pending" : "expired";
  }
  const url = new URL(context.url);
  return {
    request,
    headers,
    deadline,
    protocol: context.protocolName,
    method: context.requestMethod,
    url: `${url.protocol}//${url.pathname}`,
    procedure: `${context.service.typeName}/${context.method.name}`,
  };
}

function applyHeaders(context: HandlerContext, does: Instructions): void {
  for (const [name, value] of Object.entries(does.headers ?? {})) {
    context.responseHeader.set(name, value);
  }
  for (const [name, value] of Object.entries(does.trailers ?? {})) {
    context.responseTrailer.set(name, value);
  }
}

function failure(does: Instructions): Error {
  if (does.throwPlain === true) return new Error("a plain error with a secret in it");
  return new ConnectError(
    does.failMessage ?? "",
    does.failCode as Code,
    undefined,
    does.failDetail === undefined
      ? undefined
      : [{ desc: StructSchema, value: struct(does.failDetail) }],
  );
}

function record(context: HandlerContext, does: Instructions): void {
  const key = does.recordAbort;
  if (key === undefined) return;
  startedCalls.add(key);
  context.signal.addEventListener("abort", () => {
    const reason: unknown = context.signal.reason;
    abortReasons.set(
      key,
      reason instanceof ConnectError
        ? `${Code[reason.code]}: ${reason.rawMessage}`
        : reason instanceof Error
          ? reason.name
          : String(reason),
    );
  });
}

async function pause(context: HandlerContext, does: Instructions): Promise<void> {
  if (does.sleepMs === undefined) return;
  await sleep(does.sleepMs, undefined, { signal: context.signal }).catch(() => {
    throw context.signal.reason instanceof ConnectError
      ? context.signal.reason
      : new ConnectError("aborted", Code.Canceled);
  });
}

function message(seen: JsonObject, index: number, size: number): Struct {
  return struct({ ...seen, index, pad: "x".repeat(size) });
}

async function* respond(
  context: HandlerContext,
  does: Instructions,
  seen: JsonObject,
  defaultCount: number,
): AsyncGenerator<Struct> {
  applyHeaders(context, does);
  record(context, does);
  await pause(context, does);
  const count = does.count ?? defaultCount;
  const failing = does.failCode !== undefined || does.throwPlain === true;
  for (let index = 0; index < count; index++) {
    if (failing && index === (does.failAfter ?? 0)) throw failure(does);
    yield message(seen, index, does.size ?? 0);
  }
  if (failing) throw failure(does);
}

/** The implementation of {@link ConformanceService}. */
export const conformanceImplementation: ServiceImpl<typeof ConformanceService> = {
  async unary(request: Struct, context: HandlerContext) {
    const does = instructionsOf(request);
    for await (const response of respond(
      context,
      { ...does, count: 1 },
      observed(context, toJsonObject(request)),
      1,
    )) {
      return response;
    }
    throw failure(does);
  },
  async *serverStream(request: Struct, context: HandlerContext) {
    const does = instructionsOf(request);
    yield* respond(context, does, observed(context, toJsonObject(request)), 3);
  },
  async clientStream(requests: AsyncIterable<Struct>, context: HandlerContext) {
    const received: JsonObject[] = [];
    for await (const request of requests) received.push(toJsonObject(request));
    const does = (received[0] ?? {}) as Instructions;
    for await (const response of respond(
      context,
      { ...does, count: 1 },
      observed(context, { received }),
      1,
    )) {
      return response;
    }
    throw failure(does);
  },
  async *bidiStream(requests: AsyncIterable<Struct>, context: HandlerContext) {
    let index = 0;
    for await (const request of requests) {
      const does = instructionsOf(request);
      if (index === 0) applyHeaders(context, does);
      if (does.failCode !== undefined) throw failure(does);
      yield message(observed(context, toJsonObject(request)), index++, does.size ?? 0);
    }
  },
} as unknown as ServiceImpl<typeof ConformanceService>;
