//! Google Cloud access tokens for Vertex AI providers, from a service account's JSON key file held in
//! a Worker secret (the provider's `key_secret`).
//!
//! The core builds the assertion (`edgegate_core::ai::vertex`): header `{"alg":"RS256","typ":"JWT"}`,
//! claims `iss` = the account's `client_email`, `scope` = cloud-platform, `aud` = its `token_uri`,
//! `iat`, `exp` = `iat` + 3600. Here it is signed with WebCrypto (RSASSA-PKCS1-v1_5 / SHA-256: the
//! Worker's core build has no RSA code, docs/authentication.md "Where the crypto runs") and posted to
//! the token endpoint (`grant_type=urn:ietf:params:oauth:grant-type:jwt-bearer`). The token is kept
//! per isolate ([`vertex::TokenCache`]) until 5 minutes before it expires, then refreshed in the
//! background while it is still used. Requests that find no usable token while one is being fetched
//! wait for that fetch (one token request per isolate however many requests arrive at once); the
//! fetch runs as its own task kept alive with `waitUntil`, and wakes each waiter through a promise of
//! the waiter's own request (the pattern of the JWKS fetch in src/auth.rs).
//!
//! The key file's text never reaches a log, a response or an error: errors name the provider and
//! the secret, and say what is wrong.

use crate::exchange::Exchange;
use crate::runtime;
use edgegate_core::ai::vertex::{self, AccessToken, ServiceAccount, TokenPlan};
use edgegate_core::ai::{AiError, ProviderKind, ProviderTarget};
use futures_util::future::select;
use std::borrow::Cow;
use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::hash::{Hash, Hasher};
use std::rc::Rc;
use std::time::Duration;
use wasm_bindgen::prelude::*;
use wasm_bindgen_futures::JsFuture;

#[wasm_bindgen(inline_js = r#"
// RS256 (RSASSA-PKCS1-v1_5 with SHA-256) signature of `data` with a PKCS#8 private key: a promise of
// the signature bytes, rejected when WebCrypto refuses the key.
export async function signRs256(pkcs8, data) {
  const key = await crypto.subtle.importKey(
    "pkcs8", pkcs8, { name: "RSASSA-PKCS1-v1_5", hash: "SHA-256" }, false, ["sign"]);
  return new Uint8Array(await crypto.subtle.sign("RSASSA-PKCS1-v1_5", key, data));
}

// POST a form: a promise of [status, body text], rejected when the endpoint cannot be reached or
// does not answer within timeoutMs.
export async function postForm(url, body, timeoutMs) {
  const abort = new AbortController();
  const timer = setTimeout(() => abort.abort(), timeoutMs);
  try {
    const r = await fetch(url, {
      method: "POST",
      headers: { "content-type": "application/x-www-form-urlencoded", accept: "application/json" },
      body,
      signal: abort.signal,
    });
    return [r.status, await r.text()];
  } finally {
    clearTimeout(timer);
  }
}
"#)]
extern "C" {
    /// Takes the bytes by value: JS gets its own copies.
    #[wasm_bindgen(js_name = signRs256)]
    fn sign_rs256(pkcs8: Vec<u8>, data: Vec<u8>) -> js_sys::Promise;
    #[wasm_bindgen(js_name = postForm)]
    fn post_form(url: &str, body: &str, timeout_ms: f64) -> js_sys::Promise;
}

thread_local! {
    static TOKENS: RefCell<vertex::TokenCache> = RefCell::new(vertex::TokenCache::new());
    /// Requests waiting for the token request under way, by account: (waiter id, its promise's resolve).
    static WAITERS: RefCell<HashMap<u64, Vec<(u64, js_sys::Function)>>> = RefCell::new(HashMap::new());
    static NEXT_WAITER: Cell<u64> = const { Cell::new(0) };
    /// Key files parsed once per isolate, by digest of their text.
    static ACCOUNTS: RefCell<HashMap<u64, Rc<ServiceAccount>>> = RefCell::new(HashMap::new());
}

/// Most key files remembered per isolate.
const MAX_ACCOUNTS: usize = 64;

fn digest(text: &str) -> u64 {
    let mut h = std::collections::hash_map::DefaultHasher::new();
    text.hash(&mut h);
    h.finish()
}

