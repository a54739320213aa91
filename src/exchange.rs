//! One request's journey through the gateway: what the phases (auth, limits, cache, proxy) read and
//! what they leave for the next one.

use edgegate_core::gateway::{Gateway, ProxyPlan};
use edgegate_core::identity::Identity;
use edgegate_core::plugins::PluginInstance;
use edgegate_core::proxy::UrlParts;
use worker::{Context, Env};

/// What the access log line reports beyond the request itself.
#[derive(Default)]
pub struct LogFields {
    pub route: Option<String>,
    pub service: Option<String>,
    pub consumer: Option<String>,
    /// The origin of the target the request went to last, and how many attempts were made.
    pub upstream: Option<std::sync::Arc<str>>,
    pub attempts: Option<u32>,
    pub error: Option<&'static str>,
    pub config_version: Option<u64>,
    pub upstream_ms: Option<u64>,
    /// Status of the response, when a phase already knows it (saves asking JS again).
    pub status: Option<u16>,
    /// AI routes: provider, model, attempts, tokens (see docs/ai.md).
    pub ai: Option<edgegate_core::ai::AiLog>,
    /// The headers of the response the client gets (names in lower case, in order), as the
    /// response phases left it: set by the runner when the response is settled
    /// (`pipeline::body_filters_from`), only when a log hook that reads them runs for the request
    /// (`Hooks::log_response_headers`: `http-log`, not `opentelemetry`); such a hook reads them
    /// here, from the request's own state.
    pub response_headers: Option<Vec<(String, String)>>,
}

pub struct Exchange<'a> {
    pub raw: &'a web_sys::Request,
    pub env: &'a Env,
    pub ctx: &'a Context,
    pub request_id: &'a str,
    /// When the request arrived (ms since the epoch).
    pub started: f64,
    pub url: UrlParts<'a>,
    /// Lower-case host without port.
    pub host: String,
    pub gateway: &'a Gateway,
    pub plan: ProxyPlan<'a>,
    /// The client address the platform reports (`CF-Connecting-IP`), never a client-set header.
    pub client_ip: Option<String>,
    /// Method, URL and the headers every request needs, read once.
    pub info: &'a crate::js::RequestInfo,
    /// Headers to set on the upstream request, after the standard proxy headers.
    pub upstream_set: Vec<(String, String)>,
    /// Headers to remove from the upstream request (credentials with `hide_credentials`, forged
    /// identity headers).
    pub upstream_remove: Vec<String>,
    /// Headers a `request-transformer` rule removed: not set from the service's `headers` either
    /// (the rule wins over them, docs/transformations.md).
    pub upstream_unset: Vec<String>,
    /// The upstream request's method, when a plugin changes it (else the client's).
    pub upstream_method: Option<String>,
    /// The upstream request's body, when a plugin replaces it: a string, a `Uint8Array` or a
    /// `ReadableStream` (else the client's body streams through). `Content-Length` is then dropped
    /// (the runtime sets it for a string or bytes). A GET or HEAD cannot carry one.
    pub upstream_body: Option<wasm_bindgen::JsValue>,
    /// Whether the authentication phase has run (auth plugins share one hook).
    pub auth_ran: bool,
    /// Headers added to the response the client gets (success or error).
    pub response_headers: Vec<(String, String)>,
    /// Set by the authentication phase.
    pub identity: Option<Identity>,
    pub log: LogFields,
    /// Total tokens of an AI answer, for token-based limits: set by the AI phase before a
    /// non-streamed response is returned, and when a stream ends (after the response has started;
    /// the cell is shared with the stream). `None` until then and on non-AI routes.
    /// `AiTokens::end` is called when the stream ends, for charges waiting on it.
    pub ai_tokens: std::rc::Rc<crate::ratelimit::AiTokens>,
}

/// What the request phases left on an exchange, owned: kept while the request waits for the origin
/// on the synchronous path (`lib.rs`, `fast`), and put back on the exchange made again for the
/// response phases (or a retry, or the rest of the request hooks as a future).
#[derive(Default)]
pub struct Saved {
    url: String,
    client_ip: Option<String>,
    upstream_set: Vec<(String, String)>,
    upstream_remove: Vec<String>,
    upstream_unset: Vec<String>,
    upstream_method: Option<String>,
    upstream_body: Option<wasm_bindgen::JsValue>,
    auth_ran: bool,
    pub response_headers: Vec<(String, String)>,
    identity: Option<Identity>,
    pub log: LogFields,
    ai_tokens: std::rc::Rc<crate::ratelimit::AiTokens>,
    /// Where the request was routed, so that the exchange is made again without routing it again.
    pub route: Option<Routed>,
}

/// The owned part of a [`ProxyPlan`] and the request's host, kept in [`Saved`]: with the same
/// configuration, [`Routed::plan`] gives the plan back from indices, without routing again.
pub struct Routed {
    route_index: usize,
    service_index: usize,
    path_start: usize,
    stripped: usize,
    params: Vec<(String, String)>,
    preserve_host: bool,
    pub host: String,
}

