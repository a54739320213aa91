//! `jwt`: tokens parsed here (jsonwebtoken names the algorithms and reads JWKs; its crypto is not used
//! by the Worker), signatures checked by a [`Crypto`] backend (WebCrypto in the Worker, RustCrypto
//! natively; HMAC in Rust everywhere), with every check the gateway relies on done here, in an order
//! that rejects cheap things first:
//!
//! 1. size (`max_token_bytes`, default 8 KB) before any decoding;
//! 2. shape: three base64url parts, header and payload JSON objects, no `crit`;
//! 3. `alg`: `none` and unknown algorithms refused; then, once the credential is known, the algorithm
//!    must be allowed by the credential *and* belong to the family of its key (an RSA public key is never
//!    used as an HMAC secret, whatever the token says);
//! 4. signature;
//! 5. claims, with `now` injected: `exp`/`nbf`/`iat` must be numbers when present, `exp`/`nbf` with
//!    leeway, `maximum_expiration`, `iss`, `aud`.

use super::crypto::{self, Crypto, CryptoError, PublicKey};
use super::{authorization_param, cookie, query_param, records::JwtCredential};
use crate::plugins::PluginError;
use base64::engine::general_purpose::{STANDARD, URL_SAFE, URL_SAFE_NO_PAD};
use base64::Engine;
use jsonwebtoken::jwk::{AlgorithmParameters, Jwk, KeyOperations, PublicKeyUse};
use jsonwebtoken::{Algorithm, AlgorithmFamily};
use serde::Deserialize;
use serde_json::{Map, Value};
use std::str::FromStr;

use super::AuthFailure;

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[cfg_attr(
    feature = "schema",
    derive(schemars::JsonSchema),
    schemars(
        rename = "JwtPluginConfig",
        description = "Settings of the `jwt` plugin (docs/authentication.md)."
    )
)]
#[serde(deny_unknown_fields)]
pub struct JwtConfig {
    /// Headers to read the token from (default `authorization`, as `Bearer <token>`).
    #[serde(default = "default_header_names")]
    #[cfg_attr(feature = "schema", schemars(with = "Option<Vec<String>>"))]
    pub header_names: Vec<String>,
    /// Query parameters to read the token from (default `jwt`).
    #[serde(default = "default_uri_params")]
    #[cfg_attr(feature = "schema", schemars(with = "Option<Vec<String>>"))]
    pub uri_param_names: Vec<String>,
    /// Cookies to read the token from (default none).
    #[serde(default)]
    #[cfg_attr(feature = "schema", schemars(with = "Option<Vec<String>>"))]
    pub cookie_names: Vec<String>,
    /// The claim whose value selects the credential (default `iss`).
    #[serde(default = "default_key_claim")]
    #[cfg_attr(feature = "schema", schemars(with = "Option<String>"))]
    pub key_claim_name: String,
    /// Claims that must be present (`exp`, `nbf`); default `["exp"]`. Present ones are always checked,
    /// and `exp`, `nbf`, `iat` must be numbers whenever present (listed here or not).
    #[serde(default = "default_claims_to_verify")]
    #[cfg_attr(feature = "schema", schemars(with = "Option<Vec<String>>"))]
    pub claims_to_verify: Vec<String>,
    /// Clock skew tolerated on `exp` and `nbf`, seconds (default 30).
    #[serde(default = "default_leeway")]
    #[cfg_attr(feature = "schema", schemars(with = "Option<u64>"))]
    pub leeway_seconds: u64,
    /// When above 0: tokens must expire within this many seconds from now.
    #[serde(default)]
    #[cfg_attr(feature = "schema", schemars(with = "Option<u64>"))]
    pub maximum_expiration: u64,
    /// When not empty, `aud` must contain one of these.
    #[serde(default)]
    #[cfg_attr(feature = "schema", schemars(with = "Option<Vec<String>>"))]
    pub audiences: Vec<String>,
    /// When not empty, `iss` must be one of these.
    #[serde(default)]
    #[cfg_attr(feature = "schema", schemars(with = "Option<Vec<String>>"))]
    pub issuers: Vec<String>,
    /// Remove the token (header, query parameter or cookie) before forwarding.
    #[serde(default)]
    #[cfg_attr(feature = "schema", schemars(with = "Option<bool>"))]
    pub hide_credentials: bool,
    /// Consumer (username or id) for requests without a token.
    #[serde(default)]
    pub anonymous: Option<String>,
    /// Require a token on CORS preflight (default true).
    #[serde(default = "yes")]
    #[cfg_attr(feature = "schema", schemars(with = "Option<bool>"))]
    pub run_on_preflight: bool,
    #[serde(default = "super::keyauth::default_realm")]
    #[cfg_attr(feature = "schema", schemars(with = "Option<String>"))]
    pub realm: String,
    /// Tokens larger than this are rejected before any decoding (default 8192).
    #[serde(default = "default_max_token_bytes")]
    /// `u64`, not `usize`: a count must read the same natively (the CLI) and on wasm32 (the Worker).
    #[cfg_attr(feature = "schema", schemars(with = "Option<u64>"))]
    pub max_token_bytes: u64,
    /// How long fetched JWKS keys are used before they are fetched again (default 300 s).
    #[serde(default = "default_jwks_cache")]
    #[cfg_attr(feature = "schema", schemars(with = "Option<u64>"))]
    pub jwks_cache_seconds: u64,
    /// Least time between two fetches of one JWKS URL, whatever the tokens say (default 30 s).
    #[serde(default = "default_jwks_refetch")]
    #[cfg_attr(feature = "schema", schemars(with = "Option<u64>"))]
    pub jwks_refetch_interval_seconds: u64,
    /// Kong's `secret_is_base64`, accepted so Kong configurations load; edgegate's stored HMAC
    /// `secret` is always base64 (the CLI writes it so), whatever this says.
    #[serde(default)]
    #[cfg_attr(feature = "schema", schemars(with = "Option<bool>"))]
    pub secret_is_base64: bool,
}

