// request-transformer and response-transformer (docs/transformations.md): every documented option seen from
// the origin (what it received) and from the client, templates, json_types, the body bound (413 for requests,
// untouched for responses), bodies that stream through untouched when no body rule applies, and validation
// errors with JSON paths through `edgegate-config validate`.
import { describe, test, before, after } from "node:test";
import assert from "node:assert/strict";
import crypto from "node:crypto";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { spawn } from "node:child_process";
import { ROOT, startGateway, startOrigin, request, streamRequest, problemOf, sha256 } from "./support/harness.mjs";

const sha256hex = (s) => crypto.createHash("sha256").update(s).digest("hex");
const BIG = 64 * 1024; // over the 1000-byte bounds configured below

/** The origin: echoes requests as JSON, except under /resp/ where it answers fixed responses. */
function originHandler(req, res, record) {
  const url = new URL(req.url, "http://origin");
  const p = url.pathname;
  if (p === "/resp/json") {
    const body = JSON.stringify({ internal_id: 7, old: "o", count: "9", tags: "a", keep: { nested: true } });
    res.writeHead(200, {
      "content-type": "application/json; charset=utf-8",
      "content-length": Buffer.byteLength(body),
      server: "nginx",
      "x-old": "1",
      "x-powered-by": "php",
      "set-cookie": "a=1",
    });
    return res.end(body);
  }
  if (p === "/resp/text") {
    const body = JSON.stringify({ internal_id: 7 });
    res.writeHead(200, { "content-type": "text/plain", server: "nginx" });
    return res.end(body);
  }
  if (p === "/resp/big" || p === "/resp/big-chunked") {
    const body = JSON.stringify({ internal_id: 7, pad: "x".repeat(BIG) });
    const headers = { "content-type": "application/json" };
    if (p === "/resp/big") headers["content-length"] = Buffer.byteLength(body);
    res.writeHead(200, headers);
    if (p === "/resp/big") return res.end(body);
    // Chunked: several writes.
    for (let i = 0; i < body.length; i += 8192) res.write(body.slice(i, i + 8192));
    return res.end();
  }
  if (p === "/resp/small-chunked") {
    // Within the bound but without Content-Length: counted while read.
    res.writeHead(200, { "content-type": "application/json" });
    res.write('{"internal_id":7,');
    return res.end('"kept":1}');
  }
  if (p === "/resp/stream") {
    // First chunk now, the rest only when the test says so: a buffered body would never arrive early.
    res.writeHead(200, { "content-type": "application/json", server: "nginx" });
    res.write('{"first":');
    originHandler.release = () => res.end('"done"}');
    return;
  }
  const body = JSON.stringify({
    method: record.method,
    url: record.url,
    headers: record.headers,
    body: record.body.toString("utf8"),
    sha256: sha256(record.body),
  });
  res.writeHead(200, { "content-type": "application/json", "x-origin": "yes" });
  res.end(body);
}

