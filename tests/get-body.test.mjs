// A GET or HEAD request with a body (docs/proxying.md, "GET and HEAD with a body"): the Fetch API the Worker
// forwards with cannot send one. An empty body (`Content-Length: 0`, an empty chunked body) is left out and
// the request forwarded; any other is refused with 400 `bad_request` before it reaches a target, so it never
// counts as the target's failure and is never retried. Checked on both request paths (CONFIG_RELOAD_SECONDS 0:
// asynchronous; 600 after one request: synchronous).

import { describe, test, before, after } from "node:test";
import assert from "node:assert/strict";
import { startGateway, startOrigin, request, problemOf } from "./support/harness.mjs";

async function* chunks(...parts) {
  for (const p of parts) yield Buffer.from(p);
}

for (const reload of ["0", "600"]) describe(`GET and HEAD with a body (CONFIG_RELOAD_SECONDS ${reload})`, { timeout: 120_000 }, () => {
  let gw, origin;
  before(async () => {
    origin = await startOrigin();
    gw = await startGateway({
      bindings: { CONFIG_RELOAD_SECONDS: reload },
      config: {
        format_version: 1,
        services: [
          { name: "origin", url: origin.url },
          {
            name: "guarded",
            targets: [{ url: origin.url }],
            retries: 2,
            retry_on: ["connect-failure", "timeout", 500],
            healthchecks: { passive: { unhealthy: { tcp_failures: 1, timeouts: 1 } } },
          },
        ],
        routes: [
          { name: "r", service: "origin", paths: ["/r"] },
          { name: "g", service: "guarded", paths: ["/g"] },
        ],
      },
    });
    // Loads the version: with 600, every later request is served on the synchronous path.
    assert.equal((await request(gw.at("/r/warm"))).status, 200);
  });
  after(async () => {
    await gw?.dispose();
    await origin?.close();
  });

  test("a GET with a body is refused with 400 bad_request and never reaches the origin", async () => {
    const before = origin.requests.length;
    for (const [headers, body] of [
      [{ "content-type": "application/json", "content-length": "7" }, '{"q":1}'],
      [{ "transfer-encoding": "chunked" }, chunks("a", "bc")],
    ]) {
      const res = await request(gw.at("/r/search"), { method: "GET", headers, body });
      assert.equal(res.status, 400);
      const p = problemOf(res);
      assert.equal(p.code, "bad_request");
      assert.match(p.detail, /GET or HEAD/);
      assert.equal(p.request_id, res.headers["x-request-id"]);
    }
    assert.equal(origin.requests.length, before);
  });

  test("an empty body (Content-Length: 0, an empty chunked body) is left out and the GET or HEAD forwarded", async () => {
    for (const [method, headers] of [
      ["GET", { "content-length": "0" }],
      ["GET", { "transfer-encoding": "chunked" }],
      ["HEAD", { "content-length": "0" }],
    ]) {
      const before = origin.requests.length;
      const res = await request(gw.at("/r/empty"), { method, headers, body: "" });
      assert.equal(res.status, 200, `${method} ${JSON.stringify(headers)}`);
      assert.equal(origin.requests.length, before + 1);
      const got = origin.requests.at(-1);
      assert.equal(got.method, method);
      assert.equal(got.body.length, 0);
      assert.equal(got.headers["transfer-encoding"], undefined);
      assert.ok([undefined, "0"].includes(got.headers["content-length"]));
    }
  });

  test("a refused GET is neither retried nor counted against the target's health", async () => {
    const before = origin.requests.length;
    for (let i = 0; i < 3; i++) {
      const res = await request(gw.at("/g/x"), { method: "GET", headers: { "content-length": "3" }, body: "abc" });
      assert.equal(res.status, 400);
    }
    assert.equal(origin.requests.length, before, "no attempt, no retry");
    // With tcp_failures 1 a single counted failure would take the only target out (503 no_healthy_upstream).
    const ok = await request(gw.at("/g/x"));
    assert.equal(ok.status, 200);
    assert.equal(origin.requests.length, before + 1);
  });

  test("other methods keep their body", async () => {
    for (const method of ["DELETE", "OPTIONS", "POST"]) {
      // Node frames a body of these methods only with an explicit length.
      const res = await request(gw.at("/r/x"), { method, headers: { "content-length": "3" }, body: "abc" });
      assert.equal(res.status, 200, method);
      assert.equal(origin.requests.at(-1).method, method);
      assert.equal(origin.requests.at(-1).body.toString(), "abc");
    }
  });
});