fn yes() -> bool {
    true
}
fn default_header_names() -> Vec<String> {
    vec!["authorization".into()]
}
fn default_uri_params() -> Vec<String> {
    vec!["jwt".into()]
}
fn default_key_claim() -> String {
    "iss".into()
}
fn default_claims_to_verify() -> Vec<String> {
    vec!["exp".into()]
}
fn default_leeway() -> u64 {
    30
}
fn default_max_token_bytes() -> u64 {
    8192
}
fn default_jwks_cache() -> u64 {
    300
}
fn default_jwks_refetch() -> u64 {
    30
}

impl JwtConfig {
    pub fn validate(self) -> Result<JwtConfig, PluginError> {
        let mut errors = Vec::new();
        for (i, c) in self.claims_to_verify.iter().enumerate() {
            if c != "exp" && c != "nbf" {
                errors.push((
                    format!("claims_to_verify[{i}]"),
                    format!("{c:?}: only \"exp\" and \"nbf\" can be required"),
                ));
            }
        }
        if self.header_names.is_empty()
            && self.uri_param_names.is_empty()
            && self.cookie_names.is_empty()
        {
            errors.push((
                "header_names".into(),
                "give at least one header, query parameter or cookie to read the token from".into(),
            ));
        }
        if !(64..=65536).contains(&self.max_token_bytes) {
            errors.push((
                "max_token_bytes".into(),
                "must be between 64 and 65536".into(),
            ));
        }
        if self.key_claim_name.is_empty() {
            errors.push(("key_claim_name".into(), "must not be empty".into()));
        }
        if let Err(e) = super::check_realm(&self.realm) {
            errors.push(e);
        }
        if errors.is_empty() {
            Ok(self)
        } else {
            Err(PluginError::Config(errors))
        }
    }

    pub fn challenge(&self) -> String {
        format!("Bearer realm=\"{}\"", self.realm)
    }

    pub fn challenge_invalid(&self) -> String {
        format!("Bearer realm=\"{}\", error=\"invalid_token\"", self.realm)
    }
}

/// Where the token was found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TokenSource {
    Header(String),
    Query(String),
    Cookie(String),
}

