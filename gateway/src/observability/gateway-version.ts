/**
 * @module The gateway's version, from its package.json (the one file that states it), for
 * `parley_build_info` and the traces' `service.version`.
 */
import { createRequire } from "node:module";

/** The `version` of @parley/gateway's package.json (dist/ and test-build/ sit beside it). */
export function gatewayVersion(): string {
  const { version } = createRequire(import.meta.url)("../../package.json") as { version: string };
  return version;
}
