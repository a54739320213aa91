//! The configuration document, format version 1, as users write it in JSON.
//!
//! These types are the single source of truth: the validator deserializes into them, the router compiles
//! them, and the JSON Schema in `docs/config.schema.json` is generated from them (feature `schema`).

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// The whole gateway configuration stored as one immutable version in KV.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct GatewayConfig {
    /// Optional link to the JSON Schema, for editors. Ignored by the gateway.
    #[serde(default, rename = "$schema", skip_serializing_if = "Option::is_none")]
    pub schema: Option<String>,
    /// Format version of this document. Only `1` exists.
    #[cfg_attr(feature = "schema", schemars(extend("const" = 1)))]
    pub format_version: u32,
    /// Named upstreams that routes send traffic to.
    #[serde(default)]
    pub services: Vec<ServiceConfig>,
    /// Rules that pick a service for a request.
    #[serde(default)]
    pub routes: Vec<RouteConfig>,
    /// Features (authentication, rate limits, caching, ...) attached globally or to a service, a route
    /// or a consumer, as in Kong. See docs/plugins.md.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub plugins: Vec<PluginConfig>,
}

/// One plugin instance. Without `route`, `service` and `consumer` it applies to every request.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[cfg_attr(
    feature = "schema",
    derive(schemars::JsonSchema),
    schemars(transform = super::schema::plugin_variants)
)]
#[serde(deny_unknown_fields)]
pub struct PluginConfig {
    /// Which plugin, e.g. `key-auth`, `jwt`, `basic-auth`, `acl`, `rate-limiting`, `proxy-cache`.
    pub name: String,
    /// Stable identity of this instance within its scope (its `route`, `service` and `consumer`):
    /// letters, digits, '.', '_' and '-', at most 64 characters, unique within the scope. Rate-limit
    /// counters belong to it. Default: the plugin's name (`name.2`, `name.3`, ... for further
    /// instances of the same name in the same scope). See docs/plugins.md.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    /// Apply only to requests matched by this route (by name).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub route: Option<String>,
    /// Apply only to requests sent to this service (by name).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service: Option<String>,
    /// Apply only to requests authenticated as this consumer (by username).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub consumer: Option<String>,
    /// Set to false to keep the instance in the document without running it (default true).
    #[serde(default = "default_true")]
    pub enabled: bool,
    /// The plugin's own settings; each plugin documents them (docs/plugins.md).
    #[serde(default)]
    #[cfg_attr(
        feature = "schema",
        schemars(schema_with = "super::schema::plugin_config")
    )]
    pub config: serde_json::Value,
}

/// A named upstream: one origin (`url`) or several (`targets`), with how to balance, watch and retry
/// them. See docs/upstreams.md.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct ServiceConfig {
    /// Unique name, referenced by routes.
    #[cfg_attr(feature = "schema", schemars(extend("pattern" = "^[A-Za-z0-9._-]{1,128}$")))]
    pub name: String,
    /// Origin URL: `http` or `https`, host, optional port, optional base path
    /// (for example `https://api.internal.example.com:8443/v1`). No query or fragment.
    /// Exactly one of `url` and `targets` is given.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub url: String,
    /// Several origins to balance across, each a URL like `url` and a weight. Every target has the
    /// same base path. Exactly one of `url` and `targets` is given.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub targets: Vec<TargetConfig>,
    /// How a target is chosen: `round-robin` (weighted, default), `consistent-hashing` (by
    /// `hash_on`) or `least-connections` (fewest requests in flight in this isolate, per weight).
    #[serde(default, skip_serializing_if = "is_default")]
    pub algorithm: Algorithm,
    /// With `consistent-hashing`: what to hash (`none`, `consumer`, `ip`, `header`, `cookie`, `path`).
    #[serde(default, skip_serializing_if = "is_default")]
    pub hash_on: HashOn,
    /// The header to hash with `hash_on: header`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hash_on_header: Option<String>,
    /// The cookie to hash with `hash_on: cookie` or `hash_fallback: cookie`; set by the gateway (a new
    /// UUID, `Path=/; HttpOnly`) when the request has none, as Kong does.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hash_on_cookie: Option<String>,
    /// What to hash when the request has no `hash_on` value (same choices but `cookie`).
    #[serde(default, skip_serializing_if = "is_default")]
    pub hash_fallback: HashOn,
    /// The header to hash with `hash_fallback: header`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hash_fallback_header: Option<String>,
    /// Passive health checks (circuit breaker), per isolate. Off unless a threshold is set.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub healthchecks: Option<Healthchecks>,
    /// How many times a failed attempt is tried again (0 to 10, default 1).
    #[serde(default = "default_retries")]
    #[cfg_attr(feature = "schema", schemars(extend("maximum" = 10)))]
    pub retries: u64,
    /// Which failures are retried: `connect-failure`, `timeout`, or a status code (400 to 599).
    /// Default `["connect-failure"]`.
    #[serde(default = "default_retry_on")]
    pub retry_on: Vec<RetryOn>,
    /// Retry methods that are not idempotent (POST, PATCH, ...) too (default false).
    #[serde(default, skip_serializing_if = "is_default")]
    pub retry_non_idempotent: bool,
    /// How long to wait for the origin's response headers, in milliseconds (default 60000).
    #[serde(default = "default_timeout_ms")]
    #[cfg_attr(feature = "schema", schemars(extend("minimum" = 1, "maximum" = 600000)))]
    pub timeout_ms: u64,
    /// Headers set on every upstream request (replacing a client header of the same name).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub headers: BTreeMap<String, String>,
}

