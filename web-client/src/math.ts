/**
 * @module TeX math in replies: `$…$` inline and `$$…$$` (inline or as a block of lines), drawn
 * by KaTeX. KaTeX and its fonts are a separate chunk, fetched the first time a reply holds
 * math; until then the formula shows as its source. The markdown-it rules are written here
 * because the published KaTeX plugins import KaTeX eagerly (or pin markdown-it 14).
 *
 * A `$` opens math only when a non-space follows it and closes it only after a non-space and
 * before a non-digit (Pandoc's rule), so "costs $5 and $10" stays text. KaTeX runs with
 * `trust: false` (no `\href`, `\url`, `\includegraphics`, HTML extensions) and escapes what it
 * cannot parse, so a formula never becomes markup of the model's choosing.
 */
import type KatexApi from "katex";
import type { MarkdownIt, StateBlock, StateInline, Token } from "markdown-it";

type Katex = typeof KatexApi;

let katex: Katex | undefined;
let loading: Promise<void> | undefined;
const listeners: (() => void)[] = [];

/** Calls `listener` once KaTeX has loaded, so formulas shown as source can be drawn. */
export function onMathLoaded(listener: () => void): void {
  listeners.push(listener);
}

/** Adds the math rules to a markdown-it instance. */
export function mathPlugin(markdown: MarkdownIt): void {
  const escapeHtml = markdown.utils.escapeHtml;
  const render = (tex: string, display: boolean) => {
    if (katex === undefined) {
      void loadKatex();
      const delimiter = display ? "$$" : "$";
      return `<span class="math-source">${escapeHtml(`${delimiter}${tex}${delimiter}`)}</span>`;
    }
    try {
      return katex.renderToString(tex, {
        displayMode: display,
        throwOnError: false,
        trust: false,
        strict: "ignore",
        output: "htmlAndMathml",
      });
    } catch {
      return `<code class="math-error">${escapeHtml(tex)}</code>`;
    }
  };

  markdown.inline.ruler.after("escape", "math_inline", (state: StateInline, silent: boolean) => {
    const { src, pos } = state;
    if (src.charCodeAt(pos) !== 0x24 /* $ */) {
      return false;
    }
    const display = src.startsWith("$$", pos);
    const open = display ? 2 : 1;
    const close = findClose(src, pos + open, display);
    if (close === undefined) {
      return false;
    }
    if (!silent) {
      const token = state.push(display ? "math_display" : "math_inline", "math", 0);
      token.content = src.slice(pos + open, close);
    }
    state.pos = close + open;
    return true;
  });

  markdown.block.ruler.before(
    "fence",
    "math_block",
    (state: StateBlock, startLine: number, endLine: number, silent: boolean) => {
      const start = (state.bMarks[startLine] ?? 0) + (state.tShift[startLine] ?? 0);
      const firstEnd = state.eMarks[startLine] ?? 0;
      const first = state.src.slice(start, firstEnd);
      if (!first.startsWith("$$") || (state.sCount[startLine] ?? 0) - state.blkIndent >= 4) {
        return false;
      }
      let content: string;
      let last = startLine;
      const rest = first.slice(2);
      if (rest.trimEnd().endsWith("$$")) {
        // "$$ x $$" on one line.
        content = rest.trimEnd().slice(0, -2);
      } else {
        const lines = [rest];
        for (;;) {
          last++;
          if (last >= endLine) {
            return false; // Unclosed (still streaming): the text shows as it is for now.
          }
          const from = (state.bMarks[last] ?? 0) + (state.tShift[last] ?? 0);
          const line = state.src.slice(from, state.eMarks[last] ?? 0);
          if (line.trimEnd().endsWith("$$")) {
            lines.push(line.trimEnd().slice(0, -2));
            break;
          }
          lines.push(line);
        }
        content = lines.join("\n");
      }
      if (content.trim() === "") {
        return false;
      }
      if (!silent) {
        const token = state.push("math_block", "math", 0);
        token.block = true;
        token.content = content;
        token.map = [startLine, last + 1];
      }
      state.line = last + 1;
      return true;
    },
    { alt: ["paragraph", "reference", "blockquote", "list"] },
  );

  const content = (tokens: Token[], index: number) => tokens[index]?.content ?? "";
  markdown.renderer.rules.math_inline = (tokens, index) => render(content(tokens, index), false);
  markdown.renderer.rules.math_display = (tokens, index) => render(content(tokens, index), true);
  markdown.renderer.rules.math_block = (tokens, index) =>
    `<div class="math-block">${render(content(tokens, index), true)}</div>\n`;
}

/** Where the closing delimiter starts, or undefined when there is none on this line's terms. */
function findClose(src: string, from: number, display: boolean): number | undefined {
  const delimiter = display ? "$$" : "$";
  if (from >= src.length || /\s/.test(src[from] ?? "")) {
    return undefined;
  }
  for (let at = src.indexOf(delimiter, from); at >= 0; at = src.indexOf(delimiter, at + 1)) {
    if (src[at - 1] === "\\") {
      continue; // \$ is a dollar sign inside the formula.
    }
    const after = src[at + delimiter.length] ?? "";
    if (at > from && !/\s/.test(src[at - 1] ?? "") && !(!display && /\d/.test(after))) {
      return at;
    }
    if (!display) {
      return undefined; // A single $ that cannot close ends the attempt, as in Pandoc.
    }
  }
  return undefined;
}

function loadKatex(): Promise<void> {
  loading ??= Promise.all([import("katex"), import("katex/dist/katex.min.css")]).then(
    ([module]) => {
      katex = module.default;
      for (const listener of listeners) {
        listener();
      }
    },
    () => {
      loading = undefined; // Offline: formulas stay as source; a later reply may try again.
    },
  );
  return loading;
}
