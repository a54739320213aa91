// The docs as a contract, fourth audit of docs/authentication.md, as a Kong user tests it, on both request
// paths (CONFIG_RELOAD_SECONDS 0: asynchronous; 600: synchronous). What tests/auth.test.mjs and
// tests/docs-contract-auth{,2,3}.test.mjs do not already assert: Kong configurations as Kong's Admin API
// shows them (unset settings as `null`, acl's always_use_authenticated_groups, basic-auth's realm
// "service"); basic-auth's Proxy-Authorization (Kong reads it first) and its parsing; key-auth's empty and
// repeated keys, a missing anonymous consumer, multipart bodies; acl instances at route, service and
// consumer, consumers without groups and the anonymous consumer (401 without groups, as Kong); the Errors
// table's problem fields and headers; jwt's algorithm pinning, malformed tokens, custom key_claim_name /
// uri_param_names / cookie_names and maximum_expiration's bound.
// One gateway per path, an echo origin, everything on 127.0.0.1.
import { describe, test, before, after } from "node:test";
import assert from "node:assert/strict";
import crypto from "node:crypto";
import * as jose from "jose";
import { startGateway, startOrigin, request, problemOf } from "./support/harness.mjs";

const sha256hex = (s) => crypto.createHash("sha256").update(s).digest("hex");
const now = () => Math.floor(Date.now() / 1000);
const newKey = () => "eg_" + crypto.randomBytes(32).toString("base64url");
const b64 = (s) => Buffer.from(s, "utf8").toString("base64");
const unpad = (b) => b.toString("base64").replace(/=+$/, "");
const KEY_CHALLENGE = 'Key realm="edgegate"';
const BEARER = 'Bearer realm="edgegate"';
const BEARER_INVALID = 'Bearer realm="edgegate", error="invalid_token"';
const BASIC = 'Basic realm="edgegate", charset="UTF-8"';

function assertProblem(res, status, code, what = "") {
  assert.equal(res.status, status, `${what}: ${res.text}`);
  const p = problemOf(res);
  assert.equal(p.code, code, `${what}: ${res.text}`);
  assert.equal(p.type, `https://edgegate.dev/errors/${code}`, `${what}: ${res.text}`);
  assert.equal(p.status, status, `${what}: ${res.text}`);
  return p;
}

