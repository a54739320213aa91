// Miniflare options every benchmarked Worker shares (bench/run.mjs, bench/cpu.mjs), and where the Workers'
// console output goes.
//
// Worker console output (edgegate writes one JSON line per request) goes to a file by default: workerd
// still formats and writes every line, with one write(2) each, but no process of the bench reads them.
// Miniflare's own way is a pipe that the Node process (the one running the origin, on the same two cores)
// reads chunk by chunk through two streams; that costs the bench process ~15 us of CPU per line and the
// gateway row 5-7% of its throughput, a cost of the harness, not of the Worker: in production Workers
// Logs collects console lines outside the Worker. `--pipe-logs` (run.mjs, cpu.mjs) measures the pipe way.
import fs from "node:fs";
import path from "node:path";
import { createRequire } from "node:module";
import { fileURLToPath } from "node:url";

const BENCH_DIR = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..", "target", "bench");

/** Where the Workers' console lines go by default. */
export const WORKER_STDOUT = path.join(BENCH_DIR, "worker-stdout.log");

export const COMPATIBILITY_DATE = "2026-05-01";

export const WORKER_OPTIONS = {
  modules: true,
  modulesRules: [{ type: "CompiledWasm", include: ["**/*.wasm"], fallthrough: true }],
  compatibilityDate: COMPATIBILITY_DATE,
  // As wrangler.toml: node:crypto's synchronous verify for JWT signatures (src/webcrypto.rs).
  compatibilityFlags: ["nodejs_compat"],
  host: "127.0.0.1",
  port: 0,
  structuredWorkerdLogs: false,
  // Whatever still arrives through Miniflare's pipes (stderr; stdout with --pipe-logs) is read and dropped.
  handleRuntimeStdio: (stdout, stderr) => {
    stdout.resume();
    stderr.resume();
  },
};

/**
 * Send workerd's stdout (the Workers' console lines) to `file`, truncated now, for every Miniflare started
 * after this call: Miniflare runs `MINIFLARE_WORKERD_PATH` when it is set, here a two-line sh script
 * (target/bench/workerd) that runs the real workerd with its stdout appended to the file. Returns the
 * file, or null where there is no sh (Windows: the pipe stays).
 * @param {string} [file]
 */
export function workerStdoutToFile(file = WORKER_STDOUT) {
  if (process.platform === "win32") return null;
  const script = path.join(BENCH_DIR, "workerd");
  // A second call keeps the real workerd found by the first (the script must not run itself).
  const given = process.env.MINIFLARE_WORKERD_PATH;
  const workerd = given && given !== script ? given : createRequire(import.meta.url)("workerd").default;
  const quote = (s) => `'${s.replaceAll("'", `'\\''`)}'`;
  fs.mkdirSync(path.dirname(file), { recursive: true });
  fs.writeFileSync(file, "");
  fs.mkdirSync(BENCH_DIR, { recursive: true });
  fs.writeFileSync(script, `#!/bin/sh\nexec ${quote(workerd)} "$@" >>${quote(file)}\n`, { mode: 0o755 });
  process.env.MINIFLARE_WORKERD_PATH = script;
  return file;
}
