/**
 * Chat replies as Markdown, in a real browser on the page the gateway serves. The built-in
 * model's text is random, so these replies are written by the test (`fakeReplyStream`) and go
 * through the page's own stream client, chat view and renderer.
 */
import assert from "node:assert/strict";
import path from "node:path";
import { after, before, describe, test } from "node:test";
import {
  fakeReplyStream,
  launchBrowser,
  openChat,
  outputDir,
  send,
  waitForReply,
} from "./chat-page.mjs";
import { startGateway } from "./gateway-process.mjs";

const sample = [
  "## Reading a file",
  "",
  "Use **`readFile`** from *node:fs/promises*, see [the docs](https://nodejs.org/api/fs.html).",
  "",
  "1. Import it",
  "2. Await it",
  "   - errors reject",
  "",
  "| Option | Default |",
  "| --- | ---: |",
  "| `encoding` | `null` |",
  "| `flag` | `'r'` |",
  "",
  "```ts",
  'import { readFile } from "node:fs/promises";',
  "",
  'const text = await readFile("notes.txt", "utf8"); // a long line that does not fit the column and has to scroll',
  "```",
  "",
  "> Paths are relative to the working directory.",
].join("\n");

/** Cuts text into pieces of `size` characters, as tokens would arrive. */
function pieces(text, size) {
  const out = [];
  for (let at = 0; at < text.length; at += size) {
    out.push(text.slice(at, at + size));
  }
  return out;
}

/** Counts, in the page, how often the newest reply's text box is filled anew. */
async function countRenders(page) {
  await page.evaluate(() => {
    const box = [...document.querySelectorAll(".turn--assistant .turn-text")].at(-1);
    window.__renders = 0;
    new MutationObserver((records) => {
      window.__renders += records.filter((record) => record.target === box).length;
    }).observe(box, { childList: true });
  });
  return () => page.evaluate(() => window.__renders);
}

/** Resolves after the page has drawn two more frames. */
function nextFrames(page) {
  return page.evaluate(
    () =>
      new Promise((resolve) => requestAnimationFrame(() => requestAnimationFrame(() => resolve()))),
  );
}

