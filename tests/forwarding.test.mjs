// What the gateway says about itself upstream (docs/proxying.md, "Request headers sent upstream"):
// `Via`, the forwarding headers Kong sends (`X-Forwarded-Host` without the port, `X-Forwarded-Port`,
// `X-Forwarded-Prefix`), and that a client cannot pass off its own header as one the gateway sets by
// spelling it with underscores (`x_consumer_username`), on a plain route and on a key-auth route.
import { describe, test, before, after } from "node:test";
import assert from "node:assert/strict";
import crypto from "node:crypto";
import { startGateway, startOrigin, request } from "./support/harness.mjs";

const sha256hex = (s) => crypto.createHash("sha256").update(s).digest("hex");

/** The underscore spellings of the identity headers, as issue 11 sent them. */
const FORGED_IDENTITY = {
  x_consumer_username: "root",
  x_consumer_groups: "admin",
  x_consumer_id: "c-root",
  x_anonymous_consumer: "false",
  x_consumer_custom_id: "ext-root",
  x_credential_identifier: "forged",
};

/** The other headers the gateway sets, spelt with underscores (or a mix). */
const FORGED_OTHERS = {
  x_forwarded_for: "10.0.0.1",
  x_forwarded_host: "admin.internal",
  x_forwarded_proto: "https",
  x_forwarded_port: "443",
  x_forwarded_prefix: "/admin",
  x_request_id: "forged-id",
  "x-consumer_id": "mixed",
  "x_consumer-username": "mixed",
  x_api_version: "9", // the service sets x-api-version
};

