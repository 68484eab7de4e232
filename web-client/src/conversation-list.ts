/**
 * @module The conversations sidebar: search by title, open, rename in place, export, delete,
 * import a file, and how much of the storage bound is used (or why saving failed). On wide
 * screens it sits beside the chat; on narrow ones it slides over it, and the chat is `inert`
 * meanwhile so that focus stays in the sidebar until Escape, a choice or the scrim closes it.
 */
import type { ConversationLibrary, ConversationSummary } from "./conversation-library.js";
import type { ConversationStore } from "./conversation-store.js";
import { byId, h, smallIconButton } from "./dom.js";

/** Options of `createConversationList`. */
export interface ConversationListOptions {
  readonly document: Document;
  readonly window: Window;
  readonly library: ConversationLibrary;
  /** The button in the top bar that shows and hides the sidebar. */
  readonly toggle: HTMLButtonElement;
  /** The chat beside the sidebar, made inert while the sidebar covers it. */
  readonly pane: HTMLElement;
  /** Called after another conversation was opened (chosen, new, imported, or the open one deleted). */
  readonly onOpen: (store: ConversationStore) => void;
}

/** The sidebar's controls for the rest of the page. */
export interface ConversationList {
  /** Hides the sidebar when it covers the chat. */
  closeOverlay(): void;
}

/** Wires the sidebar to the library. */
export function createConversationList(options: ConversationListOptions): ConversationList {
  const { document, window, library, toggle, pane } = options;
  const root = document.documentElement;
  const sidebar = byId(document, "sidebar", HTMLElement);
  const search = byId(document, "conversation-search", HTMLInputElement);
  const list = byId(document, "conversation-list", HTMLElement);
  const empty = byId(document, "conversation-empty", HTMLElement);
  const note = byId(document, "storage-note", HTMLElement);
  const importInput = byId(document, "import-conversation", HTMLInputElement);
  const narrow = window.matchMedia("(max-width: 900px)");
  let importError: string | undefined;
  let renaming: string | undefined;

  const isOpen = () => toggle.getAttribute("aria-expanded") === "true";
  const setOpen = (open: boolean, focus = false) => {
    toggle.setAttribute("aria-expanded", String(open));
    root.classList.toggle("sidebar-open", open);
    const overlay = open && narrow.matches;
    pane.inert = overlay;
    if (overlay && focus) {
      search.focus();
    }
  };
  const closeOverlay = () => {
    if (narrow.matches && isOpen()) {
      setOpen(false);
      toggle.focus();
    }
  };
  const opened = (store: ConversationStore | undefined) => {
    if (store !== undefined) {
      closeOverlay();
      options.onOpen(store);
    }
  };

  const item = (summary: ConversationSummary): HTMLElement => {
    const current = summary.id === library.current().id;
    const li = h("li", {
      class: "conversation-item",
      "aria-current": current ? "true" : undefined,
    });
    if (renaming === summary.id) {
      li.append(renameField(summary));
      return li;
    }
    const open = h(
      "button",
      { type: "button", class: "conversation-open", title: summary.title },
      summary.title,
    );
    open.addEventListener("click", () => opened(library.open(summary.id)));
    const action = (name: "edit" | "download" | "trash", label: string, run: () => void) => {
      const button = smallIconButton(name, `${label} “${summary.title}”`, label);
      button.addEventListener("click", run);
      return button;
    };
    li.append(
      open,
      h(
        "div",
        { class: "conversation-actions" },
        action("edit", "Rename", () => {
          renaming = summary.id;
          refresh();
        }),
        action("download", "Export as JSON", () => download(summary.id)),
        action("trash", "Delete", () => {
          if (window.confirm(`Delete “${summary.title}”? This cannot be undone.`)) {
            const wasCurrent = summary.id === library.current().id;
            library.remove(summary.id);
            if (wasCurrent) {
              options.onOpen(library.current());
            }
            search.focus();
          }
        }),
      ),
    );
    return li;
  };

  const renameField = (summary: ConversationSummary): HTMLElement => {
    const input = h("input", {
      type: "text",
      class: "conversation-rename",
      "aria-label": "Conversation title",
      maxlength: "200",
    });
    input.value = summary.title;
    let done = false;
    const finish = (save: boolean) => {
      if (done) {
        return;
      }
      done = true;
      renaming = undefined;
      if (save) {
        library.rename(summary.id, input.value);
      }
      refresh();
      list
        .querySelector<HTMLElement>(`[data-id="${CSS.escape(summary.id)}"] .conversation-open`)
        ?.focus();
    };
    input.addEventListener("keydown", (event) => {
      if (event.key === "Enter") {
        event.preventDefault();
        finish(true);
      } else if (event.key === "Escape") {
        event.preventDefault();
        event.stopPropagation();
        finish(false);
      }
    });
    input.addEventListener("blur", () => finish(true));
    queueMicrotask(() => {
      input.focus();
      input.select();
    });
    return input;
  };

  const download = (id: string) => {
    const file = library.exportFile(id);
    if (file === undefined) {
      return;
    }
    const url = URL.createObjectURL(new Blob([file.json], { type: "application/json" }));
    const link = h("a", { href: url, download: file.name });
    document.body.append(link);
    link.click();
    link.remove();
    setTimeout(() => URL.revokeObjectURL(url), 10_000);
  };

  const refresh = () => {
    const query = search.value;
    const summaries = library.list(query);
    list.replaceChildren(
      ...summaries.map((summary) => {
        const li = item(summary);
        li.dataset.id = summary.id;
        return li;
      }),
    );
    empty.hidden = summaries.length > 0;
    empty.textContent =
      query.trim() === "" ? "No saved conversations yet." : `No title contains “${query.trim()}”.`;
    const problem = importError ?? library.problem();
    const { used, limit } = library.usage();
    note.classList.toggle("storage-note--problem", problem !== undefined);
    note.setAttribute("role", problem === undefined ? "status" : "alert");
    note.textContent = problem ?? `${amount(used)} of ${amount(limit)} of browser storage used`;
  };

  toggle.addEventListener("click", () => setOpen(!isOpen(), true));
  byId(document, "sidebar-close", HTMLButtonElement).addEventListener("click", closeOverlay);
  byId(document, "sidebar-scrim", HTMLElement).addEventListener("click", closeOverlay);
  sidebar.addEventListener("keydown", (event) => {
    if (event.key === "Escape" && narrow.matches && isOpen()) {
      event.stopPropagation(); // Closing the sidebar must not also stop a streaming reply.
      closeOverlay();
    }
  });
  search.addEventListener("input", refresh);
  importInput.addEventListener("change", () => {
    const file = importInput.files?.[0];
    importInput.value = "";
    if (file === undefined) {
      return;
    }
    void file.text().then((text) => {
      const result = library.importFile(text);
      importError = result.ok ? undefined : `${file.name}: ${result.message}`;
      if (result.ok) {
        opened(result.store);
      }
      refresh();
    });
  });
  narrow.addEventListener("change", () => setOpen(!narrow.matches));
  library.subscribe(() => {
    importError = undefined;
    refresh();
  });
  setOpen(!narrow.matches);
  refresh();
  return { closeOverlay };
}

/** Characters as kB or MB (one character of JSON text is about one byte). */
function amount(chars: number): string {
  return chars < 100_000
    ? `${Math.ceil(chars / 1000)} kB`
    : `${(chars / 1_000_000).toFixed(1).replace(/\.0$/, "")} MB`;
}
