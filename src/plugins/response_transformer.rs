//! `response-transformer` glue: header rules on the response headers (header_filter), `json` rules on
//! a JSON body read with a bound (body_filter). A body over the bound, or one the rules do not apply
//! to, streams through untouched (docs/transformations.md#bodies).

use super::transform_js;
use crate::exchange::Exchange;
use crate::runtime;
use edgegate_core::plugins::response_transformer::ResponseTransformerConfig;
use edgegate_core::plugins::transform::HeaderEdit;
use edgegate_core::template::RequestVars;
use wasm_bindgen::JsValue;

/// The response with the instance's rules applied (the same response when nothing applies).
pub async fn on_response(
    ex: &Exchange<'_>,
    config: &ResponseTransformerConfig,
    response: web_sys::Response,
) -> web_sys::Response {
    let status = response.status();
    if status == 101 {
        return response;
    }
    let request_headers = ex.raw.headers();
    let get_request = |n: &str| request_headers.get(n).ok().flatten();
    let vars = RequestVars {
        header: &get_request,
        query: ex.url.query,
        captures: &ex.plan.captures,
        consumer: ex.identity.as_ref(),
    };
    let response_headers = response.headers();
    let get = |n: &str| response_headers.get(n).ok().flatten();
    let edits = config.header_edits(&get, &vars);

    // body_filter: only a JSON body, when json rules exist, within the bound.
    let mut body = JsValue::UNDEFINED;
    let method = ex.info.method.as_str();
    let json = config.json_applies(get("content-type").as_deref())
        && !matches!(status, 204 | 304)
        && method != "HEAD"
        && response.body().is_some();
    if json {
        let limit = config.max_body_size;
        let declared = get("content-length").and_then(|l| l.trim().parse::<u64>().ok());
        if declared.is_some_and(|l| l > limit) {
            warn(ex, &format!("the JSON body ({} bytes) is larger than max_body_size ({limit}); passed untouched", declared.unwrap_or(0)));
        } else {
            let stream: JsValue = response.body().map(JsValue::from).unwrap_or(JsValue::NULL);
            match transform_js::read_bounded(&stream, limit).await {
                Ok(bytes) => {
                    let out = config.json_body(&bytes, &vars).unwrap_or(bytes);
                    body = js_sys::Uint8Array::from(out.as_slice()).into();
                }
                Err(rest) if !rest.is_null() => {
                    warn(ex, &format!("the JSON body is larger than max_body_size ({limit}); passed untouched"));
                    body = rest;
                }
                Err(_) => {
                    warn(ex, "the JSON body could not be read");
                    body = JsValue::NULL;
                }
            }
        }
    }
    if edits.is_empty() && body.is_undefined() {
        return response;
    }
    let mut remove = String::new();
    let set = js_sys::Array::new();
    for edit in edits {
        match edit {
            HeaderEdit::Remove(name) => {
                if !remove.is_empty() {
                    remove.push('\n');
                }
                remove.push_str(&name);
            }
            HeaderEdit::Set(name, values) => {
                for v in values {
                    set.push(&JsValue::from_str(&name));
                    set.push(&JsValue::from_str(&v));
                }
            }
        }
    }
    match transform_js::edit_response(&response, &remove, &set, &body) {
        Ok(r) => r,
        Err(_) => {
            warn(ex, "the response could not be edited; passed untouched");
            response
        }
    }
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
