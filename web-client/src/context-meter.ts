/**
 * @module How much of the model's context the conversation fills: the prompt and reply tokens
 * of its newest reply (the gateway's `usage`) against the model's `context_length` from
 * ListModels. A conversation past the context is refused by the gateway, so the meter warns
 * before that happens.
 */
import type { Turn } from "./conversation-store.js";

/** Options of `createContextMeter`. */
export interface ContextMeterOptions {
  /** Holds the meter; hidden while nothing is known. */
  readonly box: HTMLElement;
  readonly meter: HTMLMeterElement;
  readonly label: HTMLElement;
}

/** The meter's one operation. */
export interface ContextMeter {
  /** Shows the use of `turns` against `contextLength` (0 or undefined: unknown). */
  show(turns: readonly Turn[], contextLength: number | undefined): void;
}

/** The share of the context from which the meter warns. */
const warnAt = 0.9;

/** Wires the meter. */
export function createContextMeter(options: ContextMeterOptions): ContextMeter {
  const { box, meter, label } = options;
  return {
    show(turns, contextLength) {
      const used = contextUsed(turns);
      if (used === undefined || contextLength === undefined || contextLength === 0) {
        box.hidden = true;
        return;
      }
      box.hidden = false;
      meter.max = contextLength;
      meter.high = contextLength * warnAt;
      meter.optimum = 0;
      meter.value = Math.min(used, contextLength);
      const share = Math.round((used / contextLength) * 100);
      label.textContent = `${used.toLocaleString("en-US")} / ${contextLength.toLocaleString("en-US")}`;
      box.classList.toggle("context-use--full", used >= contextLength * warnAt);
      box.title =
        used >= contextLength * warnAt
          ? `The conversation fills ${share}% of the model's context: start a new chat soon`
          : `Context used by the conversation: ${share}% of ${contextLength.toLocaleString("en-US")} tokens`;
    },
  };
}

/** Prompt plus reply tokens of the newest reply that reported them. */
function contextUsed(turns: readonly Turn[]): number | undefined {
  for (let index = turns.length - 1; index >= 0; index--) {
    const turn = turns[index];
    if (turn?.role === "assistant" && turn.stats?.promptTokens !== undefined) {
      return turn.stats.promptTokens + turn.stats.completionTokens;
    }
  }
  return undefined;
}
