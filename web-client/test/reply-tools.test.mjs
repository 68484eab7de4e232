/**
 * What a person does with replies, in a real browser against the real gateway: regenerate, edit
 * and resend, copy, highlighted code, math, folded reasoning, live numbers, context use and the
 * theme. Replies whose content matters are written by the test (`fakeReplyStream`), because the
 * built-in model's text is random; they still go through the page's own client and renderer.
 */
import assert from "node:assert/strict";
import path from "node:path";
import { after, before, describe, test } from "node:test";
import {
  exchange,
  fakeReplyStream,
  launchBrowser,
  openChat,
  outputDir,
  paceReplyDownloads,
  send,
  setSettings,
  waitForReply,
} from "./chat-page.mjs";
import { startGateway } from "./gateway-process.mjs";

/** The user's text of each turn's message in a GenerateStream request, as "role: content". */
const messages = (request) => request.messages.map((m) => `${m.role}: ${m.content}`);

/** Each turn's text as shown, without the line end Markdown paragraphs carry. */
const shownTurns = async (page) =>
  (await page.locator(".turn .turn-text").allTextContents()).map((text) => text.trim());

/** The page's requests for script and style chunks, by file name. */
function recordChunks(page) {
  const names = [];
  page.on("request", (request) => {
    const match = /\/assets\/([^/?]+)$/.exec(request.url());
    if (match !== null) {
      names.push(match[1]);
    }
  });
  return names;
}

