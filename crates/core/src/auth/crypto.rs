//! The cryptography the auth plugins need, behind one trait so that each runtime uses its fastest
//! implementation (docs/authentication.md, "Where the crypto runs"):
//!
//! - [`Crypto`]: signature verification by algorithm with a [`PublicKey`], and PBKDF2-HMAC-SHA256. Async,
//!   because the Worker's backend is WebCrypto (`crypto.subtle`, `src/webcrypto.rs`), whose calls return
//!   promises.
//! - [`RustCrypto`] (cargo feature `rust-crypto`, on by default): the same operations with the RustCrypto
//!   crates (through jsonwebtoken's `rust_crypto` provider), for native builds, the CLI and the tests. The
//!   Worker builds edgegate-core without it, so those crates are not in the wasm.
//! - HMAC (HS256/384/512) and SHA-2 digests stay in Rust everywhere ([`hmac_verify`], [`sha256`]): they are
//!   cheap, and synchronous where the callers need it.
//!
//! Keys are parsed here, without jsonwebtoken's PEM support (which links an ASN.1 library): [`pem_public_key`]
//! reads RSA (PKCS#1 or SPKI), EC P-256/P-384 and Ed25519 public keys from PEM (or the SPKI of a
//! certificate), [`jwk_public_key`] the same from a JWK. Private keys are refused.

use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine;
use hmac::{Hmac, Mac};
use jsonwebtoken::jwk::{AlgorithmParameters, EllipticCurve, Jwk};
use jsonwebtoken::AlgorithmFamily;

pub use jsonwebtoken::Algorithm;
use sha2::{Digest, Sha256, Sha384, Sha512};

/// A curve of an ECDSA key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Curve {
    P256,
    P384,
}

impl Curve {
    /// WebCrypto's `namedCurve`.
    pub fn name(self) -> &'static str {
        match self {
            Curve::P256 => "P-256",
            Curve::P384 => "P-384",
        }
    }

    fn point_len(self) -> usize {
        match self {
            Curve::P256 => 65,
            Curve::P384 => 97,
        }
    }
}

/// A credential's verification key, parsed and checked for shape once.
#[derive(Clone, PartialEq, Eq)]
pub enum PublicKey {
    /// An HMAC secret (never a public key; kept here so that one type names every credential key).
    Hmac(Vec<u8>),
    /// RSA modulus and public exponent, big-endian, without leading zeros.
    Rsa { n: Vec<u8>, e: Vec<u8> },
    /// An uncompressed SEC1 point (`04 || x || y`).
    Ec { curve: Curve, point: Vec<u8> },
    /// A raw 32-byte Ed25519 public key.
    Ed25519(Vec<u8>),
}

impl std::fmt::Debug for PublicKey {
    // Never prints key material (an HMAC secret is one).
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            PublicKey::Hmac(_) => f.write_str("PublicKey::Hmac([redacted])"),
            PublicKey::Rsa { n, .. } => write!(f, "PublicKey::Rsa({} bits)", n.len() * 8),
            PublicKey::Ec { curve, .. } => write!(f, "PublicKey::Ec({})", curve.name()),
            PublicKey::Ed25519(_) => f.write_str("PublicKey::Ed25519"),
        }
    }
}

impl PublicKey {
    pub fn family(&self) -> AlgorithmFamily {
        match self {
            PublicKey::Hmac(_) => AlgorithmFamily::Hmac,
            PublicKey::Rsa { .. } => AlgorithmFamily::Rsa,
            PublicKey::Ec { .. } => AlgorithmFamily::Ec,
            PublicKey::Ed25519(_) => AlgorithmFamily::Ed,
        }
    }

    /// A digest naming this key for `alg` (for caches of imported keys: WebCrypto binds a key to its
    /// algorithm and hash). Lower-case hex SHA-256; it does not reveal the key.
    pub fn cache_id(&self, alg: Algorithm) -> String {
        let mut h = Sha256::new();
        h.update(format!("{alg:?}\0").as_bytes());
        match self {
            PublicKey::Hmac(s) => h.update(s),
            PublicKey::Rsa { n, e } => {
                h.update((n.len() as u32).to_be_bytes());
                h.update(n);
                h.update(e);
            }
            PublicKey::Ec { curve, point } => {
                h.update(curve.name().as_bytes());
                h.update(point);
            }
            PublicKey::Ed25519(k) => h.update(k),
        }
        super::hex(&h.finalize())
    }
}

/// What a backend could not do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CryptoError {
    /// The key could not be used (WebCrypto refused to import it: an EC point not on its curve, say).
    /// A 401 for the token, like a bad signature, and a log line naming the credential.
    Key(String),
    /// The backend failed (an exception from the runtime). A 500: nothing about the credential is known.
    Backend(String),
}

