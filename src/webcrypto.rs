#![cfg_attr(feature = "rust-crypto", allow(dead_code))]
//! The Worker's crypto backend: WebCrypto (`crypto.subtle`), which the runtime implements natively
//! (BoringSSL), for RSA (PKCS#1 v1.5 and PSS), ECDSA P-256/P-384, Ed25519 and PBKDF2. HMAC and SHA-2 stay
//! in Rust (`edgegate_core::auth::crypto`). Measurements and choices: docs/authentication.md, "Where
//! the crypto runs".
//!
//! Where the runtime offers node:crypto (the `nodejs_compat` compatibility flag, set in wrangler.toml), a
//! signature with an already imported key is checked by node:crypto's synchronous `verify` on the same
//! `CryptoKey` (BoringSSL, like WebCrypto): the request's future then goes on without a pause, where a
//! WebCrypto promise costs an asynchronous hop (wasm-bindgen's callbacks, a microtask, a second poll of the
//! request). Without the flag, and for a key's first token (the import is asynchronous) and RSA-PSS, the
//! WebCrypto promise is awaited as before; both give the same answers.
//!
//! Keys are parsed once per isolate ([`parsed_key`], keyed by the text they are read from: the credential
//! record or the JWK) and numbered; imported keys are cached per isolate (a JS `Map`, at most
//! [`KEY_CACHE_CAPACITY`] keys, the oldest import dropped first) under that number and the algorithm, so
//! neither parsing, nor `importKey`, nor a digest of the key material is paid per token. A key that fails
//! to parse or import is not cached.