for (const reload of ["0", "600"]) {
  describe(`docs contract: authentication, fourth audit (docs/authentication.md; CONFIG_RELOAD_SECONDS ${reload})`, { timeout: 180_000 }, () => {
    let gw, origin;
    const aliceKey = newKey();
    const bobKey = newKey();
    const hsSecret = crypto.randomBytes(32);
    const get = (path, headers = {}, opts = {}) => request(gw.at(path), { headers, ...opts });
    const echo = (res) => JSON.parse(res.text);
    const hs = (claims = {}, { alg = "HS256", iss = "hs-app", secret = hsSecret } = {}) =>
      new jose.SignJWT({ ...(iss ? { iss } : {}), exp: now() + 600, ...claims })
        .setProtectedHeader({ alg })
        .sign(secret);
    const basic = (userPass) => `Basic ${b64(userPass)}`;

    before(async () => {
      origin = await startOrigin();
      const route = (name, service = "origin") => ({ name, service, paths: [`/${name}`], strip_path: false });
      const names = [
        "kong-key", "kong-jwt", "kong-basic", "kong-acl", "key", "basic", "groups", "acl-allow", "acl-deny",
        "acl-anon", "acl-anon-nogroups", "acl-consumer", "anon-ghost", "key-body", "jwt", "jwt-claim", "jwt-places", "jwt-max",
      ];
      const config = {
        format_version: 1,
        services: [{ name: "origin", url: origin.url }, { name: "guarded", url: origin.url }],
        routes: [...names.map((n) => route(n)), route("acl-route", "guarded"), route("acl-service", "guarded")],
        plugins: [
          // Kong's Admin API shows unset settings as null; these are key-auth, jwt, basic-auth and acl as
          // Kong 3 returns them with their defaults.
          {
            name: "key-auth", route: "kong-key",
            config: {
              key_names: ["apikey"], hide_credentials: false, anonymous: null, key_in_header: true, key_in_query: true,
              key_in_body: false, run_on_preflight: true, realm: null,
            },
          },
          {
            name: "jwt", route: "kong-jwt",
            config: {
              uri_param_names: ["jwt"], cookie_names: [], key_claim_name: "iss", secret_is_base64: false,
              claims_to_verify: null, anonymous: null, run_on_preflight: true, maximum_expiration: 0,
              header_names: ["authorization"], realm: null,
            },
          },
          { name: "basic-auth", route: "kong-basic", config: { anonymous: null, hide_credentials: false, realm: "service" } },
          { name: "key-auth", route: "kong-acl" },
          {
            name: "acl", route: "kong-acl",
            config: { allow: ["dev"], deny: null, hide_groups_header: false, always_use_authenticated_groups: false },
          },
          { name: "key-auth", route: "key" },
          { name: "basic-auth", route: "basic", config: { hide_credentials: true } },
          { name: "key-auth", route: "groups" },
          { name: "key-auth", route: "acl-allow" },
          { name: "acl", route: "acl-allow", config: { allow: ["ops"] } },
          { name: "key-auth", route: "acl-deny" },
          { name: "acl", route: "acl-deny", config: { deny: ["ops"] } },
          { name: "key-auth", route: "acl-anon", config: { anonymous: "visitor" } },
          { name: "acl", route: "acl-anon", config: { allow: ["guest"] } },
          // An acl scoped to a consumer applies to that consumer (Kong refuses `consumer` on an acl).
          { name: "key-auth", route: "acl-consumer" },
          { name: "acl", route: "acl-consumer", config: { allow: ["ops"] } },
          { name: "acl", route: "acl-consumer", consumer: "bob", config: { deny: ["banned"] } },
          // Ignored: an auth plugin scoped to a consumer.
          { name: "basic-auth", route: "acl-consumer", consumer: "bob" },
          { name: "key-auth", route: "acl-anon-nogroups", config: { anonymous: "c-nogroups" } },
          { name: "key-auth", route: "anon-ghost", config: { anonymous: "ghost" } },
          { name: "key-auth", route: "key-body", config: { key_in_body: true } },
          { name: "basic-auth", route: "acl-anon-nogroups" },
          { name: "acl", route: "acl-anon-nogroups", config: { allow: ["guest"] } },
          // The service's acl, and a route of the service with its own (the most specific applies).
          { name: "key-auth", service: "guarded" },
          { name: "acl", service: "guarded", config: { deny: ["dev"] } },
          { name: "acl", route: "acl-route", config: { allow: ["dev"] } },
          { name: "jwt", route: "jwt" },
          { name: "jwt", route: "jwt-claim", config: { key_claim_name: "client_id" } },
          {
            name: "jwt", route: "jwt-places",
            config: { header_names: ["x-token"], uri_param_names: ["token"], cookie_names: ["first", "second"], hide_credentials: true },
          },
          { name: "jwt", route: "jwt-max", config: { maximum_expiration: 600, leeway_seconds: 0 } },
        ],
      };
      gw = await startGateway({ reload, bindings: { AUTH_CACHE_SECONDS: "1" }, config });
      const put = (k, v) => gw.kv.put(k, JSON.stringify(v));
      await put("consumers/c-alice", { id: "c-alice", username: "alice", custom_id: "ext-1", groups: ["dev", "ops"] });
      await put("consumer-names/alice", { id: "c-alice" });
      await put("consumers/c-bob", { id: "c-bob", username: "bob", groups: [] });
      await put("consumer-names/bob", { id: "c-bob" });
      await put("consumers/c-visitor", { id: "c-visitor", username: "visitor", groups: ["guest"] });
      await put("consumer-names/visitor", { id: "c-visitor" });
      await put("consumers/c-nogroups", { id: "c-nogroups", username: "nogroups", groups: [] });
      await put("consumer-names/nogroups", { id: "c-nogroups" });
      for (const [key, consumer] of [[aliceKey, "c-alice"], [bobKey, "c-bob"]]) {
        await put(`credentials/key-auth/${sha256hex(key)}`, { id: sha256hex(key).slice(0, 16), consumer_id: consumer });
      }
      const hashOf = (password) => {
        const salt = crypto.randomBytes(16);
        const hash = crypto.pbkdf2Sync(Buffer.from(password, "utf8"), salt, 10000, 32, "sha256");
        return `$pbkdf2-sha256$i=10000$${unpad(salt)}$${unpad(hash)}`;
      };
      await put("credentials/basic-auth/alice-login", {
        id: "basic-alice", consumer_id: "c-alice", username: "alice-login", password_hash: hashOf("pa:ss word"),
      });
      await put("credentials/basic-auth/bob", { id: "basic-bob", consumer_id: "c-bob", username: "bob", password_hash: hashOf("bobpw") });
      const hsCred = { consumer_id: "c-alice", algorithms: ["HS256"], secret: hsSecret.toString("base64") };
      await put("credentials/jwt/hs-app", { id: "jwt-hs", key: "hs-app", ...hsCred });
      await put("credentials/jwt/client-7", { id: "jwt-client", key: "client-7", ...hsCred });
      // Warm-up: the first request reads the configuration (whatever the reload interval).
      const warm = await get("/key", { apikey: aliceKey });
      assert.equal(warm.status, 200, warm.text);
    });
    after(async () => {
      await gw?.dispose();
      await origin?.close();
    });

    // -------------------------------------------------------------------------------------------------
    // Kong configurations load as they are

    test("Kong's key-auth as its Admin API shows it (realm and anonymous null) loads with the defaults", async () => {
      const ok = await get("/kong-key", { apikey: aliceKey });
      assert.equal(ok.status, 200, ok.text);
      assert.equal(echo(ok).headers["x-consumer-username"], "alice");
      const res = await get("/kong-key");
      assertProblem(res, 401, "missing_credentials");
      assert.equal(res.headers["www-authenticate"], KEY_CHALLENGE);
    });

    test("Kong's jwt with claims_to_verify null: the default [\"exp\"] applies, realm null is edgegate", async () => {
      assert.equal((await get("/kong-jwt", { authorization: `Bearer ${await hs()}` })).status, 200);
      const noExp = await new jose.SignJWT({ iss: "hs-app" }).setProtectedHeader({ alg: "HS256" }).sign(hsSecret);
      const res = await get("/kong-jwt", { authorization: `Bearer ${noExp}` });
      assert.match(assertProblem(res, 401, "invalid_credentials").detail, /`exp`/);
      assert.equal(res.headers["www-authenticate"], BEARER_INVALID);
    });

    test("Kong's basic-auth default realm \"service\" is the challenge's realm", async () => {
      const res = await get("/kong-basic");
      assertProblem(res, 401, "missing_credentials");
      assert.equal(res.headers["www-authenticate"], 'Basic realm="service", charset="UTF-8"');
      assert.equal((await get("/kong-basic", { authorization: basic("bob:bobpw") })).status, 200);
    });

    test("Kong's acl with deny null and always_use_authenticated_groups loads: allow applies", async () => {
      assert.equal((await get("/kong-acl", { apikey: aliceKey })).status, 200);
      assertProblem(await get("/kong-acl", { apikey: bobKey }), 403, "forbidden");
    });

    // -------------------------------------------------------------------------------------------------
    // basic-auth: Authorization and Proxy-Authorization

    test("basic-auth: Proxy-Authorization alone admits (as Kong), and neither header reaches the origin", async () => {
      const res = await get("/basic", { "proxy-authorization": basic("alice-login:pa:ss word") });
      assert.equal(res.status, 200, res.text);
      const h = echo(res).headers;
      assert.equal(h["x-consumer-username"], "alice");
      assert.equal(h["x-credential-identifier"], "basic-alice");
      assert.equal(h["proxy-authorization"], undefined);
      assert.equal(h.authorization, undefined);
    });

    test("basic-auth: Proxy-Authorization is read first; an unknown login there falls back to Authorization", async () => {
      const both = await get("/basic", { "proxy-authorization": basic("bob:bobpw"), authorization: basic("alice-login:pa:ss word") });
      assert.equal(both.status, 200, both.text);
      assert.equal(echo(both).headers["x-consumer-username"], "bob");
      const fallback = await get("/basic", { "proxy-authorization": basic("nobody:x"), authorization: basic("alice-login:pa:ss word") });
      assert.equal(fallback.status, 200, fallback.text);
      assert.equal(echo(fallback).headers["x-consumer-username"], "alice");
      // A known login with a wrong password in Proxy-Authorization is checked, and refused.
      const wrong = await get("/basic", { "proxy-authorization": basic("bob:nope"), authorization: basic("alice-login:pa:ss word") });
      assertProblem(wrong, 401, "invalid_credentials");
      assert.equal(wrong.headers["www-authenticate"], BASIC);
      for (const value of [basic("nobody:x"), "Basic %%%", basic("no-colon")]) {
        assertProblem(await get("/basic", { "proxy-authorization": value }), 401, "invalid_credentials", value);
      }
    });

    test("basic-auth: spaces after the scheme, colons in the password; an empty password or user is refused", async () => {
      assert.equal((await get("/basic", { authorization: `Basic    ${b64("alice-login:pa:ss word")}` })).status, 200);
      assert.equal((await get("/basic", { authorization: `bAsIc ${b64("bob:bobpw")}` })).status, 200);
      assertProblem(await get("/basic", { authorization: basic("bob:") }), 401, "invalid_credentials");
      assertProblem(await get("/basic", { authorization: basic(":bobpw") }), 401, "invalid_credentials");
      // Another scheme is no Basic credential at all.
      const other = await get("/basic", { authorization: "Digest username=bob" });
      assertProblem(other, 401, "missing_credentials");
      assert.equal(other.headers["www-authenticate"], BASIC);
    });

    // -------------------------------------------------------------------------------------------------
    // key-auth

    test("key-auth: an empty key is no key (missing_credentials); a repeated header is refused", async () => {
      assertProblem(await get("/key", { apikey: "" }), 401, "missing_credentials");
      assertProblem(await get("/key?apikey="), 401, "missing_credentials");
      assertProblem(await get("/key", { authorization: "Bearer " }), 401, "missing_credentials");
      // Kong: 401 "Duplicate API key found".
      assertProblem(await get("/key", { apikey: [aliceKey, aliceKey] }), 401, "invalid_credentials");
    });

    test("key-auth: a query parameter repeated with different values is refused; the same value repeated is the key", async () => {
      const res = await get(`/key?apikey=${aliceKey}&apikey=${bobKey}`);
      assertProblem(res, 401, "invalid_credentials");
      assert.equal(res.headers["www-authenticate"], KEY_CHALLENGE);
      assertProblem(await get(`/key?apikey=${aliceKey}&apikey=junk`), 401, "invalid_credentials");
      assert.equal((await get(`/key?apikey=${aliceKey}&apikey=${aliceKey}`)).status, 200);
    });

    test("key-auth: the identity headers upstream; client copies (any spelling) are replaced or removed", async () => {
      const res = await get("/key", {
        apikey: aliceKey,
        "x-anonymous-consumer": "true",
        "x-credential-identifier": "forged",
        "x-consumer-groups": "admin",
      });
      assert.equal(res.status, 200, res.text);
      const h = echo(res).headers;
      assert.equal(h["x-consumer-id"], "c-alice");
      assert.equal(h["x-consumer-username"], "alice");
      assert.equal(h["x-consumer-custom-id"], "ext-1");
      assert.equal(h["x-credential-identifier"], sha256hex(aliceKey).slice(0, 16));
      assert.equal(h["x-consumer-groups"], "dev, ops");
      assert.equal(h["x-anonymous-consumer"], undefined);
      // A consumer without groups or custom_id: neither header, whatever the client sent.
      const bob = echo(await get("/key", { apikey: bobKey, "x-consumer-groups": "admin", "x-consumer-custom-id": "x" })).headers;
      assert.equal(bob["x-consumer-groups"], undefined);
      assert.equal(bob["x-consumer-custom-id"], undefined);
    });

    test("key-auth: an anonymous consumer that does not exist is 500 internal_error (as Kong); a valid key still admits", async () => {
      const res = await get("/anon-ghost");
      assertProblem(res, 500, "internal_error");
      assert.equal((await get("/anon-ghost", { apikey: aliceKey })).status, 200);
    });

    test("key-auth key_in_body: a multipart/form-data field is not looked at", async () => {
      const boundary = "b0undary";
      const body = `--${boundary}\r\nContent-Disposition: form-data; name="apikey"\r\n\r\n${aliceKey}\r\n--${boundary}--\r\n`;
      const headers = { "content-type": `multipart/form-data; boundary=${boundary}`, "content-length": String(Buffer.byteLength(body)) };
      assertProblem(await get("/key-body", headers, { method: "POST", body: Buffer.from(body) }), 401, "missing_credentials");
      const form = `apikey=${aliceKey}`;
      const ok = await get("/key-body", { "content-type": "application/x-www-form-urlencoded", "content-length": String(form.length) }, { method: "POST", body: Buffer.from(form) });
      assert.equal(ok.status, 200, ok.text);
    });

    // -------------------------------------------------------------------------------------------------
    // acl

    test("acl: a consumer without groups is refused by allow and let through by deny", async () => {
      const res = await get("/acl-allow", { apikey: bobKey });
      assertProblem(res, 403, "forbidden");
      assert.equal(res.headers["www-authenticate"], undefined);
      assert.equal((await get("/acl-allow", { apikey: aliceKey })).status, 200);
      assert.equal((await get("/acl-deny", { apikey: bobKey })).status, 200);
      assertProblem(await get("/acl-deny", { apikey: aliceKey }), 403, "forbidden");
      // No consumer at all: the auth plugin's 401 comes first.
      assertProblem(await get("/acl-allow"), 401, "missing_credentials");
    });

    test("acl: a route's acl beats its service's", async () => {
      assert.equal((await get("/acl-route", { apikey: aliceKey })).status, 200);
      assertProblem(await get("/acl-route", { apikey: bobKey }), 403, "forbidden");
      assertProblem(await get("/acl-service", { apikey: aliceKey }), 403, "forbidden");
      assert.equal((await get("/acl-service", { apikey: bobKey })).status, 200);
    });

    test("acl: an instance scoped to a consumer applies to that consumer; an auth plugin so scoped is ignored", async () => {
      const bob = await get("/acl-consumer", { apikey: bobKey });
      assert.equal(bob.status, 200, bob.text);
      assert.equal(echo(bob).headers["x-consumer-username"], "bob");
      assert.equal((await get("/acl-consumer", { apikey: aliceKey })).status, 200);
      const none = await get("/acl-consumer", { authorization: basic("bob:bobpw") });
      assertProblem(none, 401, "missing_credentials");
      assert.equal(none.headers["www-authenticate"], KEY_CHALLENGE);
    });

    test("acl: the anonymous consumer's groups are the ones checked", async () => {
      const res = await get("/acl-anon");
      assert.equal(res.status, 200, res.text);
      const h = echo(res).headers;
      assert.equal(h["x-anonymous-consumer"], "true");
      assert.equal(h["x-consumer-username"], "visitor");
      assert.equal(h["x-consumer-groups"], "guest");
      assertProblem(await get("/acl-anon", { apikey: aliceKey }), 403, "forbidden");
      // A wrong key is still a 401, not the anonymous consumer.
      assertProblem(await get("/acl-anon", { apikey: newKey() }), 401, "invalid_credentials");
    });

    test("acl: the anonymous consumer without groups on an allow list is asked to authenticate (401, as Kong)", async () => {
      const res = await get("/acl-anon-nogroups");
      assertProblem(res, 401, "missing_credentials");
      assert.equal(res.headers["www-authenticate"], `${KEY_CHALLENGE}, ${BASIC}`);
      // A consumer with a credential outside the list: 403.
      assertProblem(await get("/acl-anon-nogroups", { apikey: bobKey }), 403, "forbidden");
    });

    // -------------------------------------------------------------------------------------------------
    // Errors

    test("errors: problem+json with type, code and status; WWW-Authenticate on 401s only; no-store", async () => {
      const r401 = await get("/key", { apikey: newKey() });
      assertProblem(r401, 401, "invalid_credentials");
      assert.equal(r401.headers["www-authenticate"], KEY_CHALLENGE);
      assert.equal(r401.headers["cache-control"], "no-store");
      assert.ok(!r401.text.includes(aliceKey));
      const r403 = await get("/acl-allow", { apikey: bobKey });
      assertProblem(r403, 403, "forbidden");
      assert.equal(r403.headers["cache-control"], "no-store");
      const expired = await get("/jwt", { authorization: `Bearer ${await hs({ exp: now() - 120 })}` });
      assertProblem(expired, 401, "token_expired");
      assert.equal(expired.headers["www-authenticate"], BEARER_INVALID);
      const early = await get("/jwt", { authorization: `Bearer ${await hs({ nbf: now() + 120 })}` });
      assertProblem(early, 401, "token_not_yet_valid");
      assert.equal(early.headers["www-authenticate"], BEARER_INVALID);
      const none = await get("/jwt");
      assertProblem(none, 401, "missing_credentials");
      assert.equal(none.headers["www-authenticate"], BEARER);
    });

    // -------------------------------------------------------------------------------------------------
    // jwt

    test("jwt: an algorithm the credential does not allow, and malformed tokens, are invalid_token", async () => {
      const tokens = {
        "HS384 for an HS256 credential": await hs({}, { alg: "HS384" }),
        "wrong secret": await hs({}, { secret: crypto.randomBytes(32) }),
        "four parts": (await hs()) + ".x",
        "one part": "abc",
        "payload not base64url": `${Buffer.from('{"alg":"HS256"}').toString("base64url")}.!!!.sig`,
        "header not JSON": `${Buffer.from("nope").toString("base64url")}.${Buffer.from('{"iss":"hs-app"}').toString("base64url")}.sig`,
        "alg none": `${Buffer.from('{"alg":"none"}').toString("base64url")}.${Buffer.from(JSON.stringify({ iss: "hs-app", exp: now() + 60 })).toString("base64url")}.`,
      };
      for (const [what, token] of Object.entries(tokens)) {
        const res = await get("/jwt", { authorization: `Bearer ${token}` });
        assertProblem(res, 401, "invalid_credentials", what);
        assert.equal(res.headers["www-authenticate"], BEARER_INVALID, what);
      }
    });

    test("jwt: a key claim that is not a string, or absent from payload and header, is 401 invalid_credentials", async () => {
      for (const iss of [123, ["hs-app"], { v: "hs-app" }, null]) {
        const token = await hs({ iss }, { iss: null });
        const res = await get("/jwt", { authorization: `Bearer ${token}` });
        assertProblem(res, 401, "invalid_credentials", JSON.stringify(iss));
        assert.equal(res.headers["www-authenticate"], BEARER_INVALID);
      }
      const noIss = await hs({}, { iss: null });
      assertProblem(await get("/jwt", { authorization: `Bearer ${noIss}` }), 401, "invalid_credentials");
    });

    test("jwt key_claim_name: the named claim selects the credential, iss is then just a claim", async () => {
      const token = await hs({ client_id: "client-7" }, { iss: "someone-else" });
      const res = await get("/jwt-claim", { authorization: `Bearer ${token}` });
      assert.equal(res.status, 200, res.text);
      assert.equal(echo(res).headers["x-credential-identifier"], "jwt-client");
      assertProblem(await get("/jwt-claim", { authorization: `Bearer ${await hs()}` }), 401, "invalid_credentials");
    });

    test("jwt: custom header, query parameter and cookies; hide_credentials removes the one used", async () => {
      const token = await hs();
      const viaHeader = await get("/jwt-places", { "x-token": `Bearer ${token}` });
      assert.equal(viaHeader.status, 200, viaHeader.text);
      assert.equal(echo(viaHeader).headers["x-token"], undefined);
      const viaQuery = await get(`/jwt-places?token=${token}&a=1`);
      assert.equal(viaQuery.status, 200, viaQuery.text);
      assert.equal(echo(viaQuery).url, "/jwt-places?a=1");
      const viaCookie = await get("/jwt-places", { cookie: `other=1; second=${token}` });
      assert.equal(viaCookie.status, 200, viaCookie.text);
      assert.equal(echo(viaCookie).headers.cookie, "other=1");
      // Authorization is not among this route's header_names.
      assertProblem(await get("/jwt-places", { authorization: `Bearer ${token}` }), 401, "missing_credentials");
    });

    test("jwt maximum_expiration: exp up to that many seconds ahead passes, beyond is refused", async () => {
      assert.equal((await get("/jwt-max", { authorization: `Bearer ${await hs({ exp: now() + 590 })}` })).status, 200);
      const far = await get("/jwt-max", { authorization: `Bearer ${await hs({ exp: now() + 700 })}` });
      assertProblem(far, 401, "invalid_credentials");
      assert.equal(far.headers["www-authenticate"], BEARER_INVALID);
    });
  });
}