/// The operations the auth plugins need from a runtime. `verify` is only asked for asymmetric
/// algorithms (RSA, ECDSA, EdDSA); HMAC is [`hmac_verify`].
#[allow(async_fn_in_trait)] // single-threaded: the Worker's futures are not Send, and need not be
pub trait Crypto {
    /// Whether `signature` (raw bytes: for ECDSA `r || s`, as in JWS) is valid for `message`.
    async fn verify(
        &self,
        alg: Algorithm,
        key: &PublicKey,
        message: &[u8],
        signature: &[u8],
    ) -> Result<bool, CryptoError>;

    /// PBKDF2-HMAC-SHA256 of `password` with `salt`, 32 bytes.
    async fn pbkdf2_sha256(
        &self,
        password: &[u8],
        salt: &[u8],
        iterations: u32,
    ) -> Result<[u8; 32], CryptoError>;
}

/// The curve an ECDSA algorithm needs.
pub fn curve_of(alg: Algorithm) -> Option<Curve> {
    match alg {
        Algorithm::ES256 => Some(Curve::P256),
        Algorithm::ES384 => Some(Curve::P384),
        _ => None,
    }
}

/// HMAC-SHA-2 verification in constant time. `false` for a non-HMAC algorithm.
pub fn hmac_verify(alg: Algorithm, secret: &[u8], message: &[u8], signature: &[u8]) -> bool {
    fn check<M: Mac + hmac::digest::KeyInit>(secret: &[u8], message: &[u8], sig: &[u8]) -> bool {
        match <M as hmac::digest::KeyInit>::new_from_slice(secret) {
            Ok(mut mac) => {
                mac.update(message);
                mac.verify_slice(sig).is_ok()
            }
            Err(_) => false,
        }
    }
    match alg {
        Algorithm::HS256 => check::<Hmac<Sha256>>(secret, message, signature),
        Algorithm::HS384 => check::<Hmac<Sha384>>(secret, message, signature),
        Algorithm::HS512 => check::<Hmac<Sha512>>(secret, message, signature),
        _ => false,
    }
}

/// SHA-256 of `data`.
pub fn sha256(data: &[u8]) -> [u8; 32] {
    Sha256::digest(data).into()
}

// ---------------------------------------------------------------------------------------------------
// Key parsing: PEM (own reader, DER subset) and JWK.

const OID_RSA: &[u8] = &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x01];
const OID_EC: &[u8] = &[0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01];
const OID_P256: &[u8] = &[0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07];
const OID_P384: &[u8] = &[0x2b, 0x81, 0x04, 0x00, 0x22];
const OID_ED25519: &[u8] = &[0x2b, 0x65, 0x70];

/// One DER element: (tag, contents, rest of the input).
fn der_element(input: &[u8]) -> Option<(u8, &[u8], &[u8])> {
    let (&tag, rest) = input.split_first()?;
    let (&first, mut rest) = rest.split_first()?;
    let len = if first < 0x80 {
        first as usize
    } else {
        let count = (first & 0x7f) as usize;
        if count == 0 || count > 4 || rest.len() < count {
            return None;
        }
        let mut len = 0usize;
        for &b in &rest[..count] {
            len = (len << 8) | b as usize;
        }
        rest = &rest[count..];
        len
    };
    (rest.len() >= len).then(|| (tag, &rest[..len], &rest[len..]))
}

/// The elements of a constructed value's contents, in order.
fn der_children(mut contents: &[u8]) -> Option<Vec<(u8, &[u8])>> {
    let mut out = Vec::new();
    while !contents.is_empty() {
        let (tag, value, rest) = der_element(contents)?;
        out.push((tag, value));
        contents = rest;
    }
    Some(out)
}

fn strip_zeros(b: &[u8]) -> Vec<u8> {
    let start = b
        .iter()
        .position(|&x| x != 0)
        .unwrap_or(b.len().saturating_sub(1));
    b[start..].to_vec()
}

/// A PKCS#1 `RSAPublicKey` (SEQUENCE { INTEGER n, INTEGER e }).
fn rsa_pkcs1(der: &[u8]) -> Option<PublicKey> {
    let (0x30, contents, []) = der_element(der)? else {
        return None;
    };
    let items = der_children(contents)?;
    let [(0x02, n), (0x02, e)] = items.as_slice() else {
        return None;
    };
    rsa_components(n, e)
}

