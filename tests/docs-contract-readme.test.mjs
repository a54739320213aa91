// README.md as the contract, read as a new user reads it:
// - "Running locally": every curl example against the seeded demo configuration (kv-seed/config.json) with
//   the demo origin (tests/support/origin.mjs) and the fake AI providers, as scripts/dev starts them (the
//   seed's ports 9001 and 9100 replaced by free ones, as scripts/dev does for ORIGIN_PORT and AI_PORT);
// - "Configuration quickstart": the example validates with scripts/config and routes as described; the
//   scripts/config commands shown exist and take the options shown; no configuration at all is 503 no_config;
// - "Scripts" and "Layout": the scripts take the options shown, the files named exist.
// Behaviour is checked on both request paths (CONFIG_RELOAD_SECONDS 0: asynchronous; 600 after a warm-up
// request: synchronous).
import { describe, test, before, after } from "node:test";
import assert from "node:assert/strict";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { ROOT, startGateway, request, streamRequest, problemOf, sha256, pseudoRandomChunks, run, putAndWait, rejected } from "./support/harness.mjs";
import { startOrigin as startDemoOrigin } from "./support/origin.mjs";
import { startFakeProviders } from "./support/fake-providers.mjs";
import { DO_OPTIONS } from "./ratelimit-helpers.mjs";

const README = fs.readFileSync(path.join(ROOT, "README.md"), "utf8");
const section = (title) => {
  const start = README.indexOf(`\n## ${title}`);
  assert.ok(start >= 0, `README has a section "${title}"`);
  const end = README.indexOf("\n## ", start + 4);
  return README.slice(start, end < 0 ? undefined : end);
};
const blocks = (text, lang) => [...text.matchAll(new RegExp("```" + lang + "\\n([\\s\\S]*?)```", "g"))].map((m) => m[1]);

function seedFor(originPort, aiPort) {
  return JSON.parse(
    fs
      .readFileSync(path.join(ROOT, "kv-seed/config.json"), "utf8")
      .replaceAll("127.0.0.1:9001", `127.0.0.1:${originPort}`)
      .replaceAll("127.0.0.1:9100", `127.0.0.1:${aiPort}`),
  );
}

