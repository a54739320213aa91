// The docs as a contract, second audit of docs/caching.md: what tests/cache*.test.mjs,
// tests/docs-contract-cache.test.mjs and tests/docs-contract-auth.test.mjs do not already assert, read as a
// Kong proxy-cache user or an RFC 9111 reader would: `Age` arithmetic and `Date` (the origin's `Age`, a
// `Date` in the past with `Expires`), directives in any case, the origin's no-cache and max-age=0 without
// cache_control, max-stale, the origin's stale-if-error, only-if-cached on an expired copy, a refresh
// replacing the stored copy, Pragma beside Cache-Control, Vary listing Accept-Encoding and a varied header,
// bad conditional headers. One gateway, one origin on 127.0.0.1 that counts its calls per path.
import { describe, test, before, after } from "node:test";
import assert from "node:assert/strict";
import { startGateway, startOrigin, request, sleep, problemOf } from "./support/harness.mjs";

// cache.put runs in waitUntil after the client got its response: give it a moment before the next request.
const settle = () => sleep(150);
const nowSecs = () => Math.floor(Date.now() / 1000);
const httpDate = (secs) => new Date(secs * 1000).toUTCString();

/** `Cache-Status: edgegate; a; b=c` as an object (`{a: true, b: "c"}`). */
function cacheStatus(res) {
  const value = res.headers["cache-status"];
  assert.ok(value, "a Cache-Status header");
  const [name, ...params] = value.split(/;\s*/);
  assert.equal(name, "edgegate");
  return Object.fromEntries(params.map((p) => p.split(/=(.*)/s)).map(([k, v]) => [k, v ?? true]));
}

