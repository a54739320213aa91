// CPU per new token (and per first basic-auth login) in workerd, for docs/authentication.md ("Where the crypto
// runs") and the "jwt RS256 / ES256 / EdDSA (new tokens)" rows of scripts/bench (Linux only: reads /proc).
//
//   node bench/crypto.mjs [build/index.js] [--tokens 300] [--algs ES256,HS256] [--no-basic] [--webcrypto-only]
//                         [--micro] [--json out.json]
//
// Starts the Worker under Miniflare (the build given, default build/index.js) and reads the CPU time of the
// workerd process it started (the sum of /proc/<pid>/task/*/schedstat, in ns) around each request:
//   per new token = median CPU of N requests each with a distinct, never seen token
//                   - median CPU of N requests repeating one token already verified
// the two kinds alternating one by one (N pairs, --tokens, default 300), so the request's own cost (routing,
// KV cache, proxying) cancels and what is left is parsing the new token, the signature check and the memo.
// Likewise a first basic-auth login: users each logging in once, against a login already verified. A loaded
// machine scatters single runs (other processes evict caches): compare several runs. (--rounds is accepted
// and ignored.)
//
// --algs limits the jwt rows (default RS256,PS256,ES256,EdDSA,HS256); --no-basic skips the basic-auth row.
// --webcrypto-only runs the Worker without the `nodejs_compat` flag that wrangler.toml sets, so every
// signature goes through WebCrypto's promise (no synchronous node:crypto verify; src/webcrypto.rs).
//
// --micro also runs WebCrypto alone in a plain JS Worker (no wasm) and prints the CPU of each operation:
// importKey + verify, verify with an imported key, HMAC-SHA256 sign, PBKDF2 10k; that is the "WebCrypto"
// column of the table in the docs. Rows ending in "-node" are node:crypto's synchronous verify / pbkdf2Sync
// (`nodejs_compat`); "kv" is one KV read of a present key (what a first login reads), Miniflare's KV
// simulator included, as it is in the gateway rows. Loaded machines scatter: compare rows of one run.
import { Miniflare } from "miniflare";
import { execFileSync } from "node:child_process";
import crypto from "node:crypto";
import fs from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { startOrigin } from "../tests/support/origin.mjs";
import { WORKER_OPTIONS, workerStdoutToFile } from "./worker-options.mjs";

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");
const args = process.argv.slice(2);
const option = (name, fallback) => (args.includes(name) ? args[args.indexOf(name) + 1] : fallback);
const FLAGS = ["--micro", "--no-basic", "--webcrypto-only"];
const positional = args.filter((a, i) => !a.startsWith("--") && !(i > 0 && args[i - 1].startsWith("--") && !FLAGS.includes(args[i - 1])));
const script = path.resolve(positional[0] ?? path.join(ROOT, "build/index.js"));
const N = Number(option("--tokens", "300"));
const ROUNDS = Number(option("--rounds", "15"));
const BAR_US = { RS256: 100, ES256: 100, EdDSA: 100, basic: 2000 };
workerStdoutToFile();

/** workerd's on-CPU time in ns, all threads. */
function cpuNs(pid) {
  let total = 0;
  for (const t of fs.readdirSync(`/proc/${pid}/task`)) {
    try {
      total += Number(fs.readFileSync(`/proc/${pid}/task/${t}/schedstat`, "utf8").split(" ")[0]);
    } catch {
      // the thread ended
    }
  }
  return total;
}

function workerdPid() {
  const children = execFileSync("pgrep", ["-P", String(process.pid)]).toString().trim().split("\n");
  for (const pid of children) {
    const comm = fs.readFileSync(`/proc/${pid}/comm`, "utf8").trim();
    if (comm.startsWith("workerd")) return pid;
  }
  return execFileSync("pgrep", ["-n", "workerd"]).toString().trim();
}

const median = (xs) => [...xs].sort((a, b) => a - b)[xs.length >> 1];

/** CPU ns workerd spends on `requests` (each a [url, headers] pair), 4 at a time. */
async function measure(pid, requests, expect = 403) {
  const before = cpuNs(pid);
  let next = 0;
  const worker = async () => {
    while (next < requests.length) {
      const [url, headers] = requests[next++];
      const res = await fetch(url, { headers });
      await res.arrayBuffer();
      if (res.status !== expect) throw new Error(`${url}: status ${res.status}, expected ${expect}`);
    }
  };
  await Promise.all([worker(), worker(), worker(), worker()]);
  return cpuNs(pid) - before;
}

/** CPU ns workerd spends on one request, sequentially (nothing else in flight). */
async function one(pid, [url, headers], expect = 403) {
  const before = cpuNs(pid);
  const res = await fetch(url, { headers });
  await res.arrayBuffer();
  const used = cpuNs(pid) - before;
  if (res.status !== expect) throw new Error(`${url}: status ${res.status}, expected ${expect}`);
  return used;
}

