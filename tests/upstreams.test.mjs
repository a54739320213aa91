// Upstreams (docs/upstreams.md): several targets per service, consistent hashing, passive health
// checks, retries and traffic splits across services, seen from a client. The configurations are the
// examples of docs/upstreams.md, with the test origins' addresses.
import { describe, test, before, after } from "node:test";
import assert from "node:assert/strict";
import { startGateway, request, streamRequest, closedPort, sleep, waitFor } from "./support/harness.mjs";
import { startNamedOrigin, tally } from "./support/upstream-origins.mjs";

/** `n` GET requests to `path` (`headers(i)` per request), `concurrency` at a time. */
async function many(gw, path, n, { headers = () => ({}), concurrency = 8, method = "GET", body } = {}) {
  const out = new Array(n);
  let next = 0;
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (next < n) {
        const i = next++;
        out[i] = await request(gw.at(path), { method, headers: headers(i), body });
      }
    }),
  );
  return out;
}

function config(services, routes) {
  const methods = ["GET", "HEAD", "POST", "PUT", "DELETE"];
  return { format_version: 1, services, routes: routes ?? [{ name: "r", service: services[0].name, paths: ["/"], methods }] };
}

/**
 * Push a configuration and wait until the gateway serves it: requests already under way may still be
 * served by the previous version. The probe (OPTIONS, which the test routes refuse with 405 or 404)
 * never reaches an origin, so it changes no balancing or health state.
 */
async function putAndWait(gw, cfg) {
  const version = await gw.putConfig(cfg);
  await waitFor(
    async () => {
      await request(gw.at("/__probe"), { method: "OPTIONS" });
      return gw.logs.some((l) => l.json?.event === "request" && l.json.path === "/__probe" && l.json.config_version === version);
    },
    { what: `version ${version} in service` },
  );
}

function assertProblem(res, status, code) {
  assert.equal(res.status, status, res.text);
  assert.match(res.headers["content-type"] ?? "", /^application\/problem\+json/);
  const p = JSON.parse(res.text);
  assert.equal(p.code, code, res.text);
  assert.equal(p.status, status);
  return p;
}

