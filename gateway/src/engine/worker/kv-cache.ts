/**
 * @module The KV cache of one or more sequences, and the two copies continuous batching needs:
 * stacking single sequences into one left-padded batch, and taking one sequence back out.
 * Between those, a batch's `present.*` outputs become its next `past_key_values.*` inputs as they
 * are, without copying.
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

/** Stacks single-sequence caches into one batch, right-aligned to the longest. */
export function stackKvRows(layout: KvLayout, rows: readonly KvCache[]): KvCache {
  const { kvHeads, headDim } = layout;
  const length = Math.max(0, ...rows.map((r) => r.length));
  const data = Array.from({ length: layout.tensors }, (_, t) => {
    const target = allocate(layout, rows.length * kvHeads * length * headDim);
    rows.forEach((rowCache, r) => {
      const source = rowCache.data[t] as KvArray;
      const rowLength = rowCache.length;
      for (let h = 0; h < kvHeads; h++) {
        const to = ((r * kvHeads + h) * length + (length - rowLength)) * headDim;
        target.set(source.subarray(h * rowLength * headDim, (h + 1) * rowLength * headDim), to);
      }
    });
    return target;
  });
  return { batch: rows.length, length, data };
}
