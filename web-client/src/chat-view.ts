/**
 * @module The conversation column. Whole turns are rendered once. A chat reply shows as
 * Markdown, which must be rendered again as it grows, so a streaming reply (and its live
 * numbers) is redrawn at most once per animation frame however many tokens arrived in it, and
 * once more when it ends. What the user typed, and completions of a raw prompt, stay plain text.
 */
import type { AssistantTurn, Turn, UserTurn } from "./conversation-store.js";
import { h, icon, smallIconButton } from "./dom.js";
import { renderErrorCard } from "./error-card.js";
import { formatLiveStats, formatStats } from "./format-stats.js";
import { renderReply } from "./render-reply.js";
import type { StreamProgress } from "./stream-reply.js";

/** Options of `createChatView`. */
export interface ChatViewOptions {
  /** The list the turns go in. */
  readonly list: HTMLElement;
  /** The element that scrolls; kept at the bottom while the user has not scrolled up. */
  readonly scroller: HTMLElement;
  /** Asks for the reply to be generated again (Regenerate, or Retry after an error). */
  readonly onRegenerate: (turn: AssistantTurn) => void;
  /** Asks for `turn` to be replaced by `text`, and what followed it by a new reply. */
  readonly onEdit: (turn: UserTurn, text: string) => void;
}

/** Shows turns and keeps them up to date. */
export interface ChatView {
  /** Replaces everything shown with these turns. */
  render(turns: readonly Turn[]): void;
  append(turn: Turn): void;
  /**
   * Shows a streaming reply's text as `turn.text` now stands, and its numbers so far, at the
   * next animation frame.
   */
  refreshText(turn: AssistantTurn, progress?: StreamProgress): void;
  /** Redraws a reply, its text at once, after its status changed. */
  update(turn: AssistantTurn): void;
  remove(turn: Turn): void;
  /** Renders every reply's Markdown again (a code language or KaTeX has just loaded). */
  rerender(): void;
}

interface Rendered {
  readonly turn: Turn;
  readonly item: HTMLElement;
  readonly textBox: HTMLElement;
  /** The animation frame that will redraw the text, while one is requested. */
  frame: number | undefined;
  /** The newest numbers of a streaming reply. */
  progress: StreamProgress | undefined;
  /** Whether the user unfolded the reply's reasoning. */
  thinkingShown: boolean;
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
    const body = h("div", { class: "turn-body" });
    const item = h(
      "li",
      { class: `turn turn--${turn.role}`, "data-role": turn.role, "data-mode": turn.mode },
      body,
    );
    const entry: Rendered = {
      turn,
      item,
      textBox,
      frame: undefined,
      progress: undefined,
      thinkingShown: false,
    };
    rendered.set(turn.id, entry);
    showText(entry);
    if (turn.role === "user") {
      body.append(h("span", { class: "sr-only" }, turn.mode === "chat" ? "You said:" : "Prompt:"));
      if (turn.mode === "completion") {
        body.append(h("span", { class: "turn-label", "aria-hidden": "true" }, "Prompt"));
      }
      body.append(textBox);
      item.prepend(userActions(turn, item));
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
    decorate(entry, turn, body);
    return item;
  };

  /** The Edit button beside a message, and the editor it opens in place of the bubble. */
  const userActions = (turn: UserTurn, item: HTMLElement): HTMLElement => {
    const edit = smallIconButton("edit", "Edit message", "Edit and send again", "edit-button");
    edit.addEventListener("click", () => {
      const textarea = h("textarea", { class: "edit-text", "aria-label": "Edit message" });
      textarea.value = turn.text;
      const cancel = h("button", { type: "button", class: "button-secondary" }, "Cancel");
      const save = h("button", { type: "submit", class: "button-primary" }, "Send");
      const form = h(
        "form",
        { class: "turn-editor" },
        textarea,
        h(
          "div",
          { class: "turn-editor-actions" },
          h("span", { class: "edit-note" }, "Replies after this message will be replaced."),
          cancel,
          save,
        ),
      );
      const close = () => {
        form.remove();
        item.classList.remove("turn--editing");
        edit.focus();
      };
      const submit = () => {
        const text = textarea.value.trim();
        if (text !== "") {
          options.onEdit(turn, text);
        }
      };
      form.addEventListener("submit", (event) => {
        event.preventDefault();
        submit();
      });
      textarea.addEventListener("keydown", (event) => {
        if (event.key === "Enter" && !event.shiftKey && !event.isComposing) {
          event.preventDefault();
          submit();
        } else if (event.key === "Escape") {
          event.stopPropagation();
          close();
        }
      });
      cancel.addEventListener("click", close);
      item.classList.add("turn--editing");
      item.append(form);
      textarea.style.height = `${Math.min(textarea.scrollHeight + 4, 320)}px`;
      textarea.focus();
      textarea.setSelectionRange(textarea.value.length, textarea.value.length);
    });
    return h("div", { class: "turn-actions" }, edit);
  };

