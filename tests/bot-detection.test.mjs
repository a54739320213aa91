// `bot-detection` (docs/plugins.md#bot-detection): Kong's plugin. A `User-Agent` matching `allow` passes; one
// matching `deny` or Kong's built-in list is refused with 403 `forbidden`; no `User-Agent`: passes. Checked on
// both request paths (CONFIG_RELOAD_SECONDS 0: asynchronous; 600 after one request: synchronous), then the
// validation errors through the gateway (config_rejected).

import { describe, test, before, after } from "node:test";
import assert from "node:assert/strict";
import { startGateway, startOrigin, request, problemOf, sleep } from "./support/harness.mjs";

const FIREFOX = "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0";
const GOOGLEBOT = "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)";
const BINGBOT = "Mozilla/5.0 (compatible; bingbot/2.0)";
const APP = "https://app.example.com";

function config(origin) {
  const route = (name) => ({ name, service: "origin", paths: [`/${name}`] });
  return {
    format_version: 1,
    services: [{ name: "origin", url: origin.url }],
    routes: ["plain", "default", "site", "keyed", "cors", "empty", "ci"].map(route),
    plugins: [
      { name: "bot-detection", route: "default" },
      // The docs' example.
      { name: "bot-detection", route: "site", config: { allow: ["Googlebot/", "^acme-bot/\\d+"], deny: ["^curl/"] } },
      { name: "key-auth", route: "keyed" },
      { name: "bot-detection", route: "keyed" },
      { name: "cors", route: "cors", config: { origins: [APP], methods: ["GET"] } },
      { name: "bot-detection", route: "cors" },
      { name: "bot-detection", route: "empty", config: { deny: ["^$"] } },
      { name: "bot-detection", route: "ci", config: { deny: ["(?i)firefox", "Chrome"] } },
    ],
  };
}

function assertForbidden(res, what) {
  assert.equal(res.status, 403, what);
  const p = problemOf(res);
  assert.equal(p.code, "forbidden", what);
  assert.equal(p.title, "Forbidden", what);
  assert.equal(p.detail, "Forbidden", what);
  assert.equal(p.status, 403, what);
  assert.equal(p.request_id, res.headers["x-request-id"], what);
}