describe("forwarding headers", () => {
  let gw;
  let origin;
  const apiKey = "eg_" + crypto.randomBytes(32).toString("base64url");

  before(async () => {
    origin = await startOrigin();
    gw = await startGateway({
      config: {
        format_version: 1,
        services: [{ name: "origin", url: `${origin.url}/base`, headers: { "x-api-version": "2" } }],
        routes: [
          { name: "plain", service: "origin", paths: ["/plain"] },
          { name: "keep", service: "origin", paths: ["/keep"], strip_path: false },
          { name: "rewritten", service: "origin", paths: ["/rw/{id}"], rewrite: "/items/{id}" },
          { name: "versioned", service: "origin", paths: ["~^/v[0-9]+"] },
          { name: "exact", service: "origin", paths: ["=/health"] },
          { name: "key", service: "origin", paths: ["/key"] },
        ],
        plugins: [{ name: "key-auth", route: "key" }],
      },
    });
    const put = (key, value) => gw.kv.put(key, JSON.stringify(value));
    await put("consumers/c-alice", { id: "c-alice", username: "alice", groups: ["dev"] });
    await put("consumer-names/alice", { id: "c-alice" });
    await put(`credentials/key-auth/${sha256hex(apiKey)}`, { id: "cred-alice", consumer_id: "c-alice" });
  });
  after(async () => {
    await gw?.dispose();
    await origin?.close();
  });

  /** GET through the gateway; returns the headers the origin received (raw names kept in `raw`). */
  async function upstream(path, headers = {}) {
    const before = origin.hits;
    const res = await request(gw.at(path), { headers: { "accept-encoding": "identity", ...headers } });
    assert.equal(res.status, 200, `${path}: ${res.text}`);
    assert.equal(origin.hits, before + 1, "origin hit once");
    const rec = origin.last;
    const raw = [];
    for (let i = 0; i < rec.rawHeaders.length; i += 2) raw.push(rec.rawHeaders[i]);
    return { h: rec.headers, raw, url: rec.url };
  }

  /** No header name the origin got reads, with `-` for `_`, as one of `names`. */
  function assertNoSpelling(raw, names) {
    const dashed = new Set(Object.keys(names).map((n) => n.toLowerCase().replaceAll("_", "-")));
    for (const name of raw) {
      if (!name.includes("_")) continue;
      assert.ok(!dashed.has(name.toLowerCase().replaceAll("_", "-")), `${name} must not reach the origin`);
    }
  }

  test("Via: 1.1 edgegate, appended to the client's Via", async () => {
    let { h } = await upstream("/plain/x");
    assert.equal(h.via, "1.1 edgegate");
    ({ h } = await upstream("/plain/x", { via: "1.0 fred" }));
    assert.equal(h.via, "1.0 fred, 1.1 edgegate");
    ({ h } = await upstream("/plain/x", { via: "1.0 fred, 1.1 p.example.net" }));
    assert.equal(h.via, "1.0 fred, 1.1 p.example.net, 1.1 edgegate");
  });

  test("X-Forwarded-Host is the client's host without the port; X-Forwarded-Port the client-facing port", async () => {
    let { h } = await upstream("/plain/x");
    assert.equal(h["x-forwarded-host"], "127.0.0.1");
    assert.equal(h["x-forwarded-port"], String(gw.url.port));
    ({ h } = await upstream("/plain/x", { host: "API.example.com:8443" }));
    assert.equal(h["x-forwarded-host"], "api.example.com");
    assert.equal(h["x-forwarded-port"], "8443");
    ({ h } = await upstream("/plain/x", { host: "api.example.com" }));
    assert.equal(h["x-forwarded-host"], "api.example.com");
    assert.equal(h["x-forwarded-port"], "80", "no port in the URL: the scheme's default");
    assert.equal(h["x-forwarded-proto"], "http");
  });

  test("client-sent X-Forwarded-Host, -Port and -Proto are replaced", async () => {
    const { h } = await upstream("/plain/x", {
      "x-forwarded-host": "evil.example",
      "x-forwarded-port": "1",
      "x-forwarded-proto": "gopher",
    });
    assert.equal(h["x-forwarded-host"], "127.0.0.1");
    assert.equal(h["x-forwarded-port"], String(gw.url.port));
    assert.equal(h["x-forwarded-proto"], "http");
  });

  test("X-Forwarded-Prefix is the prefix strip_path removed, and only then", async () => {
    let up = await upstream("/plain/a/b");
    assert.equal(up.url, "/base/a/b");
    assert.equal(up.h["x-forwarded-prefix"], "/plain");
    up = await upstream("/plain");
    assert.equal(up.h["x-forwarded-prefix"], "/plain");
    up = await upstream("/v2/items");
    assert.equal(up.url, "/base/items");
    assert.equal(up.h["x-forwarded-prefix"], "/v2");
    up = await upstream("/health");
    assert.equal(up.h["x-forwarded-prefix"], "/health");
    // Nothing stripped: no header, and a client's own is not passed on.
    up = await upstream("/keep/x", { "x-forwarded-prefix": "/forged" });
    assert.equal(up.url, "/base/keep/x");
    assert.equal(up.h["x-forwarded-prefix"], undefined);
    up = await upstream("/rw/7", { "x-forwarded-prefix": "/forged" });
    assert.equal(up.url, "/base/items/7");
    assert.equal(up.h["x-forwarded-prefix"], undefined, "a rewrite strips nothing");
    up = await upstream("/plain/x", { "x-forwarded-prefix": "/forged" });
    assert.equal(up.h["x-forwarded-prefix"], "/plain");
  });

  test("underscore spellings of identity and forwarding headers never reach the origin (plain route)", async () => {
    const { h, raw } = await upstream("/plain/x", { ...FORGED_IDENTITY, ...FORGED_OTHERS, x_custom_thing: "keep" });
    assertNoSpelling(raw, { ...FORGED_IDENTITY, ...FORGED_OTHERS });
    for (const name of Object.keys({ ...FORGED_IDENTITY, ...FORGED_OTHERS })) {
      assert.equal(h[name], undefined, `${name} must not reach the origin`);
    }
    assert.equal(h["x-consumer-username"], undefined, "no identity on a plain route");
    assert.equal(h["x-api-version"], "2", "the service's header is the only one");
    assert.equal(h["x_custom_thing"], "keep", "a legitimate underscore header passes");
    assert.ok(raw.includes("x_custom_thing"), `x_custom_thing among ${raw}`);
  });

  test("mixed-case underscore spellings are removed too", async () => {
    const mixed = {
      X_Consumer_Username: "root",
      X_CONSUMER_GROUPS: "admin",
      X_Consumer_ID: "c-root",
      X_Anonymous_Consumer: "true",
      X_Forwarded_Host: "evil.example",
    };
    const { h, raw } = await upstream("/plain/x", { ...mixed, X_Custom_Thing: "keep" });
    assertNoSpelling(raw, mixed);
    assert.equal(h["x_custom_thing"], "keep");
  });

  test("on a key-auth route the gateway's identity headers arrive, the underscore forgeries do not", async () => {
    const { h, raw } = await upstream("/key/x", {
      "x-api-key": apiKey,
      ...FORGED_IDENTITY,
      X_Consumer_Username: "root",
      x_custom_thing: "keep",
    });
    assert.equal(h["x-consumer-username"], "alice");
    assert.equal(h["x-consumer-id"], "c-alice");
    assert.equal(h["x-consumer-groups"], "dev");
    assert.equal(h["x-credential-identifier"], "cred-alice");
    assertNoSpelling(raw, FORGED_IDENTITY);
    for (const name of Object.keys(FORGED_IDENTITY)) {
      assert.equal(h[name], undefined, `${name} must not reach the origin`);
    }
    assert.equal(h["x_custom_thing"], "keep");
  });

  test("legitimate underscore headers pass unchanged", async () => {
    const { h } = await upstream("/plain/x", { x_custom_thing: "a", my_header: "b", x_consumer: "c" });
    assert.equal(h["x_custom_thing"], "a");
    assert.equal(h["my_header"], "b");
    assert.equal(h["x_consumer"], "c");
  });
});
