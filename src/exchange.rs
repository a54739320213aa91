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
    pub error: Option<&'static str>,
    pub config_version: Option<u64>,
    pub upstream_ms: Option<u64>,
    /// Status of the response, when a phase already knows it (saves asking JS again).
    pub status: Option<u16>,
    /// AI routes: provider, model, attempts, tokens (see docs/ai.md).
    pub ai: Option<edgegate_core::ai::AiLog>,
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
    /// The request to forward instead of `raw` when a plugin changed its method or body
    /// (request-transformer); its headers are still edited as for `raw`.
    pub upstream_request: Option<web_sys::Request>,
}

impl<'a> Exchange<'a> {
    /// The plugin instances that may apply to this request (consumer-scoped ones included).
    pub fn plugins(&self) -> impl Iterator<Item = &'a PluginInstance> + 'a {
        self.gateway.plugins_for(self.plan.route_index)
    }

    pub fn header(&self, name: &str) -> Option<String> {
        self.raw.headers().get(name).ok().flatten()
    }
}
