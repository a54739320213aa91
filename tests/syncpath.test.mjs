// The synchronous path (src/lib.rs `fast`, src/proxy.rs `start_fast`, src/pipeline.rs `request_now`): a
// request that arrives while the configuration in service is not due for a check takes it (in production most
// requests: CONFIG_RELOAD_SECONDS is 30). With 0 (the harness's default) every request takes the asynchronous
// one. Each statement below is checked on both: with 0, and with 600 after one request has loaded the version
// (every later request is then served from memory, on the synchronous path).
//
// Run every test file on the synchronous path too: EDGEGATE_TEST_RELOAD=1 (README, Testing).

import { describe, test, before, after } from "node:test";
import assert from "node:assert/strict";
import crypto from "node:crypto";
import { startGateway, startOrigin, request, closedPort, problemOf, waitFor, sleep } from "./support/harness.mjs";

const APP = "https://app.example.com";

function config(origin, slow, dead) {
  const route = (name, paths, extra = {}) => ({ name, service: "origin", paths, ...extra });
  return {
    format_version: 1,
    services: [
      { name: "origin", url: origin.url },
      { name: "dead", url: dead, retries: 0 },
      { name: "slow", url: slow.url, timeout_ms: 300, retries: 0 },
      // The first target refuses connections: the default retry (connect-failure, once) goes to the second.
      { name: "pair", targets: [{ url: dead }, { url: origin.url }], algorithm: "round-robin" },
      { name: "hashed", url: origin.url, algorithm: "consistent-hashing", hash_on: "cookie", hash_on_cookie: "eg" },
    ],
    routes: [
      route("plain", ["/plain"], { methods: ["GET", "POST", "OPTIONS"] }),
      { name: "dead", service: "dead", paths: ["/dead"] },
      { name: "slow", service: "slow", paths: ["/slow"] },
      { name: "pair", service: "pair", paths: ["/pair"] },
      { name: "hashed", service: "hashed", paths: ["/hashed"] },
      route("closed", ["/closed"]),
      route("closed-json", ["/closed-json"]),
      route("shaped", ["/shaped"]),
      route("shaped-dead", ["/shaped-dead"], { service: "dead" }),
      route("cors", ["/cors"]),
      route("keyed", ["/keyed"]),
      route("limited", ["/limited"]),
      route("sized", ["/sized"]),
      route("denied", ["/denied"]),
      route("allowed-dead", ["/allowed-dead"], { service: "dead" }),
      route("shaped-pair", ["/shaped-pair"], { service: "pair" }),
    ],
    plugins: [
      { name: "request-termination", route: "closed", config: { status_code: 503, message: "closed" } },
      { name: "response-transformer", route: "closed", config: { add: { headers: ["x-shaped:closed"] } } },
      { name: "request-termination", route: "closed-json", config: { status_code: 403, message: "no" } },
      { name: "response-transformer", route: "closed-json", config: { add: { json: ["extra:1"], json_types: ["number"] } } },
      {
        name: "response-transformer", route: "shaped",
        config: { add: { headers: ["x-shaped:yes"], json: ["edge:true"], json_types: ["boolean"] }, remove: { json: ["headers"] } },
      },
      { name: "response-transformer", route: "shaped-dead", config: { add: { headers: ["x-shaped:dead"] } } },
      { name: "cors", route: "cors", config: { origins: [APP], methods: ["GET"], max_age: 60 } },
      { name: "cors", route: "keyed", config: { origins: [APP] } },
      { name: "key-auth", route: "keyed" },
      { name: "rate-limiting", route: "limited", config: { minute: 2, limit_by: "ip", policy: "local" } },
      { name: "request-size-limiting", route: "sized", config: { allowed_payload_size: 10, size_unit: "bytes" } },
      { name: "ip-restriction", route: "denied", config: { deny: ["0.0.0.0/0", "::/0"] } },
      { name: "ip-restriction", route: "allowed-dead", config: { deny: ["192.0.2.0/24"] } },
      { name: "response-transformer", route: "shaped-pair", config: { add: { headers: ["x-shaped:pair"] } } },
    ],
  };
}

