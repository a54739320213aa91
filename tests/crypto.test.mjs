// Where the crypto runs (docs/authentication.md): in the Worker, RSA, ECDSA, Ed25519 and PBKDF2 go through
// WebCrypto (src/webcrypto.rs), HMAC stays in Rust. Every algorithm is exercised through the Worker with keys
// made by node:crypto and tokens signed by `jose` (an independent library): valid, badly signed, wrong
// algorithm, keys WebCrypto refuses to import, and basic-auth; secrets never reach the logs.
import { describe, test, before, after } from "node:test";
import assert from "node:assert/strict";
import crypto from "node:crypto";
import * as jose from "jose";
import { startGateway, startOrigin, request, waitFor } from "./support/harness.mjs";

const now = () => Math.floor(Date.now() / 1000);
const b64 = (b) => b.toString("base64").replace(/=+$/, "");

function keyPair(alg) {
  switch (alg) {
    case "ES256":
      return crypto.generateKeyPairSync("ec", { namedCurve: "P-256" });
    case "ES384":
      return crypto.generateKeyPairSync("ec", { namedCurve: "P-384" });
    case "EdDSA":
      return crypto.generateKeyPairSync("ed25519");
    default:
      return crypto.generateKeyPairSync("rsa", { modulusLength: 2048 });
  }
}

function mint(key, alg, claims = {}, header = {}) {
  return new jose.SignJWT({ exp: now() + 600, ...claims })
    .setProtectedHeader({ alg, ...header })
    .setIssuedAt()
    .sign(key);
}

