//! Authentication and ACL phase: `key-auth`, `jwt`, `basic-auth`, `hmac-auth` (any one admits), then
//! `acl`.
//!
//! The checks are in `edgegate_core::auth`; this file does the I/O: KV reads of consumers and
//! credentials (through a bounded in-isolate cache that also remembers misses, for
//! `AUTH_CACHE_SECONDS`, default 30), JWKS fetches (policy in `edgegate_core::auth::jwks`: one fetch
//! per URL at a time, which the requests that need it wait for), and the edits to the upstream request
//! (identity headers, forged copies removed, hidden credentials).

use crate::config::KV_BINDING;
use crate::exchange::Exchange;
use crate::runtime;
use crate::webcrypto::{backend_for, parsed_key, Backend, ParsedKey};
use edgegate_core::auth::crypto::CryptoError;
use edgegate_core::auth::{
    self as core_auth, basic, cache::TtlCache, hmac, jwks, jwt, keyauth, records, AclConfig,
    AuthFailure, BasicAuthConfig, HmacAuthConfig, JwtConfig, KeyAuthConfig,
};
use edgegate_core::identity::Identity;
use edgegate_core::plugins::PluginInstance;
use edgegate_core::{ErrorKind, GatewayError};
use futures_util::future::{select, Either};
use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::rc::Rc;
use std::time::Duration;
use wasm_bindgen::JsValue;
use wasm_bindgen_futures::JsFuture;

const CACHE_VAR: &str = "AUTH_CACHE_SECONDS";
const DEFAULT_CACHE_SECONDS: f64 = 30.0;
const CACHE_CAPACITY: usize = 10_000;
const JWKS_TIMEOUT_MS: u64 = 5_000;

thread_local! {
    /// KV key -> value text, or `None` for "no such key".
    static LOOKUPS: RefCell<TtlCache<Option<Rc<str>>>> = RefCell::new(TtlCache::new(CACHE_CAPACITY));
    static JWKS: RefCell<jwks::JwksCache> = RefCell::new(jwks::JwksCache::new());
    /// Requests waiting for the JWKS fetch under way, by URL: (waiter id, its promise's resolve).
    static JWKS_WAITERS: RefCell<HashMap<String, Vec<(u64, js_sys::Function)>>> = RefCell::new(HashMap::new());
    static NEXT_WAITER: Cell<u64> = const { Cell::new(0) };
    /// Digests of (stored hash, password) pairs that verified, so a hot client costs one PBKDF2 per TTL.
    static VERIFIED: RefCell<TtlCache<()>> = RefCell::new(TtlCache::new(CACHE_CAPACITY));
    /// Digests of (token, credential, key) triples whose signature verified: a hot token costs one
    /// signature check per TTL (RS256 in wasm is about a millisecond). Claims (`exp`, `nbf`, ...) are
    /// still checked on every request.
    static JWT_VERIFIED: RefCell<TtlCache<()>> = RefCell::new(TtlCache::new(CACHE_CAPACITY));
}

/// Verify a token's signature and claims, or only its claims when this (token, credential, key) was
/// verified within the cache TTL. `verify` (a future: it parses the key material and runs the crypto
/// only when awaited) is awaited only when needed.
async fn verify_memoized(
    ex: &Exchange<'_>,
    config: &JwtConfig,
    token: &jwt::Token<'_>,
    memo_input: &str,
    verify: impl std::future::Future<Output = Result<(), jwt::JwtError>>,
) -> Result<(), jwt::JwtError> {
    let memo = core_auth::sha256_hex(memo_input.as_bytes());
    let now = runtime::now_ms();
    if JWT_VERIFIED
        .with(|c| c.borrow_mut().get(&memo, now))
        .is_some()
    {
        return jwt::check_claims(config, &token.claims, (now / 1000.0) as u64);
    }
    let result = verify.await;
    if result.is_ok() {
        let ttl = cache_ms(ex);
        JWT_VERIFIED.with(|c| c.borrow_mut().insert(memo, (), now, ttl));
    }
    result
}

/// A PBKDF2 hash checked when the username is unknown, so that unknown and known usernames cost the
/// same time.
const DUMMY_HASH: &str =
    "$pbkdf2-sha256$i=10000$ZWRnZWdhdGUtZHVtbXkhIQ$hmSLiWz8lumLBMyDd03ADwbk2CCKl/Iy8UNOI+JyOJs";

