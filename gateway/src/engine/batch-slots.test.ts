/**
 * The slot rules on their own, without a worker: who starts, who is parked for whom, who gets a
 * freed slot first, and what counts against the queue's bound.
 */
import assert from "node:assert/strict";
import { test } from "node:test";
import { BatchSlots, type BatchSlotsOptions } from "./batch-slots.js";

interface Entry {
  readonly name: string;
}

function slotsFor(options: Partial<BatchSlotsOptions<Entry>> = {}) {
  const log: string[] = [];
  const slots = new BatchSlots<Entry>({
    maxBatch: 1,
    maxQueue: 2,
    parkAfterMs: 0,
    maxParked: 4,
    parkTimeoutMs: 600_000,
    start: (e) => log.push(`start ${e.name}`),
    resume: (e) => log.push(`resume ${e.name}`),
    evict: (e) => log.push(`evict ${e.name}`),
    parked: (e) => log.push(`park ${e.name}`),
    changed: () => {},
    ...options,
  });
  return { slots, log };
}

const [a, b, c] = ["a", "b", "c"].map((name) => ({ name })) as [Entry, Entry, Entry];

test("a parked generation whose reader came back gets the next slot before a new arrival", () => {
  const { slots, log } = slotsFor();
  slots.enqueue(a);
  slots.starve(a); // nobody waits: a keeps its slot
  assert.deepEqual(log, ["start a"]);
  slots.enqueue(b); // now someone does
  assert.deepEqual(log, ["start a", "park a", "start b"]);
  assert.equal(slots.read(a, false), false, "a parked generation sends no credit");
  assert.equal(slots.read(a, true), false);
  slots.enqueue(c);
  assert.equal(slots.queued, 1);
  assert.equal(slots.parked, 1);
  slots.remove(b); // b finished: a goes first, c still waits
  assert.deepEqual(log.slice(3), ["resume a"]);
  assert.equal(slots.read(a, true), true, "a holds a slot again");
  assert.equal(slots.parked, 0);
  slots.remove(a);
  assert.deepEqual(log.slice(4), ["start c"]);
});

test("credit cancels a pending park; a stopping generation is never parked or evicted", () => {
  const { slots, log } = slotsFor({ maxParked: 0 });
  slots.enqueue(a);
  slots.starve(a);
  slots.feed(a);
  slots.enqueue(b);
  assert.deepEqual(log, ["start a"], "a has credit again: b waits");
  slots.starve(a);
  assert.deepEqual(log.slice(1), ["park a", "start b", "evict a"], "no room to park: a is stopped");
  assert.equal(slots.withdraw(a), false, "the worker still holds a");
  slots.starve(b);
  slots.enqueue(c);
  assert.deepEqual(log.slice(4), ["park b", "start c", "evict b"]);
  assert.equal(slots.withdraw(b), false);
  slots.remove(a);
  slots.remove(b);
  assert.equal(slots.parked, 0);
  assert.equal(slots.running, 1);
});

test("resuming generations count against the queue's bound; a queued one leaves at once", () => {
  const { slots } = slotsFor({ maxQueue: 1 });
  slots.enqueue(a);
  slots.starve(a);
  slots.enqueue(b);
  assert.equal(slots.full, false);
  slots.read(a, true); // a waits for a slot again
  assert.equal(slots.full, true);
  slots.starve(b); // b is parked for a
  assert.equal(slots.full, false);
  slots.enqueue(c);
  assert.equal(slots.queued, 1, "a holds the slot again: c waits");
  assert.equal(slots.withdraw(c), true, "c never reached the worker: it leaves at once");
  assert.equal(slots.queued, 0);
});
