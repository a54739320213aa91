// The docs as a contract, second pass over docs/plugins.md: every precise statement of the page (plugin
// instances, ids, which instances run, priorities, phases, the built-in correlation id, request-termination,
// redirect) checked from outside, every JSON example of the page exercised, and the validation errors of the
// page's plugins (and of cors, ip-restriction, geo-restriction) checked for their JSON paths and for never
// quoting a value that may be a secret.
import { describe, test, before, after } from "node:test";
import assert from "node:assert/strict";
import crypto from "node:crypto";
import { startGateway, startOrigin, request, putRaw, waitFor, problemOf } from "./support/harness.mjs";
import { DO_OPTIONS } from "./ratelimit-helpers.mjs";

const sha256hex = (s) => crypto.createHash("sha256").update(s).digest("hex");
const UUID_V4 = /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;
const JSON_TYPE = "application/json; charset=utf-8";
const TEXT_TYPE = "text/plain; charset=utf-8";

async function addConsumer(gw, id, username, key) {
  const put = (k, v) => gw.kv.put(k, JSON.stringify(v));
  await put(`consumers/${id}`, { id, username, groups: [] });
  await put(`consumer-names/${username}`, { id });
  await put(`credentials/key-auth/${sha256hex(key)}`, { id: `cred-${id}`, consumer_id: id });
}

/** Push `doc` (which must be refused) and return the `error` of its `config_rejected` line. */
async function rejection(gw, doc) {
  const v = await putRaw(gw, JSON.stringify(doc));
  await request(gw.at("/not-a-route"));
  const line = await waitFor(
    () => gw.logs.find((l) => l.json?.event === "config_rejected" && l.json.version === v),
    { what: `config_rejected of version ${v}`, timeoutMs: 10_000 },
  );
  return line.json.error;
}

