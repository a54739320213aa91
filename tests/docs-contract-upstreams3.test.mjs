// The docs as a contract, third audit of docs/upstreams.md: what the first two passes
// (tests/upstreams.test.mjs, tests/docs-contract-upstreams2.test.mjs) left out. Boundary values (weight
// 65535, retries 10, every weight 0, empty and duplicate targets), a target URL with a base path joined with
// the route's path, what the client gets when every attempt fails (the last attempt's outcome), a POST after
// an origin 5xx, the origin's Retry-After, and a sticky split when a service is added. Every statement on
// both request paths (CONFIG_RELOAD_SECONDS "0": asynchronous; "600" after a warm-up request: synchronous),
// so each gateway gets one configuration at start; validation (path-independent) runs once.
import { describe, test, before, after } from "node:test";
import assert from "node:assert/strict";
import { startGateway, startOrigin, request, closedPort, waitFor, problemOf, rejected, putAndWait } from "./support/harness.mjs";

const METHODS = ["GET", "HEAD", "POST", "PUT", "DELETE", "PATCH"];

/**
 * An origin named `name`: `{"origin", "hit", "url", "method", "body"}` with `x-origin: name`, where `hit`
 * counts the requests this origin received. The query may say `status=N` (answer N), `ra=S`
 * (`Retry-After: S`), `only=<name>` (the directives apply to that origin only).
 */
async function namedOrigin(name) {
  const o = await startOrigin(async (req, res, record) => {
    const q = new URL(record.url, "http://x").searchParams;
    const mine = !q.get("only") || q.get("only") === name;
    const body = JSON.stringify({ origin: name, hit: o.hits, url: record.url, method: record.method, body: record.body.toString("utf8") });
    const headers = { "content-type": "application/json", "x-origin": name };
    if (mine && q.get("ra")) headers["retry-after"] = q.get("ra");
    res.writeHead(mine && q.get("status") ? Number(q.get("status")) : 200, headers);
    res.end(body);
  });
  o.name = name;
  return o;
}

function assertProblem(res, status, code) {
  assert.equal(res.status, status, res.text);
  assert.match(res.headers["content-type"] ?? "", /^application\/problem\+json/);
  const p = problemOf(res);
  assert.equal(p.code, code, res.text);
  return p;
}

const originOf = (res) => res.headers["x-origin"] ?? `status ${res.status}`;

async function logOf(gw, id) {
  const line = await waitFor(() => gw.logs.find((l) => l.json?.event === "request" && l.json.request_id === id), { what: `log of ${id}` });
  return line.json;
}

let serial = 0;
const rid = (what) => `u3-${what}-${++serial}`;

