/**
 * @module The chat page: wires the stores, the gateway client and the widgets together, and
 * runs one reply at a time (in the open conversation; opening another one stops it).
 */
import { type Client, createClient } from "@connectrpc/connect";
import { InferenceService, type ModelInfo } from "@parley/gen/inference/v1/inference_pb";
import { createApiKeyStore } from "./api-key-store.js";
import { buildStreamRequest } from "./build-stream-request.js";
import { createChatView } from "./chat-view.js";
import { createComposer } from "./composer.js";
import { createContextMeter } from "./context-meter.js";
import { createConversationLibrary } from "./conversation-library.js";
import { createConversationList } from "./conversation-list.js";
import type { ConversationStore, UserTurn } from "./conversation-store.js";
import { describeError } from "./describe-error.js";
import { byId } from "./dom.js";
import { renderErrorCard } from "./error-card.js";
import { gatewayHost, resolveGatewayUrl } from "./gateway-url.js";
import { createModelPicker } from "./model-picker.js";
import {
  createProtocolTransport,
  isProtocol,
  type Protocol,
  protocolLabel,
  protocols,
} from "./protocol-transport.js";
import { onRendererUpgrade } from "./render-markdown.js";
import { createSafeStorage } from "./safe-storage.js";
import { createSettingsPanel } from "./settings-panel.js";
import { createSettingsStore, type Mode } from "./settings-store.js";
import { streamReply } from "./stream-reply.js";
import { createThemeToggle } from "./theme.js";

/** Options of `createApp`. */
export interface AppOptions {
  readonly document: Document;
  readonly window: Window;
}

