//! Sending one request to a collector after the response (`http-log`, `opentelemetry`): the task is
//! kept alive with `ctx.waitUntil`, so the client's response never waits for it; sent at most once,
//! with a deadline; a 3xx is the collector's answer (a failure, as in Kong), not a redirect to
//! follow. A failure is one console line, `{"event": <event>, "request_id", "endpoint", "status" |
//! "error"}`, with the endpoint as `url_for_log` shows it (no credentials, no query).

use crate::exchange::Exchange;
use crate::runtime;
use edgegate_core::auth::jwks::url_for_log;
use futures_util::future::{select, Either};
use std::time::Duration;
use wasm_bindgen::JsCast;
use wasm_bindgen_futures::JsFuture;

/// What to send where.
pub struct Post {
    pub endpoint: String,
    pub method: String,
    /// Sent first; `content_type` and `authorization` replace an entry of the same name.
    pub headers: Vec<(String, String)>,
    pub content_type: String,
    pub authorization: Option<String>,
    pub timeout_ms: u64,
    pub body: String,
    /// The console line's `event` when the send fails.
    pub event: &'static str,
}

/// Send `post` after the response; `ex` gives the request id and the `waitUntil`.
pub fn after_response(ex: &Exchange<'_>, post: Post) {
    let request_id = ex.request_id.to_string();
    ex.ctx.wait_until(async move {
        if let Err(error) = send(&post).await {
            let mut line = serde_json::json!({
                "event": post.event,
                "request_id": request_id,
                "endpoint": url_for_log(&post.endpoint),
            });
            match error {
                Failure::Status(s) => line["status"] = s.into(),
                Failure::Other(e) => line["error"] = e.into(),
            }
            runtime::log(&line.to_string());
        }
    });
}

enum Failure {
    /// The collector answered with this non-2xx status.
    Status(u16),
    Other(&'static str),
}

async fn send(post: &Post) -> Result<(), Failure> {
    let headers = web_sys::Headers::new().map_err(|_| Failure::Other("headers"))?;
    for (name, value) in &post.headers {
        let _ = headers.set(name, value);
    }
    let _ = headers.set("content-type", &post.content_type);
    if let Some(a) = &post.authorization {
        let _ = headers.set("authorization", a);
    }
    let abort = web_sys::AbortController::new().map_err(|_| Failure::Other("abort controller"))?;
    let init = web_sys::RequestInit::new();
    init.set_method(&post.method);
    init.set_headers(&headers);
    init.set_body(&post.body.as_str().into());
    init.set_signal(Some(&abort.signal()));
    init.set_redirect(web_sys::RequestRedirect::Manual);
    let global: web_sys::WorkerGlobalScope = js_sys::global().unchecked_into();
    let fetch = JsFuture::from(global.fetch_with_str_and_init(&post.endpoint, &init));
    let deadline = worker::Delay::from(Duration::from_millis(post.timeout_ms));
    let response = match select(fetch, deadline).await {
        Either::Left((Ok(r), _)) => r
            .dyn_into::<web_sys::Response>()
            .map_err(|_| Failure::Other("connection failed"))?,
        Either::Left((Err(_), _)) => return Err(Failure::Other("connection failed")),
        Either::Right(_) => {
            abort.abort();
            return Err(Failure::Other("timeout"));
        }
    };
    // The collector's answer is not read: free it.
    if let Some(b) = response.body() {
        let _ = b.cancel();
    }
    match response.status() {
        200..=299 => Ok(()),
        s => Err(Failure::Status(s)),
    }
}
