/**
 * @module The light/dark/system theme button. The stylesheet's colours are `light-dark()`
 * pairs, so the theme is only the root's `color-scheme`: `data-theme` forces one side, and its
 * absence follows the system. index.html applies the saved choice before the first paint.
 */
import { icon } from "./dom.js";
import type { SettingsStore, Theme } from "./settings-store.js";

const order: readonly Theme[] = ["system", "light", "dark"];

/** Options of `createThemeToggle`. */
export interface ThemeToggleOptions {
  readonly root: HTMLElement;
  readonly button: HTMLButtonElement;
  readonly store: SettingsStore;
}

/** Applies the stored theme; each press of the button moves to the next one. */
export function createThemeToggle(options: ThemeToggleOptions): void {
  const { root, button, store } = options;
  const show = (theme: Theme) => {
    if (theme === "system") {
      delete root.dataset.theme;
    } else {
      root.dataset.theme = theme;
    }
    const next = order[(order.indexOf(theme) + 1) % order.length] ?? "system";
    button.replaceChildren(
      icon(theme === "system" ? "system" : theme === "light" ? "sun" : "moon"),
    );
    button.setAttribute("aria-label", `Theme: ${theme}. Switch to ${next}`);
    button.title = `Theme: ${theme} (switch to ${next})`;
  };
  button.addEventListener("click", () => {
    const current = store.get().theme;
    const next = order[(order.indexOf(current) + 1) % order.length] ?? "system";
    store.update({ theme: next });
    show(next);
  });
  show(store.get().theme);
}
