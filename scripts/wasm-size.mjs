// Where the wasm's bytes are: code bytes per crate and per function, from the wasm's `name` section.
//
//   node scripts/wasm-size.mjs [file.wasm] [--top N] [--crates N] [--grep REGEX] [--json]
//
// Default file: target/wasm32-unknown-unknown/release/edgegate.wasm, the linker's output before
// wasm-bindgen and wasm-opt (it still has the `name` section; scripts/build drops that section from
// build/index_bg.wasm, so run `KEEP_WASM_NAMES=1 scripts/build` to measure the final file instead).
// Its code section is about 23% larger than the final one (wasm-opt inlines and folds), the split similar.
//
// For each function: its body's bytes in the code section ("raw") and its name, demangled roughly
// (legacy `_ZN...E` and already demangled names; the `::h<hash>` suffix dropped; v0 `_R...` names are
// left mangled but counted for their crate). A function is counted
// for the crate of the first path in its name: `<serde_json::de::Deserializer<R> as serde::Deserializer>
// ::deserialize_any` counts for serde_json, `<edgegate_core::config::RouteConfig as Deserialize>::
// deserialize::__Visitor::visit_map` (serde's derive, monomorphized) for edgegate_core. "gzip" is the
// gzip -9 size of the crate's function bodies concatenated, alone: what the crate would add to the
// gzipped file, roughly (the shares add up to a bit more than the whole, since gzip finds less to share).
// --dups N lists the N names with the most bytes in several copies (monomorphized generic code: one copy
// per type parameter; the names do not say which). --grep REGEX lists the functions whose demangled name matches (with a total), for example
// `--grep 'as serde::de::Deserialize>'` for serde's derived deserializers.
import fs from "node:fs";
import path from "node:path";
import zlib from "node:zlib";
import { fileURLToPath } from "node:url";

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");
const args = process.argv.slice(2);
const option = (name, fallback) => (args.includes(name) ? args[args.indexOf(name) + 1] : fallback);
const takesValue = ["--top", "--crates", "--grep", "--dups"];
const positional = args.filter((a, i) => !a.startsWith("--") && !takesValue.includes(args[i - 1]));
const file = positional[0] ?? path.join(ROOT, "target/wasm32-unknown-unknown/release/edgegate.wasm");
const topN = Number(option("--top", "30"));
const cratesN = Number(option("--crates", "25"));
const grep = option("--grep", undefined);
const asJson = args.includes("--json");
const dupsN = Number(option("--dups", "0"));

const b = fs.readFileSync(file);
if (b.readUInt32LE(0) !== 0x6d736100) throw new Error(`${file} is not a wasm module`);
let i = 8;
const leb = () => {
  let r = 0;
  for (let shift = 0; ; shift += 7) {
    const x = b[i++];
    r += (x & 0x7f) * 2 ** shift;
    if (x < 0x80) return r;
  }
};
const str = () => {
  const len = leb();
  const s = b.subarray(i, i + len).toString();
  i += len;
  return s;
};

let importedFunctions = 0;
const bodies = []; // [start, end) of each defined function's body
const names = new Map(); // function index -> name
const sections = [];
let dataBytes = 0;
while (i < b.length) {
  const id = b[i++];
  const size = leb();
  const start = i;
  const end = i + size;
  let label = ["custom", "type", "import", "function", "table", "memory", "global", "export", "start",
    "element", "code", "data", "datacount", "tag"][id] ?? `id ${id}`;
  if (id === 2) {
    for (let n = leb(); n > 0; n--) {
      str();
      str();
      const kind = b[i++];
      if (kind === 0) {
        leb();
        importedFunctions++;
      } else if (kind === 1) {
        i++; // reftype
        const flags = leb();
        leb();
        if (flags & 1) leb();
      } else if (kind === 2) {
        const flags = leb();
        leb();
        if (flags & 1) leb();
      } else if (kind === 3) {
        i++; // valtype
        i++; // mut
      } else if (kind === 4) {
        i++;
        leb();
      } else throw new Error(`unknown import kind ${kind}`);
    }
  } else if (id === 10) {
    for (let n = leb(); n > 0; n--) {
      const len = leb();
      bodies.push([i, i + len]);
      i += len;
    }
  } else if (id === 11) {
    dataBytes = size;
  } else if (id === 0) {
    const name = str();
    label = `custom "${name}"`;
    if (name === "name") {
      while (i < end) {
        const sub = b[i++];
        const subSize = leb();
        const subEnd = i + subSize;
        if (sub === 1) {
          for (let n = leb(); n > 0; n--) {
            const index = leb();
            names.set(index, str());
          }
        }
        i = subEnd;
      }
    }
  }
  sections.push({ section: label, bytes: end - start });
  i = end;
}
if (names.size === 0) {
  console.error(`wasm-size: ${file} has no function names (the name section was stripped)`);
  process.exit(1);
}