/// The caches' lifetime in ms, read from the environment once per isolate (a deployment's variables do
/// not change under a running isolate).
fn cache_ms(ex: &Exchange<'_>) -> f64 {
    thread_local! {
        static CACHE_MS: Cell<Option<f64>> = const { Cell::new(None) };
    }
    if let Some(ms) = CACHE_MS.with(Cell::get) {
        return ms;
    }
    let ms = ex
        .env
        .var(CACHE_VAR)
        .ok()
        .and_then(|v| v.to_string().trim().parse::<f64>().ok())
        .filter(|s| s.is_finite() && *s >= 0.0)
        .unwrap_or(DEFAULT_CACHE_SECONDS)
        * 1000.0;
    CACHE_MS.with(|c| c.set(Some(ms)));
    ms
}

/// WebCrypto itself failed (not a bad key or signature): a 500, logged without secrets.
fn crypto_error(plugin: &str, credential: &str, e: CryptoError) -> GatewayError {
    let (CryptoError::Key(what) | CryptoError::Backend(what)) = e;
    runtime::log_error(
        &serde_json::json!({"event": "auth_crypto_error", "plugin": plugin, "credential": credential, "error": what})
            .to_string(),
    );
    GatewayError::new(ErrorKind::Internal, "the credentials could not be checked")
}

/// A credential key WebCrypto would not import: the token is refused (401, as for any key problem) and
/// the operator is told which credential (never the key).
fn log_unusable_key(credential: &str) {
    runtime::log_error(
        &serde_json::json!({"event": "jwt_key_unusable", "credential": credential}).to_string(),
    );
}

fn store_error(what: &str) -> GatewayError {
    runtime::log_error(
        &serde_json::json!({"event": "auth_store_error", "error": what}).to_string(),
    );
    GatewayError::new(
        ErrorKind::Internal,
        "the credential store could not be read",
    )
}

/// A KV value, through the isolate's cache (hits and misses alike).
async fn kv_get(ex: &Exchange<'_>, key: &str) -> Result<Option<Rc<str>>, GatewayError> {
    let now = runtime::now_ms();
    if let Some(v) = LOOKUPS.with(|c| c.borrow_mut().get(key, now)) {
        return Ok(v);
    }
    let kv = ex
        .env
        .kv(KV_BINDING)
        .map_err(|e| store_error(&e.to_string()))?;
    let value = kv
        .get(key)
        .text()
        .await
        .map_err(|e| store_error(&format!("reading {key}: {e}")))?
        .map(Rc::<str>::from);
    let ttl = cache_ms(ex);
    LOOKUPS.with(|c| {
        c.borrow_mut()
            .insert(key.to_string(), value.clone(), runtime::now_ms(), ttl)
    });
    Ok(value)
}

async fn kv_json<T: serde::de::DeserializeOwned>(
    ex: &Exchange<'_>,
    key: &str,
) -> Result<Option<T>, GatewayError> {
    Ok(kv_record(ex, key).await?.map(|(record, _)| record))
}

/// A KV record, parsed, with the text it was read from.
async fn kv_record<T: serde::de::DeserializeOwned>(
    ex: &Exchange<'_>,
    key: &str,
) -> Result<Option<(T, Rc<str>)>, GatewayError> {
    match kv_get(ex, key).await? {
        None => Ok(None),
        Some(text) => serde_json::from_str(&text)
            .map(|record| Some((record, text)))
            .map_err(|e| store_error(&format!("{key} is not a valid record: {e}"))),
    }
}

async fn consumer_by_id(
    ex: &Exchange<'_>,
    id: &str,
) -> Result<Option<records::Consumer>, GatewayError> {
    if records::check_name("consumer id", id).is_err() {
        return Ok(None);
    }
    kv_json(ex, &records::consumer_key(id)).await
}

/// A consumer named by id or username (the `anonymous` setting accepts both).
async fn consumer_by_ref(
    ex: &Exchange<'_>,
    reference: &str,
) -> Result<Option<records::Consumer>, GatewayError> {
    if let Some(c) = consumer_by_id(ex, reference).await? {
        return Ok(Some(c));
    }
    if records::check_name("username", reference).is_err() {
        return Ok(None);
    }
    match kv_json::<records::NameIndex>(ex, &records::consumer_name_key(reference)).await? {
        Some(index) => consumer_by_id(ex, &index.id).await,
        None => Ok(None),
    }
}

/// What one auth plugin concluded.
enum Outcome {
    /// No credential of this plugin's kind in the request.
    Missing,
    Failed(GatewayError),
    Admitted(Identity),
}