/** Starts the page: restores the conversation and settings, then loads the model list. */
export function createApp(options: AppOptions): void {
  const { document, window } = options;
  const storage = createSafeStorage(() => window.localStorage);
  const settings = createSettingsStore({ storage });
  const apiKey = createApiKeyStore(createSafeStorage(() => window.sessionStorage));
  const library = createConversationLibrary({ storage });
  let conversation = library.current();
  const gateway = () =>
    resolveGatewayUrl({
      search: window.location.search,
      origin: window.location.origin,
      saved: settings.get().gatewayUrl,
    });
  const client = (protocol: Protocol): Client<typeof InferenceService> =>
    createClient(
      InferenceService,
      createProtocolTransport({ protocol, baseUrl: gateway().url, apiKey: apiKey.get }),
    );
  const describe = (error: unknown, protocol: Protocol) =>
    describeError(error, {
      gatewayUrl: gateway().url,
      pageOrigin: window.location.origin,
      protocol: protocolLabel(protocol),
    });

  const scroller = byId(document, "conversation-scroll", HTMLElement);
  const emptyState = byId(document, "empty-state", HTMLElement);
  const banner = byId(document, "banner", HTMLElement);
  const composerNote = byId(document, "composer-note", HTMLElement);
  const gatewayLabel = byId(document, "gateway-label", HTMLElement);
  const protocolSelect = byId(document, "protocol", HTMLSelectElement);
  const modeInputs = [...document.querySelectorAll<HTMLInputElement>('input[name="mode"]')];
  let inFlight: AbortController | undefined;
  let modelLoads = 0;

  const view = createChatView({
    list: byId(document, "turns", HTMLElement),
    scroller,
    onRegenerate: (turn) => {
      const turns = conversation.turns();
      const question = turns[turns.indexOf(turn) - 1];
      if (inFlight !== undefined || turns.at(-1) !== turn || question?.role !== "user") {
        return;
      }
      conversation.remove(turn.id);
      view.remove(turn);
      void reply(question);
    },
    onEdit: (turn, text) => {
      stopReply();
      conversation.truncateFrom(turn.id);
      const edited = conversation.addUser(turn.mode, text);
      view.render(conversation.turns());
      void reply(edited);
    },
  });
  const meter = createContextMeter({
    box: byId(document, "context-use", HTMLElement),
    meter: byId(document, "context-meter", HTMLMeterElement),
    label: byId(document, "context-label", HTMLElement),
  });
  const composer = createComposer({
    form: byId(document, "composer", HTMLFormElement),
    textarea: byId(document, "prompt", HTMLTextAreaElement),
    sendButton: byId(document, "send", HTMLButtonElement),
    stopButton: byId(document, "stop", HTMLButtonElement),
    onSend: (text) => {
      const turn = conversation.addUser(settings.get().mode, text);
      view.append(turn);
      refreshEmptyState();
      void reply(turn);
    },
    onStop: () => inFlight?.abort(),
  });
  const picker = createModelPicker({
    select: byId(document, "model", HTMLSelectElement),
    cards: [
      byId(document, "empty-model", HTMLElement),
      byId(document, "settings-model", HTMLElement),
    ],
    onChange: (model) => chooseModel(model),
  });
  const panel = createSettingsPanel({
    document,
    dialog: byId(document, "settings", HTMLDialogElement),
    openButton: byId(document, "open-settings", HTMLButtonElement),
    store: settings,
    apiKey,
    gateway,
    onGatewayChange: () => void loadModels(),
  });

  const sidebar = createConversationList({
    document,
    window,
    library,
    toggle: byId(document, "toggle-sidebar", HTMLButtonElement),
    pane: byId(document, "chat-pane", HTMLElement),
    onOpen: (store) => show(store),
  });

  /** Streams the reply to `question` into a new assistant turn of the open conversation. */
  async function reply(question: UserTurn): Promise<void> {
    const current = settings.get();
    const protocol = current.protocol;
    const store = conversation;
    const turn = store.addAssistant(question.mode);
    view.append(turn);
    const controller = new AbortController();
    inFlight = controller;
    composer.setBusy(true);
    try {
      const outcome = await streamReply({
        client: client(protocol),
        request: buildStreamRequest({
          turns: store.turns(),
          prompt: question,
          settings: current,
        }),
        signal: controller.signal,
        onText: (text) => {
          turn.text += text;
          view.refreshText(turn);
        },
        onProgress: (progress) => view.refreshText(turn, progress),
        now: () => window.performance.now(),
      });
      turn.status = outcome.stopped ? "stopped" : "done";
      turn.stats = {
        model: outcome.model,
        protocol,
        ttftMs: outcome.ttftMs,
        tokensPerSecond: outcome.tokensPerSecond,
        completionTokens: outcome.completionTokens,
        promptTokens: outcome.promptTokens,
        finishReason: outcome.finishReason,
      };
    } catch (error) {
      turn.status = "error";
      turn.error = describe(error, protocol);
    } finally {
      store.save();
      view.update(turn);
      refreshMeter();
      // New chat may have aborted this reply and started another one meanwhile.
      if (inFlight === controller) {
        inFlight = undefined;
        composer.setBusy(false);
      }
    }
  }

  /** Loads the model list; a failure shows in a banner with a Retry button. */
  async function loadModels(): Promise<void> {
    const attempt = ++modelLoads;
    const protocol = settings.get().protocol;
    gatewayLabel.textContent = gatewayHost(gateway().url);
    banner.hidden = true;
    picker.setLoading();
    try {
      const { models } = await client(protocol).listModels({}, { timeoutMs: 15_000 });
      if (attempt !== modelLoads) {
        return; // The gateway changed while this list was on its way.
      }
      picker.setModels(models, settings.get().model);
      chooseModel(picker.selected());
      if (models.length === 0) {
        showBanner("This gateway serves no models.");
      }
    } catch (error) {
      if (attempt !== modelLoads) {
        return;
      }
      picker.setUnavailable();
      chooseModel(undefined);
      showBanner(renderErrorCard(describe(error, protocol), () => void loadModels()));
    }
  }

  /** Stops the reply that is streaming, keeping the text it has so far. */
  function stopReply(): void {
    inFlight?.abort();
    inFlight = undefined;
    composer.setBusy(false);
  }

  /** Shows another conversation (the reply streaming in the previous one stops). */
  function show(store: ConversationStore): void {
    stopReply();
    conversation = store;
    view.render(store.turns());
    refreshEmptyState();
    refreshMeter();
    composer.focus();
  }

  function refreshMeter(): void {
    meter.show(conversation.turns(), picker.selected()?.contextLength);
  }

  function showBanner(content: Node | string): void {
    banner.replaceChildren(content);
    banner.hidden = false;
  }

  /** Records the chosen model; a model new to this mode choice gets Chat or Complete picked. */
  function chooseModel(model: ModelInfo | undefined): void {
    if (model !== undefined) {
      const current = settings.get();
      settings.update({ model: model.id });
      if (current.modeModel !== model.id) {
        settings.update({
          mode: model.hasChatTemplate ? "chat" : "completion",
          modeModel: model.id,
        });
      }
    }
    refreshMode();
    refreshMeter();
  }

  function refreshMode(): void {
    const mode = settings.get().mode;
    for (const input of modeInputs) {
      input.checked = input.value === mode;
    }
    const model = picker.selected();
    composer.setPlaceholder(mode === "chat" ? "Message the model…" : "Write the start of a text…");
    composerNote.textContent =
      mode === "chat" && model !== undefined && !model.hasChatTemplate
        ? `${model.id} has no chat template: Chat mode will be refused. Use Complete.`
        : "";
  }

  function refreshEmptyState(): void {
    emptyState.hidden = conversation.turns().length > 0;
  }

  protocolSelect.replaceChildren(
    ...protocols.map(
      ({ id, label }) => new Option(label, id, false, id === settings.get().protocol),
    ),
  );
  protocolSelect.addEventListener("change", () => {
    if (isProtocol(protocolSelect.value)) {
      settings.update({ protocol: protocolSelect.value });
    }
  });
  for (const input of modeInputs) {
    input.addEventListener("change", () => {
      const mode: Mode = input.value === "completion" ? "completion" : "chat";
      settings.update({ mode, modeModel: picker.selected()?.id ?? settings.get().modeModel });
      refreshMode();
    });
  }
  for (const id of ["new-chat", "sidebar-new-chat"]) {
    byId(document, id, HTMLButtonElement).addEventListener("click", () => {
      sidebar.closeOverlay();
      show(library.startNew());
    });
  }
  for (const suggestion of document.querySelectorAll<HTMLButtonElement>("[data-suggestion]")) {
    suggestion.addEventListener("click", () => composer.fill(suggestion.dataset.suggestion ?? ""));
  }
  document.addEventListener("keydown", (event) => {
    if (
      event.key === "Escape" &&
      inFlight !== undefined &&
      !document.querySelector("dialog[open]")
    ) {
      inFlight.abort();
    }
  });
  // A reply still streaming when the page goes away is saved with the text it had.
  window.addEventListener("pagehide", () => conversation.save());

  onRendererUpgrade(() => view.rerender());
  createThemeToggle({
    root: document.documentElement,
    button: byId(document, "theme-toggle", HTMLButtonElement),
    store: settings,
  });
  view.render(conversation.turns());
  refreshEmptyState();
  refreshMode();
  panel.refresh();
  void loadModels();
  composer.focus();
}
