// Hardening (docs/configuration.md#validation, docs/transformations.md#templates), seen from outside:
// a configuration key that may be a secret never appears in what `edgegate-config validate` prints nor in
// the Worker's `config_rejected` log line (only `<hidden key, N characters>` says where), and a template's
// query parameter that is not UTF-8 once decoded reaches the origin as documented; a JWKS URL's user,
// password and query are not logged (docs/authentication.md, "JWKS at the edge").
import { describe, test, before, after } from "node:test";
import assert from "node:assert/strict";
import fs from "node:fs";
import http from "node:http";
import os from "node:os";
import path from "node:path";
import * as jose from "jose";
import { ROOT, startGateway, startOrigin, request, putRaw, waitFor, run } from "./support/harness.mjs";

// Secrets pasted where a key belongs: a whole header line, a bare API key longer than 32 characters.
const LINE = "Authorization: Bearer sk-live-0123456789abcdef"; // 46 characters
const BARE = "sk-proj-0123456789abcdefghijklmnopqrstuvwxyzAB"; // 46 characters, letters, digits and '-'
const FRAGMENTS = ["sk-live", "sk-proj", "Bearer", "Authorization"];
// A key whose text is another hidden key's placeholder: hidden too (spaces), and said to be 27 characters.
const LOOKALIKE = "<hidden key, 46 characters>";

function secretDocument(originUrl) {
  return {
    format_version: 1,
    [LINE]: true,
    [LOOKALIKE]: true,
    services: [
      { name: "o", url: originUrl, headers: { [LINE]: "x" } },
      // An unknown field: serde's message names it.
      { name: "p", url: originUrl, [BARE]: 1 },
    ],
    routes: [{ name: "r", service: "o", paths: ["/bad"], headers: { [LINE]: ["x"] } }],
    plugins: [{ name: "ai-proxy", route: "r", config: { providers: { [LINE]: { base_url: "https://x.example" } } } }],
  };
}

const HIDDEN = "<hidden key, 46 characters>";
const HIDDEN_27 = "<hidden key, 27 characters>";
const TOP_FIELDS = "expected one of `$schema`, `format_version`, `services`, `routes`, `plugins`";
// Each unknown top-level key has its own length in its path and in its message.
const UNKNOWN_TOP = [
  `$[${HIDDEN}]: unknown field \`${HIDDEN}\`, ${TOP_FIELDS}`,
  `$[${HIDDEN_27}]: unknown field \`${HIDDEN_27}\`, ${TOP_FIELDS}`,
];
const EXPECTED_PATHS = [
  `$[${HIDDEN}]`,
  `services[0].headers[${HIDDEN}]`,
  `services[1][${HIDDEN}]`,
  `routes[0].headers[${HIDDEN}]`,
  `plugins[0].config.providers[${HIDDEN}].kind`,
];

function assertNoSecret(text) {
  for (const f of FRAGMENTS) assert.ok(!text.includes(f), `${f} appears in:\n${text}`);
}

