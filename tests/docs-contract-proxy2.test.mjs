// The docs as a contract, third audit of docs/proxying.md against RFC 9110/9112 and what Kong users expect:
// the sections the first two audits (tests/docs-contract-proxy.test.mjs, tests/docs-contract-routing2.test.mjs)
// left out or checked on one request path only: the response (Server, Date, framing, Transfer-Encoding from
// the origin, hop-by-hop and Connection-named headers, HEAD, HEAD with a body), Max-Forwards, streaming (a
// slow origin's chunks, an upload), timeouts, WebSockets, every row of the gateway error table, every field
// of the access log, configuration changes. Every statement on both request paths: CONFIG_RELOAD_SECONDS
// "0" (every request re-reads the pointer and runs as a Rust future) and "600" (after a warm-up request,
// requests without waiting plugins take the synchronous path, as production traffic does).
import { describe, test, before, after } from "node:test";
import assert from "node:assert/strict";
import crypto from "node:crypto";
import net from "node:net";
import { Miniflare } from "miniflare";
import {
  startGateway,
  startOrigin,
  request,
  streamRequest,
  closedPort,
  sleep,
  waitFor,
  problemOf,
  wsConnect,
  wsEchoUpgradeHandler,
  rollback,
} from "./support/harness.mjs";

// The gateway's own answers carry Date (RFC 9110 section 6.6.1): IMF-fixdate, the time they were sent.
function assertFreshDate(date) {
  assert.match(date ?? "", /^(Mon|Tue|Wed|Thu|Fri|Sat|Sun), \d{2} (Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec) \d{4} \d{2}:\d{2}:\d{2} GMT$/);
  const t = Date.parse(date);
  assert.ok(Math.abs(Date.now() - t) < 60_000, date);
}

const sha256hex = (s) => crypto.createHash("sha256").update(s).digest("hex");

/** The problem document of a gateway error, with everything the error table promises. */
function assertProblem(res, status, code, what = "") {
  assert.equal(res.status, status, `${what}: ${res.text}`);
  assert.match(res.headers["content-type"] ?? "", /^application\/problem\+json/, what);
  const p = problemOf(res);
  assert.equal(p.code, code, what);
  assert.equal(p.status, status, what);
  assert.equal(p.type, `https://edgegate.dev/errors/${code}`, what);
  assert.equal(typeof p.title, "string", what);
  assert.equal(typeof p.detail, "string", what);
  assert.ok(res.headers["x-request-id"], `${what}: X-Request-Id`);
  assert.equal(p.request_id, res.headers["x-request-id"], what);
  assert.equal(res.headers["cache-control"], "no-store", what);
  return p;
}

/** Send raw bytes on a socket; resolve to what came back before the gateway closed (or `ms` passed). */
function raw(url, text, ms = 10_000) {
  return new Promise((resolve) => {
    const socket = net.connect(Number(url.port), url.hostname);
    const chunks = [];
    let error = null;
    const timer = setTimeout(() => socket.destroy(), ms);
    socket.on("data", (c) => chunks.push(c));
    socket.on("error", (e) => (error = e.code ?? e.message));
    socket.on("close", () => {
      clearTimeout(timer);
      resolve({ text: Buffer.concat(chunks).toString("latin1"), error });
    });
    socket.write(Buffer.from(text, "latin1"));
  });
}

let serial = 0;

