// The edge response cache (proxy-cache plugin) under Miniflare, with an origin on 127.0.0.1 that counts
// its hits per path. Miniflare's Cache API is a local implementation of caches.default (persisted in
// memory for the instance); it honours the Cache-Control we store with each entry like production does.
import { describe, test, before, after } from "node:test";
import assert from "node:assert/strict";
import crypto from "node:crypto";
import {
  startGateway,
  startOrigin,
  request,
  streamRequest,
  sleep,
  sha256,
  pseudoRandomChunks,
} from "./support/harness.mjs";

const MB = 1024 * 1024;
const BIG = 20 * MB;
// cache.put runs in waitUntil after the client got its response: give it a moment before the next request.
const settle = () => sleep(150);

describe("proxy-cache", () => {
  let gw;
  let origin;
  let flaky = "ok"; // ok | 500 | down
  let bigFinishedAt = 0;
  let bigHash = null;

  const hits = (prefix) => origin.requests.filter((r) => r.url.startsWith(prefix)).length;
  const get = (p, opts = {}) => request(gw.at(p), opts);
  const xcs = (res) => res.headers["x-cache-status"];

  before(async () => {
    origin = await startOrigin(async (req, res, record) => {
      const url = new URL(req.url, "http://origin");
      const n = hits(url.pathname);
      const json = (status, extra = {}, body = { path: url.pathname, query: url.search, n }) => {
        res.writeHead(status, { "content-type": "application/json", ...extra });
        res.end(JSON.stringify({ ...body, tenant: req.headers["x-tenant"] ?? null }));
      };
      const p = url.pathname;
      if (p.startsWith("/cc/no-store")) return json(200, { "cache-control": "no-store" });
      if (p.startsWith("/cc/private")) return json(200, { "cache-control": "private, max-age=60" });
      if (p.startsWith("/cc/max-age-1")) return json(200, { "cache-control": "max-age=1" });
      if (p.startsWith("/cc/s-maxage")) return json(200, { "cache-control": "max-age=0, s-maxage=60" });
      if (p.startsWith("/methods/status/")) return json(Number(p.split("/")[3]));
      if (p.startsWith("/cookie")) return json(200, { "set-cookie": "session=abc; HttpOnly" });
      if (p.startsWith("/flaky")) {
        if (flaky === "down") return res.destroy();
        if (flaky === "500") return json(503, {}, { error: "origin broken" });
        return json(200, { "cache-control": "max-age=5" });
      }
      if (p.startsWith("/big")) {
        const hash = crypto.createHash("sha256");
        res.writeHead(200, { "content-type": "application/octet-stream", "content-length": String(BIG) });
        let sent = 0;
        for (const chunk of pseudoRandomChunks(BIG, 256 * 1024, 11)) {
          hash.update(chunk);
          if (!res.write(chunk)) await new Promise((r) => res.once("drain", r));
          sent += chunk.length;
          // Hold the rest back for a while: the client must already be reading (streamed, not buffered).
          if (sent === MB) await sleep(700);
        }
        bigHash = hash.digest("hex");
        bigFinishedAt = Date.now();
        return res.end();
      }
      return json(200, { "x-origin": "yes" });
    });
    const route = (name, prefix, extra = {}) => ({
      name,
      service: "origin",
      paths: [prefix],
      strip_path: false,
      ...extra,
    });
    const cache = (route, config) => ({ name: "proxy-cache", route, config });
    gw = await startGateway({
      config: {
        format_version: 1,
        services: [{ name: "origin", url: origin.url }],
        routes: [
          route("data", "/data"),
          route("short", "/short"),
          route("cc", "/cc"),
          route("vary", "/vary"),
          route("methods", "/methods"),
          route("flaky", "/flaky"),
          route("big", "/big"),
          route("purge", "/purge"),
          route("purge2", "/other"),
          route("public", "/public"),
          route("cookie", "/cookie"),
          route("cookie-ok", "/cookies-ok"),
          route("plain", "/plain"),
        ],
        plugins: [
          cache("data", { show_cache_key: true }),
          cache("short", { cache_ttl: 1 }),
          cache("cc", { cache_control: true }),
          cache("vary", { vary_query_params: ["page"], vary_headers: ["X-Tenant"] }),
          cache("methods", {}),
          cache("flaky", { cache_ttl: 1, stale_if_error: 60 }),
          cache("big", { content_type: ["application/octet-stream"] }),
          cache("purge", { tags: ["catalog"] }),
          cache("purge2", {}),
          cache("public", { public: true }),
          cache("cookie", {}),
          cache("cookie-ok", { cache_set_cookie: true }),
        ],
      },
    });
  });

  after(async () => {
    await gw?.dispose();
    await origin?.close();
  });

  test("miss, then hit with the origin called once; HEAD answered from the cached GET", async () => {
    const a = await get("/data/a");
    assert.equal(a.status, 200);
    assert.equal(xcs(a), "Miss");
    assert.match(a.headers["cache-status"], /^edgegate; fwd=uri-miss; fwd-status=200; stored; ttl=300; key="[0-9a-f]{64}"$/);
    assert.match(a.headers["x-cache-key"], /^[0-9a-f]{64}$/);
    await settle();
    const b = await get("/data/a");
    assert.equal(xcs(b), "Hit");
    assert.equal(b.text, a.text);
    assert.equal(b.headers["x-cache-key"], a.headers["x-cache-key"]);
    assert.match(b.headers["cache-status"], /^edgegate; hit; ttl=(300|299); key="/);
    assert.match(b.headers.age, /^\d+$/);
    assert.equal(b.headers["x-origin"], "yes", "origin headers are kept");
    assert.equal(b.headers["x-edgegate-cache-meta"], undefined, "internal headers stay internal");
    assert.equal(b.headers["cache-control"], undefined, "the origin sent no Cache-Control");
    assert.ok(b.headers["x-request-id"] && b.headers["x-request-id"] !== a.headers["x-request-id"]);
    const head = await get("/data/a", { method: "HEAD" });
    assert.equal(head.status, 200);
    assert.equal(xcs(head), "Hit");
    assert.equal(head.body.length, 0);
    assert.equal(hits("/data/a"), 1);
  });

  test("HEAD miss goes to the origin as HEAD and is not stored", async () => {
    const h = await get("/data/head-first", { method: "HEAD" });
    assert.equal(xcs(h), "Miss");
    await settle();
    const g = await get("/data/head-first");
    assert.equal(xcs(g), "Miss");
    assert.deepEqual(origin.requests.filter((r) => r.url === "/data/head-first").map((r) => r.method), ["HEAD", "GET"]);
  });

  test("TTL expiry", async () => {
    assert.equal(xcs(await get("/short/x")), "Miss");
    await settle();
    assert.equal(xcs(await get("/short/x")), "Hit");
    await sleep(1100);
    const again = await get("/short/x");
    assert.ok(["Miss", "Refresh"].includes(xcs(again)), xcs(again));
    assert.equal(hits("/short/x"), 2);
  });

  test("no-store and private are obeyed; max-age and s-maxage set the TTL", async () => {
    for (const p of ["/cc/no-store", "/cc/private"]) {
      const first = await get(p);
      await settle();
      const second = await get(p);
      assert.equal(xcs(first), "Bypass", p);
      assert.equal(xcs(second), "Bypass", p);
      assert.match(second.headers["cache-status"], /detail="(no-store|private)"/);
      assert.equal(hits(p), 2, p);
    }
    // s-maxage (60) wins over max-age=0 for a shared cache.
    assert.equal(xcs(await get("/cc/s-maxage")), "Miss");
    await settle();
    const s = await get("/cc/s-maxage");
    assert.equal(xcs(s), "Hit");
    assert.equal(s.headers["cache-control"], "max-age=0, s-maxage=60", "the origin's Cache-Control is restored");
    // max-age=1 instead of the 300 s default.
    assert.equal(xcs(await get("/cc/max-age-1")), "Miss");
    await settle();
    assert.equal(xcs(await get("/cc/max-age-1")), "Hit");
    await sleep(1100);
    assert.notEqual(xcs(await get("/cc/max-age-1")), "Hit");
    // With cache_control the client can ask for a fresh copy (Refresh) or keep out of the cache (Bypass).
    const refresh = await get("/cc/s-maxage", { headers: { "cache-control": "no-cache" } });
    assert.equal(xcs(refresh), "Refresh");
    assert.match(refresh.headers["cache-status"], /fwd=request/);
    assert.equal(xcs(await get("/cc/s-maxage", { headers: { "cache-control": "no-store" } })), "Bypass");
  });

  test("vary by a query parameter, and other parameters do not split the cache", async () => {
    assert.equal(xcs(await get("/vary/p?page=1")), "Miss");
    assert.equal(xcs(await get("/vary/p?page=2")), "Miss");
    await settle();
    const one = await get("/vary/p?utm_source=mail&page=1");
    assert.equal(xcs(one), "Hit");
    assert.equal(one.json().query, "?page=1");
    assert.equal(xcs(await get("/vary/p?page=2")), "Hit");
    assert.equal(hits("/vary/p"), 2);
  });

  test("query parameter order does not split the cache", async () => {
    assert.equal(xcs(await get("/data/q?a=1&b=2")), "Miss");
    await settle();
    assert.equal(xcs(await get("/data/q?b=2&a=1")), "Hit");
    assert.equal(xcs(await get("/data/q?a=1&b=3")), "Miss");
    assert.equal(hits("/data/q"), 2);
  });

  test("vary by a header; two callers with different values are isolated", async () => {
    // Stands in for two consumers until the auth phase sets ex.identity (the per-consumer key is tested
    // natively in crates/core/src/cache/tests.rs).
    const as = (tenant) => get("/vary/h", { headers: { "x-tenant": tenant } });
    assert.equal(xcs(await as("alice")), "Miss");
    assert.equal(xcs(await as("bob")), "Miss");
    await settle();
    const a = await as("alice");
    const b = await as("bob");
    assert.equal(xcs(a), "Hit");
    assert.equal(xcs(b), "Hit");
    assert.equal(a.json().tenant, "alice");
    assert.equal(b.json().tenant, "bob");
    assert.equal(hits("/vary/h"), 2);
  });

  test("credentials bypass the cache unless the route is public", async () => {
    for (const headers of [{ authorization: "Bearer one" }, { cookie: "session=1" }, { apikey: "k" }]) {
      const r = await get("/data/private", { headers });
      assert.equal(xcs(r), "Bypass", JSON.stringify(headers));
      assert.match(r.headers["cache-status"], /detail="credentials"/);
    }
    assert.equal(xcs(await get("/data/private?apikey=k")), "Bypass");
    assert.equal(hits("/data/private"), 4);
    assert.equal(xcs(await get("/public/x", { headers: { authorization: "Bearer one" } })), "Miss");
    await settle();
    assert.equal(xcs(await get("/public/x", { headers: { authorization: "Bearer two" } })), "Hit");
  });

  test("purge by route and by tag takes effect", async () => {
    assert.equal(xcs(await get("/purge/x")), "Miss");
    assert.equal(xcs(await get("/other/x")), "Miss");
    await settle();
    assert.equal(xcs(await get("/purge/x")), "Hit");
    // What `scripts/config purge purge` writes (the Worker re-reads it every CONFIG_RELOAD_SECONDS:
    // 0 here unless EDGEGATE_TEST_RELOAD is set, then gw.afterWrite() waits for it).
    await gw.kv.put("cache/generations", JSON.stringify({ all: 0, routes: { purge: 1 }, tags: {} }));
    await gw.afterWrite();
    assert.equal(xcs(await get("/purge/x")), "Miss");
    assert.equal(xcs(await get("/other/x")), "Hit", "other routes keep their entries");
    await settle();
    assert.equal(xcs(await get("/purge/x")), "Hit");
    // `scripts/config purge --tag catalog`
    await gw.kv.put("cache/generations", JSON.stringify({ all: 0, routes: { purge: 1 }, tags: { catalog: 1 } }));
    await gw.afterWrite();
    assert.equal(xcs(await get("/purge/x")), "Miss");
    assert.equal(xcs(await get("/other/x")), "Hit", "untagged instances are not purged by the tag");
    // `scripts/config purge --all`
    await gw.kv.put("cache/generations", JSON.stringify({ all: 1, routes: { purge: 1 }, tags: { catalog: 1 } }));
    await gw.afterWrite();
    assert.equal(xcs(await get("/other/x")), "Miss");
    assert.equal(hits("/purge/x"), 3);
    assert.equal(hits("/other/x"), 2);
  });

  test("stale copy served when the origin answers 5xx or goes down, within stale_if_error", async () => {
    flaky = "ok";
    const fresh = await get("/flaky/x");
    assert.equal(xcs(fresh), "Miss");
    await sleep(1100); // past cache_ttl (1 s), within stale_if_error (60 s)
    flaky = "500";
    const s500 = await get("/flaky/x");
    assert.equal(s500.status, 200);
    assert.equal(xcs(s500), "Stale");
    assert.equal(s500.text, fresh.text);
    assert.match(s500.headers["cache-status"], /^edgegate; fwd=stale; fwd-status=503; ttl=-\d+; detail="stale-if-error"$/);
    assert.ok(Number(s500.headers.age) >= 1);
    flaky = "down";
    const down = await get("/flaky/x");
    assert.equal(down.status, 200);
    assert.equal(xcs(down), "Stale");
    assert.equal(down.text, fresh.text);
    assert.doesNotMatch(down.headers["cache-status"], /fwd-status/);
    flaky = "ok";
    const back = await get("/flaky/x");
    assert.equal(xcs(back), "Refresh");
    assert.match(back.headers["cache-status"], /fwd=stale; fwd-status=200; stored/);
    // Without a stored copy an origin failure is an error as usual.
    flaky = "down";
    const none = await get("/flaky/never-cached");
    assert.equal(none.status, 502);
    flaky = "ok";
  });

  test("a 20 MB body streams on the miss and on the hit", async () => {
    const t0 = Date.now();
    const res = await streamRequest(gw.at("/big/file"));
    assert.equal(res.statusCode, 200);
    assert.equal(res.headers["x-cache-status"], "Miss");
    const hash = crypto.createHash("sha256");
    let bytes = 0;
    let firstAt = 0;
    for await (const chunk of res) {
      if (!firstAt) firstAt = Date.now();
      hash.update(chunk);
      bytes += chunk.length;
    }
    assert.equal(bytes, BIG);
    assert.equal(hash.digest("hex"), bigHash);
    assert.ok(firstAt < bigFinishedAt - 300, `first byte ${firstAt - t0} ms, origin done ${bigFinishedAt - t0} ms`);
    // The stored copy is written in waitUntil; wait for it to land.
    let hit;
    for (let i = 0; i < 50; i++) {
      await sleep(100);
      hit = await streamRequest(gw.at("/big/file"));
      if (hit.headers["x-cache-status"] === "Hit") break;
      hit.resume();
      await new Promise((r) => hit.on("end", r));
    }
    assert.equal(hit.headers["x-cache-status"], "Hit");
    const h2 = crypto.createHash("sha256");
    let n2 = 0;
    for await (const chunk of hit) {
      h2.update(chunk);
      n2 += chunk.length;
    }
    assert.equal(n2, BIG);
    assert.equal(h2.digest("hex"), bigHash);
    assert.equal(hits("/big/file"), 1);
  });

  test("methods and statuses outside the policy are never cached", async () => {
    for (const method of ["POST", "PUT", "DELETE", "PATCH"]) {
      const first = await get("/methods/m", { method, body: "x" });
      const second = await get("/methods/m", { method, body: "x" });
      assert.equal(xcs(first), "Bypass", method);
      assert.equal(xcs(second), "Bypass", method);
      assert.match(second.headers["cache-status"], /fwd=method/);
    }
    assert.equal(hits("/methods/m"), 8);
    for (const status of [201, 302, 400, 403, 500, 503]) {
      const p = `/methods/status/${status}`;
      const first = await get(p);
      await settle();
      const second = await get(p);
      assert.equal(first.status, status);
      assert.equal(xcs(first), "Bypass", p);
      assert.equal(xcs(second), "Bypass", p);
      assert.match(second.headers["cache-status"], new RegExp(`fwd-status=${status}; detail="status"`));
      assert.equal(hits(p), 2, p);
    }
    // 404 and 301 are in the default policy.
    for (const status of [404, 301]) {
      const p = `/methods/status/${status}`;
      assert.equal(xcs(await get(p)), "Miss");
      await settle();
      const again = await get(p);
      assert.equal(again.status, status);
      assert.equal(xcs(again), "Hit");
      assert.equal(hits(p), 1);
    }
  });

  test("Set-Cookie responses are not stored unless configured, and never replayed", async () => {
    assert.equal(xcs(await get("/cookie/x")), "Bypass");
    await settle();
    assert.equal(xcs(await get("/cookie/x")), "Bypass");
    const first = await get("/cookies-ok/x");
    assert.equal(xcs(first), "Miss");
    assert.match(first.headers["set-cookie"]?.[0] ?? "", /session=abc/, "the client of the miss gets its cookie");
    await settle();
    const hit = await get("/cookies-ok/x");
    assert.equal(xcs(hit), "Hit");
    assert.equal(hit.headers["set-cookie"], undefined);
  });

  test("routes without the plugin are untouched", async () => {
    const r = await get("/plain/x");
    assert.equal(r.status, 200);
    assert.equal(r.headers["x-cache-status"], undefined);
    assert.equal(r.headers["cache-status"], undefined);
  });
});
