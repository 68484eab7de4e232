/**
 * @module The KV cache of one or more sequences, and the copies continuous batching needs when
 * the batch's membership changes: gathering rows (from the old batch or from single sequences)
 * into a new left-padded batch, and taking a leaving sequence out. Between changes, a batch's
 * `present.*` outputs become its next `past_key_values.*` inputs as they are, without copying.
 */

/** Element storage of a KV tensor: float32, or float16 as raw bits. */
export type KvArray = Float32Array | Uint16Array;

/** The shape facts every KV tensor of a model shares. */
export interface KvLayout {
  /** How many past tensors the graph takes (two per layer: key and value). */
  readonly tensors: number;
  readonly kvHeads: number;
  readonly headDim: number;
  readonly dtype: "float32" | "float16";
}

/**
 * KV cache for `batch` sequences of `length` positions: one array per past tensor, each
 * [batch, kvHeads, length, headDim]. A row shorter than `length` is right-aligned: its first
 * positions are padding that the attention mask hides.
 */
export interface KvCache {
  readonly batch: number;
  readonly length: number;
  readonly data: readonly KvArray[];
}

function allocate(layout: KvLayout, size: number): KvArray {
  return layout.dtype === "float16" ? new Uint16Array(size) : new Float32Array(size);
}

/** An empty cache: what a sequence's first prefill step takes as its past. */
export function emptyKvCache(layout: KvLayout, batch = 1): KvCache {
  return {
    batch,
    length: 0,
    data: Array.from({ length: layout.tensors }, () => allocate(layout, 0)),
  };
}

/** Copies row `row` (its last `length` positions) out of a batch into a cache of its own. */
export function takeKvRow(layout: KvLayout, cache: KvCache, row: number, length: number): KvCache {
  const { kvHeads, headDim } = layout;
  const data = cache.data.map((source) => {
    const target = allocate(layout, kvHeads * length * headDim);
    for (let h = 0; h < kvHeads; h++) {
      const from = ((row * kvHeads + h) * cache.length + (cache.length - length)) * headDim;
      target.set(source.subarray(from, from + length * headDim), h * length * headDim);
    }
    return target;
  });
  return { batch: 1, length, data };
}

/**
 * Where one row of a new batch comes from: its last `length` positions in row `row` of a batch
 * cache, or a single sequence's own cache (row 0, all of it).
 */
export interface KvRowSource {
  readonly cache: KvCache;
  readonly row: number;
  readonly length: number;
}

/** The whole cache of a single sequence, as a row source. */
export function ownKvRow(cache: KvCache): KvRowSource {
  return { cache, row: 0, length: cache.length };
}

/**
 * Gathers rows into one batch, right-aligned to the longest. Rows that stay in the batch are
 * copied straight from the old batch, once, rather than taken out and stacked back in.
 */
export function gatherKvRows(layout: KvLayout, sources: readonly KvRowSource[]): KvCache {
  const { kvHeads, headDim } = layout;
  const length = Math.max(0, ...sources.map((s) => s.length));
  const data = Array.from({ length: layout.tensors }, (_, t) => {
    const target = allocate(layout, sources.length * kvHeads * length * headDim);
    sources.forEach(({ cache, row, length: rowLength }, r) => {
      const source = cache.data[t] as KvArray;
      for (let h = 0; h < kvHeads; h++) {
        const from = ((row * kvHeads + h) * cache.length + (cache.length - rowLength)) * headDim;
        const to = ((r * kvHeads + h) * length + (length - rowLength)) * headDim;
        target.set(source.subarray(from, from + rowLength * headDim), to);
      }
    });
    return target;
  });
  return { batch: sources.length, length, data };
}
