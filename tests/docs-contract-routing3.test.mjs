// The docs as a contract, third audit of docs/routing.md, from outside, as a Kong user tests it: the
// statements the first two audits (tests/docs-contract-routing.test.mjs, tests/docs-contract-routing2.test.mjs,
// tests/routing.test.mjs, tests/paths.test.mjs) left out, and the places where the page says how the
// gateway differs from Kong's router (kong/router/transform.lua, kong/router/utils.lua, kong/tools/uri.lua).
// Every statement runs on both request paths: CONFIG_RELOAD_SECONDS "0" (asynchronous) and "600" after a
// warm-up request (the synchronous path production traffic takes).
import { describe, test, before, after } from "node:test";
import assert from "node:assert/strict";
import { startGateway, startOrigin, request, waitFor, problemOf, rejected, raw, sleep } from "./support/harness.mjs";

let serial = 0;

function assertProblem(res, status, code, what = "") {
  assert.equal(res.status, status, `${what}: ${res.text}`);
  assert.match(res.headers["content-type"] ?? "", /^application\/problem\+json/, what);
  const p = problemOf(res);
  assert.equal(p.code, code, what);
  assert.equal(p.status, status, what);
  assert.equal(p.request_id, res.headers["x-request-id"], what);
  return p;
}

const CONFIG = (originUrl) => ({
  format_version: 1,
  services: [
    { name: "base", url: `${originUrl}/base` },
    { name: "s", url: `${originUrl}/s/` },
    { name: "none", url: originUrl },
  ],
  routes: [
    // Percent-encoding and normal form.
    { name: "seg", service: "base", paths: ["/seg"] },
    { name: "ab", service: "base", paths: ["=/ab/cd"] },
    { name: "abt", service: "base", paths: ["/abt/{x}"] },
    { name: "enc", service: "base", paths: ["/enc%2fx"] },
    { name: "cafe", service: "base", paths: ["/café"] },
    { name: "space", service: "base", paths: ["=/a b"] },
    { name: "bs", service: "base", paths: ["/bs\\x"] },
    { name: "tmpl-utf8", service: "base", paths: ["/été/{id}"], rewrite: "/summer/{id}" },
    // A query string.
    { name: "health", service: "base", paths: ["=/health"] },
    { name: "items", service: "base", paths: ["~^/v[0-9]+/items$"] },
    // strip_path: false on a service path, for the request path "/".
    { name: "root-base", service: "base", hosts: ["root.test"], strip_path: false },
    { name: "root-s", service: "s", hosts: ["roots.test"], strip_path: false },
    // Methods (case).
    { name: "m", service: "none", paths: ["/m"], methods: ["GET", "PATCH"] },
    // Header conditions in Kong's spelling, repeated lines, spaces.
    { name: "kong-re", service: "none", paths: ["/kre"], headers: { "X-Env": ["~*^stag"] } },
    { name: "kong-any", service: "none", paths: ["/kany"], headers: { "x-env": ["~*"] } },
    { name: "exact", service: "none", paths: ["/hx"], headers: { "x-env": ["prod"] } },
    { name: "anchored", service: "none", paths: ["/hre"], headers: { "x-env": ["~*^prod$"] } },
    { name: "two", service: "none", paths: ["/two"], headers: { "x-env": ["prod"], "x-zone": ["~^eu-"] } },
    // Precedence where Kong would choose otherwise.
    { name: "pk-long", service: "none", paths: ["/pk/v1"] },
    { name: "pk-method", service: "none", paths: ["/pk"], methods: ["GET"] },
    { name: "ph-long", service: "none", paths: ["/ph/v2"] },
    { name: "ph-header", service: "none", paths: ["/ph"], headers: { "x-canary": ["1"] } },
    { name: "re-first", service: "none", paths: ["~^/ta[0-9]"] },
    { name: "re-second", service: "none", paths: ["~^/ta[0-9a-z]"] },
    { name: "probe", service: "none", paths: ["=/__probe"], methods: ["GET"] },
  ],
});

