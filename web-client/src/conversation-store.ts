/**
 * @module The conversation: user and assistant turns with each reply's numbers, saved in
 * localStorage so a reload keeps it. A reply that was streaming when the page went away is
 * kept as "stopped" with the text it had.
 */
import type { ErrorInfo } from "./describe-error.js";
import { isProtocol, type Protocol } from "./protocol-transport.js";
import { type KeyValueStorage, readJson } from "./safe-storage.js";
import type { Mode } from "./settings-store.js";

/** What the numbers under a reply say about how it was made. */
export interface ReplyStats {
  /** The model that answered, as the server named it. */
  readonly model: string;
  readonly protocol: Protocol;
  /** Milliseconds from sending to the first token; absent when no token came. */
  readonly ttftMs?: number | undefined;
  /** Decode speed after the first token; absent with fewer than two tokens. */
  readonly tokensPerSecond?: number | undefined;
  readonly completionTokens: number;
  readonly promptTokens?: number | undefined;
  /** The server's finish reason, e.g. "length"; absent when the reply was stopped or failed. */
  readonly finishReason?: string | undefined;
}

/** A turn the person wrote. */
export interface UserTurn {
  readonly id: string;
  readonly role: "user";
  readonly mode: Mode;
  readonly text: string;
}

/** Where a reply stands. */
export type ReplyStatus = "streaming" | "done" | "stopped" | "error";

/** A turn the model wrote (or is writing). */
export interface AssistantTurn {
  readonly id: string;
  readonly role: "assistant";
  readonly mode: Mode;
  text: string;
  status: ReplyStatus;
  stats?: ReplyStats | undefined;
  error?: ErrorInfo | undefined;
}

/** One turn of the conversation. */
export type Turn = UserTurn | AssistantTurn;

/** The conversation, in order. Changes are saved when `save` is called. */
export interface ConversationStore {
  turns(): readonly Turn[];
  addUser(mode: Mode, text: string): UserTurn;
  addAssistant(mode: Mode): AssistantTurn;
  remove(id: string): void;
  clear(): void;
  save(): void;
}

/** Options of `createConversationStore`. */
export interface ConversationStoreOptions {
  readonly storage: KeyValueStorage;
  /** @example "parley.conversation.v1" */
  readonly key?: string;
}

/** Creates the store and loads the conversation a previous visit saved. */
export function createConversationStore(options: ConversationStoreOptions): ConversationStore {
  const key = options.key ?? "parley.conversation.v1";
  let turns: Turn[] = parseTurns(readJson(options.storage, key));
  let counter = 0;
  // Not crypto.randomUUID: it exists only in secure contexts, and a gateway on a LAN address
  // serves this page over plain http.
  const nextId = () => `${Date.now().toString(36)}-${(counter++).toString(36)}`;
  const save = () => options.storage.setItem(key, JSON.stringify(turns));
  return {
    turns: () => turns,
    addUser(mode, text) {
      const turn: UserTurn = { id: nextId(), role: "user", mode, text };
      turns.push(turn);
      save();
      return turn;
    },
    addAssistant(mode) {
      const turn: AssistantTurn = {
        id: nextId(),
        role: "assistant",
        mode,
        text: "",
        status: "streaming",
      };
      turns.push(turn);
      return turn;
    },
    remove(id) {
      turns = turns.filter((turn) => turn.id !== id);
      save();
    },
    clear() {
      turns = [];
      options.storage.removeItem(key);
    },
    save,
  };
}

function parseTurns(stored: unknown): Turn[] {
  if (!Array.isArray(stored)) {
    return [];
  }
  return stored.flatMap((item: unknown): Turn[] => {
    const turn = parseTurn(item);
    return turn === undefined ? [] : [turn];
  });
}

function parseTurn(item: unknown): Turn | undefined {
  if (typeof item !== "object" || item === null) {
    return undefined;
  }
  const record = item as Record<string, unknown>;
  if (typeof record.id !== "string" || typeof record.text !== "string") {
    return undefined;
  }
  const mode: Mode = record.mode === "completion" ? "completion" : "chat";
  if (record.role === "user") {
    return { id: record.id, role: "user", mode, text: record.text };
  }
  if (record.role !== "assistant") {
    return undefined;
  }
  const status = record.status;
  return {
    id: record.id,
    role: "assistant",
    mode,
    text: record.text,
    status: status === "done" || status === "error" ? status : "stopped",
    stats: parseStats(record.stats),
    error: parseError(record.error),
  };
}

function parseStats(value: unknown): ReplyStats | undefined {
  if (typeof value !== "object" || value === null) {
    return undefined;
  }
  const record = value as Record<string, unknown>;
  if (typeof record.model !== "string" || !isProtocol(record.protocol)) {
    return undefined;
  }
  const num = (field: unknown) => (typeof field === "number" ? field : undefined);
  return {
    model: record.model,
    protocol: record.protocol,
    ttftMs: num(record.ttftMs),
    tokensPerSecond: num(record.tokensPerSecond),
    completionTokens: num(record.completionTokens) ?? 0,
    promptTokens: num(record.promptTokens),
    finishReason: typeof record.finishReason === "string" ? record.finishReason : undefined,
  };
}

function parseError(value: unknown): ErrorInfo | undefined {
  if (typeof value !== "object" || value === null) {
    return undefined;
  }
  const record = value as Record<string, unknown>;
  const { code, title, message, hint } = record;
  if (
    typeof code !== "string" ||
    typeof title !== "string" ||
    typeof message !== "string" ||
    typeof hint !== "string"
  ) {
    return undefined;
  }
  return { code, title, message, hint };
}