// Twice: as wrangler.toml runs it (`nodejs_compat`: node:crypto verifies signatures synchronously once a key
// is imported) and without that flag (every signature through WebCrypto's promise).
for (const [mode, compatibilityFlags] of [
  ["nodejs_compat", ["nodejs_compat"]],
  ["WebCrypto only", []],
]) {
describe(`crypto through the Worker (${mode})`, { timeout: 180_000 }, () => {
  let gw, origin;
  const keys = {};
  const hsSecret = crypto.randomBytes(32);
  const password = "correct horse battery staple " + crypto.randomBytes(6).toString("hex");
  const tokensSent = [];

  const put = (key, value) => gw.kv.put(key, JSON.stringify(value));
  const get = (path, headers = {}) => request(gw.at(path), { headers });
  const bearer = (token) => {
    tokensSent.push(token);
    return { authorization: `Bearer ${token}` };
  };
  function assertProblem(res, status, code) {
    assert.equal(res.status, status, res.text);
    assert.match(res.headers["content-type"], /application\/problem\+json/);
    assert.equal(res.json().code, code, res.text);
    if (status === 401) assert.match(res.headers["www-authenticate"], /^Bearer realm="edgegate"|Basic realm/);
  }

  // One credential per algorithm (iss = "iss-<alg>"), keys in the forms docs/authentication.md lists.
  const ALGS = ["RS256", "RS384", "RS512", "PS256", "ES256", "ES384", "EdDSA"];

  before(async () => {
    origin = await startOrigin();
    gw = await startGateway({
      miniflare: { compatibilityFlags },
      config: {
        format_version: 1,
        services: [{ name: "origin", url: origin.url }],
        routes: [
          { name: "jwt", service: "origin", paths: ["/jwt"] },
          { name: "basic", service: "origin", paths: ["/basic"] },
        ],
        plugins: [
          { name: "jwt", route: "jwt" },
          { name: "basic-auth", route: "basic" },
        ],
      },
    });
    await put("consumers/c-crypto", { id: "c-crypto", username: "crypto", groups: [] });
    await put("consumer-names/crypto", { id: "c-crypto" });
    for (const [i, alg] of ALGS.entries()) {
      const pair = keyPair(alg);
      const signing = await jose.importPKCS8(pair.privateKey.export({ type: "pkcs8", format: "pem" }), alg);
      keys[alg] = { ...pair, signing };
      const record = { id: `jwt-${alg}`, consumer_id: "c-crypto", key: `iss-${alg}`, algorithms: [alg] };
      // RSA: PKCS#1 PEM for RS256, a JWK for RS512, SPKI PEM otherwise; EC and Ed25519: SPKI PEM, a JWK for ES384.
      if (alg === "RS256") record.public_key = pair.publicKey.export({ type: "pkcs1", format: "pem" });
      else if (alg === "RS512" || alg === "ES384") record.jwk = pair.publicKey.export({ format: "jwk" });
      else record.public_key = pair.publicKey.export({ type: "spki", format: "pem" });
      if (i === 0) keys.rsaPem = record.public_key;
      await put(`credentials/jwt/iss-${alg}`, record);
    }
    // A P-256 credential that accepts both EC algorithms (the default: every algorithm of the key's family).
    await put("credentials/jwt/iss-ec-any", {
      id: "jwt-ec-any",
      consumer_id: "c-crypto",
      key: "iss-ec-any",
      public_key: keys.ES256.publicKey.export({ type: "spki", format: "pem" }),
    });
    await put("credentials/jwt/iss-HS256", {
      id: "jwt-HS256",
      consumer_id: "c-crypto",
      key: "iss-HS256",
      algorithms: ["HS256"],
      secret: hsSecret.toString("base64"),
    });
    // Shape-valid keys that WebCrypto refuses: a P-256 point that is not on the curve, a bad PEM.
    const jwk = keys.ES256.publicKey.export({ format: "jwk" });
    const offCurve = { ...jwk, y: Buffer.alloc(32, 7).toString("base64url") };
    await put("credentials/jwt/iss-off-curve", { id: "jwt-off-curve", consumer_id: "c-crypto", key: "iss-off-curve", jwk: offCurve });
    await put("credentials/jwt/iss-bad-pem", {
      id: "jwt-bad-pem",
      consumer_id: "c-crypto",
      key: "iss-bad-pem",
      public_key: "-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n",
    });
    const salt = crypto.randomBytes(16);
    const hash = crypto.pbkdf2Sync(password, salt, 10000, 32, "sha256");
    await put("credentials/basic-auth/carol", {
      id: "basic-carol",
      consumer_id: "c-crypto",
      username: "carol",
      password_hash: `$pbkdf2-sha256$i=10000$${b64(salt)}$${b64(hash)}`,
    });
    await put("credentials/basic-auth/broken", {
      id: "basic-broken",
      consumer_id: "c-crypto",
      username: "broken",
      password_hash: "$pbkdf2-sha256$i=10$c2FsdA$aGFzaA",
    });
  });
  after(async () => {
    await gw?.dispose();
    await origin?.close();
  });

  for (const alg of ALGS) {
    test(`${alg}: a valid token is admitted, a badly signed one and a wrong algorithm are refused`, async () => {
      const ok = await get("/jwt", bearer(await mint(keys[alg].signing, alg, { iss: `iss-${alg}` })));
      assert.equal(ok.status, 200, ok.text);
      assert.equal(JSON.parse(ok.text).headers["x-credential-identifier"], `jwt-${alg}`);

      // The same claims signed by another key of the same kind.
      const other = keyPair(alg);
      const otherKey = await jose.importPKCS8(other.privateKey.export({ type: "pkcs8", format: "pem" }), alg);
      const forged = await get("/jwt", bearer(await mint(otherKey, alg, { iss: `iss-${alg}` })));
      assertProblem(forged, 401, "invalid_credentials");
      assert.equal(forged.json().detail, "the token is not valid");
      assert.match(forged.headers["www-authenticate"], /error="invalid_token"/);

      // A valid token with one signature byte changed.
      const token = await mint(keys[alg].signing, alg, { iss: `iss-${alg}` });
      const sig = Buffer.from(token.split(".")[2], "base64url");
      sig[sig.length >> 1] ^= 1;
      const flipped = token.split(".").slice(0, 2).join(".") + "." + sig.toString("base64url");
      assertProblem(await get("/jwt", bearer(flipped)), 401, "invalid_credentials");

      // HS256 keyed with the credential's public key material (algorithm confusion) is refused.
      const pem = keys[alg].publicKey.export({ type: "spki", format: "pem" });
      const confused = await mint(new TextEncoder().encode(pem), "HS256", { iss: `iss-${alg}` });
      assertProblem(await get("/jwt", bearer(confused)), 401, "invalid_credentials");
    });
  }

  test("many distinct tokens for one key all verify (imported keys are cached, not re-imported wrongly)", async () => {
    for (const alg of ["RS256", "ES256", "EdDSA"]) {
      const results = await Promise.all(
        Array.from({ length: 12 }, async (_, i) => {
          const res = await get("/jwt", bearer(await mint(keys[alg].signing, alg, { iss: `iss-${alg}`, n: i })));
          return res.status;
        }),
      );
      assert.deepEqual(results, Array(12).fill(200), alg);
    }
  });

  test("a PS256 credential refuses RS256, and a P-256 key refuses ES384", async () => {
    // The PS256 credential's own key, but PKCS#1 v1.5 (RS256): not an algorithm it allows.
    const asRs256 = await jose.importPKCS8(keys.PS256.privateKey.export({ type: "pkcs8", format: "pem" }), "RS256");
    const rs = await mint(asRs256, "RS256", { iss: "iss-PS256" });
    assertProblem(await get("/jwt", bearer(rs)), 401, "invalid_credentials");
    // iss-ec-any accepts ES256 and ES384; an ES384 token cannot verify with a P-256 key.
    const es384 = await mint(keys.ES384.signing, "ES384", { iss: "iss-ec-any" });
    assertProblem(await get("/jwt", bearer(es384)), 401, "invalid_credentials");
    const es256 = await get("/jwt", bearer(await mint(keys.ES256.signing, "ES256", { iss: "iss-ec-any" })));
    assert.equal(es256.status, 200, es256.text);
  });

  test("HS256 (verified in Rust): valid, wrong secret, expired", async () => {
    const ok = await get("/jwt", bearer(await mint(hsSecret, "HS256", { iss: "iss-HS256" })));
    assert.equal(ok.status, 200, ok.text);
    const wrong = await get("/jwt", bearer(await mint(crypto.randomBytes(32), "HS256", { iss: "iss-HS256" })));
    assertProblem(wrong, 401, "invalid_credentials");
    const expired = await get("/jwt", bearer(await mint(hsSecret, "HS256", { iss: "iss-HS256", exp: now() - 3600 })));
    assertProblem(expired, 401, "token_expired");
  });

  test("a key WebCrypto refuses to import: 401 invalid_credentials, logged by credential id only", async () => {
    const token = await mint(keys.ES256.signing, "ES256", { iss: "iss-off-curve" });
    const res = await get("/jwt", bearer(token));
    assertProblem(res, 401, "invalid_credentials");
    assert.equal(res.json().detail, "the token is not valid");
    // Console lines arrive asynchronously.
    await waitFor(() => gw.logs.some((l) => l.json?.event === "jwt_key_unusable"), { timeoutMs: 10_000, what: "jwt_key_unusable line" });
    const line = gw.logs.find((l) => l.json?.event === "jwt_key_unusable");
    assert.equal(line.json.credential, "jwt-off-curve");
    // Refused again (a failed import is not cached as a key).
    assertProblem(await get("/jwt", bearer(await mint(keys.ES256.signing, "ES256", { iss: "iss-off-curve", n: 2 }))), 401, "invalid_credentials");
    // A PEM that does not parse is refused before any crypto.
    const bad = await get("/jwt", bearer(await mint(keys.ES256.signing, "ES256", { iss: "iss-bad-pem" })));
    assertProblem(bad, 401, "invalid_credentials");
  });

  test("basic-auth through WebCrypto PBKDF2: right, wrong, unknown user, unusable stored hash", async () => {
    const basic = (u, p) => ({ authorization: "Basic " + Buffer.from(`${u}:${p}`).toString("base64") });
    const ok = await get("/basic", basic("carol", password));
    assert.equal(ok.status, 200, ok.text);
    assert.equal(JSON.parse(ok.text).headers["x-credential-identifier"], "basic-carol");
    // Again: the verified pair is remembered, still admitted.
    assert.equal((await get("/basic", basic("carol", password))).status, 200);
    const wrong = await get("/basic", basic("carol", password + "!"));
    assert.equal(wrong.status, 401);
    assert.equal(wrong.json().code, "invalid_credentials");
    assert.match(wrong.headers["www-authenticate"], /^Basic realm="edgegate", charset="UTF-8"$/);
    const unknown = await get("/basic", basic("nobody", password));
    assert.equal(unknown.status, 401);
    assert.equal(unknown.json().code, "invalid_credentials");
    const broken = await get("/basic", basic("broken", password));
    assert.equal(broken.status, 401);
    assert.equal(broken.json().code, "invalid_credentials");
    const logged = (l) => l.json?.event === "auth_store_error" && l.json?.credential === "basic-broken";
    await waitFor(() => gw.logs.some(logged), { timeoutMs: 10_000, what: "auth_store_error line" });
  });

  test("secrets never reach the logs", () => {
    const text = gw.logs.map((l) => l.message).join("\n");
    assert.ok(!text.includes(password), "the password is not logged");
    assert.ok(!text.includes(hsSecret.toString("base64")), "the HMAC secret is not logged");
    for (const t of tokensSent) assert.ok(!text.includes(t.split(".")[2]), "no token signature is logged");
    assert.ok(!text.includes(keys.rsaPem.split("\n")[1]), "no key material is logged");
  });
});
}
