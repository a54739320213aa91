//! Google Vertex AI: Gemini models (publisher `google`) and Anthropic's Claude models (publisher
//! `anthropic`) in a Google Cloud project, authenticated with a service account.
//!
//! - URL: `{base}/v1/projects/{project}/locations/{region}/publishers/{publisher}/models/{model}:{method}`,
//!   `base` `https://{region}-aiplatform.googleapis.com` (`https://aiplatform.googleapis.com` for the
//!   `global` region).
//! - Gemini: the body of the `gemini` kind ([`gemini`]), methods `generateContent` and
//!   `streamGenerateContent?alt=sse`; answers as Gemini's.
//! - Claude: the body of the `anthropic` kind ([`anthropic`]) without `model` and with
//!   `"anthropic_version": "vertex-2023-10-16"`, methods `rawPredict` and `streamRawPredict`; answers
//!   (and event streams) as Anthropic's. An Anthropic Messages client's body passes through the same way.
//! - Which publisher: the provider's `publisher` option, else the model name (`claude…` is Anthropic's,
//!   anything else Google's).
//! - Auth: `Authorization: Bearer <access token>`. The token comes from the service account's key
//!   (a Worker secret holding Google's JSON key file): the glue signs the assertion this module
//!   builds ([`ServiceAccount::assertion_input`], RS256, WebCrypto in the Worker), posts it to the
//!   token endpoint ([`token_request_body`]), reads the answer ([`parse_token_response`]) and keeps the
//!   token per isolate ([`TokenCache`]): used until shortly before it expires, fetched once per isolate
//!   however many requests need it at the same time.

use super::*;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine;
use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value};
use std::collections::HashMap;

/// Region used when the provider sets none.
pub const DEFAULT_REGION: &str = "global";
/// `anthropic_version` sent in Claude bodies when the provider's `api_version` sets none.
pub const ANTHROPIC_VERSION: &str = "vertex-2023-10-16";
/// OAuth scope asked for.
pub const SCOPE: &str = "https://www.googleapis.com/auth/cloud-platform";
/// Token endpoint used when the key file names none.
pub const DEFAULT_TOKEN_URI: &str = "https://oauth2.googleapis.com/token";
/// Lifetime asked for in the assertion (Google's maximum).
pub const ASSERTION_LIFETIME_S: u64 = 3600;
/// A token is refreshed this long before it expires (or at half its lifetime, if shorter).
pub const REFRESH_MARGIN_S: u64 = 300;
/// How long the glue lets one token request take.
pub const TOKEN_FETCH_TIMEOUT_MS: u64 = 10_000;
/// How long past a token request's timeout a waiter still waits for its result.
pub const GRACE_MS: f64 = 250.0;
/// After a failed background refresh, the next one waits this long (the token is still valid).
pub const REFRESH_RETRY_MS: f64 = 10_000.0;
/// Service accounts remembered per isolate.
const MAX_ACCOUNTS: usize = 64;

const BEARER: KeyHeader = KeyHeader {
    name: "authorization",
    prefix: "Bearer ",
};

/// Whose API serves a model on Vertex.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Publisher {
    /// Gemini (`generateContent`).
    Google,
    /// Claude (`rawPredict`, Anthropic Messages bodies).
    Anthropic,
}

impl Publisher {
    pub fn as_str(self) -> &'static str {
        match self {
            Publisher::Google => "google",
            Publisher::Anthropic => "anthropic",
        }
    }
}

/// The Vertex settings of a provider.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VertexOptions {
    /// Google Cloud project id; `None`: the service account's `project_id` (filled by the glue).
    pub project: Option<String>,
    /// Location (`global`, `us-central1`, `europe-west1`, ...).
    pub region: String,
    /// Forced publisher; `None`: by model name.
    pub publisher: Option<Publisher>,
}

impl Default for VertexOptions {
    fn default() -> Self {
        VertexOptions {
            project: None,
            region: DEFAULT_REGION.to_string(),
            publisher: None,
        }
    }
}

/// The API host of a region.
pub fn base_url(region: &str) -> String {
    if region == "global" {
        "https://aiplatform.googleapis.com".to_string()
    } else {
        format!("https://{region}-aiplatform.googleapis.com")
    }
}

/// A region name as Google writes them (it becomes part of a host name): lowercase letters,
/// digits and `-`, starting with a letter.
pub fn valid_region(r: &str) -> bool {
    !r.is_empty()
        && r.len() <= 63
        && r.starts_with(|c: char| c.is_ascii_lowercase())
        && r.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
}

/// A project id (or a domain-scoped one, `example.com:project`).
pub fn valid_project(p: &str) -> bool {
    !p.is_empty()
        && p.len() <= 100
        && p.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"-.:".contains(&b))
}

/// The publisher a model name implies: `claude…` is Anthropic's, anything else Google's.
pub fn publisher_of_model(model: &str) -> Publisher {
    if model.to_ascii_lowercase().starts_with("claude") {
        Publisher::Anthropic
    } else {
        Publisher::Google
    }
}

/// The publisher serving `target`'s model (its `publisher` option, else by model name).
pub fn publisher(target: &ProviderTarget) -> Publisher {
    target
        .vertex
        .as_ref()
        .and_then(|v| v.publisher)
        .unwrap_or_else(|| publisher_of_model(&target.model))
}

/// Whether `target` is a Vertex target speaking Anthropic's format.
pub fn is_anthropic(target: &ProviderTarget) -> bool {
    target.kind == ProviderKind::Vertex && publisher(target) == Publisher::Anthropic
}

fn misconfigured(target: &ProviderTarget, what: &str) -> AiError {
    AiError::new(
        502,
        "upstream_error",
        Some("gateway_misconfigured"),
        format!("provider {}: {what}", target.provider),
    )
}