describe("secrets pasted as configuration keys", { timeout: 300_000 }, () => {
  let dir;
  let origin;

  before(async () => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), "edgegate-hardening-"));
    origin = await startOrigin();
  });
  after(async () => {
    await origin?.close();
    if (dir) fs.rmSync(dir, { recursive: true, force: true });
  });

  test("edgegate-config validate says where each is, never what it is", async () => {
    const built = await run("cargo", ["build", "-q", "--release", "-p", "edgegate-cli"]);
    assert.equal(built.code, 0, built.stderr);
    const file = path.join(dir, "bad.json");
    fs.writeFileSync(file, JSON.stringify(secretDocument(origin.url), null, 2));
    const out = await run(path.join(ROOT, "target", "release", "edgegate-config"), ["validate", file]);
    assert.equal(out.code, 1, out.stderr);
    assertNoSecret(out.stdout + out.stderr);
    const lines = out.stderr.trim().split("\n");
    for (const p of EXPECTED_PATHS) {
      assert.ok(lines.some((l) => l.startsWith(`${p}: `)), `no error at ${p} in:\n${out.stderr}`);
    }
    // Where a message would name the key, the placeholder stands in its place.
    for (const line of UNKNOWN_TOP) assert.ok(lines.includes(line), `no line ${line} in:\n${out.stderr}`);
    assert.ok(lines.includes(`plugins[0].config.providers[${HIDDEN}].kind: ${HIDDEN} is not a known provider: set kind (openai, azure, anthropic, gemini, bedrock or vertex) and base_url`), out.stderr);
    // A key that looks like a name is still shown.
    const ok = path.join(dir, "named.json");
    fs.writeFileSync(
      ok,
      JSON.stringify({
        format_version: 1,
        services: [{ name: "o", url: origin.url, headers: { "X-Custom.Name": "a\nb", "x-from": "a\rb" } }],
        routes: [],
      }),
    );
    const named = await run(path.join(ROOT, "target", "release", "edgegate-config"), ["validate", ok]);
    assert.equal(named.code, 1);
    assert.match(named.stderr, /^services\[0\]\.headers\["X-Custom\.Name"\]: /m);
    assert.match(named.stderr, /^services\[0\]\.headers\.x-from: /m);
  });

  test("edgegate-config validate quotes a value (a reference, a method, a model) only when it looks like a name", async () => {
    const built = await run("cargo", ["build", "-q", "--release", "-p", "edgegate-cli"]);
    assert.equal(built.code, 0, built.stderr);
    const file = path.join(dir, "values.json");
    fs.writeFileSync(
      file,
      JSON.stringify({
        format_version: 1,
        services: [
          { name: "o", url: origin.url },
          { name: "d", url: "http://-a:8080" },
        ],
        routes: [
          { name: "r", service: LINE, paths: ["/a"] },
          { name: "s", service: "o", paths: ["/b"], methods: [LINE] },
          { name: "t", service: "nope", paths: ["/c"] },
        ],
        plugins: [
          { name: "cors", route: BARE },
          { name: "ai-proxy", route: "s", config: { models: { a: LINE, b: `${BARE}/m` } } },
        ],
      }),
    );
    const out = await run(path.join(ROOT, "target", "release", "edgegate-config"), ["validate", file]);
    assert.equal(out.code, 1, out.stderr);
    assertNoSecret(out.stdout + out.stderr);
    const lines = out.stderr.trim().split("\n");
    const H = "<hidden name, 46 characters>";
    for (const line of [
      `routes[0].service: unknown service ${H}`,
      `plugins[0].route: unknown route ${H}`,
      `plugins[1].config.models.a: ${H} is not provider/model`,
      `plugins[1].config.models.b: unknown provider ${H} (declare it in providers)`,
      // A value that looks like a name is quoted.
      `routes[2].service: unknown service "nope"`,
    ]) {
      assert.ok(lines.includes(line), `no line ${line} in:\n${out.stderr}`);
    }
    assert.ok(lines.some((l) => l.startsWith("routes[1].methods[0]: not a valid HTTP method (it contains ':'")), out.stderr);
    // A host label that begins with '-' is refused.
    assert.ok(
      lines.includes("services[1].url: the host name is not valid (each `.`-separated label has 1 to 63 characters and does not begin or end with `-`)"),
      out.stderr,
    );
  });

  test("the Worker's config_rejected line says where each is, never what it is", async (t) => {
    const gw = await startGateway({
      config: { format_version: 1, services: [{ name: "o", url: origin.url }], routes: [{ name: "g", service: "o", paths: ["/good"] }] },
    });
    t.after(() => gw.dispose());
    assert.equal((await request(gw.at("/good"))).status, 200);
    const bad = await putRaw(gw, JSON.stringify(secretDocument(origin.url)));
    assert.equal((await request(gw.at("/good"))).status, 200);
    const res = await request(gw.at("/bad"));
    assert.equal(res.status, 404);
    assertNoSecret(res.text + JSON.stringify(res.headers));
    const line = await waitFor(
      () => gw.logs.find((l) => l.json?.event === "config_rejected" && l.json.version === bad),
      { what: "config_rejected", timeoutMs: 10_000 },
    );
    for (const p of EXPECTED_PATHS) assert.ok(line.json.error.includes(`${p}: `), `no ${p} in ${line.json.error}`);
    for (const l of UNKNOWN_TOP) assert.ok(line.json.error.includes(l), `no ${l} in ${line.json.error}`);
    assertNoSecret(gw.logs.map((l) => l.message).join("\n"));
  });
});

