//! AI gateway core: one OpenAI-compatible API in front of many LLM providers.
//!
//! Pure translation, no I/O: the Worker glue resolves a route's targets ([`config`]), builds the upstream
//! request with [`build_request`], adds the provider key it read from a Worker secret
//! ([`UpstreamRequest::headers_with_key`]), sends it, and turns the answer back into OpenAI's format with
//! [`parse_response`] (non-streaming) or a [`StreamTranslator`] (streaming). Errors are [`AiError`]s, in
//! OpenAI's error shape ([`AiError::body`]), flagged [`AiError::retryable`] when the next target should be
//! tried.
//!
//! Providers: OpenAI-compatible (OpenAI, Mistral, Groq, DeepSeek, OpenRouter, Together, any base URL),
//! Azure OpenAI, Anthropic Messages, Google Gemini (AI Studio), Google Vertex AI ([`vertex`]: Gemini and
//! Claude models).

pub mod anthropic;
pub mod bedrock;
pub mod config;
pub mod eventstream;
pub mod gemini;
pub mod ingress;
pub mod messages_in;
pub mod openai;
pub mod responses_in;
pub mod retry;
pub mod sigv4;
pub mod sse;
pub mod types;
pub mod vertex;

pub use config::{AiProxyConfig, CompiledAiProxy};
pub use sse::{SseEvent, SseParser};
pub use types::*;

use serde::Serialize;
use serde_json::{json, Map, Value};

/// The wire format a provider speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ProviderKind {
    /// OpenAI's own format: OpenAI, Mistral, Groq, DeepSeek, OpenRouter, Together, vLLM, Ollama, ...
    #[serde(rename = "openai")]
    OpenAi,
    /// Azure OpenAI: OpenAI's format on a deployment URL, `api-key` header, `api-version` query.
    Azure,
    /// Anthropic Messages API.
    Anthropic,
    /// Google Gemini (AI Studio) `generateContent` / `streamGenerateContent`.
    Gemini,
    /// AWS Bedrock Runtime, Converse / ConverseStream, SigV4-signed.
    Bedrock,
    /// Google Vertex AI: Gemini (Gemini's format) and Claude (Anthropic's format) models, with an
    /// access token from a service account ([`vertex`]).
    Vertex,
}

impl ProviderKind {
    pub fn as_str(self) -> &'static str {
        match self {
            ProviderKind::OpenAi => "openai",
            ProviderKind::Azure => "azure",
            ProviderKind::Anthropic => "anthropic",
            ProviderKind::Gemini => "gemini",
            ProviderKind::Bedrock => "bedrock",
            ProviderKind::Vertex => "vertex",
        }
    }
}

/// One resolved upstream: which provider, where, which model. Holds the key's secret NAME only.
#[derive(Debug, Clone, PartialEq)]
pub struct ProviderTarget {
    /// The provider's name in the configuration (`openai`, `groq`, `my-vllm`, ...).
    pub provider: String,
    pub kind: ProviderKind,
    /// Base URL without a trailing slash (OpenAI-compatible: up to and including `/v1`).
    pub base_url: String,
    /// The upstream model (Azure: the deployment name).
    pub model: String,
    /// Azure `api-version`; Anthropic `anthropic-version`.
    pub api_version: Option<String>,
    /// Extra static headers sent upstream (e.g. OpenRouter's `HTTP-Referer`).
    pub headers: Vec<(String, String)>,
    /// Anthropic requires `max_tokens`: used when the client sets none.
    pub default_max_tokens: u64,
    /// Name of the Worker secret holding the key (`None`: the provider needs no key). Vertex: the
    /// service account's JSON key file.
    pub key_secret: Option<String>,
    /// Bedrock: region and the secret NAMES of the AWS keys (requests are signed, not keyed).
    pub aws: Option<bedrock::AwsAuth>,
    /// Vertex AI: project, region, publisher (`None` for other kinds).
    pub vertex: Option<Box<vertex::VertexOptions>>,
}

impl ProviderTarget {
    /// A target with the defaults of `kind` (base URL of the vendor, no extra headers).
    pub fn new(kind: ProviderKind, model: &str) -> ProviderTarget {
        ProviderTarget {
            provider: kind.as_str().to_string(),
            kind,
            base_url: match kind {
                ProviderKind::OpenAi => "https://api.openai.com/v1",
                ProviderKind::Azure => "",
                ProviderKind::Anthropic => "https://api.anthropic.com",
                ProviderKind::Gemini => "https://generativelanguage.googleapis.com",
                ProviderKind::Bedrock => "https://bedrock-runtime.us-east-1.amazonaws.com",
                ProviderKind::Vertex => "https://aiplatform.googleapis.com",
            }
            .to_string(),
            model: model.to_string(),
            api_version: None,
            headers: Vec::new(),
            default_max_tokens: DEFAULT_MAX_TOKENS,
            key_secret: None,
            aws: (kind == ProviderKind::Bedrock).then(|| bedrock::AwsAuth {
                region: "us-east-1".to_string(),
                access_key_id_secret: bedrock::DEFAULT_ACCESS_KEY_ID_SECRET.to_string(),
                secret_access_key_secret: bedrock::DEFAULT_SECRET_ACCESS_KEY_SECRET.to_string(),
                session_token_secret: None,
            }),
            vertex: (kind == ProviderKind::Vertex).then(Box::default),
        }
    }
}