for (const reload of ["0", "600"]) describe(`docs/proxying.md, third audit (CONFIG_RELOAD_SECONDS ${reload})`, { timeout: 300_000 }, () => {
  let gw, o, stall, hints, deadPort, version;
  const upgrades = [];
  const uploads = [];
  const key = "eg_p2_" + crypto.randomBytes(12).toString("hex");

  /** One request through the gateway with a fresh X-Request-Id; `up`: what the origin `o` got (or null). */
  async function send(path, opts = {}) {
    const id = `p2-${reload}-${++serial}`;
    const before = o.requests.length;
    const res = await request(gw.at(path), {
      ...opts,
      headers: { "x-request-id": id, "accept-encoding": "identity", ...(opts.headers ?? {}) },
    });
    const up = o.requests.slice(before).find((r) => r.headers["x-request-id"] === id) ?? null;
    return { res, up, id };
  }
  /** The access log line of the request with this X-Request-Id. */
  async function logOf(id) {
    const line = await waitFor(() => gw.logs.find((l) => l.json?.event === "request" && l.json.request_id === id), {
      what: `log of ${id}`,
    });
    return line.json;
  }

  before(async () => {
    o = await startOrigin(
      async (req, res, record) => {
        const p = req.url.split("?")[0];
        const q = new URL(req.url, "http://x").searchParams;
        if (p === "/o/server") {
          res.writeHead(200, { server: "origin-srv/1.0", date: "Wed, 21 Oct 2015 07:28:00 GMT", "content-length": 2 });
          res.end("ok");
        } else if (p === "/o/nodate") {
          res.sendDate = false;
          res.writeHead(200, { "content-length": 2 });
          res.end("ok");
        } else if (p === "/o/length") {
          res.writeHead(200, { "content-type": "application/octet-stream", "content-length": 5 });
          res.end(req.method === "HEAD" ? undefined : "12345");
        } else if (p === "/o/chunked") {
          res.writeHead(200, { "content-type": "application/octet-stream", "transfer-encoding": "chunked" });
          res.write("one-");
          await sleep(30);
          res.end("two");
        } else if (p === "/o/hop") {
          res.writeHead(200, {
            connection: "x-hop-resp, keep-alive",
            "x-hop-resp": "1",
            "keep-alive": "timeout=5",
            "proxy-authenticate": "Basic",
            "proxy-connection": "keep-alive",
            trailer: "x-t",
            "x-after": "yes",
          });
          res.end("hop");
        } else if (p === "/o/status") {
          const status = Number(q.get("s"));
          res.writeHead(status, { etag: '"v1"', "x-status": String(status) });
          res.end(status === 204 || status === 304 ? undefined : `status ${status}`);
        } else if (p === "/o/events") {
          // Four events 300 ms apart; `record.ended` is when the last was written.
          res.writeHead(200, { "content-type": "text/event-stream", "cache-control": "no-cache" });
          for (let i = 0; i < 4; i++) {
            if (i) await sleep(300);
            res.write(`data: ${i}\n\n`);
          }
          record.ended = Date.now();
          res.end();
        } else if (p === "/o/slowbody") {
          // Headers at once, the body after longer than the service's timeout_ms.
          res.writeHead(200, { "content-type": "text/plain" });
          res.write("start-");
          await sleep(1200);
          res.end("end");
        } else if (p === "/o/late") {
          await sleep(4000);
          if (!res.destroyed) res.end("late");
        } else if (p === "/o/die" || p === "/o/die-chunked") {
          res.writeHead(200, { "content-type": "text/plain", ...(p === "/o/die" ? { "content-length": 100 } : {}) });
          res.write("partial-");
          await sleep(100);
          res.destroy();
        } else if (p === "/o/cache") {
          res.writeHead(200, { "content-type": "text/plain", "cache-control": "max-age=60" });
          res.end("cacheable");
        } else {
          res.writeHead(200, { "content-type": "text/plain", "x-origin": "yes" });
          res.end(`${req.method} ${req.url} ${record.body?.length ?? 0}`);
        }
      },
      { onUpgrade: wsEchoUpgradeHandler(upgrades) },
    );
    // An origin that reads an upload as it comes, recording when its first bytes arrived.
    const upOrigin = await startOrigin(
      async (req, res) => {
        const entry = { first: null, bytes: 0 };
        uploads.push(entry);
        for await (const c of req) {
          entry.first ??= Date.now();
          entry.bytes += c.length;
        }
        res.writeHead(200, { "content-type": "text/plain" });
        res.end(`got ${entry.bytes}`);
      },
      { rawBody: true },
    );
    // An origin whose answer starts with an interim 103 Early Hints.
    hints = net.createServer((socket) => {
      socket.on("error", () => {});
      socket.once("data", () =>
        socket.end("HTTP/1.1 103 Early Hints\r\nLink: </a.css>; rel=preload\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"),
      );
    });
    await new Promise((resolve) => hints.listen(0, "127.0.0.1", resolve));
    // An origin that accepts connections and never reads nor answers.
    stall = net.createServer((s) => {
      s.pause();
      s.on("error", () => {});
    });
    await new Promise((resolve) => stall.listen(0, "127.0.0.1", resolve));
    stall.sockets = new Set();
    stall.on("connection", (s) => stall.sockets.add(s));
    deadPort = await closedPort();
    stall.upOrigin = upOrigin;

    const doc = {
      format_version: 1,
      services: [
        { name: "o", url: `${o.url}/o` },
        { name: "quick", url: `${o.url}/o`, timeout_ms: 500, retries: 0 },
        { name: "ws", url: `${o.url}/sock`, headers: { "x-from": "edgegate" } },
        { name: "up", url: upOrigin.url },
        { name: "stall", url: `http://127.0.0.1:${stall.address().port}`, timeout_ms: 500, retries: 0 },
        { name: "dead", url: `http://127.0.0.1:${deadPort}`, retries: 0 },
        { name: "hints", url: `http://127.0.0.1:${hints.address().port}`, retries: 0 },
        {
          name: "breaker",
          targets: [{ url: `http://127.0.0.1:${deadPort}` }],
          retries: 0,
          healthchecks: { passive: { unhealthy: { tcp_failures: 1 }, cooldown_ms: 30_000 } },
        },
      ],
      routes: [
        { name: "o", service: "o", paths: ["/o"] },
        { name: "get-only", service: "o", paths: ["/get-only"], methods: ["GET", "POST"] },
        { name: "mf", service: "o", paths: ["/mf"], methods: ["OPTIONS", "GET"] },
        { name: "quick", service: "quick", paths: ["/quick"] },
        { name: "ws", service: "ws", paths: ["/ws"] },
        { name: "up", service: "up", paths: ["/up"] },
        { name: "stall", service: "stall", paths: ["/stall"] },
        { name: "dead", service: "dead", paths: ["/dead"] },
        { name: "hints", service: "hints", paths: ["/hints"] },
        { name: "breaker", service: "breaker", paths: ["/breaker"] },
        { name: "authed", service: "o", paths: ["/authed"] },
        { name: "cached", service: "o", paths: ["/cached"] },
        { name: "probe", service: "o", paths: ["=/__probe"], methods: ["OPTIONS"] },
      ],
      plugins: [
        { name: "key-auth", route: "authed", config: {} },
        { name: "proxy-cache", route: "cached", config: { cache_control: true } },
      ],
    };
    gw = await startGateway({ bindings: { CONFIG_RELOAD_SECONDS: reload }, config: doc });
    const put = (k, v) => gw.kv.put(k, JSON.stringify(v));
    await put("consumers/c-p2", { id: "c-p2", username: "p2-user", groups: [] });
    await put("consumer-names/p2-user", { id: "c-p2" });
    await put(`credentials/key-auth/${sha256hex(key)}`, { id: "cred-p2", consumer_id: "c-p2" });
    // Loads the version: with 600 the isolate keeps it, and plain requests take the synchronous path.
    const warm = await send("/o/warm");
    assert.equal(warm.res.status, 200, warm.res.text);
    version = (await logOf(warm.id)).config_version;
    assert.equal(typeof version, "number");
  });
  after(async () => {
    await gw?.dispose();
    await o?.close();
    await stall?.upOrigin?.close();
    for (const s of stall?.sockets ?? []) s.destroy();
    await new Promise((resolve) => (stall ? stall.close(resolve) : resolve()));
    await new Promise((resolve) => (hints ? hints.close(resolve) : resolve()));
  });

  // ------------------------------------------------------------------------------------------ the response

  describe("the response", () => {
    test("the origin's Server and Date reach the client unchanged", async () => {
      const { res } = await send("/o/server");
      assert.equal(res.status, 200);
      assert.equal(res.headers.server, "origin-srv/1.0");
      assert.equal(res.headers.date, "Wed, 21 Oct 2015 07:28:00 GMT");
      assert.equal(res.headers.via, undefined, "no Via on responses");
    });

    test("a response without Date gets one (RFC 9110 section 6.6.1): the time it was received, IMF-fixdate", async () => {
      const t0 = Date.now();
      const { res } = await send("/o/nodate");
      assert.equal(res.status, 200);
      assert.match(res.headers.date ?? "", /^(Mon|Tue|Wed|Thu|Fri|Sat|Sun), \d\d (Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec) \d{4} \d\d:\d\d:\d\d GMT$/);
      const date = Date.parse(res.headers.date);
      assert.ok(date >= Math.floor(t0 / 1000) * 1000 && date <= Date.now(), res.headers.date);
      assert.equal(res.headers.server, undefined, "no Server is added");
    });

    test("hop-by-hop response headers and those the response's Connection names are dropped", async () => {
      const { res } = await send("/o/hop");
      assert.equal(res.status, 200);
      assert.equal(res.text, "hop");
      assert.equal(res.headers["x-after"], "yes");
      for (const name of ["x-hop-resp", "keep-alive", "proxy-authenticate", "proxy-connection", "trailer"]) {
        assert.equal(res.headers[name], undefined, `${name} reached the client`);
      }
    });

    test("framing: an origin's Content-Length is kept; a chunked origin body reaches the client chunked", async () => {
      let { res } = await send("/o/length");
      assert.equal(res.headers["content-length"], "5");
      assert.equal(res.headers["transfer-encoding"], undefined);
      assert.equal(res.text, "12345");
      ({ res } = await send("/o/chunked"));
      assert.equal(res.headers["transfer-encoding"], "chunked");
      assert.equal(res.headers["content-length"], undefined);
      assert.equal(res.text, "one-two");
    });

    test("HEAD with a body: the 400 bad_request status and headers, no body; the origin is not contacted", async () => {
      const { res, up } = await send("/o/length", { method: "HEAD", headers: { "content-length": "3" }, body: "abc" });
      assert.equal(res.status, 400);
      assert.match(res.headers["content-type"], /^application\/problem\+json/);
      assert.ok(res.headers["x-request-id"]);
      assert.equal(res.body.length, 0);
      assert.equal(up, null);
      assert.equal((await logOf(res.headers["x-request-id"])).error, "bad_request");
    });

    test("HEAD with a large body: the 400 head arrives, then the runtime resets the connection", async () => {
      const before = o.requests.length;
      const n = 200_000;
      const r = await raw(gw.url, `HEAD /o/length HTTP/1.1\r\nHost: gw.test\r\nContent-Length: ${n}\r\nConnection: close\r\n\r\n${"x".repeat(n)}`);
      assert.match(r.text, /^HTTP\/1\.1 400 /);
      assert.match(r.text, /\r\ncontent-type: application\/problem\+json\r\n/i);
      assert.ok(r.text.endsWith("\r\n\r\n"), "no body");
      assert.ok([null, "ECONNRESET"].includes(r.error), String(r.error));
      assert.equal(o.requests.length, before);
    });

    test("an interim 1xx is never passed on: locally 502 upstream_unreachable", async () => {
      const { res } = await send("/hints/x");
      assertProblem(res, 502, "upstream_unreachable");
      assert.equal(res.headers.link, undefined);
    });

    test("a DELETE or OPTIONS body reaches the origin, framed by Content-Length or chunked", async () => {
      async function* chunked() {
        yield Buffer.from("ab");
        yield Buffer.from("c");
      }
      for (const method of ["DELETE", "OPTIONS"]) {
        for (const [headers, body] of [[{ "content-length": "3" }, "abc"], [{ "transfer-encoding": "chunked" }, chunked()]]) {
          const { res, up } = await send("/o/echo", { method, headers, body });
          assert.equal(res.status, 200, `${method} ${JSON.stringify(headers)}`);
          assert.equal(up.method, method);
          assert.equal(up.body.toString(), "abc", `${method} ${JSON.stringify(headers)}`);
        }
      }
    });

    test("HEAD: the origin's status and Content-Length, no body", async () => {
      const { res, up } = await send("/o/length", { method: "HEAD" });
      assert.equal(up.method, "HEAD");
      assert.equal(res.status, 200);
      assert.equal(res.headers["content-length"], "5");
      assert.equal(res.body.length, 0);
    });

    test("204 and 304 have no body and keep their headers", async () => {
      for (const s of [204, 304]) {
        const { res } = await send(`/o/status?s=${s}`);
        assert.equal(res.status, s);
        assert.equal(res.body.length, 0);
        assert.equal(res.headers.etag, '"v1"');
        assert.equal(res.headers["x-status"], String(s));
      }
    });
  });

  // ---------------------------------------------------------------------------------------- Max-Forwards

  describe("Max-Forwards", () => {
    test("OPTIONS with Max-Forwards: 0 is answered by the gateway; TRACE with 3 is forwarded with 2", async () => {
      let { res, up } = await send("/mf/x", { method: "OPTIONS", headers: { "max-forwards": "0" } });
      assert.equal(res.status, 200);
      assert.equal(res.headers.allow, "GET, OPTIONS");
      assert.equal(up, null);
      assertFreshDate(res.headers.date);
      ({ res, up } = await send("/o/x", { method: "TRACE", headers: { "max-forwards": "3" } }));
      assert.equal(res.status, 200);
      assert.equal(up.headers["max-forwards"], "2");
    });
  });

  // ------------------------------------------------------------------------------------------- streaming

  describe("streaming", () => {
    for (const encoding of ["identity", "gzip"]) {
      test(`a slow origin's events reach the client as they are written (Accept-Encoding: ${encoding})`, async () => {
        const before = o.requests.length;
        const id = `p2-sse-${reload}-${encoding}`;
        const t0 = Date.now();
        const res = await streamRequest(gw.at("/o/events"), { headers: { "accept-encoding": encoding, "x-request-id": id } });
        assert.equal(res.statusCode, 200);
        let first = null;
        const chunks = [];
        for await (const c of res) {
          first ??= Date.now();
          chunks.push(c);
        }
        const rec = o.requests.slice(before).find((r) => r.url === "/o/events");
        assert.ok(rec?.ended, "the origin finished");
        // The first event arrived while the origin was still writing (it writes for ~900 ms).
        assert.ok(first < rec.ended, `first chunk ${rec.ended - first} ms before the origin's end`);
        assert.ok(Buffer.concat(chunks).length > 0);
        // The access log line was written at the response headers, before the ~900 ms body.
        const line = gw.logs.find((l) => l.json?.event === "request" && l.json.request_id === id);
        assert.ok(gw.logs.indexOf(line) >= 0, "logged");
        assert.ok(line.json.total_latency_ms < rec.ended - t0, `${line.json.total_latency_ms} ms`);
      });
    }

    test("an upload streams: the origin reads the first chunk before the client sends the last", async () => {
      const before = uploads.length;
      async function* body() {
        yield Buffer.alloc(64 * 1024, 1);
        // Waits until the origin has seen bytes of the first chunk: a gateway that buffered would not send any.
        await waitFor(() => uploads[before]?.first, { timeoutMs: 10_000, what: "the first chunk at the origin" });
        yield Buffer.alloc(64 * 1024, 2);
      }
      const res = await request(gw.at("/up/x"), { method: "POST", headers: { "transfer-encoding": "chunked" }, body: body() });
      assert.equal(res.status, 200);
      assert.equal(res.text, `got ${128 * 1024}`);
    });
  });

  // -------------------------------------------------------------------------------------------- timeouts

  describe("timeouts", () => {
    test("no response headers within timeout_ms: 504 upstream_timeout, before the origin answers", async () => {
      const t0 = Date.now();
      const { res, id } = await send("/quick/late");
      assertProblem(res, 504, "upstream_timeout");
      assert.ok(Date.now() - t0 < 3500, "answered at the timeout");
      const line = await logOf(id);
      assert.equal(line.error, "upstream_timeout");
      assert.equal(line.status, 504);
    });

    test("an origin that never reads the request: 504 upstream_timeout", async () => {
      const { res } = await send("/stall/x", { method: "POST", body: Buffer.alloc(64 * 1024, 7) });
      assertProblem(res, 504, "upstream_timeout");
    });

    test("once the headers have arrived, a body slower than timeout_ms is delivered whole", async () => {
      const { res } = await send("/quick/slowbody");
      assert.equal(res.status, 200);
      assert.equal(res.text, "start-end");
    });

    /** The status, body bytes and whether node saw the response end properly, for a GET of `path`. */
    async function readAll(path) {
      const res = await streamRequest(gw.at(path), { headers: { "accept-encoding": "identity" } });
      const chunks = [];
      let failed = false;
      try {
        for await (const c of res) chunks.push(c);
      } catch {
        failed = true;
      }
      return { res, body: Buffer.concat(chunks).toString(), complete: !failed && res.complete };
    }

    test("an origin that fails mid-body (Content-Length): status, headers and the start, then the connection ends short", async () => {
      const { res, body, complete } = await readAll("/o/die");
      assert.equal(res.statusCode, 200);
      assert.equal(res.headers["content-length"], "100");
      assert.equal(body, "partial-");
      assert.equal(complete, false, "the client sees the response cut short");
    });

    test("an origin that fails mid-body (chunked): locally the client gets a chunked response that ends normally", async () => {
      const { res, body, complete } = await readAll("/o/die-chunked");
      assert.equal(res.statusCode, 200);
      assert.equal(res.headers["transfer-encoding"], "chunked");
      assert.equal(body, "partial-");
      assert.equal(complete, true, "workerd ends the chunked body with its last chunk");
    });
  });

  // ------------------------------------------------------------------------------------------ WebSockets

  describe("WebSockets", () => {
    test("an upgrade is forwarded through its route with the gateway's headers; messages flow both ways", async () => {
      const ws = await wsConnect(gw.at("/ws/chat?room=1"), { headers: { "x-request-id": `ws-${reload}` } });
      try {
        assert.equal(ws.status, 101);
        assert.equal(ws.headers["sec-websocket-accept"], ws.expectedAccept);
        // The origin's 101 as it is: its own headers, none of the gateway's.
        assert.equal(ws.headers["x-origin-ws"], "yes");
        assert.equal(ws.headers["x-request-id"], undefined);
        assert.equal(ws.headers["x-edgegate-upstream-latency"], undefined);
        ws.send("hello");
        assert.equal((await ws.next()).payload.toString(), "echo: hello");
      } finally {
        ws.close();
      }
      const up = upgrades.at(-1);
      assert.equal(up.url, "/sock/chat?room=1");
      assert.equal(up.headers["x-request-id"], `ws-${reload}`);
      assert.equal(up.headers["x-from"], "edgegate");
      assert.equal(up.headers.via, "1.1 edgegate");
      assert.equal(String(up.headers.upgrade).toLowerCase(), "websocket");
      assert.match(String(up.headers.connection), /upgrade/i);
      const line = await logOf(`ws-${reload}`);
      assert.equal(line.status, 101);
      assert.equal(line.route, "ws");
    });

    test("a WebSocket request without a route is the 404 problem document", async () => {
      await assert.rejects(wsConnect(gw.at("/nowhere/ws")), (e) => e.status === 404);
    });
  });

  // -------------------------------------------------------------------------------------- gateway errors

  describe("gateway errors: every row of the table", () => {
    /** The row's problem document; its log line has the code as `error`; a HEAD gets the same head, no body. */
    async function row(path, opts, status, code, head = true) {
      const { res, up, id } = await send(path, opts);
      const p = assertProblem(res, status, code, path);
      assert.equal((await logOf(id)).error, code, `${path}: log`);
      if (head) {
        const h = await send(path, { ...opts, method: "HEAD" });
        assert.equal(h.res.status, status, `HEAD ${path}`);
        assert.match(h.res.headers["content-type"], /^application\/problem\+json/);
        assert.equal(h.res.headers["cache-control"], "no-store");
        assert.ok(h.res.headers["x-request-id"]);
        assert.equal(h.res.body.length, 0, `HEAD ${path}: no body`);
      }
      return { res, up, id, p };
    }

    test("400 bad_request: a GET with a body; the origin is not contacted", async () => {
      const { up } = await row("/o/x", { headers: { "content-length": "3" }, body: "abc" }, 400, "bad_request", false);
      assert.equal(up, null);
    });

    test("400 invalid_path: a dot segment in some spelling; the origin is not contacted", async () => {
      const { up } = await row("/o/..%2Fadmin", {}, 400, "invalid_path");
      assert.equal(up, null);
    });

    test("404 no_route", async () => {
      const { res } = await row("/nowhere", {}, 404, "no_route");
      assertFreshDate(res.headers.date);
    });

    test("405 method_not_allowed with Allow", async () => {
      const { res, up } = await row("/get-only/x", { method: "DELETE" }, 405, "method_not_allowed");
      assert.equal(res.headers.allow, "GET, POST");
      assert.equal(up, null);
    });

    test("502 upstream_unreachable: a closed port", async () => {
      const { id } = await row("/dead/x", {}, 502, "upstream_unreachable");
      const line = await logOf(id);
      assert.equal(line.upstream, `http://127.0.0.1:${deadPort}`);
      assert.equal(line.attempts, 1);
      assert.equal(line.upstream_latency_ms, null, "no response headers came back");
    });

    test("503 no_healthy_upstream with Retry-After once the only target is out", async () => {
      const first = await send("/breaker/x");
      assertProblem(first.res, 502, "upstream_unreachable");
      const { res, id } = await row("/breaker/x", {}, 503, "no_healthy_upstream");
      assert.match(res.headers["retry-after"] ?? "", /^[1-9][0-9]*$/);
      assert.ok(Number(res.headers["retry-after"]) <= 30);
      const line = await logOf(id);
      assert.equal(line.upstream, null);
      assert.equal(line.attempts, null);
    });

    test("504 upstream_timeout", async () => {
      const { id } = await row("/quick/late", {}, 504, "upstream_timeout");
      assert.equal((await logOf(id)).upstream_latency_ms, null);
    });

    test("504 not_cached: only-if-cached on a proxy-cache route without a stored answer", async () => {
      const { up } = await row("/cached/cache", { headers: { "cache-control": "only-if-cached" } }, 504, "not_cached");
      assert.equal(up, null);
    });

    test("HEAD on a gateway error: the problem's status and headers, no body", async () => {
      const { res } = await send("/nowhere", { method: "HEAD" });
      assert.equal(res.status, 404);
      assert.match(res.headers["content-type"], /^application\/problem\+json/);
      assert.ok(res.headers["x-request-id"]);
      assert.equal(res.body.length, 0);
    });
  });

  // ------------------------------------------------------------------------------------------ access log

  describe("the access log", () => {
    test("every field of a proxied request", async () => {
      const { res, id } = await send("/authed/x?secret=1", { headers: { apikey: key } });
      assert.equal(res.status, 200, res.text);
      const line = await logOf(id);
      assert.deepEqual(Object.keys(line).sort(), [
        "attempts", "config_version", "consumer", "error", "event", "host", "method", "path", "request_id",
        "route", "service", "status", "total_latency_ms", "upstream", "upstream_latency_ms",
      ]);
      assert.equal(line.event, "request");
      assert.equal(line.method, "GET");
      assert.equal(line.host, `127.0.0.1:${gw.url.port}`);
      assert.equal(line.path, "/authed/x");
      assert.equal(line.route, "authed");
      assert.equal(line.service, "o");
      assert.equal(line.upstream, o.url);
      assert.equal(line.attempts, 1);
      assert.equal(line.consumer, "p2-user");
      assert.equal(line.status, 200);
      assert.equal(line.error, null);
      assert.equal(line.config_version, version);
      assert.ok(Number.isInteger(line.upstream_latency_ms) && line.upstream_latency_ms >= 0);
      assert.ok(Number.isInteger(line.total_latency_ms) && line.total_latency_ms >= line.upstream_latency_ms);
    });

    test("host: the request URL's host and port as the runtime builds it from Host (lower case, a default port dropped)", async () => {
      for (const [host, logged] of [["GW.Example:80", "gw.example"], ["GW.Example:8080", "gw.example:8080"], ["gw.example", "gw.example"]]) {
        const id = `p2-host-${reload}-${++serial}`;
        const r = await raw(gw.url, `GET /o/h HTTP/1.1\r\nHost: ${host}\r\nX-Request-Id: ${id}\r\nConnection: close\r\n\r\n`);
        assert.match(r.text, /^HTTP\/1\.1 200 /);
        assert.equal((await logOf(id)).host, logged, host);
      }
    });

    test("a plain route: consumer null; no route: route, service, upstream, attempts null", async () => {
      let { id } = await send("/o/plain");
      let line = await logOf(id);
      assert.equal(line.consumer, null);
      assert.equal(line.route, "o");
      ({ id } = await send("/nowhere?x=1"));
      line = await logOf(id);
      assert.deepEqual(
        [line.route, line.service, line.upstream, line.attempts, line.status, line.error, line.path, line.upstream_latency_ms],
        [null, null, null, null, 404, "no_route", "/nowhere", null],
      );
    });
  });
});

