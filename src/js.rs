//! The few JS helpers the hot path uses, so that forwarding a request costs two crossings of the
//! wasm/JS boundary instead of dozens (each `Headers.set` from Rust is one, with its strings decoded).
//! They apply decisions made in Rust (`edgegate_core::proxy`); they decide nothing themselves.
//!
//! Header lists cross as one string: names separated by `\n` (`remove`), or `name\nvalue\n...`
//! (`set`). Header names and values cannot contain a newline, so the encoding is unambiguous.

use wasm_bindgen::prelude::*;

#[wasm_bindgen(inline_js = r#"
function edit(h, remove, set) {
  if (remove) for (const n of remove.split("\n")) h.delete(n);
  if (set) {
    const p = set.split("\n");
    for (let i = 0; i + 1 < p.length; i += 2) h.set(p[i], p[i + 1]);
  }
  return h;
}

// Fetch `url` with `req`'s method, body and headers (edited). Resolves to the Response, or to 1 when
// no response headers arrived within `timeoutMs` (the fetch is aborted), or to 2 when the fetch failed.
export function forward(req, url, remove, set, resolveOverride, timeoutMs) {
  const ctrl = new AbortController();
  const init = { method: req.method, headers: edit(new Headers(req.headers), remove, set),
                 redirect: "manual", signal: ctrl.signal };
  if (req.body !== null) init.body = req.body;
  if (resolveOverride) init.cf = { resolveOverride };
  let timedOut = false;
  const timer = setTimeout(() => { timedOut = true; ctrl.abort(); }, timeoutMs);
  return fetch(url, init).then(
    (r) => { clearTimeout(timer); return r; },
    () => { clearTimeout(timer); return timedOut ? 1 : 2; });
}

// A response with `resp`'s status and streaming body, and its headers edited.
export function rewrap(resp, remove, set) {
  return new Response(resp.body, { status: resp.status, statusText: resp.statusText,
                                   headers: edit(new Headers(resp.headers), remove, set) });
}

// Several request headers at once: values joined by "\n", "\u0000" for a missing one.
export function headerValues(headers, names) {
  return names.split("\n").map((n) => { const v = headers.get(n); return v === null ? "\u0000" : v; }).join("\n");
}
"#)]
extern "C" {
    /// See the JS above: a `Response`, or the number 1 (timed out) or 2 (failed).
    pub fn forward(
        req: &web_sys::Request,
        url: &str,
        remove: &str,
        set: &str,
        resolve_override: Option<String>,
        timeout_ms: f64,
    ) -> js_sys::Promise;

    pub fn rewrap(resp: &web_sys::Response, remove: &str, set: &str) -> web_sys::Response;

    #[wasm_bindgen(js_name = headerValues)]
    fn header_values(headers: &web_sys::Headers, names: &str) -> String;
}

/// Read several headers in one crossing. Returns one entry per name, in order.
pub fn headers_get<const N: usize>(
    headers: &web_sys::Headers,
    names: [&str; N],
) -> [Option<String>; N] {
    let joined = header_values(headers, &names.join("\n"));
    let mut out: [Option<String>; N] = std::array::from_fn(|_| None);
    for (slot, value) in out.iter_mut().zip(joined.split('\n')) {
        if value != "\u{0}" {
            *slot = Some(value.to_string());
        }
    }
    out
}

/// Builds the `set` argument: `name\nvalue\n...`.
#[derive(Default)]
pub struct HeaderEdits {
    pub remove: String,
    pub set: String,
}

impl HeaderEdits {
    pub fn remove(&mut self, name: &str) {
        if !self.remove.is_empty() {
            self.remove.push('\n');
        }
        self.remove.push_str(name);
    }

    pub fn set(&mut self, name: &str, value: &str) {
        if !self.set.is_empty() {
            self.set.push('\n');
        }
        self.set.push_str(name);
        self.set.push('\n');
        self.set.push_str(value);
    }
}
