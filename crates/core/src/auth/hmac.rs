//! `hmac-auth` (Kong's plugin, docs/authentication.md): a request signed with a secret the gateway shares
//! with the consumer, in `Proxy-Authorization` or `Authorization`:
//!
//! `hmac username="alice", algorithm="hmac-sha256", headers="date request-line", signature="<base64>"`
//!
//! The signature is HMAC(secret, signing string) over the listed headers, one line each, as Kong builds it
//! ([`signing_string`]). Everything here is pure: the glue (`src/auth.rs`) reads the headers, the
//! credential, the clock and (for `validate_request_body`) the body, and passes them in.

use super::ct_eq;
use crate::plugins::PluginError;
use ::hmac::{Hmac, Mac};
use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD};
use base64::Engine;
use serde::{Deserialize, Serialize};
use sha2::{Sha256, Sha384, Sha512};

/// Longest `Authorization`/`Proxy-Authorization` value read; a longer hmac one is refused.
pub const MAX_HEADER_BYTES: usize = 8192;
/// Largest body `validate_request_body` reads; a larger one is refused as not matching its digest.
pub const MAX_BODY_BYTES: usize = 1024 * 1024;
/// Most names in a `headers="..."` list.
pub const MAX_SIGNED_HEADERS: usize = 64;

/// The message of a request without a date or with one too far off (Kong's text).
pub const DATE_REQUIRED: &str = "HMAC signature cannot be verified, a valid date or x-date header is required for HMAC Authentication";
/// Malformed parameters, an algorithm not allowed, an enforced header not signed, an unknown user.
pub const CANNOT_VERIFY: &str = "HMAC signature cannot be verified";
/// A wrong signature, or a body that does not match its `Digest`.
pub const DOES_NOT_MATCH: &str = "HMAC signature does not match";

/// The four algorithms (Kong's names).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub enum HmacAlgorithm {
    #[serde(rename = "hmac-sha1")]
    Sha1,
    #[serde(rename = "hmac-sha256")]
    Sha256,
    #[serde(rename = "hmac-sha384")]
    Sha384,
    #[serde(rename = "hmac-sha512")]
    Sha512,
}

impl HmacAlgorithm {
    pub const ALL: [HmacAlgorithm; 4] = [
        HmacAlgorithm::Sha1,
        HmacAlgorithm::Sha256,
        HmacAlgorithm::Sha384,
        HmacAlgorithm::Sha512,
    ];

    pub fn name(self) -> &'static str {
        match self {
            HmacAlgorithm::Sha1 => "hmac-sha1",
            HmacAlgorithm::Sha256 => "hmac-sha256",
            HmacAlgorithm::Sha384 => "hmac-sha384",
            HmacAlgorithm::Sha512 => "hmac-sha512",
        }
    }

    pub fn from_name(name: &str) -> Option<HmacAlgorithm> {
        HmacAlgorithm::ALL.into_iter().find(|a| a.name() == name)
    }
}

fn default_algorithms() -> Vec<HmacAlgorithm> {
    HmacAlgorithm::ALL.to_vec()
}

