/**
 * Saved conversations in a real browser against the real gateway: the sidebar list (open,
 * rename, search, delete), what survives a reload, export and import as JSON, the storage bound
 * and its message, and the sidebar at phone width.
 */
import assert from "node:assert/strict";
import { readFile } from "node:fs/promises";
import path from "node:path";
import { after, before, describe, test } from "node:test";
import {
  exchange,
  fakeReplyStream,
  launchBrowser,
  openChat,
  outputDir,
  send,
  setSettings,
  waitForReply,
} from "./chat-page.mjs";
import { startGateway } from "./gateway-process.mjs";

const titles = (page) => page.locator(".conversation-open").allTextContents();
const current = (page) =>
  page.locator(".conversation-item[aria-current='true'] .conversation-open").textContent();
const firstMessage = (page) => page.locator(".turn--user .turn-text").first().textContent();

/** An exported conversation file of about `chars` characters. */
function conversationFile(title, chars) {
  return JSON.stringify({
    format: "parley.conversation",
    version: 1,
    title,
    turns: [
      { id: "a", role: "user", mode: "chat", text: `About ${title}` },
      { id: "b", role: "assistant", mode: "chat", text: "x".repeat(chars), status: "done" },
    ],
  });
}

describe("saved conversations", () => {
  let gateway;
  let browser;
  before(async () => {
    gateway = await startGateway();
    browser = await launchBrowser();
  });
  after(async () => {
    await browser?.close();
    await gateway?.stop();
  });

  test("conversations are listed by their first message, reopen, rename, filter by title and survive a reload", async () => {
    const page = await openChat(browser, gateway.url);
    await setSettings(page, { "max-tokens": "6", temperature: "0" });
    assert.match(await page.locator("#conversation-empty").textContent(), /No saved/);
    await send(page, "Plan a weekend in Lisbon");
    assert.equal((await waitForReply(page)).status, "done");
    await page.click("#new-chat");
    assert.equal(await page.locator(".turn").count(), 0);
    await send(page, "Explain the KV cache");
    assert.equal((await waitForReply(page)).status, "done");
    assert.deepEqual(await titles(page), ["Explain the KV cache", "Plan a weekend in Lisbon"]);
    assert.equal(await current(page), "Explain the KV cache");

    await page.locator(".conversation-open", { hasText: "Lisbon" }).click();
    assert.equal(await firstMessage(page), "Plan a weekend in Lisbon");
    assert.equal(await page.locator(".turn").count(), 2);
    await page.reload();
    await page.waitForSelector(".turn--assistant");
    assert.equal(await firstMessage(page), "Plan a weekend in Lisbon", "the open one is reopened");
    assert.equal(await current(page), "Plan a weekend in Lisbon");

    await page.click("button[aria-label='Rename “Plan a weekend in Lisbon”']");
    const field = page.locator(".conversation-rename");
    assert.equal(await field.evaluate((input) => input === document.activeElement), true);
    await field.fill("Lisbon trip");
    await field.press("Enter");
    assert.deepEqual(await titles(page), ["Lisbon trip", "Explain the KV cache"]);
    await page.click("button[aria-label='Rename “Lisbon trip”']");
    await page.locator(".conversation-rename").fill("Something else");
    await page.locator(".conversation-rename").press("Escape");
    assert.deepEqual(
      await titles(page),
      ["Lisbon trip", "Explain the KV cache"],
      "Escape keeps it",
    );

    // A reply to a renamed conversation keeps the chosen title.
    await send(page, "And in winter?");
    await waitForReply(page);
    assert.deepEqual(await titles(page), ["Lisbon trip", "Explain the KV cache"]);

    await page.fill("#conversation-search", "kv");
    assert.deepEqual(await titles(page), ["Explain the KV cache"]);
    await page.fill("#conversation-search", "tokyo");
    assert.deepEqual(await titles(page), []);
    assert.equal(
      await page.locator("#conversation-empty").textContent(),
      "No title contains “tokyo”.",
    );
    await page.fill("#conversation-search", "");
    await page.reload();
    await page.waitForSelector(".turn--assistant");
    assert.deepEqual(await titles(page), ["Lisbon trip", "Explain the KV cache"]);
    assert.equal(await page.locator(".turn").count(), 4);
    await page.screenshot({ path: path.join(outputDir, "chat-conversations.png") });
    assert.deepEqual(page.errors, []);
    await page.context().close();
  });

  test("Delete asks first; deleting the open conversation leaves a new chat", async () => {
    const page = await openChat(browser, gateway.url);
    const stream = await fakeReplyStream(page);
    await exchange(page, stream, "Keep me", "Kept");
    await page.click("#new-chat");
    await exchange(page, stream, "Delete me", "Going");
    const dialogs = [];
    page.on("dialog", (dialog) => {
      dialogs.push(dialog.message());
      void (dialogs.length === 1 ? dialog.dismiss() : dialog.accept());
    });
    await page.click("button[aria-label='Delete “Delete me”']");
    assert.deepEqual(await titles(page), ["Delete me", "Keep me"], "dismissed: nothing deleted");
    await page.click("button[aria-label='Delete “Delete me”']");
    assert.deepEqual(dialogs, [
      "Delete “Delete me”? This cannot be undone.",
      "Delete “Delete me”? This cannot be undone.",
    ]);
    assert.deepEqual(await titles(page), ["Keep me"]);
    assert.equal(await page.locator(".turn").count(), 0, "the open one was deleted: a new chat");
    assert.ok(await page.locator("#empty-state").isVisible());
    const stored = await page.evaluate(() =>
      Object.keys(localStorage).filter((key) => key.startsWith("parley.chat.")),
    );
    assert.equal(stored.length, 1, "its turns left the browser's storage");
    await page.reload();
    await page.waitForSelector("#empty-state");
    assert.deepEqual(await titles(page), ["Keep me"]);
    await page.context().close();
  });

  test("Export downloads the conversation as JSON, and Import brings it back as a new one", async () => {
    const page = await openChat(browser, gateway.url);
    const stream = await fakeReplyStream(page);
    await exchange(page, stream, "Write a haiku", "Tokens drift like snow");
    await exchange(page, stream, "Another", "Quiet cache");
    const [download] = await Promise.all([
      page.waitForEvent("download"),
      page.click("button[aria-label='Export as JSON “Write a haiku”']"),
    ]);
    assert.equal(download.suggestedFilename(), "parley-write-a-haiku.json");
    const file = await download.path();
    const exported = JSON.parse(await readFile(file, "utf8"));
    assert.equal(exported.format, "parley.conversation");
    assert.equal(exported.title, "Write a haiku");
    assert.deepEqual(
      exported.turns.map((turn) => [turn.role, turn.text]),
      [
        ["user", "Write a haiku"],
        ["assistant", "Tokens drift like snow"],
        ["user", "Another"],
        ["assistant", "Quiet cache"],
      ],
    );
    assert.equal(exported.turns[1].stats.protocol, "connect-json", "with each reply's numbers");

    await page.click("#new-chat");
    await page.setInputFiles("#import-conversation", file);
    await page.waitForFunction(() => document.querySelectorAll(".conversation-item").length === 2);
    assert.deepEqual(await titles(page), ["Write a haiku", "Write a haiku"]);
    assert.equal(await page.locator(".turn").count(), 4, "the imported one is open");
    assert.equal(
      await page.locator(".turn--assistant .turn-text").last().textContent(),
      "Quiet cache\n",
    );

    await page.setInputFiles("#import-conversation", {
      name: "notes.json",
      mimeType: "application/json",
      buffer: Buffer.from("{ not json"),
    });
    await page.waitForFunction(() =>
      document.querySelector("#storage-note")?.textContent.includes("notes.json"),
    );
    assert.equal(await page.locator("#storage-note").getAttribute("role"), "alert");
    assert.equal(
      await page.locator("#storage-note").textContent(),
      "notes.json: This file is not JSON.",
    );
    await page.setInputFiles("#import-conversation", {
      name: "other.json",
      mimeType: "application/json",
      buffer: Buffer.from('{"format": "something.else", "turns": []}'),
    });
    await page.waitForFunction(() =>
      document.querySelector("#storage-note")?.textContent.includes("other.json"),
    );
    assert.match(await page.locator("#storage-note").textContent(), /holds no Parley conversation/);
    assert.equal(await page.locator(".conversation-item").count(), 2);
    assert.deepEqual(page.errors, []);
    await page.context().close();
  });

  test("storage is bounded: what does not fit is refused with a message, and nothing is lost silently", async () => {
    const page = await openChat(browser, gateway.url);
    // The page keeps 4 million characters for conversations; this one leaves 60,000 free.
    const big = conversationFile("Big archive", 4_000_000 - 60_000);
    await page.setInputFiles("#import-conversation", {
      name: "big.json",
      mimeType: "application/json",
      buffer: Buffer.from(big),
    });
    await page.waitForFunction(() => document.querySelectorAll(".conversation-item").length === 1);
    assert.match(await page.locator("#storage-note").textContent(), /^3\.9 MB of 4 MB/);

    await page.setInputFiles("#import-conversation", {
      name: "more.json",
      mimeType: "application/json",
      buffer: Buffer.from(conversationFile("More", 100_000)),
    });
    await page.waitForFunction(() =>
      document.querySelector("#storage-note")?.textContent.includes("more.json"),
    );
    assert.match(
      await page.locator("#storage-note").textContent(),
      /more\.json: It does not fit in the 4 MB kept for conversations\. Delete or export older ones first\./,
    );

    // A reply that does not fit: the page says so, and keeps showing it until the page closes.
    await page.click("#new-chat");
    const stream = await fakeReplyStream(page);
    await exchange(page, stream, "Write a lot", "y".repeat(100_000));
    const note = page.locator("#storage-note");
    assert.equal(await note.getAttribute("role"), "alert");
    assert.match(await note.textContent(), /Browser storage for conversations is full \(4 MB\)/);
    await page.screenshot({ path: path.join(outputDir, "chat-storage-full.png") });
    assert.equal(await page.locator(".turn--assistant").count(), 1, "the reply is still shown");

    // Deleting the big one makes room; the next change is saved and the message goes away.
    page.on("dialog", (dialog) => void dialog.accept());
    await page.click("button[aria-label='Delete “Big archive”']");
    await exchange(page, stream, "Still there?", "Yes");
    assert.match(await note.textContent(), /of 4 MB of browser storage used/);
    assert.equal(await note.getAttribute("role"), "status");
    await page.reload();
    await page.waitForSelector(".turn--assistant");
    assert.deepEqual(await titles(page), ["Write a lot"]);
    assert.equal(await page.locator(".turn").count(), 4, "the long reply was saved after all");
    assert.deepEqual(page.errors, []);
    await page.context().close();
  });

  test("a conversation saved by the previous version of the page moves into the list", async () => {
    const page = await openChat(browser, gateway.url);
    await page.evaluate(() => {
      localStorage.clear();
      localStorage.setItem(
        "parley.conversation.v1",
        JSON.stringify([
          { id: "1", role: "user", mode: "chat", text: "An old question" },
          { id: "2", role: "assistant", mode: "chat", text: "An old answer", status: "done" },
        ]),
      );
    });
    await page.reload();
    await page.waitForSelector(".turn--assistant");
    assert.deepEqual(await titles(page), ["An old question"]);
    assert.equal(await page.evaluate(() => localStorage.getItem("parley.conversation.v1")), null);
    await page.context().close();
  });

  test("at 390 px the sidebar slides over the chat, holds focus, and closes with Escape or a choice", async () => {
    const page = await openChat(browser, gateway.url, { width: 390, height: 800 });
    const stream = await fakeReplyStream(page);
    await exchange(page, stream, "First chat", "One");
    await page.click("#new-chat");
    await exchange(
      page,
      stream,
      "Second chat",
      "Code:\n\n```js\nconst aVeryLongName = someFunction(withArguments, thatDoNotFit, onAPhone);\n```\n\n$$\\sum_{n=1}^{\\infty} \\frac{1}{n^2} = \\frac{\\pi^2}{6} \\quad \\text{and more text to make it wide}$$",
    );
    const sidebar = page.locator("#sidebar");
    const toggle = page.locator("#toggle-sidebar");
    assert.equal(await sidebar.isVisible(), false, "closed at first on a phone");
    assert.equal(await toggle.getAttribute("aria-expanded"), "false");
    await page.waitForSelector(".katex-display");
    const widths = await page.evaluate(() => ({
      scroll: document.documentElement.scrollWidth,
      viewport: window.innerWidth,
    }));
    assert.ok(widths.scroll <= widths.viewport, `page is ${widths.scroll}px wide`);
    for (const selector of [
      "#toggle-sidebar",
      "#model",
      "#theme-toggle",
      "#new-chat",
      "#open-settings",
      "#prompt",
      "#send",
    ]) {
      const box = await page.locator(selector).boundingBox();
      assert.ok(
        box !== null && box.x >= 0 && box.x + box.width <= widths.viewport,
        `${selector} fits`,
      );
    }
    await page.screenshot({ path: path.join(outputDir, "chat-phone-code-math.png") });

    await toggle.click();
    assert.equal(await sidebar.isVisible(), true);
    assert.equal(await toggle.getAttribute("aria-expanded"), "true");
    assert.equal(await page.evaluate(() => document.activeElement?.id), "conversation-search");
    assert.equal(await page.locator("#chat-pane").evaluate((pane) => pane.inert), true);
    await page.screenshot({ path: path.join(outputDir, "chat-phone-sidebar.png") });
    await page.keyboard.press("Escape");
    assert.equal(await sidebar.isVisible(), false);
    assert.equal(await page.evaluate(() => document.activeElement?.id), "toggle-sidebar");
    assert.equal(await page.locator("#chat-pane").evaluate((pane) => pane.inert), false);

    await toggle.click();
    await page.locator(".conversation-open", { hasText: "First chat" }).click();
    assert.equal(await sidebar.isVisible(), false, "choosing a conversation closes it");
    assert.equal(await firstMessage(page), "First chat");
    await toggle.click();
    await page.locator("#sidebar-scrim").click({ position: { x: 370, y: 400 } });
    assert.equal(await sidebar.isVisible(), false, "a tap beside it closes it");
    assert.deepEqual(page.errors, []);
    await page.context().close();
  });
});
