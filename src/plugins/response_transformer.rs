//! `response-transformer` glue: header rules in header_filter, `json` rules in body_filter on a JSON
//! body read with a bound. A body over the bound, or one the rules do not apply to, streams through
//! untouched (docs/transformations.md#bodies). The body is read by the runner, in the promise chain of
//! the answer: the hook renders the rules' templates first and hands over what to do with the bytes.

use super::{BodyRead, ReadBody, Reply};
use crate::exchange::Exchange;
use crate::runtime;
use edgegate_core::plugins::response_transformer::ResponseTransformerConfig;
use edgegate_core::plugins::transform::HeaderEdit;
use edgegate_core::plugins::PluginInstance;
use edgegate_core::template::RequestVars;

fn config<'a>(instances: &[&'a PluginInstance]) -> Option<&'a ResponseTransformerConfig> {
    instances
        .first()
        .and_then(|i| i.plugin.get::<ResponseTransformerConfig>())
}

/// Run `f` with the templates' view of the request.
fn with_vars<R>(ex: &Exchange<'_>, f: impl FnOnce(&RequestVars<'_>) -> R) -> R {
    // Only templates that read a request header make the Headers object.
    let request_headers = std::cell::OnceCell::new();
    let get = |n: &str| {
        let headers = request_headers.get_or_init(|| ex.raw.headers());
        headers.get(n).ok().flatten()
    };
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
    // A HEAD answer whose GET the `json` rules would rewrite: the origin's Content-Length is not the
    // length GET would send (RFC 9110 §8.6), so it is dropped, as Kong does. One over max_body_size
    // is kept: GET would pass that body untouched.
    if ex.info.method == "HEAD"
        && !matches!(reply.status(), 204 | 205 | 304)
        && config.json_applies(reply.header("content-type").as_deref())
        && reply
            .header("content-length")
            .and_then(|l| l.trim().parse::<u64>().ok())
            .is_some_and(|l| l <= config.max_body_size)
    {
        reply.remove_header("content-length");
    }
    if config.headers.is_empty() {
        return;
    }
    let edits = with_vars(ex, |vars| {
        config.header_edits(&|n: &str| reply.header(n), vars)
    });
    for edit in edits {
        match edit {
            HeaderEdit::Remove(name) => reply.remove_header(&name),
            // One value (add, replace, rename): one `set`, not a delete and an append.
            HeaderEdit::Set(name, values) if values.len() == 1 => {
                reply.set_header(&name, &values[0]);
            }
            // `append` to the header as it is: keep its lines (each Set-Cookie stays one line; the
            // current value reads them joined) and add the new values as lines of their own.
            HeaderEdit::Set(name, values) if reply.header(&name).as_ref() == values.first() => {
                for v in &values[1..] {
                    reply.append_header(&name, v);
                }
            }
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

/// body_filter: the `json` rules on a JSON body within `max_body_size`. A `Content-Length` over it
/// skips the body without reading; otherwise the runner reads it (counting a chunked one) and the
/// rules, rendered now, are applied to the bytes.
pub fn body_filter(
    ex: &mut Exchange<'_>,
    instances: &[&PluginInstance],
    reply: &mut Reply,
) -> Option<ReadBody> {
    // The runner asked `body_applies` first; a reply without a body is `BodyRead::Absent`.
    let config = config(instances)?;
    let limit = config.max_body_size;
    let declared = reply
        .header("content-length")
        .and_then(|l| l.trim().parse::<u64>().ok());
    if let Some(size) = declared.filter(|l| *l > limit) {
        warn(
            ex.request_id,
            &format!("the JSON body ({size} bytes) is larger than max_body_size ({limit}); passed untouched"),
        );
        return None;
    }
    let edits = with_vars(ex, |vars| config.json_edits(vars));
    let request_id = ex.request_id.to_string();
    let then = move |reply: &mut Reply, read: BodyRead| match read {
        BodyRead::Whole(bytes) => {
            // Unchanged (or not a JSON object): the bytes as they came.
            let body = match edits.transform_response_bytes(&bytes.to_vec()) {
                Some(out) => js_sys::Uint8Array::from(out.as_slice()),
                None => bytes,
            };
            reply.set_body(Some(body.into()));
        }
        BodyRead::Over => warn(
            &request_id,
            &format!("the JSON body is larger than max_body_size ({limit}); passed untouched"),
        ),
        BodyRead::Failed => warn(&request_id, "the JSON body could not be read"),
        BodyRead::Absent => {}
    };
    Some(ReadBody {
        limit,
        whole: declared.is_some(),
        then: Box::new(then),
    })
}

fn warn(request_id: &str, message: &str) {
    let line = serde_json::json!({
        "event": "plugin_warning",
        "plugin": "response-transformer",
        "request_id": request_id,
        "message": message,
    });
    runtime::log(&line.to_string());
}
