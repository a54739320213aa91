// The docs as a contract, for rate limiting: docs/rate-limiting.md statement by statement, read the way a
// Kong user and the IETF RateLimit-headers draft read it, asserting only what tests/ratelimit*.test.mjs,
// tests/docs-contract-auth*.test.mjs and tests/fixes.test.mjs do not: headers on every answer of a limited
// route, which window the headers show, RateLimit-Reset of both algorithms, the sliding estimate across a
// boundary, cost, a refusal by one policy charging the others, limit_by service / credential / path, the
// token-bucket example, the local policy, what keeps and what restarts a counter, token budgets off AI
// routes, the ratelimit_unavailable log line and rejected options.
import { describe, test, before, after } from "node:test";
import assert from "node:assert/strict";
import { startGateway, startOrigin, request, sleep, closedPort, problemOf, waitFor } from "./support/harness.mjs";
import { DO_OPTIONS, configure } from "./ratelimit-helpers.mjs";

let ipSeq = 0;
/** A fresh client address for each use (counters are per address with limit_by ip). */
const anIp = () => `198.18.${Math.floor(ipSeq / 250)}.${(ipSeq++ % 250) + 1}`;

/** Wait until at least `marginMs` are left in the current aligned window of `windowMs`. */
async function awayFromWindowEnd(windowMs, marginMs) {
  const left = windowMs - (Date.now() % windowMs);
  if (left < marginMs) await sleep(left + 20);
}

/** Wait for the start of the next aligned second (plus `offsetMs`). */
async function atNextSecond(offsetMs = 0) {
  await sleep(1000 - (Date.now() % 1000) + offsetMs);
}

function assertRefused(res, status = 429, code = "rate_limited") {
  assert.equal(res.status, status, res.text);
  assert.match(res.headers["content-type"] ?? "", /^application\/problem\+json/);
  const p = problemOf(res);
  assert.equal(p.status, status);
  assert.equal(p.code, code);
  assert.match(res.headers["retry-after"] ?? "", /^[1-9]\d*$/, "Retry-After: whole seconds, at least 1");
  return p;
}

const rl = (extra) => ({ name: "rate-limiting", ...extra });