describe("templates: a query parameter that is not UTF-8 once decoded", { timeout: 120_000 }, () => {
  let gw;
  let origin;

  before(async () => {
    origin = await startOrigin();
    gw = await startGateway({
      config: {
        format_version: 1,
        services: [{ name: "o", url: origin.url }],
        routes: [
          { name: "copy", service: "o", paths: ["/copy"] },
          { name: "uri", service: "o", paths: ["/uri"] },
        ],
        plugins: [
          {
            name: "request-transformer",
            route: "copy",
            config: {
              add: {
                headers: ["x-q:[$(query_params.q)]"],
                querystring: ["y:$(query_params.q)"],
                body: ["z:$(query_params.q)"],
              },
            },
          },
          { name: "request-transformer", route: "uri", config: { replace: { uri: "/u/$(query_params.q)" } } },
        ],
      },
    });
  });
  after(async () => {
    await gw?.dispose();
    await origin?.close();
  });

  test("a header or JSON body value is text with those bytes as %XX; a query value keeps the bytes", async () => {
    const res = await request(gw.at("/copy?q=ab%ff%2B+c"), {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ a: 1 }),
    });
    assert.equal(res.status, 200);
    const seen = origin.last;
    assert.equal(seen.headers["x-q"], "[ab%FF+ c]");
    const query = new URL(seen.url, "http://o").search;
    assert.equal(query, "?q=ab%ff%2B+c&y=ab%FF%2B%20c");
    assert.deepEqual(JSON.parse(seen.body.toString("utf8")), { a: 1, z: "ab%FF+ c" });
  });

  test("a form body value keeps the bytes too", async () => {
    const res = await request(gw.at("/copy?q=%FE%FF"), {
      method: "POST",
      headers: { "content-type": "application/x-www-form-urlencoded" },
      body: "a=1",
    });
    assert.equal(res.status, 200);
    assert.equal(origin.last.body.toString("latin1"), "a=1&z=%FE%FF");
  });

  test("UTF-8 around the bytes is decoded; replace.uri keeps %XX as written, so the path has the same bytes", async () => {
    let res = await request(gw.at("/copy?q=caf%C3%A9%FF"));
    assert.equal(res.status, 200);
    assert.equal(new URL(origin.last.url, "http://o").searchParams.get("y"), "café\ufffd");
    assert.match(origin.last.url, /&y=caf%C3%A9%FF$/);
    res = await request(gw.at("/uri?q=x%FFy"));
    assert.equal(res.status, 200);
    assert.equal(origin.last.url, "/u/x%FFy?q=x%FFy");
  });
});

