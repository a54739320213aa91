// The docs as a contract, third audit of docs/rate-limiting.md: what the first two audits
// (tests/docs-contract-ratelimit.test.mjs, tests/docs-contract-ratelimit2.test.mjs) and tests/ratelimit*.test.mjs
// leave out, read the way a Kong user (kong/plugins/rate-limiting: handler.lua, schema.lua) and an HTTP client
// read it: `limit_by: header` without the header (Kong falls back to the client IP), `limit_by: path` with a
// `path` and a request for another path (not limited here; Kong counts it by IP), Retry-After on every refusal
// (whole seconds, never 0, also in a window's last milliseconds and with permit leases), which policy's
// `error_code` / `error_message` a refusal by several policies carries, and a token budget's Retry-After after
// an answer took the window over its limit (more than 60 s, exactly as the counter computes it).
//
// Every statement runs on both request paths: CONFIG_RELOAD_SECONDS "0" (asynchronous) and "600" after a
// warm-up request (synchronous; the whole configuration is given to startGateway, none pushed later).
import { describe, test, before, after } from "node:test";
import assert from "node:assert/strict";
import crypto from "node:crypto";
import { startGateway, startOrigin, request, sleep, problemOf, putAndWait, rejected } from "./support/harness.mjs";
import { startFakeProviders } from "./support/fake-providers.mjs";
import { DO_OPTIONS } from "./ratelimit-helpers.mjs";

const sha256hex = (s) => crypto.createHash("sha256").update(s).digest("hex");
const newKey = () => "eg_" + crypto.randomBytes(24).toString("base64url");
const OAI_KEY = "sk-oai-SECRET-" + crypto.randomBytes(8).toString("hex");

let ipSeq = 0;
/** A fresh client address for each use (counters are per address with limit_by ip). */
const anIp = () => `198.18.${Math.floor(ipSeq / 250) + 30}.${(ipSeq++ % 250) + 1}`;

/** Wait until at least `marginMs` are left in the current aligned window of `windowMs`. */
async function awayFromWindowEnd(windowMs, marginMs) {
  const left = windowMs - (Date.now() % windowMs);
  if (left < marginMs) await sleep(left + 50);
}

const WHOLE_SECONDS = /^[1-9]\d*$/;

function assertRefused(res, status = 429) {
  assert.equal(res.status, status, res.text);
  assert.match(res.headers["content-type"] ?? "", /^application\/problem\+json/);
  const p = problemOf(res);
  assert.equal(p.status, status);
  assert.equal(p.code, "rate_limited");
  assert.match(res.headers["retry-after"] ?? "", WHOLE_SECONDS, "Retry-After: whole seconds, at least 1");
  return p;
}

const rl = (route, config) => ({ name: "rate-limiting", route, config });

// 47 words: the fake OpenAI-format provider counts one token per word of the prompt (47) and answers
// `Hello from openai (gpt-fast): you said "<the prompt>"` (6 + 47 words): 100 tokens in all.
const PROMPT_100 = Array.from({ length: 47 }, (_, i) => `w${i}`).join(" ");