enum AuthPlugin<'p> {
    Key(&'p KeyAuthConfig),
    Jwt(&'p JwtConfig),
    Basic(&'p BasicAuthConfig),
    Hmac(&'p HmacAuthConfig),
}

impl AuthPlugin<'_> {
    fn run_on_preflight(&self) -> bool {
        match self {
            AuthPlugin::Key(c) => c.run_on_preflight,
            AuthPlugin::Jwt(c) => c.run_on_preflight,
            AuthPlugin::Basic(c) => c.run_on_preflight,
            // Kong's hmac-auth has no such option: it runs on every request.
            AuthPlugin::Hmac(_) => true,
        }
    }
    fn anonymous(&self) -> Option<&str> {
        match self {
            AuthPlugin::Key(c) => c.anonymous.as_deref(),
            AuthPlugin::Jwt(c) => c.anonymous.as_deref(),
            AuthPlugin::Basic(c) => c.anonymous.as_deref(),
            AuthPlugin::Hmac(c) => c.anonymous.as_deref(),
        }
    }
    fn challenge(&self) -> String {
        match self {
            AuthPlugin::Key(c) => c.challenge(),
            AuthPlugin::Jwt(c) => c.challenge(),
            AuthPlugin::Basic(c) => c.challenge(),
            AuthPlugin::Hmac(c) => c.challenge(),
        }
    }
}

/// For each plugin name, the most specific instance (Kong: route beats service beats global).
/// Consumer-scoped instances are ignored for authentication (the consumer is not known yet).
fn most_specific<'p>(
    instances: &[&'p PluginInstance],
    name: &str,
    identity: Option<&Identity>,
) -> Option<&'p PluginInstance> {
    instances
        .iter()
        .copied()
        .filter(|i| i.name == name)
        .filter(|i| match (&i.consumer, identity) {
            (None, _) => true,
            (Some(u), Some(id)) => *u == id.username,
            (Some(_), None) => false,
        })
        .max_by_key(|i| (i.specificity(), std::cmp::Reverse(i.index)))
}

/// The access hook of `key-auth`, `jwt`, `basic-auth`, `hmac-auth` and `acl` (`crate::plugins::HOOKS`): they
/// run together, once, at the priority of the first of them on the route (any one auth plugin
/// admits; `acl` needs the outcome).
pub fn access<'x, 'a>(
    ex: &'x mut Exchange<'a>,
    _instances: &'x [&'a PluginInstance],
) -> crate::plugins::Step<'x> {
    Box::pin(async move {
        if !ex.auth_ran {
            ex.auth_ran = true;
            authenticate(ex).await?;
        }
        Ok(crate::plugins::Flow::Continue)
    })
}