/// `max_tokens` sent to providers that require one when neither the client nor the target set it.
pub const DEFAULT_MAX_TOKENS: u64 = 4096;

/// Where the provider key goes: a header name and a value prefix (`Bearer `).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyHeader {
    pub name: &'static str,
    pub prefix: &'static str,
}

/// A request to send upstream. It never holds the key: [`UpstreamRequest::headers_with_key`] adds it.
#[derive(Debug, Clone, PartialEq)]
pub struct UpstreamRequest {
    pub method: &'static str,
    pub url: String,
    /// Headers other than the key (lowercase names).
    pub headers: Vec<(String, String)>,
    /// Which header carries the key, if the provider takes one.
    pub key_header: Option<KeyHeader>,
    pub body: Vec<u8>,
    /// Whether the response will be an event stream.
    pub stream: bool,
}

impl UpstreamRequest {
    /// All headers to send, the key included (when there is one).
    pub fn headers_with_key(&self, key: Option<&str>) -> Vec<(String, String)> {
        let mut h = self.headers.clone();
        if let (Some(k), Some(key)) = (&self.key_header, key) {
            h.push((k.name.to_string(), format!("{}{}", k.prefix, key)));
        }
        h
    }
}

/// An error of the AI endpoints, in OpenAI's shape.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AiError {
    /// Status for the client.
    pub status: u16,
    /// OpenAI `type`: `invalid_request_error`, `rate_limit_error`, `upstream_error`, ...
    pub kind: String,
    /// OpenAI `code`, machine-readable.
    pub code: Option<String>,
    pub message: String,
    pub param: Option<String>,
    /// The provider's status, when the error came from the provider.
    pub upstream_status: Option<u16>,
    /// Whether the next target should be tried (429, 5xx, connection failure, first-byte timeout).
    pub retryable: bool,
    /// Response headers the client gets with this error: a provider's rate-limit timing on its 429
    /// (`retry-after`, `retry-after-ms`, `x-ratelimit-*`, lower-case names; see [`retry`]).
    pub headers: Box<[(String, String)]>,
    /// The error body's shape: the client's format (OpenAI's for chat completions and Responses,
    /// Anthropic's for Messages).
    pub shape: ErrorShape,
}

/// The code of a Messages request that asks for a message thread (`thread`) from a target that
/// cannot keep one; in Anthropic's shape its body carries `details.error_code` =
/// `thread_unsupported_request`, on which the Anthropic SDKs' message threads (the 1.x tool runner)
/// send the turn again without a thread, with the whole history.
pub const THREAD_UNSUPPORTED: &str = "thread_unsupported_request";

/// Which wire format an error body is written in ([`AiError::body`]).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum ErrorShape {
    /// `{"error": {"message", "type", "param", "code"}}`.
    #[default]
    OpenAi,
    /// `{"type": "error", "error": {"type", "message"}}`.
    Anthropic,
}

/// The headers of a JSON request to a provider: `content-type: application/json`, `accept` as given, then
/// the provider's own static headers.
pub(crate) fn json_headers(target: &ProviderTarget, accept: &str) -> Vec<(String, String)> {
    let mut h = vec![
        ("content-type".to_string(), "application/json".to_string()),
        ("accept".to_string(), accept.to_string()),
    ];
    h.extend(target.headers.iter().cloned());
    h
}

/// A tool call's `arguments` (JSON text; empty counts as `{}`) as a JSON value, for the providers that
/// take the arguments as an object. Not JSON: a 400 on `param`.
pub(crate) fn call_arguments(call: &ToolCall, param: &str) -> Result<Value, AiError> {
    if call.function.arguments.trim().is_empty() {
        return Ok(Value::Object(Map::new()));
    }
    serde_json::from_str(&call.function.arguments).map_err(|e| {
        AiError::invalid_param(param, format!("tool call arguments are not JSON: {e}"))
    })
}

impl AiError {
    /// A provider stream that ended early (502 `upstream_stream_truncated`); retryable while nothing
    /// reached the client.
    pub fn stream_truncated(retryable: bool, message: &str) -> AiError {
        AiError {
            retryable,
            ..AiError::new(
                502,
                "upstream_error",
                Some("upstream_stream_truncated"),
                message,
            )
        }
    }

