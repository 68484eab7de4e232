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

const clamp =
  "Parley shortens a deadline above --max-timeout-ms to the limit (rpc/clamp-timeout.ts), as gRPC servers and proxies do; connect-node refuses it with invalid_argument, which breaks clients that ask for the limit plus slack (grpcio) or for 'a long time'";

export const knownDifferences: readonly KnownDifference[] = [
  { system: "parley", case: "*/deadline-above-max", reason: clamp },
  { system: "parley-router", case: "*/deadline-above-max", reason: clamp },
];
