//! Identity: consumers and their credentials, the auth plugins (`key-auth`, `jwt`, `basic-auth`,
//! `hmac-auth`, `acl`), and the upstream identity headers.
//!
//! Everything here is pure: KV reads, `fetch` and the clock belong to the Worker glue (`src/auth.rs`),
//! which passes records, JWKS documents and `now` in. Storage layout (KV namespace `CONFIG`) is in
//! [`records`]; the bounded lookup cache is [`cache`]; JWKS key rotation is [`jwks`].

pub mod acl;
pub mod basic;
pub mod cache;
pub mod crypto;
pub mod hmac;
pub mod jwks;
pub mod jwt;
pub mod keyauth;
pub mod records;

pub use acl::AclConfig;
pub use basic::BasicAuthConfig;
pub use hmac::HmacAuthConfig;
pub use jwt::JwtConfig;
pub use keyauth::KeyAuthConfig;

use crate::error::{ErrorKind, GatewayError};
use crate::identity::Identity;

/// The settings of an auth plugin or `acl`: as [`crate::plugins::settings`], but a setting given as
/// `null` takes its default, as it does in Kong (whose Admin API shows an unset setting as `null`:
/// `"realm": null`, `"anonymous": null`, `"deny": null`, `"claims_to_verify": null`), so such a
/// configuration loads as it is.
pub fn settings<T: serde::de::DeserializeOwned>(
    config: &serde_json::Value,
) -> Result<T, crate::plugins::PluginError> {
    match config {
        serde_json::Value::Object(map) if map.values().any(serde_json::Value::is_null) => {
            // `retain`, not `collect`: collecting into a map sorts, and each plugin type this is
            // inlined for would carry its own copy of the standard sort in the wasm.
            let mut kept = map.clone();
            kept.retain(|_, v| !v.is_null());
            crate::plugins::settings(&serde_json::Value::Object(kept))
        }
        _ => crate::plugins::settings(config),
    }
}

/// `WWW-Authenticate` when no plugin names a better one.
pub const DEFAULT_CHALLENGE: &str = "Key realm=\"edgegate\"";

/// Why a request was not authenticated. Each has a stable `code` (part of the public API).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthFailure {
    /// No credential in any place the route's auth plugins look.
    MissingCredentials,
    /// A credential was given but is unknown, malformed, or its signature does not verify.
    InvalidCredentials,
    /// The token's `exp` has passed (leeway included).
    TokenExpired,
    /// The token's `nbf` is in the future (leeway included).
    TokenNotYetValid,
    /// The credential existed and was revoked.
    CredentialsRevoked,
}

impl AuthFailure {
    pub fn code(self) -> &'static str {
        match self {
            AuthFailure::MissingCredentials => "missing_credentials",
            AuthFailure::InvalidCredentials => "invalid_credentials",
            AuthFailure::TokenExpired => "token_expired",
            AuthFailure::TokenNotYetValid => "token_not_yet_valid",
            AuthFailure::CredentialsRevoked => "credentials_revoked",
        }
    }

    /// Which failure to report when several plugins failed: the most specific one.
    pub fn rank(self) -> u8 {
        match self {
            AuthFailure::MissingCredentials => 0,
            AuthFailure::InvalidCredentials => 1,
            AuthFailure::CredentialsRevoked => 2,
            AuthFailure::TokenNotYetValid => 3,
            AuthFailure::TokenExpired => 4,
        }
    }

    fn default_detail(self) -> &'static str {
        match self {
            AuthFailure::MissingCredentials => {
                "this route requires credentials and none were given"
            }
            AuthFailure::InvalidCredentials => "the credentials are not valid",
            AuthFailure::TokenExpired => "the token has expired",
            AuthFailure::TokenNotYetValid => "the token is not valid yet",
            AuthFailure::CredentialsRevoked => "the credentials have been revoked",
        }
    }
}

/// A 401: `challenge` becomes the `WWW-Authenticate` header. The detail never holds a secret.
pub fn unauthorized(failure: AuthFailure, challenge: impl Into<String>) -> GatewayError {
    unauthorized_with(failure, challenge, failure.default_detail())
}

