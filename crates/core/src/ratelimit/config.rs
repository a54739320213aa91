//! The `rate-limiting` plugin's settings (Kong's names), validated and compiled.

use super::algorithm::{Algorithm, Limit, Spec, Window};
use crate::plugins::PluginError;
use serde::Deserialize;

/// What a request is counted by.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[cfg_attr(
    feature = "schema",
    derive(schemars::JsonSchema),
    schemars(rename = "RateLimitBy")
)]
#[serde(rename_all = "lowercase")]
pub enum LimitBy {
    /// The authenticated consumer (falls back to the client IP when there is none).
    #[default]
    Consumer,
    /// The credential used (falls back to the client IP).
    Credential,
    /// The client IP the platform reports (`CF-Connecting-IP`).
    Ip,
    /// The value of the header `header_name` (falls back to the client IP when absent).
    Header,
    /// The request path (or only the path `path`, when set).
    Path,
    /// The matched route: all callers share one counter per route.
    Route,
    /// The service: all callers of all routes to it share one counter.
    Service,
}

impl LimitBy {
    pub fn name(self) -> &'static str {
        match self {
            LimitBy::Consumer => "consumer",
            LimitBy::Credential => "credential",
            LimitBy::Ip => "ip",
            LimitBy::Header => "header",
            LimitBy::Path => "path",
            LimitBy::Route => "route",
            LimitBy::Service => "service",
        }
    }
}

/// Where counts live.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[cfg_attr(
    feature = "schema",
    derive(schemars::JsonSchema),
    schemars(rename = "RateLimitPolicy", transform = policy_aliases)
)]
#[serde(rename_all = "lowercase")]
pub enum CounterPolicy {
    /// One Durable Object per counted key: exact across every location. Kong's shared-counter
    /// policies `cluster` and `redis` mean this here.
    #[default]
    #[serde(alias = "cluster", alias = "redis")]
    Durable,
    /// In the memory of each Worker isolate: no round trip, approximate (per isolate and location).
    Local,
}

/// The schema lists the aliases serde accepts (schemars does not see `#[serde(alias)]`).
#[cfg(feature = "schema")]
fn policy_aliases(schema: &mut schemars::Schema) {
    if let Some(one_of) = schema
        .get_mut("oneOf")
        .and_then(serde_json::Value::as_array_mut)
    {
        for (alias, kong) in [("cluster", "Kong's `cluster`"), ("redis", "Kong's `redis`")] {
            one_of.push(serde_json::json!({
                "description": format!("{kong}: the same as `durable` (one Durable Object per key)."),
                "type": "string",
                "const": alias
            }));
        }
    }
}

/// What a policy counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[cfg_attr(
    feature = "schema",
    derive(schemars::JsonSchema),
    schemars(rename = "RateLimitCount")
)]
#[serde(rename_all = "lowercase")]
pub enum Count {
    /// Requests, each costing `cost` (checked and charged before the request).
    #[default]
    Requests,
    /// LLM tokens of AI routes (prompt + completion, from the answer's `usage`): the request is
    /// refused while the budget is used up, and the real count is charged after the answer (when a
    /// stream ends). OpenAI's "tokens per minute" (TPM).
    Tokens,
}

impl Count {
    pub fn name(self) -> &'static str {
        match self {
            Count::Requests => "requests",
            Count::Tokens => "tokens",
        }
    }
}

