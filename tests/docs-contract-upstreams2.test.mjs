// The docs as a contract, second pass over docs/upstreams.md: each precise statement of the page (and
// each example JSON) checked from outside, with several origins on 127.0.0.1 that answer, fail, hang or
// drop as the request's query asks. One gateway for most of the file; every test uses service names of
// its own, so that no balancing or health state carries over from another test.
import { describe, test, before, after } from "node:test";
import assert from "node:assert/strict";
import { startGateway, startOrigin, request, streamRequest, closedPort, sleep, waitFor, problemOf, putAndWait, rejected } from "./support/harness.mjs";

const METHODS = ["GET", "HEAD", "POST", "PUT", "DELETE", "PATCH"];

/**
 * An origin named `name`: 200 `{"origin": name, "url", "method", "body"}` with `x-origin: name`, unless the
 * query says otherwise for it (`only=<name>` limits the directives to that origin):
 * `status=N` answers N; `delay=ms` waits first; `drop=1` closes the connection without an answer;
 * `stream=ms` sends the headers at once and the body over `ms`; `setcookie=1` sets a cookie of its own;
 * `flip=1` answers 503 to every other request it gets (1st, 3rd, ...).
 */
async function namedOrigin(name) {
  let flips = 0;
  const o = await startOrigin(async (req, res, record) => {
    const q = new URL(record.url, "http://x").searchParams;
    const mine = !q.get("only") || q.get("only").split(",").includes(name);
    const body = JSON.stringify({ origin: name, url: record.url, method: record.method, body: record.body.toString("utf8") });
    const headers = { "content-type": "application/json", "x-origin": name };
    if (mine && q.get("setcookie")) headers["set-cookie"] = "origin-own=1; Path=/";
    if (mine && q.get("cors")) {
      Object.assign(headers, {
        "access-control-allow-origin": "https://set-by-origin.example",
        "access-control-allow-credentials": "true",
        "access-control-expose-headers": "X-From-Origin",
        "access-control-max-age": "5",
        vary: "Accept-Encoding",
      });
    }
    if (mine && q.get("delay")) await sleep(Number(q.get("delay")));
    if (mine && q.get("drop")) {
      req.socket.destroy();
      return;
    }
    if (mine && q.get("flip") && flips++ % 2 === 0) {
      res.writeHead(503, headers);
      res.end(body);
      return;
    }
    if (mine && q.get("stream")) {
      res.writeHead(200, { "content-type": "text/plain", "x-origin": name });
      res.write("start,");
      await sleep(Number(q.get("stream")));
      res.end("end");
      return;
    }
    res.writeHead(mine && q.get("status") ? Number(q.get("status")) : 200, headers);
    res.end(body);
  });
  o.name = name;
  return o;
}

let serial = 0;
/** A configuration with one route `/` (and `/__probe`'s 405) to service(s) `services`, named afresh. */
function config(services, { routes, plugins } = {}) {
  const tag = ++serial;
  const named = services.map((s) => ({ ...s, name: `${s.name ?? "api"}-${tag}` }));
  const doc = {
    format_version: 1,
    services: named,
    routes: routes ? routes(named.map((s) => s.name)) : [{ name: "r", service: named[0].name, paths: ["/"], methods: METHODS }],
  };
  if (plugins) doc.plugins = plugins;
  return [doc, named.map((s) => s.name)];
}

function assertProblem(res, status, code) {
  assert.equal(res.status, status, res.text);
  const p = problemOf(res);
  assert.equal(p.code, code, res.text);
  return p;
}

const originOf = (res) => res.headers["x-origin"] ?? `status ${res.status}`;
const counts = (list) => list.reduce((m, k) => ((m[k] = (m[k] ?? 0) + 1), m), {});

async function seq(gw, path, n, headers = () => ({}), opts = {}) {
  const out = [];
  for (let i = 0; i < n; i++) out.push(await request(gw.at(path), { headers: headers(i), ...opts }));
  return out;
}

async function parallel(gw, path, n, headers = () => ({}), concurrency = 8) {
  const out = new Array(n);
  let next = 0;
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (next < n) {
        const i = next++;
        out[i] = await request(gw.at(path), { headers: headers(i) });
      }
    }),
  );
  return out;
}

/** The access log line of the request with this X-Request-Id. */
async function logOf(gw, id) {
  const line = await waitFor(() => gw.logs.find((l) => l.json?.event === "request" && l.json.request_id === id), { what: `log of ${id}` });
  return line.json;
}

