/**
 * The API key field in a real browser against the real gateway started with --api-key: without
 * a key the page explains that one is needed; with it, the model list loads and a reply streams
 * on every protocol, each call carrying Authorization: Bearer. The key lives in sessionStorage,
 * never in localStorage, so a new tab starts without it.
 */
import assert from "node:assert/strict";
import path from "node:path";
import { after, before, describe, test } from "node:test";
import {
  launchBrowser,
  openChat,
  outputDir,
  send,
  setProtocol,
  setSettings,
  waitForReply,
} from "./chat-page.mjs";
import { startGateway } from "./gateway-process.mjs";

const apiKey = "browser-test-key-4242";

describe("API key in the settings", () => {
  let gateway;
  let browser;
  before(async () => {
    gateway = await startGateway(["--api-key", `ui:${apiKey}`]);
    browser = await launchBrowser();
  });
  after(async () => {
    await browser?.close();
    await gateway?.stop();
  });

  test("without a key the page says one is needed; with it every protocol streams a reply", async () => {
    const page = await openChat(browser, gateway.url);
    const banner = page.locator("#banner");
    assert.equal(await banner.isVisible(), true, "the model list failed");
    assert.match(await banner.textContent(), /API key/);
    await page.screenshot({ path: path.join(outputDir, "api-key-needed.png") });

    const sent = [];
    page.on("request", (request) => {
      if (request.url().includes("/inference.v1.InferenceService/")) {
        sent.push(request.headers().authorization);
      }
    });
    await page.click("#open-settings");
    await page.fill("#api-key", apiKey);
    await page.dispatchEvent("#api-key", "change");
    assert.equal(await page.getAttribute("#api-key", "type"), "password");
    await page.screenshot({ path: path.join(outputDir, "api-key-settings.png") });
    await page.click("#settings .button-primary");
    await page.waitForFunction(() => !document.querySelector("#model")?.disabled);
    assert.ok((await page.locator("#model option").count()) > 0, "ListModels filled the picker");

    await setSettings(page, { "max-tokens": "12", temperature: "0" });
    for (const protocol of ["connect-json", "connect-binary", "grpc-web"]) {
      await setProtocol(page, protocol);
      await send(page, `Hello over ${protocol}`);
      const reply = await waitForReply(page);
      assert.equal(reply.status, "done", `${protocol}: ${reply.error}`);
      assert.ok(reply.text.length > 0);
    }
    await page.screenshot({ path: path.join(outputDir, "api-key-chat.png") });
    assert.ok(sent.length >= 4);
    assert.ok(
      sent.every((header) => header === `Bearer ${apiKey}`),
      JSON.stringify(sent),
    );

    const stored = await page.evaluate(() => ({
      session: sessionStorage.getItem("parley.apiKey"),
      local: JSON.stringify({ ...localStorage }),
    }));
    assert.equal(stored.session, apiKey);
    assert.ok(!stored.local.includes(apiKey), "the key is not in localStorage");
    assert.ok(
      (await gateway.metric("parley_api_key_requests_total", { key: "ui" })) >= 4,
      "the gateway counted the calls for the key's name",
    );
    // A new tab (a new context here) has no key again.
    const fresh = await openChat(browser, gateway.url);
    assert.equal(await fresh.evaluate(() => sessionStorage.getItem("parley.apiKey")), null);
    assert.deepEqual(page.errors, []);
  });
});
