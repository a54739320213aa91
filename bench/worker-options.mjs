// Miniflare options every benchmarked Worker shares (bench/run.mjs, bench/cpu.mjs).
//
// Worker console output (edgegate writes one line per request) is drained unread: workerd still writes
// every line, but the bench process, which also runs the origin, does not parse them (in production
// Workers Logs collects them outside the Worker).
export const COMPATIBILITY_DATE = "2026-05-01";

export const WORKER_OPTIONS = {
  modules: true,
  modulesRules: [{ type: "CompiledWasm", include: ["**/*.wasm"], fallthrough: true }],
  compatibilityDate: COMPATIBILITY_DATE,
  host: "127.0.0.1",
  port: 0,
  structuredWorkerdLogs: false,
  handleRuntimeStdio: (stdout, stderr) => {
    stdout.resume();
    stderr.resume();
  },
};
