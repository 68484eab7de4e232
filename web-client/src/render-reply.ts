/**
 * @module A chat reply as HTML: a reasoning model's `<think>` section folded into a
 * `<details>` ("Thinking…" while it streams), then the answer, both as Markdown.
 */
import { renderMarkdown } from "./render-markdown.js";
import { splitThinking } from "./thinking.js";

/** Options of `renderReply`. */
export interface RenderReplyOptions {
  /** Whether the user has unfolded the reasoning; redraws keep it so. */
  readonly thinkingShown: boolean;
}

/** Renders a reply for `innerHTML`; the untrusted text goes through `renderMarkdown` only. */
export function renderReply(text: string, options: RenderReplyOptions): string {
  const { thinking, thinkingOpen, answer } = splitThinking(text);
  if (thinking === undefined) {
    return renderMarkdown(answer);
  }
  const label = thinkingOpen ? "Thinking…" : "Reasoning";
  return [
    `<details class="thinking" data-streaming="${thinkingOpen}"${options.thinkingShown ? " open" : ""}>`,
    `<summary>${label}</summary>`,
    `<div class="thinking-text">${renderMarkdown(thinking)}</div>`,
    "</details>\n",
    renderMarkdown(answer),
  ].join("");
}
