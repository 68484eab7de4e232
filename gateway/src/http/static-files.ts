/**
 * @module Serves the built web client (web-client/dist) at "/": content types, ETags, ranges and
 * the refusal of paths that climb out of the root come from serve-static. Vite names the files
 * under assets/ by content hash, so those may be cached for good; everything else is revalidated.
 */
import { existsSync } from "node:fs";
import type { IncomingMessage, ServerResponse } from "node:http";
import { join, sep } from "node:path";
import serveStatic from "serve-static";
import type { NodeRequest, NodeResponse } from "./node-http.js";

/** Options of {@link createStaticFiles}. */
export interface StaticFilesOptions {
  /** The folder holding index.html. */
  readonly root: string;
}

/** Serves a file for the request, or answers 404. */
export type StaticFiles = (request: NodeRequest, response: NodeResponse) => void;

const hashedAssets = `${sep}assets${sep}`;

/** Creates the static file handler. */
export function createStaticFiles(options: StaticFilesOptions): StaticFiles {
  const serve = serveStatic(options.root, {
    index: ["index.html"],
    dotfiles: "ignore",
    cacheControl: false,
    setHeaders(response, path) {
      response.setHeader(
        "Cache-Control",
        path.includes(hashedAssets) ? "public, max-age=31536000, immutable" : "no-cache",
      );
    },
  });
  return (request, response) => {
    // serve-static is typed for HTTP/1 objects but uses only what HTTP/2's compatibility
    // request and response also offer (url, method, headers, setHeader, statusCode, pipe).
    serve(request as IncomingMessage, response as ServerResponse, () =>
      notFound(request, response, options.root),
    );
  };
}

function notFound(request: NodeRequest, response: NodeResponse, root: string): void {
  const path = (request.url ?? "/").split("?", 1)[0];
  const unbuilt = (path === "/" || path === "/index.html") && !existsSync(join(root, "index.html"));
  const body = unbuilt
    ? `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Parley: web client not built</title></head>
<body><h1>The web client is not built</h1>
<p>The gateway serves the chat UI from <code>${escapeHtml(root)}</code>, which has no <code>index.html</code>.</p>
<p>Build it from the repository root with <code>npm run build</code> (or <code>npm run build -w @parley/web-client</code>), then reload.</p>
<p>The RPC API works without it: try <code>ListModels</code> with curl or buf curl.</p>
</body></html>
`
    : "not found\n";
  response.statusCode = 404;
  response.setHeader(
    "Content-Type",
    unbuilt ? "text/html; charset=utf-8" : "text/plain; charset=utf-8",
  );
  response.setHeader("Cache-Control", "no-cache");
  if (request.method === "HEAD") {
    response.end();
  } else {
    response.end(body);
  }
}

function escapeHtml(text: string): string {
  return text.replace(/[&<>"]/g, (c) => `&#${c.charCodeAt(0)};`);
}