for (const reload of ["0", "600"]) describe(`docs/routing.md, third audit (CONFIG_RELOAD_SECONDS ${reload})`, { timeout: 300_000 }, () => {
  let gw, o;

  /** The access log line of the request with this X-Request-Id. */
  async function logOf(id) {
    const line = await waitFor(() => gw.logs.find((l) => l.json?.event === "request" && l.json.request_id === id), { what: `log of ${id}` });
    return line.json;
  }
  /** One request with node's client: its response, the request the origin got (or null) and the route. */
  async function send(path, headers = {}, opts = {}) {
    const id = `rt3-${reload}-${++serial}`;
    const before = o.requests.length;
    const res = await request(gw.at(path), { ...opts, headers: { "x-request-id": id, ...headers } });
    const up = o.requests.slice(before).find((r) => r.headers["x-request-id"] === id) ?? null;
    return { res, up, route: (await logOf(id)).route };
  }
  /** One request on a raw socket (for request lines and header lines node's client would change). */
  async function sendRaw(requestLine, lines = []) {
    const id = `rt3r-${reload}-${++serial}`;
    const before = o.requests.length;
    const host = lines.some((l) => /^host:/i.test(l)) ? [] : ["Host: gw.test"];
    const res = await raw(gw.url, [requestLine, ...host, `X-Request-Id: ${id}`, ...lines].join("\r\n"));
    const up = o.requests.slice(before).find((r) => r.headers["x-request-id"] === id) ?? null;
    return { res, up, route: (await logOf(id)).route };
  }

  before(async () => {
    o = await startOrigin(async (req, res, record) => {
      res.writeHead(200, { "content-type": "text/plain" });
      res.end(record.url);
    });
    gw = await startGateway({ reload, config: CONFIG(o.url) });
    // Loads the version: with 600, every later request is served on the synchronous path.
    assert.equal((await request(gw.at("/__probe"))).status, 200);
  });
  after(async () => {
    await gw?.dispose();
    await o?.close();
  });

  describe("paths: percent-encoding and the normal form", () => {
    test("an encoded slash is never a separator: a prefix, an exact path or a template does not match across %2F", async () => {
      assert.equal((await send("/seg/x")).route, "seg");
      for (const path of ["/seg%2Fx", "/seg%2fx", "/ab%2Fcd", "/abt%2Fx"]) {
        const { res, up } = await send(path);
        assertProblem(res, 404, "no_route", path);
        assert.equal(up, null, path);
      }
      assert.equal((await send("/ab/cd")).route, "ab");
      // Inside a segment it is an ordinary character: a template parameter takes it, encoded.
      assert.equal((await send("/abt/a%2fb")).up?.url, "/base");
    });

    test("a literal pattern with an encoding is put in normal form: /enc%2fx matches %2F and %2f", async () => {
      for (const path of ["/enc%2Fx", "/enc%2fx", "/%65nc%2Fx/y"]) {
        const { route, up } = await send(path);
        assert.equal(route, "enc", path);
        assert.equal(up?.url, path.endsWith("/y") ? "/base/y" : "/base", path);
      }
      assert.equal((await send("/enc/x")).res.status, 404, "%2F in the pattern is not a /");
    });

    test("a literal pattern with non-ASCII characters, a space or a \\ matches the request as the runtime reads it", async () => {
      const utf8 = (s) => Buffer.from(s, "utf8").toString("latin1");
      for (const [line, expected] of [
        [`GET ${utf8("/café")}/x HTTP/1.1`, "/base/x"],
        ["GET /caf%C3%A9 HTTP/1.1", "/base"],
        ["GET /caf%c3%a9/y HTTP/1.1", "/base/y"],
      ]) {
        const { route, up } = await sendRaw(line);
        assert.equal(route, "cafe", line);
        assert.equal(up?.url, expected, line);
      }
      assert.equal((await sendRaw("GET /a%20b HTTP/1.1")).route, "space");
      const { route, up } = await sendRaw(`GET ${utf8("/été")}/7 HTTP/1.1`);
      assert.equal(route, "tmpl-utf8");
      assert.equal(up?.url, "/base/summer/7");
      assert.equal((await sendRaw("GET /caf HTTP/1.1")).res.status, 404);
      // A \ in a literal pattern is read as /, as the runtime reads it in requests.
      for (const line of ["GET /bs/x/y HTTP/1.1", "GET /bs\\x/y HTTP/1.1"]) {
        const { route, up } = await sendRaw(line);
        assert.equal(route, "bs", line);
        assert.equal(up?.url, "/base/y", line);
      }
    });

    test("the query string is not part of the path: an exact path and a $-anchored regex match with one", async () => {
      let { route, up } = await send("/health?x=1");
      assert.equal(route, "health");
      assert.equal(up?.url, "/base?x=1");
      ({ route, up } = await send("/v2/items?x=%2F&y"));
      assert.equal(route, "items");
      assert.equal(up?.url, "/base?x=%2F&y");
      assert.equal((await send("/v2/items/?x=1")).res.status, 404, "$ anchors the path, before the query");
    });
  });

  describe("the upstream path", () => {
    test("strip_path: false and the request path /: the base path alone (/base), or with its own slash (/s/)", async () => {
      for (const [host, path, expected] of [
        ["root.test", "/", "/base"],
        ["root.test", "/x/", "/base/x/"],
        ["roots.test", "/", "/s/"],
        ["roots.test", "/x", "/s/x"],
      ]) {
        const { up } = await send(path, { host });
        assert.equal(up?.url, expected, `${host}${path}`);
      }
    });
  });

  describe("methods", () => {
    test("methods are case-sensitive: a method not in upper case gets 501 from the runtime, no log line", async () => {
      for (const method of ["get", "Get", "patch", "Patch"]) {
        const id = `rt3m-${reload}-${++serial}`;
        const before = o.requests.length;
        const res = await raw(gw.url, [`${method} /m HTTP/1.1`, "Host: gw.test", `X-Request-Id: ${id}`].join("\r\n"));
        assert.equal(res.status, 501, `${method}: ${res.text}`);
        assert.equal(o.requests.length, before, method);
        await sleep(200);
        assert.ok(!gw.logs.some((l) => l.json?.request_id === id), `${method}: no access log line`);
      }
      const { route } = await sendRaw("PATCH /m HTTP/1.1");
      assert.equal(route, "m");
    });
  });

  describe("header conditions", () => {
    test("~* (Kong's spelling) is a regex that ignores case; ~* alone needs the header present", async () => {
      for (const [value, expected] of [
        ["staging-2", "kong-re"],
        ["STAGING", "kong-re"],
        ["my-staging", null],
      ]) {
        assert.equal((await send("/kre", { "x-env": value })).route, expected, value);
      }
      assert.equal((await send("/kre")).route, null);
      assert.equal((await sendRaw("GET /kany HTTP/1.1", ["x-env:"])).route, "kong-any");
      assert.equal((await send("/kany")).route, null);
    });

    test("repeated lines are one value joined with ', '; spaces and tabs around a value are not part of it", async () => {
      assert.equal((await send("/hx", { "x-env": "prod" })).route, "exact");
      assert.equal((await send("/hx", { "x-env": ["prod", "prod"] })).route, null);
      // Spaces and tabs around a value are not part of it (the runtime keeps the trailing ones).
      for (const line of ["X-ENV:   Prod  ", "x-env: prod\t \t", "x-env:\tprod"]) {
        assert.equal((await sendRaw("GET /hx HTTP/1.1", [line])).route, "exact", JSON.stringify(line));
        assert.equal((await sendRaw("GET /hre HTTP/1.1", [line])).route, "anchored", JSON.stringify(line));
      }
    });

    test("every named header must match (one of its values each)", async () => {
      assert.equal((await send("/two", { "x-env": "prod", "x-zone": "eu-west" })).route, "two");
      assert.equal((await send("/two", { "x-env": "prod" })).route, null);
      assert.equal((await send("/two", { "x-env": "prod", "x-zone": "us-east" })).route, null);
      const { res } = await send("/two", { "x-zone": "eu-west" });
      assertProblem(res, 404, "no_route");
    });
  });

  describe("precedence where Kong would choose otherwise", () => {
    test("a longer path beats a route that also lists methods (Kong counts the condition fields first)", async () => {
      assert.equal((await send("/pk/v1/x")).route, "pk-long");
      assert.equal((await send("/pk/x")).route, "pk-method");
      assert.equal((await send("/ph/v2", { "x-canary": "1" })).route, "ph-long");
      assert.equal((await send("/ph/x", { "x-canary": "1" })).route, "ph-header");
    });

    test("two regexes with literal starts of the same length: config order decides", async () => {
      assert.equal((await send("/ta1")).route, "re-first");
      assert.equal((await send("/tax")).route, "re-second");
    });
  });

  describe("404 no_route", () => {
    test("the problem document of proxying.md, with no-store and the request id; the log has route null", async () => {
      for (const [path, headers] of [
        ["/nowhere", {}],
        ["/hx", { "x-env": "dev" }],
      ]) {
        const id = `rt3-404-${reload}-${++serial}`;
        const before = o.requests.length;
        const res = await request(gw.at(path), { headers: { "x-request-id": id, ...headers } });
        const p = assertProblem(res, 404, "no_route", path);
        assert.equal(p.type, "https://edgegate.dev/errors/no_route");
        assert.equal(p.title, "No route matches the request");
        assert.equal(typeof p.detail, "string");
        assert.equal(p.request_id, id);
        assert.equal(res.headers["cache-control"], "no-store");
        assert.equal(o.requests.length, before, "the origin is not contacted");
        const log = await logOf(id);
        assert.equal(log.route, null);
        assert.equal(log.status, 404);
      }
    });
  });

  if (reload === "0") {
    describe("validation (the same on both paths: checked when a version is loaded)", () => {
      const base = (routes) => ({ ...CONFIG(o.url), routes: [...CONFIG(o.url).routes, ...routes] });
      test("Kong's regex_priority and path_handling are not route fields", async () => {
        for (const field of [{ regex_priority: 5 }, { path_handling: "v1" }]) {
          const name = Object.keys(field)[0];
          const error = await rejected(gw, base([{ name: "k", service: "none", paths: ["~^/k"], ...field }]));
          assert.match(error, new RegExp(`routes\\[\\d+\\]\\.${name}: unknown field \`${name}\``), error);
        }
      });

      test("Kong's host forms example.* and host:port do not exist here: refused at hosts[i]", async () => {
        const n = CONFIG(o.url).routes.length;
        for (const host of ["example.*", "api.example.com:8000"]) {
          const error = await rejected(gw, base([{ name: "k", service: "none", hosts: ["ok.example.com", host] }]));
          assert.match(error, new RegExp(`routes\\[${n}\\]\\.hosts\\[1\\]`), `${host}: ${error}`);
        }
      });

      test("?, # and a tab in a literal path, a bad ~* regex: errors with their JSON paths", async () => {
        const n = CONFIG(o.url).routes.length;
        const error = await rejected(
          gw,
          base([
            { name: "q", service: "none", paths: ["/ok", "/a?b"] },
            { name: "f", service: "none", paths: ["=/a#b", "/a\tb"] },
            { name: "h", service: "none", paths: ["/h"], headers: { "x-env": ["prod", "~*("] } },
          ]),
        );
        assert.match(error, new RegExp(`routes\\[${n}\\]\\.paths\\[1\\]: .*never part of a request path`), error);
        assert.match(error, new RegExp(`routes\\[${n + 1}\\]\\.paths\\[0\\]: .*never part of a request path`), error);
        assert.match(error, new RegExp(`routes\\[${n + 1}\\]\\.paths\\[1\\]: .*never part of a request path`), error);
        assert.match(error, new RegExp(`routes\\[${n + 2}\\]\\.headers\\.x-env\\[1\\]: invalid regular expression`), error);
        assert.doesNotMatch(error, new RegExp(`routes\\[${n}\\]\\.paths\\[0\\]`), error);
      });
    });
  }
});
