//! A bare pass-through Worker in Rust: same request in, origin's response out. `ORIGIN` is a var.
use wasm_bindgen::JsCast;
use wasm_bindgen_futures::JsFuture;
use worker::{event, Context, Env, Request, Response};

#[event(fetch)]
async fn fetch(req: Request, env: Env, _ctx: Context) -> worker::Result<Response> {
    let raw = req.inner();
    let origin = env.var("ORIGIN")?.to_string();
    let url = raw.url();
    let path = url.splitn(4, '/').nth(3).unwrap_or("");
    let init = web_sys::RequestInit::new();
    init.set_method(&raw.method());
    init.set_headers(&raw.headers());
    if let Some(body) = raw.body() {
        init.set_body(&body);
    }
    let global: web_sys::WorkerGlobalScope = js_sys::global().unchecked_into();
    let resp = JsFuture::from(global.fetch_with_str_and_init(&format!("{origin}/{path}"), &init)).await?;
    Ok(Response::from(resp.unchecked_into::<web_sys::Response>()))
}
