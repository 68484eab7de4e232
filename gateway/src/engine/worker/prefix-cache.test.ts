import assert from "node:assert/strict";
import { test } from "node:test";
import type { KvCache, KvLayout } from "./kv-cache.js";
import { createPrefixCache } from "./prefix-cache.js";

const layout: KvLayout = { tensors: 2, kvHeads: 2, headDim: 3, dtype: "float32" };

/** A one-sequence cache whose value at (tensor t, head h, position p, d) is t·1000+h·100+p+d/10. */
function kvFor(length: number): KvCache {
  const data = Array.from({ length: layout.tensors }, (_, t) => {
    const array = new Float32Array(layout.kvHeads * length * layout.headDim);
    for (let h = 0; h < layout.kvHeads; h++) {
      for (let p = 0; p < length; p++) {
        for (let d = 0; d < layout.headDim; d++) {
          array[(h * length + p) * layout.headDim + d] = t * 1000 + h * 100 + p + d / 10;
        }
      }
    }
    return array;
  });
  return { batch: 1, length, data };
}

const bytesPerToken = layout.tensors * layout.kvHeads * layout.headDim * 4;
const range = (n: number, from = 0) => Array.from({ length: n }, (_, i) => from + i);

test("a lookup returns the longest shared prefix, as a copy of exactly those positions", () => {
  const cache = createPrefixCache(layout, 1 << 20);
  cache.store(range(10), kvFor(10));
  cache.store([...range(6), 99, 98], kvFor(8));
  const hit = cache.lookup([...range(8), 50, 51]);
  assert.equal(hit?.tokens, 8);
  assert.deepEqual(hit?.kv, kvFor(8));
  // The copy is the caller's: changing it leaves the entry intact.
  assert.ok(hit !== undefined);
  (hit.kv.data[0] as Float32Array).fill(0);
  assert.deepEqual(cache.lookup([...range(8), 7])?.kv, kvFor(8));
});

test("at least one prompt token is left to run, and short matches are not reused", () => {
  const cache = createPrefixCache(layout, 1 << 20);
  cache.store(range(10), kvFor(10));
  assert.equal(cache.lookup(range(10))?.tokens, 9);
  assert.equal(cache.lookup(range(5))?.tokens, 4);
  assert.equal(cache.lookup(range(4)), undefined);
  assert.equal(cache.lookup([1, 2, 3, 4, 5, 6]), undefined);
});

test("an entry that extends another replaces it; one already covered is not stored twice", () => {
  const cache = createPrefixCache(layout, 1 << 20);
  cache.store(range(6), kvFor(6));
  cache.store(range(10), kvFor(10));
  assert.equal(cache.entries, 1);
  assert.equal(cache.bytes, 10 * bytesPerToken);
  cache.store(range(8), kvFor(8));
  assert.equal(cache.entries, 1);
  assert.equal(cache.bytes, 10 * bytesPerToken);
});

test("the least recently used entries leave first once the bytes bound is passed", () => {
  const cache = createPrefixCache(layout, 25 * bytesPerToken);
  cache.store(range(10, 0), kvFor(10));
  cache.store(range(10, 100), kvFor(10));
  assert.ok(cache.lookup(range(10, 0))); // now the most recent
  cache.store(range(10, 200), kvFor(10));
  assert.equal(cache.entries, 2);
  assert.equal(cache.bytes, 20 * bytesPerToken);
  assert.ok(cache.lookup(range(10, 0)));
  assert.equal(cache.lookup(range(10, 100)), undefined);
  assert.ok(cache.lookup(range(10, 200)));
});

test("with no bytes it holds nothing and says it is off", () => {
  const cache = createPrefixCache(layout, 0);
  cache.store(range(10), kvFor(10));
  assert.equal(cache.enabled, false);
  assert.equal(cache.entries, 0);
  assert.equal(cache.lookup(range(12)), undefined);
});
