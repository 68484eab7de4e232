/**
 * @module Chat replies as Markdown. Models answer in Markdown (lists, code fences, tables), so
 * the page renders it rather than showing the markup. Model output is untrusted: markdown-it
 * escapes raw HTML (`html: false`), so `<img onerror=…>` or `<script>` in a reply is shown as
 * text; its link check refuses `javascript:`, `vbscript:` and `file:` URLs and is tightened here
 * to refuse every `data:` URL; and images are off, so a reply cannot make the page fetch an
 * address of its choosing (a known way to leak a conversation through an image URL).
 * Fenced code gets a header with its language and a Copy button, and colours once its
 * language has loaded (`code-highlight.ts`); `$…$` math is drawn by KaTeX (`math.ts`).
 */
import MarkdownIt from "markdown-it";
import { highlightCode, onLanguageLoaded } from "./code-highlight.js";
import { mathPlugin, onMathLoaded } from "./math.js";

const markdown = new MarkdownIt({
  html: false,
  // Bare http(s) and www. addresses become links; "main.py" does not (fuzzyLink below).
  linkify: true,
  // A single newline breaks the line: models write poems, addresses and steps that way.
  breaks: true,
});
markdown.linkify.set({ fuzzyLink: false });
markdown.disable("image");
markdown.use(mathPlugin);

const { escapeHtml, unescapeAll } = markdown.utils;

// A code block: its language (as the fence named it, escaped) and a Copy button that the chat
// view handles, then the code, coloured when highlight.js knows the language.
markdown.renderer.rules.fence = (tokens, index) => {
  const token = tokens[index];
  const code = token?.content ?? "";
  const language =
    unescapeAll(token?.info ?? "")
      .trim()
      .split(/\s+/)[0] ?? "";
  const highlighted = language === "" ? undefined : highlightCode(code, language);
  const name = escapeHtml(language);
  const codeClass =
    language === "" ? "" : ` class="language-${name}${highlighted === undefined ? "" : " hljs"}"`;
  return [
    '<div class="code-block">',
    `<div class="code-header"><span class="code-language">${name || "text"}</span>`,
    '<button type="button" class="code-copy" aria-label="Copy code">Copy</button></div>',
    `<pre><code${codeClass}>${highlighted ?? escapeHtml(code)}</code></pre>`,
    "</div>\n",
  ].join("");
};

const allowedByMarkdownIt = markdown.validateLink.bind(markdown);
// markdown-it lets `data:image/…` through for images; with images off no data URL is needed.
markdown.validateLink = (url) =>
  allowedByMarkdownIt(url) && !url.trim().toLowerCase().startsWith("data:");

// Links open in a new tab that can neither reach this page nor learn its address.
markdown.renderer.rules.link_open = (tokens, index, options, _env, renderer) => {
  tokens[index]?.attrSet("target", "_blank");
  tokens[index]?.attrSet("rel", "noopener noreferrer");
  return renderer.renderToken(tokens, index, options);
};

/**
 * Renders Markdown to HTML for `innerHTML`. Unfinished input renders as far as it goes: an
 * unclosed code fence runs to the end, so a reply can be rendered again as it streams.
 */
export function renderMarkdown(source: string): string {
  return markdown.render(source);
}

/**
 * Calls `listener` when rendering the same source again would give a richer result: a code
 * language or KaTeX has just loaded.
 */
export function onRendererUpgrade(listener: () => void): void {
  onLanguageLoaded(listener);
  onMathLoaded(listener);
}
