// Configuration reload from KV without restarting: new versions are served, broken versions are refused
// while the last good one keeps serving, and rollback (moving the pointer back) works.
import { describe, test, before, after } from "node:test";
import assert from "node:assert/strict";
import { startGateway, startOrigin, request, putRaw, rollback, readPointer, waitFor } from "./support/harness.mjs";

describe("config reload", () => {
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

  const routeTo = (...paths) => ({
    format_version: 1,
    services: [{ name: "o", url: origin.url }],
    routes: paths.map((p, i) => ({ name: `r${i}`, service: "o", paths: [p] })),
  });
  const status = async (path) => (await request(gw.at(path))).status;

  test("a pushed version is served without a restart", async () => {
    await gw.putConfig(routeTo("/one"));
    assert.equal(await status("/one"), 200);
    assert.equal(await status("/two"), 404);
    await gw.putConfig(routeTo("/two"));
    assert.equal(await status("/two"), 200);
    assert.equal(await status("/one"), 404);
  });

  test("a version with invalid JSON leaves the previous routes serving", async () => {
    await gw.putConfig(routeTo("/good"));
    assert.equal(await status("/good"), 200);
    const bad = await putRaw(gw, '{"format_version": 1, "services": [ {');
    assert.equal((await readPointer(gw)).version, bad);
    for (let i = 0; i < 3; i++) assert.equal(await status("/good"), 200);
    await waitFor(() => gw.logs.some((l) => l.json?.event === "config_rejected" && l.json?.version === bad), {
      what: "a config_rejected log line",
    });
    // Rejected once, not on every request.
    assert.equal(gw.logs.filter((l) => l.json?.event === "config_rejected" && l.json?.version === bad).length, 1);
  });

  test("a version whose route names a missing service leaves the previous routes serving", async () => {
    await gw.putConfig(routeTo("/good2"));
    assert.equal(await status("/good2"), 200);
    await gw.putConfig({
      format_version: 1,
      services: [{ name: "o", url: origin.url }],
      routes: [{ name: "dangling", service: "nope", paths: ["/dangling"] }],
    });
    assert.equal(await status("/good2"), 200);
    assert.equal(await status("/dangling"), 404);
  });

  test("an unknown field or wrong format_version is refused too", async () => {
    await gw.putConfig(routeTo("/good3"));
    assert.equal(await status("/good3"), 200);
    await gw.putConfig({ ...routeTo("/typo"), servics: [] });
    assert.equal(await status("/good3"), 200);
    assert.equal(await status("/typo"), 404);
    await gw.putConfig({ ...routeTo("/v2"), format_version: 2 });
    assert.equal(await status("/good3"), 200);
    assert.equal(await status("/v2"), 404);
  });

  test("a good version after a broken one is served", async () => {
    await gw.putConfig(routeTo("/before"));
    assert.equal(await status("/before"), 200);
    await putRaw(gw, "not json");
    assert.equal(await status("/before"), 200);
    await gw.putConfig(routeTo("/after"));
    assert.equal(await status("/after"), 200);
    assert.equal(await status("/before"), 404);
  });

  test("rollback: moving the pointer back serves the previous version", async () => {
    await gw.putConfig(routeTo("/old"));
    await gw.putConfig(routeTo("/new"));
    assert.equal(await status("/new"), 200);
    assert.equal(await status("/old"), 404);
    await rollback(gw);
    assert.equal(await status("/old"), 200);
    assert.equal(await status("/new"), 404);
  });

  test("the served config version is logged with each request", async () => {
    const v = await gw.putConfig(routeTo("/logged"));
    const res = await request(gw.at("/logged"), { headers: { "x-request-id": "reload-log-1" } });
    assert.equal(res.status, 200);
    const line = await waitFor(
      () => gw.logs.find((l) => l.json?.event === "request" && l.json?.request_id === "reload-log-1"),
      { what: "the access log line" },
    );
    assert.equal(line.json.config_version, v);
  });

  test("a broken version falls back to the newest valid version, not the isolate's last one", async () => {
    const a = await gw.putConfig(routeTo("/version-a"));
    assert.equal(await status("/version-a"), 200);
    // B is pushed and never requested before the broken C replaces it.
    const b = await gw.putConfig(routeTo("/version-b"));
    const c = await putRaw(gw, '{"format_version": 1, "routes": [');
    assert.ok(a < b && b < c);
    assert.equal(await status("/version-b"), 200);
    assert.equal(await status("/version-a"), 404);
    await waitFor(() => gw.logs.some((l) => l.json?.event === "config_rejected" && l.json?.version === c), {
      what: "config_rejected for the broken version",
    });
    const loaded = await waitFor(
      () => gw.logs.find((l) => l.json?.event === "config_loaded" && l.json?.pointer_version === c),
      { what: "config_loaded naming the version served and the pointer's version" },
    );
    assert.equal(loaded.json.version, b);
    assert.deepEqual(loaded.json.skipped, [c]);
    // The access log names the version actually served.
    const res = await request(gw.at("/version-b"), { headers: { "x-request-id": "reload-walk-1" } });
    assert.equal(res.status, 200);
    const line = await waitFor(
      () => gw.logs.find((l) => l.json?.event === "request" && l.json?.request_id === "reload-walk-1"),
      { what: "the access log line" },
    );
    assert.equal(line.json.config_version, b);
  });
});

describe("config load on a cold isolate", () => {
  test("concurrent first requests share one load", async (t) => {
    const origin = await startOrigin();
    t.after(() => origin.close());
    // Two fresh isolates: the race this guards against does not show on every run.
    for (let round = 0; round < 2; round++) {
      const gw = await startGateway({
        config: {
          format_version: 1,
          services: [{ name: "o", url: origin.url }],
          routes: [{ name: "r", service: "o", paths: ["/cold"] }],
        },
      });
      try {
        const statuses = await Promise.all(Array.from({ length: 20 }, () => request(gw.at("/cold")).then((r) => r.status)));
        assert.deepEqual(statuses, Array(20).fill(200));
        await waitFor(() => gw.logs.filter((l) => l.json?.event === "request").length === 20, { what: "20 access lines" });
        assert.equal(gw.logs.filter((l) => l.json?.event === "config_loaded").length, 1, "one config_loaded");
      } finally {
        await gw.dispose();
      }
    }
  });
});
