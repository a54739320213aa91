//! `request-transformer` glue (access phase): reads what the rules need from the client's request,
//! asks `edgegate_core::plugins::request_transformer` what to change and leaves the changes on the
//! exchange for the forwarding step (header edits, upstream URL, a rebuilt request for a new method
//! or body). The body is read only when a body rule applies to its Content-Type (docs/transformations.md).

use super::transform_js;
use crate::exchange::Exchange;
use edgegate_core::plugins::request_transformer::{self as rules, RequestTransformerConfig};
use edgegate_core::plugins::transform::HeaderEdit;
use edgegate_core::template::RequestVars;
use edgegate_core::{ErrorKind, GatewayError};
use wasm_bindgen::JsValue;

pub async fn access(
    ex: &mut Exchange<'_>,
    config: &RequestTransformerConfig,
) -> Result<(), GatewayError> {
    let headers = ex.raw.headers();
    let get = |n: &str| headers.get(n).ok().flatten();
    let captures = ex.plan.captures.clone();
    let identity = ex.identity.clone();
    let query = ex.url.query;
    let vars = RequestVars {
        header: &get,
        query,
        captures: &captures,
        consumer: identity.as_ref(),
    };
    let edits = config.header_edits(&get, &vars);
    let new_query = config.query_string(query, &vars);
    let new_path = config.path(&vars).transpose()?;

    // The body: dropped (GET/HEAD), transformed (a body rule applies), or left streaming.
    let mut body: Option<JsValue> = None;
    let mut length: Option<usize> = None;
    if config.drops_body() {
        body = Some(JsValue::NULL);
        length = Some(0);
    } else if let Some(kind) = config.body_kind(get("content-type").as_deref()) {
        let limit = config.max_body_size;
        let declared = get("content-length").and_then(|l| l.trim().parse::<u64>().ok());
        if declared.is_some_and(|l| l > limit) {
            return Err(rules::too_large(limit));
        }
        let stream = ex.raw.body().map(JsValue::from).unwrap_or(JsValue::NULL);
        let bytes = match transform_js::read_bounded(&stream, limit).await {
            Ok(bytes) => bytes,
            Err(v) if v.is_null() => {
                return Err(GatewayError::new(
                    ErrorKind::BadRequest,
                    "the request body could not be read",
                ))
            }
            Err(_) => return Err(rules::too_large(limit)),
        };
        let out = config.body(kind, &bytes, &vars).unwrap_or(bytes);
        length = Some(out.len());
        body = Some(js_sys::Uint8Array::from(out.as_slice()).into());
    }

    for edit in edits {
        match edit {
            HeaderEdit::Remove(name) => {
                ex.upstream_set.retain(|(n, _)| *n != name);
                ex.upstream_remove.push(name);
            }
            HeaderEdit::Set(name, values) => {
                ex.upstream_set.retain(|(n, _)| *n != name);
                ex.upstream_set.push((name, values.join(", ")));
            }
        }
    }
    if new_path.is_some() || new_query.is_some() {
        ex.plan.url = rules::upstream_url(&ex.plan.url, new_path.as_deref(), new_query.as_deref());
    }
    if config.http_method.is_some() || body.is_some() {
        let method = config.http_method.as_deref().unwrap_or("");
        let body = body.unwrap_or(JsValue::UNDEFINED);
        let raw = ex.upstream_request.as_ref().unwrap_or(ex.raw);
        let rebuilt = transform_js::rebuild_request(raw, method, &body).map_err(|_| {
            GatewayError::new(
                ErrorKind::BadRequest,
                "request-transformer could not rebuild the request with its new method or body",
            )
        })?;
        ex.upstream_request = Some(rebuilt);
    }
    if let Some(len) = length {
        ex.upstream_set.retain(|(n, _)| n != "content-length");
        ex.upstream_remove.push("content-length".into());
        if len > 0 {
            ex.upstream_set
                .push(("content-length".into(), len.to_string()));
        }
    }
    Ok(())
}
