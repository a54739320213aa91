// Cold config: what the size of a configuration costs the first request of a new isolate (issue 12 section 2).
//
//   node bench/cold-config.mjs [--samples 7] [--sizes 1000,10000] [--json out.json]
//
// For each configuration (1 route, then each size) and each way of storing it (JSON with its compiled form, as
// `edgegate-config push` writes; JSON alone, as a direct KV write), every sample starts a NEW Miniflare (a fresh
// workerd, so a fresh isolate with nothing loaded), stores the configuration, and times from outside the first
// request (a proxied route, answered by a local origin) and then a warm one. Figures are medians over samples.
// Rows:
//   cold config <n> routes   = median first request with <n> routes - median first request with 1 route
//   one-route first request  = median first request with 1 route - median warm request
// The generated configuration mixes prefix, exact, template and regex routes, exact and wildcard hosts, methods,
// header conditions, several services and plugins on a fraction of the routes.
// The compiled forms are made by the CLI (`edgegate-config compile`, target/release, built by scripts/bench).

import { Miniflare } from "miniflare";
import { spawnSync } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { startOrigin } from "../tests/support/origin.mjs";
import { WORKER_OPTIONS } from "./worker-options.mjs";

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");

function parseArgs(argv) {
  const opts = { samples: 7, sizes: [1000, 10000], json: null };
  for (let i = 0; i < argv.length; i++) {
    const [flag, inline] = argv[i].split(/=(.*)/s, 2);
    const value = () => (inline !== undefined ? inline : argv[++i]);
    switch (flag) {
      case "--samples": opts.samples = Math.max(1, Number(value()) | 0); break;
      case "--sizes": opts.sizes = value().split(",").map(Number); break;
      case "--json": opts.json = value(); break;
      default:
        console.error(`cold-config: unknown argument ${argv[i]}`);
        process.exit(2);
    }
  }
  return opts;
}

const SEGS = ["api", "v1", "v2", "users", "orders", "items", "files", "admin", "search", "static"];

/** A realistic configuration with `n` routes (route `n >> 1` is `/bench/{id}`, the one requested). */
export function generate(n, originUrl) {
  const services = Array.from({ length: 8 }, (_, i) => ({ name: `svc${i}`, url: `${originUrl}/s${i}`, timeout_ms: 10000 }));
  const routes = [];
  const plugins = [];
  for (let i = 0; i < n; i++) {
    const a = SEGS[i % SEGS.length];
    const b = SEGS[(i >> 3) % SEGS.length];
    let path;
    switch (i % 10) {
      case 0: case 1: case 2: case 3: path = `/t${i}/${a}`; break;
      case 4: path = `=/t${i}/${a}/health`; break;
      case 5: case 6: path = `/t${i}/${a}/{id}/${b}/{sub}`; break;
      case 7: path = `/t${i}/files/{*rest}`; break;
      default: path = `~^/t${i}/${a}/(?P<id>[0-9]+)(/[a-z]+)?$`;
    }
    const r = { name: `r${i}`, service: `svc${i % services.length}`, paths: [path] };
    if (i % 10 < 3) r.hosts = [i % 2 ? `*.zone${i % 20}.example.com` : `api${i % 50}.example.com`];
    if (i % 3 === 0) r.methods = ["GET", "POST"];
    if (i % 13 === 0) r.headers = { "x-tenant": ["acme", "~^gold-"] };
    if (i % 11 === 0) r.rewrite = path.includes("{id}") ? "/v/{id}" : undefined;
    if (r.rewrite === undefined) delete r.rewrite;
    routes.push(r);
    if (i % 20 === 0) plugins.push({ name: "key-auth", route: r.name });
    if (i % 20 === 10) plugins.push({ name: "proxy-cache", route: r.name, config: { cache_ttl: 60 } });
    if (i % 50 === 5) plugins.push({ name: "rate-limiting", route: r.name, config: { minute: 1000, limit_by: "ip" } });
  }
  const target = n >> 1;
  routes[target] = { name: `r${target}`, service: "svc0", paths: ["/bench/{id}"], methods: ["GET"] };
  for (let k = plugins.length - 1; k >= 0; k--) if (plugins[k].route === `r${target}`) plugins.splice(k, 1);
  return { format_version: 1, services, routes, plugins };
}

function compile(json, dir, name) {
  const file = path.join(dir, `${name}.json`);
  const out = path.join(dir, `${name}.compiled`);
  fs.writeFileSync(file, json);
  const cli = path.join(ROOT, "target", "release", "edgegate-config");
  const res = spawnSync(cli, ["compile", file, "--out", out], { encoding: "utf8" });
  if (res.status !== 0) throw new Error(`edgegate-config compile failed: ${res.stderr || res.error}`);
  return fs.readFileSync(out);
}

