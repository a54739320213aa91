//! `key-auth`: API keys, stored only as SHA-256 digests.
//!
//! Keys are long random strings (`key create` makes 32 random bytes, base64url, prefixed `eg_`), so one
//! unsalted SHA-256 is enough: there is nothing to guess that a salt or a slow hash would protect, and a
//! digest lets the gateway find the credential with one KV read.

use super::{authorization_param, records::Kind, sha256_hex};
use crate::plugins::PluginError;
use serde::Deserialize;

/// Keys longer than this are rejected without a lookup.
pub const MAX_KEY_BYTES: usize = 1024;

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[cfg_attr(
    feature = "schema",
    derive(schemars::JsonSchema),
    schemars(
        rename = "KeyAuthPluginConfig",
        description = "Settings of the `key-auth` plugin (docs/authentication.md)."
    )
)]
#[serde(deny_unknown_fields)]
pub struct KeyAuthConfig {
    /// Header and query parameter names to look in, in order (default `apikey`, `x-api-key`).
    #[serde(default = "default_key_names")]
    #[cfg_attr(feature = "schema", schemars(with = "Option<Vec<String>>"))]
    pub key_names: Vec<String>,
    /// Look in request headers (default true).
    #[serde(default = "yes")]
    #[cfg_attr(feature = "schema", schemars(with = "Option<bool>"))]
    pub key_in_header: bool,
    /// Look in the query string (default true).
    #[serde(default = "yes")]
    #[cfg_attr(feature = "schema", schemars(with = "Option<bool>"))]
    pub key_in_query: bool,
    /// Look in a JSON or form body field with one of the names (default false).
    #[serde(default)]
    #[cfg_attr(feature = "schema", schemars(with = "Option<bool>"))]
    pub key_in_body: bool,
    /// Accept `Authorization: Bearer <key>` (default true).
    #[serde(default = "yes")]
    #[cfg_attr(feature = "schema", schemars(with = "Option<bool>"))]
    pub bearer: bool,
    /// Remove the key (header, query parameter or Authorization) before forwarding (default false).
    #[serde(default)]
    #[cfg_attr(feature = "schema", schemars(with = "Option<bool>"))]
    pub hide_credentials: bool,
    /// Consumer (username or id) to use for requests that carry no key. Invalid keys still get 401.
    #[serde(default)]
    pub anonymous: Option<String>,
    /// Require a key on CORS preflight (`OPTIONS` with `Access-Control-Request-Method`) (default true).
    #[serde(default = "yes")]
    #[cfg_attr(feature = "schema", schemars(with = "Option<bool>"))]
    pub run_on_preflight: bool,
    /// Realm in `WWW-Authenticate` (default `edgegate`).
    #[serde(default = "default_realm")]
    #[cfg_attr(feature = "schema", schemars(with = "Option<String>"))]
    pub realm: String,
}

fn yes() -> bool {
    true
}

pub(crate) fn default_realm() -> String {
    "edgegate".into()
}

fn default_key_names() -> Vec<String> {
    vec!["apikey".into(), "x-api-key".into()]
}

impl KeyAuthConfig {
    pub fn validate(mut self) -> Result<KeyAuthConfig, PluginError> {
        if self.key_names.is_empty() && !self.bearer {
            return Err(PluginError::Config(vec![(
                "key_names".into(),
                "give at least one key name, or enable `bearer`".into(),
            )]));
        }
        for (i, n) in self.key_names.iter_mut().enumerate() {
            if n.is_empty() || !n.bytes().all(|b| b.is_ascii_graphic()) {
                return Err(PluginError::Config(vec![(
                    format!("key_names[{i}]"),
                    // Not quoted: it may be a whole `apikey: secret` line.
                    "not a valid header or parameter name (empty, or a space, control or \
                     non-ASCII character in it)"
                        .to_string(),
                )]));
            }
        }
        super::check_realm(&self.realm).map_err(|e| PluginError::Config(vec![e]))?;
        Ok(self)
    }

    pub fn challenge(&self) -> String {
        format!("Key realm=\"{}\"", self.realm)
    }
}

