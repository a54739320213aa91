// workerd CPU per request, for A/B comparisons of builds (Linux only: reads /proc, pins with taskset).
//
//   node bench/cpu.mjs edgegate [build/index.js] [--seconds 7] [--no-pin] [--pipe-logs]
//   node bench/cpu.mjs bare [--variant request|url|forward] | bare-rust
//   node bench/cpu.mjs row <name> [build/index.js]   (a row of bench/run.mjs: its config, headers and path)
//
// Starts one Worker under Miniflare (edgegate with a one-route config, or a bare pass-through Worker;
// `--variant` picks another way of writing the JS one, bench/worker.js),
// warms it up, pins workerd to CPU 1 and wrk and this process (the origin) to CPU 0, runs wrk -t2 -c32,
// and prints req/s and the CPU time workerd and this process spent per request. Throughput on a shared
// 2-core machine scatters by about 5% from run to run; CPU per request on a pinned core is steadier, so
// compare builds by running them in turn, several times (docs/proxying.md, Performance, was measured so).
// A copy of the build with its JS edited by hand (for example without the console.log) is the quickest
// way to price one operation: pass its index.js as the second argument (the wasm must sit next to it).
// `row` takes any edgegate row of bench/run.mjs (e.g. `row cors`, `row edgegate-rl`), so that a plugin's
// cost is its row's CPU per request minus the `edgegate` row's.

import { Miniflare } from "miniflare";
import { execFileSync, spawn } from "node:child_process";
import fs from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { startOrigin } from "../tests/support/origin.mjs";
import { WORKER_OPTIONS, workerStdoutToFile } from "./worker-options.mjs";

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");
const args = process.argv.slice(2);
const flag = (name) => args.includes(name);
const option = (name, fallback) => (args.includes(name) ? args[args.indexOf(name) + 1] : fallback);
const positional = args.filter(
  (a, i) => !a.startsWith("--") && !(i > 0 && ["--seconds", "--variant"].includes(args[i - 1])),
);
const target = positional[0] ?? "edgegate";
const rowName = target === "row" ? positional[1] : undefined;
const seconds = Number(option("--seconds", "7"));
const pin = !flag("--no-pin");
const variant = option("--variant", undefined);
// Console lines to a file unless --pipe-logs (bench/worker-options.mjs).
if (!flag("--pipe-logs")) workerStdoutToFile();

const origin = await startOrigin({ port: 0 });
const common = WORKER_OPTIONS;
let mf;
let urlPath = "/status/200";
let base;
let headers = {};
let closeRow = null;
if (target === "row") {
  if (positional[2]) process.env.EDGEGATE_BUILD = path.resolve(positional[2]);
  const { TARGETS } = await import("./run.mjs");
  const row = TARGETS.find((t) => t.name === rowName);
  if (!row) {
    console.error(`cpu: no row ${rowName} in bench/run.mjs`);
    process.exit(2);
  }
  const server = await row.start({ origin });
  if (!server.mf) {
    console.error(`cpu: row ${rowName} is not a Miniflare Worker`);
    process.exit(2);
  }
  mf = server.mf;
  base = server.url;
  headers = server.headers ?? {};
  urlPath = row.path;
  closeRow = () => server.close();
} else if (target === "bare") {
  const bindings = { ORIGIN: origin.url, ...(variant ? { VARIANT: variant } : {}) };
  mf = new Miniflare({ ...common, scriptPath: path.join(ROOT, "bench/worker.js"), modulesRoot: ROOT, bindings });
} else if (target === "bare-rust") {
  const dir = path.join(ROOT, "bench/bare-rust");
  mf = new Miniflare({ ...common, scriptPath: path.join(dir, "build/index.js"), modulesRoot: dir, bindings: { ORIGIN: origin.url } });
} else if (target === "edgegate") {
  const script = path.resolve(positional[1] ?? path.join(ROOT, "build/index.js"));
  mf = new Miniflare({
    ...common,
    scriptPath: script,
    modulesRoot: path.dirname(script),
    kvNamespaces: ["CONFIG"],
    bindings: { CONFIG_RELOAD_SECONDS: "30" },
  });
  urlPath = "/proxy/status/200";
} else {
  console.error(`cpu: unknown target ${target} (edgegate, bare, bare-rust, row <name>)`);
  process.exit(2);
}
if (base === undefined) base = new URL(await mf.ready);
if (target === "edgegate") {
  const kv = await mf.getKVNamespace("CONFIG");
  const config = { format_version: 1, services: [{ name: "origin", url: origin.url }], routes: [{ name: "proxy", service: "origin", paths: ["/proxy"] }] };
  await kv.put("config/versions/1", JSON.stringify(config));
  await kv.put("config/current", JSON.stringify({ version: 1, latest: 1, history: [] }));
}
const url = new URL(urlPath, base).toString();
for (let i = 0; i < 300; i++) await (await fetch(url, { headers, redirect: "manual" })).text();

