// Leftover defects, seen as a user sees them:
// - request-transformer `append` on a request's Cookie joins cookies with "; " (docs/transformations.md);
// - validation errors name the path and the problem, never a bad entry that may hold a secret
//   (docs/traffic-policies.md, docs/plugins.md, docs/configuration.md), through `edgegate-config validate`;
// - README.md's `scripts/dev` examples, against kv-seed/config.json and the demo origin.
import { describe, test, before, after } from "node:test";
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { ROOT, startGateway, startOrigin, request } from "./support/harness.mjs";
import { startOrigin as startDemoOrigin } from "./support/origin.mjs";

function cli(args) {
  return new Promise((resolve, reject) => {
    const child = spawn("cargo", ["run", "-q", "-p", "edgegate-cli", "--", ...args], {
      cwd: ROOT,
      env: { ...process.env, WRANGLER_SEND_METRICS: "false" },
      stdio: ["ignore", "pipe", "pipe"],
    });
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (d) => (stdout += d));
    child.stderr.on("data", (d) => (stderr += d));
    child.on("error", reject);
    child.on("close", (code) => resolve({ code, stdout, stderr }));
  });
}

describe("request-transformer append on Cookie", () => {
  let gw;
  let origin;
  before(async () => {
    origin = await startOrigin();
    gw = await startGateway({
      config: {
        format_version: 1,
        services: [{ name: "o", url: origin.url }],
        routes: [{ name: "r", service: "o", paths: ["/r"] }],
        plugins: [
          {
            name: "request-transformer",
            route: "r",
            config: { append: { headers: ["cookie:b=2", "x-tag:t2"] } },
          },
        ],
      },
    });
  });
  after(async () => {
    await gw?.dispose();
    await origin?.close();
  });

  test("an appended cookie joins the client's with '; ', other headers with ', '", async () => {
    const res = await request(gw.at("/r"), { headers: { cookie: "a=1", "x-tag": "t1" } });
    assert.equal(res.status, 200, res.text);
    assert.equal(origin.last.headers.cookie, "a=1; b=2");
    assert.equal(origin.last.headers["x-tag"], "t1, t2");
  });

  test("without a client cookie the appended one is sent alone", async () => {
    const res = await request(gw.at("/r"));
    assert.equal(res.status, 200, res.text);
    assert.equal(origin.last.headers.cookie, "b=2");
  });
});

describe("validation errors never quote a bad entry", { timeout: 300_000 }, () => {
  let dir;
  before(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), "edgegate-smallfix-"));
  });
  after(() => {
    if (dir) fs.rmSync(dir, { recursive: true, force: true });
  });

  test("cors origins/headers and request-termination trigger: path and problem only", async () => {
    const file = path.join(dir, "bad.json");
    fs.writeFileSync(
      file,
      JSON.stringify({
        format_version: 1,
        services: [{ name: "o", url: "http://127.0.0.1:9" }],
        routes: [{ name: "r", service: "o", paths: ["/r"] }],
        plugins: [
          {
            name: "cors",
            config: {
              origins: ["https://ok.test", "https://app.test/key/sk-SECRET1", "https://(unclosed"],
              headers: ["Authorization: Bearer sk-SECRET2"],
              exposed_headers: ["X-Key=sk-SECRET3"],
            },
          },
          { name: "request-termination", route: "r", config: { trigger: "X-Token: sk-SECRET4" } },
        ],
      }),
    );
    const r = await cli(["validate", file]);
    assert.notEqual(r.code, 0);
    const out = r.stdout + r.stderr;
    assert.ok(!out.includes("SECRET"), out);
    for (const line of [
      'plugins[0].config.origins[1]: not an origin: write scheme://host[:port] (e.g. https://app.example.com, no path), "*", or a regular expression',
      "plugins[0].config.origins[2]: invalid regular expression: found open group without closing ')'",
      "plugins[0].config.headers[0]: not a valid header name (it contains ':')",
      "plugins[0].config.exposed_headers[0]: not a valid header name (it contains '=')",
      "plugins[1].config.trigger: not a valid header name (it contains ':'; letters, digits, `-`, `_`, ...)",
    ]) {
      assert.ok(out.includes(line), `missing ${line}\n${out}`);
    }
  });

  test("a service URL's bad host or port is not quoted", async () => {
    const file = path.join(dir, "url.json");
    const doc = (url) => ({
      format_version: 1,
      services: [{ name: "o", url }],
      routes: [{ name: "r", service: "o", paths: ["/r"] }],
    });
    fs.writeFileSync(file, JSON.stringify(doc("https://h=sk-SECRET")));
    let r = await cli(["validate", file]);
    assert.notEqual(r.code, 0);
    assert.ok(!(r.stdout + r.stderr).includes("SECRET"), r.stdout + r.stderr);
    assert.ok(
      (r.stdout + r.stderr).includes(
        "services[0].url: the host name is not valid (letters, digits, `-`, `.` and `_`)",
      ),
      r.stdout + r.stderr,
    );
    fs.writeFileSync(file, JSON.stringify(doc("https://h:99999")));
    r = await cli(["validate", file]);
    assert.ok((r.stdout + r.stderr).includes("the port is not a number from 1 to 65535"), r.stdout + r.stderr);
  });
});