fn rsa_components(n: &[u8], e: &[u8]) -> Option<PublicKey> {
    let (n, e) = (strip_zeros(n), strip_zeros(e));
    // 1024 to 8192 bits, as the RustCrypto and WebCrypto backends accept; an odd exponent above 1.
    let ok = (128..=1024).contains(&n.len())
        && !e.is_empty()
        && e.len() <= 8
        && e.last().is_some_and(|b| b & 1 == 1)
        && e != [1];
    ok.then_some(PublicKey::Rsa { n, e })
}

fn ec_point(curve: Curve, point: &[u8]) -> Option<PublicKey> {
    (point.len() == curve.point_len() && point[0] == 0x04).then(|| PublicKey::Ec {
        curve,
        point: point.to_vec(),
    })
}

/// A `SubjectPublicKeyInfo` (SEQUENCE { SEQUENCE { OID, params }, BIT STRING }).
fn spki(der: &[u8]) -> Option<PublicKey> {
    let (0x30, contents, _) = der_element(der)? else {
        return None;
    };
    let items = der_children(contents)?;
    let [(0x30, algorithm), (0x03, bits)] = items.as_slice() else {
        return None;
    };
    let alg = der_children(algorithm)?;
    let (0x06, oid) = *alg.first()? else {
        return None;
    };
    // A BIT STRING's first byte is the count of unused bits: 0 for a key.
    let (0, key) = bits.split_first().map(|(u, k)| (*u, k))? else {
        return None;
    };
    match oid {
        o if o == OID_RSA => rsa_pkcs1(key),
        o if o == OID_EC => {
            let curve = match alg.get(1) {
                Some((0x06, c)) if *c == OID_P256 => Curve::P256,
                Some((0x06, c)) if *c == OID_P384 => Curve::P384,
                _ => return None,
            };
            ec_point(curve, key)
        }
        o if o == OID_ED25519 && alg.len() == 1 => {
            (key.len() == 32).then(|| PublicKey::Ed25519(key.to_vec()))
        }
        _ => None,
    }
}

/// The SPKI inside an X.509 certificate (TBSCertificate's seventh field, after the optional version).
fn certificate_spki(der: &[u8]) -> Option<PublicKey> {
    let (0x30, cert, _) = der_element(der)? else {
        return None;
    };
    let (0x30, tbs, _) = der_element(cert)? else {
        return None;
    };
    let mut fields = der_children(tbs)?;
    if fields.first().is_some_and(|(tag, _)| *tag == 0xa0) {
        fields.remove(0);
    }
    // serialNumber, signature, issuer, validity, subject, subjectPublicKeyInfo
    let &(0x30, spki_contents) = fields.get(5)? else {
        return None;
    };
    let mut wrapped = vec![0x30];
    der_length(spki_contents.len(), &mut wrapped);
    wrapped.extend_from_slice(spki_contents);
    spki(&wrapped)
}

fn der_length(len: usize, out: &mut Vec<u8>) {
    if len < 0x80 {
        out.push(len as u8);
    } else {
        let bytes = (len as u32).to_be_bytes();
        let skip = bytes.iter().position(|&b| b != 0).unwrap_or(3);
        out.push(0x80 | (4 - skip) as u8);
        out.extend_from_slice(&bytes[skip..]);
    }
}

/// A public key from PEM: `PUBLIC KEY` (SPKI: RSA, EC P-256/P-384, Ed25519), `RSA PUBLIC KEY` (PKCS#1) or
/// `CERTIFICATE` (its SPKI). The first PEM block is read. Private keys and anything else are refused.
pub fn pem_public_key(pem: &str) -> Option<PublicKey> {
    let begin = pem.find("-----BEGIN ")?;
    let after = &pem[begin + 11..];
    let label_end = after.find("-----")?;
    let label = &after[..label_end];
    let body = &after[label_end + 5..];
    let end = body.find(&format!("-----END {label}-----"))?;
    let text: String = body[..end]
        .chars()
        .filter(|c| !c.is_ascii_whitespace())
        .collect();
    let der = STANDARD.decode(text).ok()?;
    match label {
        "PUBLIC KEY" => spki(&der),
        "RSA PUBLIC KEY" => rsa_pkcs1(&der),
        "CERTIFICATE" => certificate_spki(&der),
        _ => None,
    }
}

