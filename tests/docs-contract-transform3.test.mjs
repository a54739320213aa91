// The docs as a contract, third audit of docs/transformations.md against Kong's request- and
// response-transformer: the edge cases a Kong user tests first (order of operations on values already
// there, JSON Content-Type decisions, request body values are strings, rename to an existing or the same
// name, values with colons, `allow.json`), on both request paths (CONFIG_RELOAD_SECONDS "0" and "600").
import { describe, test, before, after } from "node:test";
import assert from "node:assert/strict";
import { startGateway, startOrigin, request, rejected } from "./support/harness.mjs";

const METHODS = ["GET", "HEAD", "POST", "PUT", "DELETE", "PATCH"];

/** Fixed responses under /resp/<name>; anything else: a JSON echo of the request. */
function originHandler(req, res, record) {
  const p = new URL(req.url, "http://o").pathname;
  const fixed = (ct, body, headers = {}) => {
    const buf = Buffer.from(body);
    res.writeHead(200, { "content-type": ct, "content-length": buf.length, ...headers });
    res.end(req.method === "HEAD" ? undefined : buf);
  };
  if (p.endsWith("/resp/obj")) return fixed("application/json", '{"id":1,"secret":"s","name":"n"}', { "x-origin-a": "1", "x-keep": "origin" });
  if (p.endsWith("/resp/upper")) return fixed("Application/JSON", '{"id":1,"secret":"s"}');
  if (p.endsWith("/resp/vnd")) return fixed("application/vnd.api+json", '{"id":1,"secret":"s"}');
  if (p.endsWith("/resp/text")) return fixed("text/plain", '{"id":1,"secret":"s"}');
  if (p.endsWith("/resp/array")) return fixed("application/json", '[{"id":1,"secret":"s"}]');
  const headers = {};
  for (let i = 0; i < record.rawHeaders.length; i += 2) {
    const n = record.rawHeaders[i].toLowerCase();
    (headers[n] ??= []).push(record.rawHeaders[i + 1]);
  }
  const body = JSON.stringify({
    method: record.method,
    url: record.url,
    headers,
    body: record.body.toString("utf8"),
    length: record.body.length,
    contentLength: record.headers["content-length"],
  });
  res.writeHead(200, { "content-type": "application/json" });
  res.end(body);
}

function config(originUrl) {
  const rt = (c) => ({ name: "request-transformer", config: c });
  const rs = (c) => ({ name: "response-transformer", config: c });
  const list = {
    hdr: rt({
      remove: { headers: ["X-Multi-Gone"] },
      rename: { headers: ["x-from:x-to", "x-same:X-SAME"] },
      replace: { headers: ["x-multi:one"] },
      add: { headers: ["X-Time:12:30:00", "x-url:http://a.example:8080/p?q=1", "x-colons::b", "x-added:a"] },
      append: { headers: ["x-added:b", "x-present:more"] },
    }),
    qs: rt({
      rename: { querystring: ["old:new", "same:same"] },
      replace: { querystring: ["rep:r", "rep-absent:x"] },
      add: { querystring: ["time:12:30"] },
      append: { querystring: ["new:appended"] },
    }),
    body: rt({
      remove: { body: ["gone"] },
      rename: { body: ["old:new", "same:same"] },
      replace: { body: ["rep:1", "rep-absent:1"] },
      add: { body: ["count:1", "flag:true", "url:http://a.example:80/x", "present:never"] },
      append: { body: ["tags:t2", "fresh:f", "new:again"] },
    }),
    tpl: rt({
      add: {
        headers: [
          "x-missing:<$(headers.x-none)>",
          "x-default:$(headers.x-none or 'dflt')",
          "x-first:$(query_params.p)",
          "x-escaped:$('$(headers.x-a)')",
          "x-mixed:a-$(headers.x-a)-$(query_params.p)-z",
          "x-dollar:$ and $$ and $x",
        ],
      },
    }),
    resp: rs({
      remove: { headers: ["X-Origin-A"] },
      rename: { headers: ["x-keep:x-kept"] },
      replace: { headers: ["x-absent:never"], json: ["absent:1"] },
      add: { headers: ["X-Served-By:edge:1", "content-type:text/plain"], json: ["added:1", "n:2"], json_types: ["string", "number"] },
      append: { json: ["name:m"] },
    }),
    form: rt({ rename: { body: ["a:b"] }, replace: { body: ["r:1"] }, append: { body: ["b:x"] } }),
    trace: rt({ http_method: "TRACE" }),
    "uri-empty": rt({ replace: { uri: "$(query_params.to)" } }),
    "resp-bool": rs({ replace: { json: ["secret:false", "name:$(query_params.b)"], json_types: ["boolean", "boolean"] } }),
    "ct-off": rs({ replace: { headers: ["content-type:text/plain"] }, add: { json: ["added:1"] } }),
    "ct-on": rs({ replace: { headers: ["content-type:application/json"] }, add: { json: ["added:1"] } }),
    allow: rs({ add: { json: ["added:1"] }, allow: { json: ["id", "added", "not-there"] } }),
    "allow-only": rs({ allow: { json: ["id"] } }),
  };
  return {
    format_version: 1,
    services: [{ name: "echo", url: originUrl }],
    routes: [
      ...Object.keys(list).map((name) => ({ name, service: "echo", paths: [`/${name}`], strip_path: false, methods: METHODS })),
      { name: "warm", service: "echo", paths: ["/warm"], methods: ["GET"] },
    ],
    plugins: Object.entries(list).map(([route, p]) => ({ ...p, route })),
  };
}

