// The docs as a contract, third audit of docs/authentication.md: what tests/auth.test.mjs, tests/jwks.test.mjs
// and tests/docs-contract-auth*.test.mjs do not already assert. JWKS keys restricted by `use` / `key_ops`
// (RFC 7517 4.2, 4.3) and a JWK pinning `alg`; HS256 signed with a JWKS key's public material; the order in
// which the token and the API key are looked for (the first found is the one checked); the Bearer scheme
// in any case; leeway_seconds: 0 and `iat` in the future; basic-auth credentials that are not UTF-8 (RFC
// 7617 2.1); key-auth's key_in_query (percent-decoded, every occurrence hidden) and key_in_body limits.
// One gateway, an echo origin and a JWKS server on 127.0.0.1.
import { describe, test, before, after } from "node:test";
import assert from "node:assert/strict";
import http from "node:http";
import crypto from "node:crypto";
import * as jose from "jose";
import { startGateway, startOrigin, request, problemOf } from "./support/harness.mjs";

const sha256hex = (s) => crypto.createHash("sha256").update(s).digest("hex");
const now = () => Math.floor(Date.now() / 1000);
const newKey = () => "eg_" + crypto.randomBytes(32).toString("base64url");
const ISS = "https://idp.test";

function assertProblem(res, status, code, what = "") {
  assert.equal(res.status, status, `${what}: ${res.text}`);
  assert.equal(problemOf(res).code, code, `${what}: ${res.text}`);
}