/// The service account of a Vertex target (its id in the caches and the parsed key file).
fn account(
    ex: &Exchange<'_>,
    target: &ProviderTarget,
) -> Result<(u64, Rc<ServiceAccount>), AiError> {
    let secret_name = target.key_secret.as_deref().unwrap_or("");
    let Some(text) = crate::ai::provider_key(ex, target)? else {
        return Err(misconfigured(
            target,
            "no key_secret names its service-account key",
        ));
    };
    let id = digest(&text);
    if let Some(sa) = ACCOUNTS.with(|a| a.borrow().get(&id).cloned()) {
        return Ok((id, sa));
    }
    match ServiceAccount::parse(&text) {
        Ok(sa) => {
            let sa = Rc::new(sa);
            ACCOUNTS.with(|a| {
                let mut a = a.borrow_mut();
                if a.len() >= MAX_ACCOUNTS {
                    a.clear();
                }
                a.insert(id, sa.clone());
            });
            Ok((id, sa))
        }
        Err(why) => {
            runtime::log_error(
                &serde_json::json!({
                    "event": "vertex_key_invalid",
                    "request_id": ex.request_id,
                    "provider": target.provider,
                    "secret": secret_name,
                    "error": why,
                })
                .to_string(),
            );
            Err(AiError {
                retryable: true,
                ..misconfigured(target, &format!("the Worker secret {secret_name} {why}"))
            })
        }
    }
}

fn misconfigured(target: &ProviderTarget, what: &str) -> AiError {
    AiError::new(
        502,
        "upstream_error",
        Some("gateway_misconfigured"),
        format!("provider {}: {what}", target.provider),
    )
}

/// `target` with its project filled from the service account's `project_id` when the configuration
/// sets none (other kinds: as it is).
pub(crate) fn resolve_target<'t>(
    ex: &Exchange<'_>,
    target: &'t ProviderTarget,
) -> Result<Cow<'t, ProviderTarget>, AiError> {
    if target.kind != ProviderKind::Vertex
        || target.vertex.as_ref().is_some_and(|v| v.project.is_some())
    {
        return Ok(Cow::Borrowed(target));
    }
    let (_, sa) = account(ex, target)?;
    let Some(project) = sa.project_id.clone().filter(|p| vertex::valid_project(p)) else {
        // The request builder says what is missing.
        return Ok(Cow::Borrowed(target));
    };
    let mut t = target.clone();
    t.vertex.get_or_insert_with(Box::default).project = Some(project);
    Ok(Cow::Owned(t))
}

/// An access token for a Vertex target: the isolate's, or a new one.
pub(crate) async fn access_token(
    ex: &Exchange<'_>,
    target: &ProviderTarget,
) -> Result<String, AiError> {
    let (id, sa) = account(ex, target)?;
    let plan = TOKENS.with(|c| c.borrow_mut().plan(id, runtime::now_ms()));
    match plan {
        TokenPlan::Use(token) => return Ok(token),
        TokenPlan::UseAndRefresh(token) => {
            // Not awaited: the refresh is kept alive with waitUntil.
            let _ = start_fetch(ex, &target.provider, id, sa);
            return Ok(token);
        }
        TokenPlan::Fetch => {
            let _ = JsFuture::from(start_fetch(ex, &target.provider, id, sa)).await;
        }
        TokenPlan::Wait { deadline } => wait_for_token(id, deadline).await,
    }
    TOKENS.with(|c| c.borrow().lookup(id, runtime::now_ms(), &target.provider))
}

/// The provider refused a token (401): forget it, so the next request fetches another.
pub(crate) fn refused(ex: &Exchange<'_>, target: &ProviderTarget) {
    if let Ok(Some(text)) = crate::ai::provider_key(ex, target) {
        let id = digest(&text);
        TOKENS.with(|c| c.borrow_mut().forget(id));
    }
}