for (const reload of ["0", "600"]) describe(`docs/transformations.md, third audit (CONFIG_RELOAD_SECONDS ${reload})`, { timeout: 300_000 }, () => {
  let gw;
  let origin;
  before(async () => {
    origin = await startOrigin(originHandler);
    gw = await startGateway({ reload, config: config(origin.url) });
    // Loads the version: with 600, every later request is served on the synchronous path.
    assert.equal((await request(gw.at("/warm"))).status, 200);
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
  const jsonPost = (path, body, ct = "application/json") =>
    echo(path, { method: "POST", headers: { "content-type": ct, "content-length": String(Buffer.byteLength(body)) }, body: Buffer.from(body) });

  describe("headers", () => {
    test("replace leaves exactly one value; remove takes every value; names in any case", async () => {
      // node:http sends an array as two header lines.
      const o = await echo("/hdr", { headers: { "x-multi": ["a", "b"], "x-multi-gone": ["1", "2"], "x-present": "p" } });
      assert.deepEqual(o.headers["x-multi"], ["one"]);
      assert.equal(o.headers["x-multi-gone"], undefined);
      assert.equal(o.headers["x-present"].join(", "), "p, more");
    });
    test("an entry is split at the first colon: the value keeps the others", async () => {
      const o = await echo("/hdr");
      assert.deepEqual(o.headers["x-time"], ["12:30:00"]);
      assert.deepEqual(o.headers["x-url"], ["http://a.example:8080/p?q=1"]);
      assert.deepEqual(o.headers["x-colons"], [":b"], "only the first colon splits (Kong drops them all)");
    });
    test("add then append on an absent header: both values; a client's header is not added to", async () => {
      let o = await echo("/hdr");
      assert.equal(o.headers["x-added"].join(", "), "a, b");
      o = await echo("/hdr", { headers: { "x-added": "client" } });
      assert.equal(o.headers["x-added"].join(", "), "client, b");
    });
    test("rename onto a name the client sent: the old value replaces it; a rename to the same name changes nothing", async () => {
      const o = await echo("/hdr", { headers: { "x-from": "f", "x-to": "client", "x-same": "s" } });
      assert.deepEqual(o.headers["x-to"], ["f"]);
      assert.equal(o.headers["x-from"], undefined);
      assert.deepEqual(o.headers["x-same"], ["s"]);
    });
  });

  describe("query string", () => {
    test("rename onto an existing name replaces it, then append adds a pair; same-name rename keeps the pair", async () => {
      const o = await echo("/qs?old=o&new=n&same=s&rep=c&rep=d");
      const q = new URL(o.url, "http://x").searchParams;
      assert.deepEqual(q.getAll("new"), ["o", "appended"]);
      assert.equal(q.get("old"), null);
      assert.deepEqual(q.getAll("same"), ["s"]);
      assert.deepEqual(q.getAll("rep"), ["r"], "replace: exactly one pair");
      assert.equal(q.get("rep-absent"), null);
      assert.equal(q.get("time"), "12:30");
    });
    test("rename whose old name is absent leaves the new name as it was (Kong would remove it)", async () => {
      const o = await echo("/qs?new=n");
      assert.deepEqual(new URL(o.url, "http://x").searchParams.getAll("new"), ["n", "appended"]);
      const b = JSON.parse((await jsonPost("/body", '{"new":"n"}')).body);
      assert.deepEqual(b.new, ["n", "again"]);
    });
  });

  describe("JSON request bodies", () => {
    test("values are strings (request-transformer has no json_types); Kong's order on existing keys", async () => {
      const o = await jsonPost("/body", '{"gone":1,"old":"o","new":"n","same":"s","rep":true,"present":false,"tags":"t1"}');
      const b = JSON.parse(o.body);
      assert.deepEqual(b, { new: ["o", "again"], same: "s", rep: "1", present: false, count: "1", flag: "true", url: "http://a.example:80/x", tags: ["t1", "t2"], fresh: ["f"] });
      assert.equal(Number(o.contentLength), o.length, "Content-Length is the new body's length");
      assert.equal(o.length, Buffer.byteLength(o.body));
    });
    test("re-encoding: 64-bit integers exact, other numbers the nearest double, \\u escapes as characters; 1e400 is not valid JSON", async () => {
      const raw = '{"gone":1,"big":123456789012345678901234567890,"i":18446744073709551615,"f":1.10,"n":-0,"u":"\\u00e9"}';
      let o = await jsonPost("/body", raw);
      const sent = o.body;
      assert.match(sent, /"big":1\.2345678901234568e\+29,/);
      assert.match(sent, /"i":18446744073709551615,/);
      assert.match(sent, /"f":1\.1,/);
      assert.match(sent, /"n":-0\.0,/);
      assert.match(sent, /"u":"é",/);
      assert.ok(!sent.includes("gone"));
      const huge = '{"gone":1,"e":1e400}';
      o = await jsonPost("/body", huge);
      assert.equal(o.body, huge, "sent as it came, gone included");
    });
    test("Content-Type in upper case is JSON; application/vnd.api+json is not (Kong: it must contain application/json)", async () => {
      let o = await jsonPost("/body", '{"gone":1}', "Application/JSON; Charset=UTF-8");
      assert.equal(JSON.parse(o.body).gone, undefined);
      assert.equal(JSON.parse(o.body).count, "1");
      const raw = '{ "gone": 1 }';
      o = await jsonPost("/body", raw, "application/vnd.api+json");
      assert.equal(o.body, raw, "sent as it came");
    });
  });

  describe("form bodies, http_method, replace.uri", () => {
    test("form: rename onto an existing field replaces it, replace leaves one pair, append adds a pair; untouched pairs keep their spelling", async () => {
      const body = Buffer.from("a=1&b=2&r=x&r=y&z=%7e");
      const o = await echo("/form", { method: "POST", headers: { "content-type": "application/x-www-form-urlencoded", "content-length": String(body.length) }, body });
      assert.equal(o.body, "b=1&r=1&z=%7e&b=x");
      assert.equal(Number(o.contentLength), o.length);
    });
    test("http_method TRACE: the upstream request is a TRACE without a body", async () => {
      const o = await echo("/trace", { method: "POST", headers: { "content-type": "text/plain", "content-length": "2" }, body: Buffer.from("hi") });
      assert.equal(o.method, "TRACE");
      assert.equal(o.length, 0);
      assert.deepEqual(o.headers["content-length"], ["0"], "the runtime frames a TRACE with Content-Length: 0");
    });
    test("replace.uri rendering empty: the path /", async () => {
      const o = await echo("/uri-empty?x=1");
      assert.equal(o.url, "/?x=1");
    });
  });

  describe("templates", () => {
    test("a missing header renders empty; or; first query value; an escaped template is literal; a lone $ is text", async () => {
      const o = await echo("/tpl?p=1&p=2", { headers: { "x-a": "A" } });
      const h = Object.fromEntries(Object.entries(o.headers).map(([k, v]) => [k, v.join(", ")]));
      assert.equal(h["x-missing"], "<>");
      assert.equal(h["x-default"], "dflt");
      assert.equal(h["x-first"], "1");
      assert.equal(h["x-escaped"], "$(headers.x-a)");
      assert.equal(h["x-mixed"], "a-A-1-z");
      assert.equal(h["x-dollar"], "$ and $$ and $x");
    });
  });

  describe("response-transformer", () => {
    test("header rules: remove in any case, rename, replace only when present, add only when absent, value with colons", async () => {
      const res = await request(gw.at("/resp/resp/obj"));
      assert.equal(res.status, 200);
      assert.equal(res.headers["x-origin-a"], undefined);
      assert.equal(res.headers["x-kept"], "origin");
      assert.equal(res.headers["x-keep"], undefined);
      assert.equal(res.headers["x-absent"], undefined);
      assert.equal(res.headers["x-served-by"], "edge:1");
      assert.equal(res.headers["content-type"], "application/json", "add never changes the origin's header");
    });
    test("json: replace only when present, add when absent, json_types by position, append makes an array; Content-Length", async () => {
      const res = await request(gw.at("/resp/resp/obj"));
      assert.deepEqual(res.json(), { id: 1, secret: "s", name: ["n", "m"], added: "1", n: 2 });
      assert.equal(Number(res.headers["content-length"]), res.body.length);
    });
    test("json rules: Content-Type in upper case counts; application/vnd.api+json and a JSON array pass untouched", async () => {
      let res = await request(gw.at("/resp/resp/upper"));
      assert.equal(res.json().added, "1");
      res = await request(gw.at("/resp/resp/vnd"));
      assert.equal(res.text, '{"id":1,"secret":"s"}');
      res = await request(gw.at("/resp/resp/array"));
      assert.equal(res.text, '[{"id":1,"secret":"s"}]');
    });
    test("json rules test the Content-Type the header rules leave (header rules run first, as in Kong)", async () => {
      let res = await request(gw.at("/ct-off/resp/obj"));
      assert.equal(res.headers["content-type"], "text/plain");
      assert.equal(res.text, '{"id":1,"secret":"s","name":"n"}');
      res = await request(gw.at("/ct-on/resp/text"));
      assert.equal(res.headers["content-type"], "application/json");
      assert.deepEqual(res.json(), { id: 1, secret: "s", added: "1" });
      assert.equal(Number(res.headers["content-length"]), res.body.length);
    });
    test("json_types boolean: true only for the text true", async () => {
      let res = await request(gw.at("/resp-bool/resp/obj?b=true"));
      assert.deepEqual(res.json(), { id: 1, secret: false, name: true });
      res = await request(gw.at("/resp-bool/resp/obj?b=yes"));
      assert.equal(res.json().name, false);
    });
    test("allow.json: only the listed keys are kept, after the other rules; Content-Length of the new body", async () => {
      let res = await request(gw.at("/allow/resp/obj"));
      assert.deepEqual(res.json(), { id: 1, added: "1" });
      assert.equal(Number(res.headers["content-length"]), res.body.length);
      res = await request(gw.at("/allow-only/resp/obj"));
      assert.deepEqual(res.json(), { id: 1 });
      res = await request(gw.at("/allow-only/resp/array"));
      assert.equal(res.text, '[{"id":1,"secret":"s"}]', "not an object: untouched");
      res = await request(gw.at("/allow-only/resp/vnd"));
      assert.equal(res.text, '{"id":1,"secret":"s"}', "not application/json: untouched");
      res = await request(gw.at("/allow-only/resp/obj"), { method: "HEAD" });
      assert.equal(res.headers["content-length"], undefined, "HEAD: the GET body would be rewritten");
    });
  });

  if (reload === "0")
    describe("validation errors", () => {
      test("http_method CONNECT and TRACK, json_types values, allow has no headers", async () => {
        const error = await rejected(gw, {
          format_version: 1,
          services: [{ name: "s", url: "http://127.0.0.1:1" }],
          routes: [{ name: "r", service: "s", paths: ["/refused"] }],
          plugins: [
            { name: "request-transformer", route: "r", config: { http_method: "CONNECT" } },
            { name: "request-transformer", service: "s", config: { http_method: "TRACK" } },
            { name: "response-transformer", route: "r", config: { add: { json: ["b:yes", "n:1"] , json_types: ["boolean", "integer"] } } },
            { name: "response-transformer", service: "s", config: { replace: { json: ["b:maybe"], json_types: ["boolean"] } } },
            { name: "response-transformer", config: { allow: { headers: ["x"] } } },
          ],
        });
        for (const part of [
          "plugins[0].config.http_method:",
          "plugins[1].config.http_method:",
          "plugins[2].config.add.json_types",
          "plugins[3].config.replace.json[0]: the value is not true or false",
          "plugins[4].config.allow.headers: unknown field `headers`",
        ]) {
          assert.ok(error.includes(part), `${part} in:\n${error}`);
        }
        assert.equal((await request(gw.at("/warm"))).status, 200, "the version in service stays");
      });
    });
});