// With CONFIG_RELOAD_SECONDS 0 every request first checks the configuration pointer and takes the
// asynchronous path; in production (30 s by default) most requests take the synchronous one (src/lib.rs,
// `fast`), which has retry code of its own. Every statement is checked on both.
for (const reload of ["0", "1"]) describe(`docs/upstreams.md, second audit (CONFIG_RELOAD_SECONDS ${reload})`, { timeout: 300_000 }, () => {
  let gw, a, b, c, d, dead, dead2;
  const o = {};
  before(async () => {
    gw = await startGateway({ bindings: { CONFIG_RELOAD_SECONDS: reload } });
    [a, b, c, d] = await Promise.all(["a", "b", "c", "d"].map(namedOrigin));
    Object.assign(o, { a, b, c, d });
    dead = `http://127.0.0.1:${await closedPort()}`;
    dead2 = `http://127.0.0.1:${await closedPort()}`;
  });
  after(async () => {
    await gw?.dispose();
    for (const x of [a, b, c, d]) await x?.close();
  });

  describe("several targets", () => {
    test("the example (300/100/0): every run of 400 requests is exactly 300/100, interleaved, none to weight 0", async () => {
      const [doc] = config([
        { targets: [{ url: `${a.url}/base`, weight: 300 }, { url: `${b.url}/base`, weight: 100 }, { url: `${c.url}/base`, weight: 0 }] },
      ]);
      await putAndWait(gw, doc);
      const got = (await seq(gw, "/x/y?q=1&r=2", 480)).map(originOf);
      for (const start of [0, 37, 80]) {
        assert.deepEqual(counts(got.slice(start, start + 400)), { a: 300, b: 100 }, `run from ${start}`);
      }
      assert.ok(!got.join("").includes("aaaa"), "no bursts of a");
      assert.ok(!got.join("").includes("bb"), "b is spread out");
      // The whole URL after the origin is the same for every target.
      const urls = new Set([a, b].flatMap((x) => x.requests.slice(-5).map((r) => r.url)));
      assert.deepEqual([...urls], ["/base/x/y?q=1&r=2"]);
      // The access log's `upstream` is the target's origin (no base path), `attempts` 1.
      const last = await request(gw.at("/x"), { headers: { "x-request-id": `rr-log-${serial}` } });
      const line = await logOf(gw, `rr-log-${serial}`);
      assert.equal(line.upstream, last.headers["x-origin"] === "a" ? a.url : b.url);
      assert.equal(line.attempts, 1);
    });

    test("a target's weight defaults to 100; 64 targets are accepted, 65 are not", async () => {
      const [doc] = config([{ targets: [{ url: a.url, weight: 300 }, { url: b.url }] }]);
      await putAndWait(gw, doc);
      assert.deepEqual(counts((await seq(gw, "/w", 40)).map(originOf)), { a: 30, b: 10 });
      const t = (n) => Array.from({ length: n }, (_, k) => ({ url: `http://10.0.${k >> 8}.${(k & 255) + 1}:8080` }));
      const [ok] = config([{ url: a.url }, { name: "many", targets: t(64) }]);
      await putAndWait(gw, ok);
      const [bad] = config([{ url: a.url }, { name: "many", targets: t(65) }]);
      assert.match(await rejected(gw, bad), /services\[1\]\.targets/);
      const [zero] = config([{ url: a.url }, { name: "none", targets: [] }]);
      assert.match(await rejected(gw, zero), /services\[1\]/);
    });

    test("the error examples of the page, each with its JSON path", async () => {
      const t = (n) => Array.from({ length: n }, (_, k) => ({ url: `http://10.0.0.${k + 1}:8080/base` }));
      const cases = [
        [{ targets: [{ url: "http://10.0.0.1:8080" }, { url: "http://10.0.0.2:8080", weight: 70000 }] }, "services[0].targets[1].weight: 70000 is out of range (0 to 65535)"],
        [{ targets: [{ url: "http://10.0.0.1:8080", weight: 0 }] }, "services[0].targets: at least one target needs a weight above 0"],
        [{ targets: [...t(3), { url: "http://10.0.0.9:8080/other" }] }, `services[0].targets[3].url: base path "/other" differs from targets[0]'s "/base"; the targets of a service share one base path`],
        [{ url: "http://10.0.0.1:8080", targets: t(2) }, "services[0].targets: give either `url` (one origin) or `targets` (several), not both"],
        [{ targets: t(2), algorithm: "consistent-hashing" }, "services[0].hash_on: `algorithm: consistent-hashing` needs `hash_on` (consumer, ip, header, cookie or path)"],
        [{ targets: t(2), hash_on: "ip" }, "services[0].hash_on: `hash_on` is only used with `algorithm: consistent-hashing`"],
        [{ targets: t(2), algorithm: "consistent-hashing", hash_on: "header" }, "services[0].hash_on_header: missing: `hash_on: header` needs the header's name here"],
        [{ targets: t(2), algorithm: "consistent-hashing", hash_on: "ip", hash_fallback: "ip" }, "services[0].hash_fallback: the fallback is the same as `hash_on`"],
        [{ url: "http://10.0.0.1:8080", retries: 11 }, "services[0].retries: 11 is out of range (0 to 10)"],
        [{ url: "http://10.0.0.1:8080", retry_on: [200] }, "services[0].retry_on[0]: status 200 cannot be retried on (400 to 599)"],
        [{ url: "http://10.0.0.1:8080", healthchecks: { passive: { unhealthy: { http_failures: 1, http_statuses: [42] } } } }, "services[0].healthchecks.passive.unhealthy.http_statuses[0]: 42 is not an HTTP status (100 to 999)"],
        [{ url: "http://10.0.0.1:8080", healthchecks: { active: {} } }, "services[0].healthchecks.active: unknown field `active`, expected `passive`"],
        // The table's other rules.
        [{ targets: [{ url: "http://10.0.0.1:8080" }, { url: "http://10.0.0.1:8080/" }] }, "services[0].targets[1]"],
        [{ targets: t(2), algorithm: "consistent-hashing", hash_on: "header", hash_on_header: "x-a", hash_fallback: "header", hash_fallback_header: "x-a" }, "services[0].hash_fallback"],
        [{ targets: t(2), algorithm: "consistent-hashing", hash_on: "cookie", hash_on_cookie: "s", hash_fallback: "ip" }, "services[0].hash_fallback"],
        [{ targets: t(2), algorithm: "consistent-hashing", hash_on: "ip", hash_on_cookie: "s" }, "services[0].hash_on_cookie"],
        [{ url: "http://10.0.0.1:8080", retries: -1 }, "services[0].retries"],
        [{ url: "http://10.0.0.1:8080", retry_on: [600] }, "services[0].retry_on[0]"],
        [{ url: "http://10.0.0.1:8080", retry_on: [399] }, "services[0].retry_on[0]"],
        [{ url: "http://10.0.0.1:8080", healthchecks: { passive: { unhealthy: { tcp_failures: 256 } } } }, "services[0].healthchecks.passive.unhealthy.tcp_failures"],
        [{ url: "http://10.0.0.1:8080", healthchecks: { passive: { unhealthy: { timeouts: 256 } } } }, "services[0].healthchecks.passive.unhealthy.timeouts"],
        [{ url: "http://10.0.0.1:8080", healthchecks: { passive: { healthy: { successes: 256 } } } }, "services[0].healthchecks.passive.healthy.successes"],
        [{ url: "http://10.0.0.1:8080", healthchecks: { passive: { window_ms: 0 } } }, "services[0].healthchecks.passive.window_ms"],
        [{ url: "http://10.0.0.1:8080", healthchecks: { passive: { cooldown_ms: 3600001 } } }, "services[0].healthchecks.passive.cooldown_ms"],
        [{ url: "http://10.0.0.1:8080", healthchecks: { passive: { unhealthy: { http_statuses: [1000] } } } }, "services[0].healthchecks.passive.unhealthy.http_statuses[0]"],
        // Compared with Kong: refused.
        [{ targets: t(2), algorithm: "consistent-hashing", hash_on: "ip", slots: 10000 }, "slots"],
        [{ targets: t(2), algorithm: "latency" }, "services[0].algorithm"],
        [{ targets: t(2), algorithm: "sticky-sessions" }, "services[0].algorithm"],
        [{ targets: t(2), algorithm: "consistent-hashing", hash_on: "query_arg", hash_on_query_arg: "u" }, "services[0].hash_on"],
        [{ targets: t(2), algorithm: "consistent-hashing", hash_on: "uri_capture", hash_on_uri_capture: "u" }, "services[0].hash_on"],
        [{ url: "http://10.0.0.1:8080", healthchecks: { passive: { type: "http" } } }, "services[0].healthchecks.passive"],
        [{ url: "http://10.0.0.1:8080", healthchecks: { passive: { healthy: { http_statuses: [200] } } } }, "services[0].healthchecks.passive.healthy"],
        [{ url: "http://10.0.0.1:8080", healthchecks: { passive: { healthy: { successes: 0 } } } }, "services[0].healthchecks.passive.healthy.successes"],
        [{ url: "http://10.0.0.1:8080", healthchecks: { threshold: 50 } }, "services[0].healthchecks.threshold"],
        [{ targets: [{ target: "10.0.0.1:8080" }] }, "services[0].targets[0]"],
        [{ targets: t(2), algorithm: "consistent-hashing", hash_on: "cookie", hash_on_cookie: "s", hash_on_cookie_path: "/app" }, "hash_on_cookie_path"],
      ];
      // A valid version first, so that "rejected" is seen against it.
      await putAndWait(gw, config([{ url: a.url }])[0]);
      for (const [svc, expected] of cases) {
        const doc = { format_version: 1, services: [{ name: `bad-${++serial}`, ...svc }], routes: [] };
        doc.routes = [{ name: "r", service: doc.services[0].name, paths: ["/"], methods: METHODS }];
        const error = await rejected(gw, doc);
        assert.ok(error.includes(expected), `${JSON.stringify(svc)}:\n  ${error}\nshould include\n  ${expected}`);
      }
    });
  });

  describe("consistent hashing", () => {
    const hashed = (targets, extra = {}) => ({
      algorithm: "consistent-hashing", hash_on: "header", hash_on_header: "x-user", hash_fallback: "ip", targets, ...extra,
    });

    test("the example: the header picks the target; without it, the client address (CF-Connecting-IP) does", async () => {
      const [doc] = config([hashed([{ url: a.url }, { url: b.url }, { url: c.url }])]);
      await putAndWait(gw, doc);
      const byUser = new Map();
      for (let round = 0; round < 2; round++) {
        for (let u = 0; u < 30; u++) {
          const got = originOf(await request(gw.at("/h"), { headers: { "x-user": `u${u}`, "cf-connecting-ip": `192.0.2.${round + 1}` } }));
          if (round) assert.equal(got, byUser.get(u), `user u${u} stays, whatever the address`);
          byUser.set(u, got);
        }
      }
      assert.equal(new Set(byUser.values()).size, 3, "the users spread over the three targets");
      const byIp = new Map();
      for (let round = 0; round < 2; round++) {
        for (let k = 0; k < 30; k++) {
          const got = originOf(await request(gw.at("/h"), { headers: { "cf-connecting-ip": `198.51.100.${k}` } }));
          if (round) assert.equal(got, byIp.get(k), `address ${k} stays`);
          byIp.set(k, got);
        }
      }
      assert.equal(new Set(byIp.values()).size, 3);
    });

    test("an empty header value counts as none: the fallback is hashed", async () => {
      const [doc] = config([hashed([{ url: a.url }, { url: b.url }, { url: c.url }])]);
      await putAndWait(gw, doc);
      for (let k = 0; k < 12; k++) {
        const ip = `198.51.100.${k + 100}`;
        const none = originOf(await request(gw.at("/e"), { headers: { "cf-connecting-ip": ip } }));
        assert.equal(originOf(await request(gw.at("/e"), { headers: { "cf-connecting-ip": ip, "x-user": "" } })), none, ip);
      }
    });

    test("a value maps to the same target in another isolate (a second gateway)", async () => {
      const targets = [{ url: a.url }, { url: b.url }, { url: c.url }];
      const [doc] = config([hashed(targets)]);
      await putAndWait(gw, doc);
      const gw2 = await startGateway();
      try {
        await putAndWait(gw2, doc);
        for (let u = 0; u < 30; u++) {
          const h = { "x-user": `iso-${u}` };
          assert.equal(originOf(await request(gw2.at("/i"), { headers: h })), originOf(await request(gw.at("/i"), { headers: h })), `iso-${u}`);
        }
      } finally {
        await gw2.dispose();
      }
    });

    test("weight 0 on a target moves only the values it had", async () => {
      const users = 90;
      const who = (i) => ({ "x-user": `w0-${i}` });
      const [three] = config([hashed([{ url: a.url }, { url: b.url }, { url: c.url }], { name: "w0" })]);
      await putAndWait(gw, three);
      const before = (await parallel(gw, "/m", users, who)).map(originOf);
      const two = structuredClone(three);
      two.services[0].targets[2].weight = 0;
      two.services[0].name = `w0-${++serial}`;
      two.routes[0].service = two.services[0].name;
      await putAndWait(gw, two);
      const afterwards = (await parallel(gw, "/m", users, who)).map(originOf);
      let moved = 0;
      for (let i = 0; i < users; i++) {
        if (before[i] === "c") {
          assert.notEqual(afterwards[i], "c");
          moved++;
        } else {
          assert.equal(afterwards[i], before[i], `w0-${i} had ${before[i]}`);
        }
      }
      assert.ok(moved > 10, `c had ${moved} users`);
    });

    test("hash_on path: the path without the query picks the target", async () => {
      const [doc] = config([{ algorithm: "consistent-hashing", hash_on: "path", targets: [{ url: a.url }, { url: b.url }, { url: c.url }] }]);
      await putAndWait(gw, doc);
      const placed = new Set();
      for (let k = 0; k < 12; k++) {
        const first = originOf(await request(gw.at(`/item-${k}?v=0`)));
        for (let i = 1; i < 3; i++) assert.equal(originOf(await request(gw.at(`/item-${k}?v=${i}`))), first, `/item-${k}`);
        placed.add(first);
      }
      assert.ok(placed.size >= 2);
    });

    test("with neither value the request is balanced by weighted round-robin", async () => {
      const [doc] = config([{ algorithm: "consistent-hashing", hash_on: "header", hash_on_header: "x-user", targets: [{ url: a.url, weight: 300 }, { url: b.url, weight: 100 }] }]);
      await putAndWait(gw, doc);
      const got = (await seq(gw, "/n", 40)).map(originOf);
      assert.deepEqual(counts(got), { a: 30, b: 10 }, got.join());
    });

    test("hash_on consumer on a route without an authentication plugin: no consumer, the fallback is used", async () => {
      const [doc] = config([{ algorithm: "consistent-hashing", hash_on: "consumer", hash_fallback: "header", hash_fallback_header: "x-user", targets: [{ url: a.url }, { url: b.url }] }]);
      await putAndWait(gw, doc);
      const placed = new Set();
      for (let u = 0; u < 12; u++) {
        const h = { "x-user": `c-${u}` };
        const first = originOf(await request(gw.at("/c"), { headers: h }));
        for (let i = 0; i < 2; i++) assert.equal(originOf(await request(gw.at("/c"), { headers: h })), first);
        placed.add(first);
      }
      assert.equal(placed.size, 2);
    });

    test("hash_on cookie without the cookie: the gateway sets it (a UUID, Path=/, HttpOnly), as Kong; it then sticks", async () => {
      const [doc] = config([{ algorithm: "consistent-hashing", hash_on: "cookie", hash_on_cookie: "sid", targets: [{ url: a.url }, { url: b.url }, { url: c.url }] }]);
      await putAndWait(gw, doc);
      const values = new Set();
      const placed = new Set();
      for (let k = 0; k < 12; k++) {
        const first = await request(gw.at("/k"));
        assert.equal(first.status, 200);
        const set = first.headers["set-cookie"];
        assert.equal(set?.length, 1, JSON.stringify(set));
        const m = /^sid=([0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}); Path=\/; HttpOnly$/.exec(set[0]);
        assert.ok(m, set[0]);
        values.add(m[1]);
        // The value it set is the one it hashed: the client that sends it back stays where it was.
        for (let i = 0; i < 2; i++) {
          const again = await request(gw.at("/k"), { headers: { cookie: `theme=x; sid=${m[1]}` } });
          assert.equal(originOf(again), originOf(first));
          assert.equal(again.headers["set-cookie"], undefined, "no cookie is set when the request has one");
        }
        placed.add(originOf(first));
      }
      assert.equal(values.size, 12, "each new client gets its own value");
      assert.ok(placed.size >= 2, [...placed].join());
      // The origin's own cookies are kept beside it.
      const both = await request(gw.at("/k?setcookie=1"));
      assert.equal(both.headers["set-cookie"].length, 2, JSON.stringify(both.headers["set-cookie"]));
      assert.ok(both.headers["set-cookie"].includes("origin-own=1; Path=/"));
      // A request that keeps its body for a retry, and a route with plugins, get it too.
      const [kept] = config([{ algorithm: "consistent-hashing", hash_on: "cookie", hash_on_cookie: "sid", retry_non_idempotent: true, targets: [{ url: a.url }, { url: b.url }, { url: c.url }] }], {
        routes: (n) => [{ name: "r", service: n[0], paths: ["/"], methods: METHODS }],
        plugins: [{ name: "response-transformer", route: "r", config: { add: { headers: ["x-plugin:yes"] } } }],
      });
      await putAndWait(gw, kept);
      for (const method of ["POST", "GET"]) {
        const first = await request(gw.at("/k"), { method, body: method === "POST" ? "payload" : undefined });
        assert.equal(first.status, 200);
        assert.equal(first.headers["x-plugin"], "yes");
        const value = /^sid=([0-9a-f-]{36}); Path=\/; HttpOnly$/.exec(first.headers["set-cookie"]?.[0] ?? "")?.[1];
        assert.ok(value, `${method}: ${first.headers["set-cookie"]}`);
        for (let i = 0; i < 2; i++) {
          assert.equal(originOf(await request(gw.at("/k"), { method, body: method === "POST" ? "payload" : undefined, headers: { cookie: `sid=${value}` } })), originOf(first));
        }
      }
      // An error response gets it too.
      const [deadDoc] = config([{ algorithm: "consistent-hashing", hash_on: "cookie", hash_on_cookie: "sid", targets: [{ url: dead }, { url: dead2 }] }]);
      await putAndWait(gw, deadDoc);
      for (const method of ["GET", "DELETE"]) {
        const failed = await request(gw.at("/k"), { method });
        assertProblem(failed, 502, "upstream_unreachable");
        assert.match(failed.headers["set-cookie"]?.[0] ?? "", /^sid=[0-9a-f-]{36}; Path=\/; HttpOnly$/, method);
      }
    });

    test("hash_fallback cookie: set only when hash_on has no value; a retry keeps the value it set", async () => {
      const [doc] = config([
        { algorithm: "consistent-hashing", hash_on: "header", hash_on_header: "x-user", hash_fallback: "cookie", hash_on_cookie: "sid", targets: [{ url: dead }, { url: a.url }, { url: b.url }] },
      ]);
      await putAndWait(gw, doc);
      assert.equal((await request(gw.at("/f"), { headers: { "x-user": "u1" } })).headers["set-cookie"], undefined);
      for (let k = 0; k < 10; k++) {
        const first = await request(gw.at("/f"));
        assert.equal(first.status, 200, "a connection failure is retried on another target");
        const value = /^sid=([^;]+);/.exec(first.headers["set-cookie"][0])[1];
        const again = await request(gw.at("/f"), { headers: { cookie: `sid=${value}` } });
        assert.equal(originOf(again), originOf(first), `the retry hashed the value it set (${value})`);
      }
    });

    test("a target whose breaker opens loses only the values it had; they come back after it recovers", async () => {
      const users = 45;
      const who = (i) => ({ "x-user": `br-${i}` });
      const [doc] = config([
        hashed([{ url: a.url }, { url: b.url }, { url: c.url }], {
          retries: 0,
          healthchecks: { passive: { unhealthy: { http_failures: 1 }, cooldown_ms: 60000 } },
        }),
      ]);
      await putAndWait(gw, doc);
      const before = (await seq(gw, "/br", users, who)).map(originOf);
      const onC = before.findIndex((o) => o === "c");
      assert.ok(onC >= 0, before.join());
      assert.equal((await request(gw.at("/br?status=500"), { headers: who(onC) })).status, 500);
      const afterwards = (await seq(gw, "/br", users, who)).map(originOf);
      for (let i = 0; i < users; i++) {
        if (before[i] === "c") assert.notEqual(afterwards[i], "c");
        else assert.equal(afterwards[i], before[i], `br-${i}`);
      }
    });

    test("a retry goes to the next target in the value's order (the target the value gets without the failed one)", async () => {
      const users = 40;
      const who = (i) => ({ "x-user": `next-${i}` });
      const [withDead] = config([hashed([{ url: dead }, { url: a.url }, { url: b.url }, { url: c.url }], { name: "nx" })]);
      await putAndWait(gw, withDead);
      const retried = (await seq(gw, "/r", users, who)).map(originOf);
      const without = structuredClone(withDead);
      without.services[0].targets[0].weight = 0;
      without.services[0].name = `nx-${++serial}`;
      without.routes[0].service = without.services[0].name;
      await putAndWait(gw, without);
      const order = (await seq(gw, "/r", users, who)).map(originOf);
      assert.deepEqual(retried, order);
    });
  });

  describe("least-connections", () => {
    test("fewest in flight relative to weight: 6 concurrent slow requests to weights 200/100 go 4/2", async () => {
      const [doc] = config([{ algorithm: "least-connections", targets: [{ url: a.url, weight: 200 }, { url: b.url, weight: 100 }] }]);
      await putAndWait(gw, doc);
      const got = (await parallel(gw, "/lc?delay=1500", 6, () => ({}), 6)).map(originOf);
      assert.deepEqual(counts(got), { a: 4, b: 2 }, got.join());
    });

    test("a request counts as in flight until its response headers, not while its body streams", async () => {
      const [doc] = config([{ algorithm: "least-connections", targets: [{ url: a.url }, { url: b.url }] }]);
      await putAndWait(gw, doc);
      const long = await streamRequest(gw.at("/lc?stream=1500"));
      assert.equal(long.statusCode, 200);
      const got = (await seq(gw, "/lc", 6)).map(originOf);
      for (let i = 1; i < got.length; i++) assert.notEqual(got[i], got[i - 1], `ties in turn: ${got.join()}`);
      for await (const _ of long);
    });
  });

  describe("passive health checks", () => {
    const health = (passive) => ({ healthchecks: { passive } });
    const healthLines = (service) => gw.logs.filter((l) => l.json?.event === "upstream_health" && l.json.service === service).map((l) => l.json);

    test("the example: two 503s open the breaker; the log line is exactly as shown; one success closes it", async () => {
      const [doc, [name]] = config([
        {
          targets: [{ url: a.url }, { url: b.url }],
          ...health({ unhealthy: { http_failures: 2, http_statuses: [500, 503] }, healthy: { successes: 1 }, window_ms: 10000, cooldown_ms: 1000 }),
        },
      ]);
      await putAndWait(gw, doc);
      const first = (await seq(gw, "/e?status=503&only=b", 4)).map((r) => r.status).sort();
      assert.deepEqual(first, [200, 200, 503, 503]);
      assert.deepEqual(counts((await seq(gw, "/e", 6)).map(originOf)), { a: 6 });
      assert.deepEqual(healthLines(name), [{ event: "upstream_health", service: name, target: b.url, state: "unhealthy" }]);
      await sleep(1100);
      assert.deepEqual(counts((await seq(gw, "/e", 6)).map(originOf)), { a: 3, b: 3 });
      assert.deepEqual(healthLines(name).map((l) => l.state), ["unhealthy", "healthy"]);
    });

    test("failures count within window_ms, other responses do not reset them", async () => {
      const [doc] = config([{ url: a.url, retries: 0, ...health({ unhealthy: { http_failures: 2 }, window_ms: 400, cooldown_ms: 60000 }) }]);
      await putAndWait(gw, doc);
      assert.equal((await request(gw.at("/w?status=500"))).status, 500);
      await sleep(600);
      assert.equal((await request(gw.at("/w?status=500"))).status, 500, "the first failure is out of the window");
      assert.equal((await request(gw.at("/w"))).status, 200, "one failure in the window: still in");
      assert.equal((await request(gw.at("/w"))).status, 200);
      assert.equal((await request(gw.at("/w?status=503"))).status, 503, "a second failure, two successes later");
      assertProblem(await request(gw.at("/w")), 503, "no_healthy_upstream");
    });

    test("each kind of failure is counted on its own", async () => {
      const [doc] = config([{ url: a.url, retries: 0, ...health({ unhealthy: { http_failures: 2, tcp_failures: 2 }, cooldown_ms: 60000 }) }]);
      await putAndWait(gw, doc);
      assert.equal((await request(gw.at("/k2?status=500"))).status, 500);
      assertProblem(await request(gw.at("/k2?drop=1")), 502, "upstream_unreachable");
      assert.equal((await request(gw.at("/k2"))).status, 200, "one failure of each kind: still in");
      assertProblem(await request(gw.at("/k2?drop=1")), 502, "upstream_unreachable");
      assertProblem(await request(gw.at("/k2")), 503, "no_healthy_upstream");
    });

    test("the state survives a change of other settings (retries, timeout_ms), not a change of weights", async () => {
      const svc = { name: `keep-${++serial}`, targets: [{ url: a.url }, { url: b.url }], retries: 0, ...health({ unhealthy: { http_failures: 1 }, cooldown_ms: 60000 }) };
      const doc = (s) => ({ format_version: 1, services: [s], routes: [{ name: "r", service: s.name, paths: ["/"], methods: METHODS }] });
      await putAndWait(gw, doc(svc));
      const first = (await seq(gw, "/kp?status=500&only=b", 2)).map((r) => r.status).sort();
      assert.deepEqual(first, [200, 500]);
      const hitsOfB = () => b.requests.filter((r) => r.url.startsWith("/kp")).length;
      const before = hitsOfB();
      await putAndWait(gw, doc({ ...svc, retries: 1, timeout_ms: 5000 }));
      await seq(gw, "/kp", 4);
      assert.equal(hitsOfB(), before, "b is still out");
      await putAndWait(gw, doc({ ...svc, targets: [{ url: a.url }, { url: b.url, weight: 50 }] }));
      await seq(gw, "/kp", 6);
      assert.ok(hitsOfB() > before, "new weights: the state starts again, b is in");
    });

    test("http_statuses defaults to [429, 500, 503]: a 502 is not counted", async () => {
      const [doc] = config([{ url: a.url, retries: 0, ...health({ unhealthy: { http_failures: 1 }, cooldown_ms: 60000 }) }]);
      await putAndWait(gw, doc);
      for (let i = 0; i < 3; i++) assert.equal((await request(gw.at("/d?status=502"))).headers["x-origin"], "a");
      assert.equal((await request(gw.at("/d?status=429"))).status, 429);
      assertProblem(await request(gw.at("/d")), 503, "no_healthy_upstream");
    });

    test("tcp_failures counts connections dropped before the response headers", async () => {
      const [doc] = config([{ url: a.url, retries: 0, ...health({ unhealthy: { tcp_failures: 2 }, cooldown_ms: 60000 }) }]);
      await putAndWait(gw, doc);
      assertProblem(await request(gw.at("/t?drop=1")), 502, "upstream_unreachable");
      assertProblem(await request(gw.at("/t?drop=1")), 502, "upstream_unreachable");
      const out = assertProblem(await request(gw.at("/t")), 503, "no_healthy_upstream");
      assert.ok(out.detail);
    });

    test("every threshold 0 (the default): no health checks, whatever else is set", async () => {
      const [doc] = config([{ url: a.url, retries: 0, ...health({ unhealthy: { http_statuses: [500] }, cooldown_ms: 60000 }) }]);
      await putAndWait(gw, doc);
      for (let i = 0; i < 6; i++) assert.equal((await request(gw.at("/z?status=500"))).status, 500);
      assert.equal((await request(gw.at("/z"))).status, 200);
    });

    test("Retry-After: whole seconds until the cool-down ends, rounded up; a target of weight 0 does not count", async () => {
      const [doc] = config([{ targets: [{ url: a.url }, { url: b.url, weight: 0 }], retries: 0, ...health({ unhealthy: { http_failures: 1 }, cooldown_ms: 2500 }) }]);
      await putAndWait(gw, doc);
      assert.equal((await request(gw.at("/ra?status=500"))).status, 500);
      const out = await request(gw.at("/ra"));
      assertProblem(out, 503, "no_healthy_upstream");
      assert.equal(out.headers["retry-after"], "3");
      assert.equal(b.requests.filter((r) => r.url.startsWith("/ra")).length, 0, "the origin is not contacted");
      await sleep(1700);
      const later = await request(gw.at("/ra"));
      assertProblem(later, 503, "no_healthy_upstream");
      assert.equal(later.headers["retry-after"], "1");
    });

    test("half-open: one trial request at a time; healthy.successes trials close the breaker", async () => {
      const [doc, [name]] = config([{ url: a.url, retries: 0, ...health({ unhealthy: { http_failures: 1 }, healthy: { successes: 2 }, cooldown_ms: 1000 }) }]);
      await putAndWait(gw, doc);
      assert.equal((await request(gw.at("/ho?status=500"))).status, 500);
      assertProblem(await request(gw.at("/ho")), 503, "no_healthy_upstream");
      await sleep(1100);
      // The first trial is slow: a second request meanwhile is not let through.
      const trial = request(gw.at("/ho?delay=800"));
      await sleep(150);
      assertProblem(await request(gw.at("/ho")), 503, "no_healthy_upstream");
      assert.equal((await trial).status, 200);
      assert.deepEqual(healthLines(name).map((l) => l.state), ["unhealthy"], "one success of two: not closed yet");
      assert.equal((await request(gw.at("/ho"))).status, 200);
      await waitFor(() => healthLines(name).length === 2, { what: "healthy line" });
      assert.equal(healthLines(name)[1].state, "healthy");
    });

    test("a trial still without an answer after cooldown_ms no longer holds the target: another trial goes", async () => {
      const [doc] = config([{ url: a.url, retries: 0, ...health({ unhealthy: { http_failures: 1 }, cooldown_ms: 800 }) }]);
      await putAndWait(gw, doc);
      assert.equal((await request(gw.at("/fg?status=500"))).status, 500);
      await sleep(900);
      const slowTrial = request(gw.at("/fg?delay=3000"));
      await sleep(150);
      assertProblem(await request(gw.at("/fg")), 503, "no_healthy_upstream");
      await sleep(900);
      const second = await request(gw.at("/fg"));
      assert.equal(second.status, 200, "the second trial reached the origin");
      assert.equal((await slowTrial).status, 200);
    });

    test("a trial failing in a way that is not counted (threshold 0) neither opens nor closes the breaker", async () => {
      const [doc, [name]] = config([{ url: a.url, retries: 0, ...health({ unhealthy: { http_failures: 1 }, cooldown_ms: 500 }) }]);
      await putAndWait(gw, doc);
      assert.equal((await request(gw.at("/nc?status=500"))).status, 500);
      await sleep(600);
      assertProblem(await request(gw.at("/nc?drop=1")), 502, "upstream_unreachable");
      assert.equal((await request(gw.at("/nc"))).status, 200, "the next request is a trial");
      await waitFor(() => healthLines(name).length === 2, { what: "healthy line" });
      assert.deepEqual(healthLines(name).map((l) => l.state), ["unhealthy", "healthy"]);
    });

    test("a counted failure of a trial opens the breaker for another cool-down", async () => {
      const [doc, [name]] = config([{ url: a.url, retries: 0, ...health({ unhealthy: { http_failures: 3 }, cooldown_ms: 500 }) }]);
      await putAndWait(gw, doc);
      for (let i = 0; i < 3; i++) assert.equal((await request(gw.at("/tf?status=500"))).status, 500);
      assertProblem(await request(gw.at("/tf")), 503, "no_healthy_upstream");
      await sleep(600);
      assert.equal((await request(gw.at("/tf?status=500"))).status, 500, "one failed trial (not three)");
      assertProblem(await request(gw.at("/tf")), 503, "no_healthy_upstream");
      assert.deepEqual(healthLines(name).map((l) => l.state), ["unhealthy", "unhealthy"]);
    });

    test("health state is per isolate: a new isolate starts with every target healthy", async () => {
      const [doc] = config([{ url: a.url, retries: 0, ...health({ unhealthy: { http_failures: 1 }, cooldown_ms: 60000 }) }]);
      await putAndWait(gw, doc);
      assert.equal((await request(gw.at("/iso?status=500"))).status, 500);
      assertProblem(await request(gw.at("/iso")), 503, "no_healthy_upstream");
      const gw2 = await startGateway();
      try {
        await putAndWait(gw2, doc);
        assert.equal((await request(gw2.at("/iso"))).status, 200);
      } finally {
        await gw2.dispose();
      }
    });
  });

  describe("retries", () => {
    test("the example: a 503 is retried on the other target; the log names the last target and the attempts", async () => {
      const [doc] = config([{ targets: [{ url: a.url }, { url: b.url }], retries: 2, retry_on: ["connect-failure", "timeout", 503] }]);
      await putAndWait(gw, doc);
      let retried = 0;
      for (let i = 0; i < 4; i++) {
        const id = `retry-example-${serial}-${i}`;
        const before = a.hits;
        const res = await request(gw.at("/x?status=503&only=a"), { headers: { "x-request-id": id } });
        assert.equal(res.status, 200);
        assert.equal(originOf(res), "b");
        const line = await logOf(gw, id);
        assert.equal(line.upstream, b.url);
        const triedA = a.hits - before;
        assert.equal(line.attempts, 1 + triedA, JSON.stringify(line));
        retried += triedA;
      }
      assert.ok(retried >= 1, "round-robin sent some requests to a first");
    });

    test("each retry goes to a target not yet tried", async () => {
      const [doc] = config([{ targets: [{ url: dead }, { url: dead2 }, { url: a.url }], retries: 2 }]);
      await putAndWait(gw, doc);
      for (const r of await seq(gw, "/n", 6)) assert.equal(originOf(r), "a");
      const [one] = config([{ targets: [{ url: dead }, { url: dead2 }, { url: a.url }], retries: 1 }]);
      await putAndWait(gw, one);
      const statuses = (await seq(gw, "/n", 6)).map((r) => r.status);
      assert.ok(statuses.includes(502), `with one retry, two dead targets in a row fail: ${statuses}`);
    });

    test("a service with one url retries on that origin; a status still there after the last retry is the origin's answer", async () => {
      const [doc] = config([{ url: b.url, retries: 1, retry_on: [503] }]);
      await putAndWait(gw, doc);
      const before = b.hits;
      const res = await request(gw.at("/u?flip=1"));
      assert.equal(res.status, 200);
      assert.equal(b.hits - before, 2);
      const [three] = config([{ url: b.url, retries: 2, retry_on: [503] }]);
      await putAndWait(gw, three);
      const start = b.hits;
      const last = await request(gw.at("/u?status=503"));
      assert.equal(last.status, 503);
      assert.equal(last.json().origin, "b", "the origin's own response, not a problem document");
      assert.equal(b.hits - start, 3, "retries: 2 → three attempts");
    });

    test("POST and PATCH are retried only with retry_non_idempotent", async () => {
      const [doc] = config([{ targets: [{ url: dead }, { url: a.url }] }]);
      await putAndWait(gw, doc);
      for (const method of ["POST", "PATCH"]) {
        const statuses = [];
        for (let i = 0; i < 4; i++) statuses.push((await request(gw.at("/p"), { method, body: "x" })).status);
        assert.deepEqual(statuses.sort(), [200, 200, 502, 502], method);
      }
      const [yes] = config([{ targets: [{ url: dead }, { url: a.url }], retry_non_idempotent: true }]);
      await putAndWait(gw, yes);
      for (const method of ["POST", "PATCH"]) {
        for (let i = 0; i < 2; i++) {
          const res = await request(gw.at("/p"), { method, body: `${method}-${i}` });
          assert.equal(res.status, 200, method);
          assert.equal(res.json().body, `${method}-${i}`);
        }
      }
    });

    test("timeouts are retried only when listed; each attempt has the whole timeout_ms", async () => {
      const [doc] = config([{ url: a.url, timeout_ms: 300, retries: 2, retry_on: ["timeout"] }]);
      await putAndWait(gw, doc);
      const before = a.hits;
      const t0 = Date.now();
      assertProblem(await request(gw.at("/to?delay=1500")), 504, "upstream_timeout");
      const took = Date.now() - t0;
      assert.equal(a.hits - before, 3);
      assert.ok(took >= 850, `three attempts of 300 ms: ${took} ms`);
      const [no] = config([{ url: a.url, timeout_ms: 300, retries: 2 }]);
      await putAndWait(gw, no);
      const start = a.hits;
      assertProblem(await request(gw.at("/to?delay=1500")), 504, "upstream_timeout");
      await sleep(50);
      assert.equal(a.hits - start, 1, "retry_on defaults to connect-failure");
    });

    test("timeout_ms bounds the wait for the response headers only: a slow body is not cut", async () => {
      const [doc] = config([{ url: a.url, timeout_ms: 300 }]);
      await putAndWait(gw, doc);
      const res = await request(gw.at("/sb?stream=800"));
      assert.equal(res.status, 200);
      assert.equal(res.text, "start,end");
      // Kong's three timeouts are not fields of a service.
      for (const field of ["connect_timeout", "read_timeout", "write_timeout"]) {
        const error = await rejected(gw, { format_version: 1, services: [{ name: `kt-${++serial}`, url: a.url, [field]: 1000 }], routes: [] });
        assert.ok(error.includes(`services[0].${field}`), error);
      }
    });

    test("when every target is out, the last failure is answered (not no_healthy_upstream)", async () => {
      const [doc] = config([{ url: dead, retries: 1, healthchecks: { passive: { unhealthy: { tcp_failures: 1 }, cooldown_ms: 60000 } } }]);
      await putAndWait(gw, doc);
      assertProblem(await request(gw.at("/o")), 502, "upstream_unreachable");
      assertProblem(await request(gw.at("/o")), 503, "no_healthy_upstream");
    });
  });

  describe("traffic split across services", () => {
    const split = (weights, extra = {}) =>
      config(
        [
          { name: "checkout-v1", url: `${a.url}/v1` },
          { name: "checkout-v2", url: `${b.url}/v2` },
        ],
        {
          routes: (s) => [
            { name: "checkout", paths: ["/checkout"], services: [{ name: s[0], weight: weights[0] }, { name: s[1], weight: weights[1] }], ...extra },
            { name: "probe", service: s[0], paths: ["/__probe"], methods: ["GET"] },
          ],
        },
      );

    test("the first example (90/10): a tenth of the requests, each service with its base path, logged under its name", async () => {
      const [doc, names] = split([90, 10]);
      await putAndWait(gw, doc);
      const got = await parallel(gw, "/checkout/cart?id=7", 600);
      const n = counts(got.map(originOf));
      assert.ok(n.b >= 30 && n.b <= 100, JSON.stringify(n));
      for (const r of got) assert.equal(r.json().url, r.headers["x-origin"] === "a" ? "/v1/cart?id=7" : "/v2/cart?id=7");
      const id = got.find((r) => r.headers["x-origin"] === "b").headers["x-request-id"];
      assert.equal((await logOf(gw, id)).service, names[1]);
    });

    test("the second example (cookie session, 80/20): a session stays; raising a weight moves only sessions to the grown service", async () => {
      const [doc] = split([80, 20], { hash_on: "cookie", hash_on_cookie: "session" });
      await putAndWait(gw, doc);
      const users = 150;
      const who = (i) => ({ cookie: `theme=dark; session=s${i % users}` });
      const first = (await parallel(gw, "/checkout", users * 2, who)).map(originOf);
      for (let i = 0; i < users; i++) assert.equal(first[i + users], first[i], `session s${i}`);
      const grown = structuredClone(doc);
      grown.routes[0].services[1].weight = 40;
      grown.routes[0].services[0].weight = 60;
      await putAndWait(gw, grown);
      const second = (await parallel(gw, "/checkout", users, who)).map(originOf);
      let moved = 0;
      for (let i = 0; i < users; i++) {
        if (second[i] !== first[i]) {
          moved++;
          assert.equal(second[i], "b", `s${i} moved only to the grown service`);
        }
      }
      assert.ok(moved > 5, `moved ${moved}`);
    });

    test("with hash_on but without the value, a request is placed by its request id (no cookie is set)", async () => {
      const [doc] = split([50, 50], { hash_on: "cookie", hash_on_cookie: "session" });
      await putAndWait(gw, doc);
      const seen = new Set();
      for (let k = 0; k < 8; k++) {
        const id = `split-none-${k}`;
        const first = await request(gw.at("/checkout"), { headers: { "x-request-id": id } });
        assert.equal(first.headers["set-cookie"], undefined);
        seen.add(originOf(first));
        for (let i = 0; i < 2; i++) assert.equal(originOf(await request(gw.at("/checkout"), { headers: { "x-request-id": id } })), originOf(first));
      }
      assert.equal(seen.size, 2);
    });

    test("hash_on ip and header keep a client on one service; each service sends its own headers", async () => {
      for (const [extra, h] of [
        [{ hash_on: "ip" }, (k) => ({ "cf-connecting-ip": `203.0.113.${k}` })],
        [{ hash_on: "header", hash_on_header: "x-tenant" }, (k) => ({ "x-tenant": `t-${k}` })],
      ]) {
        const [doc, names] = split([50, 50], extra);
        doc.services[0].headers = { "x-svc": "one" };
        doc.services[1].headers = { "x-svc": "two" };
        await putAndWait(gw, doc);
        const seen = new Set();
        for (let k = 0; k < 10; k++) {
          const first = originOf(await request(gw.at("/checkout"), { headers: h(k) }));
          for (let i = 0; i < 2; i++) assert.equal(originOf(await request(gw.at("/checkout"), { headers: h(k) })), first, `${names} ${k}`);
          seen.add(first);
          const o = first === "a" ? a : b;
          assert.equal(o.last.headers["x-svc"], first === "a" ? "one" : "two");
        }
        assert.equal(seen.size, 2, JSON.stringify(extra));
      }
    });

    test("a split names 1 to 64 services", async () => {
      const many = (n) =>
        config(
          Array.from({ length: n }, (_, k) => ({ name: `s${k}`, url: `${a.url}/s${k}` })),
          { routes: (s) => [{ name: "split", paths: ["/"], methods: METHODS, services: s.map((name) => ({ name, weight: 1 })) }] },
        )[0];
      await putAndWait(gw, many(1));
      assert.equal(originOf(await request(gw.at("/one"))), "a");
      await putAndWait(gw, many(64));
      assert.match(await rejected(gw, many(65)), /routes\[0\]\.services/);
    });

    test("a service of weight 0 gets no request", async () => {
      const [doc] = split([1, 0]);
      await putAndWait(gw, doc);
      assert.deepEqual(counts((await parallel(gw, "/checkout", 40)).map(originOf)), { a: 40 });
    });

    test("a retry stays on the service the request was placed on", async () => {
      const [doc, names] = config(
        [
          { name: "s1", targets: [{ url: dead }, { url: a.url }] },
          { name: "s2", url: b.url },
        ],
        { routes: (s) => [{ name: "split", paths: ["/"], methods: METHODS, services: [{ name: s[0], weight: 1 }, { name: s[1], weight: 1 }] }] },
      );
      await putAndWait(gw, doc);
      for (let k = 0; k < 12; k++) {
        const id = `split-retry-${serial}-${k}`;
        const res = await request(gw.at("/sr"), { headers: { "x-request-id": id } });
        assert.equal(res.status, 200);
        const line = await logOf(gw, id);
        assert.equal(originOf(res), line.service === names[0] ? "a" : "b", JSON.stringify(line));
      }
    });
  });
});