/**
 * Alternate `count` requests of each kind, one at a time, and compare medians: the median CPU of a `fresh()`
 * request minus that of a `repeat()` request, in us. Medians, because a loaded machine adds bursts (GC,
 * other processes evicting caches) to some requests of either kind.
 */
async function paired(pid, count, fresh, repeat) {
  const a = [];
  const b = [];
  for (let i = 0; i < count; i++) {
    b.push(await one(pid, repeat()));
    a.push(await one(pid, fresh(i)));
  }
  return { us: (median(a) - median(b)) / 1000, request_us: median(b) / 1000 };
}

// --- JWT helpers (node:crypto signs; the Worker verifies) ---
const b64url = (x) => Buffer.from(x).toString("base64url");
function sign(alg, privateKey, claims) {
  const input = `${b64url(JSON.stringify({ alg, typ: "JWT" }))}.${b64url(JSON.stringify(claims))}`;
  let sig;
  if (alg === "HS256") sig = crypto.createHmac("sha256", privateKey).update(input).digest();
  else if (alg === "EdDSA") sig = crypto.sign(null, Buffer.from(input), privateKey);
  else if (alg.startsWith("ES")) sig = crypto.sign("sha" + alg.slice(2), Buffer.from(input), { key: privateKey, dsaEncoding: "ieee-p1363" });
  else if (alg.startsWith("PS")) sig = crypto.sign("sha" + alg.slice(2), Buffer.from(input), { key: privateKey, padding: crypto.constants.RSA_PKCS1_PSS_PADDING, saltLength: Number(alg.slice(2)) / 8 });
  else sig = crypto.sign("sha" + alg.slice(2), Buffer.from(input), privateKey);
  return `${input}.${b64url(sig)}`;
}
function keyPair(alg) {
  if (alg === "ES256") return crypto.generateKeyPairSync("ec", { namedCurve: "P-256" });
  if (alg === "EdDSA") return crypto.generateKeyPairSync("ed25519");
  return crypto.generateKeyPairSync("rsa", { modulusLength: 2048 });
}

async function gatewayRows() {
  const origin = await startOrigin({ port: 0 });
  const mf = new Miniflare({
    ...WORKER_OPTIONS,
    ...(args.includes("--webcrypto-only") ? { compatibilityFlags: [] } : {}),
    scriptPath: script,
    modulesRoot: path.dirname(script),
    kvNamespaces: ["CONFIG"],
    bindings: { CONFIG_RELOAD_SECONDS: "300", AUTH_CACHE_SECONDS: "3600" },
  });
  const base = new URL(await mf.ready);
  const kv = await mf.getKVNamespace("CONFIG");
  const put = (k, v) => kv.put(k, JSON.stringify(v));
  const config = {
    format_version: 1,
    services: [{ name: "origin", url: origin.url }],
    routes: [
      { name: "jwt", service: "origin", paths: ["/jwt"] },
      { name: "basic", service: "origin", paths: ["/basic"] },
    ],
    // The ACL refuses every consumer after authentication: each request is decided without an origin fetch
    // (a 403), so its own cost, which the measurement subtracts, is small and steady.
    plugins: [
      { name: "jwt", route: "jwt" },
      { name: "basic-auth", route: "basic" },
      { name: "acl", config: { allow: ["nobody"] } },
    ],
  };
  await put("config/versions/1", config);
  await put("config/current", { version: 1, latest: 1, history: [] });
  await put("consumers/c-bench", { id: "c-bench", username: "bench", groups: [] });

  const algs = option("--algs", "RS256,PS256,ES256,EdDSA,HS256").split(",");
  const keys = {};
  for (const alg of algs) {
    const record = { id: `bench-${alg}`, consumer_id: "c-bench", key: `iss-${alg}`, algorithms: [alg] };
    if (alg === "HS256") {
      keys[alg] = crypto.randomBytes(32);
      record.secret = keys[alg].toString("base64");
    } else {
      const pair = keyPair(alg);
      keys[alg] = pair.privateKey;
      record.public_key = pair.publicKey.export({ type: "spki", format: "pem" });
    }
    await put(`credentials/jwt/iss-${alg}`, record);
  }
  // basic-auth: users with their own passwords (10k iterations, the default).
  const users = [];
  const basic = !args.includes("--no-basic");
  for (let r = 0; r < (basic ? 1 : 0); r++) {
    for (let i = 0; i < Math.min(N, 300) + 10; i++) {
      const name = `u${r}-${i}`;
      const password = crypto.randomBytes(12).toString("base64url");
      const salt = crypto.randomBytes(16);
      const hash = crypto.pbkdf2Sync(password, salt, 10000, 32, "sha256").toString("base64").replace(/=+$/, "");
      await put(`credentials/basic-auth/${name}`, {
        id: `basic-${name}`, consumer_id: "c-bench", username: name,
        password_hash: `$pbkdf2-sha256$i=10000$${salt.toString("base64").replace(/=+$/, "")}$${hash}`,
      });
      users.push({ round: r, name, password });
    }
  }

  const pid = workerdPid();
  const exp = Math.floor(Date.now() / 1000) + 3600;
  const jwtUrl = new URL("/jwt", base).toString();
  const results = {};
  for (const alg of algs) {
    const fixed = sign(alg, keys[alg], { iss: `iss-${alg}`, exp });
    const cached = [jwtUrl, { authorization: `Bearer ${fixed}` }];
    for (let i = 0; i < 30; i++) await one(pid, cached); // warm: compiles the path, verifies `fixed` once
    const bad = await fetch(jwtUrl, { headers: { authorization: "Bearer x.y.z" } });
    await bad.arrayBuffer();
    if (bad.status !== 401) throw new Error(`a bad token got ${bad.status}`);
    // Signed ahead, so that signing does not run between the two requests of a pair.
    const tokens = Array.from({ length: N + 20 }, (_, i) => sign(alg, keys[alg], { iss: `iss-${alg}`, exp, i }));
    const fresh = (i) => [jwtUrl, { authorization: `Bearer ${tokens[i]}` }];
    for (let i = 0; i < 20; i++) await one(pid, fresh(N + i)); // warm the path of a new token
    results[`jwt ${alg}`] = { ...(await paired(pid, N, fresh, () => cached)), bar: BAR_US[alg] };
  }
  // basic-auth first login: a user's first login (PBKDF2 + the credential's KV read) against a login that was
  // already verified.
  if (!basic) {
    await mf.dispose();
    await origin.close();
    return results;
  }
  const basicUrl = new URL("/basic", base).toString();
  const login = (u) => [basicUrl, { authorization: "Basic " + Buffer.from(`${u.name}:${u.password}`).toString("base64") }];
  for (let i = 0; i < 10; i++) await one(pid, login(users[i]));
  const again = login(users[0]);
  const rest = users.slice(10);
  results["basic-auth first login"] = { ...(await paired(pid, rest.length, (i) => login(rest[i]), () => again)), bar: BAR_US.basic };
  await mf.dispose();
  await origin.close();
  return results;
}