for (const reload of ["0", "600"]) describe(`docs/upstreams.md, third audit (CONFIG_RELOAD_SECONDS ${reload})`, { timeout: 300_000 }, () => {
  let gw, a, b, c, dead;
  before(async () => {
    [a, b, c] = await Promise.all(["a", "b", "c"].map(namedOrigin));
    dead = `http://127.0.0.1:${await closedPort()}`;
    const svc = (name, fields) => ({ name, ...fields });
    const route = (name, service, paths, extra = {}) => ({ name, service, paths, methods: METHODS, ...extra });
    gw = await startGateway({
      bindings: { CONFIG_RELOAD_SECONDS: reload },
      config: {
        format_version: 1,
        services: [
          svc("plain", { url: a.url }),
          svc("maxw", { targets: [{ url: a.url, weight: 65535 }, { url: b.url, weight: 65535 }, { url: c.url, weight: 0 }] }),
          svc("based", { targets: [{ url: `${a.url}/base` }, { url: `${b.url}/base` }] }),
          svc("allfail", { url: c.url, retries: 2, retry_on: [503] }),
          svc("allfail2", { targets: [{ url: a.url }, { url: b.url }], retries: 1, retry_on: [503] }),
          svc("mixfail", { targets: [{ url: a.url }, { url: dead }], retries: 1, retry_on: ["connect-failure", 503] }),
          svc("post", { url: a.url, retries: 2, retry_on: [500, 503] }),
          svc("postyes", { url: a.url, retries: 2, retry_on: [500, 503], retry_non_idempotent: true }),
          svc("ra", { url: b.url, retries: 1, retry_on: [503] }),
          svc("rahealth", { url: c.url, retries: 0, healthchecks: { passive: { unhealthy: { http_failures: 1 }, cooldown_ms: 5000 } } }),
          svc("max10", { url: b.url, retries: 10, retry_on: [503] }),
          svc("w0rr", { targets: [{ url: dead, weight: 100 }, { url: a.url, weight: 0 }], retries: 2 }),
          svc("w0lc", { targets: [{ url: dead, weight: 100 }, { url: a.url, weight: 0 }], retries: 2, algorithm: "least-connections" }),
          svc("w0ch", {
            targets: [{ url: dead, weight: 100 }, { url: a.url, weight: 0 }],
            retries: 2,
            algorithm: "consistent-hashing",
            hash_on: "header",
            hash_on_header: "x-user",
          }),
          svc("emptyon", { targets: [{ url: dead }, { url: a.url }], retries: 3, retry_on: [] }),
          svc("sdead", { url: dead, retries: 0, healthchecks: { passive: { unhealthy: { tcp_failures: 1 }, cooldown_ms: 60000 } } }),
          svc("v1", { url: `${a.url}/v1` }),
          svc("v2", { url: `${b.url}/v2` }),
          svc("v3", { url: `${c.url}/v3` }),
        ],
        routes: [
          route("warm", "plain", ["/warm"]),
          route("maxw", "maxw", ["/maxw"]),
          route("based", "based", ["/based"]),
          route("basedfull", "based", ["/full"], { strip_path: false }),
          route("allfail", "allfail", ["/allfail"]),
          route("allfail2", "allfail2", ["/allfail2"]),
          route("mixfail", "mixfail", ["/mixfail"]),
          route("post", "post", ["/post"]),
          route("postyes", "postyes", ["/postyes"]),
          route("ra", "ra", ["/ra"]),
          route("rahealth", "rahealth", ["/rahealth"]),
          route("max10", "max10", ["/max10"]),
          route("w0rr", "w0rr", ["/w0rr"]),
          route("emptyon", "emptyon", ["/emptyon"]),
          { name: "sout", paths: ["/sout"], services: [{ name: "sdead", weight: 50 }, { name: "v2", weight: 50 }] },
          route("w0lc", "w0lc", ["/w0lc"]),
          route("w0ch", "w0ch", ["/w0ch"]),
          { name: "c2", paths: ["/c2"], services: [{ name: "v1", weight: 80 }, { name: "v2", weight: 20 }], hash_on: "header", hash_on_header: "x-user" },
          {
            name: "c3",
            paths: ["/c3"],
            services: [{ name: "v1", weight: 80 }, { name: "v2", weight: 20 }, { name: "v3", weight: 25 }],
            hash_on: "header",
            hash_on_header: "x-user",
          },
        ],
      },
    });
    // Loads the version: with 600, every later request takes the synchronous path.
    assert.equal((await request(gw.at("/warm"))).status, 200);
  });
  after(async () => {
    await gw?.dispose();
    for (const x of [a, b, c]) await x?.close();
  });

  test("weight 65535 (the maximum) is accepted: two targets of 65535 alternate, the one of weight 0 gets nothing", async () => {
    const seen = [];
    for (let i = 0; i < 8; i++) seen.push(originOf(await request(gw.at("/maxw/x"))));
    assert.ok(!seen.includes("c"), seen.join());
    for (let i = 1; i < seen.length; i++) assert.notEqual(seen[i], seen[i - 1], `interleaved: ${seen.join()}`);
  });

  test("a target of weight 0 gets no request, not even a retry, with any algorithm", async () => {
    const before = a.hits;
    for (const path of ["/w0rr/x", "/w0lc/x", "/w0ch/x"]) {
      for (let i = 0; i < 2; i++) {
        const id = rid("w0");
        assertProblem(await request(gw.at(path), { headers: { "x-request-id": id, "x-user": `u${i}` } }), 502, "upstream_unreachable");
        const line = await logOf(gw, id);
        assert.equal(line.attempts, 3, `${path}: retries 2 on the one target with a weight`);
        assert.equal(line.upstream, dead);
      }
    }
    assert.equal(a.hits, before, "the weight-0 target is never contacted");
  });

  test("retry_on: [] retries nothing, whatever `retries` says", async () => {
    const statuses = [];
    for (let i = 0; i < 4; i++) {
      const id = rid("emptyon");
      const res = await request(gw.at("/emptyon/x"), { headers: { "x-request-id": id } });
      statuses.push(res.status);
      assert.equal((await logOf(gw, id)).attempts, 1);
    }
    assert.deepEqual(statuses.sort(), [200, 200, 502, 502]);
  });

  test("a split: a request placed on a service whose targets are all out gets 503 no_healthy_upstream, not another service", async () => {
    // The request id places the request; the same id is placed alike every time.
    let id;
    for (let i = 0; i < 40 && !id; i++) {
      const candidate = rid("sout");
      const res = await request(gw.at("/sout/x"), { headers: { "x-request-id": candidate } });
      if (res.status === 502) id = candidate;
      else assert.equal(originOf(res), "b");
    }
    assert.ok(id, "some request was placed on the dead service");
    for (let i = 0; i < 3; i++) {
      const res = await request(gw.at("/sout/x"), { headers: { "x-request-id": id } });
      assertProblem(res, 503, "no_healthy_upstream");
    }
  });

  test("a target's base path is joined with the forwarded path and the query, the same for every target", async () => {
    const urls = {};
    for (let i = 0; i < 4; i++) {
      const res = await request(gw.at("/based/x/y?q=1&r=a%20b"));
      assert.equal(res.status, 200);
      (urls[originOf(res)] ??= new Set()).add(res.json().url);
    }
    assert.deepEqual(Object.keys(urls).sort(), ["a", "b"]);
    for (const k of ["a", "b"]) assert.deepEqual([...urls[k]], ["/base/x/y?q=1&r=a%20b"], k);
    // strip_path false: the whole request path follows the base path.
    const full = await request(gw.at("/full/z"));
    assert.equal(full.json().url, "/base/full/z");
    // The bare route path: the base path alone.
    const bare = await request(gw.at("/based"));
    assert.equal(bare.json().url, "/base");
  });

  test("every retry fails with a status: the client gets the last attempt's response (status, body, headers)", async () => {
    const id = rid("allfail");
    const before = c.hits;
    const res = await request(gw.at("/allfail/x?status=503"), { headers: { "x-request-id": id } });
    assert.equal(res.status, 503);
    assert.equal(c.hits - before, 3, "retries: 2 → three attempts");
    const body = res.json();
    assert.equal(body.origin, "c", "the origin's body, not a problem document");
    assert.equal(body.hit, c.hits, "the body of the third (last) attempt");
    const line = await logOf(gw, id);
    assert.equal(line.attempts, 3);
    assert.equal(line.status, 503);

    // Two targets, both answering 503: the body is the second target's.
    for (let i = 0; i < 2; i++) {
      const id2 = rid("allfail2");
      const [ha, hb] = [a.hits, b.hits];
      const r = await request(gw.at("/allfail2/x?status=503"), { headers: { "x-request-id": id2 } });
      assert.equal(r.status, 503);
      assert.equal(a.hits - ha, 1);
      assert.equal(b.hits - hb, 1);
      const l = await logOf(gw, id2);
      assert.equal(l.attempts, 2);
      assert.equal(r.json().origin, originOf(r));
      assert.equal(l.upstream, r.json().origin === "a" ? a.url : b.url, "the log names the target whose answer the client got");
    }
  });

  test("a status then a failed connection (or the reverse): the client gets the last attempt's outcome", async () => {
    const outcomes = new Set();
    for (let i = 0; i < 6; i++) {
      const id = rid("mixfail");
      const res = await request(gw.at("/mixfail/x?status=503"), { headers: { "x-request-id": id } });
      const line = await logOf(gw, id);
      assert.equal(line.attempts, 2, JSON.stringify(line));
      if (res.status === 502) {
        // a answered 503 first, then the dead target failed: 502, never a's 503.
        assertProblem(res, 502, "upstream_unreachable");
        assert.equal(line.upstream, dead);
        outcomes.add("503 then 502");
      } else {
        assert.equal(res.status, 503);
        assert.equal(res.json().origin, "a");
        assert.equal(line.upstream, a.url);
        outcomes.add("502 then 503");
      }
    }
    assert.equal(outcomes.size, 2, [...outcomes].join());
  });

  test("an origin 5xx on a POST is not retried even when listed in retry_on; PUT is; retry_non_idempotent retries the POST with its body", async () => {
    let before = a.hits;
    const post = await request(gw.at("/post/x?status=503"), { method: "POST", body: "order-1" });
    assert.equal(post.status, 503);
    assert.equal(post.json().origin, "a");
    assert.equal(a.hits - before, 1, "one attempt");
    before = a.hits;
    const patch = await request(gw.at("/post/x?status=500"), { method: "PATCH", body: "p" });
    assert.equal(patch.status, 500);
    assert.equal(a.hits - before, 1, "one attempt");
    before = a.hits;
    const put = await request(gw.at("/post/x?status=503"), { method: "PUT", body: "put-1" });
    assert.equal(put.status, 503);
    assert.equal(a.hits - before, 3, "PUT is idempotent: retries 2 → three attempts");
    assert.deepEqual(a.requests.slice(-3).map((r) => r.body.toString()), ["put-1", "put-1", "put-1"]);
    before = a.hits;
    const yes = await request(gw.at("/postyes/x?status=503"), { method: "POST", body: "order-2" });
    assert.equal(yes.status, 503);
    assert.equal(a.hits - before, 3);
    assert.deepEqual(a.requests.slice(-3).map((r) => r.body.toString()), ["order-2", "order-2", "order-2"]);
  });

  test("a body of 65,536 bytes (Content-Length) is kept and retried; one byte more is streamed and never retried", async () => {
    for (const [size, attempts] of [[65536, 3], [65537, 1]]) {
      const body = Buffer.alloc(size, 0x61 + (size % 26));
      const before = a.hits;
      const res = await request(gw.at("/post/x?status=503"), { method: "PUT", body, headers: { "content-length": String(size) } });
      assert.equal(res.status, 503, `${size}`);
      assert.equal(a.hits - before, attempts, `${size} bytes`);
      for (const r of a.requests.slice(-attempts)) assert.ok(r.body.equals(body), `${size}: the whole body each time`);
    }
  });

  test("the origin's Retry-After does not delay a retry; the last response's Retry-After reaches the client", async () => {
    const before = b.hits;
    const t0 = Date.now();
    const res = await request(gw.at("/ra/x?status=503&ra=120"));
    const took = Date.now() - t0;
    assert.equal(res.status, 503);
    assert.equal(b.hits - before, 2, "retried at once");
    assert.ok(took < 20_000, `no wait of 120 s: ${took} ms`);
    assert.equal(res.headers["retry-after"], "120");
    assert.equal(res.json().origin, "b");
  });

  test("passive checks ignore the origin's Retry-After: the breaker's cool-down gives no_healthy_upstream's Retry-After", async () => {
    const first = await request(gw.at("/rahealth/x?status=503&ra=120"));
    assert.equal(first.status, 503);
    assert.equal(first.headers["retry-after"], "120", "the origin's own answer passes as it is");
    const before = c.hits;
    const out = await request(gw.at("/rahealth/x"));
    assertProblem(out, 503, "no_healthy_upstream");
    const secs = Number(out.headers["retry-after"]);
    assert.ok(secs >= 1 && secs <= 5, `cooldown_ms 5000 → at most 5 s, not the origin's 120: ${out.headers["retry-after"]}`);
    assert.equal(c.hits, before, "the origin is not contacted");
  });

  test("retries: 10 (the maximum) makes eleven attempts", async () => {
    const id = rid("max10");
    const before = b.hits;
    const res = await request(gw.at("/max10/x?status=503"), { headers: { "x-request-id": id } });
    assert.equal(res.status, 503);
    assert.equal(b.hits - before, 11);
    assert.equal(res.json().hit, b.hits, "the last attempt's body");
    assert.equal((await logOf(gw, id)).attempts, 11);
  });

  test("a sticky split: adding a service (weight 25 beside 80/20) moves only the clients it now wins, about a fifth", async () => {
    const users = Array.from({ length: 200 }, (_, i) => `user-${i}`);
    let moved = 0;
    const from = new Set();
    for (const u of users) {
      const two = await request(gw.at("/c2/p"), { headers: { "x-user": u } });
      const three = await request(gw.at("/c3/p"), { headers: { "x-user": u } });
      assert.equal(two.status, 200);
      assert.equal(three.status, 200);
      assert.ok(["a", "b"].includes(originOf(two)));
      if (originOf(two) !== originOf(three)) {
        moved++;
        from.add(originOf(two));
        assert.equal(originOf(three), "c", `${u} moved from ${originOf(two)} to another old service`);
        assert.equal(three.json().url, "/v3/p");
      }
      // Sticky: the same client again lands on the same service.
      const again = await request(gw.at("/c3/p"), { headers: { "x-user": u } });
      assert.equal(originOf(again), originOf(three));
    }
    // 25 of 125: 40 of 200 expected.
    assert.ok(moved >= 20 && moved <= 64, `moved ${moved} of 200`);
    assert.deepEqual([...from].sort(), ["a", "b"], "the new service takes clients from both old ones");
  });
});