/// Find the token: configured headers (`Authorization` as `Bearer <token>`; others raw or Bearer),
/// then query parameters, then cookies.
pub fn find_token(
    config: &JwtConfig,
    header: &dyn Fn(&str) -> Option<String>,
    query: Option<&str>,
) -> Option<(String, TokenSource)> {
    for name in &config.header_names {
        if let Some(v) = header(name) {
            let token = match authorization_param(&v, "bearer") {
                Some(t) => t.to_string(),
                None if name.eq_ignore_ascii_case("authorization") => continue,
                None => v.trim().to_string(),
            };
            if !token.is_empty() {
                return Some((token, TokenSource::Header(name.to_ascii_lowercase())));
            }
        }
    }
    for name in &config.uri_param_names {
        if let Some(v) = query_param(query, name).filter(|v| !v.is_empty()) {
            return Some((v, TokenSource::Query(name.clone())));
        }
    }
    if !config.cookie_names.is_empty() {
        if let Some(c) = header("cookie") {
            for name in &config.cookie_names {
                if let Some(v) = cookie(&c, name).filter(|v| !v.is_empty()) {
                    return Some((v, TokenSource::Cookie(name.clone())));
                }
            }
        }
    }
    None
}

/// The `Cookie` header without cookie `name` (`None` when nothing is left).
pub fn remove_cookie(header: &str, name: &str) -> Option<String> {
    let kept: Vec<&str> = header
        .split(';')
        .map(str::trim)
        .filter(|p| !p.is_empty() && p.split_once('=').map_or(*p, |(k, _)| k).trim() != name)
        .collect();
    (!kept.is_empty()).then(|| kept.join("; "))
}

/// Why a token was refused. [`JwtError::failure`] maps it to what the client is told; the detail never
/// says which part of a signature check failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum JwtError {
    TooLarge(u64),
    Malformed,
    /// `alg: none` (any case).
    AlgNone,
    /// An `alg` the gateway does not implement.
    UnsupportedAlg,
    /// The algorithm is not allowed for the credential, or not of its key's family.
    AlgNotAllowed,
    /// No credential has the key claim's value (or the claim is missing).
    NoCredential,
    /// The `kid` is not in the JWKS (after the refetch the policy allows).
    UnknownKid,
    BadSignature,
    /// The credential's key cannot be used (bad PEM, JWK, secret).
    BadKey,
    Expired,
    NotYetValid,
    TooLong,
    MissingClaim(String),
    /// A registered time claim (`exp`, `nbf`, `iat`) is present but not a number.
    NotANumber(String),
    BadIssuer,
    BadAudience,
}

impl JwtError {
    pub fn failure(&self) -> AuthFailure {
        match self {
            JwtError::Expired => AuthFailure::TokenExpired,
            JwtError::NotYetValid => AuthFailure::TokenNotYetValid,
            _ => AuthFailure::InvalidCredentials,
        }
    }

    pub fn detail(&self) -> String {
        match self {
            JwtError::TooLarge(max) => format!("the token is larger than {max} bytes"),
            JwtError::Malformed => "the token is malformed".into(),
            JwtError::AlgNone
            | JwtError::UnsupportedAlg
            | JwtError::AlgNotAllowed
            | JwtError::NoCredential
            | JwtError::UnknownKid
            | JwtError::BadSignature
            | JwtError::BadKey => "the token is not valid".into(),
            JwtError::Expired => "the token has expired".into(),
            JwtError::NotYetValid => "the token is not valid yet".into(),
            JwtError::TooLong => "the token's lifetime exceeds the maximum allowed".into(),
            JwtError::MissingClaim(c) => format!("the token has no `{c}` claim"),
            JwtError::NotANumber(c) => format!("the token's `{c}` claim must be a number"),
            JwtError::BadIssuer => "the token's issuer is not accepted".into(),
            JwtError::BadAudience => "the token's audience is not accepted".into(),
        }
    }
}

/// A decoded, not yet verified token.
#[derive(Debug, Clone)]
pub struct Token<'a> {
    pub alg: Algorithm,
    pub kid: Option<String>,
    pub claims: Map<String, Value>,
    /// The protected header (for a `key_claim_name` found there, as Kong does).
    header: Map<String, Value>,
    signing_input: &'a str,
    signature: Vec<u8>,
}

fn b64_json_object(part: &str) -> Result<Map<String, Value>, JwtError> {
    let bytes = URL_SAFE_NO_PAD
        .decode(part)
        .map_err(|_| JwtError::Malformed)?;
    match serde_json::from_slice(&bytes) {
        Ok(Value::Object(map)) => Ok(map),
        _ => Err(JwtError::Malformed),
    }
}