for (const reload of ["0", "600"]) {
  describe(`docs/rate-limiting.md, third audit (CONFIG_RELOAD_SECONDS ${reload})`, { timeout: 300_000 }, () => {
    let gw, origin, fake;
    const keys = { tb: newKey(), sw: newKey() };
    const config = () => ({
      format_version: 1,
      services: [
        { name: "svc", url: origin.url },
        { name: "ai", url: "http://127.0.0.1:9/" },
        { name: "svc2", url: origin.url },
      ],
      routes: [
        { name: "hdr", service: "svc", paths: ["/hdr"] },
        { name: "pth", service: "svc", paths: ["/pth"] },
        { name: "sec", service: "svc", paths: ["/sec"] },
        { name: "sec-tb", service: "svc", paths: ["/sec-tb"] },
        { name: "sec-hide", service: "svc", paths: ["/sec-hide"] },
        { name: "two", service: "svc", paths: ["/two"] },
        { name: "mon", service: "svc", paths: ["/mon"] },
        { name: "yr", service: "svc", paths: ["/yr"] },
        { name: "six", service: "svc", paths: ["/six"] },
        { name: "long", service: "svc", paths: ["/long"] },
        { name: "per-path", service: "svc", paths: ["/per-path"] },
        { name: "gated", service: "svc", paths: ["/gated"] },
        { name: "redir", service: "svc", paths: ["/redir"] },
        { name: "both", service: "svc2", paths: ["/both"] },
        { name: "llm-tb", service: "ai", paths: ["/llm-tb"] },
        { name: "llm-sw", service: "ai", paths: ["/llm-sw"] },
      ],
      plugins: [
        rl("hdr", { hour: 2, limit_by: "header", header_name: "X-Tenant" }),
        rl("pth", { hour: 1, limit_by: "path", path: "/pth/login" }),
        rl("sec", { second: 1, limit_by: "ip" }),
        rl("sec-tb", { second: 1, limit_by: "ip", algorithm: "token_bucket" }),
        rl("sec-hide", { second: 1, limit_by: "ip", hide_client_headers: true }),
        // Two policies that both refuse the second request: a second window and an hour window.
        { name: "rate-limiting", id: "per-second", route: "two", config: { second: 1, limit_by: "ip", error_code: 420, error_message: "per second" } },
        { name: "rate-limiting", id: "per-hour", route: "two", config: { hour: 1, limit_by: "ip", error_code: 418, error_message: "per hour" } },
        rl("mon", { month: 1, limit_by: "ip" }),
        rl("yr", { year: 1, limit_by: "ip" }),
        rl("six", { second: 100, minute: 200, hour: 300, day: 400, month: 500, year: 600, limit_by: "ip" }),
        rl("long", { hour: 1, limit_by: "header", header_name: "x-tenant" }),
        rl("per-path", { hour: 3, limit_by: "path" }),
        { name: "key-auth", route: "gated" },
        rl("gated", { hour: 1, limit_by: "ip" }),
        rl("redir", { hour: 2, limit_by: "ip" }),
        { name: "rate-limiting", service: "svc2", config: { hour: 3, limit_by: "ip" } },
        rl("both", { hour: 5, limit_by: "ip" }),
        { name: "redirect", route: "redir", config: { location: "/elsewhere", status_code: 302 } },
        { name: "key-auth", service: "ai" },
        {
          name: "ai-proxy",
          route: "llm-tb",
          config: {
            providers: { oai: { kind: "openai", base_url: fake.baseUrls.openai, key_secret: "OAI_KEY" } },
            models: { fast: "oai/gpt-fast" },
            default_model: "fast",
          },
        },
        {
          name: "ai-proxy",
          route: "llm-sw",
          config: {
            providers: { oai: { kind: "openai", base_url: fake.baseUrls.openai, key_secret: "OAI_KEY" } },
            models: { fast: "oai/gpt-fast" },
            default_model: "fast",
          },
        },
        rl("llm-tb", { minute: 25, count: "tokens", limit_by: "consumer", algorithm: "token_bucket" }),
        rl("llm-sw", { minute: 25, count: "tokens", limit_by: "consumer" }),
      ],
    });

    before(async () => {
      origin = await startOrigin();
      fake = await startFakeProviders({ keys: { openai: OAI_KEY } });
      gw = await startGateway({
        miniflare: DO_OPTIONS,
        bindings: { CONFIG_RELOAD_SECONDS: reload, OAI_KEY },
        config: config(),
      });
      const put = (k, v) => gw.kv.put(k, JSON.stringify(v));
      for (const who of Object.keys(keys)) {
        const id = `c-${who}-${reload}`;
        await put(`consumers/${id}`, { id, username: `${who}-${reload}`, groups: [] });
        await put(`consumer-names/${who}-${reload}`, { id });
        await put(`credentials/key-auth/${sha256hex(keys[who])}`, { id: `cred-${who}-${reload}`, consumer_id: id });
      }
      // Loads the version: with 600, every later request is served on the synchronous path.
      assert.equal((await request(gw.at("/pth/warm"))).status, 200);
    });
    after(async () => {
      await gw?.dispose();
      await origin?.close();
      await fake?.close();
    });

    const get = (path, ip, headers = {}) => request(gw.at(path), { headers: { "cf-connecting-ip": ip, ...headers } });

    // -------------------------------------------------------------------------------------------------
    // What is counted (limit_by), against Kong's get_identifier

    test("limit_by header: a request without the header is counted by its client IP (as Kong); the header name matches in any case", async () => {
      const ip = anIp();
      const tenant = `t-${reload}-${crypto.randomBytes(4).toString("hex")}`;
      // Without the header: the address's own counter (hour 2).
      const bare = [];
      for (let i = 0; i < 3; i++) bare.push((await get("/hdr", ip)).status);
      assert.deepEqual(bare, [200, 200, 429], "counted by the client IP");
      assert.equal((await get("/hdr", anIp())).status, 200, "another address without the header: another counter");
      // With the header (name in another case than header_name): the tenant's counter, whatever the address,
      // not the address's (which is spent).
      const named = [];
      for (const h of ["X-TENANT", "x-tenant", "X-Tenant"]) {
        const r = await get("/hdr", ip, { [h]: tenant });
        named.push([r.status, r.headers["ratelimit-remaining"]]);
      }
      assert.deepEqual(named, [[200, "1"], [200, "0"], [429, "0"]]);
    });

    test("limit_by path with a path: another path is not limited and gets no rate-limit headers (Kong would count it by IP)", async () => {
      const ip = anIp();
      for (let i = 0; i < 3; i++) {
        const r = await get("/pth/other", ip);
        assert.equal(r.status, 200, r.text);
        assert.equal(r.headers["ratelimit-limit"], undefined, "no policy applied: no headers");
        assert.equal(r.headers["x-ratelimit-limit-hour"], undefined);
      }
      const first = await get("/pth/login", ip);
      assert.equal(first.status, 200);
      assert.equal(first.headers["ratelimit-remaining"], "0", "the other path's requests did not count");
      assertRefused(await get("/pth/login", anIp()), 429);
    });

    test("limit_by header: two long values that differ only in their last character have their own counters", async () => {
      const prefix = `t-${reload}-` + "x".repeat(400);
      for (const tail of ["a", "b"]) {
        assert.equal((await get("/long", anIp(), { "x-tenant": prefix + tail })).status, 200, `value …${tail}`);
      }
      assertRefused(await get("/long", anIp(), { "x-tenant": prefix + "a" }));
      assertRefused(await get("/long", anIp(), { "x-tenant": prefix + "b" }));
    });

    test("limit_by path without path: one counter per path in normal form, shared by all callers, without the query string", async () => {
      const seen = [];
      for (const p of ["/per-path/a?x=1", "/per-path/%61?y=2", "/per-path//a"]) {
        const r = await get(p, anIp());
        seen.push([r.status, r.headers["ratelimit-remaining"]]);
      }
      assert.deepEqual(seen, [[200, "2"], [200, "1"], [200, "0"]], "three spellings of /per-path/a, three callers, one counter");
      assertRefused(await get("/per-path/a", anIp()));
      for (const other of ["/per-path/b", "/per-path/A", "/per-path/a/"]) {
        const r = await get(other, anIp());
        assert.equal(r.status, 200, other);
        assert.equal(r.headers["ratelimit-remaining"], "2", `${other} is another path`);
      }
    });

    test("what reaches the policy is counted: a 401 of key-auth (before it) is not, a redirect (after it) is", async () => {
      const ip = anIp();
      for (let i = 0; i < 3; i++) {
        const r = await get("/gated", ip);
        assert.equal(r.status, 401, r.text);
        assert.equal(r.headers["ratelimit-limit"], undefined, "refused before the policy: no rate-limit headers");
      }
      const ok = await get("/gated", ip, { authorization: `Bearer ${keys.tb}` });
      assert.equal(ok.status, 200, `the 401s were not counted: ${ok.text}`);
      assert.equal(ok.headers["ratelimit-remaining"], "0");
      assertRefused(await get("/gated", ip, { authorization: `Bearer ${keys.tb}` }));

      const other = anIp();
      const redirects = [];
      for (let i = 0; i < 2; i++) {
        const r = await get("/redir", other);
        redirects.push([r.status, r.headers.location, r.headers["ratelimit-remaining"]]);
      }
      assert.deepEqual(redirects, [
        [302, "/elsewhere", "1"],
        [302, "/elsewhere", "0"],
      ]);
      assertRefused(await get("/redir", other));
    });

    // -------------------------------------------------------------------------------------------------
    // Windows: names, and month / year aligned on the epoch

    test("X-RateLimit-*-<Window> for each of the six windows (Kong's names); RateLimit-* show the one with least left", async () => {
      const r = await get("/six", anIp());
      assert.equal(r.status, 200);
      const limits = { second: 100, minute: 200, hour: 300, day: 400, month: 500, year: 600 };
      for (const [w, limit] of Object.entries(limits)) {
        assert.equal(r.headers[`x-ratelimit-limit-${w}`], String(limit), w);
        assert.equal(r.headers[`x-ratelimit-remaining-${w}`], String(limit - 1), w);
      }
      assert.equal(r.headers["ratelimit-limit"], "100");
      assert.equal(r.headers["ratelimit-remaining"], "99");
      assert.equal(r.headers["ratelimit-reset"], "1", "the end of the current second");
    });

    for (const [path, window, days] of [
      ["/mon", "month", 30],
      ["/yr", "year", 365],
    ]) {
      test(`${window} is ${days} days aligned on the epoch: RateLimit-Reset is the end of the period, Retry-After the end of the next`, async () => {
        const ms = days * 86_400_000;
        const ip = anIp();
        const before = Date.now();
        const first = await get(path, ip);
        const after = Date.now();
        assert.equal(first.status, 200);
        assert.equal(first.headers["ratelimit-remaining"], "0");
        const reset = Number(first.headers["ratelimit-reset"]);
        const hi = Math.ceil((ms - (before % ms)) / 1000);
        const lo = Math.ceil((ms - (after % ms)) / 1000);
        assert.ok(reset >= lo - 1 && reset <= hi, `RateLimit-Reset ${reset}, end of the ${days}-day period in ${lo}..${hi} s`);
        const r = await get(path, ip);
        assertRefused(r);
        assert.equal(r.headers[`x-ratelimit-remaining-${window}`], "0");
        // The period's one request weighs on the next period until its end: admitted again a whole period later.
        const retry = Number(r.headers["retry-after"]);
        const resetNow = Number(r.headers["ratelimit-reset"]);
        assert.ok(retry - resetNow >= days * 86_400 && retry - resetNow <= days * 86_400 + 1, `Retry-After ${retry}, RateLimit-Reset ${resetNow}`);
      });
    }

    // -------------------------------------------------------------------------------------------------
    // Retry-After on every refusal

    for (const [path, what] of [
      ["/sec", "sliding window"],
      ["/sec-tb", "token bucket"],
      ["/sec-hide", "hide_client_headers"],
    ]) {
      test(`Retry-After on every refusal of a second window is whole seconds, at least 1, also at the window's end (${what})`, async () => {
        const ip = anIp();
        const refusals = [];
        let admitted = 0;
        const until = Date.now() + 2_600;
        while (Date.now() < until) {
          const r = await get(path, ip);
          if (r.status === 200) {
            admitted++;
            continue;
          }
          assertRefused(r);
          refusals.push(Number(r.headers["retry-after"]));
          if (path === "/sec-hide") {
            assert.equal(r.headers["ratelimit-remaining"], undefined, "hidden");
            assert.equal(r.headers["x-ratelimit-remaining-second"], undefined, "hidden");
          } else {
            assert.equal(r.headers["ratelimit-remaining"], "0");
            assert.equal(r.headers["x-ratelimit-remaining-second"], "0");
            assert.match(r.headers["ratelimit-reset"], WHOLE_SECONDS, "RateLimit-Reset at least 1 while refused");
          }
        }
        assert.ok(admitted >= 1, "at least one request admitted");
        assert.ok(refusals.length >= 1, `refusals: ${refusals.length}`);
        // second: 1: the next admission is at most two seconds away (the sliding window's previous second
        // weighs until its end), one for the token bucket (refill of one token).
        const most = path === "/sec-tb" ? 1 : 2;
        assert.ok(refusals.every((s) => s >= 1 && s <= most), `Retry-After values ${refusals}`);
      });
    }

    // -------------------------------------------------------------------------------------------------
    // Several policies refusing one request

    test("several policies refuse: status, detail and Retry-After are those of the policy whose Retry-After is latest", async () => {
      await awayFromWindowEnd(1_000, 600);
      const ip = anIp();
      const first = await get("/two", ip);
      assert.equal(first.status, 200);
      // Both windows are spent: the second admits again within 2 s, the hour in far more than that.
      const r = await get("/two", ip);
      const p = assertRefused(r, 418);
      assert.equal(p.detail, "per hour");
      assert.ok(Number(r.headers["retry-after"]) > 60, `Retry-After ${r.headers["retry-after"]}: the hour's`);
    });

    test("a service instance and a route instance both apply on the route (Kong would run the route's only)", async () => {
      const ip = anIp();
      const seen = [];
      for (let i = 0; i < 3; i++) {
        const r = await get("/both", ip);
        seen.push([r.status, r.headers["ratelimit-limit"], r.headers["ratelimit-remaining"]]);
      }
      // RateLimit-* show the policy with the least left: the service's 3.
      assert.deepEqual(seen, [
        [200, "3", "2"],
        [200, "3", "1"],
        [200, "3", "0"],
      ]);
      assertRefused(await get("/both", ip), 429);
    });

    // -------------------------------------------------------------------------------------------------
    // A token budget's Retry-After after an answer took it over its limit

    const chat = (route, who, content) =>
      request(gw.at(`/${route}/v1/chat/completions`), {
        method: "POST",
        headers: { authorization: `Bearer ${keys[who]}`, "content-type": "application/json" },
        body: JSON.stringify({ model: "fast", messages: [{ role: "user", content }] }),
      });

    test("token budget, token bucket: after a 100-token answer against minute 25, Retry-After is when one token is back (183 s), not capped at 60", async () => {
      const t0 = Date.now();
      const first = await chat("llm-tb", "tb", PROMPT_100);
      assert.equal(first.status, 200, first.text);
      assert.equal(JSON.parse(first.text).usage.total_tokens, 100);
      const r = await chat("llm-tb", "tb", "hi");
      const elapsed = Math.ceil((Date.now() - t0) / 1000);
      assert.equal(r.status, 429, r.text);
      assert.equal(JSON.parse(r.text).error.code, "rate_limited");
      // 25 − 100 = −75 tokens; one token is back after 76 × 60 / 25 = 182.4 s.
      const retry = Number(r.headers["retry-after"]);
      assert.match(r.headers["retry-after"], WHOLE_SECONDS);
      assert.ok(retry <= 183 && retry >= 183 - elapsed - 1, `Retry-After ${retry} (${elapsed} s after the answer)`);
      assert.equal(r.headers["retry-after-ms"], undefined, "whole seconds only");
      assert.equal(r.headers["x-ratelimit-remaining-tokens"], "0");
      assert.equal(r.headers["ratelimit-remaining"], "0");
      // Full again after 100 × 60 / 25 = 240 s: RateLimit-Reset is 57.6 s after Retry-After.
      const reset = Number(r.headers["ratelimit-reset"]);
      assert.ok(reset - retry >= 57 && reset - retry <= 59, `RateLimit-Reset ${reset}, Retry-After ${retry}`);
      assert.match(r.headers["x-ratelimit-reset-tokens"], /^(3m[0-5]\ds|4m0s)$/);
    });

    test("token budget, sliding window: after a 100-token answer against minute 25, Retry-After reaches 45.6 s into the next minute", async () => {
      await awayFromWindowEnd(60_000, 25_000);
      const first = await chat("llm-sw", "sw", PROMPT_100);
      assert.equal(first.status, 200, first.text);
      assert.equal(JSON.parse(first.text).usage.total_tokens, 100);
      const sent = Date.now();
      const r = await chat("llm-sw", "sw", "hi");
      const got = Date.now();
      assert.equal(r.status, 429, r.text);
      // In the next minute the previous one weighs ceil(100 × (1 − e)); one token fits once that is at most
      // 24, e ≥ 0.76: 45.6 s after the minute's end.
      const nextMinute = sent - (sent % 60_000) + 60_000;
      const lo = Math.ceil((nextMinute + 45_600 - got) / 1000);
      const hi = Math.ceil((nextMinute + 45_600 - sent) / 1000);
      const retry = Number(r.headers["retry-after"]);
      assert.ok(retry >= lo && retry <= hi, `Retry-After ${retry}, expected ${lo}..${hi}`);
      assert.ok(retry > 60, "more than a minute");
      assert.equal(r.headers["retry-after-ms"], undefined, "whole seconds only");
      // RateLimit-Reset is the end of the current minute (the window's own reset), before Retry-After.
      const reset = Number(r.headers["ratelimit-reset"]);
      assert.ok(retry - reset >= 45 && retry - reset <= 47, `RateLimit-Reset ${reset}, Retry-After ${retry}`);
    });
  });
}

