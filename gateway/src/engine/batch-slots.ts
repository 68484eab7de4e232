/**
 * @module Who holds one model's batch slots. A generation is queued, running (it holds a slot),
 * or parked. A running generation whose reader left it without credit for `parkAfterMs` is
 * parked when another generation waits for a slot: its slot goes to the waiting one, while the
 * worker keeps its sequence (KV cache, sampler, detokenizer) out of the batch, as it keeps every
 * sequence that has no credit. When its reader has returned enough credit to run again, it waits
 * for a slot ahead of new arrivals, and it continues exactly where it stopped.
 *
 * Parked generations are bounded: at most `maxParked` whose readers are away, the one unread
 * longest stopped first, and none whose reader reads nothing for `parkTimeoutMs`. Without a
 * bound in time, `maxBatch` streams that never read hold every slot for ever (issue 13); without
 * one in count, they would hold memory instead.
 *
 * Like vLLM's preemption (a running sequence gives way when the scheduler needs room) but with
 * the cache kept, not recomputed: here the sequence has not grown, so keeping it costs no more
 * memory than it already held, and resuming costs one copy back into the batch.
 */

/** Options for {@link BatchSlots}. */
export interface BatchSlotsOptions<T> {
  readonly maxBatch: number;
  /** Generations waiting for a slot (new or resuming) beyond which `full` is true. */
  readonly maxQueue: number;
  /** How long a running generation may go without credit before it may be parked. */
  readonly parkAfterMs: number;
  /** Parked generations whose readers are away; more stop the one unread longest. */
  readonly maxParked: number;
  /** How long a parked generation's reader may read nothing before it is stopped. */
  readonly parkTimeoutMs: number;
  /** Sends a queued generation to the worker: it holds a slot from now on. */
  readonly start: (entry: T) => void;
  /** Gives a parked generation its slot back: the caller sends the credit it held back. */
  readonly resume: (entry: T) => void;
  /** A parked generation's reader stayed away past a bound; the caller stops it. */
  readonly evict: (entry: T, unreadMs: number) => void;
  /** A running generation was parked. */
  readonly parked: (entry: T) => void;
  /** The counts changed. */
  readonly changed: () => void;
}

type Phase = "queued" | "running" | "parked";

interface Slot {
  phase: Phase;
  /** Being stopped: never parked, resumed or evicted again; only `remove` is left. */
  stopping: boolean;
  /** Parked, and its reader has returned enough credit: waiting in `resuming`. */
  resuming: boolean;
  /** When its reader last took an event (or when it was admitted). */
  lastReadAt: number;
  /** The park-after timer while running without credit; the park timeout while parked. */
  timer: NodeJS.Timeout | undefined;
}

/** The batch slots of one model and the generations that want them. */
export class BatchSlots<T extends object> {
  private readonly options: BatchSlotsOptions<T>;
  private readonly slots = new Map<T, Slot>();
  private readonly queue: T[] = [];
  /** Parked generations whose readers came back, in the order they did. */
  private readonly resuming: T[] = [];
  /** Running generations without credit for `parkAfterMs`, longest first. */
  private readonly parkable = new Set<T>();
  private readonly parkedSet = new Set<T>();
  private runningCount = 0;

  constructor(options: BatchSlotsOptions<T>) {
    this.options = options;
  }

  /** Generations holding a slot. */
  get running(): number {
    return this.runningCount;
  }

  /** New generations waiting for their first slot. */
  get queued(): number {
    return this.queue.length;
  }

  /** Parked generations, including those whose readers came back and wait for a slot. */
  get parked(): number {
    return this.parkedSet.size;
  }

  /** Whether a new generation must be refused: every slot held and the queue full. */
  get full(): boolean {
    const { maxBatch, maxQueue } = this.options;
    return this.runningCount >= maxBatch && this.queue.length + this.resuming.length >= maxQueue;
  }

  /** Admits a generation; it starts at once if a slot is free. */
  enqueue(entry: T): void {
    this.slots.set(entry, {
      phase: "queued",
      stopping: false,
      resuming: false,
      lastReadAt: performance.now(),
      timer: undefined,
    });
    this.queue.push(entry);
    this.fill();
  }

  /** The worker has no credit left for a running generation: it pauses there. */
  starve(entry: T): void {
    const slot = this.slots.get(entry);
    if (slot?.phase !== "running" || slot.stopping) return;
    clearTimeout(slot.timer);
    const becomeParkable = () => {
      slot.timer = undefined;
      this.parkable.add(entry);
      this.fill();
    };
    if (this.options.parkAfterMs === 0) {
      becomeParkable();
    } else {
      slot.timer = setTimeout(becomeParkable, this.options.parkAfterMs);
      slot.timer.unref();
    }
  }

