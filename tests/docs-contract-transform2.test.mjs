// The docs as a contract, second audit of docs/transformations.md: each precise statement of the page checked
// from outside (what the origin receives, what the client gets), on both configuration paths
// (CONFIG_RELOAD_SECONDS "0" and "1"). One configuration per gateway with a route per scenario; the origin
// echoes what it received (raw header bytes included) or, under /resp/, answers fixed responses.
import { describe, test, before, after } from "node:test";
import assert from "node:assert/strict";
import zlib from "node:zlib";
import {
  startGateway,
  startOrigin,
  request,
  closedPort,
  waitFor,
  problemOf,
  sha256,
  pseudoRandomChunks,
  wsConnect,
  wsEchoUpgradeHandler,
  putAndWait,
  rejected,
} from "./support/harness.mjs";

const METHODS = ["GET", "HEAD", "POST", "PUT", "DELETE", "PATCH"];
const BOUND = 1000; // max_body_size of the bounded routes

/** A string whose characters are the UTF-8 bytes of `s` (node:http writes header strings as Latin-1). */
const latin1 = (s) => Buffer.from(s).toString("latin1");
const hex = (s) => Buffer.from(s).toString("hex");

/** Fixed responses under /resp/<name>; anything else: a JSON echo of the request. */
function originHandler(req, res, record) {
  const p = new URL(req.url, "http://o").pathname;
  const json = (status, body, headers = {}) => {
    const buf = Buffer.from(body);
    res.writeHead(status, { "content-type": "application/json", "content-length": buf.length, ...headers });
    res.end(req.method === "HEAD" ? undefined : buf);
  };
  switch (p) {
    case "/resp/charset":
      return json(200, '{"internal_id":7,"name":"x"}', { "content-type": "application/json; charset=utf-8" });
    case "/resp/problem":
      return json(404, '{"internal_id":7}', { "content-type": "application/problem+json" });
    case "/resp/array":
      return json(200, '[{"internal_id":7}]');
    case "/resp/invalid":
      return json(200, '{"internal_id":7,');
    case "/resp/empty":
      return json(200, "");
    case "/resp/pretty":
      return json(200, '{ "b": 1,\n  "a": 2 }');
    case "/resp/gzip": {
      const gz = zlib.gzipSync(Buffer.from('{"internal_id":7,"name":"zipped"}'));
      res.writeHead(200, { "content-type": "application/json", "content-encoding": "gzip", "content-length": gz.length });
      return res.end(req.method === "HEAD" ? undefined : gz);
    }
    case "/resp/utf8hdr":
      res.writeHead(200, { "content-type": "application/json", "x-o": latin1("café€") });
      return res.end('{"k":"v"}');
    case "/resp/205":
      res.writeHead(205, { "content-type": "application/json", "x-drop": "1" });
      return res.end();
    case "/resp/falsy":
      return json(200, '{"f":false,"n":null,"list":[1],"old":"o","f2":"gone"}');
    case "/resp/custom-enc": {
      const raw = zlib.deflateRawSync(Buffer.from('{"internal_id":7}'));
      res.writeHead(200, { "content-type": "application/json", "content-encoding": "x-custom", "content-length": raw.length });
      return res.end(raw);
    }
    case "/resp/204":
      res.writeHead(204, { "content-type": "application/json", "x-drop": "1" });
      return res.end();
    case "/resp/304":
      res.writeHead(304, { "content-type": "application/json", etag: '"v1"', "x-drop": "1" });
      return res.end();
    case "/resp/cookies":
      res.writeHead(200, [
        ["content-type", "application/json"],
        ["set-cookie", "a=1; Path=/"],
        ["set-cookie", "b=2; Path=/"],
      ]);
      return res.end('{"k":"v"}');
    case "/resp/big": {
      const body = JSON.stringify({ internal_id: 7, pad: "x".repeat(4 * BOUND) });
      return json(200, body);
    }
    case "/resp/big-chunked": {
      const body = JSON.stringify({ internal_id: 7, pad: "x".repeat(4 * BOUND) });
      res.writeHead(200, { "content-type": "application/json" });
      for (let i = 0; i < body.length; i += 500) res.write(body.slice(i, i + 500));
      return res.end();
    }
  }
  const body = JSON.stringify({
    method: record.method,
    url: record.url,
    headers: record.headers,
    // Raw header bytes as they came on the wire (node decodes header bytes as Latin-1).
    raw: Object.fromEntries(
      record.rawHeaders.flatMap((v, i, a) => (i % 2 ? [] : [[v.toLowerCase(), Buffer.from(a[i + 1], "latin1").toString("hex")]])),
    ),
    body: record.body.toString("utf8"),
    bodyHex: record.body.length <= 4096 ? record.body.toString("hex") : undefined,
    length: record.body.length,
    sha256: sha256(record.body),
  });
  res.writeHead(200, { "content-type": "application/json", "x-origin": "yes" });
  res.end(body);
}

