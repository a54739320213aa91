//! AWS Signature Version 4 (header form), in pure Rust (SHA-256 and HMAC from the `sha2` / `hmac` crates the
//! core already has): what Bedrock requests are signed with.
//!
//! The canonical request is the method, the path URI-encoded once more (each byte outside the unreserved
//! set and `/` as `%XX`: services other than S3 sign the path as sent, encoded again, so a model id
//! `a:1` sent as `a%3A1` is signed as `a%253A1`), the query sorted, the signed headers (lower-case,
//! values trimmed and inner runs of spaces collapsed, repeated names joined by `,`), their names, and
//! the payload's SHA-256. No path normalisation (`.` / `..` segments): the gateway builds its paths.
//!
//! The time comes from the caller (the Worker's clock: no `SystemTime` in wasm). Secrets are only
//! inputs to the HMAC; [`Credentials`]' `Debug` hides them.

use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};

/// An AWS access key (and session token for temporary credentials).
#[derive(Clone, PartialEq, Eq)]
pub struct Credentials {
    pub access_key_id: String,
    pub secret_access_key: String,
    pub session_token: Option<String>,
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Credentials { .. }")
    }
}

fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        s.push(DIGITS[(b >> 4) as usize] as char);
        s.push(DIGITS[(b & 15) as usize] as char);
    }
    s
}

fn sha256_hex(data: &[u8]) -> String {
    hex(&Sha256::digest(data))
}

fn hmac(key: &[u8], data: &[u8]) -> [u8; 32] {
    // HMAC takes a key of any length.
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(key).expect("HMAC key of any length");
    mac.update(data);
    let mut out = [0u8; 32];
    out.copy_from_slice(&mac.finalize().into_bytes());
    out
}

/// `YYYYMMDDTHHMMSSZ` of Unix seconds.
pub fn amz_date(unix_secs: u64) -> String {
    super::ingress::rfc3339(unix_secs)
        .chars()
        .filter(|c| *c != '-' && *c != ':')
        .collect()
}

/// The signing key of a day, region and service.
pub fn signing_key(secret: &str, date: &str, region: &str, service: &str) -> [u8; 32] {
    let k = hmac(format!("AWS4{secret}").as_bytes(), date.as_bytes());
    let k = hmac(&k, region.as_bytes());
    let k = hmac(&k, service.as_bytes());
    hmac(&k, b"aws4_request")
}

/// Percent-encode every byte but the unreserved ones (and `/` when `keep_slash`).
fn uri_encode(s: &str, keep_slash: bool) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric()
            || matches!(b, b'-' | b'_' | b'.' | b'~')
            || (keep_slash && b == b'/')
        {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        let hexv = |c: u8| (c as char).to_digit(16);
        if b[i] == b'%' && i + 2 < b.len() {
            if let (Some(h), Some(l)) = (hexv(b[i + 1]), hexv(b[i + 2])) {
                out.push((h * 16 + l) as u8);
                i += 3;
                continue;
            }
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The parts of a URL the signature needs: host (with a non-default port), path, query.
pub fn split_url(url: &str) -> Option<(String, String, String)> {
    let (scheme, rest) = url.split_once("://")?;
    let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let authority = &rest[..end];
    let authority = authority.rsplit('@').next().unwrap_or(authority);
    let host = match authority.rsplit_once(':') {
        Some((h, "443")) if scheme.eq_ignore_ascii_case("https") => h,
        Some((h, "80")) if scheme.eq_ignore_ascii_case("http") => h,
        _ => authority,
    }
    .to_ascii_lowercase();
    let rest = &rest[end..];
    let rest = rest.split('#').next().unwrap_or("");
    let (path, query) = rest.split_once('?').unwrap_or((rest, ""));
    let path = if path.is_empty() { "/" } else { path };
    Some((host, path.to_string(), query.to_string()))
}

fn canonical_query(query: &str) -> String {
    let mut pairs: Vec<(String, String)> = query
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            (
                uri_encode(&percent_decode(k), false),
                uri_encode(&percent_decode(v), false),
            )
        })
        .collect();
    pairs.sort();
    pairs
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join("&")
}