test("README: the curl examples of \"Running locally\" are the ones this file checks", () => {
  const curls = blocks(section("Running locally: `scripts/dev`"), "sh")[0]
    .split("\n")
    .filter(Boolean)
    .map((l) => l.replace(/\s+#.*$/, "").trim());
  assert.deepEqual(curls, [
    "curl -s localhost:8787/echo/hello?x=1",
    "curl -s localhost:8787/api/anything",
    "curl -s localhost:8787/users/42",
    "curl -s -X POST localhost:8787/users/42",
    "curl -s -H 'x-canary: yes' localhost:8787/echo/x",
    "curl -s -H 'Host: admin.localhost' localhost:8787/x",
    "curl -sN 'localhost:8787/sse?n=5&interval=500'",
    "curl -s 'localhost:8787/slow?ms=3000'",
    "curl -s 'localhost:8787/download?mb=100' | wc -c",
    "curl -s --data-binary @some-file localhost:8787/upload",
    "curl -s localhost:8787/nope",
    "curl -s -D - -o /dev/null localhost:8787/cached/x",
    "curl -s -D - -o /dev/null localhost:8787/limited/x",
    `curl -s localhost:8787/ai/v1/chat/completions -d '{"model":"smart","messages":[{"role":"user","content":"hi"}]}'`,
  ]);
});

for (const reload of ["0", "600"]) {
  describe(`README "Running locally": the seeded demo (CONFIG_RELOAD_SECONDS ${reload})`, { timeout: 240_000 }, () => {
    let gw, origin, ai;
    before(async () => {
      origin = await startDemoOrigin();
      ai = await startFakeProviders();
      gw = await startGateway({ reload, config: seedFor(origin.port, new URL(ai.url).port), miniflare: DO_OPTIONS });
      // Loads the version: with 600, every later request is served on the synchronous path.
      assert.equal((await request(gw.at("/echo/warm"))).status, 200);
    });
    after(async () => {
      await gw?.dispose();
      await ai?.close();
      await origin?.close();
    });

    test("/echo/hello?x=1: the prefix route; the origin echoes method, path, query, headers and body", async () => {
      const res = await request(gw.at("/echo/hello?x=1"));
      assert.equal(res.status, 200, res.text);
      assert.match(res.headers["content-type"], /^application\/json/);
      const echo = res.json();
      assert.equal(echo.method, "GET");
      assert.equal(echo.path, "/echo/hello");
      assert.deepEqual(echo.query, { x: "1" });
      assert.equal(typeof echo.headers, "object");
      assert.equal(echo.raw_query, "?x=1");
      assert.equal(echo.body_length, 0);
      assert.equal("body" in echo, false);
      // The seed's demo service adds x-gateway: edgegate.
      assert.equal(echo.headers["x-gateway"], "edgegate");
      // A body is echoed too, up to 64 KiB; body_length always.
      const post = await request(gw.at("/echo/hello"), { method: "POST", body: "hi there" });
      assert.equal(post.status, 200, post.text);
      assert.equal(post.json().method, "POST");
      assert.equal(post.json().body, "hi there");
      assert.equal(post.json().body_length, 8);
      const big = await request(gw.at("/echo/hello"), { method: "POST", body: Buffer.alloc(64 * 1024 + 1, "a") });
      assert.equal(big.json().body_length, 64 * 1024 + 1);
      assert.equal("body" in big.json(), false);
      const limit = await request(gw.at("/echo/hello"), { method: "POST", body: Buffer.alloc(64 * 1024, "a") });
      assert.equal(limit.json().body.length, 64 * 1024);
    });

    test("/api/anything: the prefix is stripped, the origin sees /anything (an unknown path: echoed)", async () => {
      const res = await request(gw.at("/api/anything"));
      assert.equal(res.status, 200, res.text);
      assert.equal(res.json().path, "/anything");
    });

    test("/users/42: the template route, rewritten to /echo/users/42; POST is 405 (GET only)", async () => {
      const res = await request(gw.at("/users/42"));
      assert.equal(res.status, 200, res.text);
      assert.equal(res.json().path, "/echo/users/42");
      const post = await request(gw.at("/users/42"), { method: "POST", headers: { "content-length": "0" } });
      assert.equal(post.status, 405);
      assert.equal(problemOf(post).code, "method_not_allowed");
      assert.equal(post.headers.allow, "GET");
    });

    test("x-canary: yes picks the canary route (rewritten to /echo/canary); without it /echo/x goes to the echo route", async () => {
      let res = await request(gw.at("/echo/x"), { headers: { "x-canary": "yes" } });
      assert.equal(res.status, 200, res.text);
      assert.equal(res.json().path, "/echo/canary");
      res = await request(gw.at("/echo/x"));
      assert.equal(res.status, 200, res.text);
      assert.equal(res.json().path, "/echo/x");
    });

    test("Host: admin.localhost reaches the host-specific route; /x on another host is 404", async () => {
      let res = await request(gw.at("/x"), { headers: { host: "admin.localhost" } });
      assert.equal(res.status, 200, res.text);
      assert.equal(res.json().path, "/x");
      res = await request(gw.at("/x"));
      assert.equal(res.status, 404);
      assert.equal(problemOf(res).code, "no_route");
    });

    test("/sse?n=5&interval=500: five server-sent events, streamed as they come", async () => {
      const t0 = Date.now();
      const res = await streamRequest(gw.at("/sse?n=5&interval=500"));
      assert.equal(res.statusCode, 200);
      assert.match(res.headers["content-type"], /^text\/event-stream/);
      let text = "";
      let firstAt = null;
      for await (const chunk of res) {
        text += chunk.toString("utf8");
        if (firstAt === null && text.includes("\n\n")) firstAt = Date.now() - t0;
      }
      const total = Date.now() - t0;
      const events = text.split("\n\n").filter((e) => e.trim());
      assert.equal(events.length, 5, text);
      assert.ok(events.every((e) => /^id: \d+\nevent: tick\ndata: /.test(e)), text);
      // The events are 4 × 500 ms apart at the origin: the first arrives long before the last.
      assert.ok(total >= 1900, `took ${total} ms`);
      assert.ok(firstAt < total - 1000, `first event after ${firstAt} ms, all after ${total} ms`);
    });

    test("/slow?ms=3000: 504 upstream_timeout, the demo-slow service times out after 2 s", async () => {
      const t0 = Date.now();
      const res = await request(gw.at("/slow?ms=3000"));
      const took = Date.now() - t0;
      assert.equal(res.status, 504);
      assert.equal(problemOf(res).code, "upstream_timeout");
      // A 504, not the origin's 200 after 3 s; the bound is generous for a loaded machine.
      assert.ok(took >= 1900 && took < 6000, `took ${took} ms`);
      // Shorter than 2 s: answered.
      const ok = await request(gw.at("/slow?ms=100"));
      assert.equal(ok.status, 200);
      assert.deepEqual(ok.json(), { slept_ms: 100 });
    });

    test("/download?mb=100: 100 MiB streamed (104857600 bytes)", { timeout: 120_000 }, async () => {
      const res = await streamRequest(gw.at("/download?mb=100"), { timeoutMs: 120_000 });
      assert.equal(res.statusCode, 200);
      let n = 0;
      for await (const chunk of res) n += chunk.length;
      assert.equal(n, 100 * 1024 * 1024);
    });

    test("POST /upload: a streamed upload; the origin answers its size and sha256", { timeout: 120_000 }, async () => {
      const size = 8 * 1024 * 1024 + 7;
      const res = await request(gw.at("/upload"), { method: "POST", body: pseudoRandomChunks(size), timeoutMs: 120_000 });
      assert.equal(res.status, 200, res.text);
      const expected = sha256(Buffer.concat([...pseudoRandomChunks(size)]));
      assert.deepEqual(res.json(), { bytes: size, sha256: expected });
    });

    test("/status/N answers N; /nope is 404 application/problem+json no_route", async () => {
      const s = await request(gw.at("/status/418"));
      assert.equal(s.status, 418);
      assert.equal(s.json().status, 418);
      const res = await request(gw.at("/nope"));
      assert.equal(res.status, 404);
      assert.match(res.headers["content-type"], /^application\/problem\+json/);
      assert.equal(problemOf(res).code, "no_route");
    });

    test("the seed's /ai route: model smart, no ANTHROPIC_API_KEY: the fake Anthropic provider answers, in OpenAI's format", async () => {
      // As `curl -d` sends it: application/x-www-form-urlencoded.
      const res = await request(gw.at("/ai/v1/chat/completions"), {
        method: "POST",
        headers: { "content-type": "application/x-www-form-urlencoded" },
        body: '{"model":"smart","messages":[{"role":"user","content":"hi"}]}',
      });
      assert.equal(res.status, 200, res.text);
      const body = res.json();
      assert.equal(body.object, "chat.completion");
      assert.equal(body.choices[0].message.content, 'Hello from anthropic (claude-demo): you said "hi"');
      assert.ok(ai.requests.some((r) => r.provider === "anthropic" && r.json?.model === "claude-demo"));
    });

    test("/cached/x: rewritten to /echo/cached; X-Cache-Status Miss, then Hit (cache_ttl 30)", async () => {
      const first = await request(gw.at("/cached/x"));
      assert.equal(first.status, 200, first.text);
      assert.equal(first.json().path, "/echo/cached");
      assert.equal(first.headers["x-cache-status"], "Miss");
      assert.match(first.headers["cache-status"], /; stored; ttl=30\b/);
      const second = await request(gw.at("/cached/x"));
      assert.equal(second.status, 200);
      assert.equal(second.headers["x-cache-status"], "Hit");
      assert.equal(second.text, first.text);
    });

    test("/limited/x: rewritten to /echo/limited; 5 a minute per client IP, the 6th is 429 rate_limited", async () => {
      const ip = { "cf-connecting-ip": "203.0.113.9" };
      for (let i = 1; i <= 5; i++) {
        const res = await request(gw.at("/limited/x"), { headers: ip });
        assert.equal(res.status, 200, `request ${i}: ${res.text}`);
        assert.equal(res.json().path, "/echo/limited");
        assert.equal(res.headers["x-ratelimit-limit-minute"], "5");
        assert.equal(res.headers["x-ratelimit-remaining-minute"], String(5 - i));
      }
      const sixth = await request(gw.at("/limited/x"), { headers: ip });
      assert.equal(sixth.status, 429);
      assert.equal(problemOf(sixth).code, "rate_limited");
      assert.ok(Number(sixth.headers["retry-after"]) > 0);
      // Another client IP has its own count.
      const other = await request(gw.at("/limited/x"), { headers: { "cf-connecting-ip": "203.0.113.10" } });
      assert.equal(other.status, 200);
    });

    test("the canary route also takes x-canary: 1 and true; the admin route also serves *.admin.localhost", async () => {
      for (const v of ["1", "true"]) {
        const res = await request(gw.at("/echo/x"), { headers: { "x-canary": v } });
        assert.equal(res.json().path, "/echo/canary", v);
      }
      const no = await request(gw.at("/echo/x"), { headers: { "x-canary": "no" } });
      assert.equal(no.json().path, "/echo/x");
      const sub = await request(gw.at("/y"), { headers: { host: "eu.admin.localhost" } });
      assert.equal(sub.status, 200, sub.text);
      assert.equal(sub.json().path, "/y");
    });
  });
}

// ---------------------------------------------------------------------------------------------------------
// Configuration quickstart

const quickstart = () => JSON.parse(blocks(section("Configuration quickstart"), "json")[0]);

for (const reload of ["0", "600"]) {
  describe(`README "Configuration quickstart": the example routes as described (CONFIG_RELOAD_SECONDS ${reload})`, { timeout: 120_000 }, () => {
    let gw, origin;
    before(async () => {
      origin = await startDemoOrigin();
      const doc = quickstart();
      // The service's URL, with its path /v1, on the local origin.
      doc.services[0].url = `${origin.url}/v1`;
      gw = await startGateway({ reload, config: doc });
      const warm = await request(gw.at("/users/1"), { headers: { host: "api.example.com" } });
      assert.equal(warm.status, 200, warm.text);
    });
    after(async () => {
      await gw?.dispose();
      await origin?.close();
    });

    test("GET api.example.com/users/42 reaches the service at /v1/accounts/42; POST is 405; another host is 404", async () => {
      let res = await request(gw.at("/users/42?a=b"), { headers: { host: "api.example.com" } });
      assert.equal(res.status, 200, res.text);
      assert.equal(res.json().path, "/v1/accounts/42");
      assert.deepEqual(res.json().query, { a: "b" });
      res = await request(gw.at("/users/42"), { method: "POST", headers: { host: "api.example.com", "content-length": "0" } });
      assert.equal(res.status, 405);
      assert.equal(problemOf(res).code, "method_not_allowed");
      res = await request(gw.at("/users/42"), { headers: { host: "other.example.com" } });
      assert.equal(res.status, 404);
      assert.equal(problemOf(res).code, "no_route");
      res = await request(gw.at("/users/42/extra"), { headers: { host: "api.example.com" } });
      assert.equal(res.status, 404);
    });
  });
}

// "Every push is a new immutable version; the Worker picks it up ... and keeps serving the last good version if
// a new one cannot be loaded." Reload 1 rather than 600: pushes after the first request must be seen (the
// harness waits the interval after each write; later requests take the synchronous path).
for (const reload of ["0", "1"]) {
  test(`README: a push is picked up; a version that cannot be loaded leaves the last good one in service (CONFIG_RELOAD_SECONDS ${reload})`, { timeout: 60_000 }, async (t) => {
    const origin = await startDemoOrigin();
    t.after(() => origin.close());
    const doc = quickstart();
    doc.services[0].url = `${origin.url}/v1`;
    const gw = await startGateway({ reload, config: doc });
    t.after(() => gw.dispose());
    // A failure names the step and the ports (gateway, origin): an ECONNREFUSED was seen once, under load.
    let step = "v1";
    const get = () =>
      request(gw.at("/users/7"), { headers: { host: "api.example.com" } }).catch((e) => {
        throw new Error(`${step}: ${e.message} (gateway ${gw.url.port}, origin ${origin.port})`, { cause: e });
      });
    assert.equal((await get()).json().path, "/v1/accounts/7");
    // A second version: the rewrite changes.
    const v2 = structuredClone(doc);
    v2.routes[0].rewrite = "/people/{id}";
    step = "v2 pushed";
    await putAndWait(gw, v2);
    step = "v2 in service";
    for (let i = 0; i < 3; i++) assert.equal((await get()).json().path, "/v1/people/7");
    // A third that cannot be loaded (a route naming a service that does not exist): v2 stays.
    const bad = structuredClone(v2);
    bad.routes[0].service = "nope";
    step = "bad pushed";
    const error = await rejected(gw, bad);
    assert.ok(error);
    step = "after the rejection";
    for (let i = 0; i < 3; i++) {
      const res = await get();
      assert.equal(res.status, 200, res.text);
      assert.equal(res.json().path, "/v1/people/7");
    }
  });
}

for (const reload of ["0", "600"]) {
  test(`README: with nothing pushed the gateway answers 503 application/problem+json no_config (CONFIG_RELOAD_SECONDS ${reload})`, async (t) => {
    const gw = await startGateway({ reload });
    t.after(() => gw.dispose());
    for (let i = 0; i < 2; i++) {
      const res = await request(gw.at("/anything"));
      assert.equal(res.status, 503);
      assert.match(res.headers["content-type"], /^application\/problem\+json/);
      assert.equal(problemOf(res).code, "no_config");
    }
  });
}

describe("README: scripts/config, as the quickstart shows it", { timeout: 600_000 }, () => {
  let dir;
  before(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), "edgegate-readme2-"));
  });
  after(() => {
    if (dir) fs.rmSync(dir, { recursive: true, force: true });
  });
  const config = (...args) => run(path.join(ROOT, "scripts/config"), args);

  test("validate accepts the quickstart example and kv-seed/config.json", async () => {
    const file = path.join(dir, "my-config.json");
    fs.writeFileSync(file, blocks(section("Configuration quickstart"), "json")[0]);
    let r = await config("validate", file);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout, "ok: 1 services, 1 routes\n");
    r = await config("validate", "kv-seed/config.json");
    assert.equal(r.code, 0, r.stderr);
  });

  test("$schema: relative to the file; the quickstart's fits kv-seed/, docs/config.schema.json the root; ignored by validate", async () => {
    const q = quickstart();
    const seed = JSON.parse(fs.readFileSync(path.join(ROOT, "kv-seed/config.json"), "utf8"));
    assert.equal(q.$schema, "../docs/config.schema.json");
    assert.equal(seed.$schema, q.$schema);
    assert.ok(fs.existsSync(path.resolve(ROOT, "kv-seed", q.$schema)));
    assert.ok(fs.existsSync(path.resolve(ROOT, "docs/config.schema.json")));
    const file = path.join(dir, "root-config.json");
    fs.writeFileSync(file, JSON.stringify({ ...q, $schema: "docs/config.schema.json" }));
    const r = await config("validate", file);
    assert.equal(r.code, 0, r.stderr);
  });

  test("push, show, diff, rollback --local on a fresh local KV", async () => {
    const kv = ["--local", "--persist-to", path.join(dir, "state")];
    const file = path.join(dir, "my-config.json");
    const doc = quickstart();
    fs.writeFileSync(file, JSON.stringify(doc));
    let r = await config("push", file, ...kv);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /^pushed version 1\b/);
    doc.routes.push({ name: "orders", service: "users-api", paths: ["/orders"] });
    fs.writeFileSync(file, JSON.stringify(doc));
    r = await config("diff", file, ...kv);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /orders/, "the added route, by name");
    assert.doesNotMatch(r.stdout, /users-api/, "the unchanged service is not listed");
    r = await config("push", file, ...kv);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /^pushed version 2\b/);
    r = await config("rollback", ...kv);
    assert.equal(r.code, 0, r.stderr);
    r = await config("show", ...kv);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /^in service: version 1\b/m);
  });

  test("Deploying: --remote with the placeholder id stops with the documented error, exit 1; --local works", async () => {
    const r = await config("show", "--remote");
    assert.equal(r.code, 1);
    assert.match(r.stderr, /^error: wrangler\.toml still has the placeholder id /);
    const file = path.join(dir, "seed.json");
    fs.copyFileSync(path.join(ROOT, "kv-seed/config.json"), file);
    const local = await config("push", file, "--local", "--persist-to", path.join(dir, "state2"));
    assert.equal(local.code, 0, local.stderr);
  });

  test("scripts/config --help names every command of the Scripts table; consumer add takes --group", async () => {
    const r = await config("--help");
    assert.equal(r.code, 0, r.stderr);
    const help = r.stdout + r.stderr;
    const row = /\| `scripts\/config` \| [^(]*\(([^;]*);/.exec(section("Scripts"))[1];
    const commands = [...row.matchAll(/`([a-z-]+)`/g)].map((m) => m[1]);
    assert.ok(commands.length >= 13, row);
    for (const c of commands) assert.match(help, new RegExp(`\\b${c}\\b`), c);
    const consumer = await config("consumer", "add", "--help");
    assert.match(consumer.stdout + consumer.stderr, /consumer add USERNAME .*--group G/);
    assert.match(consumer.stdout + consumer.stderr, /key create USERNAME/);
  });
});

