/**
 * @module A model that another inference server runs, reached over the OpenAI API: the second
 * kind of model behind the engine (beside `model-runner.ts`, which runs ONNX in a worker). It
 * has the same face (`ModelRunner`), so the service layer, every protocol and ListModels treat it
 * like any local model, and browsers and gRPC backends reach a GPU fleet through Parley
 * unchanged.
 *
 * Each generation is one streaming request (`stream: true`, with usage) to `/chat/completions`
 * (messages) or `/completions` (a prompt), sent at admission. Its body is read only as fast as
 * the caller pulls, so a slow client slows the upstream through TCP rather than filling a buffer
 * here. The caller's abort (cancel, disconnect, deadline) aborts the request, which closes its
 * connection: the upstream sees the client go and can stop generating. Requests go through one
 * undici `Agent` per upstream, which keeps connections alive between requests; at most
 * `maxInFlight` run at once, and more are refused with `resource_exhausted` as a full local
 * queue is. The bearer key goes in a header and nowhere else.
 */
import type { Logger } from "pino";
import { Agent, type Dispatcher, request as undiciRequest } from "undici";
import type { UpstreamModelSource } from "../../models/model-source.js";
import { abortError } from "../abort-error.js";
import type {
  FinishReason,
  Generation,
  GenerationEvent,
  GenerationRequest,
  ModelDescription,
} from "../engine.js";
import { EngineError } from "../engine-error.js";
import type { EngineMetrics } from "../engine-metrics.js";
import { epochMs } from "../epoch-ms.js";
import type { MutableTimings } from "../generation-channel.js";
import type { ModelRunner } from "../model-runner.js";
import { readOpenAiStream } from "./openai-stream.js";
import { upstreamStatusError, upstreamTransportError } from "./upstream-errors.js";

/** Options of {@link startOpenAiUpstream}. */
export interface OpenAiUpstreamOptions {
  readonly source: UpstreamModelSource;
  readonly isDefault: boolean;
  readonly metrics: EngineMetrics;
  readonly logger: Logger;
  /** Generations forwarded at once; more are refused with `resource_exhausted`. */
  readonly maxInFlight: number;
  /** How long the upstream may send nothing: no headers, or no bytes mid-stream. */
  readonly timeoutMs: number;
  /** `max_tokens` sent when a request sets none. */
  readonly defaultMaxTokens: number;
  /** How long start-up waits for the upstream's model list (its context length). @default 5000 */
  readonly probeTimeoutMs?: number;
}

/** Longest error body read from the upstream. */
const maxErrorBodyBytes = 16 * 1024;

/**
 * Connects the model: asks the upstream's `/models` for the model's context length (vLLM's
 * `max_model_len`) and resolves. An upstream that is down or does not list the model is logged,
 * not fatal: a fleet may come up after the gateway, and calls fail with `unavailable` meanwhile.
 */
