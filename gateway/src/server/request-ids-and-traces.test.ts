/**
 * @module Request ids and traces on a real gateway with the built-in model: every protocol (and
 * connect-node's router path) returns the client's `x-request-id` or a generated one, the call's
 * log line carries it with the model and token counts, and with a tracer the call arrives at a
 * local OTLP/HTTP receiver as a server span continuing the client's `traceparent`, with queue,
 * prefill and decode spans under it.
 */
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { type CallOptions, type Client, createClient, type Transport } from "@connectrpc/connect";
import {
  compressionGzip,
  createConnectTransport,
  createGrpcTransport,
  createGrpcWebTransport,
} from "@connectrpc/connect-node";
import { InferenceService } from "@parley/gen/inference/v1/inference_pb";
import { createOtlpCallTracer } from "../observability/otlp-call-tracer.js";
import { type OtlpReceiver, startOtlpReceiver } from "../testing/otlp-receiver.js";
import { type RealGateway, startRealGateway } from "../testing/real-gateway.js";

/** A generated id: the process's prefix and a base-36 counter. */
const generatedId = /^[0-9a-f]{8}-[0-9a-z]+$/;
const request = { prompt: "Once upon a time", maxTokens: 6, temperature: 0 };

type Inference = Client<typeof InferenceService>;

/** Runs a stream to its end; returns the response headers and the usage of its last message. */
async function stream(client: Inference, options: CallOptions) {
  let headers: Headers | undefined;
  let usage: { promptTokens: number; completionTokens: number } | undefined;
  for await (const message of client.generateStream(request, {
    ...options,
    onHeader: (h) => {
      headers = h;
    },
  })) {
    if (message.usage !== undefined) usage = message.usage;
  }
  assert.ok(headers !== undefined && usage !== undefined);
  return { headers, usage };
}

/** The call's "rpc" log line with this request id. */
function rpcLine(gateway: RealGateway, requestId: string): Record<string, unknown> {
  const line = gateway.logs.find((l) => l.msg === "rpc" && l.requestId === requestId);
  assert.ok(line, `an rpc log line with requestId ${requestId}`);
  return line;
}

/**
 * Waits for the call's report: a client has its status once the trailers arrive, and the server
 * reports the call when its stream closes, a moment later.
 */
