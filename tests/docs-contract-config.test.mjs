// docs/configuration.md and README.md ("Configuration quickstart") as a contract, read the way an outside
// tester would: versions in KV and the pointer, what an isolate serves when the version the pointer names is
// missing or broken (the last good one keeps serving; 503 problem+json `no_config` only with nothing usable),
// the 10-version walk, an unreadable pointer, CONFIG_RELOAD_SECONDS, and the `edgegate-config` tool's
// documented outputs and exit statuses (validate, schema, compile, push, rollback, show), with no secret of
// the document ever echoed. (tests/reload.test.mjs, tests/config-compiled.test.mjs and tests/cli.test.mjs
// cover the basic reload, the compiled form's fallbacks and a push/rollback round trip.)
import { describe, test, before, after } from "node:test";
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import {
  ROOT,
  startGateway,
  startOrigin,
  request,
  putRaw,
  readPointer,
  waitFor,
  sleep,
  problemOf,
  configNamespaceId,
} from "./support/harness.mjs";

const events = (gw, name) => gw.logs.filter((l) => l.json?.event === name);

/** The 503 documented for a gateway without usable configuration. */
async function assertNoConfig(gw, p = "/anything") {
  const res = await request(gw.at(p), { headers: { "x-request-id": "no-config-1" } });
  assert.equal(res.status, 503, res.text);
  const problem = problemOf(res);
  assert.equal(problem.status, 503);
  assert.equal(problem.code, "no_config");
  assert.equal(typeof problem.title, "string");
  assert.equal(typeof problem.type, "string");
  assert.equal(typeof problem.detail, "string");
  assert.equal(problem.request_id, "no-config-1");
  assert.equal(res.headers["x-request-id"], "no-config-1");
  assert.match(res.headers["cache-control"] ?? "", /no-store/);
}