describe("JWKS fetch log lines carry no credentials of the URL", { timeout: 120_000 }, () => {
  test("jwks_fetched logs the URL without user, password or query; the fetch used all of it", async (t) => {
    const seen = [];
    const { publicKey, privateKey } = await jose.generateKeyPair("RS256", { extractable: true });
    const jwk = { ...(await jose.exportJWK(publicKey)), kid: "k1", alg: "RS256", use: "sig" };
    const idp = http.createServer((req, res) => {
      seen.push(req.url);
      res.writeHead(200, { "content-type": "application/json" });
      res.end(JSON.stringify({ keys: [jwk] }));
    });
    await new Promise((r) => idp.listen(0, "127.0.0.1", r));
    t.after(() => new Promise((r) => idp.close(r)));
    const base = `http://127.0.0.1:${idp.address().port}/jwks`;
    const origin = await startOrigin();
    t.after(() => origin.close());
    const gw = await startGateway({
      config: {
        format_version: 1,
        services: [{ name: "o", url: origin.url }],
        routes: [{ name: "j", service: "o", paths: ["/j"] }],
        plugins: [{ name: "jwt", route: "j" }],
      },
    });
    t.after(() => gw.dispose());
    const put = (key, value) => gw.kv.put(key, JSON.stringify(value));
    await put("consumers/c1", { id: "c1", username: "svc", groups: [] });
    await put("consumer-names/svc", { id: "c1" });
    await put("credentials/jwt/https://q.test", {
      id: "jwt-q",
      consumer_id: "c1",
      key: "https://q.test",
      jwks_url: `${base}?token=QUERY-SECRET-1`,
    });
    await put("credentials/jwt/https://u.test", {
      id: "jwt-u",
      consumer_id: "c1",
      key: "https://u.test",
      jwks_url: `http://user:PASS-SECRET-2@127.0.0.1:${idp.address().port}/jwks#FRAG-SECRET-3`,
    });
    const mint = (iss) =>
      new jose.SignJWT({ sub: "svc" })
        .setProtectedHeader({ alg: "RS256", kid: "k1" })
        .setIssuer(iss)
        .setIssuedAt()
        .setExpirationTime(Math.floor(Date.now() / 1000) + 600)
        .sign(privateKey);
    const ok = await request(gw.at("/j"), { headers: { authorization: `Bearer ${await mint("https://q.test")}` } });
    assert.equal(ok.status, 200);
    assert.deepEqual(seen, ["/jwks?token=QUERY-SECRET-1"]);
    // With a user and password in the URL: whether the runtime fetches it or refuses it, the line has no secret.
    const res = await request(gw.at("/j"), { headers: { authorization: `Bearer ${await mint("https://u.test")}` } });
    assert.ok([200, 401].includes(res.status), `status ${res.status}`);
    const lines = await waitFor(() => {
      const l = gw.logs.filter((x) => x.json?.event?.startsWith("jwks_"));
      return l.length >= 2 ? l : undefined;
    }, { what: "two jwks_ log lines", timeoutMs: 10_000 });
    for (const l of lines) assert.equal(l.json.url, base, l.message);
    const all = gw.logs.map((l) => l.message).join("\n");
    for (const s of ["QUERY-SECRET-1", "PASS-SECRET-2", "FRAG-SECRET-3", "user:"]) {
      assert.ok(!all.includes(s), `${s} logged:\n${all}`);
    }
  });
});