describe("Markdown in chat replies", () => {
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

  test("a reply shows headings, lists, tables, code, quotes and links; the user's text stays as typed", async () => {
    const page = await openChat(browser, gateway.url);
    const stream = await fakeReplyStream(page);
    const typed = "Show **bold** and <b>tags</b>\n    as typed";
    await send(page, typed);
    await stream.push(...pieces(sample, 5));
    await stream.end();
    const reply = await waitForReply(page);
    assert.equal(reply.status, "done", reply.error);

    const user = page.locator(".turn--user .turn-text");
    assert.equal(await user.textContent(), typed);
    assert.equal(await user.locator("strong, b").count(), 0, "the user's text is not Markdown");

    const shown = await page.locator(".turn--assistant .turn-text").evaluate((box) => {
      const texts = (selector) => [...box.querySelectorAll(selector)].map((e) => e.textContent);
      const pre = box.querySelector("pre");
      const link = box.querySelector("a");
      return {
        h2: texts("h2"),
        strongCode: texts("strong > code"),
        em: texts("em"),
        items: texts("ol > li > ul > li"),
        orderedItems: box.querySelectorAll("ol > li").length,
        headers: texts("th"),
        cells: texts("td code"),
        rightAligned: getComputedStyle(box.querySelector("td:last-child")).textAlign,
        code: box.querySelector("pre > code.language-ts")?.textContent,
        preStyle: pre && {
          whiteSpace: getComputedStyle(pre).whiteSpace,
          overflowX: getComputedStyle(pre).overflowX,
          font: getComputedStyle(pre.firstElementChild).fontFamily,
          scrolls: pre.scrollWidth > pre.clientWidth,
        },
        quote: box.querySelector("blockquote")?.textContent.trim(),
        link: link && {
          href: link.href,
          target: link.target,
          rel: link.rel,
          text: link.textContent,
        },
      };
    });
    assert.deepEqual(shown.h2, ["Reading a file"]);
    assert.deepEqual(shown.strongCode, ["readFile"]);
    assert.deepEqual(shown.em, ["node:fs/promises"]);
    assert.equal(shown.orderedItems, 2);
    assert.deepEqual(shown.items, ["errors reject"]);
    assert.deepEqual(shown.headers, ["Option", "Default"]);
    assert.deepEqual(shown.cells, ["encoding", "null", "flag", "'r'"]);
    assert.equal(shown.rightAligned, "right");
    assert.equal(
      shown.code,
      'import { readFile } from "node:fs/promises";\n\nconst text = await readFile("notes.txt", "utf8"); // a long line that does not fit the column and has to scroll\n',
    );
    assert.equal(shown.preStyle?.whiteSpace, "pre", "code keeps its lines and spaces");
    assert.equal(shown.preStyle?.overflowX, "auto");
    assert.ok(shown.preStyle?.scrolls, "the long code line scrolls sideways");
    assert.match(shown.preStyle?.font ?? "", /monospace/);
    assert.equal(shown.quote, "Paths are relative to the working directory.");
    assert.deepEqual(shown.link, {
      href: "https://nodejs.org/api/fs.html",
      target: "_blank",
      rel: "noopener noreferrer",
      text: "the docs",
    });
    const widths = await page.evaluate(() => ({
      scroll: document.documentElement.scrollWidth,
      viewport: window.innerWidth,
    }));
    assert.ok(widths.scroll <= widths.viewport, "the page itself does not scroll sideways");
    assert.deepEqual(page.errors, []);

    await page.screenshot({ path: path.join(outputDir, "chat-markdown.png") });
    await page.emulateMedia({ colorScheme: "dark" });
    await page.screenshot({ path: path.join(outputDir, "chat-markdown-dark.png") });

    await page.setViewportSize({ width: 375, height: 760 });
    const phone = await page.evaluate(() => ({
      scroll: document.documentElement.scrollWidth,
      viewport: window.innerWidth,
    }));
    assert.ok(
      phone.scroll <= phone.viewport,
      `page is ${phone.scroll}px wide in ${phone.viewport}px`,
    );
    await page.locator(".turn--assistant table").scrollIntoViewIfNeeded();
    await page.screenshot({ path: path.join(outputDir, "chat-markdown-phone.png") });
    await page.context().close();
  });

  test("raw HTML and script links in a reply stay inert text", async () => {
    const page = await openChat(browser, gateway.url);
    const stream = await fakeReplyStream(page);
    await send(page, "Say something dangerous.");
    await stream.push(
      "Look: <img src=x onerr",
      'or="window.__pwned = 1"> and <script>window.__pwned = 2</script>\n\n',
      "[click](javascript:alert(1)) [page](data:text/html,<b>x</b>) ",
      "[pixel](data:image/png;base64,iVBORw0KGgo=) ![tracker](https://example.invalid/t.png) ",
      '<a href="javascript:alert(2)">raw</a> [safe](https://example.com/docs)',
    );
    await stream.end();
    const reply = await waitForReply(page);
    assert.equal(reply.status, "done", reply.error);
    // An <img src=x onerror> that got through runs its handler when it fails to load.
    await page.evaluate(() =>
      Promise.all(
        [...document.querySelectorAll(".turn-text img")].map(
          (img) =>
            img.complete ||
            new Promise((resolve) => {
              img.addEventListener("load", resolve);
              img.addEventListener("error", resolve);
            }),
        ),
      ),
    );

    const found = await page.locator(".turn--assistant .turn-text").evaluate((box) => ({
      elements: [...box.querySelectorAll("*")].map((element) => element.localName),
      handlers: [...box.querySelectorAll("*")].flatMap((element) =>
        element.getAttributeNames().filter((name) => name.startsWith("on")),
      ),
      links: [...box.querySelectorAll("a")].map((link) => link.getAttribute("href")),
      pwned: window.__pwned,
    }));
    assert.deepEqual(
      found.elements.filter((name) => name !== "p" && name !== "br" && name !== "a"),
      [],
    );
    assert.deepEqual(found.handlers, []);
    assert.deepEqual(found.links, ["https://example.invalid/t.png", "https://example.com/docs"]);
    assert.equal(found.pwned, undefined, "no script from the reply ran");
    assert.ok(reply.text.includes('<img src=x onerror="window.__pwned = 1">'), reply.text);
    assert.ok(reply.text.includes("<script>window.__pwned = 2</script>"), reply.text);
    assert.ok(reply.text.includes("[click](javascript:alert(1))"), reply.text);
    assert.ok(reply.text.includes("[pixel](data:image/png;base64,iVBORw0KGgo=)"), reply.text);
    assert.ok(reply.text.includes('<a href="javascript:alert(2)">raw</a>'), reply.text);
    assert.deepEqual(page.errors, []);
    await page.context().close();
  });

  test("a streaming reply is drawn at most once a frame, and an unclosed code fence shows as code", async () => {
    const page = await openChat(browser, gateway.url);
    const stream = await fakeReplyStream(page);
    await send(page, "Count to 200 in code.");
    await page.waitForSelector(".turn--assistant");
    const renders = await countRenders(page);

    await stream.push("Here it is:\n\n```js\n", "const start = 0;\n");
    await page.waitForFunction(() =>
      document.querySelector(".turn--assistant pre > code")?.textContent.includes("start"),
    );
    const midway = await page.evaluate(() => ({
      status: document.querySelector(".turn--assistant")?.getAttribute("data-status"),
      intro: document.querySelector(".turn--assistant .turn-text > p")?.textContent,
      code: document.querySelector(".turn--assistant pre > code")?.textContent,
    }));
    assert.deepEqual(midway, {
      status: "streaming",
      intro: "Here it is:",
      code: "const start = 0;\n",
    });
    await page.screenshot({ path: path.join(outputDir, "chat-markdown-streaming.png") });

    const before = await renders();
    await stream.push(...Array.from({ length: 200 }, (_, n) => `console.log(${n});\n`));
    await page.waitForFunction(() =>
      document.querySelector(".turn--assistant pre > code")?.textContent.includes("(199)"),
    );
    await nextFrames(page);
    const drawn = (await renders()) - before;
    assert.ok(drawn >= 1 && drawn <= 2, `200 messages in one read were drawn ${drawn} times`);

    await stream.push("```\n\nDone.");
    await stream.end();
    const reply = await waitForReply(page);
    assert.equal(reply.status, "done", reply.error);
    assert.match(reply.text, /console\.log\(199\);\n\s*Done\.\s*$/);
    assert.equal(await page.locator(".turn--assistant pre").count(), 1);
    assert.deepEqual(page.errors, []);
    await page.context().close();
  });
});