export async function startOpenAiUpstream(options: OpenAiUpstreamOptions): Promise<ModelRunner> {
  const { source, metrics, logger, timeoutMs } = options;
  const labels = { model: source.id };
  const agent = new Agent({
    connections: options.maxInFlight,
    keepAliveTimeout: 30_000,
    headersTimeout: timeoutMs,
    bodyTimeout: timeoutMs,
  });
  const headers: Record<string, string> = { "content-type": "application/json" };
  if (source.apiKey !== undefined) headers.authorization = `Bearer ${source.apiKey}`;
  const upstreamName = `${source.baseUrl} (${source.remoteModel})`;
  const running = new Set<AbortController>();
  let closing = false;
  let drained: (() => void) | undefined;

  const contextLength = await probeContextLength(
    agent,
    source,
    headers,
    options.probeTimeoutMs ?? 5_000,
  ).catch((error: unknown) => {
    logger.warn(
      { model: source.id, upstream: source.baseUrl, err: error },
      "the upstream's model list could not be read; its context length is unknown",
    );
    return 0;
  });
  metrics.modelReady.set(labels, 1);
  metrics.workerRestarts.inc(labels, 0);
  metrics.inFlight.set(labels, 0);
  metrics.queueDepth.set(labels, 0);

  const description: ModelDescription = {
    id: source.id,
    contextLength,
    hasChatTemplate: true,
    isDefault: options.isDefault,
    description: source.description,
    vocabSize: 0,
    dtype: "",
  };

  function bodyOf(request: GenerationRequest): { path: string; body: string } {
    const { sampling, input } = request;
    const seed = sampling.seed;
    if (seed !== undefined && seed > BigInt(Number.MAX_SAFE_INTEGER)) {
      throw new EngineError(
        "invalid_argument",
        `seed ${seed} is above 2^53 - 1, the largest an upstream's JSON is sure to keep`,
      );
    }
    const common = {
      model: source.remoteModel,
      stream: true,
      stream_options: { include_usage: true },
      max_tokens: request.maxTokens ?? options.defaultMaxTokens,
      ...(sampling.temperature === undefined
        ? {}
        : { temperature: shortestFloat32(sampling.temperature) }),
      ...(sampling.topP === undefined ? {} : { top_p: shortestFloat32(sampling.topP) }),
      // Not in OpenAI's own API, but vLLM, llama.cpp, TGI and Ollama read it; sent only when set.
      ...(sampling.topK === undefined ? {} : { top_k: sampling.topK }),
      ...(seed === undefined ? {} : { seed: Number(seed) }),
      ...(request.stop.length === 0 ? {} : { stop: request.stop }),
      // OpenAI's own penalties; repetition_penalty, min_p and stop_token_ids are vLLM's (and
      // llama.cpp's) extras, sent only when set, as top_k.
      ...optionalFloat("presence_penalty", sampling.presencePenalty),
      ...optionalFloat("frequency_penalty", sampling.frequencyPenalty),
      ...optionalFloat("repetition_penalty", sampling.repetitionPenalty),
      ...optionalFloat("min_p", sampling.minP),
      ...(request.stopTokenIds === undefined || request.stopTokenIds.length === 0
        ? {}
        : { stop_token_ids: request.stopTokenIds }),
    };
    return input.kind === "messages"
      ? {
          path: "/chat/completions",
          body: JSON.stringify({
            ...common,
            messages: input.messages.map((m) => ({ role: m.role, content: m.content })),
          }),
        }
      : { path: "/completions", body: JSON.stringify({ ...common, prompt: input.text }) };
  }

  /** One generation's bookkeeping, ended exactly once however it ends. */
  interface Forwarded {
    readonly controller: AbortController;
    readonly timings: MutableTimings;
    readonly signal: AbortSignal;
    readonly detach: () => void;
    iterated: boolean;
    ended: boolean;
  }

  function end(forwarded: Forwarded, finishReason: string): void {
    if (forwarded.ended) return;
    forwarded.ended = true;
    forwarded.detach();
    forwarded.timings.endedAt ??= epochMs();
    metrics.generations.inc({ ...labels, finish_reason: finishReason });
    running.delete(forwarded.controller);
    metrics.inFlight.set(labels, running.size);
    if (running.size === 0) drained?.();
  }

  async function* stream(
    response: Promise<Dispatcher.ResponseData>,
    forwarded: Forwarded,
  ): AsyncGenerator<GenerationEvent> {
    const { controller, timings, signal } = forwarded;
    let finishedAs: string | undefined;
    let body: Dispatcher.ResponseData["body"] | undefined;
    try {
      const answer = await response;
      body = answer.body;
      if (answer.statusCode !== 200) {
        throw upstreamStatusError(upstreamName, answer.statusCode, await readBounded(answer.body));
      }
      let finish: { reason: string; stopReason: unknown } | undefined;
      let usage: { promptTokens: number; completionTokens: number } | undefined;
      let chunks = 0;
      let lastTextAt: number | undefined;
      for await (const part of readOpenAiStream(answer.body)) {
        if (part.type === "text") {
          const now = epochMs();
          if (lastTextAt === undefined) {
            timings.prefillEndAt = now;
            metrics.timeToFirstToken.observe(labels, (now - timings.admittedAt) / 1000);
            metrics.prefillTime.observe(labels, (now - (timings.prefillStartAt ?? now)) / 1000);
          } else {
            metrics.interTokenLatency.observe(labels, (now - lastTextAt) / 1000);
          }
          lastTextAt = now;
          chunks++;
          yield { type: "text", text: part.text, tokenIds: [] };
        } else if (part.type === "finish") {
          finish = part;
        } else {
          usage = part;
        }
      }
      if (finish === undefined) {
        throw new EngineError(
          "unavailable",
          `the upstream ${upstreamName} ended the stream before the generation finished`,
        );
      }
      // Without usage (an upstream that ignores stream_options), each content chunk counts as
      // one token: vLLM, TGI and llama.cpp send one per token.
      const counts = usage ?? { promptTokens: 0, completionTokens: chunks };
      const finishReason = finishReasonOf(finish.reason, finish.stopReason);
      const endedAt = epochMs();
      timings.endedAt = endedAt;
      metrics.promptTokens.inc(labels, counts.promptTokens);
      metrics.completionTokens.inc(labels, counts.completionTokens);
      metrics.e2eLatency.observe(labels, (endedAt - timings.admittedAt) / 1000);
      if (timings.prefillEndAt !== undefined) {
        metrics.decodeTime.observe(labels, (endedAt - timings.prefillEndAt) / 1000);
      }
      metrics.promptLength.observe(labels, counts.promptTokens);
      metrics.generationLength.observe(labels, counts.completionTokens);
      finishedAs = finishReason;
      yield { type: "finished", finishReason, text: "", tokenIds: [], usage: counts };
    } catch (error) {
      if (signal.aborted) {
        finishedAs = "cancelled";
        throw abortError(signal.reason);
      }
      finishedAs = "error";
      throw upstreamTransportError(upstreamName, error, timeoutMs);
    } finally {
      // Whatever ended the generation early (a client gone, an error): closing the connection
      // is how the upstream learns to stop. A finished body was read to its end already.
      if (finishedAs === undefined || finishedAs === "error" || finishedAs === "cancelled") {
        controller.abort();
        body?.destroy();
      }
      end(forwarded, finishedAs ?? "cancelled");
    }
  }

  /** OpenAI's API has no tokenizer endpoint (vLLM's /tokenize is its own), so neither call exists. */
  const noTokenizer = async (): Promise<never> => {
    throw new EngineError(
      "unimplemented",
      `model ${source.id} is served by an upstream over the OpenAI API, which has no tokenizer endpoint`,
    );
  };

  return {
    description,
    ready: true,
    tokenize: noTokenizer,
    detokenize: noTokenizer,
    submit(request, signal): Generation {
      if (closing) throw new EngineError("unavailable", "the gateway is shutting down");
      if (signal.aborted) throw abortError(signal.reason);
      if (running.size >= options.maxInFlight) {
        throw new EngineError(
          "resource_exhausted",
          `model ${source.id} is at capacity (${options.maxInFlight} requests in flight upstream): retry later`,
        );
      }
      if (request.topLogprobs !== undefined) {
        // Refused rather than dropped: a caller that asked for them must not get a silent none.
        throw new EngineError(
          "unimplemented",
          `model ${source.id} is served by an upstream, and log probabilities are not forwarded from upstreams`,
        );
      }
      const { path, body } = bodyOf(request);
      const controller = new AbortController();
      const now = epochMs();
      const timings: MutableTimings = {
        admittedAt: now,
        scheduledAt: now,
        prefillStartAt: now,
        prefillEndAt: undefined,
        endedAt: undefined,
      };
      running.add(controller);
      metrics.inFlight.set(labels, running.size);
      const onAbort = () => {
        controller.abort(signal.reason);
        // Aborted before anyone iterated (a stream cancelled after its first message).
        if (!forwarded.iterated) end(forwarded, "cancelled");
      };
      const forwarded: Forwarded = {
        controller,
        timings,
        signal,
        detach: () => signal.removeEventListener("abort", onAbort),
        iterated: false,
        ended: false,
      };
      signal.addEventListener("abort", onAbort, { once: true });
      const response = undiciRequest(`${source.baseUrl}${path}`, {
        dispatcher: agent,
        method: "POST",
        headers,
        body,
        signal: controller.signal,
      });
      // Read by the iterator; a request aborted before anyone iterates must not go unhandled.
      response.catch(() => {});
      return {
        model: source.id,
        timings,
        [Symbol.asyncIterator]() {
          if (forwarded.iterated) throw new Error("a generation can be iterated once");
          forwarded.iterated = true;
          return stream(response, forwarded);
        },
      };
    },
    async close(graceMs) {
      closing = true;
      if (running.size > 0) {
        const done = new Promise<void>((resolve) => {
          drained = resolve;
        });
        let timer: NodeJS.Timeout | undefined;
        const timeout = new Promise<void>((resolve) => {
          timer = setTimeout(resolve, graceMs);
        });
        await Promise.race([done, timeout]);
        clearTimeout(timer);
      }
      for (const controller of running) {
        controller.abort(
          new EngineError("unavailable", "the gateway shut down before this finished"),
        );
      }
      await agent.destroy();
    },
  };
}

