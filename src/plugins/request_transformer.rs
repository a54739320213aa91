//! `request-transformer` glue (access phase): reads what the rules need from the client's request,
//! asks `edgegate_core::plugins::request_transformer` what to change and leaves the changes on the
//! exchange for the forwarding step (header edits, upstream path and query, method, body). The body is read only when a body rule applies to its Content-Type (docs/transformations.md).

use super::{transform_js, Flow, Step};
use crate::exchange::Exchange;
use edgegate_core::plugins::request_transformer::{self as rules, RequestTransformerConfig};
use edgegate_core::plugins::transform::HeaderEdit;
use edgegate_core::plugins::PluginInstance;
use edgegate_core::template::RequestVars;
use edgegate_core::{ErrorKind, GatewayError};
use wasm_bindgen::JsValue;

/// The access hook: the most specific instance (the registry passes only that one).
pub fn access<'x, 'a>(ex: &'x mut Exchange<'a>, instances: &'x [&'a PluginInstance]) -> Step<'x> {
    Box::pin(async move {
        if let Some(config) = instances
            .first()
            .and_then(|i| i.plugin.get::<RequestTransformerConfig>())
        {
            transform(ex, config).await?;
        }
        Ok(Flow::Continue)
    })
}

async fn transform(
    ex: &mut Exchange<'_>,
    config: &RequestTransformerConfig,
) -> Result<(), GatewayError> {
    let headers = ex.raw.headers();
    let get = |n: &str| headers.get(n).ok().flatten();
    let captures = ex.plan.params.clone();
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
    if config.drops_body() {
        body = Some(JsValue::NULL);
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
        let current = ex.upstream_path_and_query().to_string();
        let url = rules::upstream_url(
            &format!("http://x{current}"),
            new_path.as_deref(),
            new_query.as_deref(),
        );
        ex.set_upstream_path_and_query(&url["http://x".len()..]);
    }
    if let Some(method) = &config.http_method {
        ex.upstream_method = Some(method.clone());
    }
    if let Some(body) = body {
        ex.upstream_body = Some(body);
    }
    Ok(())
}
