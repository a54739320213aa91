// The docs as a contract, second audit of docs/routing.md and docs/proxying.md: every statement of the
// two pages checked from outside, on both paths a request can take (CONFIG_RELOAD_SECONDS "0": every
// request re-reads the configuration pointer and runs as a Rust future; "1": most requests take the
// synchronous path that production traffic takes). The first audit (tests/docs-contract-routing.test.mjs,
// tests/docs-contract-proxy.test.mjs) ran on the asynchronous path only; this file repeats its key
// statements on both paths and adds the ones it left out: the whole upstream-path tables, the runtime's
// own URL parsing before the Worker runs, preserve_host's Host, Max-Forwards edge values, 405 rules,
// response hop-by-hop headers, validation messages.
import { describe, test, before, after } from "node:test";
import assert from "node:assert/strict";
import net from "node:net";
import { startGateway, startOrigin, request, closedPort, sleep, waitFor, problemOf, putAndWait, rejected, raw } from "./support/harness.mjs";

const UUID_RE = /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;

function assertProblem(res, status, code, what = "") {
  assert.equal(res.status, status, `${what}: ${res.text}`);
  assert.match(res.headers["content-type"] ?? "", /^application\/problem\+json/, what);
  const p = problemOf(res);
  assert.equal(p.code, code, what);
  assert.equal(p.status, status, what);
  assert.equal(p.request_id, res.headers["x-request-id"], what);
  assert.equal(res.headers["cache-control"], "no-store", what);
  return p;
}

let serial = 0;

/** The access log line of the request with this X-Request-Id. */
async function logOf(gw, id) {
  const line = await waitFor(() => gw.logs.find((l) => l.json?.event === "request" && l.json.request_id === id), { what: `log of ${id}` });
  return line.json;
}