describe("docs contract: plugins.md (second pass)", { timeout: 240_000 }, () => {
  let gw, origin;
  const aliceKey = "eg_alice_" + crypto.randomBytes(12).toString("hex");
  const bobKey = "eg_bob_" + crypto.randomBytes(12).toString("hex");
  const batchKey = "eg_batch_" + crypto.randomBytes(12).toString("hex");
  const scraperKey = "eg_scraper_" + crypto.randomBytes(12).toString("hex");

  const get = (path, headers = {}, opts = {}) =>
    request(gw.at(path), { headers: { "accept-encoding": "identity", ...headers }, ...opts });

  before(async () => {
    origin = await startOrigin();
    gw = await startGateway({ miniflare: DO_OPTIONS });
    await addConsumer(gw, "c-alice", "alice", aliceKey);
    await addConsumer(gw, "c-bob", "bob", bobKey);
    await addConsumer(gw, "c-batch", "batch-job", batchKey);
    await addConsumer(gw, "c-scraper", "scraper", scraperKey);
    const r = (name, paths, service = "shop", extra = {}) => ({ name, service, paths, ...extra });
    const statuses = [200, 403, 410, 429, 418, 401, 404, 405, 500, 502, 503, 204, 205, 304];
    await gw.putConfig({
      format_version: 1,
      services: [
        { name: "users-api", url: origin.url },
        { name: "shop", url: origin.url },
        { name: "api", url: origin.url },
        { name: "other", url: origin.url },
      ],
      routes: [
        // The page's first example.
        r("users", ["/users"], "users-api"),
        r("catalog", ["/catalog"]),
        // Instances and specificity.
        r("shop-other", ["/shop-other"]),
        r("elsewhere", ["/elsewhere"], "other"),
        r("tie", ["/tie"]),
        r("disabled", ["/disabled"]),
        r("vip", ["/vip"]),
        r("vip2", ["/vip2"]),
        // Priorities.
        r("size-rl", ["/size-rl"]),
        r("redir-rl", ["/redir-rl"]),
        r("redir-auth", ["/redir-auth"]),
        r("redir-scraper", ["/redir-scraper"]),
        r("term-rl", ["/term-rl"]),
        r("auth-rt", ["/auth-rt"]),
        // request-termination: the page's example, default messages, options.
        r("orders", ["/orders"]),
        r("preview", ["/preview"]),
        r("open", ["/open"]),
        ...statuses.map((s) => r(`st-${s}`, [`/st/${s}`])),
        r("body-default-type", ["/body-default-type"]),
        r("echo", ["/echo/{id}"]),
        r("plain-options", ["/plain-options"]),
        // redirect: the page's example and its rules.
        r("old-api", ["/"], "api", { hosts: ["old.example.com"] }),
        r("old-users", ["/u/{id}"], "api"),
        r("kip", ["/demo"], "api", { hosts: ["kip.example"] }),
        r("kiq", ["/kiq"], "api"),
        r("host-end", ["~^/h(?<rest>.*)$"], "api"),
        r("host-mid", ["~^/region/(?<region>[^/]*)$"], "api"),
        r("opt-capture", ["~^/opt(/(?<tail>[a-z]+))?$"], "api"),
        r("redir-default", ["/redir-default"], "api"),
        r("rel-kip", ["/"], "api", { hosts: ["rel.example"] }),
        r("non-ascii", ["/non-ascii"], "api"),
      ],
      plugins: [
        // The page's first example, as written.
        { name: "key-auth", route: "users" },
        { name: "rate-limiting", service: "users-api", config: { minute: 100, limit_by: "consumer" } },
        { name: "rate-limiting", consumer: "batch-job", config: { hour: 10000 } },
        { name: "proxy-cache", route: "catalog", config: { cache_ttl: 60 } },

        // Specificity: route beats service beats global; the earlier of two equals wins.
        { name: "request-termination", config: { trigger: "x-term", status_code: 409, message: "global" } },
        { name: "request-termination", service: "shop", config: { trigger: "x-term", status_code: 409, message: "service" } },
        { name: "request-termination", route: "catalog", config: { trigger: "x-term", status_code: 409, message: "route" } },
        { name: "request-termination", route: "tie", config: { trigger: "x-term", status_code: 409, message: "first" } },
        { name: "request-termination", route: "tie", id: "second", config: { trigger: "x-term", status_code: 409, message: "second" } },
        // enabled: false keeps an instance without running it.
        { name: "request-termination", route: "disabled", enabled: false, config: { message: "off" } },
        // A consumer-scoped instance beats a route one.
        { name: "key-auth", route: "vip" },
        { name: "ip-restriction", route: "vip", config: { deny: ["192.0.2.0/24"] } },
        { name: "ip-restriction", route: "vip", consumer: "alice", config: { deny: ["198.51.100.0/24"] } },
        // Kong: route + service beats a consumer alone.
        { name: "key-auth", route: "vip2" },
        { name: "ip-restriction", consumer: "alice", config: { deny: ["198.51.100.0/24"] } },
        { name: "ip-restriction", route: "vip2", service: "shop", config: { deny: ["192.0.2.0/24"] } },

        // request-size-limiting (951) before rate-limiting (910).
        { name: "request-size-limiting", route: "size-rl", config: { allowed_payload_size: 10, size_unit: "bytes" } },
        { name: "rate-limiting", route: "size-rl", config: { minute: 1, limit_by: "ip" } },
        // rate-limiting (910) before redirect (779).
        { name: "redirect", route: "redir-rl", config: { location: "https://elsewhere.example/" } },
        { name: "rate-limiting", route: "redir-rl", config: { minute: 1, limit_by: "ip" } },
        // authentication before redirect.
        { name: "redirect", route: "redir-auth", config: { location: "https://elsewhere.example/" } },
        { name: "key-auth", route: "redir-auth" },
        // redirect (779) before a consumer-scoped request-termination (2).
        { name: "key-auth", route: "redir-scraper" },
        { name: "redirect", route: "redir-scraper", config: { location: "/moved" } },
        // request-termination (rewrite) before rate-limiting: a terminated request counts nowhere.
        { name: "request-termination", route: "term-rl", config: { trigger: "x-stop", status_code: 503 } },
        { name: "rate-limiting", route: "term-rl", config: { minute: 1, limit_by: "ip" } },
        // The response phases run on the gateway's own errors.
        { name: "key-auth", route: "auth-rt" },
        { name: "response-transformer", route: "auth-rt", config: { add: { headers: ["x-phase:header_filter"] } } },

        // The page's request-termination example, as written.
        { name: "request-termination", route: "orders",
          config: { status_code: 503, body: "<h1>Back soon</h1>", content_type: "text/html" } },
        { name: "request-termination", route: "preview",
          config: { status_code: 418, message: "preview only", trigger: "x-preview" } },
        { name: "request-termination", consumer: "scraper", config: { status_code: 403, message: "blocked" } },
        { name: "key-auth", route: "open" },
        ...statuses.map((s) => ({ name: "request-termination", route: `st-${s}`, config: { status_code: s } })),
        { name: "request-termination", route: "body-default-type", config: { status_code: 200, body: "plain" } },
        { name: "request-termination", route: "echo", config: { echo: true, status_code: 200 } },
        { name: "request-termination", route: "plain-options", config: { message: "closed" } },

        // The page's redirect example, as written.
        { name: "redirect", route: "old-api",
          config: { location: "https://api.example.com", keep_incoming_path: true } },
        { name: "redirect", route: "old-users",
          config: { location: "/users/$(uri_captures.id)", status_code: 308, keep_incoming_query: true } },
        { name: "redirect", route: "kip", config: { location: "https://new.example.com/some-path", keep_incoming_path: true } },
        { name: "redirect", route: "kiq", config: { location: "https://n.example/a?x=1", keep_incoming_query: true } },
        { name: "redirect", route: "host-end", config: { location: "https://example.com$(uri_captures.rest)" } },
        { name: "redirect", route: "host-mid", config: { location: "https://api-$(uri_captures.region).example.com/x" } },
        { name: "redirect", route: "opt-capture", config: { location: "/t/$(uri_captures.tail)/end" } },
        { name: "redirect", route: "redir-default", config: { location: "https://new.example.com/docs" } },
        { name: "redirect", route: "rel-kip", config: { location: "/base", keep_incoming_path: true } },
        { name: "redirect", route: "non-ascii", config: { location: "https://n.example/caf\u00e9/\u20ac?q=\u00fc" } },
      ],
    });
  });
  after(async () => {
    await gw?.dispose();
    await origin?.close();
  });

  // -------------------------------------------------------------------------------------------------------
  describe("plugin instances", () => {
    test("the page's first example: key-auth, rate-limiting per service and per consumer, proxy-cache", async () => {
      assert.equal((await get("/users")).status, 401);
      const alice = await get("/users", { apikey: aliceKey });
      assert.equal(alice.status, 200, alice.text);
      assert.equal(alice.headers["x-ratelimit-limit-minute"], "100");
      assert.equal(alice.headers["x-ratelimit-limit-hour"], undefined, "the batch-job policy is not alice's");
      const batch = await get("/users", { apikey: batchKey });
      assert.equal(batch.status, 200, batch.text);
      assert.equal(batch.headers["x-ratelimit-limit-minute"], "100");
      assert.equal(batch.headers["x-ratelimit-limit-hour"], "10000");
      const first = await get("/catalog?example=1");
      const second = await get("/catalog?example=1");
      assert.equal(first.status, 200);
      assert.equal(first.headers["x-cache-status"], "Miss");
      assert.equal(second.headers["x-cache-status"], "Hit");
    });

    test("most specific: route beats service beats global; between equals the earlier wins; no trigger, no answer", async () => {
      const msg = async (path) => {
        const res = await get(path, { "x-term": "1" });
        assert.equal(res.status, 409, `${path}: ${res.text}`);
        return res.json().message;
      };
      assert.equal(await msg("/catalog"), "route");
      assert.equal(await msg("/shop-other"), "service");
      assert.equal(await msg("/elsewhere"), "global");
      assert.equal(await msg("/tie"), "first");
      // A request that matches no route runs no plugin.
      const none = await get("/no-route-here", { "x-term": "1" });
      assert.equal(none.status, 404, "no route: no plugin runs");
      assert.equal((await get("/shop-other")).status, 200);
    });

    test("enabled: false keeps the instance without running it", async () => {
      const res = await get("/disabled");
      assert.equal(res.status, 200);
      assert.equal(res.headers["x-origin"], "yes");
    });

    test("a consumer-scoped instance beats the route's once the consumer is known", async () => {
      const at = (ip, key) => get("/vip", { apikey: key, "cf-connecting-ip": ip });
      assert.equal((await at("192.0.2.5", bobKey)).status, 403, "bob: the route's instance");
      assert.equal((await at("192.0.2.5", aliceKey)).status, 200, "alice: her own instance replaces the route's");
      const refused = await at("198.51.100.7", aliceKey);
      assert.equal(refused.status, 403);
      assert.equal(problemOf(refused).code, "ip_not_allowed");
      assert.equal((await at("198.51.100.7", bobKey)).status, 200);
    });

    test("an instance on a route and its service beats one on a consumer alone (Kong's precedence)", async () => {
      const at = (ip, key) => get("/vip2", { apikey: key, "cf-connecting-ip": ip });
      assert.equal((await at("192.0.2.5", aliceKey)).status, 403, "the route + service instance runs for alice");
      assert.equal((await at("198.51.100.7", aliceKey)).status, 200, "her consumer-only instance does not");
      assert.equal((await at("192.0.2.5", bobKey)).status, 403);
      // Elsewhere her consumer-only instance is the most specific.
      const refused = await get("/vip", { apikey: aliceKey, "cf-connecting-ip": "198.51.100.7" });
      assert.equal(refused.status, 403);
    });
  });

  // -------------------------------------------------------------------------------------------------------
  describe("priorities and phases", () => {
    test("request-size-limiting before rate-limiting: a refused body uses up no request", async () => {
      const ip = { "cf-connecting-ip": "203.0.113.21" };
      const big = await get("/size-rl", ip, { method: "POST", body: "x".repeat(11) });
      assert.equal(big.status, 413);
      assert.equal(problemOf(big).code, "payload_too_large");
      assert.equal(big.headers["x-ratelimit-limit-minute"], undefined);
      assert.equal((await get("/size-rl", ip, { method: "POST", body: "small" })).status, 200);
      assert.equal((await get("/size-rl", ip)).status, 429);
    });

    test("rate-limiting before redirect; authentication before redirect", async () => {
      const ip = { "cf-connecting-ip": "203.0.113.22" };
      const first = await get("/redir-rl", ip);
      assert.equal(first.status, 301);
      assert.equal(first.headers["x-ratelimit-limit-minute"], "1");
      const second = await get("/redir-rl", ip);
      assert.equal(second.status, 429);
      assert.ok(second.headers["retry-after"]);
      assert.equal((await get("/redir-auth")).status, 401);
      assert.equal((await get("/redir-auth", { apikey: aliceKey })).status, 301);
    });

    test("a consumer-scoped request-termination runs after redirect", async () => {
      const res = await get("/redir-scraper", { apikey: scraperKey });
      assert.equal(res.status, 301);
      assert.equal(res.headers.location, "/moved");
    });

    test("a request-termination without consumer answers before rate limiting and counts against no limit", async () => {
      const ip = { "cf-connecting-ip": "203.0.113.23" };
      for (let i = 0; i < 3; i++) {
        const res = await get("/term-rl", { ...ip, "x-stop": "1" });
        assert.equal(res.status, 503);
        assert.equal(res.headers["x-ratelimit-limit-minute"], undefined);
      }
      assert.equal((await get("/term-rl", ip)).status, 200);
      assert.equal((await get("/term-rl", ip)).status, 429);
    });

    test("request-termination without consumer answers before authentication; the consumer-scoped one after it", async () => {
      const noKey = await get("/orders");
      assert.equal(noKey.status, 503, "maintenance wins over 401");
      assert.equal((await get("/open")).status, 401);
      assert.equal((await get("/open", { apikey: aliceKey })).status, 200);
      const scraper = await get("/open", { apikey: scraperKey });
      assert.equal(scraper.status, 403);
      assert.deepEqual(scraper.json(), { message: "blocked" });
    });

    test("the response phases run on the gateway's own errors (a 401)", async () => {
      const res = await get("/auth-rt");
      assert.equal(res.status, 401);
      assert.equal(res.headers["x-phase"], "header_filter");
    });
  });

  // -------------------------------------------------------------------------------------------------------
  describe("request identity (Kong's correlation-id, built in)", () => {
    const allowed = "AZaz09._:-";

    test("a well-formed X-Request-Id (1 to 200 of A-Z a-z 0-9 . _ : -) is kept, sent upstream and returned", async () => {
      for (const id of ["a", allowed, "x".repeat(200)]) {
        const res = await get("/shop-other", { "x-request-id": id });
        assert.equal(res.headers["x-request-id"], id);
        assert.equal(origin.last.headers["x-request-id"], id);
      }
    });

    test("an absent or malformed id is replaced by a new UUID v4, different for every request", async () => {
      const seen = new Set();
      for (const id of [undefined, "", "x".repeat(201), "a b", "a/b", "ünï", "a,b"]) {
        const headers = id === undefined ? {} : { "x-request-id": id };
        const res = await get("/shop-other", headers);
        const got = res.headers["x-request-id"];
        assert.match(got, UUID_V4, `for ${JSON.stringify(id)}`);
        assert.equal(origin.last.headers["x-request-id"], got);
        seen.add(got);
      }
      assert.equal(seen.size, 7);
    });

    test("the client's x_request_id is not sent upstream", async () => {
      const res = await get("/shop-other", { x_request_id: "spoofed", "x-request-id": "mine" });
      assert.equal(res.headers["x-request-id"], "mine");
      const rec = origin.last;
      assert.equal(rec.headers["x-request-id"], "mine");
      assert.equal(rec.headers["x_request_id"], undefined);
      const names = rec.rawHeaders.filter((_, i) => i % 2 === 0).map((n) => n.toLowerCase());
      assert.equal(names.filter((n) => n === "x-request-id" || n === "x_request_id").length, 1);
    });

    test("every answer carries the request's id: plugin answers, cache hits, gateway errors (request_id), the access log", async () => {
      const check = async (path, headers = {}, opts = {}) => {
        const id = "rid-" + crypto.randomBytes(6).toString("hex");
        const res = await get(path, { ...headers, "x-request-id": id }, opts);
        assert.equal(res.headers["x-request-id"], id, `${path} (${res.status})`);
        return { res, id };
      };
      await check("/orders"); // request-termination
      await check("/redir-default"); // redirect
      await check("/catalog?rid=1");
      const hit = await check("/catalog?rid=1"); // a cache hit: this request's id, not the stored one
      assert.equal(hit.res.headers["x-cache-status"], "Hit");
      const noRoute = await check("/nowhere-at-all");
      assert.equal(noRoute.res.status, 404);
      assert.equal(problemOf(noRoute.res).request_id, noRoute.id);
      const unauth = await check("/open");
      assert.equal(problemOf(unauth.res).request_id, unauth.id);
      const line = await waitFor(
        () => gw.logs.find((l) => l.json?.event === "request" && l.json.request_id === unauth.id),
        { what: "access log line" },
      );
      assert.equal(line.json.status, 401);
    });
  });

  // -------------------------------------------------------------------------------------------------------
  describe("request-termination", () => {
    test("the page's example: an HTML body, a trigger (header or query parameter), a blocked consumer", async () => {
      const orders = await get("/orders");
      assert.equal(orders.status, 503);
      assert.equal(orders.headers["content-type"], "text/html");
      assert.equal(orders.text, "<h1>Back soon</h1>");
      const hits = origin.hits;
      assert.equal((await get("/preview/x")).status, 200, "proxied as usual");
      assert.equal(origin.hits, hits + 1);
      for (const [path, headers] of [
        ["/preview/x?x-preview", {}],
        ["/preview/x?x-preview=1", {}],
        ["/preview/x?a=1&x-preview", {}],
        ["/preview/x", { "X-Preview": "yes" }],
        ["/preview/x", { "x-preview": "" }],
      ]) {
        const res = await get(path, headers);
        assert.equal(res.status, 418, `${path} ${JSON.stringify(headers)}`);
        assert.equal(res.headers["content-type"], JSON_TYPE);
        assert.equal(res.text, '{"message":"preview only"}');
      }
      assert.equal(origin.hits, hits + 1, "the origin is not called");
      assert.equal((await get("/preview/x?x-preview-not=1")).status, 200, "another parameter");
      for (const path of ["/users", "/open"]) {
        const res = await get(path, { apikey: scraperKey });
        assert.equal(res.status, 403, path);
        assert.equal(res.text, '{"message":"blocked"}');
      }
      const head = await get("/orders", {}, { method: "HEAD" });
      assert.equal(head.status, 503);
      assert.equal(head.headers["content-type"], "text/html");
      assert.equal(head.body.length, 0);
    });

    test("default messages: Kong's where Kong has one, edgegate's otherwise", async () => {
      const expected = {
        200: "OK", 403: "Forbidden", 410: "Gone", 429: "API rate limit exceeded", 418: "Request terminated",
        401: "Unauthorized", 404: "Not found", 405: "Method not allowed", 500: "An unexpected error occurred",
        502: "Bad Gateway", 503: "Service unavailable",
      };
      for (const [status, message] of Object.entries(expected)) {
        const res = await get(`/st/${status}`);
        assert.equal(res.status, Number(status));
        assert.equal(res.headers["content-type"], JSON_TYPE, `${status}`);
        assert.deepEqual(res.json(), { message }, `${status}`);
        assert.match(res.headers["x-request-id"], UUID_V4);
      }
    });

    test("204, 205 and 304 answers have no body", async () => {
      for (const status of [204, 205, 304]) {
        const res = await get(`/st/${status}`);
        assert.equal(res.status, status);
        assert.equal(res.body.length, 0, `${status}`);
        assert.equal(res.headers["content-type"], undefined, `${status}`);
        assert.ok(res.headers["x-request-id"]);
      }
    });

    test("body without content_type is text/plain; charset=utf-8", async () => {
      const res = await get("/body-default-type");
      assert.equal(res.status, 200);
      assert.equal(res.headers["content-type"], TEXT_TYPE);
      assert.equal(res.text, "plain");
    });

    test("a plain OPTIONS (not a preflight) is terminated like any request", async () => {
      const res = await get("/plain-options", { origin: "https://app.example" }, { method: "OPTIONS" });
      assert.equal(res.status, 503);
      assert.deepEqual(res.json(), { message: "closed" });
    });

    test("echo: exactly the documented fields; host lower case without port; the query as sent; body not read", async () => {
      const res = await get("/echo/42?b=%20x&a=1&a=2&flag", {
        host: "Echo.Example.COM:8443",
        "X-Custom": "v",
        authorization: "Bearer secret-token",
        "proxy-authorization": "Basic c2VjcmV0",
        cookie: "session=secret",
        "x-api-key": "secret-key",
        apikey: "secret-apikey",
        "x-request-id": "echo-1",
        "cf-connecting-ip": "198.51.100.9",
      }, { method: "POST", body: "the-body-text" });
      assert.equal(res.status, 200);
      assert.equal(res.headers["content-type"], JSON_TYPE);
      const e = res.json();
      assert.deepEqual(Object.keys(e).sort(), ["consumer", "matched_route", "matched_service", "message", "request"]);
      assert.deepEqual(Object.keys(e.request).sort(),
        ["client_ip", "headers", "host", "method", "path", "query", "request_id", "scheme", "uri_captures"]);
      assert.equal(e.message, "OK");
      assert.equal(e.request.scheme, "http");
      assert.equal(e.request.host, "echo.example.com");
      assert.equal(e.request.method, "POST");
      assert.equal(e.request.path, "/echo/42");
      assert.deepEqual(e.request.query, { b: "%20x", a: "1", flag: "" });
      assert.deepEqual(e.request.uri_captures, { id: "42" });
      assert.equal(e.request.client_ip, "198.51.100.9");
      assert.equal(e.request.request_id, "echo-1");
      assert.equal(e.request.headers["x-custom"], "v");
      for (const h of ["authorization", "proxy-authorization", "cookie", "x-api-key", "apikey"]) {
        assert.equal(e.request.headers[h], "[redacted]", h);
      }
      assert.ok(!res.text.includes("secret"), res.text);
      assert.ok(!res.text.includes("the-body-text"));
      assert.deepEqual(e.matched_route, { name: "echo" });
      assert.deepEqual(e.matched_service, { name: "shop" });
      assert.equal(e.consumer, null);
    });
  });

  // -------------------------------------------------------------------------------------------------------
  describe("redirect", () => {
    test("the page's example: the old host, path and query kept; /u/{id} moved for good", async () => {
      const a = await get("/v1/items?page=2", { host: "old.example.com" });
      assert.equal(a.status, 301);
      assert.equal(a.headers.location, "https://api.example.com/v1/items?page=2");
      const b = await get("/u/42?full=1", {}, { method: "POST", body: "data" });
      assert.equal(b.status, 308);
      assert.equal(b.headers.location, "/users/42?full=1");
      const head = await get("/u/42?full=1", {}, { method: "HEAD" });
      assert.equal(head.status, 308);
      assert.equal(head.headers.location, "/users/42?full=1");
      assert.equal(head.body.length, 0);
    });

    test("default 301, Content-Type text/plain; charset=utf-8, body `redirecting`, X-Request-Id", async () => {
      const res = await get("/redir-default?ignored=1", { "x-request-id": "redir-1" });
      assert.equal(res.status, 301);
      assert.equal(res.headers.location, "https://new.example.com/docs");
      assert.equal(res.headers["content-type"], TEXT_TYPE);
      assert.equal(res.text, "redirecting");
      assert.equal(res.headers["x-request-id"], "redir-1");
    });

    test("keep_incoming_path replaces path and query (none without one); keep_incoming_query appends", async () => {
      const withQ = await get("/demo?foo=bar", { host: "kip.example" });
      assert.equal(withQ.headers.location, "https://new.example.com/demo?foo=bar");
      const noQ = await get("/demo", { host: "kip.example" });
      assert.equal(noQ.headers.location, "https://new.example.com/demo");
      assert.equal((await get("/kiq?q=2")).headers.location, "https://n.example/a?x=1&q=2");
      assert.equal((await get("/kiq")).headers.location, "https://n.example/a?x=1");
      // As sent: percent-encoding kept.
      const enc = await get("/demo?foo=a%20b&c=%2F", { host: "kip.example" });
      assert.equal(enc.headers.location, "https://new.example.com/demo?foo=a%20b&c=%2F");
    });

    test("keep_incoming_path with a relative location: the request's own path cannot name another host", async () => {
      // An absolute URL on the gateway (gw.at would read `//evil.example` as another host).
      const a = await request(`${gw.url.origin}//evil.example/x`, { headers: { host: "rel.example" } });
      assert.equal(a.status, 301);
      assert.equal(a.headers.location, "/evil.example/x");
      assert.equal((await get("/p/q?z=1", { host: "rel.example" })).headers.location, "/p/q?z=1");
    });

    test("a capture that ends the host starts the path; inside the host, @ / \\ ? # are percent-encoded", async () => {
      assert.equal((await get("/h.evil.example")).headers.location, "https://example.com/.evil.example");
      assert.equal((await get("/h@evil.example")).headers.location, "https://example.com/@evil.example");
      assert.equal((await get("/h/docs")).headers.location, "https://example.com/docs");
      const mid = await get("/region/eu@evil.example%23");
      assert.equal(mid.status, 301);
      assert.ok(mid.headers.location.startsWith("https://api-eu%40evil.example"), mid.headers.location);
      assert.ok(mid.headers.location.endsWith(".example.com/x"), mid.headers.location);
    });

    test("non-ASCII characters of location are sent percent-encoded (UTF-8)", async () => {
      const res = await get("/non-ascii");
      assert.equal(res.status, 301);
      assert.equal(res.headers.location, "https://n.example/caf%C3%A9/%E2%82%AC?q=%C3%BC");
    });

    test("a capture that did not match is empty", async () => {
      assert.equal((await get("/opt/abc")).headers.location, "/t/abc/end");
      assert.equal((await get("/opt")).headers.location, "/t//end");
    });
  });
});

