#!/usr/bin/env bash
# Build the test-only recovery Worker (tests/recovery-worker) into tests/recovery-worker/build/ the way
# scripts/build builds the gateway: `worker-build --release` with scripts/esbuild-worker as its esbuild,
# so the bundle's default export is the gateway's src/entry.mjs. Skips when nothing changed
# (FORCE_BUILD=1 to force). Run by scripts/test and by tests/recovery.test.mjs.
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
cd "$root"
export PATH="$HOME/.cargo/bin:$PWD/node_modules/.bin:$PATH"

if [[ "${EDGEGATE_SETUP_DONE:-}" != 1 ]]; then
  scripts/setup
fi

# The same lock as scripts/build: both build into target/.
mkdir -p target
exec 8>target/.build.lock
if command -v flock >/dev/null; then flock 8; fi

out=tests/recovery-worker/build
stamp=$out/.stamp
sources=(tests/recovery-worker/src tests/recovery-worker/Cargo.toml tests/recovery-worker/build.sh
  src/entry.mjs scripts/esbuild-worker Cargo.toml Cargo.lock package-lock.json)
if [[ "${FORCE_BUILD:-}" != 1 && -f $out/index.js && -f $out/index_bg.wasm && -f $stamp ]] &&
  [[ -z "$(find "${sources[@]}" -newer "$stamp" -print -quit 2>/dev/null)" ]]; then
  echo "recovery-worker: up to date ($out)" >&2
  exit 0
fi

# As in scripts/build: offline tools, and scripts/esbuild-worker swaps in src/entry.mjs.
WASM_BINDGEN_BIN="$(command -v wasm-bindgen)"
export WASM_BINDGEN_BIN
export WASM_OPT_BIN="$root/node_modules/.bin/wasm-opt"
export ESBUILD_BIN="$root/scripts/esbuild-worker"
mkdir -p "$out"
started=$(mktemp "$out/.stamp.XXXXXX")
trap 'rm -f "$started"' EXIT
echo "recovery-worker: worker-build --release" >&2
(cd tests/recovery-worker && worker-build --release)
# The bundle must carry src/entry.mjs (scripts/esbuild-worker fails the build otherwise; checked again).
grep -q 'unhandledrejection' "$out/index.js" ||
  { echo "recovery-worker: $out/index.js does not contain src/entry.mjs" >&2; exit 1; }
mv -f "$started" "$stamp"
trap - EXIT
