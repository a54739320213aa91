// One structured JSON log line per request (captured from the Worker's console via Miniflare).
import { describe, test, before, after } from "node:test";
import assert from "node:assert/strict";
import { startGateway, startOrigin, request, simpleConfig, closedPort, sleep, waitFor } from "./support/harness.mjs";

describe("access log", () => {
  let gw;
  let origin;
  before(async () => {
    gw = await startGateway();
    origin = await startOrigin();
    await gw.putConfig(simpleConfig(origin.url, { route: { name: "api", paths: ["/api"] } }));
  });
  after(async () => {
    await gw?.dispose();
    await origin?.close();
  });

  const linesFor = (id) => gw.logs.filter((l) => l.json?.event === "request" && l.json?.request_id === id);

  test("each request writes exactly one JSON line with its outcome", async () => {
    const cases = [
      { id: "log-ok", path: "/api/x?secret=1", method: "GET", status: 200, route: "api", error: null },
      { id: "log-404", path: "/nope", method: "GET", status: 404, route: null, error: "no_route" },
      { id: "log-post", path: "/api/y", method: "POST", status: 200, route: "api", error: null },
    ];
    for (const c of cases) {
      const res = await request(gw.at(c.path), { method: c.method, headers: { "x-request-id": c.id }, body: "" });
      assert.equal(res.status, c.status);
    }
    await waitFor(() => cases.every((c) => linesFor(c.id).length >= 1), { what: "log lines" });
    await sleep(100); // let any duplicate arrive
    for (const c of cases) {
      const lines = linesFor(c.id);
      assert.equal(lines.length, 1, `one line for ${c.id}: ${lines.map((l) => l.message).join("\n")}`);
      const j = lines[0].json;
      assert.equal(j.method, c.method);
      assert.equal(j.path, c.path.split("?")[0], "path without the query string");
      assert.equal(j.status, c.status);
      // The target's origin and one attempt when the request went upstream; null otherwise.
      assert.equal(j.upstream ?? null, c.route ? new URL(origin.url).origin : null);
      assert.equal(j.attempts ?? null, c.route ? 1 : null);
      assert.equal(j.route ?? null, c.route);
      assert.equal(j.error ?? null, c.error);
      assert.equal(typeof j.total_latency_ms, "number");
      assert.ok(!lines[0].message.includes("\n"), "a single line");
      assert.ok(!lines[0].message.includes("secret=1"), "the query string is not logged");
    }
  });

  test("an unreachable origin is logged with its error code", async () => {
    const port = await closedPort();
    await gw.putConfig(simpleConfig(`http://127.0.0.1:${port}`));
    const res = await request(gw.at("/down"), { headers: { "x-request-id": "log-502" } });
    assert.equal(res.status, 502);
    const [line] = await waitFor(() => {
      const l = linesFor("log-502");
      return l.length ? l : null;
    });
    assert.equal(line.json.status, 502);
    assert.equal(line.json.error, "upstream_unreachable");
    assert.equal(line.json.upstream, `http://127.0.0.1:${port}`, "the target that failed");
    assert.ok(line.json.attempts >= 1);
  });

  test("upstream and attempts name the target that answered after a retry", async () => {
    const port = await closedPort();
    const down = `http://127.0.0.1:${port}`;
    const up = new URL(origin.url).origin;
    await gw.putConfig({
      format_version: 1,
      services: [{ name: "pair", targets: [{ url: down, weight: 1 }, { url: origin.url, weight: 1 }] }],
      routes: [{ name: "pair", service: "pair", paths: ["/pair"] }],
    });
    const ids = ["log-rt-1", "log-rt-2", "log-rt-3", "log-rt-4"];
    for (const id of ids) {
      const res = await request(gw.at("/pair"), { headers: { "x-request-id": id } });
      assert.equal(res.status, 200, "retried on the other target (retries: 1 on connect-failure by default)");
    }
    await waitFor(() => ids.every((id) => linesFor(id).length >= 1), { what: "log lines" });
    const seen = ids.map((id) => linesFor(id)[0].json);
    for (const j of seen) assert.equal(j.upstream, up, "the target that answered");
    // Round-robin over two targets: some requests went to the closed one first, and were retried.
    assert.ok(seen.some((j) => j.attempts === 2), JSON.stringify(seen.map((j) => j.attempts)));
    assert.ok(seen.every((j) => j.attempts === 1 || j.attempts === 2));
  });

  test("every line the Worker writes is JSON", async () => {
    const bad = gw.logs.filter((l) => l.json === undefined);
    assert.deepEqual(
      bad.map((l) => l.message),
      [],
    );
  });
});
