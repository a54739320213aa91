// The docs as a contract, for proxying: docs/proxying.md, docs/routing.md (the upstream path), the
// forwarding parts of docs/upstreams.md, ../shared/CONVENTIONS.md ("Request identity and tracing",
// "Errors") and what the HTTP RFCs ask of an intermediary (RFC 9110 section 7.6: Connection, hop-by-hop
// headers, Via, Max-Forwards; HEAD; 405 with Allow; 1xx and Expect; RFC 9112 framing), checked the way a
// user of the gateway sees them: one gateway for the whole file, throwaway origins on 127.0.0.1.
import { describe, test, before, after } from "node:test";
import assert from "node:assert/strict";
import net from "node:net";
import zlib from "node:zlib";
import { startGateway, startOrigin, request, closedPort, sleep, waitFor, problemOf } from "./support/harness.mjs";

const UUID_RE = /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;
const TRACEPARENT_RE = /^00-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})$/;
const CLIENT_TRACE = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";

function assertProblem(res, status, code, what = "") {
  assert.equal(res.status, status, `${what}: ${res.text}`);
  const p = problemOf(res);
  assert.equal(p.code, code, what);
  assert.equal(p.status, status, what);
  assert.equal(typeof p.type, "string");
  assert.equal(typeof p.title, "string");
  assert.equal(typeof p.detail, "string");
  assert.equal(p.request_id, res.headers["x-request-id"], `${what}: request_id is the X-Request-Id header`);
  assert.equal(res.headers["cache-control"], "no-store", what);
  return p;
}

/**
 * An origin speaking raw HTTP/1.1 on a socket: it reads the request head, then writes what
 * `answers[path]` gives (a string or Buffer; `null` closes the connection without a byte). Records
 * the request heads it got.
 */
async function startRawOrigin(answers) {
  const heads = [];
  const sockets = new Set();
  const server = net.createServer((socket) => {
    sockets.add(socket);
    socket.on("close", () => sockets.delete(socket));
    socket.on("error", () => {});
    let buf = Buffer.alloc(0);
    socket.on("data", (chunk) => {
      buf = Buffer.concat([buf, chunk]);
      const end = buf.indexOf("\r\n\r\n");
      if (end < 0 || socket.answered) return;
      socket.answered = true;
      const head = buf.subarray(0, end).toString("latin1");
      heads.push(head);
      const path = head.split(" ")[1] ?? "/";
      const answer = path in answers ? answers[path] : "HTTP/1.1 404 Not Found\r\ncontent-length: 0\r\n\r\n";
      if (answer === null) {
        socket.destroy();
        return;
      }
      const parts = Array.isArray(answer) ? answer : [answer];
      (async () => {
        for (const part of parts) {
          if (typeof part === "number") await sleep(part);
          else socket.write(part);
        }
        socket.end();
      })();
    });
  });
  await new Promise((resolve) => server.listen(0, "127.0.0.1", resolve));
  const port = server.address().port;
  return {
    url: `http://127.0.0.1:${port}`,
    heads,
    async close() {
      for (const s of sockets) s.destroy();
      await new Promise((resolve) => server.close(resolve));
    },
  };
}

/** Send `text` (a whole HTTP/1.1 request, `Connection: close`) on a raw socket; resolve to the reply. */
function rawRequest(url, text, timeoutMs = 10_000) {
  return new Promise((resolve, reject) => {
    const socket = net.connect(Number(url.port), url.hostname);
    const chunks = [];
    const timer = setTimeout(() => socket.destroy(new Error("raw request timed out")), timeoutMs);
    socket.on("data", (c) => chunks.push(c));
    socket.on("error", (e) => {
      clearTimeout(timer);
      reject(e);
    });
    socket.on("close", () => {
      clearTimeout(timer);
      resolve(Buffer.concat(chunks).toString("latin1"));
    });
    socket.write(text);
  });
}

