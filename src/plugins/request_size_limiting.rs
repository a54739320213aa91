//! `request-size-limiting` glue (docs/traffic-policies.md). A `Content-Length` is checked at once; a
//! body of unknown length is sent upstream through a counting `TransformStream` that errors past the
//! limit. The fetch to the origin then fails, and the error hook turns that failure into the 413
//! (when nothing was answered yet).

use crate::exchange::Exchange;
use crate::plugins::Flow;
use edgegate_core::plugins::request_size_limiting::{
    BodyFacts, Decision, RequestSizeLimitingConfig,
};
use edgegate_core::plugins::PluginInstance;
use edgegate_core::{ErrorKind, GatewayError};
use wasm_bindgen::prelude::*;

#[wasm_bindgen(inline_js = r#"
// `body` (a ReadableStream) through a TransformStream that passes at most `limit` bytes. The returned
// stream carries an AbortSignal (`edgegateSignal`) that `forward` (src/js.rs) gives the upstream fetch:
// past the limit the fetch is aborted, so the origin sees its connection cut in the middle of the body
// (workerd ends an upload whose stream merely errors as if it were complete), and the stream's
// `edgegateOverLimit` property is set to the limit, for `overLimit`.
export function countBody(body, limit) {
  let seen = 0;
  const abort = new AbortController();
  let out = null;
  const counter = new TransformStream({
    transform(chunk, controller) {
      seen += chunk.byteLength;
      if (seen > limit) {
        out.edgegateOverLimit = limit;
        abort.abort(new Error("request body over the size limit"));
        controller.error(new Error("request body over the size limit"));
        return;
      }
      controller.enqueue(chunk);
    },
  });
  out = body.pipeThrough(counter);
  out.edgegateSignal = abort.signal;
  return out;
}

// The limit a body made by `countBody` went over, or -1.
export function overLimit(stream) {
  return stream !== null && typeof stream === "object" && typeof stream.edgegateOverLimit === "number"
    ? stream.edgegateOverLimit : -1;
}
"#)]
extern "C" {
    #[wasm_bindgen(js_name = countBody)]
    fn count_body(body: &web_sys::ReadableStream, limit: f64) -> JsValue;
    #[wasm_bindgen(js_name = overLimit)]
    fn over_limit(stream: &JsValue) -> f64;
}

pub fn access(ex: &mut Exchange<'_>, instances: &[&PluginInstance]) -> Result<Flow, GatewayError> {
    let Some(c) = instances
        .first()
        .and_then(|i| i.config::<RequestSizeLimitingConfig>())
    else {
        return Ok(Flow::Continue);
    };
    let content_length = ex.header("content-length");
    let expect = ex.header("expect");
    let body = ex.raw.body();
    let decision = c.decide(BodyFacts {
        content_length: content_length.as_deref(),
        has_body: body.is_some(),
        expect: expect.as_deref(),
    })?;
    if let (Decision::Count(limit), Some(body)) = (decision, body) {
        // A plugin that runs earlier may have replaced the body already: count that one.
        let counted = match ex.upstream_body.as_ref().and_then(|b| b.dyn_ref()) {
            Some(replaced) => count_body(replaced, limit as f64),
            None => count_body(&body, limit as f64),
        };
        ex.upstream_body = Some(counted);
    }
    Ok(Flow::Continue)
}

/// A failed upload whose body went over the limit is a 413 (417 with `Expect: 100-continue`), not a
/// 502: the origin saw a cut request because of the limit.
pub fn error(ex: &Exchange<'_>, e: GatewayError) -> GatewayError {
    let Some(body) = &ex.upstream_body else {
        return e;
    };
    if !matches!(
        e.kind,
        ErrorKind::UpstreamUnreachable | ErrorKind::UpstreamTimeout
    ) {
        return e;
    }
    let limit = over_limit(body);
    if limit < 0.0 {
        return e;
    }
    let expect_continue = ex
        .header("expect")
        .is_some_and(|v| v.trim().eq_ignore_ascii_case("100-continue"));
    GatewayError::new(
        ErrorKind::PayloadTooLarge { expect_continue },
        format!(
            "Request size limit exceeded: the body may have at most {} bytes",
            limit as u64
        ),
    )
}
