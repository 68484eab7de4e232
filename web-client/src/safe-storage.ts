/**
 * @module localStorage that never throws. Storage can be disabled, full or blocked (private
 * windows, strict cookie settings); the chat must still work, only without surviving a reload.
 */

/** The part of `Storage` the stores use. */
export interface KeyValueStorage {
  getItem(key: string): string | null;
  setItem(key: string, value: string): void;
  removeItem(key: string): void;
}

/** A storage that never throws; `setItem` says whether the value was written. */
export interface SafeStorage extends KeyValueStorage {
  /** False when the browser refused the write (storage full, disabled or blocked). */
  setItem(key: string, value: string): boolean;
}

/** Wraps a storage (or its absence) so reads of a broken one return null and writes are dropped. */
export function createSafeStorage(getStorage: () => KeyValueStorage): SafeStorage {
  const attempt = <T>(action: (storage: KeyValueStorage) => T, fallback: T): T => {
    try {
      return action(getStorage());
    } catch {
      return fallback;
    }
  };
  return {
    getItem: (key) => attempt((storage) => storage.getItem(key), null),
    setItem: (key, value) =>
      attempt((storage) => {
        storage.setItem(key, value);
        return true;
      }, false),
    removeItem: (key) => attempt((storage) => storage.removeItem(key), undefined),
  };
}

/** Parses stored JSON, or returns undefined when it is missing or corrupt. */
export function readJson(storage: KeyValueStorage, key: string): unknown {
  const raw = storage.getItem(key);
  if (raw === null) {
    return undefined;
  }
  try {
    return JSON.parse(raw) as unknown;
  } catch {
    return undefined;
  }
}