// ---------------------------------------------------------------------------------------------------------
describe("docs contract: plugins.md validation errors and instance ids", { timeout: 120_000 }, () => {
  let gw, origin;
  before(async () => {
    origin = await startOrigin();
    gw = await startGateway(); // no RATE_LIMITER binding: ratelimit_unavailable lines name the instances
  });
  after(async () => {
    await gw?.dispose();
    await origin?.close();
  });

  const base = (plugins, routes = ["orders", "users"]) => ({
    format_version: 1,
    services: [{ name: "api", url: origin.url }],
    routes: routes.map((name) => ({ name, service: "api", paths: [`/${name}`] })),
    plugins,
  });

  test("ids: scope/id in logs; without id the name, then name.2, name.3 (disabled instances counted)", async () => {
    await gw.putConfig(base([
      { name: "rate-limiting", id: "orders-per-minute", route: "orders", config: { minute: 50, limit_by: "ip" } },
      { name: "rate-limiting", route: "orders", config: { hour: 1000, limit_by: "ip" } },
      { name: "rate-limiting", route: "orders", enabled: false, config: { hour: 5, limit_by: "ip" } },
      { name: "rate-limiting", route: "orders", config: { day: 5000, limit_by: "ip" } },
      { name: "rate-limiting", config: { second: 1000, limit_by: "ip" } },
    ]));
    const res = await request(gw.at("/orders"), { headers: { "x-request-id": "ids-1" } });
    assert.equal(res.status, 200, "fault tolerant by default");
    const lines = await waitFor(() => {
      const l = gw.logs.filter((x) => x.json?.event === "ratelimit_unavailable" && x.json.request_id === "ids-1");
      return new Set(l.map((x) => x.json.plugin)).size >= 4 && l;
    }, { what: "four ratelimit_unavailable lines", timeoutMs: 10_000 });
    const ids = Object.fromEntries(lines.map((l) => [l.json.plugin, l.json.plugin_id]));
    assert.deepEqual(ids, {
      0: "route=orders/orders-per-minute",
      1: "route=orders/rate-limiting",
      3: "route=orders/rate-limiting.3",
      4: "global/rate-limiting",
    });
  });

  test("instance errors: unknown route, a duplicate id, a bad id, cors with a consumer, correlation-id", async () => {
    const error = await rejection(gw, base([
      { name: "key-auth", route: "orders" },
      { name: "rate-limiting", id: "a", route: "orders", config: { minute: 1 } },
      { name: "key-auth", route: "userz" },
      { name: "rate-limiting", id: "a", route: "orders", config: { minute: 2 } },
      { name: "rate-limiting", id: "x".repeat(65), config: { minute: 2 } },
      { name: "cors", consumer: "alice" },
      { name: "correlation-id" },
      { name: "key-auth", id: "x".repeat(64) },
      { name: "key-auth", id: "a b", route: "users" },
    ]));
    assert.ok(error.includes('plugins[2].route: unknown route "userz"'), error);
    assert.ok(error.includes(
      'plugins[3].id: id "a" is already used by plugins[1] in the same scope (route=orders); ids must be unique within a scope',
    ), error);
    assert.match(error, /plugins\[4\]\.id: /);
    assert.match(error, /plugins\[8\]\.id: /);
    assert.ok(!/plugins\[7\]/.test(error), "64 characters are allowed");
    assert.ok(error.includes(
      "plugins[5].consumer: cors cannot be scoped to a consumer, as in Kong (it runs before the consumer is known): " +
        "attach it globally, to a service or to a route",
    ), error);
    assert.ok(error.includes('plugins[6].name: unknown plugin "correlation-id"'), error);
  });

  test("request-termination errors name the option and never quote a trigger", async () => {
    const error = await rejection(gw, base([
      { name: "request-termination", config: { status_code: 99 } },
      { name: "request-termination", config: { message: "a", body: "b" } },
      { name: "request-termination", config: { content_type: "text/html" } },
      { name: "request-termination", config: { trigger: "X-Token: sk-SECRET-1234" } },
      { name: "request-termination", config: { status_code: 204, body: "x" } },
      { name: "request-termination", config: { status_code: 205, echo: true } },
      { name: "request-termination", config: { status_code: 100 } },
      { name: "request-termination", config: { status_code: 600 } },
      { name: "request-termination", config: { status_code: 304, message: "fine" } },
      { name: "request-termination", config: { echo: true, body: "x" } },
      { name: "request-termination", config: { status_code: "sk-SECRET-9" } },
      { name: "request-size-limiting", config: { size_unit: "gigabytes" } },
      { name: "request-size-limiting", config: { size_unit: "sk-SECRET-10" } },
      { name: "request-termination", config: { body: "x", content_type: "text/html; charset=\u20ac" } },
    ]));
    assert.ok(error.includes("plugins[0].config.status_code: 99 is not a status the gateway can answer with: use 200 to 599"), error);
    assert.ok(error.includes("plugins[1].config.body: give `message` or `body`, not both"), error);
    assert.ok(error.includes("plugins[2].config.content_type: `content_type` needs `body`"), error);
    assert.ok(error.includes(
      "plugins[3].config.trigger: not a valid header name (it contains ':'; letters, digits, `-`, `_`, ...)",
    ), error);
    assert.match(error, /plugins\[4\]\.config\.status_code: /);
    assert.match(error, /plugins\[5\]\.config\.status_code: /);
    assert.match(error, /plugins\[6\]\.config\.status_code: 100 /);
    assert.match(error, /plugins\[7\]\.config\.status_code: 600 /);
    assert.ok(!/plugins\[8\]/.test(error), "a message with 304 is accepted (and not sent)");
    assert.ok(error.includes("plugins[9].config.echo: `echo` cannot be used with `body`"), error);
    assert.ok(error.includes("plugins[10].config.status_code: invalid type: string, expected u16"), error);
    assert.ok(error.includes("plugins[11].config.size_unit: unknown variant `gigabytes`, expected one of"), error);
    assert.ok(error.includes("plugins[12].config.size_unit: unknown variant, expected one of"), error);
    assert.ok(error.includes("plugins[13].config.content_type: not a valid header value"), error);
    assert.ok(!error.includes("SECRET"), error);
  });

  test("redirect errors name the option and never quote the location", async () => {
    const error = await rejection(gw, base([
      { name: "redirect", config: {} },
      { name: "redirect", config: { location: "/x", status_code: 200 } },
      { name: "redirect", config: { location: "/x/$(headers.x)" } },
      { name: "redirect", config: { location: "Bearer sk-SECRET-5678" } },
      { name: "redirect", config: { location: "//evil.example/x" } },
      { name: "redirect", config: { location: "/a b" } },
      { name: "redirect", config: { location: "ftp://files.example/x" } },
      { name: "redirect", config: { location: "$(uri_captures.host)/x" } },
      { name: "redirect", config: { location: "https://b\u00fccher.example/x" } },
    ]));
    assert.ok(error.includes("plugins[0].config: missing field `location`"), error);
    assert.ok(error.includes("plugins[1].config.status_code: 200 is not a redirect status: use 301, 302, 303, 307 or 308"), error);
    assert.ok(error.includes(
      "plugins[2].config.location: unknown template `$(headers.x)`: only `$(uri_captures.<name>)` is supported",
    ), error);
    assert.match(error, /plugins\[8\]\.config\.location: a host with non-ASCII characters must be written in punycode/);
    for (const i of [3, 4, 5, 6, 7]) assert.match(error, new RegExp(`plugins\\[${i}\\]\\.config\\.location: `));
    assert.ok(!error.includes("SECRET"), error);
  });

  test("cors, ip-restriction and geo-restriction errors give the entry's path, never a value that is not what was asked", async () => {
    const error = await rejection(gw, base([
      { name: "cors", config: { origins: ["https://ok.example", "https://x.example/sk-SECRET-1", "(sk-SECRET-7"] } },
      { name: "cors", config: { headers: ["X-Token: sk-SECRET-2"], exposed_headers: ["ok", "a b"] } },
      { name: "cors", config: { methods: ["GET", "sk-SECRET-3", "get"] } },
      { name: "ip-restriction", config: { allow: ["10.0.0.0/33", "sk-SECRET-4", "10.0.0.1/sk-SECRET-5"] } },
      { name: "geo-restriction", config: { allow_countries: ["UK", "sk-SECRET-6"] } },
    ]));
    assert.match(error, /plugins\[0\]\.config\.origins\[1\]: not an origin/);
    assert.match(error, /plugins\[0\]\.config\.origins\[2\]: invalid regular expression/);
    assert.ok(error.includes("plugins[1].config.headers[0]: not a valid header name (it contains ':')"), error);
    assert.match(error, /plugins\[1\]\.config\.exposed_headers\[1\]: not a valid header name/);
    assert.match(error, /plugins\[2\]\.config\.methods\[1\]: /);
    assert.ok(error.includes('plugins[2].config.methods[2]: "get" is not one of'), error);
    assert.ok(error.includes('plugins[3].config.allow[0]: "10.0.0.0/33": the prefix length must be a number from 0 to 32'), error);
    assert.match(error, /plugins\[3\]\.config\.allow\[1\]: /);
    assert.match(error, /plugins\[3\]\.config\.allow\[2\]: /);
    assert.ok(error.includes('plugins[4].config.allow_countries[0]: "UK" is not an ISO 3166-1 alpha-2 country code'), error);
    assert.match(error, /plugins\[4\]\.config\.allow_countries\[1\]: /);
    assert.ok(!error.includes("SECRET"), error);
  });
});