/// The canonical request and the signed header names (`host;x-amz-date`). `headers` are every header
/// to sign, `host` and `x-amz-date` included.
pub fn canonical_request(
    method: &str,
    path: &str,
    query: &str,
    headers: &[(String, String)],
    payload_hash: &str,
) -> (String, String) {
    let mut h: Vec<(String, String)> = Vec::with_capacity(headers.len());
    for (name, value) in headers {
        let name = name.to_ascii_lowercase();
        let value = value.split_whitespace().collect::<Vec<_>>().join(" ");
        match h.iter_mut().find(|(n, _)| *n == name) {
            Some((_, v)) => {
                v.push(',');
                v.push_str(&value);
            }
            None => h.push((name, value)),
        }
    }
    // The names are unique (merged above), so this is the order by name; `sort` shares its copy of the
    // standard sort with the query's.
    h.sort();
    let signed = h
        .iter()
        .map(|(n, _)| n.as_str())
        .collect::<Vec<_>>()
        .join(";");
    let mut c = String::new();
    c.push_str(method);
    c.push('\n');
    c.push_str(&uri_encode(path, true));
    c.push('\n');
    c.push_str(&canonical_query(query));
    c.push('\n');
    for (n, v) in &h {
        c.push_str(n);
        c.push(':');
        c.push_str(v);
        c.push('\n');
    }
    c.push('\n');
    c.push_str(&signed);
    c.push('\n');
    c.push_str(payload_hash);
    (c, signed)
}

/// The headers that sign a request: `x-amz-date`, `x-amz-security-token` (temporary credentials) and
/// `authorization`. `headers` are the request's other headers to sign (`host` is added from the URL);
/// `amz_date` is [`amz_date`] of the current time. `None` when the URL cannot be read.
#[allow(clippy::too_many_arguments)]
pub fn sign(
    method: &str,
    url: &str,
    headers: &[(String, String)],
    body: &[u8],
    creds: &Credentials,
    region: &str,
    service: &str,
    amz_date: &str,
) -> Option<Vec<(String, String)>> {
    let (host, path, query) = split_url(url)?;
    let mut added = vec![("x-amz-date".to_string(), amz_date.to_string())];
    if let Some(t) = &creds.session_token {
        added.push(("x-amz-security-token".to_string(), t.clone()));
    }
    let mut all: Vec<(String, String)> = headers
        .iter()
        .filter(|(n, _)| {
            !n.eq_ignore_ascii_case("host")
                && !n.eq_ignore_ascii_case("authorization")
                && !n.eq_ignore_ascii_case("x-amz-date")
                && !n.eq_ignore_ascii_case("x-amz-security-token")
        })
        .cloned()
        .collect();
    all.push(("host".to_string(), host));
    all.extend(added.iter().cloned());
    let (canonical, signed) = canonical_request(method, &path, &query, &all, &sha256_hex(body));
    let date = amz_date.get(..8)?;
    let scope = format!("{date}/{region}/{service}/aws4_request");
    let to_sign = string_to_sign(amz_date, &scope, &canonical);
    let key = signing_key(&creds.secret_access_key, date, region, service);
    let signature = hex(&hmac(&key, to_sign.as_bytes()));
    added.push((
        "authorization".to_string(),
        format!(
            "AWS4-HMAC-SHA256 Credential={}/{scope}, SignedHeaders={signed}, Signature={signature}",
            creds.access_key_id
        ),
    ));
    Some(added)
}

