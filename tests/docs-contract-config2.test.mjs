// docs/configuration.md and README.md, second audit, read the way an outside tester would:
// - the `edgegate-config` tool: `--help` is the documented usage; `--remote` and `--local` reach wrangler as
//   documented (a stand-in `$WRANGLER` records the calls: no network); rollback/show with nothing pushed;
//   concurrent pushes on one local state get consecutive versions; run outside the repository root;
// - the Worker, with CONFIG_RELOAD_SECONDS "0" and "1": a version that fails validation, a pointer to a
//   missing version, a compiled form with a wrong checksum or from another gateway version, a rollback;
//   a CONFIG_RELOAD_SECONDS that is not a number counts as 30;
// - README.md's scripts/dev curl examples not covered by tests/smallfix.test.mjs (SSE, download, upload).
import { describe, test, before, after } from "node:test";
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import crypto from "node:crypto";
import {
  ROOT,
  startGateway,
  startOrigin,
  request,
  streamRequest,
  putRaw,
  readPointer,
  rollback,
  waitFor,
  sleep,
  pseudoRandomChunks,
  configNamespaceId,
} from "./support/harness.mjs";
import { startOrigin as startDemoOrigin } from "./support/origin.mjs";

const BIN = path.join(ROOT, "target", "release", "edgegate-config");
const events = (gw, name) => gw.logs.filter((l) => l.json?.event === name);

/** Run the CLI binary (built in `before`), in `cwd` (the repository root by default). */
function cli(args, { cwd = ROOT, env = {}, input } = {}) {
  return new Promise((resolve, reject) => {
    const child = spawn(BIN, args, {
      cwd,
      env: { ...process.env, WRANGLER_SEND_METRICS: "false", PATH: `${path.join(ROOT, "node_modules", ".bin")}:${process.env.PATH}`, ...env },
      stdio: [input == null ? "ignore" : "pipe", "pipe", "pipe"],
    });
    if (input != null) {
      child.stdin.on("error", () => {}); // the CLI may exit before reading all of it
      child.stdin.end(input);
    }
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (d) => (stdout += d));
    child.stderr.on("data", (d) => (stderr += d));
    child.on("error", reject);
    child.on("close", (code) => resolve({ code, stdout, stderr }));
  });
}

function docBlock(predicate) {
  const md = fs.readFileSync(path.join(ROOT, "docs", "configuration.md"), "utf8");
  for (const m of md.matchAll(/^```([^\n]*)\n([\s\S]*?)^```/gm)) if (predicate(m[1].trim(), m[2])) return m[2];
  throw new Error("no such block in docs/configuration.md");
}

/**
 * A stand-in for wrangler, run through `$WRANGLER`: answers `kv key get|put` from a JSON file, as remote
 * wrangler does (a missing key: "404: Not Found" and a non-zero exit), and appends each call's arguments to a
 * log. FAIL_WITH in its environment makes every call fail with that message.
 */
const FAKE_WRANGLER = `
import fs from "node:fs";
const [, , ...args] = process.argv;
const dir = process.env.FAKE_DIR;
fs.appendFileSync(dir + "/calls.jsonl", JSON.stringify(args) + "\\n");
if (process.env.FAIL_WITH) { console.error(process.env.FAIL_WITH); process.exit(1); }
const storeFile = dir + "/store.json";
const store = fs.existsSync(storeFile) ? JSON.parse(fs.readFileSync(storeFile, "utf8")) : {};
const [kv, key, op, name] = args;
if (kv !== "kv" || key !== "key") { console.error("unexpected " + args.join(" ")); process.exit(3); }
if (op === "get") {
  if (!(name in store)) { console.error("X [ERROR] Failed to fetch /values/" + name + " - 404: Not Found"); process.exit(1); }
  process.stdout.write(Buffer.from(store[name], "base64").toString("utf8") + "\\n");
} else if (op === "put") {
  const file = args[args.indexOf("--path") + 1];
  store[name] = fs.readFileSync(file).toString("base64");
  fs.writeFileSync(storeFile, JSON.stringify(store));
} else { console.error("unexpected op " + op); process.exit(3); }
`;