describe("versions in KV: what an isolate serves", { timeout: 120_000 }, () => {
  let origin;
  before(async () => {
    origin = await startOrigin();
  });
  after(async () => {
    await origin?.close();
  });

  const routeTo = (p) => ({
    format_version: 1,
    services: [{ name: "o", url: origin.url }],
    routes: [{ name: "r", service: "o", paths: [p] }],
  });
  const status = async (gw, p) => (await request(gw.at(p))).status;

  /** Write `config/current` as given (the versions it names are written, or not, by the caller). */
  const setPointer = async (gw, pointer) => {
    await gw.kv.put("config/current", JSON.stringify(pointer));
    await gw.afterWrite();
  };

  test("nothing pushed: 503 application/problem+json with code no_config", async (t) => {
    const gw = await startGateway();
    t.after(() => gw.dispose());
    await assertNoConfig(gw);
    await assertNoConfig(gw, "/other/path?x=1");
  });

  test("a route that matches nothing is 404, not 503: 503 is only for no usable configuration", async (t) => {
    const gw = await startGateway({ config: routeTo("/known") });
    t.after(() => gw.dispose());
    assert.equal(await status(gw, "/known"), 200);
    const res = await request(gw.at("/unknown"));
    assert.equal(res.status, 404);
    assert.equal(problemOf(res).code, "no_route");
  });

  test("a pointer naming a missing version: a new isolate serves the newest valid one of its history", async (t) => {
    const gw = await startGateway();
    t.after(() => gw.dispose());
    await gw.kv.put("config/versions/1", JSON.stringify(routeTo("/one")));
    await gw.kv.put("config/versions/2", JSON.stringify(routeTo("/two")));
    // Version 3 was never written (an interrupted push that still moved the pointer, a deleted key).
    await setPointer(gw, { version: 3, latest: 3, history: [1, 2] });
    assert.equal(await status(gw, "/two"), 200);
    assert.equal(await status(gw, "/one"), 404);
    const rejected = await waitFor(() => events(gw, "config_rejected").find((l) => l.json.version === 3), {
      what: "config_rejected for the missing version",
    });
    assert.equal(rejected.level, "error");
    const loaded = await waitFor(() => events(gw, "config_loaded")[0], { what: "config_loaded" });
    assert.equal(loaded.json.version, 2);
    assert.equal(loaded.json.pointer_version, 3);
    assert.deepEqual(loaded.json.skipped, [3]);
  });

  test("a pointer moved to a missing version: the version in service stays (config_kept)", async (t) => {
    const gw = await startGateway({ config: routeTo("/kept") });
    t.after(() => gw.dispose());
    assert.equal(await status(gw, "/kept"), 200);
    const p = await readPointer(gw);
    await setPointer(gw, { version: p.latest + 1, latest: p.latest + 1, history: [...p.history, p.version] });
    for (let i = 0; i < 3; i++) assert.equal(await status(gw, "/kept"), 200);
    const kept = await waitFor(() => events(gw, "config_kept")[0], { what: "config_kept" });
    assert.equal(kept.json.version, p.version);
    assert.equal(kept.json.pointer_version, p.latest + 1);
    assert.deepEqual(kept.json.skipped, [p.latest + 1]);
    // Logged once per isolate, not on every request.
    assert.equal(events(gw, "config_rejected").length, 1);
  });

  test("a version invalid for this gateway is rejected with the JSON path of each error", async (t) => {
    const gw = await startGateway({ config: routeTo("/good") });
    t.after(() => gw.dispose());
    assert.equal(await status(gw, "/good"), 200);
    const bad = await putRaw(
      gw,
      JSON.stringify({
        format_version: 1,
        services: [{ name: "o", url: origin.url, timeout_ms: 0 }],
        routes: [{ name: "r", service: "nope", paths: ["/bad"] }],
      }),
    );
    assert.equal(await status(gw, "/good"), 200);
    assert.equal(await status(gw, "/bad"), 404);
    const line = await waitFor(() => events(gw, "config_rejected").find((l) => l.json.version === bad), {
      what: "config_rejected",
    });
    assert.match(line.json.error, /services\[0\]\.timeout_ms: 0 is out of range/);
    assert.match(line.json.error, /routes\[0\]\.service: unknown service "nope"/);
    assert.equal(line.json.serving_version, bad - 1);
  });

  test("one check tries at most 10 versions: the named one and 9 of its history", async (t) => {
    // Good version 1, then broken versions 2..10: version 1 is the 10th candidate and is served.
    const gw = await startGateway();
    t.after(() => gw.dispose());
    await gw.kv.put("config/versions/1", JSON.stringify(routeTo("/deep")));
    for (let v = 2; v <= 10; v++) await gw.kv.put(`config/versions/${v}`, "not json");
    await setPointer(gw, { version: 10, latest: 10, history: [1, 2, 3, 4, 5, 6, 7, 8, 9] });
    assert.equal(await status(gw, "/deep"), 200);
    const loaded = await waitFor(() => events(gw, "config_loaded")[0], { what: "config_loaded" });
    assert.equal(loaded.json.version, 1);
    assert.deepEqual(loaded.json.skipped, [10, 9, 8, 7, 6, 5, 4, 3, 2]);

    // One more broken version on a new isolate: version 1 is the 11th candidate, so nothing is usable.
    const cold = await startGateway();
    t.after(() => cold.dispose());
    await cold.kv.put("config/versions/1", JSON.stringify(routeTo("/deep")));
    for (let v = 2; v <= 11; v++) await cold.kv.put(`config/versions/${v}`, "not json");
    await setPointer(cold, { version: 11, latest: 11, history: [1, 2, 3, 4, 5, 6, 7, 8, 9, 10] });
    await assertNoConfig(cold, "/deep");
    const none = await waitFor(() => events(cold, "config_no_valid_version")[0], { what: "config_no_valid_version" });
    assert.equal(none.level, "error");
    assert.equal(none.json.version, 11);
    assert.equal(events(cold, "config_rejected").length, 10, "each invalid version logged once");
  });

  test("nothing valid and nothing in service: 503 no_config; a good push then serves", async (t) => {
    const gw = await startGateway();
    t.after(() => gw.dispose());
    await putRaw(gw, '{"format_version": 2}');
    await assertNoConfig(gw);
    await waitFor(() => events(gw, "config_no_valid_version")[0], { what: "config_no_valid_version" });
    await gw.putConfig(routeTo("/fixed"));
    assert.equal(await status(gw, "/fixed"), 200);
  });

  test("an unreadable pointer keeps the version in service", async (t) => {
    const gw = await startGateway({ config: routeTo("/steady") });
    t.after(() => gw.dispose());
    assert.equal(await status(gw, "/steady"), 200);
    await gw.kv.put("config/current", "{not a pointer");
    await gw.afterWrite();
    for (let i = 0; i < 3; i++) assert.equal(await status(gw, "/steady"), 200);
    const line = await waitFor(() => events(gw, "config_pointer_unreadable")[0], { what: "config_pointer_unreadable" });
    assert.equal(line.level, "error");
    assert.equal(line.json.serving_version, 1);
    // Once the pointer is good again, the next check follows it.
    await gw.kv.put("config/versions/2", JSON.stringify(routeTo("/after")));
    await setPointer(gw, { version: 2, latest: 2, history: [1] });
    assert.equal(await status(gw, "/after"), 200);
  });

  test("CONFIG_RELOAD_SECONDS: the pointer is re-read at most that often", async (t) => {
    const gw = await startGateway({ bindings: { CONFIG_RELOAD_SECONDS: "4" }, config: routeTo("/v1") });
    t.after(() => gw.dispose());
    assert.equal(await status(gw, "/v1"), 200);
    const pushedAt = Date.now();
    await gw.putConfig(routeTo("/v2"));
    // Within the interval the isolate keeps serving what it has, without reading KV.
    assert.equal(await status(gw, "/v1"), 200);
    assert.equal(await status(gw, "/v2"), 404);
    assert.ok(Date.now() - pushedAt < 3500, "the checks above ran within the interval");
    // After it, the next request picks the new version up.
    await sleep(4300);
    assert.equal(await status(gw, "/v2"), 200);
    assert.equal(await status(gw, "/v1"), 404);
  });
});

