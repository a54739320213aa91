// CPU per new token (and per first basic-auth login) in workerd, for docs/authentication.md ("Where the crypto
// runs") and the "jwt RS256 / ES256 / EdDSA (new tokens)" rows of scripts/bench (Linux only: reads /proc).
//
//   node bench/crypto.mjs [build/index.js] [--tokens 300] [--algs ES256,HS256] [--no-basic] [--webcrypto-only]
//                         [--micro] [--floor | --floor-only [--floor-modes none,node,...]] [--also other/index.js]
//                         [--also-webcrypto-only] [--json out.json]
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
// --floor also runs the same paired measurement on a plain JavaScript Worker that only verifies each new
// token (or checks each first login) the way the gateway does, through node:crypto: the runtime's floor for
// these bars (see FLOOR_WORKER below); --floor-only runs that alone.
//
// --also <build/index.js> adds a second build's gateway rows (suffix " B") and --also-webcrypto-only the same
// build without `nodejs_compat` (suffix " webcrypto"), each in its own workerd, interleaved with the rest
// request pair by request pair: an A/B comparison in one run, under one load.
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
const FLAGS = ["--micro", "--no-basic", "--webcrypto-only", "--floor", "--floor-only", "--also-webcrypto-only"];
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

/** A Miniflare instance started with `options`, ready, and the pid of the workerd process it started. */
async function startMiniflare(options) {
  const children = () => {
    try {
      return execFileSync("pgrep", ["-P", String(process.pid)]).toString().trim().split("\n");
    } catch {
      return [];
    }
  };
  const before = new Set(children());
  const mf = new Miniflare(options);
  const base = new URL(await mf.ready);
  const pid = children().find((p) => !before.has(p) && fs.readFileSync(`/proc/${p}/comm`, "utf8").startsWith("workerd")) ?? workerdPid();
  return { mf, base, pid };
}

/** The gateway's cases: `build` (an index.js), with or without node:crypto; `label` is appended to the row names. */
async function gatewayRows(build = script, { webcryptoOnly = args.includes("--webcrypto-only"), label = "" } = {}) {
  const origin = await startOrigin({ port: 0 });
  const { mf, base, pid } = await startMiniflare({
    ...WORKER_OPTIONS,
    ...(webcryptoOnly ? { compatibilityFlags: [] } : {}),
    scriptPath: build,
    modulesRoot: path.dirname(build),
    kvNamespaces: ["CONFIG"],
    bindings: { CONFIG_RELOAD_SECONDS: "300", AUTH_CACHE_SECONDS: "3600" },
  });
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

  const exp = Math.floor(Date.now() / 1000) + 3600;
  const jwtUrl = new URL("/jwt", base).toString();
  const bad = await fetch(jwtUrl, { headers: { authorization: "Bearer x.y.z" } });
  await bad.arrayBuffer();
  if (bad.status !== 401) throw new Error(`a bad token got ${bad.status}`);
  const cases = [];
  for (const alg of algs) {
    const fixed = sign(alg, keys[alg], { iss: `iss-${alg}`, exp });
    // Signed ahead, so that signing does not run between the two requests of a pair.
    const tokens = Array.from({ length: N + 20 }, (_, i) => sign(alg, keys[alg], { iss: `iss-${alg}`, exp, i }));
    const fresh = (i) => [jwtUrl, { authorization: `Bearer ${tokens[i]}` }];
    cases.push({ name: `jwt ${alg}${label}`, pid, bar: BAR_US[alg], fresh, repeat: [jwtUrl, { authorization: `Bearer ${fixed}` }], warm: (i) => fresh(N + i) });
  }
  // basic-auth first login: a user's first login (PBKDF2 + the credential's KV read) against a login that was
  // already verified.
  if (basic) {
    const basicUrl = new URL("/basic", base).toString();
    const login = (u) => [basicUrl, { authorization: "Basic " + Buffer.from(`${u.name}:${u.password}`).toString("base64") }];
    const rest = users.slice(10);
    cases.push({ name: `basic-auth first login${label}`, pid, bar: BAR_US.basic, fresh: (i) => login(rest[i]), repeat: login(users[0]), warm: (i) => login(users[i]), warmCount: 10, count: rest.length });
  }
  return { cases, dispose: async () => { await mf.dispose(); await origin.close(); } };
}

/**
 * Run `cases` (each: pid, fresh(i), repeat, warm(i), count?, warmCount?) interleaved: for each i, for each case,
 * one request repeating a known token or login then one with a new one, so that a change of the machine's
 * load over the run touches every case alike. Per case: median CPU of the new minus that of the known, in us.
 */
