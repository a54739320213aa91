// Routing: which route a request takes, and the path, query and Host the origin receives.
import { describe, test, before, after } from "node:test";
import assert from "node:assert/strict";
import { startGateway, startOrigin, request } from "./support/harness.mjs";

describe("routing", () => {
  let gw;
  let a; // origin A (echo)
  let b; // origin B (echo, marks itself)

  before(async () => {
    gw = await startGateway();
    a = await startOrigin();
    b = await startOrigin((req, res, rec) => {
      res.writeHead(200, { "content-type": "application/json", "x-which": "b" });
      res.end(JSON.stringify({ origin: "b", url: rec.url }));
    });
  });
  after(async () => {
    await gw?.dispose();
    await a?.close();
    await b?.close();
  });

  const config = (routes, services) => ({
    format_version: 1,
    services: services ?? [
      { name: "a", url: `${a.url}/base` },
      { name: "b", url: b.url },
    ],
    routes,
  });

  /** Request through the gateway and return the path+query origin A saw (null if A was not hit). */
  async function pathAtA(path, init = {}) {
    const before = a.hits;
    const res = await request(gw.at(path), { headers: { "accept-encoding": "identity" }, ...init });
    const seen = a.hits > before ? a.last.url : null;
    return { res, seen };
  }

  test("prefix route strips the prefix, prepends the service base path, keeps the query", async () => {
    await gw.putConfig(config([{ name: "api", service: "a", paths: ["/api"] }]));
    let { res, seen } = await pathAtA("/api/users/7?x=1&y=two%20words&x=3");
    assert.equal(res.status, 200, res.text);
    assert.equal(seen, "/base/users/7?x=1&y=two%20words&x=3");
    assert.equal(res.headers["x-origin"], "yes", "origin headers pass through");
    assert.equal(res.json().method, "GET");

    ({ res, seen } = await pathAtA("/api"));
    assert.equal(res.status, 200);
    assert.equal(seen, "/base", "the bare prefix forwards the base path");

    ({ res, seen } = await pathAtA("/api?q=1"));
    assert.equal(res.status, 200);
    assert.equal(seen, "/base?q=1");
  });

  test("prefix matching is segment-aware", async () => {
    await gw.putConfig(config([{ name: "api", service: "a", paths: ["/api"] }]));
    const { res, seen } = await pathAtA("/apix");
    assert.equal(res.status, 404);
    assert.equal(seen, null, "origin must not be hit");
  });

  test("strip_path false forwards the full path", async () => {
    await gw.putConfig(config([{ name: "api", service: "a", paths: ["/api"], strip_path: false }]));
    const { res, seen } = await pathAtA("/api/users/7?z=9");
    assert.equal(res.status, 200);
    assert.equal(seen, "/base/api/users/7?z=9");
  });

  test("exact path matches only that path", async () => {
    await gw.putConfig(config([{ name: "health", service: "a", paths: ["=/health"], strip_path: false }]));
    let { res, seen } = await pathAtA("/health");
    assert.equal(res.status, 200);
    assert.equal(seen, "/base/health");
    ({ res, seen } = await pathAtA("/health/x"));
    assert.equal(res.status, 404);
    assert.equal(seen, null);
  });

  test("template path with rewrite renders captured parameters", async () => {
    await gw.putConfig(
      config([{ name: "users", service: "a", paths: ["/users/{id}"], rewrite: "/v2/users/{id}" }]),
    );
    let { res, seen } = await pathAtA("/users/42?fields=name");
    assert.equal(res.status, 200);
    assert.equal(seen, "/base/v2/users/42?fields=name");
    ({ res, seen } = await pathAtA("/users/42/extra"));
    assert.equal(res.status, 404, "a template without {*rest} matches exactly its segments");
    assert.equal(seen, null);
  });

  test("template {*rest} takes the rest of the path", async () => {
    await gw.putConfig(
      config([{ name: "files", service: "a", paths: ["/files/{*rest}"], rewrite: "/storage/{rest}" }]),
    );
    const { res, seen } = await pathAtA("/files/a/b/c.txt");
    assert.equal(res.status, 200);
    assert.equal(seen, "/base/storage/a/b/c.txt");
  });

  test("regex path matches, and named groups feed the rewrite", async () => {
    await gw.putConfig(
      config([
        { name: "items", service: "a", paths: ["~^/v[0-9]+/items$"], strip_path: false },
        { name: "named", service: "a", paths: ["~^/orders/(?P<order>[0-9]+)$"], rewrite: "/o/{order}" },
      ]),
    );
    let { res, seen } = await pathAtA("/v3/items?all=1");
    assert.equal(res.status, 200);
    assert.equal(seen, "/base/v3/items?all=1");
    ({ res, seen } = await pathAtA("/v3/items/9"));
    assert.equal(res.status, 404);
    ({ res, seen } = await pathAtA("/orders/123"));
    assert.equal(res.status, 200);
    assert.equal(seen, "/base/o/123");
  });

  test("hosts: exact and wildcard, other hosts do not match", async () => {
    await gw.putConfig(
      config([
        { name: "exact", service: "a", hosts: ["api.example.com"], paths: ["/"] },
        { name: "wild", service: "b", hosts: ["*.example.com"], paths: ["/"] },
      ]),
    );
    let res = await request(gw.at("/x"), { headers: { host: "api.example.com" } });
    assert.equal(res.status, 200);
    assert.equal(res.headers["x-which"], undefined, "exact host goes to a");
    res = await request(gw.at("/x"), { headers: { host: "shop.example.com" } });
    assert.equal(res.status, 200);
    assert.equal(res.headers["x-which"], "b", "wildcard host goes to b");
    res = await request(gw.at("/x"), { headers: { host: "example.org" } });
    assert.equal(res.status, 404);
    // Host matching ignores the port and case.
    res = await request(gw.at("/x"), { headers: { host: "API.Example.com:8443" } });
    assert.equal(res.status, 200);
    assert.equal(res.headers["x-which"], undefined);
  });

  test("header conditions: exact (case-insensitive) value or ~regex", async () => {
    await gw.putConfig(
      config([{ name: "env", service: "a", paths: ["/"], headers: { "x-env": ["prod", "~^stag"] } }]),
    );
    for (const [value, status] of [
      ["prod", 200],
      ["PROD", 200],
      ["staging", 200],
      ["dev", 404],
      [undefined, 404],
    ]) {
      const headers = value === undefined ? {} : { "x-env": value };
      const res = await request(gw.at("/x"), { headers });
      assert.equal(res.status, status, `x-env=${value}`);
    }
  });

  test("priority wins over path specificity", async () => {
    await gw.putConfig(
      config([
        { name: "specific", service: "a", paths: ["/api/users"] },
        { name: "general", service: "b", paths: ["/api"], priority: 10 },
      ]),
    );
    const res = await request(gw.at("/api/users/1"));
    assert.equal(res.status, 200);
    assert.equal(res.headers["x-which"], "b");
  });

  test("longer prefix wins at equal priority", async () => {
    await gw.putConfig(
      config([
        { name: "general", service: "b", paths: ["/api"] },
        { name: "specific", service: "a", paths: ["/api/users"] },
      ]),
    );
    const { res, seen } = await pathAtA("/api/users/1");
    assert.equal(res.status, 200);
    assert.equal(seen, "/base/1");
  });

  // workerd derives the Host header from the fetch URL and ignores a Host header set by the Worker, so the
  // gateway puts the client's host in the URL (and, on Cloudflare, connects to the service host through
  // cf.resolveOverride, which workerd ignores). Locally that only reaches the origin when the client's host
  // resolves to it: "localhost".
  test("preserve_host sends the client's Host; otherwise the service's host:port", async () => {
    await gw.putConfig(
      config([
        { name: "keep", service: "a", paths: ["/keep"], preserve_host: true },
        { name: "svc", service: "a", paths: ["/svc"] },
      ]),
    );
    let res = await request(gw.at("/keep/x"), { headers: { host: "localhost" } });
    assert.equal(res.status, 200, res.text);
    // The client's host name; the service URL's explicit port stays (the gateway still has to reach it).
    assert.equal(a.last.headers.host, `localhost:${a.port}`);
    assert.equal(a.last.url, "/base/x");
    res = await request(gw.at("/svc/x"), { headers: { host: "localhost" } });
    assert.equal(res.status, 200, res.text);
    assert.equal(a.last.headers.host, `127.0.0.1:${a.port}`);
  });

  test("method, body and origin status/headers/body pass through", async () => {
    const c = await startOrigin((req, res, rec) => {
      res.writeHead(201, [
        ["content-type", "text/plain"],
        ["x-custom", "42"],
        ["set-cookie", "a=1; Path=/"],
        ["set-cookie", "b=2; Path=/"],
      ]);
      res.end(`got ${rec.method} ${rec.body.length} bytes: ${rec.body.toString()}`);
    });
    try {
      await gw.putConfig(config([{ name: "c", service: "c", paths: ["/c"] }], [{ name: "c", url: c.url }]));
      const res = await request(gw.at("/c/things"), {
        method: "PUT",
        headers: { "content-type": "application/json", "accept-encoding": "identity" },
        body: '{"hello":"world"}',
      });
      assert.equal(res.status, 201);
      assert.equal(res.text, 'got PUT 17 bytes: {"hello":"world"}');
      assert.equal(res.headers["x-custom"], "42");
      assert.deepEqual(res.headers["set-cookie"], ["a=1; Path=/", "b=2; Path=/"]);
      assert.equal(c.last.headers["content-type"], "application/json");
    } finally {
      await c.close();
    }
  });

  test("an origin's own 404/500 is passed through, not turned into a gateway error", async () => {
    const c = await startOrigin((req, res) => {
      const status = req.url.endsWith("/missing") ? 404 : 500;
      res.writeHead(status, { "content-type": "text/html" });
      res.end(`<p>origin ${status}</p>`);
    });
    try {
      await gw.putConfig(config([{ name: "c", service: "c", paths: ["/"] }], [{ name: "c", url: c.url }]));
      for (const status of [404, 500]) {
        const res = await request(gw.at(status === 404 ? "/missing" : "/boom"), {
          headers: { "accept-encoding": "identity" },
        });
        assert.equal(res.status, status);
        assert.equal(res.headers["content-type"], "text/html");
        assert.equal(res.text, `<p>origin ${status}</p>`);
      }
    } finally {
      await c.close();
    }
  });
});
