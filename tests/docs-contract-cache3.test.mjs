// The docs as a contract, third audit of docs/caching.md: what tests/cache*.test.mjs and the first two audits
// (tests/docs-contract-cache.test.mjs, tests/docs-contract-cache2.test.mjs) do not assert, read as an RFC 9111 /
// RFC 9110 reader or a Kong proxy-cache user would: how Cache-Control values are read (quoted, malformed, too
// large, repeated with another value), s-maxage against max-age in either order, max-age against Expires,
// field-named no-cache and private, an Age list or an invalid Age, no-store with only-if-cached,
// proxy-revalidate, If-None-Match entity-tags with commas and weak comparison, If-Modified-Since without
// Last-Modified, If-Match and If-Unmodified-Since left to the origin, ignore_uri_case on the path only, and
// which misses do not wait for the cache_lock (HEAD, a client asking for a fresh copy) or take an old lock over
// (cache_lock_age). Every statement runs on both request paths (CONFIG_RELOAD_SECONDS 0: asynchronous; 600
// after a warm-up request: synchronous).
import { describe, test, before, after } from "node:test";
import assert from "node:assert/strict";
import { startGateway, startOrigin, request, sleep, waitFor, problemOf } from "./support/harness.mjs";

// cache.put runs in waitUntil after the client got its response: give it a moment before the next request.
const settle = () => sleep(200);
const LAST_MODIFIED = "Sun, 06 Nov 1994 08:49:37 GMT";

/** `Cache-Status: edgegate; a; b=c` as an object (`{a: true, b: "c"}`). */
function cacheStatus(res) {
  const value = res.headers["cache-status"];
  assert.ok(value, "a Cache-Status header");
  const [name, ...params] = value.split(/;\s*/);
  assert.equal(name, "edgegate");
  return Object.fromEntries(params.map((p) => p.split(/=(.*)/s)).map(([k, v]) => [k, v ?? true]));
}

// Response headers by the second path segment (`/cc/<segment>/...`).
const ORIGIN_HEADERS = {
  quoted: { "cache-control": 'MAX-AGE="30"' },
  plus: { "cache-control": "max-age=+60" },
  huge: { "cache-control": "max-age=99999999999999999999" },
  dup: { "cache-control": "max-age=0, max-age=600" },
  "dup-lines": { "cache-control": ["max-age=600", "max-age=60"] },
  same: { "cache-control": ["max-age=60", "Max-Age=60"] },
  smax: { "cache-control": "max-age=0, s-maxage=60" },
  smax0: { "cache-control": "s-maxage=0, max-age=60" },
  "exp-maxage": { "cache-control": "max-age=60", expires: "0" },
  "exp-bad": { expires: "tomorrow" },
  ncfield: { "cache-control": 'no-cache="Set-Cookie", max-age=60' },
  pfield: { "cache-control": 'private="X-A, X-B", max-age=60' },
  "age-list": { "cache-control": "max-age=100", age: "30, 90" },
  "age-bad": { "cache-control": "max-age=100", age: "soon" },
  pr: { "cache-control": "max-age=1, proxy-revalidate" },
  plain1: { "cache-control": "max-age=1" },
  etag: { etag: '"a,b"', "last-modified": LAST_MODIFIED },
  weak: { etag: 'W/"v"' },
  "ext-quoted": { "cache-control": 'community="x, no-store", max-age=60' },
};

