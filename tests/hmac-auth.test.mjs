// hmac-auth (docs/authentication.md, "hmac-auth"), on both request paths (CONFIG_RELOAD_SECONDS 0:
// asynchronous; 600 after a warm-up request: synchronous). Requests are signed with node:crypto the way Kong's
// spec (spec/03-plugins/19-hmac-auth/03-access_spec.lua) signs them: HMAC(secret, signing string), base64, in
// `Authorization` or `Proxy-Authorization: hmac username="..", algorithm="..", headers="..", signature=".."`.
import { describe, test, before, after } from "node:test";
import assert from "node:assert/strict";
import crypto from "node:crypto";
import { cliGateway, startGateway, startOrigin, request, problemOf, sleep, putAndWait, rejected } from "./support/harness.mjs";

const SECRET = "secret";
const digestOf = (alg) => ({ "hmac-sha1": "sha1", "hmac-sha256": "sha256", "hmac-sha384": "sha384", "hmac-sha512": "sha512" })[alg];
const sign = (alg, secret, text) => crypto.createHmac(digestOf(alg), secret).update(text).digest("base64");
const httpDate = (offsetSeconds = 0) => new Date(Date.now() + offsetSeconds * 1000).toUTCString();
const header = (username, alg, names, signature) =>
  `hmac username="${username}", algorithm="${alg}", headers="${names}", signature="${signature}"`;

/** Headers of a request signed over `date` only (Kong's simplest form). */
function signedDate({ alg = "hmac-sha1", secret = SECRET, username = "bob", date = httpDate(), name = "authorization" } = {}) {
  return { date, [name]: header(username, alg, "date", sign(alg, secret, `date: ${date}`)) };
}

const CONFIG = (originUrl) => {
  const route = (name) => ({ name, service: "origin", paths: [`/${name}`] });
  const names = ["h", "realm", "hide", "enforce", "body", "anon", "skew", "multi"];
  return {
    format_version: 1,
    services: [{ name: "origin", url: originUrl }],
    routes: names.map(route),
    plugins: [
      { name: "hmac-auth", route: "h" },
      { name: "hmac-auth", route: "realm", config: { realm: "test-realm" } },
      { name: "hmac-auth", route: "hide", config: { hide_credentials: true } },
      {
        name: "hmac-auth",
        route: "enforce",
        config: { enforce_headers: ["date", "request-line"], algorithms: ["hmac-sha256", "hmac-sha512"] },
      },
      { name: "hmac-auth", route: "body", config: { validate_request_body: true } },
      { name: "hmac-auth", route: "anon", config: { anonymous: "guest" } },
      { name: "hmac-auth", route: "skew", config: { clock_skew: 60 } },
      { name: "basic-auth", route: "multi" },
      { name: "hmac-auth", route: "multi" },
    ],
  };
};

