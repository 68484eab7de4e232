/**
 * @module The saved conversations. An index (titles, dates, which one is open) and each
 * conversation's turns live in localStorage under their own keys, within a size bound: the
 * browser's quota (about 5 million characters per origin in Chromium) is shared with the
 * settings, and a write refused mid-reply would otherwise lose text silently. A conversation
 * is listed once it has a message, titled by its first message until the user renames it.
 */
import {
  type ConversationStore,
  createConversationStore,
  nextId,
  parseTurns,
  type Turn,
} from "./conversation-store.js";
import { readJson, type SafeStorage } from "./safe-storage.js";

/** What the list shows about one saved conversation. */
export interface ConversationSummary {
  readonly id: string;
  readonly title: string;
  /** Milliseconds since the epoch of the last saved change. */
  readonly updatedAt: number;
}

/** How much of the bound the saved conversations use, in characters of JSON. */
export interface StorageUse {
  readonly used: number;
  readonly limit: number;
}

/** The outcome of importing a file. */
export type ImportResult =
  | { readonly ok: true; readonly store: ConversationStore }
  | { readonly ok: false; readonly message: string };

/** The saved conversations and the one that is open. */
export interface ConversationLibrary {
  /** Saved conversations, newest first; `query` keeps those whose title contains it. */
  list(query?: string): ConversationSummary[];
  /** The open conversation (a new, empty one when none was open). */
  current(): ConversationStore;
  /** The open conversation's title, or "New chat" before its first message. */
  title(id: string): string;
  /** Opens a new, empty conversation; it is listed once it has a message. */
  startNew(): ConversationStore;
  /** Opens a saved conversation; undefined when there is none with this id. */
  open(id: string): ConversationStore | undefined;
  rename(id: string, title: string): void;
  remove(id: string): void;
  /** The conversation as a JSON file, for download. */
  exportFile(id: string): { readonly name: string; readonly json: string } | undefined;
  /** Adds a conversation from an exported file and opens it. */
  importFile(json: string): ImportResult;
  usage(): StorageUse;
  /** Why the last save failed, until a save succeeds again. */
  problem(): string | undefined;
  /** Calls `listener` after every change to the list, the open conversation or `problem()`. */
  subscribe(listener: () => void): void;
}

/** Options of `createConversationLibrary`. */
export interface ConversationLibraryOptions {
  readonly storage: SafeStorage;
  /**
   * The most characters all conversations may take together.
   * @example 4_000_000
   */
  readonly limit?: number;
  /** @example "parley.conversations.v1" */
  readonly indexKey?: string;
}

/** The `format` field of exported files. */
export const exportFormat = "parley.conversation";

interface Entry {
  id: string;
  title: string;
  /** True once the user chose the title; else it follows the first message. */
  renamed: boolean;
  createdAt: number;
  updatedAt: number;
}

const legacyKey = "parley.conversation.v1";
const untitled = "New chat";

