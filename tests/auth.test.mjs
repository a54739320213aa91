// Identity under Miniflare: key-auth, jwt (tokens minted by `jose`, an independent library), a JWKS served by a
// local server that rotates its keys, basic-auth, ACLs, anonymous consumers, forged identity headers and
// revocation after the lookup cache TTL. Consumers and credentials are written to KV in the layout of
// crates/core/src/auth/records.rs.
import { describe, test, before, after } from "node:test";
import assert from "node:assert/strict";
import http from "node:http";
import crypto from "node:crypto";
import * as jose from "jose";
import { startGateway, startOrigin, request, sleep } from "./support/harness.mjs";

const CACHE_SECONDS = 1;
const sha256hex = (s) => crypto.createHash("sha256").update(s).digest("hex");
const now = () => Math.floor(Date.now() / 1000);

/** A JWKS server on 127.0.0.1 whose published keys the test changes; counts fetches. */
async function startJwks() {
  const state = { keys: [], fetches: 0, fail: false };
  const server = http.createServer((req, res) => {
    state.fetches++;
    if (state.fail) {
      res.writeHead(503).end("down");
      return;
    }
    res.writeHead(200, { "content-type": "application/json" });
    res.end(JSON.stringify({ keys: state.keys }));
  });
  await new Promise((r) => server.listen(0, "127.0.0.1", r));
  state.url = `http://127.0.0.1:${server.address().port}/.well-known/jwks.json`;
  state.close = () => new Promise((r) => server.close(r));
  return state;
}

async function rsaKey(kid) {
  const { publicKey, privateKey } = await jose.generateKeyPair("RS256", { extractable: true });
  const jwk = { ...(await jose.exportJWK(publicKey)), kid, alg: "RS256", use: "sig" };
  return { kid, privateKey, publicKey, jwk };
}

function mint(key, alg, claims = {}, header = {}) {
  return new jose.SignJWT({ ...claims })
    .setProtectedHeader({ alg, ...header })
    .setIssuedAt()
    .setExpirationTime(claims.exp ?? now() + 600)
    .sign(key);
}

