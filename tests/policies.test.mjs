// Traffic policies under Miniflare (docs/traffic-policies.md): cors (preflight and actual requests per the
// Fetch standard, credentials, Vary, headers on the gateway's own errors), ip-restriction (IPv4, IPv6,
// IPv4-mapped, deny wins, status/message), geo-restriction (request.cf.country injected with MF-CF-Blob),
// request-size-limiting (Content-Length, units, 411, 417, a streamed body cut past the limit), and
// validation errors with JSON paths. Every example of the doc is one of the routes below.
import { describe, test, before, after } from "node:test";
import assert from "node:assert/strict";
import { startGateway, startOrigin, request, sleep, withCf } from "./support/harness.mjs";

const APP = "https://app.example.com";

/** The configuration of the doc's examples, one route each. */
function policiesConfig(originUrl, earlyUrl = originUrl) {
  const route = (name, path, extra = {}) => ({ name, service: "origin", paths: [path], strip_path: false, ...extra });
  const names = [
    "cors", "cors-default", "cors-star-credentials", "cors-continue", "cors-absent", "cors-auth",
    "cors-limited", "cors-get-only", "ip-internal", "ip-public", "geo-eu", "geo-downloads", "geo-strict",
    "geo-lenient", "size-upload", "size-strict", "size-mb", "size-default", "size-early",
  ];
  return {
    format_version: 1,
    services: [{ name: "origin", url: originUrl }, { name: "early", url: earlyUrl }],
    routes: names.map((n) =>
      route(n, `/${n}`, n === "cors-get-only" ? { methods: ["GET"] } : n === "size-early" ? { service: "early" } : {}),
    ),
    plugins: [
      {
        name: "cors", route: "cors",
        config: {
          origins: [APP, "https://.*\\.example\\.org"],
          methods: ["GET", "POST"],
          headers: ["X-Token", "Content-Type"],
          exposed_headers: ["X-Request-Id"],
          credentials: true,
          max_age: 600,
          private_network: true,
        },
      },
      { name: "cors", route: "cors-default" },
      { name: "cors", route: "cors-star-credentials", config: { origins: ["*"], credentials: true } },
      { name: "cors", route: "cors-continue", config: { origins: [APP], preflight_continue: true } },
      { name: "cors", route: "cors-absent", config: { origins: [APP], allow_origin_absent: false } },
      { name: "cors", route: "cors-auth", config: { origins: [APP], credentials: true } },
      { name: "key-auth", route: "cors-auth" },
      { name: "ip-restriction", route: "cors-auth", config: { deny: ["203.0.113.0/24"] } },
      { name: "cors", route: "cors-limited", config: { origins: [APP] } },
      { name: "rate-limiting", route: "cors-limited", config: { minute: 1, limit_by: "ip", policy: "local" } },
      { name: "cors", route: "cors-get-only", config: { origins: [APP] } },
      {
        name: "ip-restriction", route: "ip-internal",
        config: { allow: ["10.0.0.0/8", "2001:db8::/32"], deny: ["10.0.0.5"] },
      },
      {
        name: "ip-restriction", route: "ip-public",
        config: { deny: ["192.0.2.0/24", "2001:db8:bad::/48"], status: 404, message: "Nothing here" },
      },
      { name: "geo-restriction", route: "geo-eu", config: { allow_countries: ["DE", "FR"] } },
      {
        name: "geo-restriction", route: "geo-downloads",
        config: { deny_countries: ["RU", "T1"], status: 451, message: "Not available in your region" },
      },
      { name: "geo-restriction", route: "geo-strict", config: { deny_countries: ["RU"], unknown_country: "deny" } },
      {
        name: "geo-restriction", route: "geo-lenient",
        config: { allow_countries: ["DE"], unknown_country: "allow" },
      },
      { name: "request-size-limiting", route: "size-upload", config: { allowed_payload_size: 1, size_unit: "kilobytes" } },
      {
        name: "request-size-limiting", route: "size-strict",
        config: { allowed_payload_size: 10, size_unit: "bytes", require_content_length: true },
      },
      { name: "request-size-limiting", route: "size-mb", config: { allowed_payload_size: 1 } },
      { name: "request-size-limiting", route: "size-default" },
      { name: "request-size-limiting", route: "size-early", config: { allowed_payload_size: 1, size_unit: "kilobytes" } },
    ],
  };
}