/// Decode a compact JWS without trusting anything in it yet.
pub fn parse(token: &str, max_bytes: u64) -> Result<Token<'_>, JwtError> {
    if token.len() as u64 > max_bytes {
        return Err(JwtError::TooLarge(max_bytes));
    }
    let mut parts = token.split('.');
    let (Some(h), Some(p), Some(s), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(JwtError::Malformed);
    };
    let header = b64_json_object(h)?;
    let alg = header
        .get("alg")
        .and_then(Value::as_str)
        .ok_or(JwtError::Malformed)?;
    if alg.eq_ignore_ascii_case("none") {
        return Err(JwtError::AlgNone);
    }
    if header.contains_key("crit") {
        // No extension is understood, so a critical one cannot be honoured (RFC 7515 4.1.11).
        return Err(JwtError::Malformed);
    }
    let alg = Algorithm::from_str(alg).map_err(|_| JwtError::UnsupportedAlg)?;
    let kid = match header.get("kid") {
        None | Some(Value::Null) => None,
        Some(Value::String(k)) => Some(k.clone()),
        Some(_) => return Err(JwtError::Malformed),
    };
    let claims = b64_json_object(p)?;
    let signature = match URL_SAFE_NO_PAD.decode(s) {
        Ok(sig) if !sig.is_empty() => sig,
        _ => return Err(JwtError::Malformed),
    };
    Ok(Token {
        alg,
        kid,
        claims,
        header,
        signing_input: &token[..h.len() + 1 + p.len()],
        signature,
    })
}

impl Token<'_> {
    /// The value of the claim that selects the credential.
    /// As in Kong, the claim is looked for in the payload, then in the protected header (so
    /// `key_claim_name: "kid"` selects the credential by the header's `kid`).
    pub fn key_claim(&self, name: &str) -> Result<&str, JwtError> {
        fn pick<'m>(m: &'m Map<String, Value>, name: &str) -> Option<&'m str> {
            m.get(name)
                .and_then(Value::as_str)
                .filter(|v| !v.is_empty())
        }
        pick(&self.claims, name)
            .or_else(|| pick(&self.header, name))
            .ok_or_else(|| JwtError::MissingClaim(name.to_string()))
    }
}

pub fn family_of(alg: Algorithm) -> AlgorithmFamily {
    match alg {
        Algorithm::HS256 | Algorithm::HS384 | Algorithm::HS512 => AlgorithmFamily::Hmac,
        Algorithm::ES256 | Algorithm::ES384 => AlgorithmFamily::Ec,
        Algorithm::EdDSA => AlgorithmFamily::Ed,
        _ => AlgorithmFamily::Rsa,
    }
}

/// A credential's key: fixed, or looked up in a JWKS by `kid`.
pub enum CredentialKey {
    Static(PublicKey),
    Jwks(String),
}

fn decode_secret(secret: &str) -> Option<Vec<u8>> {
    let s = secret.trim();
    STANDARD
        .decode(s)
        .or_else(|_| URL_SAFE.decode(s))
        .or_else(|_| URL_SAFE_NO_PAD.decode(s))
        .or_else(|_| base64::engine::general_purpose::STANDARD_NO_PAD.decode(s))
        .ok()
        .filter(|b| !b.is_empty())
}

/// Build the key of a stored credential. Exactly one of `secret`, `public_key`, `jwk`, `jwks_url`.
pub fn credential_key(cred: &JwtCredential) -> Result<CredentialKey, JwtError> {
    let given = [
        cred.secret.is_some(),
        cred.public_key.is_some(),
        cred.jwk.is_some(),
        cred.jwks_url.is_some(),
    ];
    if given.iter().filter(|g| **g).count() != 1 {
        return Err(JwtError::BadKey);
    }
    if let Some(secret) = &cred.secret {
        return decode_secret(secret)
            .map(|b| CredentialKey::Static(PublicKey::Hmac(b)))
            .ok_or(JwtError::BadKey);
    }
    if let Some(pem) = &cred.public_key {
        return pem_key(pem).map(CredentialKey::Static);
    }
    if let Some(jwk) = &cred.jwk {
        let jwk: Jwk = serde_json::from_value(jwk.clone()).map_err(|_| JwtError::BadKey)?;
        return jwk_key(&jwk).map(|(k, _)| CredentialKey::Static(k));
    }
    Ok(CredentialKey::Jwks(
        cred.jwks_url.clone().unwrap_or_default(),
    ))
}