/** Loads the index (moving a conversation saved by an older version of the page into it). */
export function createConversationLibrary(
  options: ConversationLibraryOptions,
): ConversationLibrary {
  const { storage } = options;
  const limit = options.limit ?? 4_000_000;
  const indexKey = options.indexKey ?? "parley.conversations.v1";
  const turnsKey = (id: string) => `parley.chat.${id}`;
  const listeners: (() => void)[] = [];
  const notify = () => {
    for (const listener of listeners) {
      listener();
    }
  };
  const stored = parseIndex(readJson(storage, indexKey));
  const entries = new Map(stored.entries.map((entry) => [entry.id, entry]));
  /** Characters each saved conversation takes. */
  const sizes = new Map<string, number>();
  for (const id of entries.keys()) {
    const raw = storage.getItem(turnsKey(id));
    if (raw === null) {
      entries.delete(id);
    } else {
      sizes.set(id, raw.length);
    }
  }
  let problem: string | undefined;

  const used = () => [...sizes.values()].reduce((sum, size) => sum + size, 0);
  const writeIndex = (currentId: string) =>
    storage.setItem(indexKey, JSON.stringify({ currentId, entries: [...entries.values()] }));

  /** Saves turns, or records why not. Returns whether they were saved. */
  const persist = (id: string, turns: readonly Turn[]): boolean => {
    if (turns.length === 0) {
      forget(id);
      return true;
    }
    const json = JSON.stringify(turns);
    const total = used() - (sizes.get(id) ?? 0) + json.length;
    if (total > limit) {
      problem = `Browser storage for conversations is full (${megabytes(limit)} MB). Delete or export older conversations; this one's latest changes are not saved.`;
      notify();
      return false;
    }
    if (!storage.setItem(turnsKey(id), json)) {
      problem =
        "The browser refused to save this conversation (its storage is full or disabled). Delete or export older conversations to make room.";
      notify();
      return false;
    }
    sizes.set(id, json.length);
    const now = Date.now();
    const entry = entries.get(id) ?? {
      id,
      title: "",
      renamed: false,
      createdAt: now,
      updatedAt: now,
    };
    entry.updatedAt = now;
    if (!entry.renamed) {
      entry.title = titleFrom(turns);
    }
    entries.set(id, entry);
    writeIndex(current.id);
    problem = undefined;
    notify();
    return true;
  };

  const forget = (id: string) => {
    entries.delete(id);
    sizes.delete(id);
    storage.removeItem(turnsKey(id));
  };

  const storeFor = (id: string, turns: readonly Turn[]): ConversationStore =>
    createConversationStore({ id, turns, persist: (next) => void persist(id, next) });

  const load = (id: string): ConversationStore | undefined =>
    entries.has(id) ? storeFor(id, parseTurns(readJson(storage, turnsKey(id)))) : undefined;

  const switchTo = (store: ConversationStore): ConversationStore => {
    current = store;
    writeIndex(store.id);
    notify();
    return store;
  };

  let current: ConversationStore =
    load(stored.currentId) ?? storeFor(nextId(), parseTurns(readJson(storage, legacyKey)));
  if (storage.getItem(legacyKey) !== null) {
    current.save();
    storage.removeItem(legacyKey);
  }

  return {
    list(query = "") {
      const needle = query.trim().toLowerCase();
      return [...entries.values()]
        .filter((entry) => entry.title.toLowerCase().includes(needle))
        .sort((a, b) => b.updatedAt - a.updatedAt)
        .map(({ id, title, updatedAt }) => ({ id, title, updatedAt }));
    },
    current: () => current,
    title: (id) => entries.get(id)?.title || untitled,
    startNew: () => switchTo(storeFor(nextId(), [])),
    open(id) {
      const store = id === current.id ? current : load(id);
      return store === undefined ? undefined : switchTo(store);
    },
    rename(id, title) {
      const entry = entries.get(id);
      const text = title.trim();
      if (entry === undefined || text === "") {
        return;
      }
      entry.title = text;
      entry.renamed = true;
      writeIndex(current.id);
      notify();
    },
    remove(id) {
      forget(id);
      if (id === current.id) {
        current = storeFor(nextId(), []);
      }
      writeIndex(current.id);
      if (problem !== undefined && used() < limit) {
        problem = undefined;
      }
      notify();
    },
    exportFile(id) {
      const entry = entries.get(id);
      if (entry === undefined) {
        return undefined;
      }
      const turns = id === current.id ? current.turns() : load(id)?.turns();
      const json = JSON.stringify(
        {
          format: exportFormat,
          version: 1,
          title: entry.title,
          createdAt: new Date(entry.createdAt).toISOString(),
          updatedAt: new Date(entry.updatedAt).toISOString(),
          turns,
        },
        null,
        2,
      );
      return { name: `parley-${fileSlug(entry.title)}.json`, json };
    },
    importFile(json) {
      let data: unknown;
      try {
        data = JSON.parse(json);
      } catch {
        return { ok: false, message: "This file is not JSON." };
      }
      const record =
        typeof data === "object" && data !== null ? (data as Record<string, unknown>) : {};
      const turns = record.format === exportFormat ? parseTurns(record.turns) : [];
      if (turns.length === 0) {
        return { ok: false, message: "This file holds no Parley conversation." };
      }
      const id = nextId();
      const title = typeof record.title === "string" ? record.title.trim() : "";
      if (used() + JSON.stringify(turns).length > limit) {
        return {
          ok: false,
          message: `It does not fit in the ${megabytes(limit)} MB kept for conversations. Delete or export older ones first.`,
        };
      }
      if (!persist(id, turns)) {
        return { ok: false, message: problem ?? "The conversation could not be saved." };
      }
      const entry = entries.get(id);
      if (entry !== undefined && title !== "") {
        entry.title = title;
        entry.renamed = title !== titleFrom(turns);
      }
      return { ok: true, store: switchTo(storeFor(id, turns)) };
    },
    usage: () => ({ used: used(), limit }),
    problem: () => problem,
    subscribe(listener) {
      listeners.push(listener);
    },
  };
}

/** A title from the first message: its first line's first 60 characters. */
function titleFrom(turns: readonly Turn[]): string {
  const first = turns.find((turn) => turn.role === "user")?.text ?? "";
  const line = first.replace(/\s+/g, " ").trim();
  return line.length > 60 ? `${line.slice(0, 59).trimEnd()}…` : line || untitled;
}

function fileSlug(title: string): string {
  return (
    title
      .toLowerCase()
      .replace(/[^\p{L}\p{N}]+/gu, "-")
      .replace(/^-+|-+$/g, "")
      .slice(0, 40) || "conversation"
  );
}

function megabytes(chars: number): string {
  return (chars / 1_000_000).toFixed(1).replace(/\.0$/, "");
}

function parseIndex(stored: unknown): { currentId: string; entries: Entry[] } {
  const record =
    typeof stored === "object" && stored !== null ? (stored as Record<string, unknown>) : {};
  const entries = Array.isArray(record.entries) ? record.entries : [];
  return {
    currentId: typeof record.currentId === "string" ? record.currentId : "",
    entries: entries.flatMap((item: unknown): Entry[] => {
      const entry =
        typeof item === "object" && item !== null ? (item as Record<string, unknown>) : {};
      const { id, title, renamed, createdAt, updatedAt } = entry;
      return typeof id === "string" &&
        typeof title === "string" &&
        typeof createdAt === "number" &&
        typeof updatedAt === "number"
        ? [{ id, title, renamed: renamed === true, createdAt, updatedAt }]
        : [];
    }),
  };
}