async function reported(gateway: RealGateway, requestId: string): Promise<void> {
  while (!gateway.logs.some((l) => l.msg === "rpc" && l.requestId === requestId)) {
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
}

describe("request ids", () => {
  let gateway: RealGateway;
  const transports: Record<string, () => Transport> = {};

  before(async () => {
    gateway = await startRealGateway();
    const baseUrl = gateway.base;
    transports.grpc = () => createGrpcTransport({ baseUrl });
    transports.grpcWeb = () => createGrpcWebTransport({ baseUrl, httpVersion: "1.1" });
    transports.connect = () => createConnectTransport({ baseUrl, httpVersion: "1.1" });
    // Compressed requests are declined by the fast paths and served by connect-node's router.
    transports.connectRouter = () =>
      createConnectTransport({
        baseUrl,
        httpVersion: "2",
        sendCompression: compressionGzip,
        compressMinBytes: 0,
      });
  });
  after(() => gateway.close());

  for (const name of ["grpc", "grpcWeb", "connect", "connectRouter"]) {
    it(`${name}: returns the client's x-request-id and logs it with the model and token counts`, async () => {
      const client = createClient(InferenceService, (transports[name] as () => Transport)());
      const requestId = `client-${name}-42`;
      const { headers, usage } = await stream(client, { headers: { "x-request-id": requestId } });
      assert.equal(headers.get("x-request-id"), requestId);
      await reported(gateway, requestId);
      const line = rpcLine(gateway, requestId);
      assert.equal(line.method, "inference.v1.InferenceService/GenerateStream");
      assert.equal(line.code, "ok");
      assert.equal(line.model, "parley-tiny");
      assert.equal(line.promptTokens, usage.promptTokens);
      assert.equal(line.completionTokens, usage.completionTokens);
      assert.equal(line.completionTokens, request.maxTokens);
      assert.equal(line.finishReason, "length");
    });

    it(`${name}: generates an id when the client sends none, and on unary calls too`, async () => {
      const client = createClient(InferenceService, (transports[name] as () => Transport)());
      const { headers } = await stream(client, {});
      const generated = headers.get("x-request-id") ?? "";
      assert.match(generated, generatedId);
      await reported(gateway, generated);
      assert.equal(rpcLine(gateway, generated).model, "parley-tiny");
      let unaryHeaders: Headers | undefined;
      const response = await client.generate(request, {
        onHeader: (h) => {
          unaryHeaders = h;
        },
      });
      const unaryId = unaryHeaders?.get("x-request-id") ?? "";
      assert.match(unaryId, generatedId);
      assert.notEqual(unaryId, generated);
      await reported(gateway, unaryId);
      assert.equal(rpcLine(gateway, unaryId).completionTokens, response.usage?.completionTokens);
    });
  }

  it("replaces an id that is too long or has characters a log must not take", async () => {
    for (const bad of ["x".repeat(129), "two words", "tab\there"]) {
      const response = await fetch(`${gateway.base}/inference.v1.InferenceService/ListModels`, {
        method: "POST",
        headers: { "content-type": "application/json", "x-request-id": bad },
        body: "{}",
      });
      assert.equal(response.status, 200);
      assert.match(response.headers.get("x-request-id") ?? "", generatedId);
    }
  });

  it("returns the id on a call that fails before any handler runs", async () => {
    const response = await fetch(`${gateway.base}/inference.v1.InferenceService/Generate`, {
      method: "POST",
      headers: { "content-type": "application/json", "x-request-id": "broken-body-1" },
      body: "{not json",
    });
    assert.equal(response.status, 400);
    assert.equal(response.headers.get("x-request-id"), "broken-body-1");
    await reported(gateway, "broken-body-1");
    assert.equal(rpcLine(gateway, "broken-body-1").code, "invalid_argument");
  });
});

describe("traces over OTLP/HTTP", () => {
  let gateway: RealGateway;
  let receiver: OtlpReceiver;
  let tracer: ReturnType<typeof createOtlpCallTracer>;
  const traceId = "4bf92f3577b34da6a3ce929d0e0e4736";
  const parentSpanId = "00f067aa0ba902b7";

  before(async () => {
    receiver = await startOtlpReceiver();
    tracer = createOtlpCallTracer({
      endpoint: receiver.endpoint,
      serviceName: "parley-test",
      serviceVersion: "0.0.0-test",
    });
    gateway = await startRealGateway({ tracer });
    const grpc = createClient(InferenceService, createGrpcTransport({ baseUrl: gateway.base }));
    const connect = createClient(
      InferenceService,
      createConnectTransport({ baseUrl: gateway.base, httpVersion: "1.1" }),
    );
    await stream(grpc, {
      headers: { traceparent: `00-${traceId}-${parentSpanId}-01`, "x-request-id": "traced-1" },
    });
    await connect.generate(request, { headers: { "x-request-id": "traced-2" } });
    await connect.generate(request, {
      headers: {
        traceparent: "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-00",
        "x-request-id": "not-sampled",
      },
    });
    for (const id of ["traced-1", "traced-2", "not-sampled"]) await reported(gateway, id);
    // Shutting the tracer down exports everything it holds: after it, what is absent stays so.
    await tracer.shutdown();
  });
  after(async () => {
    await gateway.close();
    await receiver.close();
  });

  it("posts protobuf to /v1/traces with the service's resource", () => {
    assert.ok(receiver.paths.length > 0);
    assert.ok(receiver.paths.every((path) => path === "/v1/traces"));
    assert.equal(receiver.spans[0]?.resource["service.name"], "parley-test");
    assert.equal(receiver.spans[0]?.resource["service.version"], "0.0.0-test");
  });

  it("continues the client's traceparent with a server span and queue, prefill and decode under it", () => {
    const inTrace = receiver.spans.filter((s) => s.traceId === traceId);
    const call = inTrace.find((s) => s.name === "inference.v1.InferenceService/GenerateStream");
    assert.ok(
      call,
      `a call span in trace ${traceId}: ${receiver.spans.map((s) => `${s.name} ${s.traceId} ${s.parentSpanId}`).join("; ")}`,
    );
    assert.equal(call.parentSpanId, parentSpanId);
    assert.equal(call.kind, 2, "SPAN_KIND_SERVER");
    assert.equal(call.attributes["rpc.system"], "grpc");
    assert.equal(call.attributes["parley.request_id"], "traced-1");
    assert.equal(call.attributes["gen_ai.request.model"], "parley-tiny");
    assert.equal(call.attributes["gen_ai.usage.output_tokens"], request.maxTokens);
    assert.equal(call.attributes["gen_ai.response.finish_reasons"], "length");
    const children = inTrace.filter((s) => s.parentSpanId === call.spanId);
    assert.deepEqual(children.map((s) => s.name).sort(), ["decode", "prefill", "queue"]);
    for (const child of children) {
      assert.equal(child.kind, 1, "SPAN_KIND_INTERNAL");
      assert.ok(child.endTimeUnixNano >= child.startTimeUnixNano);
    }
    assert.equal(rpcLine(gateway, "traced-1").traceId, traceId);
  });

  it("starts a new trace for a call without traceparent; its log line names the trace", () => {
    const logged = rpcLine(gateway, "traced-2").traceId;
    assert.equal(typeof logged, "string");
    const call = receiver.spans.find((s) => s.attributes["parley.request_id"] === "traced-2");
    assert.ok(call);
    assert.equal(call.name, "inference.v1.InferenceService/Generate");
    assert.equal(call.traceId, logged);
    assert.equal(call.parentSpanId, "");
    assert.equal(call.attributes["rpc.system"], "connect_rpc");
    const children = receiver.spans.filter((s) => s.parentSpanId === call.spanId);
    assert.deepEqual(children.map((s) => s.name).sort(), ["decode", "prefill", "queue"]);
  });

  it("records nothing for a caller whose traceparent says not sampled", () => {
    assert.ok(!receiver.spans.some((s) => s.attributes["parley.request_id"] === "not-sampled"));
    assert.ok(!receiver.spans.some((s) => s.traceId === "0af7651916cd43dd8448eb211c80319c"));
  });
});