/// `{base}/v1/projects/{project}/locations/{region}/publishers/{publisher}/models/{model}:{method}`.
pub fn model_url(target: &ProviderTarget, method: &str) -> Result<String, AiError> {
    let opts = target.vertex.as_deref();
    let region = opts.map_or(DEFAULT_REGION, |o| o.region.as_str());
    let project = opts.and_then(|o| o.project.as_deref()).ok_or_else(|| {
        misconfigured(
            target,
            "no Google Cloud project: set project, or use a service-account key with project_id",
        )
    })?;
    // Vertex model versions are written `claude-sonnet-4-5@20250929`: `@` stays as it is.
    let model = encode_component(&target.model).replace("%40", "@");
    Ok(format!(
        "{}/v1/projects/{}/locations/{}/publishers/{}/models/{}:{}",
        target.base_url,
        encode_component(project).replace("%3A", ":"),
        encode_component(region),
        publisher(target).as_str(),
        model,
        method
    ))
}

/// Build the upstream request for a chat completion.
pub fn build_request(
    req: &ChatRequest,
    target: &ProviderTarget,
) -> Result<UpstreamRequest, AiError> {
    match publisher(target) {
        Publisher::Google => {
            let mut up = gemini::build_request(req, target)?;
            up.url = if up.stream {
                format!("{}?alt=sse", model_url(target, "streamGenerateContent")?)
            } else {
                model_url(target, "generateContent")?
            };
            up.key_header = Some(BEARER);
            Ok(up)
        }
        Publisher::Anthropic => {
            let mut up = anthropic::build_request(req, target)?;
            to_vertex_anthropic(&mut up, target)?;
            Ok(up)
        }
    }
}

/// An Anthropic Messages client's body for Claude on Vertex: as it came, `model` taken out (it is
/// in the URL) and `anthropic_version` added.
pub fn build_native(
    req: &ingress::IngressRequest,
    target: &ProviderTarget,
) -> Result<UpstreamRequest, AiError> {
    let mut up = messages_in::build_native(req, target, false)?;
    to_vertex_anthropic(&mut up, target)?;
    Ok(up)
}

/// Whether `count_tokens` can ask the provider to count `req` for `target`: Claude counts anything
/// (the client's body goes as it came), Gemini what translates to its format.
pub fn counts_exactly(req: &ingress::IngressRequest, target: &ProviderTarget) -> bool {
    publisher(target) == Publisher::Anthropic || req.unsupported.is_none()
}

/// `count_tokens` on Vertex. Gemini: `…/models/{model}:countTokens` with the request's `contents`,
/// `systemInstruction` and `tools` (answer `totalTokens`, read by [`gemini::parse_count_tokens`]).
/// Claude: `…/publishers/anthropic/models/count-tokens:rawPredict` with the fields Anthropic's
/// `count_tokens` takes, `model` included (answer `{"input_tokens"}`, as Anthropic's).
pub fn build_count_tokens_request(
    req: &ingress::IngressRequest,
    target: &ProviderTarget,
) -> Result<UpstreamRequest, AiError> {
    match publisher(target) {
        Publisher::Google => {
            let full = gemini::request_body(&req.chat)?;
            let mut body = Map::new();
            body.extend(
                ["contents", "systemInstruction", "tools"]
                    .iter()
                    .filter_map(|k| full.get(*k).map(|v| (k.to_string(), v.clone()))),
            );
            let mut headers = vec![("content-type".to_string(), "application/json".to_string())];
            headers.extend(target.headers.iter().cloned());
            Ok(UpstreamRequest {
                method: "POST",
                url: model_url(target, "countTokens")?,
                headers,
                key_header: Some(BEARER),
                body: serde_json::to_vec(&Value::Object(body))
                    .map_err(|e| AiError::invalid(e.to_string()))?,
                stream: false,
            })
        }
        Publisher::Anthropic => {
            let mut up = messages_in::build_native(req, target, true)?;
            up.headers.retain(|(n, _)| n != "anthropic-version");
            let url = model_url(target, "rawPredict")?;
            // The model is in the body; the URL names the counting endpoint.
            let (base, _) = url.rsplit_once("/models/").unwrap_or((&url, ""));
            up.url = format!("{base}/models/count-tokens:rawPredict");
            up.key_header = Some(BEARER);
            Ok(up)
        }
    }
}

/// Turn a request for the Anthropic API into one for Claude on Vertex.
fn to_vertex_anthropic(up: &mut UpstreamRequest, target: &ProviderTarget) -> Result<(), AiError> {
    let mut body: Map<String, Value> =
        serde_json::from_slice(&up.body).map_err(|e| AiError::invalid(e.to_string()))?;
    body.remove("model");
    body.insert(
        "anthropic_version".into(),
        json!(target.api_version.as_deref().unwrap_or(ANTHROPIC_VERSION)),
    );
    up.body =
        serde_json::to_vec(&Value::Object(body)).map_err(|e| AiError::invalid(e.to_string()))?;
    // The version is in the body; `anthropic-beta` stays a header.
    up.headers.retain(|(n, _)| n != "anthropic-version");
    up.url = model_url(
        target,
        if up.stream {
            "streamRawPredict"
        } else {
            "rawPredict"
        },
    )?;
    up.key_header = Some(BEARER);
    Ok(())
}

/// A whole answer: Gemini's or Anthropic's format, by publisher.
pub fn parse_response(
    target: &ProviderTarget,
    body: &[u8],
    ctx: &StreamContext,
) -> Result<ChatResponse, AiError> {
    match publisher(target) {
        Publisher::Google => gemini::parse_response(target, body, ctx),
        Publisher::Anthropic => anthropic::parse_response(target, body, ctx),
    }
}

// ---------------------------------------------------------------------------------------------------
// Service account and access token

/// A service account's JSON key file, as Google issues it (fields the gateway does not use are
/// ignored). Its `Debug` never shows the private key.
#[derive(Clone, Deserialize)]
pub struct ServiceAccount {
    pub client_email: String,
    /// PKCS#8 PEM (`-----BEGIN PRIVATE KEY-----`).
    pub private_key: String,
    #[serde(default = "default_token_uri")]
    pub token_uri: String,
    #[serde(default)]
    pub project_id: Option<String>,
}

fn default_token_uri() -> String {
    DEFAULT_TOKEN_URI.to_string()
}

