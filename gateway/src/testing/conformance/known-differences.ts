/**
 * @module Where Parley may answer differently from connect-node's router, each with its reason.
 * The differential suite (rpc/protocol-conformance.test.ts) fails on any other difference and on
 * an entry here that no longer differs. `system` is "parley" (fast paths on) or
 * "parley-router" (`--fast-paths off`); `case` is a case id in which `*` matches any text.
 */

/** One accepted difference. */
export interface KnownDifference {
  readonly system: "parley" | "parley-router";
  readonly case: string;
  readonly reason: string;
}

export const knownDifferences: readonly KnownDifference[] = [];