describe("edgegate-config, second audit", { timeout: 600_000 }, () => {
  let dir;
  before(async () => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), "edgegate-config2-"));
    const built = await new Promise((resolve) => {
      const c = spawn("cargo", ["build", "-q", "--release", "-p", "edgegate-cli"], { cwd: ROOT, stdio: "inherit" });
      c.on("close", resolve);
    });
    assert.equal(built, 0);
  });
  after(() => {
    if (dir) fs.rmSync(dir, { recursive: true, force: true });
  });

  const file = (name, doc) => {
    const f = path.join(dir, name);
    fs.writeFileSync(f, typeof doc === "string" ? doc : JSON.stringify(doc, null, 2));
    return f;
  };
  const one = (svc) => ({ format_version: 1, services: [{ name: svc, url: "http://127.0.0.1:9" }] });

  test("--help, -h and help print the documented usage on stdout, exit 0; --help after an identity command its usage", async () => {
    const documented = docBlock((info, body) => info === "text" && body.startsWith("usage: edgegate-config"));
    for (const args of [["--help"], ["-h"], ["help"], ["push", "--help"], ["show", "--local", "--help"]]) {
      const r = await cli(args);
      assert.equal(r.code, 0, `${args.join(" ")}: ${r.stderr}`);
      assert.equal(r.stdout, documented, args.join(" "));
      assert.equal(r.stderr, "");
    }
    // The usage names every command README.md's Scripts table lists.
    for (const cmd of ["validate", "schema", "compile", "push", "rollback", "show", "diff", "consumer", "key", "basic-auth", "jwt", "hmac", "credentials", "purge"]) {
      assert.match(documented, new RegExp(`\\b${cmd}\\b`), cmd);
    }
    // scripts/config runs the same tool.
    const script = await new Promise((resolve, reject) => {
      const child = spawn("bash", ["scripts/config", "--help"], { cwd: ROOT, stdio: ["ignore", "pipe", "pipe"] });
      let stdout = "";
      child.stdout.on("data", (d) => (stdout += d));
      child.on("error", reject);
      child.on("close", (code) => resolve({ code, stdout }));
    });
    assert.equal(script.code, 0);
    assert.equal(script.stdout, documented);
    for (const group of ["consumer", "key", "basic-auth", "jwt", "hmac", "credentials"]) {
      const r = await cli([group, "--help"]);
      assert.equal(r.code, 0, `${group} --help: ${r.stderr}`);
      assert.match(r.stdout, /^identity commands/);
      assert.match(r.stdout, new RegExp(`^  ${group} `, "m"));
    }
  });

  test("rollback and show with nothing pushed fail with exit 1 and change nothing; show --version N of a missing version", async () => {
    const kv = ["--local", "--persist-to", path.join(dir, "empty")];
    for (const cmd of ["rollback", "show"]) {
      const r = await cli([cmd, ...kv]);
      assert.equal(r.code, 1, r.stdout);
      assert.equal(r.stderr, "error: no configuration has been pushed yet (config/current is missing)\n");
      assert.equal(r.stdout, "");
    }
    let r = await cli(["push", file("only.json", one("a")), ...kv]);
    assert.equal(r.code, 0, r.stderr);
    r = await cli(["show", ...kv, "--version", "7"]);
    assert.equal(r.code, 1);
    assert.equal(r.stderr, "error: config/versions/7 is missing\n");
    r = await cli(["rollback", ...kv]);
    assert.equal(r.code, 1);
    assert.equal(r.stderr, "error: version 1 has no earlier version to roll back to\n");
    r = await cli(["show", ...kv]);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout.split("\n")[0], 'config/current: {"version":1,"latest":1,"history":[]}');
    assert.equal(r.stdout.split("\n")[1], "in service: version 1 (latest pushed: 1; nothing to roll back to)");
  });

  test("diff: what pushing FILE would change, by name, as the documented example; nothing written", async () => {
    const kv = ["--local", "--persist-to", path.join(dir, "diff")];
    const base = { format_version: 1, services: [{ name: "a", url: "http://a" }] };
    let r = await cli(["diff", file("diff-base.json", base), ...kv]);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout, `comparing ${path.join(dir, "diff-base.json")} with nothing (no configuration has been pushed yet):\n+ service "a"\n1 change\n`);
    r = await cli(["push", path.join(dir, "diff-base.json"), ...kv]);
    assert.equal(r.code, 0, r.stderr);
    const changed = {
      format_version: 1,
      services: [{ name: "a", url: "http://a", timeout_ms: 5000, headers: { authorization: `Bearer ${"s3cret-diff"}` } }],
      routes: [{ name: "r", service: "a", paths: ["/r"] }],
    };
    const newFile = file("new.json", changed);
    r = await cli(["diff", newFile, ...kv]);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout, `comparing ${newFile} with config/versions/1 (in service):\n~ service "a": timeout_ms, headers\n+ route "r"\n2 changes\n`);
    assert.ok(!r.stdout.includes("s3cret"), "values are never printed");
    // A default written out is no change.
    r = await cli(["diff", file("same.json", { ...base, services: [{ name: "a", url: "http://a", timeout_ms: 60000 }] }), ...kv]);
    assert.equal(r.stdout, `no changes: ${path.join(dir, "same.json")} is the same configuration as config/versions/1 (in service)\n`);
    // An invalid FILE: its errors, exit 1; a missing --version N: exit 1.
    r = await cli(["diff", file("diff-bad.json", { format_version: 1, routes: [{ name: "r", service: "x" }] }), ...kv]);
    assert.equal(r.code, 1);
    assert.equal(r.stderr, 'routes[0].service: unknown service "x"\n');
    r = await cli(["diff", newFile, ...kv, "--version", "4"]);
    assert.equal(r.code, 1);
    assert.equal(r.stderr, "error: config/versions/4 is missing\n");
    r = await cli(["show", ...kv]);
    assert.equal(r.stdout.split("\n")[0], 'config/current: {"version":1,"latest":1,"history":[]}', "diff wrote nothing");
  });

  test("concurrent pushes with --local get consecutive versions, each stored exactly as pushed", async (t) => {
    const persist = path.join(dir, "concurrent");
    const files = ["a", "b", "c"].map((s) => file(`concurrent-${s}.json`, one(s)));
    const results = await Promise.all(files.map((f) => cli(["push", f, "--local", "--persist-to", persist])));
    const versions = results.map((r) => {
      assert.equal(r.code, 0, r.stderr);
      return Number(/^pushed version (\d+) \(1 services, 0 routes\); now in service/.exec(r.stdout)?.[1]);
    });
    assert.deepEqual([...versions].sort(), [1, 2, 3], results.map((r) => r.stdout).join(""));
    assert.ok(fs.existsSync(path.join(persist, "edgegate-config.lock")), "the documented lock file");
    const gw = await startGateway({ kvPersist: path.join(persist, "v3", "kv"), kvNamespaceId: configNamespaceId() });
    t.after(() => gw.dispose());
    for (let i = 0; i < 3; i++) {
      assert.equal(await gw.kv.get(`config/versions/${versions[i]}`), fs.readFileSync(files[i], "utf8"), `version ${versions[i]}`);
    }
    const last = versions.indexOf(3);
    assert.deepEqual(JSON.parse(await gw.kv.get("config/current")), { version: 3, latest: 3, history: [1, 2] });
    assert.match(results[last].stdout, /\(previously: version 2\)/);
  });

  test("--remote goes through $WRANGLER with --binding CONFIG --remote, values in a file; its errors are reported", async () => {
    const fake = path.join(dir, "fake");
    fs.mkdirSync(fake);
    fs.writeFileSync(path.join(fake, "wrangler.mjs"), FAKE_WRANGLER);
    const env = { WRANGLER: `node ${path.join(fake, "wrangler.mjs")}`, FAKE_DIR: fake };
    const calls = () => fs.readFileSync(path.join(fake, "calls.jsonl"), "utf8").trim().split("\n").map((l) => JSON.parse(l));

    // With wrangler.toml's placeholder namespace id (as shipped), --remote stops before running wrangler.
    let r = await cli(["push", file("remote-0.json", one("zero")), "--remote"], { env });
    assert.equal(r.code, 1);
    assert.match(r.stderr, /^error: wrangler\.toml still has the placeholder id REPLACE_WITH_YOUR_KV_NAMESPACE_ID for the CONFIG namespace: create it with `npx wrangler kv namespace create CONFIG` and put the id it prints there/);
    assert.ok(!fs.existsSync(path.join(fake, "calls.jsonl")), "wrangler was not run");
    // From here on, a deployed project: wrangler.toml with the namespace's real id.
    const deployed = path.join(fake, "project");
    fs.mkdirSync(deployed);
    fs.writeFileSync(
      path.join(deployed, "wrangler.toml"),
      fs.readFileSync(path.join(ROOT, "wrangler.toml"), "utf8").replace("REPLACE_WITH_YOUR_KV_NAMESPACE_ID", "0f2ac74b498b48028cb68387c421e279"),
    );
    const remoteCli = (args, opts = {}) => cli(args, { cwd: deployed, ...opts, env: { ...env, ...(opts.env ?? {}) } });

    const v1 = file("remote-1.json", one("first"));
    r = await remoteCli(["push", v1, "--remote"]);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout, "pushed version 1 (1 services, 0 routes); now in service (previously: none)\n");
    for (const args of calls()) {
      assert.deepEqual(args.slice(4, 7), ["--binding", "CONFIG", "--remote"], args.join(" "));
      assert.ok(!args.includes("--local"), args.join(" "));
    }
    const puts = calls().filter((a) => a[2] === "put").map((a) => a[3]);
    assert.deepEqual(puts, ["config/versions/1", "config/compiled/1", "config/current"], "the document, its compiled form, the pointer last");
    const store = JSON.parse(fs.readFileSync(path.join(fake, "store.json"), "utf8"));
    assert.equal(Buffer.from(store["config/versions/1"], "base64").toString(), fs.readFileSync(v1, "utf8"), "stored exactly as pushed");
    assert.equal(Buffer.from(store["config/compiled/1"], "base64").subarray(0, 4).toString(), "EGWC");

    r = await remoteCli(["push", file("remote-2.json", one("second")), "--remote"]);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /^pushed version 2 .*\(previously: version 1\)\n$/);
    r = await remoteCli(["rollback", "--remote"]);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout, "rolled back from version 2 to version 1\n");

    // `latest` never goes back: the next push is version 3, not 2 again.
    r = await remoteCli(["push", file("remote-3.json", one("third")), "--remote"]);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout, "pushed version 3 (1 services, 0 routes); now in service (previously: version 1)\n");
    const storeOf = () => JSON.parse(fs.readFileSync(path.join(fake, "store.json"), "utf8"));
    const setStore = (s) => fs.writeFileSync(path.join(fake, "store.json"), JSON.stringify(s));
    const pointer = () => JSON.parse(Buffer.from(storeOf()["config/current"], "base64").toString());
    assert.deepEqual(pointer(), { version: 3, latest: 3, history: [1] });

    // A version key left by an interrupted push is left alone; push takes the next free number and says so.
    setStore({ ...storeOf(), "config/versions/4": Buffer.from("orphan").toString("base64") });
    r = await remoteCli(["push", file("remote-5.json", one("fifth")), "--remote"]);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /^pushed version 5 .*\(previously: version 3\)\n/);
    assert.match(r.stdout, /^note: config\/versions\/4 .*already existed.* left as they are/m);
    assert.equal(Buffer.from(storeOf()["config/versions/4"], "base64").toString(), "orphan");

    // A rollback whose target document is missing is refused and changes nothing.
    const s3 = storeOf();
    delete s3["config/versions/3"];
    setStore(s3);
    r = await remoteCli(["rollback", "--remote"]);
    assert.equal(r.code, 1);
    assert.equal(r.stderr, "error: cannot roll back to version 3: config/versions/3 is missing\n");
    assert.deepEqual(pointer(), { version: 5, latest: 5, history: [1, 3] });

    // One that is no longer valid for this gateway is refused too, and changes nothing; `diff --version 3`
    // against it exits 1 (docs/configuration.md, rollback and diff).
    setStore({ ...storeOf(), "config/versions/3": Buffer.from('{"format_version": 1, "services": 7}').toString("base64") });
    r = await remoteCli(["rollback", "--remote"]);
    assert.equal(r.code, 1, r.stdout);
    assert.match(r.stderr, /^error: .*version 3/, r.stderr);
    assert.match(r.stderr, /services/, "names the field at fault");
    assert.deepEqual(pointer(), { version: 5, latest: 5, history: [1, 3] });
    r = await remoteCli(["diff", v1, "--remote", "--version", "3"]);
    assert.equal(r.code, 1, r.stdout);
    assert.match(r.stderr, /version 3/, r.stderr);
    r = await remoteCli(["diff", v1, "--remote", "--version", "5"]);
    assert.equal(r.code, 0, r.stderr);

    // wrangler failing (no login, no network): exit 1, wrangler's message, nothing written.
    const before = calls().length;
    r = await remoteCli(["push", v1, "--remote"], { env: { FAIL_WITH: "X [ERROR] Authentication error [code: 10000]" } });
    assert.equal(r.code, 1);
    assert.match(r.stderr, /^error: wrangler kv key get config\/current failed:\n/);
    assert.match(r.stderr, /Authentication error \[code: 10000\]/);
    assert.deepEqual(calls().slice(before).map((a) => a[2]), ["get"], "stopped at the first failure");

    // --persist-to is for --local only: a usage error, wrangler not run.
    const n = calls().length;
    r = await remoteCli(["push", v1, "--remote", "--persist-to", dir]);
    assert.equal(r.code, 2);
    assert.match(r.stderr, /^error: --persist-to only applies to --local/);
    assert.equal(calls().length, n);
  });

  test("outside the repository root: validate and compile work, KV commands say where to run them", async () => {
    const elsewhere = fs.mkdtempSync(path.join(dir, "elsewhere-"));
    const doc = file("elsewhere.json", one("a"));
    let r = await cli(["validate", doc], { cwd: elsewhere });
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout, "ok: 1 services, 0 routes\n");
    r = await cli(["compile", doc, "--out", path.join(elsewhere, "x.compiled")], { cwd: elsewhere });
    assert.equal(r.code, 0, r.stderr);
    // Without --out: FILE.compiled.
    r = await cli(["compile", doc], { cwd: elsewhere });
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout, `ok: 1 services, 0 routes; compiled form written to ${doc}.compiled (${fs.statSync(`${doc}.compiled`).size} bytes)\n`);
    assert.deepEqual(fs.readFileSync(`${doc}.compiled`), fs.readFileSync(path.join(elsewhere, "x.compiled")), "the same bytes");
    for (const args of [["push", doc, "--local"], ["rollback", "--local"], ["show", "--local"]]) {
      r = await cli(args, { cwd: elsewhere });
      assert.equal(r.code, 1, args.join(" "));
      assert.match(r.stderr, /^error: no wrangler\.toml in the current directory .*run this from the repository root/);
    }
    assert.deepEqual(fs.readdirSync(elsewhere), ["x.compiled"], "nothing else written there");
  });
});

