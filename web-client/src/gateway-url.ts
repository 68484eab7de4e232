/**
 * @module Where the gateway is. Served by the gateway itself the page calls its own origin; run
 * elsewhere (vite preview, a CDN) it calls the gateway named by `?gateway=` or the settings,
 * which must then allow this page's origin through CORS.
 */

/** Where the chosen gateway URL came from, so the settings can say why it cannot be edited. */
export type GatewaySource = "query" | "setting" | "origin";

/** The gateway the page talks to. */
export interface GatewayLocation {
  /** An origin (plus optional path) without a trailing slash, e.g. `http://127.0.0.1:8080`. */
  readonly url: string;
  readonly source: GatewaySource;
}

/** Options of `resolveGatewayUrl`. */
export interface ResolveGatewayUrlOptions {
  /** The page's `location.search`, read for `?gateway=`. */
  readonly search: string;
  /** The page's `location.origin`, used when nothing else is set. */
  readonly origin: string;
  /** The URL saved in the settings; empty when unset. */
  readonly saved: string;
}

/** Picks the gateway: `?gateway=` wins over the saved setting, which wins over the page's origin. */
export function resolveGatewayUrl(options: ResolveGatewayUrlOptions): GatewayLocation {
  const fromQuery = new URLSearchParams(options.search).get("gateway")?.trim() ?? "";
  if (fromQuery !== "") {
    return { url: normalizeGatewayUrl(fromQuery), source: "query" };
  }
  const saved = options.saved.trim();
  if (saved !== "") {
    return { url: normalizeGatewayUrl(saved), source: "setting" };
  }
  return { url: options.origin, source: "origin" };
}

/** Adds `http://` to a bare `host:port` and drops trailing slashes, so paths join cleanly. */
export function normalizeGatewayUrl(raw: string): string {
  const withScheme = /^[a-z][a-z0-9+.-]*:\/\//i.test(raw) ? raw : `http://${raw}`;
  return withScheme.replace(/\/+$/, "");
}

/** The `host:port` of a URL for display, or the URL itself when it does not parse. */
export function gatewayHost(url: string): string {
  return URL.canParse(url) ? new URL(url).host : url;
}
