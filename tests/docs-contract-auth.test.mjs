// The docs as a contract, part 2: precise statements of docs/authentication.md, docs/rate-limiting.md and
// docs/caching.md that no other test file asserts, checked the way a user of the gateway (or of Kong, or a
// reader of RFC 7617 / 6750 / 7519 / 9111) would. One gateway for the whole file, origins on 127.0.0.1.
import { describe, test, before, after } from "node:test";
import assert from "node:assert/strict";
import crypto from "node:crypto";
import * as jose from "jose";
import { startGateway, startOrigin, request, problemOf } from "./support/harness.mjs";
import { DO_OPTIONS } from "./ratelimit-helpers.mjs";

const sha256hex = (s) => crypto.createHash("sha256").update(s).digest("hex");
const now = () => Math.floor(Date.now() / 1000);
const b64 = (s) => Buffer.from(s, "utf8").toString("base64");

function assertProblem(res, status, code, what = "") {
  assert.equal(res.status, status, `${what}: ${res.text}`);
  const p = problemOf(res);
  assert.equal(p.code, code, `${what}: ${res.text}`);
  assert.equal(p.status, status, what);
  if (status === 401) assert.ok(res.headers["www-authenticate"], `${what}: a 401 carries WWW-Authenticate`);
  return p;
}