// ---------------------------------------------------------------------------------------------------------
// The Worker, on both paths: checking the pointer on every request ("0") and at most every second ("1").

/** Bytes as an ArrayBuffer of their own (Miniflare's KV binding refuses Node's pooled Buffers). */
const arrayBuffer = (buf) => new Uint8Array(buf).buffer;

for (const reload of ["0", "1"]) {
  describe(`docs/configuration.md, the Worker (CONFIG_RELOAD_SECONDS ${reload})`, { timeout: 300_000 }, () => {
    let origin;
    let dir;
    before(async () => {
      origin = await startOrigin();
      dir = fs.mkdtempSync(path.join(os.tmpdir(), "edgegate-config2-w-"));
    });
    after(async () => {
      await origin?.close();
      if (dir) fs.rmSync(dir, { recursive: true, force: true });
    });

    const routeTo = (p) => ({
      format_version: 1,
      services: [{ name: "o", url: origin.url }],
      routes: [{ name: "r", service: "o", paths: [p] }],
    });
    const status = async (gw, p) => (await request(gw.at(p))).status;
    /** Poll until `p` answers `want` (the isolate re-reads the pointer at most every `reload` seconds). */
    const until = (gw, p, want) =>
      waitFor(async () => (await status(gw, p)) === want, { timeoutMs: 8000, intervalMs: 100, what: `${p} -> ${want}` });
    /** Wait past one reload interval, then check `p` answers `want` several times. */
    async function stays(gw, p, want) {
      await sleep(reload === "1" ? 1300 : 50);
      for (let i = 0; i < 3; i++) assert.equal(await status(gw, p), want, p);
    }

    test("a version that fails validation: config_rejected once, the last good one keeps serving", async (t) => {
      const gw = await startGateway({ bindings: { CONFIG_RELOAD_SECONDS: reload }, config: routeTo("/good") });
      t.after(() => gw.dispose());
      assert.equal(await status(gw, "/good"), 200);
      const bad = await putRaw(gw, JSON.stringify({ ...routeTo("/bad"), routes: [{ name: "r", service: "nope", paths: ["/bad"] }] }));
      await stays(gw, "/good", 200);
      await stays(gw, "/good", 200);
      assert.equal(await status(gw, "/bad"), 404);
      const rejected = events(gw, "config_rejected");
      assert.equal(rejected.length, 1, "logged once per isolate, not on every check");
      assert.equal(rejected[0].json.version, bad);
      assert.equal(rejected[0].json.serving_version, bad - 1);
      assert.match(rejected[0].json.error, /routes\[0\]\.service: unknown service "nope"/);
      // A good push after it is served.
      await gw.putConfig(routeTo("/fixed"));
      await until(gw, "/fixed", 200);
    });

    test("a pointer to a missing version: config_kept, the version in service stays", async (t) => {
      const gw = await startGateway({ bindings: { CONFIG_RELOAD_SECONDS: reload }, config: routeTo("/kept") });
      t.after(() => gw.dispose());
      assert.equal(await status(gw, "/kept"), 200);
      const p = await readPointer(gw);
      await gw.kv.put("config/current", JSON.stringify({ version: 9, latest: 9, history: [...p.history, p.version] }));
      await stays(gw, "/kept", 200);
      const kept = await waitFor(() => events(gw, "config_kept")[0], { what: "config_kept" });
      assert.deepEqual(kept.json, { ...kept.json, event: "config_kept", version: p.version, pointer_version: 9, skipped: [9] });
    });

    test("a compiled form with a wrong checksum or from another gateway version: the JSON is loaded instead", async (t) => {
      const gw = await startGateway({ bindings: { CONFIG_RELOAD_SECONDS: reload }, config: routeTo("/start") });
      t.after(() => gw.dispose());
      assert.equal(await status(gw, "/start"), 200);
      const compile = async (doc, name) => {
        const f = path.join(dir, `${name}-${reload}.json`);
        fs.writeFileSync(f, JSON.stringify(doc));
        const r = await cli(["compile", f, "--out", `${f}.compiled`]);
        assert.equal(r.code, 0, r.stderr);
        return { json: JSON.stringify(doc), blob: Buffer.from(fs.readFileSync(`${f}.compiled`)) };
      };
      const cases = [
        ["corrupt", "/checksum", (b) => (b[b.length - 10] ^= 0xff)],
        // Header: magic (4), layout (4), fingerprint (8), checksum (8), version length (4), version.
        ["other_version", "/other", (b) => b.fill("9".charCodeAt(0), 28, 28 + b.readUInt32LE(24))],
      ];
      for (const [reason, p, damage] of cases) {
        const { json, blob } = await compile(routeTo(p), reason);
        damage(blob);
        const cur = await readPointer(gw);
        const v = cur.latest + 1;
        await gw.kv.put(`config/versions/${v}`, json);
        await gw.kv.put(`config/compiled/${v}`, arrayBuffer(blob));
        await gw.kv.put("config/current", JSON.stringify({ version: v, latest: v, history: [...cur.history, cur.version] }));
        await until(gw, p, 200);
        const unused = events(gw, "config_compiled_unused").filter((l) => l.json.version === v);
        assert.equal(unused.length, 1, `${reason}: logged once`);
        assert.equal(unused[0].json.reason, reason);
        const loaded = events(gw, "config_loaded").find((l) => l.json.version === v);
        assert.equal(loaded.json.source, "json", reason);
      }
    });

    test("a rollback (the pointer moved back) is served within the interval", async (t) => {
      const gw = await startGateway({ bindings: { CONFIG_RELOAD_SECONDS: reload }, config: routeTo("/v1") });
      t.after(() => gw.dispose());
      await gw.putConfig(routeTo("/v2"));
      await until(gw, "/v2", 200);
      assert.equal(await rollback(gw), 1);
      await until(gw, "/v1", 200);
      assert.equal(await status(gw, "/v2"), 404);
    });
  });
}

