#![cfg_attr(feature = "rust-crypto", allow(dead_code))]
//! The Worker's crypto backend: WebCrypto (`crypto.subtle`), which the runtime implements natively
//! (BoringSSL), for RSA (PKCS#1 v1.5 and PSS), ECDSA P-256/P-384, Ed25519 and PBKDF2. HMAC and SHA-2 stay
//! in Rust (`edgegate_core::auth::crypto`). Measurements and choices: docs/authentication.md, "Where
//! the crypto runs".
//!
//! Imported keys are cached per isolate (a JS `Map`, at most [`KEY_CACHE_CAPACITY`] keys, the oldest
//! import dropped first), keyed by a SHA-256 of the algorithm and the key material
//! ([`PublicKey::cache_id`]), so `importKey` is paid once per key and algorithm, not per token. A key
//! that fails to import is not cached.

use edgegate_core::auth::crypto::{Algorithm, Crypto, CryptoError, PublicKey};
use wasm_bindgen::prelude::*;
use wasm_bindgen_futures::JsFuture;

/// The backend the Worker uses: WebCrypto. With the cargo feature `rust-crypto` (for measurements only,
/// bench/crypto.mjs), RustCrypto compiled into the wasm instead.
#[cfg(not(feature = "rust-crypto"))]
pub type Backend = WebCrypto;
#[cfg(feature = "rust-crypto")]
pub type Backend = edgegate_core::auth::crypto::RustCrypto;

/// Most imported keys an isolate keeps.
pub const KEY_CACHE_CAPACITY: u32 = 1024;

#[wasm_bindgen(inline_js = r#"
const keys = new Map();
const IMPORT_FAILED = 2;

// WebCrypto's import and verify parameters for a JWS algorithm name and key kind.
function params(alg, kind, curve) {
  const hash = "SHA-" + alg.slice(2);
  switch (alg.slice(0, 2)) {
    case "RS": return [{ name: "RSASSA-PKCS1-v1_5", hash }, { name: "RSASSA-PKCS1-v1_5" }];
    case "PS": return [{ name: "RSA-PSS", hash }, { name: "RSA-PSS", saltLength: Number(alg.slice(2)) / 8 }];
    case "ES": return [{ name: "ECDSA", namedCurve: curve }, { name: "ECDSA", hash }];
    case "Ed": return [{ name: "Ed25519" }, { name: "Ed25519" }];
  }
  throw new Error("unsupported algorithm " + alg);
}

function b64url(bytes) {
  let s = "";
  for (let i = 0; i < bytes.length; i++) s += String.fromCharCode(bytes[i]);
  return btoa(s).replaceAll("+", "-").replaceAll("/", "_").replace(/=+$/, "");
}

// The CryptoKey for `id`: the key itself once imported, a promise of it while the import runs (concurrent
// tokens share it). `kind`: "rsa" (a = n, b = e), "ec" (a = SEC1 point, curve), "ed" (a = raw key).
function cryptoKey(id, alg, kind, curve, a, b, capacity) {
  let key = keys.get(id);
  if (key !== undefined) return key;
  const [importParams] = params(alg, kind, curve);
  key = kind === "rsa"
    ? crypto.subtle.importKey("jwk", { kty: "RSA", n: b64url(a), e: b64url(b), ext: true }, importParams, false, ["verify"])
    : crypto.subtle.importKey("raw", a.slice(), importParams, false, ["verify"]);
  key.then((k) => {
    if (keys.get(id) === key) keys.set(id, k);
  }, () => keys.delete(id));
  if (keys.size >= capacity) keys.delete(keys.keys().next().value);
  keys.set(id, key);
  return key;
}

const VERIFY_PARAMS = new Map();