/**
 * The shortest decimal that is the same float32: Protobuf's `float` fields hold 0.9 as
 * 0.8999999761581421, and the upstream should read what the client wrote.
 */
function shortestFloat32(value: number): number {
  for (let digits = 1; digits < 9; digits++) {
    const decimal = Number(value.toPrecision(digits));
    if (Math.fround(decimal) === Math.fround(value)) return decimal;
  }
  return value;
}

/** `{ [name]: value }` for a float32 field that is set, `{}` otherwise. */
function optionalFloat(name: string, value: number | undefined): Record<string, number> {
  return value === undefined ? {} : { [name]: shortestFloat32(value) };
}

/** OpenAI's finish reasons in Parley's terms; vLLM's `stop_reason` tells a stop string from EOS. */
function finishReasonOf(reason: string, stopReason: unknown): FinishReason {
  if (reason === "length") return "length";
  if (reason === "stop" && typeof stopReason === "string") return "stop_sequence";
  return "stop";
}

/** Reads at most {@link maxErrorBodyBytes} of an error body, then drops the rest. */
async function readBounded(body: Dispatcher.ResponseData["body"]): Promise<string> {
  const chunks: Buffer[] = [];
  let bytes = 0;
  for await (const chunk of body) {
    chunks.push(chunk as Buffer);
    bytes += (chunk as Buffer).byteLength;
    if (bytes >= maxErrorBodyBytes) break;
  }
  return Buffer.concat(chunks).subarray(0, maxErrorBodyBytes).toString("utf8");
}

/** The model's context length from the upstream's `/models` (vLLM's `max_model_len`), else 0. */
async function probeContextLength(
  agent: Agent,
  source: UpstreamModelSource,
  headers: Record<string, string>,
  timeoutMs: number,
): Promise<number> {
  const response = await undiciRequest(`${source.baseUrl}/models`, {
    dispatcher: agent,
    method: "GET",
    headers: headers.authorization === undefined ? {} : { authorization: headers.authorization },
    signal: AbortSignal.timeout(timeoutMs),
  });
  if (response.statusCode !== 200) {
    await response.body.dump();
    throw new Error(`GET ${source.baseUrl}/models answered HTTP ${response.statusCode}`);
  }
  const list = (await response.body.json()) as {
    data?: readonly { id?: unknown; max_model_len?: unknown; context_length?: unknown }[];
  };
  const entry = list.data?.find((model) => model.id === source.remoteModel);
  if (entry === undefined) {
    throw new Error(`${source.baseUrl}/models does not list ${source.remoteModel}`);
  }
  const length = entry.max_model_len ?? entry.context_length;
  return typeof length === "number" && Number.isSafeInteger(length) && length > 0 ? length : 0;
}
