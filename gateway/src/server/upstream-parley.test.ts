/**
 * @module Two `parley` processes: the second serves the first's built-in model as
 * `--model openai:<first>/v1#parley-tiny`, through the first's OpenAI-compatible `/v1` API, and
 * exports its traces with `--otlp-endpoint` to a local OTLP/HTTP receiver. The forwarded text
 * equals the first's own, streamed or not, and on SIGTERM the second exports the spans of its
 * calls, continuing the client's traceparent.
 */
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { createClient } from "@connectrpc/connect";
import { createConnectTransport, createGrpcTransport } from "@connectrpc/connect-node";
import { FinishReason, InferenceService } from "@parley/gen/inference/v1/inference_pb";
import { type OtlpReceiver, startOtlpReceiver } from "../testing/otlp-receiver.js";
import { type ParleyProcess, startParleyProcess } from "../testing/parley-process.js";

const request = { prompt: "Once upon a time", maxTokens: 12, temperature: 0 };
const traceId = "5bf92f3577b34da6a3ce929d0e0e4736";
const parentSpanId = "10f067aa0ba902b7";

describe("a parley process forwarding to another parley's /v1 API", () => {
  let first: ParleyProcess;
  let second: ParleyProcess;
  let receiver: OtlpReceiver;

  before(async () => {
    receiver = await startOtlpReceiver();
    first = await startParleyProcess(["--web-root", "/nonexistent"]);
    second = await startParleyProcess([
      "--web-root",
      "/nonexistent",
      "--model",
      `openai:${first.url}/v1#parley-tiny`,
      "--otlp-endpoint",
      receiver.endpoint,
    ]);
  });
  after(async () => {
    await Promise.all([first?.stop(), second?.stop()]);
    await receiver?.close();
  });

  it("generates the first's text, unary and streamed, over gRPC and Connect", async () => {
    const direct = await createClient(
      InferenceService,
      createConnectTransport({ baseUrl: first.url, httpVersion: "1.1" }),
    ).generate(request);
    assert.ok(direct.text.length > 0);
    const grpc = createClient(InferenceService, createGrpcTransport({ baseUrl: second.url }));
    const unary = await grpc.generate(request, {
      headers: { traceparent: `00-${traceId}-${parentSpanId}-01` },
    });
    assert.equal(unary.model, "parley-tiny");
    assert.equal(unary.text, direct.text);
    assert.equal(unary.finishReason, direct.finishReason);
    assert.deepEqual(unary.usage, direct.usage);
    let streamed = "";
    let finishReason = FinishReason.UNSPECIFIED;
    for await (const message of createClient(
      InferenceService,
      createConnectTransport({ baseUrl: second.url, httpVersion: "1.1" }),
    ).generateStream(request)) {
      streamed += message.text;
      if (message.finishReason !== FinishReason.UNSPECIFIED) finishReason = message.finishReason;
    }
    assert.equal(streamed, direct.text);
    assert.equal(finishReason, direct.finishReason);
    const { models } = await grpc.listModels({});
    assert.equal(models[0]?.id, "parley-tiny");
    assert.match(models[0]?.description ?? "", /OpenAI API/);
  });

  it("exports the calls' spans over OTLP/HTTP when it stops", async () => {
    assert.equal(await second.stop(), 0);
    const call = receiver.spans.find(
      (s) => s.traceId === traceId && s.name === "inference.v1.InferenceService/Generate",
    );
    assert.ok(call, "the traced call's span");
    assert.equal(call.parentSpanId, parentSpanId);
    assert.equal(call.resource["service.name"], "parley");
    const stages = receiver.spans.filter((s) => s.parentSpanId === call.spanId).map((s) => s.name);
    // An upstream model has no queue of its own: its prefill is the wait for the first token.
    assert.deepEqual(stages.sort(), ["decode", "prefill", "queue"]);
    assert.ok(
      receiver.spans.some((s) => s.name === "inference.v1.InferenceService/GenerateStream"),
    );
  });
});