/// Identify the client when an auth plugin applies. (Whatever the route, a client's own copies of the
/// identity headers never reach the origin: `proxy::start` always removes them.)
async fn authenticate(ex: &mut Exchange<'_>) -> Result<(), GatewayError> {
    let instances: Vec<&PluginInstance> = ex.plugins().collect();
    let mut auth = Vec::new();
    for name in ["key-auth", "jwt", "basic-auth", "hmac-auth"] {
        if let Some(i) = most_specific(&instances, name, None).filter(|i| i.consumer.is_none()) {
            if let Some(c) = i.config::<KeyAuthConfig>() {
                auth.push(AuthPlugin::Key(c));
            } else if let Some(c) = i.config::<JwtConfig>() {
                auth.push(AuthPlugin::Jwt(c));
            } else if let Some(c) = i.config::<BasicAuthConfig>() {
                auth.push(AuthPlugin::Basic(c));
            } else if let Some(c) = i.config::<HmacAuthConfig>() {
                auth.push(AuthPlugin::Hmac(c));
            }
        }
    }
    let has_acl = instances.iter().any(|i| i.name == "acl");
    if auth.is_empty() && !has_acl {
        return Ok(());
    }

    let preflight = ex.raw.method().eq_ignore_ascii_case("OPTIONS")
        && ex.header("access-control-request-method").is_some();
    let mut identity = None;
    // Every 401 of this phase carries one challenge per auth plugin of the route (docs/authentication.md).
    let mut verdicts = core_auth::Challenges::new();
    let mut anonymous = None;
    let mut ran = false;
    for plugin in &auth {
        if preflight && !plugin.run_on_preflight() {
            verdicts.missing(plugin.challenge());
            continue;
        }
        ran = true;
        let outcome = match plugin {
            AuthPlugin::Key(c) => key_auth(ex, c).await?,
            AuthPlugin::Jwt(c) => jwt_auth(ex, c).await?,
            AuthPlugin::Basic(c) => basic_auth(ex, c).await?,
            AuthPlugin::Hmac(c) => hmac_auth(ex, c).await?,
        };
        match outcome {
            Outcome::Admitted(id) => {
                identity = Some(id);
                break;
            }
            Outcome::Missing => {
                verdicts.missing(plugin.challenge());
                if anonymous.is_none() {
                    anonymous = plugin.anonymous().map(str::to_string);
                }
            }
            Outcome::Failed(e) => verdicts.failed(e),
        }
    }

    let skipped_all = !auth.is_empty() && !ran;
    if identity.is_none() && !auth.is_empty() {
        if verdicts.has_failure() {
            return Err(verdicts.into_error());
        }
        if let Some(reference) = anonymous {
            let consumer = consumer_by_ref(ex, &reference).await?.ok_or_else(|| {
                GatewayError::new(
                    ErrorKind::Internal,
                    "the anonymous consumer of this route does not exist",
                )
            })?;
            identity = Some(consumer.identity(None, true));
        } else if skipped_all {
            // A CORS preflight on a route whose auth plugins all let preflights through.
            return Ok(());
        } else {
            return Err(verdicts.into_error());
        }
    }

    // ACL (the most specific instance; a consumer-scoped one applies to its consumer).
    let mut hide_groups = false;
    if let Some(acl) = most_specific(&instances, "acl", identity.as_ref()) {
        if let Some(config) = acl.config::<AclConfig>() {
            if !(preflight && identity.is_none() && skipped_all) {
                if let Err(e) = config.check(identity.as_ref()) {
                    // A 401 (the anonymous consumer without groups) carries the route's challenges.
                    if e.status() == 401 && !auth.is_empty() {
                        return Err(verdicts.into_error());
                    }
                    return Err(e);
                }
            }
            hide_groups = config.hide_groups_header;
        }
    }

    if let Some(id) = identity {
        ex.upstream_set
            .extend(core_auth::identity_headers(&id, hide_groups));
        ex.log.consumer = Some(id.username.clone());
        ex.identity = Some(id);
    }
    Ok(())
}

fn hide_header(ex: &mut Exchange<'_>, name: &str) {
    ex.upstream_remove.push(name.to_ascii_lowercase());
}

fn hide_query(ex: &mut Exchange<'_>, name: &str) {
    ex.plan.url = core_auth::remove_query_param(&ex.plan.url, name);
}

/// The request body's fields, read from a clone so the original body still streams upstream.
async fn body_fields(ex: &Exchange<'_>) -> Option<serde_json::Map<String, serde_json::Value>> {
    let content_type = ex.header("content-type")?;
    let length: usize = ex.header("content-length")?.trim().parse().ok()?;
    if length > keyauth::MAX_BODY_BYTES {
        return None;
    }
    let copy = ex.raw.clone().ok()?;
    let text = JsFuture::from(copy.text().ok()?).await.ok()?.as_string()?;
    keyauth::body_fields(&content_type, &text)
}

async fn key_auth(ex: &mut Exchange<'_>, config: &KeyAuthConfig) -> Result<Outcome, GatewayError> {
    let body = if config.key_in_body {
        body_fields(ex).await
    } else {
        None
    };
    let query = Some(ex.url.query);
    let found = {
        let header = |n: &str| ex.header(n);
        keyauth::find_key(config, &header, query, body.as_ref())
    };
    let Some((key, source)) = found else {
        return Ok(Outcome::Missing);
    };
    let invalid = || {
        Ok(Outcome::Failed(core_auth::unauthorized(
            AuthFailure::InvalidCredentials,
            config.challenge(),
        )))
    };
    if key.len() > keyauth::MAX_KEY_BYTES {
        return invalid();
    }
    let Some(cred) = kv_json::<records::KeyAuthCredential>(ex, &keyauth::lookup_key(&key)).await?
    else {
        return invalid();
    };
    let now_s = (runtime::now_ms() / 1000.0) as u64;
    if cred.revoked_at.is_some() {
        return Ok(Outcome::Failed(core_auth::unauthorized(
            AuthFailure::CredentialsRevoked,
            config.challenge(),
        )));
    }
    if cred.expires_at.is_some_and(|t| now_s >= t) {
        return Ok(Outcome::Failed(core_auth::unauthorized_with(
            AuthFailure::TokenExpired,
            config.challenge(),
            "the key has expired",
        )));
    }
    let Some(consumer) = consumer_by_id(ex, &cred.consumer_id).await? else {
        return invalid();
    };
    if config.hide_credentials {
        match source {
            keyauth::KeySource::Header(name) => hide_header(ex, &name),
            keyauth::KeySource::Bearer => hide_header(ex, "authorization"),
            keyauth::KeySource::Query(name) => hide_query(ex, &name),
            // The body is streamed upstream untouched (documented).
            keyauth::KeySource::Body(_) => {}
        }
    }
    Ok(Outcome::Admitted(consumer.identity(Some(&cred.id), false)))
}