describe("docs/upstreams.md, third audit: validation boundaries", { timeout: 120_000 }, () => {
  let gw;
  before(async () => {
    gw = await startGateway({ reload: "0" });
  });
  after(async () => {
    await gw?.dispose();
  });
  const doc = (service, routes = []) => ({ format_version: 1, services: [{ name: `v-${++serial}`, ...service }], routes });

  test("weights: 65535 accepted, 65536 refused; every weight 0 refused at `targets`", async () => {
    await putAndWait(gw, doc({ targets: [{ url: "http://10.0.0.1", weight: 65535 }, { url: "http://10.0.0.2", weight: 0 }] }));
    let e = await rejected(gw, doc({ targets: [{ url: "http://10.0.0.1", weight: 65536 }] }));
    assert.ok(e.includes("services[0].targets[0].weight"), e);
    e = await rejected(gw, doc({ targets: [{ url: "http://10.0.0.1", weight: 0 }, { url: "http://10.0.0.2", weight: 0 }] }));
    assert.ok(e.includes("services[0].targets: at least one target needs a weight above 0"), e);
    e = await rejected(gw, doc({ targets: [{ url: "http://10.0.0.1", weight: -1 }] }));
    assert.ok(e.includes("services[0].targets[0].weight"), e);
  });

  test("an empty `targets` is refused like a service without `url`", async () => {
    const e = await rejected(gw, doc({ targets: [] }));
    assert.ok(e.includes("services[0]: missing field `url`"), e);
  });

  test("two targets with the same origin are refused at the second's url, also with another case or base path", async () => {
    for (const second of ["http://10.0.0.1:8080", "HTTP://10.0.0.1:8080", "http://10.0.0.1:8080/base"]) {
      const e = await rejected(gw, doc({ targets: [{ url: "http://10.0.0.1:8080/base" }, { url: second }] }));
      assert.ok(e.includes("services[0].targets[1].url: the same origin as targets[0]"), `${second}: ${e}`);
    }
    // The page's example, word for word.
    const ex = await rejected(gw, doc({ targets: [{ url: "http://10.0.0.1:8080" }, { url: "http://10.0.0.2:8080" }, { url: "http://10.0.0.1:8080" }] }));
    assert.ok(ex.includes("services[0].targets[2].url: the same origin as targets[0] (http://10.0.0.1:8080)"), ex);
    // An explicit default port (80 for http, 443 for https) is the same origin as none.
    for (const [first, second] of [["http://10.0.0.1", "http://10.0.0.1:80"], ["https://h.example:443", "https://h.example"]]) {
      const e = await rejected(gw, doc({ targets: [{ url: first }, { url: second }] }));
      assert.ok(e.includes("services[0].targets[1].url: the same origin as targets[0]"), `${second}: ${e}`);
    }
    // Another port or scheme is another origin.
    await putAndWait(gw, doc({ targets: [{ url: "http://10.0.0.1:443" }, { url: "https://10.0.0.1" }] }));
    await putAndWait(gw, doc({ targets: [{ url: "http://10.0.0.1:8080" }, { url: "http://10.0.0.1:8081" }] }));
  });

  test("retries: 0 and 10 accepted, -1 and 11 refused", async () => {
    for (const retries of [0, 10]) await putAndWait(gw, doc({ url: "http://10.0.0.1", retries }));
    for (const retries of [-1, 11]) {
      const e = await rejected(gw, doc({ url: "http://10.0.0.1", retries }));
      assert.ok(e.includes("services[0].retries"), e);
    }
  });

  test("a split: weight 65535 accepted, every weight 0 refused", async () => {
    const two = (w1, w2) => ({
      format_version: 1,
      services: [
        { name: "s1", url: "http://10.0.0.1" },
        { name: "s2", url: "http://10.0.0.2" },
      ],
      routes: [{ name: "r", paths: ["/"], services: [{ name: "s1", weight: w1 }, { name: "s2", weight: w2 }] }],
    });
    await putAndWait(gw, two(65535, 0));
    const e = await rejected(gw, two(0, 0));
    assert.ok(e.includes("routes[0].services: at least one service needs a weight above 0"), e);
  });
});
