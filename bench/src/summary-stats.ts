/**
 * @module Order statistics for the benchmark's figures: medians across rounds, p50/p99 across
 * samples. Percentiles use the nearest-rank method, so p99 of 100 samples is the 99th value.
 */

/** The p50, p99 and count of a set of samples. */
export interface Distribution {
  readonly p50: number;
  readonly p99: number;
  readonly max: number;
  readonly count: number;
}

/** Nearest-rank percentile of `values` (need not be sorted); NaN for no values. */
export function percentile(values: ArrayLike<number>, p: number): number {
  if (values.length === 0) return Number.NaN;
  const sorted = Float64Array.from(values).sort();
  const rank = Math.min(sorted.length, Math.max(1, Math.ceil((p / 100) * sorted.length)));
  return sorted[rank - 1] as number;
}

/** The median of `values`; NaN for no values. */
export function median(values: ArrayLike<number>): number {
  return percentile(values, 50);
}

/** p50, p99 and max of `values`. */
export function distribution(values: ArrayLike<number>): Distribution {
  if (values.length === 0) return { p50: Number.NaN, p99: Number.NaN, max: Number.NaN, count: 0 };
  const sorted = Float64Array.from(values).sort();
  const at = (p: number) =>
    sorted[
      Math.min(sorted.length, Math.max(1, Math.ceil((p / 100) * sorted.length))) - 1
    ] as number;
  return {
    p50: at(50),
    p99: at(99),
    max: sorted[sorted.length - 1] as number,
    count: sorted.length,
  };
}

/** A figure measured once per round: its median, spread and every round's value. */
export interface RoundFigure {
  readonly median: number;
  readonly min: number;
  readonly max: number;
  readonly rounds: readonly number[];
}

/** Summarizes one figure's per-round values. */
export function roundFigure(rounds: readonly number[]): RoundFigure {
  const finite = rounds.filter(Number.isFinite);
  return {
    median: median(finite),
    min: finite.length === 0 ? Number.NaN : Math.min(...finite),
    max: finite.length === 0 ? Number.NaN : Math.max(...finite),
    rounds,
  };
}

/**
 * Milliseconds on the machine's monotonic clock (CLOCK_MONOTONIC through `process.hrtime`), which
 * every process on the machine shares. `performance.timeOrigin` is not used: it is read per
 * process from the wall clock and differs between processes by up to milliseconds.
 */
export function monotonicMs(): number {
  const [seconds, nanoseconds] = process.hrtime();
  return seconds * 1e3 + nanoseconds / 1e6;
}

/**
 * The median of round-by-round ratios `numerators[i] / denominators[i]`: two systems measured
 * back to back in each round share that round's machine load, which a ratio of medians does not
 * cancel.
 */
export function pairedRatio(
  numerators: readonly number[],
  denominators: readonly number[],
): number {
  const ratios: number[] = [];
  for (let i = 0; i < Math.min(numerators.length, denominators.length); i++) {
    const ratio = (numerators[i] as number) / (denominators[i] as number);
    if (Number.isFinite(ratio)) ratios.push(ratio);
  }
  return median(ratios);
}
