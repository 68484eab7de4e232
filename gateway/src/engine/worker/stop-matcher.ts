/**
 * @module Finds stop strings in streamed text. Text that could still become the start of a stop
 * string is held back until it cannot, so no part of a stop string ever reaches the client
 * (the leak vLLM #3574 describes).
 */

/** What to send after a piece of text arrived. */
export interface StopScan {
  /** Text that is safe to send now. */
  readonly text: string;
  /** Whether a stop string was reached: `text` ends right before it and generation must end. */
  readonly stopped: boolean;
}

/** Scans one sequence's text for its stop strings. */
export class StopMatcher {
  private held = "";

  constructor(private readonly stops: readonly string[]) {}

  /** Adds newly decoded text. */
  push(text: string): StopScan {
    if (this.stops.length === 0) return { text, stopped: false };
    const buffer = this.held + text;
    let first = -1;
    for (const stop of this.stops) {
      const at = buffer.indexOf(stop);
      if (at >= 0 && (first < 0 || at < first)) first = at;
    }
    if (first >= 0) {
      this.held = "";
      return { text: buffer.slice(0, first), stopped: true };
    }
    let hold = 0;
    for (const stop of this.stops) {
      for (let k = Math.min(stop.length - 1, buffer.length); k > hold; k--) {
        if (buffer.endsWith(stop.slice(0, k))) {
          hold = k;
          break;
        }
      }
    }
    this.held = buffer.slice(buffer.length - hold);
    return { text: buffer.slice(0, buffer.length - hold), stopped: false };
  }

  /** Releases held-back text when generation ends for another reason. */
  flush(): string {
    const rest = this.held;
    this.held = "";
    return rest;
  }
}