/// A public key from a JWK (RSA, EC P-256/P-384, OKP Ed25519). Symmetric and unknown keys: `None`.
pub fn jwk_public_key(jwk: &Jwk) -> Option<PublicKey> {
    let b64 = |s: &str| URL_SAFE_NO_PAD.decode(s.trim_end_matches('=')).ok();
    match &jwk.algorithm {
        AlgorithmParameters::RSA(p) => rsa_components(&b64(&p.n)?, &b64(&p.e)?),
        AlgorithmParameters::EllipticCurve(p) => {
            let curve = match p.curve {
                EllipticCurve::P256 => Curve::P256,
                EllipticCurve::P384 => Curve::P384,
                _ => return None,
            };
            let (x, y) = (b64(&p.x)?, b64(&p.y)?);
            let mut point = vec![0x04];
            point.extend_from_slice(&x);
            point.extend_from_slice(&y);
            ec_point(curve, &point)
        }
        AlgorithmParameters::OctetKeyPair(p) if p.curve == EllipticCurve::Ed25519 => {
            let x = b64(&p.x)?;
            (x.len() == 32).then_some(PublicKey::Ed25519(x))
        }
        _ => None,
    }
}

// ---------------------------------------------------------------------------------------------------
// The native backend.

/// RustCrypto (through jsonwebtoken's `rust_crypto` provider, and the `pbkdf2` crate).
#[cfg(feature = "rust-crypto")]
#[derive(Debug, Clone, Copy, Default)]
pub struct RustCrypto;

#[cfg(feature = "rust-crypto")]
impl RustCrypto {
    /// [`Crypto::verify`], synchronously.
    pub fn verify_sync(
        alg: Algorithm,
        key: &PublicKey,
        message: &[u8],
        signature: &[u8],
    ) -> Result<bool, CryptoError> {
        use jsonwebtoken::DecodingKey;
        let decoding = match key {
            PublicKey::Hmac(s) => return Ok(hmac_verify(alg, s, message, signature)),
            PublicKey::Rsa { n, e } => DecodingKey::from_rsa_raw_components(n, e),
            PublicKey::Ec { curve, point } => {
                if curve_of(alg) != Some(*curve) {
                    // ES384 with a P-256 key: no such signature can be valid.
                    return Ok(false);
                }
                DecodingKey::from_ec_der(point)
            }
            PublicKey::Ed25519(k) => DecodingKey::from_ed_der(k),
        };
        let encoded = URL_SAFE_NO_PAD.encode(signature);
        jsonwebtoken::crypto::verify(&encoded, message, &decoding, alg)
            .map_err(|e| CryptoError::Key(e.to_string()))
    }

    /// [`Crypto::pbkdf2_sha256`], synchronously.
    pub fn pbkdf2_sync(password: &[u8], salt: &[u8], iterations: u32) -> [u8; 32] {
        let mut out = [0u8; 32];
        pbkdf2::pbkdf2_hmac::<Sha256>(password, salt, iterations, &mut out);
        out
    }
}

#[cfg(feature = "rust-crypto")]
impl Crypto for RustCrypto {
    async fn verify(
        &self,
        alg: Algorithm,
        key: &PublicKey,
        message: &[u8],
        signature: &[u8],
    ) -> Result<bool, CryptoError> {
        Self::verify_sync(alg, key, message, signature)
    }