for (const reload of ["0", "600"]) describe(`hmac-auth (CONFIG_RELOAD_SECONDS ${reload})`, { timeout: 120_000 }, () => {
  let gw, origin;
  const get = (path, headers = {}, opts = {}) => request(gw.at(path), { headers, ...opts });
  const seen = () => origin.last.headers;

  async function put(key, value) {
    await gw.kv.put(key, JSON.stringify(value));
  }

  /** A 401 problem with this code, detail part and WWW-Authenticate. */
  function unauthorized(res, code, detail, challenge = "hmac") {
    assert.equal(res.status, 401, res.text);
    const p = problemOf(res);
    assert.equal(p.code, code);
    if (detail) assert.ok(p.detail.includes(detail), `detail ${JSON.stringify(p.detail)} lacks ${JSON.stringify(detail)}`);
    assert.equal(res.headers["www-authenticate"], challenge);
  }

  before(async () => {
    origin = await startOrigin();
    gw = await startGateway({ bindings: { CONFIG_RELOAD_SECONDS: reload }, config: CONFIG(origin.url) });
    await put("consumers/c-bob", { id: "c-bob", username: "bob-consumer", groups: [] });
    await put("consumer-names/bob-consumer", { id: "c-bob" });
    await put("consumers/c-guest", { id: "c-guest", username: "guest", groups: [] });
    await put("consumer-names/guest", { id: "c-guest" });
    await put("credentials/hmac-auth/bob", { id: "hmac-bob1", consumer_id: "c-bob", username: "bob", secret: SECRET });
    await put("consumer-credentials/c-bob/hmac-auth/hmac-bob1", "credentials/hmac-auth/bob");
    // Loads the version: with 600, every later request is served on the synchronous path.
    unauthorized(await get("/h/warm"), "missing_credentials");
  });
  after(async () => {
    await gw?.dispose();
    await origin?.close();
  });

  test("a request signed over Date with each algorithm is admitted as the credential's consumer", async () => {
    for (const alg of ["hmac-sha1", "hmac-sha256", "hmac-sha384", "hmac-sha512"]) {
      const headers = signedDate({ alg });
      const res = await get("/h/request", headers);
      assert.equal(res.status, 200, `${alg}: ${res.text}`);
      const h = seen();
      assert.equal(h["x-consumer-id"], "c-bob");
      assert.equal(h["x-consumer-username"], "bob-consumer");
      assert.equal(h["x-credential-identifier"], "hmac-bob1");
      assert.equal(h["x-anonymous-consumer"], undefined);
      // Without hide_credentials the signature goes upstream as sent.
      assert.equal(h.authorization, headers.authorization);
    }
  });

  test("no Authorization or Proxy-Authorization: 401 missing_credentials with `hmac` (or its realm)", async () => {
    unauthorized(await get("/h/request", { date: httpDate() }), "missing_credentials");
    unauthorized(await get("/realm/request"), "missing_credentials", null, 'hmac realm="test-realm"');
    // Another scheme is no hmac credential either.
    unauthorized(await get("/h/request", { date: httpDate(), authorization: "Basic Ym9iOnNlY3JldA==" }), "missing_credentials");
  });

  test("request-line, @request-target and other headers in the signing string", async () => {
    const date = httpDate();
    const lines = [`date: ${date}`, "content-md5: md5", "GET /h/request?a=1&b=2 HTTP/1.1"].join("\n");
    const ok = await get("/h/request?a=1&b=2", {
      date,
      "content-md5": "md5",
      authorization: header("bob", "hmac-sha256", "date content-md5 request-line", sign("hmac-sha256", SECRET, lines)),
    });
    assert.equal(ok.status, 200, ok.text);

    const target = [`date: ${date}`, "@request-target: post /h/request?a=1"].join("\n");
    const posted = await get(
      "/h/request?a=1",
      { date, authorization: header("bob", "hmac-sha1", "date @request-target", sign("hmac-sha1", SECRET, target)) },
      { method: "POST" },
    );
    assert.equal(posted.status, 200, posted.text);

    // A header the request does not have is signed as `name:`; names keep the case they are listed in.
    const absent = [`Date: ${date}`, "x-absent:"].join("\n");
    const res = await get("/h/request", {
      date,
      authorization: header("bob", "hmac-sha1", "Date x-absent", sign("hmac-sha1", SECRET, absent)),
    });
    assert.equal(res.status, 200, res.text);

    // Signed without the query: the request line differs.
    const noQuery = [`date: ${date}`, "GET /h/request HTTP/1.1"].join("\n");
    unauthorized(
      await get("/h/request?a=1", {
        date,
        authorization: header("bob", "hmac-sha1", "date request-line", sign("hmac-sha1", SECRET, noQuery)),
      }),
      "invalid_credentials",
      "HMAC signature does not match",
    );
  });

  test("the URL as the Worker receives it: dot segments resolved, an empty query dropped; repeated headers joined", async () => {
    const date = httpDate();
    const line = (target) => [`date: ${date}`, `GET ${target} HTTP/1.1`].join("\n");
    const auth = (target) => header("bob", "hmac-sha1", "date request-line", sign("hmac-sha1", SECRET, line(target)));
    const dots = await get("/h/x/../request", { date, authorization: auth("/h/request") });
    assert.equal(dots.status, 200, dots.text);
    const empty = await get("/h/request?", { date, authorization: auth("/h/request") });
    assert.equal(empty.status, 200, empty.text);
    // Two fields of one name are signed as their values joined with ", ".
    const twice = [`date: ${date}`, "x-sig: a, b"].join("\n");
    const res = await get("/h/request", {
      date,
      "x-sig": ["a", "b"],
      authorization: header("bob", "hmac-sha1", "date x-sig", sign("hmac-sha1", SECRET, twice)),
    });
    assert.equal(res.status, 200, res.text);
  });

  test("Proxy-Authorization is read first; Authorization when Proxy-Authorization has no hmac credential", async () => {
    const viaProxy = signedDate({ name: "proxy-authorization" });
    assert.equal((await get("/h/request", { ...viaProxy, authorization: "hello" })).status, 200);
    const viaAuth = signedDate();
    const res = await get("/h/request", { ...viaAuth, "proxy-authorization": "hmac username" });
    assert.equal(res.status, 200, res.text);
    assert.equal(seen().authorization, viaAuth.authorization);
    // A wrong signature in Proxy-Authorization is the one checked, even with a good one in Authorization.
    const wrong = signedDate({ name: "proxy-authorization", secret: "other" });
    unauthorized(
      await get("/h/request", { ...viaAuth, "proxy-authorization": wrong["proxy-authorization"] }),
      "invalid_credentials",
      "HMAC signature does not match",
    );
  });

  test("Date and X-Date: one of them must be an HTTP date within clock_skew", async () => {
    const dateRequired = "a valid date or x-date header is required";
    const noDate = signedDate();
    delete noDate.date;
    unauthorized(await get("/h/request", noDate), "invalid_credentials", dateRequired);
    // X-Date alone (signed as x-date).
    const xdate = httpDate();
    const xs = sign("hmac-sha1", SECRET, `x-date: ${xdate}`);
    assert.equal((await get("/h/request", { "x-date": xdate, authorization: header("bob", "hmac-sha1", "x-date", xs) })).status, 200);
    // A malformed X-Date with a good Date passes; both malformed does not.
    const good = signedDate();
    assert.equal((await get("/h/request", { ...good, "x-date": "wrong date" })).status, 200);
    unauthorized(await get("/h/request", { ...signedDate({ date: "wrong date" }), "x-date": "wrong date" }), "invalid_credentials", dateRequired);
    // Default clock_skew 300 s: 200 s off passes, 400 s off (either way) does not.
    assert.equal((await get("/h/request", signedDate({ date: httpDate(-200) }))).status, 200);
    unauthorized(await get("/h/request", signedDate({ date: httpDate(-400) })), "invalid_credentials", dateRequired);
    unauthorized(await get("/h/request", signedDate({ date: httpDate(400) })), "invalid_credentials", dateRequired);
    // clock_skew 60: 200 s off is refused there.
    unauthorized(await get("/skew/request", signedDate({ date: httpDate(-200) })), "invalid_credentials", dateRequired);
    assert.equal((await get("/skew/request", signedDate({ date: httpDate(-20) }))).status, 200);
    // Checked before the parameters (Kong's order): a broken credential without a date gets the date message.
    unauthorized(await get("/h/request", { authorization: "hmac username=" }), "invalid_credentials", dateRequired);
  });

  test("malformed parameters, unknown users and algorithms: 401 `HMAC signature cannot be verified`", async () => {
    const date = httpDate();
    const sig = sign("hmac-sha1", SECRET, `date: ${date}`);
    for (const authorization of [
      "hmac username=,algorithm,headers,dXNlcm5hbWU6cGFzc3dvcmQ=",
      `hmac username="bob"`,
      `hmac username="", algorithm="hmac-sha1", headers="date", signature="${sig}"`,
      `hmac algorithm="hmac-sha1", headers="date", signature="${sig}"`,
      `hmac username="bob", algorithm="hmac-sha1", header="date", signature="${sig}"`,
      `hmac username="bob", algorithm="hmac-sha1", headers="date", signatures="${sig}"`,
      header("alice", "hmac-sha1", "date", sig),
      header("bob", "hmac-md5", "date", sig),
      header("bob/x", "hmac-sha1", "date", sig),
    ]) {
      unauthorized(await get("/h/request", { date, authorization }), "invalid_credentials", "HMAC signature cannot be verified");
    }
  });

  test("a wrong signature, secret or algorithm, or a signature not in base64: 401 `HMAC signature does not match`", async () => {
    const date = httpDate();
    for (const authorization of [
      header("bob", "hmac-sha1", "date", sign("hmac-sha1", "wrong", `date: ${date}`)),
      // Signed with SHA-256, announced as SHA-1.
      header("bob", "hmac-sha1", "date", sign("hmac-sha256", SECRET, `date: ${date}`)),
      header("bob", "hmac-sha1", "date", "not really a base64 encoded value!!!"),
      // Signed over another date than the one sent.
      header("bob", "hmac-sha1", "date", sign("hmac-sha1", SECRET, `date: ${httpDate(-5)}x`)),
    ]) {
      unauthorized(await get("/h/request", { date, authorization }), "invalid_credentials", "HMAC signature does not match");
    }
  });

  test("enforce_headers and algorithms", async () => {
    const date = httpDate();
    const both = [`date: ${date}`, "GET /enforce/r HTTP/1.1"].join("\n");
    assert.equal(
      (await get("/enforce/r", { date, authorization: header("bob", "hmac-sha512", "date request-line", sign("hmac-sha512", SECRET, both)) })).status,
      200,
    );
    // Only date signed: an enforced header is missing.
    unauthorized(await get("/enforce/r", signedDate({ alg: "hmac-sha256" })), "invalid_credentials", "HMAC signature cannot be verified");
    // Both signed, with an algorithm the route does not accept.
    unauthorized(
      await get("/enforce/r", { date, authorization: header("bob", "hmac-sha1", "date request-line", sign("hmac-sha1", SECRET, both)) }),
      "invalid_credentials",
      "HMAC signature cannot be verified",
    );
  });

  test("hide_credentials removes the header that carried the signature", async () => {
    const auth = signedDate();
    assert.equal((await get("/hide/r", { ...auth, "x-other": "1" })).status, 200);
    assert.equal(seen().authorization, undefined);
    assert.equal(seen()["x-other"], "1");
    assert.equal(seen()["x-consumer-id"], "c-bob");
  });

  test("validate_request_body: the Digest must be SHA-256=<base64> of the body; no Digest, no body", async () => {
    const post = (body, extra) => {
      const date = httpDate();
      const headers = { date, "content-type": "application/json", ...extra };
      const names = extra.digest !== undefined ? "date digest" : "date";
      const text = extra.digest !== undefined ? `date: ${date}\ndigest: ${extra.digest}` : `date: ${date}`;
      headers.authorization = header("bob", "hmac-sha256", names, sign("hmac-sha256", SECRET, text));
      return get("/body/r", headers, { method: "POST", body });
    };
    const body = JSON.stringify({ a: "b" });
    const digest = "SHA-256=" + crypto.createHash("sha256").update(body).digest("base64");
    const ok = await post(body, { digest });
    assert.equal(ok.status, 200, ok.text);
    // The body still reaches the origin, whole.
    assert.equal(origin.last.body.toString(), body);
    unauthorized(await post(body + " ", { digest }), "invalid_credentials", "HMAC signature does not match");
    unauthorized(await post(body, { digest: digest.replace("SHA-256", "sha-256") }), "invalid_credentials", "HMAC signature does not match");
    unauthorized(await post(body, {}), "invalid_credentials", "HMAC signature does not match");
    // No body and no Digest: admitted; no body with the empty body's digest: admitted.
    const empty = await get("/body/r", signedDate());
    assert.equal(empty.status, 200, empty.text);
    const emptyDigest = "SHA-256=" + crypto.createHash("sha256").update("").digest("base64");
    assert.equal((await post(undefined, { digest: emptyDigest })).status, 200);
    // A chunked body (no Content-Length) is read too.
    async function* chunks() {
      yield Buffer.from(body.slice(0, 3));
      yield Buffer.from(body.slice(3));
    }
    assert.equal((await post(chunks(), { digest })).status, 200);
    // Over 1 MiB: refused like a body that does not match, and never forwarded.
    const big = Buffer.alloc(1024 * 1024 + 1, 97);
    const before = origin.requests.length;
    const bigDigest = "SHA-256=" + crypto.createHash("sha256").update(big).digest("base64");
    unauthorized(await post(big, { digest: bigDigest }), "invalid_credentials", "HMAC signature does not match");
    // The same without Content-Length (chunked): found while reading.
    async function* bigChunks() {
      yield big.subarray(0, 600_000);
      yield big.subarray(600_000);
    }
    unauthorized(await post(bigChunks(), { digest: bigDigest }), "invalid_credentials", "HMAC signature does not match");
    assert.equal(origin.requests.length, before);
    // Exactly 1 MiB is read and checked.
    const max = big.subarray(0, 1024 * 1024);
    const maxDigest = "SHA-256=" + crypto.createHash("sha256").update(max).digest("base64");
    const atMax = await post(max, { digest: maxDigest });
    assert.equal(atMax.status, 200, atMax.text);
    assert.equal(origin.last.body.length, 1024 * 1024);
  });

  test("anonymous admits requests without an hmac credential, not ones with a bad one", async () => {
    const res = await get("/anon/r");
    assert.equal(res.status, 200);
    assert.equal(seen()["x-consumer-username"], "guest");
    assert.equal(seen()["x-anonymous-consumer"], "true");
    assert.equal((await get("/anon/r", signedDate())).status, 200);
    assert.equal(seen()["x-consumer-username"], "bob-consumer");
    unauthorized(await get("/anon/r", signedDate({ secret: "wrong" })), "invalid_credentials", "HMAC signature does not match");
  });

  test("a CORS preflight needs a signature too (no run_on_preflight)", async () => {
    const preflight = { origin: "https://app.example", "access-control-request-method": "POST" };
    unauthorized(await get("/h/r", preflight, { method: "OPTIONS" }), "missing_credentials");
    assert.equal((await get("/h/r", { ...preflight, ...signedDate() }, { method: "OPTIONS" })).status, 200);
  });

  test("with basic-auth on the route: either admits, and a 401 names both challenges, hmac last", async () => {
    const both = 'Basic realm="edgegate", charset="UTF-8", hmac';
    unauthorized(await get("/multi/r"), "missing_credentials", null, both);
    assert.equal((await get("/multi/r", signedDate())).status, 200);
    unauthorized(await get("/multi/r", signedDate({ secret: "wrong" })), "invalid_credentials", "HMAC signature does not match", both);
  });
});