async fn fetch_text(url: &str) -> Result<String, String> {
    let request = async {
        // A Request made from the text (not `Fetch::Url`, which would parse it with the `url` crate first:
        // that crate is in the wasm for nothing else).
        let request =
            worker::Request::new(url, worker::Method::Get).map_err(|e| format!("bad URL: {e}"))?;
        let mut resp = worker::Fetch::Request(request)
            .send()
            .await
            .map_err(|e| e.to_string())?;
        if resp.status_code() != 200 {
            return Err(format!("status {}", resp.status_code()));
        }
        resp.text().await.map_err(|e| e.to_string())
    };
    let timeout = worker::Delay::from(Duration::from_millis(JWKS_TIMEOUT_MS));
    futures_util::pin_mut!(request);
    match select(request, timeout).await {
        Either::Left((result, _)) => result,
        Either::Right(_) => Err(format!("no answer within {JWKS_TIMEOUT_MS} ms")),
    }
}

/// Fetch a JWKS (the policy said so and recorded the attempt), record the result, then wake the
/// requests waiting for it. The fetch runs as its own task kept alive with `waitUntil`, so the
/// waiters get its result even if the client that started it goes away (Cloudflare cancels a
/// request's work when its client disconnects; Miniflare lets it finish, so no local test shows
/// this).
async fn fetch_jwks(ex: &Exchange<'_>, url: &str) {
    let task = wasm_bindgen_futures::future_to_promise({
        let url = url.to_string();
        async move {
            let body = fetch_text(&url).await;
            let now = runtime::now_ms();
            // Record and wake in one step: a request planning after this sees the new set.
            let result = JWKS.with(|c| {
                c.borrow_mut()
                    .fetched(&url, body.as_deref().map_err(|e| e.clone()), now)
            });
            let waiters = JWKS_WAITERS.with(|w| w.borrow_mut().remove(&url).unwrap_or_default());
            runtime::log(
                &match &result {
                    // Without user, password or query: they may carry credentials.
                    Ok(n) => serde_json::json!({"event": "jwks_fetched", "url": jwks::url_for_log(&url), "keys": n, "waiters": waiters.len()}),
                    Err(e) => serde_json::json!({"event": "jwks_fetch_failed", "url": jwks::url_for_log(&url), "error": jwks::error_for_log(e, &url), "waiters": waiters.len()}),
                }
                .to_string(),
            );
            for (_, resolve) in waiters {
                // Each promise belongs to its waiter's request; the runtime settles it there.
                let _ = resolve.call0(&JsValue::UNDEFINED);
            }
            Ok(JsValue::UNDEFINED)
        }
    });
    let kept = task.clone();
    ex.ctx.wait_until(async move {
        let _ = JsFuture::from(kept).await;
    });
    let _ = JsFuture::from(task).await;
}

/// Wait for the fetch of `url` under way to be recorded, or until `deadline` (ms since the epoch),
/// whichever comes first. The wait is a promise of this request, resolved by the fetching one.
async fn wait_for_jwks(url: &str, deadline: f64) {
    let id = NEXT_WAITER.with(|n| {
        let id = n.get();
        n.set(id.wrapping_add(1));
        id
    });
    let woken = js_sys::Promise::new(&mut |resolve, _reject| {
        JWKS_WAITERS.with(|w| {
            w.borrow_mut()
                .entry(url.to_string())
                .or_default()
                .push((id, resolve))
        });
    });
    // Take the resolver out again however the wait ends (a timeout, or this future dropped).
    struct Registered<'u>(&'u str, u64);
    impl Drop for Registered<'_> {
        fn drop(&mut self) {
            JWKS_WAITERS.with(|w| {
                if let Ok(mut w) = w.try_borrow_mut() {
                    if let Some(list) = w.get_mut(self.0) {
                        list.retain(|(i, _)| *i != self.1);
                        if list.is_empty() {
                            w.remove(self.0);
                        }
                    }
                }
            });
        }
    }
    let _registered = Registered(url, id);
    let wait_ms =
        (deadline - runtime::now_ms()).clamp(0.0, JWKS_TIMEOUT_MS as f64 + jwks::GRACE_MS);
    let timeout = worker::Delay::from(Duration::from_millis(wait_ms as u64));
    let woken = JsFuture::from(woken);
    futures_util::pin_mut!(woken);
    let _ = select(woken, timeout).await;
}