/// A public key from PEM: RSA (PKCS#1 or SPKI), EC (P-256/P-384) or Ed25519. Private keys are refused.
pub fn pem_key(pem: &str) -> Result<PublicKey, JwtError> {
    if pem.contains("PRIVATE KEY") {
        return Err(JwtError::BadKey);
    }
    crypto::pem_public_key(pem).ok_or(JwtError::BadKey)
}

/// A public key from a JWK, with the algorithm the JWK pins (`alg`), if any. Symmetric (`oct`) keys
/// are refused: a JWK or JWKS names public keys only. So is a key its publisher restricted to other
/// uses (RFC 7517 4.2 and 4.3): a `use` other than `sig`, or a `key_ops` without `verify`.
pub fn jwk_key(jwk: &Jwk) -> Result<(PublicKey, Option<Algorithm>), JwtError> {
    if matches!(
        jwk.algorithm,
        AlgorithmParameters::OctetKey(_) | AlgorithmParameters::Other(_)
    ) {
        return Err(JwtError::BadKey);
    }
    if jwk
        .common
        .public_key_use
        .as_ref()
        .is_some_and(|u| *u != PublicKeyUse::Signature)
    {
        return Err(JwtError::BadKey);
    }
    if jwk
        .common
        .key_operations
        .as_ref()
        .is_some_and(|ops| !ops.contains(&KeyOperations::Verify))
    {
        return Err(JwtError::BadKey);
    }
    let alg = match &jwk.common.key_algorithm {
        None => None,
        Some(a) => Some(
            serde_json::to_value(a)
                .ok()
                .and_then(|v| v.as_str().and_then(|s| Algorithm::from_str(s).ok()))
                .ok_or(JwtError::BadKey)?,
        ),
    };
    let key = crypto::jwk_public_key(jwk).ok_or(JwtError::BadKey)?;
    Ok((key, alg))
}

/// The algorithms a credential accepts with a key of `family`: the credential's list (or all of the
/// family when empty), restricted to the family, and to `pinned` when the key names one.
pub fn allowed_algorithms(
    configured: &[String],
    family: AlgorithmFamily,
    pinned: Option<Algorithm>,
) -> Vec<Algorithm> {
    family
        .algorithms()
        .iter()
        .copied()
        .filter(|a| {
            configured.is_empty()
                || configured
                    .iter()
                    .any(|c| Algorithm::from_str(c).ok() == Some(*a))
        })
        .filter(|a| pinned.is_none_or(|p| p == *a))
        .collect()
}

/// The algorithm policy: only `allowed` algorithms of the key's own family.
pub fn check_algorithm(
    token: &Token<'_>,
    key: &PublicKey,
    allowed: &[Algorithm],
) -> Result<(), JwtError> {
    if !allowed.contains(&token.alg) || family_of(token.alg) != key.family() {
        return Err(JwtError::AlgNotAllowed);
    }
    Ok(())
}

/// Verify the signature with `key`, accepting only `allowed` algorithms of the key's own family. HMAC
/// in Rust; the other families with `backend`. A key the backend cannot use is [`JwtError::BadKey`]; a
/// failing backend is `Err(Err(..))` for the caller to answer 500.
pub async fn verify_signature_with<C: Crypto>(
    backend: &C,
    token: &Token<'_>,
    key: &PublicKey,
    allowed: &[Algorithm],
) -> Result<Result<(), JwtError>, CryptoError> {
    if let Err(e) = check_algorithm(token, key, allowed) {
        return Ok(Err(e));
    }
    let message = token.signing_input.as_bytes();
    let valid = match key {
        PublicKey::Hmac(secret) => {
            crypto::hmac_verify(token.alg, secret, message, &token.signature)
        }
        _ => match backend
            .verify(token.alg, key, message, &token.signature)
            .await
        {
            Ok(v) => v,
            Err(CryptoError::Key(_)) => return Ok(Err(JwtError::BadKey)),
            Err(e) => return Err(e),
        },
    };
    Ok(if valid {
        Ok(())
    } else {
        Err(JwtError::BadSignature)
    })
}

/// [`verify_signature_with`] with the native backend, synchronously.
#[cfg(feature = "rust-crypto")]
pub fn verify_signature(
    token: &Token<'_>,
    key: &PublicKey,
    allowed: &[Algorithm],
) -> Result<(), JwtError> {
    check_algorithm(token, key, allowed)?;
    let message = token.signing_input.as_bytes();
    match crypto::RustCrypto::verify_sync(token.alg, key, message, &token.signature) {
        Ok(true) => Ok(()),
        Ok(false) => Err(JwtError::BadSignature),
        Err(_) => Err(JwtError::BadKey),
    }
}

