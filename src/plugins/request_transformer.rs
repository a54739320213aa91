//! `request-transformer` glue (access phase): reads what the rules need from the client's request,
//! asks `edgegate_core::plugins::request_transformer` what to change and leaves the changes on the
//! exchange for the forwarding step (header edits, upstream path and query, method, body). The body is read only when a body rule applies to its Content-Type (docs/transformations.md).

use super::{body_js, Flow, Step};
use crate::exchange::Exchange;
use edgegate_core::plugins::request_transformer::{self as rules, RequestTransformerConfig};
use edgegate_core::plugins::transform::HeaderEdit;
use edgegate_core::plugins::PluginInstance;
use edgegate_core::template::RequestVars;
use edgegate_core::{ErrorKind, GatewayError};
use wasm_bindgen::JsValue;

fn config<'a>(instances: &[&'a PluginInstance]) -> Option<&'a RequestTransformerConfig> {
    instances
        .first()
        .and_then(|i| i.plugin.get::<RequestTransformerConfig>())
}

/// The access hook when no body has to be read (no body rule applies to the request's
/// Content-Type); `None` when one does, and then [`access`] runs.
pub fn now(
    ex: &mut Exchange<'_>,
    instances: &[&PluginInstance],
) -> Option<Result<Flow, GatewayError>> {
    let Some(config) = config(instances) else {
        return Some(Ok(Flow::Continue));
    };
    let body = if config.drops_body() {
        Some(JsValue::NULL)
    } else {
        if config
            .body_kind(ex.header("content-type").as_deref())
            .is_some()
        {
            return None;
        }
        None
    };
    let edits = match plan(ex, config) {
        Ok(edits) => edits,
        Err(e) => return Some(Err(e)),
    };
    apply(ex, config, edits, body);
    Some(Ok(Flow::Continue))
}

/// The access hook: the most specific instance (the registry passes only that one).
pub fn access<'x, 'a>(ex: &'x mut Exchange<'a>, instances: &'x [&'a PluginInstance]) -> Step<'x> {
    Box::pin(async move {
        if let Some(config) = config(instances) {
            transform(ex, config).await?;
        }
        Ok(Flow::Continue)
    })
}

/// What the rules change on the headers, the query and the path.
struct Edits {
    headers: Vec<HeaderEdit>,
    query: Option<String>,
    path: Option<String>,
}

fn plan(ex: &Exchange<'_>, config: &RequestTransformerConfig) -> Result<Edits, GatewayError> {
    let headers = ex.raw.headers();
    let get = |n: &str| crate::exchange::header_value(&headers, n);
    let vars = RequestVars {
        header: &get,
        query: ex.url.query,
        captures: &ex.plan.params,
        consumer: ex.identity.as_ref(),
    };
    Ok(Edits {
        headers: config.header_edits(&get, &vars),
        query: config.query_string(ex.url.query, &vars),
        path: config.path(&vars).transpose()?,
    })
}

async fn transform(
    ex: &mut Exchange<'_>,
    config: &RequestTransformerConfig,
) -> Result<(), GatewayError> {
    let edits = plan(ex, config)?;
    let headers = ex.raw.headers();
    let get = |n: &str| crate::exchange::header_value(&headers, n);

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
        let bytes = match body_js::read_bounded(&stream, limit).await {
            Ok(bytes) => bytes,
            Err(v) if v.is_null() => {
                return Err(GatewayError::new(
                    ErrorKind::BadRequest,
                    "the request body could not be read",
                ))
            }
            Err(_) => return Err(rules::too_large(limit)),
        };
        let vars = RequestVars {
            header: &get,
            query: ex.url.query,
            captures: &ex.plan.params,
            consumer: ex.identity.as_ref(),
        };
        let out = config.body(&kind, &bytes, &vars)?.unwrap_or(bytes);
        body = Some(js_sys::Uint8Array::from(out.as_slice()).into());
    }
    apply(ex, config, edits, body);
    Ok(())
}

/// Leave the changes on the exchange for the forwarding step.
fn apply(
    ex: &mut Exchange<'_>,
    config: &RequestTransformerConfig,
    edits: Edits,
    body: Option<JsValue>,
) {
    for edit in edits.headers {
        match edit {
            HeaderEdit::Remove(name) => {
                ex.upstream_set.retain(|(n, _)| *n != name);
                ex.upstream_unset.push(name.clone());
                ex.upstream_remove.push(name);
            }
            HeaderEdit::Set(name, values) => {
                ex.upstream_set.retain(|(n, _)| *n != name);
                let value = RequestTransformerConfig::joined_value(&name, &values);
                ex.upstream_set.push((name, value));
            }
        }
    }
    if edits.path.is_some() || edits.query.is_some() {
        let current = ex.upstream_path_and_query().to_string();
        let url = rules::upstream_url(
            &format!("http://x{current}"),
            edits.path.as_deref(),
            edits.query.as_deref(),
        );
        ex.set_upstream_path_and_query(&url["http://x".len()..]);
    }
    if let Some(method) = &config.http_method {
        ex.upstream_method = Some(method.clone());
    }
    if let Some(body) = body {
        ex.upstream_body = Some(body);
    }
}
