/**
 * End-to-end tests of the chat page in a real browser against the real gateway and its built-in
 * model: streaming, Stop, protocols, errors, phone width, reload and CORS.
 */
import assert from "node:assert/strict";
import { existsSync } from "node:fs";
import { mkdir, mkdtemp, readdir, readFile, rm, symlink, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { after, before, describe, test } from "node:test";
import { preview } from "vite";
import {
  launchBrowser,
  openChat,
  outputDir,
  paceReplyDownloads,
  recordReplyGrowth,
  send,
  setProtocol,
  setSettings,
  waitForReply,
} from "./chat-page.mjs";
import { freePort, repoRoot, startGateway } from "./gateway-process.mjs";

const webClientDir = path.resolve(import.meta.dirname, "..");

describe("chat page served by the gateway", () => {
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

  test("a reply grows over several DOM updates as tokens stream in", async () => {
    const page = await openChat(browser, gateway.url);
    assert.ok((await page.locator("#model option").count()) > 0, "ListModels filled the picker");
    await setSettings(page, { "max-tokens": "48", temperature: "0" });
    // The page draws a streaming reply at most once per frame, and the built-in model writes
    // these 48 tokens in a few milliseconds: a slow download spreads them over many frames.
    await paceReplyDownloads(page, { bytes: 64, everyMs: 10 });
    const growth = await recordReplyGrowth(page);
    await send(page, "Tell me a short story about a lighthouse keeper.");
    const reply = await waitForReply(page);

    assert.equal(reply.status, "done", reply.error);
    assert.ok(reply.text.length > 0, "the reply has text");
    const samples = await growth();
    const streamed = samples.filter((sample) => sample.status === "streaming");
    const lengths = [...new Set(streamed.map((sample) => sample.length))].filter((n) => n > 0);
    assert.ok(
      lengths.length >= 3,
      `saw ${lengths.length} growing lengths while streaming: ${lengths}`,
    );
    // This reply holds no Markdown markup, so its rendered text only grows.
    assert.deepEqual(
      lengths,
      [...lengths].sort((a, b) => a - b),
      "the text only grows",
    );
    assert.ok(lengths.at(-1) <= reply.text.length);
    assert.ok(
      (await page.locator(".turn--assistant .turn-text.markdown > p").count()) > 0,
      "the reply is rendered as Markdown",
    );
    assert.match(reply.meta, /\d+ ms to first token/);
    assert.match(reply.meta, /\d+ tokens?/);
    assert.match(reply.meta, /Connect JSON/);
    assert.match(reply.meta, /stopped: /);
    assert.deepEqual(page.errors, []);
    await page.context().close();
  });

  test("Stop cancels the generation on the server", async () => {
    const cancelled = () =>
      gateway.metric("parley_generations_total", { finish_reason: "cancelled" });
    const generations = () => gateway.metric("parley_generations_total");
    /** Waits for the server to count the attempt's generation; says how it ended. */
    const serverOutcome = async (before) => {
      for (let tries = 0; tries < 50 && (await generations()) <= before.all; tries++) {
        await new Promise((resolve) => setTimeout(resolve, 100));
      }
      return (await cancelled()) > before.cancelled ? "cancelled" : "finished";
    };
    const page = await openChat(browser, gateway.url);
    await setSettings(page, { "max-tokens": "2000", temperature: "0" });
    // The built-in model ends some replies early with its end-of-sequence token, and it is fast
    // enough to finish a reply on the server while the browser is still reading it, so a few
    // prompts are tried until Stop reaches a generation the server is still running.
    let stopped;
    for (let attempt = 1; attempt <= 8 && stopped === undefined; attempt++) {
      const before = { cancelled: await cancelled(), all: await generations() };
      await page.click("#new-chat");
      await send(page, `Write a very long essay about the sea ${attempt}.`);
      await page.waitForFunction(
        () =>
          (document.querySelector(".turn--assistant .turn-text")?.textContent?.length ?? 0) > 0 ||
          document.querySelector(".turn--assistant")?.getAttribute("data-status") !== "streaming",
      );
      // A short reply may end between the check and the click; its status below says which.
      await page
        .locator("#stop")
        .click({ timeout: 2_000 })
        .catch(() => {});
      const reply = await waitForReply(page);
      if (reply.status !== "stopped") {
        assert.equal(reply.status, "done", reply.error);
      } else if ((await serverOutcome(before)) === "cancelled") {
        stopped = { reply, before };
      }
    }
    assert.ok(stopped !== undefined, "Stop cancelled a generation the server was still running");
    assert.match(stopped.reply.meta, /stopped by you/);
    assert.ok(await page.locator("#send").isVisible(), "Send is back after Stop");
    assert.equal(await cancelled(), stopped.before.cancelled + 1, "one cancelled generation");
    assert.deepEqual(page.errors, []);
    await page.context().close();
  });

  test("Connect JSON, Connect binary and gRPC-Web give the same greedy reply", async () => {
    const page = await openChat(browser, gateway.url);
    await setSettings(page, { "max-tokens": "24", temperature: "0" });
    const replies = {};
    for (const [protocol, label] of [
      ["connect-json", "Connect JSON"],
      ["connect-binary", "Connect binary"],
      ["grpc-web", "gRPC-Web"],
    ]) {
      await page.click("#new-chat");
      await setProtocol(page, protocol);
      await send(page, "Name three colours.");
      const reply = await waitForReply(page);
      assert.equal(reply.status, "done", `${label}: ${reply.error}`);
      assert.match(reply.meta, new RegExp(label), `the meta line names ${label}`);
      replies[protocol] = reply.text;
    }
    assert.ok(replies["connect-json"].length > 0);
    assert.equal(replies["grpc-web"], replies["connect-json"]);
    assert.equal(replies["connect-binary"], replies["connect-json"]);
    await page.screenshot({ path: path.join(outputDir, "chat-grpc-web.png") });
    await page.context().close();
  });

  test("Complete mode sends the text as a raw prompt, without the chat template", async () => {
    const page = await openChat(browser, gateway.url);
    await setSettings(page, { "max-tokens": "8", temperature: "0" });
    const promptTokens = async () => {
      const title = await page
        .locator(".turn--assistant")
        .last()
        .locator(".turn-meta span[title*='prompt:']")
        .getAttribute("title");
      return Number(/prompt: (\d+) tokens/.exec(title)?.[1]);
    };
    await send(page, "Once upon a time");
    assert.equal((await waitForReply(page)).status, "done");
    const chatTokens = await promptTokens();

    await page.click("#new-chat");
    await page.click("label[for='mode-completion']");
    await send(page, "Once upon a time");
    const reply = await waitForReply(page);
    assert.equal(reply.status, "done", reply.error);
    assert.equal(await page.locator(".turn--assistant").getAttribute("data-mode"), "completion");
    assert.match(await page.locator(".turn--assistant .turn-label").textContent(), /Completion/);
    const rawTokens = await promptTokens();
    assert.ok(
      rawTokens > 0 && chatTokens > rawTokens,
      `chat ${chatTokens} > raw ${rawTokens} prompt tokens`,
    );
    await page.reload();
    await page.waitForSelector(".turn--assistant");
    assert.ok(await page.locator("#mode-completion").isChecked(), "the mode survives a reload");
    await page.context().close();
  });

  test("a request the server rejects shows its code and message", async () => {
    const page = await openChat(browser, gateway.url);
    await setSettings(page, { temperature: "7" });
    await send(page, "Hello?");
    const reply = await waitForReply(page);
    assert.equal(reply.status, "error");
    const card = page.locator(".turn--assistant .error-card");
    assert.equal(await card.getAttribute("role"), "alert");
    assert.equal(await card.locator(".error-code").textContent(), "invalid_argument");
    assert.match(await card.locator(".error-message").textContent(), /temperature/i);
    assert.deepEqual(page.errors, []);
    await page.context().close();
  });

  test("a finished conversation survives a reload and New chat clears it", async () => {
    const page = await openChat(browser, gateway.url);
    await setSettings(page, { "max-tokens": "32", temperature: "0" });
    await send(page, "Tell me a short story about a lighthouse keeper.");
    const first = await waitForReply(page);
    await page.fill("#prompt", "Now a shorter one");
    await page.press("#prompt", "Shift+Enter");
    await page.type("#prompt", "with a happy ending.");
    assert.equal(await page.inputValue("#prompt"), "Now a shorter one\nwith a happy ending.");
    await page.press("#prompt", "Enter");
    const second = await waitForReply(page);
    assert.equal(second.status, "done", second.error);
    assert.equal(
      await page.locator(".turn--user").nth(1).locator(".turn-text").textContent(),
      "Now a shorter one\nwith a happy ending.",
    );
    await page.screenshot({ path: path.join(outputDir, "chat.png") });

    await page.reload();
    await page.waitForSelector(".turn--assistant");
    assert.equal(await page.locator(".turn").count(), 4);
    assert.equal(
      await page.locator(".turn--assistant .turn-text").first().textContent(),
      first.text,
    );
    assert.match(await page.locator(".turn--assistant .turn-meta").last().textContent(), /tokens/);

    await page.click("#new-chat");
    assert.equal(await page.locator(".turn").count(), 0);
    assert.ok(await page.locator("#empty-state").isVisible());
    await page.reload();
    await page.waitForSelector("#empty-state");
    assert.equal(await page.locator(".turn").count(), 0, "the cleared conversation stays cleared");
    await page.context().close();
  });

  test("a phone-width screen shows the conversation without horizontal scrolling", async () => {
    const page = await openChat(browser, gateway.url, { width: 375, height: 760 });
    await setSettings(page, { "max-tokens": "40", temperature: "0" });
    await send(page, "Tell me a short story about a lighthouse keeper.");
    assert.equal((await waitForReply(page)).status, "done");
    const widths = await page.evaluate(() => ({
      scroll: document.documentElement.scrollWidth,
      viewport: window.innerWidth,
    }));
    assert.ok(
      widths.scroll <= widths.viewport,
      `page is ${widths.scroll}px wide in ${widths.viewport}px`,
    );
    for (const selector of ["#prompt", "#send", "#open-settings", "#protocol", "#model"]) {
      const box = await page.locator(selector).boundingBox();
      assert.ok(
        box !== null && box.x >= 0 && box.x + box.width <= widths.viewport,
        `${selector} fits`,
      );
    }
    await page.screenshot({ path: path.join(outputDir, "chat-phone.png") });
    await page.context().close();
  });

  test("the page works from the keyboard alone", async () => {
    const page = await openChat(browser, gateway.url);
    assert.equal(
      await page.evaluate(() => document.activeElement?.id),
      "prompt",
      "focus starts in the composer",
    );
    await page.keyboard.type("Hi there");
    await page.keyboard.press("Tab");
    assert.equal(await page.evaluate(() => document.activeElement?.getAttribute("name")), "mode");
    await page.keyboard.press("Shift+Tab");
    await page.keyboard.press("Enter");
    await waitForReply(page);
    // The settings open from the keyboard, trap focus, and Escape closes them.
    await page.focus("#open-settings");
    await page.keyboard.press("Enter");
    assert.ok(await page.locator("#settings").isVisible());
    assert.ok(
      await page.evaluate(() =>
        document.querySelector("#settings")?.contains(document.activeElement),
      ),
    );
    await page.keyboard.press("Escape");
    assert.equal(await page.locator("#settings").isVisible(), false);
    for (const selector of [
      "#new-chat",
      "#open-settings",
      "#send",
      "#stop",
      "#model",
      "#protocol",
      "#prompt",
    ]) {
      const name = await page
        .locator(selector)
        .evaluate(
          (element) => element.getAttribute("aria-label") ?? element.labels?.[0]?.textContent ?? "",
        );
      assert.ok(name.trim().length > 0, `${selector} has an accessible name`);
    }
    assert.equal(
      await page.locator(".turn--assistant .turn-text").getAttribute("aria-live"),
      "polite",
    );
    await page.context().close();
  });
});

describe("chat page with several models", () => {
  const sharedModel = path.resolve(repoRoot, "../shared/models/tiny-random-llama");

  /** The shared model without its chat template: its files linked, tokenizer_config rewritten. */
  async function plainCopy(dir) {
    await mkdir(dir);
    for (const name of await readdir(sharedModel)) {
      if (name !== "tokenizer_config.json") {
        await symlink(path.join(sharedModel, name), path.join(dir, name));
      }
    }
    const config = JSON.parse(
      await readFile(path.join(sharedModel, "tokenizer_config.json"), "utf8"),
    );
    delete config.chat_template;
    await writeFile(path.join(dir, "tokenizer_config.json"), JSON.stringify(config));
  }

  test("the picker lists the models, picks Chat or Complete per model, and requests go to the chosen one", async (t) => {
    if (!existsSync(sharedModel)) {
      t.skip(`${sharedModel} is absent`);
      return;
    }
    const tmp = await mkdtemp(path.join(tmpdir(), "parley-web-"));
    const plain = path.join(tmp, "plain-llama");
    await plainCopy(plain);
    const gateway = await startGateway([
      "--model",
      "builtin",
      "--model",
      sharedModel,
      "--model",
      plain,
    ]);
    const browser = await launchBrowser();
    try {
      const page = await openChat(browser, gateway.url);
      const options = await page.locator("#model option").allTextContents();
      assert.equal(options.length, 3);
      assert.match(options[0], /\(default\)/);
      assert.ok(await page.locator("#mode-chat").isChecked());

      await page.selectOption("#model", "tiny-random-llama");
      assert.match(await page.locator("#empty-model").textContent(), /tiny-random-llama/);
      await setSettings(page, { "max-tokens": "8", temperature: "0" });
      await send(page, "Hello");
      const reply = await waitForReply(page);
      assert.equal(reply.status, "done", reply.error);
      const served = await page
        .locator(".turn-meta span[title^='Served over']")
        .getAttribute("title");
      assert.match(served, /by tiny-random-llama$/);

      // A model without a chat template switches the page to Complete mode.
      await page.click("#new-chat");
      await page.selectOption("#model", "plain-llama");
      assert.match(await page.locator("#empty-model").textContent(), /Chat template\s*no/);
      assert.ok(await page.locator("#mode-completion").isChecked(), "Complete was picked");
      await send(page, "Once upon a time");
      assert.equal((await waitForReply(page)).status, "done");
      // The user may still choose Chat: the page warns, and the server's refusal is shown.
      await page.click("label[for='mode-chat']");
      assert.match(await page.locator("#composer-note").textContent(), /no chat template/);
      await send(page, "Hello");
      const refused = await waitForReply(page);
      assert.equal(refused.status, "error");
      assert.match(refused.error, /chat template/);

      await page.reload();
      await page.waitForFunction(() => !document.querySelector("#model")?.disabled);
      assert.equal(await page.inputValue("#model"), "plain-llama", "the choice survives a reload");
      assert.ok(await page.locator("#mode-chat").isChecked(), "so does the user's mode");
      await page.selectOption("#model", "parley-tiny");
      assert.ok(await page.locator("#mode-chat").isChecked(), "a templated model gets Chat");
    } finally {
      await browser.close();
      await gateway.stop();
      await rm(tmp, { recursive: true, force: true });
    }
  });
});

describe("chat page on another origin", () => {
  let browser;
  let server;
  let pageUrl;
  before(async () => {
    browser = await launchBrowser();
    const port = await freePort();
    server = await preview({
      root: webClientDir,
      logLevel: "silent",
      preview: { host: "127.0.0.1", port, strictPort: true },
    });
    pageUrl = `http://127.0.0.1:${port}`;
  });
  after(async () => {
    await browser?.close();
    await server?.close();
  });

  test("an unreachable gateway shows a readable error, not a blank page", async () => {
    const closedPort = await freePort();
    const page = await openChat(browser, `${pageUrl}/?gateway=http://127.0.0.1:${closedPort}`);
    const banner = page.locator("#banner .error-card");
    assert.equal(await banner.locator(".error-code").textContent(), "unknown");
    assert.match(await banner.textContent(), /Can't reach the gateway/);
    assert.match(await banner.textContent(), new RegExp(`127\\.0\\.0\\.1:${closedPort}`));
    await send(page, "Is anyone there?");
    const reply = await waitForReply(page);
    assert.equal(reply.status, "error");
    assert.match(reply.error, /Can't reach the gateway/);
    assert.match(reply.error, /--cors-origin/);
    await page.screenshot({ path: path.join(outputDir, "chat-unreachable.png") });
    assert.deepEqual(page.errors, []);
    await page.context().close();
  });

  test("?gateway= reaches a gateway on another origin through CORS", async () => {
    const gateway = await startGateway(["--cors-origin", pageUrl]);
    try {
      const page = await openChat(browser, `${pageUrl}/?gateway=${gateway.url}`);
      assert.equal(await page.locator("#banner").isHidden(), true, "ListModels succeeded");
      await setSettings(page, { "max-tokens": "16", temperature: "0" });
      for (const protocol of ["connect-binary", "grpc-web"]) {
        await page.click("#new-chat");
        await setProtocol(page, protocol);
        await send(page, "Hello from another origin.");
        const reply = await waitForReply(page);
        assert.equal(reply.status, "done", `${protocol}: ${reply.error}`);
        assert.ok(reply.text.length > 0);
      }
      await page.context().close();
    } finally {
      await gateway.stop();
    }
  });
});
