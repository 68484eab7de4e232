/**
 * @module Child entry of the transformers.js peer: `node peer-transformers.js <sse|in-process>
 * <port> <localModelPath> <name>`. The model is loaded the way transformers.js documents for a
 * Node server with no network (`env.allowRemoteModels = false`, `env.localModelPath`,
 * `local_files_only`, `AutoModelForCausalLM` + `AutoTokenizer`, greedy `generate` with a
 * `TextStreamer`), on its default session options. `sse` serves `GET /v1/stream?prompt=&tokens=`
 * from Fastify as Server-Sent Events, one `{"tokenIds":[id]}` event per token from the streamer's
 * token callback and one `{"text":…}` event per piece of text it finalizes. `in-process` answers
 * `run` over IPC: N concurrent `generate` calls in this process, stamped in the streamer's token
 * callback, the peer's ceiling without HTTP. Both answer `ids` (the greedy token ids of one
 * prompt) and `stats`. This is the bench's peer: it never belongs in the product.
 */
import {
  AutoModelForCausalLM,
  AutoTokenizer,
  env,
  type PreTrainedModel,
  type PreTrainedTokenizer,
  TextStreamer,
} from "@huggingface/transformers";
import Fastify from "fastify";
import { serveIpc } from "./ipc-channel.js";
import { createProcessStatsHandlers } from "./process-stats.js";
import { monotonicMs } from "./summary-stats.js";

/** What an in-process run reports: the fields of a stream load result it can fill. */
export interface PeerRunResult {
  readonly tokens: number;
  readonly elapsedMs: number;
  readonly ttftMs: number[];
  readonly arrivals: Record<string, number[]>;
}

interface Loaded {
  readonly tokenizer: PreTrainedTokenizer;
  readonly model: PreTrainedModel;
}

async function load(localModelPath: string, name: string): Promise<Loaded> {
  env.allowRemoteModels = false;
  env.allowLocalModels = true;
  env.localModelPath = localModelPath;
  const tokenizer = await AutoTokenizer.from_pretrained(name, { local_files_only: true });
  const model = await AutoModelForCausalLM.from_pretrained(name, {
    local_files_only: true,
    dtype: "fp32",
    device: "cpu",
  });
  return { tokenizer, model };
}

/** One greedy completion; `onToken` runs for every generated token as the streamer sees it. */
async function generate(
  { tokenizer, model }: Loaded,
  prompt: string,
  maxNewTokens: number,
  onToken: (id: number) => void,
  onText: (text: string) => void = () => {},
): Promise<void> {
  const streamer = new TextStreamer(tokenizer, {
    skip_prompt: true,
    callback_function: onText,
    token_callback_function: (ids: bigint[]) => {
      for (const id of ids) onToken(Number(id));
    },
  });
  const inputs = tokenizer(prompt);
  await model.generate({ ...inputs, max_new_tokens: maxNewTokens, do_sample: false, streamer });
}

async function runInProcess(
  loaded: Loaded,
  streams: number,
  prompt: string,
  tokens: number,
): Promise<PeerRunResult> {
  const started = monotonicMs();
  const arrivals: Record<string, number[]> = {};
  const ttftMs: number[] = [];
  let count = 0;
  await Promise.all(
    Array.from({ length: streams }, (_, i) => {
      const stamps: number[] = [];
      arrivals[String(i)] = stamps;
      return generate(loaded, prompt, tokens, () => {
        const now = monotonicMs();
        if (stamps.length === 0) ttftMs.push(now - started);
        stamps.push(now);
        count++;
      });
    }),
  );
  return { tokens: count, elapsedMs: monotonicMs() - started, ttftMs, arrivals };
}

const [mode = "", port = "", localModelPath = "", name = ""] = process.argv.slice(2);
const handlers = createProcessStatsHandlers();
const ready = (async () => {
  const loaded = await load(localModelPath, name);
  handlers.set("ids", async (request) => {
    const ids: number[] = [];
    await generate(loaded, String(request.prompt), Number(request.tokens), (id) => ids.push(id));
    return ids;
  });
  if (mode === "in-process") {
    handlers.set("run", (request) =>
      runInProcess(loaded, Number(request.streams), String(request.prompt), Number(request.tokens)),
    );
    return;
  }
  if (mode !== "sse") throw new Error(`unknown mode "${mode}"; expected sse or in-process`);
  const app = Fastify({ logger: false });
  app.get("/v1/stream", async (request, reply) => {
    const query = request.query as { prompt?: string; tokens?: string };
    reply.hijack();
    const response = reply.raw;
    response.writeHead(200, { "content-type": "text/event-stream", "cache-control": "no-cache" });
    try {
      await generate(
        loaded,
        query.prompt ?? "",
        Number(query.tokens) || 16,
        (id) => response.write(`data: {"tokenIds":[${id}]}\n\n`),
        (text) => response.write(`data: ${JSON.stringify({ text })}\n\n`),
      );
    } finally {
      response.end();
    }
  });
  await app.listen({ port: Number(port), host: "127.0.0.1" });
})();
handlers.set("ready", async () => {
  await ready;
  return null;
});
serveIpc(handlers);
