// Miss coalescing (proxy-cache `cache_lock`, docs/caching.md "Concurrent misses") under Miniflare: one
// isolate serves every request, so concurrent misses for one key meet in its lock table. The origin on
// 127.0.0.1 counts its calls per path and holds its answers back until the test lets them go, so the
// requests really overlap; no assertion depends on timing beyond that.
import { describe, test, before, after } from "node:test";
import assert from "node:assert/strict";
import { startGateway, startOrigin, request, streamRequest, sleep, waitFor } from "./support/harness.mjs";

// cache.put runs in waitUntil after the client got its response: give it a moment before the next request.
const settle = () => sleep(200);

describe("proxy-cache cache_lock", () => {
  let gw;
  let origin;
  const gates = new Map(); // path -> { open, promise }
  const gate = (p) => {
    if (!gates.has(p)) {
      let open;
      const promise = new Promise((r) => (open = r));
      gates.set(p, { open, promise });
    }
    return gates.get(p);
  };
  const calls = (p) => origin.requests.filter((r) => new URL(r.url, "http://o").pathname === p).length;
  const get = (p, opts = {}) => request(gw.at(p), { timeoutMs: 60_000, ...opts });
  const xcs = (res) => res.headers["x-cache-status"];
  const cs = (res) => res.headers["cache-status"];

  before(async () => {
    origin = await startOrigin(async (req, res) => {
      const p = new URL(req.url, "http://o").pathname;
      const n = calls(p) - 1; // this call is already recorded
      if (p.startsWith("/lock/stream")) {
        // Headers and a first part now, the rest when the test opens the gate.
        res.writeHead(200, { "content-type": "application/json" });
        res.write(`{"n": ${n}, "pad": "`);
        await gate(p).promise;
        return res.end(`${"x".repeat(64 * 1024)}"}`);
      }
      if (p.startsWith("/slowlock")) {
        await sleep(2500);
      } else if (p.startsWith("/lock/no-store")) {
        // The first call takes a while, so that the others arrive while it is under way.
        if (n === 0) await sleep(1000);
      } else if (p.startsWith("/nolock")) {
        // Answer once all five concurrent misses have arrived (or after a while).
        await waitFor(() => calls(p) >= 5, { timeoutMs: 4000 }).catch(() => {});
      }
      const headers = { "content-type": "application/json" };
      if (p.startsWith("/lock/no-store")) headers["cache-control"] = "no-store";
      res.writeHead(200, headers);
      res.end(JSON.stringify({ n }));
    });
    const route = (name, prefix) => ({ name, service: "origin", paths: [prefix], strip_path: false });
    gw = await startGateway({
      config: {
        format_version: 1,
        services: [{ name: "origin", url: origin.url }],
        routes: [route("lock", "/lock"), route("slow", "/slowlock"), route("nolock", "/nolock")],
        plugins: [
          { name: "proxy-cache", route: "lock", config: { cache_lock_timeout: 60 } },
          { name: "proxy-cache", route: "slow", config: { cache_lock_timeout: 0.5, cache_lock_age: 60 } },
          { name: "proxy-cache", route: "nolock", config: { cache_lock: false } },
        ],
      },
    });
  });

  after(async () => {
    for (const g of gates.values()) g.open();
    await gw?.dispose();
    await origin?.close();
  });

  test("20 concurrent misses: one origin call, the first streams, the others get the stored copy as Hit", async () => {
    const p = "/lock/stream";
    // The first miss: its headers arrive while the origin is still holding the rest of the body.
    const first = await streamRequest(gw.at(p), { timeoutMs: 60_000 });
    assert.equal(first.statusCode, 200);
    assert.equal(first.headers["x-cache-status"], "Miss");
    assert.match(first.headers["cache-status"], /^edgegate; fwd=uri-miss; fwd-status=200; stored; ttl=300$/);
    const firstBody = (async () => {
      const chunks = [];
      for await (const c of first) chunks.push(c);
      return Buffer.concat(chunks).toString("utf8");
    })();
    // 19 more misses for the same key while the first is under way.
    const others = Array.from({ length: 19 }, () => get(p));
    await sleep(500);
    gate(p).open();
    const answers = await Promise.all(others);
    const text = await firstBody;
    assert.equal(calls(p), 1, "one origin call for 20 concurrent misses");
    assert.equal(JSON.parse(text).n, 0);
    for (const a of answers) {
      assert.equal(a.status, 200);
      assert.equal(a.text, text, "every client gets the same answer");
      assert.equal(xcs(a), "Hit");
      // A waiter: served what the first miss stored. (Under heavy load a request may arrive only
      // after the store finished: then it is a plain hit.)
      assert.match(cs(a), /^edgegate; (fwd=uri-miss; collapsed|hit); ttl=(300|299)$/);
      assert.match(a.headers.age, /^\d+$/);
    }
    assert.ok(
      answers.some((a) => cs(a).includes("collapsed")),
      "at least one request waited for the first miss",
    );
  });

  test("a non-cacheable answer is not shared: the waiters go to the origin themselves", async () => {
    const p = "/lock/no-store";
    const answers = await Promise.all(Array.from({ length: 5 }, () => get(p)));
    assert.equal(calls(p), 5);
    const ns = answers.map((a) => a.json().n).sort();
    assert.deepEqual(ns, [0, 1, 2, 3, 4], "each client got its own origin answer");
    for (const a of answers) {
      assert.equal(xcs(a), "Bypass");
      assert.match(cs(a), /^edgegate; fwd=uri-miss; fwd-status=200(; collapsed=\?0)?; detail="no-store"$/);
    }
    // Four waited for the first and were then sent to the origin; unless the machine is so slow that
    // the origin's wait for all five ran out, at least one of them shows it.
    assert.ok(answers.some((a) => cs(a).includes("collapsed=?0")));
  });

  test("past cache_lock_timeout the waiters go to the origin themselves and do not store", async () => {
    const p = "/slowlock/a";
    const lead = get(p);
    await waitFor(() => calls(p) === 1, { timeoutMs: 10_000, what: "the first miss reaching the origin" });
    const waiters = await Promise.all(Array.from({ length: 4 }, () => get(p)));
    const first = await lead;
    assert.equal(xcs(first), "Miss");
    assert.match(cs(first), /; stored; ttl=300$/);
    assert.equal(first.json().n, 0);
    const timedOut = waiters.filter((a) => cs(a).includes("lock-timeout"));
    assert.ok(timedOut.length >= 1, "the waiters gave up after 0.5 s");
    for (const a of timedOut) {
      assert.equal(xcs(a), "Miss");
      assert.equal(cs(a), 'edgegate; fwd=uri-miss; fwd-status=200; collapsed=?0; detail="lock-timeout"');
      assert.notEqual(a.json().n, 0, "answered by its own origin call");
    }
    assert.equal(calls(p), 1 + timedOut.length);
    await settle();
    // What is stored is the first miss's answer: the late answers of the waiters were not stored.
    const after = await get(p);
    assert.equal(xcs(after), "Hit");
    assert.equal(after.json().n, 0);
    assert.equal(calls(p), 1 + timedOut.length);
  });

  test("cache_lock: false sends every concurrent miss to the origin", async () => {
    const p = "/nolock/a";
    const answers = await Promise.all(Array.from({ length: 5 }, () => get(p)));
    assert.equal(calls(p), 5);
    for (const a of answers) assert.equal(xcs(a), "Miss");
    await settle();
    assert.equal(xcs(await get(p)), "Hit");
    assert.equal(calls(p), 5);
  });
});
