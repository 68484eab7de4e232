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

/**
 * Answers the page's GenerateStream calls (Connect JSON) with replies the test writes, instead
 * of the gateway's model, whose text is random. `push(...pieces)` sends each piece as one
 * stream message of one token, all of them in one network read, to the oldest call not yet
 * ended; `end(usage?)` finishes it with FINISH_REASON_STOP (and `usage`, when given), and the
 * next `push` goes to the next call. `requests()` returns the request bodies the page sent.
 * Other calls (ListModels) still reach the gateway.
 */
export async function fakeReplyStream(page) {
  await page.evaluate(() => {
    const realFetch = window.fetch.bind(window);
    const encoder = new TextEncoder();
    /** One Connect envelope: a flags byte, the length as 4 bytes big-endian, then JSON. */
    const envelope = (flags, message) => {
      const json = encoder.encode(JSON.stringify(message));
      const bytes = new Uint8Array(5 + json.length);
      bytes[0] = flags;
      new DataView(bytes.buffer).setUint32(1, json.length);
      bytes.set(json, 5);
      return bytes;
    };
    const concat = (chunks) => {
      const bytes = new Uint8Array(chunks.reduce((sum, chunk) => sum + chunk.length, 0));
      let offset = 0;
      for (const chunk of chunks) {
        bytes.set(chunk, offset);
        offset += chunk.length;
      }
      return bytes;
    };
    /** Per call, a promise of its response body's stream controller. */
    const bodies = [];
    const body = (index) => {
      if (bodies[index] === undefined) {
        let resolve;
        const promise = new Promise((done) => {
          resolve = done;
        });
        bodies[index] = { promise, resolve };
      }
      return bodies[index];
    };
    let calls = 0;
    let ended = 0;
    const requests = [];
    window.__fakeReply = {
      requests,
      async push(pieces) {
        const controller = await body(ended).promise;
        controller.enqueue(concat(pieces.map((text) => envelope(0, { text, tokenIds: [1] }))));
      },
      async end(usage) {
        const controller = await body(ended).promise;
        ended++;
        const last = { finishReason: "FINISH_REASON_STOP", ...(usage ? { usage } : {}) };
        controller.enqueue(concat([envelope(0, last), envelope(2, {})]));
        controller.close();
      },
    };
    window.fetch = (input, init) => {
      const url = typeof input === "string" ? input : input.url;
      if (!url.endsWith("/GenerateStream")) {
        return realFetch(input, init);
      }
      // A streaming call's body is one Connect envelope: 5 bytes of header, then the JSON.
      const sent = init.body instanceof Uint8Array ? init.body.subarray(5) : init.body;
      requests.push(JSON.parse(typeof sent === "string" ? sent : new TextDecoder().decode(sent)));
      const call = body(calls++);
      const stream = new ReadableStream({ start: call.resolve });
      return Promise.resolve(
        new Response(stream, { headers: { "content-type": "application/connect+json" } }),
      );
    };
  });
  return {
    push: (...pieces) => page.evaluate((list) => window.__fakeReply.push(list), pieces),
    end: (usage) => page.evaluate((value) => window.__fakeReply.end(value), usage),
    requests: () => page.evaluate(() => window.__fakeReply.requests),
  };
}

/** Sends a message and answers it with `text` through a `fakeReplyStream`; returns the reply. */
export async function exchange(page, stream, message, text, usage) {
  await send(page, message);
  await stream.push(text);
  await stream.end(usage);
  return waitForReply(page);
}

/**
 * Slows the page's GenerateStream downloads to `bytes` every `everyMs` milliseconds, so a reply
 * the built-in model writes in a few milliseconds reaches the page over many animation frames,
 * as a real model's would. The reply itself still comes from the gateway.
 */
export async function paceReplyDownloads(page, { bytes, everyMs }) {
  await page.evaluate(
    ({ bytes, everyMs }) => {
      const realFetch = window.fetch.bind(window);
      const pause = () => new Promise((resolve) => setTimeout(resolve, everyMs));
      window.fetch = async (input, init) => {
        const response = await realFetch(input, init);
        const url = typeof input === "string" ? input : input.url;
        if (!url.endsWith("/GenerateStream") || response.body === null) {
          return response;
        }
        const paced = response.body.pipeThrough(
          new TransformStream({
            async transform(chunk, controller) {
              for (let at = 0; at < chunk.length; at += bytes) {
                controller.enqueue(chunk.slice(at, at + bytes));
                await pause();
              }
            },
          }),
        );
        return new Response(paced, { status: response.status, headers: response.headers });
      };
    },
    { bytes, everyMs },
  );
}
