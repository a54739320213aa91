//! `basic-auth`: `Authorization: Basic`, passwords stored as salted PBKDF2-HMAC-SHA256.
//!
//! Stored form: `$pbkdf2-sha256$i=<iterations>$<salt, base64 no pad>$<32-byte hash, base64 no pad>`.
//! The iteration count is stored with each hash, so it can be raised later without breaking old ones.
//! Why [`DEFAULT_ITERATIONS`]: see docs/authentication.md (a Worker has 10 ms of CPU per request on the
//! free plan; the gateway also caches successful verifications for the lookup TTL).

use super::{authorization_param, ct_eq};
use crate::plugins::PluginError;
use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD};
use base64::Engine;
use serde::Deserialize;

/// Iterations for new hashes.
pub const DEFAULT_ITERATIONS: u32 = 10_000;
/// Hashes claiming more iterations than this are refused (a KV entry must not be able to burn the
/// Worker's CPU budget).
pub const MAX_ITERATIONS: u32 = 100_000;
pub const MIN_ITERATIONS: u32 = 1_000;
/// Longest `Authorization: Basic` value looked at.
pub const MAX_HEADER_BYTES: usize = 4096;
const HASH_BYTES: usize = 32;

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[cfg_attr(
    feature = "schema",
    derive(schemars::JsonSchema),
    schemars(
        rename = "BasicAuthPluginConfig",
        description = "Settings of the `basic-auth` plugin (docs/authentication.md)."
    )
)]
#[serde(deny_unknown_fields)]
pub struct BasicAuthConfig {
    /// Remove `Authorization` before forwarding (default false).
    #[serde(default)]
    #[cfg_attr(feature = "schema", schemars(with = "Option<bool>"))]
    pub hide_credentials: bool,
    /// Consumer (username or id) for requests without credentials.
    #[serde(default)]
    pub anonymous: Option<String>,
    /// Require credentials on CORS preflight (default true).
    #[serde(default = "yes")]
    #[cfg_attr(feature = "schema", schemars(with = "Option<bool>"))]
    pub run_on_preflight: bool,
    #[serde(default = "super::keyauth::default_realm")]
    #[cfg_attr(feature = "schema", schemars(with = "Option<String>"))]
    pub realm: String,
}

fn yes() -> bool {
    true
}

impl BasicAuthConfig {
    pub fn validate(self) -> Result<BasicAuthConfig, PluginError> {
        super::check_realm(&self.realm).map_err(|e| PluginError::Config(vec![e]))?;
        Ok(self)
    }

    pub fn challenge(&self) -> String {
        format!("Basic realm=\"{}\", charset=\"UTF-8\"", self.realm)
    }
}

/// Outcome of reading the `Authorization` header.
#[derive(Debug, PartialEq, Eq)]
pub enum Parsed {
    /// No `Authorization: Basic` header.
    Absent,
    /// A Basic header that is not `base64(user:password)` in UTF-8.
    Malformed,
    Credentials {
        username: String,
        password: String,
    },
}

pub fn parse_authorization(value: Option<&str>) -> Parsed {
    let Some(value) = value else {
        return Parsed::Absent;
    };
    let Some(encoded) = authorization_param(value, "basic") else {
        return Parsed::Absent;
    };
    if encoded.len() > MAX_HEADER_BYTES {
        return Parsed::Malformed;
    }
    let Ok(bytes) = STANDARD.decode(encoded) else {
        return Parsed::Malformed;
    };
    let Ok(text) = String::from_utf8(bytes) else {
        return Parsed::Malformed;
    };
    match text.split_once(':') {
        Some((u, p)) if !u.is_empty() => Parsed::Credentials {
            username: u.to_string(),
            password: p.to_string(),
        },
        _ => Parsed::Malformed,
    }
}

#[cfg(feature = "rust-crypto")]
fn derive(password: &str, salt: &[u8], iterations: u32) -> [u8; HASH_BYTES] {
    super::crypto::RustCrypto::pbkdf2_sync(password.as_bytes(), salt, iterations)
}

/// Hash a password with a random `salt` (16 bytes or more).
#[cfg(feature = "rust-crypto")]
pub fn hash_password(password: &str, salt: &[u8], iterations: u32) -> String {
    let hash = derive(password, salt, iterations);
    format!(
        "$pbkdf2-sha256$i={iterations}${}${}",
        STANDARD_NO_PAD.encode(salt),
        STANDARD_NO_PAD.encode(hash)
    )
}

/// A stored hash, read and checked for shape.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredHash {
    pub iterations: u32,
    pub salt: Vec<u8>,
    expected: Vec<u8>,
}

impl StoredHash {
    /// Read `$pbkdf2-sha256$i=N$salt$hash`. `Err` (a message for the log, without secrets) when unusable.
    pub fn parse(stored: &str) -> Result<StoredHash, String> {
        let parts: Vec<&str> = stored.split('$').collect();
        let [_, "pbkdf2-sha256", iterations, salt, hash] = parts.as_slice() else {
            return Err("password hash is not in $pbkdf2-sha256$i=N$salt$hash form".into());
        };
        let iterations: u32 = iterations
            .strip_prefix("i=")
            .and_then(|n| n.parse().ok())
            .filter(|n| (MIN_ITERATIONS..=MAX_ITERATIONS).contains(n))
            .ok_or("password hash has a bad iteration count")?;
        let salt = STANDARD_NO_PAD
            .decode(salt)
            .map_err(|_| "password hash has a bad salt")?;
        let expected = STANDARD_NO_PAD
            .decode(hash)
            .map_err(|_| "password hash has a bad hash")?;
        if expected.len() != HASH_BYTES || salt.len() < 8 {
            return Err("password hash has the wrong length".into());
        }
        Ok(StoredHash {
            iterations,
            salt,
            expected,
        })
    }

    /// Whether `derived` (PBKDF2 of the password with this salt and count) is the stored hash, in
    /// constant time.
    pub fn matches(&self, derived: &[u8]) -> bool {
        ct_eq(derived, &self.expected)
    }
}

/// Check a password against a stored hash with `backend`. `Ok(Err(..))` when the stored hash is
/// unusable; `Err` when the backend failed.
pub async fn verify_password_with<C: super::crypto::Crypto>(
    backend: &C,
    password: &str,
    stored: &str,
) -> Result<Result<bool, String>, super::crypto::CryptoError> {
    let hash = match StoredHash::parse(stored) {
        Ok(h) => h,
        Err(e) => return Ok(Err(e)),
    };
    let derived = backend
        .pbkdf2_sha256(password.as_bytes(), &hash.salt, hash.iterations)
        .await?;
    Ok(Ok(hash.matches(&derived)))
}

/// Check a password against a stored hash, in constant time, natively. `Err` when the stored hash is
/// unusable.
#[cfg(feature = "rust-crypto")]
pub fn verify_password(password: &str, stored: &str) -> Result<bool, String> {
    let hash = StoredHash::parse(stored)?;
    Ok(hash.matches(&derive(password, &hash.salt, hash.iterations)))
}
