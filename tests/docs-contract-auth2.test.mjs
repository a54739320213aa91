// The docs as a contract, part 3: docs/authentication.md and docs/rate-limiting.md read the way a Kong user
// reads them (Kong's key-auth, jwt, basic-auth, acl and rate-limiting options and headers), asserting only
// what tests/docs-contract-auth.test.mjs, tests/auth.test.mjs and tests/ratelimit*.test.mjs do not.
// One gateway for the whole file, origins on 127.0.0.1.
import { describe, test, before, after } from "node:test";
import assert from "node:assert/strict";
import crypto from "node:crypto";
import * as jose from "jose";
import { startGateway, startOrigin, request, problemOf } from "./support/harness.mjs";
import { DO_OPTIONS } from "./ratelimit-helpers.mjs";

const sha256hex = (s) => crypto.createHash("sha256").update(s).digest("hex");
const now = () => Math.floor(Date.now() / 1000);
const newKey = () => "eg_" + crypto.randomBytes(32).toString("base64url");
const anIp = () => `198.51.100.${1 + Math.floor(Math.random() * 250)}`;

function assertProblem(res, status, code, what = "") {
  assert.equal(res.status, status, `${what}: ${res.text}`);
  const p = problemOf(res);
  assert.equal(p.code, code, `${what}: ${res.text}`);
  return p;
}

// RFC 7235 section 4.1 / 2.1: challenge = auth-scheme [ 1*SP ( token68 / #auth-param ) ], auth-param =
// token BWS "=" BWS ( token / quoted-string ); several challenges are comma separated.
const TOKEN = "[!#$%&'*+.^_`|~0-9A-Za-z-]+";
const QUOTED = '"(?:[^"\\\\\\x00-\\x1f\\x7f]|\\\\.)*"';
const PARAM = `${TOKEN}\\s*=\\s*(?:${TOKEN}|${QUOTED})`;
const CHALLENGE = `${TOKEN}(?: +${PARAM}(?:\\s*,\\s*${PARAM})*)?`;
const CHALLENGES = new RegExp(`^${CHALLENGE}(?:\\s*,\\s*${CHALLENGE})*$`);

