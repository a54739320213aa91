//! JS helpers the two transformer plugins share: reading a body with a bound, rebuilding a request
//! with a new method or body, editing a response's headers and body. They decide nothing
//! (`edgegate_core::plugins::{request_transformer, response_transformer}` do).

use wasm_bindgen::prelude::*;

#[wasm_bindgen(inline_js = r#"
// Read `stream` (a ReadableStream or null) to its end if it holds at most `limit` bytes: a Uint8Array.
// Over the bound: a ReadableStream that gives what was read and then the rest, untouched.
export async function readUpTo(stream, limit) {
  if (stream === null) return new Uint8Array(0);
  const reader = stream.getReader();
  const chunks = [];
  let total = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    chunks.push(value);
    total += value.byteLength;
    if (total > limit) {
      return new ReadableStream({
        start(c) { for (const x of chunks) c.enqueue(x); },
        async pull(c) {
          const { done, value } = await reader.read();
          if (done) c.close(); else c.enqueue(value);
        },
        cancel(reason) { return reader.cancel(reason); },
      });
    }
  }
  if (chunks.length === 1) return chunks[0];
  const out = new Uint8Array(total);
  let at = 0;
  for (const c of chunks) { out.set(c, at); at += c.byteLength; }
  return out;
}

// `req` with another method (when `method` is not empty) and/or body (`body`: a Uint8Array, a
// stream, null for none, undefined to keep the request's own).
export function rebuildRequest(req, method, body) {
  const init = {};
  if (method) init.method = method;
  if (body !== undefined) init.body = body;
  return new Request(req, init);
}

// A copy of `resp` whose headers can be edited: `remove` (names joined by "\n") deleted, then for
// each [name, value] of `set` (a flat array) the name deleted once and the value appended. With
// `body` (a Uint8Array) the body is replaced and Content-Length follows it.
export function editResponse(resp, remove, set, body) {
  const out = body === undefined ? new Response(resp.body, resp)
    : new Response(body, { status: resp.status, statusText: resp.statusText, headers: resp.headers });
  const h = out.headers;
  if (body !== undefined) h.delete("content-length");
  if (remove) for (const n of remove.split("\n")) h.delete(n);
  const cleared = new Set();
  for (let i = 0; i + 1 < set.length; i += 2) {
    const n = set[i];
    if (!cleared.has(n)) { h.delete(n); cleared.add(n); }
    h.append(n, set[i + 1]);
  }
  return out;
}
"#)]
extern "C" {
    #[wasm_bindgen(js_name = readUpTo)]
    pub fn read_up_to(stream: &JsValue, limit: f64) -> js_sys::Promise;
    #[wasm_bindgen(js_name = rebuildRequest, catch)]
    pub fn rebuild_request(
        req: &web_sys::Request,
        method: &str,
        body: &JsValue,
    ) -> Result<web_sys::Request, JsValue>;
    #[wasm_bindgen(js_name = editResponse, catch)]
    pub fn edit_response(
        resp: &web_sys::Response,
        remove: &str,
        set: &js_sys::Array,
        body: &JsValue,
    ) -> Result<web_sys::Response, JsValue>;
}

/// Read a body up to `limit` bytes: `Ok(bytes)`, or `Err(stream)` (what was read, then the rest)
/// when it is larger.
pub async fn read_bounded(stream: &JsValue, limit: u64) -> Result<Vec<u8>, JsValue> {
    let value = wasm_bindgen_futures::JsFuture::from(read_up_to(stream, limit as f64))
        .await
        .unwrap_or(JsValue::NULL);
    match value.dyn_into::<js_sys::Uint8Array>() {
        Ok(bytes) => Ok(bytes.to_vec()),
        Err(other) => Err(other),
    }
}