// The workerd that this process's Miniflare started (its child), not another one on the machine.
const workerd = childWorkerd();
/** The pid of the one workerd process descended from this process (Miniflare spawns it). */
function childWorkerd() {
  const children = (pid) => {
    try {
      return fs
        .readdirSync(`/proc/${pid}/task`)
        .flatMap((tid) => fs.readFileSync(`/proc/${pid}/task/${tid}/children`, "utf8").split(" "))
        .filter(Boolean);
    } catch {
      return []; // gone meanwhile
    }
  };
  const comm = (pid) => {
    try {
      return fs.readFileSync(`/proc/${pid}/comm`, "utf8").trim();
    } catch {
      return "";
    }
  };
  const found = [];
  for (let queue = children(process.pid); queue.length > 0; ) {
    const pid = queue.shift();
    if (comm(pid) === "workerd") found.push(pid);
    else queue.push(...children(pid));
  }
  if (found.length !== 1) {
    console.error(`cpu: expected one workerd started by pid ${process.pid}, found ${found.length}`);
    process.exit(1);
  }
  return found[0];
}
/** user + system CPU seconds of a process. */
const cpu = (pid) => {
  const fields = fs.readFileSync(`/proc/${pid}/stat`, "utf8").split(") ")[1].split(" ");
  return (Number(fields[11]) + Number(fields[12])) / 100;
};
if (pin) {
  execFileSync("taskset", ["-a", "-p", "2", workerd]);
  execFileSync("taskset", ["-a", "-p", "1", String(process.pid)]);
}
const w0 = cpu(workerd);
const n0 = cpu(process.pid);
const wrkArgs = ["-t2", "-c32", `-d${seconds}s`, ...Object.entries(headers).flatMap(([k, v]) => ["-H", `${k}: ${v}`]), url];
const out = await new Promise((resolve, reject) => {
  const child = pin ? spawn("taskset", ["1", "wrk", ...wrkArgs]) : spawn("wrk", wrkArgs);
  let text = "";
  child.stdout.on("data", (d) => (text += d));
  child.on("error", reject);
  child.on("close", () => resolve(text));
});
const requests = Number(/(\d+) requests in/.exec(out)?.[1] ?? NaN);
const rps = Number(/Requests\/sec:\s*([\d.]+)/.exec(out)?.[1] ?? NaN);
const perRequest = (seconds) => ((1e6 * seconds) / requests).toFixed(1);
console.log(
  `cpu: ${rowName ?? target}${variant ? ` (${variant})` : ""} ${rps.toFixed(0)} req/s, workerd ${perRequest(cpu(workerd) - w0)} us/request, ` +
    `origin process ${perRequest(cpu(process.pid) - n0)} us/request${pin ? " (pinned)" : ""}`,
);
await (closeRow ? closeRow() : mf.dispose());
await origin.close();
process.exit(0);