for (const reload of ["0", "1"]) describe(`docs/routing.md and docs/proxying.md, second audit (CONFIG_RELOAD_SECONDS ${reload})`, { timeout: 300_000 }, () => {
  let gw, o, doc;

  /** The request `origin` received for one request to the gateway (null when none reached it). */
  async function upstream(path, headers = {}, opts = {}) {
    const id = `rt2-${reload}-${++serial}`;
    const before = o.requests.length;
    const res = await request(gw.at(path), { ...opts, headers: { "x-request-id": id, ...headers } });
    const up = o.requests.slice(before).find((r) => r.headers["x-request-id"] === id) ?? null;
    return { res, up, id };
  }
  /** Same on a raw socket (for paths and hosts node's client would not send as they are). */
  async function upstreamRaw(requestLine, lines = [], body = "") {
    const id = `rt2r-${reload}-${++serial}`;
    const before = o.requests.length;
    const host = lines.some((l) => /^host:/i.test(l)) ? [] : ["Host: gw.test"];
    const res = await raw(gw.url, [requestLine, ...host, `X-Request-Id: ${id}`, ...lines].join("\r\n"), body);
    const up = o.requests.slice(before).find((r) => r.headers["x-request-id"] === id) ?? null;
    return { res, up, id };
  }
  const routeOf = async (path, headers = {}, opts = {}) => {
    const { res, id } = await upstream(path, headers, opts);
    return { status: res.status, route: (await logOf(gw, id)).route };
  };

  before(async () => {
    gw = await startGateway({ bindings: { CONFIG_RELOAD_SECONDS: reload } });
    o = await startOrigin(async (req, res, record) => {
      const q = new URL(record.url, "http://x").searchParams;
      if (q.get("status")) {
        const status = Number(q.get("status"));
        const extra = q.get("hop")
          ? { connection: "x-hop-resp", "x-hop-resp": "1", "keep-alive": "timeout=5", "proxy-authenticate": "Basic", trailer: "x-t" }
          : {};
        if (q.get("location")) extra.location = q.get("location");
        res.writeHead(status, { etag: '"v1"', "cache-control": "max-age=60", ...extra });
        res.end(status === 204 || status === 304 ? undefined : `status ${status}`);
        return;
      }
      if (q.get("via")) res.setHeader("via", "1.1 origin-cache");
      if (q.get("cookies")) {
        res.setHeader("set-cookie", ["a=1; Path=/", "b=2; Expires=Wed, 21 Oct 2037 07:28:00 GMT"]);
      }
      res.writeHead(200, { "content-type": "application/json", "content-length": Buffer.byteLength(record.url), "x-origin": "yes" });
      res.end(req.method === "HEAD" ? undefined : record.url);
    });
    const svc = (name, path, extra = {}) => ({ name, url: o.url + path, ...extra });
    doc = {
      format_version: 1,
      services: [
        svc("base", "/base"),
        svc("echo-base", "/echo/base"),
        svc("s", "/s/"),
        svc("ss", "/s//"),
        svc("root", "/"),
        svc("none", ""),
        svc("hdr", "/h", { headers: { "x-api-version": "2" } }),
        { name: "local", url: o.url.replace("127.0.0.1", "localhost") },
      ],
      routes: [
        // The upstream path tables of routing.md and proxying.md.
        { name: "api", service: "base", paths: ["/api"] },
        { name: "keep", service: "base", paths: ["/keep"], strip_path: false },
        { name: "health", service: "base", paths: ["=/health"] },
        { name: "hk", service: "base", paths: ["=/hk"], strip_path: false },
        { name: "files", service: "base", paths: ["/files/{*rest}"] },
        { name: "users", service: "base", paths: ["/users/{id}"], rewrite: "/v2/users/{id}" },
        { name: "st", service: "base", paths: ["/st/{*rest}"], rewrite: "/storage/{rest}" },
        { name: "orders", service: "base", paths: ["~^/orders/(?P<order>[0-9]+)$"], rewrite: "/o/{order}" },
        { name: "x-slash", service: "base", paths: ["~^/x[0-9]+/"] },
        { name: "p", service: "s", paths: ["/p"] },
        { name: "pkeep", service: "s", paths: ["/pkeep"], strip_path: false },
        { name: "su", service: "s", paths: ["/su/{id}"], rewrite: "/v2/users/{id}" },
        { name: "pss", service: "ss", paths: ["/pss"] },
        { name: "proot", service: "root", paths: ["/proot"] },
        { name: "pnone", service: "none", paths: ["/pnone"] },
        // The invalid_path table (service http://origin/echo/base).
        { name: "v", service: "echo-base", paths: ["~^/v[0-9]+"] },
        { name: "w", service: "echo-base", paths: ["~^/w"] },
        { name: "rr", service: "echo-base", paths: ["~^/rr/(?P<n>[^/]+)\\.json$"], rewrite: "/{n}" },
        { name: "eapi", service: "echo-base", paths: ["/eapi"] },
        // Hosts, methods, headers.
        { name: "h-exact", service: "none", hosts: ["API.Example.com"], paths: ["/h"] },
        { name: "h-wild", service: "none", hosts: ["*.example.com"], paths: ["/h"] },
        { name: "get", service: "none", paths: ["/get"], methods: ["GET"] },
        { name: "m-a", service: "none", paths: ["/m"], methods: ["PUT", "GET"] },
        { name: "m-b", service: "none", paths: ["/m"], methods: ["POST", "GET"], priority: 1 },
        { name: "m-hdr", service: "none", paths: ["/m"], methods: ["DELETE"], headers: { "x-env": ["prod"] } },
        { name: "m-host", service: "none", hosts: ["other.test"], paths: ["/m"], methods: ["PATCH"] },
        { name: "env", service: "none", paths: ["/env"], headers: { "x-env": ["~^stag", "prod"] } },
        { name: "any-hdr", service: "none", paths: ["/anyh"], headers: { "X-Probe": ["~"] } },
        { name: "host-hdr", service: "none", paths: ["/hosth"], headers: { host: ["api.test"] } },
        { name: "svc-hdr", service: "hdr", paths: ["/svch"] },
        { name: "ph", service: "none", paths: ["/ph"], preserve_host: true },
        { name: "pl", service: "local", paths: ["/pl"] },
        { name: "opts", service: "none", paths: ["/opts"] },
        { name: "opts-m", service: "none", paths: ["/optm"], methods: ["TRACE", "GET", "OPTIONS"] },
        { name: "tmpl-rest", service: "none", paths: ["/t/{*rest}"] },
        { name: "tmpl-one", service: "none", paths: ["/t/{name}"] },
        { name: "probe", service: "none", paths: ["=/__probe"], methods: ["GET"] },
      ],
    };
    await putAndWait(gw, doc);
  });
  after(async () => {
    await gw?.dispose();
    await o?.close();
  });

  // ------------------------------------------------------------------------------- routing.md: the upstream path

  describe("routing.md: the upstream path", () => {
    test("service URL http://up:9000/base: every row of the table", async () => {
      for (const [path, expected] of [
        ["/api/x/y", "/base/x/y"],
        ["/api", "/base"],
        ["/api/", "/base/"],
        ["/api/x/", "/base/x/"],
        ["/keep/x", "/base/keep/x"],
        ["/health", "/base"],
        ["/files/a/b", "/base/a/b"],
        ["/users/a%20b?x=1", "/base/v2/users/a%20b?x=1"],
        ["/api/x?a=1&b=%20", "/base/x?a=1&b=%20"],
      ]) {
        const { res, up } = await upstream(path);
        assert.equal(res.status, 200, `${path}: ${res.text}`);
        assert.equal(up.url, expected, path);
      }
    });

    test("service URL http://up:9000/s/: every row of the table; runs of / at the end count as one", async () => {
      for (const [path, expected] of [
        ["/p", "/s/"],
        ["/p/", "/s/"],
        ["/p/x", "/s/x"],
        ["/p/x/?a=1", "/s/x/?a=1"],
        ["/pkeep/x", "/s/pkeep/x"],
        ["/su/7", "/s/v2/users/7"],
        ["/pss", "/s/"],
        ["/pss/x/", "/s/x/"],
      ]) {
        const { up } = await upstream(path);
        assert.equal(up?.url, expected, path);
      }
    });

    test("no base path: http://svc/ and http://svc give / for a stripped prefix, and keep a final /", async () => {
      for (const [path, expected] of [
        ["/proot", "/"],
        ["/proot/", "/"],
        ["/proot/x/", "/x/"],
        ["/pnone", "/"],
        ["/pnone/x", "/x"],
      ]) {
        assert.equal((await upstream(path)).up?.url, expected, path);
      }
    });

    test("strip_path per kind: exact gives /, {*rest} keeps the rest, a regex removes what it matched", async () => {
      for (const [path, expected] of [
        ["/files", "/base"],
        ["/files/", "/base/"],
        ["/x2/", "/base/"],
        ["/x2/a", "/base/a"],
        ["/w2/items", "/echo/base/2/items"],
        ["/v2/items", "/echo/base/items"],
        ["/hk", "/base/hk"],
      ]) {
        assert.equal((await upstream(path)).up?.url, expected, path);
      }
    });

    test("rewrite fills {name} from template parameters or named regex groups; strip_path is ignored", async () => {
      for (const [path, expected] of [
        ["/users/42?fields=name", "/base/v2/users/42?fields=name"],
        ["/st/a/b/c.txt", "/base/storage/a/b/c.txt"],
        ["/orders/123", "/base/o/123"],
      ]) {
        const { up } = await upstream(path);
        assert.equal(up?.url, expected, path);
        assert.equal(up.headers["x-forwarded-prefix"], undefined, `${path}: nothing was stripped`);
      }
    });

    test("proxying.md's table: the query string is kept, repeated and percent-encoded parameters included", async () => {
      for (const [path, expected] of [
        ["/api/users/7?x=1&x=3", "/base/users/7?x=1&x=3"],
        ["/keep/users/7", "/base/keep/users/7"],
        ["/api/x?a=%2F&b=+&c=%zz&&d", "/base/x?a=%2F&b=+&c=%zz&&d"],
      ]) {
        assert.equal((await upstream(path)).up?.url, expected, path);
      }
      // An empty query is dropped with its "?".
      assert.equal((await upstreamRaw("GET /api/x? HTTP/1.1")).up?.url, "/base/x");
      assert.equal((await upstreamRaw("GET /api? HTTP/1.1")).up?.url, "/base");
      // =/health with strip_path false: the whole path.
      assert.equal((await upstream("/hk")).up?.url, "/base/hk");
    });
  });

  describe("routing.md: the upstream path never leaves the service's base path", () => {
    test("the table: dot segments in any spelling are 400 invalid_path and never reach the origin", async () => {
      for (const path of ["/v2../admin/x", "/w%2e%2e/admin/x", "/rr/...json", "/eapi/..%2Fadmin", "/eapi/a%2F..%2Fb", "/eapi/..;x/y", "/w.%2e"]) {
        const { res, up, id } = await upstreamRaw(`GET ${path} HTTP/1.1`);
        assert.equal(up, null, `${path} reached the origin as ${up?.url}`);
        assert.equal(res.status, 400, `${path}: ${res.text.slice(0, 300)}`);
        assert.match(res.text, /"code":"invalid_path"/, path);
        const line = await logOf(gw, id);
        assert.equal(line.error, "invalid_path", path);
        assert.equal(line.route, null, path);
      }
    });

    test("dots inside a segment and %252e pass as they are", async () => {
      for (const [path, expected] of [
        ["/v2/file.tar.gz", "/echo/base/file.tar.gz"],
        ["/eapi/a..b", "/echo/base/a..b"],
        ["/eapi/...", "/echo/base/..."],
        ["/eapi/.well-known/x", "/echo/base/.well-known/x"],
        ["/eapi/%252e%252e/x", "/echo/base/%252e%252e/x"],
      ]) {
        assert.equal((await upstreamRaw(`GET ${path} HTTP/1.1`)).up?.url, expected, path);
      }
    });

    test("a path that matches no route is still 404, a wrong method still 405", async () => {
      assertProblem(await request(gw.at("/nowhere/..%2Fx")), 404, "no_route");
      const res = await request(gw.at("/get/..%2Fx"), { method: "POST" });
      assertProblem(res, 405, "method_not_allowed");
    });
  });

  // ------------------------------------------------------------------------------- routing.md: normal form

  describe("routing.md: path normalization and what the runtime does first", () => {
    test("the normal form is matched, forwarded and sent as X-Forwarded-Path; the log has the path as received", async () => {
      for (const [path, expected, xfp] of [
        ["/%61pi/x", "/base/x", "/api/x"],
        ["/api/%7Euser", "/base/~user", "/api/~user"],
        ["/api/a%2fb", "/base/a%2Fb", "/api/a%2Fb"],
        ["/api/caf%c3%a9", "/base/caf%C3%A9", "/api/caf%C3%A9"],
        ["//api//x", "/base/x", "/api/x"],
        ["/api/%zz/%", "/base/%zz/%", "/api/%zz/%"],
        ["/api/X?q=%7e//", "/base/X?q=%7e//", "/api/X"],
      ]) {
        const { up, id } = await upstreamRaw(`GET ${path} HTTP/1.1`);
        assert.equal(up?.url, expected, path);
        assert.equal(up.headers["x-forwarded-path"], xfp, path);
        assert.equal((await logOf(gw, id)).path, path.split("?")[0], path);
      }
      // Case is kept: /API is not /api.
      assert.equal((await upstreamRaw("GET /API/x HTTP/1.1")).res.status, 404);
    });

    test("the runtime resolves dot segments and reads \\ as / in the request URL before the Worker sees it", async () => {
      for (const [path, seen] of [
        ["/api/x/../y", "/api/y"],
        ["/api/%2e%2e/api/y", "/api/y"],
        ["/api/x/.", "/api/x/"],
        ["/api/x\\y", "/api/x/y"],
      ]) {
        const { up, id } = await upstreamRaw(`GET ${path} HTTP/1.1`);
        assert.equal((await logOf(gw, id)).path, seen, path);
        assert.equal(up?.headers["x-forwarded-path"], seen, path);
      }
      // So a request path with .. cannot reach a route it climbs out of: /eapi/../api/x is the route api.
      const { up } = await upstreamRaw("GET /eapi/../api/x HTTP/1.1");
      assert.equal(up?.url, "/base/x");
    });

    test("the runtime percent-encodes the bytes a URL path may not hold; the gateway forwards that spelling", async () => {
      const { up, id } = await upstreamRaw('GET /api/a"b<c>d`e{f}g^h|i HTTP/1.1');
      assert.equal(up?.url, "/base/a%22b%3Cc%3Ed%60e%7Bf%7Dg%5Eh|i");
      assert.equal((await logOf(gw, id)).path, "/api/a%22b%3Cc%3Ed%60e%7Bf%7Dg%5Eh|i");
      const kept = "!$&'()*+,;=:@-._~%25";
      assert.equal((await upstreamRaw(`GET /api/${kept} HTTP/1.1`)).up?.url, `/base/${kept}`);
      const utf8 = await upstreamRaw(`GET /api/${Buffer.from("é", "utf8").toString("latin1")} HTTP/1.1`);
      assert.equal(utf8.up?.url, "/base/%C3%A9");
    });
  });

  // --------------------------------------------------------------------------- routing.md: hosts, methods, headers

  describe("routing.md: hosts, methods and headers", () => {
    test("hosts: pattern case does not matter; the port and a trailing dot of the request are ignored", async () => {
      for (const [host, expected] of [
        ["api.example.com", "h-exact"],
        ["API.EXAMPLE.COM.:8443", "h-exact"],
        ["www.example.com", "h-wild"],
        ["a.b.example.com.", "h-wild"],
        ["example.com", null],
        ["badexample.com", null],
      ]) {
        assert.equal((await routeOf("/h", { host })).route, expected, host);
      }
      // A wildcard stands for non-empty labels: a host with an empty label (the runtime lets it
      // through) matches no wildcard.
      for (const host of [".example.com", "a..example.com", ".www.example.com"]) {
        const { res, id } = await upstreamRaw("GET /h HTTP/1.1", [`Host: ${host}`]);
        assert.equal(res.status, 404, host);
        assert.equal((await logOf(gw, id)).host, host);
      }
    });

    test("methods: HEAD is not implied by GET; the 405's Allow is the sorted union of routes matching host, path and headers", async () => {
      let { res } = await upstream("/get", {}, { method: "HEAD" });
      assert.equal(res.status, 405);
      assert.match(res.headers["content-type"], /^application\/problem\+json/);
      assert.equal(res.headers.allow, "GET");
      assert.equal(res.body.length, 0, "no body on HEAD");
      ({ res } = await upstream("/m", {}, { method: "OPTIONS" }));
      assertProblem(res, 405, "method_not_allowed");
      assert.equal(res.headers.allow, "GET, POST, PUT", "m-hdr's DELETE needs x-env, m-host's PATCH another host");
      ({ res } = await upstream("/m", { "x-env": "PROD" }, { method: "OPTIONS" }));
      assert.equal(res.headers.allow, "DELETE, GET, POST, PUT");
      ({ res } = await upstream("/m", { host: "other.test" }, { method: "OPTIONS" }));
      assert.equal(res.headers.allow, "GET, PATCH, POST, PUT");
      // No route matching host, path and headers at all: 404.
      ({ res } = await upstream("/anyh", {}, { method: "POST" }));
      assertProblem(res, 404, "no_route");
    });

    test("headers: a list accepts any of its values; exact values ignore case, a regex is searched", async () => {
      for (const [value, expected] of [
        ["PROD", "env"],
        ["staging-2", "env"],
        ["my-staging", null],
        [["dev", "staging"], null],
        [["staging", "dev"], "env"],
      ]) {
        assert.equal((await routeOf("/env", { "x-env": value })).route, expected, JSON.stringify(value));
      }
      assert.equal((await routeOf("/anyh", { "x-probe": "" })).route, "any-hdr");
      // A `host` condition compares the Host header as sent (unlike `hosts`).
      for (const [host, expected] of [
        ["api.test", "host-hdr"],
        ["API.test", "host-hdr"],
        ["api.test:8080", null],
        ["api.test.", null],
      ]) {
        assert.equal((await routeOf("/hosth", { host })).route, expected, host);
      }
    });

    test("templates with the same literal segments: the one without {*rest} wins where both match", async () => {
      assert.equal((await routeOf("/t/a")).route, "tmpl-one");
      assert.equal((await routeOf("/t/a/b")).route, "tmpl-rest");
      assert.equal((await routeOf("/t")).route, "tmpl-rest");
      assert.equal((await routeOf("/t/")).route, "tmpl-rest");
    });
  });

  describe("proxying.md: request targets the local runtime refuses before the Worker runs", () => {
    test("absolute-form targets, a Host that is not a host name, two Host lines: 500 from workerd, no log line", async () => {
      for (const head of [
        `GET http://127.0.0.1:${gw.url.port}/api/x HTTP/1.1\r\nHost: 127.0.0.1:${gw.url.port}`,
        "GET /api/x HTTP/1.1\r\nHost: bad host",
        "GET /api/x HTTP/1.1\r\nHost: a.test\r\nHost: b.test",
      ]) {
        const id = `abs-${reload}-${++serial}`;
        const before = o.requests.length;
        const res = await raw(gw.url, `${head}\r\nX-Request-Id: ${id}`);
        assert.equal(res.status, 500, head);
        assert.equal(o.requests.length, before, head);
        await sleep(200);
        assert.ok(!gw.logs.some((l) => l.json?.request_id === id), head);
      }
    });
  });

  // ------------------------------------------------------------------------------------ proxying.md: Host

  describe("proxying.md: the Host header", () => {
    test("by default the service's host[:port]", async () => {
      assert.equal((await upstream("/api/x", { host: "client.test" })).up.headers.host, `127.0.0.1:${o.port}`);
      assert.equal((await upstream("/pl/x", { host: "client.test" })).up.headers.host, `localhost:${o.port}`);
    });

    test("preserve_host: the client's host name (lower case, no trailing dot, its port dropped), then the service's port", async () => {
      for (const host of ["localhost", "LocalHost.", "localhost:1234"]) {
        const { up } = await upstream("/ph/x", { host });
        assert.equal(up?.headers.host, `localhost:${o.port}`, host);
        assert.equal(up.url, "/x", host);
      }
    });
  });

  // --------------------------------------------------------------------------- proxying.md: request headers

  describe("proxying.md: request headers sent upstream", () => {
    test("Via, X-Forwarded-For appended; X-Forwarded-Proto, -Host, -Port replaced", async () => {
      const { up } = await upstream("/api/x", {
        host: "API.Example.com.:8443",
        via: "1.0 fred",
        "x-forwarded-for": "203.0.113.9, 198.51.100.2",
        "x-forwarded-proto": "https",
        "x-forwarded-host": "evil.test",
        "x-forwarded-port": "1",
      });
      assert.equal(up.headers.via, "1.0 fred, 1.1 edgegate");
      assert.equal(up.headers["x-forwarded-for"], "203.0.113.9, 198.51.100.2, 127.0.0.1");
      assert.equal(up.headers["x-forwarded-proto"], "http");
      assert.equal(up.headers["x-forwarded-host"], "api.example.com");
      assert.equal(up.headers["x-forwarded-port"], "8443");
      const plain = (await upstream("/api/x", { host: "plain.test" })).up;
      assert.equal(plain.headers["x-forwarded-port"], "80", "http without a port in the URL");
      assert.equal(plain.headers.via, "1.1 edgegate");
      assert.equal(plain.headers["x-forwarded-for"], "127.0.0.1");
    });

    test("X-Forwarded-Prefix: the stripped part in normal form without a trailing /, else absent (a client's removed)", async () => {
      for (const [path, prefix] of [
        ["/api/x", "/api"],
        ["/%61pi/", "/api"],
        ["/v2/items", "/v2"],
        ["/health", "/health"],
        ["/files/a", "/files"],
        ["/x2/a", "/x2"],
        ["/keep/x", undefined],
        ["/users/7", undefined],
        ["/opts/x", "/opts"],
      ]) {
        const { up } = await upstreamRaw(`GET ${path} HTTP/1.1`, ["X-Forwarded-Prefix: /client"]);
        assert.equal(up?.headers["x-forwarded-prefix"], prefix, path);
      }
    });

    test("X-Request-Id: 1 to 200 allowed characters are kept, anything else replaced by a UUID v4", async () => {
      const id = "Req_1.2:3-" + "z".repeat(190);
      const kept = await request(gw.at("/api/x"), { headers: { "x-request-id": id } });
      assert.equal(o.requests.at(-1).headers["x-request-id"], id);
      assert.equal(kept.headers["x-request-id"], id);
      const before = o.requests.length;
      const res = await request(gw.at("/api/x"), { headers: { "x-request-id": "z".repeat(201) } });
      assert.match(res.headers["x-request-id"], UUID_RE);
      assert.equal(o.requests.at(-1).headers["x-request-id"], res.headers["x-request-id"]);
      assert.equal(o.requests.length, before + 1);
    });

    test("hop-by-hop headers, those Connection names, Expect and the client's identity headers are not forwarded", async () => {
      const { up } = await upstreamRaw("POST /api/x HTTP/1.1", [
        "Connection: keep-alive, X-Secret-Hop",
        "X-Secret-Hop: 1",
        "Keep-Alive: timeout=5",
        "TE: trailers",
        "Trailer: x-t",
        "Upgrade: h2c",
        "Proxy-Authorization: Basic eDp5",
        "Proxy-Authenticate: Basic",
        "Proxy-Connection: keep-alive",
        "X-Consumer-ID: forged",
        "X-Consumer-Username: forged",
        "X-Consumer-Custom-ID: forged",
        "X-Credential-Identifier: forged",
        "X-Consumer-Groups: forged",
        "X-Anonymous-Consumer: true",
        "x_consumer_username: forged",
        "X_Consumer_Username: forged",
        "x-consumer_id: forged",
        "x_forwarded_for: 6.6.6.6",
        "x_custom_thing: kept",
        "Forwarded: for=192.0.2.60",
        "Expect: 100-continue",
        "Content-Length: 5",
      ], "hello");
      assert.ok(up, "the request reached the origin");
      for (const name of ["x-secret-hop", "keep-alive", "te", "trailer", "upgrade", "proxy-authorization", "proxy-authenticate",
        "proxy-connection", "expect", "x-consumer-id", "x-consumer-username", "x-consumer-custom-id", "x-credential-identifier",
        "x-consumer-groups", "x-anonymous-consumer", "x_consumer_username", "x-consumer_id", "x_forwarded_for"]) {
        assert.equal(up.headers[name], undefined, `${name} reached the origin`);
      }
      assert.equal(up.headers.x_custom_thing, "kept");
      assert.equal(up.headers.forwarded, "for=192.0.2.60", "Forwarded passes unchanged");
      assert.equal(up.body.toString(), "hello");
    });

    test("a header the client's Connection names is not continued by the gateway's own (Via, X-Forwarded-For, traceparent, Max-Forwards)", async () => {
      const trace = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
      let { up } = await upstream("/api/x", {
        connection: "Via, X-Forwarded-For, traceparent",
        via: "1.0 fred",
        "x-forwarded-for": "6.6.6.6",
        traceparent: trace,
        tracestate: "congo=t61rcWkgMzE",
      });
      assert.equal(up.headers.via, "1.1 edgegate");
      assert.equal(up.headers["x-forwarded-for"], "127.0.0.1");
      assert.match(up.headers.traceparent, /^00-[0-9a-f]{32}-[0-9a-f]{16}-[0-9a-f]{2}$/);
      assert.ok(!up.headers.traceparent.includes("4bf92f3577b34da6a3ce929d0e0e4736"), up.headers.traceparent);
      assert.equal(up.headers.tracestate, undefined);
      ({ up } = await upstream("/opts/x", { connection: "max-forwards", "max-forwards": "3" }, { method: "OPTIONS" }));
      assert.equal(up?.headers["max-forwards"], undefined);
      // Without Connection naming them, they are continued.
      ({ up } = await upstream("/api/x", { via: "1.0 fred", "x-forwarded-for": "6.6.6.6", traceparent: trace }));
      assert.equal(up.headers.via, "1.0 fred, 1.1 edgegate");
      assert.equal(up.headers["x-forwarded-for"], "6.6.6.6, 127.0.0.1");
      assert.ok(up.headers.traceparent.includes("4bf92f3577b34da6a3ce929d0e0e4736"));
    });

    test("the runtime adds CF-Worker and replaces Accept-Encoding with br, gzip", async () => {
      for (const ae of [undefined, "identity", "deflate"]) {
        const { up } = await upstream("/api/x", ae ? { "accept-encoding": ae, "cf-worker": "forged" } : {});
        assert.equal(up.headers["accept-encoding"], "br, gzip", String(ae));
        assert.equal(up.headers["cf-worker"], "worker.example.com", String(ae));
      }
    });

    test("the service's headers replace a client header of the same name; its underscore spelling is removed", async () => {
      const { up } = await upstream("/svch/x", { "X-API-Version": "1", x_api_version: "1" });
      assert.equal(up.headers["x-api-version"], "2");
      assert.equal(up.headers.x_api_version, undefined);
      // On a service without that header, the underscore spelling passes (it is nothing of the gateway's there).
      assert.equal((await upstream("/api/x", { x_api_version: "1" })).up.headers.x_api_version, "1");
    });
  });

  // ------------------------------------------------------------------------------------ proxying.md: Max-Forwards

  describe("proxying.md: Max-Forwards (RFC 9110 section 7.6.2)", () => {
    test("TRACE and OPTIONS: decremented above 0; anything but digits is forwarded unchanged; other methods never read it", async () => {
      for (const [method, sent, got] of [
        ["OPTIONS", "5", "4"],
        ["TRACE", "1", "0"],
        ["OPTIONS", "01", "0"],
        ["OPTIONS", "-1", "-1"],
        ["OPTIONS", "+1", "+1"],
        ["OPTIONS", "1e2", "1e2"],
        ["OPTIONS", "1, 2", "1, 2"],
        ["OPTIONS", "99999999999999999999", "18446744073709551614"],
        ["GET", "0", "0"],
        ["DELETE", "5", "5"],
      ]) {
        const { up } = await upstream("/opts/x", { "max-forwards": sent }, { method });
        assert.equal(up?.headers["max-forwards"], got, `${method} ${sent}`);
        assert.equal(up.method, method);
      }
    });

    test("Max-Forwards: 0 (or 00) on OPTIONS: 200, no body, Allow of the route; nothing upstream", async () => {
      const before = o.requests.length;
      for (const [path, allow] of [
        ["/opts/x", "DELETE, GET, HEAD, OPTIONS, PATCH, POST, PUT, TRACE"],
        ["/optm/x", "GET, OPTIONS, TRACE"],
      ]) {
        const id = `mf0-${reload}-${++serial}`;
        const res = await request(gw.at(path), { method: "OPTIONS", headers: { "max-forwards": "00", "x-request-id": id } });
        assert.equal(res.status, 200, res.text);
        assert.equal(res.headers.allow, allow);
        assert.equal(res.body.length, 0);
        const line = await logOf(gw, id);
        assert.equal(line.upstream, null);
        assert.equal(line.attempts, null);
        assert.equal(line.status, 200);
      }
      assert.equal(o.requests.length, before, "the origin is not contacted");
    });

    test("Max-Forwards: 0 on TRACE: message/http echo of the request, without credentials", async () => {
      const before = o.requests.length;
      const res = await request(gw.at("/optm/t?q=1"), {
        method: "TRACE",
        headers: { "max-forwards": "0", authorization: "Bearer s3cret", cookie: "sid=s3cret", "x-api-key": "s3cret", "x-session-id": "s3cret",
          "x-my-password": "s3cret", "x-signature": "s3cret", "x-visible": "yes" },
      });
      assert.equal(res.status, 200, res.text);
      assert.match(res.headers["content-type"], /^message\/http/);
      assert.match(res.text, /^TRACE \/optm\/t\?q=1 HTTP\/1\.1\r\n/);
      assert.match(res.text, /x-visible: yes\r\n/i);
      assert.doesNotMatch(res.text, /s3cret/);
      assert.equal(o.requests.length, before);
    });
  });

  // ------------------------------------------------------------------------------------ proxying.md: the response

  describe("proxying.md: the response", () => {
    test("the gateway adds X-Request-Id and integer latency headers; hop-by-hop response headers are dropped", async () => {
      const { res } = await upstream("/api/x?status=200&hop=1");
      assert.equal(res.status, 200);
      assert.match(res.headers["x-edgegate-upstream-latency"], /^[0-9]+$/);
      assert.match(res.headers["x-edgegate-proxy-latency"], /^[0-9]+$/);
      for (const name of ["x-hop-resp", "keep-alive", "proxy-authenticate", "trailer"]) {
        assert.equal(res.headers[name], undefined, `${name} reached the client`);
      }
      assert.equal(res.headers.etag, '"v1"');
    });

    test("no Via is added to responses; an origin's own Via passes unchanged", async () => {
      let { res } = await upstream("/api/x");
      assert.equal(res.status, 200);
      assert.equal(res.headers.via, undefined);
      ({ res } = await upstream("/api/x?via=1"));
      assert.equal(res.headers.via, "1.1 origin-cache");
    });

    test("redirects are passed on with Location unchanged, never followed", async () => {
      for (const status of [301, 302, 303, 307, 308]) {
        for (const location of ["/elsewhere?x=1", "https://other.example/x"]) {
          const before = o.requests.length;
          const { res } = await upstream(`/api/r?status=${status}&location=${encodeURIComponent(location)}`);
          assert.equal(res.status, status);
          assert.equal(res.headers.location, location);
          assert.equal(o.requests.length, before + 1, "not followed");
        }
      }
    });

    test("Set-Cookie lines stay separate; HEAD keeps Content-Length and has no body; 204/304 have no body", async () => {
      let { res } = await upstream("/api/c?cookies=1");
      assert.deepEqual(res.headers["set-cookie"], ["a=1; Path=/", "b=2; Expires=Wed, 21 Oct 2037 07:28:00 GMT"]);
      let up;
      ({ res, up } = await upstream("/api/head", {}, { method: "HEAD" }));
      assert.equal(up.method, "HEAD");
      assert.equal(res.status, 200);
      assert.equal(res.headers["content-length"], String("/base/head".length));
      assert.equal(res.body.length, 0);
      for (const status of [204, 304]) {
        ({ res, up } = await upstream(`/api/n?status=${status}`, { "if-none-match": '"v1"', "if-modified-since": "Wed, 21 Oct 2015 07:28:00 GMT" }));
        assert.equal(res.status, status);
        assert.equal(res.body.length, 0);
        assert.equal(res.headers.etag, '"v1"');
        assert.equal(res.headers["cache-control"], "max-age=60");
        assert.equal(up.headers["if-none-match"], '"v1"');
        assert.equal(up.headers["if-modified-since"], "Wed, 21 Oct 2015 07:28:00 GMT");
      }
    });

    test("the origin's own 404 and 500 pass unchanged; gateway errors are problem documents", async () => {
      for (const status of [404, 500]) {
        const { res } = await upstream(`/api/x?status=${status}`);
        assert.equal(res.status, status);
        assert.equal(res.text, `status ${status}`);
      }
      assertProblem((await upstream("/nowhere")).res, 404, "no_route");
    });
  });

  // ------------------------------------------------------------------------------------ gateway errors and log

  describe("proxying.md: gateway errors and the access log", () => {
    test("502 upstream_unreachable and 504 upstream_timeout name the target in the log; 404 has route null", async () => {
      const dead = `http://127.0.0.1:${await closedPort()}`;
      const slow = await startOrigin(async (req, res) => {
        await sleep(3000);
        res.end("late");
      });
      try {
        const d = structuredClone(doc);
        d.services.push({ name: "dead", url: dead, retries: 0 }, { name: "slow", url: slow.url, timeout_ms: 300, retries: 0 });
        d.routes.push({ name: "dead", service: "dead", paths: ["/dead"] }, { name: "slow", service: "slow", paths: ["/slow"] });
        await putAndWait(gw, d);
        let r = await upstream("/dead");
        assertProblem(r.res, 502, "upstream_unreachable");
        let line = await logOf(gw, r.id);
        assert.equal(line.upstream, dead);
        assert.equal(line.attempts, 1);
        assert.equal(line.route, "dead");
        r = await upstream("/slow");
        assertProblem(r.res, 504, "upstream_timeout");
        line = await logOf(gw, r.id);
        assert.equal(line.upstream, slow.url);
        assert.equal(line.error, "upstream_timeout");
        r = await upstream("/nowhere");
        line = await logOf(gw, r.id);
        assert.deepEqual([line.route, line.service, line.upstream, line.attempts, line.error], [null, null, null, null, "no_route"]);
        // An origin that answers with an interim 1xx first, garbage, or nothing: 502 (locally).
        const rawOrigin = net.createServer((socket) => {
          socket.on("error", () => {});
          socket.once("data", (chunk) => {
            const path = chunk.toString("latin1").split(" ")[1];
            if (path === "/early") {
              socket.end("HTTP/1.1 103 Early Hints\r\nLink: </a.css>; rel=preload\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok");
            } else if (path === "/garbage") socket.end("SMTP ready\r\n\r\n");
            else socket.destroy();
          });
        });
        await new Promise((resolve) => rawOrigin.listen(0, "127.0.0.1", resolve));
        try {
          const d2 = structuredClone(d);
          d2.services.push({ name: "raw", url: `http://127.0.0.1:${rawOrigin.address().port}`, retries: 0 });
          d2.routes.push({ name: "raw", service: "raw", paths: ["/raw"] });
          await putAndWait(gw, d2);
          for (const path of ["/raw/early", "/raw/garbage", "/raw/drop"]) {
            assertProblem((await upstream(path)).res, 502, "upstream_unreachable", path);
          }
        } finally {
          rawOrigin.close();
        }
        // HEAD on a gateway error: the problem's status and headers, no body.
        const head = await request(gw.at("/nowhere"), { method: "HEAD" });
        assert.equal(head.status, 404);
        assert.match(head.headers["content-type"], /^application\/problem\+json/);
        assert.equal(head.body.length, 0);
      } finally {
        await slow.close();
        await putAndWait(gw, doc);
      }
    });
  });

  // ------------------------------------------------------------------------------------ routing.md: validation

  describe("routing.md: validation", () => {
    const one = (route) => ({ format_version: 1, services: [{ name: "s", url: "http://127.0.0.1:1" }], routes: [{ name: "r", service: "s", ...route }] });
    test("host patterns: ports, * elsewhere, empty labels (a trailing dot) and other characters are refused", async () => {
      for (const host of ["api.example.com:8080", "api.*.com", "*", "api.example.com.", "a..b", "a b.com", "*example.com"]) {
        const error = await rejected(gw, one({ hosts: [host] }));
        assert.match(error, /routes\[0\]\.hosts\[0\]/, `${host}: ${error}`);
      }
      assert.match(await rejected(gw, one({ hosts: ["api.example.com."] })), /empty label/);
    });

    test("paths and methods: each error with its JSON path", async () => {
      for (const [route, where] of [
        [{ paths: ["/ok", "/users/{id"] }, /routes\[0\]\.paths\[1\]/],
        [{ paths: ["api"] }, /routes\[0\]\.paths\[0\]/],
        [{ paths: ["/v{n}"] }, /routes\[0\]\.paths\[0\]/],
        [{ paths: ["/{*rest}/x"] }, /routes\[0\]\.paths\[0\]/],
        [{ paths: ["/{a}/{a}"] }, /routes\[0\]\.paths\[0\]/],
        [{ paths: ["/{}"] }, /routes\[0\]\.paths\[0\]/],
        [{ paths: ["~api"] }, /routes\[0\]\.paths\[0\]/],
        [{ paths: ["~^/(x"] }, /routes\[0\]\.paths\[0\]/],
        [{ methods: ["get"] }, /routes\[0\]\.methods\[0\]/],
        [{ methods: ["GET", "GET"] }, /routes\[0\]\.methods\[1\]/],
        [{ headers: { "x-env": [] } }, /routes\[0\]\.headers\.x-env/],
        [{ headers: { "x-env": ["~(x"] } }, /routes\[0\]\.headers\.x-env\[0\]/],
        [{ paths: ["/users/{id}"], rewrite: "v2/{id}" }, /routes\[0\]\.rewrite/],
        [{ paths: ["/users/{id}"], rewrite: "/v2/{idd}" }, /routes\[0\]\.rewrite: unknown parameter \{idd\}; the route's paths capture: id/],
        [{ paths: ["/users/{id}"], rewrite: "/a/../{id}" }, /routes\[0\]\.rewrite: the segment "\.\."/],
      ]) {
        const error = await rejected(gw, one(route));
        assert.match(error, where, `${JSON.stringify(route)}: ${error}`);
      }
    });

    test("find_shadowed: same conditions after normalization are refused; another priority is another route", async () => {
      const d = one({ paths: ["/a/", "=/b"], methods: ["GET", "POST"], hosts: ["X.test"], headers: { "x-env": ["prod"] } });
      d.routes.push({ name: "r2", service: "s", paths: ["=/b", "/a"], methods: ["POST", "GET"], hosts: ["x.test"], headers: { "X-Env": ["PROD"] } });
      const error = await rejected(gw, d);
      assert.match(error, /routes\[1\]: never matches: routes\[0\] \("r"\) has the same match conditions and takes precedence/);
      d.routes[1].priority = 1;
      await putAndWait(gw, { ...d, routes: [...d.routes, { name: "probe", service: "s", paths: ["=/__probe"] }] });
      await putAndWait(gw, doc);
    });
  });
});