for (const reload of ["0", "600"]) describe(`docs contract: edge cache, third audit (CONFIG_RELOAD_SECONDS ${reload})`, { timeout: 180_000 }, () => {
  let gw, origin;
  const broken = new Set(); // segments the origin answers 503 for
  const gates = new Map(); // path -> { open, promise }: requests with `x-hold` wait for the gate
  const gate = (p) => {
    if (!gates.has(p)) {
      let open;
      const promise = new Promise((r) => (open = r));
      gates.set(p, { open, promise });
    }
    return gates.get(p);
  };
  const u = (p) => `${p}/r${reload}`;
  const calls = (p) => origin.requests.filter((r) => new URL(r.url, "http://o").pathname === p).length;
  const get = (p, headers = {}, opts = {}) => request(gw.at(p), { headers, timeoutMs: 60_000, ...opts });
  const xcs = (res) => res.headers["x-cache-status"];

  before(async () => {
    origin = await startOrigin(async (req, res) => {
      const p = new URL(req.url, "http://o").pathname;
      const seg = p.split("/")[2];
      const n = calls(p);
      if (req.headers["x-hold"]) await gate(p).promise;
      if (req.headers["if-match"] && req.headers["if-match"] !== ORIGIN_HEADERS[seg]?.etag) {
        res.writeHead(412, { "content-type": "application/json" });
        return res.end("{}");
      }
      if (broken.has(seg)) {
        res.writeHead(503, { "content-type": "application/json" });
        return res.end("{}");
      }
      res.writeHead(200, { "content-type": "application/json", ...(ORIGIN_HEADERS[seg] ?? {}) });
      res.end(req.method === "HEAD" ? "" : JSON.stringify({ path: p, n }));
    });
    const route = (name) => ({ name, service: "origin", paths: [`/${name}`], strip_path: false });
    gw = await startGateway({
      reload,
      config: {
        format_version: 1,
        services: [{ name: "origin", url: origin.url }],
        routes: ["c", "cc", "ccs", "ci", "lw", "la", "warm"].map(route),
        plugins: [
          { name: "proxy-cache", route: "c", config: {} },
          { name: "proxy-cache", route: "cc", config: { cache_control: true } },
          { name: "proxy-cache", route: "ccs", config: { cache_control: true, stale_if_error: 60 } },
          { name: "proxy-cache", route: "ci", config: { ignore_uri_case: true, show_cache_key: true } },
          { name: "proxy-cache", route: "lw", config: { cache_control: true, cache_lock_timeout: 60, cache_lock_age: 60 } },
          { name: "proxy-cache", route: "la", config: { cache_lock_timeout: 60, cache_lock_age: 0.3 } },
        ],
      },
    });
    // Loads the version: with 600, every later request is served on the synchronous path.
    assert.equal((await get("/warm/up")).status, 200);
  });

  after(async () => {
    for (const g of gates.values()) g.open();
    await gw?.dispose();
    await origin?.close();
  });

  /** Two requests: the first must be stored with `ttl`, the second a Hit. */
  async function assertStored(p, ttl, what = p) {
    const miss = await get(p);
    assert.equal(xcs(miss), "Miss", what);
    const cs = cacheStatus(miss);
    assert.equal(cs.stored, true, what);
    if (ttl !== undefined) assert.equal(cs.ttl, String(ttl), what);
    await settle();
    const hit = await get(p);
    assert.equal(xcs(hit), "Hit", what);
    assert.equal(calls(p), 1, what);
    return hit;
  }

  /** Two requests, both to the origin: the first says why it was not stored. */
  async function assertNotStored(p, detail, what = p) {
    const first = await get(p);
    assert.equal(first.status, 200, what);
    assert.equal(xcs(first), "Bypass", what);
    assert.equal(cacheStatus(first).detail, `"${detail}"`, what);
    await settle();
    assert.notEqual(xcs(await get(p)), "Hit", what);
    assert.equal(calls(p), 2, what);
  }

  test("directive values: quoted is the number, a sign makes max-age invalid (stale), too large is 2^31", async () => {
    await assertStored(u("/cc/quoted"), 30, 'MAX-AGE="30"');
    await assertNotStored(u("/cc/plus"), "max-age", "max-age=+60");
    await assertStored(u("/cc/huge"), 2147483648, "max-age=99999999999999999999");
    // An unknown directive is ignored, and the comma inside its quoted value does not start a directive.
    await assertStored(u("/c/ext-quoted"), 300, 'community="x, no-store"');
    await assertStored(u("/cc/ext-quoted"), 60, 'community="x, no-store", max-age=60');
  });

  test("a directive repeated with another value counts as max-age=0; with the same value it is that value", async () => {
    await assertNotStored(u("/cc/dup"), "max-age", "max-age=0, max-age=600");
    await assertNotStored(u("/cc/dup-lines"), "max-age", "two Cache-Control lines");
    await assertStored(u("/cc/same"), 60, "max-age=60 twice");
    // The client's max-age repeated with another value asks for a fresh copy; a malformed one too.
    const p = u("/cc/plain");
    await assertStored(p);
    assert.equal(xcs(await get(p, { "cache-control": "max-age=600, max-age=600" })), "Hit");
    for (const cc of ["max-age=600, max-age=300", "max-age=abc"]) {
      const r = await get(p, { "cache-control": cc });
      assert.equal(xcs(r), "Refresh", cc);
      assert.equal(cacheStatus(r).fwd, "request", cc);
    }
  });

  test("s-maxage wins over max-age in either order; max-age wins over Expires; an Expires that is not a date is stale", async () => {
    await assertStored(u("/cc/smax"), 60, "max-age=0, s-maxage=60");
    await assertNotStored(u("/cc/smax0"), "max-age", "s-maxage=0, max-age=60");
    await assertStored(u("/cc/exp-maxage"), 60, "max-age=60 with Expires: 0");
    await assertNotStored(u("/cc/exp-bad"), "expires", "Expires: tomorrow");
  });

  test("no-cache with field names counts as no-cache (stored without cache_control); private with field names is never stored", async () => {
    await assertNotStored(u("/cc/ncfield"), "no-cache", "cache_control on");
    await assertStored(u("/c/ncfield"), 300, "cache_control off: Kong ignores no-cache");
    await assertNotStored(u("/c/pfield"), "private", 'private="X-A, X-B"');
    await assertNotStored(u("/cc/pfield"), "private", 'private="X-A, X-B" (cache_control)');
  });

  test("Age: the first member of a list counts, an invalid Age is ignored", async () => {
    const list = await assertStored(u("/cc/age-list"), 70, "max-age=100, Age: 30, 90");
    const a = Number(list.headers.age);
    assert.ok(a >= 30 && a <= 40, `Age ${list.headers.age}: 30 plus the seconds since stored`);
    const bad = await assertStored(u("/cc/age-bad"), 100, "Age: soon");
    const b = Number(bad.headers.age);
    assert.ok(Number.isInteger(b) && b >= 0 && b <= 10, `Age ${bad.headers.age}`);
  });

  test("no-store with only-if-cached: the origin is never asked; a stored copy answers, else 504 not_cached", async () => {
    const p = u("/cc/nsoic");
    const none = await get(p, { "cache-control": "no-store, only-if-cached" });
    assert.equal(none.status, 504);
    assert.equal(problemOf(none).code, "not_cached");
    assert.match(none.headers["content-type"], /^application\/problem\+json/);
    assert.equal(xcs(none), "Miss");
    assert.equal(calls(p), 0, "the origin is not asked");
    const stored = await get(p);
    assert.equal(xcs(stored), "Miss");
    await settle();
    const hit = await get(p, { "cache-control": "No-Store, Only-If-Cached" });
    assert.equal(hit.status, 200);
    assert.equal(xcs(hit), "Hit");
    assert.equal(hit.text, stored.text);
    assert.equal(calls(p), 1);
    const ns = await get(p, { "cache-control": "no-store" });
    assert.equal(xcs(ns), "Bypass");
    assert.equal(cacheStatus(ns).detail, '"request-no-store"');
    assert.equal(calls(p), 2);
  });

  test("proxy-revalidate, like must-revalidate, takes the stale_if_error window away from the response", async () => {
    const pr = u("/ccs/pr");
    const plain = u("/ccs/plain1");
    assert.equal(xcs(await get(pr)), "Miss");
    assert.equal(xcs(await get(plain)), "Miss");
    await settle();
    await sleep(1300);
    broken.add("pr");
    broken.add("plain1");
    try {
      const r = await get(pr);
      assert.equal(r.status, 503, "no stale copy for a proxy-revalidate response");
      assert.notEqual(xcs(r), "Stale");
      const s = await get(plain);
      assert.equal(s.status, 200);
      assert.equal(xcs(s), "Stale");
    } finally {
      broken.delete("pr");
      broken.delete("plain1");
    }
  });

  test("If-None-Match: a comma inside an entity-tag belongs to it, weak comparison, lists; on a miss too", async () => {
    const p = u("/c/etag");
    const full = await get(p);
    assert.equal(full.status, 200);
    await settle();
    for (const inm of ['"a,b"', 'W/"a,b"', '"zz", "a,b"', '"x",W/"a,b"']) {
      const r = await get(p, { "if-none-match": inm });
      assert.equal(r.status, 304, inm);
      assert.equal(r.body.length, 0, inm);
      assert.equal(r.headers.etag, '"a,b"', inm);
      assert.equal(xcs(r), "Hit", inm);
    }
    for (const inm of ['"a"', '"b"', '"a", "b"']) {
      const r = await get(p, { "if-none-match": inm });
      assert.equal(r.status, 200, inm);
      assert.equal(r.text, full.text, inm);
    }
    const head = await get(p, { "if-none-match": '"a,b"' }, { method: "HEAD" });
    assert.equal(head.status, 304);
    assert.equal(calls(p), 1);
    // A stored weak ETag matches the strong form of the same tag.
    const w = u("/c/weak");
    await assertStored(w);
    assert.equal((await get(w, { "if-none-match": '"v"' })).status, 304);
    // A conditional miss with such a tag: the whole answer stored, the client gets 304.
    const cold = u("/c/etag/cold");
    const nm = await get(cold, { "if-none-match": '"other", "a,b"' });
    assert.equal(nm.status, 304);
    assert.equal(xcs(nm), "Miss");
    assert.equal(cacheStatus(nm).stored, true);
  });

  test("If-Modified-Since is ignored on a copy without Last-Modified (its Date is not used) and when it is not one date", async () => {
    const p = u("/c/no-lm");
    const full = await get(p);
    assert.ok(full.headers.date, "the origin sends a Date");
    await settle();
    const tomorrow = new Date(Date.now() + 86_400_000).toUTCString();
    const r = await get(p, { "if-modified-since": tomorrow });
    assert.equal(r.status, 200);
    assert.equal(xcs(r), "Hit");
    assert.equal(r.text, full.text);
    const q = u("/c/etag");
    await get(q);
    await settle();
    assert.equal((await get(q, { "if-modified-since": LAST_MODIFIED })).status, 304, "one date: the condition applies");
    const two = await get(q, { "if-modified-since": `${LAST_MODIFIED}, ${tomorrow}` });
    assert.equal(two.status, 200, "two dates: ignored");
  });

  test("If-Match and If-Unmodified-Since are not evaluated by the cache: a hit is served, a miss sends them on", async () => {
    const p = u("/c/etag/im");
    await assertStored(p);
    for (const h of [{ "if-match": '"nope"' }, { "if-unmodified-since": "Sat, 05 Nov 1994 08:49:37 GMT" }]) {
      const r = await get(p, h);
      assert.equal(r.status, 200, JSON.stringify(h));
      assert.equal(xcs(r), "Hit", JSON.stringify(h));
    }
    const q = u("/c/etag/im-miss");
    const miss = await get(q, { "if-match": '"nope"' });
    assert.equal(miss.status, 412);
    assert.equal(xcs(miss), "Bypass");
    assert.equal(cacheStatus(miss).detail, '"status"');
    assert.equal(origin.requests.filter((r) => r.url === q).at(-1).headers["if-match"], '"nope"');
  });

  test("ignore_uri_case: the path's case does not split the cache, the query's does (X-Cache-Key shows it)", async () => {
    const a = await get(u("/ci/Products") + "?Q=1");
    assert.equal(xcs(a), "Miss");
    const key = a.headers["x-cache-key"];
    assert.match(key, /^[0-9a-f]{64}$/);
    assert.equal(cacheStatus(a).key, `"${key}"`);
    await settle();
    const b = await get(u("/ci/pRODUCTS") + "?Q=1");
    assert.equal(xcs(b), "Hit");
    assert.equal(b.headers["x-cache-key"], key);
    const h = await get(u("/ci/PRODUCTS") + "?Q=1", {}, { method: "HEAD" });
    assert.equal(xcs(h), "Hit");
    assert.equal(h.headers["x-cache-key"], key, "HEAD counts as GET");
    const c = await get(u("/ci/products") + "?q=1");
    assert.equal(xcs(c), "Miss");
    assert.notEqual(c.headers["x-cache-key"], key);
  });

  test("cache_lock: a HEAD miss and a client asking for a fresh copy do not wait for a miss under way; a GET does", async () => {
    const p = u("/lw/x");
    const first = get(p, { "x-hold": "1" });
    await waitFor(() => calls(p) >= 1, { timeoutMs: 10_000, what: "the first miss at the origin" });
    let waiterDone = false;
    const waiter = get(p).then((r) => ((waiterDone = true), r));
    const head = await get(p, {}, { method: "HEAD" });
    assert.equal(head.status, 200);
    assert.equal(xcs(head), "Miss");
    assert.equal(cacheStatus(head).detail, '"head"');
    const fresh = await get(p, { "cache-control": "no-cache" });
    assert.equal(fresh.status, 200);
    assert.equal(xcs(fresh), "Refresh");
    assert.equal(calls(p), 3, "the first miss, the HEAD and the refresh; the GET waits");
    assert.equal(waiterDone, false, "the GET waits for the first miss");
    gate(p).open();
    assert.equal(xcs(await first), "Miss");
    const w = await waiter;
    assert.equal(xcs(w), "Hit");
    assert.equal(cacheStatus(w).collapsed, true);
    assert.equal(calls(p), 3);
  });

  test("cache_lock_age: a miss under way longer than that no longer holds the next one, which fetches and stores", async () => {
    const p = u("/la/x");
    const first = get(p, { "x-hold": "1" });
    await waitFor(() => calls(p) >= 1, { timeoutMs: 10_000, what: "the first miss at the origin" });
    await sleep(600); // cache_lock_age 0.3 s
    const next = await get(p);
    assert.equal(next.status, 200);
    assert.equal(xcs(next), "Miss");
    assert.equal(cacheStatus(next).stored, true);
    assert.equal(calls(p), 2);
    gate(p).open();
    assert.equal((await first).status, 200);
  });
});