impl ServiceConfig {
    /// The URL that gives the service's base path: `url`, or the first target's.
    pub fn base_url(&self) -> &str {
        if self.url.is_empty() {
            self.targets.first().map_or("", |t| t.url.as_str())
        } else {
            &self.url
        }
    }
}

fn is_default<T: Default + PartialEq>(v: &T) -> bool {
    *v == T::default()
}

/// One origin of a service with several.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct TargetConfig {
    /// Origin URL, as a service's `url`.
    pub url: String,
    /// Share of the traffic, 0 to 65535 (default 100, as in Kong); 0 takes the target out.
    #[serde(default = "default_weight")]
    #[cfg_attr(feature = "schema", schemars(extend("maximum" = 65535)))]
    pub weight: u64,
}

pub fn default_weight() -> u64 {
    100
}

pub fn default_retries() -> u64 {
    1
}

pub fn default_retry_on() -> Vec<RetryOn> {
    vec![RetryOn::ConnectFailure]
}

/// Load-balancing algorithm (Kong's names).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "kebab-case")]
pub enum Algorithm {
    #[default]
    RoundRobin,
    ConsistentHashing,
    LeastConnections,
}

/// What a consistent hash (or a sticky traffic split) is computed from (Kong's names).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "lowercase")]
pub enum HashOn {
    #[default]
    None,
    Consumer,
    Ip,
    Header,
    Cookie,
    Path,
}

/// A failure that may be retried: `"connect-failure"`, `"timeout"` or a status code.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(untagged)]
pub enum RetryOn {
    Failure(RetryFailure),
    Status(u16),
}

#[allow(non_upper_case_globals)]
impl RetryOn {
    pub const ConnectFailure: RetryOn = RetryOn::Failure(RetryFailure::ConnectFailure);
    pub const Timeout: RetryOn = RetryOn::Failure(RetryFailure::Timeout);
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "kebab-case")]
pub enum RetryFailure {
    /// The origin could not be reached or dropped the connection before answering.
    ConnectFailure,
    /// No response headers within `timeout_ms`.
    Timeout,
}

impl<'de> Deserialize<'de> for RetryOn {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<RetryOn, D::Error> {
        struct V;
        impl serde::de::Visitor<'_> for V {
            type Value = RetryOn;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("\"connect-failure\", \"timeout\" or a status code (400 to 599)")
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<RetryOn, E> {
                match v {
                    "connect-failure" => Ok(RetryOn::ConnectFailure),
                    "timeout" => Ok(RetryOn::Timeout),
                    _ => Err(E::custom(format!(
                        "unknown retry condition {v:?}, expected \"connect-failure\", \"timeout\" or a status code (400 to 599)"
                    ))),
                }
            }
            fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<RetryOn, E> {
                match u16::try_from(v) {
                    Ok(s) if (400..=599).contains(&s) => Ok(RetryOn::Status(s)),
                    _ => Err(E::custom(format!(
                        "status {v} cannot be retried on (400 to 599)"
                    ))),
                }
            }
            fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<RetryOn, E> {
                Err(E::custom(format!(
                    "status {v} cannot be retried on (400 to 599)"
                )))
            }
        }
        d.deserialize_any(V)
    }
}

/// Health checks of a service's targets. Only passive checks exist (Kong's `healthchecks.passive`).
#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct Healthchecks {
    #[serde(default)]
    pub passive: PassiveHealthcheck,
}

/// Passive checks: proxied traffic is watched; a target with too many failures within `window_ms`
/// is out for `cooldown_ms`, then let through one request at a time until `healthy.successes`
/// of them succeed. State is per isolate.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct PassiveHealthcheck {
    #[serde(default)]
    pub unhealthy: PassiveUnhealthy,
    #[serde(default)]
    pub healthy: PassiveHealthy,
    /// Failures count when they happened within this many milliseconds (default 10000).
    #[serde(default = "default_window_ms")]
    pub window_ms: u64,
    /// How long an unhealthy target gets no traffic, in milliseconds (default 30000).
    #[serde(default = "default_cooldown_ms")]
    pub cooldown_ms: u64,
}