describe("upstreams", () => {
  let gw;
  const origins = {};
  before(async () => {
    gw = await startGateway();
    for (const name of ["a", "b", "c", "d"]) origins[name] = await startNamedOrigin(name);
  });
  after(async () => {
    await gw?.dispose();
    for (const o of Object.values(origins)) await o.close();
  });
  const reset = () => {
    for (const o of Object.values(origins)) {
      o.state.mode = "ok";
      o.requests.length = 0;
    }
  };

  test("weighted round-robin: 1,000 requests follow the weights within 5%", async () => {
    reset();
    await putAndWait(gw, 
      config([
        {
          name: "api",
          targets: [
            { url: origins.a.url, weight: 300 },
            { url: origins.b.url, weight: 100 },
            { url: origins.c.url, weight: 0 },
          ],
        },
      ]),
    );
    const responses = await many(gw, "/x", 1000);
    assert.ok(responses.every((r) => r.status === 200));
    const counts = tally(responses);
    assert.ok(Math.abs(counts.a - 750) <= 50, JSON.stringify(counts));
    assert.ok(Math.abs(counts.b - 250) <= 50, JSON.stringify(counts));
    assert.equal(counts.c, undefined, "weight 0 gets nothing");
    // The upstream URL keeps the path and query; the service's base path is shared by all targets.
    const one = await request(gw.at("/p/q?x=1"));
    assert.equal(one.json().url, "/p/q?x=1");
  });

  test("consistent hashing on a header: sticky, and adding a target moves only about its share", async () => {
    reset();
    const hashed = (targets) =>
      config([{ name: "api", targets, algorithm: "consistent-hashing", hash_on: "header", hash_on_header: "x-user", hash_fallback: "ip" }]);
    const three = [origins.a, origins.b, origins.c].map((o) => ({ url: o.url, weight: 100 }));
    await putAndWait(gw, hashed(three));
    const users = 300;
    const who = (i) => ({ "x-user": `user-${i % users}` });
    const first = await many(gw, "/s", users * 2, { headers: who });
    const placed = new Map();
    for (let i = 0; i < first.length; i++) {
      const u = i % users;
      const o = first[i].headers["x-origin"];
      if (placed.has(u)) assert.equal(placed.get(u), o, `user ${u} stays on one target`);
      placed.set(u, o);
    }
    const spread = tally(first);
    for (const k of ["a", "b", "c"]) assert.ok(spread[k] > 100, JSON.stringify(spread));

    await putAndWait(gw, hashed([...three, { url: origins.d.url, weight: 100 }]));
    const second = await many(gw, "/s", users, { headers: who });
    let moved = 0;
    for (let i = 0; i < users; i++) {
      const o = second[i].headers["x-origin"];
      if (o !== placed.get(i)) {
        moved++;
        assert.equal(o, "d", "a user only ever moves to the new target");
      }
    }
    // Ideal: a quarter of the users (75); a ring-less modulo hash would move three quarters.
    assert.ok(moved > 40 && moved < 115, `moved ${moved} of ${users}`);
  });

  test("least-connections sends new requests to the target with fewer in flight", async () => {
    reset();
    origins.a.state.mode = "slow";
    origins.a.state.ms = 400;
    await putAndWait(gw, 
      config([{ name: "api", algorithm: "least-connections", targets: [{ url: origins.a.url }, { url: origins.b.url }] }]),
    );
    // 20 requests, 4 at a time: the slow target holds its request while the fast one serves the rest.
    const responses = await many(gw, "/l", 20, { concurrency: 4 });
    const counts = tally(responses);
    assert.ok(counts.b >= 14, JSON.stringify(counts));
  });

  test("passive health: the breaker opens, half-opens after the cool-down and closes", async () => {
    reset();
    origins.b.state.mode = "status";
    origins.b.state.status = 500;
    await putAndWait(gw, 
      config([
        {
          name: "api",
          targets: [{ url: origins.a.url }, { url: origins.b.url }],
          healthchecks: {
            passive: {
              unhealthy: { http_failures: 2, http_statuses: [500, 503] },
              healthy: { successes: 1 },
              window_ms: 10000,
              cooldown_ms: 1000,
            },
          },
        },
      ]),
    );
    // Round-robin: b answers 500 twice (passed to the client), then is out.
    const early = [];
    for (let i = 0; i < 4; i++) early.push(await request(gw.at("/h")));
    assert.deepEqual(early.map((r) => r.status).sort(), [200, 200, 500, 500]);
    const out = [];
    for (let i = 0; i < 10; i++) out.push(await request(gw.at("/h")));
    assert.deepEqual(tally(out), { a: 10 }, "b gets nothing while open");
    assert.ok(gw.logs.some((l) => l.json?.event === "upstream_health" && l.json.state === "unhealthy" && l.json.target === origins.b.url));
    // After the cool-down one trial request reaches b; it is healthy again, and traffic is shared.
    origins.b.state.mode = "ok";
    await sleep(1100);
    const later = [];
    for (let i = 0; i < 10; i++) later.push(await request(gw.at("/h")));
    const counts = tally(later);
    assert.ok(counts.b >= 4, JSON.stringify(counts));
    assert.ok(later.every((r) => r.status === 200));
    await waitFor(() => gw.logs.some((l) => l.json?.event === "upstream_health" && l.json.state === "healthy"), { what: "healthy log line" });
  });

  test("a failed trial opens the breaker again; all targets out is 503 no_healthy_upstream", async () => {
    reset();
    const port = await closedPort();
    await putAndWait(gw, 
      config([
        {
          name: "api",
          url: `http://127.0.0.1:${port}`,
          healthchecks: { passive: { unhealthy: { tcp_failures: 1 }, cooldown_ms: 500 } },
        },
      ]),
    );
    const first = await request(gw.at("/n"));
    assertProblem(first, 502, "upstream_unreachable");
    const out = await request(gw.at("/n"));
    const p = assertProblem(out, 503, "no_healthy_upstream");
    assert.match(p.detail, /service "api"/);
    // Retry-After: the seconds until the cool-down (500 ms) ends, rounded up.
    assert.equal(out.headers["retry-after"], "1");
    // After the cool-down a trial goes (and fails: 502), then the target is out again.
    await sleep(600);
    assertProblem(await request(gw.at("/n")), 502, "upstream_unreachable");
    assertProblem(await request(gw.at("/n")), 503, "no_healthy_upstream");
  });
});

