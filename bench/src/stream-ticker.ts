/**
 * @module The token source of the streaming baselines: a "decode step" that writes the next
 * message to every open stream at once, as the engine's batch does, either as fast as the event
 * loop turns (`setImmediate`, one write per message so every message is its own frame) or on a
 * fixed pace grid. A stream whose socket asks for a pause skips steps until it drains. Each write
 * is stamped with the stream's key, like the gateway probe stamps token arrivals.
 */
import { monotonicMs } from "./summary-stats.js";

/** One response stream as the ticker drives it. */
export interface TickedStream {
  /** The key the client sent, to match stamps with the client's arrival times. */
  readonly key: string | undefined;
  /** Token messages to send before ending. */
  readonly tokens: number;
  /** Writes token message `index` (1-based); false when the socket buffer is full. */
  write(index: number): boolean;
  /** Ends the response after the last message. */
  end(): void;
  onceDrain(callback: () => void): void;
  readonly closed: boolean;
}

/** The shared step loop of one baseline server. */
export interface StreamTicker {
  add(stream: TickedStream): void;
  /** 0: as fast as possible; otherwise ms between steps. */
  setPace(ms: number): void;
  /** Write stamps per stream key since the last call (monotonic ms). */
  takeTrace(): Record<string, Float64Array>;
}

interface Entry {
  readonly stream: TickedStream;
  next: number;
  blocked: boolean;
  readonly times: number[];
}

/** Creates the ticker. */
export function createStreamTicker(): StreamTicker {
  const entries = new Set<Entry>();
  let traces: Entry[] = [];
  let paceMs = 0;
  let scheduled = false;
  let nextStep = 0;

  const step = () => {
    scheduled = false;
    for (const entry of entries) {
      if (entry.stream.closed) {
        entries.delete(entry);
        continue;
      }
      if (entry.blocked) continue;
      entry.times.push(monotonicMs());
      const flowing = entry.stream.write(entry.next);
      entry.next++;
      if (entry.next > entry.stream.tokens) {
        entry.stream.end();
        entries.delete(entry);
      } else if (!flowing) {
        entry.blocked = true;
        entry.stream.onceDrain(() => {
          entry.blocked = false;
          schedule();
        });
      }
    }
    schedule();
  };

  const schedule = () => {
    if (scheduled || ![...entries].some((e) => !e.blocked)) return;
    scheduled = true;
    if (paceMs === 0) {
      setImmediate(step);
      return;
    }
    const now = performance.now();
    nextStep = Math.max(nextStep + paceMs, now);
    setTimeout(step, nextStep - now);
  };

  return {
    add(stream) {
      const entry: Entry = { stream, next: 1, blocked: false, times: [] };
      entries.add(entry);
      if (stream.key !== undefined) traces.push(entry);
      if (!scheduled && paceMs > 0) nextStep = performance.now();
      schedule();
    },
    setPace(ms) {
      paceMs = ms;
    },
    takeTrace() {
      const taken = traces;
      traces = [];
      return Object.fromEntries(
        taken.map((entry) => [entry.stream.key as string, Float64Array.from(entry.times)]),
      );
    },
  };
}
