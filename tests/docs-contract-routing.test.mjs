// The docs as a contract, for routing and transformations: docs/routing.md (hosts, paths, normal form,
// headers, precedence, 404/405), docs/transformations.md (Kong's rule groups, templates, bodies,
// json_types) and the redirect section of docs/plugins.md, checked the way a user sees them: one gateway
// for the whole file (each part pushes its own configuration), a recording origin on 127.0.0.1.
// Which route matched, and its captures, are read from a global `request-termination` with `echo: true`
// (docs/plugins.md#request-termination) in the routing parts.
import { describe, test, before, after } from "node:test";
import assert from "node:assert/strict";
import http from "node:http";
import zlib from "node:zlib";
import { startGateway, startOrigin, problemOf, waitFor } from "./support/harness.mjs";

const ECHO = { name: "request-termination", config: { status_code: 200, echo: true } };

describe("docs contract: routing and transformations", { timeout: 180_000 }, () => {
  let gw, origin;

  /**
   * One request with the path sent as it is (no URL parsing on the client side, so `//a`, `%2f` and
   * friends reach the gateway unchanged). Resolves to { status, headers, text, json() }.
   */
  function send(path, { method = "GET", headers = {}, body } = {}) {
    return new Promise((resolve, reject) => {
      const req = http.request(
        {
          host: gw.url.hostname,
          port: gw.url.port,
          path,
          method,
          headers: { "accept-encoding": "identity", ...headers },
          agent: false,
        },
        (res) => {
          const chunks = [];
          res.on("data", (c) => chunks.push(c));
          res.on("end", () => {
            const buf = Buffer.concat(chunks);
            resolve({
              status: res.statusCode,
              headers: res.headers,
              body: buf,
              text: buf.toString("utf8"),
              json: () => JSON.parse(buf.toString("utf8")),
            });
          });
          res.on("error", reject);
        },
      );
      req.on("error", reject);
      req.setTimeout(20_000, () => req.destroy(new Error(`${path} timed out`)));
      req.end(body);
    });
  }

  /** The route a request matched (name) and its captures, from the echo; `null` for a 404. */
  async function matched(path, headers = {}, method = "GET") {
    const res = await send(path, { headers, method });
    if (res.status === 404) return null;
    assert.equal(res.status, 200, `${method} ${path}: ${res.text}`);
    const echo = res.json();
    return { route: echo.matched_route.name, captures: echo.request.uri_captures };
  }
  const routeOf = async (path, headers = {}, method = "GET") => (await matched(path, headers, method))?.route ?? null;

  before(async () => {
    origin = await startOrigin(async (req, res, record) => {
      const path = req.url.split("?")[0];
      if (path === "/resp/empty-json") {
        res.writeHead(200, { "content-type": "application/json", "content-length": "0" });
        return res.end();
      }
      if (path === "/resp/gzip") {
        res.writeHead(200, { "content-type": "application/json", "content-encoding": "gzip", vary: "Accept-Encoding" });
        return res.end(zlib.gzipSync(JSON.stringify({ a: 1, keep: "k" })));
      }
      if (path === "/resp/cookies") {
        res.writeHead(200, [
          ["content-type", "text/plain"],
          ["set-cookie", "a=1; Expires=Wed, 21 Oct 2037 07:28:00 GMT; Path=/"],
          ["set-cookie", "b=2"],
        ]);
        return res.end("cookies");
      }
      if (path === "/resp/array") {
        res.writeHead(200, { "content-type": "application/json" });
        return res.end("[1,2]");
      }
      if (path === "/resp/vnd") {
        res.writeHead(200, { "content-type": "application/vnd.api+json" });
        return res.end('{"a":1}');
      }
      if (path === "/resp/obj") {
        res.writeHead(200, { "content-type": "application/json; charset=utf-8" });
        return res.end('{ "a": 1 }');
      }
      res.writeHead(200, { "content-type": "application/json", "x-origin": "yes" });
      res.end(
        JSON.stringify({ method: record.method, url: record.url, headers: record.headers, body: record.body.toString("utf8") }),
      );
    });
    gw = await startGateway();
  });
  after(async () => {
    await gw?.dispose();
    await origin?.close();
  });

  const base = (routes, plugins = [ECHO]) => ({
    format_version: 1,
    services: [{ name: "echo", url: `${origin.url}/base` }],
    routes: routes.map((r) => ({ service: "echo", ...r })),
    plugins,
  });

  // ---------------------------------------------------------------------------------------------- matching

  describe("routing.md: hosts, paths, normal form, headers", () => {
    before(async () => {
      await gw.putConfig(
        base([
          { name: "h-exact", hosts: ["api.example.com"], paths: ["/h"] },
          { name: "h-wild", hosts: ["*.example.com"], paths: ["/h"] },
          { name: "h-upper", hosts: ["UP.Example.ORG", "*.Wild.ORG"], paths: ["/h"] },
          { name: "pre", paths: ["/pre/"] },
          { name: "health", paths: ["=/health"] },
          { name: "users", paths: ["/users/{id}"] },
          { name: "files", paths: ["/files/{*rest}"] },
          { name: "docs", paths: ["~/docs/[a-z]+"] },
          { name: "opt", paths: ["~^/g/(?<a>[a-z]+)?(?<b>[0-9]+)?$"] },
          { name: "enc", paths: ["~^/enc/(?<x>.+)$"] },
          { name: "norm", paths: ["/%6Eorm"] },
          { name: "hdr-any", paths: ["/hdr-any"], headers: { "X-Probe": ["~"] } },
          { name: "hdr-anchored", paths: ["/hdr-anchored"], headers: { "x-env": ["~^stag"] } },
          { name: "hdr-search", paths: ["/hdr-search"], headers: { "x-env": ["~stag"] } },
          { name: "hdr-ci", paths: ["/hdr-ci"], headers: { "x-env": ["~(?i)^stag"] } },
          { name: "mixed", paths: ["~^/mixed/([a-z]+)/(?<id>[0-9]+)/(?<v>v[0-9])?"] },
          { name: "alt", paths: ["~/alt1|/alt2"] },
          { name: "optional", paths: ["~/colou?r$"] },
          { name: "star", paths: ["~/zz*top$"] },
          { name: "counted", paths: ["~/qq{0,1}w$"] },
          { name: "escaped", paths: ["~/dot\\.json$"] },
          { name: "flag", paths: ["~/lit/(?i)admin$"] },
        ]),
      );
    });

    test("hosts: case-insensitive, trailing dot and port ignored; a wildcard takes one or more labels only", async () => {
      for (const [host, expected] of [
        ["api.example.com", "h-exact"],
        ["API.Example.COM", "h-exact"],
        ["api.example.com.", "h-exact"],
        ["api.example.com.:8443", "h-exact"],
        ["www.example.com", "h-wild"],
        ["a.b.example.com", "h-wild"],
        ["x.api.example.com", "h-wild"],
        ["example.com", null],
        ["badexample.com", null],
        ["up.example.org", "h-upper"],
        ["up.example.org.", "h-upper"],
        ["a.wild.org", "h-upper"],
        ["www.example.com.", "h-wild"],
      ]) {
        assert.equal(await routeOf("/h", { host }), expected, host);
      }
    });

    test("prefix: segment-aware, a trailing slash in the pattern is ignored", async () => {
      for (const [path, expected] of [
        ["/pre", "pre"],
        ["/pre/", "pre"],
        ["/pre/x/y", "pre"],
        ["/prex", null],
        ["/x/pre", null],
      ]) {
        assert.equal(await routeOf(path), expected, path);
      }
    });

    test("exact: the whole path, case-sensitive, trailing slash significant", async () => {
      for (const [path, expected] of [
        ["/health", "health"],
        ["/health/", null],
        ["/healthz", null],
        ["/Health", null],
      ]) {
        assert.equal(await routeOf(path), expected, path);
      }
    });

    test("templates: {name} is one non-empty segment, {*rest} the rest (possibly empty); parameters keep their encoding", async () => {
      assert.deepEqual(await matched("/users/7"), { route: "users", captures: { id: "7" } });
      for (const path of ["/users", "/users/", "/users/7/x"]) assert.equal(await routeOf(path), null, path);
      assert.deepEqual((await matched("/users/a%2Fb")).captures, { id: "a%2Fb" });
      assert.deepEqual((await matched("/users/a%2fb")).captures, { id: "a%2Fb" }, "upper-case hex in normal form");
      assert.deepEqual(await matched("/files"), { route: "files", captures: { rest: "" } });
      assert.deepEqual((await matched("/files/a/b.txt")).captures, { rest: "a/b.txt" });
      assert.equal(await routeOf("/filesx"), null);
    });

    test("regex: anchored at the start, not at the end; a group that did not take part is left out", async () => {
      assert.equal(await routeOf("/docs/intro/more"), "docs");
      assert.equal(await routeOf("/x/docs/intro"), null);
      assert.deepEqual(await matched("/g/42"), { route: "opt", captures: { b: "42" } });
      assert.deepEqual((await matched("/g/ab12")).captures, { a: "ab", b: "12" });
    });

    test("regex: the whole pattern is anchored at the start (alternatives too); quantifiers on its literal start work", async () => {
      for (const [path, expected] of [
        ["/alt1/x", "alt"],
        ["/alt2/x", "alt"],
        ["/x/alt2", null],
        ["/color", "optional"],
        ["/colour", "optional"],
        ["/ztop", "star"],
        ["/zzztop", "star"],
        ["/qw", "counted"],
        ["/qqw", "counted"],
        ["/dot.json", "escaped"],
        ["/dotxjson", null],
        ["/lit/ADMIN", "flag"],
      ]) {
        assert.equal(await routeOf(path), expected, path);
      }
    });

    test("regexes see the normal form, still percent-encoded", async () => {
      assert.deepEqual((await matched("/enc/%c3%a9%41%2f")).captures, { x: "%C3%A9A%2F" });
    });

    test("literal patterns are put in normal form when compiled; case is kept", async () => {
      assert.equal(await routeOf("/norm/x"), "norm");
      assert.equal(await routeOf("/n%6Frm"), "norm");
      assert.equal(await routeOf("/Norm"), null);
    });

    test("normal form: %zz and a lone % stay; the query is not touched", async () => {
      const res = await send("/pre/a%zz/%/b%7e?q=%7e&r=//&flag&q=2", { headers: { host: "Some.Host:8080" } });
      const echo = res.json();
      assert.equal(echo.matched_route.name, "pre");
      // request-termination's echo: the first value of each parameter as sent, "" without "=";
      // the host without its port.
      assert.deepEqual(echo.request.query, { q: "%7e", r: "//", flag: "" });
      assert.equal(echo.request.host, "some.host");
    });

    test("header conditions: `~` alone needs the header present; a regex is searched anywhere unless anchored", async () => {
      assert.equal(await routeOf("/hdr-any", { "x-probe": "anything" }), "hdr-any");
      assert.equal(await routeOf("/hdr-any", { "x-probe": "" }), "hdr-any", "present, empty");
      assert.equal(await routeOf("/hdr-any"), null);
      assert.equal(await routeOf("/hdr-anchored", { "x-env": "staging-2" }), "hdr-anchored");
      assert.equal(await routeOf("/hdr-anchored", { "x-env": "my-staging" }), null);
      assert.equal(await routeOf("/hdr-search", { "x-env": "my-staging" }), "hdr-search");
      // A regex is case-sensitive (unlike an exact value); (?i) makes it ignore case.
      assert.equal(await routeOf("/hdr-anchored", { "x-env": "STAGING" }), null);
      assert.equal(await routeOf("/hdr-ci", { "x-env": "STAGING" }), "hdr-ci");
      // Several lines of a header are one value, joined with ", ".
      assert.equal(await routeOf("/hdr-anchored", { "x-env": ["dev", "staging"] }), null);
      assert.equal(await routeOf("/hdr-search", { "x-env": ["dev", "staging"] }), "hdr-search");
    });

    test("only named regex groups are parameters, in their order", async () => {
      assert.deepEqual(await matched("/mixed/abc/7/"), { route: "mixed", captures: { id: "7" } });
      assert.deepEqual((await matched("/mixed/abc/7/v2")).captures, { id: "7", v: "v2" });
    });
  });

  // ------------------------------------------------------------------------------------------- precedence

  describe("routing.md: precedence (the examples of the page)", () => {
    before(async () => {
      await gw.putConfig(
        base([
          // 1. priority
          { name: "health", hosts: ["prio.test"], paths: ["=/health"] },
          { name: "catch-all", hosts: ["prio.test"], paths: ["/"], priority: 10 },
          { name: "health-neg", hosts: ["prio2.test"], paths: ["=/health"], priority: -1 },
          { name: "catch-all-neg", hosts: ["prio2.test"], paths: ["/"], priority: -2 },
          // 2. host specificity, and host before path
          { name: "any", paths: ["/w"] },
          { name: "wild", hosts: ["*.example.com"], paths: ["/w"] },
          { name: "wild-eu", hosts: ["*.eu.example.com"], paths: ["/w"] },
          { name: "exact", hosts: ["api.eu.example.com"], paths: ["/w"] },
          { name: "exact-path", paths: ["=/login"] },
          { name: "host", hosts: ["auth.example.com"], paths: ["/"] },
          // 3. path kinds
          { name: "prefix", hosts: ["kind.test"], paths: ["/users"] },
          { name: "regex", hosts: ["kind.test"], paths: ["~^/users/[0-9]+/?$"] },
          { name: "template", hosts: ["kind.test"], paths: ["/users/{id}"] },
          { name: "exact-me", hosts: ["kind.test"], paths: ["=/users/me"] },
          // 3. within a kind
          { name: "api", hosts: ["len.test"], paths: ["/api"] },
          { name: "api-v1", hosts: ["len.test"], paths: ["/api/v1"] },
          { name: "repo", hosts: ["len.test"], paths: ["/{org}/{repo}"] },
          { name: "settings", hosts: ["len.test"], paths: ["/{org}/settings"] },
          { name: "file", hosts: ["len.test"], paths: ["/files/{name}"] },
          { name: "files", hosts: ["len.test"], paths: ["/files/{*path}"] },
          { name: "v-short", hosts: ["len.test"], paths: ["~^/v"] },
          { name: "v-long", hosts: ["len.test"], paths: ["~^/v1/"] },
          // several hosts / paths: ranked by the ones that matched
          { name: "wild-first", hosts: ["*.multi.test"], paths: ["/m"] },
          { name: "multi", hosts: ["*.multi.test", "exact.multi.test"], paths: ["/m", "=/n/x"] },
          { name: "n-prefix", hosts: ["*.multi.test"], paths: ["/n"], priority: 0 },
          // templates: literal segments before their length
          { name: "two-literals", hosts: ["tpl.test"], paths: ["/{a}/bb/cc"] },
          { name: "long-literal", hosts: ["tpl.test"], paths: ["/aaaaaaaa/{b}/{c}"] },
          { name: "short-lit", hosts: ["tpl.test"], paths: ["/{x}/ef"] },
          { name: "long-lit", hosts: ["tpl.test"], paths: ["/abcd/{x}"] },
          // 4. methods
          { name: "any-method", hosts: ["meth.test"], paths: ["/orders"] },
          { name: "get-only", hosts: ["meth.test"], paths: ["/orders"], methods: ["GET"] },
          // 5. headers
          { name: "stable", hosts: ["hdr.test"], paths: ["/app"] },
          { name: "canary", hosts: ["hdr.test"], paths: ["/app"], headers: { "x-canary": ["1"] } },
          { name: "canary-eu", hosts: ["hdr.test"], paths: ["/app"], headers: { "x-canary": ["1"], "x-region": ["eu"] } },
          // 6. config order
          { name: "first", hosts: ["order.test"], paths: ["/api"], methods: ["GET"] },
          { name: "second", hosts: ["order.test"], paths: ["/api"], methods: ["GET", "POST"] },
        ]),
      );
    });

    test("1. priority wins first, negative priorities included", async () => {
      assert.equal(await routeOf("/health", { host: "prio.test" }), "catch-all");
      assert.equal(await routeOf("/health", { host: "prio2.test" }), "health-neg");
    });

    test("2. host specificity: exact > longer wildcard > wildcard > no hosts; host before path", async () => {
      for (const [host, expected] of [
        ["api.eu.example.com", "exact"],
        ["web.eu.example.com", "wild-eu"],
        ["www.example.com", "wild"],
        ["example.com", "any"],
      ]) {
        assert.equal(await routeOf("/w", { host }), expected, host);
      }
      assert.equal(await routeOf("/login", { host: "auth.example.com" }), "host");
      assert.equal(await routeOf("/login", { host: "www.example.com" }), "exact-path");
    });

    test("3. path kind: exact > template > regex > prefix", async () => {
      for (const [path, expected] of [
        ["/users/me", "exact-me"],
        ["/users/42", "template"],
        ["/users/42/", "regex"],
        ["/users/42/posts", "prefix"],
      ]) {
        assert.equal(await routeOf(path, { host: "kind.test" }), expected, path);
      }
    });

    test("3. within a kind: more literal characters win", async () => {
      for (const [path, expected] of [
        ["/api/v1/users", "api-v1"],
        ["/api/v2/users", "api"],
        ["/acme/settings", "settings"],
        ["/acme/widgets", "repo"],
        ["/files/a.txt", "file"],
        ["/files/dir/a.txt", "files"],
        ["/v1/x/y", "v-long"],
        ["/v2/x/y", "v-short"],
      ]) {
        assert.equal(await routeOf(path, { host: "len.test" }), expected, path);
      }
    });

    test("a route with several hosts or paths is ranked by the host and path that matched", async () => {
      assert.equal(await routeOf("/m", { host: "exact.multi.test" }), "multi", "its exact host");
      assert.equal(await routeOf("/m", { host: "a.multi.test" }), "wild-first", "same wildcard: config order");
      assert.equal(await routeOf("/n/x", { host: "a.multi.test" }), "multi", "its exact path");
      assert.equal(await routeOf("/n/y", { host: "a.multi.test" }), "n-prefix");
    });

    test("3. templates: more literal segments first, then their total length", async () => {
      assert.equal(await routeOf("/aaaaaaaa/bb/cc", { host: "tpl.test" }), "two-literals");
      assert.equal(await routeOf("/aaaaaaaa/b/c", { host: "tpl.test" }), "long-literal");
      assert.equal(await routeOf("/abcd/ef", { host: "tpl.test" }), "long-lit", "one literal each: the longer wins");
      assert.equal(await routeOf("/abc/ef", { host: "tpl.test" }), "short-lit");
    });

    test("4-6. methods, then header conditions, then config order", async () => {
      assert.equal(await routeOf("/orders", { host: "meth.test" }), "get-only");
      assert.equal(await routeOf("/orders", { host: "meth.test" }, "POST"), "any-method");
      assert.equal(await routeOf("/app", { host: "hdr.test" }), "stable");
      assert.equal(await routeOf("/app", { host: "hdr.test", "x-canary": "1" }), "canary");
      assert.equal(await routeOf("/app", { host: "hdr.test", "X-Canary": "1", "x-region": "EU" }), "canary-eu");
      assert.equal(await routeOf("/api", { host: "order.test" }), "first");
      assert.equal(await routeOf("/api", { host: "order.test" }, "POST"), "second");
    });
  });

  describe("routing.md: 404 and 405", () => {
    before(async () => {
      await gw.putConfig(
        base([
          { name: "specific", hosts: ["m1.test"], paths: ["=/items"], methods: ["GET"] },
          { name: "fallback", hosts: ["m1.test"], paths: ["/"] },
          { name: "a", hosts: ["m2.test"], paths: ["/x"], methods: ["POST", "GET"] },
          { name: "b", hosts: ["m2.test"], paths: ["/x"], methods: ["PUT", "GET"], headers: { "x-v": ["1"] } },
          { name: "c", hosts: ["other.test"], paths: ["/x"], methods: ["DELETE"] },
        ]),
      );
    });

    test("a full match by a lower-precedence route beats a 405", async () => {
      assert.equal(await routeOf("/items", { host: "m1.test" }, "POST"), "fallback");
      assert.equal(await routeOf("/items", { host: "m1.test" }), "specific");
    });

    test("Allow lists the methods of the routes matching host, path and headers only", async () => {
      let res = await send("/x", { method: "PATCH", headers: { host: "m2.test" } });
      assert.equal(res.status, 405, res.text);
      assert.equal(problemOf(res).code, "method_not_allowed");
      assert.equal(res.headers.allow, "GET, POST");
      res = await send("/x", { method: "PATCH", headers: { host: "m2.test", "x-v": "1" } });
      assert.equal(res.status, 405);
      assert.equal(res.headers.allow, "GET, POST, PUT");
      res = await send("/x", { method: "PATCH", headers: { host: "nowhere.test" } });
      assert.equal(res.status, 404);
      assert.equal(problemOf(res).code, "no_route");
    });
  });

  // --------------------------------------------------------------------------------------- transformations

  describe("transformations.md: request-transformer", () => {
    const rt = (route, config) => ({ name: "request-transformer", route, config });
    before(async () => {
      await gw.putConfig(
        base(
          [
            { name: "hdr", paths: ["/hdr"] },
            { name: "split", paths: ["/split"] },
            { name: "tpl", paths: ["/tpl/{id}/{*rest}"] },
            { name: "rx", paths: ["~^/rx/(?<kind>[a-z]+)/(?<n>[0-9]+)$"] },
            { name: "ux", paths: ["~^/ux/(x|y)/(?<id>[0-9]+)$"] },
            { name: "crlf", paths: ["/crlf"] },
            { name: "own", paths: ["/own"] },
            { name: "qs", paths: ["/qs"] },
            { name: "json", paths: ["/json"] },
            { name: "noop", paths: ["/noop"] },
            { name: "uri", paths: ["/uri"] },
          ],
          [
            rt("hdr", {
              remove: { headers: ["x-drop", "x-override"] },
              rename: { headers: ["x-old:x-new", "x-missing:x-never", "x-from:x-to"] },
              replace: { headers: ["x-rep:replaced", "x-rep-absent:no"] },
              add: { headers: ["x-override:gateway", "x-client:gateway", "x-added:one", "X-Mixed-Case:v"] },
              append: { headers: ["x-added:two", "x-list:c"] },
            }),
            rt("split", { add: { headers: ["location:https://a.example/x?y=1", "x-empty:"] } }),
            rt("tpl", {
              add: {
                headers: [
                  "x-dot:$(headers.x_tenant)",
                  "x-bracket:$(headers['x-tenant'])",
                  "x-under:$(headers[\"x_tenant\"] or 'none')",
                  "x-q:$(query_params.q)",
                  "x-q-bracket:$(query_params[\"q\"])",
                  "x-first:$(uri_captures[1])",
                  "x-rest:$(uri_captures[\"rest\"])",
                  "x-or:$(headers.x-none or query_params.none or 'dflt')",
                  "x-or-second:$(headers.x-none or query_params.q)",
                  "x-dollar:costs $5 and $ (",
                  "x-missing:[$(headers.x-none)]",
                  "x-joined:$(headers.x-list)",
                ],
              },
            }),
            rt("rx", { add: { headers: ["x-kind:$(uri_captures.kind)", "x-second:$(uri_captures[2])"] } }),
            rt("ux", { add: { headers: ["x-first:$(uri_captures[1])", "x-second:[$(uri_captures[2])]"] } }),
            rt("crlf", { add: { headers: ["x-val:$(query_params.v)"] } }),
            rt("own", { remove: { headers: ["x-a"] }, add: { headers: ["x-copy:$(headers.x-a)"] } }),
            rt("qs", {
              remove: { querystring: ["a b"] },
              rename: { querystring: ["old:new"] },
              replace: { querystring: ["rep:R"] },
              add: { querystring: ["added:x y/z", "keep:never"] },
              append: { querystring: ["tag:b"] },
            }),
            rt("json", {
              remove: { body: ["a.b"] },
              rename: { body: ["from:to"] },
              replace: { body: ["nul:set"] },
              add: { body: ["f:added", "n:added", "new:1"] },
              append: { body: ["s:b", "arr:b", "absent:b"] },
            }),
            rt("noop", { remove: { body: ["not-there"] }, replace: { body: ["nope:x"] } }),
            rt("uri", { replace: { uri: "$(headers.x-p or query_params.p)" } }),
          ],
        ),
      );
    });

    /** POST/GET through the gateway; what the origin received (its echo). */
    async function upstream(path, opts = {}) {
      const res = await send(path, opts);
      assert.equal(res.status, 200, `${path}: ${res.text}`);
      assert.equal(res.headers["x-origin"], "yes", `${path}: answered by the origin`);
      return res.json();
    }

    test("remove, rename, replace, add, append on headers: each only in its case, in Kong's order", async () => {
      const up = await upstream("/hdr", {
        headers: {
          "x-drop": "1",
          "x-override": "client",
          "x-client": "client",
          "x-old": "o",
          "x-from": "f",
          "x-to": "client-to",
          "x-rep": "r",
          "x-list": "a, b",
        },
      });
      const h = up.headers;
      assert.equal(h["x-drop"], undefined, "removed");
      assert.equal(h["x-override"], "gateway", "removed, then added again by add");
      assert.equal(h["x-client"], "client", "add never changes a header the client sent");
      assert.equal(h["x-old"], undefined, "renamed away");
      assert.equal(h["x-new"], "o", "renamed");
      assert.equal(h["x-never"], undefined, "rename of an absent header does nothing");
      assert.equal(h["x-to"], "f", "rename replaces the target's value");
      assert.equal(h["x-from"], undefined);
      assert.equal(h["x-rep"], "replaced");
      assert.equal(h["x-rep-absent"], undefined, "replace does not add");
      assert.equal(h["x-added"], "one, two", "append after add");
      assert.equal(h["x-list"], "a, b, c", "one more value");
      assert.equal(h["x-mixed-case"], "v");
    });

    test("an entry is split at its first colon; the value may be empty", async () => {
      const up = await upstream("/split");
      assert.equal(up.headers.location, "https://a.example/x?y=1");
      assert.equal(up.headers["x-empty"], "");
    });

    test("templates: every documented form of headers, query_params, uri_captures, or and plain $", async () => {
      const up = await upstream("/tpl/7/a/b?q=a+b%21&q=second", {
        headers: { "x-tenant": "acme", "x-list": "l1, l2" },
      });
      const h = up.headers;
      assert.equal(h["x-dot"], "acme", "in the dot form _ reads as -");
      assert.equal(h["x-bracket"], "acme");
      assert.equal(h["x-under"], "none", "only the dot form reads _ as -");
      assert.equal(h["x-q"], "a b!", "first value, + and %-decoded");
      assert.equal(h["x-q-bracket"], "a b!");
      assert.equal(h["x-first"], "7");
      assert.equal(h["x-rest"], "a/b");
      assert.equal(h["x-or"], "dflt");
      assert.equal(h["x-or-second"], "a b!");
      assert.equal(h["x-dollar"], "costs $5 and $ (");
      assert.equal(h["x-missing"], "[]", "no value: the empty string");
      assert.equal(h["x-joined"], "l1, l2");
      // Several header lines are one value joined with ", "; a parameter without "=" has the value "".
      const again = await upstream("/tpl/7/?q", { headers: { "x-list": ["l1", "l2"] } });
      assert.equal(again.headers["x-joined"], "l1, l2");
      assert.equal(again.headers["x-or-second"], "", "present without a value: the or stops there");
      assert.equal(again.headers["x-rest"], "");
      const rx = await upstream("/rx/books/12");
      assert.equal(rx.headers["x-kind"], "books", "a named regex group");
      assert.equal(rx.headers["x-second"], "12");
      // Only named groups are parameters (Kong numbers every group).
      const ux = await upstream("/ux/y/5");
      assert.equal(ux.headers["x-first"], "5");
      assert.equal(ux.headers["x-second"], "[]");
    });

    test("rendered header values have CR, LF and NUL replaced by spaces", async () => {
      const up = await upstream("/crlf?v=a%0D%0Ab%00c");
      assert.equal(up.headers["x-val"], "a  b c");
    });

    test("templates read the request as the client sent it, even a header the same instance removes", async () => {
      const up = await upstream("/own", { headers: { "x-a": "client-a" } });
      assert.equal(up.headers["x-a"], undefined);
      assert.equal(up.headers["x-copy"], "client-a");
    });

    test("query string: names compared decoded (%XX and +), written values percent-encoded, untouched pairs kept", async () => {
      const up = await upstream("/qs?z=%41&a%20b=1&old=%7e&a+b=2&rep=1&rep=2&keep=k&tag=a");
      assert.equal(up.url, "/base?z=%41&new=%7e&rep=R&keep=k&tag=a&added=x%20y%2Fz&tag=b");
    });

    test("JSON body: top-level keys only (a dot is part of the name); presence is existence; append makes arrays", async () => {
      const body = JSON.stringify({ "a.b": 1, a: { b: 2 }, from: "x", to: "old", nul: null, f: false, s: "a", arr: [1] });
      const up = await upstream("/json", { method: "POST", headers: { "content-type": "application/json; charset=utf-8" }, body });
      assert.deepEqual(JSON.parse(up.body), {
        a: { b: 2 },
        to: "x",
        nul: "set",
        f: false,
        n: "added",
        new: "1",
        s: ["a", "b"],
        arr: [1, "b"],
        absent: ["b"],
      });
      assert.equal(up.headers["content-length"], String(Buffer.byteLength(up.body)));
      // serde_json output: keys in sorted order, whitespace removed.
      const keys = Object.keys(JSON.parse(up.body));
      assert.deepEqual(keys, [...keys].sort(), up.body);
      assert.ok(!/\s/.test(up.body), up.body);
    });

    test("form body: the same rules by field name; untouched pairs keep their spelling", async () => {
      const up = await upstream("/json", {
        method: "POST",
        headers: { "content-type": "application/x-www-form-urlencoded" },
        body: "a.b=1&from=f&s=%61&n=1&x=a+b",
      });
      assert.equal(up.body, "to=f&s=%61&n=1&x=a+b&f=added&new=1&s=b&arr=b&absent=b");
    });

    test("an empty JSON body counts as {}; an unchanged, invalid or non-object body is sent as it came", async () => {
      let up = await upstream("/json", { method: "POST", headers: { "content-type": "application/json" }, body: "" });
      assert.deepEqual(JSON.parse(up.body), { n: "added", f: "added", new: "1", s: ["b"], arr: ["b"], absent: ["b"] });
      for (const body of ['{ "kept" : 1 }', "[1, 2]", "{not json"]) {
        up = await upstream("/noop", { method: "POST", headers: { "content-type": "application/json" }, body });
        assert.equal(up.body, body);
      }
      up = await upstream("/json", { method: "POST", headers: { "content-type": "application/json" }, body: "[1, 2]" });
      assert.equal(up.body, "[1, 2]");
      up = await upstream("/json", { method: "POST", headers: { "content-type": "text/plain" }, body: '{"s":"a"}' });
      assert.equal(up.body, '{"s":"a"}', "not application/json: untouched");
    });

    test("replace.uri: the whole path (no base path), a missing / added, characters a path cannot hold encoded", async () => {
      let up = await upstream("/uri?k=1", { headers: { "x-p": "v2/a b#c" } });
      assert.equal(up.url, "/v2/a%20b%23c?k=1");
      up = await upstream("/uri?p=/x/caf%C3%A9%3F");
      assert.equal(up.url, "/x/caf%C3%A9%3F?p=/x/caf%C3%A9%3F");
      const res = await send("/uri", { headers: { "x-p": "/a/.%2E/b" } });
      assert.equal(res.status, 400);
      assert.equal(problemOf(res).code, "invalid_path");
    });
    test("a request-transformer rule wins over the service's `headers` on the same name", async () => {
      await gw.putConfig({
        format_version: 1,
        services: [{ name: "svc", url: origin.url, headers: { "x-svc": "svc", "x-keep": "svc", "X-Gone": "svc" } }],
        routes: [{ name: "svc", service: "svc", paths: ["/svc"] }],
        plugins: [rt("svc", { remove: { headers: ["x-gone"] }, add: { headers: ["x-svc:rt"] } })],
      });
      const up = await upstream("/svc", { headers: { "x-keep": "client", "x-gone": "client" } });
      assert.equal(up.headers["x-svc"], "rt");
      assert.equal(up.headers["x-keep"], "svc", "no rule: the service's value replaces the client's");
      assert.equal(up.headers["x-gone"], undefined, "removed by the rule: neither the client's nor the service's");
    });
  });

  describe("transformations.md: response-transformer", () => {
    const rsp = (route, config) => ({ name: "response-transformer", route, config });
    before(async () => {
      await gw.putConfig({
        format_version: 1,
        services: [
          { name: "root", url: origin.url },
          { name: "dead", url: "http://127.0.0.1:1", retries: 0 },
        ],
        routes: [
          { name: "resp", service: "root", paths: ["/resp"], strip_path: false },
          { name: "types", service: "root", paths: ["/types"], strip_path: false },
          { name: "dead", service: "dead", paths: ["/dead"] },
        ],
        plugins: [
          rsp("resp", {
            add: { json: ["added:1"], headers: ["x-added:yes"] },
            remove: { json: ["a"] },
            append: { headers: ["set-cookie:c=3"] },
          }),
          rsp("types", {
            add: {
              json: ["n:$(query_params.n)", "b:$(query_params.b)", "s:$(query_params.n)"],
              json_types: ["number", "boolean"],
            },
          }),
          rsp("dead", { add: { headers: ["x-seen:$(headers.x-who)"], json: ["added:1"] } }),
        ],
      });
    });

    test("json_types with templates: the rendered text decides; a boolean is true only for `true`", async () => {
      let res = await send("/types/x?n=5&b=true");
      const first = res.json();
      assert.equal(first.n, 5);
      assert.equal(first.b, true);
      assert.equal(first.s, "5", "entries without a type are strings");
      res = await send("/types/x?n=abc&b=TRUE");
      assert.equal(res.json().n, "abc", "not a number: stays a string");
      assert.equal(res.json().b, false);
    });

    test("json rules need Content-Type containing application/json and a JSON object", async () => {
      let res = await send("/resp/obj");
      assert.equal(res.headers["content-type"], "application/json; charset=utf-8");
      assert.deepEqual(JSON.parse(res.text), { added: "1" });
      res = await send("/resp/array");
      assert.equal(res.text, "[1,2]");
      res = await send("/resp/vnd");
      assert.equal(res.text, '{"a":1}', "application/vnd.api+json does not contain application/json");
      assert.equal(res.headers["x-added"], "yes", "header rules still apply");
    });

    test("a gzip-encoded JSON response: the json rules apply to the JSON, and the client gets a body it can decode", async () => {
      for (const ae of ["gzip", "identity"]) {
        const res = await send("/resp/gzip", { headers: { "accept-encoding": ae } });
        assert.equal(res.status, 200);
        const enc = res.headers["content-encoding"];
        const text = enc === "gzip" ? zlib.gunzipSync(res.body).toString() : res.body.toString();
        assert.deepEqual(JSON.parse(text), { keep: "k", added: "1" }, `${ae}: ${enc}`);
      }
    });

    test("append on Set-Cookie adds one more line; the origin's lines stay separate and unchanged", async () => {
      const res = await send("/resp/cookies");
      assert.deepEqual(res.headers["set-cookie"], ["a=1; Expires=Wed, 21 Oct 2037 07:28:00 GMT; Path=/", "b=2", "c=3"]);
    });

    test("an empty JSON response is not a JSON object: it passes untouched", async () => {
      const res = await send("/resp/empty-json");
      assert.equal(res.status, 200);
      assert.equal(res.text, "");
      assert.equal(res.headers["x-added"], "yes");
    });

    test("the gateway's own errors get the header rules (templates from the request), not the json rules", async () => {
      const res = await send("/dead", { headers: { "x-who": "me" } });
      assert.equal(res.status, 502);
      assert.equal(res.headers["x-seen"], "me");
      assert.equal(problemOf(res).added, undefined);
    });
  });

  // ------------------------------------------------------------------------------- plugins.md: redirect

  describe("plugins.md: redirect and request-size-limiting", () => {
    before(async () => {
      await gw.putConfig(
        base(
          [
            { name: "rd", paths: ["~^/rd/(?<a>[a-z]+)?(?<b>[0-9]+)?$"] },
            { name: "kp", paths: ["/kp"] },
            { name: "kp-abs", paths: ["/kp-abs"] },
            { name: "kb", paths: ["/kb"] },
          ],
          [
            { name: "redirect", route: "rd", config: { location: "/to/$(uri_captures.a)-$(uri_captures.b)" } },
            { name: "redirect", route: "kp", config: { location: "/elsewhere?z=1", keep_incoming_path: true } },
            {
              name: "redirect",
              route: "kp-abs",
              config: { location: "https://n.example/base?z=1", keep_incoming_path: true, status_code: 302 },
            },
            {
              name: "request-size-limiting",
              route: "kb",
              config: { allowed_payload_size: 1, size_unit: "kilobytes" },
            },
          ],
        ),
      );
    });

    test("redirect: a capture that did not match is empty; the answer is 301 `redirecting` in text/plain", async () => {
      const res = await send("/rd/42");
      assert.equal(res.status, 301);
      assert.equal(res.headers.location, "/to/-42");
      assert.equal(res.headers["content-type"], "text/plain; charset=utf-8");
      assert.equal(res.text, "redirecting");
      assert.match(res.headers["x-request-id"], /^[0-9a-f-]{36}$/);
    });

    test("redirect: keep_incoming_path replaces the location's path and query with the request's", async () => {
      let res = await send("/kp/x%20y?q=1");
      assert.equal(res.headers.location, "/kp/x%20y?q=1");
      res = await send("/kp/a%7e//b%2f?q=%7e");
      assert.equal(res.headers.location, "/kp/a%7e//b%2f?q=%7e", "the path as sent, not its normal form");
      res = await send("/kp-abs/a/b");
      assert.equal(res.status, 302);
      assert.equal(res.headers.location, "https://n.example/kp-abs/a/b", "no query when the request has none");
      res = await send("/kp-abs?p=2");
      assert.equal(res.headers.location, "https://n.example/kp-abs?p=2");
    });

    test("redirect: location must start as an http(s) URL or a single-/ path, before any template; no spaces", async () => {
      for (const location of ["example.com/x", "//evil.example/x", "$(uri_captures.x)/a", "/a b", "ftp://x"]) {
        const version = await gw.putConfig(base([{ name: "r", paths: ["/"] }], [{ name: "redirect", config: { location } }]));
        await send("/rd/1");
        const line = await waitFor(
          () => gw.logs.find((l) => l.json?.event === "config_rejected" && l.json?.version === version),
          { what: `rejection of ${location}` },
        );
        assert.match(line.json.error, /plugins\[0\]\.config\.location: /, location);
      }
      // The previous version still serves.
      assert.equal((await send("/rd/42")).headers.location, "/to/-42");
    });

    test("request-size-limiting: 1 kilobyte is 1,024 bytes; the detail gives the limit in bytes", async () => {
      const ok = await send("/kb", { method: "POST", body: "x".repeat(1024) });
      assert.equal(ok.status, 200, ok.text);
      const res = await send("/kb", { method: "POST", body: "x".repeat(1025) });
      assert.equal(res.status, 413);
      const p = problemOf(res);
      assert.equal(p.code, "payload_too_large");
      assert.equal(p.detail, "Request size limit exceeded: the body may have at most 1024 bytes");
    });
  });

  // ------------------------------------------------------------------------------------------- validation

  describe("routing.md: validation", () => {
    /** Push `doc`; the version is refused: its error text (the previous version keeps serving). */
    async function rejected(doc) {
      const version = await gw.putConfig(doc);
      await send("/");
      await waitFor(() => gw.logs.some((l) => l.json?.event === "config_rejected" && l.json?.version === version), {
        what: `config_rejected for version ${version}`,
      });
      return gw.logs.find((l) => l.json?.event === "config_rejected" && l.json?.version === version).json.error;
    }

    test("check_route: each bad field with its JSON path", async () => {
      const error = await rejected(
        base([
          { name: "r0", hosts: ["api.example.com:8080"], paths: ["/a"] },
          { name: "r1", paths: ["/ok", "/users/{id"] },
          { name: "r2", paths: ["/v{n}"] },
          { name: "r3", paths: ["~abc"] },
          { name: "r4", paths: ["/h"], headers: { "x-env": ["~(unclosed"] } },
          { name: "r5", paths: ["/users/{id}"], rewrite: "/u/{idd}" },
          { name: "r6", paths: ["/a/{id}"], rewrite: "/a/../{id}" },
          { name: "r7", paths: ["/e"], headers: { "x-e": [] } },
          { name: "r8", paths: ["/users/{id}/{id}"] },
          { name: "r9", paths: ["/f/{*rest}/x"] },
          { name: "r10", hosts: ["ok.example.com", "api.example.com."], paths: ["/t"] },
        ]),
      );
      for (const expected of [
        "routes[0].hosts[0]",
        "routes[1].paths[1]: unclosed '{' in template",
        "routes[2].paths[0]",
        "routes[3].paths[0]",
        "routes[4].headers.x-env[0]",
        "routes[5].rewrite: unknown parameter {idd}; the route's paths capture: id",
        'routes[6].rewrite: the segment ".." would be read as \'.\' or \'..\'',
        "routes[7].headers.x-e",
        "routes[8].paths[0]",
        "routes[9].paths[0]",
        'routes[10].hosts[1]: "api.example.com.": empty label in host name',
      ]) {
        assert.ok(error.includes(expected), `missing ${expected} in:\n${error}`);
      }
      assert.ok(!/routes\[1\]\.paths\[0\]/.test(error), error);
    });

    test("transformer validation: names the gateway owns, bounds, json_types, replace.uri, unknown fields", async () => {
      const rtp = (config) => ({ name: "request-transformer", config });
      const rsp = (config) => ({ name: "response-transformer", config });
      const error = await rejected(
        base(
          [{ name: "r", paths: ["/"] }],
          [
            rtp({ add: { headers: ["host:x", "Content-Length:1", "te:x", "expect:x", "via:x", "traceparent:x", "x-forwarded-prefix:/p"] } }),
            rtp({ max_body_size: 0 }),
            rtp({ max_body_size: 8388609 }),
            rtp({ replace: { uri: "v2/users" } }),
            rtp({ remove: { cookies: ["a"] } }),
            rsp({ add: { json: ["a:1"], json_types: ["number", "boolean"] } }),
            rsp({ remove: { headers: ["content-length", "transfer-encoding"] }, add: { json: ["b:yes"], json_types: ["boolean"] } }),
            rtp({ add: { headers: ["x-a:$(uri_captures[0])", "x-b:$(headers.a:upper())", "x-c:$(shared.x)"] } }),
          ],
        ),
      );
      for (const expected of [
        'plugins[0].config.add.headers[0]: header "host" cannot be changed here',
        'plugins[0].config.add.headers[1]: header "content-length" cannot be changed here',
        "plugins[0].config.add.headers[2]",
        "plugins[0].config.add.headers[3]",
        "plugins[0].config.add.headers[4]",
        "plugins[0].config.add.headers[5]",
        "plugins[0].config.add.headers[6]",
        "plugins[1].config.max_body_size",
        "plugins[2].config.max_body_size",
        "plugins[3].config.replace.uri",
        "plugins[4].config.remove.cookies: unknown field `cookies`",
        "plugins[5].config.add.json_types",
        'plugins[6].config.remove.headers[0]: header "content-length" cannot be changed here',
        "plugins[6].config.remove.headers[1]",
        'plugins[6].config.add.json[0]: the value is not true or false (json_types says boolean)',
        "plugins[7].config.add.headers[0]",
        "plugins[7].config.add.headers[1]",
        'plugins[7].config.add.headers[2]: template: unknown template variable "shared"',
      ]) {
        assert.ok(error.includes(expected), `missing ${expected} in:\n${error}`);
      }
    });

    test("find_shadowed: a route with the same conditions as an earlier one is refused", async () => {
      const error = await rejected(
        base([
          { name: "a", hosts: ["API.example.com"], paths: ["/api/", "=/x"], methods: ["GET", "POST"], headers: { "x-env": ["PROD"] } },
          { name: "b", hosts: ["api.example.com"], paths: ["=/x", "/api"], methods: ["POST", "GET"], headers: { "X-Env": ["prod"] } },
        ]),
      );
      assert.ok(
        error.includes('routes[1]: never matches: routes[0] ("a") has the same match conditions and takes precedence'),
        error,
      );
      // A different priority is a different route.
      await gw.putConfig(
        base([
          { name: "a", paths: ["/api"] },
          { name: "b", paths: ["/api"], priority: 1 },
        ]),
      );
      assert.equal(await routeOf("/api"), "b");
    });
  });
});