use edgegate_core::auth::crypto::{Algorithm, Crypto, CryptoError, Curve, PublicKey};
use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::rc::Rc;
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
// The JWS algorithms by the numbers Rust passes (alg_index in src/webcrypto.rs), and the key kinds and curves.
const ALGS = ["RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "EdDSA"];
const KINDS = ["rsa", "ec", "ed"];
const CURVES = ["", "P-256", "P-384"];

// WebCrypto's import and verify parameters for a JWS algorithm name and key curve.
function params(alg, curve) {
  const hash = "SHA-" + alg.slice(2);
  switch (alg.slice(0, 2)) {
    case "RS": return [{ name: "RSASSA-PKCS1-v1_5", hash }, { name: "RSASSA-PKCS1-v1_5" }];
    case "PS": return [{ name: "RSA-PSS", hash }, { name: "RSA-PSS", saltLength: Number(alg.slice(2)) / 8 }];
    case "ES": return [{ name: "ECDSA", namedCurve: curve }, { name: "ECDSA", hash }];
    case "Ed": return [{ name: "Ed25519" }, { name: "Ed25519" }];
  }
  throw new Error("unsupported algorithm " + alg);
}
const VERIFY_PARAMS = ALGS.map((alg) => params(alg, "")[1]);

function b64url(bytes) {
  let s = "";
  for (let i = 0; i < bytes.length; i++) s += String.fromCharCode(bytes[i]);
  return btoa(s).replaceAll("+", "-").replaceAll("/", "_").replace(/=+$/, "");
}

// The CryptoKey in `slot` (a number for the key and algorithm): the key itself once imported, a promise of
// it while the import runs (concurrent tokens share it). Kind "rsa": a = n, b = e; "ec": a = SEC1 point;
// "ed": a = raw key.
function cryptoKey(slot, alg, kind, curve, a, b, capacity) {
  const [importParams] = params(ALGS[alg], CURVES[curve]);
  const key = KINDS[kind] === "rsa"
    ? crypto.subtle.importKey("jwk", { kty: "RSA", n: b64url(a), e: b64url(b), ext: true }, importParams, false, ["verify"])
    : crypto.subtle.importKey("raw", a.slice(), importParams, false, ["verify"]);
  key.then((k) => {
    if (keys.get(slot) === key) keys.set(slot, k);
  }, () => keys.delete(slot));
  if (keys.size >= capacity) keys.delete(keys.keys().next().value);
  keys.set(slot, key);
  return key;
}

// node:crypto, where the runtime offers it (the `nodejs_compat` compatibility flag): its `verify` answers
// synchronously, with the same BoringSSL as WebCrypto, so a new token costs no asynchronous hop (a promise,
// wasm-bindgen's callbacks and a second poll of the request). Looked up on the first verification; null
// without it (WebCrypto's promise then, as before).
let node;
// An imported CryptoKey -> its node KeyObject (the same key) carrying node's verify options, or null when
// node cannot verify with it (RSA-PSS: WebCrypto's PSS keys verify as false through node here).
const nodeKeys = new WeakMap();
const NODE_HASH = ["sha256", "sha384", "sha512", null, null, null, "sha256", "sha384", undefined];

// true or false, or undefined when node:crypto gave no answer (then WebCrypto decides).
function verifyNow(key, alg, data, sig) {
  let k = nodeKeys.get(key);
  if (k === undefined) {
    k = null;
    if (nodeCrypto() !== null && NODE_HASH[alg] !== null) {
      try {
        k = node.KeyObject.from(key);
        // verify() reads its options from the key object it is given.
        if (ALGS[alg].startsWith("ES")) k.dsaEncoding = "ieee-p1363";
      } catch {
        k = null;
      }
    }
    nodeKeys.set(key, k);
  }
  if (k === null) return undefined;
  try {
    return node.verify(NODE_HASH[alg], data, k, sig);
  } catch {
    return undefined;
  }
}

// true (valid) or false (invalid) when known at once (node:crypto, key already imported); otherwise a
// promise of true, false or 2 (the key could not be imported), rejected when WebCrypto fails. The byte
// arrays are views of wasm memory: read at once, or copied before anything is awaited (WebCrypto copies
// its own arguments when called). With the key already imported, the promise is WebCrypto's own (no
// extra reactions).
export function verify(id, alg, kind, curve, a, b, data, sig, capacity) {
  const slot = id * 16 + alg;
  let key = keys.get(slot);
  if (key !== undefined && !(key instanceof Promise)) {
    const now = verifyNow(key, alg, data, sig);
    if (now !== undefined) return now;
    return crypto.subtle.verify(VERIFY_PARAMS[alg], key, sig.slice(), data.slice());
  }
  const message = data.slice();
  const signature = sig.slice();
  if (key === undefined) {
    try {
      key = cryptoKey(slot, alg, kind, curve, a, b, capacity);
    } catch (e) {
      return Promise.resolve(IMPORT_FAILED);
    }
  }
  return key.then(
    (k) => crypto.subtle.verify(VERIFY_PARAMS[alg], k, signature, message),
    () => IMPORT_FAILED,
  );
}

function nodeCrypto() {
  if (node === undefined) {
    try {
      node = globalThis.process?.getBuiltinModule?.("node:crypto") ?? null;
    } catch {
      node = null;
    }
  }
  return node;
}

// PBKDF2-HMAC-SHA256, 32 bytes, into `out` (a view of wasm memory): true when done at once (node:crypto's
// pbkdf2Sync, the same BoringSSL as WebCrypto, without two promises and the hops back into the request);
// otherwise a promise of the bytes (WebCrypto), which Rust copies. `password` and `salt` are views of wasm
// memory: read at once or copied before anything is awaited.
export function pbkdf2(password, salt, iterations, out) {
  const n = nodeCrypto();
  if (n !== null) {
    try {
      out.set(n.pbkdf2Sync(password, salt, iterations, 32, "sha256"));
      return true;
    } catch {
      // WebCrypto decides.
    }
  }
  const p = password.slice();
  const s = salt.slice();
  return crypto.subtle.importKey("raw", p, "PBKDF2", false, ["deriveBits"]).then((key) =>
    crypto.subtle.deriveBits({ name: "PBKDF2", hash: "SHA-256", salt: s, iterations }, key, 256)).then((bits) =>
    new Uint8Array(bits));
}

export function cachedKeys() {
  return keys.size;
}
"#)]
extern "C" {
    #[wasm_bindgen(js_name = verify)]
    #[allow(clippy::too_many_arguments)]
    fn js_verify(
        id: u32,
        alg: u32,
        kind: u32,
        curve: u32,
        a: &[u8],
        b: &[u8],
        data: &[u8],
        sig: &[u8],
        capacity: u32,
    ) -> JsValue;

    #[wasm_bindgen(js_name = pbkdf2)]
    fn js_pbkdf2(password: &[u8], salt: &[u8], iterations: u32, out: &mut [u8]) -> JsValue;
}

/// Most parsed keys an isolate keeps ([`parsed_key`]); when full, all are dropped.
pub const PARSED_KEY_CAPACITY: usize = 1024;

/// A credential's key parsed once per isolate, with the algorithm a JWK pins and the isolate-unique
/// number that names it in the cache of imported keys.
pub struct ParsedKey {
    pub key: PublicKey,
    pub pinned: Option<Algorithm>,
    pub id: u32,
}

thread_local! {
    static PARSED: RefCell<HashMap<String, Rc<ParsedKey>>> = RefCell::new(HashMap::new());
    static DIGEST_IDS: RefCell<HashMap<String, u32>> = RefCell::new(HashMap::new());
    static NEXT_ID: Cell<u32> = const { Cell::new(1) };
}

fn next_id() -> u32 {
    NEXT_ID.with(|n| {
        let id = n.get();
        n.set(id.wrapping_add(1));
        id
    })
}

/// The key `parse` reads from `source` (the whole text it depends on: a credential record, a JWK), parsed
/// once per isolate. Errors are not cached.
pub fn parsed_key<E>(
    source: &str,
    parse: impl FnOnce() -> Result<(PublicKey, Option<Algorithm>), E>,
) -> Result<Rc<ParsedKey>, E> {
    if let Some(k) = PARSED.with(|c| c.borrow().get(source).cloned()) {
        return Ok(k);
    }
    let (key, pinned) = parse()?;
    let parsed = Rc::new(ParsedKey {
        key,
        pinned,
        id: next_id(),
    });
    PARSED.with(|c| {
        let mut c = c.borrow_mut();
        if c.len() >= PARSED_KEY_CAPACITY {
            c.clear();
        }
        c.insert(source.to_string(), parsed.clone());
    });
    Ok(parsed)
}

/// The backend for verifying with `key`: WebCrypto finds its imported key by `key.id`, without digesting
/// the key material per token.
#[cfg(not(feature = "rust-crypto"))]
pub fn backend_for(key: &ParsedKey) -> Backend {
    WebCrypto {
        key_id: Some(key.id),
    }
}
#[cfg(feature = "rust-crypto")]
pub fn backend_for(_key: &ParsedKey) -> Backend {
    Backend::default()
}

fn alg_index(alg: Algorithm) -> Option<u32> {
    Some(match alg {
        Algorithm::RS256 => 0,
        Algorithm::RS384 => 1,
        Algorithm::RS512 => 2,
        Algorithm::PS256 => 3,
        Algorithm::PS384 => 4,
        Algorithm::PS512 => 5,
        Algorithm::ES256 => 6,
        Algorithm::ES384 => 7,
        Algorithm::EdDSA => 8,
        _ => return None,
    })
}

/// WebCrypto, for [`edgegate_core::auth::crypto::Crypto`].
/// `key_id`: the [`ParsedKey::id`] of the key verified with (from [`backend_for`]); without it, the key
/// is named by a SHA-256 of its material ([`PublicKey::cache_id`]).
#[derive(Debug, Clone, Copy, Default)]
pub struct WebCrypto {
    key_id: Option<u32>,
}

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
        let (kind, curve, a, b): (u32, u32, &[u8], &[u8]) = match key {
            PublicKey::Rsa { n, e } => (0, 0, n, e),
            PublicKey::Ec { curve, point } => {
                if edgegate_core::auth::crypto::curve_of(alg) != Some(*curve) {
                    // ES384 with a P-256 key: no such signature can be valid.
                    return Ok(false);
                }
                let c = match curve {
                    Curve::P256 => 1,
                    Curve::P384 => 2,
                };
                (1, c, point, &[])
            }
            PublicKey::Ed25519(k) => (2, 0, k, &[]),
            PublicKey::Hmac(_) => return Err(CryptoError::Key("HMAC is verified in Rust".into())),
        };
        let Some(alg_ix) = alg_index(alg) else {
            return Ok(false);
        };
        let id = match self.key_id {
            Some(id) => id,
            None => DIGEST_IDS.with(|c| {
                let digest = key.cache_id(alg);
                let mut c = c.borrow_mut();
                if c.len() >= PARSED_KEY_CAPACITY {
                    c.clear();
                }
                *c.entry(digest).or_insert_with(next_id)
            }),
        };
        let outcome = js_verify(
            id,
            alg_ix,
            kind,
            curve,
            a,
            b,
            message,
            signature,
            KEY_CACHE_CAPACITY,
        );
        // Known at once (node:crypto): no await, so the request's future goes on without a pause.
        if let Some(valid) = outcome.as_bool() {
            return Ok(valid);
        }
        let promise: js_sys::Promise = js_sys::Promise::unchecked_from_js(outcome);
        let outcome: JsValue = JsFuture::from(promise).await.map_err(backend_error)?;
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
        let mut out = [0u8; 32];
        // Known at once (node:crypto's pbkdf2Sync): written into `out`, nothing awaited.
        let outcome = js_pbkdf2(password, salt, iterations, &mut out);
        if outcome.as_bool() == Some(true) {
            return Ok(out);
        }
        let promise: js_sys::Promise = js_sys::Promise::unchecked_from_js(outcome);
        let bytes = JsFuture::from(promise).await.map_err(backend_error)?;
        let array = js_sys::Uint8Array::new(&bytes);
        if array.length() != 32 {
            return Err(CryptoError::Backend(
                "PBKDF2 returned a wrong length".into(),
            ));
        }
        array.copy_to(&mut out);
        Ok(out)
    }
}
