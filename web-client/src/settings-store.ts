/**
 * @module The user's choices (gateway, protocol, model, mode, sampling), kept across reloads.
 * Sampling fields stay as typed text so that an empty field can mean "the model's default".
 */
import { isProtocol, type Protocol } from "./protocol-transport.js";
import { type KeyValueStorage, readJson } from "./safe-storage.js";

/** How a prompt is sent: as chat `messages` (chat template applies) or as a raw `prompt`. */
export type Mode = "chat" | "completion";

/** The colour scheme: the system's, or always light or dark. */
export type Theme = "system" | "light" | "dark";

/** Everything the settings panel and the composer toolbar let the user pick. */
export interface Settings {
  /** The gateway URL typed in the settings; empty means the page's own origin. */
  readonly gatewayUrl: string;
  readonly protocol: Protocol;
  /** A model id from ListModels; empty means the gateway's default model. */
  readonly model: string;
  readonly mode: Mode;
  /** The model `mode` was last chosen for: a different model gets its mode picked again. */
  readonly modeModel: string;
  readonly maxTokens: string;
  readonly temperature: string;
  readonly topP: string;
  readonly topK: string;
  readonly seed: string;
  /** Stop strings, one per line. */
  readonly stop: string;
  /** Sent as the first message in chat mode when not empty. */
  readonly systemPrompt: string;
  readonly theme: Theme;
}

/** The settings of a first visit. */
export const defaultSettings: Settings = {
  gatewayUrl: "",
  protocol: "connect-json",
  model: "",
  mode: "chat",
  modeModel: "",
  maxTokens: "256",
  temperature: "",
  topP: "",
  topK: "",
  seed: "",
  stop: "",
  systemPrompt: "",
  theme: "system",
};

/** Reads and writes the settings; every update is saved at once. */
export interface SettingsStore {
  get(): Settings;
  update(patch: Partial<Settings>): Settings;
  /** Restores the defaults but keeps the connection (gateway, protocol, model, mode) and theme. */
  resetSampling(): Settings;
}

/** Options of `createSettingsStore`. */
export interface SettingsStoreOptions {
  readonly storage: KeyValueStorage;
  /** @example "parley.settings.v1" */
  readonly key?: string;
}

/** Creates the store, loading what a previous visit saved and dropping values it cannot use. */
export function createSettingsStore(options: SettingsStoreOptions): SettingsStore {
  const key = options.key ?? "parley.settings.v1";
  let current = parseSettings(readJson(options.storage, key));
  const save = (next: Settings): Settings => {
    current = next;
    options.storage.setItem(key, JSON.stringify(current));
    return current;
  };
  return {
    get: () => current,
    update: (patch) => save({ ...current, ...patch }),
    resetSampling: () =>
      save({
        ...defaultSettings,
        gatewayUrl: current.gatewayUrl,
        protocol: current.protocol,
        model: current.model,
        mode: current.mode,
        modeModel: current.modeModel,
        theme: current.theme,
      }),
  };
}

function parseSettings(stored: unknown): Settings {
  if (typeof stored !== "object" || stored === null) {
    return defaultSettings;
  }
  const record = stored as Record<string, unknown>;
  const text = (name: keyof Settings): string => {
    const value = record[name];
    const fallback = defaultSettings[name];
    return typeof value === "string" ? value : fallback;
  };
  return {
    gatewayUrl: text("gatewayUrl"),
    protocol: isProtocol(record.protocol) ? record.protocol : defaultSettings.protocol,
    model: text("model"),
    mode: record.mode === "completion" ? "completion" : "chat",
    modeModel: text("modeModel"),
    maxTokens: text("maxTokens"),
    temperature: text("temperature"),
    topP: text("topP"),
    topK: text("topK"),
    seed: text("seed"),
    stop: text("stop"),
    systemPrompt: text("systemPrompt"),
    theme: record.theme === "light" || record.theme === "dark" ? record.theme : "system",
  };
}