for (const reload of ["0", "1"]) describe(`docs/traffic-policies.md, second audit (CONFIG_RELOAD_SECONDS ${reload})`, { timeout: 120_000 }, () => {
  let gw, a;
  const APP = "https://app.example.com";
  const varyOf = (res) => (res.headers.vary ?? "").split(",").map((x) => x.trim()).filter(Boolean);
  const acHeaders = (res) => Object.keys(res.headers).filter((h) => h.startsWith("access-control-")).sort();
  before(async () => {
    gw = await startGateway({ bindings: { CONFIG_RELOAD_SECONDS: reload } });
    a = await namedOrigin("a");
    const route = (name, extra = {}) => ({ name, service: "echo", paths: [`/${name}`], ...extra });
    const doc = {
      format_version: 1,
      services: [{ name: "echo", url: a.url }, { name: "dead", url: `http://127.0.0.1:${await closedPort()}` }],
      routes: [route("cors-default"), route("cors-listed"), route("cors-pn"), route("ip-404"), route("size-kb"), route("cors-re"), route("ip-empty-allow"), route("cors-dead", { service: "dead" }), route("geo-us")],
      plugins: [
        { name: "cors", route: "cors-default", config: {} },
        { name: "cors", route: "cors-listed", config: { origins: [APP], headers: ["X-Token"], exposed_headers: ["X-Request-Id"] } },
        { name: "cors", route: "cors-pn", config: { origins: [APP], headers: ["X-Token"], private_network: true } },
        { name: "ip-restriction", route: "ip-404", config: { deny: ["192.0.2.0/24", "2001:db8:bad::/48"], status: 404, message: "Nothing here" } },
        { name: "request-size-limiting", route: "size-kb", config: { allowed_payload_size: 1, size_unit: "kilobytes" } },
        { name: "cors", route: "cors-re", config: { origins: ["https://.*\\.example\\.org"] } },
        { name: "ip-restriction", route: "ip-empty-allow", config: { allow: [], deny: ["192.0.2.7"] } },
        { name: "cors", route: "cors-dead", config: { origins: [APP], exposed_headers: ["X-Request-Id"] } },
        { name: "geo-restriction", route: "geo-us", config: { allow_countries: ["US"] } },
      ],
    };
    await putAndWait(gw, doc);
  });
  after(async () => {
    await gw?.dispose();
    await a?.close();
  });

  const preflight = (path, headers = {}) =>
    request(gw.at(path), { method: "OPTIONS", headers: { origin: APP, "access-control-request-method": "PUT", ...headers } });

  test("cors defaults: a preflight gets 200, *, every method joined with `,`, the requested headers, Vary: Access-Control-Request-Headers", async () => {
    const hits = a.hits;
    const res = await preflight("/cors-default", { "access-control-request-headers": "X-A, X-B" });
    assert.equal(res.status, 200);
    assert.equal(res.text, "");
    assert.equal(res.headers["access-control-allow-origin"], "*");
    assert.equal(res.headers["access-control-allow-methods"], "GET,HEAD,PUT,PATCH,POST,DELETE,OPTIONS,TRACE,CONNECT");
    assert.equal(res.headers["access-control-allow-headers"], "X-A, X-B");
    assert.equal(res.headers["access-control-max-age"], undefined);
    assert.equal(res.headers["access-control-allow-credentials"], undefined);
    assert.deepEqual(varyOf(res), ["Access-Control-Request-Headers"]);
    assert.equal(a.hits, hits, "the origin is not contacted");
  });

  test("cors: a preflight answer depending on nothing but the method has no Vary; private_network adds its header and Vary", async () => {
    const listed = await preflight("/cors-listed");
    assert.equal(listed.headers["access-control-allow-origin"], APP);
    assert.deepEqual(varyOf(listed), ["Origin"]);
    assert.equal(listed.headers["access-control-allow-headers"], "X-Token");
    const pn = await preflight("/cors-pn", { "access-control-request-private-network": "true" });
    assert.equal(pn.headers["access-control-allow-private-network"], "true");
    assert.deepEqual(varyOf(pn), ["Origin", "Access-Control-Request-Private-Network"]);
    const noPn = await preflight("/cors-pn");
    assert.equal(noPn.headers["access-control-allow-private-network"], undefined);
  });

  test("cors, allowed origin: the plugin's headers replace the origin's, its other Access-Control-* headers pass, Vary gets Origin added", async () => {
    const res = await request(gw.at("/cors-listed?cors=1"), { headers: { origin: APP } });
    assert.equal(res.status, 200);
    assert.equal(res.headers["access-control-allow-origin"], APP);
    assert.equal(res.headers["access-control-expose-headers"], "X-Request-Id");
    assert.equal(res.headers["access-control-allow-credentials"], "true", "the origin's own, with credentials false");
    assert.equal(res.headers["access-control-max-age"], "5");
    assert.deepEqual(varyOf(res), ["Accept-Encoding", "Origin"]);
  });

  test("cors, origin not allowed: the origin's Access-Control-Allow-Origin is removed, its other headers stay, Vary: Origin", async () => {
    const res = await request(gw.at("/cors-listed?cors=1"), { headers: { origin: "https://evil.example" } });
    assert.equal(res.status, 200);
    assert.deepEqual(acHeaders(res), ["access-control-allow-credentials", "access-control-expose-headers", "access-control-max-age"]);
    assert.equal(res.headers["access-control-expose-headers"], "X-From-Origin");
    assert.deepEqual(varyOf(res), ["Accept-Encoding", "Origin"]);
    const pre = await preflight("/cors-listed", { origin: "https://evil.example" });
    assert.equal(pre.status, 200);
    assert.deepEqual(acHeaders(pre), []);
  });

  test("ip-restriction: status 404 and message give a problem document titled `Not found`", async () => {
    const res = await request(gw.at("/ip-404"), { headers: { "cf-connecting-ip": "2001:db8:bad::1" } });
    const p = assertProblem(res, 404, "ip_not_allowed");
    assert.equal(p.title, "Not found");
    assert.equal(p.detail, "Nothing here");
    assert.equal((await request(gw.at("/ip-404"), { headers: { "cf-connecting-ip": "192.0.3.1" } })).status, 200);
  });

  test("request-size-limiting: 1 kilobyte is 1,024 bytes; the detail names the limit in bytes", async () => {
    assert.equal((await request(gw.at("/size-kb"), { method: "POST", body: Buffer.alloc(1024, 0x61) })).status, 200);
    const res = await request(gw.at("/size-kb"), { method: "POST", body: Buffer.alloc(1025, 0x61) });
    const p = assertProblem(res, 413, "payload_too_large");
    assert.equal(p.detail, "Request size limit exceeded: the body may have at most 1024 bytes");
  });

  test("cors: a regular expression is anchored at both ends", async () => {
    const ok = await request(gw.at("/cors-re"), { headers: { origin: "https://shop.example.org" } });
    assert.equal(ok.headers["access-control-allow-origin"], "https://shop.example.org");
    for (const origin of ["https://shop.example.org.evil.test", "http://shop.example.org", "xhttps://shop.example.org"]) {
      const res = await request(gw.at("/cors-re"), { headers: { origin } });
      assert.equal(res.headers["access-control-allow-origin"], undefined, origin);
    }
  });

  test("cors: the gateway's own errors (502 upstream_unreachable) carry the CORS headers too", async () => {
    const res = await request(gw.at("/cors-dead"), { headers: { origin: APP } });
    assertProblem(res, 502, "upstream_unreachable");
    assert.equal(res.headers["access-control-allow-origin"], APP);
    assert.equal(res.headers["access-control-expose-headers"], "X-Request-Id");
    assert.ok(varyOf(res).includes("Origin"));
  });

  test("geo-restriction: locally every request has Miniflare's country US unless MF-CF-Blob says otherwise", async () => {
    assert.equal((await request(gw.at("/geo-us"))).status, 200);
    const other = await request(gw.at("/geo-us"), { headers: { "mf-cf-blob": JSON.stringify({ country: "DE" }) } });
    assertProblem(other, 403, "country_not_allowed");
  });

  test("ip-restriction: an empty allow list is as if not given", async () => {
    assert.equal((await request(gw.at("/ip-empty-allow"), { headers: { "cf-connecting-ip": "198.51.100.1" } })).status, 200);
    assertProblem(await request(gw.at("/ip-empty-allow"), { headers: { "cf-connecting-ip": "192.0.2.7" } }), 403, "ip_not_allowed");
  });

  test("validation: the ranges of the option tables, with JSON paths", async () => {
    const base = () => ({ format_version: 1, services: [{ name: "echo", url: a.url }], routes: [{ name: "r", service: "echo", paths: ["/"] }] });
    const cases = [
      [{ name: "ip-restriction", config: { deny: ["192.0.2.1"], status: 399 } }, "plugins[0].config.status"],
      [{ name: "ip-restriction", config: { deny: ["192.0.2.1"], status: 600 } }, "plugins[0].config.status"],
      [{ name: "ip-restriction", config: { deny: ["192.0.2.1"], message: "" } }, "plugins[0].config.message"],
      [{ name: "ip-restriction", config: { deny: ["192.0.2.1"], message: "x".repeat(1025) } }, "plugins[0].config.message"],
      [{ name: "ip-restriction", config: { allow: [], deny: [] } }, "plugins[0].config"],
      [{ name: "geo-restriction", config: { allow_countries: ["DE"], status: 600 } }, "plugins[0].config.status"],
      [{ name: "geo-restriction", config: { allow_countries: ["EU"] } }, "plugins[0].config.allow_countries[0]"],
      [{ name: "geo-restriction", config: { deny_countries: ["DE"], unknown_country: "maybe" } }, "plugins[0].config.unknown_country"],
      [{ name: "cors", config: { origins: ["app.example.com"] } }, "plugins[0].config.origins[0]: not an origin"],
      [{ name: "cors", config: { origins: ["https://app.example.com/path"] } }, "plugins[0].config.origins[0]: not an origin"],
      [{ name: "cors", config: { exposed_headers: ["X-A: b"] } }, "plugins[0].config.exposed_headers[0]: not a valid header name"],
      [{ name: "request-size-limiting", config: { allowed_payload_size: -1 } }, "plugins[0].config.allowed_payload_size"],
      [{ name: "request-size-limiting", config: { size_unit: "gigabytes" } }, "plugins[0].config.size_unit"],
    ];
    for (const [plugin, expected] of cases) {
      const doc = base();
      doc.plugins = [plugin];
      const error = await rejected(gw, doc);
      assert.ok(error.includes(expected), `${JSON.stringify(plugin).slice(0, 120)}:\n  ${error}\nshould include\n  ${expected}`);
    }
  });
});
