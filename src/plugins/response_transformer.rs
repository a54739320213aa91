//! `response-transformer` glue: header rules in header_filter, `json` rules in body_filter on a JSON
//! body read with a bound. A body over the bound, or one the rules do not apply to, streams through
//! untouched (docs/transformations.md#bodies).

use super::{transform_js, Reply};
use crate::exchange::Exchange;
use crate::runtime;
use edgegate_core::plugins::response_transformer::ResponseTransformerConfig;
use edgegate_core::plugins::transform::HeaderEdit;
use edgegate_core::plugins::PluginInstance;
use edgegate_core::template::RequestVars;
use std::future::Future;
use std::pin::Pin;

fn config<'a>(instances: &[&'a PluginInstance]) -> Option<&'a ResponseTransformerConfig> {
    instances
        .first()
        .and_then(|i| i.plugin.get::<ResponseTransformerConfig>())
}

/// Run `f` with the templates' view of the request.
fn with_vars<R>(ex: &Exchange<'_>, f: impl FnOnce(&RequestVars<'_>) -> R) -> R {
    let request_headers = ex.raw.headers();
    let get = |n: &str| request_headers.get(n).ok().flatten();
    let vars = RequestVars {
        header: &get,
        query: ex.url.query,
        captures: &ex.plan.params,
        consumer: ex.identity.as_ref(),
    };
    f(&vars)
}

/// header_filter: remove, rename, replace, add, append on the response headers.
pub fn header_filter<'x, 'a>(
    ex: &'x mut Exchange<'a>,
    instances: &'x [&'a PluginInstance],
    reply: &'x mut Reply,
) {
    let Some(config) = config(instances) else {
        return;
    };
    if config.headers.is_empty() {
        return;
    }
    let edits = with_vars(ex, |vars| {
        config.header_edits(&|n: &str| reply.header(n), vars)
    });
    for edit in edits {
        match edit {
            HeaderEdit::Remove(name) => reply.remove_header(&name),
            HeaderEdit::Set(name, values) => {
                reply.remove_header(&name);
                for v in values {
                    reply.append_header(&name, &v);
                }
            }
        }
    }
}

/// Whether the `json` rules apply to this response: a JSON body that may carry one.
pub fn body_applies(ex: &Exchange<'_>, instances: &[&PluginInstance], reply: &Reply) -> bool {
    config(instances).is_some_and(|config| {
        config.json_applies(reply.header("content-type").as_deref())
            && !matches!(reply.status(), 204 | 205 | 304)
            && ex.info.method != "HEAD"
    })
}

/// body_filter: the `json` rules on a JSON body within `max_body_size`.
pub fn body_filter<'x, 'a>(
    ex: &'x mut Exchange<'a>,
    instances: &'x [&'a PluginInstance],
    reply: &'x mut Reply,
) -> Pin<Box<dyn Future<Output = ()> + 'x>> {
    Box::pin(async move {
        let Some(config) = config(instances) else {
            return;
        };
        if !body_applies(ex, instances, reply) {
            return;
        }
        let Some(body) = reply.body() else {
            return;
        };
        let limit = config.max_body_size;
        let declared = reply
            .header("content-length")
            .and_then(|l| l.trim().parse::<u64>().ok());
        if let Some(size) = declared.filter(|l| *l > limit) {
            warn(
                ex,
                &format!("the JSON body ({size} bytes) is larger than max_body_size ({limit}); passed untouched"),
            );
            return;
        }
        // A declared length within the bound: read in one go.
        if declared.is_some() {
            match transform_js::read_all(&body).await {
                Some(bytes) => {
                    let out = with_vars(ex, |vars| config.json_body(&bytes, vars)).unwrap_or(bytes);
                    reply.set_body(Some(js_sys::Uint8Array::from(out.as_slice()).into()));
                }
                None => warn(ex, "the JSON body could not be read"),
            }
            return;
        }
        match transform_js::read_bounded(&body, limit).await {
            Ok(bytes) => {
                if let Some(out) = with_vars(ex, |vars| config.json_body(&bytes, vars)) {
                    reply.set_body(Some(js_sys::Uint8Array::from(out.as_slice()).into()));
                } else {
                    reply.set_body(Some(js_sys::Uint8Array::from(bytes.as_slice()).into()));
                }
            }
            Err(rest) if !rest.is_null() => {
                warn(
                    ex,
                    &format!(
                        "the JSON body is larger than max_body_size ({limit}); passed untouched"
                    ),
                );
                reply.set_body(Some(rest));
            }
            Err(_) => warn(ex, "the JSON body could not be read"),
        }
    })
}

fn warn(ex: &Exchange<'_>, message: &str) {
    let line = serde_json::json!({
        "event": "plugin_warning",
        "plugin": "response-transformer",
        "request_id": ex.request_id,
        "message": message,
    });
    runtime::log(&line.to_string());
}
