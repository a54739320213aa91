// The path that reaches the origin stays under the service's base path (docs/routing.md, "The upstream
// path"): a forwarded part with a `.` or `..` segment, in any spelling, is refused with 400 `invalid_path`
// and the origin gets nothing. Miniflare resolves plain `..` and `%2e%2e` segments of the incoming URL
// before the Worker sees it, so these requests carry dots the router itself turns into segments (a
// regex that strips part of a segment, a capture used in a rewrite) or that only an origin would read
// as one (encoded separators, `;` parameters), as in issue 11.
import { describe, test, before, after } from "node:test";
import assert from "node:assert/strict";
import http from "node:http";
import { startGateway, startOrigin, problemOf, waitFor } from "./support/harness.mjs";

/** GET `path` exactly as written: node:http's `path` option is sent unparsed, unlike a URL. */
function rawGet(base, path) {
  return new Promise((resolve, reject) => {
    const req = http.request(
      { host: base.hostname, port: base.port, path, agent: false, headers: { "accept-encoding": "identity" } },
      (res) => {
        const chunks = [];
        res.on("data", (c) => chunks.push(c));
        res.on("end", () => {
          const body = Buffer.concat(chunks);
          resolve({
            status: res.statusCode,
            headers: res.headers,
            text: body.toString("utf8"),
            json: () => JSON.parse(body.toString("utf8")),
          });
        });
      },
    );
    req.setTimeout(10_000, () => req.destroy(new Error(`GET ${path} timed out`)));
    req.on("error", reject);
    req.end();
  });
}

describe("paths stay under the service's base path", () => {
  let gw;
  let origin;

  before(async () => {
    origin = await startOrigin();
    gw = await startGateway({
      config: {
        format_version: 1,
        services: [{ name: "echo", url: `${origin.url}/echo/base` }],
        routes: [
          { name: "v", service: "echo", paths: ["~^/v[0-9]+"], strip_path: true },
          { name: "w", service: "echo", paths: ["~^/w"], strip_path: true },
          { name: "rr", service: "echo", paths: ["~^/rr/(?P<n>[^/]+)\\.json$"], rewrite: "/{n}" },
          { name: "tpl", service: "echo", paths: ["/t/{a}/{b}"], rewrite: "/x/{a}{b}" },
          { name: "files", service: "echo", paths: ["/files/{*rest}"], rewrite: "/s/{rest}" },
          { name: "api", service: "echo", paths: ["/api"] },
          { name: "keep", service: "echo", paths: ["/keep"], strip_path: false },
          // preserve_host: the URL names the client's host (127.0.0.1 here, so Miniflare reaches the origin).
          { name: "ph", service: "echo", paths: ["~^/ph[0-9]+"], preserve_host: true },
        ],
      },
    });
  });
  after(async () => {
    await gw?.dispose();
    await origin?.close();
  });

  /** Send `path` as it is; return the response and the path and query the origin saw (null: nothing). */
  async function send(path) {
    const before = origin.hits;
    const res = await rawGet(gw.url, path);
    return { res, seen: origin.hits > before ? origin.last.url : null };
  }

  async function assertRefused(path) {
    const { res, seen } = await send(path);
    assert.equal(res.status, 400, `${path}: ${res.text}`);
    const problem = problemOf(res);
    assert.equal(problem.code, "invalid_path", path);
    assert.equal(problem.status, 400);
    assert.equal(problem.request_id, res.headers["x-request-id"]);
    assert.equal(seen, null, `${path} must not reach the origin (it got ${seen})`);
  }

  async function assertForwarded(path, expected) {
    const { res, seen } = await send(path);
    assert.equal(res.status, 200, `${path}: ${res.text}`);
    assert.equal(seen, expected, path);
  }

  test("the issue's examples are refused with 400 invalid_path and never reach the origin", async () => {
    await assertRefused("/v2../admin/x");
    await assertRefused("/w%2e%2e/admin/x");
    await assertRefused("/rr/...json");
  });

  test("every spelling of a dot segment is refused, on every kind of route", async () => {
    for (const dots of ["..", ".", "%2e%2e", "%2E%2E", ".%2e", "%2E.", "%2e", "%2E"]) {
      await assertRefused(`/v2${dots}/admin/x`); // regex, strip_path cuts inside a segment
      await assertRefused(`/w${dots}`);
      await assertRefused(`/rr/${dots}.json`); // regex capture in a rewrite
    }
    await assertRefused("/ph2../admin"); // preserve_host
    await assertRefused("/ph2%2e%2e/admin");
  });

  test("separators and parameters an origin would read are refused too", async () => {
    await assertRefused("/api/..%2fadmin"); // %2F decoded by the origin
    await assertRefused("/api/..%2Fadmin");
    await assertRefused("/keep/a%5c..%5cadmin"); // %5C (backslash)
    await assertRefused("/files/..;/admin"); // ;parameters dropped by servlet containers
    await assertRefused("/files/a/%2e%2e%2fx");
  });

  test("ordinary paths with dots inside a segment still pass", async () => {
    await assertForwarded("/v2/file.tar.gz", "/echo/base/file.tar.gz");
    await assertForwarded("/v2/a..b", "/echo/base/a..b");
    await assertForwarded("/api/a..b", "/echo/base/a..b");
    await assertForwarded("/keep/.well-known/x.json", "/echo/base/keep/.well-known/x.json");
    await assertForwarded("/v2...", "/echo/base/...");
    await assertForwarded("/rr/a.b.json", "/echo/base/a.b");
    await assertForwarded("/t/a./.b", "/echo/base/x/a..b"); // parameters joined into a..b
    await assertForwarded("/files/a/b.c/d..e?x=..", "/echo/base/s/a/b.c/d..e?x=..");
    await assertForwarded("/ph2/v1.2", "/echo/base/v1.2");
  });

  test("the refusal is logged with its code", async () => {
    const { res } = await send("/v2../admin/x");
    const id = res.headers["x-request-id"];
    // Console lines reach the test asynchronously.
    const line = await waitFor(
      () => gw.logs.map((l) => l.json).find((j) => j?.event === "request" && j.request_id === id),
      { what: `the access log line of ${id}` },
    );
    assert.equal(line.status, 400);
    assert.equal(line.error, "invalid_path");
  });
});

