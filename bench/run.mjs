// Throughput and latency of edgegate under Miniflare, next to the origin alone and a bare pass-through Worker.
//
//   node bench/run.mjs [--duration 10] [--rounds 3] [--connections 32] [--threads 2] [--warmup 2]
//                      [--json out.json] [--only name,name | --all] [--strict] [--pipe-logs]
//
// Each round runs every target once, in turn (so drift in the machine's speed hits every target alike);
// a target's figures are those of its median round by req/s, and ratios are between medians.
// Usually run through scripts/bench, which installs wrk and builds the Worker first.
//
// The Workers' console lines go to target/bench/worker-stdout.log, not through a pipe the bench process
// reads (bench/worker-options.mjs says why); --pipe-logs keeps Miniflare's pipe.
//
// To add a row: push a target onto TARGETS (name, how to start it, the path to load). A target may also name a
// `baseline` target and a `bar`: the summary then prints its req/s ratio to the baseline and whether it meets
// the bar (--strict turns a miss into exit code 1). `optional: true` rows run only with --all or --only.

import { Miniflare } from "miniflare";
import { spawn } from "node:child_process";
import fs from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { startOrigin } from "../tests/support/origin.mjs";
import crypto from "node:crypto";
import { WORKER_OPTIONS, workerStdoutToFile } from "./worker-options.mjs";

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");

// ---------------------------------------------------------------------------------------------------------
// Options

function parseArgs(argv) {
  const opts = {
    duration: 10, rounds: 3, connections: 32, threads: 2, warmup: 2, json: null, only: null, all: false,
    strict: false, pipeLogs: false,
  };
  for (let i = 0; i < argv.length; i++) {
    const [flag, inline] = argv[i].split(/=(.*)/s, 2);
    const value = () => (inline !== undefined ? inline : argv[++i]);
    switch (flag) {
      case "--duration": opts.duration = Number(value()); break;
      case "--rounds": opts.rounds = Math.max(1, Math.floor(Number(value())) || 1); break;
      case "--connections": opts.connections = Number(value()); break;
      case "--threads": opts.threads = Number(value()); break;
      case "--warmup": opts.warmup = Number(value()); break;
      case "--json": opts.json = value(); break;
      case "--only": opts.only = value().split(","); break;
      case "--all": opts.all = true; break;
      case "--strict": opts.strict = true; break;
      case "--pipe-logs": opts.pipeLogs = true; break;
      default:
        console.error(`bench: unknown argument ${argv[i]}`);
        process.exit(2);
    }
  }
  return opts;
}

// ---------------------------------------------------------------------------------------------------------
// Servers under test

/** Start a Miniflare instance on 127.0.0.1 (shared options: bench/worker-options.mjs). */
async function startWorker(options) {
  const mf = new Miniflare({ ...WORKER_OPTIONS, ...options });
  const url = new URL(await mf.ready);
  return { mf, url: url.origin, close: () => mf.dispose() };
}

/** The edgegate Worker (build/index.js) with `config` in service. */
async function startEdgegate(config, extraOptions = {}) {
  // EDGEGATE_BUILD=path/to/index.js benches another build (its wasm next to it), for A/B comparisons.
  const scriptPath = path.resolve(process.env.EDGEGATE_BUILD ?? path.join(ROOT, "build", "index.js"));
  if (!fs.existsSync(scriptPath)) throw new Error(`${scriptPath} is missing: run scripts/build`);
  const worker = await startWorker({
    scriptPath,
    modulesRoot: process.env.EDGEGATE_BUILD ? path.dirname(scriptPath) : ROOT,
    kvNamespaces: ["CONFIG"],
    bindings: { CONFIG_RELOAD_SECONDS: "30" },
    ...extraOptions,
  });
  // The layout the CLI writes (crates/core/src/store.rs): the version first, then the pointer.
  const kv = await worker.mf.getKVNamespace("CONFIG");
  await kv.put("config/versions/1", JSON.stringify(config));
  await kv.put("config/current", JSON.stringify({ version: 1, latest: 1, history: [] }));
  return worker;
}

