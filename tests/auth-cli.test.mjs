// Key management end to end: `edgegate-config consumer add` / `key create|list|revoke` write wrangler's local KV
// state; a Miniflare gateway persisting KV to the same place admits the key, then refuses it once revoked
// (after its AUTH_CACHE_SECONDS). The key is printed once and never stored.
import { describe, test, before, after } from "node:test";
import assert from "node:assert/strict";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { ROOT, startGateway, startOrigin, request, sleep, run, configNamespaceId } from "./support/harness.mjs";

const bin = path.join(ROOT, "target", "release", "edgegate-config");

describe("key management through the CLI", { timeout: 240_000 }, () => {
  let dir, persist, gw, origin;
  const cli = async (...args) => {
    const r = await run(bin, [...args, "--local", "--persist-to", persist]);
    assert.equal(r.code, 0, `${args.join(" ")}: ${r.stderr}`);
    return r.stdout;
  };

  before(async () => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), "edgegate-auth-cli-"));
    persist = path.join(dir, "state");
    origin = await startOrigin();
    const built = await run("cargo", ["build", "-q", "--release", "-p", "edgegate-cli"]);
    assert.equal(built.code, 0, built.stderr);
    gw = await startGateway({
      kvPersist: path.join(persist, "v3", "kv"),
      kvNamespaceId: configNamespaceId(),
      bindings: { AUTH_CACHE_SECONDS: "1" },
    });
    await gw.putConfig({
      format_version: 1,
      services: [{ name: "o", url: origin.url }],
      routes: [{ name: "r", service: "o", paths: ["/api"] }],
      plugins: [{ name: "key-auth", route: "r" }],
    });
  });
  after(async () => {
    await gw?.dispose();
    await origin?.close();
    if (dir) fs.rmSync(dir, { recursive: true, force: true });
  });

  test("consumer add, key create, request, key revoke, request refused", async () => {
    assert.match(await cli("consumer", "add", "carol", "--group", "dev"), /consumer carol added/);
    assert.match(await cli("consumer", "list"), /carol\t\tdev/);
    const created = await cli("key", "create", "carol");
    const key = created.split("\n")[0].trim();
    assert.match(key, /^eg_[A-Za-z0-9_-]{43}$/);
    const id = /key ([0-9a-f]{16})/.exec(created)[1];

    let res = await request(gw.at("/api"), { headers: { apikey: key } });
    assert.equal(res.status, 200, res.text);
    assert.equal(JSON.parse(res.text).headers["x-consumer-username"], "carol");
    assert.equal(JSON.parse(res.text).headers["x-credential-identifier"], id);

    // The key is nowhere in KV: only its digest is.
    const { keys } = await gw.kv.list();
    for (const k of keys) {
      assert.ok(!k.name.includes(key));
      assert.ok(!(await gw.kv.get(k.name)).includes(key), k.name);
    }

    assert.match(await cli("key", "list", "carol"), new RegExp(`${id}\\tactive`));
    assert.match(await cli("key", "revoke", id), /revoked/);
    assert.match(await cli("key", "list", "carol"), new RegExp(`${id}\\trevoked`));
    await sleep(1200);
    res = await request(gw.at("/api"), { headers: { apikey: key } });
    assert.equal(res.status, 401);
    assert.equal(JSON.parse(res.text).code, "credentials_revoked");

    assert.match(await cli("consumer", "remove", "carol"), /removed/);
    assert.doesNotMatch(await cli("consumer", "list"), /carol/);
  });
});