  /** A running generation got credit: it decodes again and keeps its slot. */
  feed(entry: T): void {
    const slot = this.slots.get(entry);
    if (slot?.phase !== "running") return;
    clearTimeout(slot.timer);
    slot.timer = undefined;
    this.parkable.delete(entry);
  }

  /**
   * The reader took events. Returns whether the generation holds a slot, so that credit may go
   * to the worker; a parked one holds its credit back and, once `wantsToRun`, waits for a slot.
   */
  read(entry: T, wantsToRun: boolean): boolean {
    const slot = this.slots.get(entry);
    if (slot === undefined) return false;
    slot.lastReadAt = performance.now();
    if (slot.phase !== "parked") return slot.phase === "running";
    if (slot.stopping || slot.resuming) return false;
    if (wantsToRun) {
      clearTimeout(slot.timer);
      slot.timer = undefined;
      slot.resuming = true;
      this.resuming.push(entry);
      this.fill();
    } else {
      this.armParkTimeout(entry, slot);
    }
    return false;
  }

  /**
   * The generation is being stopped. Returns true when it was still queued (it is forgotten at
   * once); otherwise the worker still holds it and `remove` follows when it lets go.
   */
  withdraw(entry: T): boolean {
    const slot = this.slots.get(entry);
    if (slot === undefined) return false;
    if (slot.phase === "queued") {
      this.remove(entry);
      return true;
    }
    slot.stopping = true;
    clearTimeout(slot.timer);
    slot.timer = undefined;
    this.parkable.delete(entry);
    if (slot.resuming) this.resuming.splice(this.resuming.indexOf(entry), 1);
    slot.resuming = false;
    return false;
  }

  /** The worker is done with the generation: its slot or parking place is free. */
  remove(entry: T): void {
    const slot = this.slots.get(entry);
    if (slot === undefined) return;
    this.slots.delete(entry);
    clearTimeout(slot.timer);
    this.parkable.delete(entry);
    this.parkedSet.delete(entry);
    if (slot.resuming) this.resuming.splice(this.resuming.indexOf(entry), 1);
    if (slot.phase === "queued") this.queue.splice(this.queue.indexOf(entry), 1);
    if (slot.phase === "running") this.runningCount--;
    this.fill();
  }

  /** Forgets everything (the worker died and took every generation with it). */
  clear(): void {
    for (const slot of this.slots.values()) clearTimeout(slot.timer);
    this.slots.clear();
    this.queue.length = 0;
    this.resuming.length = 0;
    this.parkable.clear();
    this.parkedSet.clear();
    this.runningCount = 0;
    this.options.changed();
  }

  /**
   * Gives free slots to resuming generations, then to new ones; while some still wait and a
   * running generation has gone without credit long enough, parks it for them.
   */
  private fill(): void {
    for (;;) {
      if (this.runningCount < this.options.maxBatch) {
        const resumed = this.resuming.shift();
        const next = resumed ?? this.queue.shift();
        if (next === undefined) break;
        const slot = this.slots.get(next) as Slot;
        slot.phase = "running";
        this.runningCount++;
        if (resumed === undefined) {
          this.options.start(next);
        } else {
          slot.resuming = false;
          this.parkedSet.delete(next);
          this.options.resume(next);
        }
        continue;
      }
      if (this.queue.length + this.resuming.length === 0) break;
      const [victim] = this.parkable;
      if (victim === undefined) break;
      this.park(victim);
    }
    this.evictOverflow();
    this.options.changed();
  }

  private park(entry: T): void {
    const slot = this.slots.get(entry) as Slot;
    this.parkable.delete(entry);
    slot.phase = "parked";
    this.runningCount--;
    this.parkedSet.add(entry);
    this.armParkTimeout(entry, slot);
    this.options.parked(entry);
  }

  private armParkTimeout(entry: T, slot: Slot): void {
    clearTimeout(slot.timer);
    slot.timer = setTimeout(() => {
      slot.timer = undefined;
      this.options.evict(entry, performance.now() - slot.lastReadAt);
    }, this.options.parkTimeoutMs);
    slot.timer.unref();
  }

  /** Stops the parked generations unread longest while more than `maxParked` have no reader. */
  private evictOverflow(): void {
    const away = [...this.parkedSet].filter((entry) => {
      const slot = this.slots.get(entry) as Slot;
      return !slot.stopping && !slot.resuming;
    });
    const excess = away.length - this.options.maxParked;
    if (excess <= 0) return;
    const now = performance.now();
    const unread = (entry: T) => now - (this.slots.get(entry) as Slot).lastReadAt;
    away.sort((a, b) => unread(b) - unread(a));
    for (const entry of away.slice(0, excess)) this.options.evict(entry, unread(entry));
  }
}
