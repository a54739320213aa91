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
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
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
    pub config: serde_json::Value,
}

/// A named upstream.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct ServiceConfig {
    /// Unique name, referenced by routes.
    pub name: String,
    /// Origin URL: `http` or `https`, host, optional port, optional base path
    /// (for example `https://api.internal.example.com:8443/v1`). No query or fragment.
    pub url: String,
    /// How long to wait for the origin's response headers, in milliseconds (default 60000).
    #[serde(default = "default_timeout_ms")]
    pub timeout_ms: u64,
    /// Headers set on every upstream request (replacing a client header of the same name).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub headers: BTreeMap<String, String>,
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
    pub name: String,
    /// Name of the service this route proxies to.
    pub service: String,
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

pub fn default_true() -> bool {
    true
}
