/**
 * @module One generation inside the worker: its prompt, the tokens it produced, its KV cache
 * while it is out of the batch, and the stop conditions that end it.
 */
import type { FinishReason, TokenLogprob } from "../engine.js";
import type { FromWorker } from "../worker-protocol.js";
import { IncrementalDetokenizer } from "./incremental-detokenizer.js";
import type { KvCache } from "./kv-cache.js";
import type { PrefixHit } from "./prefix-cache.js";
import type { SampledToken, Sampler } from "./sampler.js";
import { StopMatcher } from "./stop-matcher.js";

/** Everything a sequence needs to decide when to stop. */
export interface SequenceOptions {
  readonly id: number;
  readonly promptIds: readonly number[];
  readonly maxTokens: number;
  readonly contextLength: number;
  /** End-of-sequence ids and the request's stop_token_ids: they end it with reason `stop`. */
  readonly eosTokenIds: ReadonlySet<number>;
  readonly stop: readonly string[];
  readonly sampler: Sampler;
  readonly decode: (ids: readonly number[]) => string;
  /** One token's text on its own, for log probabilities. */
  readonly tokenText: (id: number) => string;
  readonly credits: number;
}

/** The event a sequence emits for one accepted token. */
export type TokenEvent = Extract<FromWorker, { type: "text" | "finished" }>;

/** A generation's state in the worker. */
export class Sequence {
  readonly id: number;
  readonly promptIds: readonly number[];
  readonly sampler: Sampler;
  readonly generated: number[] = [];
  /** Prompt tokens already run through the model. */
  prefilled = 0;
  /** Prompt tokens whose KV came from the prefix cache. */
  cachedPromptTokens = 0;
  /** Positions in this sequence's KV cache. */
  cachedLength = 0;
  /** The cache while the sequence is outside the batch (after prefill, or paused). */
  kv: KvCache | undefined;
  /** The sampled token to feed next; undefined until prefill ends or while finished. */
  pendingToken: number | undefined;
  /** Text events the consumer is ready for. */
  credits: number;
  /** Set once finished or cancelled: the sequence leaves at the next regrouping. */
  done = false;
  /** When its first prefill chunk started (`epochMs()`), for the first token's event. */
  prefillStartAt: number | undefined;
  private readonly options: SequenceOptions;
  private readonly detokenizer: IncrementalDetokenizer;
  private readonly stopMatcher: StopMatcher;

  constructor(options: SequenceOptions) {
    this.options = options;
    this.id = options.id;
    this.promptIds = options.promptIds;
    this.sampler = options.sampler;
    this.credits = options.credits;
    this.detokenizer = new IncrementalDetokenizer(options.decode);
    this.stopMatcher = new StopMatcher(options.stop);
  }

  /** Starts from a cached prefix: its first `hit.tokens` prompt tokens need no prefill. */
  resumeFrom(hit: PrefixHit): void {
    this.cachedPromptTokens = hit.tokens;
    this.kv = hit.kv;
    this.prefilled = hit.tokens;
    this.cachedLength = hit.tokens;
  }

  /** The tokens whose KV the cache holds: the prompt, then every generated token fed back. */
  cachedTokens(): number[] {
    return [...this.promptIds, ...this.generated].slice(0, this.cachedLength);
  }

  /** Whether the sequence is ready for a decode step. */
  get decodable(): boolean {
    return !this.done && this.pendingToken !== undefined && this.credits > 0;
  }

  /** Accepts a sampled token and says what to send: more text, or the end. */
  accept(sampled: SampledToken): TokenEvent {
    const token = sampled.tokenId;
    const logprobs = this.logprobsOf(sampled);
    this.generated.push(token);
    const isEos = this.options.eosTokenIds.has(token);
    const scan = this.stopMatcher.push(isEos ? "" : this.detokenizer.push(token));
    if (scan.stopped) return this.finish("stop_sequence", scan.text, token, logprobs);
    const reason: FinishReason | undefined = isEos
      ? "stop"
      : this.generated.length >= this.options.maxTokens
        ? "length"
        : this.promptIds.length + this.generated.length >= this.options.contextLength
          ? "context_length"
          : undefined;
    if (reason === undefined) {
      this.pendingToken = token;
      this.credits--;
      return { type: "text", id: this.id, text: scan.text, tokenIds: [token], logprobs };
    }
    // The end: release what the detokenizer and the stop matcher still hold.
    const tail = this.stopMatcher.push(this.detokenizer.flush());
    if (tail.stopped) return this.finish("stop_sequence", scan.text + tail.text, token, logprobs);
    return this.finish(reason, scan.text + tail.text + this.stopMatcher.flush(), token, logprobs);
  }

  /** The event's logprobs field: absent unless the request asked for them. */
  private logprobsOf(sampled: SampledToken): TokenLogprob[] | undefined {
    const { logprobs } = sampled;
    if (logprobs === undefined) return undefined;
    const { tokenText } = this.options;
    return [
      {
        tokenId: sampled.tokenId,
        token: tokenText(sampled.tokenId),
        logprob: logprobs.logprob,
        top: logprobs.top.map((alt) => ({ ...alt, token: tokenText(alt.tokenId) })),
      },
    ];
  }

  private finish(
    finishReason: FinishReason,
    text: string,
    token: number,
    logprobs: TokenLogprob[] | undefined,
  ): TokenEvent {
    this.done = true;
    this.pendingToken = undefined;
    this.kv = undefined;
    return {
      type: "finished",
      id: this.id,
      finishReason,
      text,
      tokenIds: [token],
      logprobs,
      usage: {
        promptTokens: this.promptIds.length,
        completionTokens: this.generated.length,
        cachedPromptTokens: this.cachedPromptTokens,
      },
    };
  }
}
