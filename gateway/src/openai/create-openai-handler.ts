/**
 * @module The OpenAI-compatible routes on the gateway's port: `POST /v1/chat/completions`,
 * `POST /v1/completions` (both also as Server-Sent Events), `GET /v1/models` and
 * `GET /v1/models/{id}`. A thin transport: bodies become the same `GenerateRequest` gRPC and
 * Connect send, the service layer validates and runs them, and its `ConnectError`s become
 * OpenAI's error object. Each call is counted and reported like an RPC (protocol "openai"), gets
 * the server's deadline, is aborted when its client goes away or the server shuts down, and its
 * SSE writes wait for the socket to drain before the next event is pulled from the engine, so a
 * slow reader slows its own generation as on the other protocols.
 */
import { performance } from "node:perf_hooks";
import { Code, ConnectError } from "@connectrpc/connect";
import type { Logger } from "pino";
import {
  flushHeaders,
  type NodeRequest,
  type NodeResponse,
  writeChunk,
  writeHead,
} from "../http/node-http.js";
import type { CallTracer } from "../observability/call-tracer.js";
import type { RpcMetrics } from "../observability/rpc-metrics.js";
import { createRpcCall, type RpcCall } from "../rpc/rpc-call.js";
import { createRpcCallReporter } from "../rpc/rpc-call-reporter.js";
import type { GenerationService } from "../services/generation-service.js";
import { OpenAiError, toOpenAiError } from "./openai-error.js";
import { type OpenAiRequest, type OpenAiRoute, parseOpenAiRequest } from "./openai-request.js";
import {
  completionResponse,
  createChunker,
  modelObject,
  responseHead,
  usageChunk,
} from "./openai-responses.js";

/** Options of {@link createOpenAiHandler}. */
export interface OpenAiHandlerOptions {
  readonly generation: GenerationService;
  /** Largest request body; larger ones get 413. */
  readonly readMaxBytes: number;
  /** Every call's deadline: OpenAI requests carry none, so the server's longest applies. */
  readonly maxTimeoutMs: number;
  /** Aborting it aborts every call with its reason. */
  readonly shutdownSignal: AbortSignal;
  readonly metrics: RpcMetrics;
  readonly logger: Logger;
  /** Records each finished call as a trace; absent: no tracing. */
  readonly tracer?: CallTracer | undefined;
}

/** The `/v1` part of the gateway's request handling. */
export interface OpenAiHandler {
  /** Serves the request when its path is under `/v1/`; returns false otherwise. */
  handle(request: NodeRequest, response: NodeResponse): boolean;
  /** The number of calls in progress. */
  inFlight(): number;
  /** Resolves once no call is in progress. */
  idle(): Promise<void>;
}

/** What a call does once its route is known. */
type Serve = (call: Call) => Promise<void>;

interface Call {
  readonly record: RpcCall;
  readonly request: NodeRequest;
  readonly response: NodeResponse;
  readonly signal: AbortSignal;
}

/** The base of `/v1/models` `created` times: when the models were loaded, near enough. */
const startedAt = Math.floor(Date.now() / 1000);

