// The docs as a contract: precise statements of docs/upstreams.md, docs/traffic-policies.md and the
// request-termination / redirect sections of docs/plugins.md that no other test file asserts, checked the
// way a user of the gateway would (one gateway for the whole file, origins on 127.0.0.1).
import { describe, test, before, after } from "node:test";
import assert from "node:assert/strict";
import crypto from "node:crypto";
import { startGateway, startOrigin, request, closedPort, sleep, waitFor, withCf, problemOf } from "./support/harness.mjs";
import { startNamedOrigin, tally } from "./support/upstream-origins.mjs";

const APP = "https://app.example.com";
const sha256hex = (s) => crypto.createHash("sha256").update(s).digest("hex");

function assertProblem(res, status, code, what = "") {
  assert.equal(res.status, status, `${what}: ${res.text}`);
  const p = problemOf(res);
  assert.equal(p.code, code, what);
  assert.equal(p.status, status, what);
  return p;
}

const varyNames = (res) =>
  (res.headers.vary ?? "").split(",").map((s) => s.trim().toLowerCase()).filter(Boolean);

describe("docs contract", { timeout: 120_000 }, () => {
  let gw, echo, a, b, sick, slow, overloaded, deadPort, config;
  const aliceKey = "eg_alice_" + crypto.randomBytes(12).toString("hex");

  const get = (path, headers = {}, opts = {}) => request(gw.at(path), { headers, ...opts });
  const hitsOf = (o, prefix) => o.requests.filter((r) => r.url.startsWith(prefix)).length;

  function buildConfig() {
    const r = (name, path, service, extra = {}) => ({ name, service, paths: [path], strip_path: false, ...extra });
    return {
      format_version: 1,
      services: [
        { name: "echo", url: echo.url },
        { name: "rr-default", targets: [{ url: a.url }, { url: b.url, weight: 100 }] },
        {
          name: "rr-weights",
          targets: [
            { url: a.url, weight: 300 },
            { url: b.url, weight: 100 },
            { url: sick.url, weight: 0 },
          ],
        },
        { name: "hash-path", algorithm: "consistent-hashing", hash_on: "path", targets: [{ url: a.url }, { url: b.url }] },
        {
          name: "hash-cookie", algorithm: "consistent-hashing", hash_on: "cookie", hash_on_cookie: "sid",
          targets: [{ url: a.url }, { url: b.url }],
        },
        {
          name: "hash-fallback", algorithm: "consistent-hashing", hash_on: "header", hash_on_header: "x-a",
          hash_fallback: "header", hash_fallback_header: "x-b", targets: [{ url: a.url }, { url: b.url }],
        },
        { name: "least", algorithm: "least-connections", targets: [{ url: a.url }, { url: b.url }] },
        {
          name: "hash-consumer", algorithm: "consistent-hashing", hash_on: "consumer",
          targets: [{ url: a.url }, { url: b.url }],
        },
        { name: "hash-ip", algorithm: "consistent-hashing", hash_on: "ip", targets: [{ url: a.url }, { url: b.url }] },
        {
          name: "health-defaults",
          targets: [{ url: sick.url }, { url: a.url }],
          retries: 0,
          healthchecks: { passive: { unhealthy: { http_failures: 1 }, cooldown_ms: 600000 } },
        },
        {
          name: "health-timeouts", targets: [{ url: slow.url }, { url: b.url }], timeout_ms: 300, retries: 0,
          healthchecks: { passive: { unhealthy: { timeouts: 1 }, cooldown_ms: 600000 } },
        },
        { name: "retry-exhausted", url: overloaded.url, retries: 1, retry_on: [503] },
        { name: "retry-body", targets: [{ url: `http://127.0.0.1:${deadPort}` }, { url: a.url }], retry_non_idempotent: true },
        { name: "retry-idem", targets: [{ url: `http://127.0.0.1:${deadPort}` }, { url: b.url }] },
        {
          name: "hash-retry", algorithm: "consistent-hashing", hash_on: "header", hash_on_header: "x-user",
          targets: [{ url: `http://127.0.0.1:${deadPort}` }, { url: a.url }, { url: b.url }],
        },
        { name: "timeout", url: slow.url, timeout_ms: 300 },
        { name: "dead", url: `http://127.0.0.1:${deadPort}` },
        { name: "can-a", url: a.url },
        { name: "can-b", url: b.url },
      ],
      routes: [
        r("rr-default", "/rr-default", "rr-default"),
        r("rr-weights", "/rr-weights", "rr-weights"),
        r("hash-path", "/hash-path", "hash-path"),
        r("hash-cookie", "/hash-cookie", "hash-cookie"),
        r("hash-ip", "/hash-ip", "hash-ip"),
        r("hash-fallback", "/hash-fallback", "hash-fallback"),
        r("least", "/least", "least"),
        r("hash-consumer", "/hash-consumer", "hash-consumer"),
        r("order-acl", "/order-acl", "echo"),
        r("health-defaults", "/health-defaults", "health-defaults"),
        r("retry-exhausted", "/retry-exhausted", "retry-exhausted"),
        r("health-timeouts", "/health-timeouts", "health-timeouts"),
        r("geo-unknown-allow", "/geo-unknown-allow", "echo"),
        r("retry-body", "/retry-body", "retry-body", { methods: ["POST"] }),
        r("timeout", "/timeout", "timeout"),
        r("retry-idem", "/retry-idem", "retry-idem"),
        r("hash-retry", "/hash-retry", "hash-retry"),
        r("dead", "/dead", "dead"),
        { name: "canary", paths: ["/canary"], services: [{ name: "can-a", weight: 1 }, { name: "can-b", weight: 1 }] },
        { name: "canary-2", paths: ["/canary-2"], services: [{ name: "can-b", weight: 1 }, { name: "can-a", weight: 1 }] },
        r("cors-literal", "/cors-literal", "echo"),
        r("cors-host-regex", "/cors-host-regex", "echo"),
        r("cors-ip", "/cors-ip", "echo"),
        r("ip-mapped", "/ip-mapped", "echo"),
        r("ip-v6-all", "/ip-v6-all", "echo"),
        r("ip-geo", "/ip-geo", "echo"),
        r("ip-consumer", "/ip-consumer", "echo"),
        r("geo-lower", "/geo-lower", "echo"),
        r("geo-xx", "/geo-xx", "echo"),
        r("size-zero", "/size-zero", "echo"),
        r("size-auth", "/size-auth", "echo"),
        r("size-strict", "/size-strict", "echo"),
        r("rt-403", "/rt-403", "echo"),
        r("rt-404", "/rt-404", "echo"),
        r("rt-410", "/rt-410", "echo"),
        r("rt-418", "/rt-418", "echo"),
        r("rt-205", "/rt-205", "echo"),
        r("rt-echo", "/rt-echo", "echo"),
        r("rt-consumer", "/rt-consumer", "echo"),
        r("redir-head", "/redir-head", "echo"),
        r("cors-maint", "/cors-maint", "echo"),
        r("cors-redir", "/cors-redir", "echo"),
        r("redir-query", "/redir-query", "echo"),
        { name: "redir-strip", service: "echo", paths: ["/redir-strip"], strip_path: true },
        { name: "redir-capture", service: "echo", paths: ["~^/go/(?<dest>.*)$"] },
        { name: "redir-host", service: "echo", paths: ["~^/ext(?<rest>.*)$"] },
      ],
      plugins: [
        { name: "request-termination", service: "can-a", config: { status_code: 418, message: "first service" } },
        { name: "key-auth", route: "hash-consumer" },
        { name: "key-auth", route: "order-acl" },
        { name: "acl", route: "order-acl", config: { allow: ["admin"] } },
        { name: "ip-restriction", route: "order-acl", config: { deny: ["198.51.100.0/24"] } },
        { name: "request-size-limiting", route: "order-acl", config: { allowed_payload_size: 10, size_unit: "bytes" } },
        { name: "cors", route: "cors-literal", config: { origins: ["https://App.example.com:443", "null"] } },
        { name: "cors", route: "cors-host-regex", config: { origins: ["(.*\\.)?partner\\.test"], exposed_headers: ["X-Total"] } },
        { name: "cors", route: "cors-ip", config: { origins: [APP] } },
        { name: "ip-restriction", route: "cors-ip", config: { deny: ["203.0.113.0/24"] } },
        { name: "ip-restriction", route: "ip-mapped", config: { allow: ["::ffff:10.0.0.0/104", "172.16.9.9/12"] } },
        { name: "ip-restriction", route: "ip-v6-all", config: { deny: ["::/0"], status: 404 } },
        { name: "ip-restriction", route: "ip-geo", config: { deny: ["198.51.100.0/24"] } },
        { name: "geo-restriction", route: "ip-geo", config: { deny_countries: ["RU"] } },
        { name: "key-auth", route: "ip-consumer" },
        { name: "ip-restriction", route: "ip-consumer", consumer: "alice", config: { deny: ["198.51.100.0/24"] } },
        { name: "geo-restriction", route: "geo-lower", config: { allow_countries: ["de", "xk"] } },
        { name: "geo-restriction", route: "geo-unknown-allow", config: { deny_countries: ["XX", "RU"], unknown_country: "allow" } },
        { name: "geo-restriction", route: "geo-xx", config: { allow_countries: ["DE", "XX"] } },
        { name: "request-size-limiting", route: "size-zero", config: { allowed_payload_size: 0, size_unit: "bytes" } },
        { name: "key-auth", route: "size-auth" },
        { name: "request-size-limiting", route: "size-auth", config: { allowed_payload_size: 10, size_unit: "bytes" } },
        {
          name: "request-size-limiting", route: "size-strict",
          config: { allowed_payload_size: 10, size_unit: "bytes", require_content_length: true },
        },
        { name: "request-termination", route: "rt-403", config: { status_code: 403 } },
        { name: "request-termination", route: "rt-404", config: { status_code: 404 } },
        { name: "request-termination", route: "rt-410", config: { status_code: 410 } },
        { name: "request-termination", route: "rt-418", config: { status_code: 418 } },
        { name: "request-termination", route: "rt-205", config: { status_code: 205 } },
        { name: "request-termination", route: "rt-echo", config: { status_code: 200, echo: true } },
        { name: "key-auth", route: "rt-consumer" },
        { name: "request-termination", consumer: "alice", route: "rt-consumer", config: { status_code: 200, echo: true } },
        { name: "cors", route: "cors-maint", config: { origins: [APP], exposed_headers: ["X-Request-Id"] } },
        { name: "request-termination", route: "cors-maint", config: { message: "maintenance" } },
        { name: "response-transformer", route: "cors-maint", config: { add: { headers: ["x-served-by:edgegate"] } } },
        { name: "cors", route: "cors-redir", config: { origins: [APP] } },
        { name: "redirect", route: "cors-redir", config: { location: "/elsewhere" } },
        { name: "redirect", route: "redir-head", config: { location: "https://new.example.com/landing" } },
        { name: "redirect", route: "redir-query", config: { location: "/t", status_code: 302, keep_incoming_query: true } },
        { name: "redirect", route: "redir-strip", config: { location: "https://n.example.com", keep_incoming_path: true } },
        { name: "redirect", route: "redir-host", config: { location: "https://example.com$(uri_captures.rest)" } },
        { name: "redirect", route: "redir-capture", config: { location: "/$(uri_captures.dest)" } },
      ],
    };
  }

  before(async () => {
    // The origin sends CORS headers of its own, which the plugin replaces (or removes).
    echo = await startOrigin(async (req, res, record) => {
      res.writeHead(200, {
        "content-type": "application/json",
        "access-control-allow-origin": "https://from-origin.test",
        "access-control-allow-credentials": "true",
        "access-control-expose-headers": "X-Secret",
        "x-total": "3",
      });
      res.end(JSON.stringify({ method: record.method, url: record.url, length: record.body.length }));
    });
    a = await startNamedOrigin("a");
    b = await startNamedOrigin("b");
    sick = await startNamedOrigin("sick", { mode: "status", status: 429 });
    overloaded = await startNamedOrigin("overloaded", { mode: "status", status: 503 });
    slow = await startNamedOrigin("slow", { mode: "slow", ms: 1500 });
    deadPort = await closedPort();
    gw = await startGateway();
    const put = (key, value) => gw.kv.put(key, JSON.stringify(value));
    await put("consumers/c-alice", { id: "c-alice", username: "alice", groups: [] });
    await put("consumer-names/alice", { id: "c-alice" });
    await put(`credentials/key-auth/${sha256hex(aliceKey)}`, { id: "cred-alice", consumer_id: "c-alice" });
    config = buildConfig();
    await gw.putConfig(config);
  });
  after(async () => {
    await gw?.dispose();
    for (const o of [echo, a, b, sick, overloaded, slow]) await o?.close();
  });

  /** Push a bad document and return the config_rejected error (the previous version keeps serving). */
  async function rejected(doc) {
    const version = await gw.putConfig(doc);
    const res = await get("/rt-403");
    assert.equal(res.status, 403, "the previous version still serves");
    await waitFor(() => gw.logs.some((l) => l.json?.event === "config_rejected" && l.json?.version === version), {
      what: "config_rejected",
    });
    return gw.logs.find((l) => l.json?.event === "config_rejected" && l.json?.version === version).json.error;
  }

  describe("upstreams.md", () => {
    test("a target without weight weighs 100: two such targets alternate exactly", async () => {
      const seq = [];
      for (let i = 0; i < 20; i++) seq.push((await get("/rr-default")).headers["x-origin"]);
      assert.deepEqual(tally(seq.map((o) => ({ headers: { "x-origin": o } }))), { a: 10, b: 10 });
      for (let i = 1; i < seq.length; i++) assert.notEqual(seq[i], seq[i - 1], seq.join());
    });

    test("smooth weighted round-robin: 300/100/0 is split exactly 3:1 per run of 4, interleaved", async () => {
      const seq = [];
      for (let i = 0; i < 40; i++) seq.push((await get("/rr-weights")).headers["x-origin"]);
      const counts = tally(seq.map((o) => ({ headers: { "x-origin": o } })));
      assert.deepEqual(counts, { a: 30, b: 10 }, seq.join());
      assert.ok(!seq.join("").includes("aaaa"), `no bursts: ${seq.join("")}`);
    });

    test("hash_on path: a path always goes to the same target", async () => {
      const seen = new Map();
      for (let round = 0; round < 3; round++) {
        for (let i = 0; i < 12; i++) {
          const o = (await get(`/hash-path/item-${i}`)).headers["x-origin"];
          if (seen.has(i)) assert.equal(seen.get(i), o, `path ${i}`);
          seen.set(i, o);
        }
      }
      assert.equal(new Set(seen.values()).size, 2, "both targets get some paths");
    });

    test("hash_on cookie sticks; without the cookie the gateway sets one (a new value each time, as Kong)", async () => {
      for (let u = 0; u < 6; u++) {
        const first = (await get("/hash-cookie", { cookie: `theme=x; sid=user-${u}` })).headers["x-origin"];
        for (let i = 0; i < 3; i++) {
          assert.equal((await get("/hash-cookie", { cookie: `sid=user-${u}` })).headers["x-origin"], first);
        }
      }
      const without = [];
      for (let i = 0; i < 16; i++) {
        const res = await get("/hash-cookie");
        assert.match(res.headers["set-cookie"]?.[0] ?? "", /^sid=[0-9a-f-]{36}; Path=\/; HttpOnly$/);
        without.push(res.headers["x-origin"]);
      }
      assert.deepEqual(new Set(without), new Set(["a", "b"]), without.join());
    });

    test("hash_fallback header: a second header is hashed when the first is missing", async () => {
      for (let u = 0; u < 6; u++) {
        const first = (await get("/hash-fallback", { "x-b": `fb-${u}` })).headers["x-origin"];
        for (let i = 0; i < 3; i++) assert.equal((await get("/hash-fallback", { "x-b": `fb-${u}` })).headers["x-origin"], first);
      }
      const placed = new Set();
      for (let u = 0; u < 12; u++) placed.add((await get("/hash-fallback", { "x-a": `a-${u}`, "x-b": "same" })).headers["x-origin"]);
      assert.equal(placed.size, 2, "with x-a present, x-b is not what is hashed");
    });

    test("hash_on ip: the client address (CF-Connecting-IP) picks the target", async () => {
      for (const ip of ["192.0.2.1", "192.0.2.2", "2001:db8::7"]) {
        const first = (await get("/hash-ip", { "cf-connecting-ip": ip })).headers["x-origin"];
        for (let i = 0; i < 3; i++) assert.equal((await get("/hash-ip", { "cf-connecting-ip": ip })).headers["x-origin"], first, ip);
      }
    });

    test("passive health: http_statuses defaults to [429, 500, 503]; the log line names the service", async () => {
      const statuses = [];
      for (let i = 0; i < 6; i++) statuses.push((await get("/health-defaults")).status);
      assert.equal(statuses.filter((s) => s === 429).length, 1, `one 429 opens the breaker: ${statuses}`);
      await waitFor(
        () =>
          gw.logs.some(
            (l) =>
              l.json?.event === "upstream_health" &&
              l.json.service === "health-defaults" &&
              l.json.target === sick.url &&
              l.json.state === "unhealthy",
          ),
        { what: "upstream_health line" },
      );
    });

    test("passive health: unhealthy.timeouts takes a target that timed out out", async () => {
      const first = await get("/health-timeouts");
      assertProblem(first, 504, "upstream_timeout");
      for (let i = 0; i < 4; i++) {
        const res = await get("/health-timeouts");
        assert.equal(res.status, 200);
        assert.equal(res.headers["x-origin"], "b");
      }
    });

    test("the health state survives a configuration change that keeps the service's settings, not others", async () => {
      const sickHits = () => sick.requests.filter((r) => r.url.startsWith("/health-defaults")).length;
      const before = sickHits();
      // Same service, one more route: the breaker stays open.
      const same = buildConfig();
      same.routes.push({ name: "extra", service: "echo", paths: ["/extra"] });
      await gw.putConfig(same);
      for (let i = 0; i < 4; i++) assert.equal((await get("/health-defaults")).status, 200);
      assert.equal(sickHits(), before, "still out after an unrelated change");
      // Other health settings: the state starts again, the target is tried (and fails) again.
      const changed = buildConfig();
      changed.services.find((s) => s.name === "health-defaults").healthchecks.passive.window_ms = 20000;
      await gw.putConfig(changed);
      const statuses = [];
      for (let i = 0; i < 4; i++) statuses.push((await get("/health-defaults")).status);
      assert.equal(sickHits(), before + 1, `statuses ${statuses}`);
      await gw.putConfig(buildConfig());
    });

    test("least-connections: with nothing in flight, ties are taken in turn", async () => {
      const seq = [];
      for (let i = 0; i < 10; i++) seq.push((await get("/least")).headers["x-origin"]);
      for (let i = 1; i < seq.length; i++) assert.notEqual(seq[i], seq[i - 1], seq.join());
    });

    test("hash_on consumer: an authenticated consumer stays on one target", async () => {
      const first = await get("/hash-consumer", { apikey: aliceKey });
      assert.equal(first.status, 200);
      for (let i = 0; i < 4; i++) {
        assert.equal((await get("/hash-consumer", { apikey: aliceKey })).headers["x-origin"], first.headers["x-origin"]);
      }
    });

    test("a split without hash_on places a request by its request id: the same X-Request-Id, the same service", async () => {
      for (let k = 0; k < 5; k++) {
        const id = `split-id-${k}`;
        const first = (await get("/canary-2", { "x-request-id": id })).headers["x-origin"];
        for (let i = 0; i < 3; i++) assert.equal((await get("/canary-2", { "x-request-id": id })).headers["x-origin"], first, id);
      }
    });

    test("a retried status that is still there after the last retry: the origin's own response", async () => {
      const before = overloaded.hits;
      const res = await get("/retry-exhausted");
      assert.equal(res.status, 503);
      assert.equal(res.headers["x-origin"], "overloaded", "not a gateway problem document");
      assert.equal(res.json().origin, "overloaded");
      assert.equal(overloaded.hits - before, 2, "retries: 1 → two attempts");
    });

    test("a body of up to 65,536 bytes is kept for a retry; a larger one is not retried", async () => {
      const kept = [];
      for (let i = 0; i < 4; i++) {
        kept.push((await get("/retry-body", {}, { method: "POST", body: Buffer.alloc(65536, 0x61) })).status);
      }
      assert.deepEqual(kept, [200, 200, 200, 200]);
      const big = [];
      for (let i = 0; i < 4; i++) {
        big.push((await get("/retry-body", {}, { method: "POST", body: Buffer.alloc(65537, 0x61) })).status);
      }
      assert.deepEqual(big.sort(), [200, 200, 502, 502]);
    });

    test("idempotent methods are retried (PUT with its body, OPTIONS, HEAD); PATCH is not", async () => {
      for (const method of ["PUT", "OPTIONS", "HEAD", "PUT"]) {
        const res = await get("/retry-idem", {}, { method, body: method === "PUT" ? "put-body" : undefined });
        assert.equal(res.status, 200, method);
        if (method === "PUT") assert.equal(res.json().body, "put-body");
      }
      const patches = [];
      for (let i = 0; i < 4; i++) patches.push((await get("/retry-idem", {}, { method: "PATCH", body: "p" })).status);
      assert.deepEqual(patches.sort(), [200, 200, 502, 502]);
    });

    test("with consistent hashing a retry goes to the next target in the value's order: still sticky", async () => {
      for (let u = 0; u < 15; u++) {
        const h = { "x-user": `retry-user-${u}` };
        const first = await get("/hash-retry", h);
        assert.equal(first.status, 200);
        for (let i = 0; i < 2; i++) assert.equal((await get("/hash-retry", h)).headers["x-origin"], first.headers["x-origin"], h["x-user"]);
      }
    });

    test("a timeout is 504 upstream_timeout and is not retried by default", async () => {
      const before = slow.hits;
      assertProblem(await get("/timeout"), 504, "upstream_timeout");
      await sleep(50);
      assert.equal(slow.hits - before, 1, "retry_on defaults to connect-failure only");
    });

    test("a connection failure is 502 upstream_unreachable", async () => {
      assertProblem(await get("/dead"), 502, "upstream_unreachable");
    });

    test("a split route runs the plugins scoped to its first service, for every request", async () => {
      for (let i = 0; i < 6; i++) {
        const res = await get("/canary");
        assert.equal(res.status, 418);
        assert.deepEqual(res.json(), { message: "first service" });
      }
      // can-a second: its plugin does not apply; both services are reached.
      const reached = [];
      for (let i = 0; i < 30; i++) reached.push((await get("/canary-2")).headers["x-origin"]);
      assert.deepEqual(new Set(reached), new Set(["a", "b"]));
    });

    test("the validation errors of the page, with their JSON paths", async () => {
      const svc = (extra) => ({ ...buildConfig(), services: [...buildConfig().services.filter((s) => s.name !== "dead"), { name: "dead", ...extra }] });
      const i = buildConfig().services.length - 1;
      const t = (n) => Array.from({ length: n }, (_, k) => ({ url: `http://10.0.0.${k + 1}:8080/base` }));
      const cases = [
        [{ targets: [{ url: "http://10.0.0.1:8080", weight: 1 }, { url: "http://10.0.0.2:8080", weight: 70000 }] },
          `services[${i}].targets[1].weight: 70000 is out of range (0 to 65535)`],
        [{ targets: [{ url: "http://10.0.0.1:8080", weight: 0 }] }, `services[${i}].targets: at least one target needs a weight above 0`],
        [{ targets: [...t(3), { url: "http://10.0.0.9:8080/other" }] },
          `services[${i}].targets[3].url: base path "/other" differs from targets[0]'s "/base"; the targets of a service share one base path`],
        [{ url: "http://10.0.0.1:8080", targets: t(2) }, `services[${i}].targets: give either \`url\` (one origin) or \`targets\` (several), not both`],
        [{ targets: t(2), algorithm: "consistent-hashing" },
          `services[${i}].hash_on: \`algorithm: consistent-hashing\` needs \`hash_on\` (consumer, ip, header, cookie or path)`],
        [{ targets: t(2), hash_on: "ip" }, `services[${i}].hash_on: \`hash_on\` is only used with \`algorithm: consistent-hashing\``],
        [{ targets: t(2), algorithm: "consistent-hashing", hash_on: "header" },
          `services[${i}].hash_on_header: missing: \`hash_on: header\` needs the header's name here`],
        [{ targets: t(2), algorithm: "consistent-hashing", hash_on: "ip", hash_fallback: "ip" },
          `services[${i}].hash_fallback: the fallback is the same as \`hash_on\``],
        [{ url: "http://10.0.0.1:8080", retries: 11 }, `services[${i}].retries: 11 is out of range (0 to 10)`],
        [{ url: "http://10.0.0.1:8080", retry_on: [200] }, `services[${i}].retry_on[0]: status 200 cannot be retried on (400 to 599)`],
        [{ url: "http://10.0.0.1:8080", healthchecks: { passive: { unhealthy: { http_failures: 1, http_statuses: [42] } } } },
          `services[${i}].healthchecks.passive.unhealthy.http_statuses[0]: 42 is not an HTTP status (100 to 999)`],
        [{ url: "http://10.0.0.1:8080", healthchecks: { active: {} } }, `services[${i}].healthchecks.active: unknown field \`active\`, expected \`passive\``],
        [{ targets: t(65) }, `services[${i}].targets`],
        [{ targets: [] }, `services[${i}]`],
        [{ targets: [{ url: "http://10.0.0.1:8080" }, { url: "http://10.0.0.1:8080" }] }, `services[${i}].targets[1]`],
        [{ targets: t(2), algorithm: "consistent-hashing", hash_on: "ip", slots: 1000 }, `slots`],
        [{ targets: t(2), algorithm: "random" }, `services[${i}].algorithm`],
        [{ targets: t(2), algorithm: "latency" }, `services[${i}].algorithm`],
        [{ targets: t(2), algorithm: "consistent-hashing", hash_on: "query_arg" }, `services[${i}].hash_on`],
        [{ targets: t(2), algorithm: "consistent-hashing", hash_on: "uri_capture" }, `services[${i}].hash_on`],
        [{ targets: t(2), algorithm: "consistent-hashing", hash_on: "ip", hash_on_header: "x-a" }, `services[${i}].hash_on_header`],
        [{ targets: t(2), algorithm: "consistent-hashing", hash_on: "cookie", hash_on_cookie: "s", hash_fallback: "ip" }, `services[${i}].hash_fallback`],
        [{ targets: t(2), algorithm: "consistent-hashing", hash_on: "ip", hash_fallback: "cookie" }, `services[${i}].hash_on_cookie`],
        [{ url: "http://10.0.0.1:8080", healthchecks: { passive: { unhealthy: { http_failures: 256 } } } }, `services[${i}].healthchecks.passive.unhealthy.http_failures`],
        [{ url: "http://10.0.0.1:8080", healthchecks: { passive: { healthy: { successes: 0 } } } }, `services[${i}].healthchecks.passive.healthy.successes`],
        [{ url: "http://10.0.0.1:8080", healthchecks: { passive: { cooldown_ms: 0 } } }, `services[${i}].healthchecks.passive.cooldown_ms`],
        [{ url: "http://10.0.0.1:8080", healthchecks: { passive: { window_ms: 3600001 } } }, `services[${i}].healthchecks.passive.window_ms`],
        [{ url: "http://10.0.0.1:8080", retry_on: ["reset"] }, `services[${i}].retry_on[0]`],
        [{ url: "http://10.0.0.1:8080", healthchecks: { passive: { type: "http" } } }, `services[${i}].healthchecks.passive`],
        [{ url: "http://10.0.0.1:8080", healthchecks: { passive: { healthy: { http_statuses: [200] } } } }, `services[${i}].healthchecks.passive.healthy`],
      ];
      for (const [extra, expected] of cases) {
        const error = await rejected(svc(extra));
        assert.ok(error.includes(expected), `${JSON.stringify(extra)}:\n  ${error}\nshould include\n  ${expected}`);
      }
      // A split route: hash_on consumer is refused, and the weights are checked.
      const split = (extra) => {
        const doc = buildConfig();
        const k = doc.routes.findIndex((r) => r.name === "canary");
        doc.routes[k] = { ...doc.routes[k], ...extra };
        return [doc, k];
      };
      for (const [extra, field] of [
        [{ hash_on: "consumer" }, "hash_on"],
        [{ services: [{ name: "can-a", weight: 0 }, { name: "can-b", weight: 0 }] }, "services"],
        [{ services: [{ name: "can-a", weight: 1 }, { name: "can-a", weight: 1 }] }, "services[1]"],
        [{ service: "can-a" }, ""],
        [{ services: [{ name: "can-a", weight: 1 }, { name: "nope", weight: 1 }] }, "services[1]"],
        [{ services: [{ name: "can-a", weight: 1 }, { name: "can-b", weight: 70000 }] }, "services[1].weight"],
        [{ hash_on: "header" }, "hash_on_header"],
        [{ services: [{ name: "can-a" }, { name: "can-b", weight: 1 }] }, "services[0]"],
      ]) {
        const [doc, k] = split(extra);
        const error = await rejected(doc);
        assert.ok(error.includes(`routes[${k}]${field ? "." + field : ""}`), `${JSON.stringify(extra)}: ${error}`);
      }
      await gw.putConfig(buildConfig());
    });
  });

  describe("traffic-policies.md", () => {
    test("cors: a literal origin is compared normalised and echoed as sent; `null` is allowed literally", async () => {
      for (const o of ["https://app.example.com", "https://APP.example.com:443", "null"]) {
        const res = await get("/cors-literal", { origin: o });
        assert.equal(res.headers["access-control-allow-origin"], o, o);
        assert.ok(varyNames(res).includes("origin"), o);
        // Headers the plugin does not set pass as the origin sent them.
        assert.equal(res.headers["access-control-allow-credentials"], "true", o);
        assert.equal(res.headers["access-control-expose-headers"], "X-Secret", o);
      }
      const other = await get("/cors-literal", { origin: "https://app.example.com:8443" });
      assert.equal(other.headers["access-control-allow-origin"], undefined, "the origin's own is removed");
      assert.ok(varyNames(other).includes("origin"));
    });

    test("cors: a regex without `:` is matched against the host; exposed headers on actual responses only", async () => {
      for (const o of ["https://x.partner.test:8443", "http://partner.test"]) {
        const res = await get("/cors-host-regex", { origin: o });
        assert.equal(res.headers["access-control-allow-origin"], o, o);
        assert.equal(res.headers["access-control-expose-headers"], "X-Total", o);
      }
      const evil = await get("/cors-host-regex", { origin: "https://evilpartner.test" });
      assert.equal(evil.headers["access-control-allow-origin"], undefined);
      const pre = await get(
        "/cors-host-regex",
        { origin: "http://partner.test", "access-control-request-method": "GET" },
        { method: "OPTIONS" },
      );
      assert.equal(pre.status, 200);
      assert.equal(pre.headers["access-control-allow-origin"], "http://partner.test");
      assert.equal(pre.headers["access-control-expose-headers"], undefined);
    });

    test("cors: HEAD requests and ip-restriction's 403 carry the CORS headers", async () => {
      const head = await get("/cors-ip", { origin: APP }, { method: "HEAD" });
      assert.equal(head.status, 200);
      assert.equal(head.body.length, 0);
      assert.equal(head.headers["access-control-allow-origin"], APP);
      const denied = await get("/cors-ip", { origin: APP, "cf-connecting-ip": "203.0.113.9" });
      assertProblem(denied, 403, "ip_not_allowed");
      assert.equal(denied.headers["access-control-allow-origin"], APP);
      assert.ok(varyNames(denied).includes("origin"));
    });

    test("ip-restriction: an IPv4-mapped entry is IPv4; host bits ignored; ::/0 matches only IPv6", async () => {
      for (const ip of ["10.2.3.4", "::ffff:10.2.3.4", "172.31.0.1"]) assert.equal((await get("/ip-mapped", { "cf-connecting-ip": ip })).status, 200, ip);
      for (const ip of ["11.0.0.1", "172.32.0.1", "2001:db8::1"]) assertProblem(await get("/ip-mapped", { "cf-connecting-ip": ip }), 403, "ip_not_allowed", ip);
      for (const ip of ["2001:db8::1", "::1", "fe80::1"]) {
        const p = assertProblem(await get("/ip-v6-all", { "cf-connecting-ip": ip }), 404, "ip_not_allowed", ip);
        assert.equal(p.detail, "Your IP address is not allowed");
        assert.equal(p.title, "Not found");
      }
      for (const ip of ["192.0.2.1", "::ffff:192.0.2.1"]) assert.equal((await get("/ip-v6-all", { "cf-connecting-ip": ip })).status, 200, ip);
    });

    test("ip-restriction: an address that is not usable is refused with 403, whatever `status` says", async () => {
      const p = assertProblem(await get("/ip-v6-all", { "cf-connecting-ip": "not-an-ip" }), 403, "ip_not_allowed");
      assert.equal(p.detail, "Cannot identify the client IP address");
    });

    test("ip-restriction runs before geo-restriction, and after authentication (consumer-scoped instance)", async () => {
      const both = await get("/ip-geo", withCf({ country: "RU" }, { "cf-connecting-ip": "198.51.100.1" }));
      assertProblem(both, 403, "ip_not_allowed");
      assertProblem(await get("/ip-geo", withCf({ country: "RU" }, { "cf-connecting-ip": "192.0.2.1" })), 403, "country_not_allowed");
      // Consumer-scoped: alice from the denied range is refused; anyone else goes on to authentication.
      const alice = await get("/ip-consumer", { apikey: aliceKey, "cf-connecting-ip": "198.51.100.1" });
      assertProblem(alice, 403, "ip_not_allowed");
      assert.equal((await get("/ip-consumer", { apikey: aliceKey, "cf-connecting-ip": "192.0.2.1" })).status, 200);
      assertProblem(await get("/ip-consumer", { "cf-connecting-ip": "198.51.100.1" }), 401, "missing_credentials");
    });

    test("MF-CF-Blob reaches the origin like any other header", async () => {
      const blob = JSON.stringify({ country: "DE" });
      await get("/geo-lower", { "mf-cf-blob": blob });
      assert.equal(echo.requests.at(-1).headers["mf-cf-blob"], blob);
    });

    test("geo-restriction: unknown_country allow lets an unknown country through even when XX is denied", async () => {
      for (const cf of [{ country: "XX" }, {}]) assert.equal((await get("/geo-unknown-allow", withCf(cf))).status, 200, JSON.stringify(cf));
      assertProblem(await get("/geo-unknown-allow", withCf({ country: "RU" })), 403, "country_not_allowed");
    });

    test("geo-restriction: Tor (T1) is not unknown", async () => {
      assertProblem(await get("/geo-xx", withCf({ country: "T1" })), 403, "country_not_allowed");
    });

    test("order: acl runs with authentication, before ip-restriction and request-size-limiting (unlike Kong)", async () => {
      const ip = await get("/order-acl", { apikey: aliceKey, "cf-connecting-ip": "198.51.100.1" });
      assertProblem(ip, 403, "forbidden");
      const big = await get("/order-acl", { apikey: aliceKey }, { method: "POST", body: Buffer.alloc(100, 0x61) });
      assertProblem(big, 403, "forbidden");
      assertProblem(await get("/order-acl", { apikey: aliceKey }), 403, "forbidden");
      // Without credentials: authentication answers first.
      assertProblem(await get("/order-acl", { "cf-connecting-ip": "198.51.100.1" }), 401, "missing_credentials");
    });

    test("geo-restriction: codes are case-insensitive, XK is a code; with `match`, unknown is XX", async () => {
      for (const c of ["DE", "XK"]) assert.equal((await get("/geo-lower", withCf({ country: c }))).status, 200, c);
      assertProblem(await get("/geo-lower", withCf({ country: "FR" })), 403, "country_not_allowed");
      for (const cf of [{ country: "XX" }, { country: "" }, {}]) {
        assert.equal((await get("/geo-xx", withCf(cf))).status, 200, JSON.stringify(cf));
        assertProblem(await get("/geo-lower", withCf(cf)), 403, "country_not_allowed", JSON.stringify(cf));
      }
    });

    test("request-size-limiting: Kong's message; size 0 allows only empty bodies", async () => {
      const p = assertProblem(await get("/size-zero", {}, { method: "POST", body: "x" }), 413, "payload_too_large");
      assert.equal(p.detail, "Request size limit exceeded: the body may have at most 0 bytes");
      assert.equal((await get("/size-zero", { "content-length": "0" }, { method: "POST" })).status, 200);
      assert.equal((await get("/size-zero")).status, 200);
    });

    test("request-size-limiting runs after authentication: no credentials is 401, not 413", async () => {
      assertProblem(await get("/size-auth", {}, { method: "POST", body: Buffer.alloc(100, 0x61) }), 401, "missing_credentials");
      assertProblem(await get("/size-auth", { apikey: aliceKey }, { method: "POST", body: Buffer.alloc(100, 0x61) }), 413, "payload_too_large");
      assert.equal((await get("/size-auth", { apikey: aliceKey }, { method: "POST", body: "0123456789" })).status, 200);
    });

    test("request-size-limiting: require_content_length lets an empty sized body through", async () => {
      assert.equal((await get("/size-strict", { "content-length": "0" }, { method: "POST" })).status, 200);
    });

    test("validation: the error texts of the page", async () => {
      const withPlugins = (plugins) => ({ ...buildConfig(), plugins });
      const cases = [
        [{ name: "ip-restriction", config: { allow: ["10.0.0.1", "10.0.0.0/33"] } },
          'plugins[0].config.allow[1]: "10.0.0.0/33": the prefix length must be a number from 0 to 32'],
        [{ name: "ip-restriction", config: { deny: ["2001:db8::/129"] } }, 'plugins[0].config.deny[0]: "2001:db8::/129": the prefix length must be a number from 0 to 128'],
        [{ name: "ip-restriction", config: { allow: [], deny: [] } }, "plugins[0].config.allow"],
        [{ name: "ip-restriction", config: { deny: ["10.0.0.1"], status: 302 } }, "plugins[0].config.status"],
        [{ name: "ip-restriction", config: { deny: ["10.0.0.1"], message: "" } }, "plugins[0].config.message"],
        [{ name: "geo-restriction", config: { allow_countries: ["DE", "UK"] } },
          'plugins[0].config.allow_countries[1]: "UK" is not an ISO 3166-1 alpha-2 country code'],
        [{ name: "geo-restriction", config: { deny_countries: ["EU"] } }, 'plugins[0].config.deny_countries[0]: "EU"'],
        [{ name: "geo-restriction", config: {} }, "plugins[0].config"],
        [{ name: "geo-restriction", config: { deny_countries: ["RU"], unknown_country: "block" } }, "plugins[0].config"],
        [{ name: "request-size-limiting", config: { allowed_payload_size: -1 } }, "plugins[0].config"],
      ];
      for (const [plugin, expected] of cases) {
        const error = await rejected(withPlugins([plugin]));
        assert.ok(error.includes(expected), `${JSON.stringify(plugin)}:\n  ${error}\nshould include\n  ${expected}`);
      }
      await gw.putConfig(buildConfig());
    });
  });

  describe("plugins.md: request-termination and redirect", () => {
    test("request-termination: Kong's default messages per status", async () => {
      for (const [path, status, message] of [
        ["/rt-403", 403, "Forbidden"],
        ["/rt-404", 404, "Not found"],
        ["/rt-410", 410, "Gone"],
        ["/rt-418", 418, "Request terminated"],
      ]) {
        const res = await get(path);
        assert.equal(res.status, status, path);
        assert.equal(res.headers["content-type"], "application/json; charset=utf-8");
        assert.deepEqual(res.json(), { message }, path);
        assert.ok(res.headers["x-request-id"], path);
      }
      const empty = await get("/rt-205");
      assert.equal(empty.status, 205);
      assert.equal(empty.body.length, 0);
    });

    test("the response phases run on answers of request-termination and redirect (cors, response-transformer)", async () => {
      const res = await get("/cors-maint", { origin: APP });
      assert.equal(res.status, 503);
      assert.deepEqual(res.json(), { message: "maintenance" });
      assert.equal(res.headers["access-control-allow-origin"], APP);
      assert.equal(res.headers["access-control-expose-headers"], "X-Request-Id");
      assert.equal(res.headers["x-served-by"], "edgegate");
      // The preflight is still answered by cors (as in Kong, where cors runs first), so that the browser
      // sends the actual request and the page can read the maintenance answer.
      const pre = await get("/cors-maint", { origin: APP, "access-control-request-method": "GET" }, { method: "OPTIONS" });
      assert.equal(pre.status, 200);
      assert.equal(pre.headers["access-control-allow-origin"], APP);
      assert.equal(pre.body.length, 0);
      // A plain OPTIONS (not a preflight) is terminated like any request.
      assert.equal((await get("/cors-maint", { origin: APP }, { method: "OPTIONS" })).status, 503);
      const redir = await get("/cors-redir", { origin: APP });
      assert.equal(redir.status, 301);
      assert.equal(redir.headers["access-control-allow-origin"], APP);
    });

    test("request-termination: a HEAD request gets the status and headers, no body", async () => {
      const res = await get("/rt-410", {}, { method: "HEAD" });
      assert.equal(res.status, 410);
      assert.equal(res.body.length, 0);
      assert.ok(res.headers["x-request-id"]);
    });

    test("request-termination echo: every credential header redacted, first query value, host and client_ip", async () => {
      const res = await get("/rt-echo?a=1&a=2&b", {
        cookie: "s=secret-cookie",
        "x-api-key": "secret-key",
        apikey: "secret-apikey",
        "proxy-authorization": "Basic c2VjcmV0",
        "X-Mixed-Case": "v",
        "cf-connecting-ip": "192.0.2.44",
      });
      assert.equal(res.status, 200);
      assert.ok(!/secret/.test(res.text), res.text);
      const e = res.json();
      for (const h of ["cookie", "x-api-key", "apikey", "proxy-authorization"]) assert.equal(e.request.headers[h], "[redacted]", h);
      assert.equal(e.request.headers["x-mixed-case"], "v");
      assert.deepEqual(e.request.query, { a: "1", b: "" });
      assert.equal(e.request.client_ip, "192.0.2.44");
      assert.equal(e.request.host, gw.url.hostname, "the host without the port");
      assert.deepEqual(e.request.uri_captures, {});
    });

    test("request-termination scoped to a consumer: echo shows the consumer", async () => {
      const res = await get("/rt-consumer", { apikey: aliceKey });
      assert.equal(res.status, 200);
      assert.deepEqual(res.json().consumer, { username: "alice" });
      assert.equal(res.json().request.headers.apikey, "[redacted]");
    });

    test("redirect: HEAD gets the redirect; keep_incoming_query without a query of its own; encoding kept", async () => {
      const head = await get("/redir-head/x?y=1", {}, { method: "HEAD" });
      assert.equal(head.status, 301);
      assert.equal(head.headers.location, "https://new.example.com/landing");
      assert.equal(head.body.length, 0);
      let res = await get("/redir-query?q=a%20b&r=%2F");
      assert.equal(res.status, 302);
      assert.equal(res.headers.location, "/t?q=a%20b&r=%2F");
      res = await get("/redir-query");
      assert.equal(res.headers.location, "/t");
    });

    test("redirect: the path before strip_path; a capture cannot make a same-host path another host", async () => {
      let res = await get("/redir-strip/a/b?c=1");
      assert.equal(res.headers.location, "https://n.example.com/redir-strip/a/b?c=1");
      res = await get("/go//evil.example/x");
      assert.equal(res.status, 301);
      assert.equal(res.headers.location, "/evil.example/x");
      res = await get("/go/\\\\evil.example");
      assert.equal(res.headers.location, "/evil.example");
      // Nor the host of an absolute location.
      for (const [path, location] of [
        ["/ext@evil.example", "https://example.com/@evil.example"],
        ["/ext.evil.example", "https://example.com/.evil.example"],
        ["/ext/docs/a", "https://example.com/docs/a"],
        ["/ext", "https://example.com"],
      ]) {
        assert.equal((await get(path)).headers.location, location, path);
      }
    });

    test("validation: status ranges and texts", async () => {
      const withPlugins = (plugins) => ({ ...buildConfig(), plugins });
      for (const [plugin, expected] of [
        [{ name: "request-termination", config: { status_code: 204, body: "x" } }, "plugins[0].config.status_code"],
        [{ name: "request-termination", config: { status_code: 304, echo: true } }, "plugins[0].config.status_code"],
        [{ name: "request-termination", config: { status_code: 600 } }, "plugins[0].config.status_code: 600 is not a status the gateway can answer with: use 200 to 599"],
        [{ name: "request-termination", config: { message: "a", body: "b" } }, "plugins[0].config.body: give `message` or `body`, not both"],
        [{ name: "request-termination", config: { content_type: "text/html" } }, "plugins[0].config.content_type: `content_type` needs `body`"],
        [{ name: "redirect", config: {} }, "plugins[0].config: missing field `location`"],
        [{ name: "redirect", config: { location: "/a", status_code: 200 } }, "plugins[0].config.status_code: 200 is not a redirect status: use 301, 302, 303, 307 or 308"],
        [{ name: "redirect", config: { location: "/a/$(headers.x)" } }, "plugins[0].config.location: unknown template `$(headers.x)`: only `$(uri_captures.<name>)` is supported"],
      ]) {
        const error = await rejected(withPlugins([plugin]));
        assert.ok(error.includes(expected), `${JSON.stringify(plugin)}:\n  ${error}\nshould include\n  ${expected}`);
      }
      await gw.putConfig(buildConfig());
    });
  });
});