    async fn pbkdf2_sha256(
        &self,
        password: &[u8],
        salt: &[u8],
        iterations: u32,
    ) -> Result<[u8; 32], CryptoError> {
        Ok(Self::pbkdf2_sync(password, salt, iterations))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    #[cfg(target_arch = "wasm32")]
    use wasm_bindgen_test::wasm_bindgen_test as test;

    const RSA_PUB: &str = include_str!("testdata/rsa.pub");
    const EC_PUB: &str = include_str!("testdata/ec.pub");
    const ED_PUB: &str = include_str!("testdata/ed.pub");
    const RSA_KEY: &str = include_str!("testdata/rsa.key");

    /// Poll a future that never waits (the native backend's) to its end.
    #[cfg(feature = "rust-crypto")]
    fn ready<F: std::future::Future>(f: F) -> F::Output {
        use std::task::{Context, Poll, RawWaker, RawWakerVTable, Waker};
        fn raw() -> RawWaker {
            RawWaker::new(std::ptr::null(), &VTABLE)
        }
        static VTABLE: RawWakerVTable = RawWakerVTable::new(|_| raw(), |_| {}, |_| {}, |_| {});
        // SAFETY: the vtable's functions do nothing and never read the data pointer.
        let waker = unsafe { Waker::from_raw(raw()) };
        let mut f = std::pin::pin!(f);
        match f.as_mut().poll(&mut Context::from_waker(&waker)) {
            Poll::Ready(v) => v,
            Poll::Pending => panic!("the native backend never waits"),
        }
    }

    #[test]
    fn pem_keys_of_every_kind_are_read() {
        let Some(PublicKey::Rsa { n, e }) = pem_public_key(RSA_PUB) else {
            panic!("RSA SPKI")
        };
        assert_eq!((n.len(), e.as_slice()), (256, &[1u8, 0, 1][..]));
        assert!(matches!(
            pem_public_key(EC_PUB),
            Some(PublicKey::Ec { curve: Curve::P256, ref point }) if point.len() == 65
        ));
        assert!(matches!(pem_public_key(ED_PUB), Some(PublicKey::Ed25519(ref k)) if k.len() == 32));
        // PKCS#1: the SPKI's BIT STRING, re-armoured.
        let der = STANDARD
            .decode(
                RSA_PUB
                    .lines()
                    .filter(|l| !l.starts_with("-----"))
                    .collect::<String>(),
            )
            .unwrap();
        let pkcs1 = &der[24..]; // SEQUENCE(4) + AlgorithmIdentifier(15) + BIT STRING header(5)
        let pem = format!(
            "-----BEGIN RSA PUBLIC KEY-----\n{}\n-----END RSA PUBLIC KEY-----\n",
            STANDARD.encode(pkcs1)
        );
        assert_eq!(pem_public_key(&pem), pem_public_key(RSA_PUB));
    }

    #[test]
    fn private_keys_and_garbage_are_refused() {
        assert_eq!(pem_public_key(RSA_KEY), None);
        assert_eq!(pem_public_key("not a key"), None);
        assert_eq!(
            pem_public_key("-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n"),
            None
        );
        // Truncated DER.
        let cut: String = EC_PUB.lines().take(2).collect::<Vec<_>>().join("\n");
        assert_eq!(
            pem_public_key(&format!("{cut}\n-----END PUBLIC KEY-----\n")),
            None
        );
    }

    #[test]
    fn jwk_keys_are_checked_for_shape() {
        let jwk = |v: serde_json::Value| serde_json::from_value::<Jwk>(v).unwrap();
        let Some(PublicKey::Ec { point, .. }) = pem_public_key(EC_PUB) else {
            panic!()
        };
        let (x, y) = (
            URL_SAFE_NO_PAD.encode(&point[1..33]),
            URL_SAFE_NO_PAD.encode(&point[33..]),
        );
        let ec = jwk(serde_json::json!({"kty": "EC", "crv": "P-256", "x": x, "y": y}));
        assert_eq!(jwk_public_key(&ec), pem_public_key(EC_PUB));
        // A P-384 JWK with P-256 coordinates does not have the curve's point size.
        let wrong = jwk(serde_json::json!({"kty": "EC", "crv": "P-384", "x": x, "y": y}));
        assert_eq!(jwk_public_key(&wrong), None);
        let oct = jwk(serde_json::json!({"kty": "oct", "k": "c2VjcmV0"}));
        assert_eq!(jwk_public_key(&oct), None);
    }

    #[test]
    fn cache_ids_depend_on_the_algorithm_and_debug_hides_secrets() {
        let k = pem_public_key(RSA_PUB).unwrap();
        assert_ne!(k.cache_id(Algorithm::RS256), k.cache_id(Algorithm::PS256));
        assert_eq!(k.cache_id(Algorithm::RS256).len(), 64);
        let secret = PublicKey::Hmac(b"hunter2".to_vec());
        assert!(!format!("{secret:?}").contains("hunter2"));
    }

    #[test]
    fn hmac_verifies_in_rust() {
        let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(b"key").unwrap();
        mac.update(b"message");
        let sig = mac.finalize().into_bytes();
        assert!(hmac_verify(Algorithm::HS256, b"key", b"message", &sig));
        assert!(!hmac_verify(Algorithm::HS256, b"key", b"messagf", &sig));
        assert!(!hmac_verify(Algorithm::HS384, b"key", b"message", &sig));
        assert!(!hmac_verify(Algorithm::RS256, b"key", b"message", &sig));
    }

    #[cfg(feature = "rust-crypto")]
    #[test]
    fn native_backend_pbkdf2_matches_the_rfc_vector_and_refuses_curve_mismatch() {
        // RFC 7914 section 11 (PBKDF2-HMAC-SHA256, "passwd"/"salt", 1 iteration), first 32 bytes.
        let out = ready(RustCrypto.pbkdf2_sha256(b"passwd", b"salt", 1)).unwrap();
        assert_eq!(
            super::super::hex(&out),
            "55ac046e56e3089fec1691c22544b605f94185216dde0465e68b9d57c20dacbc"
        );
        let ec = pem_public_key(EC_PUB).unwrap();
        assert_eq!(
            ready(RustCrypto.verify(Algorithm::ES384, &ec, b"m", &[1; 96])),
            Ok(false)
        );
    }
}
