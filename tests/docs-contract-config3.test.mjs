// docs/configuration.md, third audit, from outside: "the last good version keeps serving" on a new isolate,
// on both request paths (CONFIG_RELOAD_SECONDS "0" and "600"), for kinds of bad version the earlier audits
// did not cover (not JSON, a duplicate route name, a compiled form without its JSON document), and the
// CLI's 25 MiB document limit (exactly 25 MiB accepted, one byte more refused, exit 1).
import { describe, test, before, after } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { ROOT, startGateway, startOrigin, request, waitFor } from "./support/harness.mjs";

const BIN = path.join(ROOT, "target", "release", "edgegate-config");
const events = (gw, name) => gw.logs.filter((l) => l.json?.event === name);

for (const reload of ["0", "600"]) {
  describe(`a new isolate walks past a bad version (CONFIG_RELOAD_SECONDS ${reload})`, { timeout: 120_000 }, () => {
    let origin;
    before(async () => {
      origin = await startOrigin();
    });
    after(async () => {
      await origin?.close();
    });
    const routeTo = (p) => ({
      format_version: 1,
      services: [{ name: "o", url: origin.url }],
      routes: [{ name: "r", service: "o", paths: [p] }],
    });

    /** Version 1 good, version 2 as given (`null`: no document), the pointer on 2; then the first request. */
    async function scenario(t, second, compiled) {
      const gw = await startGateway({ reload });
      t.after(() => gw.dispose());
      await gw.kv.put("config/versions/1", JSON.stringify(routeTo("/good")));
      if (second != null) await gw.kv.put("config/versions/2", second);
      if (compiled) await gw.kv.put("config/compiled/2", compiled);
      await gw.kv.put("config/current", JSON.stringify({ version: 2, latest: 2, history: [1] }));
      assert.equal((await request(gw.at("/good"))).status, 200);
      const loaded = await waitFor(() => events(gw, "config_loaded")[0], { what: "config_loaded" });
      assert.equal(loaded.json.version, 1);
      assert.equal(loaded.json.pointer_version, 2);
      assert.deepEqual(loaded.json.skipped, [2]);
      const rej = events(gw, "config_rejected");
      assert.equal(rej.length, 1);
      assert.equal(rej[0].json.version, 2);
      return { gw, error: rej[0].json.error };
    }

    test("not JSON: rejected at `$` with line and column; version 1 serves", async (t) => {
      const { error } = await scenario(t, '{"format_version": 1,\n  "services": [}');
      assert.match(error, /^\$: invalid JSON: .* at line 2 column \d+/);
    });

    test("a duplicate route name: rejected with its JSON path; version 1 serves", async (t) => {
      const doc = routeTo("/bad");
      doc.routes.push({ name: "r", service: "o", paths: ["/other"] });
      const { gw, error } = await scenario(t, JSON.stringify(doc));
      assert.match(error, /routes\[1\]\.name: duplicate route name "r" \(first used at routes\[0\]\)/);
      assert.equal((await request(gw.at("/other"))).status, 404);
    });

    test("a compiled form without its JSON document never stands in for it", async (t) => {
      const dir = fs.mkdtempSync(path.join(os.tmpdir(), "edgegate-config3-"));
      t.after(() => fs.rmSync(dir, { recursive: true, force: true }));
      const f = path.join(dir, "c.json");
      fs.writeFileSync(f, JSON.stringify(routeTo("/compiled-only")));
      const r = spawnSync(BIN, ["compile", f], { encoding: "utf8" });
      assert.equal(r.status, 0, r.stderr);
      const blob = new Uint8Array(fs.readFileSync(`${f}.compiled`)).buffer;
      const { gw, error } = await scenario(t, null, blob);
      assert.match(error, /config\/versions\/2/);
      assert.equal((await request(gw.at("/compiled-only"))).status, 404);
    });
  });
}

for (const reload of ["0", "600"]) {
  test(`a new isolate whose config/current is not a pointer: 503 no_config (CONFIG_RELOAD_SECONDS ${reload})`, async (t) => {
    const gw = await startGateway({ reload });
    t.after(() => gw.dispose());
    await gw.kv.put("config/versions/1", JSON.stringify({ format_version: 1 }));
    await gw.kv.put("config/current", "{not a pointer");
    const res = await request(gw.at("/x"));
    assert.equal(res.status, 503);
    assert.match(res.headers["content-type"], /application\/problem\+json/);
    assert.equal(JSON.parse(res.text).code, "no_config");
    await waitFor(() => events(gw, "config_pointer_unreadable")[0], { what: "config_pointer_unreadable" });
  });
}

for (const reload of ["0", "600"]) {
  test(`a deleted config/current keeps the version in service, without a log line; with none: config_missing and 503 (CONFIG_RELOAD_SECONDS ${reload})`, async (t) => {
    const origin = await startOrigin();
    t.after(() => origin.close());
    const empty = await startGateway({ reload });
    t.after(() => empty.dispose());
    const none = await request(empty.at("/x"));
    assert.equal(none.status, 503);
    assert.equal(JSON.parse(none.text).code, "no_config");
    await waitFor(() => events(empty, "config_missing")[0], { what: "config_missing" });

    const config = {
      format_version: 1,
      services: [{ name: "o", url: origin.url }],
      routes: [{ name: "r", service: "o", paths: ["/x"] }],
    };
    const gw = await startGateway({ reload, config });
    t.after(() => gw.dispose());
    assert.equal((await request(gw.at("/x"))).status, 200);
    const logged = gw.logs.length;
    await gw.kv.delete("config/current");
    for (let i = 0; i < 3; i++) assert.equal((await request(gw.at("/x"))).status, 200, `request ${i} after the delete`);
    assert.deepEqual(gw.logs.slice(logged).filter((l) => /^config_/.test(l.json?.event ?? "")), []);
  });
}

describe("edgegate-config refuses documents larger than 25 MiB", { timeout: 120_000 }, () => {
  test("exactly 25 MiB is validated; one byte more is refused with exit 1", () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "edgegate-config3-big-"));
    try {
      const body = '{"format_version": 1}';
      const limit = 25 * 1024 * 1024;
      const at = path.join(dir, "at.json");
      fs.writeFileSync(at, body + " ".repeat(limit - body.length));
      let r = spawnSync(BIN, ["validate", at], { encoding: "utf8" });
      assert.equal(r.status, 0, r.stderr);
      assert.equal(r.stdout, "ok: 0 services, 0 routes\n");
      const over = path.join(dir, "over.json");
      fs.writeFileSync(over, body + " ".repeat(limit - body.length + 1));
      r = spawnSync(BIN, ["validate", over], { encoding: "utf8" });
      assert.equal(r.status, 1);
      assert.equal(r.stdout, "");
      assert.equal(r.stderr, `error: ${over} is larger than 26214400 bytes, the most a KV value can hold\n`);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});