/** Routes and plugins: one route `/<name>` (prefix, strip_path false) per scenario with its plugins. */
function scenarios(originUrl, deadUrl) {
  const rt = (config) => ({ name: "request-transformer", config });
  const rs = (config) => ({ name: "response-transformer", config });
  const list = {
    order: [
      rt({
        remove: { headers: ["x-gone", "x-again"], querystring: ["q-gone"] },
        rename: { headers: ["x-old:x-new", "x-missing:x-never"], querystring: ["q-old:q-new"] },
        replace: { headers: ["x-rep:replaced", "x-rep-absent:never"], querystring: ["q-rep:r", "q-rep-absent:never"] },
        add: {
          headers: ["x-again:re-added", "x-added:a", "x-kept:not-used", "location:https://a.example/x", "x-empty:", "x-tag:a"],
          querystring: ["q-add:a b", "q-kept:not-used"],
        },
        append: { headers: ["x-tag:b", "cookie:b=2"], querystring: ["tag:a", "tag:b"] },
      }),
    ],
    names: [
      rt({ remove: { querystring: ["a b"] }, rename: { headers: ["X-Mixed:x-lower"] }, add: { querystring: ["Case:1"] } }),
    ],
    "client-view": [rt({ remove: { headers: ["x-tenant"] }, add: { headers: ["x-copy:$(headers.x-tenant)"] } })],
    method: [rt({ http_method: "GET" })],
    "to-post": [rt({ http_method: "POST" })],
    svc: [
      rt({ remove: { headers: ["x-svc-removed"] }, add: { headers: ["x-svc-added:rule"] }, append: { headers: ["x-svc-appended:rule"] } }),
    ],
    "uri-base": [rt({ replace: { uri: "/fixed" } })],
    uri: [rt({ replace: { uri: "/v2/$(query_params.to)" }, add: { querystring: ["added:1"] } })],
    "uri-rel": [rt({ replace: { uri: "$(query_params.to)" } })],
    "uri-param": [rt({ replace: { uri: "/v2/users/$(uri_captures.id)" } })],
    tpl: [
      rt({
        add: {
          headers: [
            "x-dot:$(headers.x-tenant)",
            "x-under:$(headers.x_tenant)",
            "x-bracket:$(headers[\"x-tenant\"])",
            "x-single:$(headers['x-tenant'])",
            "x-q:$(query_params.page)",
            "x-qb:$(query_params[\"page\"])",
            "x-flag:[$(query_params.flag or 'none')]",
            "x-or:$(headers.x-none or query_params.none or 'public')",
            "x-missing:[$(headers.x-none)]",
            "x-lit:$('$(') and $('it\\'s') $5",
            "x-cap1:$(uri_captures[1])",
            "x-capn:$(uri_captures.id)",
            "x-crlf:$(query_params.crlf)",
            "x-text:$(query_params.text)",
          ],
          querystring: ["copy:$(query_params.text)"],
        },
      }),
    ],
    body: [
      rt({
        remove: { body: ["password"] },
        rename: { body: ["user:username"] },
        replace: { body: ["role:user"] },
        add: { body: ["source:edge"] },
        append: { body: ["tags:new"] },
        max_body_size: BOUND,
      }),
    ],
    utf8: [
      rt({
        rename: { headers: ["x-in:x-renamed"] },
        add: { headers: ["x-copy:$(headers.x-src)"], querystring: ["q:$(headers.x-src)"], body: ["v:$(headers.x-src)"] },
        append: { headers: ["x-app:b"] },
      }),
    ],
    "resp-utf8": [rs({ append: { headers: ["x-o:more"] }, add: { headers: ["x-from-req:$(headers.x-src)", "x-from-q:$(query_params.t)"] } })],
    mp: [rt({ append: { body: ["note:$(headers.x-note)"] } })],
    "mp-name": [rt({ add: { body: ['a"b:1'] } })],
    ws: [rs({ add: { headers: ["x-served-by:edgegate"] }, remove: { headers: ["x-origin-ws"] } })],
    "no-body-rule": [rt({ add: { headers: ["x-added:1"] }, max_body_size: BOUND })],
    resp: [
      rs({
        remove: { headers: ["x-drop"], json: ["internal_id"] },
        add: { headers: ["x-served-by:edgegate"], json: ["api_version:2", "flag:true", "src:edge"], json_types: ["number", "boolean"] },
        append: { headers: ["set-cookie:c=3"] },
        max_body_size: BOUND,
      }),
    ],
    "resp-typed": [rs({ add: { json: ["n:$(query_params.n)", "b:$(query_params.b)"], json_types: ["number", "boolean"] } })],
    "resp-falsy": [rs({ rename: { json: ["old:f2"] }, replace: { json: ["absent:1"] }, add: { json: ["f:true", "n:1", "x:1", "a.b:1"] }, append: { json: ["list:b"] } })],
    "resp-append": [rs({ append: { json: ["name:more", "list:one"] } })],
    "resp-same": [rs({ remove: { json: ["absent"] }, rename: { json: ["absent:other"] }, replace: { json: ["also-absent:1"] } })],
    dead: [rs({ add: { headers: ["x-served-by:edgegate"], json: ["edge:1"] } })],
  };
  const routes = [];
  const services = [{ name: "echo", url: originUrl }, { name: "dead", url: deadUrl }, { name: "based", url: `${originUrl}/base` }];
  const plugins = [];
  for (const [name, ps] of Object.entries(list)) {
    const paths = name === "uri-param" ? ["/uri-param/{id}"] : name === "tpl" ? ["/tpl/{id}"] : [`/${name}`];
    const rewrite = { "resp-falsy": "/resp/falsy", "resp-typed": "/resp/charset", "resp-append": "/resp/charset", "resp-same": "/resp/pretty", "resp-utf8": "/resp/utf8hdr" }[name];
    if (name === "uri-base") {
      routes.push({ name, service: "based", paths: ["/uri-base"], methods: METHODS }); // strip_path true
      for (const p of ps) plugins.push({ ...p, route: name });
      continue;
    }
    routes.push({ name, service: name === "dead" ? "dead" : "echo", paths, strip_path: false, methods: METHODS, ...(rewrite ? { rewrite } : {}) });
    for (const p of ps) plugins.push({ ...p, route: name });
  }
  // Responses under /resp/... go through the `resp` route (prefix match).
  routes.push({ name: "probe", service: "echo", paths: ["/__probe"], methods: ["GET"] });
  return { format_version: 1, services: services.map((s) => ({ ...s, headers: s.name === "echo" ? {
    "x-svc-removed": "svc",
    "x-svc-added": "svc",
    "x-svc-appended": "svc",
    "x-svc-only": "svc",
  } : undefined })), routes, plugins };
}