for (const reload of ["0", "600"]) describe(`bot-detection (CONFIG_RELOAD_SECONDS ${reload})`, { timeout: 120_000 }, () => {
  let gw, origin;
  const get = (path, ua, extra = {}) =>
    request(gw.at(path), { headers: ua === undefined ? extra : { "user-agent": ua, ...extra } });
  before(async () => {
    origin = await startOrigin();
    gw = await startGateway({ bindings: { CONFIG_RELOAD_SECONDS: reload }, config: config(origin) });
    // Loads the version: with 600, every later request is served on the synchronous path.
    assert.equal((await request(gw.at("/plain/warm"))).status, 200);
  });
  after(async () => {
    await gw?.dispose();
    await origin?.close();
  });

  test("the built-in list refuses known bots with 403 forbidden; they never reach the origin", async () => {
    const before = origin.requests.length;
    for (const ua of [
      GOOGLEBOT,
      BINGBOT,
      "facebookexternalhit/1.1 (+http://www.facebook.com/externalhit_uatext.php)",
      "Twitterbot/1.0",
      "Mozilla/5.0 (compatible; Baiduspider/2.0; +http://www.baidu.com/search/spider.html)",
      "Mozilla/5.0 (compatible; YandexBot/3.0; +http://yandex.com/bots)",
      "Scrapy/2.11.0 (+https://scrapy.org)",
      "Apache-HttpClient/4.5.14 (Java/17.0.2)",
      "Python-urllib/3.12",
      "Mozilla/5.0 (compatible; robot)",
      "MyCrawler/1.0",
      "  Googlebot/2.1  ",
    ]) {
      assertForbidden(await get("/default/x", ua), ua);
    }
    assert.equal(origin.requests.length, before);
  });

  test("browsers and common clients not in the list pass; so does a request without User-Agent", async () => {
    for (const ua of [
      FIREFOX,
      "curl/8.5.0",
      "python-requests/2.32.3",
      "Go-http-client/1.1",
      "okhttp/4.12.0",
      "node",
      "Mozilla/5.0 (Linux; Android 10; CUBOT P30) AppleWebKit/537.36",
      undefined,
    ]) {
      const before = origin.requests.length;
      const res = await get("/default/x", ua);
      assert.equal(res.status, 200, String(ua));
      assert.equal(origin.requests.length, before + 1);
      assert.equal(origin.requests.at(-1).headers["user-agent"], ua?.trim());
    }
  });

  test("the same User-Agent gets the same answer again (remembered decisions)", async () => {
    for (let i = 0; i < 3; i++) {
      assertForbidden(await get("/default/again", GOOGLEBOT), `bot ${i}`);
      assert.equal((await get("/default/again", FIREFOX)).status, 200, `browser ${i}`);
    }
  });

  test("the docs' example: allow beats deny and the built-in list", async () => {
    assertForbidden(await get("/site/x", BINGBOT), "bingbot");
    assertForbidden(await get("/site/x", "curl/8.5.0"), "curl");
    assert.equal((await get("/site/x", "Mozilla/5.0 (compatible; Googlebot/2.1)")).status, 200);
    assert.equal((await get("/site/x", "acme-bot/2")).status, 200);
    assert.equal((await get("/site/x", FIREFOX)).status, 200);
    assertForbidden(await get("/default/x", "acme-bot/2"), "acme-bot is a bot by the built-in list");
    assert.equal((await get("/site/x")).status, 200, "no User-Agent");
  });

  test("expressions match anywhere and are case-sensitive unless (?i)", async () => {
    assertForbidden(await get("/ci/x", FIREFOX), "(?i)firefox");
    assertForbidden(await get("/ci/x", "Mozilla/5.0 Chrome/131.0 Safari/537.36"), "Chrome");
    assert.equal((await get("/ci/x", "Mozilla/5.0 chrome/131.0")).status, 200, "case-sensitive");
  });

  test("an empty User-Agent (or only whitespace) passes like a missing one, even with deny ^$", async () => {
    for (const ua of ["", "   ", undefined]) {
      assert.equal((await get("/empty/x", ua)).status, 200, JSON.stringify(ua));
      assert.equal((await get("/default/x", ua)).status, 200, JSON.stringify(ua));
    }
    assert.equal((await get("/empty/x", FIREFOX)).status, 200);
  });

  test("HEAD and POST are refused alike; HEAD without a body", async () => {
    const head = await request(gw.at("/default/x"), { method: "HEAD", headers: { "user-agent": GOOGLEBOT } });
    assert.equal(head.status, 403);
    assert.equal(head.body.length, 0);
    const post = await request(gw.at("/default/x"), {
      method: "POST",
      headers: { "user-agent": GOOGLEBOT, "content-type": "application/json" },
      body: "{}",
    });
    assertForbidden(post, "POST");
    assert.equal((await request(gw.at("/default/x"), { method: "HEAD", headers: { "user-agent": FIREFOX } })).status, 200);
  });

  test("it runs before authentication: a bot without credentials gets 403, a browser 401", async () => {
    assertForbidden(await get("/keyed/x", GOOGLEBOT), "bot");
    assert.equal((await get("/keyed/x", FIREFOX)).status, 401);
  });

  test("several User-Agent headers are examined joined with ', '", async () => {
    const res = await request(gw.at("/default/x"), { headers: { "user-agent": ["Firefox/128.0", "Googlebot/2.1"] } });
    assertForbidden(res, "joined");
    const ok = await request(gw.at("/site/x"), { headers: { "user-agent": ["Firefox/128.0", "curl/8.5.0"] } });
    assert.equal(ok.status, 200, "^curl/ does not match 'Firefox/128.0, curl/8.5.0'");
  });

  test("a CORS preflight is answered by cors before bot-detection; the bot's actual request is refused", async () => {
    const pre = await request(gw.at("/cors/x"), {
      method: "OPTIONS",
      headers: { "user-agent": GOOGLEBOT, origin: APP, "access-control-request-method": "GET" },
    });
    assert.equal(pre.status, 200);
    assert.equal(pre.headers["access-control-allow-origin"], APP);
    const res = await get("/cors/x", GOOGLEBOT, { origin: APP });
    assertForbidden(res, "actual request");
    assert.equal(res.headers["access-control-allow-origin"], APP, "the error carries the CORS headers");
  });

  test("a route without the plugin is not affected", async () => {
    assert.equal((await get("/plain/x", GOOGLEBOT)).status, 200);
  });
});

describe("bot-detection validation errors (through the gateway)", { timeout: 120_000 }, () => {
  let gw, origin;
  before(async () => {
    origin = await startOrigin();
    gw = await startGateway({ config: config(origin) });
    assert.equal((await request(gw.at("/plain/warm"))).status, 200);
  });
  after(async () => {
    await gw?.dispose();
    await origin?.close();
  });

  test("invalid regexes, old option names, wrong types and a consumer scope are refused with their paths", async () => {
    const bad = config(origin);
    bad.plugins = [
      { name: "bot-detection", route: "default", config: { allow: ["ok", "(sk-SECRET-unclosed"], deny: ["[z-a]"] } },
      { name: "bot-detection", route: "site", config: { whitelist: ["Googlebot"] } },
      { name: "bot-detection", route: "ci", config: { deny: "curl" } },
      { name: "bot-detection", consumer: "alice" },
    ];
    const version = await gw.putConfig(bad);
    // The previous version keeps serving.
    assertForbidden(await request(gw.at("/default/x"), { headers: { "user-agent": GOOGLEBOT } }), "old version");
    let line;
    for (let i = 0; i < 100 && !line; i++) {
      line = gw.logs.find((l) => l.json?.event === "config_rejected" && l.json?.version === version);
      if (!line) await sleep(50);
    }
    assert.ok(line, "a config_rejected line");
    const error = line.json.error;
    for (const path of [
      "plugins[0].config.allow[1]: invalid regular expression",
      "plugins[0].config.deny[0]: invalid regular expression",
      "plugins[1].config.whitelist: unknown field `whitelist`",
      "plugins[2].config.deny",
      "plugins[3].consumer: bot-detection cannot be scoped to a consumer",
    ]) {
      assert.ok(error.includes(path), `${path} in ${error}`);
    }
    assert.ok(!error.includes("SECRET"), error);
  });
});