fn default_clock_skew() -> f64 {
    300.0
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[cfg_attr(
    feature = "schema",
    derive(schemars::JsonSchema),
    schemars(
        rename = "HmacAuthPluginConfig",
        description = "Settings of the `hmac-auth` plugin (docs/authentication.md)."
    )
)]
#[serde(deny_unknown_fields)]
pub struct HmacAuthConfig {
    /// Remove the header that carried the signature before forwarding (default false).
    #[serde(default)]
    #[cfg_attr(feature = "schema", schemars(with = "Option<bool>"))]
    pub hide_credentials: bool,
    /// Seconds `X-Date` or `Date` may be off the gateway's clock (default 300; more than 0).
    #[serde(default = "default_clock_skew")]
    #[cfg_attr(
        feature = "schema",
        schemars(with = "Option<f64>", extend("exclusiveMinimum" = 0))
    )]
    pub clock_skew: f64,
    /// Consumer (username or id) for requests without an hmac credential.
    #[serde(default)]
    pub anonymous: Option<String>,
    /// Check the body against the `Digest: SHA-256=<base64>` header (default false).
    #[serde(default)]
    #[cfg_attr(feature = "schema", schemars(with = "Option<bool>"))]
    pub validate_request_body: bool,
    /// Headers every signature must cover (default none).
    #[serde(default)]
    #[cfg_attr(feature = "schema", schemars(with = "Option<Vec<String>>"))]
    pub enforce_headers: Vec<String>,
    /// Algorithms accepted (default all four).
    #[serde(default = "default_algorithms")]
    #[cfg_attr(
        feature = "schema",
        schemars(with = "Option<Vec<HmacAlgorithm>>", extend("minItems" = 1))
    )]
    pub algorithms: Vec<HmacAlgorithm>,
    /// `realm` of the `WWW-Authenticate` challenge (default none: the challenge is `hmac`).
    #[serde(default)]
    pub realm: Option<String>,
}

impl HmacAuthConfig {
    pub fn validate(self) -> Result<HmacAuthConfig, PluginError> {
        let mut errors = Vec::new();
        if !(self.clock_skew.is_finite() && self.clock_skew > 0.0) {
            errors.push(("clock_skew".into(), "must be greater than 0".into()));
        }
        if self.algorithms.is_empty() {
            errors.push((
                "algorithms".into(),
                "give at least one of hmac-sha1, hmac-sha256, hmac-sha384, hmac-sha512".into(),
            ));
        }
        for (i, h) in self.enforce_headers.iter().enumerate() {
            if h.is_empty() || h.chars().any(|c| c.is_whitespace() || c.is_control()) {
                errors.push((
                    format!("enforce_headers[{i}]"),
                    "a header name cannot be empty or contain spaces".into(),
                ));
            }
        }
        if let Some(realm) = &self.realm {
            if let Err(e) = super::check_realm(realm) {
                errors.push(e);
            }
        }
        if errors.is_empty() {
            Ok(self)
        } else {
            Err(PluginError::Config(errors))
        }
    }

    /// `hmac`, or `hmac realm="<realm>"` (Kong's).
    pub fn challenge(&self) -> String {
        match &self.realm {
            Some(r) => format!("hmac realm=\"{r}\""),
            None => "hmac".to_string(),
        }
    }
}

/// The parameters of an `hmac` credential.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Params {
    pub username: String,
    pub algorithm: String,
    /// The `headers="..."` list, split at single spaces (as Kong does).
    pub headers: Vec<String>,
    /// Base64, as sent.
    pub signature: String,
}

/// What one header holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Parsed {
    /// Not an `hmac` credential (absent, or another scheme).
    Absent,
    /// The `hmac` scheme, but not the four parameters `username`, `algorithm`, `headers`, `signature`
    /// each once with a non-empty quoted value (or too long).
    Malformed,
    Credentials(Params),
}

/// Whether `value` uses the `hmac` scheme (any case).
pub fn is_hmac(value: &str) -> bool {
    let v = value.trim_start();
    v.len() >= 4
        && v.as_bytes()[..4].eq_ignore_ascii_case(b"hmac")
        && v[4..].chars().next().is_none_or(|c| c == ' ' || c == '\t')
}

/// Read `hmac username="..", algorithm="..", headers="..", signature=".."`: the parameters in any order,
/// separated by commas with optional spaces; each value a quoted string without `"`.
pub fn parse(value: Option<&str>) -> Parsed {
    let Some(value) = value else {
        return Parsed::Absent;
    };
    if !is_hmac(value) {
        return Parsed::Absent;
    }
    if value.len() > MAX_HEADER_BYTES {
        return Parsed::Malformed;
    }
    parse_params(value.trim_start()[4..].trim()).map_or(Parsed::Malformed, Parsed::Credentials)
}