/** The bare pass-through Worker (bench/worker.js). */
function startBare(originUrl, bindings = {}) {
  return startWorker({
    scriptPath: path.join(ROOT, "bench", "worker.js"),
    modulesRoot: ROOT,
    bindings: { ORIGIN: originUrl, ...bindings },
  });
}

/** The bare pass-through Worker in Rust (bench/bare-rust, built by scripts/bench with the same toolchain). */
function startBareRust(originUrl) {
  const dir = path.join(ROOT, "bench", "bare-rust");
  const scriptPath = path.join(dir, "build", "index.js");
  if (!fs.existsSync(scriptPath)) throw new Error(`${scriptPath} is missing: run scripts/bench (it builds it)`);
  return startWorker({ scriptPath, modulesRoot: dir, bindings: { ORIGIN: originUrl } });
}

function sha256hex(text) {
  return crypto.createHash("sha256").update(text).digest("hex");
}

/** A consumer `c-bench` and one credential record, in the layout of crates/core/src/auth/records.rs. */
async function putIdentity(mf, credentialKey, credential) {
  const kv = await mf.getKVNamespace("CONFIG");
  await kv.put("consumers/c-bench", JSON.stringify({ id: "c-bench", username: "bench", groups: [] }));
  await kv.put("consumer-names/bench", JSON.stringify({ id: "c-bench" }));
  await kv.put(credentialKey, JSON.stringify(credential));
}

/** A compact RS256 JWT signed with node:crypto (independent of the gateway's own code). */
function signRs256(claims, privateKey) {
  const b64 = (v) => Buffer.from(JSON.stringify(v)).toString("base64url");
  const input = `${b64({ alg: "RS256", typ: "JWT" })}.${b64(claims)}`;
  return `${input}.${crypto.sign("sha256", Buffer.from(input), privateKey).toString("base64url")}`;
}

/** The gateway config used by the bench: `/proxy/...` goes to the origin with the prefix stripped. */
function benchConfig(originUrl) {
  return {
    format_version: 1,
    services: [{ name: "origin", url: originUrl }],
    routes: [{ name: "proxy", service: "origin", paths: ["/proxy"] }],
  };
}

// ---------------------------------------------------------------------------------------------------------
// Targets: one row each. `start(ctx)` returns { url, close? }; `path` is what wrk requests. Every row asks
// the origin for `/status/200`, a fixed small JSON body, so that headers a gateway adds upstream do not make
// the origin's answer bigger (its `/echo` returns every request header).

