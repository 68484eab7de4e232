/**
 * @module The settings dialog: sampling, system prompt, gateway URL and API key. A native `<dialog>`
 * gives focus trapping, Escape to close and focus return without extra code.
 */

import type { ApiKeyStore } from "./api-key-store.js";
import { byId } from "./dom.js";
import type { GatewayLocation } from "./gateway-url.js";
import type { Settings, SettingsStore } from "./settings-store.js";

/** The settings edited as plain text fields, keyed by their element id. */
const textFields = {
  "max-tokens": "maxTokens",
  temperature: "temperature",
  "top-p": "topP",
  "top-k": "topK",
  seed: "seed",
  "stop-strings": "stop",
  "system-prompt": "systemPrompt",
} as const satisfies Record<string, keyof Settings>;

/** Options of `createSettingsPanel`. */
export interface SettingsPanelOptions {
  readonly document: Document;
  readonly dialog: HTMLDialogElement;
  readonly openButton: HTMLButtonElement;
  readonly store: SettingsStore;
  /** The API key, kept apart from the settings (sessionStorage). */
  readonly apiKey: ApiKeyStore;
  /** The gateway in use, to explain where its URL comes from. */
  readonly gateway: () => GatewayLocation;
  /** Called after the user changed the gateway URL. */
  readonly onGatewayChange: () => void;
}

/** The panel's controls for the rest of the page. */
export interface SettingsPanel {
  /** Shows the stored values and the gateway in use again. */
  refresh(): void;
}

/** Wires the settings dialog to the store. */
export function createSettingsPanel(options: SettingsPanelOptions): SettingsPanel {
  const { document, dialog, store } = options;
  const gatewayInput = byId(document, "gateway-url", HTMLInputElement);
  const gatewayNote = byId(document, "gateway-note", HTMLElement);
  const apiKeyInput = byId(document, "api-key", HTMLInputElement);
  const fields = Object.entries(textFields).map(([id, key]) => {
    const element = document.getElementById(id);
    if (!(element instanceof HTMLInputElement || element instanceof HTMLTextAreaElement)) {
      throw new Error(`index.html lacks the #${id} field`);
    }
    element.addEventListener("input", () => store.update({ [key]: element.value }));
    return { element, key };
  });

  const refresh = () => {
    const settings = store.get();
    for (const { element, key } of fields) {
      element.value = settings[key];
    }
    const gateway = options.gateway();
    apiKeyInput.value = options.apiKey.get();
    gatewayInput.placeholder = document.location.origin;
    gatewayInput.value = gateway.source === "query" ? gateway.url : settings.gatewayUrl;
    gatewayInput.disabled = gateway.source === "query";
    gatewayNote.textContent =
      gateway.source === "query"
        ? "Set by ?gateway= in the address bar. Remove it there to edit this field."
        : "Empty: the gateway that served this page. Another origin must allow this page with --cors-origin.";
  };

  // A new key may be what the model list failed for: load it again, as for a new gateway.
  apiKeyInput.addEventListener("change", () => {
    options.apiKey.set(apiKeyInput.value);
    options.onGatewayChange();
  });
  gatewayInput.addEventListener("change", () => {
    store.update({ gatewayUrl: gatewayInput.value.trim() });
    options.onGatewayChange();
  });
  byId(document, "reset-settings", HTMLButtonElement).addEventListener("click", () => {
    store.resetSampling();
    refresh();
  });
  options.openButton.addEventListener("click", () => {
    refresh();
    dialog.showModal();
  });
  // A click on the backdrop lands on the dialog element itself: close, as other apps do.
  dialog.addEventListener("click", (event) => {
    if (event.target === dialog) {
      dialog.close();
    }
  });
  refresh();
  return { refresh };
}
