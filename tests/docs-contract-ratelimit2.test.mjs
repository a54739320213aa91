// The docs as a contract, second audit of docs/rate-limiting.md: the statements the first audit
// (tests/docs-contract-ratelimit.test.mjs) and tests/ratelimit*.test.mjs leave out, read the way a Kong
// user and the IETF RateLimit-headers draft read them: the example refusal byte for byte, HEAD / OPTIONS /
// CORS preflights, several windows in one policy (which one the headers show, ties included), permit
// leases against `lease: false`, a configuration change while the isolate holds a lease, the token
// bucket's Retry-After with `cost`, option validation (`count: tokens`, `location_hint`, `burst`),
// consumer-scoped instances and a counter that cannot be reached.
//
// Every statement runs on both request paths: CONFIG_RELOAD_SECONDS "0" (every request checks the
// configuration pointer first and goes the asynchronous way) and "1" (most requests take the synchronous
// one, src/lib.rs `fast`, where the rate limit decides from a lease in hand without a future).
import { describe, test, before, after } from "node:test";
import assert from "node:assert/strict";
import crypto from "node:crypto";
import { startGateway, startOrigin, request, sleep, problemOf, putAndWait, rejected as rejectedError } from "./support/harness.mjs";
import { DO_OPTIONS } from "./ratelimit-helpers.mjs";

/** The error of a document the gateway refuses, as JSON text. */
const rejected = async (gw, doc) => JSON.stringify(await rejectedError(gw, doc));

let ipSeq = 0;
/** A fresh client address for each use (counters are per address with limit_by ip). */
const anIp = () => `198.19.${Math.floor(ipSeq / 250)}.${(ipSeq++ % 250) + 1}`;

/** Wait until at least `marginMs` are left in the current aligned window of `windowMs`. */
async function awayFromWindowEnd(windowMs, marginMs) {
  const left = windowMs - (Date.now() % windowMs);
  if (left < marginMs) await sleep(left + 50);
}

function assertRefused(res, status = 429) {
  assert.equal(res.status, status, res.text);
  assert.match(res.headers["content-type"] ?? "", /^application\/problem\+json/);
  const p = problemOf(res);
  assert.equal(p.status, status);
  assert.equal(p.code, "rate_limited");
  assert.equal(p.request_id, res.headers["x-request-id"], "request_id is the X-Request-Id");
  assert.match(res.headers["retry-after"] ?? "", /^[1-9]\d*$/, "Retry-After: whole seconds, at least 1");
  return p;
}

/** `n` requests, at most `concurrency` at a time, in order of index. */
async function parallel(n, send, concurrency = 8) {
  const out = new Array(n);
  let next = 0;
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (next < n) {
        const i = next++;
        out[i] = await send(i);
      }
    }),
  );
  return out;
}

const rl = (extra) => ({ name: "rate-limiting", ...extra });
const sha256hex = (s) => crypto.createHash("sha256").update(s).digest("hex");