function assertProblem(res, status, code) {
  assert.equal(res.status, status, res.text);
  const p = problemOf(res);
  assert.equal(p.code, code, res.text);
  return p;
}

for (const reload of ["0", "1"]) describe(`docs/transformations.md, second audit (CONFIG_RELOAD_SECONDS ${reload})`, { timeout: 300_000 }, () => {
  let gw;
  let origin;
  before(async () => {
    origin = await startOrigin(originHandler, { onUpgrade: wsEchoUpgradeHandler() });
    gw = await startGateway({ bindings: { CONFIG_RELOAD_SECONDS: reload } });
    await putAndWait(gw, scenarios(origin.url, `http://127.0.0.1:${await closedPort()}`));
  });
  after(async () => {
    await gw?.dispose();
    await origin?.close();
  });
  const echo = async (path, opts) => {
    const res = await request(gw.at(path), opts);
    assert.equal(res.status, 200, res.text);
    return res.json();
  };

  describe("order of operations", () => {
    test("remove, rename, replace, add, append on headers, each as the table says", async () => {
      const o = await echo("/order", {
        headers: { "x-gone": "1", "x-again": "client", "x-old": "o", "x-new": "replaced by rename", "x-rep": "client", "x-kept": "client", "x-tag": "t", cookie: "a=1" },
      });
      const h = o.headers;
      assert.equal(h["x-gone"], undefined);
      assert.equal(h["x-again"], "re-added", "a header removed by remove can be added again by add");
      assert.equal(h["x-new"], "o");
      assert.equal(h["x-old"], undefined);
      assert.equal(h["x-never"], undefined, "rename only when old is present");
      assert.equal(h["x-rep"], "replaced");
      assert.equal(h["x-rep-absent"], undefined, "replace only when present");
      assert.equal(h["x-added"], "a");
      assert.equal(h["x-kept"], "client", "add never changes a header the client sent");
      assert.equal(h.location, "https://a.example/x", "split at the first colon");
      assert.equal(h["x-empty"], "");
      assert.equal(h["x-tag"], "t, b", "append: one more value");
      assert.equal(h.cookie, "a=1; b=2", "append on Cookie joins with '; '");
    });
    test("append on an absent header: the header with this value; add then append: both values", async () => {
      const o = await echo("/order");
      assert.equal(o.headers["x-tag"], "a, b");
      assert.equal(o.headers.cookie, "b=2");
    });
    test("query rules: remove, rename, replace, add, append; written values percent-encoded, others untouched", async () => {
      const o = await echo("/order?z=%7e+1&q-gone=1&q-old=o&q-rep=c&q-kept=k&tag=0");
      const u = new URL(o.url, "http://x");
      const q = u.searchParams;
      assert.equal(q.get("q-gone"), null);
      assert.equal(q.get("q-new"), "o");
      assert.equal(q.get("q-old"), null);
      assert.equal(q.get("q-rep"), "r");
      assert.equal(q.get("q-rep-absent"), null);
      assert.equal(q.get("q-kept"), "k");
      assert.deepEqual(q.getAll("tag"), ["0", "a", "b"]);
      assert.match(u.search, /q-add=a%20b/, "a space is %20");
      assert.ok(u.search.startsWith("?z=%7e+1&"), `untouched pair keeps its spelling and order: ${u.search}`);
    });
    test("header names are case-insensitive; query names are exact and compared decoded", async () => {
      const o = await echo("/names?a%20b=1&a+b=2&case=0&keep=1", { headers: { "x-mixed": "m" } });
      assert.equal(o.headers["x-lower"], "m");
      const q = new URL(o.url, "http://x").searchParams;
      assert.equal(q.get("a b"), null, "a%20b and a+b are both the name `a b`");
      assert.equal(q.get("case"), "0");
      assert.equal(q.get("Case"), "1", "query names are case-sensitive: Case is absent, so added");
    });
  });

  describe("request-transformer", () => {
    test("templates read the request as the client sent it", async () => {
      const o = await echo("/client-view", { headers: { "x-tenant": "acme" } });
      assert.equal(o.headers["x-tenant"], undefined);
      assert.equal(o.headers["x-copy"], "acme");
    });
    test("http_method GET: the upstream request is a GET without a body", async () => {
      const o = await echo("/method", { method: "POST", headers: { "content-type": "application/json" }, body: '{"a":1}' });
      assert.equal(o.method, "GET");
      assert.equal(o.length, 0);
    });
    test("http_method POST: the method changes, the body is kept", async () => {
      const o = await echo("/to-post", { method: "PUT", headers: { "content-type": "text/plain" }, body: "hello" });
      assert.equal(o.method, "POST");
      assert.equal(o.body, "hello");
    });
    test("a rule wins over the service's headers; rules see the client's headers, not the service's", async () => {
      const o = await echo("/svc");
      assert.equal(o.headers["x-svc-removed"], undefined, "remove: neither the client's nor the service's value");
      assert.equal(o.headers["x-svc-added"], "rule", "add on a name only the service sets still adds it");
      assert.equal(o.headers["x-svc-appended"], "rule");
      assert.equal(o.headers["x-svc-only"], "svc");
    });
  });

  describe("replace.uri", () => {
    test("the whole path; the query is kept after the query rules", async () => {
      const o = await echo("/uri?to=a/b&x=1");
      assert.equal(o.url, "/v2/a/b?to=a/b&x=1&added=1");
    });
    test("the service's base path and strip_path no longer apply", async () => {
      const o = await echo("/uri-base/x?y=1");
      assert.equal(o.url, "/fixed?y=1");
    });
    test("path parameters carried over with uri_captures", async () => {
      const o = await echo("/uri-param/42?x=1");
      assert.equal(o.url, "/v2/users/42?x=1");
    });
    test("characters a path cannot hold are percent-encoded", async () => {
      const o = await echo("/uri?to=" + encodeURIComponent("a b?c#d é"));
      assert.equal(new URL(o.url, "http://x").pathname, "/v2/a%20b%3Fc%23d%20%C3%A9");
    });
    test("a missing leading / is added", async () => {
      const o = await echo("/uri-rel?to=plain");
      assert.equal(new URL(o.url, "http://x").pathname, "/plain");
    });
    test("a . or .. segment in any spelling: 400 invalid_path, origin not called", async () => {
      const before = origin.requests.length;
      for (const to of ["a/../b", "a/%2e%2e/b", "./x", "a/%2E/b"]) {
        const res = await request(gw.at("/uri?to=" + encodeURIComponent(to)));
        assertProblem(res, 400, "invalid_path");
      }
      assert.equal(origin.requests.length, before);
    });
  });

  describe("templates", () => {
    test("every documented form", async () => {
      const o = await echo("/tpl/7?page=3&flag&text=caf%C3%A9&crlf=a%0D%0Ab", { headers: { "x-tenant": "acme" } });
      const h = o.headers;
      assert.equal(h["x-dot"], "acme");
      assert.equal(h["x-under"], "acme", "_ reads as - in the dot form");
      assert.equal(h["x-bracket"], "acme");
      assert.equal(h["x-single"], "acme");
      assert.equal(h["x-q"], "3");
      assert.equal(h["x-qb"], "3");
      assert.equal(h["x-flag"], "[]", "?flag has the value \"\", which counts for or");
      assert.equal(h["x-or"], "public");
      assert.equal(h["x-missing"], "[]");
      assert.equal(h["x-lit"], "$( and it's $5", "$('$(') is a literal $(; inside quotes \\ escapes; a $ without ( is text");
      assert.equal(h["x-cap1"], "7");
      assert.equal(h["x-capn"], "7");
      assert.equal(h["x-crlf"], "a  b", "CR and LF become spaces");
    });
    test("query_params: the first value, percent- and +-decoded; uri_captures as in the URL", async () => {
      const o = await echo("/tpl/a%20b?page=1+2&page=3");
      assert.equal(o.headers["x-q"], "1 2");
      assert.equal(o.headers["x-capn"], "a%20b");
    });
    test("several values of a header are joined with ', '", async () => {
      const res = await request(gw.at("/tpl/1"), { headers: { "x-tenant": ["a", "b"] } });
      assert.equal(res.json().headers["x-dot"], "a, b");
    });
  });

  describe("non-ASCII template values in headers", () => {
    test("?text=caf%C3%A9 goes out as the UTF-8 bytes of café", async () => {
      const o = await echo("/tpl/1?text=caf%C3%A9");
      assert.equal(o.raw["x-text"], hex("café"));
      assert.match(o.url, /copy=caf%C3%A9/);
    });
    test("a character outside Latin-1 (€) too", async () => {
      const o = await echo("/tpl/1?text=%E2%82%AC5");
      assert.equal(o.raw["x-text"], hex("€5"));
    });
    test("bytes that are not UTF-8: %FF written as the text %FF", async () => {
      const o = await echo("/tpl/1?text=caf%C3%A9%ff");
      assert.equal(o.raw["x-text"], hex("café%FF"));
      assert.match(o.url, /copy=caf%C3%A9%FF/);
    });
  });

  describe("non-ASCII header values (UTF-8 bytes from the client or the origin)", () => {
    test("a client's UTF-8 header renamed, appended to, copied by a template: the same bytes go out; as text in JSON and query", async () => {
      const v = latin1("café€");
      for (const method of ["GET", "POST"]) {
        const o = await echo("/utf8", {
          method,
          headers: { "x-in": v, "x-app": v, "x-src": v, ...(method === "POST" ? { "content-type": "application/json" } : {}) },
          body: method === "POST" ? "{}" : undefined,
        });
        assert.equal(o.raw["x-renamed"], hex("café€"), method);
        assert.equal(o.raw["x-app"], hex("café€, b"), method);
        assert.equal(o.raw["x-copy"], hex("café€"), method);
        if (method === "POST") assert.deepEqual(JSON.parse(o.body), { v: "café€" });
        assert.match(o.url, /q=caf%C3%A9%E2%82%AC/);
      }
    });
    test("a client's UTF-8 café (no character above U+00FF) copied by a template keeps its bytes", async () => {
      for (const method of ["GET", "POST"]) {
        const o = await echo("/utf8", {
          method,
          headers: { "x-in": latin1("café"), "x-app": latin1("café"), "x-src": latin1("café"), ...(method === "POST" ? { "content-type": "application/json" } : {}) },
          body: method === "POST" ? "{}" : undefined,
        });
        assert.equal(o.raw["x-renamed"], hex("café"), method);
        assert.equal(o.raw["x-copy"], hex("café"), method);
        assert.equal(o.raw["x-app"], hex("café, b"), method);
      }
    });
    test("a byte that is not UTF-8 (Latin-1 é, E9) in a header a rule uses reads as U+FFFD", async () => {
      // node:http sends a header string's characters below U+0100 as single bytes: "caf\u00e9" is 63 61 66 E9.
      const o = await echo("/utf8", { method: "POST", headers: { "x-src": "caf\u00e9", "content-type": "application/json" }, body: "{}" });
      assert.equal(o.raw["x-copy"], hex("caf\ufffd"));
      assert.deepEqual(JSON.parse(o.body), { v: "caf\ufffd" });
      assert.match(o.url, /q=caf%EF%BF%BD(&|$)/);
      const form = await echo("/utf8", { method: "POST", headers: { "x-src": "caf\u00e9", "content-type": "application/x-www-form-urlencoded" }, body: "a=1" });
      assert.equal(form.body, "a=1&v=caf%EF%BF%BD");
    });
    test("response headers: the origin's UTF-8 value appended to keeps its bytes; templates write UTF-8", async () => {
      const res = await request(gw.at("/resp-utf8?t=%C3%A9"), { headers: { "x-src": latin1("café€") } });
      assert.equal(res.status, 200);
      assert.equal(hex(Buffer.from(res.headers["x-o"], "latin1")), hex("café€, more"));
      assert.equal(hex(Buffer.from(res.headers["x-from-req"], "latin1")), hex("café€"));
      assert.equal(hex(Buffer.from(res.headers["x-from-q"], "latin1")), hex("é"));
    });
  });

  describe("request bodies", () => {
    const post = (path, ct, body, extra = {}) =>
      request(gw.at(path), { method: "POST", headers: ct ? { "content-type": ct, ...extra } : extra, body });
    test("JSON with parameters in the Content-Type: rules applied, re-encoded, Content-Length correct", async () => {
      const res = await post("/body", "application/json; charset=utf-8", JSON.stringify({ user: "u", password: "p", role: "admin", tags: "old", z: 1 }));
      const o = res.json();
      assert.deepEqual(JSON.parse(o.body), { username: "u", role: "user", source: "edge", tags: ["old", "new"], z: 1 });
      assert.equal(o.body, '{"role":"user","source":"edge","tags":["old","new"],"username":"u","z":1}', "sorted keys, no whitespace");
      assert.equal(Number(o.headers["content-length"]), o.length);
    });
    test("a form body: pairs rewritten, untouched pairs keep their spelling", async () => {
      const o = (await post("/body", "application/x-www-form-urlencoded", "keep=a%2Bb+c&password=x&user=u")).json();
      assert.equal(o.body, "keep=a%2Bb+c&username=u&source=edge&tags=new");
      assert.equal(Number(o.headers["content-length"]), o.length);
    });
    test("a chunked JSON body that the rules change is sent with a Content-Length", async () => {
      const chunks = (async function* () {
        yield Buffer.from('{"user":');
        yield Buffer.from('"u"}');
      })();
      const o = (await post("/body", "application/json", chunks)).json();
      assert.equal(o.body, '{"source":"edge","tags":["new"],"username":"u"}');
      assert.equal(Number(o.headers["content-length"]), o.length);
      assert.equal(o.headers["transfer-encoding"], undefined);
    });
    test("an empty JSON body counts as {}", async () => {
      const o = (await post("/body", "application/json", "")).json();
      assert.equal(o.body, '{"source":"edge","tags":["new"]}');
      assert.equal(Number(o.headers["content-length"]), o.length);
    });
    test("invalid JSON and a JSON array are sent as they came", async () => {
      for (const body of ['{"password":"p",', '[{"password":"p"}]']) {
        const o = (await post("/body", "application/json", body)).json();
        assert.equal(o.body, body);
      }
    });
    test("a gzip-encoded JSON request body (Content-Encoding: gzip) is not JSON to the rules: sent as it came", async () => {
      const gz = zlib.gzipSync('{"password":"p"}');
      const o = (await post("/body", "application/json", gz, { "content-encoding": "gzip" })).json();
      assert.equal(o.bodyHex, gz.toString("hex"));
      assert.equal(o.headers["content-encoding"], "gzip");
    });
    test("multipart: parts by name, file bytes kept, preamble dropped, new Content-Length; quoted boundary and parameters in any order", async () => {
      for (const [B, ct] of [
        ["b0undary", "multipart/form-data; boundary=b0undary"],
        ["a b'c", 'Multipart/Form-Data; charset=utf-8; boundary="a b\'c"'],
      ]) {
        const file = Buffer.from([0, 1, 2, 0xff, 0x0d, 0x0a, 0x2d, 0x2d]);
        const body = Buffer.concat([
          Buffer.from(`preamble\r\n--${B}\r\nContent-Disposition: form-data; name="password"\r\n\r\nsecret\r\n`),
          Buffer.from(`--${B}\r\nContent-Disposition: form-data; name="user"; filename="u.bin"\r\nContent-Type: application/octet-stream\r\n\r\n`),
          file,
          Buffer.from(`\r\n--${B}--\r\nepilogue`),
        ]);
        const o = (await post("/body", ct, body)).json();
        assert.equal(o.headers["content-type"], ct);
        assert.equal(Number(o.headers["content-length"]), o.length);
        const got = Buffer.from(o.bodyHex ?? "", "hex");
        assert.ok(!got.includes("secret") && !got.includes("preamble") && !got.includes("epilogue"), got.toString("latin1"));
        const form = await new Response(got, { headers: { "content-type": `multipart/form-data; boundary="${B}"` } }).formData();
        const username = form.get("username");
        assert.equal(username.name, "u.bin", "a renamed file keeps its filename");
        assert.equal(Buffer.from(await username.arrayBuffer()).toString("hex"), file.toString("hex"));
        assert.equal(form.get("source"), "edge");
        assert.deepEqual(form.getAll("tags"), ["new"]);
        assert.equal(form.get("user"), null);
      }
    });
    test("multipart: a value that would contain the boundary is refused with 400; a malformed body is sent as it came", async () => {
      const ct = "multipart/form-data; boundary=edge";
      const body = Buffer.from('--edge\r\nContent-Disposition: form-data; name="x"\r\n\r\n1\r\n--edge--\r\n');
      const before = origin.requests.length;
      assertProblem(await post("/mp", ct, body, { "x-note": "a --edge b" }), 400, "bad_request");
      assert.equal(origin.requests.length, before, "the origin is not called");
      const ok = (await post("/mp", ct, body, { "x-note": "edge" })).json();
      assert.equal(
        Buffer.from(ok.bodyHex, "hex").toString("latin1"),
        '--edge\r\nContent-Disposition: form-data; name="x"\r\n\r\n1\r\n--edge\r\nContent-Disposition: form-data; name="note"\r\n\r\nedge\r\n--edge--\r\n',
        "a written text field: Content-Disposition and the value, no Content-Type",
      );
      const named = (await post("/mp-name", ct, body)).json();
      assert.ok(Buffer.from(named.bodyHex, "hex").includes('Content-Disposition: form-data; name="a%22b"\r\n\r\n1\r\n'), "a \" in a name is %22");
      const malformed = "no delimiter here password=1";
      const o = (await post("/mp", ct, malformed, { "x-note": "n" })).json();
      assert.equal(o.body, malformed);
    });
    test("a form body that is not UTF-8 is sent as it came", async () => {
      const body = Buffer.from([0x70, 0x61, 0x73, 0x73, 0x77, 0x6f, 0x72, 0x64, 0x3d, 0xff]); // password=\xff
      const o = (await post("/body", "application/x-www-form-urlencoded", body)).json();
      assert.equal(o.bodyHex, body.toString("hex"));
    });
    test("other content types (text/plain, none, multipart without boundary) stream through untouched", async () => {
      for (const ct of ["text/plain", undefined, "multipart/form-data"]) {
        const body = '{"password":"p"}';
        const o = (await post("/body", ct, body)).json();
        assert.equal(o.body, body, String(ct));
      }
    });
    test("over max_body_size: 413 payload_too_large from Content-Length and while reading chunked; origin not called", async () => {
      const before = origin.requests.length;
      const big = JSON.stringify({ pad: "x".repeat(2 * BOUND) });
      assertProblem(await post("/body", "application/json", big), 413, "payload_too_large");
      const chunked = (async function* () {
        for (let i = 0; i < big.length; i += 300) yield Buffer.from(big.slice(i, i + 300));
      })();
      assertProblem(await post("/body", "application/json", chunked), 413, "payload_too_large");
      assert.equal(origin.requests.length, before);
    });
    test("exactly max_body_size bytes is read and transformed", async () => {
      const base = JSON.stringify({ pad: "" });
      const body = JSON.stringify({ pad: "x".repeat(BOUND - base.length) });
      assert.equal(body.length, BOUND);
      const o = (await post("/body", "application/json", body)).json();
      assert.equal(JSON.parse(o.body).source, "edge");
    });
    test("without body rules a large body streams through untouched (no bound)", async () => {
      const chunks = [...pseudoRandomChunks(256 * 1024, 16 * 1024, 7)];
      const expected = sha256(Buffer.concat(chunks));
      const o = (await post("/no-body-rule", "application/json", (async function* () { yield* chunks; })())).json();
      assert.equal(o.sha256, expected);
      assert.equal(o.headers["x-added"], "1");
    });
  });

  describe("response-transformer", () => {
    test("json rules with application/json; charset=utf-8, json_types; Content-Length of the new body", async () => {
      const res = await request(gw.at("/resp/charset"));
      assert.equal(res.status, 200);
      assert.deepEqual(res.json(), { name: "x", api_version: 2, flag: true, src: "edge" });
      assert.equal(res.headers["x-served-by"], "edgegate");
      assert.equal(Number(res.headers["content-length"]), res.body.length);
    });
    test("application/problem+json: header rules apply, json rules do not", async () => {
      const res = await request(gw.at("/resp/problem"));
      assert.equal(res.status, 404);
      assert.equal(res.headers["x-served-by"], "edgegate");
      assert.deepEqual(res.json(), { internal_id: 7 });
    });
    test("the gateway's own 502 problem+json gets the header rules, not the json rules", async () => {
      const res = await request(gw.at("/dead"));
      assert.equal(res.status, 502);
      assert.equal(res.headers["x-served-by"], "edgegate");
      assert.equal(problemOf(res).edge, undefined);
    });
    test("a JSON body that is not an object, invalid or empty passes as it came", async () => {
      for (const [p, body] of [["array", '[{"internal_id":7}]'], ["invalid", '{"internal_id":7,'], ["empty", ""]]) {
        const res = await request(gw.at(`/resp/${p}`));
        assert.equal(res.text, body, p);
        assert.equal(res.headers["x-served-by"], "edgegate");
      }
    });
    test("JSON keys: present whatever the value (false, null); rename replaces the new key; [1] appended to; a dot is part of a name", async () => {
      const res = await request(gw.at("/resp-falsy"));
      assert.deepEqual(res.json(), { f: false, n: null, list: [1, "b"], f2: "o", x: "1", "a.b": "1" });
    });
    test("rules that change nothing: the original bytes", async () => {
      const res = await request(gw.at("/resp-same"));
      assert.equal(res.status, 200);
      assert.equal(res.text, '{ "b": 1,\n  "a": 2 }');
    });
    test("append on JSON keys: a value becomes an array, an absent key a one-element array", async () => {
      const res = await request(gw.at("/resp-append"));
      assert.deepEqual(res.json(), { internal_id: 7, name: ["x", "more"], list: ["one"] });
    });
    test("a gzip-encoded origin response: json rules apply to the decoded JSON, sent gzip-encoded again", async () => {
      const res = await request(gw.at("/resp/gzip"), { headers: { "accept-encoding": "gzip" } });
      assert.equal(res.status, 200);
      assert.equal(res.headers["content-encoding"], "gzip");
      assert.deepEqual(JSON.parse(zlib.gunzipSync(res.body).toString()), { name: "zipped", api_version: 2, flag: true, src: "edge" });
      assert.equal(res.headers["content-length"], undefined);
      assert.equal(res.headers["transfer-encoding"], "chunked");
    });
    test("an encoding the runtime does not decode: not JSON to the rules, passed untouched", async () => {
      const res = await request(gw.at("/resp/custom-enc"));
      assert.equal(res.status, 200);
      assert.equal(res.headers["content-encoding"], "x-custom");
      assert.equal(res.body.toString("hex"), zlib.deflateRawSync(Buffer.from('{"internal_id":7}')).toString("hex"));
      assert.equal(res.headers["x-served-by"], "edgegate");
    });
    test("json_types with a template: a number that does not render as a number stays a string", async () => {
      const ok = await request(gw.at("/resp-typed?n=12&b=true"));
      assert.deepEqual(ok.json(), { internal_id: 7, name: "x", n: 12, b: true });
      const not = await request(gw.at("/resp-typed?n=twelve&b=yes"));
      assert.deepEqual(not.json(), { internal_id: 7, name: "x", n: "twelve", b: false });
    });
    test("HEAD: header rules apply, no body, and no Content-Length when json rules would rewrite the GET body", async () => {
      const get = await request(gw.at("/resp/charset"));
      const res = await request(gw.at("/resp/charset"), { method: "HEAD" });
      assert.equal(res.status, 200);
      assert.equal(res.headers["x-served-by"], "edgegate");
      assert.equal(res.body.length, 0);
      // RFC 9110 §8.6: a HEAD Content-Length, if any, is the length GET would send.
      if (res.headers["content-length"] !== undefined) assert.equal(Number(res.headers["content-length"]), get.body.length);
      assert.equal(res.headers["content-length"], undefined, "dropped, as Kong does");
      // json rules that do not apply (problem+json): the origin's Content-Length is kept.
      const other = await request(gw.at("/resp/problem"), { method: "HEAD" });
      assert.equal(other.headers["content-length"], String('{"internal_id":7}'.length));
      // Over max_body_size GET passes the body untouched: its Content-Length is kept.
      const big = await request(gw.at("/resp/big"), { method: "HEAD" });
      assert.equal(big.headers["content-length"], String(Buffer.byteLength(JSON.stringify({ internal_id: 7, pad: "x".repeat(4 * BOUND) }))));
    });
    test("204, 205 and 304: header rules apply, no body", async () => {
      for (const s of ["204", "205", "304"]) {
        const res = await request(gw.at(`/resp/${s}`));
        assert.equal(res.status, Number(s));
        assert.equal(res.headers["x-served-by"], "edgegate", s);
        assert.equal(res.headers["x-drop"], undefined, s);
        assert.equal(res.body.length, 0, s);
      }
    });
    test("a WebSocket upgrade (101) passes untouched", async () => {
      const ws = await wsConnect(gw.at("/ws"));
      try {
        assert.equal(ws.status, 101);
        assert.equal(ws.headers["x-origin-ws"], "yes", "remove.headers not applied");
        assert.equal(ws.headers["x-served-by"], undefined, "add.headers not applied");
        assert.equal(ws.headers["sec-websocket-accept"], ws.expectedAccept);
        ws.send("hi");
        assert.equal((await ws.next()).payload.toString(), "echo: hi");
      } finally {
        ws.close();
      }
    });
    test("Set-Cookie append: the origin's lines kept, one more line", async () => {
      const res = await request(gw.at("/resp/cookies"));
      assert.deepEqual(res.headers["set-cookie"], ["a=1; Path=/", "b=2; Path=/", "c=3"]);
    });
    test("over max_body_size the body passes untouched, with a warning (Content-Length and chunked)", async () => {
      const ids = [];
      for (const p of ["big", "big-chunked"]) {
        const res = await request(gw.at(`/resp/${p}`));
        ids.push(res.headers["x-request-id"]);
        assert.equal(res.status, 200);
        assert.equal(res.json().internal_id, 7, p);
        assert.equal(res.json().pad.length, 4 * BOUND, p);
      }
      const warning = (id) => gw.logs.find((l) => l.json?.event === "plugin_warning" && l.json.plugin === "response-transformer" && l.json.request_id === id);
      await waitFor(() => warning(ids[0]) && warning(ids[1]), { what: "two response-transformer warnings" });
      const size = Buffer.byteLength(JSON.stringify({ internal_id: 7, pad: "x".repeat(4 * BOUND) }));
      assert.match(warning(ids[0]).json.message, new RegExp(`${size}.*max_body_size`));
      assert.match(warning(ids[1]).json.message, /max_body_size/);
    });
  });

  // Last: a refused version leaves the one in service as it was.
  describe("validation errors", () => {
    test("JSON paths and the problem, never the entry's value; the version in service stays", async () => {
      const error = await rejected(gw, {
        format_version: 1,
        services: [{ name: "s", url: "http://127.0.0.1:1" }],
        routes: [{ name: "r", service: "s", paths: ["/refused"] }],
        plugins: [
          {
            name: "request-transformer",
            route: "r",
            config: {
              add: { headers: ["Authorization Bearer sk-secret-123", "x-a:$(headers.x", "x b:1"] },
              replace: { uri: "/$(route.name)" },
              remove: { headers: ["x-forwarded-for"] },
              http_method: "post",
              max_body_size: 8388609,
            },
          },
          {
            name: "response-transformer",
            route: "r",
            config: { add: { headers: ["x-u:$(headers.a:upper())", "x-s:$(shared.x)"], json: ["n:abc", "m:1"], json_types: ["number", "number", "string"] } },
          },
          { name: "response-transformer", service: "s", config: { add: { querystring: ["a:1"] } } },
          { name: "request-transformer", service: "s", config: { replace: { uri: "v2/x" } } },
          { name: "response-transformer", service: "s", config: { remove: { headers: ["transfer-encoding", "Content-Length"] } } },
          { name: "request-transformer", config: { remove: { cookies: ["a"] } } },
          { name: "request-transformer", route: "r", config: { add: { headers: ["host:x", "x-request-id:1", "expect:1", "x-forwarded-host:h"] } } },
        ],
      });
      for (const part of [
        'plugins[0].config.add.headers[0]: not "name:value" (no colon)',
        'plugins[0].config.add.headers[1]: template: unclosed "$("',
        "plugins[0].config.add.headers[2]: not a valid header name",
        'plugins[0].config.replace.uri: template: unknown template variable "route"',
        'plugins[0].config.remove.headers[0]: header "x-forwarded-for" cannot be changed here',
        "plugins[0].config.http_method:",
        "plugins[0].config.max_body_size:",
        "plugins[1].config.add.headers[0]: template:",
        'plugins[1].config.add.headers[1]: template: unknown template variable "shared"',
        "plugins[1].config.add.json[0]: the value is not a number",
        "plugins[1].config.add.json_types:",
        "plugins[2].config.add.querystring: unknown field `querystring`",
        "plugins[3].config.replace.uri:",
        'plugins[4].config.remove.headers[0]: header "transfer-encoding" cannot be changed here',
        'plugins[4].config.remove.headers[1]: header "content-length" cannot be changed here',
        "plugins[5].config.remove.cookies: unknown field `cookies`",
        'plugins[6].config.add.headers[0]: header "host" cannot be changed here',
        'plugins[6].config.add.headers[1]: header "x-request-id" cannot be changed here',
        'plugins[6].config.add.headers[2]: header "expect" cannot be changed here',
        'plugins[6].config.add.headers[3]: header "x-forwarded-host" cannot be changed here',
      ]) {
        assert.ok(error.includes(part), `${part} in:\n${error}`);
      }
      assert.ok(!error.includes("sk-secret-123") && !error.includes("Bearer"), error);
      const o = await echo("/order");
      assert.equal(o.headers["x-added"], "a");
    });
  });
});
