// Rate limiting when the counter misbehaves (fault_tolerant on and off), and counts surviving a restart of
// the Durable Object with persistent storage.
//
// Faults are injected without any hook in the gateway: the RATE_LIMITER binding points at a second,
// test-only Worker whose Durable Object class throws or never answers.
import { describe, test, before, after } from "node:test";
import assert from "node:assert/strict";
import { Miniflare } from "miniflare";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { startGateway, startOrigin, request, putConfig, ROOT, SCRIPT } from "./support/harness.mjs";
import { DO_OPTIONS, rlConfig } from "./ratelimit-helpers.mjs";

const FAULTY_WORKER = `
export class Failing {
  async fetch() { throw new Error("counter exploded"); }
}
export class Hanging {
  async fetch() { await new Promise((resolve) => setTimeout(resolve, 10_000)); return new Response("{}"); }
}
export class Garbage {
  async fetch() { return new Response("not json", { status: 200 }); }
}
export default { fetch() { return new Response("faulty"); } };
`;

/** The gateway with RATE_LIMITER bound to `className` in the faulty Worker. */
async function startWithFaultyCounter(className) {
  const logs = [];
  const mf = new Miniflare({
    host: "127.0.0.1",
    port: 0,
    handleStructuredLogs: (entry) => {
      let json;
      try {
        json = JSON.parse(entry.message);
      } catch {
        json = undefined;
      }
      logs.push({ level: entry.level, message: entry.message, json });
    },
    workers: [
      {
        name: "edgegate",
        modules: true,
        scriptPath: SCRIPT,
        modulesRoot: ROOT,
        modulesRules: [{ type: "CompiledWasm", include: ["**/*.wasm"], fallthrough: true }],
        kvNamespaces: { CONFIG: "CONFIG" },
        bindings: { CONFIG_RELOAD_SECONDS: "0" },
        compatibilityDate: "2026-05-01",
        durableObjects: { RATE_LIMITER: { className, scriptName: "faulty" } },
      },
      {
        name: "faulty",
        modules: true,
        script: FAULTY_WORKER,
        compatibilityDate: "2026-05-01",
        durableObjects: { FAILING: "Failing", HANGING: "Hanging", GARBAGE: "Garbage" },
      },
    ],
  });
  const url = new URL(await mf.ready);
  return { mf, logs, at: (p) => new URL(p, url).toString(), dispose: () => mf.dispose() };
}

function faultConfig(originUrl, extra) {
  return rlConfig(originUrl, [
    { name: "rate-limiting", route: "on", config: { minute: 5, limit_by: "ip", timeout_ms: 300, ...extra } },
    {
      name: "rate-limiting",
      route: "off",
      config: { minute: 5, limit_by: "ip", timeout_ms: 300, fault_tolerant: false, ...extra },
    },
  ], ["on", "off"]);
}

const unavailableLogs = (logs) => logs.filter((l) => l.json?.event === "ratelimit_unavailable");

describe("the counter fails or times out", () => {
  let origin;
  before(async () => {
    origin = await startOrigin();
  });
  after(async () => {
    await origin?.close();
  });

  for (const [className, what] of [
    ["Failing", "throws"],
    ["Hanging", "does not answer in time"],
    ["Garbage", "answers garbage"],
  ]) {
    test(`the object ${what}: fault_tolerant lets the request through and logs, otherwise 503`, async () => {
      const gw = await startWithFaultyCounter(className);
      try {
        await putConfig(gw.mf, faultConfig(origin.url));
        const h = { "cf-connecting-ip": "192.0.2.10" };
        const t0 = Date.now();
        const on = await request(gw.at("/on"), { headers: h });
        assert.equal(on.status, 200, on.text);
        assert.equal(on.headers["ratelimit-limit"], undefined, "no counter, no headers");
        const off = await request(gw.at("/off"), { headers: h });
        assert.equal(off.status, 503, off.text);
        const p = JSON.parse(off.text);
        assert.equal(p.code, "rate_limit_unavailable");
        assert.equal(off.headers["retry-after"], undefined);
        if (className === "Hanging") {
          assert.ok(Date.now() - t0 < 5_000, "timeout_ms bounds the wait");
        }
        const logged = unavailableLogs(gw.logs);
        assert.equal(logged.length, 2, JSON.stringify(gw.logs.map((l) => l.message)));
        assert.deepEqual(
          logged.map((l) => l.json.fault_tolerant),
          [true, false],
        );
        assert.ok(logged.every((l) => typeof l.json.reason === "string" && l.json.request_id));
      } finally {
        await gw.dispose();
      }
    });
  }

  test("no RATE_LIMITER binding at all counts as unavailable", async () => {
    const gw = await startGateway();
    try {
      await gw.putConfig(faultConfig(origin.url));
      const h = { "cf-connecting-ip": "192.0.2.11" };
      assert.equal((await request(gw.at("/on"), { headers: h })).status, 200);
      assert.equal((await request(gw.at("/off"), { headers: h })).status, 503);
      assert.match(unavailableLogs(gw.logs)[0].json.reason, /RATE_LIMITER/);
    } finally {
      await gw.dispose();
    }
  });
});

describe("counts survive the object being reloaded", () => {
  let origin;
  let dir;
  before(async () => {
    origin = await startOrigin();
    dir = fs.mkdtempSync(path.join(os.tmpdir(), "edgegate-do-"));
  });
  after(async () => {
    await origin?.close();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  test("restart Miniflare with persistent Durable Object storage", async () => {
    // Token bucket: counts do not depend on where the window boundaries fall.
    const config = rlConfig(origin.url, [
      { name: "rate-limiting", config: { hour: 4, algorithm: "token_bucket", limit_by: "ip" } },
    ]);
    const h = { "cf-connecting-ip": "192.0.2.20" };
    const options = { miniflare: { ...DO_OPTIONS, durableObjectsPersist: dir } };
    let gw = await startGateway({ ...options, config });
    const before = [];
    try {
      for (let i = 0; i < 3; i++) before.push((await request(gw.at("/r"), { headers: h })).headers["ratelimit-remaining"]);
    } finally {
      await gw.dispose();
    }
    assert.deepEqual(before, ["3", "2", "1"]);
    gw = await startGateway({ ...options, config });
    try {
      const r = await request(gw.at("/r"), { headers: h });
      assert.equal(r.status, 200);
      assert.equal(r.headers["ratelimit-remaining"], "0", "the new object instance loaded the stored count");
      const refused = await request(gw.at("/r"), { headers: h });
      assert.equal(refused.status, 429);
      // Another key in the same restarted namespace is fresh.
      const other = await request(gw.at("/r"), { headers: { "cf-connecting-ip": "192.0.2.21" } });
      assert.equal(other.headers["ratelimit-remaining"], "3");
    } finally {
      await gw.dispose();
    }
  });
});