function assertProblem(res, status, code, what = "") {
  assert.equal(res.status, status, `${what}: ${res.text}`);
  assert.match(res.headers["content-type"], /application\/problem\+json/, what);
  const body = res.json();
  assert.equal(body.code, code, what);
  assert.equal(body.status, status, what);
  return body;
}

const varyNames = (res) =>
  (res.headers.vary ?? "").split(",").map((s) => s.trim().toLowerCase()).filter(Boolean);

/** An async iterable of `n` chunks of `size` bytes, `gapMs` apart, that stops once `state.done`. */
async function* slowChunks(n, size, gapMs, state) {
  for (let i = 0; i < n && !state.done; i++) {
    yield Buffer.alloc(size, 0x61 + (i % 26));
    await sleep(gapMs);
  }
}

// Both paths of the Worker: reload 0 (every request re-reads the configuration pointer: the asynchronous one)
// and 1 (most requests take the synchronous one, as in production; tests/syncpath.test.mjs).
for (const reload of [0, 1]) describe(`traffic policies (CONFIG_RELOAD_SECONDS ${reload})`, { timeout: 120_000 }, () => {
  let gw, origin, early;
  const get = (path, headers = {}, opts = {}) => request(gw.at(path), { headers, ...opts });
  const hitsOf = (path) => origin.requests.filter((r) => r.url.startsWith(path)).length;

  before(async () => {
    // The origin sends its own CORS header and a Vary, which the plugin must replace and extend.
    origin = await startOrigin(async (req, res, record) => {
      res.writeHead(200, {
        "content-type": "application/json",
        vary: "Accept-Encoding",
        "access-control-allow-origin": "https://from-origin.test",
      });
      res.end(JSON.stringify({ method: record.method, url: record.url, length: record.body.length }));
    });
    // An origin that answers at once, before reading the body, and records whether the upload was cut.
    early = await startOrigin(
      (req, res, record) => {
        req.on("aborted", () => (record.aborted = true));
        req.on("error", () => (record.aborted = true));
        record.got = 0;
        req.on("data", (c) => (record.got += c.length));
        req.on("end", () => (record.ended = true));
        res.writeHead(200, { "content-type": "text/plain" });
        res.end("early");
        req.resume();
      },
      { rawBody: true },
    );
    gw = await startGateway({ reload, config: policiesConfig(origin.url, early.url) });
  });
  after(async () => {
    await gw?.dispose();
    await origin?.close();
    await early?.close();
  });

  describe("cors", () => {
    const preflight = (path, origin, extra = {}) =>
      get(path, { origin, "access-control-request-method": "POST", ...extra }, { method: "OPTIONS" });

    test("a preflight from a listed origin is answered at the edge with every option", async () => {
      const before = hitsOf("/cors");
      const res = await preflight("/cors", APP, {
        "access-control-request-headers": "x-token, content-type",
        "access-control-request-private-network": "true",
      });
      assert.equal(res.status, 200);
      assert.equal(res.body.length, 0);
      assert.equal(res.headers["access-control-allow-origin"], APP);
      assert.equal(res.headers["access-control-allow-credentials"], "true");
      assert.equal(res.headers["access-control-allow-methods"], "GET,POST");
      assert.equal(res.headers["access-control-allow-headers"], "X-Token,Content-Type");
      assert.equal(res.headers["access-control-max-age"], "600");
      assert.equal(res.headers["access-control-allow-private-network"], "true");
      // Configured headers: the answer depends on Origin and on the private-network request header.
      assert.deepEqual(varyNames(res), ["origin", "access-control-request-private-network"]);
      assert.equal(hitsOf("/cors"), before, "the origin never sees a preflight");
      // docs/proxying.md: the gateway's own answers carry Date (RFC 9110 section 6.6.1).
      assert.ok(Math.abs(Date.parse(res.headers.date) - Date.now()) < 60_000, `Date: ${res.headers.date}`);
      // Without Access-Control-Request-Private-Network, no private-network answer.
      const plain = await preflight("/cors", APP);
      assert.equal(plain.headers["access-control-allow-private-network"], undefined);
    });

    test("a preflight from an origin that is not allowed gets no Access-Control-* header", async () => {
      for (const o of ["https://evil.test", "http://app.example.com", "https://app.example.com.evil.test", "https://example.org"]) {
        const res = await preflight("/cors", o);
        assert.equal(res.status, 200, o);
        assert.equal(res.headers["access-control-allow-origin"], undefined, o);
        assert.equal(res.headers["access-control-allow-methods"], undefined, o);
        assert.deepEqual(varyNames(res), ["origin"], o);
      }
    });

    test("actual requests: listed and regex origins echoed with credentials, exposed headers, Vary extended", async () => {
      for (const o of [APP, "https://a.example.org", "https://b.c.example.org"]) {
        const res = await get("/cors", { origin: o });
        assert.equal(res.status, 200, o);
        assert.equal(res.headers["access-control-allow-origin"], o, o);
        assert.equal(res.headers["access-control-allow-credentials"], "true", o);
        assert.equal(res.headers["access-control-expose-headers"], "X-Request-Id", o);
        assert.deepEqual(varyNames(res), ["accept-encoding", "origin"], o);
      }
      // Not allowed: the origin's Access-Control-Allow-Origin is removed, Vary still names Origin.
      const evil = await get("/cors", { origin: "https://evil.test" });
      assert.equal(evil.status, 200);
      assert.equal(evil.headers["access-control-allow-origin"], undefined);
      assert.equal(evil.headers["access-control-allow-credentials"], undefined);
      assert.equal(evil.headers["access-control-expose-headers"], undefined);
      assert.deepEqual(varyNames(evil), ["accept-encoding", "origin"]);
      // No Origin (allow_origin_absent defaults to true): same as an origin that is not allowed.
      const none = await get("/cors");
      assert.equal(none.headers["access-control-allow-origin"], undefined);
      assert.deepEqual(varyNames(none), ["accept-encoding", "origin"]);
    });

    test("defaults: every origin with *, all methods, requested headers echoed, no Vary: Origin", async () => {
      const res = await preflight("/cors-default", "https://anyone.test", {
        "access-control-request-headers": "x-custom, authorization",
      });
      assert.equal(res.status, 200);
      assert.equal(res.headers["access-control-allow-origin"], "*");
      assert.equal(res.headers["access-control-allow-methods"], "GET,HEAD,PUT,PATCH,POST,DELETE,OPTIONS,TRACE,CONNECT");
      assert.equal(res.headers["access-control-allow-headers"], "x-custom, authorization");
      assert.equal(res.headers["access-control-max-age"], undefined);
      assert.equal(res.headers["access-control-allow-credentials"], undefined);
      // The requested headers are echoed, so the answer varies by them (and not by Origin).
      assert.deepEqual(varyNames(res), ["access-control-request-headers"]);
      const actual = await get("/cors-default", { origin: "https://anyone.test" });
      assert.equal(actual.headers["access-control-allow-origin"], "*");
      assert.deepEqual(varyNames(actual), ["accept-encoding"]);
    });

    test("credentials with every origin allowed echo the origin instead of *", async () => {
      const res = await get("/cors-star-credentials", { origin: "https://anyone.test" });
      assert.equal(res.headers["access-control-allow-origin"], "https://anyone.test");
      assert.equal(res.headers["access-control-allow-credentials"], "true");
      assert.deepEqual(varyNames(res), ["accept-encoding", "origin"]);
      const pre = await preflight("/cors-star-credentials", "https://anyone.test");
      assert.equal(pre.headers["access-control-allow-origin"], "https://anyone.test");
      assert.equal(pre.headers["access-control-allow-credentials"], "true");
      assert.deepEqual(varyNames(pre), ["origin", "access-control-request-headers"]);
    });

    test("preflight_continue passes the preflight to the origin, whose answer is sent unchanged", async () => {
      const before = hitsOf("/cors-continue");
      const res = await preflight("/cors-continue", APP);
      assert.equal(res.status, 200);
      assert.equal(res.json().method, "OPTIONS");
      assert.equal(hitsOf("/cors-continue"), before + 1);
      assert.equal(res.headers["access-control-allow-origin"], "https://from-origin.test");
      assert.deepEqual(varyNames(res), ["accept-encoding"]);
      // Actual requests still get the headers.
      const actual = await get("/cors-continue", { origin: APP });
      assert.equal(actual.headers["access-control-allow-origin"], APP);
    });

    test("allow_origin_absent: false leaves responses to requests without Origin alone", async () => {
      const res = await get("/cors-absent");
      assert.equal(res.headers["access-control-allow-origin"], "https://from-origin.test");
      assert.deepEqual(varyNames(res), ["accept-encoding"]);
      const withOrigin = await get("/cors-absent", { origin: APP });
      assert.equal(withOrigin.headers["access-control-allow-origin"], APP);
    });

    test("preflights skip authentication; the gateway's 401 and 403 carry the CORS headers", async () => {
      const pre = await preflight("/cors-auth", APP, { "access-control-request-headers": "apikey" });
      assert.equal(pre.status, 200);
      assert.equal(pre.headers["access-control-allow-origin"], APP);
      assert.equal(pre.headers["access-control-allow-headers"], "apikey");
      const denied = await get("/cors-auth", { origin: APP });
      assertProblem(denied, 401, "missing_credentials", "no key");
      assert.equal(denied.headers["access-control-allow-origin"], APP);
      assert.equal(denied.headers["access-control-allow-credentials"], "true");
      assert.ok(varyNames(denied).includes("origin"));
      assert.ok(denied.headers["www-authenticate"]);
      // An origin that is not allowed: the 401 without Access-Control-Allow-Origin.
      const evil = await get("/cors-auth", { origin: "https://evil.test" });
      assert.equal(evil.status, 401);
      assert.equal(evil.headers["access-control-allow-origin"], undefined);
    });

    test("the 429 of rate-limiting carries the CORS headers", async () => {
      const ip = { "cf-connecting-ip": "198.51.100.77", origin: APP };
      const first = await get("/cors-limited", ip);
      assert.equal(first.status, 200);
      assert.equal(first.headers["access-control-allow-origin"], APP);
      const second = await get("/cors-limited", ip);
      assertProblem(second, 429, "rate_limited");
      assert.equal(second.headers["access-control-allow-origin"], APP);
      assert.ok(varyNames(second).includes("origin"));
    });

    test("a route limited to GET answers a preflight 405 (list OPTIONS in its methods)", async () => {
      const res = await preflight("/cors-get-only", APP);
      assert.equal(res.status, 405);
    });
  });

  describe("ip-restriction", () => {
    const from = (path, ip) => get(path, { "cf-connecting-ip": ip });

    test("allow and deny lists, IPv4 and IPv6; deny wins", async () => {
      for (const ip of ["10.1.2.3", "10.255.255.255", "2001:db8::1", "2001:db8:ffff::42", "::ffff:10.9.9.9"]) {
        assert.equal((await from("/ip-internal", ip)).status, 200, ip);
      }
      for (const ip of ["10.0.0.5", "::ffff:10.0.0.5", "192.168.1.1", "11.0.0.1", "2001:db9::1", "::1"]) {
        const body = assertProblem(await from("/ip-internal", ip), 403, "ip_not_allowed", ip);
        assert.equal(body.detail, "Your IP address is not allowed");
        assert.equal(body.title, "Forbidden");
      }
    });

    test("status and message; addresses outside the deny list pass", async () => {
      for (const ip of ["192.0.2.50", "::ffff:192.0.2.1", "2001:db8:bad:1::1"]) {
        const body = assertProblem(await from("/ip-public", ip), 404, "ip_not_allowed", ip);
        assert.equal(body.detail, "Nothing here");
      }
      for (const ip of ["198.51.100.1", "2001:db8:bee::1"]) {
        assert.equal((await from("/ip-public", ip)).status, 200, ip);
      }
      // Without a client-sent CF-Connecting-IP, Miniflare reports 127.0.0.1.
      assert.equal((await get("/ip-public")).status, 200);
    });
  });

  describe("geo-restriction", () => {
    const fromCountry = (path, country) => get(path, withCf(country === undefined ? {} : { country }));

    test("allow_countries: listed countries pass; others and unknown are refused", async () => {
      for (const c of ["DE", "FR"]) assert.equal((await fromCountry("/geo-eu", c)).status, 200, c);
      for (const c of ["US", "XX", "T1", undefined]) {
        const body = assertProblem(await fromCountry("/geo-eu", c), 403, "country_not_allowed", String(c));
        assert.equal(body.detail, "Access from your country is not allowed");
      }
      // Miniflare's default cf object says US.
      assert.equal((await get("/geo-eu")).status, 403);
    });

    test("deny_countries with status 451 and a message; Tor listed as T1", async () => {
      for (const c of ["RU", "T1"]) {
        const body = assertProblem(await fromCountry("/geo-downloads", c), 451, "country_not_allowed", c);
        assert.equal(body.detail, "Not available in your region");
        assert.equal(body.title, "Unavailable for legal reasons");
      }
      for (const c of ["US", "DE", "XX", undefined]) {
        assert.equal((await fromCountry("/geo-downloads", c)).status, 200, String(c));
      }
    });

    test("unknown_country: deny refuses unknown, allow admits it", async () => {
      for (const c of ["XX", undefined]) {
        assertProblem(await fromCountry("/geo-strict", c), 403, "country_not_allowed", String(c));
        assert.equal((await fromCountry("/geo-lenient", c)).status, 200, String(c));
      }
      assert.equal((await fromCountry("/geo-strict", "DE")).status, 200);
      assert.equal((await fromCountry("/geo-lenient", "DE")).status, 200);
      assert.equal((await fromCountry("/geo-lenient", "US")).status, 403);
    });
  });

  describe("request-size-limiting", () => {
    const post = (path, body, headers = {}) => request(gw.at(path), { method: "POST", body, headers });

    test("a Content-Length over the limit is refused at once; within it passes", async () => {
      const before = hitsOf("/size-upload");
      const big = assertProblem(await post("/size-upload", Buffer.alloc(1025, 0x61)), 413, "payload_too_large");
      assert.match(big.detail, /1024 bytes/);
      assert.equal(hitsOf("/size-upload"), before, "the origin never saw it");
      const ok = await post("/size-upload", Buffer.alloc(1024, 0x61));
      assert.equal(ok.status, 200);
      assert.equal(ok.json().length, 1024);
    });

    test("Expect: 100-continue over the limit is a 417", async () => {
      const res = await post("/size-upload", Buffer.alloc(2048, 0x61), { expect: "100-continue" });
      assertProblem(res, 417, "payload_too_large");
    });

    test("size_unit megabytes is the default unit (1 MB = 1,048,576 bytes); 128 MB the default size", async () => {
      assertProblem(await post("/size-mb", Buffer.alloc(1024 * 1024 + 1, 0x61)), 413, "payload_too_large");
      assert.equal((await post("/size-mb", Buffer.alloc(1024 * 1024, 0x61))).status, 200);
      assert.equal((await post("/size-default", Buffer.alloc(2 * 1024 * 1024, 0x61))).status, 200);
    });

    test("a streamed body within the limit reaches the origin whole", async () => {
      const state = { done: false };
      const res = await post("/size-upload", slowChunks(4, 256, 5, state));
      state.done = true;
      assert.equal(res.status, 200);
      assert.equal(res.json().length, 1024);
    });

    test("a streamed body over the limit is cut: the origin gets an incomplete request, the client a 413", async () => {
      const state = { done: false };
      const res = await post("/size-upload", slowChunks(16, 256, 20, state)).finally(() => (state.done = true));
      const body = assertProblem(res, 413, "payload_too_large");
      assert.match(body.detail, /1024 bytes/);
      await sleep(100);
      const seen = origin.requests.filter((r) => r.url.startsWith("/size-upload") && r.method === "POST");
      for (const r of seen) assert.ok(r.body === null || r.body.length <= 1024, "no complete body reached the origin");
    });

    test("an origin that answered first: the client gets its answer, the origin at most the limit", async () => {
      const state = { done: false };
      const res = await post("/size-early", slowChunks(16, 256, 20, state));
      assert.equal(res.status, 200);
      assert.equal(res.text, "early");
      // Keep sending past the limit: the upload to the origin stops there (workerd ends it as if complete).
      for (let i = 0; i < 40 && !early.last?.ended && !early.last?.aborted; i++) await sleep(50);
      state.done = true;
      assert.ok(early.last.got <= 1024, `the origin got ${early.last.got} bytes`);
      assert.ok(early.last.ended || early.last.aborted);
    });

    test("require_content_length: a chunked body is a 411; bodiless and sized requests pass", async () => {
      const state = { done: false };
      const chunked = await post("/size-strict", slowChunks(1, 5, 0, state));
      state.done = true;
      assertProblem(chunked, 411, "length_required");
      assert.equal((await get("/size-strict")).status, 200);
      assert.equal((await post("/size-strict", "0123456789")).status, 200);
      assertProblem(await post("/size-strict", "0123456789X"), 413, "payload_too_large");
    });
  });

  test("invalid CIDRs, regexes, country codes, units and unknown fields are validation errors with paths", async () => {
    const bad = policiesConfig(origin.url, early.url);
    bad.plugins = [
      { name: "ip-restriction", route: "ip-internal", config: { allow: ["10.0.0.0/8", "10.0.0.0/33", "2001:db8::/129", "nope"] } },
      { name: "cors", route: "cors", config: { origins: ["https://(unclosed"], methods: ["FETCH"], origin: [] } },
      { name: "cors", route: "cors-default", config: { origins: ["app.example.com"] } },
      { name: "geo-restriction", route: "geo-eu", config: { allow_countries: ["DE", "UK"] } },
      { name: "request-size-limiting", route: "size-upload", config: { size_unit: "gigabytes" } },
      { name: "ip-restriction", route: "ip-public", config: { deny: ["1.2.3.4"], whitelist: [] } },
    ];
    const version = await gw.putConfig(bad);
    // The previous version keeps serving.
    assert.equal((await get("/cors-default")).status, 200);
    let line;
    for (let i = 0; i < 50 && !line; i++) {
      line = gw.logs.find((l) => l.json?.event === "config_rejected" && l.json?.version === version);
      if (!line) await sleep(50);
    }
    assert.ok(line, "a config_rejected line");
    const error = line.json.error;
    for (const path of [
      "plugins[0].config.allow[1]",
      "plugins[0].config.allow[2]",
      "plugins[0].config.allow[3]",
      "plugins[1].config",
      "plugins[2].config.origins[0]",
      "plugins[3].config.allow_countries[1]",
      "plugins[4].config.size_unit",
      "plugins[5].config",
    ]) {
      assert.ok(error.includes(path), `${path} in ${error}`);
    }
    await gw.putConfig(policiesConfig(origin.url, early.url));
  });
});