/** Creates the handler. */
export function createOpenAiHandler(options: OpenAiHandlerOptions): OpenAiHandler {
  const { generation } = options;
  const reporter = createRpcCallReporter(options);
  let inFlight = 0;
  let idleWaiters: (() => void)[] = [];

  const generate =
    (route: OpenAiRoute): Serve =>
    async (call) => {
      const body = await readJson(call, options.readMaxBytes);
      const parsed = parseOpenAiRequest(route, body);
      call.record.messagesReceived++;
      if (parsed.stream) {
        await streamGeneration(call, parsed);
      } else {
        const completed = await generation.complete(parsed.generate, call.signal, call.record);
        writeJson(call, 200, completionResponse(route, completed, parsed.generate.logprobs));
      }
    };

  async function streamGeneration(call: Call, parsed: OpenAiRequest): Promise<void> {
    const { route, includeUsage } = parsed;
    const started = generation.start(parsed.generate, call.signal, call.record);
    const head = responseHead(route, started.model);
    const chunk = createChunker(route, head, includeUsage);
    const wantsLogprobs = parsed.generate.logprobs;
    const { response } = call;
    writeHead(response, 200, {
      "content-type": "text/event-stream; charset=utf-8",
      "cache-control": "no-cache",
      // nginx buffers responses unless told not to; tokens must pass as they come.
      "x-accel-buffering": "no",
    });
    // Admitted: send the headers (and, for chat, OpenAI's role chunk) before prefill is done.
    if (route === "chat") {
      await sendEvent(call, chunk({ role: "assistant", text: "" }));
    } else {
      flushHeaders(response);
    }
    try {
      for await (const event of started.events) {
        const logprobs = wantsLogprobs ? (event.logprobs ?? []) : undefined;
        // Steps with no text (held back, or before the first token) make no chunk, unless they
        // carry tokens whose logprobs were asked for.
        if (event.text.length > 0 || (logprobs !== undefined && logprobs.length > 0)) {
          await sendEvent(call, chunk({ text: event.text, logprobs }));
        }
        if (event.type === "text") {
          continue;
        }
        await sendEvent(call, chunk({}, event.finishReason));
        if (includeUsage) {
          await sendEvent(call, usageChunk(route, head, event.usage));
        }
        await send(call, "data: [DONE]\n\n");
        response.end();
      }
    } catch (error) {
      // The status line is gone: OpenAI (and vLLM) report a late failure as an error event, which
      // the SDKs raise. No [DONE] follows, so the stream cannot pass for a complete one.
      const failure = toOpenAiError(error);
      if (!response.destroyed && failure.status !== 499) {
        await send(call, `data: ${JSON.stringify(failure)}\n\n`).catch(() => {});
        response.end();
      }
      throw error;
    }
  }

  const listModels: Serve = async (call) => {
    writeJson(call, 200, {
      object: "list",
      data: generation.models().map((model) => modelObject(model, startedAt)),
    });
  };

  const getModel =
    (id: string): Serve =>
    async (call) => {
      const model = generation.models().find((candidate) => candidate.id === id);
      if (model === undefined) {
        throw new OpenAiError(404, `model "${id}" is not loaded`, "model", "model_not_found");
      }
      writeJson(call, 200, modelObject(model, startedAt));
    };

  /** The route of a path and method: the metric label and what serves it. */
  function route(
    method: string | undefined,
    path: string,
  ): { readonly name: string; readonly serve: Serve } | OpenAiError {
    const allow = (allowed: string, name: string, serve: Serve) =>
      method === allowed || (allowed === "GET" && method === "HEAD")
        ? { name, serve }
        : new OpenAiError(405, `${path} takes ${allowed} requests`, null, "method_not_allowed");
    if (path === "/v1/chat/completions") {
      return allow("POST", "v1/chat/completions", generate("chat"));
    }
    if (path === "/v1/completions") {
      return allow("POST", "v1/completions", generate("completion"));
    }
    if (path === "/v1/models") {
      return allow("GET", "v1/models", listModels);
    }
    if (path.startsWith("/v1/models/") && path.length > "/v1/models/".length) {
      // Model ids may hold slashes (hf:org/name), so the id is the whole rest of the path.
      return allow("GET", "v1/models/{id}", getModel(decodePath(path.slice("/v1/models/".length))));
    }
    return new OpenAiError(404, `there is no route ${method ?? ""} ${path}`, null, "unknown_url");
  }

  function handle(request: NodeRequest, response: NodeResponse): boolean {
    const path = (request.url ?? "").split("?", 1)[0] ?? "";
    if (!path.startsWith("/v1/") && path !== "/v1") {
      return false;
    }
    const found = route(request.method, path);
    if (found instanceof OpenAiError) {
      writeError(response, found);
      request.resume();
      return true;
    }
    const record = createRpcCall("openai", found.name, request.headers);
    response.setHeader("x-request-id", record.requestId);
    inFlight++;
    reporter.started(record);
    void run(found.serve, { record, request, response });
    return true;
  }

  async function run(serve: Serve, parts: Omit<Call, "signal">): Promise<void> {
    const { record, request, response } = parts;
    const begun = performance.now();
    const controller = new AbortController();
    const abort = (reason: ConnectError) => {
      if (!controller.signal.aborted) controller.abort(reason);
    };
    const onClose = () => abort(new ConnectError("the client went away", Code.Canceled));
    const onShutdown = () =>
      abort(ConnectError.from(options.shutdownSignal.reason, Code.Unavailable));
    const deadline = setTimeout(
      () => abort(new ConnectError("the deadline passed", Code.DeadlineExceeded)),
      options.maxTimeoutMs,
    );
    response.once("close", onClose);
    options.shutdownSignal.addEventListener("abort", onShutdown, { once: true });
    if (options.shutdownSignal.aborted) onShutdown();
    let failure: OpenAiError | undefined;
    try {
      await serve({ ...parts, signal: controller.signal });
    } catch (error) {
      record.handlerError = error;
      failure = toOpenAiError(error);
      if (!response.headersSent && !response.destroyed) {
        writeError(response, failure);
      } else if (!response.writableEnded) {
        response.destroy();
      }
    } finally {
      clearTimeout(deadline);
      response.off("close", onClose);
      options.shutdownSignal.removeEventListener("abort", onShutdown);
    }
    reporter.finished(record, {
      error: failure === undefined ? undefined : toConnectCode(failure),
      durationMs: performance.now() - begun,
      httpVersion: request.httpVersion,
    });
    inFlight--;
    if (inFlight === 0) {
      const waiters = idleWaiters;
      idleWaiters = [];
      for (const resolve of waiters) resolve();
    }
  }

  return {
    handle,
    inFlight: () => inFlight,
    idle: () =>
      inFlight === 0 ? Promise.resolve() : new Promise((resolve) => idleWaiters.push(resolve)),
  };
}