describe("docs contract: edge cache, second audit (docs/caching.md, RFC 9111)", { timeout: 120_000 }, () => {
  let gw, origin;
  const calls = (p) => origin.requests.filter((r) => new URL(r.url, "http://o").pathname === p).length;
  const get = (p, headers = {}, opts = {}) => request(gw.at(p), { headers, ...opts });
  const xcs = (res) => res.headers["x-cache-status"];
  let broken = false;
  const pastDate = httpDate(nowSecs() - 100);

  before(async () => {
    origin = await startOrigin(async (req, res) => {
      const url = new URL(req.url, "http://o");
      const p = url.pathname;
      const n = calls(p);
      const send = (code, extra = {}) => {
        res.writeHead(code, { "content-type": "application/json", ...extra });
        res.end(req.method === "HEAD" ? "" : JSON.stringify({ path: p, n }));
      };
      const t = nowSecs();
      if (p.endsWith("/old-date")) return send(200, { date: pastDate, "last-modified": pastDate });
      if (p.endsWith("/age-30")) return send(200, { "cache-control": "max-age=100", age: "30" });
      if (p.endsWith("/age-60")) return send(200, { "cache-control": "max-age=60", age: "60" });
      if (p.endsWith("/expires-old-date")) return send(200, { date: httpDate(t - 60), expires: httpDate(t + 60) });
      if (p.endsWith("/expires-gone")) return send(200, { date: httpDate(t - 120), expires: httpDate(t - 60) });
      if (p.endsWith("/upper-no-store")) return send(200, { "cache-control": "No-Store" });
      if (p.endsWith("/upper-private")) return send(200, { "cache-control": "PUBLIC, PRIVATE" });
      if (p.endsWith("/two-lines")) {
        res.setHeader("cache-control", ["public, max-age=60", "no-store"]);
        return send(200);
      }
      if (p.endsWith("/no-cache")) return send(200, { "cache-control": "no-cache" });
      if (p.endsWith("/max-age-0")) return send(200, { "cache-control": "max-age=0" });
      if (p.endsWith("/one-second")) return send(broken ? 503 : 200, { "cache-control": "max-age=1" });
      if (p.endsWith("/own-sie")) {
        if (broken) return send(503);
        return send(200, { "cache-control": "max-age=1, stale-if-error=60" });
      }
      if (p.endsWith("/must")) return send(broken ? 503 : 200, { "cache-control": "max-age=600, must-revalidate" });
      if (p.endsWith("/vary-both")) return send(200, { vary: "Accept-Encoding, X-Tenant" });
      return send(200);
    });
    const route = (name, prefix) => ({ name, service: "origin", paths: [prefix], strip_path: false });
    gw = await startGateway({
      config: {
        format_version: 1,
        services: [{ name: "origin", url: origin.url }],
        routes: [route("c", "/c"), route("cc", "/cc"), route("vt", "/vt"), route("k", "/k"), route("ccs", "/ccs")],
        plugins: [
          { name: "proxy-cache", route: "c", config: {} },
          { name: "proxy-cache", route: "cc", config: { cache_control: true } },
          { name: "proxy-cache", route: "vt", config: { vary_headers: ["X-Tenant"] } },
          { name: "proxy-cache", route: "k", config: { cache_ttl: 1, stale_if_error: 60 } },
          { name: "proxy-cache", route: "ccs", config: { cache_control: true, stale_if_error: 60 } },
        ],
      },
    });
  });

  after(async () => {
    await gw?.dispose();
    await origin?.close();
  });

  test("a hit sends the origin's Date, as a 304 from the cache does; Age counts from storage, not from that Date", async () => {
    const miss = await get("/c/old-date");
    assert.equal(xcs(miss), "Miss");
    assert.equal(miss.headers.date, pastDate);
    await settle();
    const hit = await get("/c/old-date");
    assert.equal(xcs(hit), "Hit");
    assert.equal(hit.headers.date, pastDate, "the Date of the origin's answer, not of the hit");
    const age = Number(hit.headers.age);
    assert.ok(Number.isInteger(age) && age >= 0 && age <= 5, `Age ${hit.headers.age}, not ~100`);
    const nm = await get("/c/old-date", { "if-modified-since": pastDate });
    assert.equal(nm.status, 304);
    assert.equal(xcs(nm), "Hit");
    assert.equal(nm.headers.date, pastDate);
    assert.equal(calls("/c/old-date"), 1);
  });

  test("cache_control: max-age minus the origin's Age is the TTL; Age on hits includes it", async () => {
    const miss = await get("/cc/age-30");
    assert.equal(xcs(miss), "Miss");
    const ttl = Number(cacheStatus(miss).ttl);
    assert.ok(ttl >= 69 && ttl <= 70, `ttl ${ttl} = max-age 100 - Age 30`);
    await settle();
    const hit = await get("/cc/age-30");
    assert.equal(xcs(hit), "Hit");
    assert.ok(Number(hit.headers.age) >= 30 && Number(hit.headers.age) <= 35, `Age ${hit.headers.age}`);
    // An Age of at least max-age: already stale, not stored.
    const stale = await get("/cc/age-60");
    assert.equal(xcs(stale), "Bypass");
    assert.equal(cacheStatus(stale).detail, '"max-age"');
    await settle();
    assert.notEqual(xcs(await get("/cc/age-60")), "Hit");
    assert.equal(calls("/cc/age-60"), 2);
  });

  test("cache_control: Expires with a Date in the past is fresh until Expires, not Expires - Date from now", async () => {
    const miss = await get("/cc/expires-old-date");
    assert.equal(xcs(miss), "Miss");
    const ttl = Number(cacheStatus(miss).ttl);
    assert.ok(ttl >= 58 && ttl <= 60, `ttl ${ttl}: Expires is 60 s away (Expires - Date would be 120)`);
    const gone = await get("/cc/expires-gone");
    assert.equal(xcs(gone), "Bypass");
    assert.equal(cacheStatus(gone).detail, '"expires"');
  });

  test("the origin's no-store and private are obeyed in any case, and in a second Cache-Control line", async () => {
    for (const p of ["/c/upper-no-store", "/c/upper-private", "/c/two-lines"]) {
      const first = await get(p);
      assert.equal(xcs(first), "Bypass", p);
      assert.equal(cacheStatus(first).detail, p.includes("private") ? '"private"' : '"no-store"', p);
      await settle();
      assert.notEqual(xcs(await get(p)), "Hit", p);
      assert.equal(calls(p), 2, p);
    }
  });

  test("cache_control off (Kong): the origin's no-cache and max-age=0 are ignored, cache_ttl applies", async () => {
    for (const p of ["/c/no-cache", "/c/max-age-0"]) {
      const miss = await get(p);
      assert.equal(xcs(miss), "Miss", p);
      assert.equal(cacheStatus(miss).ttl, "300", p);
      await settle();
      const hit = await get(p);
      assert.equal(xcs(hit), "Hit", p);
      assert.equal(hit.headers["cache-control"], p.includes("no-cache") ? "no-cache" : "max-age=0", "the origin's Cache-Control is sent");
      assert.equal(calls(p), 1, p);
    }
  });

  test("cache_control off: the origin's max-age and must-revalidate are ignored; cache_ttl and stale_if_error apply", async () => {
    const miss = await get("/k/must");
    assert.equal(cacheStatus(miss).ttl, "1");
    await settle();
    await sleep(1200);
    broken = true;
    try {
      const stale = await get("/k/must");
      assert.equal(stale.status, 200);
      assert.equal(xcs(stale), "Stale");
    } finally {
      broken = false;
    }
    const refreshed = await get("/k/must");
    assert.equal(xcs(refreshed), "Refresh");
  });

  test("cache_control: max-stale is ignored, an expired copy is refreshed; only-if-cached refuses it (504)", async () => {
    const p = "/ccs/one-second";
    assert.equal(xcs(await get(p)), "Miss");
    await settle();
    await sleep(1200);
    const oic = await get(p, { "cache-control": "only-if-cached" });
    assert.equal(oic.status, 504);
    assert.equal(problemOf(oic).code, "not_cached");
    assert.equal(calls(p), 1, "only-if-cached does not ask the origin");
    const r = await get(p, { "cache-control": "max-stale=600" });
    assert.equal(r.status, 200);
    assert.equal(xcs(r), "Refresh");
    const cs = cacheStatus(r);
    assert.equal(cs.fwd, "stale");
    assert.equal(cs.stored, true);
    assert.equal(calls(p), 2);
    await settle();
    const hit = await get(p);
    assert.equal(xcs(hit), "Hit");
    assert.equal(hit.json().n, 2, "the refreshed copy replaced the old one");
  });

  test("without a stale window an expired copy is gone: the next request is a Miss (fwd=uri-miss)", async () => {
    const p = "/cc/one-second";
    assert.equal(xcs(await get(p)), "Miss");
    await settle();
    await sleep(1200);
    const again = await get(p);
    assert.equal(xcs(again), "Miss");
    assert.equal(cacheStatus(again).fwd, "uri-miss");
    assert.equal(calls(p), 2);
  });

  test("cache_control: the origin's stale-if-error=N gives a stale window without the plugin's", async () => {
    assert.equal(xcs(await get("/cc/own-sie")), "Miss");
    await settle();
    await sleep(1200);
    broken = true;
    try {
      const stale = await get("/cc/own-sie");
      assert.equal(stale.status, 200);
      assert.equal(xcs(stale), "Stale");
      assert.equal(cacheStatus(stale).detail, '"stale-if-error"');
      assert.equal(stale.json().n, 1, "the first answer");
    } finally {
      broken = false;
    }
  });

  test("cache_control: a client no-cache refresh replaces the stored copy for everyone", async () => {
    const p = "/cc/replace";
    assert.equal(xcs(await get(p)), "Miss");
    await settle();
    const r = await get(p, { "cache-control": "no-cache" });
    assert.equal(xcs(r), "Refresh");
    assert.equal(cacheStatus(r).fwd, "request");
    assert.equal(r.json().n, 2);
    await settle();
    const hit = await get(p);
    assert.equal(xcs(hit), "Hit");
    assert.equal(hit.json().n, 2);
    assert.equal(calls(p), 2);
  });

  test("Pragma: no-cache counts only without Cache-Control (RFC 9111 5.4)", async () => {
    const p = "/cc/pragma";
    assert.equal(xcs(await get(p)), "Miss");
    await settle();
    assert.equal(xcs(await get(p, { pragma: "no-cache", "cache-control": "max-age=600" })), "Hit");
    assert.equal(xcs(await get(p, { pragma: "no-cache" })), "Refresh");
    assert.equal(calls(p), 2);
    // Without cache_control, Pragma is ignored like the client's Cache-Control (Kong).
    assert.equal(xcs(await get("/c/pragma")), "Miss");
    await settle();
    assert.equal(xcs(await get("/c/pragma", { pragma: "no-cache" })), "Hit");
  });

  test("Vary: Accept-Encoding, X-Tenant with X-Tenant in vary_headers is stored per tenant", async () => {
    const as = (t) => get("/vt/vary-both", { "x-tenant": t });
    assert.equal(xcs(await as("a")), "Miss");
    await settle();
    assert.equal(xcs(await as("a")), "Hit");
    assert.equal(xcs(await as("b")), "Miss");
  });

  test("conditions that cannot match: a bad If-Modified-Since date, If-None-Match without a stored ETag", async () => {
    const p = "/c/no-validators";
    const full = await get(p);
    await settle();
    for (const h of [{ "if-modified-since": "yesterday" }, { "if-none-match": '"x"' }, { "if-modified-since": "Sun, 06 Nov 2094 08:49:37 GMT" }]) {
      const r = await get(p, h);
      assert.equal(r.status, 200, JSON.stringify(h));
      assert.equal(xcs(r), "Hit");
      assert.equal(r.text, full.text);
    }
  });
});
