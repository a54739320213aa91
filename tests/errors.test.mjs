// Gateway errors: RFC 9457 problem+json with a stable code and the request id, one status per failure.
import { describe, test, before, after } from "node:test";
import assert from "node:assert/strict";
import { startGateway, startOrigin, request, closedPort, simpleConfig, sleep, putRaw } from "./support/harness.mjs";

/** Check the problem document and return it. */
function assertProblem(res, status, code) {
  assert.equal(res.status, status, res.text);
  assert.match(res.headers["content-type"] ?? "", /^application\/problem\+json/);
  const p = JSON.parse(res.text);
  for (const field of ["type", "title", "detail", "code", "request_id"]) {
    assert.equal(typeof p[field], "string", `${field} is a string in ${res.text}`);
  }
  assert.equal(p.status, status);
  assert.equal(p.code, code);
  assert.ok(p.title.length > 0 && p.detail.length > 0);
  assert.ok(res.headers["x-request-id"], "x-request-id response header");
  assert.equal(p.request_id, res.headers["x-request-id"], "request_id equals the x-request-id header");
  assert.equal(res.headers["cache-control"], "no-store", "errors are not cached");
  return p;
}

describe("errors without configuration", () => {
  let gw;
  before(async () => {
    gw = await startGateway();
  });
  after(async () => {
    await gw?.dispose();
  });

  test("503 no_config when KV holds no configuration", async () => {
    const res = await request(gw.at("/anything"));
    assertProblem(res, 503, "no_config");
    // Stays 503 on the next request too (and does not crash the isolate).
    assertProblem(await request(gw.at("/again")), 503, "no_config");
  });

  test("503 no_config when the only version is broken", async () => {
    await putRaw(gw, '{"format_version": 1, "services": [');
    assertProblem(await request(gw.at("/x")), 503, "no_config");
  });
});

describe("errors with configuration", () => {
  let gw;
  let origin;
  before(async () => {
    gw = await startGateway();
    origin = await startOrigin();
  });
  after(async () => {
    await gw?.dispose();
    await origin?.close();
  });

  test("404 no_route", async () => {
    await gw.putConfig(simpleConfig(origin.url, { route: { paths: ["/api"] } }));
    const res = await request(gw.at("/nope?x=1"));
    const p = assertProblem(res, 404, "no_route");
    assert.ok(p.type.endsWith("no_route"), `type ${p.type}`);
    assert.equal(origin.hits, 0);
  });

  test("a well-formed client x-request-id is used in the error", async () => {
    await gw.putConfig(simpleConfig(origin.url, { route: { paths: ["/api"] } }));
    const res = await request(gw.at("/nope"), { headers: { "x-request-id": "client-id-123" } });
    const p = assertProblem(res, 404, "no_route");
    assert.equal(p.request_id, "client-id-123");
  });

  test("405 method_not_allowed lists the allowed methods in Allow", async () => {
    await gw.putConfig({
      format_version: 1,
      services: [{ name: "o", url: origin.url }],
      routes: [
        { name: "read", service: "o", paths: ["/items"], methods: ["GET"] },
        { name: "write", service: "o", paths: ["/items"], methods: ["PUT"] },
      ],
    });
    const res = await request(gw.at("/items/1"), { method: "DELETE" });
    assertProblem(res, 405, "method_not_allowed");
    const allow = (res.headers.allow ?? "").split(",").map((s) => s.trim());
    assert.ok(allow.includes("GET") && allow.includes("PUT"), `Allow: ${res.headers.allow}`);
    assert.ok(!allow.includes("DELETE"));
    assert.equal(origin.hits, 0);
    // The allowed method still works.
    assert.equal((await request(gw.at("/items/1"))).status, 200);
  });

  test("502 upstream_unreachable when the origin port is closed", async () => {
    const port = await closedPort();
    await gw.putConfig(simpleConfig(`http://127.0.0.1:${port}`));
    const res = await request(gw.at("/x"));
    assertProblem(res, 502, "upstream_unreachable");
  });

  test("504 upstream_timeout when the origin is slower than timeout_ms", async () => {
    const slow = await startOrigin(async (req, res) => {
      await sleep(3000);
      if (!res.destroyed) {
        res.writeHead(200);
        res.end("late");
      }
    });
    try {
      await gw.putConfig(simpleConfig(slow.url, { service: { timeout_ms: 300 } }));
      const t0 = Date.now();
      const res = await request(gw.at("/slow"));
      const elapsed = Date.now() - t0;
      assertProblem(res, 504, "upstream_timeout");
      assert.ok(elapsed >= 250, `answered after ${elapsed} ms, before the timeout`);
      assert.ok(elapsed < 2500, `answered after ${elapsed} ms, the timeout did not fire`);
    } finally {
      await slow.close();
    }
  });

  test("an origin answering within timeout_ms is not cut off", async () => {
    const slowish = await startOrigin(async (req, res) => {
      await sleep(150);
      res.writeHead(200, { "content-type": "text/plain" });
      res.end("in time");
    });
    try {
      await gw.putConfig(simpleConfig(slowish.url, { service: { timeout_ms: 2000 } }));
      const res = await request(gw.at("/x"), { headers: { "accept-encoding": "identity" } });
      assert.equal(res.status, 200);
      assert.equal(res.text, "in time");
    } finally {
      await slowish.close();
    }
  });
});