/// The settings as written in the configuration document.
#[derive(Debug, Clone, Deserialize)]
#[cfg_attr(
    feature = "schema",
    derive(schemars::JsonSchema),
    schemars(
        rename = "RateLimitingPluginConfig",
        description = "Settings of the `rate-limiting` plugin (docs/rate-limiting.md)."
    )
)]
#[serde(deny_unknown_fields)]
pub struct RateLimitSettings {
    #[serde(default)]
    pub second: Option<u64>,
    #[serde(default)]
    pub minute: Option<u64>,
    #[serde(default)]
    pub hour: Option<u64>,
    #[serde(default)]
    pub day: Option<u64>,
    #[serde(default)]
    pub month: Option<u64>,
    /// 365 days (Kong's `year`).
    #[serde(default)]
    pub year: Option<u64>,
    #[serde(default)]
    pub limit_by: LimitBy,
    /// Header counted by with `limit_by: header`.
    #[serde(default)]
    pub header_name: Option<String>,
    /// With `limit_by: path`: count only this exact path (other paths are not limited).
    #[serde(default)]
    pub path: Option<String>,
    #[serde(default)]
    pub policy: CounterPolicy,
    #[serde(default)]
    pub algorithm: Algorithm,
    /// Token bucket only: the bucket size of the shortest window (default: its limit).
    #[serde(default)]
    pub burst: Option<u64>,
    #[serde(default)]
    pub hide_client_headers: bool,
    #[serde(default = "default_error_code")]
    pub error_code: u16,
    #[serde(default = "default_error_message")]
    pub error_message: String,
    #[serde(default = "default_true")]
    pub fault_tolerant: bool,
    /// Longest wait for the Durable Object (ms).
    #[serde(default = "default_timeout_ms")]
    pub timeout_ms: u64,
    /// What one request costs (`count: requests` only).
    #[serde(default = "default_cost")]
    pub cost: u64,
    /// Count requests (default) or LLM tokens.
    #[serde(default)]
    pub count: Count,
    /// `policy: durable`, `count: requests`: decide most requests in the isolate from permit leases
    /// (default true); `false` asks the object for every request (per-request mode).
    #[serde(default)]
    pub lease: Option<bool>,
    /// `policy: durable`: where to create the counting objects (Cloudflare's `locationHint`).
    #[serde(default)]
    pub location_hint: Option<String>,
    /// Kong's `sync_rate` and Redis settings, accepted so Kong configurations load; unused (the
    /// counters are Durable Objects).
    #[serde(default)]
    pub sync_rate: Option<serde_json::Value>,
    #[serde(default)]
    pub redis: Option<serde_json::Value>,
    /// Kong's deprecated flat Redis fields (Kong 3.x still accepts them beside `redis`): accepted so
    /// Kong configurations load, unused. `scripts/config show` hides `redis_password`.
    #[serde(default)]
    pub redis_host: Option<serde_json::Value>,
    #[serde(default)]
    pub redis_port: Option<serde_json::Value>,
    #[serde(default)]
    pub redis_username: Option<serde_json::Value>,
    #[serde(default)]
    pub redis_password: Option<serde_json::Value>,
    #[serde(default)]
    pub redis_database: Option<serde_json::Value>,
    #[serde(default)]
    pub redis_timeout: Option<serde_json::Value>,
    #[serde(default)]
    pub redis_ssl: Option<serde_json::Value>,
    #[serde(default)]
    pub redis_ssl_verify: Option<serde_json::Value>,
    #[serde(default)]
    pub redis_server_name: Option<serde_json::Value>,
}

/// Cloudflare's Durable Object location hints.
pub const LOCATION_HINTS: [&str; 9] = [
    "wnam", "enam", "sam", "weur", "eeur", "apac", "oc", "afr", "me",
];

fn default_error_code() -> u16 {
    429
}
fn default_error_message() -> String {
    DEFAULT_ERROR_MESSAGE.to_string()
}
fn default_true() -> bool {
    true
}
fn default_timeout_ms() -> u64 {
    DEFAULT_TIMEOUT_MS
}
fn default_cost() -> u64 {
    1
}

pub const DEFAULT_ERROR_MESSAGE: &str = "API rate limit exceeded";
pub const DEFAULT_TIMEOUT_MS: u64 = 1_000;
/// Largest accepted limit per window (keeps every product in the arithmetic far from overflow).
pub const MAX_LIMIT: u64 = 1_000_000_000_000;
pub const MAX_TIMEOUT_MS: u64 = 30_000;

/// The compiled plugin: what the glue needs per request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RateLimitConfig {
    pub spec: Spec,
    pub limit_by: LimitBy,
    /// Lower-case.
    pub header_name: Option<String>,
    pub path: Option<String>,
    pub policy: CounterPolicy,
    pub hide_client_headers: bool,
    pub error_code: u16,
    pub error_message: String,
    pub fault_tolerant: bool,
    pub timeout_ms: u64,
    pub cost: u64,
    pub count: Count,
    /// Permit leases in use (`policy: durable`, `count: requests`, `lease` not false).
    pub lease: bool,
    pub location_hint: Option<String>,
}

