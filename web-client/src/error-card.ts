/**
 * @module The card that shows a failed call in the page: code, headline, the server's message
 * and a hint, with an optional Retry button.
 */
import type { ErrorInfo } from "./describe-error.js";
import { h, icon } from "./dom.js";

/** Renders an error; `role="alert"` makes screen readers announce it when it appears. */
export function renderErrorCard(info: ErrorInfo, onRetry?: () => void): HTMLElement {
  const card = h(
    "div",
    { class: "error-card", role: "alert" },
    h(
      "p",
      { class: "error-title" },
      h("span", { class: "error-code" }, info.code),
      h("strong", {}, info.title),
    ),
    h("p", { class: "error-message" }, info.message),
    h("p", { class: "error-hint" }, info.hint),
  );
  if (onRetry !== undefined) {
    const retry = h("button", { type: "button", class: "button-secondary retry-button" });
    retry.append(icon("retry"), "Retry");
    retry.addEventListener("click", onRetry);
    card.append(retry);
  }
  return card;
}
