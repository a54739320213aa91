// docs/observability.md (the `opentelemetry` plugin) and docs/plugins.md ("http-log"), statements not covered by
// tests/opentelemetry.test.mjs and tests/http-log.test.mjs, from outside, on both request paths
// (CONFIG_RELOAD_SECONDS 0: asynchronous; 600 after a warm-up request: synchronous):
// - W3C traceparent: malformed values (version `ff`, all-zero trace or span id, upper-case hex, a version-00
//   value with more fields, short fields) start a new trace and drop `tracestate`; a higher version is read
//   for its first four fields; any flags with the sampled bit are sampled, the flags passed on as sent;
// - `propagation.extract: []` starts a new trace and drops the client's `tracestate`;
// - the export: the endpoint's path and query as written, resource attributes sorted with `service.name`
//   replaced, scope version, `server.address` (lower case, no port), `url.path` as sent, no
//   `user_agent.original` without User-Agent, `client.address`; status of a plugin's 5xx; a collector's 3xx
//   and a timeout (the sum of the three timeouts) are failures, one console line each;
// - `http_response_header_for_traceid` on a gateway error and a plugin's answer, sampled or not;
// - a proxy-cache hit is traced;
// - http-log and opentelemetry on one route: the entry keeps the client's response headers; Kong's fields
//   that are not sent (latencies.receive, tries, workspace, ...);
// - a CORS preflight answered by cors is logged (with its headers) and traced;
// - a consumer-scoped http-log logs only requests authenticated as that consumer.

import { describe, test, before, after } from "node:test";
import assert from "node:assert/strict";
import crypto from "node:crypto";
import fs from "node:fs";
import path from "node:path";
import { startGateway, startOrigin, request, waitFor, closedPort, sleep, rejected, ROOT } from "./support/harness.mjs";

const hex = (n) => crypto.randomBytes(n).toString("hex");
const TP = /^00-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})$/;
const VERSION = /^version = "([^"]+)"/m.exec(
  fs.readFileSync(path.join(ROOT, "Cargo.toml"), "utf8").split("[package]")[1],
)[1];