describe("docs contract: authentication, third audit (docs/authentication.md, RFC 7517 / 7519 / 7617)", { timeout: 120_000 }, () => {
  let gw, origin, jwksServer, jwksHits = 0;
  const keys = {};
  const aliceKey = newKey();
  const hsSecret = crypto.randomBytes(32);
  const get = (path, headers = {}, opts = {}) => request(gw.at(path), { headers, ...opts });
  const echo = (res) => JSON.parse(res.text);
  const rs = (kid, alg = "RS256", claims = {}) =>
    new jose.SignJWT({ exp: now() + 600, ...claims })
      .setProtectedHeader({ alg, kid })
      .setIssuer(ISS)
      .sign(keys[kid].privateKey);
  const hs = (claims = {}) =>
    new jose.SignJWT({ iss: "hs-app", exp: now() + 600, ...claims }).setProtectedHeader({ alg: "HS256" }).sign(hsSecret);

  before(async () => {
    // RSA keys published with different `use` / `key_ops`, and one pinned to RS384.
    const published = {
      sig: { use: "sig" },
      bare: {},
      verify: { key_ops: ["verify"] },
      enc: { use: "enc" },
      wrap: { key_ops: ["wrapKey", "encrypt"] },
      pinned: { alg: "RS384" },
    };
    const jwks = [];
    for (const [kid, extra] of Object.entries(published)) {
      // node KeyObjects: jose signs with them under any RS algorithm (a CryptoKey is bound to one).
      const { publicKey, privateKey } = crypto.generateKeyPairSync("rsa", { modulusLength: 2048 });
      keys[kid] = { privateKey, publicKey };
      jwks.push({ ...(await jose.exportJWK(publicKey)), kid, ...extra });
    }
    jwksServer = http.createServer((req, res) => {
      jwksHits++;
      res.writeHead(200, { "content-type": "application/json" });
      res.end(JSON.stringify({ keys: jwks }));
    });
    await new Promise((r) => jwksServer.listen(0, "127.0.0.1", r));
    const jwksUrl = `http://127.0.0.1:${jwksServer.address().port}/jwks.json`;

    origin = await startOrigin();
    const route = (name) => ({ name, service: "origin", paths: [`/${name}`], strip_path: false });
    const names = ["jwks", "jwt", "jwt-strict", "key", "key-hide", "key-body", "basic"];
    gw = await startGateway({
      bindings: { AUTH_CACHE_SECONDS: "1" },
      config: {
        format_version: 1,
        services: [{ name: "origin", url: origin.url }],
        routes: names.map(route),
        plugins: [
          { name: "jwt", route: "jwks", config: { jwks_refetch_interval_seconds: 1 } },
          { name: "jwt", route: "jwt" },
          { name: "jwt", route: "jwt-strict", config: { leeway_seconds: 0 } },
          { name: "key-auth", route: "key" },
          { name: "key-auth", route: "key-hide", config: { hide_credentials: true } },
          { name: "key-auth", route: "key-body", config: { key_in_body: true } },
          { name: "basic-auth", route: "basic" },
        ],
      },
    });
    const put = (k, v) => gw.kv.put(k, JSON.stringify(v));
    await put("consumers/c-alice", { id: "c-alice", username: "alice", groups: [] });
    await put("consumer-names/alice", { id: "c-alice" });
    await put(`credentials/key-auth/${sha256hex(aliceKey)}`, { id: sha256hex(aliceKey).slice(0, 16), consumer_id: "c-alice" });
    await put(`credentials/jwt/${ISS}`, { id: "jwt-idp", consumer_id: "c-alice", key: ISS, jwks_url: jwksUrl });
    await put("credentials/jwt/hs-app", {
      id: "jwt-hs", consumer_id: "c-alice", key: "hs-app", algorithms: ["HS256"], secret: hsSecret.toString("base64"),
    });
    const salt = crypto.randomBytes(16);
    const unpad = (b) => b.toString("base64").replace(/=+$/, "");
    // A password with a non-ASCII character (UTF-8), to send it in Latin-1 too. Logins are printable ASCII.
    const hash = crypto.pbkdf2Sync(Buffer.from("caf\u00e9", "utf8"), salt, 10000, 32, "sha256");
    await put("credentials/basic-auth/jurgen", {
      id: "basic-jurgen", consumer_id: "c-alice", username: "jurgen",
      password_hash: `$pbkdf2-sha256$i=10000$${unpad(salt)}$${unpad(hash)}`,
    });
  });
  after(async () => {
    await gw?.dispose();
    await origin?.close();
    await new Promise((r) => (jwksServer ? jwksServer.close(r) : r()));
  });

  // ---------------------------------------------------------------------------------------------------
  // JWKS keys and their intended use

  test("jwks: keys with use sig, key_ops verify, or neither verify tokens", async () => {
    for (const kid of ["sig", "bare", "verify"]) {
      const res = await get("/jwks", { authorization: `Bearer ${await rs(kid)}` });
      assert.equal(res.status, 200, `${kid}: ${res.text}`);
      assert.equal(echo(res).headers["x-consumer-username"], "alice");
    }
  });

  test("jwks: a key published for encryption (use enc) or without verify in key_ops is never used", async () => {
    for (const kid of ["enc", "wrap"]) {
      const res = await get("/jwks", { authorization: `Bearer ${await rs(kid)}` });
      assertProblem(res, 401, "invalid_credentials", kid);
      assert.match(res.headers["www-authenticate"], /error="invalid_token"/);
    }
  });

  test("jwks: a JWK that pins alg accepts only that algorithm", async () => {
    const ok = await get("/jwks", { authorization: `Bearer ${await rs("pinned", "RS384")}` });
    assert.equal(ok.status, 200, ok.text);
    assertProblem(await get("/jwks", { authorization: `Bearer ${await rs("pinned", "RS256")}` }), 401, "invalid_credentials");
  });

  test("jwks: HS256 keyed with a JWKS key's public material is refused (alg confusion)", async () => {
    const pem = await jose.exportSPKI(keys.sig.publicKey);
    const jwk = JSON.stringify(await jose.exportJWK(keys.sig.publicKey));
    for (const secret of [pem, jwk]) {
      const token = await new jose.SignJWT({ exp: now() + 600 })
        .setProtectedHeader({ alg: "HS256", kid: "sig" })
        .setIssuer(ISS)
        .sign(new TextEncoder().encode(secret));
      assertProblem(await get("/jwks", { authorization: `Bearer ${token}` }), 401, "invalid_credentials");
    }
  });

  // ---------------------------------------------------------------------------------------------------
  // jwt: where the token is taken from, the clock

  test("jwt: the Bearer scheme in any case; another scheme in Authorization is no token", async () => {
    const token = await hs();
    for (const scheme of ["Bearer", "bearer", "BEARER"]) {
      assert.equal((await get("/jwt", { authorization: `${scheme} ${token}` })).status, 200, scheme);
    }
    assertProblem(await get("/jwt", { authorization: `Token ${token}` }), 401, "missing_credentials");
  });

  test("jwt: the header is looked at before ?jwt=, and only the first token found is checked", async () => {
    const good = await hs();
    const bad = await hs({ exp: now() - 3600 });
    assert.equal((await get(`/jwt?jwt=${bad}`, { authorization: `Bearer ${good}` })).status, 200);
    assertProblem(await get(`/jwt?jwt=${good}`, { authorization: `Bearer ${bad}` }), 401, "token_expired");
  });

  test("jwt leeway_seconds 0: exp and nbf to the second; iat in the future is not compared with the clock", async () => {
    assertProblem(await get("/jwt-strict", { authorization: `Bearer ${await hs({ exp: now() - 2 })}` }), 401, "token_expired");
    assertProblem(await get("/jwt-strict", { authorization: `Bearer ${await hs({ nbf: now() + 20 })}` }), 401, "token_not_yet_valid");
    assert.equal((await get("/jwt-strict", { authorization: `Bearer ${await hs({ nbf: now() - 2 })}` })).status, 200);
    assert.equal((await get("/jwt-strict", { authorization: `Bearer ${await hs({ iat: now() + 3600 })}` })).status, 200);
    // The default leeway (30 s) admits what 0 refuses.
    assert.equal((await get("/jwt", { authorization: `Bearer ${await hs({ exp: now() - 2 })}` })).status, 200);
  });

  // ---------------------------------------------------------------------------------------------------
  // basic-auth (RFC 7617)

  test("basic-auth: a UTF-8 password admits; the same in Latin-1 (not UTF-8), or a non-ASCII login, is 401 invalid_credentials", async () => {
    const utf8 = Buffer.from("jurgen:caf\u00e9", "utf8").toString("base64");
    const ok = await get("/basic", { authorization: `Basic ${utf8}` });
    assert.equal(ok.status, 200, ok.text);
    assert.equal(echo(ok).headers["x-credential-identifier"], "basic-jurgen");
    for (const bytes of [
      Buffer.from("jurgen:caf\u00e9", "latin1"),
      Buffer.from([0xff, 0xfe, 0x3a, 0x61]),
      Buffer.from("j\u00fcrgen:caf\u00e9", "utf8"),
    ]) {
      const res = await get("/basic", { authorization: `Basic ${bytes.toString("base64")}` });
      assertProblem(res, 401, "invalid_credentials", bytes.toString("hex"));
      assert.equal(res.headers["www-authenticate"], 'Basic realm="edgegate", charset="UTF-8"');
    }
  });

  // ---------------------------------------------------------------------------------------------------
  // key-auth: places and order

  test("key-auth: a key_names header is looked at before the query; the first key found is the one checked", async () => {
    const wrong = newKey();
    assert.equal((await get(`/key?apikey=${wrong}`, { apikey: aliceKey })).status, 200);
    assertProblem(await get(`/key?apikey=${aliceKey}`, { apikey: wrong }), 401, "invalid_credentials");
    // Authorization: Bearer comes before the query too.
    assertProblem(await get(`/key?apikey=${aliceKey}`, { authorization: `Bearer ${wrong}` }), 401, "invalid_credentials");
  });

  test("key-auth key_in_query: the parameter is percent-decoded; hide_credentials removes every occurrence", async () => {
    const encoded = [...aliceKey].map((c) => "%" + c.charCodeAt(0).toString(16).padStart(2, "0")).join("");
    assert.equal((await get(`/key?apikey=${encoded}`)).status, 200);
    const res = await get(`/key-hide?a=1&apikey=${aliceKey}&b=2&apikey=${aliceKey}`);
    assert.equal(res.status, 200, res.text);
    const url = new URL(echo(res).url, "http://o");
    assert.equal(url.searchParams.getAll("apikey").length, 0, echo(res).url);
    assert.equal(url.searchParams.get("a"), "1");
    assert.equal(url.searchParams.get("b"), "2");
  });

  test("key-auth key_in_body: not looked at in a body over 64 KB or without Content-Length", async () => {
    const big = JSON.stringify({ apikey: aliceKey, pad: "x".repeat(70 * 1024) });
    const r1 = await get("/key-body", { "content-type": "application/json", "content-length": String(Buffer.byteLength(big)) }, { method: "POST", body: big });
    assertProblem(r1, 401, "missing_credentials", "over 64 KB");
    assert.equal(echo(await get("/key-body", {}, { method: "POST", body: big, headers: { apikey: aliceKey, "content-type": "application/json" } })).body.length, big.length, "the large body still reaches the origin when the key is elsewhere");
    const small = JSON.stringify({ apikey: aliceKey });
    async function* chunked() {
      yield Buffer.from(small);
    }
    const r2 = await get("/key-body", { "content-type": "application/json" }, { method: "POST", body: chunked() });
    assertProblem(r2, 401, "missing_credentials", "no Content-Length");
  });
});