describe("working with replies", () => {
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

  test("Regenerate replaces the newest reply with a new one from the same conversation", async () => {
    const page = await openChat(browser, gateway.url);
    const stream = await fakeReplyStream(page);
    await exchange(page, stream, "First question", "First answer");
    await exchange(page, stream, "Second question", "Second answer");
    const regenerate = page.locator(".turn--assistant .regenerate-button");
    assert.equal(await regenerate.count(), 2);
    assert.equal(await regenerate.first().isVisible(), false, "only the newest reply offers it");
    assert.equal(await regenerate.last().getAttribute("aria-label"), "Regenerate reply");

    await regenerate.last().click();
    await stream.push("Second answer, ", "again");
    await stream.end();
    const reply = await waitForReply(page);
    assert.equal(reply.status, "done", reply.error);
    assert.equal(reply.text.trim(), "Second answer, again");
    assert.deepEqual(
      await shownTurns(page),
      ["First question", "First answer", "Second question", "Second answer, again"],
      "the old reply is gone, the rest is kept",
    );
    const [, second, again] = await stream.requests();
    assert.deepEqual(messages(again), messages(second), "the same conversation was sent again");
    await page.reload();
    await page.waitForSelector(".turn--assistant");
    assert.equal(
      await page.locator(".turn--assistant .turn-text").last().textContent(),
      reply.text,
    );
    assert.deepEqual(page.errors, []);
    await page.context().close();
  });

  test("editing a message sends it again and replaces the turns after it", async () => {
    const page = await openChat(browser, gateway.url);
    const stream = await fakeReplyStream(page);
    await exchange(page, stream, "Name a colour", "Blue");
    await exchange(page, stream, "Another one", "Green");

    const first = page.locator(".turn--user").first();
    await first.hover();
    await first.locator(".edit-button").click();
    const editor = page.locator(".turn-editor textarea");
    assert.equal(await editor.inputValue(), "Name a colour");
    assert.equal(await page.evaluate(() => document.activeElement?.className), "edit-text");
    await page.screenshot({ path: path.join(outputDir, "chat-edit.png") });
    await editor.press("Escape");
    assert.equal(await page.locator(".turn-editor").count(), 0, "Escape cancels");
    assert.equal(await page.locator(".turn").count(), 4);

    await first.locator(".edit-button").click();
    await editor.fill("Name a fruit");
    await editor.press("Enter");
    await stream.push("Apple");
    await stream.end();
    const reply = await waitForReply(page);
    assert.equal(reply.status, "done", reply.error);
    assert.deepEqual(await shownTurns(page), ["Name a fruit", "Apple"]);
    const requests = await stream.requests();
    assert.deepEqual(messages(requests.at(-1)), ["user: Name a fruit"], "later turns not sent");
    await page.reload();
    await page.waitForSelector(".turn--assistant");
    assert.equal(await page.locator(".turn").count(), 2, "the edit was saved");
    assert.deepEqual(page.errors, []);
    await page.context().close();
  });

  test("Copy puts a reply's Markdown, or one code block's code, on the clipboard", async () => {
    const page = await openChat(browser, gateway.url);
    await page.context().grantPermissions(["clipboard-read", "clipboard-write"]);
    // The clipboard API refuses a page without focus; earlier tests' pages may hold it.
    await page.bringToFront();
    const stream = await fakeReplyStream(page);
    const source = "Two ways:\n\n```sh\nls -la\n```\n\nor\n\n```python\nprint(sorted(xs))\n```\n";
    await exchange(page, stream, "List files", source);

    // "Copied" shows for 1.5 s; a loaded machine can stall the page's polling longer than that,
    // so every label a button takes is recorded as it changes and the test reads the record.
    await page.evaluate(() => {
      window.copyLabels = [];
      new MutationObserver((changes) => {
        for (const change of changes) {
          const button =
            change.target instanceof Element ? change.target : change.target.parentElement;
          const copy = button?.closest(".code-copy, button[aria-label^='Cop']");
          if (copy != null) {
            window.copyLabels.push(copy.getAttribute("aria-label") ?? copy.textContent);
          }
        }
      }).observe(document.body, {
        subtree: true,
        childList: true,
        characterData: true,
        attributeFilter: ["aria-label"],
      });
    });
    const copied = () => page.waitForFunction(() => window.copyLabels.includes("Copied"));
    const clipboard = () => page.evaluate(() => navigator.clipboard.readText());

    const copyCode = page.locator(".code-block .code-copy");
    assert.equal(await copyCode.count(), 2);
    await copyCode.last().click();
    await copied();
    assert.equal(await clipboard(), "print(sorted(xs))\n");
    await page.evaluate(() => {
      window.copyLabels = [];
    });
    await page.locator("button[aria-label='Copy reply']").click();
    await copied();
    assert.equal(await clipboard(), source);
    assert.deepEqual(page.errors, []);
    await page.context().close();
  });

  test("fenced code is coloured once its language's chunk loads, and stays inert text", async () => {
    const context = await browser.newContext({ viewport: { width: 1100, height: 860 } });
    const page = await context.newPage();
    const chunks = recordChunks(page);
    await page.goto(gateway.url);
    await page.waitForFunction(() => !document.querySelector("#model")?.disabled);
    assert.deepEqual(
      chunks.filter((name) => /^(core|python|katex)-/.test(name)),
      [],
      "nothing of highlight.js or KaTeX in the first load",
    );
    const stream = await fakeReplyStream(page);
    const code = 'def greet(name):\n    return f"<img src=x onerror=alert(1)> {name}"  # hi\n';
    await exchange(
      page,
      stream,
      "Write Python",
      `\`\`\`py\n${code}\`\`\`\n\n\`\`\`brainfuck\n+[-->-[>>+>-----<<]<--<---]\n\`\`\``,
    );
    await page.waitForSelector(".turn--assistant pre code.hljs .hljs-keyword");
    assert.ok(
      chunks.some((name) => name.startsWith("core-")),
      `chunks: ${chunks}`,
    );
    assert.ok(
      chunks.some((name) => name.startsWith("python-")),
      `chunks: ${chunks}`,
    );
    const shown = await page.locator(".turn--assistant .turn-text").evaluate((box) => ({
      labels: [...box.querySelectorAll(".code-language")].map((e) => e.textContent),
      code: box.querySelector("pre code.hljs")?.textContent,
      keywords: [...box.querySelectorAll(".hljs-keyword")].map((e) => e.textContent),
      strings: box.querySelectorAll(".hljs-string").length,
      comment: box.querySelector(".hljs-comment")?.textContent,
      plain: box.querySelectorAll("pre")[1]?.querySelector("span") === null,
      images: box.querySelectorAll("img").length,
      keywordColour: getComputedStyle(box.querySelector(".hljs-keyword")).color,
      textColour: getComputedStyle(box).color,
    }));
    assert.deepEqual(shown.labels, ["py", "brainfuck"]);
    assert.equal(shown.code, code, "highlighting keeps the code as it was");
    assert.deepEqual(shown.keywords, ["def", "return"]);
    assert.ok(shown.strings >= 1);
    assert.equal(shown.comment, "# hi");
    assert.ok(shown.plain, "a language the page does not offer stays plain");
    assert.equal(shown.images, 0, "markup inside code stays text");
    assert.notEqual(shown.keywordColour, shown.textColour, "keywords have their own colour");
    await page
      .locator(".turn--assistant .code-block")
      .first()
      .screenshot({
        path: path.join(outputDir, "chat-code-light.png"),
      });
    await page.emulateMedia({ colorScheme: "dark" });
    await page
      .locator(".turn--assistant .code-block")
      .first()
      .screenshot({
        path: path.join(outputDir, "chat-code-dark.png"),
      });
    assert.deepEqual(await page.evaluate(() => window.__pwned), undefined);
    await context.close();
  });

  test("math is drawn by KaTeX, loaded on first use; money stays text; formulas cannot add links", async () => {
    const context = await browser.newContext({ viewport: { width: 1100, height: 860 } });
    const page = await context.newPage();
    const chunks = recordChunks(page);
    await page.goto(gateway.url);
    await page.waitForFunction(() => !document.querySelector("#model")?.disabled);
    const stream = await fakeReplyStream(page);
    await exchange(
      page,
      stream,
      "Some maths",
      [
        "Euler: $e^{i\\pi} + 1 = 0$, and it costs $5 and $10.",
        "",
        "$$",
        "\\int_0^1 x^2\\,dx = \\frac{1}{3}",
        "$$",
        "",
        "Bad: $\\href{javascript:alert(1)}{click}$ and `$not math$`.",
      ].join("\n"),
    );
    await page.waitForSelector(".turn--assistant .katex-display");
    assert.ok(
      chunks.some((name) => /^katex-.*\.js$/.test(name)),
      `chunks: ${chunks}`,
    );
    assert.ok(
      chunks.some((name) => /^katex-.*\.css$/.test(name)),
      `chunks: ${chunks}`,
    );
    const shown = await page.locator(".turn--assistant .turn-text").evaluate((box) => ({
      formulas: box.querySelectorAll(".katex").length,
      display: box.querySelectorAll(".math-block .katex-display").length,
      mathml: box.querySelector(".katex annotation")?.textContent,
      firstParagraph: box.querySelector("p")?.textContent,
      links: [...box.querySelectorAll("a")].map((a) => a.getAttribute("href")),
      inlineCode: box.querySelector("p code")?.textContent,
      source: box.querySelectorAll(".math-source").length,
    }));
    assert.equal(shown.formulas, 3, "two inline formulas and one block");
    assert.equal(shown.display, 1);
    assert.equal(shown.mathml, "e^{i\\pi} + 1 = 0", "screen readers get MathML");
    assert.match(shown.firstParagraph, /costs \$5 and \$10\./);
    assert.deepEqual(shown.links, [], "\\href is refused (trust: false)");
    assert.equal(shown.inlineCode, "$not math$");
    assert.equal(shown.source, 0, "no formula left as source once KaTeX loaded");
    await page.locator(".turn--assistant .turn-text").screenshot({
      path: path.join(outputDir, "chat-math.png"),
    });
    await context.close();
  });

  test("a <think> section is folded, keeps its state while streaming, and is not sent back", async () => {
    const page = await openChat(browser, gateway.url);
    const stream = await fakeReplyStream(page);
    await send(page, "What is 6 x 7?");
    await stream.push("<think>\n", "Six sevens ");
    const details = page.locator(".turn--assistant details.thinking");
    await details.waitFor();
    assert.equal(await details.locator("summary").textContent(), "Thinking…");
    assert.equal(await details.evaluate((d) => d.open), false, "folded by default");
    await details.locator("summary").click();
    await stream.push("are forty-two.");
    await page.waitForFunction(() =>
      document.querySelector(".thinking-text")?.textContent.includes("forty-two"),
    );
    assert.equal(await details.evaluate((d) => d.open), true, "stays open as it redraws");
    await stream.push("\n</think>\n\n", "It is **42**.");
    await stream.end();
    const reply = await waitForReply(page);
    assert.equal(reply.status, "done", reply.error);
    assert.equal(await details.locator("summary").textContent(), "Reasoning");
    assert.equal(await details.evaluate((d) => d.open), true);
    assert.equal(
      await page.locator(".turn--assistant .turn-text > p").textContent(),
      "It is 42.",
      "the answer is outside the fold",
    );
    await page.screenshot({ path: path.join(outputDir, "chat-thinking.png") });
    await details.locator("summary").press("Enter");
    assert.equal(await details.evaluate((d) => d.open), false, "the keyboard folds it again");

    await exchange(page, stream, "And 6 x 8?", "48");
    const requests = await stream.requests();
    assert.deepEqual(messages(requests.at(-1)), [
      "user: What is 6 x 7?",
      "assistant: It is **42**.",
      "user: And 6 x 8?",
    ]);
    assert.deepEqual(page.errors, []);
    await page.context().close();
  });

  test("a streaming reply shows its tokens and speed so far; the conversation's context use shows after", async () => {
    const page = await openChat(browser, gateway.url);
    const contextLength = Number(
      (await page.locator("#empty-model").textContent())
        .match(/Context([\d,]+) tokens/)?.[1]
        ?.replace(/,/g, ""),
    );
    assert.ok(contextLength > 0, "ListModels gave the context length");
    assert.equal(await page.locator("#context-use").isHidden(), true, "unknown before a reply");
    await setSettings(page, { "max-tokens": "40", temperature: "0" });
    await paceReplyDownloads(page, { bytes: 48, everyMs: 15 });
    await page.evaluate(() => {
      window.__live = [];
      new MutationObserver(() => {
        const live = document.querySelector(".turn-live");
        if (live !== null) {
          window.__live.push(live.textContent);
        }
      }).observe(document.querySelector("#turns"), {
        subtree: true,
        childList: true,
        characterData: true,
      });
    });
    await send(page, "Tell me a short story about a lighthouse keeper.");
    const reply = await waitForReply(page);
    assert.equal(reply.status, "done", reply.error);
    const live = await page.evaluate(() => window.__live);
    const counts = [...new Set(live.map((text) => Number(/(\d+) tokens?/.exec(text)?.[1])))].filter(
      (n) => n > 0,
    );
    assert.ok(counts.length >= 3, `live token counts seen: ${counts}`);
    assert.deepEqual(
      counts,
      [...counts].sort((a, b) => a - b),
      "the count only grows",
    );
    assert.ok(
      live.some((text) => /\d+\.\d tok\/s/.test(text)),
      `a speed was shown: ${live.at(-1)}`,
    );
    assert.equal(await page.locator(".turn-live").count(), 0, "the final numbers replace them");

    const title = await page.locator(".turn-meta span[title*='prompt:']").getAttribute("title");
    const prompt = Number(/prompt: (\d+) tokens/.exec(title)?.[1]);
    const completion = Number(/(\d+) tokens?/.exec(reply.meta)?.[1]);
    const used = prompt + completion;
    assert.equal(
      await page.locator("#context-label").textContent(),
      `${used.toLocaleString("en-US")} / ${contextLength.toLocaleString("en-US")}`,
    );
    assert.equal(await page.locator("#context-meter").evaluate((m) => m.value), used);
    assert.equal(await page.locator("#context-meter").evaluate((m) => m.max), contextLength);

    // A conversation near the end of the context is flagged (usage reported by a fake reply).
    const stream = await fakeReplyStream(page);
    await exchange(page, stream, "More", "Sure.", {
      promptTokens: contextLength - 20,
      completionTokens: 10,
    });
    assert.match(await page.locator("#context-use").getAttribute("class"), /context-use--full/);
    assert.match(await page.locator("#context-use").getAttribute("title"), /start a new chat/);
    await page.locator(".composer-area").screenshot({
      path: path.join(outputDir, "chat-context-full.png"),
    });
    await page.click("#new-chat");
    assert.equal(await page.locator("#context-use").isHidden(), true, "a new chat uses none");
    assert.deepEqual(page.errors, []);
    await page.context().close();
  });

  test("the theme button goes system, light, dark, overrides the system's scheme and survives a reload", async () => {
    const context = await browser.newContext({
      viewport: { width: 1100, height: 760 },
      colorScheme: "dark",
    });
    const page = await context.newPage();
    await page.goto(gateway.url);
    await page.waitForFunction(() => !document.querySelector("#model")?.disabled);
    const background = () => page.evaluate(() => getComputedStyle(document.body).backgroundColor);
    const label = () => page.locator("#theme-toggle").getAttribute("aria-label");
    assert.match(await label(), /^Theme: system/);
    assert.equal(await background(), "rgb(23, 24, 27)", "the system is dark");

    await page.click("#theme-toggle");
    assert.match(await label(), /^Theme: light\. Switch to dark/);
    assert.equal(await background(), "rgb(255, 255, 255)", "light despite a dark system");
    await page.screenshot({ path: path.join(outputDir, "chat-theme-light.png") });

    await page.click("#theme-toggle");
    assert.match(await label(), /^Theme: dark/);
    await page.emulateMedia({ colorScheme: "light" });
    assert.equal(await background(), "rgb(23, 24, 27)", "dark despite a light system");
    await page.reload();
    assert.equal(
      await page.evaluate(() => document.documentElement.dataset.theme),
      "dark",
      "applied from storage before the app script",
    );
    assert.equal(await background(), "rgb(23, 24, 27)");
    await page.waitForFunction(() => !document.querySelector("#model")?.disabled);
    await page.screenshot({ path: path.join(outputDir, "chat-theme-dark.png") });

    await page.click("#theme-toggle");
    assert.match(await label(), /^Theme: system/);
    assert.equal(await background(), "rgb(255, 255, 255)", "back to the (now light) system");
    await context.close();
  });
});