describe("README: the scripts/dev examples against kv-seed/config.json", () => {
  let gw;
  let origin;
  before(async () => {
    origin = await startDemoOrigin();
    const seed = fs
      .readFileSync(path.join(ROOT, "kv-seed/config.json"), "utf8")
      .replaceAll("127.0.0.1:9001", `127.0.0.1:${origin.port}`);
    gw = await startGateway({ config: JSON.parse(seed) });
  });
  after(async () => {
    await gw?.dispose();
    await origin?.close();
  });

  test("prefix route echoes; prefix stripped; template rewrite; 405; header route; host route; 404", async () => {
    let res = await request(gw.at("/echo/hello?x=1"));
    assert.equal(res.status, 200, res.text);
    assert.equal(res.json().path, "/echo/hello");
    assert.deepEqual(res.json().query, { x: "1" });

    res = await request(gw.at("/api/anything"));
    assert.equal(res.status, 200, res.text);
    assert.equal(res.json().path, "/anything");

    res = await request(gw.at("/users/42"));
    assert.equal(res.status, 200, res.text);
    assert.equal(res.json().path, "/echo/users/42");

    res = await request(gw.at("/users/42"), { method: "POST" });
    assert.equal(res.status, 405);

    res = await request(gw.at("/echo/x"), { headers: { "x-canary": "yes" } });
    assert.equal(res.status, 200, res.text);
    assert.equal(res.json().path, "/echo/canary");

    res = await request(gw.at("/x"), { headers: { host: "admin.localhost" } });
    assert.equal(res.status, 200, res.text);
    assert.equal(res.json().path, "/x");

    res = await request(gw.at("/nope"));
    assert.equal(res.status, 404);
    assert.match(res.headers["content-type"], /^application\/problem\+json/);
  });

  test("the slow service times out after 2 s with 504; /status/N answers N", async () => {
    const t0 = Date.now();
    const res = await request(gw.at("/slow?ms=3000"));
    assert.equal(res.status, 504);
    assert.ok(Date.now() - t0 < 2900, `took ${Date.now() - t0} ms`);
    assert.equal((await request(gw.at("/status/418"))).status, 418);
  });
});

describe("README: the scripts/config walkthrough on local KV", { timeout: 300_000 }, () => {
  let dir;
  before(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), "edgegate-readme-"));
  });
  after(() => {
    if (dir) fs.rmSync(dir, { recursive: true, force: true });
  });

  test("validate, push, show, consumer add --group, key create, purge ROUTE, rollback", async () => {
    const readme = fs.readFileSync(path.join(ROOT, "README.md"), "utf8");
    const quick = JSON.parse(/## Configuration quickstart[\s\S]*?```json\n([\s\S]*?)```/.exec(readme)[1]);
    const persist = path.join(dir, "state");
    const kv = ["--local", "--persist-to", persist];
    const myConfig = path.join(dir, "my-config.json");
    fs.writeFileSync(myConfig, JSON.stringify(quick));

    let r = await cli(["validate", myConfig]);
    assert.equal(r.code, 0, r.stderr);
    r = await cli(["push", myConfig, ...kv]);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /^pushed version 1 /);
    r = await cli(["show", ...kv]);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /^in service: version 1 /m, "the version in service");
    assert.equal(JSON.parse(r.stdout.split("\n").slice(3).join("\n")).routes[0].name, "users", "and its document");

    r = await cli(["consumer", "add", "alice", "--group", "admins", ...kv]);
    assert.equal(r.code, 0, r.stderr);
    r = await cli(["key", "create", "alice", ...kv]);
    assert.equal(r.code, 0, r.stderr);
    const key = r.stdout.split("\n")[0].trim();
    assert.ok(key.length >= 32, r.stdout);

    // A second version with a cached route "catalog", then the README's purge and rollback.
    const withCatalog = {
      ...quick,
      routes: [...quick.routes, { name: "catalog", service: "users-api", paths: ["/catalog"] }],
      plugins: [{ name: "proxy-cache", route: "catalog", config: { strategy: "memory" } }],
    };
    fs.writeFileSync(myConfig, JSON.stringify(withCatalog));
    r = await cli(["push", myConfig, ...kv]);
    assert.equal(r.code, 0, r.stderr);
    r = await cli(["purge", "catalog", ...kv]);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /^purged route "catalog": generation 1 /);
    r = await cli(["rollback", ...kv]);
    assert.equal(r.code, 0, r.stderr);
    r = await cli(["show", ...kv]);
    assert.match(r.stdout, /^in service: version 1 /m, "back to the previous version");
  });
});