/// Where a key was found (so `hide_credentials` removes the right thing).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeySource {
    Header(String),
    Query(String),
    Bearer,
    Body(String),
}

/// Find the key in the request: named headers, then `Authorization: Bearer`, then query parameters,
/// then (when `body` is given) body fields.
pub fn find_key(
    config: &KeyAuthConfig,
    header: &dyn Fn(&str) -> Option<String>,
    query: Option<&str>,
    body: Option<&serde_json::Map<String, serde_json::Value>>,
) -> Option<(String, KeySource)> {
    let nonempty = |v: String| {
        let v = v.trim().to_string();
        (!v.is_empty()).then_some(v)
    };
    if config.key_in_header {
        for name in &config.key_names {
            if let Some(v) = header(name).and_then(nonempty) {
                return Some((v, KeySource::Header(name.to_ascii_lowercase())));
            }
        }
    }
    if config.bearer {
        if let Some(v) = header("authorization") {
            if let Some(token) = authorization_param(&v, "bearer") {
                return Some((token.to_string(), KeySource::Bearer));
            }
        }
    }
    if config.key_in_query {
        for name in &config.key_names {
            // A parameter given with different values is every value, comma separated, as a repeated
            // header reads: never a key, so the request is refused (Kong: 401 "Duplicate API key
            // found"). The same value repeated is that value.
            let mut values: Vec<String> = Vec::new();
            for v in query_values(query, name).into_iter().filter_map(nonempty) {
                if !values.contains(&v) {
                    values.push(v);
                }
            }
            if !values.is_empty() {
                return Some((values.join(", "), KeySource::Query(name.clone())));
            }
        }
    }
    if let (true, Some(body)) = (config.key_in_body, body) {
        for name in &config.key_names {
            if let Some(v) = body.get(name).and_then(|v| v.as_str()) {
                if let Some(v) = nonempty(v.to_string()) {
                    return Some((v, KeySource::Body(name.clone())));
                }
            }
        }
    }
    None
}

/// Every value of query parameter `name` (percent- and `+`-decoded), in order.
fn query_values(query: Option<&str>, name: &str) -> Vec<String> {
    let Some(query) = query else {
        return Vec::new();
    };
    query
        .split('&')
        .filter_map(|pair| {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            (super::percent_decode(k)? == name).then(|| super::percent_decode(v))?
        })
        .collect()
}

/// The digest a key is stored under.
pub fn digest(key: &str) -> String {
    sha256_hex(key.as_bytes())
}

/// The KV key of the credential for `key`.
pub fn lookup_key(key: &str) -> String {
    Kind::KeyAuth.key(&digest(key))
}

/// The public credential id of a key digest (`X-Credential-Identifier`).
pub fn credential_id(digest: &str) -> String {
    digest.chars().take(16).collect()
}

/// A new key from 32 random bytes: `eg_` + base64url (43 characters).
pub fn generate_key(random: &[u8; 32]) -> String {
    use base64::Engine;
    format!(
        "eg_{}",
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(random)
    )
}

/// Largest body read when `key_in_body` is on.
pub const MAX_BODY_BYTES: usize = 64 * 1024;

/// The fields of a JSON object or `application/x-www-form-urlencoded` body (string values only).
pub fn body_fields(
    content_type: &str,
    text: &str,
) -> Option<serde_json::Map<String, serde_json::Value>> {
    let ct = content_type.split(';').next()?.trim().to_ascii_lowercase();
    if ct == "application/json" || ct.ends_with("+json") {
        match serde_json::from_str::<serde_json::Value>(text).ok()? {
            serde_json::Value::Object(map) => Some(map),
            _ => None,
        }
    } else if ct == "application/x-www-form-urlencoded" {
        let mut map = serde_json::Map::new();
        for pair in text.split('&') {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            if let (Some(k), Some(v)) = (super::percent_decode(k), super::percent_decode(v)) {
                map.entry(k).or_insert(serde_json::Value::String(v));
            }
        }
        Some(map)
    } else {
        None
    }
}