/// Check `token`'s signature with a key parsed once per isolate, through the isolate's crypto backend. A
/// key WebCrypto refused is logged and refused like any bad key; a failing backend is kept in `failure`
/// (the request gets a 500) and refuses the token meanwhile.
async fn verify_parsed(
    config: &JwtConfig,
    token: &jwt::Token<'_>,
    cred: &records::JwtCredential,
    key: &ParsedKey,
    now_s: u64,
    failure: &mut Option<CryptoError>,
) -> Result<(), jwt::JwtError> {
    let outcome = jwt::verify_with(
        &backend_for(key),
        config,
        token,
        cred,
        &key.key,
        key.pinned,
        now_s,
    )
    .await;
    match outcome {
        Ok(Err(jwt::JwtError::BadKey)) => {
            log_unusable_key(&cred.id);
            Err(jwt::JwtError::BadKey)
        }
        Ok(result) => result,
        Err(e) => {
            *failure = Some(e);
            Err(jwt::JwtError::BadKey)
        }
    }
}

async fn jwt_auth(ex: &mut Exchange<'_>, config: &JwtConfig) -> Result<Outcome, GatewayError> {
    let found = {
        let header = |n: &str| ex.header(n);
        jwt::find_token(config, &header, Some(ex.url.query))
    };
    let Some((text, source)) = found else {
        return Ok(Outcome::Missing);
    };
    let fail = |e: jwt::JwtError| {
        Ok(Outcome::Failed(core_auth::unauthorized_with(
            e.failure(),
            config.challenge_invalid(),
            e.detail(),
        )))
    };
    let token = match jwt::parse(&text, config.max_token_bytes) {
        Ok(t) => t,
        Err(e) => return fail(e),
    };
    let claim = match token.key_claim(&config.key_claim_name) {
        Ok(c) => c.to_string(),
        Err(e) => return fail(e),
    };
    if records::check_jwt_key(&claim).is_err() {
        return fail(jwt::JwtError::NoCredential);
    }
    let Some((cred, cred_text)) =
        kv_record::<records::JwtCredential>(ex, &records::Kind::Jwt.key(&claim)).await?
    else {
        return fail(jwt::JwtError::NoCredential);
    };
    let now_ms = runtime::now_ms();
    let now_s = (now_ms / 1000.0) as u64;
    // The memo covers the token text and the whole credential record (the text it was read from, not
    // serialized again per request), so a changed or revoked credential (seen once the lookup cache
    // expires) is verified afresh.
    let cred_json: &str = &cred_text;
    let memo_base = format!("{text}\0{cred_json}");
    let mut backend_failure = None;
    let result = match &cred.jwks_url {
        None => {
            verify_memoized(ex, config, &token, &memo_base, async {
                // Parsed once per isolate for this credential record (the whole record, so a changed
                // key is parsed afresh).
                let key = parsed_key(cred_json, || match jwt::credential_key(&cred)? {
                    jwt::CredentialKey::Static(key) => Ok((key, None)),
                    jwt::CredentialKey::Jwks(_) => Err(jwt::JwtError::BadKey),
                })?;
                verify_parsed(config, &token, &cred, &key, now_s, &mut backend_failure).await
            })
            .await
        }
        // A record naming a JWKS URL and another key is refused, as for static keys.
        Some(_) if jwt::credential_key(&cred).is_err() => jwt::credential_key(&cred).map(|_| ()),
        Some(url) => {
            let kid = token.kid.as_deref();
            let policy = jwks::Policy {
                cache_ms: config.jwks_cache_seconds as f64 * 1000.0,
                refetch_ms: config.jwks_refetch_interval_seconds as f64 * 1000.0,
                fetch_timeout_ms: JWKS_TIMEOUT_MS as f64,
            };
            let plan = JWKS.with(|c| c.borrow_mut().plan(url, kid, now_ms, &policy));
            let jwk = match plan {
                jwks::Plan::Use(k) => Some(k),
                jwks::Plan::Unknown => None,
                jwks::Plan::Fetch => {
                    fetch_jwks(ex, url).await;
                    JWKS.with(|c| c.borrow().lookup(url, kid))
                }
                jwks::Plan::Wait { deadline } => {
                    wait_for_jwks(url, deadline).await;
                    JWKS.with(|c| c.borrow().lookup(url, kid))
                }
            };
            match jwk {
                None => Err(jwt::JwtError::UnknownKid),
                Some(k) => {
                    let jwk_json = serde_json::to_string(&k).unwrap_or_default();
                    let memo_input = format!("{memo_base}\0{jwk_json}");
                    verify_memoized(ex, config, &token, &memo_input, async {
                        // Parsed once per isolate for this JWK's text.
                        let key = parsed_key(&jwk_json, || jwt::jwk_key(&k))?;
                        verify_parsed(config, &token, &cred, &key, now_s, &mut backend_failure)
                            .await
                    })
                    .await
                }
            }
        }
    };
    if let Some(e) = backend_failure {
        return Err(crypto_error("jwt", &cred.id, e));
    }
    if let Err(e) = result {
        return fail(e);
    }
    let Some(consumer) = consumer_by_id(ex, &cred.consumer_id).await? else {
        return fail(jwt::JwtError::NoCredential);
    };
    if config.hide_credentials {
        match source {
            jwt::TokenSource::Header(name) => hide_header(ex, &name),
            jwt::TokenSource::Query(name) => hide_query(ex, &name),
            jwt::TokenSource::Cookie(name) => match ex
                .header("cookie")
                .and_then(|c| jwt::remove_cookie(&c, &name))
            {
                Some(rest) => ex.upstream_set.push(("cookie".into(), rest)),
                None => hide_header(ex, "cookie"),
            },
        }
    }
    Ok(Outcome::Admitted(consumer.identity(Some(&cred.id), false)))
}

