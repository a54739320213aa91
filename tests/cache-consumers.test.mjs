// proxy-cache with real consumers: key-auth establishes ex.identity, and the cache key includes the consumer,
// so one consumer never receives another's cached response. Consumers and credentials are written to KV in
// the layout of crates/core/src/auth/records.rs (as tests/auth.test.mjs does).
import { describe, test, before, after } from "node:test";
import assert from "node:assert/strict";
import crypto from "node:crypto";
import { startGateway, startOrigin, request, sleep } from "./support/harness.mjs";

const sha256hex = (s) => crypto.createHash("sha256").update(s).digest("hex");
const settle = () => sleep(150);

describe("proxy-cache per consumer", () => {
  let gw, origin;
  const keys = { alice: "eg_" + crypto.randomBytes(24).toString("base64url"), bob: "eg_" + crypto.randomBytes(24).toString("base64url") };
  const xcs = (res) => res.headers["x-cache-status"];
  const as = (who, path = "/me/profile") => request(gw.at(path), { headers: { apikey: keys[who] } });
  const hits = (p) => origin.requests.filter((r) => r.url.startsWith(p)).length;

  before(async () => {
    // The origin answers with the consumer the gateway told it about.
    origin = await startOrigin(async (req, res) => {
      res.writeHead(200, { "content-type": "application/json" });
      res.end(JSON.stringify({ consumer: req.headers["x-consumer-username"] ?? null, url: req.url }));
    });
    gw = await startGateway({
      config: {
        format_version: 1,
        services: [{ name: "origin", url: origin.url }],
        routes: [
          { name: "me", service: "origin", paths: ["/me"], strip_path: false },
          { name: "shared", service: "origin", paths: ["/shared"], strip_path: false },
        ],
        plugins: [
          { name: "key-auth", route: "me" },
          { name: "proxy-cache", route: "me", config: { show_cache_key: true } },
          { name: "key-auth", route: "shared" },
          { name: "proxy-cache", route: "shared", config: { public: true } },
        ],
      },
    });
    const put = (k, v) => gw.kv.put(k, JSON.stringify(v));
    for (const [who, id] of [["alice", "c-alice"], ["bob", "c-bob"]]) {
      await put(`consumers/${id}`, { id, username: who, groups: [] });
      await put(`consumer-names/${who}`, { id });
      await put(`credentials/key-auth/${sha256hex(keys[who])}`, { id: `cred-${who}`, consumer_id: id });
    }
  });

  after(async () => {
    await gw?.dispose();
    await origin?.close();
  });

  test("two consumers are isolated", async () => {
    const a1 = await as("alice");
    const b1 = await as("bob");
    assert.equal(a1.status, 200, a1.text);
    assert.equal(xcs(a1), "Miss");
    assert.equal(xcs(b1), "Miss", "bob does not get alice's entry");
    assert.notEqual(a1.headers["x-cache-key"], b1.headers["x-cache-key"]);
    await settle();
    const a2 = await as("alice");
    const b2 = await as("bob");
    assert.equal(xcs(a2), "Hit");
    assert.equal(xcs(b2), "Hit");
    assert.equal(a2.json().consumer, "alice");
    assert.equal(b2.json().consumer, "bob");
    assert.equal(hits("/me/profile"), 2);
    // No credentials: the auth phase answers 401 before the cache is consulted.
    const anon = await request(gw.at("/me/profile"));
    assert.equal(anon.status, 401);
    assert.equal(hits("/me/profile"), 2);
  });

  test("a public route shares one entry between consumers", async () => {
    assert.equal(xcs(await as("alice", "/shared/x")), "Miss");
    await settle();
    const b = await as("bob", "/shared/x");
    assert.equal(xcs(b), "Hit");
    assert.equal(hits("/shared/x"), 1);
  });
});
