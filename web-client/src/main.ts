/** @module The page's entry point, loaded by index.html. */
import { createApp } from "./app.js";

try {
  createApp({ document, window });
} catch (error) {
  // A page that cannot start says so on screen instead of leaving a dead UI behind.
  const notice = document.createElement("p");
  notice.className = "startup-error";
  notice.setAttribute("role", "alert");
  notice.textContent = `The chat could not start: ${error instanceof Error ? error.message : String(error)}`;
  document.body.prepend(notice);
  throw error;
}
