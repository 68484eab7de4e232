/**
 * @module The main-thread end of one generation: events from the worker wait here until the
 * service's async generator pulls them. Pulling returns credit to the worker, so a slow reader
 * pauses its own sequence instead of filling an unbounded buffer.
 */
import type { Generation, GenerationEvent } from "./engine.js";
import type { EngineError } from "./engine-error.js";

/** What a channel asks of its owner. */
export interface GenerationChannelHooks {
  /** The consumer took `count` text events. */
  readonly onConsumed: (count: number) => void;
  /** The consumer stopped before the end: stop generating. */
  readonly onAbandoned: () => void;
}

/** A generation's event buffer and the async iterable over it. */
export class GenerationChannel implements Generation {
  readonly model: string;
  private readonly events: GenerationEvent[] = [];
  private error: EngineError | undefined;
  private wake: (() => void) | undefined;
  private iterated = false;
  private readonly hooks: GenerationChannelHooks;

  constructor(model: string, hooks: GenerationChannelHooks) {
    this.model = model;
    this.hooks = hooks;
  }

  /** Adds an event from the worker. */
  push(event: GenerationEvent): void {
    this.events.push(event);
    this.signal();
  }

  /** Ends the generation with an error once the buffered events are consumed. */
  fail(error: EngineError): void {
    this.error ??= error;
    this.signal();
  }

  /**
   * Takes every buffered event as one: a reader that fell behind gets one message carrying all
   * the text and token ids it missed (and the end, if that came too) instead of many small ones,
   * so a slow or busy connection catches up with fewer frames. Returns the credits it consumed.
   */
  private takeBuffered(): GenerationEvent | undefined {
    let merged = this.events.shift();
    if (merged === undefined) return undefined;
    let texts = merged.type === "text" ? 1 : 0;
    while (merged.type === "text" && this.events.length > 0) {
      const next = this.events.shift() as GenerationEvent;
      if (next.type === "text") texts++;
      merged = {
        ...next,
        text: merged.text + next.text,
        tokenIds: [...merged.tokenIds, ...next.tokenIds],
        logprobs:
          merged.logprobs === undefined || next.logprobs === undefined
            ? undefined
            : [...merged.logprobs, ...next.logprobs],
      };
    }
    if (texts > 0) this.hooks.onConsumed(texts);
    return merged;
  }

  private signal(): void {
    this.wake?.();
    this.wake = undefined;
  }

  async *[Symbol.asyncIterator](): AsyncGenerator<GenerationEvent, void, undefined> {
    if (this.iterated) throw new Error("a generation can be iterated once");
    this.iterated = true;
    let finished = false;
    try {
      for (;;) {
        const event = this.takeBuffered();
        if (event !== undefined) {
          finished = event.type === "finished";
          yield event;
          if (finished) return;
          continue;
        }
        if (this.error !== undefined) {
          finished = true;
          throw this.error;
        }
        await new Promise<void>((resolve) => {
          this.wake = resolve;
        });
      }
    } finally {
      if (!finished) this.hooks.onAbandoned();
    }
  }
}
