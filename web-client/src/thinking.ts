/**
 * @module The `<think>…</think>` section reasoning models (DeepSeek-R1, Qwen3, QwQ) write before
 * their answer. The page folds it away, and it is left out of the history sent back to the
 * model, as those models' own chat templates do.
 */

/** A reply split into its reasoning and its answer. */
export interface SplitReply {
  /** The reasoning, without its tags; undefined when the reply has none. */
  readonly thinking: string | undefined;
  /** True while the reasoning has not been closed yet (it is still streaming). */
  readonly thinkingOpen: boolean;
  readonly answer: string;
}

const open = "<think>";
const close = "</think>";

/**
 * Splits a reply. The reasoning counts only at the start of the reply; a template that opens
 * the tag in the prompt makes the reply start inside it, so a `</think>` with no `<think>`
 * before it closes a section that started with the reply.
 */
export function splitThinking(text: string): SplitReply {
  const start = text.trimStart();
  const opened = start.startsWith(open);
  const body = opened ? start.slice(open.length) : text;
  const end = body.indexOf(close);
  if (end >= 0 && (opened || !body.slice(0, end).includes(open))) {
    return {
      thinking: body.slice(0, end).trim(),
      thinkingOpen: false,
      answer: body.slice(end + close.length).trimStart(),
    };
  }
  if (opened) {
    return { thinking: body.trim(), thinkingOpen: true, answer: "" };
  }
  return { thinking: undefined, thinkingOpen: false, answer: text };
}

/** The reply without its reasoning, as it goes back to the model in the history. */
export function withoutThinking(text: string): string {
  return splitThinking(text).answer;
}
