// Rate limiting (docs/rate-limiting.md) under Miniflare, counted by the RateLimiter Durable Object:
// exactness under concurrency, key separation, CF-Connecting-IP, headers, token bucket, local policy.
import { describe, test, before, after } from "node:test";
import assert from "node:assert/strict";
import { startGateway, startOrigin, request, sleep } from "./support/harness.mjs";
import { DO_OPTIONS, rlConfig, configure } from "./ratelimit-helpers.mjs";

/** Wait until at least `seconds` are left in the current UTC minute (windows are aligned on the epoch). */
async function awayFromMinuteEnd(seconds) {
  const left = 60_000 - (Date.now() % 60_000);
  if (left < seconds * 1000) await sleep(left + 50);
}

function assertRateLimited(res, { status = 429, code = "rate_limited" } = {}) {
  assert.equal(res.status, status, res.text);
  assert.match(res.headers["content-type"] ?? "", /^application\/problem\+json/);
  const p = JSON.parse(res.text);
  assert.equal(p.code, code);
  assert.equal(p.status, status);
  return p;
}

describe("rate limiting with the Durable Object", () => {
  let gw;
  let origin;
  before(async () => {
    origin = await startOrigin();
    gw = await startGateway({ miniflare: DO_OPTIONS });
  });
  after(async () => {
    await gw?.dispose();
    await origin?.close();
  });

  for (const [mode, extra, ip] of [
    ["permit leases (default)", {}, "198.51.100.7"],
    ["per-request mode (lease: false)", { lease: false }, "198.51.100.8"],
  ]) test(`200 concurrent requests against 50/minute, ${mode}: exactly 50 admitted, the rest 429 with Retry-After`, async () => {
    await configure(gw,
      rlConfig(origin.url, [{ name: "rate-limiting", route: "burst", config: { minute: 50, limit_by: "ip", ...extra } }], ["burst"]),
    );
    await awayFromMinuteEnd(15);
    const hitsBefore = origin.hits;
    const sentAt = Date.now();
    const responses = await Promise.all(
      Array.from({ length: 200 }, () => request(gw.at("/burst"), { headers: { "cf-connecting-ip": ip } })),
    );
    const doneAt = Date.now();
    const ok = responses.filter((r) => r.status === 200);
    const limited = responses.filter((r) => r.status !== 200);
    assert.equal(ok.length, 50, `admitted ${ok.length}`);
    assert.equal(limited.length, 150);
    assert.equal(origin.hits - hitsBefore, 50, "only admitted requests reach the origin");

    const remaining = ok.map((r) => Number(r.headers["ratelimit-remaining"])).sort((a, b) => b - a);
    if (extra.lease === false) {
      // Remaining, in the object's order of decisions, is 49, 48, ... 0: each value exactly once, so
      // it never went up and never below zero.
      assert.deepEqual(remaining, Array.from({ length: 50 }, (_, i) => 49 - i));
    } else {
      // With leases it is this isolate's view (the object's remaining plus the permits it holds).
      assert.ok(remaining.every((n) => n >= 0 && n <= 49), JSON.stringify(remaining));
      assert.ok(remaining.includes(0) && remaining.includes(49), JSON.stringify(remaining));
    }
    for (const r of responses) {
      assert.equal(r.headers["ratelimit-limit"], "50");
      assert.equal(r.headers["x-ratelimit-limit-minute"], "50");
      assert.equal(r.headers["x-ratelimit-remaining-minute"], r.headers["ratelimit-remaining"]);
      assert.ok(Number(r.headers["ratelimit-remaining"]) >= 0);
    }

    // Retry-After: to the end of this minute, plus 1.2 s until the previous minute's 50 (weighted by
    // its overlap with the sliding minute) leave room for one: 50 * (60 - 1.2) / 60 = 49.
    const nextMinute = Math.floor(sentAt / 60_000) * 60_000 + 60_000;
    const lo = Math.ceil((nextMinute + 1200 - doneAt) / 1000);
    const hi = Math.ceil((nextMinute + 1200 - sentAt) / 1000);
    for (const r of limited) {
      const p = assertRateLimited(r);
      assert.equal(p.detail, "API rate limit exceeded");
      assert.equal(r.headers["ratelimit-remaining"], "0");
      const retry = Number(r.headers["retry-after"]);
      assert.ok(Number.isInteger(retry) && retry >= lo && retry <= hi, `Retry-After ${retry} not in [${lo}, ${hi}]`);
      const reset = Number(r.headers["ratelimit-reset"]);
      assert.ok(reset >= 1 && reset <= 60, `RateLimit-Reset ${reset}`);
    }
  });

  test("independent keys do not share counts; the IP is CF-Connecting-IP, not X-Forwarded-For", async () => {
    await configure(gw,
      rlConfig(origin.url, [{ name: "rate-limiting", route: "keys", config: { hour: 3, limit_by: "ip" } }], ["keys"]),
    );
    const from = (ip, xff) =>
      request(gw.at("/keys"), { headers: { "cf-connecting-ip": ip, ...(xff ? { "x-forwarded-for": xff } : {}) } });
    // A client rotating X-Forwarded-For still has one counter.
    const spoofing = [];
    for (let i = 0; i < 5; i++) spoofing.push((await from("203.0.113.1", `10.0.0.${i}`)).status);
    assert.deepEqual(spoofing, [200, 200, 200, 429, 429]);
    // Another address has its own three.
    const other = [];
    for (let i = 0; i < 4; i++) other.push((await from("203.0.113.2")).status);
    assert.deepEqual(other, [200, 200, 200, 429]);
    // IPv6 too.
    assert.equal((await from("2001:db8::1")).status, 200);
  });

  test("limit by header, route and service; consumer falls back to the IP without a consumer", async () => {
    await configure(gw,
      rlConfig(
        origin.url,
        [
          { name: "rate-limiting", route: "tenant", config: { hour: 2, limit_by: "header", header_name: "X-Tenant" } },
          { name: "rate-limiting", route: "shared", config: { hour: 2, limit_by: "route" } },
          { name: "rate-limiting", route: "anon", config: { hour: 2 } },
        ],
        ["tenant", "shared", "anon"],
      ),
    );
    const get = async (path, headers) => (await request(gw.at(path), { headers })).status;
    const tenant = [];
    for (let i = 0; i < 3; i++) tenant.push(await get("/tenant", { "x-tenant": "acme", "cf-connecting-ip": `192.0.2.${i}` }));
    assert.deepEqual(tenant, [200, 200, 429], "one counter per header value, whatever the IP");
    assert.equal(await get("/tenant", { "x-tenant": "globex", "cf-connecting-ip": "192.0.2.1" }), 200);

    const shared = [];
    for (let i = 0; i < 3; i++) shared.push(await get("/shared", { "cf-connecting-ip": `192.0.2.${50 + i}` }));
    assert.deepEqual(shared, [200, 200, 429], "one counter for the route, all callers");

    const anon = [];
    for (let i = 0; i < 3; i++) anon.push(await get("/anon", { "cf-connecting-ip": "192.0.2.99" }));
    anon.push(await get("/anon", { "cf-connecting-ip": "192.0.2.98" }));
    assert.deepEqual(anon, [200, 200, 429, 200], "limit_by consumer without a consumer counts by IP");
  });

  test("several windows of one policy are checked and charged together", async () => {
    await configure(
      gw,
      rlConfig(origin.url, [{ name: "rate-limiting", route: "multi", config: { second: 2, minute: 3, limit_by: "ip" } }], [
        "multi",
      ]),
    );
    const h = { "cf-connecting-ip": "198.51.100.21" };
    await awayFromMinuteEnd(5);
    while (Date.now() % 1000 > 100) await sleep(5); // three requests well inside one second
    const r = [];
    for (let i = 0; i < 3; i++) r.push(await request(gw.at("/multi"), { headers: h }));
    assert.deepEqual(
      r.map((x) => [x.status, x.headers["x-ratelimit-remaining-second"], x.headers["x-ratelimit-remaining-minute"]]),
      [
        [200, "1", "2"],
        [200, "0", "1"],
        [429, "0", "1"], // refused by the second window: the minute was not charged
      ],
    );
    assert.equal(r[2].headers["ratelimit-limit"], "2", "RateLimit-* follow the tightest window");
    assert.equal(r[2].headers["ratelimit-remaining"], "0");
    assert.equal(r[2].headers["retry-after"], "2", "to the next second, then half of it");
  });

  test("several policies on one request; custom status and message", async () => {
    await configure(
      gw,
      rlConfig(
        origin.url,
        [
          { name: "rate-limiting", route: "pol", config: { hour: 5, limit_by: "ip" } },
          {
            name: "rate-limiting",
            service: "origin",
            config: { day: 2, limit_by: "ip", error_code: 503, error_message: "Daily quota used up" },
          },
        ],
        ["pol"],
      ),
    );
    const h = { "cf-connecting-ip": "198.51.100.20" };
    const first = await request(gw.at("/pol"), { headers: h });
    assert.equal(first.status, 200);
    assert.equal(first.headers["x-ratelimit-limit-hour"], "5");
    assert.equal(first.headers["x-ratelimit-remaining-hour"], "4");
    assert.equal(first.headers["x-ratelimit-limit-day"], "2");
    assert.equal(first.headers["x-ratelimit-remaining-day"], "1");
    // The tightest window of all policies drives RateLimit-*.
    assert.equal(first.headers["ratelimit-limit"], "2");
    assert.equal(first.headers["ratelimit-remaining"], "1");
    assert.equal((await request(gw.at("/pol"), { headers: h })).status, 200);
    const third = await request(gw.at("/pol"), { headers: h });
    const p = assertRateLimited(third, { status: 503 });
    assert.equal(p.detail, "Daily quota used up");
    assert.ok(Number(third.headers["retry-after"]) > 3600, "a day window retries much later");
    assert.equal(third.headers["x-ratelimit-remaining-day"], "0");
  });

  test("hide_client_headers hides the counters but keeps Retry-After on 429", async () => {
    await configure(gw,
      rlConfig(
        origin.url,
        [{ name: "rate-limiting", route: "quiet", config: { hour: 1, limit_by: "ip", hide_client_headers: true } }],
        ["quiet"],
      ),
    );
    const h = { "cf-connecting-ip": "198.51.100.30" };
    const ok = await request(gw.at("/quiet"), { headers: h });
    assert.equal(ok.status, 200);
    const refused = await request(gw.at("/quiet"), { headers: h });
    assertRateLimited(refused);
    for (const r of [ok, refused]) {
      assert.ok(!Object.keys(r.headers).some((k) => k.includes("ratelimit")), JSON.stringify(r.headers));
    }
    assert.ok(Number(refused.headers["retry-after"]) >= 1);
  });

  test("token bucket: a burst, then the refill rate; cost charges several tokens", async () => {
    await configure(gw,
      rlConfig(
        origin.url,
        [
          {
            name: "rate-limiting",
            route: "bucket",
            config: { minute: 30, algorithm: "token_bucket", burst: 4, limit_by: "ip" },
          },
          {
            name: "rate-limiting",
            route: "costly",
            config: { minute: 10, algorithm: "token_bucket", cost: 4, limit_by: "ip" },
          },
        ],
        ["bucket", "costly"],
      ),
    );
    const h = { "cf-connecting-ip": "198.51.100.40" };
    const statuses = await Promise.all(Array.from({ length: 6 }, () => request(gw.at("/bucket"), { headers: h })));
    assert.equal(statuses.filter((r) => r.status === 200).length, 4, "burst of 4");
    const refused = statuses.find((r) => r.status === 429);
    // 30 a minute: a token every 2 s (slow enough that a loaded machine's delays do not add a token).
    assert.ok(["1", "2"].includes(refused.headers["retry-after"]), "next token within 2 s");
    await sleep(4500); // two tokens back, the third 1.5 s away
    const after = [];
    for (let i = 0; i < 3; i++) after.push((await request(gw.at("/bucket"), { headers: h })).status);
    assert.deepEqual(after, [200, 200, 429]);

    const costly = [];
    for (let i = 0; i < 3; i++) {
      const r = await request(gw.at("/costly"), { headers: h });
      costly.push([r.status, r.headers["ratelimit-remaining"]]);
    }
    assert.deepEqual(costly, [
      [200, "6"],
      [200, "2"],
      [429, "2"],
    ]);
  });
});

describe("rate limiting with the local policy", () => {
  let gw;
  let origin;
  before(async () => {
    origin = await startOrigin();
    // No Durable Object binding at all: a local policy does not need one.
    gw = await startGateway();
  });
  after(async () => {
    await gw?.dispose();
    await origin?.close();
  });

  test("counts in the isolate, per key", async () => {
    await configure(gw,
      rlConfig(origin.url, [{ name: "rate-limiting", config: { hour: 3, limit_by: "ip", policy: "local" } }]),
    );
    const get = async (ip) => (await request(gw.at("/r"), { headers: { "cf-connecting-ip": ip } })).status;
    const a = [];
    for (let i = 0; i < 4; i++) a.push(await get("192.0.2.1"));
    assert.deepEqual(a, [200, 200, 200, 429]);
    assert.equal(await get("192.0.2.2"), 200);
    assert.equal(gw.logs.filter((l) => l.json?.event === "ratelimit_unavailable").length, 0);
  });
});