async fn basic_auth(
    ex: &mut Exchange<'_>,
    config: &BasicAuthConfig,
) -> Result<Outcome, GatewayError> {
    let invalid = || {
        Ok(Outcome::Failed(core_auth::unauthorized(
            AuthFailure::InvalidCredentials,
            config.challenge(),
        )))
    };
    // As Kong: `Proxy-Authorization: Basic` first, used when its login exists; else `Authorization`.
    let proxy = basic::parse_authorization(ex.header("proxy-authorization").as_deref());
    let mut found = None;
    if let basic::Parsed::Credentials { username, password } = &proxy {
        if let Some(cred) = basic_credential(ex, username).await? {
            found = Some((password.clone(), Some(cred)));
        }
    }
    let (password, cred) = match found {
        Some(f) => f,
        None => match basic::parse_authorization(ex.header("authorization").as_deref()) {
            basic::Parsed::Credentials { username, password } => {
                let cred = basic_credential(ex, &username).await?;
                (password, cred)
            }
            basic::Parsed::Malformed => return invalid(),
            basic::Parsed::Absent => match proxy {
                basic::Parsed::Absent => return Ok(Outcome::Missing),
                basic::Parsed::Malformed => return invalid(),
                // An unknown login in Proxy-Authorization: the dummy check below, then 401.
                basic::Parsed::Credentials { password, .. } => (password, None),
            },
        },
    };
    let Some(cred) = cred else {
        // Same cost as a real check, so response times do not tell which usernames exist.
        if let Err(e) =
            basic::verify_password_with(&Backend::default(), &password, DUMMY_HASH).await
        {
            return Err(crypto_error("basic-auth", "", e));
        }
        return invalid();
    };
    let memo = core_auth::sha256_hex(format!("{}\0{}", cred.password_hash, password).as_bytes());
    let now = runtime::now_ms();
    let known = VERIFIED.with(|c| c.borrow_mut().get(&memo, now)).is_some();
    if !known {
        let outcome =
            basic::verify_password_with(&Backend::default(), &password, &cred.password_hash)
                .await
                .map_err(|e| crypto_error("basic-auth", &cred.id, e))?;
        match outcome {
            Ok(true) => {
                let ttl = cache_ms(ex);
                VERIFIED.with(|c| c.borrow_mut().insert(memo, (), runtime::now_ms(), ttl));
            }
            Ok(false) => return invalid(),
            Err(e) => {
                runtime::log_error(
                    &serde_json::json!({"event": "auth_store_error", "error": e, "credential": cred.id})
                        .to_string(),
                );
                return invalid();
            }
        }
    }
    let Some(consumer) = consumer_by_id(ex, &cred.consumer_id).await? else {
        return invalid();
    };
    if config.hide_credentials {
        hide_header(ex, "authorization");
        hide_header(ex, "proxy-authorization");
    }
    Ok(Outcome::Admitted(consumer.identity(Some(&cred.id), false)))
}

