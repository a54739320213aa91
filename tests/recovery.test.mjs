// Recovery after a panic or an out-of-memory abort (docs/proxying.md, "Panics and out-of-memory").
//
// The gateway builds with panic = "abort": a panic, or an allocation the runtime cannot satisfy, ends in a
// wasm trap. src/entry.mjs (the bundle's default export, put in place by scripts/esbuild-worker) must then
// mark the instance broken so that the next request starts on a fresh one; without that, one bad request
// would break every later request on the isolate. The gateway has no route that panics, so this runs the
// test-only Worker tests/recovery-worker, built the same way (tests/recovery-worker/build.sh: worker-build,
// scripts/esbuild-worker, src/entry.mjs, the workspace's release profile) and, like the gateway, on the
// `worker` crate, whose panic hook logs `Critical Error: Rust panic: <message>`. Its `/ok` answers
// {"served": N}, N counting the requests its wasm instance has seen.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import path from "node:path";
import { Miniflare } from "miniflare";
import { ROOT, request, waitFor } from "./support/harness.mjs";

const OUT = path.join(ROOT, "tests", "recovery-worker", "build");
let mf;
let base;
const logs = [];

before(async () => {
  // A no-op when scripts/test has built it already.
  execFileSync(path.join(ROOT, "tests", "recovery-worker", "build.sh"), { stdio: "inherit" });
  mf = new Miniflare({
    modules: true,
    scriptPath: path.join(OUT, "index.js"),
    modulesRoot: OUT,
    modulesRules: [{ type: "CompiledWasm", include: ["**/*.wasm"], fallthrough: true }],
    compatibilityDate: "2026-05-01",
    host: "127.0.0.1",
    port: 0,
    handleStructuredLogs: ({ level, message }) => {
      logs.push({ level, message });
    },
  });
  base = new URL(await mf.ready);
}, { timeout: 15 * 60_000 }); // a cold release build on a loaded machine

after(async () => {
  if (process.env.RECOVERY_DUMP_LOGS) console.log(logs);
  await mf?.dispose();
});

const get = (p) => request(new URL(p, base).toString(), { timeoutMs: 60_000 });

/** GET /ok `times` times: every answer is 200 and the instance's count goes up by one each time. */
async function servedInOrder(times) {
  const counts = [];
  for (let i = 0; i < times; i++) {
    const res = await get("/ok");
    assert.equal(res.status, 200, `GET /ok after the failure: ${res.text}`);
    counts.push(res.json().served);
  }
  for (let i = 1; i < times; i++) assert.equal(counts[i], counts[0] + i, `counts ${counts}`);
  return counts;
}

/** The log lines written since `from`, as text. */
const linesSince = (from) => logs.slice(from).map((l) => `${l.level}: ${l.message}`);

/**
 * Request `route`, which fails inside the wasm; then the next requests must be answered by a fresh instance
 * (its count starts again at 1), and the log must show the trap and the re-initialisation.
 */
async function failsThenRecovers(route) {
  const before = await servedInOrder(3);
  assert.ok(before[2] >= 3);
  const from = logs.length;

  const failed = await get(route);
  assert.equal(failed.status, 500, `GET ${route}: ${failed.text}`);
  await waitFor(() => linesSince(from).some((l) => /^error: Critical RuntimeError/.test(l)), {
    timeoutMs: 10_000,
    what: `the "Critical RuntimeError" line after GET ${route}`,
  });

  const after = await servedInOrder(5);
  assert.equal(after[0], 1, `the request after GET ${route} was served by a fresh instance (count ${after[0]})`);
  assert.ok(linesSince(from).some((l) => l === "log: Reinitializing Wasm application"), linesSince(from).join("\n"));
  return linesSince(from);
}

/** The log lines among `lines` that carry a panic's message (the `worker` crate's panic hook). */
const panicLines = (lines) => lines.filter((l) => l.startsWith("error: Critical Error: Rust panic: panicked at "));

test("the normal route answers, on one instance", async () => {
  const counts = await servedInOrder(3);
  assert.equal(counts[0], 1);
});

test("a panic while fetch runs: 500, its message in the log, the next requests answered by a fresh instance", async () => {
  const lines = await failsThenRecovers("/panic");
  const panics = panicLines(lines);
  assert.equal(panics.length, 1, lines.join("\n"));
  assert.match(panics[0], /at tests\/recovery-worker\/src\/lib\.rs:\d+:\d+:\s+recovery-worker: synchronous panic on purpose/);
});

test("a panic inside the request's future, after an await: the same", async () => {
  const lines = await failsThenRecovers("/panic-async");
  const panics = panicLines(lines);
  assert.equal(panics.length, 1, lines.join("\n"));
  assert.match(panics[0], /:\d+:\d+:\s+recovery-worker: panic after an await, on purpose/);
});

test("out of memory (the wasm memory cannot grow further): the same", async () => {
  const lines = await failsThenRecovers("/oom");
  // Not a panic: Rust aborts on a failed allocation without calling the panic hook.
  assert.deepEqual(panicLines(lines), []);
  const oom = lines.find((l) => l.startsWith('log: {"event":"oom"'));
  assert.ok(oom, lines.join("\n"));
  // It held far more than a Worker may use in production (128 MB) before an allocation failed: locally
  // workerd sets no such limit, and the wasm memory stops growing at 4 GiB, wasm32's address space.
  assert.ok(JSON.parse(oom.slice(5)).held_bytes >= 128 << 20, oom);
});

test("after all that, still one instance per failure and not more", async () => {
  const counts = await servedInOrder(4);
  assert.ok(counts[0] >= 6, `counts ${counts}`);
  assert.equal(logs.filter((l) => l.message === "Reinitializing Wasm application").length, 3);
});
