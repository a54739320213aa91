// The small plugins of docs/plugins.md: request-termination and redirect (every documented option and the
// examples), where they run relative to authentication, and their validation errors.
import { describe, test, before, after } from "node:test";
import assert from "node:assert/strict";
import crypto from "node:crypto";
import { startGateway, startOrigin, request, putConfig, waitFor } from "./support/harness.mjs";

const sha256hex = (s) => crypto.createHash("sha256").update(s).digest("hex");

// Both paths of the Worker: reload 0 (every request re-reads the configuration pointer: the asynchronous one)
// and 1 (most requests take the synchronous one, as in production; tests/syncpath.test.mjs).
for (const reload of [0, 1]) describe(`request-termination and redirect (CONFIG_RELOAD_SECONDS ${reload})`, { timeout: 120_000 }, () => {
  let gw, origin;
  const aliceKey = "eg_alice_" + crypto.randomBytes(16).toString("hex");
  const scraperKey = "eg_scraper_" + crypto.randomBytes(16).toString("hex");

  const put = (key, value) => gw.kv.put(key, JSON.stringify(value));
  async function consumer(id, username, key) {
    await put(`consumers/${id}`, { id, username, groups: [] });
    await put(`consumer-names/${username}`, { id });
    await put(`credentials/key-auth/${sha256hex(key)}`, { id: `cred-${id}`, consumer_id: id });
  }

  const route = (name, paths, extra = {}) => ({ name, service: "origin", paths, ...extra });
  const config = {
    format_version: 1,
    services: [{ name: "origin", url: "http://placeholder" }],
    routes: [
      route("plain", ["/plain"]),
      route("orders", ["/orders"]),
      route("preview", ["/preview"]),
      route("default", ["/default"]),
      route("text", ["/text"]),
      route("empty", ["/empty"]),
      route("echo", ["/echo/{id}"]),
      route("guarded", ["/guarded"]),
      route("members", ["/members"]),
      route("old-api", ["/"], { hosts: ["old.example.com"] }),
      route("old-users", ["/u/{id}"]),
      route("moved", ["/moved"]),
      route("found", ["/found"]),
      route("see-other", ["/see-other"]),
      route("temporary", ["/temporary"]),
      route("kept", ["/kept"]),
      route("authed-redirect", ["/authed-redirect"]),
    ],
    plugins: [
      // docs/plugins.md, request-termination example.
      {
        name: "request-termination",
        route: "orders",
        config: { status_code: 503, body: "<h1>Back soon</h1>", content_type: "text/html" },
      },
      {
        name: "request-termination",
        route: "preview",
        config: { status_code: 418, message: "preview only", trigger: "x-preview" },
      },
      { name: "request-termination", consumer: "scraper", config: { status_code: 403, message: "blocked" } },
      // Every other option.
      { name: "request-termination", route: "default" },
      { name: "request-termination", route: "text", config: { status_code: 410, body: "gone for good" } },
      { name: "request-termination", route: "empty", config: { status_code: 204 } },
      { name: "request-termination", route: "echo", config: { status_code: 200, echo: true } },
      { name: "key-auth", route: "guarded" },
      { name: "request-termination", route: "guarded", config: { message: "maintenance" } },
      { name: "key-auth", route: "members" },
      // docs/plugins.md, redirect example.
      {
        name: "redirect",
        route: "old-api",
        config: { location: "https://api.example.com", keep_incoming_path: true },
      },
      {
        name: "redirect",
        route: "old-users",
        config: { location: "/users/$(uri_captures.id)", status_code: 308, keep_incoming_query: true },
      },
      { name: "redirect", route: "moved", config: { location: "https://new.example.com/docs?from=old" } },
      { name: "redirect", route: "found", config: { location: "/elsewhere", status_code: 302 } },
      { name: "redirect", route: "see-other", config: { location: "/result", status_code: 303 } },
      { name: "redirect", route: "temporary", config: { location: "/t?x=1", status_code: 307, keep_incoming_query: true } },
      {
        name: "redirect",
        route: "kept",
        config: { location: "https://n.example.com/ignored?y=2#frag", keep_incoming_path: true },
      },
      { name: "key-auth", route: "authed-redirect" },
      { name: "redirect", route: "authed-redirect", config: { location: "/after-auth" } },
    ],
  };

  before(async () => {
    gw = await startGateway({ reload });
    origin = await startOrigin();
    config.services[0].url = origin.url;
    await consumer("c-alice", "alice", aliceKey);
    await consumer("c-scraper", "scraper", scraperKey);
    await gw.putConfig(config);
  });
  after(async () => {
    await gw?.dispose();
    await origin?.close();
  });

  const get = (path, headers = {}, opts = {}) =>
    request(gw.at(path), { headers: { "accept-encoding": "identity", ...headers }, ...opts });

  /** Request and check that the origin was (or was not) called. */
  async function call(path, { reaches, headers, ...opts }) {
    const hits = origin.hits;
    const res = await get(path, headers, opts);
    assert.equal(origin.hits > hits, reaches, `${path}: origin ${reaches ? "not " : ""}called (status ${res.status})`);
    return res;
  }

  test("a route without plugins is proxied", async () => {
    const res = await call("/plain", { reaches: true });
    assert.equal(res.status, 200);
  });

  test("request-termination: body and content_type (the maintenance page of the example)", async () => {
    const res = await call("/orders/42", { reaches: false });
    assert.equal(res.status, 503);
    assert.equal(res.headers["content-type"], "text/html");
    assert.equal(res.text, "<h1>Back soon</h1>");
    assert.match(res.headers["x-request-id"], /^[0-9a-f-]{36}$/);
  });

  test("request-termination: defaults are 503 with Kong's JSON message", async () => {
    const res = await call("/default", { reaches: false, headers: { "x-request-id": "rt-default-1" } });
    assert.equal(res.status, 503);
    assert.equal(res.headers["content-type"], "application/json; charset=utf-8");
    assert.deepEqual(res.json(), { message: "Service unavailable" });
    assert.equal(res.headers["x-request-id"], "rt-default-1");
    await waitFor(() => gw.logs.some((l) => l.json?.event === "request" && l.json?.request_id === "rt-default-1"), {
      what: "the access log line",
    });
    const line = gw.logs.find((l) => l.json?.request_id === "rt-default-1").json;
    assert.equal(line.status, 503);
    assert.equal(line.route, "default");
    assert.equal(line.error, null);
  });

  test("request-termination: body without content_type is text/plain", async () => {
    const res = await call("/text", { reaches: false });
    assert.equal(res.status, 410);
    assert.equal(res.headers["content-type"], "text/plain; charset=utf-8");
    assert.equal(res.text, "gone for good");
    // docs/proxying.md: the gateway's own answers carry Date (RFC 9110 section 6.6.1).
    assert.ok(Math.abs(Date.parse(res.headers.date) - Date.now()) < 60_000, `Date: ${res.headers.date}`);
  });

  test("request-termination: 204 has no body", async () => {
    const res = await call("/empty", { reaches: false });
    assert.equal(res.status, 204);
    assert.equal(res.text, "");
  });

  test("request-termination: trigger terminates only requests with that header or query parameter", async () => {
    let res = await call("/preview/x", { reaches: true });
    assert.equal(res.status, 200);
    res = await call("/preview/x?x-preview", { reaches: false });
    assert.equal(res.status, 418);
    assert.deepEqual(res.json(), { message: "preview only" });
    res = await call("/preview/x?a=1&x-preview=yes", { reaches: false });
    assert.equal(res.status, 418);
    res = await call("/preview/x", { reaches: false, headers: { "X-Preview": "1" } });
    assert.equal(res.status, 418);
    res = await call("/preview/x?x-previewer=1", { reaches: true });
    assert.equal(res.status, 200);
  });

  test("request-termination: echo describes the request, credentials redacted", async () => {
    const res = await call("/echo/7?a=1&b=two", {
      reaches: false,
      headers: { authorization: "Bearer very-secret", "x-thing": "v", "x-request-id": "rt-echo-1" },
    });
    assert.equal(res.status, 200);
    assert.equal(res.headers["content-type"], "application/json; charset=utf-8");
    assert.ok(!res.text.includes("very-secret"));
    const e = res.json();
    assert.equal(e.request.method, "GET");
    assert.equal(e.request.path, "/echo/7");
    assert.deepEqual(e.request.query, { a: "1", b: "two" });
    assert.equal(e.request.headers.authorization, "[redacted]");
    assert.equal(e.request.headers["x-thing"], "v");
    assert.deepEqual(e.request.uri_captures, { id: "7" });
    assert.equal(e.request.request_id, "rt-echo-1");
    assert.equal(e.request.scheme, "http");
    assert.deepEqual(e.matched_route, { name: "echo" });
    assert.deepEqual(e.matched_service, { name: "origin" });
    assert.equal(e.consumer, null);
    assert.equal(e.message, "OK");
  });

  test("request-termination without consumer answers before authentication", async () => {
    // No credentials at all: the maintenance answer, not 401.
    let res = await call("/guarded", { reaches: false });
    assert.equal(res.status, 503);
    assert.deepEqual(res.json(), { message: "maintenance" });
    res = await call("/guarded", { reaches: false, headers: { apikey: "wrong" } });
    assert.equal(res.status, 503);
  });

  test("request-termination scoped to a consumer answers once that consumer is authenticated", async () => {
    let res = await call("/members", { reaches: true, headers: { apikey: aliceKey } });
    assert.equal(res.status, 200);
    res = await call("/members", { reaches: false, headers: { apikey: scraperKey } });
    assert.equal(res.status, 403);
    assert.deepEqual(res.json(), { message: "blocked" });
    res = await call("/members", { reaches: false });
    assert.equal(res.status, 401, "no consumer: authentication answers first");
    // On a route without auth plugins the consumer is never known: not terminated.
    res = await call("/plain", { reaches: true, headers: { apikey: scraperKey } });
    assert.equal(res.status, 200);
  });

  test("redirect: keep_incoming_path (the old host of the example)", async () => {
    let res = await call("/v1/items?page=2", { reaches: false, headers: { host: "old.example.com" } });
    assert.equal(res.status, 301);
    assert.equal(res.headers.location, "https://api.example.com/v1/items?page=2");
    assert.equal(res.headers["content-type"], "text/plain; charset=utf-8");
    assert.equal(res.text, "redirecting");
    assert.ok(res.headers["x-request-id"]);
    res = await call("/v1/items", { reaches: false, headers: { host: "old.example.com" } });
    assert.equal(res.headers.location, "https://api.example.com/v1/items");
    // The location's own path, query and fragment: path and query replaced, fragment kept.
    res = await call("/kept/a?b=1", { reaches: false });
    assert.equal(res.headers.location, "https://n.example.com/kept/a?b=1#frag");
  });

  test("redirect: captures, 308 and keep_incoming_query (the moved users of the example)", async () => {
    let res = await call("/u/42?full=1", { reaches: false, method: "POST", body: "x" });
    assert.equal(res.status, 308);
    assert.equal(res.headers.location, "/users/42?full=1");
    res = await call("/u/7", { reaches: false });
    assert.equal(res.headers.location, "/users/7");
  });

  test("redirect: a fixed location with the default 301 drops the request's path and query", async () => {
    const res = await call("/moved/deep/path?q=1", { reaches: false });
    assert.equal(res.status, 301);
    assert.equal(res.headers.location, "https://new.example.com/docs?from=old");
  });

  test("redirect: status_code 302, 303 and 307", async () => {
    let res = await call("/found", { reaches: false });
    assert.equal(res.status, 302);
    assert.equal(res.headers.location, "/elsewhere");
    res = await call("/see-other", { reaches: false, method: "POST", body: "x" });
    assert.equal(res.status, 303);
    assert.equal(res.headers.location, "/result");
    res = await call("/temporary?y=2", { reaches: false });
    assert.equal(res.status, 307);
    assert.equal(res.headers.location, "/t?x=1&y=2");
  });

  test("redirect runs after authentication", async () => {
    let res = await call("/authed-redirect", { reaches: false });
    assert.equal(res.status, 401);
    res = await call("/authed-redirect", { reaches: false, headers: { apikey: aliceKey } });
    assert.equal(res.status, 301);
    assert.equal(res.headers.location, "/after-auth");
  });

  test("invalid settings are refused with their JSON path; the previous version keeps serving", async () => {
    const bad = [
      [{ name: "request-termination", config: { status_code: 99 } }, "plugins[0].config.status_code"],
      [{ name: "request-termination", config: { message: "a", body: "b" } }, "plugins[0].config.body"],
      [{ name: "request-termination", config: { content_type: "text/html" } }, "plugins[0].config.content_type"],
      [{ name: "request-termination", config: { trigger: "a b" } }, "plugins[0].config.trigger"],
      [{ name: "request-termination", config: { bogus: 1 } }, "unknown field"],
      [{ name: "redirect", config: {} }, "missing field `location`"],
      [{ name: "redirect", config: { location: "/a", status_code: 200 } }, "plugins[0].config.status_code"],
      [{ name: "redirect", config: { location: "ftp://x" } }, "plugins[0].config.location"],
      [{ name: "redirect", config: { location: "/a/$(headers.x)" } }, "plugins[0].config.location"],
    ];
    for (const [plugin, expected] of bad) {
      const version = await putConfig(gw, { ...config, plugins: [plugin] });
      const res = await get("/default");
      assert.equal(res.status, 503, "the previous version still serves");
      await waitFor(() => gw.logs.some((l) => l.json?.event === "config_rejected" && l.json?.version === version), {
        what: `config_rejected for ${JSON.stringify(plugin)}`,
      });
      const line = gw.logs.find((l) => l.json?.event === "config_rejected" && l.json?.version === version).json;
      assert.ok(line.error.includes(expected), `${line.error} should name ${expected}`);
    }
    await gw.putConfig(config);
  });
});