    pub fn new(status: u16, kind: &str, code: Option<&str>, message: impl Into<String>) -> AiError {
        AiError {
            status,
            kind: kind.to_string(),
            code: code.map(str::to_string),
            message: message.into(),
            param: None,
            upstream_status: None,
            retryable: false,
            headers: Box::default(),
            shape: ErrorShape::OpenAi,
        }
    }

    /// The same error, its body in `shape`.
    ///
    /// In Anthropic's shape an overload (`overloaded_error`: an Anthropic-format provider's 529, or a
    /// 5xx whose type says so) is answered 529, as Anthropic's API does: the Anthropic SDKs pick their
    /// error class by status (`OverloadedError` for 529, `InternalServerError` for a 502).
    pub fn with_shape(mut self, shape: ErrorShape) -> AiError {
        self.shape = shape;
        if shape == ErrorShape::Anthropic
            && self.status >= 500
            && self.anthropic_type() == "overloaded_error"
        {
            self.status = 529;
        }
        self
    }

    /// Anthropic's error `type` for this error: from the provider's own type when it is one of
    /// Anthropic's, else from the status.
    pub fn anthropic_type(&self) -> &'static str {
        const TYPES: &[&str] = &[
            "invalid_request_error",
            "authentication_error",
            "billing_error",
            "permission_error",
            "not_found_error",
            "request_too_large",
            "rate_limit_error",
            "timeout_error",
            "api_error",
            "overloaded_error",
        ];
        if self.status >= 500 {
            if let Some(t) = self
                .code
                .as_deref()
                .and_then(|c| TYPES.iter().find(|t| **t == c))
            {
                if matches!(*t, "overloaded_error" | "api_error" | "timeout_error") {
                    return t;
                }
            }
        }
        match self.status {
            401 => "authentication_error",
            402 => "billing_error",
            403 => "permission_error",
            404 => "not_found_error",
            413 => "request_too_large",
            429 => "rate_limit_error",
            504 => "timeout_error",
            529 => "overloaded_error",
            s if s >= 500 => "api_error",
            _ => "invalid_request_error",
        }
    }

    /// The client's request is wrong (400).
    pub fn invalid(message: impl Into<String>) -> AiError {
        AiError::new(400, "invalid_request_error", None, message)
    }

    /// The client's request is wrong because of one parameter (400).
    pub fn invalid_param(param: &str, message: impl Into<String>) -> AiError {
        AiError {
            param: Some(param.to_string()),
            ..AiError::invalid(message)
        }
    }

    /// No such model (404, OpenAI's `model_not_found`).
    pub fn model_not_found(model: &str) -> AiError {
        AiError {
            param: Some("model".to_string()),
            ..AiError::new(
                404,
                "invalid_request_error",
                Some("model_not_found"),
                format!("The model `{model}` does not exist or is not available on this route"),
            )
        }
    }

    /// The provider could not be reached (502, retryable).
    pub fn connect_failed(provider: &str, detail: &str) -> AiError {
        AiError {
            retryable: true,
            ..AiError::new(
                502,
                "upstream_error",
                Some("upstream_unreachable"),
                format!("provider {provider} unreachable: {detail}"),
            )
        }
    }

    /// The provider sent no first byte in time (504, retryable).
    pub fn first_byte_timeout(provider: &str, ms: u64) -> AiError {
        AiError {
            retryable: true,
            ..AiError::new(
                504,
                "upstream_error",
                Some("upstream_timeout"),
                format!("provider {provider} sent nothing within {ms} ms"),
            )
        }
    }

    /// The provider answered 2xx with something that is not its format (502).
    pub fn bad_response(provider: &str, detail: impl std::fmt::Display) -> AiError {
        AiError::new(
            502,
            "upstream_error",
            Some("bad_upstream_response"),
            format!("unexpected response from provider {provider}: {detail}"),
        )
    }

    /// A stream event whose data is not JSON (a proxy's page spliced into the stream, a provider bug):
    /// `None` when `data` is JSON or blank (nothing to complain about), else the 502
    /// `bad_upstream_response` that ends the stream, quoting the data's first 100 characters.
    pub fn not_json_event(provider: &str, data: &str) -> Option<AiError> {
        if data.trim().is_empty() || serde_json::from_str::<serde::de::IgnoredAny>(data).is_ok() {
            return None;
        }
        let quoted: String = data.chars().take(100).collect();
        Some(AiError::bad_response(
            provider,
            format!("an event of the stream is not JSON: {quoted}"),
        ))
    }

    /// Translate a provider error (status and message taken from its body) into OpenAI's shape.
    ///
    /// 429 stays 429 (`rate_limit_error`), 5xx becomes 502, 401/403 become 502 (the gateway's provider
    /// key is wrong, not the client's: the provider's message is not passed on, as it may quote part of
    /// the key), other 4xx keep their status with the provider's message. 429 and 5xx are retryable.
    pub fn from_provider(
        provider: &str,
        status: u16,
        provider_type: Option<&str>,
        message: &str,
    ) -> AiError {
        let retryable = status == 429 || status >= 500;
        let message = if message.is_empty() {
            format!("provider {provider} returned HTTP {status}")
        } else {
            message.to_string()
        };
        let mut e = match status {
            429 => AiError::new(
                429,
                "rate_limit_error",
                Some("rate_limit_exceeded"),
                message,
            ),
            401 | 403 => AiError::new(
                502,
                "upstream_error",
                Some("upstream_auth_failed"),
                format!(
                    "provider {provider} rejected the gateway's credentials ({})",
                    provider_type
                        .map(str::to_string)
                        .unwrap_or_else(|| format!("HTTP {status}"))
                ),
            ),
            s if s >= 500 => AiError::new(502, "upstream_error", provider_type, message),
            404 => AiError::new(
                404,
                "invalid_request_error",
                Some("model_not_found"),
                message,
            ),
            s if (400..500).contains(&s) => {
                AiError::new(s, "invalid_request_error", provider_type, message)
            }
            _ => AiError::new(502, "upstream_error", provider_type, message),
        };
        e.upstream_status = Some(status);
        e.retryable = retryable;
        e
    }

    /// The error body in its [`ErrorShape`]: OpenAI's `{"error": {"message", "type", "param",
    /// "code"}}`, or Anthropic's `{"type": "error", "error": {"type", "message"}}`.
    pub fn body(&self) -> Value {
        if self.shape == ErrorShape::Anthropic {
            let mut body = json!({"type": "error", "error": {
                "type": self.anthropic_type(),
                "message": self.message,
            }});
            if self.code.as_deref() == Some(THREAD_UNSUPPORTED) {
                // What the Anthropic SDKs' message threads read to go on without a thread
                // (`error.details.error_code`, `unsupported`).
                body["error"]["details"] = json!({
                    "error_code": THREAD_UNSUPPORTED,
                    "unsupported": [self.param.as_deref().unwrap_or("thread")],
                });
            }
            return body;
        }
        json!({"error": {
            "message": self.message,
            "type": self.kind,
            "param": self.param,
            "code": self.code,
        }})
    }

    /// The body as bytes.
    pub fn body_bytes(&self) -> Vec<u8> {
        serde_json::to_vec(&self.body()).unwrap_or_default()
    }
}