export const TARGETS = [
  {
    name: "origin",
    description: "Node origin, direct",
    start: (ctx) => ({ url: ctx.origin.url }),
    path: "/status/200",
  },
  {
    name: "bare",
    description: "Miniflare, bare JS pass-through Worker",
    start: (ctx) => startBare(ctx.origin.url),
    path: "/status/200",
  },
  {
    // The same pass-through written in Rust and built like edgegate (worker-build, wasm-bindgen, wasm-opt):
    // what any Rust Worker pays on this platform before doing anything. edgegate's bar is against this row.
    name: "bare-rust",
    description: "Miniflare, bare Rust pass-through Worker",
    start: (ctx) => startBareRust(ctx.origin.url),
    path: "/status/200",
    baseline: "bare",
  },
  // Other ways to write the JS pass-through (bench/worker.js VARIANT), only with --only or --all: the
  // `bare` row must be the fastest of them (measure with --only bare,bare-request,bare-url,bare-forward).
  ...["request", "url", "forward", "read-copy", "read-direct", "read-text", "read-orig"].map((variant) => ({
    name: `bare-${variant}`,
    description: `Miniflare, bare JS pass-through Worker, variant "${variant}"`,
    optional: true,
    start: (ctx) => startBare(ctx.origin.url, { VARIANT: variant }),
    path: "/status/200",
    baseline: "bare",
  })),
  {
    // Diagnostic, only with --only or --all: what one JSON log line per request costs under Miniflare.
    name: "bare-log",
    description: "Miniflare, bare Worker + one console.log per request",
    optional: true,
    start: (ctx) => startBare(ctx.origin.url, { LOG: "1" }),
    path: "/status/200",
  },
  {
    name: "edgegate",
    description: "Miniflare, edgegate /proxy route",
    start: (ctx) => startEdgegate(benchConfig(ctx.origin.url)),
    path: "/proxy/status/200",
    baseline: "bare-rust",
    bar: 0.9,
    // Also shown against the JS pass-through, for the whole cost of Rust + gateway.
    alsoAgainst: "bare",
  },
  {
    // The same route with the proxy-cache plugin: after the first request every request is a cache hit
    // (Miniflare's local Cache API), compared with the uncached `edgegate` row of the same run.
    name: "cache-hit",
    description: "Miniflare, edgegate /proxy route, proxy-cache hit",
    start: (ctx) => {
      const config = benchConfig(ctx.origin.url);
      config.plugins = [{ name: "proxy-cache", route: "proxy", config: { cache_ttl: 3600 } }];
      return startEdgegate(config);
    },
    path: "/proxy/status/200",
    baseline: "edgegate",
  },
  {
    // The same route to a service with three targets (weighted round-robin, docs/upstreams.md): the
    // bench origin and two more origins of the same code, so that the balancer's choice is paid per request.
    name: "three-targets",
    description: "Miniflare, edgegate /proxy route, service with 3 targets",
    start: async (ctx) => {
      const extra = [await startOrigin({ port: 0 }), await startOrigin({ port: 0 })];
      const config = benchConfig(ctx.origin.url);
      config.services = [
        { name: "origin", targets: [ctx.origin, ...extra].map((o) => ({ url: o.url, weight: 100 })) },
      ];
      const worker = await startEdgegate(config);
      return {
        ...worker,
        close: async () => {
          await worker.close();
          for (const o of extra) await o.close();
        },
      };
    },
    path: "/proxy/status/200",
    baseline: "edgegate",
    bar: 0.9,
  },
  {
    // The same route with request-transformer (docs/transformations.md): header and query rules with templates.
    name: "request-transformer",
    description: "Miniflare, edgegate /proxy route + request-transformer (headers, query, templates)",
    start: (ctx) => {
      const config = benchConfig(ctx.origin.url);
      config.plugins = [{
        name: "request-transformer",
        route: "proxy",
        config: {
          remove: { headers: ["x-debug"] },
          add: { headers: ["x-tenant:$(headers.x-tenant or 'public')"], querystring: ["source:edge"] },
          append: { headers: ["x-via:bench"] },
        },
      }];
      return startEdgegate(config);
    },
    path: "/proxy/status/200",
    baseline: "edgegate",
    bar: 0.9,
  },
  {
    // The same route with response-transformer: header rules and a JSON body rule (the small JSON answer is
    // read, changed and re-encoded).
    name: "response-transformer",
    description: "Miniflare, edgegate /proxy route + response-transformer (headers, JSON field)",
    start: (ctx) => {
      const config = benchConfig(ctx.origin.url);
      config.plugins = [{
        name: "response-transformer",
        route: "proxy",
        config: { remove: { headers: ["x-origin"] }, add: { headers: ["x-edge:1"], json: ["edge:true"], json_types: ["boolean"] } },
      }];
      return startEdgegate(config);
    },
    path: "/proxy/status/200",
    baseline: "edgegate",
    bar: 0.9,
  },
  {
    // Diagnostic, only with --only or --all: response-transformer with header rules only (the body streams
    // through), to tell the cost of the JSON body rewrite from that of the header rules.
    name: "response-transformer-headers",
    description: "Miniflare, edgegate /proxy route + response-transformer (headers only)",
    start: (ctx) => {
      const config = benchConfig(ctx.origin.url);
      config.plugins = [{
        name: "response-transformer",
        route: "proxy",
        config: { remove: { headers: ["x-origin"] }, add: { headers: ["x-edge:1"] } },
      }];
      return startEdgegate(config);
    },
    path: "/proxy/status/200",
    baseline: "edgegate",
    optional: true,
  },
  {
    // The same route behind geo-restriction (docs/traffic-policies.md): the country comes from request.cf,
    // which Miniflare fills from the MF-CF-Blob header here.
    name: "geo-restriction",
    description: "Miniflare, edgegate /proxy route + geo-restriction",
    start: async (ctx) => {
      const config = benchConfig(ctx.origin.url);
      config.plugins = [{ name: "geo-restriction", route: "proxy", config: { allow_countries: ["DE", "FR", "US"] } }];
      const worker = await startEdgegate(config);
      return { ...worker, headers: { "MF-CF-Blob": JSON.stringify({ country: "DE" }) } };
    },
    path: "/proxy/status/200",
    baseline: "edgegate",
    bar: 0.9,
  },
  {
    // The same route with request-size-limiting: wrk's GETs carry no body, so this is the plugin's
    // per-request decision (Content-Length absent, nothing to count).
    name: "request-size-limiting",
    description: "Miniflare, edgegate /proxy route + request-size-limiting",
    start: (ctx) => {
      const config = benchConfig(ctx.origin.url);
      config.plugins = [{ name: "request-size-limiting", route: "proxy", config: { allowed_payload_size: 1 } }];
      return startEdgegate(config);
    },
    path: "/proxy/status/200",
    baseline: "edgegate",
    bar: 0.9,
  },
  {
    // request-termination on the route (a maintenance page, status 200 so that wrk counts no errors): answered
    // at the edge, the origin is not called.
    name: "request-termination",
    description: "Miniflare, edgegate /proxy route + request-termination (answered at the edge)",
    start: (ctx) => {
      const config = benchConfig(ctx.origin.url);
      config.plugins = [
        { name: "request-termination", route: "proxy", config: { status_code: 200, message: "down for maintenance" } },
      ];
      return startEdgegate(config);
    },
    path: "/proxy/status/200",
    baseline: "edgegate",
    bar: 0.9,
  },
  {
    // redirect on the route: a 301 answered at the edge with the incoming path kept.
    name: "redirect",
    description: "Miniflare, edgegate /proxy route + redirect (answered at the edge)",
    start: (ctx) => {
      const config = benchConfig(ctx.origin.url);
      config.plugins = [
        { name: "redirect", route: "proxy", config: { location: "https://new.example.com/", keep_incoming_path: true } },
      ];
      return startEdgegate(config);
    },
    path: "/proxy/status/200",
    baseline: "edgegate",
    bar: 0.9,
  },
  {
    // The same route behind key-auth: one KV lookup per isolate and TTL, then the in-isolate cache.
    name: "key-auth",
    description: "Miniflare, edgegate /proxy route + key-auth",
    start: async (ctx) => {
      const config = benchConfig(ctx.origin.url);
      config.plugins = [{ name: "key-auth", route: "proxy" }];
      const worker = await startEdgegate(config);
      const key = "eg_" + crypto.randomBytes(32).toString("base64url");
      await putIdentity(worker.mf, `credentials/key-auth/${sha256hex(key)}`, { id: "bench", consumer_id: "c-bench" });
      return { ...worker, headers: { apikey: key } };
    },
    path: "/proxy/status/200",
    baseline: "edgegate",
  },
  {
    // The same route with cors (a listed origin, credentials): the headers are added to every response.
    name: "cors",
    description: "Miniflare, edgegate /proxy route + cors",
    start: async (ctx) => {
      const config = benchConfig(ctx.origin.url);
      config.plugins = [
        { name: "cors", route: "proxy", config: { origins: ["https://app.example.com"], credentials: true } },
      ];
      const worker = await startEdgegate(config);
      return { ...worker, headers: { origin: "https://app.example.com" } };
    },
    path: "/proxy/status/200",
    baseline: "edgegate",
    bar: 0.9,
  },
  {
    // The same route with opentelemetry at sampling_rate 0: the span context, the traceparent and the log
    // hook run on every request, nothing is exported (the price of the plugin without the collector's).
    name: "opentelemetry",
    description: "Miniflare, edgegate /proxy route + opentelemetry (sampling_rate 0)",
    optional: true,
    start: (ctx) =>
      startEdgegate({
        ...benchConfig(ctx.origin.url),
        plugins: [
          { name: "opentelemetry", route: "proxy", config: { traces_endpoint: "http://127.0.0.1:9/v1/traces", sampling_rate: 0 } },
        ],
      }),
    path: "/proxy/status/200",
    baseline: "edgegate",
  },
  {
    // The same route behind ip-restriction (the client's CF-Connecting-IP, 127.0.0.1, in an allowed range).
    name: "ip-restriction",
    description: "Miniflare, edgegate /proxy route + ip-restriction",
    start: (ctx) => {
      const config = benchConfig(ctx.origin.url);
      config.plugins = [
        { name: "ip-restriction", route: "proxy", config: { allow: ["127.0.0.0/8", "10.0.0.0/8", "2001:db8::/32"] } },
      ];
      return startEdgegate(config);
    },
    path: "/proxy/status/200",
    baseline: "edgegate",
    bar: 0.9,
  },
  {
    // The same route behind jwt with an RS256 public key: one signature verification per request.
    name: "jwt-rs256",
    description: "Miniflare, edgegate /proxy route + jwt (RS256)",
    start: async (ctx) => {
      const config = benchConfig(ctx.origin.url);
      config.plugins = [{ name: "jwt", route: "proxy" }];
      const worker = await startEdgegate(config);
      const { publicKey, privateKey } = crypto.generateKeyPairSync("rsa", { modulusLength: 2048 });
      await putIdentity(worker.mf, "credentials/jwt/bench-issuer", {
        id: "bench-jwt",
        consumer_id: "c-bench",
        key: "bench-issuer",
        algorithms: ["RS256"],
        public_key: publicKey.export({ type: "spki", format: "pem" }),
      });
      const token = signRs256({ iss: "bench-issuer", exp: Math.floor(Date.now() / 1000) + 3600 }, privateKey);
      return { ...worker, headers: { authorization: `Bearer ${token}` } };
    },
    path: "/proxy/status/200",
    baseline: "edgegate",
  },
  {
    // The same route with a rate-limiting policy counted by the RateLimiter Durable Object (one key: every
    // request from wrk is one client, so one object takes the whole load; the limit is never reached), in
    // the default lease mode: most requests are decided from permits leased to the isolate.
    name: "edgegate-rl",
    description: "route + DO limit (lease)",
    start: (ctx) =>
      startEdgegate(
        {
          ...benchConfig(ctx.origin.url),
          plugins: [{ name: "rate-limiting", config: { minute: 1_000_000_000, limit_by: "ip" } }],
        },
        { durableObjects: { RATE_LIMITER: { className: "RateLimiter", useSQLite: true } } },
      ),
    path: "/proxy/status/200",
    baseline: "edgegate",
    bar: 0.9,
  },
  {
    // The same limit with `lease: false`: one Durable Object round trip per request.
    name: "edgegate-rl-per-request",
    description: "route + DO limit (per-request)",
    start: (ctx) =>
      startEdgegate(
        {
          ...benchConfig(ctx.origin.url),
          plugins: [{ name: "rate-limiting", config: { minute: 1_000_000_000, limit_by: "ip", lease: false } }],
        },
        { durableObjects: { RATE_LIMITER: { className: "RateLimiter", useSQLite: true } } },
      ),
    path: "/proxy/status/200",
    baseline: "edgegate",
  },
  {
    // Diagnostic: the same limit counted in isolate memory (policy local), no Durable Object round trip.
    name: "edgegate-rl-local",
    description: "Miniflare, edgegate /proxy route + local rate limit",
    optional: true,
    start: (ctx) =>
      startEdgegate({
        ...benchConfig(ctx.origin.url),
        plugins: [{ name: "rate-limiting", config: { minute: 1_000_000_000, limit_by: "ip", policy: "local" } }],
      }),
    path: "/proxy/status/200",
    baseline: "edgegate",
  },
];

