//! The JS helper the two transformer plugins share: reading a body with a bound. It decides nothing
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

// The whole of `body` (a ReadableStream, string or bytes whose length is known to be within the bound):
// a Uint8Array, read natively in one promise.
export function readAll(body) {
  return new Response(body).arrayBuffer().then((b) => new Uint8Array(b));
}
"#)]
extern "C" {
    #[wasm_bindgen(js_name = readUpTo)]
    pub fn read_up_to(stream: &JsValue, limit: f64) -> js_sys::Promise;
    #[wasm_bindgen(js_name = readAll)]
    fn read_all_js(body: &JsValue) -> js_sys::Promise;
}

/// Read a body whose declared length is within the bound; `None` when it cannot be read.
pub async fn read_all(body: &JsValue) -> Option<Vec<u8>> {
    let value = wasm_bindgen_futures::JsFuture::from(read_all_js(body))
        .await
        .ok()?;
    value
        .dyn_into::<js_sys::Uint8Array>()
        .ok()
        .map(|b| b.to_vec())
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
