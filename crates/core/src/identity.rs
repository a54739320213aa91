//! Who is calling: the consumer and credential an authentication plugin established.
//! Filled by the auth plugins; read by ACLs, rate limits (limit by consumer or credential), caching
//! (per-consumer keys), the upstream identity headers and the access log.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Identity {
    /// Consumer id (`X-Consumer-ID`).
    pub consumer_id: String,
    /// Consumer username (`X-Consumer-Username`).
    pub username: String,
    /// Optional id from another system (`X-Consumer-Custom-ID`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub custom_id: Option<String>,
    /// Groups, for ACLs (`X-Consumer-Groups`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub groups: Vec<String>,
    /// Identifier of the credential used, never the secret (`X-Credential-Identifier`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub credential_id: Option<String>,
    /// True for the `anonymous` fallback consumer (`X-Anonymous-Consumer: true`).
    #[serde(default)]
    pub anonymous: bool,
}