/** The same requests on both paths: what the client gets and the access log line, without what varies per request. */
const PROBES = [
  ["GET", "/plain/p?x=1"],
  ["HEAD", "/plain/p"],
  ["POST", "/plain/p", { "content-type": "text/plain" }, "posted"],
  ["GET", "/nowhere"],
  ["DELETE", "/plain"],
  ["OPTIONS", "/plain", { "max-forwards": "0" }],
  ["GET", "/dead"],
  ["GET", "/closed"],
  ["GET", "/closed-json"],
  ["HEAD", "/shaped/h"],
  ["GET", "/shaped/y"],
  ["GET", "/shaped-dead"],
  ["GET", "/cors", { origin: APP }],
  ["OPTIONS", "/cors", { origin: APP, "access-control-request-method": "GET" }],
  ["GET", "/keyed", { apikey: "ann-key", origin: APP }],
  ["GET", "/keyed", { apikey: "nobody-key" }],
  ["GET", "/denied"],
  ["GET", "/allowed-dead"],
  ["POST", "/sized", { "content-type": "text/plain" }, "tiny"],
  ["GET", "/hashed", { cookie: "eg=abc" }],
];
const seen = {};

function normalized(res, log) {
  const headers = { ...res.headers };
  for (const h of ["date", "x-request-id", "keep-alive", "connection"]) delete headers[h];
  for (const h of ["x-edgegate-proxy-latency", "x-edgegate-upstream-latency"]) if (h in headers) headers[h] = "ms";
  let body = res.text;
  try {
    const json = JSON.parse(body);
    delete json.request_id;
    // The origin's echo: the headers it got (their values carry ids and trace contexts).
    if (json.headers) json.headers = Object.keys(json.headers).sort();
    body = json;
  } catch {
    // not JSON
  }
  const line = { ...log };
  for (const k of ["request_id", "total_latency_ms", "upstream_latency_ms"]) if (k in line) line[k] = typeof line[k];
  // Each run has its own gateway and origins (ports).
  return JSON.parse(JSON.stringify({ status: res.status, headers, body, log: line }).replace(/127\.0\.0\.1:\d+/g, "127.0.0.1:port"));
}

function assertProblem(res, status, code) {
  assert.equal(res.status, status, res.text);
  const p = problemOf(res);
  assert.equal(p.code, code, res.text);
  return p;
}