// ---------------------------------------------------------------------------------------------------------
// The `edgegate-config` tool, as docs/configuration.md ("The edgegate-config tool") shows it.

function run(args, { input } = {}) {
  return new Promise((resolve, reject) => {
    const child = spawn("cargo", ["run", "-q", "--release", "-p", "edgegate-cli", "--", ...args], {
      cwd: ROOT,
      env: { ...process.env, WRANGLER_SEND_METRICS: "false" },
      stdio: ["pipe", "pipe", "pipe"],
    });
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (d) => (stdout += d));
    child.stderr.on("data", (d) => (stderr += d));
    child.on("error", reject);
    child.on("close", (code) => resolve({ code, stdout, stderr }));
    child.stdin.end(input ?? "");
  });
}

/** The blocks of docs/configuration.md with this info string, in order. */
function docBlocks(info) {
  const md = fs.readFileSync(path.join(ROOT, "docs", "configuration.md"), "utf8");
  const out = [];
  const re = /^```([^\n]*)\n([\s\S]*?)^```/gm;
  for (const m of md.matchAll(re)) if (m[1].trim() === info) out.push(m[2]);
  return out;
}

const SECRET = "sk-live-0123456789abcdef-do-not-print";

// Each KV operation of the CLI runs wrangler (a second or more each on a busy machine).
describe("edgegate-config", { timeout: 600_000 }, () => {
  let dir;
  let origin;
  before(async () => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), "edgegate-docs-config-"));
    origin = await startOrigin();
    const built = await new Promise((resolve) => {
      const c = spawn("cargo", ["build", "-q", "--release", "-p", "edgegate-cli"], { cwd: ROOT, stdio: "inherit" });
      c.on("close", resolve);
    });
    assert.equal(built, 0);
  });
  after(async () => {
    await origin?.close();
    if (dir) fs.rmSync(dir, { recursive: true, force: true });
  });

  const file = (name, doc) => {
    const f = path.join(dir, name);
    fs.writeFileSync(f, typeof doc === "string" ? doc : JSON.stringify(doc, null, 2));
    return f;
  };

  test("validate: the README quickstart and the documented example are accepted, with the summary line", async () => {
    const readme = fs.readFileSync(path.join(ROOT, "README.md"), "utf8");
    const quick = /## Configuration quickstart[\s\S]*?```json\n([\s\S]*?)```/.exec(readme)[1];
    let r = await run(["validate", file("quick.json", quick)]);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout, "ok: 1 services, 1 routes\n");
    assert.equal(r.stderr, "");

    const [full] = docBlocks("json full-config");
    r = await run(["validate", file("full.json", full)]);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout, "ok: 2 services, 4 routes\n");

    r = await run(["validate", "kv-seed/config.json"]);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /^ok: \d+ services, \d+ routes\n$/);
  });

  test("validate: the documented invalid example gives exactly the documented errors on stderr, exit 1", async () => {
    const [bad] = docBlocks("json invalid-config");
    const [expected] = docBlocks("text errors");
    const r = await run(["validate", file("bad.json", bad)]);
    assert.equal(r.code, 1);
    assert.equal(r.stdout, "");
    assert.equal(r.stderr, expected);
    // FILE may be - for stdin.
    const s = await run(["validate", "-"], { input: bad });
    assert.equal(s.code, 1);
    assert.equal(s.stderr, expected);
  });

  test("validate: malformed input, each error with its JSON path", async () => {
    const cases = [
      ['{"format_version": 1, "routes": [', /^\$: invalid JSON: .* at line 1 column \d+$/m],
      ['{"format_version": 1, "format_version": 1}', /^format_version: duplicate key "format_version"/m],
      ['[1]', /^\$: expected a JSON object/m],
      ['{"format_version": 1, "servics": []}', /^servics: unknown field `servics`, expected one of /m],
      ['{"format_version": 3}', /^format_version: unsupported format version 3/m],
      ['{"services": []}', /^format_version: missing field/m],
      [
        { format_version: 1, services: [{ name: "a", url: "http://a" }, { name: "a", url: "http://b" }] },
        /^services\[1\]\.name: duplicate service name "a" \(first used at services\[0\]\)$/m,
      ],
      [
        { format_version: 1, services: [{ name: "s", url: "http://a" }], routes: [{ name: "r", service: "s", paths: ["~^/(x$"] }] },
        /^routes\[0\]\.paths\[0\]: /m,
      ],
      [
        { format_version: 1, services: [{ name: "s", url: "http://a" }], routes: [{ name: "r", service: "s", rewrite: "/x/{id}", paths: ["/a"] }] },
        /^routes\[0\]\.rewrite: /m,
      ],
      [
        {
          format_version: 1,
          services: [{ name: "s", targets: [{ url: "http://a", weight: 70000 }] }],
        },
        /^services\[0\]\.targets\[0\]\.weight: 70000 is out of range \(0 to 65535\)$/m,
      ],
      [
        {
          format_version: 1,
          services: [{ name: "s", url: "http://a" }],
          routes: [{ name: "r", services: [{ name: "s", weight: 1 }, { name: "t", weight: 1 }] }],
        },
        /^routes\[0\]\.services\[1\]\.name: unknown service "t"$/m,
      ],
      [
        {
          format_version: 1,
          services: [{ name: "s", url: "http://a" }],
          plugins: [{ name: "key-auth", route: "nope" }, { name: "keyauth" }],
        },
        /^plugins\[0\]\.route: unknown route "nope"$[\s\S]*^plugins\[1\]\.name: unknown plugin "keyauth"/m,
      ],
      [
        {
          format_version: 1,
          plugins: [{ name: "ip-restriction", config: { allow: ["10.0.0.0/33"] } }],
        },
        /^plugins\[0\]\.config\.allow\[0\]: /m,
      ],
      [
        {
          format_version: 1,
          plugins: [{ name: "cors", config: { origins: ["https://a.example"], credentials: true, max_age: "x" } }],
        },
        /^plugins\[0\]\.config\.max_age: invalid type/m,
      ],
      [
        {
          format_version: 1,
          plugins: [{ name: "request-transformer", config: { add: { headers: ["x-a:$(headers.x"] } } }],
        },
        /^plugins\[0\]\.config\.add\.headers\[0\]: /m,
      ],
    ];
    for (const [doc, re] of cases) {
      const r = await run(["validate", file("case.json", doc)]);
      assert.equal(r.code, 1, `${JSON.stringify(doc)}: ${r.stdout}`);
      assert.equal(r.stdout, "");
      assert.match(r.stderr, re, JSON.stringify(doc));
      for (const line of r.stderr.trim().split("\n")) assert.match(line, /^[^ ]+: /, `one error per line with its path: ${line}`);
    }
  });

  test("wrong arguments exit 2 with the usage; an unreadable file exits 1", async () => {
    for (const args of [[], ["validate"], ["deploy"], ["push", "x.json"], ["push", "x.json", "--local", "--remote"], ["show", "--local", "--version", "0"]]) {
      const r = await run(args);
      assert.equal(r.code, 2, `${args.join(" ")}: ${r.stderr}`);
      assert.match(r.stderr, /^error: /);
      assert.match(r.stderr, /usage: edgegate-config <command>/);
    }
    const r = await run(["validate", path.join(dir, "does-not-exist.json")]);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /^error: cannot read /);
  });

  test("schema prints docs/config.schema.json", async () => {
    const r = await run(["schema"]);
    assert.equal(r.code, 0, r.stderr);
    assert.deepEqual(JSON.parse(r.stdout), JSON.parse(fs.readFileSync(path.join(ROOT, "docs", "config.schema.json"), "utf8")));
  });

  test("compile writes the compiled form and says so", async () => {
    const out = path.join(dir, "seed.compiled");
    const r = await run(["compile", "kv-seed/config.json", "--out", out]);
    assert.equal(r.code, 0, r.stderr);
    const size = fs.statSync(out).size;
    assert.match(r.stdout, new RegExp(`^ok: \\d+ services, \\d+ routes; compiled form written to ${out.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")} \\(${size} bytes\\)\\n$`));
    assert.equal(fs.readFileSync(out).subarray(0, 4).toString(), "EGWC");
  });

  test("push, show, rollback against local KV, as documented; a secret header is never printed", async (t) => {
    const persist = path.join(dir, "state");
    const gw = await startGateway({ kvPersist: path.join(persist, "v3", "kv"), kvNamespaceId: configNamespaceId() });
    t.after(() => gw.dispose());
    const kv = ["--local", "--persist-to", persist];
    const v1 = {
      format_version: 1,
      services: [{ name: "o", url: origin.url, headers: { authorization: `Bearer ${SECRET}` } }],
      routes: [{ name: "r", service: "o", paths: ["/one"] }],
    };
    let r = await run(["push", file("v1.json", v1), ...kv]);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout, "pushed version 1 (1 services, 1 routes); now in service (previously: none)\n");
    // The version, its compiled form and the pointer, as the docs lay them out.
    assert.equal(await gw.kv.get("config/versions/1"), fs.readFileSync(path.join(dir, "v1.json"), "utf8"), "stored exactly as pushed");
    assert.ok(await gw.kv.get("config/compiled/1", "arrayBuffer"));
    assert.deepEqual(JSON.parse(await gw.kv.get("config/current")), { version: 1, latest: 1, history: [] });
    let res = await request(gw.at("/one"));
    assert.equal(res.status, 200);
    assert.equal(JSON.parse(res.text).headers.authorization, `Bearer ${SECRET}`, "the service header is sent upstream");
    const loaded = await waitFor(() => events(gw, "config_loaded").find((l) => l.json.version === 1), { what: "config_loaded" });
    assert.equal(loaded.json.source, "compiled");

    const v2 = { ...v1, routes: [{ name: "r", service: "o", paths: ["/two"] }] };
    r = await run(["push", file("v2.json", v2), ...kv]);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout, "pushed version 2 (1 services, 1 routes); now in service (previously: version 1)\n");
    assert.equal((await request(gw.at("/two"))).status, 200);

    // A broken document: refused, nothing written, version 2 still in service; its errors do not echo the secret.
    const broken = { ...v2, services: [{ ...v2.services[0], timeout_ms: 0 }], routes: [{ name: "r", service: "x" }] };
    r = await run(["push", file("broken.json", broken), ...kv]);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /^services\[0\]\.timeout_ms: /m);
    assert.match(r.stderr, /^routes\[0\]\.service: unknown service "x"$/m);
    assert.equal(await gw.kv.get("config/versions/3"), null);
    assert.deepEqual(JSON.parse(await gw.kv.get("config/current")), { version: 2, latest: 2, history: [1] });

    r = await run(["show", ...kv]);
    assert.equal(r.code, 0, r.stderr);
    const lines = r.stdout.split("\n");
    assert.equal(lines[0], 'config/current: {"version":2,"latest":2,"history":[1]}');
    assert.equal(lines[1], "in service: version 2 (latest pushed: 2; rollback goes to version 1)");
    assert.equal(lines[2], "config/versions/2 (in service): ok: 1 services, 1 routes; shown with defaults filled in");
    const shown = JSON.parse(lines.slice(3).join("\n"));
    assert.equal(shown.services[0].timeout_ms, 60000, "defaults written out");
    assert.deepEqual(shown.routes[0].paths, ["/two"]);
    assert.equal(shown.services[0].headers.authorization, "<redacted>", "a credential header's value is not shown");
    assert.ok(!r.stdout.includes(SECRET));

    r = await run(["rollback", ...kv]);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout, "rolled back from version 2 to version 1\n");
    assert.equal((await request(gw.at("/one"))).status, 200);
    r = await run(["rollback", ...kv]);
    assert.equal(r.code, 1);
    assert.equal(r.stderr, "error: version 1 has no earlier version to roll back to\n");

    assert.ok(!r.stderr.includes(SECRET));
  });

  test("no output of validate, push or show prints a service header's value", async (t) => {
    const persist = path.join(dir, "state-secret");
    const kv = ["--local", "--persist-to", persist];
    const docs = {
      ok: { format_version: 1, services: [{ name: "o", url: "http://127.0.0.1:9", headers: { authorization: `Bearer ${SECRET}` } }] },
      // Errors next to the secret, and about the secret's own field.
      wrongType: { format_version: 1, services: [{ name: "o", url: "http://127.0.0.1:9", headers: `authorization: Bearer ${SECRET}` }] },
      badValue: { format_version: 1, services: [{ name: "o", url: "http://127.0.0.1:9", headers: { authorization: `Bearer ${SECRET}\r\nx: y` } }] },
      hopByHop: { format_version: 1, services: [{ name: "o", url: "http://127.0.0.1:9", headers: { "proxy-authorization": `Basic ${SECRET}` } }] },
      userinfo: { format_version: 1, services: [{ name: "o", url: `admin:${SECRET}@api.example.com` }] },
      userinfoScheme: { format_version: 1, services: [{ name: "o", url: `https://admin:${SECRET}@api.example.com` }] },
      target: { format_version: 1, services: [{ name: "o", targets: [{ url: `http://admin:${SECRET}@a.example.com` }] }] },
      // A plugin's header entry next to an error elsewhere in the same instance.
      transformer: {
        format_version: 1,
        plugins: [{ name: "request-transformer", config: { add: { headers: [`authorization:Bearer ${SECRET}`, "host:x"] } } }],
      },
    };
    for (const [name, doc] of Object.entries(docs)) {
      const f = file(`${name}.json`, doc);
      for (const args of [["validate", f], ["push", f, ...kv]]) {
        const r = await run(args);
        if (name === "ok") assert.equal(r.code, 0, r.stderr);
        else assert.equal(r.code, 1, `${name}: ${r.stdout}`);
        assert.ok(!(r.stdout + r.stderr).includes(SECRET), `${args[0]} ${name} printed the secret:\n${r.stdout}${r.stderr}`);
      }
    }
    const r = await run(["show", ...kv]);
    assert.equal(r.code, 0, r.stderr);
    assert.ok(!r.stdout.includes(SECRET), `show printed the secret:\n${r.stdout}`);
    assert.match(r.stdout, /"authorization": "/, "the header is listed, its value hidden");
  });
});