// ---------------------------------------------------------------------------------------------------------
// Scripts and Layout

describe("README: Scripts", () => {
  test("every script of the table exists and is executable (the .mjs one runs under node)", () => {
    const names = [...section("Scripts").matchAll(/^\| `([^`]+)` \|/gm)].map((m) => m[1]);
    assert.deepEqual(names, [
      "scripts/setup",
      "scripts/build",
      "scripts/dev",
      "scripts/test",
      "scripts/wasm-size.mjs",
      "scripts/check-wasm-test-modules",
      "scripts/config",
      "scripts/bench",
      ".ci/run",
    ]);
    for (const n of names) {
      const st = fs.statSync(path.join(ROOT, n));
      assert.ok(st.isFile(), n);
      if (!n.endsWith(".mjs")) assert.ok(st.mode & 0o111, `${n} is executable`);
    }
  });

  test("scripts/setup takes --bench and nothing else (an unknown option: usage, exit 2, nothing installed)", async () => {
    const r = await run(path.join(ROOT, "scripts/setup"), ["--help"]);
    assert.equal(r.code, 2);
    assert.match(r.stderr, /usage: scripts\/setup \[--bench\]/);
  });

  test("scripts/wasm-size.mjs takes --grep, --dups and --json", async () => {
    let r = await run("node", ["scripts/wasm-size.mjs", "--json"]);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(typeof JSON.parse(r.stdout), "object");
    r = await run("node", ["scripts/wasm-size.mjs", "--grep", "edgegate_core::router"]);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /edgegate_core::router/);
    r = await run("node", ["scripts/wasm-size.mjs", "--dups", "3"]);
    assert.equal(r.code, 0, r.stderr);
  });

  test("scripts/check-wasm-test-modules passes on this tree", async () => {
    const r = await run(path.join(ROOT, "scripts/check-wasm-test-modules"), []);
    assert.equal(r.code, 0, r.stdout + r.stderr);
  });

  test("the options named for scripts/build, scripts/test, scripts/bench and .ci/run are the ones they read", () => {
    const read = (f) => fs.readFileSync(path.join(ROOT, f), "utf8");
    assert.match(read("scripts/build"), /FORCE_BUILD/);
    assert.match(read("scripts/build"), /MAX_WASM_GZIP_BYTES=1000000\b/);
    assert.match(read("scripts/test"), /node --test --test-concurrency=1/);
    const bench = read("bench/run.mjs");
    assert.match(bench, /case "--rounds"/);
    assert.match(bench, /rounds: 3\b/);
    assert.match(bench, /case "--pipe-logs"/);
    assert.match(read(".ci/run"), /scripts\/test/);
    // "Both install what they need first"; "scripts/bench also installs wrk".
    assert.match(read("scripts/dev"), /^scripts\/setup$/m);
    assert.match(read("scripts/test"), /^run "setup" scripts\/setup$/m);
    assert.match(read("scripts/bench"), /^scripts\/setup --bench$/m);
    assert.match(read("scripts/setup"), /apt-get/);
  });
});

test("README Testing: the files named as running both paths do, and those named as calling afterWrite do", () => {
  const testing = section("Testing");
  const both = /for example\s+`tests\/syncpath\.test\.mjs`, ([^.]*)\./.exec(testing);
  assert.ok(both, testing);
  const names = ["syncpath", ...[...both[1].matchAll(/`([a-z0-9-]+)`/g)].map((m) => m[1])];
  assert.equal(names.length, 5);
  for (const n of names) {
    const src = fs.readFileSync(path.join(ROOT, "tests", `${n}.test.mjs`), "utf8");
    assert.match(src, /for \(const reload of \[/, n);
  }
  for (const n of ["cache", "config-compiled", "docs-contract-config"]) {
    assert.match(testing, new RegExp("`" + n + "`"));
    assert.match(fs.readFileSync(path.join(ROOT, "tests", `${n}.test.mjs`), "utf8"), /afterWrite/, n);
  }
});

describe("README: Layout, wrangler.toml and pinned versions", () => {
  test("every path the Layout section names exists", () => {
    const layout = blocks(section("Layout"), "")[0];
    const paths = [...layout.matchAll(/^([^\s]+)\s/gm)].map((m) => m[1]);
    assert.ok(paths.length >= 10, layout);
    const named = [
      ...paths,
      "src/entry.mjs",
      "scripts/esbuild-worker",
      "tests/support/harness.mjs",
      "tests/support/origin.mjs",
      "tests/recovery-worker/build.sh",
      "tests/recovery.test.mjs",
      "bench/worker.js",
      "bench/bare-rust",
      "bench/run.mjs",
      "bench/cpu.mjs",
      "bench/cpu-ab.mjs",
      "bench/crypto.mjs",
      "bench/cold-config.mjs",
      "bench/ai-ttfb.mjs",
      "docs/config.schema.json",
      "tests/support/fake-providers.mjs",
    ];
    for (const p of named) assert.ok(fs.existsSync(path.join(ROOT, p)), p);
    // The docs/ line names every guide there is, and each exists.
    const guides = /^docs\/\s+user guides \(([^)]*)\)/m.exec(layout)[1].split(/,\s*/).map((g) => g.trim().replace(/ /g, "-").toLowerCase());
    const files = fs.readdirSync(path.join(ROOT, "docs")).filter((f) => f.endsWith(".md")).map((f) => f.slice(0, -3));
    assert.deepEqual([...guides].sort(), [...files].sort());
  });

  test("every guide in docs/ is linked from the README", () => {
    for (const f of fs.readdirSync(path.join(ROOT, "docs")).filter((f) => f.endsWith(".md"))) {
      assert.ok(README.includes(`](docs/${f})`), f);
    }
  });

  test("scripts/dev starts what \"Running locally\" says: ports, reload 2 s, the seed pushed with scripts/config, rebuilds on the named dirs", () => {
    const dev = fs.readFileSync(path.join(ROOT, "scripts/dev"), "utf8");
    assert.match(dev, /^PORT=\$\{PORT:-8787\}$/m);
    assert.match(dev, /^ORIGIN_PORT=\$\{ORIGIN_PORT:-9001\}$/m);
    assert.match(dev, /^AI_PORT=\$\{AI_PORT:-9100\}$/m);
    assert.match(dev, /^SEED=\$\{SEED:-kv-seed\/config\.json\}$/m);
    assert.match(dev, /node tests\/support\/origin\.mjs --port "\$ORIGIN_PORT"/);
    assert.match(dev, /node tests\/support\/fake-providers\.mjs --port "\$AI_PORT"/);
    assert.match(dev, /scripts\/config push "\$seed_file" --local/);
    assert.match(dev, /wrangler dev --ip 127\.0\.0\.1 --port "\$PORT" --var CONFIG_RELOAD_SECONDS:2\b/);
    const toml = fs.readFileSync(path.join(ROOT, "wrangler.toml"), "utf8");
    assert.match(toml, /^command = "bash scripts\/build"$/m);
    const watched = JSON.parse(/^watch_dir = (\[.*\])$/m.exec(toml)[1]);
    const said = [...section("Running locally: `scripts/dev`").matchAll(/`((?:src|crates\/[a-z-]+\/src)\/)`/g)].map((m) => m[1].replace(/\/$/, ""));
    assert.deepEqual(said, watched);
  });

  test("every relative link of the README points at a file that exists", () => {
    const links = [...README.matchAll(/\]\(((?:docs|kv-seed|wrangler)[^)#]*)(#[^)]*)?\)/g)].map((m) => m[1]);
    assert.ok(links.length > 10);
    for (const l of links) assert.ok(fs.existsSync(path.join(ROOT, l)), l);
  });

  test("wrangler.toml: CONFIG_RELOAD_SECONDS 30, the placeholder KV id; package.json pins the versions named", () => {
    const toml = fs.readFileSync(path.join(ROOT, "wrangler.toml"), "utf8");
    assert.match(toml, /^CONFIG_RELOAD_SECONDS = "30"$/m);
    assert.match(toml, /"REPLACE_WITH_YOUR_KV_NAMESPACE_ID"/);
    const pkg = JSON.parse(fs.readFileSync(path.join(ROOT, "package.json"), "utf8"));
    const deps = { ...pkg.dependencies, ...pkg.devDependencies };
    assert.equal(deps.wrangler, "4.86.0");
    assert.equal(deps.miniflare, "4.20260426.0");
    assert.equal(deps.esbuild, "0.28.2");
    assert.equal(deps.binaryen, "132.0.0");
    assert.match(fs.readFileSync(path.join(ROOT, "scripts/setup"), "utf8"), /^WORKER_BUILD_VERSION=0\.8\.7$/m);
  });
});
