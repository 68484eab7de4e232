/**
 * @module A local OTLP/HTTP trace receiver for tests: a node:http server that takes what an
 * OpenTelemetry exporter posts to `/v1/traces` (protobuf `ExportTraceServiceRequest`) and keeps
 * the spans. The few fields tests read are decoded with protobuf-es's `BinaryReader`, by field
 * number from opentelemetry-proto's trace.proto; hand-written because no package ships a decoder
 * for OTLP requests (the SDK's transformer only encodes them), and the proto files would be a
 * second copy of a schema we do not own.
 */
import { once } from "node:events";
import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { BinaryReader, type WireType } from "@bufbuild/protobuf/wire";

/** A span as received. */
export interface ReceivedSpan {
  readonly traceId: string;
  readonly spanId: string;
  /** "" for a root span. */
  readonly parentSpanId: string;
  readonly name: string;
  /** OTLP SpanKind: 1 internal, 2 server, 3 client. */
  readonly kind: number;
  readonly startTimeUnixNano: bigint;
  readonly endTimeUnixNano: bigint;
  /** String, integer and boolean attributes (arrays of strings joined with ","). */
  readonly attributes: Readonly<Record<string, string | number | boolean>>;
  /** The resource's attributes (service.name…). */
  readonly resource: Readonly<Record<string, string | number | boolean>>;
}

/** The running receiver. */
export interface OtlpReceiver {
  /** The base URL to give an exporter (`/v1/traces` is posted to). */
  readonly endpoint: string;
  readonly spans: ReceivedSpan[];
  /** Paths that were posted to, in order. */
  readonly paths: string[];
  /** Resolves once at least `count` spans have arrived. */
  waitForSpans(count: number): Promise<void>;
  close(): Promise<void>;
}

const hex = (bytes: Uint8Array) => Buffer.from(bytes).toString("hex");

/** Calls `onField` for each field of the message in `bytes`; skips what it does not read. */
function fields(
  bytes: Uint8Array,
  onField: (field: number, reader: BinaryReader, wireType: WireType) => boolean,
): void {
  const reader = new BinaryReader(bytes);
  while (reader.pos < reader.len) {
    const [field, wireType] = reader.tag();
    if (!onField(field, reader, wireType)) reader.skip(wireType);
  }
}

function anyValue(bytes: Uint8Array): string | number | boolean {
  let value: string | number | boolean = "";
  fields(bytes, (field, reader) => {
    if (field === 1) value = reader.string();
    else if (field === 2) value = reader.bool();
    else if (field === 3) value = Number(reader.int64());
    else if (field === 4) value = reader.double();
    else if (field === 5) {
      const items: string[] = [];
      fields(reader.bytes(), (f, r) => {
        if (f !== 1) return false;
        items.push(String(anyValue(r.bytes())));
        return true;
      });
      value = items.join(",");
    } else return false;
    return true;
  });
  return value;
}

function keyValue(bytes: Uint8Array, into: Record<string, string | number | boolean>): void {
  let key = "";
  let value: string | number | boolean = "";
  fields(bytes, (field, reader) => {
    if (field === 1) key = reader.string();
    else if (field === 2) value = anyValue(reader.bytes());
    else return false;
    return true;
  });
  into[key] = value;
}

function decodeSpan(bytes: Uint8Array, resource: ReceivedSpan["resource"]): ReceivedSpan {
  const span = {
    traceId: "",
    spanId: "",
    parentSpanId: "",
    name: "",
    kind: 0,
    startTimeUnixNano: 0n,
    endTimeUnixNano: 0n,
    attributes: {} as Record<string, string | number | boolean>,
    resource,
  };
  fields(bytes, (field, reader) => {
    if (field === 1) span.traceId = hex(reader.bytes());
    else if (field === 2) span.spanId = hex(reader.bytes());
    else if (field === 4) span.parentSpanId = hex(reader.bytes());
    else if (field === 5) span.name = reader.string();
    else if (field === 6) span.kind = reader.int32();
    else if (field === 7) span.startTimeUnixNano = BigInt(reader.fixed64());
    else if (field === 8) span.endTimeUnixNano = BigInt(reader.fixed64());
    else if (field === 9) keyValue(reader.bytes(), span.attributes);
    else return false;
    return true;
  });
  return span;
}

/** Decodes an `ExportTraceServiceRequest` into its spans. */
export function decodeTraceRequest(body: Uint8Array): ReceivedSpan[] {
  const spans: ReceivedSpan[] = [];
  fields(body, (field, reader) => {
    if (field !== 1) return false; // resource_spans
    const resource: Record<string, string | number | boolean> = {};
    const scopeSpans: Uint8Array[] = [];
    fields(reader.bytes(), (f, r) => {
      if (f === 1) {
        fields(r.bytes(), (rf, rr) => {
          if (rf !== 1) return false;
          keyValue(rr.bytes(), resource);
          return true;
        });
      } else if (f === 2) scopeSpans.push(r.bytes());
      else return false;
      return true;
    });
    for (const scope of scopeSpans) {
      fields(scope, (f, r) => {
        if (f !== 2) return false;
        spans.push(decodeSpan(r.bytes(), resource));
        return true;
      });
    }
    return true;
  });
  return spans;
}

/** Starts the receiver on a loopback port. */
export async function startOtlpReceiver(): Promise<OtlpReceiver> {
  const spans: ReceivedSpan[] = [];
  const paths: string[] = [];
  let waiters: (() => void)[] = [];
  const server = createServer(async (request, response) => {
    const chunks: Buffer[] = [];
    for await (const chunk of request) chunks.push(chunk as Buffer);
    paths.push(request.url ?? "");
    if (request.headers["content-type"] !== "application/x-protobuf") {
      response.writeHead(415).end();
      return;
    }
    spans.push(...decodeTraceRequest(Buffer.concat(chunks)));
    // An empty ExportTraceServiceResponse: success with nothing rejected.
    response.writeHead(200, { "content-type": "application/x-protobuf" }).end();
    const woken = waiters;
    waiters = [];
    for (const wake of woken) wake();
  });
  server.listen(0, "127.0.0.1");
  await once(server, "listening");
  const { port } = server.address() as AddressInfo;
  return {
    endpoint: `http://127.0.0.1:${port}`,
    spans,
    paths,
    async waitForSpans(count) {
      while (spans.length < count) {
        await new Promise<void>((resolve) => waiters.push(resolve));
      }
    },
    async close() {
      server.closeAllConnections();
      server.close();
      await once(server, "close");
    },
  };
}