describe("request-transformer and response-transformer", () => {
  let gw;
  let origin;
  const apiKey = "eg_" + crypto.randomBytes(32).toString("base64url");

  before(async () => {
    origin = await startOrigin(originHandler);
    gw = await startGateway({
      config: {
        format_version: 1,
        services: [{ name: "origin", url: `${origin.url}/base` }, { name: "root", url: origin.url }],
        routes: [
          { name: "all", service: "origin", paths: ["/all/{id}"] },
          { name: "users", service: "origin", paths: ["/users/{id}"] },
          { name: "files", service: "origin", paths: ["/files"] },
          { name: "regex", service: "root", paths: ["~^/items/(?<kind>[a-z]+)/(?<num>[0-9]+)$"] },
          { name: "auth", service: "origin", paths: ["/auth"] },
          { name: "method", service: "origin", paths: ["/method"] },
          { name: "to-get", service: "origin", paths: ["/to-get"] },
          { name: "limit", service: "origin", paths: ["/limit"] },
          { name: "headers-only", service: "origin", paths: ["/headers-only"] },
          { name: "escape", service: "origin", paths: ["/escape"] },
          { name: "resp", service: "root", paths: ["/resp"], strip_path: false },
          { name: "resp-headers", service: "root", paths: ["/rh"], rewrite: "/resp/stream" },
          { name: "resp-limit", service: "root", paths: ["/rl/{which}"], rewrite: "/resp/{which}" },
          { name: "resp-auth", service: "root", paths: ["/ra"], rewrite: "/resp/json" },
          { name: "resp-term", service: "root", paths: ["/rt"] },
        ],
        plugins: [
          {
            name: "request-transformer",
            route: "all",
            config: {
              remove: { headers: ["x-secret"], querystring: ["debug"], body: ["password"] },
              rename: { headers: ["x-old:x-new"], querystring: ["p:page"], body: ["user:username"] },
              replace: { headers: ["x-env:prod", "x-absent:never"], querystring: ["limit:10"], body: ["role:user"] },
              add: {
                headers: ["x-env:not-added", "x-id:$(uri_captures.id)", "x-tenant:$(headers.x-tenant or query_params.tenant or 'public')"],
                querystring: ["v:2", "limit:not-added"],
                body: ["source:$(headers[\"x-source\"] or 'api')"],
              },
              append: { headers: ["x-tag:t2"], querystring: ["tag:b c"], body: ["tags:new"] },
              max_body_size: 1000,
            },
          },
          {
            name: "request-transformer",
            route: "users",
            config: { replace: { uri: "/v2/users/$(uri_captures.id)" } },
          },
          {
            name: "request-transformer",
            route: "files",
            config: { replace: { uri: "/store/$(headers.x-name)" } },
          },
          {
            name: "request-transformer",
            route: "regex",
            config: { replace: { uri: "/catalog/$(uri_captures.kind)/$(uri_captures[2])" } },
          },
          { name: "key-auth", route: "auth" },
          {
            name: "request-transformer",
            route: "auth",
            config: { add: { headers: ["x-user:$(consumer.username)", "x-user-id:$(consumer.id)"] } },
          },
          { name: "request-transformer", route: "method", config: { http_method: "POST" } },
          { name: "request-transformer", route: "to-get", config: { http_method: "GET" } },
          {
            name: "request-transformer",
            route: "limit",
            config: { add: { body: ["a:1"] }, max_body_size: 1000 },
          },
          {
            name: "request-transformer",
            route: "headers-only",
            config: { add: { headers: ["x-added:1"] } },
          },
          {
            name: "request-transformer",
            route: "escape",
            config: { add: { headers: ["x-literal:$('$(headers.x-a)') costs $5"] } },
          },
          {
            name: "response-transformer",
            route: "resp",
            config: {
              remove: { headers: ["server"], json: ["internal_id"] },
              rename: { headers: ["x-old:x-new"], json: ["old:new"] },
              replace: { headers: ["x-powered-by:edgegate", "x-absent:never"], json: ["count:0"], json_types: ["number"] },
              add: {
                headers: ["x-user:$(headers.x-user or 'anonymous')"],
                json: ["ok:true", "version:2", "from:$(query_params.from)"],
                json_types: ["boolean", "number"],
              },
              append: { headers: ["set-cookie:b=2"], json: ["tags:new"] },
              max_body_size: 1000,
            },
          },
          {
            name: "response-transformer",
            route: "resp-headers",
            config: { remove: { headers: ["server"] }, add: { headers: ["x-seen:1"] } },
          },
          {
            name: "response-transformer",
            route: "resp-limit",
            config: { remove: { json: ["internal_id"] }, max_body_size: 1000 },
          },
          // A request hook that waits (key-auth): the response phases run on the asynchronous runner.
          { name: "key-auth", route: "resp-auth" },
          {
            name: "response-transformer",
            route: "resp-auth",
            config: { remove: { json: ["internal_id"] }, add: { json: ["user:$(consumer.username)"] } },
          },
          // A plugin's own JSON answer goes through the json rules too.
          { name: "request-termination", route: "resp-term", config: { status_code: 410, message: "Retired" } },
          { name: "response-transformer", route: "resp-term", config: { add: { json: ["edge:true"], json_types: ["boolean"] } } },
        ],
      },
    });
    const put = (key, value) => gw.kv.put(key, JSON.stringify(value));
    await put("consumers/c-alice", { id: "c-alice", username: "alice", groups: ["dev"] });
    await put("consumer-names/alice", { id: "c-alice" });
    await put(`credentials/key-auth/${sha256hex(apiKey)}`, { id: "cred-alice", consumer_id: "c-alice" });
  });
  after(async () => {
    originHandler.release?.();
    await gw?.dispose();
    await origin?.close();
  });

  const noGzip = { "accept-encoding": "identity" };

  test("headers, query string and JSON body: remove, rename, replace, add, append in Kong's order", async () => {
    const body = JSON.stringify({ password: "p", user: "al", role: "admin", tags: "a", other: 1 });
    const res = await request(gw.at("/all/42?debug=1&p=2&limit=100&keep=%41"), {
      method: "POST",
      headers: {
        ...noGzip,
        "content-type": "application/json",
        "x-secret": "s",
        "x-old": "o",
        "x-env": "dev",
        "x-tag": "t1",
        "x-source": "mobile",
      },
      body,
    });
    assert.equal(res.status, 200, res.text);
    const seen = origin.last;
    const h = seen.headers;
    assert.equal(h["x-secret"], undefined, "removed");
    assert.equal(h["x-old"], undefined, "renamed away");
    assert.equal(h["x-new"], "o", "renamed to");
    assert.equal(h["x-env"], "prod", "replaced (present), add skipped");
    assert.equal(h["x-absent"], undefined, "replace does not add");
    assert.equal(h["x-id"], "42", "uri_captures template");
    assert.equal(h["x-tenant"], "public", "or-default template");
    assert.equal(h["x-tag"], "t1, t2", "appended");
    // Query: untouched pairs keep their spelling and order; appended values are percent-encoded.
    assert.equal(seen.url, "/base?page=2&limit=10&keep=%41&v=2&tag=b%20c");
    // Body: re-encoded JSON with the right length.
    assert.deepEqual(JSON.parse(seen.body.toString()), {
      username: "al",
      role: "user",
      other: 1,
      source: "mobile",
      tags: ["a", "new"],
    });
    assert.equal(Number(h["content-length"]), seen.body.length);
  });

  test("form bodies are transformed like JSON ones; other content types stream through untouched", async () => {
    let res = await request(gw.at("/all/1"), {
      method: "POST",
      headers: { ...noGzip, "content-type": "application/x-www-form-urlencoded" },
      body: "password=p&user=al&x=%20y",
    });
    assert.equal(res.status, 200, res.text);
    assert.equal(origin.last.body.toString(), "username=al&x=%20y&source=api&tags=new");
    assert.equal(Number(origin.last.headers["content-length"]), origin.last.body.length);

    const bytes = crypto.randomBytes(BIG); // larger than max_body_size: never read
    res = await request(gw.at("/all/1"), {
      method: "POST",
      headers: { ...noGzip, "content-type": "application/octet-stream" },
      body: bytes,
    });
    assert.equal(res.status, 200, res.text);
    assert.equal(res.json().sha256, sha256(bytes));
  });

  test("multipart/form-data bodies: fields and files by name, untouched parts byte for byte", async () => {
    const B = "----edgegateFormBoundary7MA4YWxk";
    const file = Buffer.concat([Buffer.from([0x89, 0x50, 0x4e, 0x47]), Buffer.from("\r\n--x\r\n"), crypto.randomBytes(200)]);
    const field = (name, value) => `--${B}\r\nContent-Disposition: form-data; name="${name}"\r\n\r\n${value}\r\n`;
    const avatar = (name) => Buffer.concat([
      Buffer.from(`--${B}\r\nContent-Disposition: form-data; name="${name}"; filename="a.png"\r\nContent-Type: image/png\r\n\r\n`),
      file,
      Buffer.from("\r\n"),
    ]);
    const sent = Buffer.concat([
      Buffer.from(field("password", "p") + field("user", "al")),
      avatar("avatar"),
      Buffer.from(field("role", "admin") + field("tags", "a") + `--${B}--\r\n`),
    ]);
    const res = await request(gw.at("/all/1"), {
      method: "POST",
      headers: { ...noGzip, "content-type": `multipart/form-data; boundary=${B}` },
      body: sent,
    });
    assert.equal(res.status, 200, res.text);
    // remove password, rename user -> username, replace role, add source, append tags; the file part keeps
    // its bytes, and the body keeps its boundary.
    const expected = Buffer.concat([
      Buffer.from(field("username", "al")),
      avatar("avatar"),
      Buffer.from(field("role", "user") + field("tags", "a") + field("source", "api") + field("tags", "new") + `--${B}--\r\n`),
    ]);
    assert.equal(origin.last.headers["content-type"], `multipart/form-data; boundary=${B}`);
    assert.equal(Number(origin.last.headers["content-length"]), expected.length);
    assert.equal(res.json().sha256, sha256(expected));
    // What the origin got parses as a form with the fields and the file.
    const form = await new Response(expected, { headers: { "content-type": `multipart/form-data; boundary=${B}` } }).formData();
    assert.deepEqual([...form.keys()], ["username", "avatar", "role", "tags", "source", "tags"]);
    assert.deepEqual(Buffer.from(await form.get("avatar").arrayBuffer()), file);
    assert.equal(form.get("avatar").name, "a.png");

    // A written value that holds the boundary would cut the body: 400, the origin is not called.
    const before = origin.requests.length;
    const bad = await request(gw.at("/all/1"), {
      method: "POST",
      headers: { ...noGzip, "content-type": `multipart/form-data; boundary=${B}`, "x-source": `--${B}--` },
      body: Buffer.from(field("user", "al") + `--${B}--\r\n`),
    });
    assert.equal(bad.status, 400, bad.text);
    assert.equal(problemOf(bad).code, "bad_request");
    assert.equal(origin.requests.length, before);

    // Without a boundary the body is not multipart to the rules: it streams through untouched.
    const raw = Buffer.from(field("password", "p") + `--${B}--\r\n`);
    const plain = await request(gw.at("/all/1"), {
      method: "POST",
      headers: { ...noGzip, "content-type": "multipart/form-data" },
      body: raw,
    });
    assert.equal(plain.status, 200, plain.text);
    assert.equal(plain.json().sha256, sha256(raw));
  });

  test("the query template reads the client's parameters; a header template its headers", async () => {
    await request(gw.at("/all/9?tenant=acme"), { headers: noGzip });
    assert.equal(origin.last.headers["x-tenant"], "acme");
    await request(gw.at("/all/9?tenant=acme"), { headers: { ...noGzip, "x-tenant": "globex" } });
    assert.equal(origin.last.headers["x-tenant"], "globex");
  });

  test("replace.uri sets the whole upstream path from a template; the query is kept", async () => {
    let res = await request(gw.at("/users/42?x=1"), { headers: noGzip });
    assert.equal(res.status, 200, res.text);
    assert.equal(origin.last.url, "/v2/users/42?x=1", "service base path /base not prepended (Kong)");
    res = await request(gw.at("/items/books/7"), { headers: noGzip });
    assert.equal(res.status, 200, res.text);
    assert.equal(origin.last.url, "/catalog/books/7", "named and numbered regex captures");
    // Characters a path cannot hold are encoded; a dot segment in any spelling is refused, as for routed paths.
    res = await request(gw.at("/files"), { headers: { ...noGzip, "x-name": "a b?c" } });
    assert.equal(res.status, 200, res.text);
    assert.equal(origin.last.url, "/store/a%20b%3Fc");
    const before = origin.hits;
    for (const name of ["..", "%2e%2E", "../admin"]) {
      res = await request(gw.at("/files"), { headers: { ...noGzip, "x-name": name } });
      assert.equal(res.status, 400, name);
      assert.equal(problemOf(res).code, "invalid_path");
    }
    assert.equal(origin.hits, before, "the origin is not called");
  });

  test("consumer templates", async () => {
    const res = await request(gw.at("/auth"), { headers: { ...noGzip, apikey: apiKey } });
    assert.equal(res.status, 200, res.text);
    assert.equal(origin.last.headers["x-user"], "alice");
    assert.equal(origin.last.headers["x-user-id"], "c-alice");
  });

  test("an escaped template is literal text", async () => {
    await request(gw.at("/escape"), { headers: { ...noGzip, "x-a": "not used" } });
    assert.equal(origin.last.headers["x-literal"], "$(headers.x-a) costs $5");
  });

  test("http_method changes the upstream method; GET drops the body", async () => {
    let res = await request(gw.at("/method"), { method: "PUT", headers: noGzip, body: "payload" });
    assert.equal(res.status, 200, res.text);
    assert.equal(origin.last.method, "POST");
    assert.equal(origin.last.body.toString(), "payload");
    res = await request(gw.at("/to-get"), {
      method: "POST",
      headers: { ...noGzip, "content-type": "application/json" },
      body: '{"a":1}',
    });
    assert.equal(res.status, 200, res.text);
    assert.equal(origin.last.method, "GET");
    assert.equal(origin.last.body.length, 0);
  });

  test("a body over max_body_size is refused with 413, by Content-Length or while counting", async () => {
    const before = origin.hits;
    const body = JSON.stringify({ pad: "x".repeat(2000) });
    let res = await request(gw.at("/limit"), {
      method: "POST",
      headers: { ...noGzip, "content-type": "application/json" },
      body,
    });
    assert.equal(res.status, 413);
    assert.equal(problemOf(res).code, "payload_too_large");
    async function* chunks() {
      for (let i = 0; i < 4; i++) yield Buffer.from(body.slice(i * 600, (i + 1) * 600));
    }
    res = await request(gw.at("/limit"), {
      method: "POST",
      headers: { ...noGzip, "content-type": "application/json" },
      body: chunks(),
    });
    assert.equal(res.status, 413);
    assert.equal(origin.hits, before, "the origin is not called");
    // Within the bound: transformed.
    res = await request(gw.at("/limit"), {
      method: "POST",
      headers: { ...noGzip, "content-type": "application/json" },
      body: '{"b":2}',
    });
    assert.equal(res.status, 200, res.text);
    assert.deepEqual(JSON.parse(origin.last.body.toString()), { a: "1", b: 2 });
  });

  test("without body rules a large body streams through untouched", async () => {
    const bytes = crypto.randomBytes(3 * 1024 * 1024);
    const res = await request(gw.at("/headers-only"), {
      method: "POST",
      headers: { ...noGzip, "content-type": "application/json" },
      body: bytes,
    });
    assert.equal(res.status, 200, res.text);
    assert.equal(origin.last.headers["x-added"], "1");
    assert.equal(res.json().sha256, sha256(bytes));
  });

  test("response headers and JSON fields with json_types", async () => {
    const res = await request(gw.at("/resp/json?from=test"), { headers: { ...noGzip, "x-user": "bob" } });
    assert.equal(res.status, 200, res.text);
    const h = res.headers;
    assert.equal(h.server, undefined, "removed");
    assert.equal(h["x-old"], undefined);
    assert.equal(h["x-new"], "1", "renamed");
    assert.equal(h["x-powered-by"], "edgegate", "replaced");
    assert.equal(h["x-absent"], undefined, "replace does not add");
    assert.equal(h["x-user"], "bob", "template from the request");
    assert.deepEqual(h["set-cookie"], ["a=1", "b=2"], "appended as a second line");
    assert.deepEqual(res.json(), {
      new: "o",
      count: 0,
      tags: ["a", "new"],
      keep: { nested: true },
      ok: true,
      version: 2,
      from: "test",
    });
    assert.equal(Number(h["content-length"]), res.body.length, "Content-Length follows the new body");
  });

  test("json rules skip bodies that are not application/json", async () => {
    const res = await request(gw.at("/resp/text"), { headers: noGzip });
    assert.equal(res.text, '{"internal_id":7}');
    assert.equal(res.headers.server, undefined, "header rules still apply");
  });

  test("a response body over max_body_size passes untouched (Content-Length or chunked)", async () => {
    for (const which of ["big", "big-chunked"]) {
      const res = await request(gw.at(`/rl/${which}`), { headers: noGzip });
      assert.equal(res.status, 200);
      const json = res.json();
      assert.equal(json.internal_id, 7, `${which}: untouched`);
      assert.equal(json.pad.length, BIG);
    }
    const warned = gw.logs.filter((l) => l.json?.event === "plugin_warning" && l.json.plugin === "response-transformer");
    assert.ok(warned.length >= 2, JSON.stringify(gw.logs.slice(-5)));
  });

  test("json rules on a chunked body within the bound, after a request hook that waited, on a plugin's answer", async () => {
    const chunked = await request(gw.at("/rl/small-chunked"), { headers: noGzip });
    assert.equal(chunked.status, 200);
    assert.deepEqual(chunked.json(), { kept: 1 });
    assert.equal(Number(chunked.headers["content-length"]), chunked.body.length);
    const authed = await request(gw.at("/ra"), { headers: { ...noGzip, apikey: apiKey } });
    assert.equal(authed.status, 200, authed.text);
    assert.equal(authed.json().user, "alice");
    assert.equal(authed.json().internal_id, undefined);
    const refused = await request(gw.at("/ra"), { headers: noGzip });
    assert.equal(refused.status, 401, "problem+json is not application/json: untouched");
    const terminated = await request(gw.at("/rt"), { headers: noGzip });
    assert.equal(terminated.status, 410);
    assert.deepEqual(terminated.json(), { message: "Retired", edge: true });
  });

  test("with header rules only, a response body streams (first bytes before the origin ends)", async () => {
    const res = await streamRequest(gw.at("/rh"), { headers: noGzip });
    assert.equal(res.statusCode, 200);
    assert.equal(res.headers.server, undefined);
    assert.equal(res.headers["x-seen"], "1");
    const first = await new Promise((resolve) => res.once("data", resolve));
    assert.equal(first.toString(), '{"first":');
    originHandler.release();
    let rest = "";
    for await (const c of res) rest += c;
    assert.equal(rest, '"done"}');
  });
});

