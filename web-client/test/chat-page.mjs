/**
 * @module Drives the chat page in Debian's chromium through playwright-core, the way a person
 * would: typing in the composer, pressing Enter, clicking Stop, opening the settings.
 */
import { mkdirSync } from "node:fs";
import path from "node:path";
import { chromium } from "playwright-core";
import { repoRoot } from "./gateway-process.mjs";

/** Screenshots land here, at the repository root. */
export const outputDir = path.join(repoRoot, "test-output");

/** Launches the system chromium; playwright's own browser downloads are never used. */
export async function launchBrowser() {
  mkdirSync(outputDir, { recursive: true });
  return chromium.launch({
    executablePath: "/usr/bin/chromium",
    args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"],
  });
}

/**
 * Opens the page in a fresh context (empty localStorage) and waits until the model list has
 * loaded or failed. Page errors are collected in `page.errors` so tests can assert none happened.
 */
export async function openChat(browser, url, viewport = { width: 1280, height: 860 }) {
  const context = await browser.newContext({ viewport });
  const page = await context.newPage();
  page.errors = [];
  page.on("pageerror", (error) => page.errors.push(error.message));
  await page.goto(url);
  await page.waitForFunction(
    () => !document.querySelector("#model")?.disabled || !document.querySelector("#banner")?.hidden,
    undefined,
    { timeout: 30_000 },
  );
  return page;
}

/** Fills settings fields by id (e.g. { "max-tokens": "24", temperature: "0" }) in the dialog. */
export async function setSettings(page, fields) {
  await page.click("#open-settings");
  for (const [id, value] of Object.entries(fields)) {
    await page.fill(`#${id}`, value);
  }
  await page.click("#settings .button-primary");
}

/** Picks a protocol in the composer toolbar: "connect-json", "connect-binary" or "grpc-web". */
export async function setProtocol(page, protocol) {
  await page.selectOption("#protocol", protocol);
}

/** Types a message and presses Enter. */
export async function send(page, text) {
  await page.fill("#prompt", text);
  await page.press("#prompt", "Enter");
}

/** Waits until the last reply is no longer streaming; returns its status, text and meta line. */
export async function waitForReply(page, timeout = 60_000) {
  const last = page.locator(".turn--assistant").last();
  await page.waitForFunction(
    () => {
      const turns = document.querySelectorAll(".turn--assistant");
      const status = turns[turns.length - 1]?.getAttribute("data-status");
      return status !== undefined && status !== "streaming";
    },
    undefined,
    { timeout },
  );
  return {
    status: await last.getAttribute("data-status"),
    text: await last.locator(".turn-text").textContent(),
    meta:
      (await last.locator(".turn-meta").count()) > 0
        ? await last.locator(".turn-meta").textContent()
        : "",
    error:
      (await last.locator(".error-card").count()) > 0
        ? await last.locator(".error-card").textContent()
        : "",
  };
}

/**
 * Records, in the page, the length of the newest reply's text at every DOM mutation while it
 * streams, so a test can see the reply grow step by step.
 */
export async function recordReplyGrowth(page) {
  await page.evaluate(() => {
    const samples = [];
    window.__replyGrowth = samples;
    new MutationObserver(() => {
      const turns = document.querySelectorAll(".turn--assistant");
      const turn = turns[turns.length - 1];
      if (turn !== undefined) {
        samples.push({
          length: turn.querySelector(".turn-text")?.textContent?.length ?? 0,
          status: turn.getAttribute("data-status"),
        });
      }
    }).observe(document.querySelector("#turns"), {
      subtree: true,
      childList: true,
      characterData: true,
      attributes: true,
    });
  });
  return () => page.evaluate(() => window.__replyGrowth);
}