/// The basic-auth credential of `username` (`None` for a login that cannot exist or is unknown).
async fn basic_credential(
    ex: &Exchange<'_>,
    username: &str,
) -> Result<Option<records::BasicAuthCredential>, GatewayError> {
    if records::check_name("username", username).is_err() {
        return Ok(None);
    }
    kv_json::<records::BasicAuthCredential>(ex, &records::Kind::BasicAuth.key(username)).await
}

/// The request body for `validate_request_body`, read from a clone (the original still streams
/// upstream): `None` when it is larger than `hmac::MAX_BODY_BYTES` or cannot be read.
async fn body_bytes(ex: &Exchange<'_>) -> Option<Vec<u8>> {
    let declared = ex
        .header("content-length")
        .and_then(|v| v.trim().parse::<u64>().ok());
    if declared.is_some_and(|n| n > hmac::MAX_BODY_BYTES as u64) {
        return None;
    }
    if ex.raw.body().is_none() {
        return Some(Vec::new());
    }
    let copy = ex.raw.clone().ok()?;
    let stream = copy.body()?;
    crate::plugins::body_js::read_bounded(&stream.into(), hmac::MAX_BODY_BYTES as u64)
        .await
        .ok()
}

/// Kong's hmac-auth: the date first, then the parameters, the credential, the signature, the body.
async fn hmac_auth(
    ex: &mut Exchange<'_>,
    config: &HmacAuthConfig,
) -> Result<Outcome, GatewayError> {
    let in_proxy = hmac::parse(ex.header("proxy-authorization").as_deref());
    let in_authorization = hmac::parse(ex.header("authorization").as_deref());
    if in_proxy == hmac::Parsed::Absent && in_authorization == hmac::Parsed::Absent {
        return Ok(Outcome::Missing);
    }
    let fail = |detail: &str| {
        Ok(Outcome::Failed(core_auth::unauthorized_with(
            AuthFailure::InvalidCredentials,
            config.challenge(),
            detail,
        )))
    };
    let now_s = (runtime::now_ms() / 1000.0) as u64;
    let dated = hmac::date_ok(ex.header("x-date").as_deref(), now_s, config.clock_skew)
        || hmac::date_ok(ex.header("date").as_deref(), now_s, config.clock_skew);
    if !dated {
        return fail(hmac::DATE_REQUIRED);
    }
    // Proxy-Authorization's credential when it has one, else Authorization's (Kong's order).
    let (params, source) = match (in_proxy, in_authorization) {
        (hmac::Parsed::Credentials(p), _) => (p, "proxy-authorization"),
        (_, hmac::Parsed::Credentials(p)) => (p, "authorization"),
        _ => return fail(hmac::CANNOT_VERIFY),
    };
    let Ok(algorithm) = hmac::check_params(config, &params) else {
        return fail(hmac::CANNOT_VERIFY);
    };
    if records::check_name("username", &params.username).is_err() {
        return fail(hmac::CANNOT_VERIFY);
    }
    let Some(cred) =
        kv_json::<records::HmacAuthCredential>(ex, &records::Kind::HmacAuth.key(&params.username))
            .await?
    else {
        return fail(hmac::CANNOT_VERIFY);
    };
    let path_with_query = if ex.url.query.is_empty() {
        ex.url.path.to_string()
    } else {
        format!("{}?{}", ex.url.path, ex.url.query)
    };
    let version = hmac::http_version(ex.cf("httpProtocol").as_deref());
    let message = {
        let header = |n: &str| ex.header(n);
        hmac::signing_string(
            &params.headers,
            &header,
            &hmac::SignedRequest {
                method: &ex.info.method,
                path_with_query: &path_with_query,
                http_version: &version,
            },
        )
    };
    if !hmac::verify(
        algorithm,
        cred.secret.as_bytes(),
        message.as_bytes(),
        &params.signature,
    ) {
        return fail(hmac::DOES_NOT_MATCH);
    }
    if config.validate_request_body {
        let matches = match body_bytes(ex).await {
            Some(body) => hmac::body_matches(ex.header("digest").as_deref(), &body),
            None => false,
        };
        if !matches {
            return fail(hmac::DOES_NOT_MATCH);
        }
    }
    let Some(consumer) = consumer_by_id(ex, &cred.consumer_id).await? else {
        return fail(hmac::CANNOT_VERIFY);
    };
    if config.hide_credentials {
        hide_header(ex, source);
    }
    Ok(Outcome::Admitted(consumer.identity(Some(&cred.id), false)))
}