impl std::fmt::Debug for ServiceAccount {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServiceAccount")
            .field("client_email", &self.client_email)
            .field("private_key", &"<redacted>")
            .field("token_uri", &self.token_uri)
            .field("project_id", &self.project_id)
            .finish()
    }
}

impl ServiceAccount {
    /// Read a key file. The error says what is wrong without quoting the text (it holds the key).
    pub fn parse(text: &str) -> Result<ServiceAccount, String> {
        let v: Value = serde_json::from_str(text)
            .map_err(|_| "is not a service-account key file (not JSON)".to_string())?;
        let Some(o) = v.as_object() else {
            return Err("is not a service-account key file (not a JSON object)".to_string());
        };
        if let Some(t) = o.get("type") {
            if t.as_str() != Some("service_account") {
                return Err(
                    "is not a service-account key file (type is not service_account)".into(),
                );
            }
        }
        for f in ["client_email", "private_key"] {
            if o.get(f).and_then(Value::as_str).is_none_or(str::is_empty) {
                return Err(format!(
                    "is not a service-account key file ({f} is missing)"
                ));
            }
        }
        for f in ["token_uri", "project_id"] {
            if o.get(f).is_some_and(|v| !v.is_string()) {
                return Err(format!(
                    "is not a service-account key file ({f} is not a string)"
                ));
            }
        }
        let sa: ServiceAccount = serde_json::from_value(v)
            .map_err(|_| "is not a service-account key file".to_string())?;
        if !(sa.token_uri.starts_with("https://") || sa.token_uri.starts_with("http://")) {
            return Err("has a token_uri that is not an http(s) URL".into());
        }
        sa.pkcs8_der()?;
        Ok(sa)
    }

    /// The private key's DER bytes (PKCS#8), what WebCrypto's `importKey('pkcs8', …)` takes.
    pub fn pkcs8_der(&self) -> Result<Vec<u8>, String> {
        const BEGIN: &str = "-----BEGIN PRIVATE KEY-----";
        const END: &str = "-----END PRIVATE KEY-----";
        let pem = self.private_key.trim();
        let inner = pem
            .strip_prefix(BEGIN)
            .and_then(|r| r.trim_end().strip_suffix(END))
            .ok_or_else(|| {
                "has a private_key that is not a PKCS#8 PEM key (-----BEGIN PRIVATE KEY-----)"
                    .to_string()
            })?;
        let b64: String = inner.chars().filter(|c| !c.is_ascii_whitespace()).collect();
        STANDARD
            .decode(b64)
            .ok()
            .filter(|d| !d.is_empty())
            .ok_or_else(|| "has a private_key whose PEM body is not base64".to_string())
    }

    /// The assertion's claims at `now_s` (Unix seconds).
    pub fn assertion_claims(&self, now_s: u64) -> Value {
        json!({
            "iss": self.client_email,
            "scope": SCOPE,
            "aud": self.token_uri,
            "iat": now_s,
            "exp": now_s + ASSERTION_LIFETIME_S,
        })
    }

    /// `base64url(header).base64url(claims)`: the bytes to sign with RS256.
    pub fn assertion_input(&self, now_s: u64) -> String {
        let header = json!({"alg": "RS256", "typ": "JWT"});
        format!(
            "{}.{}",
            URL_SAFE_NO_PAD.encode(header.to_string()),
            URL_SAFE_NO_PAD.encode(self.assertion_claims(now_s).to_string())
        )
    }
}

/// The signed assertion: the signing input and the signature, base64url.
pub fn assertion(input: &str, signature: &[u8]) -> String {
    format!("{input}.{}", URL_SAFE_NO_PAD.encode(signature))
}

/// The token request's form body (`application/x-www-form-urlencoded`).
pub fn token_request_body(assertion: &str) -> String {
    // The assertion is base64url and dots: nothing to escape.
    format!(
        "grant_type=urn%3Aietf%3Aparams%3Aoauth%3Agrant-type%3Ajwt-bearer&assertion={assertion}"
    )
}

/// An access token and its lifetime.
#[derive(Clone, PartialEq, Eq)]
pub struct AccessToken {
    pub token: String,
    pub expires_in: u64,
}

impl std::fmt::Debug for AccessToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AccessToken")
            .field("token", &"<redacted>")
            .field("expires_in", &self.expires_in)
            .finish()
    }
}

/// The error of a failed token request (502 `upstream_auth_failed`, retryable: the next target may
/// work). Names the provider, the status and OAuth's `error` code, never anything of the key.
pub fn token_error(provider: &str, detail: &str) -> AiError {
    AiError {
        retryable: true,
        ..AiError::new(
            502,
            "upstream_error",
            Some("upstream_auth_failed"),
            format!("provider {provider}: no access token from the service account ({detail})"),
        )
    }
}

/// Read the token endpoint's answer.
pub fn parse_token_response(
    provider: &str,
    status: u16,
    body: &[u8],
) -> Result<AccessToken, AiError> {
    let v: Value = serde_json::from_slice(body).unwrap_or(Value::Null);
    if !(200..300).contains(&status) {
        // OAuth's `error` is a short code (`invalid_grant`); its description is not passed on.
        let code = v
            .get("error")
            .and_then(Value::as_str)
            .filter(|c| {
                c.len() <= 64
                    && c.bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b"_-.".contains(&b))
            })
            .map(|c| format!(", {c}"))
            .unwrap_or_default();
        return Err(token_error(
            provider,
            &format!("the token endpoint answered HTTP {status}{code}"),
        ));
    }
    let token = v
        .get("access_token")
        .and_then(Value::as_str)
        .filter(|t| {
            !t.is_empty()
                && t.bytes()
                    .all(|b| b.is_ascii_graphic() && b != b'"' && b != b'\\')
        })
        .ok_or_else(|| {
            token_error(
                provider,
                "the token endpoint's answer has no usable access_token",
            )
        })?;
    let expires_in = match v.get("expires_in") {
        None => ASSERTION_LIFETIME_S,
        Some(e) => e
            .as_u64()
            .or_else(|| e.as_str().and_then(|s| s.parse().ok()))
            .ok_or_else(|| {
                token_error(provider, "the token endpoint's expires_in is not a number")
            })?,
    };
    Ok(AccessToken {
        token: token.to_string(),
        expires_in,
    })
}