// Rough demangling of Rust's legacy mangling; names already demangled pass through (minus the hash).
const ESCAPES = { SP: "@", BP: "*", RF: "&", LT: "<", GT: ">", LP: "(", RP: ")", C: "," };
function unescape(s) {
  return s
    .replace(/\$([A-Z]{1,2}|u[0-9a-f]+)\$/g, (m, e) =>
      e.startsWith("u") ? String.fromCodePoint(parseInt(e.slice(1), 16)) : (ESCAPES[e] ?? m))
    .replace(/\.\./g, "::");
}
function demangle(name) {
  if (name.startsWith("_ZN")) {
    let j = 3;
    const parts = [];
    while (j < name.length && name[j] !== "E") {
      let k = j;
      while (name[k] >= "0" && name[k] <= "9") k++;
      if (k === j) break;
      const len = Number(name.slice(j, k));
      parts.push(name.slice(k, k + len));
      j = k + len;
    }
    if (parts.length > 1 && /^h[0-9a-f]{16}$/.test(parts[parts.length - 1])) parts.pop();
    return parts.map((p) => unescape(p.startsWith("_$") ? p.slice(1) : p)).join("::");
  }
  return name.replace(/::h[0-9a-f]{16}$/, "");
}
// The crate a function counts for: the first path segment, looking through `<`, `&`, `dyn `, `(`, `[`.
function crateOf(demangled) {
  // Rust's v0 mangling (`_R...`, the precompiled standard library's symbols): the first crate root,
  // `C` + optional disambiguator `s<base62>_` + length + name.
  if (demangled.startsWith("_R")) {
    const m = /C(?:s[0-9A-Za-z]*_)?(\d+)/.exec(demangled);
    return m ? demangled.substr(m.index + m[0].length, Number(m[1])) : "(other)";
  }
  const m = /^[<&*(\[\s]*(?:(?:mut|const|dyn|impl)\s+)*([A-Za-z_][A-Za-z0-9_]*)(::)?/.exec(demangled);
  if (!m) return "(other)";
  if (!m[2]) {
    // A bare name: a C/wasm-bindgen export or a primitive type's impl (`<u32 as core::fmt::Display>`).
    if (/^(u|i)(8|16|32|64|128|size)$|^(f32|f64|bool|char|str)$/.test(m[1])) {
      const t = /\bas\s+([A-Za-z_][A-Za-z0-9_]*)::/.exec(demangled);
      return t ? t[1] : "core";
    }
    if (/^__wbg|^__wbindgen|^__externref/.test(m[1])) return "(wasm-bindgen glue)";
    return /^(memcpy|memmove|memset|memcmp|bcmp|__rust|__rdl|__rg|__multi|__udiv|__ashl|__lsh)/.test(m[1])
      ? "compiler_builtins"
      : "(other)";
  }
  return m[1];
}

const fns = bodies.map(([s, e], k) => {
  const raw = names.get(importedFunctions + k) ?? `function[${importedFunctions + k}]`;
  const name = demangle(raw);
  return { name, crate: crateOf(name), bytes: e - s, s, e };
});
const codeBytes = fns.reduce((a, f) => a + f.bytes, 0);
const gz = (buffers) => zlib.gzipSync(Buffer.concat(buffers), { level: 9 }).length;

const byCrate = new Map();
for (const f of fns) {
  const c = byCrate.get(f.crate) ?? { crate: f.crate, functions: 0, bytes: 0, parts: [] };
  c.functions++;
  c.bytes += f.bytes;
  c.parts.push(b.subarray(f.s, f.e));
  byCrate.set(f.crate, c);
}
const crates = [...byCrate.values()]
  .map((c) => ({ crate: c.crate, functions: c.functions, bytes: c.bytes, gzip: gz(c.parts) }))
  .sort((x, y) => y.bytes - x.bytes);
const top = [...fns].sort((x, y) => y.bytes - x.bytes);
const whole = { file, bytes: b.length, gzip: gz([b]), code: codeBytes, codeGzip: gz(fns.map((f) => b.subarray(f.s, f.e))), data: dataBytes, functions: fns.length };

const grepped = grep ? fns.filter((f) => new RegExp(grep).test(f.name)).sort((x, y) => y.bytes - x.bytes) : null;

if (asJson) {
  const strip = ({ s, e, ...rest }) => rest;
  // Written synchronously: console.log to a pipe followed by process.exit would cut it short.
  fs.writeSync(1, `${JSON.stringify({ whole, sections, crates, top: top.slice(0, topN).map(strip), grep: grepped?.map(strip) }, null, 1)}\n`);
  process.exit(0);
}
const n = (x) => x.toLocaleString("en-US");
const pct = (x) => `${((100 * x) / codeBytes).toFixed(1)}%`;
console.log(`${path.relative(process.cwd(), file) || file}: ${n(whole.bytes)} bytes (gzip -9 ${n(whole.gzip)}); ` +
  `code ${n(codeBytes)} in ${n(fns.length)} functions (gzip ${n(whole.codeGzip)}), data ${n(dataBytes)}`);
console.log("\nsections:");
for (const s of sections) console.log(`  ${s.section.padEnd(24)} ${n(s.bytes).padStart(11)}`);
console.log(`\ncode per crate (top ${cratesN}):`);
console.log(`  ${"crate".padEnd(28)} ${"functions".padStart(9)} ${"bytes".padStart(11)} ${"share".padStart(6)} ${"gzip".padStart(9)}`);
for (const c of crates.slice(0, cratesN)) {
  console.log(`  ${c.crate.padEnd(28)} ${n(c.functions).padStart(9)} ${n(c.bytes).padStart(11)} ${pct(c.bytes).padStart(6)} ${n(c.gzip).padStart(9)}`);
}
if (crates.length > cratesN) {
  const rest = crates.slice(cratesN);
  console.log(`  ${`(${rest.length} more)`.padEnd(28)} ${n(rest.reduce((a, c) => a + c.functions, 0)).padStart(9)} ${n(rest.reduce((a, c) => a + c.bytes, 0)).padStart(11)}`);
}
console.log(`\nlargest functions (top ${topN}):`);
for (const f of top.slice(0, topN)) {
  const name = f.name.length > 150 ? `${f.name.slice(0, 147)}...` : f.name;
  console.log(`  ${n(f.bytes).padStart(9)}  ${name}`);
}
if (grepped) {
  const total = grepped.reduce((a, f) => a + f.bytes, 0);
  console.log(`\n--grep ${grep}: ${grepped.length} functions, ${n(total)} bytes (${pct(total)}), gzip ${n(gz(grepped.map((f) => b.subarray(f.s, f.e))))}`);
  for (const f of grepped.slice(0, topN)) {
    const name = f.name.length > 150 ? `${f.name.slice(0, 147)}...` : f.name;
    console.log(`  ${n(f.bytes).padStart(9)}  ${name}`);
  }
}
if (dupsN > 0) {
  const same = new Map();
  for (const f of fns) {
    const e = same.get(f.name) ?? { name: f.name, copies: 0, bytes: 0 };
    e.copies++;
    e.bytes += f.bytes;
    same.set(f.name, e);
  }
  const dups = [...same.values()].filter((e) => e.copies > 1).sort((x, y) => y.bytes - x.bytes);
  const total = dups.reduce((a, e) => a + e.bytes, 0);
  console.log(`\nnames in several copies: ${n(dups.length)} names, ${n(total)} bytes (${pct(total)}); top ${dupsN}:`);
  console.log(`  ${"copies".padStart(6)} ${"bytes".padStart(9)}  name`);
  for (const e of dups.slice(0, dupsN)) {
    const name = e.name.length > 140 ? `${e.name.slice(0, 137)}...` : e.name;
    console.log(`  ${n(e.copies).padStart(6)} ${n(e.bytes).padStart(9)}  ${name}`);
  }
}