describe("retries", () => {
  let gw;
  let good;
  let flaky;
  let deadPort;
  before(async () => {
    gw = await startGateway();
    good = await startNamedOrigin("good");
    flaky = await startNamedOrigin("flaky");
    deadPort = await closedPort();
  });
  after(async () => {
    await gw?.dispose();
    await good?.close();
    await flaky?.close();
  });
  const reset = () => {
    for (const o of [good, flaky]) {
      o.state.mode = "ok";
      o.requests.length = 0;
    }
  };
  const withDead = (extra = {}) =>
    config([{ name: "api", targets: [{ url: `http://127.0.0.1:${deadPort}` }, { url: good.url }], ...extra }]);

  test("by default a connection failure is retried once, on another target, for idempotent methods", async () => {
    reset();
    await putAndWait(gw, withDead());
    const responses = await many(gw, "/r", 20, { concurrency: 1 });
    assert.ok(responses.every((r) => r.status === 200), responses.map((r) => r.status).join());
    assert.equal(good.hits, 20);
    // A DELETE is idempotent too; a POST is not retried: the attempts on the dead target fail.
    assert.equal((await request(gw.at("/r"), { method: "DELETE" })).status, 200);
    const posts = [];
    for (let i = 0; i < 4; i++) posts.push(await request(gw.at("/r"), { method: "POST", body: "hello" }));
    assert.deepEqual(posts.map((r) => r.status).sort(), [200, 200, 502, 502]);
  });

  test("retry_non_idempotent retries a POST, sending its (kept) body again", async () => {
    reset();
    await putAndWait(gw, withDead({ retry_non_idempotent: true }));
    for (let i = 0; i < 4; i++) {
      const res = await request(gw.at("/r"), { method: "POST", body: `payload-${i}`, headers: { "content-type": "text/plain" } });
      assert.equal(res.status, 200);
      assert.equal(res.json().body, `payload-${i}`);
    }
    assert.equal(good.hits, 4);
  });

  test("a streamed request body (unknown length) is never retried", async () => {
    reset();
    await putAndWait(gw, withDead({ retry_non_idempotent: true }));
    async function* chunks() {
      yield "part-1,";
      yield "part-2";
    }
    const statuses = [];
    for (let i = 0; i < 4; i++) statuses.push((await request(gw.at("/r"), { method: "PUT", body: chunks() })).status);
    assert.deepEqual(statuses.sort(), [200, 200, 502, 502]);
  });

  test("retries: 0 turns retries off", async () => {
    reset();
    await putAndWait(gw, withDead({ retries: 0 }));
    const statuses = [];
    for (let i = 0; i < 4; i++) statuses.push((await request(gw.at("/r"))).status);
    assert.deepEqual(statuses.sort(), [200, 200, 502, 502]);
  });

  test("retry_on a status and timeout: the next target answers", async () => {
    reset();
    flaky.state.mode = "status";
    flaky.state.status = 503;
    await putAndWait(gw, 
      config([{ name: "api", targets: [{ url: flaky.url }, { url: good.url }], retries: 2, retry_on: ["connect-failure", "timeout", 503] }]),
    );
    const responses = await many(gw, "/s", 10, { concurrency: 1 });
    assert.ok(responses.every((r) => r.status === 200 && r.headers["x-origin"] === "good"));
    assert.ok(flaky.hits >= 4, `flaky hits ${flaky.hits}`);
    // A timeout is retried when listed.
    reset();
    flaky.state.mode = "slow";
    flaky.state.ms = 2000;
    await putAndWait(gw, 
      config([{ name: "api", targets: [{ url: flaky.url }, { url: good.url }], timeout_ms: 300, retry_on: ["timeout"] }]),
    );
    for (let i = 0; i < 2; i++) {
      const res = await request(gw.at("/t"));
      assert.equal(res.status, 200);
      assert.equal(res.headers["x-origin"], "good");
    }
  });

  test("no retry once the response has started: a cut body stays cut", async () => {
    reset();
    flaky.state.mode = "cut";
    await putAndWait(gw, 
      config([{ name: "api", url: flaky.url, retries: 3, retry_on: ["connect-failure", "timeout", 500, 502] }]),
    );
    const res = await streamRequest(gw.at("/c"));
    const status = res.statusCode;
    let text = "";
    try {
      for await (const chunk of res) text += chunk;
    } catch {
      // the connection ended before the announced length: what a client of a cut origin sees
    }
    assert.equal(status, 200);
    assert.ok(text.length < 1000, "the body is not complete");
    await sleep(100);
    assert.equal(flaky.hits, 1, "the origin got one request");
  });
});