function run(cmd, args) {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { cwd: ROOT, stdio: ["ignore", "pipe", "pipe"] });
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (d) => (stdout += d));
    child.stderr.on("data", (d) => (stderr += d));
    child.on("error", reject);
    child.on("close", (code) => resolve({ code, stdout, stderr }));
  });
}

describe("transformer validation errors", { timeout: 900_000 }, () => {
  test("edgegate-config validate names the JSON path of each bad entry", async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "edgegate-transform-"));
    const file = path.join(dir, "bad.json");
    fs.writeFileSync(
      file,
      JSON.stringify({
        format_version: 1,
        services: [{ name: "s", url: "http://127.0.0.1:1" }],
        routes: [{ name: "r", service: "s", paths: ["/"] }],
        plugins: [
          {
            name: "request-transformer",
            config: {
              remove: { headers: ["x-forwarded-for"] },
              add: { headers: ["x-no-colon", "x-a:$(headers.x", "x y:1", "Authorization Bearer sk-secret-1", "x-b:Bearer sk-secret-2 $(nope"] },
              replace: { uri: "/u/$(route.name)" },
            },
          },
          { name: "response-transformer", config: { add: { json: ["n:abc"], json_types: ["number"], querystring: [] } } },
        ],
      }),
    );
    try {
      const out = await run("cargo", ["run", "-q", "--release", "-p", "edgegate-cli", "--", "validate", file]);
      assert.notEqual(out.code, 0);
      const text = out.stdout + out.stderr;
      for (const expected of [
        'plugins[0].config.remove.headers[0]: header "x-forwarded-for" cannot be changed here',
        'plugins[0].config.add.headers[0]: not "name:value" (no colon)',
        'plugins[0].config.add.headers[1]: template: unclosed',
        'plugins[0].config.replace.uri: template: unknown template variable "route"',
        "plugins[1].config.add.querystring: unknown field `querystring`",
        'plugins[0].config.add.headers[2]: not a valid header name (it contains a space)',
        'plugins[0].config.add.headers[3]: not "name:value" (no colon)',
        'plugins[0].config.add.headers[4]: template: unknown template variable "nope"',
      ]) {
        assert.ok(text.includes(expected), `missing ${expected} in:\n${text}`);
      }
      // Values are never quoted: a secret in a malformed entry stays out of the errors.
      assert.ok(!text.includes("sk-secret"), text);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});
