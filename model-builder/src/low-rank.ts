/**
 * @module A rank-k approximation of a sparse matrix by subspace iteration (the power method on k
 * vectors at once): S ≈ Q·(QᵀS) with Q orthonormal, close to the truncated SVD's subspace.
 * Hand-written because it is twenty lines over a sparse matrix of a few ten thousand entries,
 * and npm's linear-algebra packages are dense-only or far bigger than the problem.
 */
import { uniformFloat32 } from "pure-rand/distribution/uniformFloat32";
import { xoroshiro128plus } from "pure-rand/generator/xoroshiro128plus";

/** A sparse rows × columns matrix as coordinate triples. */
export interface SparseMatrix {
  readonly rows: number;
  readonly columns: number;
  readonly row: Int32Array;
  readonly column: Int32Array;
  readonly value: Float64Array;
}

/** S ≈ left · right, with left rows × rank (orthonormal columns) and right rank × columns. */
export interface LowRank {
  readonly rank: number;
  /** Row-major rows × rank. */
  readonly left: Float64Array;
  /** Row-major rank × columns. */
  readonly right: Float64Array;
}

/** Orthonormalizes the `rank` columns of the row-major rows × rank matrix `m` in place. */
function orthonormalize(m: Float64Array, rows: number, rank: number): void {
  for (let j = 0; j < rank; j++) {
    for (let i = 0; i < j; i++) {
      let dot = 0;
      for (let r = 0; r < rows; r++)
        dot += (m[r * rank + i] as number) * (m[r * rank + j] as number);
      for (let r = 0; r < rows; r++)
        m[r * rank + j] = (m[r * rank + j] as number) - dot * (m[r * rank + i] as number);
    }
    let norm = 0;
    for (let r = 0; r < rows; r++) norm += (m[r * rank + j] as number) ** 2;
    norm = Math.sqrt(norm);
    // A column with nothing left (S has lower rank) becomes zero, contributing nothing.
    for (let r = 0; r < rows; r++)
      m[r * rank + j] = norm > 1e-12 ? (m[r * rank + j] as number) / norm : 0;
  }
}

/** Sᵀ·Q for Q rows × rank: columns × rank. */
function transposeTimes(s: SparseMatrix, q: Float64Array, rank: number): Float64Array {
  const out = new Float64Array(s.columns * rank);
  for (let e = 0; e < s.value.length; e++) {
    const r = s.row[e] as number;
    const c = s.column[e] as number;
    const v = s.value[e] as number;
    for (let k = 0; k < rank; k++)
      out[c * rank + k] = (out[c * rank + k] as number) + v * (q[r * rank + k] as number);
  }
  return out;
}

/** S·Z for Z columns × rank: rows × rank. */
function times(s: SparseMatrix, z: Float64Array, rank: number): Float64Array {
  const out = new Float64Array(s.rows * rank);
  for (let e = 0; e < s.value.length; e++) {
    const r = s.row[e] as number;
    const c = s.column[e] as number;
    const v = s.value[e] as number;
    for (let k = 0; k < rank; k++)
      out[r * rank + k] = (out[r * rank + k] as number) + v * (z[c * rank + k] as number);
  }
  return out;
}

/** A rank-`rank` approximation of `s`, deterministic for a given `seed`. */
export function lowRank(s: SparseMatrix, rank: number, seed: number, iterations = 12): LowRank {
  const rng = xoroshiro128plus(seed);
  let q: Float64Array = new Float64Array(s.rows * rank);
  for (let i = 0; i < q.length; i++) q[i] = uniformFloat32(rng) * 2 - 1;
  orthonormalize(q, s.rows, rank);
  for (let i = 0; i < iterations; i++) {
    q = times(s, transposeTimes(s, q, rank), rank);
    orthonormalize(q, s.rows, rank);
  }
  const z = transposeTimes(s, q, rank); // (QᵀS)ᵀ, columns × rank
  const right = new Float64Array(rank * s.columns);
  for (let c = 0; c < s.columns; c++) {
    for (let k = 0; k < rank; k++) right[k * s.columns + c] = z[c * rank + k] as number;
  }
  return { rank, left: q, right };
}