describe("docs contract: auth and rate limiting as a Kong user reads them", { timeout: 120_000 }, () => {
  let gw, origin;
  const aliceKey = newKey();
  const aliceKey2 = newKey();
  const bobKey = newKey();
  const hsSecret = crypto.randomBytes(32);
  const get = (path, headers = {}, opts = {}) => request(gw.at(path), { headers, ...opts });
  const echo = (res) => JSON.parse(res.text);
  const hs = (claims = {}, header = {}) =>
    new jose.SignJWT({ iss: "hs-app", exp: now() + 600, ...claims })
      .setProtectedHeader({ alg: "HS256", ...header })
      .sign(hsSecret);

  before(async () => {
    origin = await startOrigin();
    const route = (name, path) => ({ name, service: "origin", paths: [path], strip_path: false });
    const names = [
      "key", "key-noheader", "anon", "acl-groups", "basic-realm", "jwt-kid", "jwt-nbf", "jwt-noexp",
      "jwt-header", "jwt-kong", "rl-year", "rl-multi", "rl-hidden", "rl-code", "rl-header", "rl-cred",
      "rl-consumer", "rl-service", "rl-route", "rl-kong",
    ];
    gw = await startGateway({
      bindings: { AUTH_CACHE_SECONDS: "1" },
      miniflare: DO_OPTIONS,
      config: {
        format_version: 1,
        services: [{ name: "origin", url: origin.url }],
        routes: names.map((n) => route(n, `/${n}`)),
        plugins: [
          { name: "key-auth", route: "key" },
          { name: "key-auth", route: "key-noheader", config: { key_in_header: false, bearer: false } },
          { name: "key-auth", route: "anon", config: { anonymous: "guest" } },
          { name: "key-auth", route: "acl-groups" },
          { name: "acl", route: "acl-groups", config: { allow: ["ops"] } },
          { name: "basic-auth", route: "basic-realm", config: { realm: "admin area", hide_credentials: true } },
          { name: "jwt", route: "jwt-kid", config: { key_claim_name: "kid" } },
          { name: "jwt", route: "jwt-nbf", config: { claims_to_verify: ["exp", "nbf"] } },
          { name: "jwt", route: "jwt-noexp", config: { claims_to_verify: [] } },
          { name: "jwt", route: "jwt-header", config: { header_names: ["x-jwt"], hide_credentials: true } },
          // A Kong jwt configuration as Kong's Admin API returns it (every field with its default).
          {
            name: "jwt", route: "jwt-kong",
            config: {
              uri_param_names: ["jwt"], cookie_names: [], header_names: ["authorization"], key_claim_name: "iss",
              secret_is_base64: false, claims_to_verify: ["exp"], anonymous: null, run_on_preflight: true,
              maximum_expiration: 0,
            },
          },
          { name: "rate-limiting", route: "rl-year", config: { year: 2, limit_by: "ip" } },
          { name: "rate-limiting", route: "rl-multi", config: { hour: 3, day: 10, year: 1000, limit_by: "ip" } },
          { name: "rate-limiting", route: "rl-hidden", config: { hour: 1, limit_by: "ip", hide_client_headers: true } },
          {
            name: "rate-limiting", route: "rl-code",
            config: { hour: 1, limit_by: "ip", error_code: 418, error_message: "slow down, teapot" },
          },
          { name: "rate-limiting", route: "rl-header", config: { hour: 1, limit_by: "header", header_name: "X-Tenant" } },
          { name: "key-auth", route: "rl-cred" },
          { name: "rate-limiting", route: "rl-cred", config: { hour: 1, limit_by: "credential" } },
          { name: "key-auth", route: "rl-consumer" },
          { name: "rate-limiting", route: "rl-consumer", config: { hour: 1, limit_by: "consumer" } },
          { name: "rate-limiting", route: "rl-service", config: { hour: 1000000, limit_by: "service" } },
          { name: "rate-limiting", route: "rl-route", config: { hour: 1, limit_by: "route" } },
          // Kong's shape: a shared-counter policy with its Redis and sync settings.
          {
            name: "rate-limiting", route: "rl-kong",
            config: {
              hour: 1, limit_by: "ip", policy: "redis", sync_rate: -1, fault_tolerant: true, hide_client_headers: false,
              redis: { host: "redis.example", port: 6379, timeout: 2000, database: 0 },
            },
          },
        ],
      },
    });
    const put = (k, v) => gw.kv.put(k, JSON.stringify(v));
    await put("consumers/c-alice", { id: "c-alice", username: "alice", custom_id: "ext-42", groups: ["dev", "ops"] });
    await put("consumer-names/alice", { id: "c-alice" });
    await put("consumers/c-bob", { id: "c-bob", username: "bob", groups: ["dev"] });
    await put("consumer-names/bob", { id: "c-bob" });
    await put("consumers/c-guest", { id: "c-guest", username: "guest", groups: [] });
    await put("consumer-names/guest", { id: "c-guest" });
    for (const [key, consumer] of [[aliceKey, "c-alice"], [aliceKey2, "c-alice"], [bobKey, "c-bob"]]) {
      await put(`credentials/key-auth/${sha256hex(key)}`, { id: sha256hex(key).slice(0, 16), consumer_id: consumer });
    }
    await put("credentials/jwt/hs-app", {
      id: "jwt-hs", consumer_id: "c-alice", key: "hs-app", algorithms: ["HS256"], secret: hsSecret.toString("base64"),
    });
    await put("credentials/jwt/kid-app", {
      id: "jwt-kid", consumer_id: "c-bob", key: "kid-app", algorithms: ["HS256"], secret: hsSecret.toString("base64"),
    });
    const salt = crypto.randomBytes(16);
    const unpad = (b) => b.toString("base64").replace(/=+$/, "");
    const hash = crypto.pbkdf2Sync("s3cret", salt, 10000, 32, "sha256");
    await put("credentials/basic-auth/erin", {
      id: "basic-erin", consumer_id: "c-bob", username: "erin",
      password_hash: `$pbkdf2-sha256$i=10000$${unpad(salt)}$${unpad(hash)}`,
    });
  });
  after(async () => {
    await gw?.dispose();
    await origin?.close();
  });

  // ---------------------------------------------------------------------------------------------------
  // What the upstream sees, and what a client cannot forge

  const FORGED = {
    "X-Consumer-ID": "c-root", "X-Consumer-Username": "root", "X-Consumer-Custom-ID": "forged",
    "X-Credential-Identifier": "forged", "X-Consumer-Groups": "admin", "X-Anonymous-Consumer": "true",
  };

  test("an authenticated request: the six identity headers are the gateway's, never the client's", async () => {
    const res = await get("/key", { apikey: aliceKey, ...FORGED, x_consumer_username: "root" });
    assert.equal(res.status, 200, res.text);
    const h = echo(res).headers;
    assert.equal(h["x-consumer-id"], "c-alice");
    assert.equal(h["x-consumer-username"], "alice");
    assert.equal(h["x-consumer-custom-id"], "ext-42");
    assert.equal(h["x-credential-identifier"], sha256hex(aliceKey).slice(0, 16));
    assert.deepEqual(h["x-consumer-groups"].split(",").map((g) => g.trim()), ["dev", "ops"]);
    assert.equal(h["x-anonymous-consumer"], undefined);
    assert.equal(h["x_consumer_username"], undefined);
    // The key itself is forwarded (hide_credentials is false by default).
    assert.equal(h.apikey, aliceKey);
  });

  test("a consumer without custom_id: no X-Consumer-Custom-ID upstream, even a forged one", async () => {
    const h = echo(await get("/key", { apikey: bobKey, ...FORGED })).headers;
    assert.equal(h["x-consumer-username"], "bob");
    assert.equal(h["x-consumer-custom-id"], undefined);
    assert.equal(h["x-consumer-groups"], "dev");
  });

  test("the anonymous consumer: X-Anonymous-Consumer: true and the anonymous consumer's identity, nothing forged", async () => {
    const res = await get("/anon", FORGED);
    assert.equal(res.status, 200, res.text);
    const h = echo(res).headers;
    assert.equal(h["x-anonymous-consumer"], "true");
    assert.equal(h["x-consumer-id"], "c-guest");
    assert.equal(h["x-consumer-username"], "guest");
    assert.equal(h["x-credential-identifier"], undefined);
    assert.equal(h["x-consumer-custom-id"], undefined);
    assert.notEqual(h["x-consumer-groups"], "admin");
    // With a valid key the consumer is the key's, and X-Anonymous-Consumer is not sent (not even forged).
    const keyed = echo(await get("/anon", { apikey: aliceKey, "X-Anonymous-Consumer": "true" })).headers;
    assert.equal(keyed["x-consumer-username"], "alice");
    assert.equal(keyed["x-anonymous-consumer"], undefined);
  });

  test("acl: a consumer in an allowed group passes, and forged X-Consumer-Groups does not help another", async () => {
    assert.equal((await get("/acl-groups", { apikey: aliceKey })).status, 200);
    assertProblem(await get("/acl-groups", { apikey: bobKey, "X-Consumer-Groups": "ops" }), 403, "forbidden");
  });

  // ---------------------------------------------------------------------------------------------------
  // key-auth

  test("key-auth key_in_header false: a key in a key_names header is not looked at, the query one is", async () => {
    assertProblem(await get("/key-noheader", { apikey: aliceKey }), 401, "missing_credentials");
    const res = await get(`/key-noheader?apikey=${encodeURIComponent(aliceKey)}`);
    assert.equal(res.status, 200, res.text);
    assert.equal(echo(res).headers["x-consumer-username"], "alice");
  });

  test("key-auth: the default key_names are apikey and x-api-key, header names in any case", async () => {
    for (const h of ["apikey", "APIKEY", "x-api-key", "X-Api-Key"]) {
      const res = await get("/key", { [h]: aliceKey });
      assert.equal(res.status, 200, `${h}: ${res.text}`);
    }
  });

  // ---------------------------------------------------------------------------------------------------
  // WWW-Authenticate syntax (RFC 7235, 6750, 7617)

  test("every 401 challenge is valid RFC 7235 syntax, with the documented scheme and realm", async () => {
    const cases = [
      ["/key", {}, /^Key realm="edgegate"$/],
      ["/key", { apikey: "nope" }, /^Key realm="edgegate"$/],
      ["/jwt-nbf", {}, /^Bearer realm="edgegate"$/],
      ["/jwt-nbf", { authorization: "Bearer a.b.c" }, /^Bearer realm="edgegate", error="invalid_token"$/],
      ["/basic-realm", {}, /^Basic realm="admin area", charset="UTF-8"$/],
      ["/basic-realm", { authorization: "Basic " + Buffer.from("erin:wrong").toString("base64") },
        /^Basic realm="admin area", charset="UTF-8"$/],
    ];
    for (const [path, headers, want] of cases) {
      const res = await get(path, headers);
      assert.equal(res.status, 401, `${path} ${JSON.stringify(headers)}: ${res.text}`);
      const wa = res.headers["www-authenticate"];
      assert.match(wa, CHALLENGES, `${path}: ${wa}`);
      assert.match(wa, want, `${path}: ${wa}`);
      assert.match(res.headers["content-type"], /^application\/problem\+json/);
    }
  });

  test("basic-auth realm and hide_credentials: Authorization is not forwarded, the consumer is", async () => {
    const res = await get("/basic-realm", { authorization: "Basic " + Buffer.from("erin:s3cret").toString("base64") });
    assert.equal(res.status, 200, res.text);
    const h = echo(res).headers;
    assert.equal(h.authorization, undefined);
    assert.equal(h["x-consumer-username"], "bob");
    assert.equal(h["x-credential-identifier"], "basic-erin");
  });

  // ---------------------------------------------------------------------------------------------------
  // jwt

  test("jwt key_claim_name: a claim missing from the payload is looked for in the header (kid), as in Kong", async () => {
    const token = await new jose.SignJWT({ exp: now() + 600 }).setProtectedHeader({ alg: "HS256", kid: "kid-app" }).sign(hsSecret);
    const res = await get("/jwt-kid", { authorization: `Bearer ${token}` });
    assert.equal(res.status, 200, res.text);
    assert.equal(echo(res).headers["x-consumer-username"], "bob");
    assert.equal(echo(res).headers["x-credential-identifier"], "jwt-kid");
    // In the payload it wins; neither anywhere is 401 invalid_credentials naming the claim.
    const both = await new jose.SignJWT({ kid: "hs-app", exp: now() + 600 }).setProtectedHeader({ alg: "HS256", kid: "kid-app" }).sign(hsSecret);
    assert.equal(echo(await get("/jwt-kid", { authorization: `Bearer ${both}` })).headers["x-consumer-username"], "alice");
    const none = await new jose.SignJWT({ exp: now() + 600 }).setProtectedHeader({ alg: "HS256" }).sign(hsSecret);
    const p = assertProblem(await get("/jwt-kid", { authorization: `Bearer ${none}` }), 401, "invalid_credentials");
    assert.match(p.detail, /`kid`/);
  });

  test("jwt claims_to_verify: nbf listed makes it required; an empty list does not require exp", async () => {
    const p = assertProblem(await get("/jwt-nbf", { authorization: `Bearer ${await hs()}` }), 401, "invalid_credentials");
    assert.equal(p.detail, "the token has no `nbf` claim");
    assert.equal((await get("/jwt-nbf", { authorization: `Bearer ${await hs({ nbf: now() - 5 })}` })).status, 200);
    const noExp = await new jose.SignJWT({ iss: "hs-app" }).setProtectedHeader({ alg: "HS256" }).sign(hsSecret);
    assert.equal((await get("/jwt-noexp", { authorization: `Bearer ${noExp}` })).status, 200);
    // A present exp is checked whether listed or not.
    assertProblem(await get("/jwt-noexp", { authorization: `Bearer ${await hs({ exp: now() - 3600 })}` }), 401, "token_expired");
  });

  test("jwt header_names: a custom header carries the token (raw or Bearer) and hide_credentials removes it", async () => {
    for (const v of [await hs(), `Bearer ${await hs()}`]) {
      const res = await get("/jwt-header", { "x-jwt": v });
      assert.equal(res.status, 200, res.text);
      assert.equal(echo(res).headers["x-jwt"], undefined);
    }
    // Authorization is not among this route's header_names.
    assertProblem(await get("/jwt-header", { authorization: `Bearer ${await hs()}` }), 401, "missing_credentials");
  });

  test("a Kong jwt configuration with every default spelled out (secret_is_base64 included) loads and works", async () => {
    const res = await get("/jwt-kong", { authorization: `Bearer ${await hs()}` });
    assert.equal(res.status, 200, res.text);
    assert.equal((await get(`/jwt-kong?jwt=${await hs()}`)).status, 200);
    assertProblem(await get("/jwt-kong"), 401, "missing_credentials");
  });

  // ---------------------------------------------------------------------------------------------------
  // rate limiting

  test("rate limiting: the year window (Kong's) limits and has its X-RateLimit-*-Year headers", async () => {
    const ip = anIp();
    const first = await get("/rl-year", { "cf-connecting-ip": ip });
    assert.equal(first.status, 200, first.text);
    assert.equal(first.headers["x-ratelimit-limit-year"], "2");
    assert.equal(first.headers["x-ratelimit-remaining-year"], "1");
    assert.equal(first.headers["ratelimit-limit"], "2");
    assert.equal((await get("/rl-year", { "cf-connecting-ip": ip })).status, 200);
    const refused = await get("/rl-year", { "cf-connecting-ip": ip });
    assertProblem(refused, 429, "rate_limited");
    assert.match(refused.headers["retry-after"], /^\d+$/);
    assert.equal(refused.headers["x-ratelimit-remaining-year"], "0");
  });

  test("rate limiting: several windows at once, one X-RateLimit pair each, RateLimit-* for the most restrictive", async () => {
    const ip = anIp();
    const res = await get("/rl-multi", { "cf-connecting-ip": ip });
    assert.equal(res.status, 200, res.text);
    assert.equal(res.headers["x-ratelimit-limit-hour"], "3");
    assert.equal(res.headers["x-ratelimit-limit-day"], "10");
    assert.equal(res.headers["x-ratelimit-limit-year"], "1000");
    assert.equal(res.headers["x-ratelimit-remaining-hour"], "2");
    assert.equal(res.headers["x-ratelimit-remaining-day"], "9");
    assert.equal(res.headers["x-ratelimit-remaining-year"], "999");
    assert.equal(res.headers["ratelimit-limit"], "3");
    assert.equal(res.headers["ratelimit-remaining"], "2");
    const reset = Number(res.headers["ratelimit-reset"]);
    assert.ok(reset >= 0 && reset <= 3600, `RateLimit-Reset ${reset} is the hour's`);
    await get("/rl-multi", { "cf-connecting-ip": ip });
    await get("/rl-multi", { "cf-connecting-ip": ip });
    const refused = await get("/rl-multi", { "cf-connecting-ip": ip });
    assertProblem(refused, 429, "rate_limited");
    assert.equal(refused.headers["x-ratelimit-remaining-day"], "7", "the refused request charged nothing");
  });

  test("rate limiting hide_client_headers: no RateLimit-* / X-RateLimit-*, but Retry-After on the 429", async () => {
    const ip = anIp();
    const ok = await get("/rl-hidden", { "cf-connecting-ip": ip });
    assert.equal(ok.status, 200);
    const refused = await get("/rl-hidden", { "cf-connecting-ip": ip });
    assert.equal(refused.status, 429);
    for (const r of [ok, refused]) {
      for (const h of Object.keys(r.headers)) assert.doesNotMatch(h, /ratelimit/i, h);
    }
    assert.match(refused.headers["retry-after"], /^\d+$/);
  });

  test("rate limiting error_code and error_message shape the refusal", async () => {
    const ip = anIp();
    assert.equal((await get("/rl-code", { "cf-connecting-ip": ip })).status, 200);
    const refused = await get("/rl-code", { "cf-connecting-ip": ip });
    assert.equal(refused.status, 418, refused.text);
    const p = problemOf(refused);
    assert.equal(p.status, 418);
    assert.equal(p.detail, "slow down, teapot");
    assert.match(refused.headers["retry-after"], /^\d+$/);
  });

  test("rate limiting limit_by header: per header value; without the header, per client IP (as Kong)", async () => {
    const tenant = `t-${crypto.randomBytes(6).toString("hex")}`;
    assert.equal((await get("/rl-header", { "x-tenant": tenant, "cf-connecting-ip": anIp() })).status, 200);
    assert.equal((await get("/rl-header", { "x-tenant": tenant, "cf-connecting-ip": anIp() })).status, 429,
      "one tenant, any address: one counter");
    assert.equal((await get("/rl-header", { "x-tenant": tenant + "x" })).status, 200, "another tenant");
    const ip1 = `192.0.2.${1 + Math.floor(Math.random() * 120)}`;
    const ip2 = `192.0.2.${130 + Math.floor(Math.random() * 120)}`;
    assert.equal((await get("/rl-header", { "cf-connecting-ip": ip1 })).status, 200);
    assert.equal((await get("/rl-header", { "cf-connecting-ip": ip2 })).status, 200, "no header: per address");
    assert.equal((await get("/rl-header", { "cf-connecting-ip": ip1 })).status, 429);
  });

  test("rate limiting limit_by credential vs consumer: one consumer's two keys", async () => {
    assert.equal((await get("/rl-cred", { apikey: aliceKey })).status, 200);
    assert.equal((await get("/rl-cred", { apikey: aliceKey2 })).status, 200, "another credential, its own counter");
    assert.equal((await get("/rl-cred", { apikey: aliceKey })).status, 429);
    assert.equal((await get("/rl-consumer", { apikey: aliceKey })).status, 200);
    assert.equal((await get("/rl-consumer", { apikey: aliceKey2 })).status, 429, "same consumer, one counter");
    assert.equal((await get("/rl-consumer", { apikey: bobKey })).status, 200);
  });

  test("rate limiting limit_by route: one counter for every caller", async () => {
    assert.equal((await get("/rl-route", { "cf-connecting-ip": anIp() })).status, 200);
    const refused = await get("/rl-route", { "cf-connecting-ip": anIp() });
    assert.equal(refused.status, 429, refused.text);
    assert.equal((await get("/rl-service", {})).status, 200);
  });

  test("rate limiting: a Kong configuration with policy redis, sync_rate and redis settings loads and counts", async () => {
    const ip = anIp();
    const ok = await get("/rl-kong", { "cf-connecting-ip": ip });
    assert.equal(ok.status, 200, ok.text);
    assert.equal(ok.headers["x-ratelimit-limit-hour"], "1");
    assertProblem(await get("/rl-kong", { "cf-connecting-ip": ip }), 429, "rate_limited");
  });
});