// docs/caching.md (Freshness and stale-if-error), docs/proxying.md (The response): the cache's private
// headers sent by an origin are removed as its response arrives, on every route; a miss never passes
// them on and the stored copy (the hit) has only the origin's own Cache-Control and Date.
describe("the cache's private headers sent by an origin", { timeout: 120_000 }, () => {
  const PRIVATE = ["x-edgegate-cache-meta", "x-edgegate-cache-origin-cc", "x-edgegate-cache-origin-date"];
  const FORGED = {
    "x-edgegate-cache-meta": "forged",
    "x-edgegate-cache-origin-cc": "no-store, private",
    "x-edgegate-cache-origin-date": "Thu, 01 Jan 1970 00:00:00 GMT",
  };
  const ORIGIN_DATE = "Mon, 30 Nov 2026 10:00:00 GMT";
  let gw;
  let origin;

  before(async () => {
    origin = await startOrigin(async (req, res) => {
      const withCc = req.url.startsWith("/cached/cc") || req.url.startsWith("/plain");
      res.writeHead(200, {
        "content-type": "application/json",
        date: ORIGIN_DATE,
        ...(withCc ? { "cache-control": "max-age=120" } : {}),
        ...FORGED,
      });
      res.end(JSON.stringify({ url: req.url }));
    });
    gw = await startGateway({
      config: {
        format_version: 1,
        services: [{ name: "o", url: origin.url }],
        routes: [
          { name: "cached", service: "o", paths: ["/cached"], strip_path: false },
          { name: "plain", service: "o", paths: ["/plain"], strip_path: false },
        ],
        plugins: [{ name: "proxy-cache", route: "cached", config: { cache_control: true, cache_ttl: 60 } }],
      },
    });
  });
  after(async () => {
    await gw?.dispose();
    await origin?.close();
  });

  const assertNone = (res, what) => {
    for (const h of PRIVATE) assert.equal(res.headers[h], undefined, `${what}: ${h} = ${res.headers[h]}`);
  };

  for (const [path, cc] of [["/cached/cc", "max-age=120"], ["/cached/none", undefined]]) {
    test(`${path}: neither the miss nor the hit carries them`, async () => {
      const miss = await request(gw.at(path));
      assert.equal(miss.status, 200, miss.text);
      assert.equal(miss.headers["x-cache-status"], "Miss");
      assertNone(miss, "miss");
      assert.equal(miss.headers["cache-control"], cc);
      const hit = await waitFor(
        async () => {
          const r = await request(gw.at(path));
          return r.headers["x-cache-status"] === "Hit" ? r : null;
        },
        { what: `a hit on ${path}`, timeoutMs: 10_000 },
      );
      assertNone(hit, "hit");
      assert.equal(hit.headers["cache-control"], cc);
      assert.equal(hit.headers.date, ORIGIN_DATE);
      assert.equal(origin.requests.filter((r) => r.url === path).length, 1);
    });
  }

  test("a route without the cache does not pass them on either", async () => {
    const res = await request(gw.at("/plain"));
    assert.equal(res.status, 200);
    assertNone(res, "plain");
    assert.equal(res.headers["cache-control"], "max-age=120");
  });
});

// docs/plugins.md (request-termination, `trigger`): the query parameter's name is matched as Kong reads
// it, percent- and `+`-decoded, case-sensitive; its value does not matter.
describe("request-termination trigger in the query", { timeout: 120_000 }, () => {
  let gw;
  let origin;

  before(async () => {
    origin = await startOrigin();
    gw = await startGateway({
      config: {
        format_version: 1,
        services: [{ name: "o", url: origin.url }],
        routes: [{ name: "r", service: "o", paths: ["/t"] }],
        plugins: [
          { name: "request-termination", route: "r", config: { status_code: 418, message: "preview only", trigger: "x-preview" } },
        ],
      },
    });
  });
  after(async () => {
    await gw?.dispose();
    await origin?.close();
  });

  for (const q of ["x-preview", "x-preview=", "x-preview=0", "a=1&x%2Dpreview=1", "%78-preview", "x-preview=%FF"]) {
    test(`?${q} terminates`, async () => {
      const res = await request(gw.at(`/t?${q}`));
      assert.equal(res.status, 418, res.text);
    });
  }
  for (const q of ["X-Preview=1", "a=x-preview", "x-previewx=1", "x-preview%3D1"]) {
    test(`?${q} goes on to the origin`, async () => {
      const before = origin.requests.length;
      const res = await request(gw.at(`/t?${q}`));
      assert.equal(res.status, 200, res.text);
      assert.equal(origin.requests.length, before + 1);
    });
  }
  test("the header, in any case, terminates", async () => {
    const res = await request(gw.at("/t"), { headers: { "X-PREVIEW": "1" } });
    assert.equal(res.status, 418);
  });
});