/// How long before it expires a token of this lifetime is refreshed: 5 minutes, or half its
/// lifetime when that is shorter.
pub fn refresh_margin_s(expires_in: u64) -> u64 {
    REFRESH_MARGIN_S.min(expires_in / 2)
}

#[derive(Debug, Default)]
struct TokenEntry {
    token: Option<Cached>,
    /// When the token request under way started (ms), if one is.
    in_flight_since: Option<f64>,
    /// How the last token request failed, for the requests that waited for it.
    last_error: Option<AiError>,
    /// When the last token request failed (ms), if it did.
    failed_at: Option<f64>,
}

#[derive(Debug)]
struct Cached {
    token: String,
    refresh_at: f64,
    expires_at: f64,
}

/// What to do to get a token.
#[derive(Debug, Clone, PartialEq)]
pub enum TokenPlan {
    /// Use this token.
    Use(String),
    /// Use this token (still valid) and refresh it in the background: the request is recorded as
    /// under way; call [`TokenCache::fetched`] when it ends.
    UseAndRefresh(String),
    /// Request a token (recorded as under way), call [`TokenCache::fetched`], then
    /// [`TokenCache::lookup`].
    Fetch,
    /// A token request is under way: wait until it is recorded or until `deadline` (ms), then
    /// [`TokenCache::lookup`].
    Wait { deadline: f64 },
}

/// The isolate's access tokens, by service account (the glue's key: a digest of the key file).
/// Time is the glue's clock in milliseconds.
#[derive(Debug, Default)]
pub struct TokenCache {
    entries: HashMap<u64, TokenEntry>,
}

impl TokenCache {
    pub fn new() -> TokenCache {
        TokenCache::default()
    }

    /// Decide for one request at `now`. A request under way longer than its timeout (plus
    /// [`GRACE_MS`]) is over: its result never came.
    pub fn plan(&mut self, account: u64, now: f64) -> TokenPlan {
        if !self.entries.contains_key(&account) && self.entries.len() >= MAX_ACCOUNTS {
            self.entries.clear();
        }
        let e = self.entries.entry(account).or_default();
        let limit = TOKEN_FETCH_TIMEOUT_MS as f64 + GRACE_MS;
        if e.in_flight_since.is_some_and(|since| now >= since + limit) {
            e.in_flight_since = None;
        }
        if let Some(c) = &e.token {
            if now < c.refresh_at {
                return TokenPlan::Use(c.token.clone());
            }
            if now < c.expires_at {
                let backing_off = e.failed_at.is_some_and(|t| now < t + REFRESH_RETRY_MS);
                if e.in_flight_since.is_some() || backing_off {
                    return TokenPlan::Use(c.token.clone());
                }
                e.in_flight_since = Some(now);
                e.last_error = None;
                return TokenPlan::UseAndRefresh(c.token.clone());
            }
        }
        if let Some(since) = e.in_flight_since {
            return TokenPlan::Wait {
                deadline: since + limit,
            };
        }
        e.in_flight_since = Some(now);
        e.last_error = None;
        TokenPlan::Fetch
    }

    /// Record a token request's result (which ends the waits: the glue wakes the waiters).
    pub fn fetched(&mut self, account: u64, result: Result<AccessToken, AiError>, now: f64) {
        let e = self.entries.entry(account).or_default();
        e.in_flight_since = None;
        match result {
            Ok(t) => {
                let refresh_in = t.expires_in - refresh_margin_s(t.expires_in);
                e.token = Some(Cached {
                    token: t.token,
                    refresh_at: now + refresh_in as f64 * 1000.0,
                    expires_at: now + t.expires_in as f64 * 1000.0,
                });
                e.last_error = None;
                e.failed_at = None;
            }
            Err(err) => {
                e.last_error = Some(err);
                e.failed_at = Some(now);
            }
        }
    }

    /// The token to use at `now`, or the error the last request ended with.
    pub fn lookup(&self, account: u64, now: f64, provider: &str) -> Result<String, AiError> {
        let e = self.entries.get(&account);
        if let Some(c) = e
            .and_then(|e| e.token.as_ref())
            .filter(|c| now < c.expires_at)
        {
            return Ok(c.token.clone());
        }
        Err(e
            .and_then(|e| e.last_error.clone())
            .unwrap_or_else(|| token_error(provider, "the token request did not finish in time")))
    }