fn parse_params(mut rest: &str) -> Option<Params> {
    let (mut username, mut algorithm, mut headers, mut signature) = (None, None, None, None);
    loop {
        let (name, after) = rest.split_once('=')?;
        let name = name.trim();
        let after = after.trim_start().strip_prefix('"')?;
        let (val, tail) = after.split_once('"')?;
        if val.is_empty() {
            return None;
        }
        let slot = match name {
            "username" => &mut username,
            "algorithm" => &mut algorithm,
            "headers" => &mut headers,
            "signature" => &mut signature,
            _ => return None,
        };
        if slot.replace(val.to_string()).is_some() {
            return None;
        }
        let tail = tail.trim_start();
        if tail.is_empty() {
            break;
        }
        rest = tail.strip_prefix(',')?.trim_start();
    }
    let headers: Vec<String> = headers?.split(' ').map(str::to_string).collect();
    if headers.len() > MAX_SIGNED_HEADERS {
        return None;
    }
    Some(Params {
        username: username?,
        algorithm: algorithm?,
        headers,
        signature: signature?,
    })
}

/// Why a credential's parameters are refused before its signature is checked (all are 401
/// [`CANNOT_VERIFY`]); the text is for the log.
pub fn check_params(config: &HmacAuthConfig, params: &Params) -> Result<HmacAlgorithm, String> {
    for h in &config.enforce_headers {
        if !params.headers.iter().any(|p| p == h) {
            return Err("enforced header not used for signature creation".into());
        }
    }
    HmacAlgorithm::from_name(&params.algorithm)
        .filter(|a| config.algorithms.contains(a))
        .ok_or_else(|| format!("algorithm {} not supported", params.algorithm))
}

/// The request as the signing string sees it.
pub struct SignedRequest<'a> {
    pub method: &'a str,
    /// Path and query (`/p?q=1`; no `?` when the query is empty).
    pub path_with_query: &'a str,
    /// `HTTP/1.1`, `HTTP/2.0`, ...
    pub http_version: &'a str,
}

/// Kong's signing string: per listed name, `name: value` when the request has that header (the name as
/// listed, the value as the request has it); else `@request-target: <method in lower case> <path?query>`
/// for `@request-target`, `<METHOD> <path?query> <HTTP/x.y>` for `request-line`, and `name:` for any other
/// name; the lines joined with `\n` (none after the last).
pub fn signing_string(
    names: &[String],
    header: &dyn Fn(&str) -> Option<String>,
    req: &SignedRequest<'_>,
) -> String {
    let mut out = String::new();
    for (i, name) in names.iter().enumerate() {
        if i > 0 {
            out.push('\n');
        }
        match header(name) {
            Some(v) => {
                out.push_str(name);
                out.push_str(": ");
                out.push_str(&v);
            }
            None if name == "@request-target" => {
                out.push_str("@request-target: ");
                out.push_str(&req.method.to_ascii_lowercase());
                out.push(' ');
                out.push_str(req.path_with_query);
            }
            None if name == "request-line" => {
                out.push_str(req.method);
                out.push(' ');
                out.push_str(req.path_with_query);
                out.push(' ');
                out.push_str(req.http_version);
            }
            None => {
                out.push_str(name);
                out.push(':');
            }
        }
    }
    out
}

/// HMAC of `message` with `secret`.
pub fn mac(alg: HmacAlgorithm, secret: &[u8], message: &[u8]) -> Vec<u8> {
    fn run<M: Mac + ::hmac::digest::KeyInit>(secret: &[u8], message: &[u8]) -> Vec<u8> {
        // HMAC takes keys of any length.
        let mut m = <M as ::hmac::digest::KeyInit>::new_from_slice(secret).expect("any key length");
        m.update(message);
        m.finalize().into_bytes().to_vec()
    }
    match alg {
        HmacAlgorithm::Sha1 => run::<Hmac<sha1::Sha1>>(secret, message),
        HmacAlgorithm::Sha256 => run::<Hmac<Sha256>>(secret, message),
        HmacAlgorithm::Sha384 => run::<Hmac<Sha384>>(secret, message),
        HmacAlgorithm::Sha512 => run::<Hmac<Sha512>>(secret, message),
    }
}

