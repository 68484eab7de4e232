/**
 * @module Syntax colours for fenced code in replies, by highlight.js. Nothing of it is in the
 * page's first bundle: its core and each language are separate chunks, fetched the first time
 * a reply names that language in a fence. Until then (and for languages not listed here) the
 * code shows plain; listeners hear when a language arrives, so the replies can be drawn again.
 * highlight.js escapes the code it wraps in its `<span class="hljs-…">`s, so model text never
 * becomes markup.
 */
import type { HLJSApi, LanguageFn } from "highlight.js";

type Loader = () => Promise<{ default: LanguageFn }>;

/** The languages on offer, by highlight.js module name, with the fence names that mean them. */
const languages: Record<string, { load: Loader; names: string[] }> = {
  bash: { load: () => import("highlight.js/lib/languages/bash"), names: ["sh", "zsh"] },
  c: { load: () => import("highlight.js/lib/languages/c"), names: ["h"] },
  cpp: {
    load: () => import("highlight.js/lib/languages/cpp"),
    names: ["c++", "cc", "cxx", "hpp", "hh", "hxx"],
  },
  csharp: { load: () => import("highlight.js/lib/languages/csharp"), names: ["cs", "c#"] },
  css: { load: () => import("highlight.js/lib/languages/css"), names: [] },
  diff: { load: () => import("highlight.js/lib/languages/diff"), names: ["patch"] },
  dockerfile: { load: () => import("highlight.js/lib/languages/dockerfile"), names: ["docker"] },
  go: { load: () => import("highlight.js/lib/languages/go"), names: ["golang"] },
  graphql: { load: () => import("highlight.js/lib/languages/graphql"), names: ["gql"] },
  haskell: { load: () => import("highlight.js/lib/languages/haskell"), names: ["hs"] },
  ini: { load: () => import("highlight.js/lib/languages/ini"), names: ["toml"] },
  java: { load: () => import("highlight.js/lib/languages/java"), names: [] },
  javascript: {
    load: () => import("highlight.js/lib/languages/javascript"),
    names: ["js", "jsx", "mjs", "cjs"],
  },
  json: { load: () => import("highlight.js/lib/languages/json"), names: ["jsonc", "json5"] },
  kotlin: { load: () => import("highlight.js/lib/languages/kotlin"), names: ["kt", "kts"] },
  latex: { load: () => import("highlight.js/lib/languages/latex"), names: ["tex"] },
  lua: { load: () => import("highlight.js/lib/languages/lua"), names: [] },
  makefile: { load: () => import("highlight.js/lib/languages/makefile"), names: ["make", "mk"] },
  markdown: { load: () => import("highlight.js/lib/languages/markdown"), names: ["md"] },
  nginx: { load: () => import("highlight.js/lib/languages/nginx"), names: ["nginxconf"] },
  perl: { load: () => import("highlight.js/lib/languages/perl"), names: ["pl"] },
  php: { load: () => import("highlight.js/lib/languages/php"), names: [] },
  powershell: {
    load: () => import("highlight.js/lib/languages/powershell"),
    names: ["pwsh", "ps1"],
  },
  protobuf: { load: () => import("highlight.js/lib/languages/protobuf"), names: ["proto"] },
  python: { load: () => import("highlight.js/lib/languages/python"), names: ["py"] },
  r: { load: () => import("highlight.js/lib/languages/r"), names: [] },
  ruby: { load: () => import("highlight.js/lib/languages/ruby"), names: ["rb"] },
  rust: { load: () => import("highlight.js/lib/languages/rust"), names: ["rs"] },
  scala: { load: () => import("highlight.js/lib/languages/scala"), names: [] },
  scss: { load: () => import("highlight.js/lib/languages/scss"), names: [] },
  shell: {
    load: () => import("highlight.js/lib/languages/shell"),
    names: ["console", "shellsession"],
  },
  sql: { load: () => import("highlight.js/lib/languages/sql"), names: [] },
  swift: { load: () => import("highlight.js/lib/languages/swift"), names: [] },
  typescript: {
    load: () => import("highlight.js/lib/languages/typescript"),
    names: ["ts", "tsx", "mts", "cts"],
  },
  xml: {
    load: () => import("highlight.js/lib/languages/xml"),
    names: ["html", "xhtml", "svg", "plist"],
  },
  yaml: { load: () => import("highlight.js/lib/languages/yaml"), names: ["yml"] },
};

/** Fence name (lower case) to module name. */
const moduleByName = new Map<string, string>();
for (const [module, { names }] of Object.entries(languages)) {
  moduleByName.set(module, module);
  for (const name of names) {
    moduleByName.set(name, module);
  }
}

let core: Promise<HLJSApi> | undefined;
let hljs: HLJSApi | undefined;
const loading = new Map<string, Promise<void>>();
const listeners: (() => void)[] = [];

/** Calls `listener` each time a language has loaded and code in it can be coloured. */
export function onLanguageLoaded(listener: () => void): void {
  listeners.push(listener);
}

/**
 * Highlighted HTML for `code`, or undefined when `language` is unknown or still loading (its
 * loading starts here; `onLanguageLoaded` listeners hear when it is ready).
 */
export function highlightCode(code: string, language: string): string | undefined {
  const module = moduleByName.get(language.toLowerCase());
  if (module === undefined) {
    return undefined;
  }
  if (hljs?.getLanguage(module) !== undefined) {
    return hljs.highlight(code, { language: module, ignoreIllegals: true }).value;
  }
  void loadLanguage(module);
  return undefined;
}

/** Loads highlight.js's core once and a language once; a failed load may be tried again. */
function loadLanguage(module: string): Promise<void> {
  const known = loading.get(module);
  if (known !== undefined) {
    return known;
  }
  const entry = languages[module];
  if (entry === undefined) {
    return Promise.resolve();
  }
  core ??= import("highlight.js/lib/core").then((loaded) => loaded.default);
  const promise = Promise.all([core, entry.load()]).then(
    ([api, language]) => {
      api.registerLanguage(module, language.default);
      hljs = api;
      for (const listener of listeners) {
        listener();
      }
    },
    () => {
      // Offline or a stale deployment: the code stays plain, and a later reply may try again.
      loading.delete(module);
      core = undefined;
    },
  );
  loading.set(module, promise);
  return promise;
}