    /// Forget the token of `account` (the provider refused it): the next request fetches one.
    pub fn forget(&mut self, account: u64) {
        if let Some(e) = self.entries.get_mut(&account) {
            e.token = None;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use jsonwebtoken::Algorithm;
    #[cfg(target_arch = "wasm32")]
    use wasm_bindgen_test::wasm_bindgen_test as test;

    const RSA_KEY: &str = include_str!("../../core/src/auth/testdata/rsa.key");
    const RSA_PUB: &str = include_str!("../../core/src/auth/testdata/rsa.pub");

    fn target(model: &str, region: &str) -> ProviderTarget {
        let mut t = ProviderTarget::new(ProviderKind::Vertex, model);
        t.provider = "vertex".into();
        t.base_url = base_url(region);
        t.vertex = Some(Box::new(VertexOptions {
            project: Some("my-proj".into()),
            region: region.into(),
            publisher: None,
        }));
        t
    }

    fn chat(stream: bool) -> ChatRequest {
        serde_json::from_value(json!({
            "model": "x", "stream": stream, "max_tokens": 20,
            "messages": [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi"}],
            "tools": [{"type": "function", "function": {"name": "f", "parameters": {"type": "object"}}}]
        }))
        .unwrap()
    }

    fn sa_json() -> String {
        json!({"type": "service_account", "project_id": "sa-proj", "private_key_id": "k1",
               "private_key": RSA_KEY, "client_email": "gw@sa-proj.iam.gserviceaccount.com",
               "token_uri": "https://oauth2.googleapis.com/token"})
        .to_string()
    }

    #[test]
    fn urls_per_region_and_publisher() {
        let g = target("gemini-2.5-flash", "us-central1");
        let up = build_request(&chat(false), &g).unwrap();
        assert_eq!(
            up.url,
            "https://us-central1-aiplatform.googleapis.com/v1/projects/my-proj/locations/us-central1/publishers/google/models/gemini-2.5-flash:generateContent"
        );
        let up = build_request(&chat(true), &g).unwrap();
        assert!(up
            .url
            .ends_with("/publishers/google/models/gemini-2.5-flash:streamGenerateContent?alt=sse"));
        let c = target("claude-sonnet-4-5@20250929", "global");
        let up = build_request(&chat(false), &c).unwrap();
        assert_eq!(
            up.url,
            "https://aiplatform.googleapis.com/v1/projects/my-proj/locations/global/publishers/anthropic/models/claude-sonnet-4-5@20250929:rawPredict"
        );
        let up = build_request(&chat(true), &c).unwrap();
        assert!(up.url.ends_with(":streamRawPredict"));
        // No project: a configuration error naming what is missing.
        let mut none = g.clone();
        none.vertex.as_mut().unwrap().project = None;
        let e = build_request(&chat(false), &none).unwrap_err();
        assert_eq!(e.code.as_deref(), Some("gateway_misconfigured"));
        assert!(e.message.contains("project"));
    }

    #[test]
    fn publisher_by_model_name_or_option() {
        assert_eq!(
            publisher_of_model("claude-opus-4-1@20250805"),
            Publisher::Anthropic
        );
        assert_eq!(publisher_of_model("Claude-3-haiku"), Publisher::Anthropic);
        assert_eq!(publisher_of_model("gemini-2.5-pro"), Publisher::Google);
        let mut t = target("my-tuned-model", "global");
        assert_eq!(publisher(&t), Publisher::Google);
        t.vertex.as_mut().unwrap().publisher = Some(Publisher::Anthropic);
        assert_eq!(publisher(&t), Publisher::Anthropic);
        assert!(is_anthropic(&t));
        assert!(!is_anthropic(&ProviderTarget::new(
            ProviderKind::Anthropic,
            "claude"
        )));
    }

    #[test]
    fn gemini_body_is_the_gemini_kind_body_with_a_bearer_token() {
        let t = target("gemini-2.5-flash", "us-central1");
        let up = build_request(&chat(false), &t).unwrap();
        let studio = gemini::build_request(
            &chat(false),
            &ProviderTarget::new(ProviderKind::Gemini, "gemini-2.5-flash"),
        )
        .unwrap();
        assert_eq!(up.body, studio.body);
        let h = up.headers_with_key(Some("ya29.TOKEN"));
        assert!(h.contains(&("authorization".into(), "Bearer ya29.TOKEN".into())));
        assert!(!h.iter().any(|(n, _)| n == "x-goog-api-key"));
        assert!(!up.url.contains("TOKEN"));
    }

    #[test]
    fn claude_body_has_no_model_and_the_vertex_version() {
        let t = target("claude-sonnet-4-5@20250929", "us-east5");
        let up = build_request(&chat(true), &t).unwrap();
        let body: Value = serde_json::from_slice(&up.body).unwrap();
        assert!(body.get("model").is_none());
        assert_eq!(body["anthropic_version"], "vertex-2023-10-16");
        assert_eq!(body["stream"], true);
        assert_eq!(body["system"], "Be brief.");
        assert_eq!(body["max_tokens"], 20);
        assert_eq!(body["tools"][0]["name"], "f");
        // Everything else is the anthropic kind's body.
        let mut direct: Value = serde_json::from_slice(
            &anthropic::build_request(
                &chat(true),
                &ProviderTarget::new(ProviderKind::Anthropic, "claude-sonnet-4-5@20250929"),
            )
            .unwrap()
            .body,
        )
        .unwrap();
        direct.as_object_mut().unwrap().remove("model");
        direct["anthropic_version"] = json!("vertex-2023-10-16");
        assert_eq!(body, direct);
        assert!(!up.headers.iter().any(|(n, _)| n == "anthropic-version"));
        assert!(up
            .headers
            .contains(&("accept".into(), "text/event-stream".into())));
        assert_eq!(up.key_header, Some(BEARER));
        // api_version overrides the body's version.
        let mut t2 = t.clone();
        t2.api_version = Some("vertex-2099-01-01".into());
        let body: Value =
            serde_json::from_slice(&build_request(&chat(false), &t2).unwrap().body).unwrap();
        assert_eq!(body["anthropic_version"], "vertex-2099-01-01");
    }

    #[test]
    fn messages_pass_through_keeps_the_body() {
        let body = json!({"model": "alias", "max_tokens": 50, "stream": true,
            "system": [{"type": "text", "text": "S", "cache_control": {"type": "ephemeral"}}],
            "thinking": {"type": "enabled", "budget_tokens": 1024},
            "messages": [{"role": "user", "content": [{"type": "text", "text": "Hi", "cache_control": {"type": "ephemeral"}}]}]});
        let req = messages_in::parse_request(
            &serde_json::to_vec(&body).unwrap(),
            Some("2023-06-01"),
            Some("beta-x"),
            false,
        )
        .unwrap();
        let t = target("claude-opus-4-1@20250805", "us-east5");
        assert!(req.passes_through(&t));
        let up = ingress::build_ingress_request(&req, &t).unwrap();
        let got: Value = serde_json::from_slice(&up.body).unwrap();
        let mut want = body.clone();
        want.as_object_mut().unwrap().remove("model");
        want["anthropic_version"] = json!("vertex-2023-10-16");
        assert_eq!(got, want);
        assert!(up.url.ends_with("/locations/us-east5/publishers/anthropic/models/claude-opus-4-1@20250805:streamRawPredict"));
        assert!(up
            .url
            .starts_with("https://us-east5-aiplatform.googleapis.com/"));
        assert!(up
            .headers
            .contains(&("anthropic-beta".into(), "beta-x".into())));
        assert!(!up.headers.iter().any(|(n, _)| n == "anthropic-version"));
        // A Gemini model on Vertex gets the translated request.
        let g = target("gemini-2.5-flash", "global");
        assert!(!req.passes_through(&g));
        let up = ingress::build_ingress_request(&req, &g).unwrap();
        assert!(serde_json::from_slice::<Value>(&up.body)
            .unwrap()
            .get("contents")
            .is_some());
    }

    #[test]
    fn answers_are_read_in_the_publishers_format() {
        let ctx = StreamContext {
            id: "c".into(),
            model: "m".into(),
            created: 1,
            include_usage: true,
            tool_call_seed: 1,
        };
        let g = target("gemini-2.5-flash", "global");
        let r = parse_response(&g, br#"{"candidates":[{"content":{"parts":[{"text":"Hi"}],"role":"model"},"finishReason":"STOP"}],"usageMetadata":{"promptTokenCount":3,"candidatesTokenCount":1}}"#, &ctx).unwrap();
        assert_eq!(r.choices[0].message.content.as_deref(), Some("Hi"));
        let c = target("claude-x", "global");
        let r = super::super::parse_response(&c, 200, br#"{"id":"msg_1","type":"message","role":"assistant","model":"claude-x","content":[{"type":"text","text":"Yo"}],"stop_reason":"end_turn","usage":{"input_tokens":3,"output_tokens":1}}"#, &ctx).unwrap();
        assert_eq!(r.choices[0].message.content.as_deref(), Some("Yo"));
        let mut s = StreamTranslator::new(&c, ctx.clone());
        let mut out = s.push(b"event: message_start\ndata: {\"type\":\"message_start\",\"message\":{\"id\":\"m\",\"model\":\"claude-x\",\"usage\":{\"input_tokens\":2,\"output_tokens\":0}}}\n\nevent: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"text_delta\",\"text\":\"Yo\"}}\n\n");
        out.extend(s.finish());
        assert!(String::from_utf8_lossy(&out).contains("\"content\":\"Yo\""));
        let mut s = StreamTranslator::new(&g, ctx);
        let out = s.push(
            b"data: {\"candidates\":[{\"content\":{\"parts\":[{\"text\":\"Hey\"}]}}]}\r\n\r\n",
        );
        assert!(String::from_utf8_lossy(&out).contains("\"content\":\"Hey\""));
        // Errors in Google's shape.
        let e = super::super::parse_response(
            &g,
            400,
            br#"{"error":{"code":400,"message":"bad thing","status":"INVALID_ARGUMENT"}}"#,
            &StreamContext {
                id: "c".into(),
                model: "m".into(),
                created: 1,
                include_usage: false,
                tool_call_seed: 1,
            },
        )
        .unwrap_err();
        assert_eq!(
            (e.status, e.message.as_str(), e.code.as_deref()),
            (400, "bad thing", Some("INVALID_ARGUMENT"))
        );
    }

    #[test]
    fn count_tokens_requests() {
        let body = json!({"model": "alias", "max_tokens": 50, "system": "S",
            "messages": [{"role": "user", "content": "Hi"}],
            "tools": [{"name": "f", "input_schema": {"type": "object"}}]});
        let req = messages_in::parse_request(&serde_json::to_vec(&body).unwrap(), None, None, true)
            .unwrap();
        let c = target("claude-sonnet-4-5@20250929", "us-east5");
        assert!(counts_exactly(&req, &c));
        let up = build_count_tokens_request(&req, &c).unwrap();
        assert_eq!(up.url, "https://us-east5-aiplatform.googleapis.com/v1/projects/my-proj/locations/us-east5/publishers/anthropic/models/count-tokens:rawPredict");
        let got: Value = serde_json::from_slice(&up.body).unwrap();
        assert_eq!(
            got,
            json!({"model": "claude-sonnet-4-5@20250929", "system": "S",
            "messages": [{"role": "user", "content": "Hi"}],
            "tools": [{"name": "f", "input_schema": {"type": "object"}}]})
        );
        assert_eq!(up.key_header, Some(BEARER));
        assert!(!up.headers.iter().any(|(n, _)| n == "anthropic-version"));
        let g = target("gemini-2.5-flash", "global");
        let up = build_count_tokens_request(&req, &g).unwrap();
        assert!(up
            .url
            .ends_with("/publishers/google/models/gemini-2.5-flash:countTokens"));
        let got: Value = serde_json::from_slice(&up.body).unwrap();
        let keys: Vec<&String> = got.as_object().unwrap().keys().collect();
        assert_eq!(keys, ["contents", "systemInstruction", "tools"]);
        assert_eq!(got["contents"][0]["parts"][0]["text"], "Hi");
        // A server tool: only Claude can count it.
        let web = json!({"model": "a", "messages": [{"role": "user", "content": "Hi"}],
            "tools": [{"type": "web_search_20250305", "name": "web_search"}]});
        let req = messages_in::parse_request(&serde_json::to_vec(&web).unwrap(), None, None, true)
            .unwrap();
        assert!(counts_exactly(&req, &c) && !counts_exactly(&req, &g));
    }

    #[test]
    fn no_embeddings() {
        let e = build_embeddings_request(
            &serde_json::from_value(json!({"model": "m", "input": "x"})).unwrap(),
            &target("text-embedding-005", "global"),
        )
        .unwrap_err();
        assert_eq!(e.status, 400);
    }

    #[test]
    fn service_account_parse_and_errors_never_quote_the_key() {
        let sa = ServiceAccount::parse(&sa_json()).unwrap();
        assert_eq!(sa.client_email, "gw@sa-proj.iam.gserviceaccount.com");
        assert_eq!(sa.project_id.as_deref(), Some("sa-proj"));
        assert!(!format!("{sa:?}").contains("BEGIN"));
        let der = sa.pkcs8_der().unwrap();
        assert_eq!(der[0], 0x30);
        let mut v: Value = serde_json::from_str(&sa_json()).unwrap();
        v.as_object_mut().unwrap().remove("token_uri");
        assert_eq!(
            ServiceAccount::parse(&v.to_string()).unwrap().token_uri,
            DEFAULT_TOKEN_URI
        );
        let body = RSA_KEY.lines().nth(1).unwrap();
        for bad in [
            "not json".to_string(),
            json!({"client_email": "a@b"}).to_string(),
            json!({"client_email": "a@b", "private_key": "-----BEGIN RSA PRIVATE KEY-----\nAAAA\n-----END RSA PRIVATE KEY-----"}).to_string(),
            json!({"client_email": "a@b", "private_key": RSA_KEY.replace(body, "!!!!")}).to_string(),
            json!({"type": "authorized_user", "client_email": "a@b", "private_key": RSA_KEY}).to_string(),
            json!({"client_email": "a@b", "private_key": RSA_KEY, "token_uri": 5}).to_string(),
        ] {
            let e = ServiceAccount::parse(&bad).unwrap_err();
            assert!(!e.contains(body) && !e.contains("AAAA") && !e.contains("!!!!"), "{e}");
        }
    }

    #[test]
    fn assertion_claims_and_rs256_signature_verify() {
        let sa = ServiceAccount::parse(&sa_json()).unwrap();
        let now = 1_764_000_000;
        let input = sa.assertion_input(now);
        let (h, c) = input.split_once('.').unwrap();
        let header: Value = serde_json::from_slice(&URL_SAFE_NO_PAD.decode(h).unwrap()).unwrap();
        assert_eq!(header, json!({"alg": "RS256", "typ": "JWT"}));
        let claims: Value = serde_json::from_slice(&URL_SAFE_NO_PAD.decode(c).unwrap()).unwrap();
        assert_eq!(
            claims,
            json!({"iss": "gw@sa-proj.iam.gserviceaccount.com", "scope": "https://www.googleapis.com/auth/cloud-platform",
                   "aud": "https://oauth2.googleapis.com/token", "iat": now, "exp": now + 3600})
        );
        // Signed natively (what WebCrypto does in the Worker), verified with RustCrypto (jsonwebtoken's
        // `rust_crypto` provider, what the core's native backend uses).
        let key = jsonwebtoken::EncodingKey::from_rsa_pem(RSA_KEY.as_bytes()).unwrap();
        let sig_b64 = jsonwebtoken::crypto::sign(input.as_bytes(), &key, Algorithm::RS256).unwrap();
        let sig = URL_SAFE_NO_PAD.decode(&sig_b64).unwrap();
        let jwt = assertion(&input, &sig);
        assert_eq!(jwt.split('.').count(), 3);
        assert_eq!(jwt.rsplit('.').next().unwrap(), sig_b64);
        let public = jsonwebtoken::DecodingKey::from_rsa_pem(RSA_PUB.as_bytes()).unwrap();
        let verify = |message: &str| {
            jsonwebtoken::crypto::verify(&sig_b64, message.as_bytes(), &public, Algorithm::RS256)
                .unwrap()
        };
        assert!(verify(&input));
        assert!(!verify(&sa.assertion_input(now + 1)));
        let body = token_request_body(&jwt);
        assert_eq!(
            body,
            format!(
                "grant_type=urn%3Aietf%3Aparams%3Aoauth%3Agrant-type%3Ajwt-bearer&assertion={jwt}"
            )
        );
    }

    #[test]
    fn token_responses() {
        let t = parse_token_response(
            "v",
            200,
            br#"{"access_token":"ya29.abc","expires_in":3599,"token_type":"Bearer"}"#,
        )
        .unwrap();
        assert_eq!((t.token.as_str(), t.expires_in), ("ya29.abc", 3599));
        assert!(!format!("{t:?}").contains("ya29"));
        assert_eq!(
            parse_token_response("v", 200, br#"{"access_token":"a"}"#)
                .unwrap()
                .expires_in,
            3600
        );
        let e = parse_token_response(
            "v",
            400,
            br#"{"error":"invalid_grant","error_description":"Invalid JWT Signature. -----BEGIN"}"#,
        )
        .unwrap_err();
        assert_eq!(
            (e.status, e.code.as_deref(), e.retryable),
            (502, Some("upstream_auth_failed"), true)
        );
        assert_eq!(e.message, "provider v: no access token from the service account (the token endpoint answered HTTP 400, invalid_grant)");
        let e = parse_token_response("v", 500, b"<html>oops</html>").unwrap_err();
        assert!(e
            .message
            .ends_with("(the token endpoint answered HTTP 500)"));
        for bad in [
            &br#"{}"#[..],
            br#"{"access_token":""}"#,
            br#"{"access_token":"a b"}"#,
            br#"{"access_token":"a","expires_in":"x"}"#,
            b"nope",
        ] {
            assert_eq!(
                parse_token_response("v", 200, bad)
                    .unwrap_err()
                    .code
                    .as_deref(),
                Some("upstream_auth_failed")
            );
        }
    }

    #[test]
    fn token_cache_fetches_once_and_refreshes_before_expiry() {
        let mut c = TokenCache::new();
        let tok = |s: &str, e| {
            Ok(AccessToken {
                token: s.into(),
                expires_in: e,
            })
        };
        assert_eq!(c.plan(1, 0.0), TokenPlan::Fetch);
        // Concurrent first requests wait for that one request.
        for _ in 0..20 {
            assert_eq!(c.plan(1, 5.0), TokenPlan::Wait { deadline: 10_250.0 });
        }
        // Another service account is independent.
        assert_eq!(c.plan(2, 5.0), TokenPlan::Fetch);
        c.fetched(1, tok("t1", 3600), 100.0);
        assert_eq!(c.lookup(1, 101.0, "v").unwrap(), "t1");
        assert_eq!(c.plan(1, 200.0), TokenPlan::Use("t1".into()));
        // 5 minutes before expiry: refreshed once in the background, the old token used meanwhile.
        let refresh = 100.0 + 3300.0 * 1000.0;
        assert_eq!(c.plan(1, refresh - 1.0), TokenPlan::Use("t1".into()));
        assert_eq!(c.plan(1, refresh), TokenPlan::UseAndRefresh("t1".into()));
        assert_eq!(c.plan(1, refresh + 1.0), TokenPlan::Use("t1".into()));
        c.fetched(1, tok("t2", 3600), refresh + 50.0);
        assert_eq!(c.plan(1, refresh + 60.0), TokenPlan::Use("t2".into()));
        // Short-lived tokens: refreshed at half their lifetime; expired ones are never used.
        c.fetched(3, tok("s", 4), 0.0);
        assert_eq!(c.plan(3, 1_999.0), TokenPlan::Use("s".into()));
        assert_eq!(c.plan(3, 2_000.0), TokenPlan::UseAndRefresh("s".into()));
        c.fetched(3, Err(token_error("v", "x")), 2_100.0);
        // A failed refresh: the valid token goes on being used, the next refresh 10 s later.
        c.fetched(5, tok("f", 3600), 0.0);
        let at = 3_300_000.0;
        assert_eq!(c.plan(5, at), TokenPlan::UseAndRefresh("f".into()));
        c.fetched(5, Err(token_error("v", "x")), at + 10.0);
        assert_eq!(c.plan(5, at + 20.0), TokenPlan::Use("f".into()));
        assert_eq!(c.plan(5, at + 10_009.0), TokenPlan::Use("f".into()));
        assert_eq!(
            c.plan(5, at + 10_010.0),
            TokenPlan::UseAndRefresh("f".into())
        );
        assert!(c.lookup(3, 4_000.0, "v").is_err());
        assert_eq!(c.plan(3, 4_000.0), TokenPlan::Fetch);
        // A failed request: its waiters get its error; the next request tries again.
        assert_eq!(c.plan(4, 0.0), TokenPlan::Fetch);
        c.fetched(
            4,
            Err(token_error(
                "v",
                "the token endpoint answered HTTP 400, invalid_grant",
            )),
            10.0,
        );
        assert!(c
            .lookup(4, 11.0, "v")
            .unwrap_err()
            .message
            .contains("invalid_grant"));
        assert_eq!(c.plan(4, 12.0), TokenPlan::Fetch);
        // A request that never reports is over after its timeout.
        assert_eq!(c.plan(4, 12.0 + 10_250.0), TokenPlan::Fetch);
        assert!(c
            .lookup(4, 30_000.0, "v")
            .unwrap_err()
            .message
            .contains("did not finish in time"));
        // A refused token is forgotten.
        c.forget(1);
        assert_eq!(c.plan(1, refresh + 70.0), TokenPlan::Fetch);
    }

    #[test]
    fn config_defaults_and_validation() {
        let compile = |v: Value| AiProxyConfig::compile(&json!({ "providers": v }));
        let c = compile(json!({"vertex": {"key_secret": "SA", "region": "us-east5"}})).unwrap();
        let t = c.provider("vertex").unwrap();
        assert_eq!(t.kind, ProviderKind::Vertex);
        assert_eq!(t.base_url, "https://us-east5-aiplatform.googleapis.com");
        assert_eq!(t.key_secret.as_deref(), Some("SA"));
        assert_eq!(
            **t.vertex.as_ref().unwrap(),
            VertexOptions {
                project: None,
                region: "us-east5".into(),
                publisher: None
            }
        );
        let c = compile(json!({"vertex": {"key_secret": "SA"}})).unwrap();
        assert_eq!(
            c.provider("vertex").unwrap().base_url,
            "https://aiplatform.googleapis.com"
        );
        assert_eq!(
            c.provider("vertex")
                .unwrap()
                .vertex
                .as_ref()
                .unwrap()
                .region,
            "global"
        );
        let c = compile(json!({"gcp": {"kind": "vertex", "key_secret": "SA", "project": "p-1", "publisher": "anthropic",
                                       "base_url": "http://127.0.0.1:9/"}}))
        .unwrap();
        let t = c.provider("gcp").unwrap();
        assert_eq!(t.base_url, "http://127.0.0.1:9");
        assert_eq!(t.vertex.as_ref().unwrap().project.as_deref(), Some("p-1"));
        assert_eq!(
            t.vertex.as_ref().unwrap().publisher,
            Some(Publisher::Anthropic)
        );
        assert!(compile(json!({"openai": {"key_secret": "K"}}))
            .unwrap()
            .provider("openai")
            .unwrap()
            .vertex
            .is_none());
        let paths = |v: Value| {
            compile(v)
                .unwrap_err()
                .into_iter()
                .map(|(p, _)| p)
                .collect::<Vec<_>>()
        };
        assert_eq!(
            paths(json!({"vertex": {}})),
            ["providers.vertex.key_secret"]
        );
        assert_eq!(
            paths(json!({"gcp": {"kind": "vertex", "base_url": "http://x"}})),
            ["providers.gcp.key_secret"]
        );
        assert_eq!(
            paths(json!({"vertex": {"key_secret": "S", "region": "evil.com/x"}})),
            ["providers.vertex.region"]
        );
        assert_eq!(
            paths(json!({"vertex": {"key_secret": "S", "project": "A/B"}})),
            ["providers.vertex.project"]
        );
        assert_eq!(
            paths(
                json!({"oai": {"kind": "openai", "base_url": "http://x", "project": "p", "publisher": "google"}})
            ),
            ["providers.oai.project", "providers.oai.publisher"]
        );
        assert_eq!(
            paths(json!({"vertex": {"key_secret": "S", "publisher": "meta"}})),
            ["providers.vertex.publisher"]
        );
    }

    #[test]
    fn region_and_project_names() {
        assert!(valid_region("us-east5") && valid_region("global") && valid_region("europe-west1"));
        assert!(
            !valid_region("")
                && !valid_region("evil.com/")
                && !valid_region("US")
                && !valid_region("1a")
        );
        assert!(valid_project("my-proj-123") && valid_project("example.com:proj"));
        assert!(!valid_project("a/b") && !valid_project("") && !valid_project("A"));
        assert_eq!(base_url("global"), "https://aiplatform.googleapis.com");
        assert_eq!(
            base_url("us-east5"),
            "https://us-east5-aiplatform.googleapis.com"
        );
    }
}
