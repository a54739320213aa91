// Permit leases (docs/rate-limiting.md "Permit leases"): with leases on (the default) the limit is still
// exact when two isolates share one counting object, windows roll as documented, and a lease held by an
// isolate that stops sending (as an evicted one would) only under-admits, within the documented bound.
//
// Two Workers in one Miniflare are two isolates sharing the RateLimiter namespace (worker "b" binds the
// class of worker "a"), and the CONFIG namespace.
import { describe, test, before, after } from "node:test";
import assert from "node:assert/strict";
import { Miniflare } from "miniflare";
import { startOrigin, putConfig, sleep, ROOT, SCRIPT } from "./support/harness.mjs";
import { rlConfig } from "./ratelimit-helpers.mjs";

function gatewayWorker(name, durableObjects) {
  return {
    name,
    modules: true,
    scriptPath: SCRIPT,
    modulesRoot: ROOT,
    modulesRules: [{ type: "CompiledWasm", include: ["**/*.wasm"], fallthrough: true }],
    kvNamespaces: { CONFIG: "CONFIG" },
    bindings: { CONFIG_RELOAD_SECONDS: "0" },
    compatibilityDate: "2026-05-01",
    durableObjects,
  };
}

async function startTwoIsolates() {
  const mf = new Miniflare({
    host: "127.0.0.1",
    port: 0,
    handleStructuredLogs: () => {},
    workers: [
      gatewayWorker("a", { RATE_LIMITER: { className: "RateLimiter", useSQLite: true } }),
      gatewayWorker("b", { RATE_LIMITER: { className: "RateLimiter", scriptName: "a" } }),
    ],
  });
  await mf.ready;
  const a = await mf.getWorker("a");
  const b = await mf.getWorker("b");
  const send = async (worker, path, ip) => {
    const res = await worker.fetch(`http://gateway.test${path}`, { headers: { "cf-connecting-ip": ip } });
    const text = await res.text();
    return { status: res.status, remaining: res.headers.get("ratelimit-remaining"), text };
  };
  return { mf, a, b, send, dispose: () => mf.dispose() };
}

/** Wait until at least `ms` are left in the current window of `windowMs` (windows are aligned on the epoch). */
async function awayFromWindowEnd(windowMs, ms) {
  const left = windowMs - (Date.now() % windowMs);
  if (left < ms) await sleep(left + 20);
}

describe("permit leases across isolates", () => {
  let origin, gw;
  before(async () => {
    origin = await startOrigin();
    gw = await startTwoIsolates();
  });
  after(async () => {
    await gw?.dispose();
    await origin?.close();
  });

  const configure = async (config) => {
    await putConfig(gw.mf, config);
    // Both isolates load it before the test's requests.
    await gw.send(gw.a, "/not-a-route", "192.0.2.250");
    await gw.send(gw.b, "/not-a-route", "192.0.2.250");
  };

  test("two isolates sharing the object, leases on: exactly the limit in total", async () => {
    await configure(rlConfig(origin.url, [{ name: "rate-limiting", route: "burst", config: { minute: 50, limit_by: "ip" } }], ["burst"]));
    await awayFromWindowEnd(60_000, 20_000);
    const ip = "198.51.100.70";
    const hitsBefore = origin.hits;
    const results = [];
    // Each isolate takes leases with a few sequential requests first.
    for (let i = 0; i < 3; i++) {
      results.push(await gw.send(gw.a, "/burst", ip));
      results.push(await gw.send(gw.b, "/burst", ip));
    }
    // Then both burst at once.
    results.push(
      ...(await Promise.all([
        ...Array.from({ length: 100 }, () => gw.send(gw.a, "/burst", ip)),
        ...Array.from({ length: 100 }, () => gw.send(gw.b, "/burst", ip)),
      ])),
    );
    // And a few more each: any permit still held by an isolate is spent, none beyond the limit.
    for (let i = 0; i < 5; i++) {
      results.push(await gw.send(gw.a, "/burst", ip));
      results.push(await gw.send(gw.b, "/burst", ip));
    }
    const ok = results.filter((r) => r.status === 200);
    assert.equal(ok.length, 50, `admitted ${ok.length}`);
    assert.equal(origin.hits - hitsBefore, 50, "only admitted requests reach the origin");
    for (const r of results) {
      assert.ok(r.status === 200 || r.status === 429, `${r.status} ${r.text}`);
      const remaining = Number(r.remaining);
      assert.ok(remaining >= 0 && remaining <= 49, `RateLimit-Remaining ${r.remaining}`);
    }
  });

  test("a lease held by an isolate that stops sending only under-admits, and is spent when it comes back", async () => {
    await configure(rlConfig(origin.url, [{ name: "rate-limiting", route: "held", config: { hour: 40, limit_by: "ip" } }], ["held"]));
    const ip = "198.51.100.71";
    let fromA = 0;
    for (let i = 0; i < 4; i++) fromA += (await gw.send(gw.a, "/held", ip)).status === 200;
    assert.equal(fromA, 4);
    // A goes quiet (as an evicted isolate would) with whatever permits it holds. B gets the rest but them.
    let fromB = 0;
    for (let i = 0; i < 60; i++) fromB += (await gw.send(gw.b, "/held", ip)).status === 200;
    const left = 40 - fromA;
    // A lease is at most half of what remained when granted: B gets at least the other half.
    assert.ok(fromB <= left && fromB >= Math.floor(left / 2), `B admitted ${fromB} of ${left}`);
    // A comes back: it spends what it held, and no more.
    let later = 0;
    for (let i = 0; i < 20; i++) later += (await gw.send(gw.a, "/held", ip)).status === 200;
    assert.equal(fromA + fromB + later, 40, `A ${fromA} + B ${fromB} + A again ${later}`);
  });

  test("windows roll as documented: a second window admits its limit again two seconds later", async () => {
    await configure(rlConfig(origin.url, [{ name: "rate-limiting", route: "roll", config: { second: 10, limit_by: "ip" } }], ["roll"]));
    const ip = "198.51.100.72";
    const burst = async () => {
      // Start just after a second begins, so that the burst fits in one second.
      while (Date.now() % 1000 > 50) await sleep(5);
      const start = Date.now();
      const warm = [await gw.send(gw.a, "/roll", ip), await gw.send(gw.a, "/roll", ip)];
      const rest = await Promise.all(Array.from({ length: 18 }, () => gw.send(gw.a, "/roll", ip)));
      const inOneSecond = Math.floor(Date.now() / 1000) === Math.floor(start / 1000);
      return { ok: [...warm, ...rest].filter((r) => r.status === 200).length, inOneSecond };
    };
    for (let round = 0; round < 2; round++) {
      const r = await burst();
      assert.ok(r.ok <= 10, `admitted ${r.ok} in one second`);
      if (r.inOneSecond) assert.equal(r.ok, 10, "the whole limit within the second");
      // Two seconds on, the window and the previous one are new.
      await sleep(2000 - (Date.now() % 1000));
    }
  });
});

