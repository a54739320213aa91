// `wrangler deploy --dry-run` bundles the Worker offline (it runs the [build] command of wrangler.toml).
import { test } from "node:test";
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { ROOT } from "./support/harness.mjs";

function run(cmd, args, opts) {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { ...opts, stdio: ["ignore", "pipe", "pipe"] });
    let out = "";
    child.stdout.on("data", (d) => (out += d));
    child.stderr.on("data", (d) => (out += d));
    child.on("error", reject);
    child.on("close", (code) => resolve({ code, out }));
  });
}

test("wrangler deploy --dry-run succeeds offline", { timeout: 300_000 }, async () => {
  const wrangler = path.join(ROOT, "node_modules", ".bin", "wrangler");
  assert.ok(fs.existsSync(wrangler), "node_modules/.bin/wrangler (run npm ci)");
  const outdir = fs.mkdtempSync(path.join(os.tmpdir(), "edgegate-dry-run-"));
  try {
    const { code, out } = await run(wrangler, ["deploy", "--dry-run", "--outdir", outdir], {
      cwd: ROOT,
      env: {
        ...process.env,
        WRANGLER_SEND_METRICS: "false",
        CI: "true",
      },
    });
    assert.equal(code, 0, out);
    assert.match(out, /dry-run/i, out);
    const files = fs.readdirSync(outdir);
    assert.ok(files.some((f) => f.endsWith(".js")), `bundle in ${files}`);
    assert.ok(files.some((f) => f.endsWith(".wasm")), `wasm module in ${files}`);
    const wasm = files.find((f) => f.endsWith(".wasm"));
    const size = fs.statSync(path.join(outdir, wasm)).size;
    assert.ok(size > 10_000 && size < 10 * 1024 * 1024, `wasm size ${size}`);
  } finally {
    fs.rmSync(outdir, { recursive: true, force: true });
  }
});
