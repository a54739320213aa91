//! The JS helpers for bodies that plugins change: reading a body with a bound (request-transformer's
//! `read_bounded`, and the runner's `read_body` for body_filter hooks) and building the response
//! again around a new status, headers or body (`rebuild`, for [`super::Reply`]). They decide nothing
//! (`edgegate_core::plugins::{request_transformer, response_transformer}` do).

use wasm_bindgen::prelude::*;

#[wasm_bindgen(inline_js = r#"
// Read `stream` (a ReadableStream or null) to its end if it holds at most `limit` bytes: a Uint8Array.
// Over the bound: a ReadableStream that gives what was read and then the rest, untouched.
export async function readUpTo(stream, limit) {
  if (stream === null || stream === undefined) return new Uint8Array(0);
  if (typeof stream === "string") stream = new TextEncoder().encode(stream);
  if (stream instanceof ArrayBuffer) stream = new Uint8Array(stream);
  if (stream instanceof Uint8Array) {
    return stream.byteLength <= limit ? stream : new ReadableStream({
      start(c) { c.enqueue(stream); c.close(); },
    });
  }
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

// The body a body_filter hook asked for (src/pipeline.rs): `source` is the Response whose body it is, or a
// replacement body (a ReadableStream, string or bytes). `whole`: its length is known to be within `limit`,
// so it is read natively in one promise. `then(kind, value)` is called with what came of it and the promise
// resolves to what it returns: kind 1, a Uint8Array (the whole body); 2, a ReadableStream (over `limit`:
// what was read, then the rest, untouched); 3, no body at all (`value` undefined); 0, it could not be read.
// Without `then`, the promise resolves to [kind, value].
export function readBody(source, limit, whole, then) {
  const give = then ?? ((kind, value) => [kind, value]);
  const response = source instanceof Response ? source : null;
  if (source === null || source === undefined || (response !== null && response.body === null)) {
    return Promise.resolve(give(3, undefined));
  }
  let read;
  if (whole) read = (response ?? new Response(source)).arrayBuffer().then((b) => give(1, new Uint8Array(b)), () => give(0, null));
  else read = readUpTo(response !== null ? response.body : source, limit).then((v) => give(v instanceof Uint8Array ? 1 : 2, v), () => give(0, null));
  return read;
}

// `response` with `status` (its status text kept when `keepText`), `headers` and `body` (`undefined`: its
// own; null: none): one call for what src/plugins/reply.rs would otherwise ask for piece by piece. A new
// body drops `headers`' Content-Length (copied first when `headers` are immutable).
export function rebuild(response, status, keepText, headers, body) {
  if (body === undefined) body = response.body;
  else if (headers.has("content-length")) {
    try {
      headers.delete("content-length");
    } catch {
      headers = new Headers(headers);
      headers.delete("content-length");
    }
  }
  if (status === 204 || status === 205 || status === 304) body = null;
  return new Response(body, keepText ? { status, statusText: response.statusText, headers } : { status, headers });
}
"#)]
extern "C" {
    #[wasm_bindgen(js_name = readUpTo)]
    pub fn read_up_to(stream: &JsValue, limit: f64) -> js_sys::Promise;
    /// See the JS above.
    #[wasm_bindgen(js_name = readBody)]
    pub fn read_body(source: &JsValue, limit: f64, whole: bool, then: &JsValue) -> js_sys::Promise;
    /// See the JS above.
    #[wasm_bindgen(catch)]
    pub fn rebuild(
        response: &web_sys::Response,
        status: u16,
        keep_text: bool,
        headers: &web_sys::Headers,
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
