// The order of phases (docs/plugins.md, "Order of phases" and request-termination's "When it runs";
// docs/traffic-policies.md, cors): `cors` answers preflights in the rewrite phase at priority 2000, before
// `request-termination` (rewrite or access, priority 2) and authentication, and adds its headers to every
// other answer, the termination's included; a `cors` instance cannot be scoped to a consumer.
import { describe, test, before, after } from "node:test";
import assert from "node:assert/strict";
import crypto from "node:crypto";
import { startGateway, startOrigin, request, putConfig, waitFor, problemOf } from "./support/harness.mjs";

const APP = "https://app.example.com";
const sha256hex = (s) => crypto.createHash("sha256").update(s).digest("hex");
const METHODS = "GET,HEAD,PUT,PATCH,POST,DELETE,OPTIONS,TRACE,CONNECT";
const corsHeaders = (res) => Object.keys(res.headers).filter((h) => h.startsWith("access-control-"));

// Both paths of the Worker: reload 0 (every request re-reads the configuration pointer: the asynchronous one)
// and 1 (most requests take the synchronous one, as in production; tests/syncpath.test.mjs).
for (const reload of [0, 1]) describe(`phases: cors before request-termination (CONFIG_RELOAD_SECONDS ${reload})`, { timeout: 120_000 }, () => {
  let gw, origin;
  const aliceKey = "eg_alice_" + crypto.randomBytes(16).toString("hex");
  const scraperKey = "eg_scraper_" + crypto.randomBytes(16).toString("hex");

  const put = (key, value) => gw.kv.put(key, JSON.stringify(value));
  async function consumer(id, username, key) {
    await put(`consumers/${id}`, { id, username, groups: [] });
    await put(`consumer-names/${username}`, { id });
    await put(`credentials/key-auth/${sha256hex(key)}`, { id: `cred-${id}`, consumer_id: id });
  }

  const route = (name, paths, service = "origin") => ({ name, service, paths });
  const config = {
    format_version: 1,
    services: [
      { name: "origin", url: "http://placeholder" },
      { name: "down", url: "http://placeholder" },
    ],
    routes: [
      route("maint", ["/maint"]),
      route("maint-continue", ["/maint-continue"]),
      route("down-cors", ["/down-cors"], "down"),
      route("down-plain", ["/down-plain"], "down"),
      route("members", ["/members"]),
      route("open", ["/open"]),
    ],
    plugins: [
      {
        name: "cors", route: "maint",
        config: { origins: [APP], credentials: true, exposed_headers: ["X-Request-Id"], max_age: 600 },
      },
      { name: "request-termination", route: "maint", config: { message: "maintenance" } },
      { name: "response-transformer", route: "maint", config: { add: { headers: ["x-served-by:edgegate"] } } },
      { name: "cors", route: "maint-continue", config: { origins: [APP], preflight_continue: true } },
      { name: "request-termination", route: "maint-continue" },
      // Terminated for a whole service; cors only on one of its routes.
      { name: "request-termination", service: "down", config: { status_code: 410, message: "retired" } },
      { name: "cors", route: "down-cors", config: { origins: [APP] } },
      // A consumer-scoped termination (access phase, after authentication) behind cors.
      { name: "cors", route: "members", config: { origins: [APP] } },
      { name: "key-auth", route: "members" },
      { name: "request-termination", route: "members", consumer: "scraper", config: { status_code: 403, message: "blocked" } },
    ],
  };

  before(async () => {
    gw = await startGateway({ reload });
    origin = await startOrigin();
    for (const s of config.services) s.url = origin.url;
    await consumer("c-alice", "alice", aliceKey);
    await consumer("c-scraper", "scraper", scraperKey);
    await gw.putConfig(config);
  });
  after(async () => {
    await gw?.dispose();
    await origin?.close();
  });

  /** Request and check that the origin was (or was not) called. */
  async function call(path, { reaches, headers = {}, ...opts }) {
    const hits = origin.hits;
    const res = await request(gw.at(path), { headers: { "accept-encoding": "identity", ...headers }, ...opts });
    assert.equal(origin.hits > hits, reaches, `${path}: origin ${reaches ? "not " : ""}called (status ${res.status})`);
    return res;
  }
  const preflight = (path, from = APP, extra = {}) =>
    call(path, {
      reaches: false,
      method: "OPTIONS",
      headers: { origin: from, "access-control-request-method": "PUT", ...extra },
    });

  test("a preflight on a terminated route is answered by cors (200, its headers), not terminated", async () => {
    const res = await preflight("/maint", APP, { "access-control-request-headers": "X-Token" });
    assert.equal(res.status, 200);
    assert.equal(res.body.length, 0);
    assert.equal(res.headers["access-control-allow-origin"], APP);
    assert.equal(res.headers["access-control-allow-credentials"], "true");
    assert.equal(res.headers["access-control-allow-methods"], METHODS);
    assert.equal(res.headers["access-control-allow-headers"], "X-Token");
    assert.equal(res.headers["access-control-max-age"], "600");
    assert.equal(res.headers.vary, "Origin, Access-Control-Request-Headers");
    assert.ok(res.headers["x-request-id"]);
    // The response phases run on cors's answer (docs/traffic-policies.md: response plugins still see it).
    assert.equal(res.headers["x-served-by"], "edgegate");
    // From an origin that is not allowed: still cors's 200 (without Access-Control-*), not the termination.
    const refused = await preflight("/maint", "https://evil.test");
    assert.equal(refused.status, 200);
    assert.deepEqual(corsHeaders(refused), []);
    assert.equal(refused.headers.vary, "Origin");
  });

  test("the actual request is terminated, and its answer carries the CORS headers", async () => {
    for (const method of ["GET", "PUT", "OPTIONS"]) {
      // A plain OPTIONS (no Access-Control-Request-Method) is not a preflight: terminated too.
      const res = await call("/maint", { reaches: false, method, headers: { origin: APP }, body: method === "PUT" ? "x" : undefined });
      assert.equal(res.status, 503, method);
      assert.deepEqual(res.json(), { message: "maintenance" }, method);
      assert.equal(res.headers["access-control-allow-origin"], APP, method);
      assert.equal(res.headers["access-control-allow-credentials"], "true", method);
      assert.equal(res.headers["access-control-expose-headers"], "X-Request-Id", method);
      assert.equal(res.headers["access-control-allow-methods"], undefined, method);
      assert.equal(res.headers.vary, "Origin", method);
      assert.equal(res.headers["x-served-by"], "edgegate", method);
    }
  });

  test("with preflight_continue the preflight is terminated like any request, without CORS headers", async () => {
    const res = await preflight("/maint-continue");
    assert.equal(res.status, 503);
    assert.deepEqual(res.json(), { message: "Service unavailable" });
    assert.deepEqual(corsHeaders(res), []);
    assert.equal(res.headers.vary, undefined);
    // The actual request: terminated, with the CORS headers.
    const actual = await call("/maint-continue", { reaches: false, headers: { origin: APP } });
    assert.equal(actual.status, 503);
    assert.equal(actual.headers["access-control-allow-origin"], APP);
  });

  test("a service-wide termination: cors on one of its routes answers that route's preflights", async () => {
    const res = await preflight("/down-cors");
    assert.equal(res.status, 200);
    assert.equal(res.headers["access-control-allow-origin"], APP);
    const actual = await call("/down-cors", { reaches: false, headers: { origin: APP } });
    assert.equal(actual.status, 410);
    assert.deepEqual(actual.json(), { message: "retired" });
    assert.equal(actual.headers["access-control-allow-origin"], APP);
    // Another route of the service, without cors: its preflight is terminated like any request.
    const other = await preflight("/down-plain");
    assert.equal(other.status, 410);
    assert.deepEqual(corsHeaders(other), []);
  });

  test("cors, key-auth and a consumer-scoped termination: preflight without a key, then auth, then termination", async () => {
    // The preflight needs no credentials: cors answers before authentication.
    const pre = await preflight("/members");
    assert.equal(pre.status, 200);
    assert.equal(pre.headers["access-control-allow-origin"], APP);
    // No key: 401 from key-auth, readable by the page.
    let res = await call("/members", { reaches: false, headers: { origin: APP } });
    assert.equal(res.status, 401);
    assert.equal(problemOf(res).code, "missing_credentials");
    assert.equal(res.headers["access-control-allow-origin"], APP);
    // The blocked consumer: the termination answer, with the CORS headers.
    res = await call("/members", { reaches: false, headers: { origin: APP, apikey: scraperKey } });
    assert.equal(res.status, 403);
    assert.deepEqual(res.json(), { message: "blocked" });
    assert.equal(res.headers["access-control-allow-origin"], APP);
    // Another consumer goes through.
    res = await call("/members", { reaches: true, headers: { origin: APP, apikey: aliceKey } });
    assert.equal(res.status, 200);
    assert.equal(res.headers["access-control-allow-origin"], APP);
  });

  test("a cors instance scoped to a consumer is refused with its path; the previous version keeps serving", async () => {
    const expected =
      "plugins[1].consumer: cors cannot be scoped to a consumer, as in Kong (it runs before the consumer is known): " +
      "attach it globally, to a service or to a route";
    for (const scoped of [
      { name: "cors", consumer: "alice" },
      { name: "cors", route: "open", consumer: "alice", config: { origins: [APP] } },
    ]) {
      const version = await putConfig(gw, { ...config, plugins: [{ name: "key-auth", route: "open" }, scoped] });
      const res = await call("/maint", { reaches: false });
      assert.equal(res.status, 503, "the previous version still serves");
      await waitFor(() => gw.logs.some((l) => l.json?.event === "config_rejected" && l.json?.version === version), {
        what: `config_rejected for ${JSON.stringify(scoped)}`,
      });
      const line = gw.logs.find((l) => l.json?.event === "config_rejected" && l.json?.version === version).json;
      assert.ok(line.error.includes(expected), `${line.error}\nshould include\n${expected}`);
    }
    // Scoped to a route, a service or nothing, it is accepted (the open route then gets cors).
    await gw.putConfig({ ...config, plugins: [...config.plugins, { name: "cors", route: "open", config: { origins: [APP] } }] });
    const res = await preflight("/open");
    assert.equal(res.status, 200);
    assert.equal(res.headers["access-control-allow-origin"], APP);
    await gw.putConfig(config);
  });
});