impl RateLimitSettings {
    /// Validate and compile (errors are `(path relative to config, message)`).
    pub fn compile(self) -> Result<RateLimitConfig, PluginError> {
        let mut errors: Vec<(String, String)> = Vec::new();
        macro_rules! err {
            ($path:expr, $msg:expr $(,)?) => {
                errors.push(($path.to_string(), $msg))
            };
        }
        let given = [
            (Window::Second, self.second),
            (Window::Minute, self.minute),
            (Window::Hour, self.hour),
            (Window::Day, self.day),
            (Window::Month, self.month),
            (Window::Year, self.year),
        ];
        let mut limits: Vec<Limit> = Vec::new();
        for (window, value) in given {
            let Some(limit) = value else { continue };
            if limit == 0 || limit > MAX_LIMIT {
                err!(
                    window.name(),
                    format!("must be between 1 and {MAX_LIMIT} (got {limit})"),
                );
                continue;
            }
            // Kong's rule: a longer window cannot allow less than a shorter one.
            if let Some(shorter) = limits.iter().find(|l| l.limit > limit) {
                err!(
                    window.name(),
                    format!(
                        "the limit for {} ({limit}) cannot be lower than the limit for {} ({})",
                        window.name(),
                        shorter.window.name(),
                        shorter.limit
                    ),
                );
            }
            limits.push(Limit {
                window,
                limit,
                burst: limit,
            });
        }
        if limits.is_empty() && errors.is_empty() {
            err!(
                "",
                "at least one of second, minute, hour, day, month or year must be set".into(),
            );
        }
        match (self.algorithm, self.burst) {
            (Algorithm::TokenBucket, Some(burst)) => {
                if burst == 0 || burst > MAX_LIMIT {
                    err!("burst", format!("must be between 1 and {MAX_LIMIT}"));
                } else if let Some(first) = limits.first_mut() {
                    first.burst = burst;
                }
            }
            (Algorithm::SlidingWindow, Some(_)) => err!(
                "burst",
                "burst applies only to algorithm \"token_bucket\"".into(),
            ),
            _ => {}
        }
        let header_name = match (self.limit_by, self.header_name) {
            (LimitBy::Header, None) => {
                err!("header_name", "required when limit_by is \"header\"".into(),);
                None
            }
            (_, Some(h)) if h.is_empty() || !h.bytes().all(is_token_byte) => {
                // Not quoted: it may be a whole `Name: value` line.
                err!(
                    "header_name",
                    "not a valid header name (letters, digits and !#$%&'*+-.^_`|~ only)".into(),
                );
                None
            }
            (_, h) => h.map(|h| h.to_ascii_lowercase()),
        };
        if let Some(p) = &self.path {
            if self.limit_by != LimitBy::Path {
                err!("path", "applies only when limit_by is \"path\"".into());
            } else if !p.starts_with('/') {
                err!("path", "must start with '/'".into());
            } else if let Some(c) = p.chars().find(|&c| !is_request_path_char(c)) {
                // A request's path never holds these (the URL parser percent-encodes the rest and
                // leaves the query and fragment out): such a policy could never apply. Kong refuses
                // them too (`typedefs.path`).
                err!(
                    "path",
                    format!(
                        "{c:?} cannot appear in a request path: no query ('?') or fragment ('#'); \
                         percent-encode spaces and non-ASCII characters"
                    ),
                );
            }
        }
        if !(400..=599).contains(&self.error_code) {
            err!(
                "error_code",
                format!("must be between 400 and 599 (got {})", self.error_code),
            );
        }
        if self.error_message.len() > 1024 {
            err!("error_message", "must be at most 1024 bytes".into());
        }
        if self.timeout_ms == 0 || self.timeout_ms > MAX_TIMEOUT_MS {
            err!(
                "timeout_ms",
                format!("must be between 1 and {MAX_TIMEOUT_MS}"),
            );
        }
        if self.count == Count::Tokens && self.cost != 1 {
            err!(
                "cost",
                "applies only to count \"requests\" (a tokens policy costs each request its tokens)"
                    .into(),
            );
        } else if let Some(l) = limits.iter().find(|l| self.cost > l.burst) {
            err!(
                "cost",
                format!(
                    "a request costing {} could never pass the {} limit of {}",
                    self.cost,
                    l.window.name(),
                    l.burst
                ),
            );
        }
        if self.lease == Some(true) && self.policy != CounterPolicy::Durable {
            err!("lease", "applies only to policy \"durable\"".into());
        } else if self.lease == Some(true) && self.count == Count::Tokens {
            err!(
                "lease",
                "token budgets cannot be leased (the cost is known only after the answer)".into(),
            );
        }
        if let Some(hint) = &self.location_hint {
            if self.policy != CounterPolicy::Durable {
                err!("location_hint", "applies only to policy \"durable\"".into());
            } else if !LOCATION_HINTS.contains(&hint.as_str()) {
                err!(
                    "location_hint",
                    format!("{hint:?} is not one of {}", LOCATION_HINTS.join(", ")),
                );
            }
        }
        if !errors.is_empty() {
            return Err(PluginError::Config(errors));
        }
        let lease = self.policy == CounterPolicy::Durable
            && self.count == Count::Requests
            && self.lease.unwrap_or(true);
        Ok(RateLimitConfig {
            spec: Spec {
                algorithm: self.algorithm,
                limits,
            },
            limit_by: self.limit_by,
            header_name,
            // In the router's normal form, the one request paths are compared in (`key::identifier`).
            path: self
                .path
                .map(|p| crate::router::normalize_path(&p).into_owned()),
            policy: self.policy,
            hide_client_headers: self.hide_client_headers,
            error_code: self.error_code,
            error_message: self.error_message,
            fault_tolerant: self.fault_tolerant,
            timeout_ms: self.timeout_ms,
            cost: self.cost,
            count: self.count,
            lease,
            location_hint: self.location_hint,
        })
    }
}

/// Characters a request path (as the URL parser gives it, without query or fragment) can hold.
fn is_request_path_char(c: char) -> bool {
    c.is_ascii_graphic() && c != '?' && c != '#'
}

/// RFC 9110 token characters.
fn is_token_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

/// Parse a `rate-limiting` plugin's `config` (the entry point for `plugins::parse`).
pub fn parse(config: &serde_json::Value) -> Result<RateLimitConfig, PluginError> {
    crate::plugins::settings::<RateLimitSettings>(config).and_then(RateLimitSettings::compile)
}
