// The `opentelemetry` plugin (docs/observability.md): one span per sampled request, exported after the
// response as OTLP/HTTP JSON to a collector (here a loopback server). The span is the one the origin sees as
// parent in `traceparent` (same trace id and span id), continues a client's traceparent (parent = the
// client's span id, its sampled flag honoured), `sampling_rate` decides for new traces; gateway answers (401
// by key-auth, 502 for an unreachable origin) are exported with their status; http_response_header_for_traceid,
// headers, resource_attributes, header_type ignore; a failing collector does not change the response; invalid
// settings are refused with their JSON path. Both request paths (CONFIG_RELOAD_SECONDS 0: asynchronous; 600
// after a warm-up request: synchronous).

import { describe, test, before, after } from "node:test";
import assert from "node:assert/strict";
import crypto from "node:crypto";
import { startGateway, startOrigin, request, waitFor, closedPort, rejected, sleep } from "./support/harness.mjs";

const hex = (n) => crypto.randomBytes(n).toString("hex");
const TP = /^00-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})$/;

for (const reload of ["0", "600"]) describe(`opentelemetry (CONFIG_RELOAD_SECONDS ${reload})`, { timeout: 120_000 }, () => {
  let gw, origin, collector, config;
  const aliceKey = "eg_alice_" + hex(16);

  /** Every exported span, with the collector request that carried it. */
  function spans() {
    const out = [];
    for (const rec of collector.requests) {
      if (!rec.body?.length) continue;
      const body = JSON.parse(rec.body);
      for (const rs of body.resourceSpans ?? []) {
        for (const ss of rs.scopeSpans ?? []) {
          for (const span of ss.spans ?? []) out.push({ rec, body, resource: rs.resource, scope: ss.scope, span });
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
  /** The traceparent the origin received, split. */
  function originTrace(res) {
    const tp = JSON.parse(res.text).headers.traceparent;
    const m = TP.exec(tp);
    assert.ok(m, `origin traceparent ${tp}`);
    return { traceId: m[1], spanId: m[2], flags: m[3] };
  }

  before(async () => {
    origin = await startOrigin(async (req, res, rec) => {
      // A `flaky` path fails its first attempt (503), for the retry.
      const first = req.url.includes("flaky") && origin.requests.filter((r) => r.url === rec.url).length === 1;
      res.writeHead(req.url.includes("boom") ? 500 : first ? 503 : 200, { "content-type": "application/json", "x-origin": "yes" });
      res.end(JSON.stringify({ url: rec.url, headers: rec.headers }));
    });
    collector = await startOrigin(async (req, res) => {
      const status = req.url.startsWith("/fail") ? 503 : 200;
      res.writeHead(status, { "content-type": "application/json" });
      res.end("{}");
    });
    const dead = await closedPort();
    const endpoint = `${collector.url}/v1/traces`;
    const otel = (route, cfg) => ({ name: "opentelemetry", route, config: { traces_endpoint: endpoint, ...cfg } });
    config = {
      format_version: 1,
      services: [{ name: "origin", url: origin.url }, { name: "down", url: `http://127.0.0.1:${dead}` },
        { name: "retrying", url: origin.url, retries: 1, retry_on: [503] }],
      routes: [
        { name: "t", service: "origin", paths: ["/t"] },
        { name: "never", service: "origin", paths: ["/never"] },
        { name: "auth", service: "origin", paths: ["/auth"] },
        { name: "down", service: "down", paths: ["/down"] },
        { name: "failing", service: "origin", paths: ["/failing"] },
        { name: "deadcol", service: "origin", paths: ["/deadcol"] },
        { name: "ignore", service: "origin", paths: ["/ignore"] },
        { name: "warm", service: "origin", paths: ["/warm"] },
        { name: "retry", service: "retrying", paths: ["/retry"] },
        { name: "cors", service: "origin", paths: ["/cors"] },
      ],
      plugins: [
        otel("t", {
          headers: { "X-Collector-Key": "k1" },
          resource_attributes: { "deployment.environment": "test" },
          http_response_header_for_traceid: "X-Trace-Id",
          queue: { max_batch_size: 1 },
          batch_span_count: 200,
          batch_flush_delay: 3,
          propagation: { extract: ["w3c"], inject: ["preserve", "w3c"], default_format: "w3c", clear: ["X-B3-TraceId"] },
        }),
        otel("never", { sampling_rate: 0, http_response_header_for_traceid: "X-Trace-Id" }),
        otel("auth", { http_response_header_for_traceid: "X-Trace-Id" }),
        { name: "key-auth", route: "auth", config: { key_names: ["x-key"] } },
        otel("down", {}),
        { name: "opentelemetry", route: "failing", config: { endpoint: `${collector.url}/fail?token=qs-secret-3` } },
        otel("deadcol", { traces_endpoint: `http://127.0.0.1:${dead}/v1/traces`, connect_timeout: 500, send_timeout: 500, read_timeout: 500 }),
        otel("ignore", { header_type: "ignore" }),
        otel("retry", {}),
        otel("cors", { http_response_header_for_traceid: "X-Trace-Id" }),
        { name: "cors", route: "cors", config: { origins: ["https://app.example"] } },
      ],
    };
    gw = await startGateway({ bindings: { CONFIG_RELOAD_SECONDS: reload }, config });
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

  test("a proxied request: one OTLP JSON POST with the span the origin saw as parent", async () => {
    const res = await request(gw.at("/t/items/7?apikey=qs-secret-1&x=1"), {
      headers: { "user-agent": "otel-test/1", authorization: "Bearer hdr-secret-2" },
    });
    assert.equal(res.status, 200);
    const seen = originTrace(res);
    assert.equal(seen.flags, "01", "a new trace sampled at rate 1");
    assert.equal(res.headers["x-trace-id"], seen.traceId);
    const { rec, body, resource, scope, span } = await exported(res);
    assert.equal(rec.method, "POST");
    assert.equal(rec.url, "/v1/traces");
    assert.equal(rec.headers["content-type"], "application/json");
    assert.equal(rec.headers["x-collector-key"], "k1");
    assert.equal(body.resourceSpans.length, 1);
    assert.deepEqual(resource.attributes, [
      { key: "deployment.environment", value: { stringValue: "test" } },
      { key: "service.name", value: { stringValue: "edgegate" } },
    ]);
    assert.equal(scope.name, "edgegate");
    assert.equal(span.traceId, seen.traceId);
    assert.equal(span.spanId, seen.spanId);
    assert.equal(span.parentSpanId, undefined, "a new trace has no parent");
    assert.equal(span.name, "GET t");
    assert.equal(span.kind, 2);
    assert.match(span.startTimeUnixNano, /^[0-9]{19}$/);
    assert.match(span.endTimeUnixNano, /^[0-9]{19}$/);
    assert.ok(BigInt(span.endTimeUnixNano) >= BigInt(span.startTimeUnixNano));
    assert.ok(Math.abs(Number(BigInt(span.startTimeUnixNano) / 1_000_000n) - Date.now()) < 120_000);
    assert.deepEqual(span.status, {});
    const a = attrs(span);
    assert.deepEqual(a["http.request.method"], { stringValue: "GET" });
    assert.deepEqual(a["url.scheme"], { stringValue: "http" });
    assert.deepEqual(a["url.path"], { stringValue: "/t/items/7" });
    assert.deepEqual(a["server.address"], { stringValue: "127.0.0.1" });
    assert.deepEqual(a["http.route"], { stringValue: "t" });
    assert.deepEqual(a["http.response.status_code"], { intValue: "200" });
    assert.deepEqual(a["user_agent.original"], { stringValue: "otel-test/1" });
    assert.deepEqual(a["edgegate.route"], { stringValue: "t" });
    assert.deepEqual(a["edgegate.service"], { stringValue: "origin" });
    assert.equal(a["edgegate.consumer"], undefined);
    assert.deepEqual(a["edgegate.request_id"], { stringValue: res.headers["x-request-id"] });
    const raw = rec.body.toString("utf8");
    assert.ok(!raw.includes("qs-secret-1") && !raw.includes("hdr-secret-2"), "no query value, no authorization");
  });

  test("a client traceparent is continued: same trace, parent = the client's span, new span id", async () => {
    const [trace, parent] = [hex(16), hex(8)];
    const tracestate = "vendor=abc";
    const res = await request(gw.at("/t/c"), { headers: { traceparent: `00-${trace}-${parent}-01`, tracestate } });
    assert.equal(res.status, 200);
    const seen = originTrace(res);
    assert.equal(seen.traceId, trace);
    assert.notEqual(seen.spanId, parent);
    assert.equal(seen.flags, "01");
    assert.equal(JSON.parse(res.text).headers.tracestate, tracestate);
    assert.equal(res.headers["x-trace-id"], trace);
    const { span } = await exported(res);
    assert.equal(span.traceId, trace);
    assert.equal(span.spanId, seen.spanId);
    assert.equal(span.parentSpanId, parent);
  });

  test("not sampled: client flag 00 or sampling_rate 0 sends nothing, traceparent and trace id header still set", async () => {
    const trace = hex(16);
    const unsampled = await request(gw.at("/t/u"), { headers: { traceparent: `00-${trace}-${hex(8)}-00` } });
    assert.equal(unsampled.status, 200);
    const seen = originTrace(unsampled);
    assert.equal(seen.traceId, trace);
    assert.equal(seen.flags, "00");
    const never = await request(gw.at("/never/x"));
    assert.equal(never.status, 200);
    const neverSeen = originTrace(never);
    assert.equal(neverSeen.flags, "00", "a new trace not sampled is sent upstream with flags 00");
    assert.equal(never.headers["x-trace-id"], neverSeen.traceId);
    // sampling_rate decides only for new traces: a client's sampled trace is exported even at rate 0.
    const continued = await request(gw.at("/never/c"), { headers: { traceparent: `00-${hex(16)}-${hex(8)}-01` } });
    assert.equal(originTrace(continued).flags, "01");
    assert.equal((await exported(continued)).span.traceId, originTrace(continued).traceId);
    // A sampled request after them is exported; give the others time too.
    await exported(await request(gw.at("/t/after")));
    await sleep(500);
    assert.equal(spanOf(unsampled.headers["x-request-id"]), undefined);
    assert.equal(spanOf(never.headers["x-request-id"]), undefined);
    assert.equal(spans().filter((s) => s.span.traceId === neverSeen.traceId).length, 0);
  });

  test("gateway answers are traced: 401 by key-auth (status unset), then the consumer on success", async () => {
    const hits = origin.hits;
    const denied = await request(gw.at("/auth/x"));
    assert.equal(denied.status, 401);
    assert.equal(origin.hits, hits, "the origin is not called");
    assert.match(denied.headers["x-trace-id"] ?? "", /^[0-9a-f]{32}$/);
    const { span } = await exported(denied);
    assert.equal(span.traceId, denied.headers["x-trace-id"]);
    assert.deepEqual(attrs(span)["http.response.status_code"], { intValue: "401" });
    assert.deepEqual(span.status, {}, "a 4xx leaves the server span's status unset");
    const ok = await request(gw.at("/auth/x"), { headers: { "x-key": aliceKey } });
    assert.equal(ok.status, 200);
    const done = await exported(ok);
    assert.deepEqual(attrs(done.span)["edgegate.consumer"], { stringValue: "alice" });
    assert.ok(!done.rec.body.toString("utf8").includes(aliceKey), "the key is not exported");
  });

  test("an unreachable origin: 502 exported with status ERROR and the error code", async () => {
    const res = await request(gw.at("/down/x"));
    assert.equal(res.status, 502);
    const { span } = await exported(res);
    assert.deepEqual(attrs(span)["http.response.status_code"], { intValue: "502" });
    assert.deepEqual(span.status, { code: 2, message: "upstream_unreachable" });
  });

  test("propagation.clear removes headers; a traceparent the client's Connection names is not continued", async () => {
    const trace = hex(16);
    const res = await request(gw.at("/t/clear"), { headers: { "x-b3-traceid": hex(16), "x-other": "kept" } });
    assert.equal(res.status, 200);
    const seen = JSON.parse(res.text).headers;
    assert.equal(seen["x-b3-traceid"], undefined);
    assert.equal(seen["x-other"], "kept");
    const hop = await request(gw.at("/t/hop"), { headers: { traceparent: `00-${trace}-${hex(8)}-01`, connection: "traceparent" } });
    assert.equal(hop.status, 200);
    const hopSeen = originTrace(hop);
    assert.notEqual(hopSeen.traceId, trace);
    const { span } = await exported(hop);
    assert.equal(span.traceId, hopSeen.traceId);
    assert.equal(span.parentSpanId, undefined);
  });

  test("an origin's 5xx: status ERROR without a message", async () => {
    const res = await request(gw.at("/t/boom"));
    assert.equal(res.status, 500);
    const { span } = await exported(res);
    assert.deepEqual(attrs(span)["http.response.status_code"], { intValue: "500" });
    assert.deepEqual(span.status, { code: 2 });
  });

  test("a retried request: every attempt carries the same traceparent, the exported span's", async () => {
    const path = `/retry/flaky-${hex(4)}`;
    const res = await request(gw.at(path));
    assert.equal(res.status, 200);
    const attempts = origin.requests.filter((r) => r.url === path.slice("/retry".length));
    assert.equal(attempts.length, 2);
    assert.equal(attempts[0].headers.traceparent, attempts[1].headers.traceparent);
    const seen = originTrace(res);
    const { span } = await exported(res);
    assert.equal(`00-${span.traceId}-${span.spanId}-01`, attempts[0].headers.traceparent);
    assert.equal(span.spanId, seen.spanId);
  });

  test("a CORS preflight answered by cors before the plugin's rewrite hook is exported with a span of its own", async () => {
    const hits = origin.hits;
    const trace = hex(16);
    const parent = hex(8);
    const res = await request(gw.at("/cors/x"), {
      method: "OPTIONS",
      headers: { origin: "https://app.example", "access-control-request-method": "GET", traceparent: `00-${trace}-${parent}-01` },
    });
    assert.equal(res.status, 200);
    assert.equal(origin.hits, hits, "no origin saw it");
    const { span } = await exported(res);
    assert.equal(span.traceId, trace);
    assert.equal(span.parentSpanId, parent);
    assert.match(span.spanId, /^[0-9a-f]{16}$/);
    assert.deepEqual(attrs(span)["http.request.method"], { stringValue: "OPTIONS" });
    assert.equal(res.headers["x-trace-id"], undefined);
  });

  test("header_type ignore: a new trace whatever the client sent", async () => {
    const trace = hex(16);
    const res = await request(gw.at("/ignore/x"), { headers: { traceparent: `00-${trace}-${hex(8)}-01`, tracestate: "v=1" } });
    assert.equal(res.status, 200);
    const seen = originTrace(res);
    assert.notEqual(seen.traceId, trace);
    assert.equal(JSON.parse(res.text).headers.tracestate, undefined, "the client's tracestate is not continued");
    const { span } = await exported(res);
    assert.equal(span.traceId, seen.traceId);
    assert.equal(span.parentSpanId, undefined);
  });

  test("a failing collector does not change the response; each failure is one console line", async () => {
    const failing = await request(gw.at("/failing/x"));
    assert.equal(failing.status, 200);
    assert.equal(failing.headers["x-origin"], "yes", "the origin's answer");
    const dead = await request(gw.at("/deadcol/x"));
    assert.equal(dead.status, 200);
    assert.equal(dead.headers["x-origin"], "yes");
    const line = (id) => gw.logs.find((l) => l.json?.event === "opentelemetry_export_failed" && l.json.request_id === id)?.json;
    await waitFor(() => line(failing.headers["x-request-id"]) && line(dead.headers["x-request-id"]), {
      timeoutMs: 10_000,
      what: "opentelemetry_export_failed lines",
    });
    assert.equal(line(failing.headers["x-request-id"]).status, 503);
    assert.equal(line(failing.headers["x-request-id"]).endpoint, `${collector.url}/fail`, "the endpoint without its query");
    assert.ok(["connection failed", "timeout"].includes(line(dead.headers["x-request-id"]).error));
  });

  if (reload === "0") test("invalid settings are refused with their JSON path", async () => {
    const ok = "http://127.0.0.1:9/v1/traces";
    const bad = [
      [{}, "plugins[0].config.traces_endpoint"],
      [{ traces_endpoint: "ftp://x/v1/traces" }, "plugins[0].config.traces_endpoint"],
      [{ endpoint: ok, traces_endpoint: ok }, "plugins[0].config.endpoint"],
      [{ traces_endpoint: ok, logs_endpoint: ok }, "plugins[0].config.logs_endpoint"],
      [{ traces_endpoint: ok, sampling_rate: 1.5 }, "plugins[0].config.sampling_rate"],
      [{ traces_endpoint: ok, header_type: "b3" }, "plugins[0].config.header_type"],
      [{ traces_endpoint: ok, propagation: { extract: ["b3"] } }, "plugins[0].config.propagation.extract"],
      [{ traces_endpoint: ok, propagation: { inject: ["datadog"] } }, "plugins[0].config.propagation.inject"],
      [{ traces_endpoint: ok, http_response_header_for_traceid: "sk-secret value" }, "plugins[0].config.http_response_header_for_traceid"],
      [{ traces_endpoint: ok, headers: { "sk-name secret": "x" } }, "plugins[0].config.headers"],
      [{ traces_endpoint: ok, read_timeout: 0 }, "plugins[0].config.read_timeout"],
    ];
    for (const [cfg, expected] of bad) {
      const error = await rejected(gw, { ...config, plugins: [{ name: "opentelemetry", config: cfg }] });
      assert.ok(error.includes(expected), `${error} should name ${expected}`);
      assert.ok(!error.includes("sk-"), "a header name is never quoted");
    }
    const scoped = await rejected(gw, { ...config, plugins: [{ name: "opentelemetry", consumer: "alice", config: { traces_endpoint: ok } }] });
    assert.ok(scoped.includes("plugins[0].consumer"), scoped);
  });
});
