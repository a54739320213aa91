// The `edgegate-config` lock with --local (docs/configuration.md "Concurrent pushes", docs/caching.md
// "Purging", docs/authentication.md "Managing them"): besides push and rollback, `purge` and the identity
// commands that write hold the lock file `edgegate-config.lock` in the local state directory, so that
// concurrent runs on one local state run one after the other: concurrent purges each keep their bump, and of
// concurrent `consumer add` of one username exactly one succeeds. Real (local) wrangler, as the push test.
import { describe, test, before, after } from "node:test";
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { ROOT, startGateway, run, configNamespaceId } from "./support/harness.mjs";

const BIN = path.join(ROOT, "target", "release", "edgegate-config");

const cli = (args) => run(BIN, args);

describe("edgegate-config --local lock: purge and identity commands", { timeout: 600_000 }, () => {
  let dir;
  before(async () => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), "edgegate-locks-"));
    const built = await new Promise((resolve) => {
      const c = spawn("cargo", ["build", "-q", "--release", "-p", "edgegate-cli"], { cwd: ROOT, stdio: "inherit" });
      c.on("close", resolve);
    });
    assert.equal(built, 0);
  });
  after(() => {
    if (dir) fs.rmSync(dir, { recursive: true, force: true });
  });

  test("concurrent purges with --local each keep their bump", async (t) => {
    const persist = path.join(dir, "purge");
    const n = 4;
    const results = await Promise.all(Array.from({ length: n }, () => cli(["purge", "--all", "--local", "--persist-to", persist])));
    const generations = results.map((r) => {
      assert.equal(r.code, 0, r.stderr);
      return Number(/^purged every cached response: generation (\d+) written to cache\/generations/.exec(r.stdout)?.[1]);
    });
    assert.deepEqual([...generations].sort(), [1, 2, 3, 4], results.map((r) => r.stdout).join(""));
    assert.ok(fs.existsSync(path.join(persist, "edgegate-config.lock")), "the documented lock file");
    const gw = await startGateway({ kvPersist: path.join(persist, "v3", "kv"), kvNamespaceId: configNamespaceId() });
    t.after(() => gw.dispose());
    assert.equal(JSON.parse(await gw.kv.get("cache/generations")).all, n);
  });

  test("concurrent `consumer add` of one username with --local: exactly one succeeds", async () => {
    const persist = path.join(dir, "identity");
    const kv = ["--local", "--persist-to", persist];
    const results = await Promise.all(["a1", "a2", "a3"].map((id) => cli(["consumer", "add", "alice", "--id", id, ...kv])));
    const ok = results.filter((r) => r.code === 0);
    assert.equal(ok.length, 1, results.map((r) => r.stdout + r.stderr).join("\n"));
    for (const r of results.filter((r) => r.code !== 0)) {
      assert.equal(r.code, 1);
      assert.match(r.stderr, /consumer "alice" exists/);
    }
    const list = await cli(["consumer", "list", ...kv]);
    assert.equal(list.code, 0, list.stderr);
    const rows = list.stdout.trim().split("\n").slice(1);
    assert.equal(rows.length, 1, list.stdout);
    assert.match(rows[0], /^a[123]\talice(\t|$)/);
    assert.ok(ok[0].stdout.includes(`(id ${rows[0].split("\t")[0]})`), "the consumer listed is the one reported added");
  });
});
