// The docs as a contract, part 3: docs/caching.md read the way a user of Kong's proxy-cache, or a reader of
// RFC 9111 (HTTP caching), RFC 9110 section 13 (conditional requests) and RFC 9211 (Cache-Status), would test
// it, on what tests/cache*.test.mjs and tests/docs-contract-auth.test.mjs do not already assert: Age that
// grows, the client's Cache-Control (max-age, min-fresh, only-if-cached, no-store), 304s from the cache, HEAD,
// Vary, Expires and must-revalidate, credentials, ranges against a stored copy, invalidation by unsafe
// methods, and the syntax of every Cache-Status the gateway sends. One gateway, one origin on 127.0.0.1 that
// counts its calls per path.
import { describe, test, before, after } from "node:test";
import assert from "node:assert/strict";
import { startGateway, startOrigin, request, sleep, problemOf } from "./support/harness.mjs";

// cache.put runs in waitUntil after the client got its response: give it a moment before the next request.
const settle = () => sleep(150);

const ETAG = '"v1-abc"';
const LAST_MODIFIED = "Sun, 06 Nov 1994 08:49:37 GMT";

// RFC 9211: `Cache-Status: edgegate; param; param=value ...`, with the parameters the RFC defines and the
// value types it gives them (RFC 8941 tokens, integers, strings and booleans).
const FWD = ["bypass", "method", "uri-miss", "vary-miss", "miss", "request", "stale", "partial"];
function assertCacheStatus(value, what = "") {
  assert.ok(value, `${what}: a Cache-Status header`);
  const [name, ...params] = value.split(/;\s*/);
  assert.equal(name, "edgegate", `${what}: ${value}`);
  const seen = new Set();
  for (const p of params) {
    const [k, v] = p.split(/=(.*)/s);
    assert.ok(!seen.has(k), `${what}: ${k} twice in ${value}`);
    seen.add(k);
    switch (k) {
      case "hit":
      case "stored":
      case "collapsed":
        assert.ok(v === undefined || v === "?0" || v === "?1", `${what}: ${p} is a boolean`);
        break;
      case "fwd":
        assert.ok(FWD.includes(v), `${what}: fwd=${v} is one of RFC 9211's`);
        break;
      case "fwd-status":
        assert.match(v, /^[1-5]\d\d$/, `${what}: ${p}`);
        break;
      case "ttl":
        assert.match(v, /^-?\d+$/, `${what}: ${p}`);
        break;
      case "key":
      case "detail":
        assert.match(v, /^"([\x20-\x21\x23-\x5b\x5d-\x7e]|\\["\\])*"$|^[A-Za-z*][\w:/!#$%&'*+.^`|~-]*$/, `${what}: ${p}`);
        break;
      default:
        assert.fail(`${what}: ${k} is not an RFC 9211 parameter (${value})`);
    }
  }
  assert.ok(!(seen.has("hit") && seen.has("fwd")), `${what}: hit and fwd together: ${value}`);
  if (seen.has("stored") || seen.has("fwd-status")) assert.ok(seen.has("fwd"), `${what}: stored/fwd-status without fwd`);
  return Object.fromEntries(params.map((p) => p.split(/=(.*)/s)).map(([k, v]) => [k, v ?? true]));
}