// Option validation is the same on both request paths (the configuration is checked when it is loaded): one
// gateway, CONFIG_RELOAD_SECONDS 0, configurations pushed one after another.
describe("docs/rate-limiting.md, third audit: the path option", { timeout: 120_000 }, () => {
  let gw, origin;
  before(async () => {
    origin = await startOrigin();
    gw = await startGateway({ miniflare: DO_OPTIONS, bindings: { CONFIG_RELOAD_SECONDS: "0" } });
  });
  after(async () => {
    await gw?.dispose();
    await origin?.close();
  });
  const doc = (path) => ({
    format_version: 1,
    services: [{ name: "svc", url: origin.url }],
    routes: [{ name: "p", service: "svc", paths: ["/p"] }],
    plugins: [{ name: "rate-limiting", route: "p", config: { hour: 1, limit_by: "path", path } }],
  });

  test("a path no request can have (query, fragment, space, non-ASCII) is rejected at its JSON path, as Kong's; percent-encoded it counts", async () => {
    await putAndWait(gw, doc("/p/caf%C3%A9"));
    for (const bad of ["/p/login?next=1", "/p/a#b", "/p/a b", "/p/café"]) {
      const error = JSON.stringify(await rejected(gw, doc(bad)));
      assert.match(error, /plugins\[0\]\.config\.path/, `${bad}: ${error}`);
    }
    // The last good version still serves: /p/café arrives percent-encoded and is counted.
    const ip = "198.18.99.1";
    const first = await request(gw.at("/p/caf%C3%A9"), { headers: { "cf-connecting-ip": ip } });
    assert.equal(first.status, 200);
    assert.equal(first.headers["ratelimit-remaining"], "0");
    assertRefused(await request(gw.at("/p/café"), { headers: { "cf-connecting-ip": ip } }));
  });
});
