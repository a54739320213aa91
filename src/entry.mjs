// The Worker's default export, in place of the one worker-build generates.
//
// worker-build exports a `WorkerEntrypoint` subclass wrapped in a Proxy: every request constructs an
// entrypoint object, a Proxy around it and a Proxy around its `fetch`, which costs more CPU than routing
// the request does. This module exports a plain `{ fetch }` object instead and keeps what the
// generated one is for: a wasm trap (a panic: the crate builds with panic = "abort") marks the instance
// broken, and the next request starts from a fresh one.
//
// scripts/esbuild-worker puts it in place: worker-build bundles its shim with esbuild, and that script
// (worker-build's ESBUILD_BIN) swaps the shim's `export default` line for
//   import { entry } from ".../src/entry.mjs"; export default entry(exports, checkReinitialize, handleMaybeCritical);
// before running the real esbuild. Those three names are the shim's (worker-build 0.8.7, pinned).

export function entry(exports, checkReinitialize, handleMaybeCritical) {
  // wasm-bindgen-futures runs Rust futures from queueMicrotask callbacks; workerd wraps each such
  // callback in a new native function, a promise reaction does the same job for less. An exception in
  // one then surfaces as an unhandled rejection rather than an error event, so both are watched.
  const resolved = Promise.resolve();
  globalThis.queueMicrotask = (callback) => {
    resolved.then(callback);
  };
  addEventListener("unhandledrejection", (event) => handleMaybeCritical(event.reason));

  const failed = (error) => {
    handleMaybeCritical(error);
    throw error;
  };
  return {
    fetch(request, env, ctx) {
      checkReinitialize();
      try {
        return exports.fetch(request, env, ctx).then(undefined, failed);
      } catch (error) {
        return failed(error);
      }
    },
  };
}