for (const reload of ["0", "1"]) {
  describe(`docs/rate-limiting.md, second audit (CONFIG_RELOAD_SECONDS ${reload})`, { timeout: 400_000 }, () => {
    let gw, origin;
    const keys = { alice: `eg_${crypto.randomBytes(24).toString("base64url")}`, bob: `eg_${crypto.randomBytes(24).toString("base64url")}` };
    before(async () => {
      origin = await startOrigin();
      gw = await startGateway({ miniflare: DO_OPTIONS, bindings: { CONFIG_RELOAD_SECONDS: reload } });
      const put = (k, v) => gw.kv.put(k, JSON.stringify(v));
      for (const who of ["alice", "bob"]) {
        await put(`consumers/c-${who}`, { id: `c-${who}`, username: who, groups: [] });
        await put(`consumer-names/${who}`, { id: `c-${who}` });
        await put(`credentials/key-auth/${sha256hex(keys[who])}`, { id: `cred-${who}`, consumer_id: `c-${who}` });
      }
    });
    after(async () => {
      await gw?.dispose();
      await origin?.close();
    });

    let serial = 0;
    /** A document with one service and one route per name (`/<name>`, any method), named afresh. */
    const doc = (plugins, routes) => {
      const tag = `r${reload}x${++serial}`;
      const named = (n) => `${n}-${tag}`;
      return {
        tag,
        path: (n) => `/${named(n)}`,
        doc: {
          format_version: 1,
          services: [{ name: "svc", url: origin.url }],
          routes: routes.map((n) => ({ name: named(n), service: "svc", paths: [`/${named(n)}`] })),
          plugins: plugins.map((p) => (p.route ? { ...p, route: named(p.route) } : p)),
        },
      };
    };
    const get = (path, ip, extra = {}) =>
      request(gw.at(path), { ...extra, headers: { "cf-connecting-ip": ip, ...(extra.headers ?? {}) } });

    // -------------------------------------------------------------------------------------------------
    // The example at the top of the page, and the refusal's shape

    test("the example: the 51st request of a minute gets the documented 429 (problem+json, headers, body)", async () => {
      const d = doc([rl({ route: "orders", config: { minute: 50, limit_by: "ip" } })], ["orders"]);
      await putAndWait(gw, d.doc);
      await awayFromWindowEnd(60_000, 25_000);
      const ip = anIp();
      const admitted = await parallel(50, () => get(d.path("orders"), ip));
      assert.deepEqual(admitted.map((r) => r.status), Array(50).fill(200));
      const sent = Date.now();
      const r = await get(d.path("orders"), ip, { headers: { "x-request-id": `rl2-example-${reload}` } });
      assert.equal(r.status, 429, r.text);
      assert.match(r.headers["content-type"], /^application\/problem\+json/);
      assert.equal(r.headers["ratelimit-limit"], "50");
      assert.equal(r.headers["ratelimit-remaining"], "0");
      assert.equal(r.headers["x-ratelimit-limit-minute"], "50");
      assert.equal(r.headers["x-ratelimit-remaining-minute"], "0");
      const reset = Number(r.headers["ratelimit-reset"]);
      const toEnd = Math.ceil((60_000 - (sent % 60_000)) / 1000);
      assert.ok(reset <= toEnd && reset >= toEnd - 5, `RateLimit-Reset ${reset}, end of the minute in ${toEnd} s`);
      // 50 counted: after the boundary ceil(50 × (1 − e)) + 1 ≤ 50 once e ≥ 1/50, 1.2 s into the next
      // minute: one or two seconds after RateLimit-Reset (as in the example, 51 and 52).
      const retry = Number(r.headers["retry-after"]);
      assert.ok(retry === reset + 1 || retry === reset + 2, `Retry-After ${retry}, RateLimit-Reset ${reset}`);
      const body = r.json();
      assert.deepEqual(
        { ...body, request_id: undefined },
        {
          type: "https://edgegate.dev/errors/rate_limited",
          title: "Too many requests",
          status: 429,
          detail: "API rate limit exceeded",
          code: "rate_limited",
          request_id: undefined,
        },
      );
      assert.equal(body.request_id, `rl2-example-${reload}`);
    });

    test("HEAD and OPTIONS are counted like GET; a refused HEAD is a 429 without a body; a CORS preflight is not counted", async () => {
      const d = doc(
        [
          rl({ route: "m", config: { hour: 3, limit_by: "ip" } }),
          rl({ route: "pf", config: { hour: 1, limit_by: "ip" } }),
          { name: "cors", route: "pf", config: {} },
          rl({ route: "pc", config: { hour: 1, limit_by: "ip" } }),
          { name: "cors", route: "pc", config: { preflight_continue: true } },
        ],
        ["m", "pf", "pc"],
      );
      await putAndWait(gw, d.doc);
      const ip = anIp();
      const got = [];
      for (const method of ["HEAD", "OPTIONS", "GET"]) {
        const r = await get(d.path("m"), ip, { method });
        got.push([method, r.status, r.headers["ratelimit-remaining"], r.headers["x-ratelimit-remaining-hour"]]);
      }
      assert.deepEqual(got, [
        ["HEAD", 200, "2", "2"],
        ["OPTIONS", 200, "1", "1"],
        ["GET", 200, "0", "0"],
      ]);
      const head = await get(d.path("m"), ip, { method: "HEAD" });
      assert.equal(head.status, 429);
      assert.equal(head.body.length, 0, "no body on a HEAD answer");
      assert.match(head.headers["retry-after"] ?? "", /^[1-9]\d*$/);
      assert.equal(head.headers["ratelimit-remaining"], "0");
      assertRefused(await get(d.path("m"), ip, { method: "OPTIONS" }));

      // Preflights are answered by cors before rate limiting: not counted, no rate-limit headers.
      const pf = { method: "OPTIONS", headers: { origin: "https://app.example", "access-control-request-method": "GET" } };
      for (let i = 0; i < 3; i++) {
        const r = await get(d.path("pf"), ip, pf);
        assert.equal(r.status, 200, r.text);
        assert.equal(r.headers["ratelimit-limit"], undefined);
      }
      const first = await get(d.path("pf"), ip);
      assert.equal(first.status, 200, "the preflights did not use the hour's one request");
      assert.equal(first.headers["ratelimit-remaining"], "0");
      assertRefused(await get(d.path("pf"), ip));
      // With preflight_continue the preflight goes on, through the rate limit: counted.
      const through = await get(d.path("pc"), ip, pf);
      assert.equal(through.status, 200);
      assert.equal(through.headers["ratelimit-remaining"], "0");
      assertRefused(await get(d.path("pc"), ip, pf));
    });

    test("error_code and error_message: the status and detail of the refusal; Retry-After and code stay", async () => {
      const d = doc([rl({ route: "ec", config: { hour: 1, limit_by: "ip", error_code: 503, error_message: "slow down, please" } })], ["ec"]);
      await putAndWait(gw, d.doc);
      const ip = anIp();
      assert.equal((await get(d.path("ec"), ip)).status, 200);
      const r = await get(d.path("ec"), ip);
      const p = assertRefused(r, 503);
      assert.equal(p.detail, "slow down, please");
      assert.equal(p.type, "https://edgegate.dev/errors/rate_limited");
      assert.equal(p.title, "Too many requests");
    });

    // -------------------------------------------------------------------------------------------------
    // Several windows

    test("several windows in one policy: RateLimit-* show the least remaining; a refusal charges no window", async () => {
      const d = doc([rl({ route: "w", config: { minute: 3, hour: 4, day: 100, year: 1000, limit_by: "ip" } })], ["w"]);
      await putAndWait(gw, d.doc);
      await awayFromWindowEnd(60_000, 25_000);
      const ip = anIp();
      const seen = [];
      for (let i = 0; i < 3; i++) {
        const r = await get(d.path("w"), ip);
        seen.push([
          r.status,
          r.headers["ratelimit-limit"],
          r.headers["ratelimit-remaining"],
          r.headers["x-ratelimit-remaining-minute"],
          r.headers["x-ratelimit-remaining-hour"],
          r.headers["x-ratelimit-remaining-day"],
        ]);
      }
      assert.deepEqual(seen, [
        [200, "3", "2", "2", "3", "99"],
        [200, "3", "1", "1", "2", "98"],
        [200, "3", "0", "0", "1", "97"],
      ]);
      const refused = await get(d.path("w"), ip);
      assertRefused(refused);
      assert.equal(refused.headers["x-ratelimit-remaining-hour"], "1", "the refused request charged nothing");
      assert.equal(refused.headers["x-ratelimit-remaining-day"], "97");
      assert.equal(refused.headers["x-ratelimit-limit-day"], "100");
      assert.equal(refused.headers["x-ratelimit-limit-year"], "1000");
      assert.equal(refused.headers["x-ratelimit-remaining-year"], "997");
      // The minute refuses: 3 counted, room again once ceil(3 × (1 − e)) + 1 ≤ 3, e ≥ 1/3: 20 s into
      // the next minute.
      const reset = Number(refused.headers["ratelimit-reset"]);
      const retry = Number(refused.headers["retry-after"]);
      assert.ok(retry >= reset + 19 && retry <= reset + 21, `Retry-After ${retry}, RateLimit-Reset ${reset}`);
    });

    test("several windows: on a tie of remaining, RateLimit-* show the longer window (as Kong)", async () => {
      const d = doc(
        [rl({ config: { hour: 7, limit_by: "ip" } }), rl({ route: "tie", config: { minute: 6, limit_by: "ip" } })],
        ["tie", "free"],
      );
      await putAndWait(gw, d.doc);
      // Even in the last minute of an hour, where the hour and the minute end together.
      await awayFromWindowEnd(60_000, 10_000);
      const ip = anIp();
      const free = await get(d.path("free"), ip); // hour: 6 left
      assert.equal(free.headers["ratelimit-limit"], "7");
      const sent = Date.now();
      const r = await get(d.path("tie"), ip); // hour: 5 left, minute: 5 left
      assert.equal(r.status, 200);
      assert.equal(r.headers["x-ratelimit-remaining-minute"], "5");
      assert.equal(r.headers["x-ratelimit-remaining-hour"], "5");
      assert.equal(r.headers["ratelimit-limit"], "7");
      assert.equal(r.headers["ratelimit-remaining"], "5");
      const toHour = Math.ceil((3_600_000 - (sent % 3_600_000)) / 1000);
      const reset = Number(r.headers["ratelimit-reset"]);
      assert.ok(reset <= toHour && reset >= toHour - 5, `RateLimit-Reset ${reset} is the hour's (${toHour})`);
    });

    // -------------------------------------------------------------------------------------------------
    // Permit leases and lease: false

    for (const [mode, extra] of [
      ["lease: false", { lease: false }],
      ["permit leases (default)", {}],
    ]) {
      test(`${mode}: 24 concurrent requests against minute 8 admit exactly 8, which see Remaining 7 down to 0 once each`, async () => {
        const d = doc([rl({ route: "cc", config: { minute: 8, limit_by: "ip", ...extra } })], ["cc"]);
        await putAndWait(gw, d.doc);
        await awayFromWindowEnd(60_000, 20_000);
        const ip = anIp();
        const all = await parallel(24, () => get(d.path("cc"), ip), 12);
        const ok = all.filter((r) => r.status === 200);
        assert.equal(ok.length, 8, all.map((r) => r.status).join(","));
        for (const r of all.filter((x) => x.status !== 200)) assertRefused(r);
        const remaining = ok.map((r) => Number(r.headers["ratelimit-remaining"])).sort((a, b) => b - a);
        assert.deepEqual(remaining, [7, 6, 5, 4, 3, 2, 1, 0]);
      });
    }

    test("a lower limit applies at once even while this isolate holds a lease (new limit, same counts)", async () => {
      const conf = (extra) => doc([rl({ route: "ll", config: { limit_by: "ip", ...extra } })], ["ll"]);
      const first = conf({ hour: 1000 });
      await putAndWait(gw, first.doc);
      const ip = anIp();
      const path = first.path("ll");
      // Steady traffic: the isolate takes a lease and spends most requests from it.
      for (let i = 0; i < 12; i++) assert.equal((await get(path, ip)).status, 200);
      // Same route name (same counter), limit 5: 12 already counted.
      const lower = { ...first.doc, plugins: [rl({ route: first.doc.routes[0].name, config: { hour: 5, limit_by: "ip" } })] };
      await putAndWait(gw, lower);
      const r = await get(path, ip);
      assertRefused(r);
      assert.equal(r.headers["ratelimit-limit"], "5");
      assert.equal(r.headers["x-ratelimit-limit-hour"], "5");
      assert.equal(r.headers["ratelimit-remaining"], "0");
    });

    test("a window added while this isolate holds a lease starts empty and counts from the next request", async () => {
      const base = doc([rl({ route: "aw", config: { hour: 1000, limit_by: "ip" } })], ["aw"]);
      await putAndWait(gw, base.doc);
      const ip = anIp();
      const path = base.path("aw");
      for (let i = 0; i < 12; i++) assert.equal((await get(path, ip)).status, 200);
      const more = { ...base.doc, plugins: [rl({ route: base.doc.routes[0].name, config: { hour: 1000, day: 2000, limit_by: "ip" } })] };
      await putAndWait(gw, more);
      const got = [];
      for (let i = 0; i < 3; i++) {
        const r = await get(path, ip);
        got.push([r.status, r.headers["x-ratelimit-limit-day"], r.headers["x-ratelimit-remaining-day"]]);
      }
      assert.deepEqual(got, [
        [200, "2000", "1999"],
        [200, "2000", "1998"],
        [200, "2000", "1997"],
      ]);
    });

    test("raising a limit keeps the counts: a refused client is admitted again with what the new limit leaves", async () => {
      const base = doc([rl({ route: "up", config: { hour: 2, limit_by: "ip" } })], ["up"]);
      await putAndWait(gw, base.doc);
      const ip = anIp();
      const path = base.path("up");
      for (let i = 0; i < 2; i++) assert.equal((await get(path, ip)).status, 200);
      assertRefused(await get(path, ip));
      await putAndWait(gw, { ...base.doc, plugins: [rl({ route: base.doc.routes[0].name, config: { hour: 4, limit_by: "ip" } })] });
      const r = await get(path, ip);
      assert.equal(r.status, 200);
      assert.equal(r.headers["ratelimit-limit"], "4");
      assert.equal(r.headers["ratelimit-remaining"], "1", "2 counted before, this one: 1 left of 4");
    });

    test("counter kept when cost, location_hint and fault_tolerant change; the new cost applies at once", async () => {
      const base = doc([rl({ route: "kc", config: { hour: 10, limit_by: "ip" } })], ["kc"]);
      await putAndWait(gw, base.doc);
      const ip = anIp();
      const path = base.path("kc");
      for (let i = 0; i < 2; i++) assert.equal((await get(path, ip)).status, 200);
      const changed = { hour: 10, limit_by: "ip", cost: 3, location_hint: "weur", fault_tolerant: false };
      await putAndWait(gw, { ...base.doc, plugins: [rl({ route: base.doc.routes[0].name, config: changed })] });
      const got = [];
      for (let i = 0; i < 3; i++) {
        const r = await get(path, ip);
        got.push([r.status, r.headers["ratelimit-remaining"]]);
      }
      // 2 counted before, then 3 a request: 5, 2 left; the next (3) does not fit.
      assert.deepEqual(got, [
        [200, "5"],
        [200, "2"],
        [429, "2"],
      ]);
    });

    // -------------------------------------------------------------------------------------------------
    // Token bucket and cost

    test("token bucket with cost: minute 10, cost 5 admits 2 at once; Retry-After is the refill time of 5 tokens (30 s)", async () => {
      const d = doc([rl({ route: "tbc", config: { minute: 10, cost: 5, algorithm: "token_bucket", limit_by: "ip" } })], ["tbc"]);
      await putAndWait(gw, d.doc);
      const ip = anIp();
      const got = [];
      for (let i = 0; i < 3; i++) {
        const r = await get(d.path("tbc"), ip);
        got.push([r.status, r.headers["ratelimit-remaining"]]);
        if (i === 2) {
          assertRefused(r);
          const retry = Number(r.headers["retry-after"]);
          assert.ok(retry >= 25 && retry <= 30, `Retry-After ${retry}`);
          // Empty: full again after 10 tokens, one every 6 s.
          const reset = Number(r.headers["ratelimit-reset"]);
          assert.ok(reset >= 55 && reset <= 60, `RateLimit-Reset ${reset}`);
        }
      }
      assert.deepEqual(got, [
        [200, "5"],
        [200, "0"],
        [429, "0"],
      ]);
    });

    // -------------------------------------------------------------------------------------------------
    // Options checked by validation (the previous version keeps serving)

    test("options: each documented constraint (cost, location_hint, lease, burst, error_code, error_message, header_name, path, limits) is enforced at its JSON path", async () => {
      const good = doc([rl({ route: "opt", config: { hour: 7, limit_by: "ip", location_hint: "enam" } })], ["opt"]);
      await putAndWait(gw, good.doc);
      const ip = anIp();
      const ok = await get(good.path("opt"), ip);
      assert.equal(ok.status, 200, "location_hint enam is accepted and the policy counts");
      assert.equal(ok.headers["ratelimit-remaining"], "6");
      for (const [config, field] of [
        [{ minute: 100, count: "tokens", cost: 2 }, "cost"],
        [{ minute: 100, location_hint: "mars" }, "location_hint"],
        [{ minute: 100, policy: "local", location_hint: "weur" }, "location_hint"],
        [{ minute: 100, policy: "local", lease: true }, "lease"],
        [{ minute: 100, burst: 10 }, "burst"],
        [{ minute: 100, error_code: 600 }, "error_code"],
        [{ minute: 100, error_code: 399 }, "error_code"],
        [{ minute: 100, error_message: "x".repeat(1025) }, "error_message"],
        [{ minute: 100, limit_by: "header", header_name: "X Tenant" }, "header_name"],
        [{ minute: 100, limit_by: "header" }, "header_name"],
        [{ minute: 100, path: "/login" }, "path"],
        [{ minute: 100, limit_by: "path", path: "login" }, "path"],
        [{ minute: 0.5 }, "minute"],
        [{ minute: 0 }, "minute"],
        [{ minute: 1e12 + 1 }, "minute"],
      ]) {
        const bad = { ...good.doc, plugins: [rl({ route: good.doc.routes[0].name, config: { limit_by: "ip", ...config } })] };
        const error = await rejected(gw, bad);
        assert.ok(error.includes(`plugins[0].config.${field}`), `${JSON.stringify(config)}: ${error}`);
      }
      assert.equal((await get(good.path("opt"), ip)).headers["ratelimit-limit"], "7", "the good version still serves");
      // lease: false with count tokens (never leased anyway) is accepted.
      const tokens = { ...good.doc, plugins: [rl({ route: good.doc.routes[0].name, config: { minute: 5, count: "tokens", lease: false, limit_by: "ip" } })] };
      await putAndWait(gw, tokens);
      assert.equal((await get(good.path("opt"), ip)).headers["x-ratelimit-limit-tokens"], "5");
    });

    // -------------------------------------------------------------------------------------------------
    // Consumer-scoped instances

    test("an instance scoped to a consumer limits that consumer only; others get none of its headers", async () => {
      const d = doc(
        [{ name: "key-auth" }, rl({ route: "cs", consumer: "alice", config: { hour: 1, limit_by: "consumer" } })],
        ["cs"],
      );
      await putAndWait(gw, d.doc);
      const as = (who, ip) => get(d.path("cs"), ip, { headers: { apikey: keys[who] } });
      const a1 = await as("alice", anIp());
      assert.equal(a1.status, 200);
      assert.equal(a1.headers["ratelimit-limit"], "1");
      assertRefused(await as("alice", anIp()));
      for (let i = 0; i < 3; i++) {
        const b = await as("bob", anIp());
        assert.equal(b.status, 200);
        assert.equal(b.headers["ratelimit-limit"], undefined);
      }
    });
  });

  describe(`docs/rate-limiting.md, second audit: the counter cannot be reached (CONFIG_RELOAD_SECONDS ${reload})`, { timeout: 120_000 }, () => {
    let gw, origin;
    before(async () => {
      origin = await startOrigin();
      gw = await startGateway({ bindings: { CONFIG_RELOAD_SECONDS: reload } }); // no RATE_LIMITER binding
    });
    after(async () => {
      await gw?.dispose();
      await origin?.close();
    });

    const conf = (plugins) => ({
      format_version: 1,
      services: [{ name: "svc", url: origin.url }],
      routes: [{ name: "u", service: "svc", paths: ["/u"] }],
      plugins,
    });

    test("fault_tolerant true: through, without that policy's headers; another policy's headers still shown", async () => {
      await putAndWait(gw, conf([
        rl({ route: "u", config: { minute: 5, limit_by: "ip" } }),
        rl({ route: "u", config: { hour: 9, limit_by: "ip", policy: "local" } }),
      ]));
      const ip = anIp();
      for (let i = 0; i < 7; i++) {
        const r = await request(gw.at("/u"), { headers: { "cf-connecting-ip": ip } });
        assert.equal(r.status, 200, r.text);
        assert.equal(r.headers["x-ratelimit-limit-minute"], undefined);
        assert.equal(r.headers["x-ratelimit-limit-hour"], "9");
        assert.equal(r.headers["ratelimit-limit"], "9");
        assert.equal(r.headers["ratelimit-remaining"], String(8 - i));
      }
    });

    test("fault_tolerant false: 503 rate_limit_unavailable (problem+json, no Retry-After); a refusal by another policy wins (429)", async () => {
      await putAndWait(gw, conf([
        rl({ route: "u", config: { minute: 5, limit_by: "ip", fault_tolerant: false } }),
        rl({ route: "u", config: { hour: 1, limit_by: "ip", policy: "local" } }),
      ]));
      const ip = anIp();
      const r = await request(gw.at("/u"), { headers: { "cf-connecting-ip": ip } });
      assert.equal(r.status, 503, r.text);
      assert.match(r.headers["content-type"], /^application\/problem\+json/);
      assert.equal(problemOf(r).code, "rate_limit_unavailable");
      assert.equal(problemOf(r).status, 503);
      assert.equal(r.headers["retry-after"], undefined);
      // The local policy admitted (and charged) that request; now it refuses: 429 with its Retry-After.
      const second = await request(gw.at("/u"), { headers: { "cf-connecting-ip": ip } });
      assertRefused(second);
      assert.equal(second.headers["x-ratelimit-limit-hour"], "1");
    });
  });
}
