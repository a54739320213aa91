//! The one place a `GatewayError` becomes an HTTP response.

use edgegate_core::error::PROBLEM_JSON;
use edgegate_core::proxy::REQUEST_ID;
use edgegate_core::GatewayError;

pub fn error(e: &GatewayError, request_id: &str) -> web_sys::Response {
    let headers = web_sys::Headers::new().expect("Headers constructor");
    // AI routes answer in OpenAI's error shape, so the SDKs parse it.
    let body = match &e.kind {
        edgegate_core::ErrorKind::Ai { error, .. } => {
            let _ = headers.set("content-type", "application/json");
            let mut body = error.body();
            if matches!(error.shape, edgegate_core::ai::ErrorShape::Anthropic) {
                // As Anthropic's API: the request id in the error body too.
                body["request_id"] = request_id.into();
            }
            body.to_string()
        }
        _ => {
            let _ = headers.set("content-type", PROBLEM_JSON);
            e.problem_json(request_id)
        }
    };
    let _ = headers.set("cache-control", "no-store");
    let _ = headers.set(REQUEST_ID, request_id);
    if let edgegate_core::ErrorKind::Ai { error, .. } = &e.kind {
        if matches!(error.shape, edgegate_core::ai::ErrorShape::Anthropic) {
            // The Anthropic SDKs read the request id from `request-id` (`_request_id`,
            // `error.requestID`), also on the answers of plugins that refuse before the AI proxy.
            let _ = headers.set("request-id", request_id);
        }
    }
    for (name, value) in e.headers() {
        let _ = headers.set(name, &value);
    }
    let init = web_sys::ResponseInit::new();
    init.set_status(e.status());
    init.set_headers(&headers);
    web_sys::Response::new_with_opt_str_and_init(Some(&body), &init)
        .expect("a status from ErrorKind is always valid")
}

/// Add headers to a response we built (its headers are mutable); used for headers that phases add
/// to every answer, error or not (rate-limit state, for example).
pub fn add_headers(response: &web_sys::Response, headers: &[(String, String)]) {
    if headers.is_empty() {
        return;
    }
    let target = response.headers();
    for (name, value) in headers {
        // A cookie is added beside the origin's own cookies, every other header replaces.
        let _ = if name == crate::upstream::SET_COOKIE {
            target.append(name, value)
        } else {
            target.set(name, value)
        };
    }
}

/// RFC 9110 section 6.6.1: every response but a 1xx carries `Date`. A proxied one without it got it
/// when it arrived (`clientResponse` in js.rs); the gateway's own answers (problem documents, plugin
/// answers, preflights, the AI gateway's) get the time they are sent. A response whose headers cannot
/// change is left as it is.
pub fn add_date(response: &web_sys::Response) {
    if response.status() < 200 {
        return;
    }
    let headers = response.headers();
    if !headers.has("date").unwrap_or(true) {
        let now = js_sys::Date::new_0().to_utc_string();
        let _ = headers.set("date", &String::from(now));
    }
}

/// A response the gateway makes itself (a plugin's answer): `status`, `headers`, `body`, and the
/// request id.
pub fn fixed(
    status: u16,
    headers: &[(&str, &str)],
    body: Option<&str>,
    request_id: &str,
) -> web_sys::Response {
    let h = web_sys::Headers::new().expect("Headers constructor");
    for (name, value) in headers {
        let _ = h.set(name, value);
    }
    let _ = h.set(REQUEST_ID, request_id);
    let init = web_sys::ResponseInit::new();
    init.set_status(status);
    init.set_headers(&h);
    web_sys::Response::new_with_opt_str_and_init(body, &init).unwrap_or_else(|_| {
        // Only a status outside 200..=599 fails, and validation refuses those.
        web_sys::Response::new_with_opt_str_and_init(None, &web_sys::ResponseInit::new())
            .expect("an empty 200")
    })
}

/// All (name, value) pairs of `headers`, names in lower case.
pub fn header_pairs(headers: &web_sys::Headers) -> Vec<(String, String)> {
    let mut out = Vec::new();
    if let Ok(Some(iter)) = js_sys::try_iter(headers) {
        for entry in iter.flatten() {
            let pair = js_sys::Array::from(&entry);
            if let (Some(n), Some(v)) = (pair.get(0).as_string(), pair.get(1).as_string()) {
                out.push((n, v));
            }
        }
    }
    out
}
