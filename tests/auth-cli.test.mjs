// Key management end to end: `edgegate-config consumer add` / `key create|list|revoke` write wrangler's local KV
// state; a Miniflare gateway persisting KV to the same place admits the key, then refuses it once revoked
// (after its AUTH_CACHE_SECONDS). The key is printed once and never stored.
import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { cliGateway, request, sleep } from "./support/harness.mjs";

describe("key management through the CLI", { timeout: 240_000 }, () => {
  const env = cliGateway("edgegate-auth-cli-", [{ name: "key-auth", route: "r" }]);
  const { cli } = env;

  test("consumer add, key create, request, key revoke, request refused", async () => {
    assert.match(await cli("consumer", "add", "carol", "--group", "dev"), /consumer carol added/);
    assert.match(await cli("consumer", "list"), /carol\t\tdev/);
    const created = await cli("key", "create", "carol");
    const key = created.split("\n")[0].trim();
    assert.match(key, /^eg_[A-Za-z0-9_-]{43}$/);
    const id = /key ([0-9a-f]{16})/.exec(created)[1];

    let res = await request(env.gw.at("/api"), { headers: { apikey: key } });
    assert.equal(res.status, 200, res.text);
    assert.equal(JSON.parse(res.text).headers["x-consumer-username"], "carol");
    assert.equal(JSON.parse(res.text).headers["x-credential-identifier"], id);

    // The key is nowhere in KV: only its digest is.
    const { keys } = await env.gw.kv.list();
    for (const k of keys) {
      assert.ok(!k.name.includes(key));
      assert.ok(!(await env.gw.kv.get(k.name)).includes(key), k.name);
    }

    assert.match(await cli("key", "list", "carol"), new RegExp(`${id}\\tactive`));
    assert.match(await cli("key", "revoke", id), /revoked/);
    assert.match(await cli("key", "list", "carol"), new RegExp(`${id}\\trevoked`));
    await sleep(1200);
    res = await request(env.gw.at("/api"), { headers: { apikey: key } });
    assert.equal(res.status, 401);
    assert.equal(JSON.parse(res.text).code, "credentials_revoked");

    assert.match(await cli("consumer", "remove", "carol"), /removed/);
    assert.doesNotMatch(await cli("consumer", "list"), /carol/);
  });
});
