// Headers across the gateway: forwarding headers, request id, trace context, hop-by-hop removal,
// service headers, and the headers the gateway adds to responses.
import { describe, test, before, after } from "node:test";
import assert from "node:assert/strict";
import { startGateway, startOrigin, request, simpleConfig } from "./support/harness.mjs";

const REQUEST_ID_RE = /^[A-Za-z0-9._:-]{1,200}$/;
const UUID_RE = /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;
const TRACEPARENT_RE = /^00-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})$/;
// Miniflare reports the client address of a 127.0.0.1 connection as one of these.
const LOOPBACK_RE = /^(127\.0\.0\.1|::1|::ffff:127\.0\.0\.1)$/;

function assertValidTraceparent(tp) {
  const m = TRACEPARENT_RE.exec(tp ?? "");
  assert.ok(m, `valid traceparent: ${tp}`);
  assert.notEqual(m[1], "0".repeat(32), "trace id not all zero");
  assert.notEqual(m[2], "0".repeat(16), "parent id not all zero");
  return { traceId: m[1], parentId: m[2], flags: m[3] };
}

describe("headers", () => {
  let gw;
  let origin;

  before(async () => {
    gw = await startGateway();
    origin = await startOrigin((req, res, rec) => {
      if (req.url.endsWith("/hop-response")) {
        res.writeHead(200, {
          "content-type": "text/plain",
          connection: "keep-alive, X-Hop",
          "x-hop": "origin-only",
          "keep-alive": "timeout=5",
          "proxy-authenticate": "Basic",
          "proxy-authorization": "Basic dXNlcjpwYXNz",
          trailer: "x-checksum",
          upgrade: "h2c",
          "x-normal": "pass-me",
        });
        res.end("ok");
        return;
      }
      res.writeHead(200, { "content-type": "text/plain", "x-origin": "yes" });
      res.end("ok");
    });
    await gw.putConfig(
      simpleConfig(origin.url, {
        service: { headers: { "x-from": "edgegate", "x-api-version": "2" } },
      }),
    );
  });
  after(async () => {
    await gw?.dispose();
    await origin?.close();
  });

  /** Send a request, return { res, up } where up = headers the origin received. */
  async function roundTrip(headers = {}, init = {}) {
    const before = origin.hits;
    const res = await request(gw.at(init.path ?? "/h"), { headers, ...init });
    assert.equal(res.status, 200, res.text);
    assert.equal(origin.hits, before + 1, "origin hit once");
    return { res, up: origin.last.headers };
  }

  test("x-forwarded-for carries the client IP, appended to an existing list", async () => {
    let { up } = await roundTrip();
    assert.match(up["x-forwarded-for"] ?? "", LOOPBACK_RE);
    ({ up } = await roundTrip({ "x-forwarded-for": "203.0.113.7, 198.51.100.1" }));
    const parts = up["x-forwarded-for"].split(",").map((s) => s.trim());
    assert.deepEqual(parts.slice(0, 2), ["203.0.113.7", "198.51.100.1"]);
    assert.equal(parts.length, 3, up["x-forwarded-for"]);
    assert.match(parts[2], LOOPBACK_RE);
  });

  test("x-forwarded-proto and x-forwarded-host describe the client's request", async () => {
    const { up } = await roundTrip({ host: "api.example.com" });
    assert.equal(up["x-forwarded-proto"], "http");
    assert.equal(up["x-forwarded-host"], "api.example.com");
  });

  test("a well-formed client x-request-id is kept, upstream and in the response", async () => {
    const id = "abc-123:x.y_Z";
    const { res, up } = await roundTrip({ "x-request-id": id });
    assert.equal(up["x-request-id"], id);
    assert.equal(res.headers["x-request-id"], id);
  });

  test("a malformed or missing x-request-id is replaced by a generated one", async () => {
    const seen = new Set();
    for (const bad of ["has spaces in it", "a".repeat(201), "semi;colon", "", undefined]) {
      const headers = bad === undefined ? {} : { "x-request-id": bad };
      const { res, up } = await roundTrip(headers);
      const id = res.headers["x-request-id"];
      assert.match(id ?? "", UUID_RE, `generated id for ${JSON.stringify(bad)}`);
      assert.notEqual(id, bad);
      assert.equal(up["x-request-id"], id, "origin gets the same id as the client");
      seen.add(id);
    }
    assert.equal(seen.size, 5, "every generated id is different");
  });

  test("exactly 200 allowed characters is still well formed", async () => {
    const id = "A".repeat(200);
    const { res, up } = await roundTrip({ "x-request-id": id });
    assert.equal(res.headers["x-request-id"], id);
    assert.equal(up["x-request-id"], id);
  });

  test("traceparent: client trace id kept with a new parent id; tracestate kept", async () => {
    const client = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
    const { up } = await roundTrip({ traceparent: client, tracestate: "vendor=abc" });
    const t = assertValidTraceparent(up.traceparent);
    assert.equal(t.traceId, "4bf92f3577b34da6a3ce929d0e0e4736");
    assert.notEqual(t.parentId, "00f067aa0ba902b7", "a new span id for the upstream hop");
    assert.equal(t.flags, "01");
    assert.equal(up.tracestate, "vendor=abc");
  });

  test("tracestate is dropped when the trace is new (no or a malformed traceparent)", async () => {
    for (const headers of [{ tracestate: "vendor=abc" }, { traceparent: "garbage", tracestate: "vendor=abc" }]) {
      const { up } = await roundTrip(headers);
      assertValidTraceparent(up.traceparent);
      assert.equal(up.tracestate, undefined, JSON.stringify(headers));
    }
  });

  test("traceparent: a new valid one when absent or malformed", async () => {
    const traceIds = new Set();
    for (const bad of [undefined, "garbage", "00-00000000000000000000000000000000-00f067aa0ba902b7-01"]) {
      const headers = bad === undefined ? {} : { traceparent: bad };
      const { up } = await roundTrip(headers);
      const t = assertValidTraceparent(up.traceparent);
      traceIds.add(t.traceId);
    }
    assert.equal(traceIds.size, 3, "a fresh trace id each time");
  });

  test("hop-by-hop headers and those Connection names are not forwarded", async () => {
    // A chunked body, because node:http only sends a Trailer header with chunked encoding.
    async function* body() {
      yield "x";
    }
    const { up } = await roundTrip(
      {
        connection: "keep-alive, X-Secret-Hop",
        "x-secret-hop": "do-not-forward",
        "keep-alive": "timeout=5",
        te: "trailers",
        trailer: "x-checksum",
        "proxy-authorization": "Basic dXNlcjpwYXNz",
        "proxy-authenticate": "Basic",
        "x-normal": "forward-me",
      },
      { method: "POST", body: body() },
    );
    for (const name of ["connection", "x-secret-hop", "keep-alive", "te", "trailer", "proxy-authorization", "proxy-authenticate"]) {
      assert.equal(up[name], undefined, `${name} must not reach the origin`);
    }
    assert.equal(up["x-normal"], "forward-me");
  });

  test("hop-by-hop response headers and those the response's Connection names do not reach the client", async () => {
    const { res } = await roundTrip({}, { path: "/h/hop-response" });
    for (const name of ["x-hop", "proxy-authenticate", "proxy-authorization", "trailer", "upgrade"]) {
      assert.equal(res.headers[name], undefined, `${name} must not reach the client`);
    }
    assert.notEqual(res.headers["keep-alive"], "timeout=5", "the origin's keep-alive is not passed on");
    assert.equal(res.headers["x-normal"], "pass-me");
  });

  test("a non-websocket Upgrade header is not forwarded", async () => {
    const { up } = await roundTrip({ upgrade: "h2c", connection: "Upgrade" });
    assert.equal(up.upgrade, undefined);
  });

  test("transfer-encoding of a chunked client body is not copied; the body arrives whole", async () => {
    async function* body() {
      yield "part1-";
      yield "part2";
    }
    const { up } = await roundTrip({ "content-type": "text/plain" }, { method: "POST", body: body() });
    assert.equal(origin.last.body.toString(), "part1-part2");
    // The origin may see chunked framing from the gateway's own fetch, but never two encodings.
    assert.ok(!/,/.test(up["transfer-encoding"] ?? ""), `transfer-encoding ${up["transfer-encoding"]}`);
  });

  test("service headers are set, replacing a client header of the same name", async () => {
    const { up } = await roundTrip({ "x-from": "client", "x-other": "kept" });
    assert.equal(up["x-from"], "edgegate");
    assert.equal(up["x-api-version"], "2");
    assert.equal(up["x-other"], "kept");
  });

  test("responses carry x-request-id and integer latency headers; origin headers pass through", async () => {
    const { res } = await roundTrip({ "accept-encoding": "identity" });
    assert.match(res.headers["x-request-id"] ?? "", REQUEST_ID_RE);
    assert.match(res.headers["x-edgegate-upstream-latency"] ?? "", /^\d+$/);
    assert.match(res.headers["x-edgegate-proxy-latency"] ?? "", /^\d+$/);
    assert.equal(res.headers["x-origin"], "yes");
    assert.equal(res.headers["content-type"], "text/plain");
    assert.equal(res.text, "ok");
  });

  test("upstream latency reflects a slow origin", async () => {
    const slow = await startOrigin(async (req, res) => {
      await new Promise((r) => setTimeout(r, 300));
      res.end("slow");
    });
    try {
      await gw.putConfig(simpleConfig(slow.url));
      const res = await request(gw.at("/x"));
      assert.equal(res.status, 200);
      const up = Number(res.headers["x-edgegate-upstream-latency"]);
      assert.ok(up >= 250 && up < 3000, `upstream latency ${up}`);
    } finally {
      await slow.close();
      await gw.putConfig(
        simpleConfig(origin.url, { service: { headers: { "x-from": "edgegate", "x-api-version": "2" } } }),
      );
    }
  });
});