/** The status a call's report carries: the service's own error, else one made from the 4xx. */
function toConnectCode(failure: OpenAiError): ConnectError {
  if (failure.cause instanceof ConnectError) {
    return failure.cause;
  }
  const code =
    failure.status === 404
      ? Code.NotFound
      : failure.status === 413
        ? Code.ResourceExhausted
        : failure.status < 500
          ? Code.InvalidArgument
          : Code.Internal;
  return new ConnectError(failure.message, code);
}

/** Reads and decodes the JSON body, refusing more than `maxBytes`. */
async function readJson(call: Call, maxBytes: number): Promise<unknown> {
  const chunks: Buffer[] = [];
  let bytes = 0;
  try {
    for await (const chunk of call.request as AsyncIterable<Buffer>) {
      bytes += chunk.byteLength;
      call.record.bytesReceived += chunk.byteLength;
      if (bytes > maxBytes) {
        throw new OpenAiError(413, `the request body is larger than ${maxBytes} bytes`, null);
      }
      chunks.push(chunk);
    }
  } catch (error) {
    if (error instanceof OpenAiError) throw error;
    // Node's "aborted" / ECONNRESET: the client left while sending.
    throw new ConnectError("the client went away", Code.Canceled, undefined, undefined, error);
  }
  try {
    return JSON.parse(Buffer.concat(chunks).toString("utf8"));
  } catch (error) {
    throw new OpenAiError(400, "the request body is not valid JSON", null, null, error);
  }
}

/** Writes one SSE event holding `value` as JSON. */
function sendEvent(call: Call, value: unknown): Promise<void> {
  call.record.messagesSent++;
  return send(call, `data: ${JSON.stringify(value)}\n\n`);
}

/**
 * Writes `text` and waits until the socket took it (Node's `drain`), or the response closed:
 * the next engine event is pulled only then, which is what passes backpressure to the engine.
 */
async function send(call: Call, text: string): Promise<void> {
  const { response } = call;
  if (response.destroyed) {
    throw new ConnectError("the client went away", Code.Canceled);
  }
  const bytes = Buffer.from(text, "utf8");
  call.record.bytesSent += bytes.byteLength;
  if (writeChunk(response, bytes)) {
    return;
  }
  await new Promise<void>((resolve) => {
    const done = () => {
      response.off("drain", done);
      response.off("close", done);
      resolve();
    };
    response.on("drain", done);
    response.on("close", done);
  });
}

function writeJson(call: Call, status: number, value: unknown): void {
  const text = JSON.stringify(value);
  call.record.messagesSent++;
  call.record.bytesSent += Buffer.byteLength(text);
  writeHead(call.response, status, { "content-type": "application/json" });
  if (call.request.method === "HEAD") {
    call.response.end();
  } else {
    call.response.end(text);
  }
}

/** Writes OpenAI's error object; 499 (client gone) has nobody to read it. */
export function writeError(response: NodeResponse, error: OpenAiError): void {
  if (error.status === 499 || response.destroyed) {
    response.destroy();
    return;
  }
  const headers: Record<string, string> = { "content-type": "application/json" };
  if (error.status === 401) headers["www-authenticate"] = "Bearer";
  if (error.status === 405) headers.allow = error.message.includes("POST") ? "POST" : "GET, HEAD";
  writeHead(response, error.status, headers);
  response.end(JSON.stringify(error));
}

function decodePath(segment: string): string {
  try {
    return decodeURIComponent(segment);
  } catch {
    return segment;
  }
}
