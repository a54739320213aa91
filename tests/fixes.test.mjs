// Small gaps Kong users would hit, checked as a user sees them (one gateway for the file, an echo
// origin on 127.0.0.1):
// - docs/routing.md "The upstream path" step 3 and docs/configuration.md (services `url`): a service
//   base path with a trailing slash keeps it, never doubled (Kong's path_handling v0);
// - docs/proxying.md "Request headers sent upstream": `X-Forwarded-Path`;
// - docs/rate-limiting.md: Kong's `cluster` / `redis` policies and flat `redis_*` fields load and count
//   (exactly, with limits up to 10^12).
import { describe, test, before, after } from "node:test";
import assert from "node:assert/strict";
import { startGateway, startOrigin, request } from "./support/harness.mjs";
import { DO_OPTIONS } from "./ratelimit-helpers.mjs";

const KONG_REDIS = {
  redis_host: "redis.internal",
  redis_port: 6379,
  redis_username: "default",
  redis_password: "pw-very-secret",
  redis_database: 0,
  redis_timeout: 2000,
  redis_ssl: true,
  redis_ssl_verify: false,
  redis_server_name: "redis.internal",
};

describe("fixes", () => {
  let gw;
  let echo;

  /** GET through the gateway to the echo origin: the response and what the origin received. */
  async function upstream(path, headers = {}) {
    const before = echo.hits;
    const res = await request(gw.at(path), { headers });
    assert.equal(res.status, 200, `${path}: ${res.text}`);
    assert.equal(echo.hits, before + 1, `${path}: origin hit once`);
    return { res, up: echo.last };
  }

  before(async () => {
    echo = await startOrigin();
    gw = await startGateway({
      miniflare: DO_OPTIONS,
      config: {
        format_version: 1,
        services: [
          { name: "slash", url: `${echo.url}/s/` },
          { name: "slashes", url: `${echo.url}/s2//` },
          { name: "base", url: `${echo.url}/base` },
        ],
        routes: [
          { name: "p", service: "slash", paths: ["/p"] },
          { name: "pk", service: "slash", paths: ["/pk"], strip_path: false },
          { name: "pr", service: "slash", paths: ["/users/{id}"], rewrite: "/v2/users/{id}" },
          { name: "p2", service: "slashes", paths: ["/p2"] },
          { name: "api", service: "base", paths: ["/api"] },
          { name: "keep", service: "base", paths: ["/keep"], strip_path: false },
          { name: "cluster", service: "base", paths: ["/rl-cluster"] },
          { name: "redis", service: "base", paths: ["/rl-redis"] },
          { name: "huge", service: "base", paths: ["/rl-huge"] },
          { name: "huge-sliding", service: "base", paths: ["/rl-huge-sliding"] },
        ],
        plugins: [
          { name: "rate-limiting", route: "cluster", config: { minute: 2, policy: "cluster", limit_by: "route" } },
          {
            name: "rate-limiting",
            route: "redis",
            config: { minute: 2, policy: "redis", limit_by: "route", redis: { host: "r" }, ...KONG_REDIS },
          },
          {
            name: "rate-limiting",
            route: "huge",
            // A bucket of 10^12 tokens refilled at 1000 a year (one token every ~8.8 hours).
            config: { year: 1000, burst: 1e12, algorithm: "token_bucket", limit_by: "route", lease: false },
          },
          {
            name: "rate-limiting",
            route: "huge-sliding",
            config: { year: 1e12, limit_by: "route", lease: false },
          },
        ],
      },
    });
  });
  after(async () => {
    await gw?.dispose();
    await echo?.close();
  });

  // ------------------------------------------------------------------------------------------- base path

  test("a service base path with a trailing slash keeps it, never doubled (routing.md step 3)", async () => {
    const rows = [
      ["/p", "/s/"],
      ["/p/", "/s/"],
      ["/p/x", "/s/x"],
      ["/p/x/", "/s/x/"],
      ["/p/x/?a=1", "/s/x/?a=1"],
      ["/p?a=1", "/s/?a=1"],
      ["/pk/x", "/s/pk/x"],
      ["/pk", "/s/pk"],
      ["/users/7", "/s/v2/users/7"],
      // Runs of `/` at the end of the URL count as one.
      ["/p2", "/s2/"],
      ["/p2/x", "/s2/x"],
      // A base path without a trailing slash is joined as before.
      ["/api", "/base"],
      ["/api/", "/base/"],
      ["/api/x", "/base/x"],
    ];
    for (const [path, expected] of rows) {
      const { up } = await upstream(path);
      assert.equal(up.url, expected, path);
    }
  });

  // ----------------------------------------------------------------------------------- X-Forwarded-Path

  test("X-Forwarded-Path is the client's path in normal form, without the query, replacing the client's", async () => {
    const forged = { "x-forwarded-path": "/admin", x_forwarded_path: "/admin2" };
    const rows = [
      // [client path, X-Forwarded-Path, upstream path]
      ["/api/x/?q=1", "/api/x/", "/base/x/?q=1"],
      ["/api", "/api", "/base"],
      ["/api//%6Cogin?a=b", "/api/login", "/base/login?a=b"],
      ["/api/%c3%a9", "/api/%C3%A9", "/base/%C3%A9"],
      ["/keep/x", "/keep/x", "/base/keep/x"],
      ["/users/7?z", "/users/7", "/s/v2/users/7?z"],
      ["/p", "/p", "/s/"],
    ];
    for (const [path, xfp, url] of rows) {
      for (const headers of [{}, forged]) {
        const { up } = await upstream(path, headers);
        assert.equal(up.url, url, path);
        assert.equal(up.headers["x-forwarded-path"], xfp, `${path} ${JSON.stringify(headers)}`);
        assert.equal(up.headers.x_forwarded_path, undefined, "an underscore spelling is removed");
      }
    }
    // It sits beside X-Forwarded-Prefix (the stripped part), which is unchanged.
    const { up } = await upstream("/api/x");
    assert.equal(up.headers["x-forwarded-prefix"], "/api");
    assert.equal(up.headers["x-forwarded-path"], "/api/x");
  });

  // ------------------------------------------------------------------------------------- rate limiting

  test("Kong's policy cluster and redis (with flat redis_* fields) load and count as durable", async () => {
    for (const path of ["/rl-cluster", "/rl-redis"]) {
      const statuses = [];
      for (let i = 0; i < 3; i++) {
        const res = await request(gw.at(path));
        statuses.push(res.status);
        assert.equal(res.headers["x-ratelimit-limit-minute"], "2", path);
      }
      assert.deepEqual(statuses, [200, 200, 429], path);
    }
    // The Redis password is in no log line.
    const logs = gw.logs.map((l) => l.message).join("\n");
    assert.ok(!logs.includes("pw-very-secret"), "no password in the logs");
  });

  test("buckets and windows of 10^12 count every request exactly (rate-limiting.md, Algorithms)", async () => {
    for (const [path, limit] of [
      ["/rl-huge", "1000"],
      ["/rl-huge-sliding", "1000000000000"],
    ]) {
      const remaining = [];
      for (let i = 0; i < 3; i++) {
        const res = await request(gw.at(path));
        assert.equal(res.status, 200, res.text);
        assert.equal(res.headers["x-ratelimit-limit-year"], limit, path);
        remaining.push(res.headers["x-ratelimit-remaining-year"]);
      }
      assert.deepEqual(remaining, ["999999999999", "999999999998", "999999999997"], path);
    }
  });
});