async function runCases(cases) {
  for (const c of cases) {
    for (let i = 0; i < 30; i++) await one(c.pid, c.repeat); // warm: compiles the path, verifies once
    for (let i = 0; i < (c.warmCount ?? 20); i++) await one(c.pid, c.warm(i)); // warm the path of a new token
    c.a = [];
    c.b = [];
  }
  let last = null;
  for (let i = 0; i < N; i++) {
    for (const c of cases) {
      if (i >= (c.count ?? N)) continue;
      // A process's first requests after serving none for a while cost more (its caches went cold while the
      // other process ran): when the process changes, three requests that are not counted first.
      if (c.pid !== last) for (let k = 0; k < 3; k++) await one(c.pid, c.repeat);
      last = c.pid;
      c.b.push(await one(c.pid, c.repeat));
      c.a.push(await one(c.pid, c.fresh(i)));
    }
  }
  const out = {};
  for (const c of cases) out[c.name] = { us: (median(c.a) - median(c.b)) / 1000, request_us: median(c.b) / 1000, bar: c.bar };
  return out;
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
  const { mf, base, pid } = await startMiniflare({ ...WORKER_OPTIONS, kvNamespaces: ["KV"], modules: [{ type: "ESModule", path: "micro.mjs", contents: MICRO_WORKER }] });
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

// --floor: the same measurement (a new token or first login against a known one, alternating, medians) on a
// plain JavaScript Worker that does only what any Worker must for a new token: take the token from the
// header, base64url-decode the signature, check it with node:crypto's synchronous `verify` on a KeyObject
// made once from an imported CryptoKey (as src/webcrypto.rs does), remember it in a Map. Known tokens are
// found in the Map. So "floor" is what one verification costs inside a request in this runtime, whatever
// the Worker is written in; the gateway's figure minus the floor is what the gateway adds around it.
// Modes (--floor-modes, default none,node,node+node,subtle,wasm; each alternating with the others, pair by
// pair), steps joined by "+":
//   none     decode, no verification (what the harness and the token's novelty cost by themselves)
//   node     one node:crypto verify of the token (the gateway's path)
//   subtle   one awaited crypto.subtle.verify of the token with the cached CryptoKey
//   wasm     node verify with data and signature passed as views of a 2 MB WebAssembly.Memory
//   rsafix, esfix, edfix   node verify of a fixed RS256 / ES256 / EdDSA signature (another key and message)
//   hash     node:crypto SHA-256 of the signing input
// so "node+node" prices a second, warm verification, "rsafix+node" a verification after another one.
// basic-auth first login, likewise: `kv+pbkdf2` (KV read of the credential, JSON parse, pbkdf2Sync with the
// stored salt and iterations, constant-time compare), `pbkdf2` (credential already in the isolate),
// `kv` (the KV read and parse alone).
const FLOOR_WORKER = `
const enc = new TextEncoder();
const node = globalThis.process.getBuiltinModule("node:crypto");
const seen = new Map();
const creds = new Map();
const keys = {};
const fixed = {};
const memory = new WebAssembly.Memory({ initial: 32 });
const HASH = { RS256: "sha256", ES256: "sha256", EdDSA: undefined };
const PARAMS = {
  RS256: [{ name: "RSASSA-PKCS1-v1_5", hash: "SHA-256" }, { name: "RSASSA-PKCS1-v1_5" }],
  ES256: [{ name: "ECDSA", namedCurve: "P-256" }, { name: "ECDSA", hash: "SHA-256" }],
  EdDSA: [{ name: "Ed25519" }, { name: "Ed25519" }],
};
function unb64url(s) {
  const bin = atob(s.replaceAll("-", "+").replaceAll("_", "/"));
  const out = new Uint8Array(bin.length);
  for (let i = 0; i < bin.length; i++) out[i] = bin.charCodeAt(i);
  return out;
}
function derInt(b) {
  let i = 0;
  while (i < b.length - 1 && b[i] === 0) i++;
  const pad = b[i] & 0x80 ? 1 : 0;
  const out = new Uint8Array(2 + pad + b.length - i);
  out[0] = 2;
  out[1] = pad + b.length - i;
  out.set(b.subarray(i), 2 + pad);
  return out;
}
function toDer(sig) {
  const r = derInt(sig.subarray(0, 32));
  const s = derInt(sig.subarray(32));
  const out = new Uint8Array(2 + r.length + s.length);
  out[0] = 0x30;
  out[1] = r.length + s.length;
  out.set(r, 2);
  out.set(s, 2 + r.length);
  return out;
}
function verifyNode(alg, data, sig) {
  if (!node.verify(HASH[alg], data, keys[alg].node, sig)) throw new Error("bad signature");
}
export default {
  async fetch(req, env) {
    const [, alg, mode] = new URL(req.url).pathname.split("/");
    if (alg === "setup") {
      const body = await req.json();
      for (const [name, f] of Object.entries(body.fixed)) fixed[name] = { alg: f.alg, data: new Uint8Array(f.data), sig: new Uint8Array(f.sig) };
      for (const [a, jwk] of Object.entries(body.jwks)) {
        const key = await crypto.subtle.importKey("jwk", jwk, PARAMS[a][0], false, ["verify"]);
        const k = node.KeyObject.from(key);
        if (a === "ES256") k.dsaEncoding = "ieee-p1363";
        keys[a] = { key, node: k, nodeDer: node.KeyObject.from(key) };
      }
      return new Response("ok");
    }
    if (alg === "prime") {
      for (const user of await req.json()) creds.set(user, await env.CONFIG.get("credentials/basic-auth/" + user));
      return new Response("ok");
    }
    const auth = req.headers.get("authorization") ?? "";
    if (alg === "basic") {
      const memo = auth + "|" + mode;
      if (seen.has(memo)) return new Response("known", { status: 403 });
      const [user, password] = atob(auth.slice(6)).split(":");
      let text = mode === "pbkdf2" ? creds.get(user) : undefined;
      if (text === undefined) text = await env.CONFIG.get("credentials/basic-auth/" + user);
      const cred = JSON.parse(text);
      if (mode !== "kv") {
        const [, , it, salt, hash] = cred.password_hash.split("$");
        const want = unb64url(hash.replaceAll("+", "-").replaceAll("/", "_"));
        const got = node.pbkdf2Sync(password, unb64url(salt.replaceAll("+", "-").replaceAll("/", "_")), Number(it.slice(2)), 32, "sha256");
        if (!node.timingSafeEqual(got, want)) throw new Error("bad password");
      }
      seen.set(memo, true);
      return new Response("", { status: 403 });
    }
    const token = auth.slice(7);
    if (seen.has(token)) return new Response("known", { status: 403 });
    const dot = token.lastIndexOf(".");
    const data = enc.encode(token.slice(0, dot));
    const sig = unb64url(token.slice(dot + 1));
    for (const step of mode.split("+")) {
      if (step === "node") verifyNode(alg, data, sig);
      else if (step === "subtle") {
        if (!(await crypto.subtle.verify(PARAMS[alg][1], keys[alg].key, sig, data))) throw new Error("bad signature");
      } else if (step === "wasm") {
        const view = new Uint8Array(memory.buffer);
        view.set(data, 4096);
        view.set(sig, 8192);
        verifyNode(alg, view.subarray(4096, 4096 + data.length), view.subarray(8192, 8192 + sig.length));
      } else if (step.endsWith("fix")) {
        const f = fixed[step.slice(0, -3)];
        verifyNode(f.alg, f.data, f.sig);
      } else if (step === "hash") node.createHash("sha256").update(data).digest();
      else if (step === "der") {
        // ES256 only: the signature in DER, verified with a KeyObject without dsaEncoding.
        if (!node.verify("sha256", data, keys[alg].nodeDer, toDer(sig))) throw new Error("bad signature");
      } else if (step === "ckey") {
        if (!node.verify(HASH[alg], data, keys[alg].key, alg === "ES256" ? toDer(sig) : sig)) throw new Error("bad signature");
      }
    }
    seen.set(token, true);
    return new Response("", { status: 403 });
  },
};`;

async function floorRows() {
  const { mf, base, pid } = await startMiniflare({ ...WORKER_OPTIONS, kvNamespaces: ["CONFIG"], modules: [{ type: "ESModule", path: "floor.mjs", contents: FLOOR_WORKER }] });
  const algs = option("--algs", "RS256,ES256,EdDSA").split(",").filter((a) => a !== "HS256" && a !== "PS256");
  const modes = option("--floor-modes", "none,node,node+node,subtle,wasm").split(",");
  const keysFor = {};
  const jwks = {};
  for (const alg of new Set([...algs, "RS256", "ES256", "EdDSA"])) {
    const pair = keyPair(alg);
    keysFor[alg] = pair.privateKey;
    jwks[alg] = pair.publicKey.export({ format: "jwk" });
  }
  // Fixed signatures for the *fix steps (rsafix, esfix, edfix): a verification of something else.
  const fixed = {};
  for (const [name, alg] of [["rsa", "RS256"], ["es", "ES256"], ["ed", "EdDSA"]]) {
    const token = sign(alg, keysFor[alg], { iss: "fixed" });
    const dot = token.lastIndexOf(".");
    fixed[name] = { alg, data: [...Buffer.from(token.slice(0, dot))], sig: [...Buffer.from(token.slice(dot + 1), "base64url")] };
  }
  await (await fetch(new URL("/setup", base), { method: "POST", body: JSON.stringify({ jwks, fixed }) })).text();
  const exp = Math.floor(Date.now() / 1000) + 3600;
  const cases = [];
  for (const alg of algs) {
    for (const mode of modes) {
      const url = new URL(`/${alg}/${mode}`, base).toString();
      const tokens = Array.from({ length: N + 20 }, (_, i) => sign(alg, keysFor[alg], { iss: "floor", exp, i, mode }));
      const fixed = sign(alg, keysFor[alg], { iss: "floor", exp, mode });
      cases.push({ name: `floor ${alg} ${mode}`, fresh: (i) => [url, { authorization: `Bearer ${tokens[i]}` }], repeat: [url, { authorization: `Bearer ${fixed}` }], warm: (i) => [url, { authorization: `Bearer ${tokens[N + i]}` }] });
    }
  }
  if (!args.includes("--no-basic")) {
    const kv = await mf.getKVNamespace("CONFIG");
    for (const mode of ["kv+pbkdf2", "pbkdf2", "kv"]) {
      const users = [];
      const names = [];
      for (let i = 0; i < Math.min(N, 300) + 21; i++) {
        const name = `f-${mode}-${i}`;
        const password = crypto.randomBytes(12).toString("base64url");
        const salt = crypto.randomBytes(16);
        const hash = crypto.pbkdf2Sync(password, salt, 10000, 32, "sha256").toString("base64").replace(/=+$/, "");
        await kv.put(`credentials/basic-auth/${name}`, JSON.stringify({ id: `basic-${name}`, consumer_id: "c-bench", username: name, password_hash: `$pbkdf2-sha256$i=10000$${salt.toString("base64").replace(/=+$/, "")}$${hash}` }));
        users.push(`Basic ${Buffer.from(`${name}:${password}`).toString("base64")}`);
        names.push(name);
      }
        if (mode === "pbkdf2") await (await fetch(new URL("/prime", base), { method: "POST", body: JSON.stringify(names) })).text();
      const url = new URL(`/basic/${mode}`, base).toString();
      const n = users.length - 21;
      cases.push({ name: `floor basic ${mode}`, fresh: (i) => [url, { authorization: users[1 + i] }], repeat: [url, { authorization: users[0] }], warm: (i) => [url, { authorization: users[1 + n + i] }], count: n });
    }
  }
  for (const c of cases) c.pid = pid;
  return { cases, dispose: () => mf.dispose() };
}

const runs = [];
if (!args.includes("--floor-only")) runs.push(await gatewayRows());
// --also <build/index.js>: a second build's gateway rows (" B"), interleaved with the first's: an A/B in one run.
if (option("--also", null)) runs.push(await gatewayRows(path.resolve(option("--also", null)), { label: " B" }));
// --also-webcrypto-only: the same build without nodejs_compat (" webcrypto"), interleaved.
if (args.includes("--also-webcrypto-only")) runs.push(await gatewayRows(script, { webcryptoOnly: true, label: " webcrypto" }));
if (args.includes("--floor") || args.includes("--floor-only")) runs.push(await floorRows());
const results = await runCases(runs.flatMap((r) => r.cases));
for (const r of runs) await r.dispose();
if (args.includes("--micro")) Object.assign(results, await microRows());
for (const [name, r] of Object.entries(results)) {
  const verdict = r.bar === undefined ? "" : r.us <= r.bar ? `  (bar <= ${r.bar} us: met)` : `  (bar <= ${r.bar} us: NOT met)`;
  const what = name.startsWith("jwt") ? "CPU per new token" : name.startsWith("basic") ? "CPU per first login"
    : name.startsWith("floor basic") ? "CPU per first login, plain JS Worker" : name.startsWith("floor") ? "CPU per new token, plain JS Worker" : "CPU per operation";
  const req = r.request_us ? `  (a request with a known token or login: ${r.request_us.toFixed(0)} us)` : "";
  const spread = "";
  console.log(`crypto: ${name.padEnd(24)} ${r.us.toFixed(1).padStart(8)} us ${what}${verdict}${req}${spread}`);
}
const json = option("--json", null);
if (json) fs.writeFileSync(json, JSON.stringify(results, null, 2));
process.exit(0);