// Resolves to true (valid), false (invalid) or 2 (the key could not be imported); rejects when WebCrypto
// fails. The byte arrays are views of wasm memory: they are copied before anything is awaited. With the key
// already imported, the promise is WebCrypto's own (no extra reactions).
export function verify(id, alg, kind, curve, a, b, data, sig, capacity) {
  const message = data.slice();
  const signature = sig.slice();
  let key;
  try {
    key = cryptoKey(id, alg, kind, curve, a, b, capacity);
  } catch (e) {
    return Promise.resolve(IMPORT_FAILED);
  }
  let verifyParams = VERIFY_PARAMS.get(alg);
  if (verifyParams === undefined) VERIFY_PARAMS.set(alg, (verifyParams = params(alg, kind, curve)[1]));
  if (!(key instanceof Promise)) return crypto.subtle.verify(verifyParams, key, signature, message);
  return key.then(
    (k) => crypto.subtle.verify(verifyParams, k, signature, message),
    () => IMPORT_FAILED,
  );
}

// PBKDF2-HMAC-SHA256, 32 bytes.
export async function pbkdf2(password, salt, iterations) {
  const s = salt.slice();
  const key = await crypto.subtle.importKey("raw", new TextEncoder().encode(password), "PBKDF2", false, ["deriveBits"]);
  return new Uint8Array(await crypto.subtle.deriveBits({ name: "PBKDF2", hash: "SHA-256", salt: s, iterations }, key, 256));
}

export function cachedKeys() {
  return keys.size;
}
"#)]
extern "C" {
    #[wasm_bindgen(js_name = verify)]
    #[allow(clippy::too_many_arguments)]
    fn js_verify(
        id: &str,
        alg: &str,
        kind: &str,
        curve: &str,
        a: &[u8],
        b: &[u8],
        data: &[u8],
        sig: &[u8],
        capacity: u32,
    ) -> js_sys::Promise;

    #[wasm_bindgen(js_name = pbkdf2)]
    fn js_pbkdf2(password: &str, salt: &[u8], iterations: u32) -> js_sys::Promise;
}

/// WebCrypto, for [`edgegate_core::auth::crypto::Crypto`].
#[derive(Debug, Clone, Copy, Default)]
pub struct WebCrypto;

fn backend_error(e: JsValue) -> CryptoError {
    let text = js_sys::Error::from(e)
        .message()
        .as_string()
        .unwrap_or_else(|| "crypto.subtle failed".into());
    CryptoError::Backend(text)
}

impl Crypto for WebCrypto {
    async fn verify(
        &self,
        alg: Algorithm,
        key: &PublicKey,
        message: &[u8],
        signature: &[u8],
    ) -> Result<bool, CryptoError> {
        let (kind, curve, a, b): (&str, &str, &[u8], &[u8]) = match key {
            PublicKey::Rsa { n, e } => ("rsa", "", n, e),
            PublicKey::Ec { curve, point } => {
                if edgegate_core::auth::crypto::curve_of(alg) != Some(*curve) {
                    // ES384 with a P-256 key: no such signature can be valid.
                    return Ok(false);
                }
                ("ec", curve.name(), point, &[])
            }
            PublicKey::Ed25519(k) => ("ed", "", k, &[]),
            PublicKey::Hmac(_) => return Err(CryptoError::Key("HMAC is verified in Rust".into())),
        };
        let id = key.cache_id(alg);
        let promise = js_verify(
            &id,
            &format!("{alg:?}"),
            kind,
            curve,
            a,
            b,
            message,
            signature,
            KEY_CACHE_CAPACITY,
        );
        let outcome = JsFuture::from(promise).await.map_err(backend_error)?;
        match outcome.as_bool() {
            Some(valid) => Ok(valid),
            None => Err(CryptoError::Key(format!(
                "WebCrypto could not import the {alg:?} key"
            ))),
        }
    }

    async fn pbkdf2_sha256(
        &self,
        password: &[u8],
        salt: &[u8],
        iterations: u32,
    ) -> Result<[u8; 32], CryptoError> {
        // Passwords reach here as UTF-8 text (basic::parse_authorization).
        let password = std::str::from_utf8(password)
            .map_err(|_| CryptoError::Backend("password is not UTF-8".into()))?;
        let bytes = JsFuture::from(js_pbkdf2(password, salt, iterations))
            .await
            .map_err(backend_error)?;
        let array = js_sys::Uint8Array::new(&bytes);
        let mut out = [0u8; 32];
        if array.length() != 32 {
            return Err(CryptoError::Backend(
                "PBKDF2 returned a wrong length".into(),
            ));
        }
        array.copy_to(&mut out);
        Ok(out)
    }
}