describe("traffic split across services", () => {
  let gw;
  let v1;
  let v2;
  before(async () => {
    gw = await startGateway();
    v1 = await startNamedOrigin("v1");
    v2 = await startNamedOrigin("v2");
  });
  after(async () => {
    await gw?.dispose();
    await v1?.close();
    await v2?.close();
  });

  test("services: [{name, weight}] splits a route's requests by weight", async () => {
    await putAndWait(gw, {
      format_version: 1,
      services: [
        { name: "checkout-v1", url: `${v1.url}/v1` },
        { name: "checkout-v2", url: `${v2.url}/v2` },
      ],
      routes: [
        {
          name: "checkout",
          paths: ["/checkout"],
          services: [
            { name: "checkout-v1", weight: 90 },
            { name: "checkout-v2", weight: 10 },
          ],
        },
      ],
    });
    const responses = await many(gw, "/checkout/cart?id=7", 1000);
    const counts = tally(responses);
    assert.ok(Math.abs(counts.v2 - 100) <= 50, JSON.stringify(counts));
    // Each service's own base path is used.
    const byOrigin = Object.fromEntries(responses.slice(0, 50).map((r) => [r.headers["x-origin"], r.json().url]));
    if (byOrigin.v1) assert.equal(byOrigin.v1, "/v1/cart?id=7");
    if (byOrigin.v2) assert.equal(byOrigin.v2, "/v2/cart?id=7");
    // The access log names the service that served the request.
    await waitFor(() => gw.logs.some((l) => l.json?.event === "request" && l.json.service === "checkout-v2"), { what: "log" });
  });

  test("hash_on: a client stays on one service", async () => {
    await putAndWait(gw, {
      format_version: 1,
      services: [
        { name: "checkout-v1", url: v1.url },
        { name: "checkout-v2", url: v2.url },
      ],
      routes: [
        {
          name: "checkout",
          paths: ["/checkout"],
          services: [
            { name: "checkout-v1", weight: 80 },
            { name: "checkout-v2", weight: 20 },
          ],
          hash_on: "cookie",
          hash_on_cookie: "session",
        },
      ],
    });
    const users = 200;
    const responses = await many(gw, "/checkout", users * 3, { headers: (i) => ({ cookie: `theme=dark; session=s${i % users}` }) });
    const seen = new Map();
    for (let i = 0; i < responses.length; i++) {
      const o = responses[i].headers["x-origin"];
      const u = i % users;
      if (seen.has(u)) assert.equal(seen.get(u), o, `session s${u} sticks`);
      seen.set(u, o);
    }
    const onV2 = [...seen.values()].filter((o) => o === "v2").length;
    assert.ok(onV2 > 15 && onV2 < 70, `v2 got ${onV2} of ${users} sessions`);
  });
});
