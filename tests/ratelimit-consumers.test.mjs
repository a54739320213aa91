// Rate limits by consumer and credential, with key-auth establishing the consumer (KV layout of
// docs/authentication.md): a consumer limit follows the consumer across its credentials, a credential limit
// does not, and an instance scoped to a consumer applies to that consumer only.
import { describe, test, before, after } from "node:test";
import assert from "node:assert/strict";
import crypto from "node:crypto";
import { startGateway, startOrigin, request } from "./support/harness.mjs";
import { DO_OPTIONS, configure } from "./ratelimit-helpers.mjs";

const sha256hex = (s) => crypto.createHash("sha256").update(s).digest("hex");
const newKey = () => "eg_" + crypto.randomBytes(24).toString("base64url");

describe("rate limits by consumer and credential", () => {
  let gw, origin;
  const keys = { alice1: newKey(), alice2: newKey(), bob: newKey() };

  before(async () => {
    origin = await startOrigin();
    gw = await startGateway({ miniflare: DO_OPTIONS });
    const put = (k, v) => gw.kv.put(k, JSON.stringify(v));
    for (const [who, id] of [["alice", "c-alice"], ["bob", "c-bob"]]) {
      await put(`consumers/${id}`, { id, username: who, groups: [] });
      await put(`consumer-names/${who}`, { id });
    }
    for (const [name, consumer] of [["alice1", "c-alice"], ["alice2", "c-alice"], ["bob", "c-bob"]]) {
      await put(`credentials/key-auth/${sha256hex(keys[name])}`, { id: `cred-${name}`, consumer_id: consumer });
    }
    await configure(gw, {
      format_version: 1,
      services: [{ name: "origin", url: origin.url }],
      routes: [
        { name: "consumer", service: "origin", paths: ["/consumer"] },
        { name: "credential", service: "origin", paths: ["/credential"] },
        { name: "scoped", service: "origin", paths: ["/scoped"] },
      ],
      plugins: [
        { name: "key-auth" },
        { name: "rate-limiting", route: "consumer", config: { hour: 3, limit_by: "consumer" } },
        { name: "rate-limiting", route: "credential", config: { hour: 2, limit_by: "credential" } },
        { name: "rate-limiting", route: "scoped", consumer: "bob", config: { hour: 1, limit_by: "consumer" } },
      ],
    });
  });

  after(async () => {
    await gw?.dispose();
    await origin?.close();
  });

  const as = (key, path, ip = "192.0.2.1") =>
    request(gw.at(path), { headers: { apikey: keys[key], "cf-connecting-ip": ip } });

  test("a consumer limit follows the consumer across credentials and addresses", async () => {
    const got = [];
    for (const [key, ip] of [
      ["alice1", "192.0.2.1"],
      ["alice2", "192.0.2.2"],
      ["alice1", "192.0.2.3"],
      ["alice2", "192.0.2.4"],
    ]) {
      const r = await as(key, "/consumer", ip);
      got.push([r.status, r.headers["ratelimit-remaining"]]);
    }
    assert.deepEqual(got, [
      [200, "2"],
      [200, "1"],
      [200, "0"],
      [429, "0"],
    ]);
    assert.equal((await as("bob", "/consumer")).status, 200, "bob has his own counter");
  });

  test("a credential limit counts each credential apart", async () => {
    const got = [];
    for (const key of ["alice1", "alice1", "alice1", "alice2", "alice2", "alice2"]) {
      got.push((await as(key, "/credential")).status);
    }
    assert.deepEqual(got, [200, 200, 429, 200, 200, 429]);
  });

  test("an instance scoped to a consumer applies to that consumer only", async () => {
    const bob = [(await as("bob", "/scoped")).status, (await as("bob", "/scoped")).status];
    assert.deepEqual(bob, [200, 429]);
    const alice = [];
    for (let i = 0; i < 3; i++) {
      const r = await as("alice1", "/scoped");
      alice.push(r.status);
      assert.equal(r.headers["ratelimit-limit"], undefined);
    }
    assert.deepEqual(alice, [200, 200, 200]);
  });
});
