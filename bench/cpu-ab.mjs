// A/B of two builds' workerd CPU per request on bench/run.mjs rows, alternating many short wrk runs so that
// drift in a shared machine's load hits both builds alike (Linux only: reads /proc, pins with taskset).
//
//   node bench/cpu-ab.mjs <a/index.js> <b/index.js> <row>[,<row>...] [--reps 8] [--seconds 2]
//
// Every row is started once per build (its config, headers and path as in bench/run.mjs); then, `reps`
// times, each server in turn gets `wrk -t2 -c32 -d<seconds>s` with its workerd pinned to CPU 1 and wrk to
// CPU 0. Prints, per row and build, the median and minimum workerd CPU per request (us) over the reps.
import { execFileSync, spawn } from "node:child_process";
import fs from "node:fs";
import path from "node:path";
import { startOrigin } from "../tests/support/origin.mjs";
import { workerStdoutToFile } from "./worker-options.mjs";

const args = process.argv.slice(2);
const option = (name, fallback) => (args.includes(name) ? args[args.indexOf(name) + 1] : fallback);
const [buildA, buildB, rowList] = args.filter((a, i) => !a.startsWith("--") && !["--reps", "--seconds"].includes(args[i - 1]));
const reps = Number(option("--reps", "8"));
const seconds = Number(option("--seconds", "2"));
workerStdoutToFile();
const { TARGETS } = await import("./run.mjs");

const descendants = (pid) => {
  const out = [];
  const queue = [String(pid)];
  while (queue.length) {
    const p = queue.shift();
    let kids = [];
    try {
      kids = fs.readdirSync(`/proc/${p}/task`).flatMap((t) => fs.readFileSync(`/proc/${p}/task/${t}/children`, "utf8").split(" ")).filter(Boolean);
    } catch {}
    for (const k of kids) {
      out.push(k);
      queue.push(k);
    }
  }
  return out;
};
const workerds = () => new Set(descendants(process.pid).filter((p) => {
  try {
    return fs.readFileSync(`/proc/${p}/comm`, "utf8").trim() === "workerd";
  } catch {
    return false;
  }
}));
const cpu = (pid) => {
  const f = fs.readFileSync(`/proc/${pid}/stat`, "utf8").split(") ")[1].split(" ");
  return (Number(f[11]) + Number(f[12])) / 100;
};
const wrk = (url, headers, secs) => new Promise((resolve, reject) => {
  const a = ["1", "wrk", "-t2", "-c32", `-d${secs}s`, ...Object.entries(headers).flatMap(([k, v]) => ["-H", `${k}: ${v}`]), url];
  const child = spawn("taskset", a);
  let text = "";
  child.stdout.on("data", (d) => (text += d));
  child.on("error", reject);
  child.on("close", () => resolve(Number(/(\d+) requests in/.exec(text)?.[1] ?? NaN)));
});

const origin = await startOrigin({ port: 0 });
execFileSync("taskset", ["-a", "-p", "1", String(process.pid)]);
const servers = [];
for (const name of rowList.split(",")) {
  const row = TARGETS.find((t) => t.name === name);
  if (!row) throw new Error(`no row ${name}`);
  for (const [label, build] of [["A", buildA], ["B", buildB]]) {
    process.env.EDGEGATE_BUILD = path.resolve(build);
    const before = workerds();
    const server = await row.start({ origin });
    const pid = [...workerds()].find((p) => !before.has(p));
    execFileSync("taskset", ["-a", "-p", "2", pid]);
    const url = server.url + row.path;
    const headers = server.headers ?? {};
    for (let i = 0; i < 300; i++) await (await fetch(url, { headers, redirect: "manual" })).text();
    servers.push({ name, label, server, pid, url, headers, us: [] });
  }
}
for (let r = 0; r < reps; r++) {
  for (const s of servers) {
    const c0 = cpu(s.pid);
    const n = await wrk(s.url, s.headers, seconds);
    s.us.push((1e6 * (cpu(s.pid) - c0)) / n);
  }
}
for (const s of servers) {
  const v = [...s.us].sort((a, b) => a - b);
  console.log(`cpu-ab: ${s.name.padEnd(22)} ${s.label} median ${v[Math.floor(v.length / 2)].toFixed(0)} min ${v[0].toFixed(0)} us/request  (${v.map((x) => x.toFixed(0)).join(" ")})`);
}
for (const s of servers) await s.server.close?.();
await origin.close();
process.exit(0);