pub fn unauthorized_with(
    failure: AuthFailure,
    challenge: impl Into<String>,
    detail: impl Into<String>,
) -> GatewayError {
    GatewayError::new(
        ErrorKind::Unauthorized {
            failure,
            challenge: challenge.into(),
        },
        detail,
    )
}

/// What the auth plugins of a route concluded, combined into the one 401 the phase answers with when
/// none admitted the request: the most specific failure (see [`AuthFailure::rank`]; the first plugin
/// wins a tie), or `missing_credentials` when every plugin found nothing, and in either case one
/// challenge per auth plugin, in the order the plugins ran. A plugin that refused a credential
/// contributes the challenge its own 401 carries (for `jwt`, `Bearer ...` with
/// `error="invalid_token"`, RFC 6750 3.1); the others their plain challenge.
#[derive(Debug, Default)]
pub struct Challenges {
    challenges: Vec<String>,
    failure: Option<GatewayError>,
}

impl Challenges {
    pub fn new() -> Self {
        Self::default()
    }

    /// A plugin that found no credential of its kind, or did not run (a CORS preflight).
    pub fn missing(&mut self, challenge: String) {
        self.challenges.push(challenge);
    }

    /// A plugin that refused the credential it found, with its 401.
    pub fn failed(&mut self, error: GatewayError) {
        let rank = |e: &GatewayError| match &e.kind {
            ErrorKind::Unauthorized { failure, .. } => failure.rank(),
            _ => 0,
        };
        if let ErrorKind::Unauthorized { challenge, .. } = &error.kind {
            self.challenges.push(challenge.clone());
        }
        if self.failure.as_ref().is_none_or(|f| rank(&error) > rank(f)) {
            self.failure = Some(error);
        }
    }

    /// Whether some plugin refused a credential.
    pub fn has_failure(&self) -> bool {
        self.failure.is_some()
    }

    /// The `WWW-Authenticate` value: every challenge, comma separated.
    pub fn header(&self) -> String {
        self.challenges.join(", ")
    }

    /// The 401 to answer with.
    pub fn into_error(self) -> GatewayError {
        let header = self.header();
        match self.failure {
            Some(mut e) => {
                if let ErrorKind::Unauthorized { challenge, .. } = &mut e.kind {
                    *challenge = header;
                }
                e
            }
            None => unauthorized(AuthFailure::MissingCredentials, header),
        }
    }
}

/// A 403 for a consumer the ACL does not let through.
pub fn forbidden() -> GatewayError {
    GatewayError::new(
        ErrorKind::Forbidden,
        "the consumer is not allowed to use this route",
    )
}

/// The identity headers the gateway sets upstream. Incoming copies are always removed first, so a
/// client can never forge them.
pub const IDENTITY_HEADERS: [&str; 6] = [
    "x-consumer-id",
    "x-consumer-username",
    "x-consumer-custom-id",
    "x-credential-identifier",
    "x-consumer-groups",
    "x-anonymous-consumer",
];

/// The upstream headers for an identity (Kong's names). Groups are left out when `hide_groups`.
pub fn identity_headers(identity: &Identity, hide_groups: bool) -> Vec<(String, String)> {
    let mut out = vec![
        ("x-consumer-id".to_string(), identity.consumer_id.clone()),
        ("x-consumer-username".to_string(), identity.username.clone()),
    ];
    if let Some(custom) = &identity.custom_id {
        out.push(("x-consumer-custom-id".into(), custom.clone()));
    }
    if let Some(cred) = &identity.credential_id {
        out.push(("x-credential-identifier".into(), cred.clone()));
    }
    if !hide_groups && !identity.groups.is_empty() {
        out.push(("x-consumer-groups".into(), identity.groups.join(", ")));
    }
    if identity.anonymous {
        out.push(("x-anonymous-consumer".into(), "true".into()));
    }
    out
}