// A plain JS Worker timing WebCrypto operations: /op?name=...&n=... runs the operation n times.
const MICRO_WORKER = `
const enc = new TextEncoder();
const data = enc.encode("eyJhbGciOiJSUzI1NiJ9.eyJpc3MiOiJiZW5jaCIsImV4cCI6MjAwMDAwMDAwMH0");
let state;
async function setup(spki) {
  const out = {};
  const keys = JSON.parse(spki);
  out.rsa = { jwk: keys.rsa.jwk, sig: new Uint8Array(keys.rsa.sig), algo: { name: "RSASSA-PKCS1-v1_5", hash: "SHA-256" }, v: { name: "RSASSA-PKCS1-v1_5" } };
  out.ec = { jwk: keys.ec.jwk, sig: new Uint8Array(keys.ec.sig), algo: { name: "ECDSA", namedCurve: "P-256" }, v: { name: "ECDSA", hash: "SHA-256" } };
  out.ed = { jwk: keys.ed.jwk, sig: new Uint8Array(keys.ed.sig), algo: { name: "Ed25519" }, v: { name: "Ed25519" } };
  for (const k of Object.values(out)) {
    k.key = await crypto.subtle.importKey("jwk", k.jwk, k.algo, false, ["verify"]);
    if (!(await crypto.subtle.verify(k.v, k.key, k.sig, data))) throw new Error("bad signature for " + k.algo.name);
  }
  const node = globalThis.process?.getBuiltinModule?.("node:crypto");
  if (node) {
    out.rsa.node = ["sha256", node.KeyObject.from(out.rsa.key)];
    out.ec.node = ["sha256", Object.assign(node.KeyObject.from(out.ec.key), { dsaEncoding: "ieee-p1363" })];
    out.ed.node = [undefined, node.KeyObject.from(out.ed.key)];
    out.nodeVerify = node.verify;
    out.nodePbkdf2 = node.pbkdf2Sync;
  }
  out.hmac = await crypto.subtle.importKey("raw", enc.encode("0123456789abcdef0123456789abcdef"), { name: "HMAC", hash: "SHA-256" }, false, ["sign"]);
  return out;
}
export default {
  async fetch(req, env) {
    const u = new URL(req.url);
    const n = Number(u.searchParams.get("n"));
    const op = u.searchParams.get("op");
    if (op === "setup") { state = await setup(await req.text()); return new Response("ok"); }
    for (let i = 0; i < n; i++) {
      if (op === "noop") await Promise.resolve();
      else if (op === "kv") await env.KV.get("k" + ((state.kv = (state.kv ?? 0) + 1) % 500));
      else if (op === "pbkdf2-node") state.nodePbkdf2("correct horse", enc.encode("0123456789abcdef"), 10000, 32, "sha256");
      else if (op === "hmac") await crypto.subtle.sign("HMAC", state.hmac, data);
      else if (op === "pbkdf2") {
        const k = await crypto.subtle.importKey("raw", enc.encode("correct horse"), "PBKDF2", false, ["deriveBits"]);
        await crypto.subtle.deriveBits({ name: "PBKDF2", hash: "SHA-256", salt: enc.encode("0123456789abcdef"), iterations: 10000 }, k, 256);
      } else if (op.endsWith("-node")) {
        const k = state[op.split("-")[0]];
        if (!state.nodeVerify(k.node[0], data, k.node[1], k.sig)) throw new Error("node verify failed");
      } else {
        const [kind, fresh] = op.split("-");
        const k = state[kind];
        const key = fresh ? await crypto.subtle.importKey("jwk", k.jwk, k.algo, false, ["verify"]) : k.key;
        await crypto.subtle.verify(k.v, key, k.sig, data);
      }
    }
    return new Response("done");
  },
};`;