// ---------------------------------------------------------------------------------------------------------
// wrk

function run(cmd, args) {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { stdio: ["ignore", "pipe", "pipe"] });
    let out = "";
    let err = "";
    child.stdout.on("data", (d) => (out += d));
    child.stderr.on("data", (d) => (err += d));
    child.on("error", reject);
    child.on("close", (code) =>
      code === 0 ? resolve(out) : reject(new Error(`${cmd} exited with ${code}: ${err || out}`)),
    );
  });
}

/** wrk prints "1.23ms", "850.00us", "1.02s", "2.00m". */
function toMs(text) {
  const m = /^([\d.]+)(us|ms|s|m)$/.exec(text.trim());
  if (!m) return NaN;
  const n = Number(m[1]);
  return { us: n / 1000, ms: n, s: n * 1000, m: n * 60_000 }[m[2]];
}

function parseWrk(out) {
  const pick = (re) => re.exec(out)?.[1];
  const socketErrors = /Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)/.exec(out);
  return {
    rps: Number(pick(/Requests\/sec:\s+([\d.]+)/)),
    p50_ms: toMs(pick(/^\s+50%\s+(\S+)/m) ?? ""),
    p99_ms: toMs(pick(/^\s+99%\s+(\S+)/m) ?? ""),
    requests: Number(pick(/(\d+) requests in/)),
    non_2xx: Number(pick(/Non-2xx or 3xx responses: (\d+)/) ?? 0),
    socket_errors: socketErrors ? socketErrors.slice(1).reduce((a, b) => a + Number(b), 0) : 0,
  };
}

