/**
 * @module Traces of finished calls, exported over OTLP/HTTP (protobuf) with the OpenTelemetry JS
 * SDK. Each call becomes a server span named after its procedure, continuing the client's W3C
 * `traceparent` when it sent one, with child spans for the generation's stages: `queue`
 * (admission to the worker), `prefill` (the prompt, to the first token) and `decode` (the first
 * token to the end). Spans are made when the call has ended, from the times the engine recorded,
 * so a call in flight does no tracing work at all; the SDK batches and exports them off the
 * request path. Only `main.ts` imports this module, and only when `--otlp-endpoint` is set.
 *
 * Sampling is the SDK's default, parent-based: a call whose `traceparent` says "not sampled" is
 * not recorded, any other call is.
 */
import {
  type Attributes,
  defaultTextMapGetter,
  ROOT_CONTEXT,
  SpanKind,
  SpanStatusCode,
  trace,
} from "@opentelemetry/api";
import { W3CTraceContextPropagator } from "@opentelemetry/core";
import { OTLPTraceExporter } from "@opentelemetry/exporter-trace-otlp-proto";
import { resourceFromAttributes } from "@opentelemetry/resources";
import { BasicTracerProvider, BatchSpanProcessor } from "@opentelemetry/sdk-trace-base";
import type { CallTracer, TracedCall } from "./call-tracer.js";

/** Options of {@link createOtlpCallTracer}. */
export interface OtlpCallTracerOptions {
  /**
   * The OTLP/HTTP endpoint: a base URL such as `http://collector:4318`, to which `/v1/traces` is
   * added, or a URL that already ends in `/v1/traces`.
   */
  readonly endpoint: string;
  /** `service.name` of the spans' resource. @example "parley" */
  readonly serviceName: string;
  readonly serviceVersion: string;
  /** How long spans wait in the batch before export. @default 5000 (the SDK's) */
  readonly exportDelayMs?: number;
}

/** The URL OTLP/HTTP traces are posted to, from a base endpoint or a full traces URL. */
export function otlpTracesUrl(endpoint: string): string {
  const url = new URL(endpoint);
  if (!url.pathname.endsWith("/v1/traces")) {
    url.pathname = `${url.pathname.replace(/\/+$/, "")}/v1/traces`;
  }
  return url.toString();
}

/** Creates the tracer and its exporter; `shutdown()` exports what is left. */
export function createOtlpCallTracer(options: OtlpCallTracerOptions): CallTracer {
  const exporter = new OTLPTraceExporter({ url: otlpTracesUrl(options.endpoint) });
  const provider = new BasicTracerProvider({
    resource: resourceFromAttributes({
      "service.name": options.serviceName,
      "service.version": options.serviceVersion,
    }),
    spanProcessors: [
      new BatchSpanProcessor(exporter, {
        ...(options.exportDelayMs === undefined
          ? {}
          : { scheduledDelayMillis: options.exportDelayMs }),
      }),
    ],
  });
  const tracer = provider.getTracer("parley", options.serviceVersion);
  const propagator = new W3CTraceContextPropagator();

  return {
    record(call: TracedCall): string {
      const carrier = { traceparent: call.traceparent, tracestate: call.tracestate };
      const parent =
        call.traceparent === undefined
          ? ROOT_CONTEXT
          : propagator.extract(ROOT_CONTEXT, carrier, defaultTextMapGetter);
      const { generation } = call;
      const attributes: Attributes = {
        "parley.protocol": call.protocol,
        "parley.request_id": call.requestId,
        "parley.code": call.code,
      };
      if (call.protocol === "openai") {
        attributes["http.route"] = `/${call.method}`;
      } else {
        const [service, method] = call.method.split("/", 2);
        attributes["rpc.system"] = call.protocol === "grpc" ? "grpc" : "connect_rpc";
        attributes["rpc.service"] = service;
        attributes["rpc.method"] = method;
      }
      if (generation !== undefined) {
        attributes["gen_ai.request.model"] = generation.model;
        if (generation.promptTokens !== undefined) {
          attributes["gen_ai.usage.input_tokens"] = generation.promptTokens;
        }
        if (generation.completionTokens !== undefined) {
          attributes["gen_ai.usage.output_tokens"] = generation.completionTokens;
        }
        if (generation.finishReason !== undefined) {
          attributes["gen_ai.response.finish_reasons"] = [generation.finishReason];
        }
      }
      const span = tracer.startSpan(
        call.method,
        { kind: SpanKind.SERVER, startTime: call.startedAt, attributes },
        parent,
      );
      if (call.code !== "ok") {
        span.setStatus({ code: SpanStatusCode.ERROR, message: call.errorMessage ?? call.code });
      }
      if (generation !== undefined) {
        const inCall = trace.setSpan(parent, span);
        const stage = (name: string, start: number | undefined, end: number | undefined) => {
          if (start === undefined || end === undefined) return;
          tracer.startSpan(name, { kind: SpanKind.INTERNAL, startTime: start }, inCall).end(end);
        };
        const { timings } = generation;
        stage("queue", timings.admittedAt, timings.scheduledAt);
        stage("prefill", timings.prefillStartAt, timings.prefillEndAt);
        stage("decode", timings.prefillEndAt, timings.endedAt);
      }
      span.end(call.endedAt);
      return span.spanContext().traceId;
    },
    shutdown: () => provider.shutdown(),
  };
}