describe("identity", { timeout: 120_000 }, () => {
  let gw, origin, idp;
  let k1, k2;
  const hsSecret = crypto.randomBytes(32);
  const apiKey = "eg_" + crypto.randomBytes(32).toString("base64url");
  const adminKey = "eg_" + crypto.randomBytes(32).toString("base64url");

  async function put(key, value) {
    await gw.kv.put(key, JSON.stringify(value));
  }
  async function consumer(id, username, groups = [], custom_id) {
    await put(`consumers/${id}`, { id, username, groups, ...(custom_id ? { custom_id } : {}) });
    await put(`consumer-names/${username}`, { id });
  }
  const get = (path, headers = {}, opts = {}) => request(gw.at(path), { headers, ...opts });
  const echo = (res) => JSON.parse(res.text);

  before(async () => {
    origin = await startOrigin();
    idp = await startJwks();
    k1 = await rsaKey("k1");
    k2 = await rsaKey("k2");
    idp.keys = [k1.jwk];
    const route = (name, path) => ({ name, service: "origin", paths: [path] });
    gw = await startGateway({
      bindings: { AUTH_CACHE_SECONDS: String(CACHE_SECONDS) },
      config: {
        format_version: 1,
        services: [{ name: "origin", url: origin.url }],
        routes: [
          route("open", "/open"),
          route("key", "/key"),
          route("hidden", "/hidden"),
          route("jwt", "/jwt"),
          route("jwks", "/jwks"),
          route("basic", "/basic"),
          route("acl", "/acl"),
          route("anon", "/anon"),
          route("multi", "/multi"),
          route("jwt-lax", "/jwt-lax"),
          route("trio", "/trio"),
        ],
        plugins: [
          { name: "key-auth", route: "key" },
          { name: "key-auth", route: "hidden", config: { hide_credentials: true } },
          { name: "jwt", route: "jwt", config: { audiences: ["edgegate-tests"] } },
          {
            name: "jwt",
            route: "jwks",
            config: { jwks_cache_seconds: 2, jwks_refetch_interval_seconds: 1, max_token_bytes: 8192 },
          },
          { name: "basic-auth", route: "basic", config: { hide_credentials: true } },
          { name: "key-auth", route: "acl" },
          { name: "acl", route: "acl", config: { allow: ["admin"] } },
          { name: "key-auth", route: "anon", config: { anonymous: "guest" } },
          { name: "key-auth", route: "multi" },
          { name: "jwt", route: "multi" },
          { name: "jwt", route: "jwt-lax", config: { claims_to_verify: [] } },
          { name: "key-auth", route: "trio" },
          { name: "jwt", route: "trio" },
          { name: "basic-auth", route: "trio", config: { realm: "admins" } },
        ],
      },
    });
    await consumer("c-alice", "alice", ["dev"], "ext-42");
    await consumer("c-root", "root", ["admin"]);
    await consumer("c-guest", "guest");
    await put(`credentials/key-auth/${sha256hex(apiKey)}`, {
      id: sha256hex(apiKey).slice(0, 16),
      consumer_id: "c-alice",
    });
    await put(`credentials/key-auth/${sha256hex(adminKey)}`, {
      id: sha256hex(adminKey).slice(0, 16),
      consumer_id: "c-root",
    });
    await put("credentials/jwt/hs-issuer", {
      id: "jwt-hs",
      consumer_id: "c-alice",
      key: "hs-issuer",
      algorithms: ["HS256"],
      secret: hsSecret.toString("base64"),
    });
    await put("credentials/jwt/https://idp.test", {
      id: "jwt-idp",
      consumer_id: "c-root",
      key: "https://idp.test",
      jwks_url: idp.url,
    });
    const salt = crypto.randomBytes(16);
    const hash = crypto.pbkdf2Sync("open sesame", salt, 10000, 32, "sha256");
    const b64 = (b) => b.toString("base64").replace(/=+$/, "");
    await put("credentials/basic-auth/bob", {
      id: "basic-bob",
      consumer_id: "c-alice",
      username: "bob",
      password_hash: `$pbkdf2-sha256$i=10000$${b64(salt)}$${b64(hash)}`,
    });
  });
  after(async () => {
    await gw?.dispose();
    await origin?.close();
    await idp?.close();
  });

  function assertProblem(res, status, code) {
    assert.equal(res.status, status, res.text);
    assert.match(res.headers["content-type"], /application\/problem\+json/);
    assert.equal(res.json().code, code, res.text);
    if (status === 401) assert.ok(res.headers["www-authenticate"], "401 carries WWW-Authenticate");
  }

  test("a route without auth admits, and forged identity headers never reach the origin", async () => {
    const res = await get("/open", { "X-Consumer-ID": "forged", "X-Consumer-Username": "root", "X-Anonymous-Consumer": "true" });
    assert.equal(res.status, 200);
    const h = echo(res).headers;
    assert.equal(h["x-consumer-id"], undefined);
    assert.equal(h["x-consumer-username"], undefined);
    assert.equal(h["x-anonymous-consumer"], undefined);
  });

  test("key-auth: missing, valid (header, bearer, query), one character off", async () => {
    const missing = await get("/key");
    assertProblem(missing, 401, "missing_credentials");
    assert.match(missing.headers["www-authenticate"], /^Key realm="edgegate"/);

    const ok = await get("/key", { "x-api-key": apiKey, "X-Consumer-ID": "forged", "X-Consumer-Groups": "admin" });
    assert.equal(ok.status, 200, ok.text);
    const h = echo(ok).headers;
    assert.equal(h["x-consumer-id"], "c-alice");
    assert.equal(h["x-consumer-username"], "alice");
    assert.equal(h["x-consumer-custom-id"], "ext-42");
    assert.equal(h["x-consumer-groups"], "dev");
    assert.equal(h["x-credential-identifier"], sha256hex(apiKey).slice(0, 16));
    assert.equal(h["x-api-key"], apiKey, "without hide_credentials the key is forwarded");

    assert.equal((await get("/key", { authorization: `Bearer ${apiKey}` })).status, 200);
    assert.equal((await get(`/key?apikey=${encodeURIComponent(apiKey)}`)).status, 200);

    const last = apiKey.at(-1) === "A" ? "B" : "A";
    const offByOne = apiKey.slice(0, -1) + last;
    const bad = await get("/key", { apikey: offByOne });
    assertProblem(bad, 401, "invalid_credentials");
    assert.ok(!bad.text.includes(offByOne), "the error does not echo the key");
  });

  test("key-auth hide_credentials strips the header and the query parameter", async () => {
    let res = await get("/hidden?a=1", { apikey: apiKey });
    assert.equal(res.status, 200);
    assert.equal(echo(res).headers.apikey, undefined);
    res = await get(`/hidden?a=1&apikey=${apiKey}&b=2`);
    assert.equal(res.status, 200);
    assert.equal(echo(res).url.split("?")[1], "a=1&b=2");
  });

  test("jwt with an HMAC secret: valid, alg none, tampered, expired, not yet valid, wrong aud, huge", async () => {
    const claims = { iss: "hs-issuer", aud: "edgegate-tests", sub: "alice" };
    const good = await mint(hsSecret, "HS256", claims);
    const ok = await get("/jwt", { authorization: `Bearer ${good}` });
    assert.equal(ok.status, 200, ok.text);
    assert.equal(echo(ok).headers["x-credential-identifier"], "jwt-hs");
    assert.equal((await get(`/jwt?jwt=${good}`)).status, 200);

    assertProblem(await get("/jwt"), 401, "missing_credentials");

    const unsecured = new jose.UnsecuredJWT({ ...claims, exp: now() + 600 }).encode();
    assertProblem(await get("/jwt", { authorization: `Bearer ${unsecured}` }), 401, "invalid_credentials");

    const [h, p, s] = good.split(".");
    const forged = Buffer.from(JSON.stringify({ ...claims, sub: "root", exp: now() + 600 })).toString("base64url");
    assertProblem(await get("/jwt", { authorization: `Bearer ${h}.${forged}.${s}` }), 401, "invalid_credentials");
    assertProblem(await get("/jwt", { authorization: `Bearer ${h}.${p}.${s.slice(0, -2)}AA` }), 401, "invalid_credentials");
    assertProblem(await get("/jwt", { authorization: `Bearer ${h}.@@@.${s}` }), 401, "invalid_credentials");

    const expired = await mint(hsSecret, "HS256", { ...claims, exp: now() - 120 });
    assertProblem(await get("/jwt", { authorization: `Bearer ${expired}` }), 401, "token_expired");
    const early = await new jose.SignJWT(claims)
      .setProtectedHeader({ alg: "HS256" })
      .setNotBefore(now() + 600)
      .setExpirationTime(now() + 1200)
      .sign(hsSecret);
    assertProblem(await get("/jwt", { authorization: `Bearer ${early}` }), 401, "token_not_yet_valid");

    const wrongAud = await mint(hsSecret, "HS256", { ...claims, aud: "someone-else" });
    assertProblem(await get("/jwt", { authorization: `Bearer ${wrongAud}` }), 401, "invalid_credentials");

    // Algorithm not allowed for the credential (HS512 with the right secret; the credential lists HS256).
    const hs512 = await mint(hsSecret, "HS512", claims);
    assertProblem(await get("/jwt", { authorization: `Bearer ${hs512}` }), 401, "invalid_credentials");

    // Over the 8 KB limit (HTTP servers cap headers at 16 KB; the native tests send hundreds of KB).
    const huge = await mint(hsSecret, "HS256", { ...claims, pad: "x".repeat(10_000) });
    const res = await get("/jwt", { authorization: `Bearer ${huge}` }, { timeoutMs: 10_000 });
    assertProblem(res, 401, "invalid_credentials");
    assert.match(res.json().detail, /larger than 8192 bytes/);
  });

  test("JWKS rotation: old kid works while published, new kid after refetch, removed kid stops", async () => {
    const claims = { iss: "https://idp.test" };
    const t1 = await mint(k1.privateKey, "RS256", claims, { kid: "k1" });
    let res = await get("/jwks", { authorization: `Bearer ${t1}` });
    assert.equal(res.status, 200, res.text + JSON.stringify(gw.logs.filter((l) => /jwks/.test(l.message))));
    assert.equal(echo(res).headers["x-consumer-username"], "root");
    assert.equal(idp.fetches, 1);

    // The provider publishes k2; the first k2 token triggers one refetch.
    idp.keys = [k1.jwk, k2.jwk];
    await sleep(1100); // past the refetch interval since the first fetch
    const t2 = await mint(k2.privateKey, "RS256", claims, { kid: "k2" });
    res = await get("/jwks", { authorization: `Bearer ${t2}` });
    assert.equal(res.status, 200, res.text);
    assert.equal(idp.fetches, 2);
    assert.equal((await get("/jwks", { authorization: `Bearer ${t1}` })).status, 200, "k1 still published");

    // A flood of unknown kids: at most one more fetch within the interval.
    const bogus = await mint(k2.privateKey, "RS256", claims, { kid: "nope" });
    const before = idp.fetches;
    for (let i = 0; i < 20; i++) {
      assertProblem(await get("/jwks", { authorization: `Bearer ${bogus}` }), 401, "invalid_credentials");
    }
    assert.ok(idp.fetches - before <= 1, `fetches during the flood: ${idp.fetches - before}`);

    // RSA public key used as an HMAC secret (algorithm confusion) is refused.
    const pem = await jose.exportSPKI(k2.publicKey);
    const confused = await mint(new TextEncoder().encode(pem), "HS256", claims, { kid: "k2" });
    assertProblem(await get("/jwks", { authorization: `Bearer ${confused}` }), 401, "invalid_credentials");

    // The provider removes k1: once the cached set expires (2 s) and is fetched again, k1 fails.
    idp.keys = [k2.jwk];
    await sleep(2200);
    assertProblem(await get("/jwks", { authorization: `Bearer ${t1}` }), 401, "invalid_credentials");
    assert.equal((await get("/jwks", { authorization: `Bearer ${t2}` })).status, 200);

    // The provider goes down: after expiry the refetch fails and the cached k2 keeps working.
    idp.fail = true;
    await sleep(2200);
    const fetchesBefore = idp.fetches;
    assert.equal((await get("/jwks", { authorization: `Bearer ${t2}` })).status, 200);
    assert.equal(idp.fetches, fetchesBefore + 1, "one refetch was attempted");
    assert.equal((await get("/jwks", { authorization: `Bearer ${t2}` })).status, 200);
    idp.fail = false;
  });

  test("basic-auth: right and wrong password, unknown user, credentials hidden", async () => {
    const basic = (u, p) => ({ authorization: "Basic " + Buffer.from(`${u}:${p}`).toString("base64") });
    const missing = await get("/basic");
    assertProblem(missing, 401, "missing_credentials");
    assert.match(missing.headers["www-authenticate"], /^Basic realm="edgegate"/);
    const ok = await get("/basic", basic("bob", "open sesame"));
    assert.equal(ok.status, 200, ok.text);
    assert.equal(echo(ok).headers.authorization, undefined);
    assert.equal(echo(ok).headers["x-credential-identifier"], "basic-bob");
    assertProblem(await get("/basic", basic("bob", "open sesamE")), 401, "invalid_credentials");
    assertProblem(await get("/basic", basic("eve", "open sesame")), 401, "invalid_credentials");
    assertProblem(await get("/basic", { authorization: "Basic %%%" }), 401, "invalid_credentials");
  });

  test("acl: 403 for a consumer outside the allowed groups", async () => {
    assertProblem(await get("/acl", { apikey: apiKey }), 403, "forbidden");
    assert.equal((await get("/acl", { apikey: adminKey })).status, 200);
    assertProblem(await get("/acl"), 401, "missing_credentials");
  });

  test("anonymous consumer for requests without a key; invalid keys still 401", async () => {
    const res = await get("/anon");
    assert.equal(res.status, 200, res.text);
    const h = echo(res).headers;
    assert.equal(h["x-anonymous-consumer"], "true");
    assert.equal(h["x-consumer-username"], "guest");
    assertProblem(await get("/anon", { apikey: "eg_wrong" }), 401, "invalid_credentials");
    assert.equal(echo(await get("/anon", { apikey: apiKey })).headers["x-anonymous-consumer"], undefined);
  });

  test("several auth plugins on a route: any one admits", async () => {
    const token = await mint(hsSecret, "HS256", { iss: "hs-issuer" });
    assert.equal((await get("/multi", { apikey: apiKey })).status, 200);
    assert.equal((await get("/multi", { authorization: `Bearer ${token}` })).status, 200);
    const none = await get("/multi");
    assertProblem(none, 401, "missing_credentials");
    assert.match(none.headers["www-authenticate"], /Key realm.*Bearer realm/);
  });

  /** An HS256 token built by hand, so that claims can hold any JSON value (jose checks their types). */
  function hs256(payload) {
    const enc = (o) => Buffer.from(JSON.stringify(o)).toString("base64url");
    const input = `${enc({ alg: "HS256", typ: "JWT" })}.${enc(payload)}`;
    return `${input}.${crypto.createHmac("sha256", hsSecret).update(input).digest("base64url")}`;
  }

  test("jwt: exp, nbf or iat present but not a number is refused, required or not", async () => {
    const base = { iss: "hs-issuer", aud: "edgegate-tests", exp: now() + 600, nbf: now() - 10, iat: now() };
    // The hand-built token is accepted as is: what follows differs only in one claim.
    assert.equal((await get("/jwt", { authorization: `Bearer ${hs256(base)}` })).status, 200);
    assert.equal((await get("/jwt-lax", { authorization: `Bearer ${hs256(base)}` })).status, 200);
    const bad = [null, "2099-01-01", String(now() + 600), "", true, false, {}, { exp: now() + 600 }, [], [now() + 600]];
    for (const claim of ["exp", "nbf", "iat"]) {
      for (const value of bad) {
        const token = hs256({ ...base, [claim]: value });
        // `/jwt` requires exp (the default claims_to_verify), `/jwt-lax` requires nothing.
        for (const path of ["/jwt", "/jwt-lax"]) {
          const res = await get(path, { authorization: `Bearer ${token}` });
          const what = `${path} ${claim}=${JSON.stringify(value)}`;
          assert.equal(res.status, 401, `${what}: ${res.text}`);
          assert.equal(res.json().code, "invalid_credentials", what);
          assert.equal(res.json().detail, `the token's \`${claim}\` claim must be a number`, what);
          assert.equal(res.headers["www-authenticate"], 'Bearer realm="edgegate", error="invalid_token"', what);
        }
      }
    }
    // Absent is not malformed: without exp, /jwt-lax admits and /jwt says what is missing.
    const { exp, ...noExp } = base;
    assert.equal((await get("/jwt-lax", { authorization: `Bearer ${hs256(noExp)}` })).status, 200);
    const missing = await get("/jwt", { authorization: `Bearer ${hs256(noExp)}` });
    assertProblem(missing, 401, "invalid_credentials");
    assert.equal(missing.json().detail, "the token has no `exp` claim");
  });

  test("every 401 on a route with key-auth, jwt and basic-auth carries all three challenges", async () => {
    const key = 'Key realm="edgegate"';
    const bearer = 'Bearer realm="edgegate"';
    const invalidToken = 'Bearer realm="edgegate", error="invalid_token"';
    const basicChallenge = 'Basic realm="admins", charset="UTF-8"';
    const basic = (u, p) => "Basic " + Buffer.from(`${u}:${p}`).toString("base64");
    const claims = { iss: "hs-issuer" };
    const cases = [
      ["nothing sent", {}, "missing_credentials", [key, bearer, basicChallenge]],
      ["a wrong key", { apikey: "eg_wrong" }, "invalid_credentials", [key, bearer, basicChallenge]],
      ["a wrong key as Bearer", { authorization: "Bearer eg_wrong" }, "invalid_credentials", [key, invalidToken, basicChallenge]],
      ["a malformed JWT", { authorization: "Bearer a.b.c" }, "invalid_credentials", [key, invalidToken, basicChallenge]],
      [
        "a JWT with a bad signature",
        { authorization: `Bearer ${(await mint(hsSecret, "HS256", claims)).slice(0, -4)}AAAA` },
        "invalid_credentials",
        [key, invalidToken, basicChallenge],
      ],
      [
        "an expired JWT",
        { authorization: `Bearer ${await mint(hsSecret, "HS256", { ...claims, exp: now() - 120 })}` },
        "token_expired",
        [key, invalidToken, basicChallenge],
      ],
      ["a JWT with exp: null", { authorization: `Bearer ${hs256({ ...claims, exp: null })}` }, "invalid_credentials", [key, invalidToken, basicChallenge]],
      ["a wrong password", { authorization: basic("bob", "open sesamE") }, "invalid_credentials", [key, bearer, basicChallenge]],
      ["an unknown user", { authorization: basic("eve", "open sesame") }, "invalid_credentials", [key, bearer, basicChallenge]],
      ["a malformed Basic header", { authorization: "Basic %%%" }, "invalid_credentials", [key, bearer, basicChallenge]],
      [
        "a wrong key and an expired JWT",
        { apikey: "eg_wrong", authorization: `Bearer ${await mint(hsSecret, "HS256", { ...claims, exp: now() - 120 })}` },
        "token_expired",
        [key, invalidToken, basicChallenge],
      ],
    ];
    for (const [what, headers, code, challenges] of cases) {
      const res = await get("/trio", headers);
      assert.equal(res.status, 401, `${what}: ${res.text}`);
      assert.equal(res.json().code, code, what);
      assert.equal(res.headers["www-authenticate"], challenges.join(", "), what);
    }
    // And each kind of credential, right, still admits.
    assert.equal((await get("/trio", { apikey: apiKey })).status, 200);
    assert.equal((await get("/trio", { authorization: `Bearer ${await mint(hsSecret, "HS256", claims)}` })).status, 200);
    assert.equal((await get("/trio", { authorization: basic("bob", "open sesame") })).status, 200);
  });

  test("a revoked key keeps working at most for the cache TTL, then credentials_revoked", async () => {
    const key = "eg_" + crypto.randomBytes(32).toString("base64url");
    const record = { id: sha256hex(key).slice(0, 16), consumer_id: "c-alice" };
    await put(`credentials/key-auth/${sha256hex(key)}`, record);
    assert.equal((await get("/key", { apikey: key })).status, 200);
    await put(`credentials/key-auth/${sha256hex(key)}`, { ...record, revoked_at: now() });
    await sleep(CACHE_SECONDS * 1000 + 200);
    assertProblem(await get("/key", { apikey: key }), 401, "credentials_revoked");
    // A miss is cached too, and a key created later is found after the TTL.
    const late = "eg_" + crypto.randomBytes(32).toString("base64url");
    assertProblem(await get("/key", { apikey: late }), 401, "invalid_credentials");
    await put(`credentials/key-auth/${sha256hex(late)}`, { id: "late", consumer_id: "c-alice" });
    await sleep(CACHE_SECONDS * 1000 + 200);
    assert.equal((await get("/key", { apikey: late })).status, 200);
  });
});
