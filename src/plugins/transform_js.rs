//! The JS helpers that read a body with a bound: request-transformer's (`read_bounded`) and the
//! runner's for body_filter hooks (`read_body`). It decides nothing
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
// so it is read natively in one promise. Resolves to a Uint8Array (the whole body), a ReadableStream (over
// `limit`: what was read, then the rest, untouched) or null (it could not be read); when `then` is given,
// to what `then` returns for that value.
export function readBody(source, limit, whole, then) {
  let read;
  if (whole) {
    const r = source instanceof Response ? source : new Response(source);
    read = r.arrayBuffer().then((b) => new Uint8Array(b));
  } else {
    read = readUpTo(source instanceof Response ? source.body : source, limit);
  }
  read = read.then(undefined, () => null);
  return then ? read.then(then) : read;
}
"#)]
extern "C" {
    #[wasm_bindgen(js_name = readUpTo)]
    pub fn read_up_to(stream: &JsValue, limit: f64) -> js_sys::Promise;
    /// See the JS above.
    #[wasm_bindgen(js_name = readBody)]
    pub fn read_body(source: &JsValue, limit: f64, whole: bool, then: &JsValue) -> js_sys::Promise;
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