for (const reload of ["0", "600"]) describe(`docs/proxying.md: no_config and configuration changes (CONFIG_RELOAD_SECONDS ${reload})`, { timeout: 120_000 }, () => {
  let o;
  before(async () => {
    o = await startOrigin();
  });
  after(async () => {
    await o?.close();
  });
  const routeTo = (path) => ({
    format_version: 1,
    services: [{ name: "o", url: o.url }],
    routes: [{ name: path.slice(1), service: "o", paths: [path] }],
  });
  /** Status and access log line of one GET. */
  async function hit(gw, path) {
    const id = `p2c-${reload}-${++serial}`;
    const res = await request(gw.at(path), { headers: { "x-request-id": id } });
    const line = await waitFor(() => gw.logs.find((l) => l.json?.event === "request" && l.json.request_id === id), { what: id });
    return { res, line: line.json };
  }

  test("503 no_config when no configuration has been pushed", async () => {
    const gw = await startGateway({ bindings: { CONFIG_RELOAD_SECONDS: reload } });
    try {
      for (let i = 0; i < 2; i++) {
        const { res, line } = await hit(gw, "/x");
        assertProblem(res, 503, "no_config");
        assert.equal(line.error, "no_config");
        assert.equal(line.config_version, null);
      }
      const head = await request(gw.at("/x"), { method: "HEAD" });
      assert.equal(head.status, 503);
      assert.match(head.headers["content-type"], /^application\/problem\+json/);
      assert.equal(head.body.length, 0);
    } finally {
      await gw.dispose();
    }
  });

  test("a pushed version is served from the next re-read of the pointer on; invalid ones are refused; rollback", async () => {
    const gw = await startGateway({ bindings: { CONFIG_RELOAD_SECONDS: reload }, config: routeTo("/one") });
    try {
      let r = await hit(gw, "/one/x");
      assert.equal(r.res.status, 200);
      assert.equal(r.line.config_version, 1);
      // Written directly (not through harness waits): the isolate re-reads the pointer only every `reload` s.
      await gw.putConfig(routeTo("/two"));
      if (reload === "600") {
        // Within the interval the isolate keeps serving the version it has.
        for (let i = 0; i < 3; i++) {
          r = await hit(gw, "/one/x");
          assert.equal(r.res.status, 200);
          assert.equal(r.line.config_version, 1);
        }
        assert.equal((await hit(gw, "/two/x")).res.status, 404);
        return;
      }
      r = await hit(gw, "/two/x");
      assert.equal(r.res.status, 200);
      assert.equal(r.line.config_version, 2);
      assert.equal((await hit(gw, "/one/x")).res.status, 404);
      // A route naming a missing service: refused, one config_rejected line naming it; version 2 stays.
      const bad = routeTo("/three");
      bad.routes[0].service = "missing";
      await gw.putConfig(bad);
      r = await hit(gw, "/two/x");
      assert.equal(r.res.status, 200);
      assert.equal(r.line.config_version, 2);
      await hit(gw, "/two/y");
      const rejected = gw.logs.filter((l) => l.json?.event === "config_rejected" && l.json.version === 3);
      assert.equal(rejected.length, 1, "one config_rejected line for version 3");
      // Rolling back twice: version 2 (the pointer's previous), then version 1.
      await rollback(gw);
      await rollback(gw);
      r = await hit(gw, "/one/x");
      assert.equal(r.res.status, 200);
      assert.equal(r.line.config_version, 1);
    } finally {
      await gw.dispose();
    }
  });
});

