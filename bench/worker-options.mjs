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
import os from "node:os";
import path from "node:path";
import { createRequire } from "node:module";

export const COMPATIBILITY_DATE = "2026-05-01";

export const WORKER_OPTIONS = {
  modules: true,
  modulesRules: [{ type: "CompiledWasm", include: ["**/*.wasm"], fallthrough: true }],
  compatibilityDate: COMPATIBILITY_DATE,
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
 * after this call: Miniflare runs `MINIFLARE_WORKERD_PATH` when it is set, here a two-line sh script that
 * runs the real workerd with its stdout appended to the file. Returns the file, or null where there is no
 * sh (Windows: the pipe stays).
 * @param {string} file
 */
export function workerStdoutToFile(file) {
  if (process.platform === "win32") return null;
  const workerd = process.env.MINIFLARE_WORKERD_PATH ?? createRequire(import.meta.url)("workerd").default;
  const quote = (s) => `'${s.replaceAll("'", `'\\''`)}'`;
  fs.mkdirSync(path.dirname(file), { recursive: true });
  fs.writeFileSync(file, "");
  const script = path.join(fs.mkdtempSync(path.join(os.tmpdir(), "edgegate-bench-")), "workerd");
  fs.writeFileSync(script, `#!/bin/sh\nexec ${quote(workerd)} "$@" >>${quote(file)}\n`, { mode: 0o755 });
  process.env.MINIFLARE_WORKERD_PATH = script;
  return file;
}