  const decorate = (entry: Rendered, turn: AssistantTurn, body: HTMLElement) => {
    const { item, textBox } = entry;
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
      body.append(renderErrorCard(turn.error, () => options.onRegenerate(turn)));
    }
    const footer = h("div", { class: "turn-footer" });
    const meta = h("p", { class: streaming ? "turn-meta turn-live" : "turn-meta" });
    footer.append(meta);
    if (streaming) {
      showLive(meta, entry.progress);
      body.append(footer);
      return;
    }
    if (turn.stats !== undefined) {
      for (const stat of formatStats(turn.stats, turn.status)) {
        meta.append(h("span", { title: stat.title }, stat.text));
      }
    }
    if (turn.text !== "" && navigator.clipboard !== undefined) {
      footer.append(copyButton("Copy reply", () => turn.text));
    }
    if (turn.error === undefined) {
      const again = smallIconButton("retry", "Regenerate reply", "Regenerate", "regenerate-button");
      again.addEventListener("click", () => options.onRegenerate(turn));
      footer.append(again);
    }
    body.append(footer);
  };

  // One listener serves the Copy button of every code block, however often replies redraw.
  list.addEventListener("click", (event) => {
    const button = event.target instanceof Element ? event.target.closest(".code-copy") : null;
    const code = button?.closest(".code-block")?.querySelector("pre > code");
    if (button instanceof HTMLButtonElement && code != null) {
      copyText(code.textContent ?? "", (label) => {
        button.textContent = label === "Copied" ? "Copied" : "Copy";
        button.setAttribute("aria-label", label === "Copied" ? "Copied" : label);
      });
    }
  });
  // `toggle` does not bubble: listen while it goes down, to remember an unfolded reasoning.
  list.addEventListener(
    "toggle",
    (event) => {
      const details = event.target;
      const item = details instanceof HTMLDetailsElement ? details.closest(".turn") : null;
      for (const entry of rendered.values()) {
        if (entry.item === item && details instanceof HTMLDetailsElement) {
          entry.thinkingShown = details.open;
        }
      }
    },
    true,
  );

  const scheduleText = (entry: Rendered) => {
    if (entry.frame !== undefined) {
      return;
    }
    entry.frame = requestAnimationFrame(() => {
      entry.frame = undefined;
      keepAtBottom(() => {
        showText(entry);
        const live = entry.item.querySelector<HTMLElement>(".turn-live");
        if (live !== null) {
          showLive(live, entry.progress);
        }
      });
    });
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
    refreshText(turn, progress) {
      const entry = rendered.get(turn.id);
      if (entry === undefined) {
        return;
      }
      entry.progress = progress ?? entry.progress;
      scheduleText(entry);
    },
    update(turn) {
      const entry = rendered.get(turn.id);
      const body = entry?.item.querySelector<HTMLElement>(".turn-body");
      if (entry === undefined || body == null) {
        return;
      }
      cancelFrame(entry);
      keepAtBottom(() => {
        showText(entry);
        decorate(entry, turn, body);
      });
    },
    remove(turn) {
      rendered.get(turn.id)?.item.remove();
      forget(turn.id);
    },
    rerender() {
      for (const entry of rendered.values()) {
        if (!entry.textBox.classList.contains("markdown")) {
          continue;
        }
        if (entry.turn.role === "assistant" && entry.turn.status === "streaming") {
          scheduleText(entry); // Joins the next frame's redraw, so still once a frame.
        } else {
          showText(entry);
        }
      }
    },
  };
}

/** Fills a turn's text box: Markdown for a box marked so, else the text as it is. */
function showText(entry: Rendered): void {
  const { textBox, turn } = entry;
  if (textBox.classList.contains("markdown")) {
    // The "toggle" event is queued, so a redraw can come between a click and it: read the fold
    // being replaced, not only what the last toggle event recorded.
    const shown = textBox.querySelector("details.thinking");
    if (shown instanceof HTMLDetailsElement) entry.thinkingShown = shown.open;
    textBox.innerHTML = renderReply(turn.text, { thinkingShown: entry.thinkingShown });
  } else {
    textBox.textContent = turn.text;
  }
}

function showLive(meta: HTMLElement, progress: StreamProgress | undefined): void {
  meta.replaceChildren(
    ...formatLiveStats(progress).map((stat) => h("span", { title: stat.title }, stat.text)),
  );
}

/** Copies text; `show` gets "Copied", then (1.5 s later) "Copy", or why it failed. */
function copyText(text: string, show: (label: string) => void): void {
  navigator.clipboard.writeText(text).then(
    () => {
      show("Copied");
      setTimeout(() => show("Copy"), 1500);
    },
    () => show("Copy failed: the browser refused clipboard access"),
  );
}

function copyButton(label: string, text: () => string): HTMLButtonElement {
  const button = smallIconButton("copy", label, "Copy");
  button.addEventListener("click", () => {
    copyText(text(), (state) => {
      button.replaceChildren(icon(state === "Copied" ? "check" : "copy"));
      const name = state === "Copy" ? label : state;
      button.setAttribute("aria-label", name);
      button.title = name;
    });
  });
  return button;
}