/// A `'static` code for the access log: the AI error's code when it is one the gateway produces,
/// else its `type` family.
pub fn static_code(e: &AiError) -> &'static str {
    const KNOWN: &[&str] = &[
        "rate_limit_exceeded",
        "upstream_unreachable",
        "upstream_timeout",
        "upstream_auth_failed",
        "upstream_stream_truncated",
        "upstream_event_too_large",
        "bad_upstream_response",
        "model_not_found",
        "template_not_found",
        "prompt_guard",
        "provider_key_missing",
        "gateway_misconfigured",
        "payload_too_large",
        "not_found",
        "method_not_allowed",
    ];
    if let Some(c) = e
        .code
        .as_deref()
        .and_then(|c| KNOWN.iter().find(|k| **k == c))
    {
        return c;
    }
    match e.kind.as_str() {
        "invalid_request_error" => "invalid_request_error",
        "rate_limit_error" => "rate_limit_error",
        "upstream_error" => "upstream_error",
        _ => "ai_error",
    }
}

/// What the access log says about an AI request (`"ai": {...}` in the request line, and the
/// `ai_usage` line written when a stream ends).
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct AiLog {
    /// `chat`, `messages`, `responses`, `count_tokens`, `embeddings`, `models`, `model` or `template`.
    pub endpoint: &'static str,
    /// The model the client asked for (alias or `provider/model`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub requested_model: Option<String>,
    /// The provider and upstream model that answered (or were tried last).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub provider: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub model: Option<String>,
    /// Targets tried.
    pub attempts: u32,
    pub stream: bool,
    /// Token counts, once known (for a stream: in the `ai_usage` line at its end).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub prompt_tokens: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub completion_tokens: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub total_tokens: Option<u64>,
}

impl AiLog {
    /// Record token counts.
    pub fn set_usage(&mut self, u: &Usage) {
        self.prompt_tokens = Some(u.prompt_tokens);
        self.completion_tokens = Some(u.completion_tokens);
        self.total_tokens = Some(if u.total_tokens > 0 {
            u.total_tokens
        } else {
            u.prompt_tokens + u.completion_tokens
        });
    }
}