impl Default for PassiveHealthcheck {
    fn default() -> Self {
        PassiveHealthcheck {
            unhealthy: PassiveUnhealthy::default(),
            healthy: PassiveHealthy::default(),
            window_ms: default_window_ms(),
            cooldown_ms: default_cooldown_ms(),
        }
    }
}

pub fn default_window_ms() -> u64 {
    10_000
}

pub fn default_cooldown_ms() -> u64 {
    30_000
}

/// When a target is unhealthy: this many failures of one kind within the window (0: not counted).
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct PassiveUnhealthy {
    /// Responses with a status in `http_statuses` (default 0: off).
    #[serde(default)]
    pub http_failures: u64,
    /// Connection failures (default 0: off).
    #[serde(default)]
    pub tcp_failures: u64,
    /// Timeouts (default 0: off).
    #[serde(default)]
    pub timeouts: u64,
    /// The statuses that count as HTTP failures (default `[429, 500, 503]`, as in Kong).
    #[serde(default = "default_unhealthy_statuses")]
    pub http_statuses: Vec<u16>,
}

impl Default for PassiveUnhealthy {
    fn default() -> Self {
        PassiveUnhealthy {
            http_failures: 0,
            tcp_failures: 0,
            timeouts: 0,
            http_statuses: default_unhealthy_statuses(),
        }
    }
}

pub fn default_unhealthy_statuses() -> Vec<u16> {
    vec![429, 500, 503]
}

/// When an unhealthy target is healthy again.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct PassiveHealthy {
    /// Successful trial requests after the cool-down (1 to 255, default 1).
    #[serde(default = "default_successes")]
    pub successes: u64,
}

impl Default for PassiveHealthy {
    fn default() -> Self {
        PassiveHealthy {
            successes: default_successes(),
        }
    }
}

pub fn default_successes() -> u64 {
    1
}

/// One service of a route that splits its traffic (`services`).
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct WeightedService {
    /// The service's name.
    pub name: String,
    /// Share of the route's traffic, 0 to 65535.
    #[cfg_attr(feature = "schema", schemars(extend("maximum" = 65535)))]
    pub weight: u64,
}

pub fn default_timeout_ms() -> u64 {
    60_000
}

/// A rule that matches requests and sends them to a service.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct RouteConfig {
    /// Unique name, shown in logs.
    #[cfg_attr(feature = "schema", schemars(extend("pattern" = "^[A-Za-z0-9._-]{1,128}$")))]
    pub name: String,
    /// Name of the service this route proxies to. Exactly one of `service` and `services` is given.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub service: String,
    /// Split the route's traffic across services by weight (canary). The first one is the route's
    /// service for plugins scoped to a service. See docs/upstreams.md.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub services: Vec<WeightedService>,
    /// With `services`: keep a client on one service by hashing `ip`, `header`, `cookie` or `path`
    /// (default `none`: each request is placed on its own).
    #[serde(default, skip_serializing_if = "is_default")]
    pub hash_on: HashOn,
    /// The header to hash with `hash_on: header`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hash_on_header: Option<String>,
    /// The cookie to hash with `hash_on: cookie` (never set by the gateway: without it, the request id
    /// places the request).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hash_on_cookie: Option<String>,
    /// Hosts to match: exact (`api.example.com`) or leading wildcard (`*.example.com`). Empty: any host.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub hosts: Vec<String>,
    /// Paths to match. `/api` is a prefix (segment-aware: matches `/api` and `/api/x`, not `/apix`);
    /// `=/health` is exact; `/users/{id}` is a template (`{*rest}` as the last segment takes the rest);
    /// `~^/v[0-9]+/items$` is a regular expression (named groups become parameters). Empty: any path.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub paths: Vec<String>,
    /// HTTP methods to match (upper case). Empty: any method.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub methods: Vec<String>,
    /// Request headers that must be present, name to accepted values. A value is compared exactly
    /// (ignoring ASCII case); a value starting with `~` is a regular expression.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub headers: BTreeMap<String, Vec<String>>,
    /// Higher priority wins over every other precedence rule (default 0).
    #[serde(default)]
    pub priority: i32,
    /// Remove the matched path prefix before forwarding (default true, as in Kong).
    #[serde(default = "default_true")]
    pub strip_path: bool,
    /// Send the client's Host header upstream instead of the service's host (default false).
    #[serde(default)]
    pub preserve_host: bool,
    /// Replace the forwarded path with this template; `{name}` inserts a captured path parameter.
    /// Applied instead of `strip_path`. The service's base path is still prepended.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rewrite: Option<String>,
}

impl RouteConfig {
    /// The route's service: `service`, or the first of `services`.
    pub fn primary_service(&self) -> &str {
        if self.service.is_empty() {
            self.services.first().map_or("", |s| s.name.as_str())
        } else {
            &self.service
        }
    }
}

pub fn default_true() -> bool {
    true
}