describe("docs contract: edge cache (docs/caching.md, Kong proxy-cache, RFC 9111 / 9110 / 9211)", { timeout: 120_000 }, () => {
  let gw, origin;
  const calls = (p) => origin.requests.filter((r) => new URL(r.url, "http://o").pathname === p).length;
  const lastTo = (p) => origin.requests.filter((r) => new URL(r.url, "http://o").pathname === p).at(-1);
  const get = (p, headers = {}, opts = {}) => request(gw.at(p), { headers, ...opts });
  const xcs = (res) => res.headers["x-cache-status"];
  /** X-Cache-Status and a well-formed Cache-Status. */
  const status = (res, what) => {
    const cs = assertCacheStatus(res.headers["cache-status"], what);
    return { x: xcs(res), cs };
  };
  let broken = false;

  before(async () => {
    origin = await startOrigin(async (req, res) => {
      const url = new URL(req.url, "http://o");
      const p = url.pathname;
      const n = calls(p);
      const send = (code, extra = {}, type = "application/json") => {
        const body = req.method === "HEAD" ? "" : JSON.stringify({ path: p, n, method: req.method, tenant: req.headers["x-tenant"] ?? null });
        res.writeHead(code, { "content-type": type, ...extra });
        res.end(body);
      };
      if (p.startsWith("/cc/validators") || p.startsWith("/c/validators")) {
        return send(200, { etag: ETAG, "last-modified": LAST_MODIFIED });
      }
      if (p.startsWith("/c/missing")) return send(404, { etag: ETAG });
      if (p.startsWith("/c/html")) return send(200, {}, "text/html; charset=utf-8");
      if (p.startsWith("/c/text")) return send(200, {}, "text/plain; charset=utf-8");
      if (p.startsWith("/vary/tenant")) return send(200, { vary: "X-Tenant" });
      if (p.startsWith("/vary/lang")) return send(200, { vary: "Accept-Language" });
      if (p.startsWith("/cc/expires-past")) return send(200, { expires: "0" });
      if (p.startsWith("/cc/expires")) {
        const date = new Date(Math.floor(Date.now() / 1000) * 1000);
        return send(200, { date: date.toUTCString(), expires: new Date(date.getTime() + 120_000).toUTCString() });
      }
      if (p.startsWith("/cc/no-cache")) return send(200, { "cache-control": "no-cache" });
      if (p.startsWith("/sie/")) {
        if (broken) return send(503);
        const cc = p.includes("must") ? "max-age=1, must-revalidate" : p.includes("smax") ? "s-maxage=1" : "max-age=1";
        return send(200, { "cache-control": cc });
      }
      if (p.startsWith("/c/range")) {
        if (req.headers.range) return send(206, { "content-range": "bytes 0-1/10" });
        return send(200);
      }
      if (req.method === "DELETE" && p.startsWith("/c/gone")) return send(404);
      return send(200);
    });
    const route = (name, prefix) => ({ name, service: "origin", paths: [prefix], strip_path: false });
    gw = await startGateway({
      config: {
        format_version: 1,
        services: [{ name: "origin", url: origin.url }],
        routes: [route("c", "/c"), route("cc", "/cc"), route("vary", "/vary"), route("sie", "/sie"), route("kong", "/kong")],
        plugins: [
          { name: "proxy-cache", route: "c", config: {} },
          { name: "proxy-cache", route: "cc", config: { cache_control: true } },
          { name: "proxy-cache", route: "vary", config: { vary_headers: ["X-Tenant"] } },
          { name: "proxy-cache", route: "sie", config: { cache_control: true, stale_if_error: 60 } },
          // A configuration copied from Kong's documentation, with its required `strategy`.
          { name: "proxy-cache", route: "kong", config: { strategy: "memory", request_method: ["GET", "HEAD"], response_code: [200], content_type: ["application/json"], cache_ttl: 30 } },
        ],
      },
    });
  });

  after(async () => {
    await gw?.dispose();
    await origin?.close();
  });

  test("Age is sent on hits and grows with the copy's age; ttl in Cache-Status counts down", async () => {
    const miss = await get("/c/age");
    assert.equal(xcs(miss), "Miss");
    assert.equal(status(miss, "miss").cs.ttl, "300", "Kong's default TTL is 300 s");
    await settle();
    const first = await get("/c/age");
    assert.equal(xcs(first), "Hit");
    const a1 = Number(first.headers.age);
    assert.ok(Number.isInteger(a1) && a1 >= 0 && a1 <= 1, `Age ${first.headers.age}`);
    await sleep(2100);
    const later = await get("/c/age");
    const { x, cs } = status(later, "later hit");
    assert.equal(x, "Hit");
    assert.ok(Number(later.headers.age) >= a1 + 2, `Age ${later.headers.age} after ${a1} and 2 s`);
    assert.ok(Number(cs.ttl) <= 298 && Number(cs.ttl) >= 290, `ttl ${cs.ttl}`);
    assert.equal(cs.hit, true);
    assert.equal(later.text, miss.text);
    assert.equal(calls("/c/age"), 1);
  });

  test("a Kong configuration (strategy: memory) loads and caches", async () => {
    const miss = await get("/kong/x");
    assert.equal(miss.status, 200);
    assert.equal(status(miss, "kong miss").cs.ttl, "30");
    assert.equal(xcs(miss), "Miss");
    await settle();
    assert.equal(xcs(await get("/kong/x")), "Hit");
  });

  test("Kong's default content types: text/plain is stored, text/html is not (detail=content-type)", async () => {
    assert.equal(xcs(await get("/c/text")), "Miss");
    await settle();
    assert.equal(xcs(await get("/c/text")), "Hit");
    const html = await get("/c/html");
    assert.equal(status(html, "html").x, "Bypass");
    assert.equal(status(html).cs.detail, '"content-type"');
    await settle();
    assert.equal(xcs(await get("/c/html")), "Bypass");
    assert.equal(calls("/c/html"), 2);
  });

  test("request max-age and min-fresh (cache_control): a copy too old or expiring too soon is refreshed", async () => {
    assert.equal(xcs(await get("/cc/age-limit")), "Miss");
    await settle();
    await sleep(2100);
    const ok = await get("/cc/age-limit", { "cache-control": "max-age=100" });
    assert.equal(xcs(ok), "Hit");
    const tooOld = await get("/cc/age-limit", { "cache-control": "max-age=1" });
    const s = status(tooOld, "max-age=1");
    assert.equal(s.x, "Refresh");
    assert.equal(s.cs.fwd, "request");
    assert.equal(s.cs.stored, true);
    assert.equal(calls("/cc/age-limit"), 2);
    await settle();
    const fresh = await get("/cc/age-limit", { "cache-control": "max-age=1" });
    assert.equal(xcs(fresh), "Hit", "the refreshed copy is young enough");
    assert.equal(xcs(await get("/cc/age-limit", { "cache-control": "min-fresh=100" })), "Hit");
    const soon = await get("/cc/age-limit", { "cache-control": "min-fresh=1000" });
    assert.equal(status(soon, "min-fresh").x, "Refresh");
    assert.equal(calls("/cc/age-limit"), 3);
  });

  test("only-if-cached (cache_control): a stored copy, else 504 without asking the origin (RFC 9111 5.2.1.7)", async () => {
    const none = await get("/cc/oic", { "cache-control": "only-if-cached" });
    assert.equal(none.status, 504);
    assert.equal(problemOf(none).code, "not_cached");
    assert.match(none.headers["content-type"], /^application\/problem\+json/);
    assert.equal(status(none, "only-if-cached").x, "Miss");
    assert.equal(status(none).cs.detail, '"only-if-cached"');
    assert.equal(calls("/cc/oic"), 0, "the origin is not asked");
    assert.equal(xcs(await get("/cc/oic")), "Miss");
    await settle();
    const hit = await get("/cc/oic", { "cache-control": "only-if-cached" });
    assert.equal(hit.status, 200);
    assert.equal(xcs(hit), "Hit");
    const combined = await get("/cc/oic", { "cache-control": "only-if-cached, max-age=0" });
    assert.equal(combined.status, 504, "max-age=0 refuses the stored copy, only-if-cached the origin");
    assert.equal(calls("/cc/oic"), 1);
    // Without cache_control the client's Cache-Control is ignored, as in Kong: forwarded and stored.
    const ignored = await get("/c/oic", { "cache-control": "only-if-cached" });
    assert.equal(ignored.status, 200);
    assert.equal(xcs(ignored), "Miss");
  });

  test("the client's no-store: not answered from the cache and nothing stored (RFC 9111 5.2.1.5)", async () => {
    const ns = await get("/cc/ns", { "cache-control": "no-store" });
    assert.equal(status(ns, "no-store").x, "Bypass");
    await settle();
    assert.equal(xcs(await get("/cc/ns")), "Miss", "the no-store request stored nothing");
    // With cache_control off the client's directives are ignored (Kong): no-cache is a plain hit.
    assert.equal(xcs(await get("/c/nc")), "Miss");
    await settle();
    assert.equal(xcs(await get("/c/nc", { "cache-control": "no-cache" })), "Hit");
  });

  test("If-None-Match / If-Modified-Since on a stored copy: 304 with ETag and Last-Modified, no body", async () => {
    const p = "/c/validators/a";
    const full = await get(p);
    assert.equal(full.status, 200);
    await settle();
    for (const h of [
      { "if-none-match": ETAG },
      { "if-none-match": `"other", W/${ETAG}` },
      { "if-none-match": "*" },
      { "if-modified-since": LAST_MODIFIED },
      { "if-modified-since": "Mon, 07 Nov 1994 08:49:37 GMT" },
    ]) {
      const nm = await get(p, h);
      const what = JSON.stringify(h);
      assert.equal(nm.status, 304, what);
      assert.equal(nm.body.length, 0, what);
      assert.equal(nm.headers.etag, ETAG, what);
      assert.equal(nm.headers["last-modified"], LAST_MODIFIED, what);
      assert.equal(status(nm, what).x, "Hit");
      assert.match(nm.headers.age ?? "", /^\d+$/, what);
      assert.equal(nm.headers["content-type"], undefined, what);
    }
    for (const h of [{ "if-none-match": '"v2"' }, { "if-modified-since": "Sat, 05 Nov 1994 08:49:37 GMT" }, { "if-none-match": '"v2"', "if-modified-since": LAST_MODIFIED }]) {
      const changed = await get(p, h);
      assert.equal(changed.status, 200, JSON.stringify(h));
      assert.equal(changed.text, full.text);
      assert.equal(xcs(changed), "Hit");
    }
    const head = await get(p, { "if-none-match": ETAG }, { method: "HEAD" });
    assert.equal(head.status, 304);
    assert.equal(calls(p), 1, "all answered from the cache");
  });

  test("a conditional miss: the origin is asked for the whole response, it is stored, the client gets 304", async () => {
    const p = "/c/validators/cold";
    const nm = await get(p, { "if-none-match": ETAG });
    assert.equal(nm.status, 304);
    assert.equal(nm.body.length, 0);
    assert.equal(nm.headers.etag, ETAG);
    const s = status(nm, "conditional miss");
    assert.equal(s.x, "Miss");
    assert.equal(s.cs.stored, true);
    assert.equal(lastTo(p).headers["if-none-match"], undefined, "the condition is the cache's to evaluate");
    await settle();
    const hit = await get(p);
    assert.equal(hit.status, 200);
    assert.equal(xcs(hit), "Hit");
    assert.equal(JSON.parse(hit.text).path, p, "the whole body was stored");
    // A condition that does not match: the full answer, and it is stored too.
    const q = "/c/validators/cold2";
    const other = await get(q, { "if-none-match": '"v0"' });
    assert.equal(other.status, 200);
    assert.equal(JSON.parse(other.text).path, q);
    assert.equal(calls(p), 1);
  });

  test("conditions apply to a stored 200 only: a stored 404 is served as it is", async () => {
    assert.equal((await get("/c/missing")).status, 404);
    await settle();
    const again = await get("/c/missing", { "if-none-match": ETAG });
    assert.equal(again.status, 404);
    assert.equal(xcs(again), "Hit");
  });

  test("HEAD is answered from the GET entry without a body; a HEAD miss never stores an empty body", async () => {
    const g = await get("/c/head/a");
    await settle();
    const h = await get("/c/head/a", {}, { method: "HEAD" });
    assert.equal(h.status, 200);
    assert.equal(xcs(h), "Hit");
    assert.equal(h.body.length, 0);
    assert.equal(h.headers["content-type"], g.headers["content-type"]);
    // HEAD first: the next GET must get the full body, not an empty stored one.
    const h2 = await get("/c/head/b", {}, { method: "HEAD" });
    assert.equal(status(h2, "HEAD miss").cs.detail, '"head"');
    await settle();
    const g2 = await get("/c/head/b");
    assert.equal(g2.status, 200);
    assert.ok(g2.body.length > 0);
    assert.equal(JSON.parse(g2.text).method, "GET");
    await settle();
    const g3 = await get("/c/head/b");
    assert.equal(xcs(g3), "Hit");
    assert.equal(g3.text, g2.text);
  });

  test("response Vary on a header in vary_headers is honoured per value; on another header it is not stored", async () => {
    const as = (t) => get("/vary/tenant", { "x-tenant": t });
    assert.equal(xcs(await as("a")), "Miss");
    assert.equal(xcs(await as("b")), "Miss");
    await settle();
    const a = await as("a");
    const b = await as("b");
    assert.equal(xcs(a), "Hit");
    assert.equal(xcs(b), "Hit");
    assert.equal(a.json().tenant, "a");
    assert.equal(b.json().tenant, "b");
    assert.equal(a.headers.vary, "X-Tenant", "the origin's Vary is kept");
    const lang = await get("/vary/lang", { "accept-language": "fr" });
    assert.equal(status(lang, "vary lang").x, "Bypass");
    assert.equal(status(lang).cs.detail, '"vary"');
    await settle();
    assert.notEqual(xcs(await get("/vary/lang", { "accept-language": "de" })), "Hit");
  });

  test("Expires sets the TTL when cache_control is on; Expires: 0 is never stored", async () => {
    const e = await get("/cc/expires");
    const s = status(e, "expires");
    assert.equal(s.x, "Miss");
    assert.ok(Number(s.cs.ttl) >= 118 && Number(s.cs.ttl) <= 120, `ttl ${s.cs.ttl}`);
    await settle();
    assert.equal(xcs(await get("/cc/expires")), "Hit");
    const past = await get("/cc/expires-past");
    assert.equal(status(past, "expires 0").x, "Bypass");
    assert.equal(status(past).cs.detail, '"expires"');
    await settle();
    assert.notEqual(xcs(await get("/cc/expires-past")), "Hit");
    // The origin's no-cache is obeyed with cache_control.
    const nc = await get("/cc/no-cache");
    assert.equal(status(nc, "no-cache").cs.detail, '"no-cache"');
    await settle();
    assert.notEqual(xcs(await get("/cc/no-cache")), "Hit");
  });

  test("must-revalidate and s-maxage: no stale copy on origin errors (RFC 9111 5.2.2.2); without them stale_if_error applies", async () => {
    broken = false;
    assert.equal(xcs(await get("/sie/plain")), "Miss");
    assert.equal(xcs(await get("/sie/must")), "Miss");
    assert.equal(xcs(await get("/sie/smax")), "Miss");
    await sleep(1200);
    broken = true;
    try {
      const stale = await get("/sie/plain");
      assert.equal(stale.status, 200);
      assert.equal(status(stale, "stale").x, "Stale");
      const must = await get("/sie/must");
      assert.equal(must.status, 503, "a must-revalidate copy is not served stale");
      assert.notEqual(xcs(must), "Stale");
      const smax = await get("/sie/smax");
      assert.equal(smax.status, 503, "s-maxage implies proxy-revalidate (RFC 9111 5.2.2.10)");
    } finally {
      broken = false;
    }
  });

  test("a response to a request with Authorization is never served to others (RFC 9111 3.5)", async () => {
    const authed = await get("/c/auth", { authorization: "Bearer secret" });
    assert.equal(status(authed, "authorization").x, "Bypass");
    await settle();
    const anon = await get("/c/auth");
    assert.equal(xcs(anon), "Miss", "nothing was stored for the credentialed request");
    await settle();
    const authed2 = await get("/c/auth", { authorization: "Bearer other" });
    assert.equal(xcs(authed2), "Bypass", "nor is the anonymous copy served to a credentialed request");
    assert.equal(calls("/c/auth"), 3);
  });

  test("a Range request against a stored copy goes to the origin (passed through) and leaves the copy", async () => {
    assert.equal(xcs(await get("/c/range/a")), "Miss");
    await settle();
    assert.equal(xcs(await get("/c/range/a")), "Hit");
    const r = await get("/c/range/a", { range: "bytes=0-1" });
    assert.equal(r.status, 206);
    assert.equal(status(r, "range").x, "Bypass");
    assert.equal(status(r).cs.detail, '"range"');
    assert.equal(lastTo("/c/range/a").headers.range, "bytes=0-1");
    await settle();
    const after = await get("/c/range/a");
    assert.equal(after.status, 200);
    assert.equal(xcs(after), "Hit");
    assert.equal(calls("/c/range/a"), 2);
  });

  test("a successful unsafe request invalidates the stored GET of its URL (RFC 9111 4.4); errors do not", async () => {
    const p = "/c/item/1";
    const first = await get(p);
    assert.equal(xcs(first), "Miss");
    await settle();
    assert.equal(xcs(await get(p)), "Hit");
    const post = await get(p, {}, { method: "POST", body: "x" });
    assert.equal(post.status, 200);
    assert.equal(status(post, "POST").x, "Bypass");
    assert.equal(status(post).cs.fwd, "method");
    const refetched = await get(p);
    assert.equal(xcs(refetched), "Miss", "the POST invalidated the entry");
    assert.ok(refetched.json().n > first.json().n, "answered by the origin again");
    await settle();
    assert.equal(xcs(await get(p)), "Hit");
    // Another URL (query included) is not touched.
    await get(`${p}?other=1`, {}, { method: "PUT", body: "x" });
    assert.equal(xcs(await get(p)), "Hit");
    // A DELETE answered 404 (an error) leaves the entry.
    assert.equal(xcs(await get("/c/gone")), "Miss");
    await settle();
    assert.equal((await get("/c/gone", {}, { method: "DELETE" })).status, 404);
    assert.equal(xcs(await get("/c/gone")), "Hit");
    // A stored HEAD answer is the GET's entry: a DELETE that succeeds removes it for HEAD too.
    assert.equal((await get(p, {}, { method: "DELETE" })).status, 200);
    const head = await get(p, {}, { method: "HEAD" });
    assert.notEqual(xcs(head), "Hit");
  });
});