describe("CONFIG_RELOAD_SECONDS that is not a number of seconds counts as 30", { timeout: 120_000 }, () => {
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

  test("a fraction is a number of seconds: \"0.5\" picks a push up within a second or so", async (t) => {
    const gw = await startGateway({ bindings: { CONFIG_RELOAD_SECONDS: "0.5" }, config: routeTo("/a") });
    t.after(() => gw.dispose());
    assert.equal((await request(gw.at("/a"))).status, 200);
    await gw.putConfig(routeTo("/b"));
    await waitFor(async () => (await request(gw.at("/b"))).status === 200, { timeoutMs: 5000, intervalMs: 100, what: "/b" });
  });

  for (const value of ["30s", "-1", ""]) {
    test(`"${value}": a push is not seen 3 s later${value === "30s" ? ", and is 30 s later" : ""}`, async (t) => {
      const gw = await startGateway({ bindings: { CONFIG_RELOAD_SECONDS: value }, config: routeTo("/a") });
      t.after(() => gw.dispose());
      assert.equal((await request(gw.at("/a"))).status, 200);
      const pushed = Date.now();
      await gw.putConfig(routeTo("/b"));
      await sleep(3000);
      assert.equal((await request(gw.at("/b"))).status, 404);
      assert.equal((await request(gw.at("/a"))).status, 200);
      if (value !== "30s") return;
      await sleep(Math.max(0, 31_000 - (Date.now() - pushed)));
      await waitFor(async () => (await request(gw.at("/b"))).status === 200, { timeoutMs: 5000, intervalMs: 200, what: "/b after 30 s" });
    });
  }
});

