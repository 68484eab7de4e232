/**
 * @module Deterministic weight values. Each drawn tensor has its own generator, seeded from the
 * model seed and the tensor's name, so its values do not depend on the order tensors are
 * written in, and a big tensor can be produced in chunks without holding it whole.
 */
import { uniformFloat32 } from "pure-rand/distribution/uniformFloat32";
import { xoroshiro128plus } from "pure-rand/generator/xoroshiro128plus";
import type { WeightSpec } from "./graph-builder.js";

/** Elements per chunk: 4 MiB of float32. */
const CHUNK_ELEMENTS = 1 << 20;

/** FNV-1a over `${seed}/${name}`: a 32-bit seed per tensor. */
function tensorSeed(seed: number, name: string): number {
  let hash = 0x811c9dc5;
  for (const byte of new TextEncoder().encode(`${seed}/${name}`)) {
    hash = Math.imul(hash ^ byte, 0x01000193) >>> 0;
  }
  return hash;
}

/** Number of elements of a tensor. */
export function elementCount(dims: readonly number[]): number {
  return dims.reduce((product, dim) => product * dim, 1);
}

/** The values of `weight` for `seed`, row-major, in chunks of at most 4 MiB. */
export function* weightChunks(weight: WeightSpec, seed: number): Generator<Float32Array> {
  const total = elementCount(weight.dims);
  const { init } = weight;
  if (init.kind === "values" && init.values.length !== total) {
    throw new RangeError(`${weight.name}: ${init.values.length} values for ${total} elements`);
  }
  const rng = xoroshiro128plus(tensorSeed(seed, weight.name));
  for (let start = 0; start < total; start += CHUNK_ELEMENTS) {
    const length = Math.min(CHUNK_ELEMENTS, total - start);
    if (init.kind === "values") {
      yield init.values.subarray(start, start + length);
      continue;
    }
    const chunk = new Float32Array(length);
    if (init.kind === "ones") {
      chunk.fill(1);
    } else if (init.kind === "uniform") {
      for (let i = 0; i < chunk.length; i++) {
        chunk[i] = (uniformFloat32(rng) * 2 - 1) * init.bound;
      }
    }
    yield chunk;
  }
}