async function wrk(url, opts, seconds, headers = {}) {
  const out = await run("wrk", [
    `-t${opts.threads}`,
    `-c${opts.connections}`,
    `-d${seconds}s`,
    "--latency",
    ...Object.entries(headers).flatMap(([k, v]) => ["-H", `${k}: ${v}`]),
    url,
  ]);
  return parseWrk(out);
}

// ---------------------------------------------------------------------------------------------------------

async function checkTarget(url, headers = {}) {
  // Not following redirects: the redirect row answers 301 to another host.
  const res = await fetch(url, { headers, redirect: "manual" });
  const body = await res.text();
  if (res.status !== 200 && res.status !== 301) throw new Error(`GET ${url} answered ${res.status}: ${body.slice(0, 500)}`);
}

function fmt(n, digits = 0) {
  return Number.isFinite(n) ? n.toFixed(digits) : "-";
}

async function main() {
  const opts = parseArgs(process.argv.slice(2));
  const logFile = opts.pipeLogs ? null : workerStdoutToFile();
  const targets = TARGETS.filter((t) => (opts.only ? opts.only.includes(t.name) : opts.all || !t.optional));
  const origin = await startOrigin({ port: 0 });
  const ctx = { origin };
  const rounds = new Map(targets.map((t) => [t.name, []]));
  console.log(
    `bench: wrk -t${opts.threads} -c${opts.connections} -d${opts.duration}s --latency ` +
      `(after ${opts.warmup}s warm-up), ${opts.rounds} round(s), origin ${origin.url}`,
  );
  console.log(
    logFile
      ? `bench: Worker console output to ${path.relative(ROOT, logFile)} (--pipe-logs: through Miniflare's pipe)`
      : "bench: Worker console output through Miniflare's pipe, read by this process",
  );
  try {
    for (let round = 1; round <= opts.rounds; round++) {
      for (const target of targets) {
        const server = await target.start(ctx);
        try {
          const url = server.url + target.path;
          const headers = server.headers ?? {};
          await checkTarget(url, headers);
          if (opts.warmup > 0) await wrk(url, opts, opts.warmup, headers);
          const r = await wrk(url, opts, opts.duration, headers);
          rounds.get(target.name).push({ name: target.name, description: target.description, url, ...r });
          console.log(
            `bench: round ${round} ${target.name.padEnd(10)} ${fmt(r.rps).padStart(7)} req/s  ` +
              `p50 ${fmt(r.p50_ms, 2)} ms  p99 ${fmt(r.p99_ms, 2)} ms`,
          );
        } finally {
          await server.close?.();
        }
      }
    }
  } finally {
    await origin.close();
  }
  // Each target's median round (by req/s), with the spread of its rounds.
  const results = targets.map((t) => {
    const runs = [...rounds.get(t.name)].sort((a, b) => a.rps - b.rps);
    const median = runs[Math.floor((runs.length - 1) / 2)];
    return { ...median, rounds: runs.map((r) => r.rps), min_rps: runs[0].rps, max_rps: runs[runs.length - 1].rps };
  });

  // Summary table
  const byName = new Map(results.map((r) => [r.name, r]));
  console.log("");
  console.log("| target | what | req/s (median) | rounds min-max | p50 ms | p99 ms | errors |");
  console.log("|---|---|---:|---:|---:|---:|---:|");
  for (const r of results) {
    console.log(
      `| ${r.name} | ${r.description} | ${fmt(r.rps)} | ${fmt(r.min_rps)}-${fmt(r.max_rps)} | ` +
        `${fmt(r.p50_ms, 2)} | ${fmt(r.p99_ms, 2)} | ${r.non_2xx + r.socket_errors} |`,
    );
  }
  let missed = false;
  console.log("");
  for (const t of targets) {
    const r = byName.get(t.name);
    const base = t.baseline && byName.get(t.baseline);
    if (!r || !base) continue;
    const ratio = r.rps / base.rps;
    r.ratio = { baseline: t.baseline, value: ratio, bar: t.bar };
    const ok = t.bar === undefined || ratio >= t.bar;
    if (!ok) missed = true;
    console.log(
      `bench: ${t.name}/${t.baseline} req/s ratio ${ratio.toFixed(2)}` +
        (t.bar === undefined ? "" : ` (bar >= ${t.bar}: ${ok ? "met" : "MISSED"})`),
    );
  }
  for (const t of targets) {
    const r = byName.get(t.name);
    const base = t.alsoAgainst && byName.get(t.alsoAgainst);
    if (r && base) console.log(`bench: ${t.name}/${t.alsoAgainst} req/s ratio ${(r.rps / base.rps).toFixed(2)}`);
  }
  for (const r of results) {
    if (r.non_2xx + r.socket_errors > 0) {
      console.log(`bench: WARNING ${r.name}: ${r.non_2xx} non-2xx responses, ${r.socket_errors} socket errors`);
    }
  }
  if (opts.json) {
    fs.writeFileSync(opts.json, JSON.stringify({ options: opts, results }, null, 2) + "\n");
    console.log(`bench: results written to ${opts.json}`);
  }
  if (missed && opts.strict) process.exit(1);
}

// bench/cpu.mjs imports TARGETS; only a direct run benches.
if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  main().then(
    // Miniflare can leave handles open briefly after dispose.
    () => process.exit(0),
    (err) => {
      console.error(`bench: ${err.stack || err}`);
      process.exit(1);
    },
  );
}