describe("docs contract: rate limiting (docs/rate-limiting.md)", { timeout: 180_000 }, () => {
  let gw, origin, deadUrl;
  before(async () => {
    // /.../status/<n> answers with that status; everything else is echoed.
    origin = await startOrigin((req, res) => {
      const m = /\/status\/(\d{3})/.exec(req.url);
      res.writeHead(m ? Number(m[1]) : 200, { "content-type": "application/json" });
      res.end(JSON.stringify({ url: req.url }));
    });
    deadUrl = `http://127.0.0.1:${await closedPort()}`;
    gw = await startGateway({ miniflare: DO_OPTIONS });
  });
  after(async () => {
    await gw?.dispose();
    await origin?.close();
  });

  /** Services `svc` and `other` (both the origin) and `dead` (nothing listening); one route per name. */
  const doc = (plugins, routes) => ({
    format_version: 1,
    services: [
      { name: "svc", url: origin.url },
      { name: "other", url: origin.url },
      { name: "dead", url: deadUrl },
    ],
    routes: Object.entries(routes).map(([name, r]) => ({
      name,
      service: r.service ?? "svc",
      paths: [r.path ?? `/${name}`],
    })),
    plugins,
  });
  const get = (path, ip, headers = {}) => request(gw.at(path), { headers: { "cf-connecting-ip": ip, ...headers } });
  const rem = (res, w = "hour") => res.headers[`x-ratelimit-remaining-${w}`];

  // ---------------------------------------------------------------------------------------------------
  // Headers

  test("Headers: every answer of a limited route carries them (origin 404/500, gateway 502) and is counted", async () => {
    await configure(gw, doc(
      [
        rl({ route: "st", config: { hour: 4, limit_by: "ip" } }),
        rl({ route: "down", config: { hour: 2, limit_by: "ip" } }),
      ],
      { st: {}, down: { service: "dead" } },
    ));
    const ip = anIp();
    const seen = [];
    for (const p of ["/st/status/404", "/st/status/500", "/st/status/201", "/st"]) {
      const r = await get(p, ip);
      seen.push([r.status, r.headers["ratelimit-limit"], r.headers["ratelimit-remaining"], rem(r)]);
    }
    assert.deepEqual(seen, [
      [404, "4", "3", "3"],
      [500, "4", "2", "2"],
      [201, "4", "1", "1"],
      [200, "4", "0", "0"],
    ]);
    assertRefused(await get("/st", ip));

    const down = await get("/down", ip);
    assert.equal(down.status, 502, down.text);
    assert.equal(down.headers["ratelimit-limit"], "2");
    assert.equal(down.headers["ratelimit-remaining"], "1");
    assert.equal(rem(down), "1");
    assert.equal((await get("/down", ip)).status, 502);
    assertRefused(await get("/down", ip));
  });

  test("Headers: a window two policies share shows the policy with the least remaining, not the lower limit", async () => {
    await configure(gw, doc(
      [
        rl({ service: "svc", config: { minute: 10, limit_by: "ip" } }),
        rl({ route: "tight", config: { minute: 3, limit_by: "ip" } }),
      ],
      { tight: {}, loose: {} },
    ));
    await awayFromWindowEnd(60_000, 15_000);
    const ip = anIp();
    for (let i = 0; i < 8; i++) assert.equal((await get("/loose", ip)).status, 200);
    // The service policy has 10 - 9 = 1 left, the route policy 3 - 1 = 2: the service's is the tighter.
    const r = await get("/tight", ip);
    assert.equal(r.status, 200);
    assert.equal(r.headers["x-ratelimit-limit-minute"], "10");
    assert.equal(r.headers["x-ratelimit-remaining-minute"], "1");
    assert.equal(r.headers["ratelimit-limit"], "10");
    assert.equal(r.headers["ratelimit-remaining"], "1");
  });

  test("Headers: RateLimit-Reset of a sliding window is the seconds to the end of the aligned window, rounded up", async () => {
    await configure(gw, doc([rl({ route: "reset", config: { minute: 100, limit_by: "ip" } })], { reset: {} }));
    await awayFromWindowEnd(60_000, 15_000);
    const ip = anIp();
    const check = async () => {
      const sent = Date.now();
      const r = await get("/reset", ip);
      const done = Date.now();
      const end = Math.floor(sent / 60_000) * 60_000 + 60_000;
      const reset = Number(r.headers["ratelimit-reset"]);
      const lo = Math.ceil((end - done) / 1000);
      const hi = Math.ceil((end - sent) / 1000);
      assert.ok(reset >= lo && reset <= hi, `RateLimit-Reset ${reset} not in [${lo}, ${hi}]`);
      return reset;
    };
    const first = await check(); // asks the object (and gets a lease)
    await sleep(2_100);
    const second = await check(); // decided from the lease in hand: the reset still counts down
    assert.ok(second <= first - 2, `${first} then ${second}`);
  });

  for (const [mode, extra] of [
    ["lease: false", { lease: false }],
    ["permit leases (default)", {}],
  ]) {
    test(`Headers: RateLimit-Reset of a token bucket is the time until the bucket is full again (${mode})`, async () => {
      await configure(gw, doc(
        [rl({ route: "tb", config: { minute: 6, algorithm: "token_bucket", limit_by: "ip", ...extra } })],
        { tb: {} },
      ));
      const ip = anIp();
      const got = [];
      for (let i = 0; i < 3; i++) {
        const r = await get("/tb", ip);
        got.push([r.status, r.headers["ratelimit-remaining"], r.headers["ratelimit-reset"]]);
      }
      // 6 a minute: one token every 10 s; after n tokens taken, full again in 10 n s (minus the few ms
      // that passed, rounded up).
      assert.deepEqual(got, [
        [200, "5", "10"],
        [200, "4", "20"],
        [200, "3", "30"],
      ]);
    });
  }

  test("Headers: hide_client_headers hides that policy's headers only; its refusal still has Retry-After", async () => {
    await configure(gw, doc(
      [
        rl({ route: "hid", config: { hour: 1, limit_by: "ip", hide_client_headers: true } }),
        rl({ service: "svc", config: { day: 10, month: 20, limit_by: "ip" } }),
      ],
      { hid: {} },
    ));
    const ip = anIp();
    const ok = await get("/hid", ip);
    assert.equal(ok.status, 200);
    assert.equal(ok.headers["x-ratelimit-limit-hour"], undefined);
    assert.equal(ok.headers["x-ratelimit-limit-day"], "10");
    assert.equal(ok.headers["x-ratelimit-limit-month"], "20");
    assert.equal(ok.headers["x-ratelimit-remaining-month"], "19");
    assert.equal(ok.headers["ratelimit-limit"], "10", "RateLimit-* from the visible policy");
    const refused = await get("/hid", ip);
    assertRefused(refused);
    assert.equal(refused.headers["x-ratelimit-remaining-hour"], undefined);
    assert.equal(refused.headers["x-ratelimit-remaining-day"], "8", "the visible policy admitted and charged it");
    // 1 of 1 counted: the sliding hour admits again only once this hour no longer weighs, at the
    // end of the next one (the day policy would admit at once).
    assert.ok(Number(refused.headers["retry-after"]) >= 3600, "Retry-After is the hidden hour policy's");
  });

  test("Retry-After with several refusing policies: when every one of them admits again (the latest)", async () => {
    await configure(gw, doc(
      [
        rl({ route: "two", config: { hour: 1, limit_by: "ip" } }),
        rl({ service: "svc", config: { day: 1, limit_by: "ip" } }),
      ],
      { two: {} },
    ));
    const ip = anIp();
    assert.equal((await get("/two", ip)).status, 200);
    const sent = Date.now();
    const refused = await get("/two", ip);
    assertRefused(refused);
    // The day policy admits again after the end of the UTC day at the earliest.
    const endOfDay = Math.ceil((86_400_000 - (sent % 86_400_000)) / 1000);
    assert.ok(Number(refused.headers["retry-after"]) >= endOfDay - 1,
      `Retry-After ${refused.headers["retry-after"]}, end of day in ${endOfDay} s`);
  });

  // ---------------------------------------------------------------------------------------------------
  // Algorithms, cost, several policies

  test("Sliding window: after the boundary the previous window weighs by its overlap (second: 2)", async () => {
    await configure(gw, doc([rl({ route: "slide", config: { second: 2, limit_by: "ip" } })], { slide: {} }));
    const ip = anIp();
    await atNextSecond(20);
    const a = [];
    for (let i = 0; i < 3; i++) a.push(await get("/slide", ip));
    assert.deepEqual(a.map((r) => r.status), [200, 200, 429]);
    // Refused early in the second: room again when ceil(2 × (1 − elapsed)) + 1 ≤ 2, i.e. half way into
    // the next second: 1.5 s minus what has passed, rounded up: 2.
    assert.equal(a[2].headers["retry-after"], "2");
    await atNextSecond(150); // the previous second's 2 still weigh ceil(2 × 0.85) = 2
    assertRefused(await get("/slide", ip));
    await sleep(600 - (Date.now() % 1000) > 0 ? 600 - (Date.now() % 1000) : 0); // 600 ms in: ceil(2 × 0.4) = 1
    const b = await get("/slide", ip);
    assert.equal(b.status, 200, `at ${Date.now() % 1000} ms into the second`);
    assertRefused(await get("/slide", ip)); // 1 (weighted) + 1 + 1 > 2
  });

  test("Cost: minute 10, cost 4 admits two requests a minute; Retry-After is when 4 fit again", async () => {
    await configure(gw, doc([rl({ route: "cost", config: { minute: 10, cost: 4, limit_by: "ip" } })], { cost: {} }));
    await awayFromWindowEnd(60_000, 15_000);
    const ip = anIp();
    const r = [];
    for (let i = 0; i < 3; i++) r.push(await get("/cost", ip));
    assert.deepEqual(r.map((x) => [x.status, x.headers["ratelimit-remaining"]]), [
      [200, "6"],
      [200, "2"],
      [429, "2"],
    ]);
    // 8 counted: after the boundary ceil(8 × (1 − e)) + 4 ≤ 10 once e ≥ 1/4, 15 s into the next minute.
    const reset = Number(r[2].headers["ratelimit-reset"]);
    const retry = Number(assertRefused(r[2]) && r[2].headers["retry-after"]);
    assert.equal(retry, reset + 15, `Retry-After ${retry}, RateLimit-Reset ${reset}`);
  });

  test("Several policies: a request refused by one still counts against the others that admitted it (Kong)", async () => {
    await configure(gw, doc(
      [
        rl({ service: "svc", config: { day: 10, limit_by: "ip" } }),
        rl({ route: "strict", config: { hour: 1, limit_by: "ip" } }),
      ],
      { strict: {}, free: {} },
    ));
    const ip = anIp();
    const first = await get("/strict", ip);
    assert.equal(first.status, 200);
    assert.equal(rem(first, "day"), "9");
    const refused = [await get("/strict", ip), await get("/strict", ip)];
    for (const r of refused) assertRefused(r);
    // The day policy admitted (and charged) both refused requests: 10 − 3 − this one = 6.
    const free = await get("/free", ip);
    assert.equal(free.status, 200);
    assert.equal(rem(free, "day"), "6");
  });

  test("Token bucket: the documented example, 20 at once then 5 per second", async () => {
    await configure(gw, doc(
      [rl({ route: "tbx", config: { second: 5, hour: 2000, algorithm: "token_bucket", burst: 20, limit_by: "ip" } })],
      { tbx: {} },
    ));
    const ip = anIp();
    const t0 = Date.now();
    const burst = await Promise.all(Array.from({ length: 30 }, () => get("/tbx", ip)));
    const t1 = Date.now();
    const n1 = burst.filter((r) => r.status === 200).length;
    assert.ok(n1 >= 20 && n1 <= 20 + Math.floor((5 * (t1 - t0)) / 1000), `burst admitted ${n1} in ${t1 - t0} ms`);
    for (const r of burst.filter((x) => x.status !== 200)) assertRefused(r);
    await sleep(1_000);
    const t2 = Date.now();
    const next = await Promise.all(Array.from({ length: 12 }, () => get("/tbx", ip)));
    const t3 = Date.now();
    const total = n1 + next.filter((r) => r.status === 200).length;
    // 20 + 5 a second over the elapsed time, whole tokens only.
    const lo = 20 + Math.floor((5 * (t2 - t1)) / 1000);
    const hi = 20 + Math.floor((5 * (t3 - t0)) / 1000);
    assert.ok(total >= lo && total <= hi, `admitted ${total} in all, expected [${lo}, ${hi}]`);
  });

  test("Token bucket: burst sizes the shortest window only; a longer window's bucket holds its limit", async () => {
    await configure(gw, doc(
      [rl({ route: "tbh", config: { second: 5, hour: 22, algorithm: "token_bucket", burst: 20, limit_by: "ip" } })],
      { tbh: {} },
    ));
    const ip = anIp();
    const burst = await Promise.all(Array.from({ length: 24 }, () => get("/tbh", ip)));
    const n1 = burst.filter((r) => r.status === 200).length;
    assert.ok(n1 >= 20 && n1 <= 22, `burst admitted ${n1}`);
    await sleep(1_300); // the second's bucket has refilled 5+; the hour's has 22 − n1 (+ 0.008)
    const after = [];
    for (let i = 0; i < 5; i++) after.push(await get("/tbh", ip));
    const n2 = after.filter((r) => r.status === 200).length;
    assert.equal(n1 + n2, 22, `${n1} then ${n2}`);
    const last = after[after.length - 1];
    assertRefused(last);
    assert.equal(rem(last), "0");
    assert.equal(last.headers["x-ratelimit-limit-hour"], "22");
    assert.ok(Number(last.headers["retry-after"]) > 60, "the hour's bucket refills one token in 164 s");
  });

  // ---------------------------------------------------------------------------------------------------
  // What is counted

  test("limit_by service: every route of the service shares one counter; another service has its own", async () => {
    await configure(gw, doc(
      [rl({ config: { hour: 3, limit_by: "service" } })],
      { s1: {}, s2: {}, o1: { service: "other" } },
    ));
    const got = [];
    for (const p of ["/s1", "/s2", "/s1"]) got.push((await get(p, anIp())).status);
    assert.deepEqual(got, [200, 200, 200]);
    assertRefused(await get("/s2", anIp()));
    const o = await get("/o1", anIp());
    assert.equal(o.status, 200);
    assert.equal(rem(o), "2");
  });

  test("limit_by credential without a credential counts by client IP (as Kong)", async () => {
    await configure(gw, doc([rl({ route: "cred", config: { hour: 1, limit_by: "credential" } })], { cred: {} }));
    const a = anIp();
    assert.equal((await get("/cred", a)).status, 200);
    assertRefused(await get("/cred", a));
    assert.equal((await get("/cred", anIp())).status, 200, "another address, another counter");
  });

  test("limit_by path: the path option is compared in normal form too; case is kept", async () => {
    await configure(gw, doc(
      [rl({ route: "pp", config: { hour: 1, limit_by: "path", path: "/pp//%6Cog%69n" } })],
      { pp: {} },
    ));
    assert.equal((await get("/pp/login", anIp())).status, 200);
    assertRefused(await get("/pp/%6cogin", anIp()));
    const other = [];
    for (let i = 0; i < 2; i++) other.push((await get("/pp/Login", anIp())).status);
    assert.deepEqual(other, [200, 200], "/pp/Login is another path, not limited");
  });

  // ---------------------------------------------------------------------------------------------------
  // The local policy

  test("policy local: the same headers, Retry-After and problem+json refusal as durable", async () => {
    await configure(gw, doc(
      [rl({ route: "loc", config: { hour: 2, minute: 2, limit_by: "ip", policy: "local", error_message: "local says no" } })],
      { loc: {} },
    ));
    await awayFromWindowEnd(60_000, 10_000);
    const ip = anIp();
    const r1 = await get("/loc", ip);
    assert.equal(r1.status, 200);
    assert.equal(r1.headers["ratelimit-limit"], "2");
    assert.equal(r1.headers["ratelimit-remaining"], "1");
    assert.equal(r1.headers["x-ratelimit-limit-hour"], "2");
    assert.equal(r1.headers["x-ratelimit-remaining-minute"], "1");
    assert.match(r1.headers["ratelimit-reset"], /^\d+$/);
    assert.equal((await get("/loc", ip)).status, 200);
    const refused = await get("/loc", ip);
    assert.equal(assertRefused(refused).detail, "local says no");
    assert.equal(refused.headers["ratelimit-remaining"], "0");
    assert.ok(Number(refused.headers["retry-after"]) > 60, "the hour window holds it past the minute");
  });

  // ---------------------------------------------------------------------------------------------------
  // Which counter: what keeps it, what restarts it

  test("Counter kept: a lower limit applies to the counts already made (refused until the window frees)", async () => {
    const conf = (hour) => doc([rl({ route: "low", config: { hour, limit_by: "ip" } })], { low: {} });
    await configure(gw, conf(5));
    const ip = anIp();
    for (let i = 0; i < 3; i++) assert.equal((await get("/low", ip)).status, 200);
    await configure(gw, conf(2));
    const r = await get("/low", ip);
    assertRefused(r);
    assert.equal(r.headers["ratelimit-limit"], "2");
    assert.equal(r.headers["ratelimit-remaining"], "0");
  });

  test("Counter kept: changing error_code, error_message, hide_client_headers, timeout_ms, lease", async () => {
    const conf = (extra) => doc([rl({ route: "keep", config: { hour: 3, limit_by: "ip", ...extra } })], { keep: {} });
    await configure(gw, conf({}));
    const ip = anIp();
    assert.deepEqual([rem(await get("/keep", ip)), rem(await get("/keep", ip))], ["2", "1"]);
    await configure(gw, conf({ error_code: 430, error_message: "changed", timeout_ms: 5000, lease: false }));
    assert.equal(rem(await get("/keep", ip)), "0");
    const refused = await get("/keep", ip);
    assert.equal(assertRefused(refused, 430).detail, "changed");
    await configure(gw, conf({ hide_client_headers: true }));
    const hidden = await get("/keep", ip);
    assertRefused(hidden);
    assert.equal(hidden.headers["ratelimit-limit"], undefined);
  });

  test("Counter kept: disabling and re-enabling the instance", async () => {
    const conf = (enabled) =>
      doc([rl({ route: "dis", enabled, config: { hour: 2, limit_by: "ip" } })], { dis: {} });
    await configure(gw, conf(true));
    const ip = anIp();
    for (let i = 0; i < 2; i++) assert.equal((await get("/dis", ip)).status, 200);
    await configure(gw, conf(false));
    const off = await get("/dis", ip);
    assert.equal(off.status, 200, "disabled: not limited");
    assert.equal(off.headers["ratelimit-limit"], undefined);
    await configure(gw, conf(true));
    assertRefused(await get("/dis", ip));
  });

  test("Counter restarted: changing limit_by, switching policy to local, changing algorithm", async () => {
    const conf = (extra) =>
      doc([rl({ route: "rst", config: { hour: 2, limit_by: "ip", ...extra } })], { rst: {} });
    await configure(gw, conf({}));
    const ip = anIp();
    for (let i = 0; i < 2; i++) assert.equal((await get("/rst", ip)).status, 200);
    assertRefused(await get("/rst", ip));
    for (const extra of [{ policy: "local" }, { algorithm: "token_bucket" }, { limit_by: "header", header_name: "x-t" }]) {
      await configure(gw, conf(extra));
      const r = await get("/rst", ip, { "x-t": "acme" });
      assert.equal(r.status, 200, JSON.stringify(extra));
      assert.equal(rem(r), "1", JSON.stringify(extra));
    }
  });

  test("Counter: adding a window starts that window empty", async () => {
    const conf = (extra) => doc([rl({ route: "addw", config: { hour: 3, limit_by: "ip", ...extra } })], { addw: {} });
    await configure(gw, conf({}));
    const ip = anIp();
    assert.deepEqual([rem(await get("/addw", ip)), rem(await get("/addw", ip))], ["2", "1"]);
    await configure(gw, conf({ day: 10 }));
    const r = await get("/addw", ip);
    assert.equal(r.status, 200);
    assert.equal(rem(r, "day"), "9", "the new window starts empty");
  });

  test("Counter: removing an earlier instance without an id renumbers the later one onto its counter", async () => {
    const a = rl({ route: "num", config: { hour: 5, limit_by: "ip" } });
    const b = rl({ route: "num", config: { hour: 50, limit_by: "ip" } });
    await configure(gw, doc([a], { num: {} }));
    const ip = anIp();
    for (let i = 0; i < 3; i++) await get("/num", ip); // `rate-limiting` (a) has counted 3
    await configure(gw, doc([a, b], { num: {} }));
    const both = await get("/num", ip); // a: 4, b (`rate-limiting.2`, new): 1
    assert.deepEqual([both.headers["ratelimit-limit"], rem(both)], ["5", "1"]);
    // a removed: b is now `rate-limiting` and counts on a's counter (4 so far), not from zero, and
    // not on its own (1).
    await configure(gw, doc([b], { num: {} }));
    const r = await get("/num", ip);
    assert.equal(r.status, 200);
    assert.equal(r.headers["ratelimit-limit"], "50");
    assert.equal(rem(r), "45");
  });

  // ---------------------------------------------------------------------------------------------------
  // Token budgets off AI routes, rejected options

  test("count: tokens on a route without ai-proxy only checks: nothing is ever charged", async () => {
    await configure(gw, doc([rl({ route: "tok", config: { minute: 1, count: "tokens", limit_by: "ip" } })], { tok: {} }));
    const ip = anIp();
    for (let i = 0; i < 4; i++) {
      const r = await get("/tok", ip);
      assert.equal(r.status, 200, `request ${i + 1}`);
      assert.equal(r.headers["ratelimit-remaining"], "1");
      assert.equal(r.headers["x-ratelimit-remaining-tokens"], "1", "OpenAI's token headers too");
    }
  });

  test("Options: an explicit lease: true with policy local or count tokens is rejected (the last good version serves)", async () => {
    const good = doc([rl({ route: "rej", config: { hour: 7, limit_by: "ip" } })], { rej: {} });
    await configure(gw, good);
    const ip = anIp();
    assert.equal((await get("/rej", ip)).headers["ratelimit-limit"], "7");
    for (const bad of [
      { hour: 3, limit_by: "ip", policy: "local", lease: true },
      { hour: 3, limit_by: "ip", count: "tokens", lease: true },
      { hour: 3, limit_by: "ip", cost: 4 },
      { second: 5, minute: 4, limit_by: "ip" },
    ]) {
      const before = gw.logs.length;
      await gw.putConfig(doc([rl({ route: "rej", config: bad })], { rej: {} }));
      const r = await get("/rej", ip);
      assert.equal(r.headers["ratelimit-limit"], "7", `${JSON.stringify(bad)} must not go into service`);
      await waitFor(() => gw.logs.slice(before).some((l) => l.json?.event === "config_rejected"), {
        what: `config_rejected for ${JSON.stringify(bad)}`,
      });
    }
  });
});

