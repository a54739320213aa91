// The compiled form of a configuration version (docs/configuration.md, "The compiled form"): used when it
// belongs to the stored JSON and this gateway; otherwise the JSON is loaded and `config_compiled_unused` says
// why (missing, stale, other_version, corrupt). Whatever was loaded, requests get the same answers.
import { describe, test, before, after } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { ROOT, startGateway, startOrigin, request, readPointer, waitFor } from "./support/harness.mjs";

/** The compiled form of `doc`, made by the CLI (`edgegate-config compile`). */
function compile(doc, dir, name) {
  const file = path.join(dir, `${name}.json`);
  const out = path.join(dir, `${name}.compiled`);
  fs.writeFileSync(file, typeof doc === "string" ? doc : JSON.stringify(doc));
  const res = spawnSync("cargo", ["run", "-q", "--release", "-p", "edgegate-cli", "--", "compile", file, "--out", out], {
    cwd: ROOT,
    encoding: "utf8",
  });
  assert.equal(res.status, 0, res.stderr);
  assert.match(res.stdout, /compiled form written to/);
  return fs.readFileSync(out);
}

/** Bytes as an ArrayBuffer of their own (Miniflare's KV binding refuses Node's pooled Buffers). */
const arrayBuffer = (buf) => new Uint8Array(buf).buffer;