async function microRows() {
  const mf = new Miniflare({ ...WORKER_OPTIONS, kvNamespaces: ["KV"], modules: [{ type: "ESModule", path: "micro.mjs", contents: MICRO_WORKER }] });
  const base = new URL(await mf.ready);
  // Values for the "kv" row: a read of a present key, as a first login's credential read.
  const kv = await mf.getKVNamespace("KV");
  for (let i = 0; i < 500; i++) await kv.put("k" + i, JSON.stringify({ id: `basic-u${i}`, consumer_id: "c-bench", username: `u${i}`, password_hash: "$pbkdf2-sha256$i=10000$" + "x".repeat(22) + "$" + "y".repeat(43) }));
  const data = "eyJhbGciOiJSUzI1NiJ9.eyJpc3MiOiJiZW5jaCIsImV4cCI6MjAwMDAwMDAwMH0";
  const entry = (alg) => {
    const pair = keyPair(alg);
    const raw = alg === "EdDSA" ? crypto.sign(null, Buffer.from(data), pair.privateKey)
      : alg === "ES256" ? crypto.sign("sha256", Buffer.from(data), { key: pair.privateKey, dsaEncoding: "ieee-p1363" })
      : crypto.sign("sha256", Buffer.from(data), pair.privateKey);
    return { jwk: pair.publicKey.export({ format: "jwk" }), sig: [...raw] };
  };
  const keys = { rsa: entry("RS256"), ec: entry("ES256"), ed: entry("EdDSA") };
  await (await fetch(new URL("/?op=setup", base), { method: "POST", body: JSON.stringify(keys) })).text();
  const pid = workerdPid();
  const run = async (op, n) => {
    const url = new URL(`/?op=${op}&n=${n}`, base).toString();
    await measure(pid, [[url, {}]], 200);
    const xs = [];
    for (let r = 0; r < 5; r++) xs.push((await measure(pid, [[url, {}]], 200)) / n / 1000);
    return median(xs);
  };
  const noop = await run("noop", 2000);
  const out = {};
  for (const [op, n] of [["rsa", 400], ["rsa-import", 200], ["rsa-node", 400], ["ec", 400], ["ec-import", 200], ["ec-node", 400], ["ed", 400], ["ed-import", 200], ["ed-node", 400], ["hmac", 1000], ["pbkdf2", 20], ["pbkdf2-node", 20], ["kv", 100]]) {
    out[`webcrypto ${op}`] = { us: (await run(op, n)) - noop };
  }
  await mf.dispose();
  return out;
}

const results = await gatewayRows();
if (args.includes("--micro")) Object.assign(results, await microRows());
for (const [name, r] of Object.entries(results)) {
  const verdict = r.bar === undefined ? "" : r.us <= r.bar ? `  (bar <= ${r.bar} us: met)` : `  (bar <= ${r.bar} us: NOT met)`;
  const what = name.startsWith("jwt") ? "CPU per new token" : name.startsWith("basic") ? "CPU per first login" : "CPU per operation";
  const req = r.request_us ? `  (a request with a verified token: ${r.request_us.toFixed(0)} us)` : "";
  const spread = "";
  console.log(`crypto: ${name.padEnd(24)} ${r.us.toFixed(1).padStart(8)} us ${what}${verdict}${req}${spread}`);
}
const json = option("--json", null);
if (json) fs.writeFileSync(json, JSON.stringify(results, null, 2));
process.exit(0);