/// The string to sign of a canonical request.
pub fn string_to_sign(amz_date: &str, scope: &str, canonical: &str) -> String {
    format!(
        "AWS4-HMAC-SHA256\n{amz_date}\n{scope}\n{}",
        sha256_hex(canonical.as_bytes())
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    #[cfg(target_arch = "wasm32")]
    use wasm_bindgen_test::wasm_bindgen_test as test;

    const DATE: &str = "20150830T123600Z";

    fn creds(token: Option<&str>) -> Credentials {
        Credentials {
            access_key_id: "AKIDEXAMPLE".into(),
            secret_access_key: "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY".into(),
            session_token: token.map(str::to_string),
        }
    }

    fn h(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(n, v)| (n.to_string(), v.to_string()))
            .collect()
    }

    /// Cases of the AWS SigV4 test suite (awslabs/aws-c-auth tests/aws-signing-test-suite/v4/*:
    /// request.txt, header-canonical-request.txt, header-signature.txt), region us-east-1, service
    /// `service`, 2015-08-30T12:36:00Z.
    fn check(
        method: &str,
        url: &str,
        headers: &[(&str, &str)],
        body: &[u8],
        token: Option<&str>,
        canonical_want: &str,
        signature: &str,
    ) {
        let added = sign(
            method,
            url,
            &h(headers),
            body,
            &creds(token),
            "us-east-1",
            "service",
            DATE,
        )
        .unwrap();
        let auth = &added.iter().find(|(n, _)| n == "authorization").unwrap().1;
        let (_, path, query) = split_url(url).unwrap();
        let mut all = h(headers);
        all.push(("host".into(), "example.amazonaws.com".into()));
        all.extend(added.iter().filter(|(n, _)| n != "authorization").cloned());
        let (canonical, _) = canonical_request(method, &path, &query, &all, &sha256_hex(body));
        assert_eq!(canonical, canonical_want, "{url}");
        assert!(
            auth.ends_with(&format!("Signature={signature}")),
            "{url}: {auth}"
        );
        assert!(auth.starts_with(
            "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, SignedHeaders="
        ));
        assert_eq!(added[0], ("x-amz-date".to_string(), DATE.to_string()));
    }

    const EMPTY: &str = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

    #[test]
    fn get_vanilla() {
        check(
            "GET",
            "https://example.amazonaws.com/",
            &[],
            b"",
            None,
            &format!("GET\n/\n\nhost:example.amazonaws.com\nx-amz-date:{DATE}\n\nhost;x-amz-date\n{EMPTY}"),
            "5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31",
        );
    }

    #[test]
    fn post_vanilla() {
        check(
            "POST",
            "https://example.amazonaws.com",
            &[],
            b"",
            None,
            &format!("POST\n/\n\nhost:example.amazonaws.com\nx-amz-date:{DATE}\n\nhost;x-amz-date\n{EMPTY}"),
            "5da7c1a2acd57cee7505fc6676e4e544621c30862966e37dddb68e92efbe5d6b",
        );
    }

    #[test]
    fn query_sorted() {
        check(
            "GET",
            "https://example.amazonaws.com/?Param2=value2&Param1=value1",
            &[],
            b"",
            None,
            &format!("GET\n/\nParam1=value1&Param2=value2\nhost:example.amazonaws.com\nx-amz-date:{DATE}\n\nhost;x-amz-date\n{EMPTY}"),
            "b97d918cfa904a5beff61c982a1b6f458b799221646efd99d3219ec94cdf2500",
        );
    }

    #[test]
    fn path_encoding() {
        check(
            "GET",
            "https://example.amazonaws.com/ሴ",
            &[],
            b"",
            None,
            &format!("GET\n/%E1%88%B4\n\nhost:example.amazonaws.com\nx-amz-date:{DATE}\n\nhost;x-amz-date\n{EMPTY}"),
            "8318018e0b0f223aa2bbf98705b62bb787dc9c0e678f255a891fd03141be5d85",
        );
        check(
            "GET",
            "https://example.amazonaws.com/example space/",
            &[],
            b"",
            None,
            &format!("GET\n/example%20space/\n\nhost:example.amazonaws.com\nx-amz-date:{DATE}\n\nhost;x-amz-date\n{EMPTY}"),
            "652487583200325589f1fba4c7e578f72c47cb61beeca81406b39ddec1366741",
        );
        let unreserved = "/-._~0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
        check(
            "GET",
            &format!("https://example.amazonaws.com{unreserved}"),
            &[],
            b"",
            None,
            &format!("GET\n{unreserved}\n\nhost:example.amazonaws.com\nx-amz-date:{DATE}\n\nhost;x-amz-date\n{EMPTY}"),
            "07ef7494c76fa4850883e2b006601f940f8a34d404d0cfa977f52a65bbf5f24f",
        );
    }

    #[test]
    fn session_tokens_are_signed() {
        let t = "6e86291e8372ff2a2260956d9b8aae1d763fbf315fa00fa31553b73ebf194267";
        check(
            "GET",
            "https://example.amazonaws.com/",
            &[],
            b"",
            Some(t),
            &format!("GET\n/\n\nhost:example.amazonaws.com\nx-amz-date:{DATE}\nx-amz-security-token:{t}\n\nhost;x-amz-date;x-amz-security-token\n{EMPTY}"),
            "07ec1639c89043aa0e3e2de82b96708f198cceab042d4a97044c66dd9f74e7f8",
        );
        let t = "AQoDYXdzEPT//////////wEXAMPLEtc764bNrC9SAPBSM22wDOk4x4HIZ8j4FZTwdQWLWsKWHGBuFqwAeMicRXmxfpSPfIeoIYRqTflfKD8YUuwthAx7mSEI/qkPpKPi/kMcGdQrmGdeehM4IC1NtBmUpp2wUE8phUZampKsburEDy0KPkyQDYwT7WZ0wq5VSXDvp75YU9HFvlRd8Tx6q6fE8YQcHNVXAkiY9q6d+xo0rKwT38xVqr7ZD0u0iPPkUL64lIZbqBAz+scqKmlzm8FDrypNC9Yjc8fPOLn9FX9KSYvKTr4rvx3iSIlTJabIQwj2ICCR/oLxBA==";
        check(
            "POST",
            "https://example.amazonaws.com/",
            &[],
            b"",
            Some(t),
            &format!("POST\n/\n\nhost:example.amazonaws.com\nx-amz-date:{DATE}\nx-amz-security-token:{t}\n\nhost;x-amz-date;x-amz-security-token\n{EMPTY}"),
            "85d96828115b5dc0cfc3bd16ad9e210dd772bbebba041836c64533a82be05ead",
        );
    }

    #[test]
    fn signed_body_and_headers() {
        let hash = "9095672bbd1f56dfc5b65f3e153adc8731a4a654192329106275f4c7b24d0b6e";
        check(
            "POST",
            "https://example.amazonaws.com/",
            &[
                ("Content-Type", "application/x-www-form-urlencoded"),
                ("Content-Length", "13"),
                ("x-amz-content-sha256", hash),
            ],
            b"Param1=value1",
            None,
            &format!("POST\n/\n\ncontent-length:13\ncontent-type:application/x-www-form-urlencoded\nhost:example.amazonaws.com\nx-amz-content-sha256:{hash}\nx-amz-date:{DATE}\n\ncontent-length;content-type;host;x-amz-content-sha256;x-amz-date\n{hash}"),
            "d3875051da38690788ef43de4db0d8f280229d82040bfac253562e56c3f20e0b",
        );
    }

    #[test]
    fn signing_key_of_the_aws_documentation() {
        assert_eq!(
            hex(&signing_key(
                "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY",
                "20150830",
                "us-east-1",
                "iam"
            )),
            "c4afb1cc5771d871763a393e44b703571b55cc28424d1a5e86da6ed3c154a4b9"
        );
    }

    #[test]
    fn bedrock_paths_are_encoded_twice_and_ports_kept() {
        let (host, path, _) =
            split_url("http://127.0.0.1:9200/model/anthropic.claude-v2%3A1/converse").unwrap();
        assert_eq!(host, "127.0.0.1:9200");
        let (c, _) = canonical_request("POST", &path, "", &[], EMPTY);
        assert!(
            c.starts_with("POST\n/model/anthropic.claude-v2%253A1/converse\n"),
            "{c}"
        );
        assert_eq!(
            split_url("https://bedrock-runtime.us-east-1.amazonaws.com:443/x")
                .unwrap()
                .0,
            "bedrock-runtime.us-east-1.amazonaws.com"
        );
        assert_eq!(amz_date(1_440_938_160), DATE);
        assert_eq!(format!("{:?}", creds(Some("T"))), "Credentials { .. }");
    }
}