describe("docs contract: proxying", { timeout: 180_000 }, () => {
  let gw, echo, special, raw, slow, deadPort;

  const get = (path, headers = {}, opts = {}) =>
    request(gw.at(path), { ...opts, headers: { "accept-encoding": "identity", ...headers } });

  /** GET through the gateway to the echo origin: the response and what the origin received. */
  async function upstream(path, headers = {}, opts = {}) {
    const before = echo.hits;
    const res = await get(path, headers, opts);
    assert.equal(res.status, 200, `${path}: ${res.text}`);
    assert.equal(echo.hits, before + 1, `${path}: origin hit once`);
    return { res, up: echo.last };
  }

  before(async () => {
    echo = await startOrigin();
    special = await startOrigin(async (req, res) => {
      const path = req.url.split("?")[0];
      if (path === "/redirect") {
        res.writeHead(302, { location: "http://127.0.0.1:1/elsewhere?x=1", "content-type": "text/plain" });
        res.end("moved");
      } else if (path === "/redirect-relative") {
        res.writeHead(307, { location: "/s/after" });
        res.end();
      } else if (path === "/cookies") {
        res.writeHead(200, [
          ["content-type", "text/plain"],
          ["set-cookie", "a=1; Path=/; HttpOnly"],
          ["set-cookie", "b=2; Expires=Wed, 21 Oct 2037 07:28:00 GMT; Path=/"],
          ["set-cookie", "c=3"],
        ]);
        res.end("cookies");
      } else if (path === "/resource") {
        const body = "hello world";
        res.writeHead(200, {
          "content-type": "text/plain; charset=utf-8",
          "content-length": Buffer.byteLength(body),
          etag: '"v1"',
          "x-resource": "yes",
        });
        res.end(req.method === "HEAD" ? undefined : body);
      } else if (path === "/etag") {
        if (req.headers["if-none-match"] === '"v1"') {
          res.writeHead(304, { etag: '"v1"', "cache-control": "max-age=60" });
          res.end();
        } else {
          res.writeHead(200, { etag: '"v1"', "content-type": "text/plain" });
          res.end("fresh");
        }
      } else if (path === "/nocontent") {
        res.writeHead(204, { "x-done": "yes" });
        res.end();
      } else if (path === "/early") {
        res.writeEarlyHints({ link: "</style.css>; rel=preload; as=style" });
        await sleep(20);
        res.writeHead(200, { "content-type": "text/plain" });
        res.end("after hints");
      } else if (path === "/gzip") {
        res.writeHead(200, { "content-type": "application/json", "content-encoding": "gzip", vary: "Accept-Encoding" });
        res.end(zlib.gzipSync(JSON.stringify({ compressed: true, pad: "x".repeat(2000) })));
      } else if (path === "/hop") {
        res.writeHead(200, { "content-type": "text/plain", "proxy-connection": "keep-alive", "x-after": "1" });
        res.end("hop");
      } else if (path === "/chunked") {
        res.writeHead(200, { "content-type": "text/plain" });
        res.write("one-");
        await sleep(20);
        res.end("two");
      } else {
        res.writeHead(200, { "content-type": "text/plain" });
        res.end(`special ${req.method} ${req.url}`);
      }
    });
    raw = await startRawOrigin({
      "/garbage": "THIS IS NOT HTTP\r\n\r\n",
      "/close": null,
      "/bad-header": "HTTP/1.1 200 OK\r\nno colon here\r\ncontent-length: 2\r\n\r\nok",
      "/hints": "HTTP/1.1 103 Early Hints\r\nlink: </a.css>; rel=preload\r\n\r\n" +
        "HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\ncontent-length: 5\r\n\r\nfinal",
      "/continue": "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 201 Created\r\ncontent-length: 4\r\n\r\ndone",
      "/ok": "HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\ncontent-length: 2\r\n\r\nok",
    });
    slow = await startOrigin(async (req, res) => {
      await sleep(1500);
      if (!res.destroyed) res.end("late");
    });
    deadPort = await closedPort();
    gw = await startGateway({
      config: {
        format_version: 1,
        services: [
          { name: "echo", url: `${echo.url}/base` },
          { name: "echo-root", url: echo.url },
          { name: "special", url: special.url },
          { name: "raw", url: raw.url },
          { name: "slow", url: slow.url, timeout_ms: 300 },
          { name: "dead", url: `http://127.0.0.1:${deadPort}`, retries: 0 },
        ],
        routes: [
          { name: "api", service: "echo", paths: ["/api"] },
          { name: "api-slash", service: "echo", paths: ["/slash/"] },
          { name: "keep", service: "echo", paths: ["/keep"], strip_path: false },
          { name: "health", service: "echo", paths: ["=/health"], strip_path: false },
          { name: "health-strip", service: "echo", paths: ["=/hs"] },
          { name: "users", service: "echo", paths: ["/users/{id}"], rewrite: "/v2/users/{id}" },
          { name: "files", service: "echo", paths: ["/files/{*rest}"], rewrite: "/storage/{rest}" },
          { name: "orders", service: "echo", paths: ["~^/orders/(?P<order>[0-9]+)$"], rewrite: "/o/{order}" },
          { name: "ver", service: "echo", paths: ["~^/v[0-9]+"] },
          { name: "root", service: "echo-root", paths: ["/r"] },
          { name: "special", service: "special", paths: ["/s"] },
          { name: "raw", service: "raw", paths: ["/raw"] },
          { name: "slow", service: "slow", paths: ["/slow"] },
          { name: "dead", service: "dead", paths: ["/dead"] },
          { name: "only-get", service: "echo", paths: ["/only-get"], methods: ["GET"] },
          { name: "read", service: "echo", paths: ["/items"], methods: ["GET", "POST"] },
          { name: "write", service: "echo", paths: ["/items"], methods: ["PUT", "GET"] },
          { name: "opts", service: "echo", paths: ["/opts"] },
          { name: "opts-get", service: "echo", paths: ["/opts-get"], methods: ["GET", "OPTIONS", "HEAD"] },
        ],
      },
    });
  });
  after(async () => {
    await gw?.dispose();
    for (const o of [echo, special, raw, slow]) await o?.close();
  });

  // ------------------------------------------------------------------------------------ the upstream URL

  describe("the upstream URL (proxying.md, routing.md)", () => {
    test("the table of proxying.md: path, base path and query as the origin receives them", async () => {
      const rows = [
        ["/api/users/7?x=1&x=3", "/base/users/7?x=1&x=3"],
        ["/api", "/base"],
        ["/keep/users/7", "/base/keep/users/7"],
        ["/health", "/base/health"],
        ["/users/42?fields=name", "/base/v2/users/42?fields=name"],
        ["/files/a/b/c.txt", "/base/storage/a/b/c.txt"],
        ["/orders/123", "/base/o/123"],
      ];
      for (const [path, expected] of rows) {
        const { up } = await upstream(path);
        assert.equal(up.url, expected, path);
      }
    });

    test("strip_path joins the rest to the service path as Kong's path_handling v0: a trailing slash is kept", async () => {
      const rows = [
        ["/api/", "/base/"],
        ["/api/x/", "/base/x/"],
        ["/api/x/y", "/base/x/y"],
        ["/slash/", "/base/"],
        ["/slash/x", "/base/x"],
        ["/hs", "/base"],
        ["/v2/items", "/base/items"],
        ["/v2/", "/base/"],
        ["/v2", "/base"],
        ["/r/", "/"],
        ["/r", "/"],
        ["/r/x/", "/x/"],
        ["/keep/", "/base/keep/"],
      ];
      for (const [path, expected] of rows) {
        const { up } = await upstream(path);
        assert.equal(up.url, expected, path);
      }
    });

    test("the query string reaches the origin byte for byte", async () => {
      for (const query of [
        "x=1&x=3&x=2",
        "a=%20b&c=%2B+d&e=%2F&f=%C3%A9&g=%zz&h=%25",
        "empty=&flag&&=&x",
        "q=a/b?c:d@e!f$g(h)i*j,k;l=m",
        "pipe=a|b&brace={x}&caret=^&tick=%60&sq=%27&dq=%22&lt=%3C&gt=%3E",
        "ORDER=Desc&order=asc",
        "json=%7B%22a%22%3A%5B1%2C2%5D%7D",
      ]) {
        const { up } = await upstream(`/api/q?${query}`);
        assert.equal(up.url, `/base/q?${query}`, query);
      }
    });

    test("the runtime percent-encodes the bytes a URL query may not hold as they are; the rest is kept", async () => {
      const before = echo.requests.length;
      const reply = await rawRequest(
        gw.url,
        "GET /api/q?sq='a'&dq=\"b\"&lt=<c>&keep=|{}^`%zz HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n",
      );
      assert.match(reply, /^HTTP\/1\.1 200/, reply.slice(0, 200));
      assert.equal(echo.requests.length, before + 1);
      assert.equal(echo.last.url, "/base/q?sq=%27a%27&dq=%22b%22&lt=%3Cc%3E&keep=|{}^`%zz");
    });

    test("the origin receives the service's host:port as Host by default", async () => {
      const { up } = await upstream("/api/x", { host: "client.example.com" });
      assert.equal(up.headers.host, new URL(echo.url).host);
    });

    test("the method and the body are forwarded as they are", async () => {
      for (const method of ["POST", "PUT", "PATCH"]) {
        const { up } = await upstream("/api/m", { "content-type": "application/octet-stream" }, {
          method,
          body: `body of ${method}`,
        });
        assert.equal(up.method, method);
        assert.equal(up.body.toString(), `body of ${method}`);
      }
      for (const method of ["DELETE", "PROPFIND"]) {
        const { up } = await upstream("/api/m", {}, { method });
        assert.equal(up.method, method);
      }
      // A chunked DELETE body is forwarded too (workerd gives the Worker no body for a DELETE, GET or
      // OPTIONS sent with Content-Length: docs/proxying.md).
      async function* chunks() {
        yield "delete-";
        yield "body";
      }
      // (node:http frames a DELETE body only when asked to.)
      const { up } = await upstream("/api/m", { "transfer-encoding": "chunked" }, { method: "DELETE", body: chunks() });
      assert.equal(up.body.toString(), "delete-body");
    });
  });

  // ----------------------------------------------------------------------------- request headers

  describe("request headers sent upstream (proxying.md)", () => {
    test("Via: 1.1 edgegate appended to the client's; X-Forwarded-For appended to the client's list", async () => {
      const { up } = await upstream("/api/x", { via: "1.0 fred", "x-forwarded-for": "203.0.113.9" });
      assert.equal(up.headers.via, "1.0 fred, 1.1 edgegate");
      const xff = up.headers["x-forwarded-for"].split(",").map((s) => s.trim());
      assert.equal(xff.length, 2, up.headers["x-forwarded-for"]);
      assert.equal(xff[0], "203.0.113.9");
    });

    test("X-Forwarded-Proto, -Host and -Port describe the client's request, replacing the client's own", async () => {
      const { up } = await upstream("/api/x", {
        host: "API.Example.com:8443",
        "x-forwarded-proto": "https",
        "x-forwarded-host": "evil.example",
        "x-forwarded-port": "1",
      });
      assert.equal(up.headers["x-forwarded-proto"], "http");
      assert.equal(up.headers["x-forwarded-host"], "api.example.com");
      assert.equal(up.headers["x-forwarded-port"], "8443");
      assert.equal(up.headers["x-forwarded-prefix"], "/api");
    });

    test("X-Forwarded-Host drops a trailing dot of the host, as nginx's $host does for Kong", async () => {
      const { up } = await upstream("/api/x", { host: "API.example.com.:8443" });
      assert.equal(up.headers["x-forwarded-host"], "api.example.com");
      assert.equal(up.headers["x-forwarded-port"], "8443");
    });

    test("a client's Forwarded header (RFC 7239) passes unchanged, as other client headers do", async () => {
      const { up } = await upstream("/api/x", { forwarded: "for=192.0.2.60;proto=http;by=203.0.113.43" });
      assert.equal(up.headers.forwarded, "for=192.0.2.60;proto=http;by=203.0.113.43");
    });

    test("X-Request-Id: kept when 1 to 200 of A-Z a-z 0-9 . _ : -, else a new UUID v4, sent up and back", async () => {
      for (const id of ["a", "Req_1.2:3-x", "Z".repeat(200)]) {
        const { res, up } = await upstream("/api/x", { "x-request-id": id });
        assert.equal(up.headers["x-request-id"], id);
        assert.equal(res.headers["x-request-id"], id);
      }
      const seen = new Set();
      for (const bad of ["Z".repeat(201), "has space", "slash/x", "ünï", "a,b", "{uuid}"]) {
        const { res, up } = await upstream("/api/x", { "x-request-id": Buffer.from(bad).toString("latin1") });
        assert.match(res.headers["x-request-id"], UUID_RE, bad);
        assert.equal(up.headers["x-request-id"], res.headers["x-request-id"], bad);
        seen.add(res.headers["x-request-id"]);
      }
      assert.equal(seen.size, 6, "a different id for every request");
    });

    test("traceparent: the client's trace id and flags with a new span id; tracestate kept", async () => {
      for (const flags of ["01", "00"]) {
        const client = CLIENT_TRACE.slice(0, -2) + flags;
        const { up } = await upstream("/api/x", { traceparent: client, tracestate: "congo=t61rcWkgMzE" });
        const m = TRACEPARENT_RE.exec(up.headers.traceparent);
        assert.ok(m, up.headers.traceparent);
        assert.equal(m[1], "4bf92f3577b34da6a3ce929d0e0e4736");
        assert.notEqual(m[2], "00f067aa0ba902b7", "a new span id");
        assert.notEqual(m[2], "0".repeat(16));
        assert.equal(m[3], flags);
        assert.equal(up.headers.tracestate, "congo=t61rcWkgMzE");
      }
      // Two requests with the same parent get two different span ids.
      const spans = new Set();
      for (let i = 0; i < 3; i++) spans.add((await upstream("/api/x", { traceparent: CLIENT_TRACE })).up.headers.traceparent);
      assert.equal(spans.size, 3);
    });

    test("traceparent: a malformed one (upper case, version ff, zero ids, wrong lengths) starts a new trace", async () => {
      for (const bad of [
        CLIENT_TRACE.toUpperCase(),
        "ff" + CLIENT_TRACE.slice(2),
        "00-00000000000000000000000000000000-00f067aa0ba902b7-01",
        "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",
        "00-4bf92f3577b34da6a3ce929d0e0e473-00f067aa0ba902b7-01",
        CLIENT_TRACE + "-extra",
      ]) {
        const { up } = await upstream("/api/x", { traceparent: bad, tracestate: "congo=t61rcWkgMzE" });
        const m = TRACEPARENT_RE.exec(up.headers.traceparent);
        assert.ok(m, `${bad}: ${up.headers.traceparent}`);
        assert.notEqual(m[1], "4bf92f3577b34da6a3ce929d0e0e4736", bad);
        assert.equal(up.headers.tracestate, undefined, `${bad}: tracestate goes with the client's trace`);
      }
    });

    test("hop-by-hop headers and those Connection names are not forwarded; Expect neither", async () => {
      const { up } = await upstream(
        "/api/x",
        {
          connection: "keep-alive, X-Hop-A, x-hop-b",
          "x-hop-a": "1",
          "x-hop-b": "2",
          "keep-alive": "timeout=5",
          te: "trailers",
          "proxy-authorization": "Basic dXNlcjpwYXNz",
          "proxy-authenticate": "Basic",
          upgrade: "h2c",
          "x-kept": "yes",
        },
      );
      for (const name of ["x-hop-a", "x-hop-b", "keep-alive", "te", "proxy-authorization", "proxy-authenticate", "upgrade"]) {
        assert.equal(up.headers[name], undefined, `${name} reached the origin`);
      }
      assert.equal(up.headers["x-kept"], "yes");
    });

    test("Proxy-Connection (RFC 9110 section 7.6.1: removed before forwarding) does not reach the origin", async () => {
      const { up } = await upstream("/api/x", { "proxy-connection": "keep-alive" });
      assert.equal(up.headers["proxy-connection"], undefined);
    });

    test("Expect: 100-continue is answered at the gateway; the body arrives whole and Expect does not", async () => {
      const body = "x".repeat(5000);
      const { up, res } = await upstream("/api/upload", { expect: "100-continue", "content-type": "text/plain" }, {
        method: "POST",
        body,
      });
      assert.equal(res.status, 200);
      assert.equal(up.body.toString(), body);
      assert.equal(up.headers.expect, undefined);
    });

    test("a request with both Content-Length and Transfer-Encoding never reaches the origin with both", async () => {
      const before = echo.requests.length;
      const reply = await rawRequest(
        gw.url,
        "POST /api/smuggle HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n" +
          "Connection: close\r\n\r\n5\r\nhello\r\n0\r\n\r\n",
      );
      assert.match(reply, /^HTTP\/1\.1 (200|400)/, reply.slice(0, 200));
      for (const r of echo.requests.slice(before)) {
        assert.ok(!(r.headers["content-length"] && r.headers["transfer-encoding"]), JSON.stringify(r.headers));
        assert.notEqual(r.body.toString(), "5\r\n", "the body was not cut at the client's Content-Length");
      }
    });
  });

  // ------------------------------------------------------------------------------------- the response

  describe("the response (proxying.md)", () => {
    test("X-Request-Id and integer latency headers are added; origin headers pass", async () => {
      const res = await get("/s/plain", { "x-request-id": "lat-1" });
      assert.equal(res.status, 200);
      assert.equal(res.headers["x-request-id"], "lat-1");
      assert.match(res.headers["x-edgegate-upstream-latency"], /^\d+$/);
      assert.match(res.headers["x-edgegate-proxy-latency"], /^\d+$/);
      assert.equal(res.text, "special GET /plain");
    });

    test("several Set-Cookie headers reach the client as separate headers, unchanged", async () => {
      const res = await get("/s/cookies");
      assert.deepEqual(res.headers["set-cookie"], [
        "a=1; Path=/; HttpOnly",
        "b=2; Expires=Wed, 21 Oct 2037 07:28:00 GMT; Path=/",
        "c=3",
      ]);
    });

    test("an origin's redirect is passed to the client, not followed", async () => {
      let res = await get("/s/redirect");
      assert.equal(res.status, 302);
      assert.equal(res.headers.location, "http://127.0.0.1:1/elsewhere?x=1");
      assert.equal(res.text, "moved");
      const before = special.hits;
      res = await get("/s/redirect-relative");
      assert.equal(res.status, 307);
      assert.equal(res.headers.location, "/s/after");
      assert.equal(special.hits, before + 1, "the gateway did not follow the redirect");
    });

    test("204 and 304 pass through without a body; conditional headers reach the origin", async () => {
      let res = await get("/s/nocontent");
      assert.equal(res.status, 204);
      assert.equal(res.headers["x-done"], "yes");
      assert.equal(res.body.length, 0);
      res = await get("/s/etag", { "if-none-match": '"v1"' });
      assert.equal(res.status, 304);
      assert.equal(res.headers.etag, '"v1"');
      assert.equal(res.body.length, 0);
      res = await get("/s/etag");
      assert.equal(res.status, 200);
      assert.equal(res.text, "fresh");
    });

    test("HEAD: forwarded as HEAD, same status and headers as GET, no body", async () => {
      const g = await get("/s/resource");
      const h = await get("/s/resource", {}, { method: "HEAD" });
      assert.equal(special.last.method, "HEAD");
      assert.equal(h.status, g.status);
      assert.equal(h.body.length, 0);
      for (const name of ["content-type", "content-length", "etag", "x-resource"]) {
        assert.equal(h.headers[name], g.headers[name], name);
      }
      assert.equal(g.text, "hello world");
    });

    test("HEAD on a gateway error: the problem's status and headers, no body", async () => {
      const h = await get("/nope", {}, { method: "HEAD" });
      assert.equal(h.status, 404);
      assert.match(h.headers["content-type"], /^application\/problem\+json/);
      assert.ok(h.headers["x-request-id"]);
      assert.equal(h.body.length, 0);
    });

    // workerd's HTTP client (Miniflare, wrangler dev) takes an origin's interim response for the final
    // one, with the real response as its body (docs/proxying.md): the gateway cannot pass that on, and
    // answers a clean 502 rather than a 1xx with a body or a truncated answer.
    test("an origin's interim 1xx (103 Early Hints, 100 Continue) gives 502 upstream_unreachable locally", async () => {
      assertProblem(await get("/s/early"), 502, "upstream_unreachable", "writeEarlyHints");
      assertProblem(await get("/raw/hints"), 502, "upstream_unreachable", "raw 103");
      const res = await get("/raw/continue", { "content-type": "text/plain" }, { method: "POST", body: "data" });
      assertProblem(res, 502, "upstream_unreachable", "unsolicited 100");
    });

    test("a gzip-encoded origin response reaches a gzip client still encoded, and decodes to the origin's bytes", async () => {
      const res = await get("/s/gzip", { "accept-encoding": "gzip" });
      assert.equal(res.status, 200);
      assert.equal(res.headers["content-encoding"], "gzip");
      assert.equal(res.headers.vary, "Accept-Encoding");
      const body = JSON.parse(zlib.gunzipSync(res.body).toString());
      assert.equal(body.compressed, true);
      assert.equal(body.pad.length, 2000);
    });

    test("the origin's Proxy-Connection does not reach the client", async () => {
      const res = await get("/s/hop");
      assert.equal(res.status, 200);
      assert.equal(res.headers["x-after"], "1");
      assert.equal(res.headers["proxy-connection"], undefined);
    });

    test("a chunked origin response reaches the client whole", async () => {
      const res = await get("/s/chunked");
      assert.equal(res.status, 200);
      assert.equal(res.text, "one-two");
    });
  });

  // ---------------------------------------------------------------------- methods, 405 and Max-Forwards

  describe("methods (routing.md, RFC 9110)", () => {
    test("405 method_not_allowed carries Allow: the union of the routes' methods, sorted, de-duplicated", async () => {
      const before = echo.hits;
      const res = await get("/items/1", {}, { method: "DELETE" });
      assertProblem(res, 405, "method_not_allowed");
      assert.equal(res.headers.allow, "GET, POST, PUT");
      assert.equal(echo.hits, before, "the origin is not contacted");
    });

    test("HEAD is not implied by GET: 405 with Allow: GET", async () => {
      const res = await get("/only-get", {}, { method: "HEAD" });
      assert.equal(res.status, 405);
      assert.equal(res.headers.allow, "GET");
      assert.equal(res.body.length, 0);
    });

    test("OPTIONS and TRACE are forwarded like other methods; Max-Forwards above 0 is decremented", async () => {
      let { up } = await upstream("/opts/x", { "max-forwards": "5" }, { method: "OPTIONS" });
      assert.equal(up.method, "OPTIONS");
      assert.equal(up.headers["max-forwards"], "4");
      ({ up } = await upstream("/opts/x", {}, { method: "OPTIONS" }));
      assert.equal(up.headers["max-forwards"], undefined, "none added");
      // Only TRACE and OPTIONS use Max-Forwards: on GET it passes unchanged.
      ({ up } = await upstream("/opts/x", { "max-forwards": "0" }));
      assert.equal(up.headers["max-forwards"], "0");
    });

    test("OPTIONS with Max-Forwards: 0 is answered by the gateway (200, Allow), not forwarded", async () => {
      const before = echo.hits;
      let res = await get("/opts-get/x", { "max-forwards": "0" }, { method: "OPTIONS" });
      assert.equal(res.status, 200, res.text);
      assert.equal(res.headers.allow, "GET, HEAD, OPTIONS");
      assert.ok(res.headers["x-request-id"]);
      res = await get("/opts/x", { "max-forwards": "0", "x-request-id": "mf-0" }, { method: "OPTIONS" });
      assert.equal(res.status, 200, res.text);
      assert.equal(res.headers.allow, "DELETE, GET, HEAD, OPTIONS, PATCH, POST, PUT, TRACE", "any method");
      assert.equal(echo.hits, before, "the origin is not contacted");
      const line = await waitFor(() => gw.logs.find((l) => l.json?.request_id === "mf-0")?.json, { what: "log line" });
      assert.equal(line.status, 200);
      assert.equal(line.route, "opts");
      assert.equal(line.upstream, null, "nothing went upstream");
      assert.equal(line.attempts, null);
    });
  });

  describe("TRACE (RFC 9110 sections 7.6.2, 9.3.8)", () => {
    test("TRACE is forwarded with Max-Forwards decremented", async () => {
      const { up } = await upstream("/opts/t", { "max-forwards": "2" }, { method: "TRACE" });
      assert.equal(up.method, "TRACE");
      assert.equal(up.headers["max-forwards"], "1");
    });

    test("TRACE with Max-Forwards: 0 is echoed by the gateway as message/http, without credentials", async () => {
      const before = echo.hits;
      const res = await get("/opts/t?q=1", {
        "max-forwards": "0",
        authorization: "Bearer secret-token",
        cookie: "sid=secret",
        "x-api-key": "secret-key",
        "x-trace-me": "visible",
      }, { method: "TRACE" });
      assert.equal(res.status, 200, res.text);
      assert.match(res.headers["content-type"], /^message\/http/);
      assert.match(res.text, /^TRACE \/opts\/t\?q=1 HTTP\/1\.1\r\n/);
      assert.match(res.text, /x-trace-me: visible\r\n/);
      assert.doesNotMatch(res.text, /secret/);
      assert.equal(echo.hits, before, "the origin is not contacted");
    });
  });

  // ------------------------------------------------------------------------------------ gateway errors

  describe("gateway errors (proxying.md, CONVENTIONS.md)", () => {
    test("502 upstream_unreachable: the origin's port is closed", async () => {
      assertProblem(await get("/dead/x"), 502, "upstream_unreachable", "closed port");
    });

    test("502 upstream_unreachable: the origin answers something that is not HTTP, or nothing", async () => {
      for (const path of ["/raw/garbage", "/raw/close", "/raw/bad-header"]) {
        assertProblem(await get(path), 502, "upstream_unreachable", path);
      }
      // The same origin, answering properly, is proxied.
      const res = await get("/raw/ok");
      assert.equal(res.status, 200);
      assert.equal(res.text, "ok");
    });

    test("504 upstream_timeout: no response headers within timeout_ms", async () => {
      const t0 = Date.now();
      const res = await get("/slow/x", { "x-request-id": "timeout-1" });
      const p = assertProblem(res, 504, "upstream_timeout");
      assert.equal(p.request_id, "timeout-1");
      assert.ok(Date.now() - t0 < 1400, "answered at the timeout, not when the origin did");
    });

    test("404 no_route is a problem document with the request id", async () => {
      const p = assertProblem(await get("/nope", { "x-request-id": "nr-1" }), 404, "no_route");
      assert.equal(p.request_id, "nr-1");
      assert.equal(p.type, "https://edgegate.dev/errors/no_route");
    });
  });
});
