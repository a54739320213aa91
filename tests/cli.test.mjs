// End to end with the CLI: `edgegate-config push/rollback --local --persist-to DIR` writes wrangler's local KV
// state; a Miniflare gateway persisting KV to the same place (DIR/v3/kv, namespace id from wrangler.toml)
// serves what was pushed.
import { describe, test, before, after } from "node:test";
import assert from "node:assert/strict";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { ROOT, startGateway, startOrigin, request, run, configNamespaceId } from "./support/harness.mjs";

const cli = (...args) => run("cargo", ["run", "-q", "--release", "-p", "edgegate-cli", "--", ...args]);

describe("CLI end to end", { timeout: 180_000 }, () => {
  let dir;
  let persist;
  let gw;
  let origin;

  before(async () => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), "edgegate-cli-"));
    persist = path.join(dir, "state");
    origin = await startOrigin();
    // Build first so the timed steps below are not a cold compile.
    const built = await run("cargo", ["build", "-q", "--release", "-p", "edgegate-cli"]);
    assert.equal(built.code, 0, built.stderr);
    gw = await startGateway({ kvPersist: path.join(persist, "v3", "kv"), kvNamespaceId: configNamespaceId() });
  });
  after(async () => {
    await gw?.dispose();
    await origin?.close();
    if (dir) fs.rmSync(dir, { recursive: true, force: true });
  });

  const writeConfig = (name, doc) => {
    const file = path.join(dir, name);
    fs.writeFileSync(file, typeof doc === "string" ? doc : JSON.stringify(doc, null, 2));
    return file;
  };
  const routeTo = (p) => ({
    format_version: 1,
    services: [{ name: "o", url: origin.url }],
    routes: [{ name: "r", service: "o", paths: [p] }],
  });

  test("push serves the route; a broken file is refused with its JSON path; rollback restores", async () => {
    assert.equal((await request(gw.at("/first/x"))).status, 503, "nothing pushed yet");

    let r = await cli("push", writeConfig("v1.json", routeTo("/first")), "--local", "--persist-to", persist);
    assert.equal(r.code, 0, r.stderr);
    let res = await request(gw.at("/first/x"));
    assert.equal(res.status, 200, res.text);
    assert.equal(origin.last.url, "/x");

    r = await cli("push", writeConfig("v2.json", routeTo("/second")), "--local", "--persist-to", persist);
    assert.equal(r.code, 0, r.stderr);
    assert.equal((await request(gw.at("/second/x"))).status, 200);
    assert.equal((await request(gw.at("/first/x"))).status, 404);

    // A route naming a missing service: refused before anything is written, the error names the JSON path.
    const broken = routeTo("/broken");
    broken.routes[0].service = "missing";
    r = await cli("push", writeConfig("broken.json", broken), "--local", "--persist-to", persist);
    assert.notEqual(r.code, 0, "push of a broken file must fail");
    assert.match(r.stderr, /routes\[0\]\.service/, r.stderr);
    assert.equal((await request(gw.at("/second/x"))).status, 200);
    assert.equal((await request(gw.at("/broken/x"))).status, 404);

    // Invalid JSON is refused too.
    r = await cli("push", writeConfig("syntax.json", '{"format_version": 1, "routes": ['), "--local", "--persist-to", persist);
    assert.notEqual(r.code, 0);
    assert.equal((await request(gw.at("/second/x"))).status, 200);

    r = await cli("rollback", "--local", "--persist-to", persist);
    assert.equal(r.code, 0, r.stderr);
    assert.equal((await request(gw.at("/first/x"))).status, 200, "the old route is back");
    assert.equal((await request(gw.at("/second/x"))).status, 404);
  });
});