/// The registered time claims (RFC 7519 4.1.4-4.1.6): when present, each must be a JSON number.
pub const TIME_CLAIMS: [&str; 3] = ["exp", "nbf", "iat"];

/// A time claim's value: `None` when absent. Present with any other type than a number (`null`, a
/// string, a boolean, an object, an array) is an error, whether or not the claim is required: a
/// `null` `exp` must never read as "does not expire".
fn numeric(claims: &Map<String, Value>, name: &str) -> Result<Option<f64>, JwtError> {
    match claims.get(name) {
        None => Ok(None),
        Some(Value::Number(n)) => n
            .as_f64()
            .filter(|v| v.is_finite())
            .map(Some)
            .ok_or_else(|| JwtError::NotANumber(name.to_string())),
        Some(_) => Err(JwtError::NotANumber(name.to_string())),
    }
}

/// The registered claims, checked at `now` (seconds since the epoch). Pure and separate from the
/// signature check, which runs first (see [`verify`]).
pub fn check_claims(
    config: &JwtConfig,
    claims: &Map<String, Value>,
    now: u64,
) -> Result<(), JwtError> {
    let now = now as f64;
    let leeway = config.leeway_seconds as f64;
    // Types first: a malformed time claim is refused before anything is read from it.
    let [exp, nbf, _iat] = [
        numeric(claims, TIME_CLAIMS[0])?,
        numeric(claims, TIME_CLAIMS[1])?,
        numeric(claims, TIME_CLAIMS[2])?,
    ];
    for required in &config.claims_to_verify {
        if !claims.contains_key(required.as_str()) {
            return Err(JwtError::MissingClaim(required.clone()));
        }
    }
    if let Some(exp) = exp {
        if now >= exp + leeway {
            return Err(JwtError::Expired);
        }
    }
    if let Some(nbf) = nbf {
        if now + leeway < nbf {
            return Err(JwtError::NotYetValid);
        }
    }
    if config.maximum_expiration > 0 {
        let exp = exp.ok_or_else(|| JwtError::MissingClaim("exp".into()))?;
        if exp - now > config.maximum_expiration as f64 {
            return Err(JwtError::TooLong);
        }
    }
    if !config.issuers.is_empty() {
        let iss = claims.get("iss").and_then(Value::as_str);
        if !iss.is_some_and(|i| config.issuers.iter().any(|x| x == i)) {
            return Err(JwtError::BadIssuer);
        }
    }
    if !config.audiences.is_empty() {
        let ok = match claims.get("aud") {
            Some(Value::String(a)) => config.audiences.contains(a),
            Some(Value::Array(list)) => list
                .iter()
                .filter_map(Value::as_str)
                .any(|a| config.audiences.iter().any(|x| x == a)),
            _ => false,
        };
        if !ok {
            return Err(JwtError::BadAudience);
        }
    }
    Ok(())
}

/// Everything after the credential lookup, for a credential with a fixed key (or a key from a JWKS
/// already resolved by the caller): algorithm policy, signature, claims. `Err` only when the backend
/// itself failed.
pub async fn verify_with<C: Crypto>(
    backend: &C,
    config: &JwtConfig,
    token: &Token<'_>,
    cred: &JwtCredential,
    key: &PublicKey,
    pinned: Option<Algorithm>,
    now: u64,
) -> Result<Result<(), JwtError>, CryptoError> {
    let allowed = allowed_algorithms(&cred.algorithms, key.family(), pinned);
    if let Err(e) = verify_signature_with(backend, token, key, &allowed).await? {
        return Ok(Err(e));
    }
    Ok(check_claims(config, &token.claims, now))
}

/// [`verify_with`] with the native backend, synchronously.
#[cfg(feature = "rust-crypto")]
pub fn verify(
    config: &JwtConfig,
    token: &Token<'_>,
    cred: &JwtCredential,
    key: &PublicKey,
    pinned: Option<Algorithm>,
    now: u64,
) -> Result<(), JwtError> {
    let allowed = allowed_algorithms(&cred.algorithms, key.family(), pinned);
    verify_signature(token, key, &allowed)?;
    check_claims(config, &token.claims, now)
}
