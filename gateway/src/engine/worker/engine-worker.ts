/**
 * @module Entry point of a model's worker thread. It loads the model folder, the tokenizer and
 * the ONNX session, then turns `generate` messages into sequences for the batch decoder. All
 * inference happens here: onnxruntime-node's `session.run()` blocks the thread it runs on for the
 * whole step, so it must never run on the main thread.
 */
import { randomBytes } from "node:crypto";
import { type MessagePort, parentPort, workerData } from "node:worker_threads";
import { readModelFolder } from "../../models/model-folder.js";
import { EngineError } from "../engine-error.js";
import { setThisThreadNice } from "../thread-priority.js";
import type { FromWorker, ToWorker, WorkerConfig, WorkerGeneration } from "../worker-protocol.js";
import { createBatchDecoder } from "./batch-decoder.js";
import { createDecoderSession } from "./decoder-session.js";
import { createOutbox } from "./outbox.js";
import { createPrefixCache } from "./prefix-cache.js";
import { createPromptEncoder } from "./prompt-encoder.js";
import { createSampler } from "./sampler.js";
import { Sequence } from "./sequence.js";

function workerPort(): MessagePort {
  if (parentPort === null) throw new Error("engine-worker.js must run in a worker thread");
  return parentPort;
}

const port = workerPort();

const config = workerData as WorkerConfig;
const outbox = createOutbox({
  send: (batch) => port.postMessage(batch),
  intervalMs: config.streamIntervalMs,
});
const post = (message: FromWorker): void => outbox.post(message);

async function start(): Promise<void> {
  // Before the session exists, so that its onnxruntime threads start with it too.
  setThisThreadNice(config.nice);
  const folder = await readModelFolder(config.modelDir, config.variant);
  const encoder = createPromptEncoder(folder);
  const session = await createDecoderSession({
    graphPath: folder.graphPath,
    intraOpThreads: config.intraOpThreads,
    device: config.device,
    config: folder.config,
  });
  const kvPositions = new BigInt64Array(config.kvPositions);
  Atomics.store(kvPositions, 0, 0n); // a replacement worker starts from what its predecessor left
  // A reused prefix leaves the rest of the prompt to prefill on a non-empty past, which graphs
  // without chunked prefill cannot do.
  const prefixCache = createPrefixCache(
    session.layout,
    session.supportsChunkedPrefill ? config.prefixCacheBytes : 0,
  );
  const decoder = createBatchDecoder({
    session,
    prefillChunkTokens: config.prefillChunkTokens,
    post,
    kvPositions,
    prefixCache,
  });
  const eosTokenIds = new Set(folder.eosTokenIds);

  function sequenceFor(id: number, generation: WorkerGeneration): Sequence {
    const promptIds = encoder.encode(generation.input);
    if (promptIds.length === 0) {
      throw new EngineError("invalid_argument", "the prompt encodes to no tokens");
    }
    if (promptIds.length >= folder.contextLength) {
      throw new EngineError(
        "invalid_argument",
        `the prompt is ${promptIds.length} tokens; the model's context holds ${folder.contextLength}`,
      );
    }
    const { sampling } = generation;
    const stopTokenIds = generation.stopTokenIds ?? [];
    return new Sequence({
      id,
      promptIds,
      maxTokens: generation.maxTokens ?? config.defaultMaxTokens,
      contextLength: folder.contextLength,
      eosTokenIds:
        stopTokenIds.length === 0 ? eosTokenIds : new Set([...eosTokenIds, ...stopTokenIds]),
      stop: generation.stop,
      decode: encoder.decode,
      tokenText: encoder.tokenText,
      credits: generation.credits,
      sampler: createSampler(
        {
          temperature: sampling.temperature ?? folder.defaults.temperature ?? 1,
          topP: sampling.topP ?? folder.defaults.topP ?? 1,
          topK: sampling.topK ?? folder.defaults.topK ?? 0,
          minP: sampling.minP ?? 0,
          presencePenalty: sampling.presencePenalty ?? 0,
          frequencyPenalty: sampling.frequencyPenalty ?? 0,
          repetitionPenalty: sampling.repetitionPenalty ?? 1,
          seed: sampling.seed ?? randomBytes(8).readBigUInt64LE(),
          topLogprobs: generation.topLogprobs,
        },
        promptIds,
      ),
    });
  }

  /** Answers a tokenize or detokenize message; a failure answers `failed` with its id. */
  function answer(id: number, work: () => FromWorker): void {
    try {
      post(work());
    } catch (cause) {
      const error =
        cause instanceof EngineError
          ? cause
          : new EngineError("internal", "the tokenizer failed", { cause });
      post({ type: "failed", id, code: error.code, message: error.message });
    }
  }

  port.on("message", (message: ToWorker) => {
    switch (message.type) {
      case "generate": {
        try {
          const sequence = sequenceFor(message.id, message.generation);
          const hit = prefixCache.lookup(sequence.promptIds);
          if (hit !== undefined) sequence.resumeFrom(hit);
          post({
            type: "started",
            id: message.id,
            promptTokens: sequence.promptIds.length,
            cachedTokens: hit?.tokens ?? 0,
          });
          decoder.add(sequence);
        } catch (cause) {
          const error =
            cause instanceof EngineError
              ? cause
              : new EngineError("internal", "encoding the prompt failed", { cause });
          post({ type: "failed", id: message.id, code: error.code, message: error.message });
        }
        break;
      }
      case "cancel":
        decoder.cancel(message.id);
        break;
      case "credit":
        decoder.credit(message.id, message.count);
        break;
      case "tokenize":
        answer(message.id, () => {
          const tokenIds = encoder.encode(message.input, message.addSpecialTokens);
          const tokens = encoder.vocabularyEntries(tokenIds);
          return { type: "tokenized", id: message.id, tokenIds, tokens };
        });
        break;
      case "detokenize":
        answer(message.id, () => ({
          type: "detokenized",
          id: message.id,
          text: encoder.detokenize(message.tokenIds, message.skipSpecialTokens),
        }));
        break;
      case "shutdown":
        decoder.stop();
        break;
    }
  });

  post({
    type: "ready",
    facts: {
      contextLength: folder.contextLength,
      hasChatTemplate: folder.chatTemplate !== undefined,
      vocabSize: folder.vocabSize ?? session.vocabSize,
      dtype: session.layout.dtype,
      kvBytesPerPosition:
        session.layout.tensors *
        session.layout.kvHeads *
        session.layout.headDim *
        (session.layout.dtype === "float16" ? 2 : 4),
    },
  });
  await decoder.run();
  outbox.flush();
  // Ending on our own, between steps, is what keeps the process alive: terminating a thread
  // while onnxruntime's native code runs aborts the whole process.
  await session.release();
  process.exit(0);
}

start().catch((cause: unknown) => {
  post({ type: "load-failed", message: cause instanceof Error ? cause.message : String(cause) });
});
