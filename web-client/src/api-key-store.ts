/**
 * @module The API key the user typed, for gateways started with --api-key. It lives in
 * sessionStorage, not with the other settings in localStorage: it is a secret, so it goes when
 * the tab closes and is never written where it outlives the session.
 */
import type { KeyValueStorage } from "./safe-storage.js";

/** Reads and writes the key; "" means none (calls go without Authorization). */
export interface ApiKeyStore {
  get(): string;
  set(key: string): void;
}

/** Creates the store over `storage` (the tab's sessionStorage, wrapped to never throw). */
export function createApiKeyStore(storage: KeyValueStorage, key = "parley.apiKey"): ApiKeyStore {
  return {
    get: () => storage.getItem(key) ?? "",
    set: (value) => {
      const trimmed = value.trim();
      if (trimmed.length === 0) {
        storage.removeItem(key);
      } else {
        storage.setItem(key, trimmed);
      }
    },
  };
}