/// Whether `signature` (base64, padded or not) is the HMAC of `message`, compared in constant time.
/// Not base64: `false`.
pub fn verify(alg: HmacAlgorithm, secret: &[u8], message: &[u8], signature: &str) -> bool {
    let sig = STANDARD
        .decode(signature)
        .or_else(|_| STANDARD_NO_PAD.decode(signature));
    match sig {
        Ok(sig) => ct_eq(&mac(alg, secret, message), &sig),
        Err(_) => false,
    }
}

/// `validate_request_body`: with a `Digest` header, it must be exactly `SHA-256=<base64 of the body's
/// SHA-256>`; without one, the body must be empty (Kong's rule).
pub fn body_matches(digest: Option<&str>, body: &[u8]) -> bool {
    match digest {
        None => body.is_empty(),
        Some(d) => {
            let expected = format!("SHA-256={}", STANDARD.encode(super::crypto::sha256(body)));
            ct_eq(d.as_bytes(), expected.as_bytes())
        }
    }
}

/// Whether the date header's value is an HTTP date within `skew` seconds of `now` (seconds).
pub fn date_ok(value: Option<&str>, now: u64, skew: f64) -> bool {
    value
        .and_then(crate::cache::http_date)
        .is_some_and(|t| (now.abs_diff(t) as f64) <= skew)
}