describe("docs contract: rate limiting without a reachable counter", { timeout: 60_000 }, () => {
  let gw, origin;
  before(async () => {
    origin = await startOrigin();
    gw = await startGateway(); // no RATE_LIMITER binding
  });
  after(async () => {
    await gw?.dispose();
    await origin?.close();
  });

  test("the ratelimit_unavailable line names the instance (index and identity), op check and the fault_tolerant setting", async () => {
    await configure(gw, {
      format_version: 1,
      services: [{ name: "svc", url: origin.url }],
      routes: [{ name: "u", service: "svc", paths: ["/u"] }],
      plugins: [
        { name: "rate-limiting", route: "u", enabled: false, config: { minute: 1, limit_by: "ip" } },
        { name: "rate-limiting", route: "u", id: "per-ip", config: { minute: 5, limit_by: "ip", fault_tolerant: false } },
      ],
    });
    const res = await request(gw.at("/u"), { headers: { "x-request-id": "rl-unavail-1" } });
    assert.equal(res.status, 503, res.text);
    assert.equal(problemOf(res).code, "rate_limit_unavailable");
    const line = gw.logs.find((l) => l.json?.event === "ratelimit_unavailable" && l.json.request_id === "rl-unavail-1");
    assert.ok(line, JSON.stringify(gw.logs.map((l) => l.message)));
    assert.equal(line.json.plugin, 1);
    assert.equal(line.json.plugin_id, "route=u/per-ip");
    assert.equal(line.json.op, "check");
    assert.equal(line.json.fault_tolerant, false);
    assert.equal(typeof line.json.reason, "string");
  });
});