impl std::fmt::Display for AiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} ({}): {}", self.status, self.kind, self.message)
    }
}

/// What the translator needs to fill chunk fields the provider does not send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StreamContext {
    /// Completion id used when the provider sends none (e.g. `chatcmpl-<request id>`).
    pub id: String,
    /// Model name used when the provider sends none.
    pub model: String,
    /// `created` (Unix seconds), taken from the Worker's clock by the glue.
    pub created: u64,
    /// Emit the final usage chunk (empty `choices`) before `[DONE]`.
    pub include_usage: bool,
    /// Seed of the ids given to tool calls the provider sends without one (Gemini): random per
    /// request, drawn by the glue, so that ids never repeat within a conversation ([`tool_call_id`]).
    pub tool_call_seed: u64,
}

/// The id of a tool call a provider sent without one: `call_` and 22 letters and digits, derived from
/// the request's random `seed` and the call's position (`candidate`, `n`). Within one answer distinct
/// positions give distinct ids (the mix is a bijection of the position for a given seed); across
/// answers the 64-bit random seed makes a repeat as unlikely as between two of OpenAI's own ids.
pub fn tool_call_id(seed: u64, candidate: u32, n: u32) -> String {
    /// splitmix64's finaliser: a bijection on u64 that spreads every input bit.
    fn mix(mut z: u64) -> u64 {
        z = z.wrapping_add(0x9E37_79B9_7F4A_7C15);
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    const ALPHABET: &[u8; 62] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
    let first = mix(mix(seed) ^ (u64::from(candidate) << 32 | u64::from(n)));
    let mut id = String::with_capacity(27);
    id.push_str("call_");
    for mut x in [first, mix(first)] {
        for _ in 0..11 {
            id.push(ALPHABET[(x % 62) as usize] as char);
            x /= 62;
        }
    }
    id
}

/// Build the upstream request for a chat completion.
pub fn build_request(
    req: &ChatRequest,
    target: &ProviderTarget,
) -> Result<UpstreamRequest, AiError> {
    match target.kind {
        ProviderKind::OpenAi | ProviderKind::Azure => openai::build_request(req, target),
        ProviderKind::Anthropic => anthropic::build_request(req, target),
        ProviderKind::Gemini => gemini::build_request(req, target),
        ProviderKind::Bedrock => bedrock::build_request(req, target),
        ProviderKind::Vertex => vertex::build_request(req, target),
    }
}

/// Turn a provider's non-streaming answer into an OpenAI response, or its error into an [`AiError`].
/// `ctx` supplies the id/model/created the provider may not send (`include_usage` is ignored).
pub fn parse_response(
    target: &ProviderTarget,
    status: u16,
    body: &[u8],
    ctx: &StreamContext,
) -> Result<ChatResponse, AiError> {
    if !(200..300).contains(&status) {
        return Err(parse_error(target, status, body));
    }
    match target.kind {
        ProviderKind::OpenAi | ProviderKind::Azure => openai::parse_response(target, body, ctx),
        ProviderKind::Anthropic => anthropic::parse_response(target, body, ctx),
        ProviderKind::Gemini => gemini::parse_response(target, body, ctx),
        ProviderKind::Bedrock => bedrock::parse_response(target, body, ctx),
        ProviderKind::Vertex => vertex::parse_response(target, body, ctx),
    }
}

/// Translate a provider's error answer (any non-2xx status) into an [`AiError`].
pub fn parse_error(target: &ProviderTarget, status: u16, body: &[u8]) -> AiError {
    provider_error(target, status, body, &[])
}

/// [`parse_error`] with the answer's response headers: a 429 keeps the provider's rate-limit timing
/// ([`retry::rate_limit_headers`]; Gemini's `retryDelay` from the body becomes `retry-after` when
/// no header gives the wait) in [`AiError::headers`].
pub fn provider_error(
    target: &ProviderTarget,
    status: u16,
    body: &[u8],
    headers: &[(String, String)],
) -> AiError {
    if target.kind == ProviderKind::Bedrock {
        return bedrock::provider_error(target, status, body, headers);
    }
    let v: Value = serde_json::from_slice(body).unwrap_or(Value::Null);
    // Gemini may wrap it in an array; OpenAI, Azure, Anthropic and Gemini all put it under "error".
    let v = match v {
        Value::Array(mut a) if !a.is_empty() => a.swap_remove(0),
        v => v,
    };
    let err = v.get("error").unwrap_or(&Value::Null);
    let message = err
        .get("message")
        .and_then(Value::as_str)
        .map(str::to_string)
        .or_else(|| err.as_str().map(str::to_string))
        .unwrap_or_else(|| {
            let text = String::from_utf8_lossy(body);
            text.chars()
                .take(300)
                .collect::<String>()
                .trim()
                .to_string()
        });
    // The provider's own machine code: OpenAI/Azure `code`, else Anthropic `type` or Gemini `status`.
    let provider_type = [err.get("code"), err.get("type"), err.get("status")]
        .into_iter()
        .flatten()
        .find_map(Value::as_str);
    // Gemini reports a bad key as 400 INVALID_ARGUMENT with reason API_KEY_INVALID: that is the
    // gateway's key, not the client's request.
    let bad_key = err
        .get("details")
        .and_then(Value::as_array)
        .is_some_and(|d| {
            d.iter()
                .any(|x| x.get("reason") == Some(&json!("API_KEY_INVALID")))
        });
    let mut e = if bad_key {
        AiError::from_provider(&target.provider, 401, Some("API_KEY_INVALID"), &message)
    } else {
        AiError::from_provider(&target.provider, status, provider_type, &message)
    };
    e.upstream_status = Some(status);
    if e.status != 502 {
        e.param = err.get("param").and_then(Value::as_str).map(str::to_string);
    }
    if e.status == 429 {
        let mut timing =
            retry::rate_limit_headers(headers.iter().map(|(n, v)| (n.as_str(), v.as_str())));
        let timed = timing
            .iter()
            .any(|(n, _)| n == "retry-after" || n == "retry-after-ms");
        if !timed {
            if let Some(ms) = retry::gemini_retry_delay_ms(err) {
                timing.push(("retry-after".to_string(), ms.div_ceil(1000).to_string()));
            }
        }
        e.headers = timing.into();
    }
    e
}

/// Incremental translator of a provider's event stream into OpenAI chunks (`data: {...}\n\n`, ending
/// with `data: [DONE]\n\n`). The output depends only on the bytes, not on how they are split.
///
/// For the other client formats ([`StreamTranslator::for_ingress`]) a second stage turns those
/// chunks into the client's events (Anthropic Messages, OpenAI Responses), or an Anthropic stream
/// passes through to a Messages client as it came.
#[derive(Debug)]
pub struct StreamTranslator {
    inner: Inner,
    out: Option<ingress::OutStage>,
}

#[derive(Debug)]
enum Inner {
    OpenAi(openai::OpenAiStream),
    Anthropic(anthropic::AnthropicStream),
    Gemini(gemini::GeminiStream),
    AnthropicPass(messages_in::AnthropicPassStream),
    Bedrock(bedrock::BedrockStream),
}

impl StreamTranslator {
    pub fn new(target: &ProviderTarget, ctx: StreamContext) -> StreamTranslator {
        let inner = match target.kind {
            ProviderKind::OpenAi | ProviderKind::Azure => {
                Inner::OpenAi(openai::OpenAiStream::new(ctx))
            }
            ProviderKind::Anthropic => Inner::Anthropic(anthropic::AnthropicStream::new(ctx)),
            ProviderKind::Gemini => Inner::Gemini(gemini::GeminiStream::new(ctx)),
            ProviderKind::Bedrock => Inner::Bedrock(bedrock::BedrockStream::new(target, ctx)),
            ProviderKind::Vertex => match vertex::publisher(target) {
                vertex::Publisher::Google => Inner::Gemini(gemini::GeminiStream::new(ctx)),
                vertex::Publisher::Anthropic => {
                    Inner::Anthropic(anthropic::AnthropicStream::new(ctx))
                }
            },
        };
        StreamTranslator { inner, out: None }
    }

    /// The translator for a client speaking `req.format`: an Anthropic stream passed through to a
    /// Messages client, else the provider's stream translated to chunks and those to the client's
    /// events (`ctx.include_usage` is forced on for the second stage, which needs the usage).
    pub fn for_ingress(
        req: &ingress::IngressRequest,
        target: &ProviderTarget,
        mut ctx: StreamContext,
    ) -> StreamTranslator {
        if req.passes_through(target) {
            return StreamTranslator {
                inner: Inner::AnthropicPass(messages_in::AnthropicPassStream::new()),
                out: None,
            };
        }
        let out = ingress::OutStage::new(req, &ctx);
        if out.is_some() {
            ctx.include_usage = true;
        }
        StreamTranslator {
            out,
            ..StreamTranslator::new(target, ctx)
        }
    }

    /// Feed bytes from the provider; returns SSE bytes for the client ready to send (possibly empty).
    pub fn push(&mut self, bytes: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        match &mut self.inner {
            Inner::OpenAi(s) => s.push(bytes, &mut out),
            Inner::Anthropic(s) => s.push(bytes, &mut out),
            Inner::Gemini(s) => s.push(bytes, &mut out),
            Inner::AnthropicPass(s) => s.push(bytes, &mut out),
            Inner::Bedrock(s) => s.push(bytes, &mut out),
        }
        match &mut self.out {
            Some(stage) => {
                let mut client = Vec::new();
                stage.push(&out, &mut client);
                client
            }
            None => out,
        }
    }

    /// The provider's stream ended: returns the last bytes (usage chunk, `[DONE]`, or an error chunk
    /// when the stream was cut before its end).
    pub fn finish(&mut self) -> Vec<u8> {
        let mut out = Vec::new();
        match &mut self.inner {
            Inner::OpenAi(s) => s.finish(&mut out),
            Inner::Anthropic(s) => s.finish(&mut out),
            Inner::Gemini(s) => s.finish(&mut out),
            Inner::AnthropicPass(s) => s.finish(&mut out),
            Inner::Bedrock(s) => s.finish(&mut out),
        }
        match &mut self.out {
            Some(stage) => {
                let mut client = Vec::new();
                stage.push(&out, &mut client);
                stage.finish(&mut client);
                client
            }
            None => out,
        }
    }

    /// Whether translated output carries anything but error events, pings and `[DONE]` (the glue
    /// still falls back to the next target when a stream's first bytes hold only a retryable error).
    pub fn has_content(&self, out: &[u8]) -> bool {
        out.split(|&b| b == b'\n')
            .filter_map(|l| l.strip_prefix(b"data: "))
            .any(|d| {
                if d == b"[DONE]" {
                    return false;
                }
                match serde_json::from_slice::<Value>(d) {
                    Ok(v) => {
                        let error = v.get("error").is_some_and(|e| !e.is_null());
                        let kind = v.get("type").and_then(Value::as_str);
                        !(error || matches!(kind, Some("error" | "ping")))
                    }
                    Err(_) => true,
                }
            })
    }

    /// The usage seen so far (complete once the stream has finished).
    pub fn usage(&self) -> Option<&Usage> {
        self.state().usage.as_ref()
    }

    /// The last finish reason seen.
    pub fn finish_reason(&self) -> Option<&str> {
        self.state().finish_reason.as_deref()
    }

    /// The model the provider said it used, if it said.
    pub fn model(&self) -> Option<&str> {
        self.state().model.as_deref()
    }

    /// The error the stream carried, if any.
    pub fn error(&self) -> Option<&AiError> {
        self.state().error.as_ref()
    }

    fn state(&self) -> &StreamState {
        match &self.inner {
            Inner::OpenAi(s) => &s.state,
            Inner::Anthropic(s) => &s.state,
            Inner::Gemini(s) => &s.state,
            Inner::AnthropicPass(s) => &s.state,
            Inner::Bedrock(s) => &s.state,
        }
    }
}

/// What every stream translator records.
#[derive(Debug, Default)]
pub(crate) struct StreamState {
    pub usage: Option<Usage>,
    pub finish_reason: Option<String>,
    pub model: Option<String>,
    pub error: Option<AiError>,
    /// `[DONE]` has been written: nothing more is.
    pub done: bool,
}

/// Append one `data: <json>\n\n` event.
pub(crate) fn write_event(out: &mut Vec<u8>, value: &impl Serialize) {
    out.extend_from_slice(b"data: ");
    if serde_json::to_writer(&mut *out, value).is_err() {
        out.extend_from_slice(b"{}");
    }
    out.extend_from_slice(b"\n\n");
}

/// Append `data: [DONE]\n\n`.
pub(crate) fn write_done(out: &mut Vec<u8>) {
    out.extend_from_slice(b"data: [DONE]\n\n");
}

/// Append an in-stream error event in OpenAI's shape (the SDKs raise it as an API error).
pub(crate) fn write_error(out: &mut Vec<u8>, e: &AiError) {
    write_event(out, &e.body());
}

/// A chunk with one choice.
pub(crate) fn chunk(ctx: &StreamContext, id: &str, model: &str, choice: ChunkChoice) -> ChatChunk {
    ChatChunk {
        id: if id.is_empty() {
            ctx.id.clone()
        } else {
            id.to_string()
        },
        object: "chat.completion.chunk".to_string(),
        created: ctx.created,
        model: if model.is_empty() {
            ctx.model.clone()
        } else {
            model.to_string()
        },
        choices: vec![choice],
        usage: None,
        extra: Extra::new(),
    }
}

/// Parse a `data:` URL (`data:image/png;base64,AAAA`) into (media type, base64 data).
pub(crate) fn parse_data_url(url: &str) -> Option<(String, String)> {
    let rest = url.strip_prefix("data:")?;
    let (meta, data) = rest.split_once(',')?;
    let media = meta.strip_suffix(";base64")?;
    Some((media.to_string(), data.to_string()))
}

/// Join a base URL and a path with exactly one slash.
pub(crate) fn join_url(base: &str, path: &str) -> String {
    format!(
        "{}/{}",
        base.trim_end_matches('/'),
        path.trim_start_matches('/')
    )
}

/// Percent-encode a path segment or query value (unreserved characters kept).
pub(crate) fn encode_component(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// Build the upstream request for embeddings (OpenAI-compatible, Azure, Gemini).
pub fn build_embeddings_request(
    req: &EmbeddingsRequest,
    target: &ProviderTarget,
) -> Result<UpstreamRequest, AiError> {
    match target.kind {
        ProviderKind::OpenAi | ProviderKind::Azure => openai::build_embeddings_request(req, target),
        ProviderKind::Gemini => gemini::build_embeddings_request(req, target),
        ProviderKind::Anthropic => Err(AiError::invalid_param(
            "model",
            format!(
                "provider {} (anthropic) has no embeddings API",
                target.provider
            ),
        )),
        ProviderKind::Bedrock => Err(AiError::invalid_param(
            "model",
            format!(
                "provider {} (bedrock): embeddings are not supported through the gateway",
                target.provider
            ),
        )),
        ProviderKind::Vertex => Err(AiError::invalid_param(
            "model",
            format!(
                "provider {} (vertex): embeddings are not supported on Vertex AI providers",
                target.provider
            ),
        )),
    }
}

/// Turn a provider's embeddings answer into OpenAI's format.
pub fn parse_embeddings_response(
    target: &ProviderTarget,
    status: u16,
    body: &[u8],
    model: &str,
) -> Result<EmbeddingsResponse, AiError> {
    if !(200..300).contains(&status) {
        return Err(parse_error(target, status, body));
    }
    match target.kind {
        ProviderKind::Gemini => gemini::parse_embeddings_response(target, body, model),
        _ => serde_json::from_slice(body).map_err(|e| AiError::bad_response(&target.provider, e)),
    }
}

/// Apply the client's `encoding_format: "base64"` to vectors a provider returned as number lists
/// (Gemini): little-endian `f32`s, base64-encoded, as OpenAI returns them (the OpenAI SDKs ask for
/// base64 by default and decode it).
pub fn apply_encoding_format(req: &EmbeddingsRequest, resp: &mut EmbeddingsResponse) {
    if req.encoding_format.as_deref() != Some("base64") {
        return;
    }
    for e in &mut resp.data {
        if let Value::Array(values) = &e.embedding {
            let mut bytes = Vec::with_capacity(values.len() * 4);
            for v in values {
                bytes.extend_from_slice(&(v.as_f64().unwrap_or(0.0) as f32).to_le_bytes());
            }
            e.embedding = Value::String(base64(&bytes));
        }
    }
}

/// Standard base64 with padding.
fn base64(bytes: &[u8]) -> String {
    const A: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for c in bytes.chunks(3) {
        let n = (c[0] as u32) << 16
            | (*c.get(1).unwrap_or(&0) as u32) << 8
            | *c.get(2).unwrap_or(&0) as u32;
        for i in 0..4 {
            if i <= c.len() {
                out.push(A[(n >> (18 - 6 * i) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

#[cfg(test)]
mod encoding_tests {
    use super::*;
    #[cfg(target_arch = "wasm32")]
    use wasm_bindgen_test::wasm_bindgen_test as test;

    #[test]
    fn base64_matches_rfc4648_vectors() {
        for (i, o) in [
            ("", ""),
            ("f", "Zg=="),
            ("fo", "Zm8="),
            ("foo", "Zm9v"),
            ("foobar", "Zm9vYmFy"),
        ] {
            assert_eq!(base64(i.as_bytes()), o);
        }
    }

    #[test]
    fn float_vectors_become_base64_f32_le_only_when_asked() {
        let mut resp = EmbeddingsResponse {
            data: vec![Embedding {
                object: "embedding".into(),
                index: 0,
                embedding: json!([1.0, -2.5]),
            }],
            ..Default::default()
        };
        let mut req = EmbeddingsRequest::default();
        apply_encoding_format(&req, &mut resp);
        assert_eq!(resp.data[0].embedding, json!([1.0, -2.5]));
        req.encoding_format = Some("base64".into());
        apply_encoding_format(&req, &mut resp);
        // 1.0f32 = 00 00 80 3F, -2.5f32 = 00 00 20 C0
        assert_eq!(
            resp.data[0].embedding,
            json!(base64(&[0, 0, 0x80, 0x3F, 0, 0, 0x20, 0xC0]))
        );
        assert_eq!(resp.data[0].embedding, json!("AACAPwAAIMA="));
    }
}

#[cfg(test)]
mod tests;

#[cfg(test)]
mod ingress_tests;