describe("compiled configuration", { timeout: 300_000 }, () => {
  let gw;
  let origin;
  let dir;

  before(async () => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), "edgegate-compiled-"));
    origin = await startOrigin();
    gw = await startGateway();
  });
  after(async () => {
    await gw?.dispose();
    await origin?.close();
    if (dir) fs.rmSync(dir, { recursive: true, force: true });
  });

  const doc = (tag) => ({
    format_version: 1,
    services: [
      { name: "a", url: `${origin.url}/base` },
      { name: "b", url: origin.url },
    ],
    routes: [
      { name: `users-${tag}`, service: "a", paths: ["/users/{id}"], methods: ["GET"], rewrite: "/u/{id}" },
      { name: "files", service: "b", paths: ["/files/{*rest}"] },
      { name: "items", service: "a", paths: ["~^/v[0-9]+/items/(?P<n>[0-9]+)$"], strip_path: false },
      { name: "exact", service: "b", paths: ["=/health"], hosts: ["*.example.com", "127.0.0.1"] },
      { name: "keyed", service: "b", paths: ["/keyed"] },
      { name: "api", service: "b", paths: ["/api"], headers: { "x-t": ["~^gold"] } },
    ],
    plugins: [{ name: "key-auth", route: "keyed" }],
  });

  /** Store `json` (text) and optionally `compiled` (bytes) as the next version, then move the pointer. */
  async function store(json, compiled) {
    const current = await readPointer(gw);
    const version = current ? current.latest + 1 : 1;
    await gw.kv.put(`config/versions/${version}`, json);
    if (compiled) await gw.kv.put(`config/compiled/${version}`, arrayBuffer(compiled));
    const history = current ? [...current.history, current.version] : [];
    await gw.kv.put("config/current", JSON.stringify({ version, latest: version, history }));
    await gw.afterWrite();
    return version;
  }

  /** What a fixed set of requests gets: status, route (from the access log) and the path the origin saw. */
  async function answers() {
    const probes = [
      ["GET", "/users/7"],
      ["POST", "/users/7"],
      ["GET", "/files/a/b.txt?x=1"],
      ["GET", "/v2/items/42"],
      ["GET", "/v2/items/x"],
      ["GET", "/health"],
      ["GET", "/keyed"],
      ["GET", "/api/x", { "x-t": "gold-1" }],
      ["GET", "/api/x", { "x-t": "silver" }],
      ["GET", "/nowhere"],
    ];
    const out = [];
    for (const [method, p, headers] of probes) {
      const res = await request(gw.at(p), { method, headers: headers ?? {} });
      const body = res.status === 200 ? JSON.parse(res.body.toString()) : null;
      out.push(`${method} ${p} -> ${res.status} ${body?.url ?? ""}`);
    }
    return out;
  }

  const loadedLine = (v) => gw.logs.find((l) => l.json?.event === "config_loaded" && l.json?.version === v);
  const unusedLine = (v) => gw.logs.find((l) => l.json?.event === "config_compiled_unused" && l.json?.version === v);

  let reference;

  test("a version stored with its compiled form is loaded from it", async () => {
    const json = JSON.stringify(doc("x"));
    const v = await store(json, compile(json, dir, "good"));
    reference = await answers();
    const loaded = await waitFor(() => loadedLine(v), { what: "config_loaded" });
    assert.equal(loaded.json.source, "compiled");
    assert.equal(unusedLine(v), undefined);
    assert.match(reference[0], /-> 200 \/base\/u\/7$/);
    assert.match(reference[1], /-> 405/);
    assert.match(reference[6], /-> 401/);
    assert.match(reference[9], /-> 404/);
  });

  test("without a compiled form the JSON is loaded, and the answers are the same", async () => {
    const v = await store(JSON.stringify(doc("x")));
    assert.deepEqual(await answers(), reference);
    const unused = await waitFor(() => unusedLine(v), { what: "config_compiled_unused" });
    assert.equal(unused.json.reason, "missing");
    assert.equal(loadedLine(v).json.source, "json");
  });

  test("a compiled form of another document (stale) is not used", async () => {
    const compiledOther = compile(JSON.stringify(doc("other")), dir, "other");
    const v = await store(JSON.stringify(doc("x")), compiledOther);
    assert.deepEqual(await answers(), reference);
    const unused = await waitFor(() => unusedLine(v), { what: "config_compiled_unused" });
    assert.equal(unused.json.reason, "stale");
  });

  test("a compiled form from another gateway version is not used", async () => {
    const json = JSON.stringify(doc("x"));
    const blob = Buffer.from(compile(json, dir, "ver"));
    // Header: magic (4), layout (4), fingerprint (8), checksum (8), version length (4), version.
    const len = blob.readUInt32LE(24);
    blob.fill("9".charCodeAt(0), 28, 28 + len);
    const v = await store(json, blob);
    assert.deepEqual(await answers(), reference);
    const unused = await waitFor(() => unusedLine(v), { what: "config_compiled_unused" });
    assert.equal(unused.json.reason, "other_version");
    assert.match(unused.json.detail, /written by gateway 9/);

    const layout = Buffer.from(compile(json, dir, "layout"));
    layout.writeUInt32LE(999, 4);
    const v2 = await store(json, layout);
    assert.deepEqual(await answers(), reference);
    assert.equal((await waitFor(() => unusedLine(v2), { what: "config_compiled_unused" })).json.reason, "other_version");
  });

  test("a damaged compiled form is not used", async () => {
    const json = JSON.stringify(doc("x"));
    const blob = Buffer.from(compile(json, dir, "bad"));
    blob[blob.length - 10] ^= 0xff;
    const v = await store(json, blob);
    assert.deepEqual(await answers(), reference);
    const unused = await waitFor(() => unusedLine(v), { what: "config_compiled_unused" });
    assert.equal(unused.json.reason, "corrupt");

    const v2 = await store(json, Buffer.from("not a compiled form"));
    assert.deepEqual(await answers(), reference);
    assert.equal((await waitFor(() => unusedLine(v2), { what: "config_compiled_unused" })).json.reason, "corrupt");
  });

  test("an invalid JSON with a compiled form of a valid one is still refused", async () => {
    // Stale: the compiled form never stands in for a document it was not made from.
    const before = (await readPointer(gw)).version;
    const v = await store('{"format_version": 1, "routes": [', compile(JSON.stringify(doc("x")), dir, "valid"));
    assert.deepEqual(await answers(), reference);
    await waitFor(() => gw.logs.some((l) => l.json?.event === "config_rejected" && l.json?.version === v), {
      what: "config_rejected",
    });
    const line = await waitFor(() => gw.logs.find((l) => l.json?.event === "config_kept" && l.json?.pointer_version === v), {
      what: "the previous version kept in service",
    });
    assert.equal(line.json.version, before);
  });
});