impl Routed {
    /// The plan again, on `gateway` (the configuration it was made on), with `url`.
    pub fn plan(self, gateway: &Gateway, url: String) -> Option<(ProxyPlan<'_>, String)> {
        let route = gateway.router().compiled(self.route_index)?;
        let upstream = gateway.upstream(self.service_index)?;
        let plan = ProxyPlan {
            route_index: self.route_index,
            route: &route.name,
            upstream,
            service_index: self.service_index,
            url,
            resolve_override: self.preserve_host.then_some(upstream.host.as_str()),
            stripped: self.stripped,
            path_start: self.path_start,
            params: self.params,
        };
        Some((plan, self.host))
    }
}

impl<'a> Exchange<'a> {
    /// Take what the phases changed (see [`Saved`]).
    pub fn save(&mut self) -> Saved {
        use std::mem::take;
        Saved {
            url: take(&mut self.plan.url),
            client_ip: take(&mut self.client_ip),
            upstream_set: take(&mut self.upstream_set),
            upstream_remove: take(&mut self.upstream_remove),
            upstream_unset: take(&mut self.upstream_unset),
            upstream_method: take(&mut self.upstream_method),
            upstream_body: take(&mut self.upstream_body),
            auth_ran: self.auth_ran,
            response_headers: take(&mut self.response_headers),
            identity: take(&mut self.identity),
            log: take(&mut self.log),
            ai_tokens: take(&mut self.ai_tokens),
            route: Some(Routed {
                route_index: self.plan.route_index,
                service_index: self.plan.service_index,
                path_start: self.plan.path_start,
                stripped: self.plan.stripped,
                params: take(&mut self.plan.params),
                preserve_host: self.plan.resolve_override.is_some(),
                host: take(&mut self.host),
            }),
        }
    }

    /// Put back what [`Exchange::save`] took, on an exchange made again for the same request.
    pub fn restore(&mut self, saved: Saved) {
        self.plan.url = saved.url;
        self.client_ip = saved.client_ip;
        self.upstream_set = saved.upstream_set;
        self.upstream_remove = saved.upstream_remove;
        self.upstream_unset = saved.upstream_unset;
        self.upstream_method = saved.upstream_method;
        self.upstream_body = saved.upstream_body;
        self.auth_ran = saved.auth_ran;
        self.response_headers = saved.response_headers;
        self.identity = saved.identity;
        self.log = saved.log;
        self.ai_tokens = saved.ai_tokens;
    }

    /// The plugin instances that may apply to this request (consumer-scoped ones included).
    pub fn plugins(&self) -> impl Iterator<Item = &'a PluginInstance> + 'a {
        self.gateway.plugins_for(self.plan.route_index)
    }

    /// A request header's value (see [`header_value`]).
    pub fn header(&self, name: &str) -> Option<String> {
        header_value(&self.raw.headers(), name)
    }

    /// A field of the request's `cf` object (e.g. `country`) as a string; `None` when absent (as
    /// under Miniflare unless the test injects one).
    #[allow(dead_code)] // for plugins' hooks (geo-restriction)
    pub fn cf(&self, field: &str) -> Option<String> {
        let cf = js_sys::Reflect::get(self.raw, &"cf".into()).ok()?;
        if cf.is_undefined() || cf.is_null() {
            return None;
        }
        let v = js_sys::Reflect::get(&cf, &field.into()).ok()?;
        v.as_string().or_else(|| v.as_f64().map(|n| n.to_string()))
    }

    /// The upstream path and query (`/base/x?y=1`), as the route made it and plugins changed it.
    #[allow(dead_code)] // for plugins' hooks (request-transformer)
    pub fn upstream_path_and_query(&self) -> &str {
        let url = self.plan.url.as_str();
        let after_scheme = url.find("://").map_or(0, |i| i + 3);
        url[after_scheme..]
            .find('/')
            .map_or("/", |i| &url[after_scheme + i..])
    }

    /// Send the request upstream to `path_and_query` (starting with `/`) instead, on the same origin.
    #[allow(dead_code)] // for plugins' hooks (request-transformer)
    pub fn set_upstream_path_and_query(&mut self, path_and_query: &str) {
        let url = self.plan.url.as_str();
        let after_scheme = url.find("://").map_or(0, |i| i + 3);
        let origin_end = url[after_scheme..]
            .find('/')
            .map_or(url.len(), |i| after_scheme + i);
        self.plan.url = format!("{}{path_and_query}", &url[..origin_end]);
    }
}

/// A request header's value, without the spaces and tabs a client left at the end of the line: they are
/// not part of a field value (RFC 9110 section 5.5), but workerd hands them to the Worker.
pub fn header_value(headers: &web_sys::Headers, name: &str) -> Option<String> {
    let mut value = headers.get(name).ok().flatten()?;
    let kept = value.trim_end_matches([' ', '\t']).len();
    value.truncate(kept);
    Some(value)
}
