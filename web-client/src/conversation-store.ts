/**
 * @module A conversation: user and assistant turns with each reply's numbers. A reply that was
 * streaming when the page went away is read back as "stopped" with the text it had.
 */
import type { ErrorInfo } from "./describe-error.js";
import { isProtocol, type Protocol } from "./protocol-transport.js";
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

/** One conversation's turns, in order. Changes are saved when `save` is called. */
export interface ConversationStore {
  readonly id: string;
  turns(): readonly Turn[];
  addUser(mode: Mode, text: string): UserTurn;
  addAssistant(mode: Mode): AssistantTurn;
  remove(id: string): void;
  /** Removes this turn and every later one: an edited message replaces what followed it. */
  truncateFrom(id: string): void;
  save(): void;
}

/** Options of `createConversationStore`. */
export interface ConversationStoreOptions {
  readonly id: string;
  /** The turns a previous visit saved, already parsed. */
  readonly turns?: readonly Turn[];
  /** Writes the turns somewhere lasting (the conversation library). */
  readonly persist: (turns: readonly Turn[]) => void;
}

let counter = 0;

/**
 * A new id, unique in this page. Not crypto.randomUUID: it exists only in secure contexts, and a
 * gateway on a LAN address serves this page over plain http.
 */
export function nextId(): string {
  return `${Date.now().toString(36)}-${(counter++).toString(36)}`;
}

/** Creates the store of one conversation. */
export function createConversationStore(options: ConversationStoreOptions): ConversationStore {
  let turns: Turn[] = [...(options.turns ?? [])];
  const save = () => options.persist(turns);
  return {
    id: options.id,
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
    truncateFrom(id) {
      const index = turns.findIndex((turn) => turn.id === id);
      if (index >= 0) {
        turns = turns.slice(0, index);
        save();
      }
    },
    save,
  };
}

/** Reads turns from stored or imported JSON, dropping entries it cannot use. */
export function parseTurns(stored: unknown): Turn[] {
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