/// Lower-case hex SHA-256.
pub fn sha256_hex(data: &[u8]) -> String {
    hex(&crypto::sha256(data))
}

pub fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        s.push(DIGITS[(b >> 4) as usize] as char);
        s.push(DIGITS[(b & 15) as usize] as char);
    }
    s
}

/// Equality whose time does not depend on where the inputs differ.
pub fn ct_eq(a: &[u8], b: &[u8]) -> bool {
    use subtle::ConstantTimeEq;
    a.len() == b.len() && bool::from(a.ct_eq(b))
}

/// Remove every `name=...` parameter from the query of `url` (for `hide_credentials` with a key or
/// token in the query string). Other parameters keep their order and encoding.
pub fn remove_query_param(url: &str, name: &str) -> String {
    let (base, fragment) = match url.split_once('#') {
        Some((b, f)) => (b, Some(f)),
        None => (url, None),
    };
    let Some((path, query)) = base.split_once('?') else {
        return url.to_string();
    };
    let kept: Vec<&str> = query
        .split('&')
        .filter(|pair| {
            let key = pair.split_once('=').map_or(*pair, |(k, _)| k);
            !(key == name || percent_decode(key).as_deref() == Some(name))
        })
        .collect();
    let mut out = path.to_string();
    if !kept.is_empty() {
        out.push('?');
        out.push_str(&kept.join("&"));
    }
    if let Some(f) = fragment {
        out.push('#');
        out.push_str(f);
    }
    out
}

/// The first value of query parameter `name` (percent- and `+`-decoded), if any.
pub fn query_param(query: Option<&str>, name: &str) -> Option<String> {
    query?.split('&').find_map(|pair| {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        (percent_decode(k)? == name)
            .then(|| percent_decode(v))
            .flatten()
    })
}

/// Decode `%XX` and `+` (form encoding). `None` for invalid UTF-8.
pub fn percent_decode(s: &str) -> Option<String> {
    String::from_utf8(percent_decode_bytes(s)).ok()
}

/// Decode `%XX` and `+` (form encoding) to bytes; a `%` not followed by two hex digits stays.
pub fn percent_decode_bytes(s: &str) -> Vec<u8> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < bytes.len() => match (hexval(bytes[i + 1]), hexval(bytes[i + 2])) {
                (Some(h), Some(l)) => {
                    out.push(h * 16 + l);
                    i += 2;
                }
                _ => out.push(b'%'),
            },
            b => out.push(b),
        }
        i += 1;
    }
    out
}

fn hexval(c: u8) -> Option<u8> {
    match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        b'A'..=b'F' => Some(c - b'A' + 10),
        _ => None,
    }
}

/// The value of cookie `name` in a `Cookie` header.
pub fn cookie(header: &str, name: &str) -> Option<String> {
    header.split(';').find_map(|part| {
        let (k, v) = part.trim().split_once('=')?;
        (k.trim() == name).then(|| v.trim().trim_matches('"').to_string())
    })
}

/// `realm` goes into a quoted string of `WWW-Authenticate` (RFC 9110 11.2): a `"` or `\\` would end or
/// escape it (a realm `x", error="...` would add parameters to the challenge) and a control character
/// cannot be sent in a header at all, so a realm with any of them is refused when the config is loaded.
pub fn check_realm(realm: &str) -> Result<(), (String, String)> {
    if realm
        .chars()
        .any(|c| c == '"' || c == '\\' || c.is_control())
    {
        return Err((
            "realm".into(),
            format!("{realm:?}: a realm cannot contain `\"`, `\\` or control characters"),
        ));
    }
    Ok(())
}

/// The token of `Authorization: <scheme> <token>` (scheme case-insensitive).
pub fn authorization_param<'a>(value: &'a str, scheme: &str) -> Option<&'a str> {
    let value = value.trim();
    let (s, rest) = value.split_once(' ')?;
    s.eq_ignore_ascii_case(scheme)
        .then(|| rest.trim())
        .filter(|t| !t.is_empty())
}

#[cfg(test)]
mod tests;