// ---------------------------------------------------------------------------------------------------------
// README.md, "Running locally": the curl examples of streams, against kv-seed/config.json and the demo origin.

describe("README: the scripts/dev streaming examples against kv-seed/config.json", { timeout: 300_000 }, () => {
  let gw;
  let origin;
  before(async () => {
    origin = await startDemoOrigin();
    const seed = fs
      .readFileSync(path.join(ROOT, "kv-seed/config.json"), "utf8")
      .replaceAll("127.0.0.1:9001", `127.0.0.1:${origin.port}`);
    gw = await startGateway({ config: JSON.parse(seed) });
  });
  after(async () => {
    await gw?.dispose();
    await origin?.close();
  });

  test("curl -sN 'localhost:8787/sse?n=5&interval=500': five events, streamed as they come", async () => {
    const res = await streamRequest(gw.at("/sse?n=5&interval=500"));
    assert.equal(res.statusCode, 200);
    assert.match(res.headers["content-type"], /^text\/event-stream/);
    const arrivals = [];
    let text = "";
    for await (const chunk of res) {
      text += chunk;
      for (const _ of chunk.toString().matchAll(/^data: /gm)) arrivals.push(Date.now());
    }
    const data = [...text.matchAll(/^data: (.*)$/gm)].map((m) => JSON.parse(m[1]).n);
    assert.deepEqual(data, [1, 2, 3, 4, 5]);
    // Streamed: the first event arrives well before the last (4 intervals of 500 ms apart at the origin).
    assert.ok(arrivals.at(-1) - arrivals[0] >= 1000, `events arrived over ${arrivals.at(-1) - arrivals[0]} ms`);
  });

  test("curl -s 'localhost:8787/download?mb=100' | wc -c: 104857600 bytes", async () => {
    const res = await streamRequest(gw.at("/download?mb=100"), { timeoutMs: 120_000 });
    assert.equal(res.statusCode, 200);
    let bytes = 0;
    for await (const chunk of res) bytes += chunk.length;
    assert.equal(bytes, 100 * 1024 * 1024);
  });

  test("curl -s --data-binary @some-file localhost:8787/upload: the origin answers the upload's sha256", async () => {
    const hash = crypto.createHash("sha256");
    let size = 0;
    const chunks = [];
    for (const c of pseudoRandomChunks(8 * 1024 * 1024)) {
      hash.update(c);
      size += c.length;
      chunks.push(c);
    }
    const res = await request(gw.at("/upload"), { method: "POST", body: (async function* () { yield* chunks; })() });
    assert.equal(res.status, 200, res.text);
    assert.deepEqual(res.json(), { ...res.json(), bytes: size, sha256: hash.digest("hex") });
  });
});