for (const reload of ["0", "600"]) {
  describe(`synchronous and asynchronous paths agree (CONFIG_RELOAD_SECONDS ${reload})`, { timeout: 120_000 }, () => {
    let gw, origin, slow;
    before(async () => {
      origin = await startOrigin();
      slow = await startOrigin(async (req, res) => {
        await sleep(1500);
        res.writeHead(200).end("late");
      });
      const dead = `http://127.0.0.1:${await closedPort()}`;
      gw = await startGateway({ bindings: { CONFIG_RELOAD_SECONDS: reload }, config: config(origin, slow, dead) });
      // Consumer ann with key "ann-key", as `scripts/config consumer` and `key` write it.
      const put = (key, value) => gw.kv.put(key, JSON.stringify(value));
      await put("consumers/c-ann", { id: "c-ann", username: "ann", groups: [] });
      await put("consumer-names/ann", { id: "c-ann" });
      const hash = crypto.createHash("sha256").update("ann-key").digest("hex");
      await put(`credentials/key-auth/${hash}`, { id: "cred-ann", consumer_id: "c-ann" });
      // Loads the version; with 600 every later request is served from memory (the synchronous path).
      const warm = await request(gw.at("/plain/warm"));
      assert.equal(warm.status, 200, `${warm.text} ${JSON.stringify(gw.logs.filter((l) => l.json?.event !== "request"))}`);
    });
    after(async () => {
      await gw?.dispose();
      await origin?.close();
      await slow?.close();
    });

    /** The access log line of the response `res` (by its X-Request-Id). */
    const logOf = async (res) => {
      const id = res.headers["x-request-id"];
      const line = await waitFor(() => gw.logs.find((l) => l.json?.event === "request" && l.json.request_id === id), {
        what: `access log of ${id}`,
      });
      return line.json;
    };

    test("the same answers and access log lines on both paths (compared below)", async () => {
      const out = [];
      for (const [method, path, headers = {}, body] of PROBES) {
        const res = await request(gw.at(path), { method, headers, body });
        out.push([`${method} ${path}`, normalized(res, await logOf(res))]);
      }
      seen[reload] = out;
    });

    test("a plain route: proxied, and logged with route, service, upstream, attempts and version", async () => {
      const res = await request(gw.at("/plain/a?b=1"));
      assert.equal(res.status, 200);
      assert.equal(res.json().url, "/a?b=1");
      const log = await logOf(res);
      assert.equal(log.route, "plain");
      assert.equal(log.service, "origin");
      assert.equal(log.upstream, origin.url);
      assert.equal(log.attempts, 1);
      assert.equal(log.status, 200);
      assert.equal(log.config_version, 1);
    });

    test("no route is 404 no_route, a method the route lacks 405 with Allow", async () => {
      assertProblem(await request(gw.at("/nowhere")), 404, "no_route");
      const res = await request(gw.at("/plain"), { method: "DELETE" });
      assertProblem(res, 405, "method_not_allowed");
      assert.match(res.headers.allow, /GET/);
      const log = await logOf(res);
      assert.equal(log.status, 405);
      assert.equal(log.config_version, 1);
    });

    test("OPTIONS with Max-Forwards 0 is answered by the gateway, on routes with and without plugins", async () => {
      const plain = await request(gw.at("/plain"), { method: "OPTIONS", headers: { "max-forwards": "0" } });
      assert.equal(plain.status, 200);
      assert.equal(plain.headers.allow, "GET, OPTIONS, POST");
      const shaped = await request(gw.at("/shaped"), { method: "OPTIONS", headers: { "max-forwards": "0" } });
      assert.equal(shaped.status, 200);
      assert.equal(shaped.headers["x-shaped"], "yes");
      assert.equal(origin.requests.filter((r) => r.method === "OPTIONS").length, 0);
    });

    test("an unreachable origin is 502, a slow one 504, logged with their error codes", async () => {
      const dead = await request(gw.at("/dead"));
      assertProblem(dead, 502, "upstream_unreachable");
      assert.equal((await logOf(dead)).error, "upstream_unreachable");
      const late = await request(gw.at("/slow"));
      assertProblem(late, 504, "upstream_timeout");
      assert.equal((await logOf(late)).error, "upstream_timeout");
    });

    test("a failed connection is retried on the next target", async () => {
      const attempts = [];
      for (let i = 0; i < 4; i++) {
        const res = await request(gw.at("/pair"));
        assert.equal(res.status, 200, res.text);
        const log = await logOf(res);
        assert.equal(log.upstream, origin.url);
        attempts.push(log.attempts);
      }
      assert.ok(attempts.every((n) => n === 1 || n === 2) && attempts.includes(2), `attempts ${attempts}`);
    });

    test("the hash cookie is set on a route without plugins", async () => {
      const res = await request(gw.at("/hashed"));
      assert.equal(res.status, 200);
      assert.match(String(res.headers["set-cookie"]), /^eg=[0-9a-f-]{36}; Path=\/; HttpOnly$/);
      const again = await request(gw.at("/hashed"), { headers: { cookie: "eg=abc" } });
      assert.equal(again.headers["set-cookie"], undefined);
    });

    test("a plugin's answer goes through the response phases", async () => {
      const res = await request(gw.at("/closed"));
      assert.equal(res.status, 503);
      assert.deepEqual(res.json(), { message: "closed" });
      assert.equal(res.headers["x-shaped"], "closed");
      assert.equal((await logOf(res)).status, 503);
      // A body_filter hook on a plugin's answer (read in the answer's promise chain on the synchronous path).
      const json = await request(gw.at("/closed-json"));
      assert.equal(json.status, 403);
      assert.deepEqual(json.json(), { message: "no", extra: 1 });
      assert.equal((await logOf(json)).status, 403);
    });

    test("response-transformer edits headers and the JSON body of the origin's answer, and error answers", async () => {
      const res = await request(gw.at("/shaped/x"));
      assert.equal(res.status, 200);
      assert.equal(res.headers["x-shaped"], "yes");
      const body = res.json();
      assert.equal(body.edge, true);
      assert.equal(body.headers, undefined);
      assert.equal(body.url, "/x");
      const log = await logOf(res);
      assert.equal(log.status, 200);
      assert.equal(log.upstream, origin.url);
      const dead = await request(gw.at("/shaped-dead"));
      assertProblem(dead, 502, "upstream_unreachable");
      assert.equal(dead.headers["x-shaped"], "dead");
      assert.equal((await logOf(dead)).error, "upstream_unreachable");
    });

    test("cors: a preflight is answered, a simple request gets the headers", async () => {
      const pre = await request(gw.at("/cors"), {
        method: "OPTIONS",
        headers: { origin: APP, "access-control-request-method": "GET" },
      });
      assert.equal(pre.status, 200);
      assert.equal(pre.headers["access-control-allow-origin"], APP);
      assert.equal(pre.headers["access-control-max-age"], "60");
      const get = await request(gw.at("/cors"), { headers: { origin: APP } });
      assert.equal(get.status, 200);
      assert.equal(get.headers["access-control-allow-origin"], APP);
    });

    test("key-auth after a synchronous hook: the consumer is logged, a missing key is 401 with cors headers", async () => {
      const ok = await request(gw.at("/keyed"), { headers: { apikey: "ann-key", origin: APP } });
      assert.equal(ok.status, 200, ok.text);
      assert.equal(ok.headers["access-control-allow-origin"], APP);
      assert.equal(ok.json().headers["x-consumer-username"], "ann");
      assert.equal((await logOf(ok)).consumer, "ann");
      const no = await request(gw.at("/keyed"), { headers: { origin: APP } });
      assertProblem(no, 401, "missing_credentials");
      assert.equal(no.headers["access-control-allow-origin"], APP);
    });

    test("rate-limiting: the third request in a minute is 429 with the limit headers", async () => {
      const codes = [];
      let last;
      for (let i = 0; i < 3; i++) {
        last = await request(gw.at("/limited"));
        codes.push(last.status);
      }
      assert.deepEqual(codes, [200, 200, 429]);
      assert.equal(last.headers["x-ratelimit-limit-minute"], "2");
      assert.equal(last.headers["x-ratelimit-remaining-minute"], "0");
    });

    test("request-size-limiting: a chunked body over the limit is 413, one within it is proxied", async () => {
      async function* chunks(n) {
        for (let i = 0; i < n; i++) yield Buffer.alloc(8, 0x61);
      }
      const small = await request(gw.at("/sized"), { method: "POST", body: chunks(1) });
      assert.equal(small.status, 200, small.text);
      assert.equal(small.json().body, "aaaaaaaa");
      const big = await request(gw.at("/sized"), { method: "POST", body: chunks(4) });
      assertProblem(big, 413, "payload_too_large");
    });

    test("ip-restriction denies with 403; behind it, an unreachable origin is 502", async () => {
      assertProblem(await request(gw.at("/denied")), 403, "ip_not_allowed");
      const dead = await request(gw.at("/allowed-dead"));
      assertProblem(dead, 502, "upstream_unreachable");
      const log = await logOf(dead);
      assert.equal(log.error, "upstream_unreachable");
      assert.equal(log.route, "allowed-dead");
    });

    test("a retried request still goes through its route's response plugins", async () => {
      const attempts = [];
      for (let i = 0; i < 4; i++) {
        const res = await request(gw.at("/shaped-pair"));
        assert.equal(res.status, 200, res.text);
        assert.equal(res.headers["x-shaped"], "pair");
        const log = await logOf(res);
        assert.equal(log.upstream, origin.url);
        attempts.push(log.attempts);
      }
      assert.ok(attempts.every((n) => n === 1 || n === 2) && attempts.includes(2), `attempts ${attempts}`);
    });
  });
}

test("both paths gave the same answers and access log lines", () => {
  assert.ok(seen["0"] && seen["600"], "both runs above ran");
  for (let i = 0; i < PROBES.length; i++) assert.deepEqual(seen["600"][i], seen["0"][i]);
});