// docs/routing.md, "Path normalization": spellings an origin reads as one path are one path to the router,
// so a route's plugins cannot be skipped by writing its path another way, and what is matched is what is
// forwarded.
describe("paths are matched and forwarded in normal form", () => {
  let gw;
  let origin;
  let base;

  before(async () => {
    origin = await startOrigin();
    gw = await startGateway({
      config: {
        format_version: 1,
        services: [{ name: "echo", url: `${origin.url}/echo` }],
        routes: [
          { name: "admin", service: "echo", paths: ["/admin"], strip_path: false },
          { name: "exact", service: "echo", paths: ["=/health"], strip_path: false },
          { name: "api", service: "echo", paths: ["/api"] },
          { name: "open", service: "echo", paths: ["/"], strip_path: false },
        ],
        plugins: [
          { name: "key-auth", route: "admin" },
          { name: "request-termination", route: "exact", config: { status_code: 204 } },
        ],
      },
    });
    base = new URL(gw.url);
  });
  after(async () => {
    await gw?.dispose();
    await origin?.close();
  });

  test("encoded letters and repeated slashes reach the route they spell, with its plugins", async () => {
    for (const path of ["/admin", "/%61dmin", "/%61%64%6D%69%6E/x", "//admin", "/admin//x", "///%61dmin"]) {
      const before = origin.requests.length;
      const res = await rawGet(base, path);
      assert.equal(res.status, 401, `${path}: ${res.text}`);
      assert.equal(origin.requests.length, before, `${path} reached the origin`);
    }
    assert.equal((await rawGet(base, "/%68ealth")).status, 204);
    assert.equal((await rawGet(base, "//health")).status, 204);
  });

  test("the forwarded path is the normal form; the query is untouched", async () => {
    const res = await rawGet(base, "/p%75blic//a%2fb/%7euser?q=%61&r=//");
    assert.equal(res.status, 200, res.text);
    assert.equal(origin.last.url, "/echo/public/a%2Fb/~user?q=%61&r=//");
    // Case is kept and an encoded slash stays encoded: neither is the admin route.
    assert.equal((await rawGet(base, "/Admin")).status, 200);
    assert.equal(origin.last.url, "/echo/Admin");
    // strip_path and X-Forwarded-Prefix work on the normal form too.
    assert.equal((await rawGet(base, "/%61pi//x")).status, 200);
    assert.equal(origin.last.url, "/echo/x");
    assert.equal(origin.last.headers["x-forwarded-prefix"], "/api");
  });
});
