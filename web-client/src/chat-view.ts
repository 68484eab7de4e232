/**
 * @module The conversation column. Whole turns are rendered once. A chat reply shows as
 * Markdown, which must be rendered again as it grows, so a streaming reply is redrawn at most
 * once per animation frame however many tokens arrived in it, and once more when it ends.
 * What the user typed, and completions of a raw prompt, stay plain text.
 */
import type { AssistantTurn, Turn } from "./conversation-store.js";
import { h, icon } from "./dom.js";
import { renderErrorCard } from "./error-card.js";
import { formatStats } from "./format-stats.js";
import { renderMarkdown } from "./render-markdown.js";

/** Options of `createChatView`. */
export interface ChatViewOptions {
  /** The list the turns go in. */
  readonly list: HTMLElement;
  /** The element that scrolls; kept at the bottom while the user has not scrolled up. */
  readonly scroller: HTMLElement;
  /** Asks for the reply to be generated again. */
  readonly onRetry: (turn: AssistantTurn) => void;
}

/** Shows turns and keeps them up to date. */
export interface ChatView {
  /** Replaces everything shown with these turns. */
  render(turns: readonly Turn[]): void;
  append(turn: Turn): void;
  /** Shows a streaming reply's text as `turn.text` now stands, at the next animation frame. */
  refreshText(turn: AssistantTurn): void;
  /** Redraws a reply, its text at once, after its status changed. */
  update(turn: AssistantTurn): void;
  remove(turn: Turn): void;
}

interface Rendered {
  readonly item: HTMLElement;
  readonly textBox: HTMLElement;
  /** The animation frame that will redraw the text, while one is requested. */
  frame: number | undefined;
}

/** Creates the view over an empty list. */
export function createChatView(options: ChatViewOptions): ChatView {
  const { list, scroller } = options;
  const rendered = new Map<string, Rendered>();
  const cancelFrame = (entry: Rendered) => {
    if (entry.frame !== undefined) {
      cancelAnimationFrame(entry.frame);
      entry.frame = undefined;
    }
  };
  const forget = (id: string) => {
    const entry = rendered.get(id);
    if (entry !== undefined) {
      cancelFrame(entry);
      rendered.delete(id);
    }
  };

  const nearBottom = () => scroller.scrollHeight - scroller.scrollTop - scroller.clientHeight < 80;
  const keepAtBottom = (change: () => void) => {
    const stick = nearBottom();
    change();
    if (stick) {
      scroller.scrollTop = scroller.scrollHeight;
    }
  };

  const draw = (turn: Turn): HTMLElement => {
    const markdown = turn.role === "assistant" && turn.mode === "chat";
    const textBox = h("div", { class: markdown ? "turn-text markdown" : "turn-text" });
    showText(textBox, turn);
    const body = h("div", { class: "turn-body" });
    const item = h(
      "li",
      { class: `turn turn--${turn.role}`, "data-role": turn.role, "data-mode": turn.mode },
      body,
    );
    rendered.set(turn.id, { item, textBox, frame: undefined });
    if (turn.role === "user") {
      body.append(h("span", { class: "sr-only" }, turn.mode === "chat" ? "You said:" : "Prompt:"));
      if (turn.mode === "completion") {
        body.append(h("span", { class: "turn-label", "aria-hidden": "true" }, "Prompt"));
      }
      body.append(textBox);
      return item;
    }
    item.prepend(h("div", { class: "avatar", "aria-hidden": "true" }));
    body.append(
      h("span", { class: "sr-only" }, turn.mode === "chat" ? "Parley replied:" : "Completion:"),
    );
    if (turn.mode === "completion") {
      body.append(h("span", { class: "turn-label", "aria-hidden": "true" }, "Completion"));
    }
    body.append(textBox);
    decorate(turn, item, textBox, body);
    return item;
  };

  const decorate = (
    turn: AssistantTurn,
    item: HTMLElement,
    textBox: HTMLElement,
    body: HTMLElement,
  ) => {
    item.dataset.status = turn.status;
    const streaming = turn.status === "streaming";
    // A live region that is busy is announced once, when it stops being busy: the whole reply
    // instead of a stream of fragments.
    textBox.setAttribute("aria-live", "polite");
    textBox.setAttribute("aria-busy", String(streaming));
    for (const old of body.querySelectorAll(".error-card, .turn-footer")) {
      old.remove();
    }
    if (turn.error !== undefined) {
      body.append(renderErrorCard(turn.error, () => options.onRetry(turn)));
    }
    if (streaming) {
      return;
    }
    const footer = h("div", { class: "turn-footer" });
    if (turn.stats !== undefined) {
      const meta = h("p", { class: "turn-meta" });
      for (const stat of formatStats(turn.stats, turn.status)) {
        meta.append(h("span", { title: stat.title }, stat.text));
      }
      footer.append(meta);
    }
    if (turn.text !== "" && navigator.clipboard !== undefined) {
      footer.append(copyButton(turn));
    }
    if (footer.childElementCount > 0) {
      body.append(footer);
    }
  };

  return {
    render(turns) {
      list.replaceChildren();
      for (const id of [...rendered.keys()]) {
        forget(id);
      }
      for (const turn of turns) {
        list.append(draw(turn));
      }
      scroller.scrollTop = scroller.scrollHeight;
    },
    append(turn) {
      list.append(draw(turn));
      scroller.scrollTop = scroller.scrollHeight;
    },
    refreshText(turn) {
      const entry = rendered.get(turn.id);
      if (entry === undefined || entry.frame !== undefined) {
        return;
      }
      entry.frame = requestAnimationFrame(() => {
        entry.frame = undefined;
        keepAtBottom(() => showText(entry.textBox, turn));
      });
    },
    update(turn) {
      const entry = rendered.get(turn.id);
      const body = entry?.item.querySelector<HTMLElement>(".turn-body");
      if (entry === undefined || body == null) {
        return;
      }
      cancelFrame(entry);
      keepAtBottom(() => {
        showText(entry.textBox, turn);
        decorate(turn, entry.item, entry.textBox, body);
      });
    },
    remove(turn) {
      rendered.get(turn.id)?.item.remove();
      forget(turn.id);
    },
  };
}

/** Fills a turn's text box: Markdown for a box marked so, else the text as it is. */
function showText(box: HTMLElement, turn: Turn): void {
  if (box.classList.contains("markdown")) {
    box.innerHTML = renderMarkdown(turn.text);
  } else {
    box.textContent = turn.text;
  }
}

function copyButton(turn: AssistantTurn): HTMLButtonElement {
  const button = h("button", {
    type: "button",
    class: "icon-button icon-button--small",
    "aria-label": "Copy reply",
    title: "Copy",
  });
  button.append(icon("copy"));
  button.addEventListener("click", () => {
    const show = (name: "copy" | "check", label: string) => {
      button.replaceChildren(icon(name));
      button.setAttribute("aria-label", label);
      button.title = label;
    };
    navigator.clipboard.writeText(turn.text).then(
      () => {
        show("check", "Copied");
        setTimeout(() => show("copy", "Copy reply"), 1500);
      },
      () => show("copy", "Copy failed: the browser refused clipboard access"),
    );
  });
  return button;
}