describe("docs contract: auth, rate limiting, cache", { timeout: 120_000 }, () => {
  let gw, origin, cacheOrigin, rsa;
  const rootKey = "eg_" + crypto.randomBytes(32).toString("base64url");
  const aliceKey = "eg_" + crypto.randomBytes(32).toString("base64url");
  const revokedKey = "eg_" + crypto.randomBytes(32).toString("base64url");
  const expiredKey = "eg_" + crypto.randomBytes(32).toString("base64url");
  const hsSecret = crypto.randomBytes(32);
  const get = (path, headers = {}, opts = {}) => request(gw.at(path), { headers, ...opts });
  const echo = (res) => JSON.parse(res.text);
  const cacheHits = (prefix) => cacheOrigin.requests.filter((r) => r.url.startsWith(prefix)).length;

  const hs = (claims = {}, header = {}, secret = hsSecret) =>
    new jose.SignJWT({ iss: "hs-app", exp: now() + 600, ...claims }).setProtectedHeader({ alg: "HS256", ...header }).sign(secret);
  /** An unsigned token (`alg: none` in whatever case) built by hand: jose refuses to make one. */
  const unsigned = (alg, claims) =>
    [{ alg, typ: "JWT" }, claims].map((o) => Buffer.from(JSON.stringify(o)).toString("base64url")).join(".") + ".";

  before(async () => {
    origin = await startOrigin();
    cacheOrigin = await startOrigin(async (req, res) => {
      const url = new URL(req.url, "http://origin");
      const p = url.pathname;
      const n = cacheHits(p);
      const json = (status, extra = {}) => {
        res.writeHead(status, { "content-type": "application/json", ...extra });
        res.end(JSON.stringify({ path: p, n, range: req.headers.range ?? null }));
      };
      if (p.startsWith("/c/private-field")) return json(200, { "cache-control": 'private="x-user", max-age=60' });
      if (p.startsWith("/c/vary-cookie")) return json(200, { vary: "Cookie" });
      if (p.startsWith("/c/vary-star")) return json(200, { vary: "*" });
      if (p.startsWith("/c/vary-ae")) return json(200, { vary: "Accept-Encoding" });
      if (p.startsWith("/c/aged")) return json(200, { age: "100" });
      if (p.startsWith("/c/partial")) return json(206, { "content-range": "bytes 0-1/10" });
      return json(200);
    });
    const { publicKey, privateKey } = await jose.generateKeyPair("RS256", { extractable: true });
    rsa = { publicKey, privateKey, pem: await jose.exportSPKI(publicKey) };

    const route = (name, path, service = "origin") => ({ name, service, paths: [path], strip_path: false });
    gw = await startGateway({
      bindings: { AUTH_CACHE_SECONDS: "1" },
      miniflare: DO_OPTIONS,
      config: {
        format_version: 1,
        services: [
          { name: "origin", url: origin.url },
          { name: "cached", url: cacheOrigin.url },
        ],
        routes: [
          route("basic", "/basic"),
          route("jwt", "/jwt"),
          route("jwt-hidden", "/jwt-hidden"),
          route("jwt-max", "/jwt-max"),
          route("jwt-iss", "/jwt-iss"),
          route("jwt-anon", "/jwt-anon"),
          route("key", "/key"),
          route("key-strict", "/key-strict"),
          route("key-realm", "/key-realm"),
          route("key-preflight", "/key-preflight"),
          route("acl-only", "/acl-only"),
          route("acl-deny", "/acl-deny"),
          route("acl-hide", "/acl-hide"),
          route("anon", "/anon"),
          route("rl", "/rl"),
          route("cache", "/c", "cached"),
          route("cache-cc", "/cc", "cached"),
          route("cache-auth", "/ca", "cached"),
          route("cache-vq", "/cv", "cached"),
          route("cache-pub", "/cp", "cached"),
          route("cache-rl", "/cr", "cached"),
          route("jwt-aud", "/jwt-aud"),
          route("key-body", "/key-body"),
          route("jwt-cookie", "/jwt-cookie"),
          route("rl-anon", "/rl-anon"),
          route("rl-path", "/rlp"),
          route("rl-paths", "/rlq"),
        ],
        plugins: [
          { name: "basic-auth", route: "basic" },
          { name: "jwt", route: "jwt" },
          { name: "jwt", route: "jwt-hidden", config: { hide_credentials: true } },
          { name: "jwt", route: "jwt-max", config: { maximum_expiration: 3600 } },
          { name: "jwt", route: "jwt-iss", config: { issuers: ["someone-else"] } },
          { name: "jwt", route: "jwt-anon", config: { anonymous: "guest" } },
          { name: "key-auth", route: "key" },
          { name: "key-auth", route: "key-strict", config: { key_in_query: false, bearer: false } },
          { name: "key-auth", route: "key-realm", config: { realm: "shop" } },
          { name: "key-auth", route: "key-preflight", config: { run_on_preflight: false } },
          { name: "acl", route: "acl-only", config: { allow: ["admin"] } },
          { name: "key-auth", route: "acl-deny" },
          { name: "acl", route: "acl-deny", config: { deny: ["dev"] } },
          { name: "key-auth", route: "acl-hide" },
          { name: "acl", route: "acl-hide", config: { allow: ["dev"], hide_groups_header: true } },
          { name: "key-auth", route: "anon", config: { anonymous: "guest" } },
          { name: "rate-limiting", route: "rl", config: { minute: 2, limit_by: "ip" } },
          { name: "proxy-cache", route: "cache", config: { cache_ttl: 300 } },
          { name: "proxy-cache", route: "cache-cc", config: { cache_ttl: 300, cache_control: true } },
          { name: "proxy-cache", route: "cache-vq", config: { vary_query_params: ["page"] } },
          { name: "key-auth", route: "cache-auth" },
          { name: "acl", route: "cache-auth", config: { allow: ["dev"] } },
          { name: "proxy-cache", route: "cache-auth" },
          { name: "key-auth", route: "cache-pub" },
          { name: "acl", route: "cache-pub", config: { allow: ["dev"] } },
          { name: "proxy-cache", route: "cache-pub", config: { public: true } },
          { name: "rate-limiting", route: "cache-rl", config: { minute: 2, limit_by: "ip" } },
          { name: "proxy-cache", route: "cache-rl" },
          { name: "jwt", route: "jwt-aud", config: { audiences: ["api"] } },
          { name: "key-auth", route: "key-body", config: { key_in_body: true, hide_credentials: true } },
          { name: "jwt", route: "jwt-cookie", config: { cookie_names: ["token"], hide_credentials: true } },
          { name: "key-auth", route: "rl-anon", config: { anonymous: "guest" } },
          { name: "rate-limiting", route: "rl-path", config: { minute: 1, limit_by: "path", path: "/rlp/only" } },
          { name: "rate-limiting", route: "rl-paths", config: { minute: 1, limit_by: "path" } },
          { name: "rate-limiting", route: "rl-anon", config: { minute: 2, limit_by: "consumer" } },
        ],
      },
    });
    const put = (k, v) => gw.kv.put(k, JSON.stringify(v));
    await put("consumers/c-alice", { id: "c-alice", username: "alice", groups: ["dev"] });
    await put("consumer-names/alice", { id: "c-alice" });
    await put("consumers/c-root", { id: "c-root", username: "root", groups: ["ops"] });
    await put("consumer-names/root", { id: "c-root" });
    await put("consumers/c-guest", { id: "c-guest", username: "guest", groups: [] });
    await put("consumer-names/guest", { id: "c-guest" });
    for (const [key, extra] of [
      [aliceKey, {}],
      [rootKey, { consumer_id: "c-root" }],
      [revokedKey, { revoked_at: now() - 10 }],
      [expiredKey, { expires_at: now() - 10 }],
    ]) {
      await put(`credentials/key-auth/${sha256hex(key)}`, { id: sha256hex(key).slice(0, 16), consumer_id: "c-alice", ...extra });
    }
    await put("credentials/jwt/hs-app", {
      id: "jwt-hs", consumer_id: "c-alice", key: "hs-app", algorithms: ["HS256"], secret: hsSecret.toString("base64"),
    });
    await put("credentials/jwt/rsa-app", { id: "jwt-rsa", consumer_id: "c-alice", key: "rsa-app", public_key: rsa.pem });
    const salt = crypto.randomBytes(16);
    const unpad = (b) => b.toString("base64").replace(/=+$/, "");
    const hash = crypto.pbkdf2Sync("pa:ss:word", salt, 10000, 32, "sha256");
    const salt2 = crypto.randomBytes(16);
    const hash2 = crypto.pbkdf2Sync("naïve:ü€", salt2, 10000, 32, "sha256");
    await put("credentials/basic-auth/dave", {
      id: "basic-dave", consumer_id: "c-alice", username: "dave",
      password_hash: `$pbkdf2-sha256$i=10000$${unpad(salt2)}$${unpad(hash2)}`,
    });
    await put("credentials/basic-auth/carol", {
      id: "basic-carol", consumer_id: "c-alice", username: "carol",
      password_hash: `$pbkdf2-sha256$i=10000$${unpad(salt)}$${unpad(hash)}`,
    });
  });
  after(async () => {
    await gw?.dispose();
    await origin?.close();
    await cacheOrigin?.close();
  });

  // ---------------------------------------------------------------------------------------------------
  // basic-auth (RFC 7617)

  test("basic-auth: the password may contain colons (split at the first), the scheme is case-insensitive", async () => {
    const ok = await get("/basic", { authorization: `Basic ${b64("carol:pa:ss:word")}` });
    assert.equal(ok.status, 200, ok.text);
    assert.equal(echo(ok).headers["x-consumer-username"], "alice");
    assert.equal(echo(ok).headers["x-credential-identifier"], "basic-carol");
    assert.equal((await get("/basic", { authorization: `basic ${b64("carol:pa:ss:word")}` })).status, 200);
    assertProblem(await get("/basic", { authorization: `Basic ${b64("carol:pa:ss")}` }), 401, "invalid_credentials");
  });

  test("basic-auth: bad base64, no colon, empty user are 401 invalid_credentials with the Basic challenge", async () => {
    for (const value of ["Basic !!!not-base64!!!", `Basic ${b64("carol")}`, `Basic ${b64(":pa:ss:word")}`]) {
      const res = await get("/basic", { authorization: value });
      const p = assertProblem(res, 401, "invalid_credentials", value);
      assert.equal(res.headers["www-authenticate"], 'Basic realm="edgegate", charset="UTF-8"', value);
      assert.ok(!JSON.stringify(p).includes("pa:ss"), "details never contain the credential");
    }
    const none = await get("/basic");
    assertProblem(none, 401, "missing_credentials");
    assert.equal(none.headers["www-authenticate"], 'Basic realm="edgegate", charset="UTF-8"');
    // Another scheme is not a Basic credential at all.
    assertProblem(await get("/basic", { authorization: "Bearer abc" }), 401, "missing_credentials");
  });

  // ---------------------------------------------------------------------------------------------------
  // jwt (RFC 7519 / 7515 / 6750)

  test("jwt: alg none in any case is refused with error=invalid_token", async () => {
    for (const alg of ["none", "None", "NONE", "nOnE"]) {
      const res = await get("/jwt", { authorization: `Bearer ${unsigned(alg, { iss: "hs-app", exp: now() + 600 })}` });
      const p = assertProblem(res, 401, "invalid_credentials", alg);
      assert.equal(p.detail, "the token is not valid", alg);
      assert.equal(res.headers["www-authenticate"], 'Bearer realm="edgegate", error="invalid_token"', alg);
    }
  });

  test("jwt: an RSA public key is never used as an HMAC secret (HS/RS key confusion)", async () => {
    const good = await new jose.SignJWT({ iss: "rsa-app", exp: now() + 600 }).setProtectedHeader({ alg: "RS256" }).sign(rsa.privateKey);
    assert.equal((await get("/jwt", { authorization: `Bearer ${good}` })).status, 200);
    for (const secret of [rsa.pem, rsa.pem.trim(), Buffer.from(rsa.pem).toString("base64")]) {
      const forged = await hs({ iss: "rsa-app" }, {}, new TextEncoder().encode(secret));
      const res = await get("/jwt", { authorization: `Bearer ${forged}` });
      const p = assertProblem(res, 401, "invalid_credentials");
      assert.equal(p.detail, "the token is not valid");
    }
  });

  test("jwt: leeway_seconds (30) tolerates clock skew on exp and nbf, not more", async () => {
    assert.equal((await get("/jwt", { authorization: `Bearer ${await hs({ exp: now() - 10 })}` })).status, 200);
    assertProblem(await get("/jwt", { authorization: `Bearer ${await hs({ exp: now() - 120 })}` }), 401, "token_expired");
    assert.equal((await get("/jwt", { authorization: `Bearer ${await hs({ nbf: now() + 10 })}` })).status, 200);
    assertProblem(await get("/jwt", { authorization: `Bearer ${await hs({ nbf: now() + 120 })}` }), 401, "token_not_yet_valid");
  });

  test("jwt: claims_to_verify defaults to exp: a token without exp is refused", async () => {
    const noExp = await new jose.SignJWT({ iss: "hs-app" }).setProtectedHeader({ alg: "HS256" }).sign(hsSecret);
    const res = await get("/jwt", { authorization: `Bearer ${noExp}` });
    const p = assertProblem(res, 401, "invalid_credentials");
    assert.equal(p.detail, "the token has no `exp` claim");
    assert.match(res.headers["www-authenticate"], /error="invalid_token"/);
  });

  test("jwt: the token is read from ?jwt= too, and hide_credentials removes it (query and Authorization)", async () => {
    const token = await hs();
    const q = await get(`/jwt?a=1&jwt=${token}`);
    assert.equal(q.status, 200, q.text);
    assert.match(echo(q).url, /jwt=/, "without hide_credentials the token is forwarded");
    const hidden = await get(`/jwt-hidden?a=1&jwt=${token}&b=2`);
    assert.equal(hidden.status, 200, hidden.text);
    assert.equal(echo(hidden).url, "/jwt-hidden?a=1&b=2");
    const header = await get("/jwt-hidden", { authorization: `Bearer ${token}` });
    assert.equal(header.status, 200);
    assert.equal(echo(header).headers.authorization, undefined);
    // An unknown issuer is invalid_credentials; a token in the query also gets error="invalid_token".
    const unknown = await get(`/jwt?jwt=${await hs({ iss: "nobody" })}`);
    assertProblem(unknown, 401, "invalid_credentials");
    assert.equal(unknown.headers["www-authenticate"], 'Bearer realm="edgegate", error="invalid_token"');
    // No token: a bare challenge (RFC 6750 3.1: no error code when the request had no authentication).
    const missing = await get("/jwt");
    assertProblem(missing, 401, "missing_credentials");
    assert.equal(missing.headers["www-authenticate"], 'Bearer realm="edgegate"');
  });

  test("jwt: maximum_expiration and issuers", async () => {
    assert.equal((await get("/jwt-max", { authorization: `Bearer ${await hs({ exp: now() + 600 })}` })).status, 200);
    const long = await get("/jwt-max", { authorization: `Bearer ${await hs({ exp: now() + 7200 })}` });
    assert.equal(assertProblem(long, 401, "invalid_credentials").detail, "the token's lifetime exceeds the maximum allowed");
    const iss = await get("/jwt-iss", { authorization: `Bearer ${await hs()}` });
    assert.equal(assertProblem(iss, 401, "invalid_credentials").detail, "the token's issuer is not accepted");
  });

  test("jwt anonymous: no token gets the anonymous consumer, a bad token is still 401", async () => {
    const anon = await get("/jwt-anon");
    assert.equal(anon.status, 200);
    assert.equal(echo(anon).headers["x-anonymous-consumer"], "true");
    assert.equal(echo(anon).headers["x-consumer-username"], "guest");
    assertProblem(await get("/jwt-anon", { authorization: `Bearer ${await hs({}, {}, crypto.randomBytes(32))}` }), 401, "invalid_credentials");
    const ok = await get("/jwt-anon", { authorization: `Bearer ${await hs()}` });
    assert.equal(echo(ok).headers["x-anonymous-consumer"], undefined);
    assert.equal(echo(ok).headers["x-consumer-username"], "alice");
  });

  // ---------------------------------------------------------------------------------------------------
  // key-auth

  test("key-auth: revoked key is credentials_revoked, a key past expires_at is token_expired", async () => {
    assertProblem(await get("/key", { apikey: revokedKey }), 401, "credentials_revoked");
    assertProblem(await get("/key", { apikey: expiredKey }), 401, "token_expired");
  });

  test("key-auth: key_in_query false and bearer false ignore those places", async () => {
    assert.equal((await get("/key-strict", { "x-api-key": aliceKey })).status, 200);
    assertProblem(await get(`/key-strict?apikey=${aliceKey}`), 401, "missing_credentials");
    assertProblem(await get("/key-strict", { authorization: `Bearer ${aliceKey}` }), 401, "missing_credentials");
  });

  test("key-auth: realm, an empty Bearer, and anonymous", async () => {
    const res = await get("/key-realm");
    assertProblem(res, 401, "missing_credentials");
    assert.equal(res.headers["www-authenticate"], 'Key realm="shop"');
    assertProblem(await get("/key", { authorization: "Bearer " }), 401, "missing_credentials");
    const anon = await get("/anon");
    assert.equal(anon.status, 200);
    assert.equal(echo(anon).headers["x-anonymous-consumer"], "true");
    assert.equal(echo(anon).headers["x-consumer-id"], "c-guest");
    assert.equal(echo(anon).headers["x-credential-identifier"], undefined);
  });

  test("key-auth run_on_preflight false: a CORS preflight passes without a key, a plain OPTIONS does not", async () => {
    const pre = await get("/key-preflight", { origin: "https://app.example.com", "access-control-request-method": "GET" }, { method: "OPTIONS" });
    assert.notEqual(pre.status, 401, pre.text);
    assertProblem(await get("/key-preflight", {}, { method: "OPTIONS" }), 401, "missing_credentials");
    assertProblem(await get("/key-preflight"), 401, "missing_credentials");
  });

  // ---------------------------------------------------------------------------------------------------
  // acl

  test("acl: without auth plugins 401 missing_credentials with Key realm; deny; hide_groups_header", async () => {
    const res = await get("/acl-only");
    assertProblem(res, 401, "missing_credentials");
    assert.equal(res.headers["www-authenticate"], 'Key realm="edgegate"');
    assertProblem(await get("/acl-deny", { apikey: aliceKey }), 403, "forbidden");
    const hide = await get("/acl-hide", { apikey: aliceKey });
    assert.equal(hide.status, 200, hide.text);
    assert.equal(echo(hide).headers["x-consumer-groups"], undefined);
    assert.equal(echo(hide).headers["x-consumer-id"], "c-alice");
  });

  // ---------------------------------------------------------------------------------------------------
  // rate limiting: the documented 429

  test("rate limiting: the documented 429 (problem type and title, Retry-After, RateLimit-* and X-RateLimit-*)", async () => {
    const ip = `203.0.113.${1 + Math.floor(Math.random() * 200)}`;
    // Stay away from the end of the aligned minute so the three requests share one window.
    const left = 60_000 - (Date.now() % 60_000);
    if (left < 10_000) await new Promise((r) => setTimeout(r, left + 50));
    const first = await get("/rl", { "cf-connecting-ip": ip });
    assert.equal(first.status, 200, first.text);
    assert.equal(first.headers["ratelimit-limit"], "2");
    assert.equal(first.headers["ratelimit-remaining"], "1");
    assert.equal(first.headers["x-ratelimit-limit-minute"], "2");
    assert.equal(first.headers["x-ratelimit-remaining-minute"], "1");
    assert.equal((await get("/rl", { "cf-connecting-ip": ip })).status, 200);
    const refused = await get("/rl", { "cf-connecting-ip": ip });
    const p = assertProblem(refused, 429, "rate_limited");
    assert.equal(p.type, "https://edgegate.dev/errors/rate_limited");
    assert.equal(p.title, "Too many requests");
    assert.equal(p.detail, "API rate limit exceeded");
    assert.match(refused.headers["retry-after"], /^\d+$/);
    const retry = Number(refused.headers["retry-after"]);
    assert.equal(refused.headers["ratelimit-remaining"], "0");
    assert.equal(refused.headers["x-ratelimit-remaining-minute"], "0");
    // RateLimit-Reset: the end of the current aligned window. Retry-After: when the sliding window admits
    // again, which is after that end (the previous window still weighs by its overlap), within one more window.
    const reset = Number(refused.headers["ratelimit-reset"]);
    assert.ok(reset >= 0 && reset <= 60, `RateLimit-Reset ${reset}`);
    assert.ok(retry >= 1 && retry >= reset && retry <= reset + 61, `Retry-After ${retry}, RateLimit-Reset ${reset}`);
  });

  // ---------------------------------------------------------------------------------------------------
  // proxy-cache

  const xcs = (res) => res.headers["x-cache-status"];

  test("cache: credentials in any documented place bypass the cache (no auth plugin, not public)", async () => {
    const cases = [
      ["/c/cred-auth", { authorization: "Bearer x" }],
      ["/c/cred-proxy", { "proxy-authorization": "Basic eDp5" }],
      ["/c/cred-cookie", { cookie: "sid=1" }],
      ["/c/cred-apikey", { apikey: "k" }],
      ["/c/cred-xapikey", { "x-api-key": "k" }],
      ["/c/cred-q1?apikey=k", {}],
      ["/c/cred-q2?api_key=k", {}],
      ["/c/cred-q3?jwt=k", {}],
      ["/c/cred-q4?access_token=k", {}],
      ["/c/cred-q5?page=1&access%5Ftoken=k", {}],
      ["/c/cred-q6?API_KEY=k", {}],
    ];
    for (const [path, headers] of cases) {
      for (let i = 0; i < 2; i++) {
        const res = await get(path, headers);
        assert.equal(res.status, 200, path);
        assert.equal(xcs(res), "Bypass", path);
        assert.match(res.headers["cache-status"], /detail="credentials"/, path);
      }
      assert.equal(cacheHits(path.split("?")[0]), 2, `${path}: every request reached the origin`);
    }
  });

  test("cache: range requests bypass; 206 is never stored", async () => {
    const r = await get("/c/range", { range: "bytes=0-1" });
    assert.equal(xcs(r), "Bypass");
    assert.match(r.headers["cache-status"], /detail="range"/);
    assert.equal(echo(r).range, "bytes=0-1", "the Range header reaches the origin");
    // A full GET afterwards is a miss (nothing was stored by the range request).
    assert.equal(xcs(await get("/c/range")), "Miss");
  });

  test("cache: private=\"field\", Vary: Cookie and Vary: * are not stored; Vary: Accept-Encoding is", async () => {
    for (const [path, detail] of [["/c/private-field", "private"], ["/c/vary-cookie", "vary"], ["/c/vary-star", "vary"]]) {
      const a = await get(path);
      assert.equal(xcs(a), "Bypass", path);
      assert.match(a.headers["cache-status"], new RegExp(`detail="${detail}"`), path);
      assert.notEqual(xcs(await get(path)), "Hit", path);
      assert.equal(cacheHits(path), 2, path);
    }
    assert.equal(xcs(await get("/c/vary-ae")), "Miss");
    assert.equal(xcs(await get("/c/vary-ae")), "Hit");
  });

  test("cache: Age includes the origin's own Age", async () => {
    assert.equal(xcs(await get("/c/aged")), "Miss");
    const hit = await get("/c/aged");
    assert.equal(xcs(hit), "Hit");
    assert.ok(Number(hit.headers.age) >= 100, `Age ${hit.headers.age}`);
  });

  test("cache: the client's no-store bypasses, no-cache and Pragma: no-cache refresh (cache_control)", async () => {
    assert.equal(xcs(await get("/cc/client")), "Miss");
    assert.equal(xcs(await get("/cc/client")), "Hit");
    const ns = await get("/cc/client", { "cache-control": "no-store" });
    assert.equal(xcs(ns), "Bypass");
    assert.match(ns.headers["cache-status"], /detail="request-no-store"/);
    const nc = await get("/cc/client", { "cache-control": "no-cache" });
    assert.equal(xcs(nc), "Refresh");
    assert.match(nc.headers["cache-status"], /fwd=request/);
    assert.equal(xcs(await get("/cc/client", { pragma: "no-cache" })), "Refresh");
    assert.equal(xcs(await get("/cc/client", { "cache-control": "max-age=0" })), "Refresh");
    assert.equal(xcs(await get("/cc/client")), "Hit");
  });

  test("cache: the key is per method GET/HEAD, path case and sorted query parameters", async () => {
    assert.equal(xcs(await get("/c/key?b=2&a=1")), "Miss");
    assert.equal(xcs(await get("/c/key?a=1&b=2")), "Hit");
    assert.equal(xcs(await get("/c/Key?a=1&b=2")), "Miss", "ignore_uri_case is off by default");
    const partial = await get("/c/partial");
    assert.equal(partial.status, 206);
    assert.notEqual(xcs(partial), "Miss");
    assert.notEqual(xcs(await get("/c/partial")), "Hit");
  });

  test("cache never answers before authentication, the ACL or the rate limit run", async () => {
    for (const path of ["/ca/x", "/cp/x"]) {
      const miss = await get(path, { apikey: aliceKey });
      assert.equal(miss.status, 200, path);
      assert.equal(xcs(miss), "Miss", path);
      assert.equal(xcs(await get(path, { apikey: aliceKey })), "Hit", path);
      assertProblem(await get(path), 401, "missing_credentials", `${path} without a key`);
      assertProblem(await get(path, { apikey: aliceKey + "x" }), 401, "invalid_credentials", `${path} wrong key`);
      assertProblem(await get(path, { apikey: rootKey }), 403, "forbidden", `${path} consumer outside the ACL`);
    }
    const ip = `198.18.0.${1 + Math.floor(Math.random() * 200)}`;
    const left = 60_000 - (Date.now() % 60_000);
    if (left < 10_000) await new Promise((r) => setTimeout(r, left + 50));
    assert.equal(xcs(await get("/cr/x", { "cf-connecting-ip": ip })), "Miss");
    assert.equal(xcs(await get("/cr/x", { "cf-connecting-ip": ip })), "Hit");
    assertProblem(await get("/cr/x", { "cf-connecting-ip": ip }), 429, "rate_limited", "a cached answer still counts");
  });

  test("jwt: aud may be a string or an array (RFC 7519 4.1.3)", async () => {
    assert.equal((await get("/jwt-aud", { authorization: `Bearer ${await hs({ aud: "api" })}` })).status, 200);
    assert.equal((await get("/jwt-aud", { authorization: `Bearer ${await hs({ aud: ["x", "api"] })}` })).status, 200);
    const wrong = await get("/jwt-aud", { authorization: `Bearer ${await hs({ aud: "apix" })}` });
    assert.equal(assertProblem(wrong, 401, "invalid_credentials").detail, "the token's audience is not accepted");
    const none = await get("/jwt-aud", { authorization: `Bearer ${await hs()}` });
    assertProblem(none, 401, "invalid_credentials", "audiences set and no aud");
  });

  test("basic-auth: a UTF-8 password (charset=\"UTF-8\", RFC 7617 2.1)", async () => {
    assert.equal((await get("/basic", { authorization: `Basic ${b64("dave:naïve:ü€")}` })).status, 200);
    const latin1 = Buffer.from("dave:naïve:ü", "latin1").toString("base64");
    assertProblem(await get("/basic", { authorization: `Basic ${latin1}` }), 401, "invalid_credentials");
  });

  test("jwt: a crit header, a non-object payload and two-part tokens are malformed", async () => {
    const crit = await new jose.SignJWT({ iss: "hs-app", exp: now() + 600 })
      .setProtectedHeader({ alg: "HS256", crit: ["b64"], b64: true })
      .sign(hsSecret)
      .catch(() => null);
    const tokens = [
      crit,
      [{ alg: "HS256" }, ["iss"]].map((o) => Buffer.from(JSON.stringify(o)).toString("base64url")).join(".") + ".c2ln",
      (await hs()).split(".").slice(0, 2).join("."),
    ].filter(Boolean);
    for (const t of tokens) {
      const res = await get("/jwt", { authorization: `Bearer ${t}` });
      assertProblem(res, 401, "invalid_credentials", t);
      assert.equal(res.headers["www-authenticate"], 'Bearer realm="edgegate", error="invalid_token"');
    }
  });

  test("key-auth key_in_body: JSON and form fields admit; the body key is not removed", async () => {
    const json = JSON.stringify({ apikey: aliceKey, a: 1 });
    const r1 = await get("/key-body", { "content-type": "application/json", "content-length": String(Buffer.byteLength(json)) }, { method: "POST", body: json });
    assert.equal(r1.status, 200, r1.text);
    assert.equal(echo(r1).body, json, "a key in the body is not removed");
    const form = `a=1&apikey=${encodeURIComponent(aliceKey)}`;
    const r2 = await get("/key-body", { "content-type": "application/x-www-form-urlencoded", "content-length": String(form.length) }, { method: "POST", body: form });
    assert.equal(r2.status, 200, r2.text);
    assertProblem(await get("/key-body", { "content-type": "application/json" }, { method: "POST", body: JSON.stringify({ a: 1 }) }), 401, "missing_credentials");
  });

  test("jwt cookie_names with hide_credentials removes only that cookie", async () => {
    const token = await hs();
    const res = await get("/jwt-cookie", { cookie: `a=1; token=${token}; b=2` });
    assert.equal(res.status, 200, res.text);
    assert.equal(echo(res).headers.cookie, "a=1; b=2");
    const only = await get("/jwt-cookie", { cookie: `token=${token}` });
    assert.equal(only.status, 200);
    assert.equal(echo(only).headers.cookie, undefined);
  });

  test("rate limiting by consumer: the anonymous consumer is one consumer (one counter), as in Kong", async () => {
    const left = 60_000 - (Date.now() % 60_000);
    if (left < 10_000) await new Promise((r) => setTimeout(r, left + 50));
    assert.equal((await get("/rl-anon", { "cf-connecting-ip": "192.0.2.101" })).status, 200);
    assert.equal((await get("/rl-anon", { "cf-connecting-ip": "192.0.2.102" })).status, 200);
    assertProblem(await get("/rl-anon", { "cf-connecting-ip": "192.0.2.103" }), 429, "rate_limited");
    assert.equal((await get("/rl-anon", { apikey: aliceKey, "cf-connecting-ip": "192.0.2.103" })).status, 200);
  });

  test("rate limiting by path: only the given path, whatever the query or its spelling; per path without one", async () => {
    const left = 60_000 - (Date.now() % 60_000);
    if (left < 10_000) await new Promise((r) => setTimeout(r, left + 50));
    assert.equal((await get("/rlp/only")).status, 200);
    for (const spelling of ["/rlp/only", "/rlp/only?x=1", "/rlp/%6Fnly", "/rlp/%6f%6e%6c%79", "/rlp//only"]) {
      const res = await get(spelling);
      assert.equal(res.status, 429, `${spelling}: ${res.status} (origin saw ${res.status === 200 ? echo(res).url : "-"})`);
    }
    assert.equal((await get("/rlp/other")).status, 200);
    assert.equal((await get("/rlp/other")).status, 200, "other paths are not limited");
    assert.equal((await get("/rlp/only/")).status, 200, "a trailing slash is another path");
    assert.equal((await get("/rlq/a")).status, 200);
    assert.equal((await get("/rlq/b")).status, 200);
    assert.equal((await get("/rlq/a?z=1")).status, 429);
  });

  test("cache: a vary_query_params parameter spelled with percent-encoding is still in the key (no poisoning)", async () => {
    const cloaked = await get("/cv/list?p%61ge=2");
    assert.equal(xcs(cloaked), "Miss");
    const plain = await get("/cv/list");
    assert.equal(xcs(plain), "Miss", "the entry without page is not the cloaked request's");
    assert.equal(xcs(await get("/cv/list?utm=1")), "Hit", "other parameters do not split the cache");
  });

  test("jwt: an unknown issuer of any length or spelling is 401 invalid_credentials, never a server error", async () => {
    for (const iss of ["x".repeat(600), "../consumers/c-alice", "", "é/ü?#", 42]) {
      const res = await get("/jwt", { authorization: `Bearer ${await hs({ iss })}` });
      assertProblem(res, 401, "invalid_credentials", JSON.stringify(iss).slice(0, 40));
    }
  });
});