/// Kong's `HTTP/%.01f` of the request's HTTP version, from the Workers runtime's `cf.httpProtocol`
/// (`HTTP/1.1`, `HTTP/2`, `HTTP/3`); `HTTP/1.1` when unknown.
pub fn http_version(protocol: Option<&str>) -> String {
    match protocol.map(str::trim) {
        Some("HTTP/1.0") => "HTTP/1.0".into(),
        Some("HTTP/2") | Some("HTTP/2.0") => "HTTP/2.0".into(),
        Some("HTTP/3") | Some("HTTP/3.0") => "HTTP/3.0".into(),
        _ => "HTTP/1.1".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    #[cfg(target_arch = "wasm32")]
    use wasm_bindgen_test::wasm_bindgen_test as test;

    fn config(v: serde_json::Value) -> Result<HmacAuthConfig, PluginError> {
        crate::plugins::settings::<HmacAuthConfig>(&v).and_then(HmacAuthConfig::validate)
    }

    fn params(headers: &str) -> Params {
        Params {
            username: "bob".into(),
            algorithm: "hmac-sha256".into(),
            headers: headers.split(' ').map(str::to_string).collect(),
            signature: "x".into(),
        }
    }

    #[test]
    fn defaults_are_kongs() {
        let c = config(json!({})).unwrap();
        assert!(!c.hide_credentials);
        assert_eq!(c.clock_skew, 300.0);
        assert!(!c.validate_request_body);
        assert!(c.enforce_headers.is_empty());
        assert_eq!(c.algorithms, HmacAlgorithm::ALL.to_vec());
        assert_eq!(c.challenge(), "hmac");
        let c = config(json!({"realm": "test-realm"})).unwrap();
        assert_eq!(c.challenge(), "hmac realm=\"test-realm\"");
    }

    #[test]
    fn bad_settings_name_their_path() {
        let path = |v| match config(v) {
            Err(PluginError::Config(e)) => e[0].0.clone(),
            other => panic!("{other:?}"),
        };
        assert_eq!(path(json!({"clock_skew": 0})), "clock_skew");
        assert_eq!(path(json!({"clock_skew": -1})), "clock_skew");
        assert_eq!(
            path(json!({"algorithms": ["hmac-sha256", "hmac-md5"]})),
            "algorithms[1]"
        );
        assert_eq!(path(json!({"algorithms": []})), "algorithms");
        assert_eq!(
            path(json!({"enforce_headers": ["date", ""]})),
            "enforce_headers[1]"
        );
        assert_eq!(path(json!({"realm": "a\"b"})), "realm");
        assert_eq!(path(json!({"secret": "x"})), "secret");
    }

    #[test]
    fn parses_kongs_header_forms() {
        let h = r#"hmac username="bob", algorithm="hmac-sha1", headers="date request-line", signature="c2ln""#;
        let Parsed::Credentials(p) = parse(Some(h)) else {
            panic!()
        };
        assert_eq!(p.username, "bob");
        assert_eq!(p.algorithm, "hmac-sha1");
        assert_eq!(p.headers, vec!["date", "request-line"]);
        assert_eq!(p.signature, "c2ln");
        // No space, extra spaces, any case of the scheme, any order.
        for h in [
            r#"hmac username="bob",algorithm="hmac-sha1",headers="date",signature="c2ln""#,
            r#"  Hmac username="bob",  algorithm="hmac-sha1",   headers="date", signature="c2ln" "#,
            r#"HMAC signature="c2ln", headers="date", algorithm="hmac-sha1", username="bob""#,
        ] {
            assert!(matches!(parse(Some(h)), Parsed::Credentials(_)), "{h}");
        }
    }

    #[test]
    fn other_schemes_are_absent_and_broken_hmac_is_malformed() {
        assert_eq!(parse(None), Parsed::Absent);
        for h in [
            "Basic Ym9iOnB3",
            "Bearer x",
            "hmacx username=\"a\"",
            "asd",
            "",
            "Signature keyId=\"bob\"",
        ] {
            assert_eq!(parse(Some(h)), Parsed::Absent, "{h}");
        }
        for h in [
            "hmac",
            "hmac username=,algorithm,headers,dXNlcm5hbWU6cGFzc3dvcmQ=",
            r#"hmac username="bob""#,
            r#"hmac username="", algorithm="hmac-sha1", headers="date", signature="c2ln""#,
            r#"hmac algorithm="hmac-sha1", headers="date", signature="c2ln""#,
            r#"hmac username="bob", algorithm="hmac-sha1", header="date", signature="c2ln""#,
            r#"hmac username="bob", algorithm="hmac-sha1", headers="date", signatures="c2ln""#,
            r#"hmac username="bob", algorithm="hmac-sha1", headers="date", signature="c2ln", extra="1""#,
            r#"hmac username="bob", username="bob", algorithm="hmac-sha1", headers="date", signature="c2ln""#,
            r#"hmac username="bob" algorithm="hmac-sha1", headers="date", signature="c2ln""#,
            r#"hmac username=bob, algorithm="hmac-sha1", headers="date", signature="c2ln""#,
        ] {
            assert_eq!(parse(Some(h)), Parsed::Malformed, "{h}");
        }
        let long = format!(
            r#"hmac username="bob", algorithm="hmac-sha1", headers="date", signature="{}""#,
            "A".repeat(MAX_HEADER_BYTES)
        );
        assert_eq!(parse(Some(&long)), Parsed::Malformed);
    }

    #[test]
    fn signing_string_is_kongs() {
        let req = SignedRequest {
            method: "GET",
            path_with_query: "/request?a=1",
            http_version: "HTTP/1.1",
        };
        let header = |n: &str| match n.to_ascii_lowercase().as_str() {
            "date" => Some("Thu, 03 Dec 2026 19:00:00 GMT".to_string()),
            "content-md5" => Some("md5".to_string()),
            _ => None,
        };
        let names = |s: &str| s.split(' ').map(str::to_string).collect::<Vec<_>>();
        assert_eq!(
            signing_string(&names("date content-md5 request-line"), &header, &req),
            "date: Thu, 03 Dec 2026 19:00:00 GMT\ncontent-md5: md5\nGET /request?a=1 HTTP/1.1"
        );
        assert_eq!(
            signing_string(&names("@request-target Date x-missing"), &header, &req),
            "@request-target: get /request?a=1\nDate: Thu, 03 Dec 2026 19:00:00 GMT\nx-missing:"
        );
        assert_eq!(
            signing_string(&names("date"), &header, &req),
            "date: Thu, 03 Dec 2026 19:00:00 GMT"
        );
        assert_eq!(http_version(Some("HTTP/2")), "HTTP/2.0");
        assert_eq!(http_version(Some("HTTP/1.0")), "HTTP/1.0");
        assert_eq!(http_version(None), "HTTP/1.1");
    }

    #[test]
    fn macs_match_the_rfc_vectors_and_compare_in_constant_time() {
        let data = b"what do ya want for nothing?";
        let hex = |a| super::super::hex(&mac(a, b"Jefe", data));
        // RFC 2202 (SHA-1) and RFC 4231 (SHA-2), test case 2.
        assert_eq!(
            hex(HmacAlgorithm::Sha1),
            "effcdf6ae5eb2fa2d27416d5f184df9c259a7c79"
        );
        assert_eq!(
            hex(HmacAlgorithm::Sha256),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
        assert!(hex(HmacAlgorithm::Sha384).starts_with("af45d2e376484031617f78d2b58a6b1b"));
        assert!(hex(HmacAlgorithm::Sha512).starts_with("164b7a7bfcf819e2e395fbe73b56e0a3"));
        let sig = STANDARD.encode(mac(HmacAlgorithm::Sha256, b"Jefe", data));
        assert!(verify(HmacAlgorithm::Sha256, b"Jefe", data, &sig));
        assert!(verify(
            HmacAlgorithm::Sha256,
            b"Jefe",
            data,
            sig.trim_end_matches('=')
        ));
        assert!(!verify(HmacAlgorithm::Sha256, b"Jeff", data, &sig));
        assert!(!verify(HmacAlgorithm::Sha512, b"Jefe", data, &sig));
        assert!(!verify(
            HmacAlgorithm::Sha256,
            b"Jefe",
            data,
            "not really base64!!!"
        ));
    }

    #[test]
    fn params_are_checked_against_the_settings() {
        let c = config(
            json!({"enforce_headers": ["date", "request-line"], "algorithms": ["hmac-sha256"]}),
        )
        .unwrap();
        assert_eq!(
            check_params(&c, &params("date request-line")),
            Ok(HmacAlgorithm::Sha256)
        );
        assert!(check_params(&c, &params("date")).is_err());
        let mut p = params("request-line date");
        p.algorithm = "hmac-sha1".into();
        assert!(check_params(&c, &p).is_err());
        p.algorithm = "hmac-md5".into();
        assert!(check_params(&c, &p).is_err());
    }

    #[test]
    fn digest_and_dates() {
        // SHA-256 of "{}": RBNvo1WzZ4oRRq0W9+hknpT7T8If536DEMBg9hyq/4o=
        assert!(body_matches(
            Some("SHA-256=RBNvo1WzZ4oRRq0W9+hknpT7T8If536DEMBg9hyq/4o="),
            b"{}"
        ));
        assert!(!body_matches(
            Some("SHA-256=RBNvo1WzZ4oRRq0W9+hknpT7T8If536DEMBg9hyq/4o="),
            b"{ }"
        ));
        assert!(!body_matches(
            Some("sha-256=RBNvo1WzZ4oRRq0W9+hknpT7T8If536DEMBg9hyq/4o="),
            b"{}"
        ));
        assert!(body_matches(None, b""));
        assert!(!body_matches(None, b"{}"));
        let now = 1_796_324_400; // Thu, 03 Dec 2026 19:00:00 GMT
        assert!(date_ok(Some("Thu, 03 Dec 2026 19:00:00 GMT"), now, 300.0));
        assert!(date_ok(Some("Thu, 03 Dec 2026 19:05:00 GMT"), now, 300.0));
        assert!(!date_ok(Some("Thu, 03 Dec 2026 19:05:01 GMT"), now, 300.0));
        assert!(!date_ok(Some("Thu, 03 Dec 2026 18:54:59 GMT"), now, 300.0));
        assert!(date_ok(
            Some("Thursday, 03-Dec-26 19:00:00 GMT"),
            now,
            300.0
        ));
        assert!(!date_ok(Some("yesterday"), now, 300.0));
        assert!(!date_ok(None, now, 300.0));
    }
}
