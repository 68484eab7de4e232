/**
 * @module Request and answer with a model's worker for what is not a generation (tokenize,
 * detokenize): one promise per call, settled by the worker's answer with the same id, by the
 * caller's signal, or by the worker's death. The tokenizer lives in the worker (the main thread
 * does only I/O), so even these small calls cross the thread boundary.
 */
import type { Detokenization, Tokenization } from "./engine.js";
import { EngineError } from "./engine-error.js";
import type { FromWorker } from "./worker-protocol.js";

/** The answers a call can get, by the message type that carries them. */
interface Answers {
  readonly tokenized: Omit<Tokenization, "model">;
  readonly detokenized: Omit<Detokenization, "model">;
}

interface Pending {
  readonly expects: keyof Answers;
  readonly resolve: (value: Answers[keyof Answers]) => void;
  readonly reject: (error: EngineError) => void;
}

/** The calls waiting for their worker's answer. */
export class WorkerCalls {
  private readonly pending = new Map<number, Pending>();

  /**
   * Registers call `id`, then `send`s it. Aborting `signal` rejects at once with `abortError`;
   * the worker's late answer is then dropped.
   */
  call<K extends keyof Answers>(
    id: number,
    expects: K,
    signal: AbortSignal,
    abortError: (reason: unknown) => EngineError,
    send: () => void,
  ): Promise<Answers[K]> {
    if (signal.aborted) return Promise.reject(abortError(signal.reason));
    return new Promise<Answers[K]>((resolve, reject) => {
      const onAbort = () => {
        this.pending.delete(id);
        reject(abortError(signal.reason));
      };
      const done = () => signal.removeEventListener("abort", onAbort);
      this.pending.set(id, {
        expects,
        resolve: (value) => {
          done();
          // `settle` resolves a call only with the answer type it expects.
          resolve(value as Answers[K]);
        },
        reject: (error) => {
          done();
          reject(error);
        },
      });
      signal.addEventListener("abort", onAbort, { once: true });
      send();
    });
  }

  /** Settles the call a worker message answers; false when the message answers no call. */
  settle(message: FromWorker): boolean {
    if (!("id" in message)) return false;
    const call = this.pending.get(message.id);
    if (call === undefined) return false;
    this.pending.delete(message.id);
    if (message.type === "failed") {
      call.reject(new EngineError(message.code, message.message));
    } else if (message.type === "tokenized" && call.expects === "tokenized") {
      call.resolve({ tokenIds: message.tokenIds, tokens: message.tokens });
    } else if (message.type === "detokenized" && call.expects === "detokenized") {
      call.resolve({ text: message.text });
    } else {
      call.reject(new EngineError("internal", `the worker answered ${message.type}`));
    }
    return true;
  }

  /** Rejects every waiting call: their worker will not answer. */
  failAll(error: EngineError): void {
    const calls = [...this.pending.values()];
    this.pending.clear();
    for (const call of calls) call.reject(error);
  }
}