// The CLI end to end: `hmac add` writes wrangler's local KV state, a gateway persisting KV there admits requests
// signed with the printed secret; `consumer remove` takes the credential with it.
describe("hmac-auth credentials through the CLI", { timeout: 240_000 }, () => {
  const env = cliGateway("edgegate-hmac-cli-", [{ name: "hmac-auth", route: "r" }]);
  const { cli } = env;

  test("hmac add --generate-secret prints a secret that signs requests; consumer remove ends it", async () => {
    await cli("consumer", "add", "alice");
    const out = await cli("hmac", "add", "alice", "alice-hmac", "--generate-secret");
    const secret = out.split("\n")[0].trim();
    assert.match(secret, /^[A-Za-z0-9_-]{43}$/);
    const id = /\((hmac-[0-9a-f]{12})\)/.exec(out)[1];
    assert.match(await cli("credentials", "list", "alice"), new RegExp(`hmac-auth/${id}\tactive`));
    const signed = () => signedDate({ alg: "hmac-sha256", secret, username: "alice-hmac" });
    const res = await request(env.gw.at("/api"), { headers: signed() });
    assert.equal(res.status, 200, res.text);
    assert.equal(JSON.parse(res.text).headers["x-consumer-username"], "alice");
    assert.equal(JSON.parse(res.text).headers["x-credential-identifier"], id);
    // Stored as given (the docs say so).
    const stored = JSON.parse(await env.gw.kv.get("credentials/hmac-auth/alice-hmac"));
    assert.equal(stored.secret, secret);

    assert.match(await cli("consumer", "remove", "alice"), /removed with 1 credentials/);
    assert.equal(await env.gw.kv.get("credentials/hmac-auth/alice-hmac"), null);
    await sleep(1500);
    const gone = await request(env.gw.at("/api"), { headers: signed() });
    assert.equal(gone.status, 401);
    assert.equal(problemOf(gone).code, "invalid_credentials");
  });
});

describe("hmac-auth settings are validated", { timeout: 120_000 }, () => {
  let gw, origin;
  const doc = (config) => ({
    format_version: 1,
    services: [{ name: "o", url: origin.url }],
    routes: [{ name: "r", service: "o", paths: ["/r"] }],
    plugins: [{ name: "hmac-auth", route: "r", config }],
  });
  before(async () => {
    origin = await startOrigin();
    gw = await startGateway({ reload: "0" });
    await putAndWait(gw, doc({}));
  });
  after(async () => {
    await gw?.dispose();
    await origin?.close();
  });

  test("clock_skew must be more than 0; algorithms must be Kong's and not empty; unknown settings are refused", async () => {
    assert.match(await rejected(gw, doc({ clock_skew: 0 })), /plugins\[0\]\.config\.clock_skew/);
    assert.match(await rejected(gw, doc({ algorithms: ["hmac-sha256", "hmac-md5"] })), /plugins\[0\]\.config\.algorithms\[1\]/);
    assert.match(await rejected(gw, doc({ algorithms: [] })), /plugins\[0\]\.config\.algorithms/);
    assert.match(await rejected(gw, doc({ secret: "x" })), /plugins\[0\]\.config\.secret/);
  });
});