// Whose behaviour the two local pitfalls above are: a plain Worker, not the gateway, under the same Miniflare.
describe("docs/proxying.md: the runtime's own behaviour, shown with a plain Worker", { timeout: 60_000 }, () => {
  let mf, url, o;
  before(async () => {
    o = await startOrigin(async (req, res) => {
      res.writeHead(200, { "content-type": "application/octet-stream" });
      res.write("partial-");
      await sleep(100);
      res.destroy();
    });
    mf = new Miniflare({
      modules: true,
      script: `export default { async fetch(req) {
        if (req.method === "HEAD") return new Response(null, { status: 400 });
        const r = await fetch("${o.url}/die");
        return new Response(r.body, r);
      } }`,
      host: "127.0.0.1",
      port: 0,
      compatibilityDate: "2026-05-01",
    });
    url = new URL(await mf.ready);
  });
  after(async () => {
    await mf?.dispose();
    await o?.close();
  });

  test("a HEAD answered without reading its 200 KB body: the head, then a reset (no gateway involved)", async () => {
    const n = 200_000;
    const r = await raw(url, `HEAD / HTTP/1.1\r\nHost: w.test\r\nContent-Length: ${n}\r\nConnection: close\r\n\r\n${"x".repeat(n)}`);
    assert.match(r.text, /^HTTP\/1\.1 400 /);
    assert.ok([null, "ECONNRESET"].includes(r.error), String(r.error));
  });

  test("a pass-through of a chunked body the origin cuts short ends normally (no gateway involved)", async () => {
    const res = await streamRequest(new URL("/", url).toString());
    const chunks = [];
    for await (const c of res) chunks.push(c);
    assert.equal(res.headers["transfer-encoding"], "chunked");
    assert.equal(Buffer.concat(chunks).toString(), "partial-");
    assert.equal(res.complete, true);
  });
});
