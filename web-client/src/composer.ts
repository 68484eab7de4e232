/**
 * @module The message box at the bottom: Enter sends, Shift+Enter breaks the line, the box
 * grows with its text, and Send turns into Stop while a reply streams.
 */

/** Options of `createComposer`. */
export interface ComposerOptions {
  readonly form: HTMLFormElement;
  readonly textarea: HTMLTextAreaElement;
  readonly sendButton: HTMLButtonElement;
  readonly stopButton: HTMLButtonElement;
  /** Called with the trimmed text when the user sends; the box is emptied. */
  readonly onSend: (text: string) => void;
  readonly onStop: () => void;
}

/** The composer's controls for the rest of the page. */
export interface Composer {
  /** Shows Stop instead of Send and holds back sending while a reply streams. */
  setBusy(busy: boolean): void;
  /** Puts text in the box (a suggestion) and focuses it. */
  fill(text: string): void;
  focus(): void;
  setPlaceholder(text: string): void;
}

/** Wires the composer's elements. */
export function createComposer(options: ComposerOptions): Composer {
  const { form, textarea, sendButton, stopButton } = options;
  let busy = false;

  const autosize = () => {
    textarea.style.height = "auto";
    textarea.style.height = `${textarea.scrollHeight}px`;
  };
  const refreshSend = () => {
    sendButton.disabled = textarea.value.trim() === "";
  };
  const send = () => {
    const text = textarea.value.trim();
    if (busy || text === "") {
      return;
    }
    textarea.value = "";
    autosize();
    refreshSend();
    options.onSend(text);
  };

  form.addEventListener("submit", (event) => {
    event.preventDefault();
    send();
  });
  textarea.addEventListener("keydown", (event) => {
    // isComposing: Enter that confirms an IME candidate (Japanese, Chinese…) must not send.
    if (event.key === "Enter" && !event.shiftKey && !event.isComposing) {
      event.preventDefault();
      send();
    }
  });
  textarea.addEventListener("input", () => {
    autosize();
    refreshSend();
  });
  stopButton.addEventListener("click", () => {
    options.onStop();
    textarea.focus();
  });
  refreshSend();

  return {
    setBusy(next) {
      busy = next;
      sendButton.hidden = next;
      stopButton.hidden = !next;
    },
    fill(text) {
      textarea.value = text;
      autosize();
      refreshSend();
      textarea.focus();
    },
    focus: () => textarea.focus(),
    setPlaceholder(text) {
      textarea.placeholder = text;
    },
  };
}
