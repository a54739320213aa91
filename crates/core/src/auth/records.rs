//! Consumers and credentials as stored in the `CONFIG` KV namespace, one entry each, next to (not
//! inside) the configuration documents:
//!
//! | key | value |
//! |---|---|
//! | `consumers/<id>` | [`Consumer`] |
//! | `consumer-names/<username>` | [`NameIndex`] (username -> id) |
//! | `credentials/key-auth/<sha256 hex of the key>` | [`KeyAuthCredential`] (the key itself is never stored) |
//! | `credentials/basic-auth/<username>` | [`BasicAuthCredential`] (PBKDF2 hash, see [`super::basic`]) |
//! | `credentials/jwt/<value of the key claim>` | [`JwtCredential`] |
//! | `credentials/hmac-auth/<username>` | [`HmacAuthCredential`] (the secret as given, see [`super::hmac`]) |
//! | `consumer-credentials/<consumer id>/<kind>/<credential id>` | the credential's key (index for listing) |
//!
//! A revoked key-auth credential keeps its entry with `revoked_at` set, so the gateway can answer
//! `credentials_revoked` rather than `invalid_credentials`.

use crate::identity::Identity;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

pub const CONSUMERS_PREFIX: &str = "consumers/";
pub const CONSUMER_NAMES_PREFIX: &str = "consumer-names/";
pub const INDEX_PREFIX: &str = "consumer-credentials/";

/// The credential kinds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    KeyAuth,
    BasicAuth,
    Jwt,
    HmacAuth,
}

impl Kind {
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::KeyAuth => "key-auth",
            Kind::BasicAuth => "basic-auth",
            Kind::Jwt => "jwt",
            Kind::HmacAuth => "hmac-auth",
        }
    }

    /// The KV prefix of this kind's credentials.
    pub fn prefix(self) -> String {
        format!("credentials/{}/", self.as_str())
    }

    /// The KV key of one credential (digest, username or key-claim value).
    pub fn key(self, lookup: &str) -> String {
        format!("credentials/{}/{lookup}", self.as_str())
    }
}

pub fn consumer_key(id: &str) -> String {
    format!("{CONSUMERS_PREFIX}{id}")
}

pub fn consumer_name_key(username: &str) -> String {
    format!("{CONSUMER_NAMES_PREFIX}{username}")
}

/// Index entry listing a consumer's credential (value: the credential's KV key).
pub fn index_key(consumer_id: &str, kind: Kind, credential_id: &str) -> String {
    format!(
        "{INDEX_PREFIX}{consumer_id}/{}/{credential_id}",
        kind.as_str()
    )
}

pub fn index_prefix(consumer_id: &str, kind: Option<Kind>) -> String {
    match kind {
        Some(k) => format!("{INDEX_PREFIX}{consumer_id}/{}/", k.as_str()),
        None => format!("{INDEX_PREFIX}{consumer_id}/"),
    }
}

/// Ids, usernames, credential usernames and JWT key values become KV key segments: keep them to a
/// safe, printable set and a sane length.
pub fn check_name(what: &str, value: &str) -> Result<(), String> {
    let ok = !value.is_empty()
        && value.len() <= 256
        && value.bytes().all(|b| b.is_ascii_graphic() && b != b'/');
    if ok {
        Ok(())
    } else {
        Err(format!(
            "{what} {value:?} must be 1 to 256 printable ASCII characters without spaces or '/'"
        ))
    }
}

/// A JWT key-claim value (often an issuer URL, so `/` and `:` are fine: it is the last key segment).
pub fn check_jwt_key(value: &str) -> Result<(), String> {
    if !value.is_empty() && value.len() <= 400 && !value.chars().any(char::is_control) {
        Ok(())
    } else {
        Err(format!(
            "JWT key {value:?} must be 1 to 400 bytes without control characters"
        ))
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Consumer {
    pub id: String,
    pub username: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub custom_id: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub groups: Vec<String>,
    #[serde(default, skip_serializing_if = "Map::is_empty")]
    pub metadata: Map<String, Value>,
    /// Seconds since the epoch.
    #[serde(default)]
    pub created_at: u64,
}

impl Consumer {
    pub fn identity(&self, credential_id: Option<&str>, anonymous: bool) -> Identity {
        Identity {
            consumer_id: self.id.clone(),
            username: self.username.clone(),
            custom_id: self.custom_id.clone(),
            groups: self.groups.clone(),
            credential_id: credential_id.map(str::to_string),
            anonymous,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NameIndex {
    pub id: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct KeyAuthCredential {
    /// Public identifier (`X-Credential-Identifier`): the first 16 hex digits of the key's digest.
    pub id: String,
    pub consumer_id: String,
    #[serde(default)]
    pub created_at: u64,
    /// Set when revoked (seconds since the epoch); the entry stays so the gateway can say so.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub revoked_at: Option<u64>,
    /// Optional expiry (seconds since the epoch).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<u64>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BasicAuthCredential {
    pub id: String,
    pub consumer_id: String,
    pub username: String,
    /// `$pbkdf2-sha256$i=<iterations>$<salt b64>$<hash b64>` (see [`super::basic`]).
    pub password_hash: String,
    #[serde(default)]
    pub created_at: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct JwtCredential {
    pub id: String,
    pub consumer_id: String,
    /// The value of the key claim (default `iss`) that selects this credential.
    pub key: String,
    /// Algorithms accepted for this credential; empty means every algorithm of the key's family.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub algorithms: Vec<String>,
    /// HMAC secret, base64 (standard or URL-safe). Stored as is: verifying needs it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret: Option<String>,
    /// RSA, EC or Ed25519 public key, PEM.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub public_key: Option<String>,
    /// A public key as a JWK.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub jwk: Option<Value>,
    /// Keys from this JWKS URL, chosen by the token's `kid`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub jwks_url: Option<String>,
    #[serde(default)]
    pub created_at: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HmacAuthCredential {
    pub id: String,
    pub consumer_id: String,
    /// The `username="..."` of the signature (the KV key's last segment).
    pub username: String,
    /// The shared secret, stored as given (its UTF-8 bytes are the HMAC key): verifying needs it.
    pub secret: String,
    #[serde(default)]
    pub created_at: u64,
}