// An object that grants one lease of 5 permits on its first call, then fails on every call.
const FLAKY_WORKER = `
export class Flaky {
  constructor() { this.calls = 0; }
  async fetch() {
    this.calls++;
    if (this.calls === 1) {
      return Response.json({
        allowed: true,
        windows: [{ window: "minute", limit: 100, remaining: 90, reset_ms: 30000 }],
        lease: { id: 1, permits: 5, ttl_ms: 10000 },
      });
    }
    throw new Error("counter exploded");
  }
}
export default { fetch() { return new Response("flaky"); } };
`;

describe("fault tolerance with leases in hand", () => {
  let origin, mf, logs;
  before(async () => {
    origin = await startOrigin();
    logs = [];
    mf = new Miniflare({
      host: "127.0.0.1",
      port: 0,
      handleStructuredLogs: (entry) => {
        try {
          logs.push(JSON.parse(entry.message));
        } catch {
          // not a JSON line
        }
      },
      workers: [
        gatewayWorker("edgegate", { RATE_LIMITER: { className: "Flaky", scriptName: "flaky" } }),
        { name: "flaky", modules: true, script: FLAKY_WORKER, compatibilityDate: "2026-05-01", durableObjects: { FLAKY: "Flaky" } },
      ],
    });
    await mf.ready;
  });
  after(async () => {
    await mf?.dispose();
    await origin?.close();
  });

  test("requests a lease covers pass while the object is down; then fault_tolerant applies as documented", async () => {
    const config = (extra) => ({ minute: 100, limit_by: "ip", timeout_ms: 500, ...extra });
    await putConfig(
      mf,
      rlConfig(origin.url, [
        { name: "rate-limiting", route: "on", config: config({}) },
        { name: "rate-limiting", route: "off", config: config({ fault_tolerant: false }) },
      ], ["on", "off"]),
    );
    const worker = await mf.getWorker("edgegate");
    const get = async (path) =>
      (await worker.fetch(`http://gateway.test${path}`, { headers: { "cf-connecting-ip": "192.0.2.80" } })).status;
    const on = [];
    const off = [];
    for (let i = 0; i < 7; i++) {
      on.push(await get("/on"));
      off.push(await get("/off"));
    }
    // The first call grants 5 permits; the 5 next requests spend them without the object; the 7th
    // finds no lease and meets the failing object.
    assert.deepEqual(on, [200, 200, 200, 200, 200, 200, 200]);
    assert.deepEqual(off, [200, 200, 200, 200, 200, 200, 503]);
    await sleep(200);
    const unavailable = logs.filter((l) => l?.event === "ratelimit_unavailable");
    const checks = unavailable.filter((l) => l.op === "check");
    assert.deepEqual(checks.map((l) => l.fault_tolerant).sort(), [false, true], JSON.stringify(unavailable));
    assert.ok(unavailable.some((l) => l.op === "lease"), "the failed background renewal is logged");
  });
});