/// Request a token (the cache recorded it as under way) as a task of its own, kept alive with
/// `waitUntil`: record its result, then wake the requests waiting for it.
fn start_fetch(
    ex: &Exchange<'_>,
    provider: &str,
    id: u64,
    sa: Rc<ServiceAccount>,
) -> js_sys::Promise {
    let provider = provider.to_string();
    let task = wasm_bindgen_futures::future_to_promise(async move {
        let started = runtime::now_ms();
        let result = request_token(&provider, &sa).await;
        let now = runtime::now_ms();
        let line = match &result {
            Ok(t) => serde_json::json!({"event": "vertex_token", "provider": provider,
                "expires_in": t.expires_in, "ms": (now - started).max(0.0) as u64}),
            Err(e) => serde_json::json!({"event": "vertex_token_failed", "provider": provider,
                "error": e.message, "ms": (now - started).max(0.0) as u64}),
        };
        // Record and wake in one step: a request planning after this sees the new token.
        TOKENS.with(|c| c.borrow_mut().fetched(id, result, now));
        let waiters = WAITERS.with(|w| w.borrow_mut().remove(&id).unwrap_or_default());
        let mut line = line;
        line["waiters"] = waiters.len().into();
        if line["event"] == "vertex_token" {
            runtime::log(&line.to_string());
        } else {
            runtime::log_error(&line.to_string());
        }
        for (_, resolve) in waiters {
            // Each promise belongs to its waiter's request; the runtime settles it there.
            let _ = resolve.call0(&JsValue::UNDEFINED);
        }
        Ok(JsValue::UNDEFINED)
    });
    let kept = task.clone();
    ex.ctx.wait_until(async move {
        let _ = JsFuture::from(kept).await;
    });
    task
}

/// Sign the assertion and exchange it for a token.
async fn request_token(provider: &str, sa: &ServiceAccount) -> Result<AccessToken, AiError> {
    let der = sa
        .pkcs8_der()
        .map_err(|why| vertex::token_error(provider, &format!("the key file {why}")))?;
    let now_s = (runtime::now_ms() / 1000.0).max(0.0) as u64;
    let input = sa.assertion_input(now_s);
    let signature = JsFuture::from(sign_rs256(der, input.as_bytes().to_vec()))
        .await
        .map_err(|_| {
            vertex::token_error(
                provider,
                "WebCrypto refused the service account's private_key (not an RSA PKCS#8 key)",
            )
        })?;
    let signature = js_sys::Uint8Array::new(&signature).to_vec();
    let body = vertex::token_request_body(&vertex::assertion(&input, &signature));
    let answer = JsFuture::from(post_form(
        &sa.token_uri,
        &body,
        vertex::TOKEN_FETCH_TIMEOUT_MS as f64,
    ))
    .await
    .map_err(|_| {
        vertex::token_error(
            provider,
            &format!(
                "the token endpoint could not be reached or did not answer within {} ms",
                vertex::TOKEN_FETCH_TIMEOUT_MS
            ),
        )
    })?;
    let answer = js_sys::Array::from(&answer);
    let status = answer.get(0).as_f64().unwrap_or(0.0) as u16;
    let text = answer.get(1).as_string().unwrap_or_default();
    vertex::parse_token_response(provider, status, text.as_bytes())
}

/// Wait for the token request under way for `id` to be recorded, or until `deadline` (ms since
/// the epoch), whichever comes first. The wait is a promise of this request, resolved by the
/// fetching task.
async fn wait_for_token(id: u64, deadline: f64) {
    let waiter = NEXT_WAITER.with(|n| {
        let w = n.get();
        n.set(w.wrapping_add(1));
        w
    });
    let woken = js_sys::Promise::new(&mut |resolve, _reject| {
        WAITERS.with(|w| {
            w.borrow_mut()
                .entry(id)
                .or_default()
                .push((waiter, resolve))
        });
    });
    // Take the resolver out again however the wait ends (a timeout, or this future dropped).
    struct Registered(u64, u64);
    impl Drop for Registered {
        fn drop(&mut self) {
            WAITERS.with(|w| {
                if let Ok(mut w) = w.try_borrow_mut() {
                    if let Some(list) = w.get_mut(&self.0) {
                        list.retain(|(i, _)| *i != self.1);
                        if list.is_empty() {
                            w.remove(&self.0);
                        }
                    }
                }
            });
        }
    }
    let _registered = Registered(id, waiter);
    let wait_ms = (deadline - runtime::now_ms()).clamp(
        0.0,
        vertex::TOKEN_FETCH_TIMEOUT_MS as f64 + vertex::GRACE_MS,
    );
    let timeout = worker::Delay::from(Duration::from_millis(wait_ms as u64));
    let woken = JsFuture::from(woken);
    futures_util::pin_mut!(woken);
    let _ = select(woken, timeout).await;
}