async function timed(url) {
  const t0 = performance.now();
  const res = await fetch(url);
  await res.arrayBuffer();
  const ms = performance.now() - t0;
  if (res.status !== 200) throw new Error(`GET ${url}: status ${res.status}`);
  return ms;
}

/** One sample: a fresh Miniflare with the configuration stored; (first request ms, warm request ms). */
async function sample(json, compiled) {
  const mf = new Miniflare({
    ...WORKER_OPTIONS,
    scriptPath: path.join(ROOT, "build", "index.js"),
    modulesRoot: ROOT,
    kvNamespaces: ["CONFIG"],
    bindings: { CONFIG_RELOAD_SECONDS: "30" },
  });
  try {
    const url = new URL(await mf.ready).origin;
    const kv = await mf.getKVNamespace("CONFIG");
    await kv.put("config/versions/1", json);
    if (compiled) await kv.put("config/compiled/1", compiled.buffer.slice(compiled.byteOffset, compiled.byteOffset + compiled.length));
    await kv.put("config/current", JSON.stringify({ version: 1, latest: 1, history: [] }));
    const first = await timed(`${url}/bench/1`);
    // A few warm requests; the median is the warm figure.
    const warm = [];
    for (let i = 0; i < 5; i++) warm.push(await timed(`${url}/bench/${i + 2}`));
    return { first, warm: median(warm) };
  } finally {
    await mf.dispose();
  }
}

function median(xs) {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
}

async function main() {
  const opts = parseArgs(process.argv.slice(2));
  if (!fs.existsSync(path.join(ROOT, "build", "index.js"))) throw new Error("build/index.js is missing: run scripts/build");
  const origin = await startOrigin();
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "edgegate-cold-"));
  try {
    const sizes = [1, ...opts.sizes];
    const docs = sizes.map((n) => {
      const json = JSON.stringify(generate(n, origin.url));
      return { n, json, compiled: compile(json, dir, `c${n}`) };
    });
    const results = {};
    // Interleaved: each round takes one sample of every (size, storage), so drift hits all alike.
    for (let s = 0; s < opts.samples; s++) {
      for (const d of docs) {
        for (const storage of ["compiled", "json"]) {
          const key = `${storage}:${d.n}`;
          const r = await sample(d.json, storage === "compiled" ? d.compiled : null);
          (results[key] ??= { first: [], warm: [] }).first.push(r.first);
          results[key].warm.push(r.warm);
        }
      }
    }
    const med = (key, what) => median(results[key][what]);
    const rows = [];
    for (const storage of ["compiled", "json"]) {
      const base = med(`${storage}:1`, "first");
      rows.push({
        name: `one-route first request over warm (${storage})`,
        ms: base - med(`${storage}:1`, "warm"),
        first_ms: base,
        warm_ms: med(`${storage}:1`, "warm"),
      });
      for (const d of docs.slice(1)) {
        const bar = storage === "compiled" ? (d.n >= 10000 ? 10 : d.n >= 1000 ? 2 : null) : null;
        rows.push({
          name: `cold config ${d.n} routes (${storage})`,
          ms: med(`${storage}:${d.n}`, "first") - base,
          first_ms: med(`${storage}:${d.n}`, "first"),
          json_bytes: d.json.length,
          compiled_bytes: d.compiled.length,
          bar_ms: bar,
        });
      }
    }
    console.log(`\ncold config (fresh isolate per sample, median of ${opts.samples}; time measured from outside)`);
    for (const r of rows) {
      const bar = r.bar_ms == null ? "" : `  bar <= ${r.bar_ms} ms: ${r.ms <= r.bar_ms ? "met" : "NOT met"}`;
      const size = r.json_bytes ? `  (JSON ${(r.json_bytes / 1024).toFixed(0)} KB, compiled ${(r.compiled_bytes / 1024).toFixed(0)} KB)` : "";
      console.log(`  ${r.name.padEnd(48)} ${r.ms.toFixed(1).padStart(7)} ms  (first ${r.first_ms.toFixed(1)} ms)${size}${bar}`);
    }
    if (opts.json) fs.writeFileSync(opts.json, JSON.stringify({ samples: opts.samples, rows, raw: results }, null, 2));
  } finally {
    await origin.close();
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  main().catch((e) => {
    console.error(e);
    process.exit(1);
  });
}