for (const reload of ["0", "600"]) describe(`observability docs contract 2 (CONFIG_RELOAD_SECONDS ${reload})`, { timeout: 180_000 }, () => {
  let gw, origin, collector, config;
  const aliceKey = "eg_alice_" + hex(16);

  function spans() {
    const out = [];
    for (const rec of collector.requests) {
      if (!rec.body?.length || !rec.headers["content-type"]?.startsWith("application/json")) continue;
      let body;
      try {
        body = JSON.parse(rec.body);
      } catch {
        continue;
      }
      for (const rs of body.resourceSpans ?? []) {
        for (const ss of rs.scopeSpans ?? []) {
          for (const span of ss.spans ?? []) out.push({ rec, resource: rs.resource, scope: ss.scope, span });
        }
      }
    }
    return out;
  }
  const attrs = (span) => Object.fromEntries(span.attributes.map((a) => [a.key, a.value]));
  const spanOf = (id) => spans().find((s) => attrs(s.span)["edgegate.request_id"]?.stringValue === id);
  async function exported(res) {
    const id = res.headers["x-request-id"];
    assert.ok(id, "the answer has an x-request-id");
    await waitFor(() => spanOf(id), { timeoutMs: 10_000, what: `the span of ${id}` });
    return spanOf(id);
  }
  const entryOf = (id) =>
    collector.requests
      .filter((r) => r.url === "/log" && r.body?.length)
      .map((r) => JSON.parse(r.body))
      .find((e) => e.request_id === id);
  function originSaw(res) {
    const headers = JSON.parse(res.text).headers;
    const m = TP.exec(headers.traceparent);
    assert.ok(m, `origin traceparent ${headers.traceparent}`);
    return { traceId: m[1], spanId: m[2], flags: m[3], tracestate: headers.tracestate };
  }
  const failure = (id) => gw.logs.find((l) => l.json?.event === "opentelemetry_export_failed" && l.json.request_id === id)?.json;

  before(async () => {
    origin = await startOrigin();
    collector = await startOrigin(async (req, res) => {
      if (req.url.startsWith("/hold")) await sleep(3000);
      if (req.url.startsWith("/redirect")) {
        res.writeHead(302, { location: "/redirected" });
        res.end();
        return;
      }
      res.writeHead(200, { "content-type": "application/json" });
      res.end("{}");
    });
    const dead = await closedPort();
    const c = collector.url;
    const otel = (route, cfg = {}) => ({ name: "opentelemetry", route, config: { traces_endpoint: `${c}/v1/traces`, ...cfg } });
    config = {
      format_version: 1,
      services: [{ name: "origin", url: origin.url }, { name: "down", url: `http://127.0.0.1:${dead}` }],
      routes: [
        { name: "warm", service: "origin", paths: ["/warm"] },
        { name: "t", service: "origin", paths: ["/t"] },
        { name: "noext", service: "origin", paths: ["/noext"] },
        { name: "term", service: "origin", paths: ["/term"] },
        { name: "down", service: "down", paths: ["/down"] },
        { name: "cache", service: "origin", paths: ["/cache"] },
        { name: "both", service: "origin", paths: ["/both"] },
        { name: "redir", service: "origin", paths: ["/redir"] },
        { name: "slow", service: "origin", paths: ["/slow"] },
        { name: "scoped", service: "origin", paths: ["/scoped"] },
      ],
      plugins: [
        otel("t", {
          traces_endpoint: `${c}/custom/traces?tenant=7`,
          resource_attributes: { "service.name": "gw-test", "a.first": "1", "z.last": "2" },
          http_response_header_for_traceid: "X-Trace-Id",
        }),
        otel("noext", { propagation: { extract: [] } }),
        otel("term", { http_response_header_for_traceid: "X-Trace-Id" }),
        { name: "request-termination", route: "term", config: { status_code: 503, message: "maintenance" } },
        otel("down", { sampling_rate: 0, http_response_header_for_traceid: "X-Trace-Id" }),
        otel("cache"),
        { name: "proxy-cache", route: "cache", config: { cache_ttl: 300 } },
        otel("both"),
        { name: "http-log", route: "both", config: { http_endpoint: `${c}/log` } },
        { name: "cors", route: "both", config: { origins: ["https://app.example"] } },
        otel("redir", { traces_endpoint: `${c}/redirect` }),
        otel("slow", { traces_endpoint: `${c}/hold`, connect_timeout: 100, send_timeout: 100, read_timeout: 100 }),
        { name: "key-auth", route: "scoped", config: { key_names: ["x-key"] } },
        { name: "http-log", route: "scoped", consumer: "alice", config: { http_endpoint: `${c}/log` } },
      ],
    };
    gw = await startGateway({ reload, config });
    const put = (key, value) => gw.kv.put(key, JSON.stringify(value));
    await put("consumers/c-alice", { id: "c-alice", username: "alice", groups: [] });
    await put("consumer-names/alice", { id: "c-alice" });
    await put(`credentials/key-auth/${crypto.createHash("sha256").update(aliceKey).digest("hex")}`, { id: "cred-alice", consumer_id: "c-alice" });
    // Loads the version: with 600, every later request is served on the synchronous path.
    assert.equal((await request(gw.at("/warm"))).status, 200);
  });
  after(async () => {
    await gw?.dispose();
    await origin?.close();
    await collector?.close();
  });

  test("a malformed traceparent starts a new trace (exported without parent) and its tracestate is dropped", async () => {
    const trace = "0af7651916cd43dd8448eb211c80319c";
    const span = "b7ad6b7169203331";
    const malformed = [
      `ff-${trace}-${span}-01`, // version ff is invalid
      `00-${"0".repeat(32)}-${span}-01`, // all-zero trace id
      `00-${trace}-${"0".repeat(16)}-01`, // all-zero span id
      `00-${trace.toUpperCase()}-${span}-01`, // upper-case hex
      `00-${trace}-${span.toUpperCase()}-01`,
      `00-${trace}-${span}-01-extra`, // version 00 has exactly four fields
      `00-${trace}-${span}-1`, // short flags
      `00-${trace}-${span}-0g`, // flags not hex
      `0-${trace}-${span}-01`, // short version
      `00-${trace.slice(1)}-${span}-01`, // short trace id
      `cc-${trace}-${span}-01x`, // a higher version's flags are still two hex digits, then `-`
    ];
    for (const tp of malformed) {
      const res = await request(gw.at("/t/m"), { headers: { traceparent: tp, tracestate: "vendor=1" } });
      assert.equal(res.status, 200, tp);
      const seen = originSaw(res);
      assert.notEqual(seen.traceId, trace, `${tp}: a new trace`);
      assert.notEqual(seen.traceId, "0".repeat(32), tp);
      assert.equal(seen.flags, "01", `${tp}: a new trace sampled at rate 1`);
      assert.equal(seen.tracestate, undefined, `${tp}: tracestate is not forwarded with a new trace`);
      assert.equal(res.headers["x-trace-id"], seen.traceId, tp);
      const { span: exportedSpan } = await exported(res);
      assert.equal(exportedSpan.traceId, seen.traceId, tp);
      assert.equal(exportedSpan.spanId, seen.spanId, tp);
      assert.equal(exportedSpan.parentSpanId, undefined, `${tp}: no parent`);
    }
  });

  test("a tracestate without traceparent is not forwarded", async () => {
    const res = await request(gw.at("/t/state"), { headers: { tracestate: "vendor=5" } });
    assert.equal(res.status, 200);
    const seen = originSaw(res);
    assert.equal(seen.tracestate, undefined);
    assert.equal((await exported(res)).span.parentSpanId, undefined);
  });

  test("two traceparent headers are malformed: a new trace", async () => {
    const [trace, span] = [hex(16), hex(8)];
    const res = await request(gw.at("/t/two"), {
      headers: { traceparent: [`00-${trace}-${span}-01`, `00-${hex(16)}-${hex(8)}-01`], tracestate: "vendor=4" },
    });
    assert.equal(res.status, 200);
    const seen = originSaw(res);
    assert.notEqual(seen.traceId, trace);
    assert.equal(seen.tracestate, undefined);
    const { span: s } = await exported(res);
    assert.equal(s.traceId, seen.traceId);
    assert.equal(s.parentSpanId, undefined);
  });

  test("a higher version is read for its first four fields: the trace is continued, with its tracestate", async () => {
    for (const version of ["01", "cc", "fe"]) {
      const [trace, span] = [hex(16), hex(8)];
      for (const tp of [`${version}-${trace}-${span}-01`, `${version}-${trace}-${span}-01-future-fields`]) {
        const res = await request(gw.at("/t/v"), { headers: { traceparent: tp, tracestate: "vendor=2" } });
        assert.equal(res.status, 200, tp);
        const seen = originSaw(res);
        assert.equal(seen.traceId, trace, tp);
        assert.notEqual(seen.spanId, span, tp);
        assert.equal(seen.flags, "01", tp);
        assert.equal(seen.tracestate, "vendor=2", tp);
        const { span: s } = await exported(res);
        assert.equal(s.traceId, trace, tp);
        assert.equal(s.parentSpanId, span, tp);
        assert.equal(s.spanId, seen.spanId, tp);
      }
    }
  });

  test("the sampled bit decides a continued trace; the client's flags go upstream as sent", async () => {
    const sampled = await request(gw.at("/t/f"), { headers: { traceparent: `00-${hex(16)}-${hex(8)}-03` } });
    assert.equal(originSaw(sampled).flags, "03");
    assert.equal((await exported(sampled)).span.traceId, originSaw(sampled).traceId);
    const unsampled = await request(gw.at("/t/f"), { headers: { traceparent: `00-${hex(16)}-${hex(8)}-02` } });
    assert.equal(unsampled.status, 200);
    assert.equal(originSaw(unsampled).flags, "02");
    // A sampled request after it is exported; the unsampled one never is.
    await exported(await request(gw.at("/t/after")));
    await sleep(300);
    assert.equal(spanOf(unsampled.headers["x-request-id"]), undefined);
  });

  test("propagation.extract []: a new trace for a valid client traceparent, its tracestate not forwarded", async () => {
    const [trace, span] = [hex(16), hex(8)];
    const res = await request(gw.at("/noext/x"), { headers: { traceparent: `00-${trace}-${span}-01`, tracestate: "vendor=3" } });
    assert.equal(res.status, 200);
    const seen = originSaw(res);
    assert.notEqual(seen.traceId, trace);
    assert.equal(seen.tracestate, undefined);
    const { span: s } = await exported(res);
    assert.equal(s.traceId, seen.traceId);
    assert.equal(s.parentSpanId, undefined);
  });

  test("the export: endpoint path and query as written, resource and scope, the request's attributes", async () => {
    const res = await request(gw.at("/t/a%20b/%7Euser?key=qs-secret-9"), {
      method: "POST",
      headers: { host: "API.Example.COM:8443", "content-type": "text/plain" },
      body: Buffer.from("hi"),
    });
    assert.equal(res.status, 200);
    const { rec, resource, scope, span } = await exported(res);
    assert.equal(rec.method, "POST");
    assert.equal(rec.url, "/custom/traces?tenant=7");
    assert.deepEqual(resource.attributes, [
      { key: "a.first", value: { stringValue: "1" } },
      { key: "service.name", value: { stringValue: "gw-test" } },
      { key: "z.last", value: { stringValue: "2" } },
    ]);
    assert.deepEqual(scope, { name: "edgegate", version: VERSION });
    assert.equal(span.name, "POST t");
    const a = attrs(span);
    assert.deepEqual(a["http.request.method"], { stringValue: "POST" });
    assert.deepEqual(a["server.address"], { stringValue: "api.example.com" });
    assert.deepEqual(a["url.path"], { stringValue: "/t/a%20b/%7Euser" });
    assert.deepEqual(a["client.address"], { stringValue: "127.0.0.1" });
    assert.equal(a["user_agent.original"], undefined, "no User-Agent, no attribute");
    assert.deepEqual(
      span.attributes.map((x) => x.key),
      ["http.request.method", "url.scheme", "url.path", "server.address", "http.route", "http.response.status_code",
        "client.address", "edgegate.route", "edgegate.service", "edgegate.request_id"],
      "the documented order",
    );
    assert.ok(!rec.body.toString("utf8").includes("qs-secret-9"));
  });

  test("a plugin's 5xx (request-termination) is exported with ERROR and no message; the trace id header is on it", async () => {
    const hits = origin.hits;
    const res = await request(gw.at("/term/x"));
    assert.equal(res.status, 503);
    assert.equal(origin.hits, hits);
    assert.match(res.headers["x-trace-id"] ?? "", /^[0-9a-f]{32}$/);
    const { span } = await exported(res);
    assert.equal(span.traceId, res.headers["x-trace-id"]);
    assert.deepEqual(attrs(span)["http.response.status_code"], { intValue: "503" });
    assert.deepEqual(span.status, { code: 2 });
  });

  test("a gateway error that is not sampled still gets the trace id header, nothing is exported", async () => {
    const res = await request(gw.at("/down/x"));
    assert.equal(res.status, 502);
    assert.match(res.headers["x-trace-id"] ?? "", /^[0-9a-f]{32}$/);
    await exported(await request(gw.at("/t/after-down")));
    await sleep(300);
    assert.equal(spanOf(res.headers["x-request-id"]), undefined);
  });

  test("a proxy-cache hit is traced", async () => {
    const p = `/cache/${hex(4)}`;
    const first = await request(gw.at(p));
    assert.equal(first.status, 200);
    await exported(first);
    let hit;
    await waitFor(async () => {
      hit = await request(gw.at(p));
      return hit.headers["x-cache-status"] === "Hit";
    }, { timeoutMs: 10_000, what: "a cache hit" });
    const { span } = await exported(hit);
    assert.deepEqual(attrs(span)["http.response.status_code"], { intValue: "200" });
    assert.deepEqual(attrs(span)["edgegate.route"], { stringValue: "cache" });
  });

  test("http-log and opentelemetry on one route: both sent, the entry has the client's response headers", async () => {
    const res = await request(gw.at("/both/x"), { headers: { "user-agent": "obs2/1" } });
    assert.equal(res.status, 200);
    const id = res.headers["x-request-id"];
    const { span } = await exported(res);
    assert.deepEqual(attrs(span)["user_agent.original"], { stringValue: "obs2/1" });
    await waitFor(() => entryOf(id), { timeoutMs: 10_000, what: `the http-log entry of ${id}` });
    const entry = entryOf(id);
    assert.equal(entry.response.status, 200);
    assert.equal(entry.response.headers["x-origin"], "yes");
    assert.equal(entry.response.headers["content-type"], "application/json");
    assert.equal(entry.response.headers["x-request-id"], id);
    // Kong's fields edgegate does not send.
    assert.deepEqual(Object.keys(entry.latencies).sort(), ["kong", "proxy", "request"]);
    for (const k of ["tries", "workspace", "workspace_name", "authenticated_entity", "upstream_status", "source"]) {
      assert.equal(entry[k], undefined, k);
    }
    assert.equal(entry.request.tls, undefined);
    assert.deepEqual(entry.route, { name: "both" });
    assert.deepEqual(entry.service, { name: "origin" });
  });

  test("a CORS preflight cors answers is logged by http-log with its response headers, and traced", async () => {
    const hits = origin.hits;
    const res = await request(gw.at("/both/pre"), {
      method: "OPTIONS",
      headers: { origin: "https://app.example", "access-control-request-method": "PUT" },
    });
    assert.ok(res.status === 200 || res.status === 204, String(res.status));
    assert.equal(origin.hits, hits, "no origin saw it");
    const id = res.headers["x-request-id"];
    await waitFor(() => entryOf(id), { timeoutMs: 10_000, what: `the http-log entry of ${id}` });
    const entry = entryOf(id);
    assert.equal(entry.response.status, res.status);
    assert.equal(entry.response.headers["access-control-allow-origin"], "https://app.example");
    assert.equal(entry.upstream_uri, undefined);
    assert.equal(entry.latencies.proxy, -1);
    const { span } = await exported(res);
    assert.deepEqual(attrs(span)["http.request.method"], { stringValue: "OPTIONS" });
  });

  test("a collector's 3xx is a failed export, not followed; past the sum of the timeouts, error timeout", async () => {
    const redir = await request(gw.at("/redir/x"));
    assert.equal(redir.status, 200);
    const slow = await request(gw.at("/slow/x"), { timeoutMs: 2500 });
    assert.equal(slow.status, 200, "the client's answer does not wait for the collector");
    await waitFor(() => failure(redir.headers["x-request-id"]) && failure(slow.headers["x-request-id"]), {
      timeoutMs: 10_000,
      what: "opentelemetry_export_failed lines",
    });
    assert.equal(failure(redir.headers["x-request-id"]).status, 302);
    assert.equal(failure(redir.headers["x-request-id"]).endpoint, `${collector.url}/redirect`);
    assert.equal(failure(slow.headers["x-request-id"]).error, "timeout");
    assert.ok(!collector.requests.some((r) => r.url === "/redirected"), "the Location was not fetched");
  });

  test("a consumer-scoped http-log logs only requests authenticated as that consumer", async () => {
    const denied = await request(gw.at("/scoped/x"));
    assert.equal(denied.status, 401);
    const ok = await request(gw.at("/scoped/x"), { headers: { "x-key": aliceKey } });
    assert.equal(ok.status, 200);
    const id = ok.headers["x-request-id"];
    await waitFor(() => entryOf(id), { timeoutMs: 10_000, what: `the http-log entry of ${id}` });
    assert.deepEqual(entryOf(id).consumer, { username: "alice" });
    assert.equal(entryOf(id).response.headers["x-origin"], "yes");
    await sleep(500);
    assert.equal(entryOf(denied.headers["x-request-id"]), undefined, "an unauthenticated request is not logged");
  });

  // A new version is read at once only with CONFIG_RELOAD_SECONDS 0.
  if (reload === "0") test("traces_endpoint and headers: what is refused, by JSON path, without quoting the value", async () => {
    const ok = "http://127.0.0.1:9/v1/traces";
    const bad = [
      [{ traces_endpoint: "http://user:sk-pass@127.0.0.1:9/v1/traces" }, "plugins[0].config.traces_endpoint"],
      [{ traces_endpoint: `${ok}#frag` }, "plugins[0].config.traces_endpoint"],
      [{ traces_endpoint: "http://cöllector/v1/traces" }, "plugins[0].config.traces_endpoint"],
      [{ traces_endpoint: "/v1/traces" }, "plugins[0].config.traces_endpoint"],
      [{ endpoint: "http:///v1/traces" }, "plugins[0].config.endpoint"],
      [{ traces_endpoint: ok, headers: { "Content-Type": "text/plain" } }, "plugins[0].config.headers.Content-Type"],
      [{ traces_endpoint: ok, headers: { "content-length": "1" } }, "plugins[0].config.headers.content-length"],
      [{ traces_endpoint: ok, headers: { "X-Key": "sk-a\r\nb: c" } }, "plugins[0].config.headers"],
      [{ traces_endpoint: ok, resource_attributes: { "deployment.environment": "" } }, "plugins[0].config.resource_attributes"],
      [{ traces_endpoint: ok, connect_timeout: 2147483647 }, "plugins[0].config.connect_timeout"],
      [{ traces_endpoint: ok, propagation: { clear: ["Traceparent"] } }, "plugins[0].config.propagation.clear"],
      [{ traces_endpoint: ok, logs_endpoint: ok }, "plugins[0].config.logs_endpoint: not supported: edgegate exports traces only"],
    ];
    for (const [cfg, expected] of bad) {
      const error = await rejected(gw, { ...config, plugins: [{ name: "opentelemetry", config: cfg }] });
      assert.ok(error.includes(expected), `${error} should name ${expected}`);
      assert.ok(!error.includes("sk-"), `${error}: a value is never quoted`);
    }
  });
});
