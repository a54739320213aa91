// The `http-log` plugin (docs/plugins.md, "http-log"): after the response, one JSON entry per request is sent to
// a collector (here a loopback origin), in Kong's serializer shape, with secrets redacted; the options method,
// content_type, headers and a user:password in http_endpoint (Basic auth); a failing collector never changes
// the client's answer and is one `http_log_failed` console line without the endpoint's credentials; invalid
// settings are refused with their JSON path; two concurrent requests with one X-Request-Id each log their own
// response headers; a collector's 3xx is a failure, not followed. Both request paths (CONFIG_RELOAD_SECONDS 0: asynchronous; 600
// after a warm-up request: synchronous).

import { describe, test, before, after } from "node:test";
import assert from "node:assert/strict";
import crypto from "node:crypto";
import { startGateway, startOrigin, request, putConfig, waitFor, closedPort } from "./support/harness.mjs";

for (const reload of ["0", "600"]) describe(`http-log (CONFIG_RELOAD_SECONDS ${reload})`, { timeout: 120_000 }, () => {
  let gw, origin, collector, config;
  const aliceKey = "eg_alice_" + crypto.randomBytes(16).toString("hex");
  let released = () => {};
  const collected = (id) => collector.requests.find((r) => r.body && r.body.length && JSON.parse(r.body).request_id === id);
  async function entryOf(res) {
    const id = res.headers["x-request-id"];
    assert.ok(id, "the answer has an x-request-id");
    await waitFor(() => collected(id), { timeoutMs: 10_000, what: `the entry of ${id}` });
    const rec = collected(id);
    return { rec, entry: JSON.parse(rec.body) };
  }

  // Requests to /same/ that reached the origin; their bodies are held until two have.
  let sameArrived = 0;
  let bothArrived;
  const bothIn = new Promise((r) => { bothArrived = r; });
  before(async () => {
    origin = await startOrigin(async (req, res) => {
      if (req.url.includes("/same/")) {
        // Headers now, the body once both concurrent requests are here (or 5 s): the gateway reads each
        // body for response-transformer's json rule, so both requests are between their header_filter
        // and their log phase at the same time.
        const tag = new URL(req.url, "http://x").searchParams.get("tag");
        res.writeHead(200, { "content-type": "application/json", "x-tag": tag });
        res.flushHeaders();
        if (++sameArrived >= 2) bothArrived();
        await Promise.race([bothIn, new Promise((r) => setTimeout(r, 5000))]);
        await new Promise((r) => setTimeout(r, 200));
        res.end(JSON.stringify({ tag }));
        return;
      }
      if (req.url.includes("chunked")) {
        res.writeHead(201, { "content-type": "text/plain" });
        res.write("o");
        res.end("k");
        return;
      }
      res.writeHead(201, { "content-type": "text/plain", "set-cookie": "session=s3cr3t", "x-origin": "yes", "content-length": "2" });
      res.end("ok");
    });
    collector = await startOrigin(async (req, res) => {
      // Held until the test releases it (or 10 s): the client's answer must not wait for it.
      if (req.url.startsWith("/hold")) await new Promise((r) => { released = r; setTimeout(r, 10_000); });
      if (req.url.startsWith("/redirect")) {
        res.writeHead(302, { location: "/redirected" });
        res.end();
        return;
      }
      const status = req.url.startsWith("/fail") ? 500 : 200;
      res.writeHead(status, { "content-type": "text/plain" });
      res.end("collected");
    });
    const dead = await closedPort();
    const c = collector.url;
    const log = (route, cfg) => ({ name: "http-log", route, config: cfg });
    config = {
      format_version: 1,
      services: [{ name: "origin", url: origin.url + "/base" }, { name: "down", url: `http://127.0.0.1:${dead}` }],
      routes: [
        { name: "r", service: "origin", paths: ["/r"], strip_path: true },
        { name: "auth", service: "origin", paths: ["/auth"] },
        { name: "opts", service: "origin", paths: ["/opts"] },
        { name: "dead", service: "origin", paths: ["/dead"] },
        { name: "fail", service: "origin", paths: ["/fail"] },
        { name: "warm", service: "origin", paths: ["/warm"] },
        { name: "hold", service: "origin", paths: ["/hold"] },
        { name: "down", service: "down", paths: ["/down"] },
        { name: "rt", service: "origin", paths: ["/rt"] },
        { name: "jwt", service: "origin", paths: ["/jwt"] },
        { name: "same", service: "origin", paths: ["/same"], strip_path: false },
        { name: "redir", service: "origin", paths: ["/redir"] },
        { name: "hauth", service: "origin", paths: ["/hauth"] },
      ],
      plugins: [
        log("r", { http_endpoint: `${c}/in`, custom_fields_by_lua: null }),
        { name: "http-log", config: { http_endpoint: `${c}/global` } },
        log("hold", { http_endpoint: `${c}/hold`, timeout: 1000 }),
        log("down", { http_endpoint: `${c}/in` }),
        log("rt", { http_endpoint: `${c}/in` }),
        log("jwt", { http_endpoint: `${c}/in` }),
        log("same", { http_endpoint: `${c}/in` }),
        log("redir", { http_endpoint: `${c}/redirect` }),
        log("hauth", { http_endpoint: `${c}/in`, headers: { Authorization: "Bearer collector-token" } }),
        { name: "response-transformer", route: "same", config: { add: { json: ["seen:yes"] } } },
        { name: "jwt", route: "jwt", config: { header_names: ["x-jwt"], uri_param_names: ["token"] } },
        { name: "response-transformer", route: "rt", config: { add: { headers: ["x-added:1"] } } },
        { name: "key-auth", route: "auth", config: { key_names: ["x-key"] } },
        log("auth", { http_endpoint: `${c}/in` }),
        log("opts", {
          http_endpoint: `http://collector-user:pa55word@127.0.0.1:${collector.port}/opts?tenant=1`,
          method: "PUT",
          content_type: "application/json; charset=utf-8",
          headers: { "X-Collector-Token": "tok" },
          timeout: 5000,
          keepalive: 60000,
          retry_count: 10,
          queue_size: 1,
          flush_timeout: 2,
          queue: { max_batch_size: 1 },
          custom_fields_by_lua: {},
        }),
        log("dead", { http_endpoint: `http://logger:hunter2@127.0.0.1:${dead}/in` }),
        log("fail", { http_endpoint: `http://logger:hunter2@127.0.0.1:${collector.port}/fail?token=qs-secret` }),
      ],
    };
    gw = await startGateway({ bindings: { CONFIG_RELOAD_SECONDS: reload }, config });
    const put = (key, value) => gw.kv.put(key, JSON.stringify(value));
    await put("consumers/c-alice", { id: "c-alice", username: "alice", groups: [] });
    await put("consumer-names/alice", { id: "c-alice" });
    await put(`credentials/key-auth/${crypto.createHash("sha256").update(aliceKey).digest("hex")}`, { id: "cred-alice", consumer_id: "c-alice" });
    // Loads the version: with 600, every later request is served on the synchronous path.
    assert.equal((await request(gw.at("/warm"))).status, 201);
  });
  after(async () => {
    await gw?.dispose();
    await origin?.close();
    await collector?.close();
  });

  test("a proxied request: one POST with the entry in Kong's shape", async () => {
    const res = await request(gw.at("/r/a/b?x=1&x=2&flag&y=%20z&p=a+b"), {
      method: "POST",
      headers: {
        "content-type": "text/plain", "x-client": "c1", "x-multi": ["a", "b"],
        authorization: "Bearer tok-secret", "proxy-authorization": "Basic cHJveHk6c2VjcmV0", cookie: "sid=abc",
      },
      body: "hello",
    });
    assert.equal(res.status, 201);
    assert.equal(res.text, "ok");
    const { rec, entry } = await entryOf(res);
    assert.equal(rec.method, "POST");
    assert.equal(rec.url, "/in");
    assert.equal(rec.headers["content-type"], "application/json");
    assert.equal(rec.headers.authorization, undefined);
    assert.equal(entry.request.method, "POST");
    assert.equal(entry.request.uri, "/r/a/b?x=1&x=2&flag&y=%20z&p=a+b");
    assert.equal(entry.request.url, gw.at("/r/a/b?x=1&x=2&flag&y=%20z&p=a+b"));
    assert.deepEqual(entry.request.querystring, { x: ["1", "2"], flag: true, y: " z", p: "a b" });
    assert.equal(entry.request.headers["x-client"], "c1");
    assert.equal(entry.request.headers["x-multi"], "a, b");
    assert.equal(entry.request.headers["proxy-authorization"], "REDACTED");
    assert.equal(entry.request.size, 5);
    assert.equal(entry.request.headers.authorization, "REDACTED");
    assert.equal(entry.request.headers.cookie, "REDACTED");
    assert.equal(entry.response.status, 201);
    assert.equal(entry.response.headers["x-origin"], "yes");
    assert.equal(entry.response.headers["set-cookie"], "REDACTED");
    assert.equal(entry.response.size, 2);
    assert.equal(entry.upstream_uri, "/base/a/b?x=1&x=2&flag&y=%20z&p=a+b");
    assert.deepEqual(entry.route, { name: "r" });
    assert.deepEqual(entry.service, { name: "origin" });
    assert.equal(entry.consumer, undefined);
    assert.equal(entry.request_id, res.headers["x-request-id"]);
    assert.equal(entry.request.id, res.headers["x-request-id"]);
    assert.equal(entry.client_ip, "127.0.0.1");
    assert.ok(Math.abs(entry.started_at - Date.now()) < 60_000, "started_at is ms since the epoch");
    for (const k of ["request", "proxy", "kong"]) assert.ok(Number.isInteger(entry.latencies[k]) && entry.latencies[k] >= 0, k);
    assert.ok(entry.latencies.request >= entry.latencies.proxy);
    assert.equal(entry.latencies.kong, entry.latencies.request - entry.latencies.proxy);
    const text = rec.body.toString();
    for (const secret of ["tok-secret", "sid=abc", "s3cr3t", "cHJveHk6c2VjcmV0"]) assert.ok(!text.includes(secret), secret);
    // One request to the collector; the route's instance, not the global one.
    await new Promise((r) => setTimeout(r, 300));
    assert.equal(collector.requests.filter((q) => q.body?.length && JSON.parse(q.body).request_id === entry.request_id).length, 1);
  });

  test("a streamed answer has no response.size; a request without body no request.size", async () => {
    const res = await request(gw.at("/r/chunked"));
    assert.equal(res.status, 201);
    const { entry } = await entryOf(res);
    assert.equal(entry.response.size, undefined);
    assert.equal(entry.request.size, undefined);
    assert.equal(entry.request.method, "GET");
  });

  test("an authenticated request names its consumer; the key is redacted in upstream_uri too", async () => {
    const res = await request(gw.at(`/auth/y?x-key=${aliceKey}`));
    assert.equal(res.status, 201);
    const { entry, rec } = await entryOf(res);
    assert.deepEqual(entry.consumer, { username: "alice" });
    assert.equal(entry.upstream_uri, "/base/y?x-key=REDACTED");
    assert.equal(entry.request.querystring["x-key"], "REDACTED");
    assert.ok(!rec.body.toString().includes(aliceKey));
  });

  test("a global instance logs routes without their own; a request matching no route (404) is not sent", async () => {
    const res = await request(gw.at("/warm/g"));
    assert.equal(res.status, 201);
    const { rec, entry } = await entryOf(res);
    assert.equal(rec.url, "/global");
    assert.deepEqual(entry.route, { name: "warm" });
    const miss = await request(gw.at("/nothing-here"));
    assert.equal(miss.status, 404);
    await new Promise((r) => setTimeout(r, 1000));
    assert.equal(collected(miss.headers["x-request-id"]), undefined);
  });

  test("the client's answer does not wait for the collector; past `timeout` the send fails with error timeout", async () => {
    const res = await request(gw.at("/hold/1"), { timeoutMs: 8000 });
    assert.equal(res.status, 201);
    const id = res.headers["x-request-id"];
    await waitFor(() => collector.requests.some((q) => q.url === "/hold"), { timeoutMs: 10_000, what: "the held send" });
    await waitFor(() => gw.logs.some((l) => l.json?.event === "http_log_failed" && l.json.request_id === id), {
      timeoutMs: 15_000,
      what: "http_log_failed for the held send",
    });
    released();
    const line = gw.logs.find((l) => l.json?.event === "http_log_failed" && l.json.request_id === id).json;
    assert.equal(line.error, "timeout");
  });

  test("a plugin-refused answer (key-auth 401) is logged, the key redacted in headers, URL and querystring", async () => {
    const res = await request(gw.at("/auth/x?x-key=qsecret&a=1"), { headers: { "x-key": "hsecret" } });
    assert.equal(res.status, 401);
    const { entry, rec } = await entryOf(res);
    assert.equal(entry.response.status, 401);
    assert.match(entry.response.headers["content-type"], /problem\+json/);
    assert.equal(entry.request.headers["x-key"], "REDACTED");
    assert.equal(entry.request.querystring["x-key"], "REDACTED");
    assert.equal(entry.request.querystring.a, "1");
    assert.equal(entry.request.uri, "/auth/x?x-key=REDACTED&a=1");
    assert.equal(entry.latencies.proxy, -1, "not proxied");
    assert.equal(entry.latencies.kong, entry.latencies.request);
    assert.equal(entry.upstream_uri, undefined);
    assert.deepEqual(entry.route, { name: "auth" });
    const text = rec.body.toString();
    assert.ok(!text.includes("qsecret") && !text.includes("hsecret"));
  });

  test("a gateway error (502, origin down) is logged; response headers are the client's, after response-transformer", async () => {
    let res = await request(gw.at("/down/x"));
    assert.equal(res.status, 502);
    let { entry } = await entryOf(res);
    assert.equal(entry.response.status, 502);
    assert.deepEqual(entry.route, { name: "down" });
    res = await request(gw.at("/rt/x"));
    assert.equal(res.status, 201);
    assert.equal(res.headers["x-added"], "1");
    ({ entry } = await entryOf(res));
    assert.equal(entry.response.headers["x-added"], "1");
  });

  test("two concurrent requests with the same X-Request-Id each log their own response headers", async () => {
    const id = "same-" + crypto.randomUUID();
    const [a, b] = await Promise.all(
      ["A", "B"].map((tag) => request(gw.at(`/same/x?tag=${tag}`), { headers: { "x-request-id": id } })),
    );
    for (const [res, tag] of [[a, "A"], [b, "B"]]) {
      assert.equal(res.status, 200);
      assert.equal(res.headers["x-request-id"], id);
      assert.equal(res.headers["x-tag"], tag);
      assert.deepEqual(res.json(), { tag, seen: "yes" });
    }
    const entries = () => collector.requests.filter((r) => r.body?.length && JSON.parse(r.body).request_id === id).map((r) => JSON.parse(r.body));
    await waitFor(() => entries().length === 2, { timeoutMs: 10_000, what: `both entries of ${id}` });
    const byTag = Object.fromEntries(entries().map((e) => [e.request.querystring.tag, e]));
    assert.deepEqual(Object.keys(byTag).sort(), ["A", "B"]);
    for (const tag of ["A", "B"]) {
      assert.equal(byTag[tag].response.status, 200);
      assert.equal(byTag[tag].response.headers["x-tag"], tag, `the entry of ${tag} has its own response headers`);
      assert.equal(byTag[tag].response.headers["content-type"], "application/json");
    }
  });

  test("querystring: names and values decoded, `a=` is an empty string", async () => {
    const res = await request(gw.at("/r/q?empty=&%6Bey=v%2Fw&plus=a%2Bb&sp=a+b"));
    assert.equal(res.status, 201);
    const { entry } = await entryOf(res);
    assert.deepEqual(entry.request.querystring, { empty: "", key: "v/w", plus: "a+b", sp: "a b" });
    assert.equal(entry.request.uri, "/r/q?empty=&%6Bey=v%2Fw&plus=a%2Bb&sp=a+b");
  });

  test("a collector's 3xx is not followed: the send fails with its status", async () => {
    const res = await request(gw.at("/redir/1"));
    assert.equal(res.status, 201);
    const id = res.headers["x-request-id"];
    await waitFor(() => gw.logs.some((l) => l.json?.event === "http_log_failed" && l.json.request_id === id), {
      timeoutMs: 15_000,
      what: "http_log_failed for the redirect",
    });
    const line = gw.logs.find((l) => l.json?.event === "http_log_failed" && l.json.request_id === id).json;
    assert.equal(line.status, 302);
    assert.ok(collector.requests.some((q) => q.url === "/redirect"));
    assert.ok(!collector.requests.some((q) => q.url === "/redirected"), "the Location was not fetched");
  });

  test("an Authorization header in `headers` is sent when http_endpoint has no user:password@", async () => {
    const res = await request(gw.at("/hauth/1"));
    assert.equal(res.status, 201);
    const { rec } = await entryOf(res);
    assert.equal(rec.headers.authorization, "Bearer collector-token");
  });

  test("jwt's header_names and uri_param_names are redacted", async () => {
    const res = await request(gw.at("/jwt/x?token=qjwt-secret&b=2"), { headers: { "x-jwt": "hjwt-secret" } });
    assert.equal(res.status, 401);
    const { entry, rec } = await entryOf(res);
    assert.equal(entry.request.headers["x-jwt"], "REDACTED");
    assert.deepEqual(entry.request.querystring, { token: "REDACTED", b: "2" });
    assert.equal(entry.request.uri, "/jwt/x?token=REDACTED&b=2");
    assert.ok(!rec.body.toString().includes("jwt-secret"));
  });

  test("method, content_type, headers; user:password in http_endpoint becomes Basic auth", async () => {
    const res = await request(gw.at("/opts/z"));
    assert.equal(res.status, 201);
    const { rec, entry } = await entryOf(res);
    assert.equal(rec.method, "PUT");
    assert.equal(rec.url, "/opts?tenant=1");
    assert.equal(rec.headers["content-type"], "application/json; charset=utf-8");
    assert.equal(rec.headers["x-collector-token"], "tok");
    assert.equal(rec.headers.authorization, "Basic " + Buffer.from("collector-user:pa55word").toString("base64"));
    assert.equal(entry.request.uri, "/opts/z");
  });

  test("a collector that cannot be reached or answers 500 changes nothing for the client; one console line", async () => {
    for (const [path, field] of [["/dead/1", "error"], ["/fail/1", "status"]]) {
      const res = await request(gw.at(path));
      assert.equal(res.status, 201, path);
      assert.equal(res.text, "ok");
      const id = res.headers["x-request-id"];
      await waitFor(() => gw.logs.some((l) => l.json?.event === "http_log_failed" && l.json.request_id === id), {
        timeoutMs: 15_000,
        what: `http_log_failed for ${path}`,
      });
      const lines = gw.logs.filter((l) => l.json?.event === "http_log_failed" && l.json.request_id === id);
      assert.equal(lines.length, 1);
      assert.ok(lines[0].json[field] !== undefined, `${path}: ${lines[0].message}`);
      if (field === "status") assert.equal(lines[0].json.status, 500);
      else assert.equal(lines[0].json.error, "connection failed");
      assert.match(lines[0].json.endpoint, /^http:\/\/127\.0\.0\.1:\d+\/(in|fail)$/);
      for (const secret of ["hunter2", "logger", "qs-secret"]) assert.ok(!lines[0].message.includes(secret), secret);
    }
  });

  // A new version is read at once only with CONFIG_RELOAD_SECONDS 0.
  if (reload === "0") test("invalid settings are refused with their JSON path", async () => {
    const ok = "http://127.0.0.1:9/in";
    const bad = [
      [{}, "missing field `http_endpoint`"],
      [{ http_endpoint: "ftp://x/in" }, "plugins[0].config.http_endpoint"],
      [{ http_endpoint: ok, method: "GET" }, "plugins[0].config.method: expected one of `POST`, `PUT`, `PATCH`"],
      [{ http_endpoint: ok, content_type: "text/plain" }, "plugins[0].config.content_type"],
      [{ http_endpoint: ok, timeout: 0 }, "plugins[0].config.timeout"],
      [{ http_endpoint: ok, headers: { Host: "x" } }, "plugins[0].config.headers.Host"],
      [{ http_endpoint: ok, headers: { "sk-name secret": "x" } }, "plugins[0].config.headers: a header name is not a valid HTTP token"],
      [{ http_endpoint: ok, headers: { "content-length": "1" } }, "plugins[0].config.headers.content-length"],
      [{ http_endpoint: ok, headers: { "Content-Type": "text/plain" } }, "plugins[0].config.headers.Content-Type"],
      [{ http_endpoint: ok, headers: { "X-A": "a\r\nb: c" } }, "plugins[0].config.headers: a header value cannot contain CR, LF or NUL"],
      [{ http_endpoint: "http://127.0.0.1:9/in#frag" }, "plugins[0].config.http_endpoint"],
      [{ http_endpoint: ok, custom_fields_by_lua: { a: "return 1" } }, "plugins[0].config.custom_fields_by_lua: not supported"],
      [{ http_endpoint: ok, bogus: 1 }, "bogus"],
      [{ http_endpoint: "http://u:p@127.0.0.1:9/in", headers: { Authorization: "Bearer x" } }, "plugins[0].config.headers.Authorization"],
    ];
    for (const [cfg, expected] of bad) {
      const version = await putConfig(gw, { ...config, plugins: [{ name: "http-log", config: cfg }] });
      await request(gw.at("/warm"));
      await waitFor(() => gw.logs.some((l) => l.json?.event === "config_rejected" && l.json?.version === version), {
        what: `config_rejected for ${JSON.stringify(cfg)}`,
      });
      const line = gw.logs.find((l) => l.json?.event === "config_rejected" && l.json?.version === version).json;
      assert.ok(line.error.includes(expected), `${line.error} should name ${expected}`);
      assert.ok(!line.error.includes("sk-name"), "a header name is never quoted");
    }
    await putConfig(gw, config);
  });
});
