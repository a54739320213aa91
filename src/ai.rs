//! AI phase: routes with an `ai-proxy` plugin answer OpenAI-compatible requests from LLM providers.
//!
//! Endpoints are recognised by the END of the request path, so they work under whatever path the route
//! matched (route path `/ai` and an SDK base URL `https://gw/ai/v1` give `/ai/v1/chat/completions`):
//! `POST …/chat/completions`, `POST …/embeddings`, `GET …/models`, and prompt templates as plain REST
//! endpoints, `POST …/templates/{name}`. Anything else on an AI route is a 404 in OpenAI's error shape.
//!
//! Per request: pick the plugin instance, resolve the model to its targets, and try them in order. An
//! attempt builds the provider request (core), adds the key read from the Worker secret named by the
//! provider's `key_secret`, fetches it, and waits for the first body bytes within
//! `fallback.first_byte_timeout_ms`. On 429, 5xx, connection failure, timeout, or a stream whose first
//! bytes already carry a retryable error, the next target is tried: nothing has been sent to the client
//! yet. A stream is then translated chunk by chunk by a task kept alive with `ctx.waitUntil` ([`pump`]),
//! which writes each translated chunk into the response body (an `IdentityTransformStream`) and waits
//! until the runtime has taken it before reading the provider on: nothing is buffered, backpressure
//! reaches the provider, and a client that goes away is noticed in the request's own context (the
//! write fails), where the provider's stream is cancelled and the stream's end accounted.
//!
//! Nothing that may run outside the request's context (a value dropped by the garbage collector once
//! the request is gone) calls JS that can throw: the wasm is built with panic = "abort", so an
//! exception thrown through Rust frames is a "Critical error" that takes the instance down. The JS
//! helpers below never throw.
//!
//! Keys: read per attempt, passed only into the upstream request's headers; never logged, never in a
//! response, never in an error message (provider 401/403 messages are not passed on).

use crate::exchange::Exchange;
use crate::runtime;
use edgegate_core::ai::ingress::{IngressAnswer, IngressFormat, IngressRequest};
use edgegate_core::ai::{
    self, messages_in, responses_in, AiError, AiLog, ChatRequest, ChatResponse, CompiledAiProxy,
    EmbeddingsRequest, ErrorShape, ProviderKind, ProviderTarget, StreamContext, StreamTranslator,
    UpstreamRequest,
};
use edgegate_core::plugins::PluginInstance;
use edgegate_core::proxy as rules;
use edgegate_core::{AiErrorExt, ErrorKind, GatewayError};
use futures_util::future::{select, Either};
use std::rc::Rc;
use std::time::Duration;
use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;
use wasm_bindgen_futures::JsFuture;

#[wasm_bindgen(inline_js = r#"
// A provider answer's headers as "name\nvalue\n..." (values cannot hold a newline).
export function headerLines(response) {
  const out = [];
  for (const [name, value] of response.headers) out.push(name, value);
  return out.join("\n");
}

// A reader of the answer's body, or null when it has none.
export function bodyReader(response) {
  return response.body === null ? null : response.body.getReader();
}

// The next chunk: a promise of a Uint8Array, of undefined at the end, rejected when the body broke.
// Never throws.
export function readChunk(reader) {
  try {
    return reader.read().then((r) => (r.done ? undefined : r.value));
  } catch (e) {
    return Promise.reject(e);
  }
}

// Stop reading an answer: cancel its body and abort its fetch. Never throws: it may run where no I/O
// is allowed (a value dropped by the garbage collector), and then does nothing.
export function release(reader, abort) {
  try {
    if (reader !== null) reader.cancel().catch(() => {});
  } catch {}
  try {
    abort.abort();
  } catch {}
}

// The client's body, [readable, writer]. An IdentityTransformStream (workerd) fails a write as soon as
// the runtime stops reading the response, whether the client went away before or after it started.
export function clientPipe() {
  const pipe =
    typeof IdentityTransformStream === "function" ? new IdentityTransformStream() : new TransformStream();
  return [pipe.readable, pipe.writable.getWriter()];
}

// Write to the client: resolves to true once the runtime took the bytes, to false when it will not
// (the client went away). Never throws or rejects.
export function writeChunk(writer, bytes) {
  try {
    return writer.write(bytes).then(() => true, () => false);
  } catch {
    return Promise.resolve(false);
  }
}

// End the client's body: resolves to true when it ended cleanly. Never throws or rejects.
export function closeWriter(writer) {
  try {
    return writer.close().then(() => true, () => false);
  } catch {
    return Promise.resolve(false);
  }
}

// Break the client's body off. Never throws.
export function abortWriter(writer) {
  try {
    writer.abort().catch(() => {});
  } catch {}
}
"#)]
extern "C" {
    #[wasm_bindgen(js_name = headerLines)]
    fn header_lines(response: &web_sys::Response) -> String;
    #[wasm_bindgen(js_name = bodyReader)]
    fn body_reader(response: &web_sys::Response) -> JsValue;
    #[wasm_bindgen(js_name = readChunk)]
    fn read_chunk(reader: &JsValue) -> js_sys::Promise;
    fn release(reader: &JsValue, abort: &web_sys::AbortController);
    #[wasm_bindgen(js_name = clientPipe)]
    fn client_pipe() -> js_sys::Array;
    /// Takes the bytes by value: the JS side gets its own copy, never a view of wasm memory.
    #[wasm_bindgen(js_name = writeChunk)]
    fn write_chunk(writer: &JsValue, bytes: Vec<u8>) -> js_sys::Promise;
    #[wasm_bindgen(js_name = closeWriter)]
    fn close_writer(writer: &JsValue) -> js_sys::Promise;
    #[wasm_bindgen(js_name = abortWriter)]
    fn abort_writer(writer: &JsValue);
}

/// Largest request body accepted on an AI endpoint.
const MAX_REQUEST_BYTES: usize = 10 << 20;
/// Largest non-streamed provider answer read.
const MAX_RESPONSE_BYTES: usize = 32 << 20;

pub const PROVIDER_HEADER: &str = "x-edgegate-ai-provider";
pub const MODEL_HEADER: &str = "x-edgegate-ai-model";
pub const ATTEMPTS_HEADER: &str = "x-edgegate-ai-attempts";

/// The `ai-proxy` instance for this request: the most specific one that applies (consumer-scoped
/// instances only for their consumer).
fn plugin<'a>(ex: &Exchange<'a>) -> Option<&'a CompiledAiProxy> {
    let username = ex.identity.as_ref().map(|i| i.username.as_str());
    let mut best: Option<(u8, &'a CompiledAiProxy)> = None;
    for p in ex.plugins() {
        if p.consumer.is_some() && p.consumer.as_deref() != username {
            continue;
        }
        if let Some(c) = p.config::<CompiledAiProxy>() {
            if best.is_none_or(|(s, _)| p.specificity() > s) {
                best = Some((p.specificity(), c));
            }
        }
    }
    best.map(|(_, c)| c)
}

/// Whether the route has an `ai-proxy` plugin at all (for any consumer).
pub(crate) fn is_ai_route(ex: &Exchange<'_>) -> bool {
    ex.plugins()
        .any(|p| p.config::<CompiledAiProxy>().is_some())
}

/// On AI routes, show any error (authentication, ACL, limits, ...) in OpenAI's error shape, keeping
/// its status, code and headers (`WWW-Authenticate`, `Retry-After`).
pub fn error_shape(ex: &Exchange<'_>, e: GatewayError) -> GatewayError {
    if !is_ai_route(ex) {
        return e;
    }
    // The client's format (Anthropic Messages clients get Anthropic's error shape).
    let shape = client_shape(ex, &Endpoint::parse(ex.url.path));
    if let ErrorKind::Ai { error, wraps } = e.kind {
        return GatewayError::new(
            ErrorKind::Ai {
                error: Box::new(error.with_shape(shape)),
                wraps,
            },
            e.detail,
        );
    }
    let error = AiError::from_gateway(&e).with_shape(shape);
    GatewayError::new(
        ErrorKind::Ai {
            error: Box::new(error),
            wraps: Some(Box::new(e.kind)),
        },
        e.detail,
    )
}

enum Endpoint {
    Chat,
    Embeddings,
    Models,
    Template(String),
    /// Anthropic Messages, `…/v1/messages`.
    Messages,
    /// Anthropic `…/v1/messages/count_tokens`.
    CountTokens,
    /// OpenAI Responses, `…/responses`.
    Responses,
    /// `GET …/models/{id}`.
    Model(String),
    Unknown,
}

impl Endpoint {
    fn parse(path: &str) -> Endpoint {
        let path = path.trim_end_matches('/');
        if path.ends_with("/chat/completions") {
            Endpoint::Chat
        } else if path.ends_with("/embeddings") {
            Endpoint::Embeddings
        } else if path.ends_with("/messages/count_tokens") {
            Endpoint::CountTokens
        } else if path.ends_with("/messages") {
            Endpoint::Messages
        } else if path.ends_with("/responses") {
            Endpoint::Responses
        } else if path.ends_with("/models") {
            Endpoint::Models
        } else if let Some(i) = path.rfind("/templates/") {
            let name = &path[i + "/templates/".len()..];
            if name.is_empty() || name.contains('/') {
                Endpoint::Unknown
            } else {
                Endpoint::Template(name.to_string())
            }
        } else if let Some(i) = path.find("/models/") {
            // A model id may hold a slash (`provider/model`), sent as is or as %2F.
            let id = percent_decode(&path[i + "/models/".len()..]);
            if id.is_empty() {
                Endpoint::Unknown
            } else {
                Endpoint::Model(id)
            }
        } else {
            Endpoint::Unknown
        }
    }

    fn method(&self) -> &'static str {
        match self {
            Endpoint::Models | Endpoint::Model(_) => "GET",
            _ => "POST",
        }
    }

    /// The shape of this endpoint's errors.
    fn error_shape(&self) -> ErrorShape {
        match self {
            Endpoint::Messages | Endpoint::CountTokens => ErrorShape::Anthropic,
            _ => ErrorShape::OpenAi,
        }
    }
}

/// The error shape of a path: Anthropic's on the Messages endpoints and under `…/messages/` (an
/// Anthropic client calling an endpoint the gateway does not have), else OpenAI's.
fn shape_of(path: &str) -> ErrorShape {
    match Endpoint::parse(path) {
        Endpoint::Unknown if path.contains("/messages/") => ErrorShape::Anthropic,
        e => e.error_shape(),
    }
}

/// The error shape of a request: its path's ([`shape_of`]), or Anthropic's on `…/models` and
/// `…/models/{id}` when the client sends `anthropic-version`, as the Anthropic SDKs' `models.list()`
/// and `models.retrieve()` do (they also read `request-id` there).
fn client_shape(ex: &Exchange<'_>, endpoint: &Endpoint) -> ErrorShape {
    match endpoint {
        Endpoint::Models | Endpoint::Model(_) if ex.header("anthropic-version").is_some() => {
            ErrorShape::Anthropic
        }
        _ => shape_of(ex.url.path),
    }
}

/// `%XX` escapes decoded (invalid ones and invalid UTF-8 left as they are).
fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        let hex = |c: u8| (c as char).to_digit(16);
        if b[i] == b'%' && i + 2 < b.len() {
            if let (Some(h), Some(l)) = (hex(b[i + 1]), hex(b[i + 2])) {
                out.push((h * 16 + l) as u8);
                i += 3;
                continue;
            }
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8(out).unwrap_or_else(|_| s.to_string())
}

/// The serve hook of `ai-proxy` (`crate::plugins::HOOKS`).
pub fn serve_hook<'x, 'a>(
    ex: &'x mut Exchange<'a>,
    _instances: &'x [&'a PluginInstance],
) -> crate::plugins::Step<'x> {
    Box::pin(async move {
        Ok(match serve(ex).await? {
            Some(response) => crate::plugins::Flow::Respond(response),
            None => crate::plugins::Flow::Continue,
        })
    })
}

/// `Ok(None)` when the route has no `ai-proxy` plugin (the request goes on to the cache and proxy).
async fn serve(ex: &mut Exchange<'_>) -> Result<Option<web_sys::Response>, GatewayError> {
    let Some(cfg) = plugin(ex) else {
        return Ok(None);
    };
    let endpoint = Endpoint::parse(ex.url.path);
    let shape = client_shape(ex, &endpoint);
    let method = ex.raw.method();
    if matches!(endpoint, Endpoint::Unknown) {
        return Err(AiError::new(
            404,
            "invalid_request_error",
            Some("not_found"),
            "unknown AI endpoint: use …/v1/chat/completions, …/v1/messages, …/v1/responses, …/v1/embeddings, …/v1/models or …/templates/{name}",
        )
        .with_shape(shape)
        .into_gateway());
    }
    if method != endpoint.method() {
        let allow = endpoint.method();
        return Err(GatewayError::new(
            ErrorKind::Ai {
                error: Box::new(
                    AiError::new(
                        405,
                        "invalid_request_error",
                        Some("method_not_allowed"),
                        format!("this endpoint takes {allow}"),
                    )
                    .with_shape(shape),
                ),
                wraps: Some(Box::new(ErrorKind::MethodNotAllowed {
                    allow: vec![allow.to_string()],
                })),
            },
            format!("this endpoint takes {allow}"),
        ));
    }
    ex.response_headers
        .push((rules::REQUEST_ID.to_string(), ex.request_id.to_string()));
    if matches!(shape, ErrorShape::Anthropic) {
        // The Anthropic SDKs read the request id from `request-id` (`_request_id`, `error.requestID`).
        ex.response_headers
            .push(("request-id".to_string(), ex.request_id.to_string()));
    }
    let mut log = AiLog::default();
    let result = match endpoint {
        Endpoint::Chat => chat(ex, cfg, &mut log).await,
        Endpoint::Embeddings => embeddings(ex, cfg, &mut log).await,
        Endpoint::Models => {
            log.endpoint = "models";
            models_list(ex, cfg)
        }
        Endpoint::Template(name) => template(ex, cfg, &name, &mut log).await,
        Endpoint::Messages => messages(ex, cfg, &mut log).await,
        Endpoint::CountTokens => count_tokens(ex, cfg, &mut log).await,
        Endpoint::Responses => responses(ex, cfg, &mut log).await,
        Endpoint::Model(id) => {
            log.endpoint = "model";
            model_info(ex, cfg, &id)
        }
        Endpoint::Unknown => unreachable_endpoint(),
    };
    let result = result.map_err(|e| e.with_shape(shape));
    if let (Some(p), Some(m)) = (&log.provider, &log.model) {
        ex.response_headers
            .push((PROVIDER_HEADER.to_string(), p.clone()));
        ex.response_headers
            .push((MODEL_HEADER.to_string(), m.clone()));
    }
    if log.attempts > 0 {
        ex.response_headers
            .push((ATTEMPTS_HEADER.to_string(), log.attempts.to_string()));
    }
    match &result {
        Ok(_) => charge_tokens(ex, log.stream).await,
        // A provider's rate-limit timing (429): the gateway's own headers of the same name (a token
        // budget's `x-ratelimit-*-tokens`) describe this client's budget and win.
        Err(e) => {
            // A 5xx that retrying cannot mend (a provider refusing the gateway's key, a
            // misconfiguration): the SDKs retry 5xx unless told not to.
            if e.status >= 500 && !e.retryable {
                ex.response_headers
                    .push(("x-should-retry".to_string(), "false".to_string()));
            }
            for (name, value) in e.headers.iter() {
                if !ex
                    .response_headers
                    .iter()
                    .any(|(n, _)| n.eq_ignore_ascii_case(name))
                {
                    ex.response_headers.push((name.clone(), value.clone()));
                }
            }
        }
    }
    ex.log.ai = Some(log);
    result.map(Some).map_err(AiError::into_gateway)
}

/// Charge the answer's tokens to the token budgets (`rate-limiting` with `count: tokens`) that
/// apply: now for a JSON answer (so the client's next request sees it), when the stream ends for a
/// stream (kept alive with `waitUntil`; the stream's [`pump`] ends it, also when the client goes
/// away early, in the request's context).
async fn charge_tokens(ex: &Exchange<'_>, streamed: bool) {
    let charges = crate::ratelimit::token_charges(ex);
    if charges.is_empty() {
        return;
    }
    if streamed {
        let tokens = ex.ai_tokens.clone();
        let env = ex.env.clone();
        let request_id = ex.request_id.to_string();
        ex.ctx.wait_until(async move {
            tokens.clone().ended().await;
            if let Some(n) = tokens.get() {
                crate::ratelimit::charge_tokens(&env, &charges, n, &request_id).await;
            }
        });
    } else if let Some(n) = ex.ai_tokens.get() {
        crate::ratelimit::charge_tokens(ex.env, &charges, n, ex.request_id).await;
    }
}

fn unreachable_endpoint() -> Result<web_sys::Response, AiError> {
    Err(AiError::new(
        404,
        "invalid_request_error",
        Some("not_found"),
        "unknown AI endpoint",
    ))
}

fn now_secs() -> u64 {
    (runtime::now_ms() / 1000.0).max(0.0) as u64
}

// ---------------------------------------------------------------------------------------------------
// Endpoints

async fn chat(
    ex: &mut Exchange<'_>,
    cfg: &CompiledAiProxy,
    log: &mut AiLog,
) -> Result<web_sys::Response, AiError> {
    log.endpoint = "chat";
    let body = read_body(ex).await?;
    let mut req = ChatRequest::from_json(&body).map_err(|e| {
        let message = format!("the body is not a valid chat request: {e}");
        match ChatRequest::param_at_fault(&body) {
            Some((param, code)) => AiError {
                code: Some(code.to_string()),
                ..AiError::invalid_param(&param, message)
            },
            None => AiError::invalid(message),
        }
    })?;
    check_chat(&req)?;
    log.requested_model = Some(req.model.clone());
    log.stream = req.is_stream();
    cfg.check_guard(&req)?;
    cfg.decorate(&mut req);
    match complete(ex, cfg, &IngressRequest::chat(req), log).await? {
        Outcome::Json(resp) => json_response(200, &resp),
        Outcome::Body(bytes) => bytes_response(200, bytes),
        Outcome::Stream(resp) => Ok(resp),
    }
}

/// What OpenAI's API refuses and the SDKs' users therefore expect refused: no `messages` (or an
/// empty list), a function tool without `function.name`.
fn check_chat(req: &ChatRequest) -> Result<(), AiError> {
    if req.messages.is_empty() {
        return Err(AiError::invalid_param(
            "messages",
            "'messages' is required and must hold at least one message",
        ));
    }
    for (i, t) in req.tools.iter().flatten().enumerate() {
        if t.kind == "function" && t.function.name.is_empty() {
            return Err(AiError::invalid_param(
                &format!("tools[{i}].function.name"),
                "a function tool needs function.name",
            ));
        }
    }
    Ok(())
}

async fn template(
    ex: &mut Exchange<'_>,
    cfg: &CompiledAiProxy,
    name: &str,
    log: &mut AiLog,
) -> Result<web_sys::Response, AiError> {
    log.endpoint = "template";
    let body = read_body(ex).await?;
    let vars = if body.iter().all(u8::is_ascii_whitespace) {
        serde_json::Map::new()
    } else {
        match serde_json::from_slice::<serde_json::Value>(&body) {
            Ok(serde_json::Value::Object(m)) => m,
            _ => {
                return Err(AiError::invalid(
                    "the body must be a JSON object of template variables",
                ))
            }
        }
    };
    let mut req = cfg.fill_template(name, &vars)?;
    req.stream = None;
    log.requested_model = Some(req.model.clone());
    cfg.check_guard(&req)?;
    cfg.decorate(&mut req);
    let Outcome::Json(resp) = complete(ex, cfg, &IngressRequest::chat(req), log).await? else {
        return Err(AiError::invalid("templates do not stream"));
    };
    let choice = resp.choices.first();
    json_response(
        200,
        &serde_json::json!({
            "template": name,
            "output": choice.and_then(|c| c.message.content.clone()).unwrap_or_default(),
            "finish_reason": choice.and_then(|c| c.finish_reason.clone()),
            "model": resp.model,
            "usage": resp.usage,
        }),
    )
}

async fn embeddings(
    ex: &mut Exchange<'_>,
    cfg: &CompiledAiProxy,
    log: &mut AiLog,
) -> Result<web_sys::Response, AiError> {
    log.endpoint = "embeddings";
    let body = read_body(ex).await?;
    let req = EmbeddingsRequest::from_json(&body).map_err(|e| {
        let message = format!("the body is not a valid embeddings request: {e}");
        match EmbeddingsRequest::param_at_fault(&body) {
            Some((param, code)) => AiError {
                code: Some(code.to_string()),
                ..AiError::invalid_param(&param, message)
            },
            None => AiError::invalid(message),
        }
    })?;
    log.requested_model = Some(req.model.clone());
    let targets = cfg.resolve(&req.model, seed())?;
    let timeout = cfg.config.fallback.first_byte_timeout_ms;
    let mut limited = RateLimited::default();
    let mut attempt = 0;
    loop {
        let target = &targets[attempt];
        note_attempt(log, attempt, target);
        let result = async {
            let up = ai::build_embeddings_request(&req, target)?;
            let key = provider_key(ex, target)?;
            let mut opened = open(ex, &up, key.as_deref(), target, timeout).await?;
            let bytes = opened.read_rest().await?;
            if !(200..300).contains(&opened.status) {
                return Err(opened.error(target, &bytes));
            }
            let model = if req.model.is_empty() {
                target.model.clone()
            } else {
                req.model.clone()
            };
            let mut resp = ai::parse_embeddings_response(target, opened.status, &bytes, &model)?;
            ai::apply_encoding_format(&req, &mut resp);
            Ok(resp)
        }
        .await;
        match result {
            Ok(resp) => {
                if let Some(u) = &resp.usage {
                    log.set_usage(u);
                    ex.ai_tokens.set(log.total_tokens);
                }
                return json_response(200, &resp);
            }
            Err(e) if attempt + 1 < targets.len() && cfg.should_fall_back(&e) => {
                limited.note(&e);
                report_fallback(ex, target, &e);
                attempt += 1;
            }
            Err(e) => return Err(limited.last(e)),
        }
    }
}

// ---------------------------------------------------------------------------------------------------
// Client formats besides chat completions (Anthropic Messages, OpenAI Responses), models/{id}

/// Response header telling how `count_tokens` counted: `exact` (the provider counted) or `estimate`.
pub const TOKEN_COUNT_HEADER: &str = "x-edgegate-token-count";

/// `POST …/v1/messages`: Anthropic Messages, answered in Anthropic's format by any provider.
async fn messages(
    ex: &mut Exchange<'_>,
    cfg: &CompiledAiProxy,
    log: &mut AiLog,
) -> Result<web_sys::Response, AiError> {
    log.endpoint = "messages";
    let body = read_body(ex).await?;
    let req = messages_in::parse_request(
        &body,
        ex.header("anthropic-version").as_deref(),
        ex.header("anthropic-beta").as_deref(),
        false,
    )?;
    answer(ex, cfg, req, log).await
}

/// `POST …/v1/responses`: OpenAI Responses (stateless), answered by any provider.
async fn responses(
    ex: &mut Exchange<'_>,
    cfg: &CompiledAiProxy,
    log: &mut AiLog,
) -> Result<web_sys::Response, AiError> {
    log.endpoint = "responses";
    let body = read_body(ex).await?;
    let req = responses_in::parse_request(&body)?;
    answer(ex, cfg, req, log).await
}

/// A parsed Messages or Responses request, answered in its own format by the route's providers.
async fn answer(
    ex: &mut Exchange<'_>,
    cfg: &CompiledAiProxy,
    mut req: IngressRequest,
    log: &mut AiLog,
) -> Result<web_sys::Response, AiError> {
    log.requested_model = Some(req.chat.model.clone());
    log.stream = req.is_stream();
    cfg.check_guard(&req.chat)?;
    req.decorate(cfg);
    match complete(ex, cfg, &req, log).await? {
        Outcome::Json(resp) => json_response(200, &resp),
        Outcome::Body(bytes) => bytes_response(200, bytes),
        Outcome::Stream(resp) => Ok(resp),
    }
}

/// `POST …/v1/messages/count_tokens`: Anthropic-kind targets count (the request is forwarded to
/// their `count_tokens`), Gemini targets too (`countTokens`), with fallback as for messages; for a
/// target of another format the gateway estimates. The answer says which in
/// `x-edgegate-token-count: exact | estimate`.
async fn count_tokens(
    ex: &mut Exchange<'_>,
    cfg: &CompiledAiProxy,
    log: &mut AiLog,
) -> Result<web_sys::Response, AiError> {
    log.endpoint = "count_tokens";
    let body = read_body(ex).await?;
    let mut req = messages_in::parse_request(
        &body,
        ex.header("anthropic-version").as_deref(),
        ex.header("anthropic-beta").as_deref(),
        true,
    )?;
    log.requested_model = Some(req.chat.model.clone());
    req.decorate(cfg);
    let targets = cfg.resolve(&req.chat.model, seed())?;
    let timeout = cfg.config.fallback.first_byte_timeout_ms;
    let mut limited = RateLimited::default();
    let mut attempt = 0;
    loop {
        let target = &targets[attempt];
        note_attempt(log, attempt, target);
        let vertex =
            target.kind == ProviderKind::Vertex && ai::vertex::counts_exactly(&req, target);
        let gemini = (target.kind == ProviderKind::Gemini && req.unsupported.is_none())
            || (vertex && !ai::vertex::is_anthropic(target));
        // Bedrock counts with CountTokens (models that cannot count answer 400: then the estimate).
        let bedrock = target.kind == ProviderKind::Bedrock && req.unsupported.is_none();
        if target.kind != ProviderKind::Anthropic && !gemini && !vertex && !bedrock {
            let n = messages_in::estimate_input_tokens(&req);
            ex.response_headers
                .push((TOKEN_COUNT_HEADER.to_string(), "estimate".to_string()));
            return json_response(200, &serde_json::json!({ "input_tokens": n }));
        }
        let result = async {
            let resolved = crate::gcp_auth::resolve_target(ex, target)?;
            let target = &*resolved;
            let up = if vertex {
                ai::vertex::build_count_tokens_request(&req, target)?
            } else if gemini {
                ai::gemini::build_count_tokens_request(&req.chat, target)?
            } else if bedrock {
                ai::bedrock::build_count_tokens_request(&req.chat, target)?
            } else {
                messages_in::build_native(&req, target, true)?
            };
            let key = provider_credential(ex, target).await?;
            let mut opened = open(ex, &up, key.as_deref(), target, timeout).await?;
            let bytes = opened.read_rest().await?;
            let count = |n: u64| {
                serde_json::to_vec(&serde_json::json!({ "input_tokens": n })).unwrap_or_default()
            };
            if bedrock && opened.status == 400 {
                return Ok((count(messages_in::estimate_input_tokens(&req)), "estimate"));
            }
            if !(200..300).contains(&opened.status) {
                return Err(opened.error(target, &bytes));
            }
            if gemini {
                let n = ai::gemini::parse_count_tokens(target, &bytes)?;
                return Ok((count(n), "exact"));
            }
            if bedrock {
                return Ok((
                    count(ai::bedrock::parse_count_tokens(target, &bytes)?),
                    "exact",
                ));
            }
            Ok((bytes, "exact"))
        }
        .await;
        match result {
            Ok((bytes, how)) => {
                ex.response_headers
                    .push((TOKEN_COUNT_HEADER.to_string(), how.to_string()));
                return bytes_response(200, bytes);
            }
            Err(e) if attempt + 1 < targets.len() && cfg.should_fall_back(&e) => {
                limited.note(&e);
                report_fallback(ex, target, &e);
                attempt += 1;
            }
            Err(e) => return Err(limited.last(e)),
        }
    }
}

/// An Anthropic model object (`GET /v1/models/{id}` of Anthropic's API).
fn anthropic_model(info: &ai::types::ModelInfo) -> serde_json::Value {
    serde_json::json!({
        "type": "model",
        "id": info.id,
        "display_name": info.id,
        "created_at": ai::ingress::rfc3339(info.created),
    })
}

/// `GET …/models`: the route's models in OpenAI's list shape, or in Anthropic's page shape
/// (`data`, `has_more`, `first_id`, `last_id`) when the client sends `anthropic-version`.
fn models_list(ex: &Exchange<'_>, cfg: &CompiledAiProxy) -> Result<web_sys::Response, AiError> {
    let list = cfg.models_list(now_secs());
    if ex.header("anthropic-version").is_some() {
        let data: Vec<_> = list.data.iter().map(anthropic_model).collect();
        return json_response(
            200,
            &serde_json::json!({
                "data": data,
                "has_more": false,
                "first_id": list.data.first().map(|m| &m.id),
                "last_id": list.data.last().map(|m| &m.id),
            }),
        );
    }
    json_response(200, &list)
}

/// `GET …/models/{id}`: one model of the route (an alias, or a `provider/model` it may use), in
/// OpenAI's shape, or in Anthropic's when the client sends `anthropic-version` (the Anthropic SDKs).
fn model_info(
    ex: &Exchange<'_>,
    cfg: &CompiledAiProxy,
    id: &str,
) -> Result<web_sys::Response, AiError> {
    let info = cfg.model_info(id, now_secs())?;
    if ex.header("anthropic-version").is_some() {
        return json_response(200, &anthropic_model(&info));
    }
    json_response(200, &info)
}

/// A JSON body the core already serialised.
fn bytes_response(status: u16, body: Vec<u8>) -> Result<web_sys::Response, AiError> {
    let headers = web_sys::Headers::new().map_err(|_| internal())?;
    let _ = headers.set("content-type", "application/json");
    let init = web_sys::ResponseInit::new();
    init.set_status(status);
    init.set_headers(&headers);
    // JSON the core produced or parsed: valid UTF-8.
    let body = String::from_utf8_lossy(&body);
    web_sys::Response::new_with_opt_str_and_init(Some(&body), &init).map_err(|_| internal())
}

/// The rate-limit timing of the targets that answered 429, for the final 429 (see
/// `edgegate_core::ai::retry`: the last answer's headers, the shortest wait of all).
#[derive(Default)]
struct RateLimited(Vec<Vec<(String, String)>>);

impl RateLimited {
    fn note(&mut self, e: &AiError) {
        if e.status == 429 {
            self.0.push(e.headers.to_vec());
        }
    }

    /// The error the client gets when no target is left.
    fn last(mut self, mut e: AiError) -> AiError {
        if e.status == 429 {
            self.note(&e);
            e.headers = ai::retry::merge(&self.0, now_secs()).into();
        }
        e
    }
}

enum Outcome {
    Json(ChatResponse),
    /// A whole answer in the client's format (Messages, Responses).
    Body(Vec<u8>),
    Stream(web_sys::Response),
}

/// Run a completion against the route's targets, falling back while nothing has been sent; the
/// answer in the client's format (`ingress.format`).
async fn complete(
    ex: &mut Exchange<'_>,
    cfg: &CompiledAiProxy,
    ingress: &IngressRequest,
    log: &mut AiLog,
) -> Result<Outcome, AiError> {
    let req = &ingress.chat;
    let targets = cfg.resolve(&req.model, seed())?;
    let ctx = StreamContext {
        id: match ingress.format {
            IngressFormat::Chat => format!("chatcmpl-{}", ex.request_id),
            IngressFormat::Messages => format!("msg_{}", ex.request_id),
            IngressFormat::Responses => format!("resp_{}", ex.request_id),
        },
        model: req.model.clone(),
        created: now_secs(),
        include_usage: req.client_wants_usage(),
        // Drawn per request (not from the request id, which a client may repeat).
        tool_call_seed: seed(),
    };
    let timeout = cfg.config.fallback.first_byte_timeout_ms;
    let mut limited = RateLimited::default();
    let mut attempt = 0;
    loop {
        let target = &targets[attempt];
        note_attempt(log, attempt, target);
        let result = async {
            // Vertex: the project from the service account when the configuration sets none.
            let resolved = crate::gcp_auth::resolve_target(ex, target)?;
            let target = &*resolved;
            let up = ai::ingress::build_ingress_request(ingress, target)?;
            let key = provider_credential(ex, target).await?;
            let mut opened = open(ex, &up, key.as_deref(), target, timeout).await?;
            if !(200..300).contains(&opened.status) {
                let bytes = opened.read_rest().await?;
                return Err(opened.error(target, &bytes));
            }
            if !req.is_stream() {
                let bytes = opened.read_rest().await?;
                return ai::ingress::parse_ingress_response(
                    ingress,
                    target,
                    opened.status,
                    &bytes,
                    &ctx,
                )
                .map(Answer::Whole);
            }
            if opened.json {
                // A JSON answer to a stream request (a server that ignores `stream`, or reports an
                // error with a 200): the provider's error when it is one, else not its format.
                let bytes = opened.read_rest().await?;
                return Err(
                    match ai::parse_response(target, opened.status, &bytes, &ctx) {
                        Err(e) => e,
                        Ok(_) => AiError::bad_response(
                            &target.provider,
                            "a JSON answer where an event stream was asked for",
                        ),
                    },
                );
            }
            let mut translator = StreamTranslator::for_ingress(ingress, target, ctx.clone());
            let mut first = translator.push(&opened.first);
            if opened.ended {
                first.extend(translator.finish());
            }
            // The first bytes already say the provider failed (Anthropic `overloaded_error`, a stream
            // that ended at once): nothing has been sent, so this still counts as a failed attempt.
            if let Some(e) = translator.error() {
                if e.retryable
                    && (first.is_empty() || opened.ended || !translator.has_content(&first))
                {
                    return Err(e.clone());
                }
            }
            let prompt = edgegate_core::ratelimit::tokens::prompt_estimate(req);
            Ok(Answer::Stream(stream_response(
                ex, opened, translator, first, log, target, prompt,
            )?))
        }
        .await;
        match result {
            Ok(Answer::Whole(IngressAnswer::Chat(resp))) => {
                if let Some(u) = &resp.usage {
                    log.set_usage(u);
                    ex.ai_tokens.set(log.total_tokens);
                }
                if !resp.model.is_empty() {
                    log.model = Some(resp.model.clone());
                }
                return Ok(Outcome::Json(resp));
            }
            Ok(Answer::Whole(IngressAnswer::Body { body, usage, model })) => {
                if let Some(u) = &usage {
                    log.set_usage(u);
                    ex.ai_tokens.set(log.total_tokens);
                }
                if let Some(m) = model.filter(|m| !m.is_empty()) {
                    log.model = Some(m);
                }
                return Ok(Outcome::Body(body));
            }
            Ok(Answer::Stream(stream)) => return Ok(Outcome::Stream(stream)),
            Err(e) if attempt + 1 < targets.len() && cfg.should_fall_back(&e) => {
                limited.note(&e);
                report_fallback(ex, target, &e);
                attempt += 1;
            }
            Err(e) => return Err(limited.last(e)),
        }
    }
}

/// What one attempt gave.
enum Answer {
    Whole(IngressAnswer),
    Stream(web_sys::Response),
}

fn note_attempt(log: &mut AiLog, attempt: usize, target: &ProviderTarget) {
    log.attempts = attempt as u32 + 1;
    log.provider = Some(target.provider.clone());
    log.model = Some(target.model.clone());
}

fn report_fallback(ex: &Exchange<'_>, target: &ProviderTarget, e: &AiError) {
    runtime::log(
        &serde_json::json!({
            "event": "ai_fallback",
            "request_id": ex.request_id,
            "provider": target.provider,
            "model": target.model,
            "status": e.status,
            "upstream_status": e.upstream_status,
            "code": e.code,
        })
        .to_string(),
    );
}

fn seed() -> u64 {
    u64::from_le_bytes(runtime::random_bytes())
}

// ---------------------------------------------------------------------------------------------------
// Provider keys, fetch, first byte

/// The provider key, read from the Worker secret (or plain binding, as `.dev.vars` and Miniflare give)
/// named by `key_secret`. A missing secret fails this attempt (the next target may have its key) and is
/// logged by NAME only.
pub(crate) fn provider_key(
    ex: &Exchange<'_>,
    target: &ProviderTarget,
) -> Result<Option<String>, AiError> {
    let Some(name) = &target.key_secret else {
        return Ok(None);
    };
    secret_value(ex, target, name).map(Some)
}

/// Bedrock targets: the SigV4 headers of `up` (`x-amz-date`, `x-amz-security-token`, `authorization`),
/// signed at the Worker's clock with the AWS keys read from the Worker secrets the provider names;
/// nothing for other targets. They go into the upstream request's headers only.
fn aws_signature(
    ex: &Exchange<'_>,
    target: &ProviderTarget,
    up: &UpstreamRequest,
) -> Result<Vec<(String, String)>, AiError> {
    let Some(auth) = &target.aws else {
        return Ok(Vec::new());
    };
    let creds = ai::sigv4::Credentials {
        access_key_id: secret_value(ex, target, &auth.access_key_id_secret)?,
        secret_access_key: secret_value(ex, target, &auth.secret_access_key_secret)?,
        session_token: match &auth.session_token_secret {
            Some(name) => Some(secret_value(ex, target, name)?),
            None => None,
        },
    };
    ai::bedrock::sign(up, auth, &creds, now_secs())
}

/// The Worker secret (or plain binding) `name` of `target`'s provider. Missing: this attempt fails
/// (502 `provider_key_missing`, retryable) and the NAME is logged, never a value.
fn secret_value(ex: &Exchange<'_>, target: &ProviderTarget, name: &str) -> Result<String, AiError> {
    let value = ex
        .env
        .secret(name)
        .map(|s| s.to_string())
        .or_else(|_| ex.env.var(name).map(|v| v.to_string()))
        .ok()
        .filter(|k| !k.is_empty());
    value.ok_or_else(|| {
        runtime::log_error(
            &serde_json::json!({
                "event": "ai_key_missing",
                "request_id": ex.request_id,
                "provider": target.provider,
                "secret": name,
            })
            .to_string(),
        );
        AiError {
            retryable: true,
            ..AiError::new(
                502,
                "upstream_error",
                Some("provider_key_missing"),
                format!(
                    "provider {} is not usable: the gateway has no key for it",
                    target.provider
                ),
            )
        }
    })
}

/// What goes in the provider's key header: the key from its secret, or for Vertex an access token
/// obtained with the service account in its secret (src/gcp_auth.rs).
async fn provider_credential(
    ex: &Exchange<'_>,
    target: &ProviderTarget,
) -> Result<Option<String>, AiError> {
    if target.kind == ProviderKind::Vertex {
        return crate::gcp_auth::access_token(ex, target).await.map(Some);
    }
    provider_key(ex, target)
}

/// A provider answer's body, read chunk by chunk. Dropping it before its end cancels the body and
/// aborts the fetch, through a helper that never throws (the drop may happen outside the request's
/// context, where JS I/O throws).
struct UpstreamBody {
    reader: JsValue,
    abort: web_sys::AbortController,
    /// The body ended (or broke): nothing left to release.
    ended: bool,
}

impl UpstreamBody {
    /// The next chunk; `None` at the end, `Some(Err(()))` when the body broke.
    async fn next(&mut self) -> Option<Result<Vec<u8>, ()>> {
        if self.ended {
            return None;
        }
        match JsFuture::from(read_chunk(&self.reader)).await {
            Ok(v) if v.is_undefined() => {
                self.ended = true;
                None
            }
            Ok(v) => Some(Ok(match v.dyn_into::<js_sys::Uint8Array>() {
                Ok(bytes) => bytes.to_vec(),
                Err(v) => js_sys::Uint8Array::new(&v).to_vec(),
            })),
            Err(_) => {
                self.ended = true;
                Some(Err(()))
            }
        }
    }
}

impl Drop for UpstreamBody {
    fn drop(&mut self) {
        if !self.ended {
            release(&self.reader, &self.abort);
        }
    }
}

/// A provider answer whose first body bytes (if any) have arrived.
struct Opened {
    status: u16,
    /// The answer's headers, kept for an error answer only (its rate-limit timing).
    headers: Vec<(String, String)>,
    body: Option<UpstreamBody>,
    first: Vec<u8>,
    /// The body ended with (or before) `first`.
    ended: bool,
    /// A 2xx answer's `content-type` is JSON (for a stream request: not an event stream).
    json: bool,
}

impl Opened {
    /// The whole body (first bytes included), up to `MAX_RESPONSE_BYTES`.
    async fn read_rest(&mut self) -> Result<Vec<u8>, AiError> {
        let mut all = std::mem::take(&mut self.first);
        if let Some(body) = self.body.as_mut() {
            while !self.ended {
                match body.next().await {
                    Some(Ok(chunk)) => {
                        if all.len() + chunk.len() > MAX_RESPONSE_BYTES {
                            return Err(AiError::bad_response(
                                "upstream",
                                "the answer is too large",
                            ));
                        }
                        all.extend_from_slice(&chunk);
                    }
                    Some(Err(())) => {
                        return Err(AiError {
                            retryable: true,
                            ..AiError::bad_response("upstream", "the answer was cut off")
                        })
                    }
                    None => self.ended = true,
                }
            }
        }
        Ok(all)
    }

    /// The provider's error answer (non-2xx status, whole `body`) in OpenAI's shape, with a 429's
    /// rate-limit timing.
    fn error(&self, target: &ProviderTarget, body: &[u8]) -> AiError {
        ai::provider_error(target, self.status, body, &self.headers)
    }
}

/// Send the request and wait for the status and the first body bytes, both within `timeout_ms`.
async fn open(
    ex: &mut Exchange<'_>,
    up: &UpstreamRequest,
    key: Option<&str>,
    target: &ProviderTarget,
    timeout_ms: u64,
) -> Result<Opened, AiError> {
    let provider = &target.provider;
    let misconfigured = |what: &str| {
        AiError::new(
            502,
            "upstream_error",
            Some("gateway_misconfigured"),
            format!("provider {provider}: {what}"),
        )
    };
    let headers = web_sys::Headers::new().map_err(|_| misconfigured("Headers"))?;
    for (name, value) in up.headers_with_key(key) {
        // The error names the header, never its value (it may be the key).
        headers
            .set(&name, &value)
            .map_err(|_| misconfigured(&format!("invalid value for header {name}")))?;
    }
    // Bedrock: the request is signed (SigV4) with the AWS keys of the provider's Worker secrets.
    for (name, value) in aws_signature(ex, target, up)? {
        headers
            .set(&name, &value)
            .map_err(|_| misconfigured(&format!("invalid value for header {name}")))?;
    }
    let _ = headers.set(rules::REQUEST_ID, ex.request_id);
    let abort = web_sys::AbortController::new().map_err(|_| misconfigured("AbortController"))?;
    let init = web_sys::RequestInit::new();
    init.set_method(up.method);
    init.set_headers(&headers);
    init.set_signal(Some(&abort.signal()));
    if !up.body.is_empty() {
        let body = js_sys::Uint8Array::from(up.body.as_slice());
        init.set_body(&body);
    }
    let global: web_sys::WorkerGlobalScope = js_sys::global().unchecked_into();
    let started = runtime::now_ms();
    let mut deadline = Box::pin(worker::Delay::from(Duration::from_millis(timeout_ms)));
    let fetch = JsFuture::from(global.fetch_with_str_and_init(&up.url, &init));
    let response = match select(fetch, &mut deadline).await {
        Either::Left((Ok(r), _)) => r
            .dyn_into::<web_sys::Response>()
            .map_err(|_| AiError::connect_failed(provider, "fetch returned no Response"))?,
        Either::Left((Err(_), _)) => {
            return Err(AiError::connect_failed(provider, "connection failed"))
        }
        Either::Right(_) => {
            abort.abort();
            return Err(AiError::first_byte_timeout(provider, timeout_ms));
        }
    };
    ex.log.upstream_ms = Some((runtime::now_ms() - started).max(0.0) as u64);
    let status = response.status();
    if status == 401 && target.kind == ProviderKind::Vertex {
        crate::gcp_auth::refused(ex, target);
    }
    let mut opened = Opened {
        status,
        headers: Vec::new(),
        body: None,
        first: Vec::new(),
        ended: true,
        json: false,
    };
    if (200..300).contains(&status) {
        opened.json = response
            .headers()
            .get("content-type")
            .ok()
            .flatten()
            .is_some_and(|ct| {
                ct.trim_start()
                    .to_ascii_lowercase()
                    .starts_with("application/json")
            });
    } else {
        let lines = header_lines(&response);
        let mut it = lines.split('\n');
        while let (Some(n), Some(v)) = (it.next(), it.next()) {
            opened.headers.push((n.to_string(), v.to_string()));
        }
    }
    let reader = body_reader(&response);
    if reader.is_null() {
        return Ok(opened);
    }
    let mut body = UpstreamBody {
        reader,
        abort,
        ended: false,
    };
    // On a timeout `body` is dropped with a read pending: that cancels it and aborts the fetch.
    match select(Box::pin(body.next()), &mut deadline).await {
        Either::Left((Some(Ok(bytes)), _)) => {
            opened.first = bytes;
            opened.ended = false;
        }
        Either::Left((None, _)) => {}
        Either::Left((Some(Err(())), _)) => {
            return Err(AiError::connect_failed(
                provider,
                "the connection broke before the answer",
            ))
        }
        Either::Right(_) => return Err(AiError::first_byte_timeout(provider, timeout_ms)),
    }
    opened.body = Some(body);
    Ok(opened)
}

// ---------------------------------------------------------------------------------------------------
// Responses

fn json_response(status: u16, value: &impl serde::Serialize) -> Result<web_sys::Response, AiError> {
    let body = serde_json::to_string(value)
        .map_err(|e| AiError::new(500, "server_error", None, e.to_string()))?;
    let headers = web_sys::Headers::new().map_err(|_| internal())?;
    let _ = headers.set("content-type", "application/json");
    let init = web_sys::ResponseInit::new();
    init.set_status(status);
    init.set_headers(&headers);
    web_sys::Response::new_with_opt_str_and_init(Some(&body), &init).map_err(|_| internal())
}

fn internal() -> AiError {
    AiError::new(
        500,
        "server_error",
        Some("internal_error"),
        "could not build the response",
    )
}

/// Request body, at most `MAX_REQUEST_BYTES`.
async fn read_body(ex: &Exchange<'_>) -> Result<Vec<u8>, AiError> {
    let too_large = || AiError {
        status: 413,
        ..AiError::new(
            413,
            "invalid_request_error",
            Some("payload_too_large"),
            format!("the request body exceeds {MAX_REQUEST_BYTES} bytes"),
        )
    };
    if ex
        .header("content-length")
        .and_then(|v| v.trim().parse::<usize>().ok())
        .is_some_and(|n| n > MAX_REQUEST_BYTES)
    {
        return Err(too_large());
    }
    let promise = ex
        .raw
        .array_buffer()
        .map_err(|_| AiError::invalid("the request body was already read"))?;
    let buf = JsFuture::from(promise)
        .await
        .map_err(|_| AiError::invalid("the request body could not be read"))?;
    let bytes = js_sys::Uint8Array::new(&buf).to_vec();
    if bytes.len() > MAX_REQUEST_BYTES {
        return Err(too_large());
    }
    Ok(bytes)
}

/// What the stream reports when it ends (or the client goes away): one `ai_usage` log line.
struct StreamEnd {
    log: AiLog,
    request_id: String,
    route: String,
    consumer: Option<String>,
    tokens: Rc<crate::ratelimit::AiTokens>,
    started: f64,
    /// For the charge of an interrupted stream: the request's estimated prompt tokens and the
    /// number of events handed to the client.
    prompt_estimate: u64,
    events: u64,
    /// The `ai_usage` line has been written.
    reported: bool,
}

/// A streamed answer being passed on: the provider's body, its translator, what to report.
struct Pump {
    body: Option<UpstreamBody>,
    translator: StreamTranslator,
    /// The provider's stream has ended (or broke): the translator has finished.
    upstream_done: bool,
    end: StreamEnd,
}

impl Pump {
    /// Write the `ai_usage` line and settle the tokens to charge, once. `complete`: the whole answer
    /// (`[DONE]` included) reached the client. `wake`: end the tokens' wait, so that the token budgets'
    /// charge (waiting in `ctx.waitUntil`) runs now, in the current context.
    fn report(&mut self, complete: bool, wake: bool) {
        if self.end.reported {
            return;
        }
        self.end.reported = true;
        let t = &self.translator;
        let end = &mut self.end;
        if let Some(u) = t.usage() {
            end.log.set_usage(u);
        }
        // The provider's usage is the whole answer's only when its stream reached its end; else
        // what was counted so far (a stream that broke off or that the client left).
        let charge = edgegate_core::ratelimit::tokens::tokens_to_charge(
            t.usage(),
            self.upstream_done && t.error().is_none(),
            end.prompt_estimate,
            end.events,
        );
        end.tokens.set(charge);
        if wake {
            end.tokens.end();
        }
        if let Some(m) = t.model() {
            end.log.model = Some(m.to_string());
        }
        runtime::log(
            &serde_json::json!({
                "event": "ai_usage",
                "request_id": end.request_id,
                "route": end.route,
                "consumer": end.consumer,
                "ai": end.log,
                "finish_reason": t.finish_reason(),
                "error": t.error().and_then(|e| e.code.clone()),
                "complete": complete,
                "charged_tokens": charge,
                "duration_ms": (runtime::now_ms() - end.started).max(0.0) as u64,
            })
            .to_string(),
        );
    }
}

impl Drop for Pump {
    /// Only when the pump's task itself is dropped before it ended: the runtime gave up the request's
    /// context, and this runs wherever the garbage collector frees it. Still one `ai_usage` line; no
    /// wake-up (the charge would run outside any request, where its I/O cannot); the provider's body
    /// releases itself with a helper that cannot throw.
    fn drop(&mut self) {
        self.report(false, false);
    }
}

/// SSE events in translated output (each starts a line with `data: `).
fn count_events(out: &[u8]) -> u64 {
    let mut n = u64::from(out.starts_with(b"data: "));
    n += out.windows(7).filter(|w| w == b"\ndata: ").count() as u64;
    n
}

/// Write to the client; `false` when the client is gone.
async fn write(writer: &JsValue, bytes: Vec<u8>) -> bool {
    JsFuture::from(write_chunk(writer, bytes))
        .await
        .is_ok_and(|v| v.as_bool() == Some(true))
}

/// Pass the translated answer to the client (`writer`): `first`, then each provider chunk translated,
/// each written once the runtime took the previous one, then the translator's end (`[DONE]`, or an
/// error event when the provider's stream broke). When a write fails the client is gone: the
/// provider's stream is cancelled at once. Either way the end is reported (`ai_usage`) and the token
/// budgets' charge woken, within the request's context (this runs in `ctx.waitUntil`).
async fn pump(mut p: Pump, writer: JsValue, first: Vec<u8>) {
    let mut out = first;
    let complete = loop {
        if !out.is_empty() {
            let events = count_events(&out);
            if !write(&writer, std::mem::take(&mut out)).await {
                break false;
            }
            p.end.events += events;
        }
        if p.upstream_done {
            break JsFuture::from(close_writer(&writer))
                .await
                .is_ok_and(|v| v.as_bool() == Some(true));
        }
        let next = match p.body.as_mut() {
            Some(b) => b.next().await,
            None => None,
        };
        match next {
            Some(Ok(bytes)) => out = p.translator.push(&bytes),
            Some(Err(())) | None => {
                out = p.translator.finish();
                p.upstream_done = true;
                p.body = None;
            }
        }
    };
    if !complete {
        // The client went away: stop the provider now rather than when the request ends.
        p.body = None;
        abort_writer(&writer);
    }
    p.report(complete, true);
}

/// The streamed answer: a response whose body the [`pump`] task writes, kept alive with
/// `ctx.waitUntil` until the stream has ended or the client has gone away.
fn stream_response(
    ex: &Exchange<'_>,
    opened: Opened,
    translator: StreamTranslator,
    first: Vec<u8>,
    log: &AiLog,
    target: &ProviderTarget,
    prompt_estimate: u64,
) -> Result<web_sys::Response, AiError> {
    let mut end_log = log.clone();
    end_log.provider = Some(target.provider.clone());
    let pipe = client_pipe();
    let readable: web_sys::ReadableStream = pipe.get(0).unchecked_into();
    let writer = pipe.get(1);
    let pump_state = Pump {
        upstream_done: opened.ended,
        body: opened.body,
        translator,
        end: StreamEnd {
            log: end_log,
            request_id: ex.request_id.to_string(),
            route: ex.plan.route.to_string(),
            consumer: ex.identity.as_ref().map(|i| i.username.clone()),
            tokens: ex.ai_tokens.clone(),
            started: ex.started,
            prompt_estimate,
            events: 0,
            reported: false,
        },
    };
    let headers = web_sys::Headers::new().map_err(|_| internal())?;
    let _ = headers.set("content-type", "text/event-stream; charset=utf-8");
    let _ = headers.set("cache-control", "no-cache");
    // Miniflare and wrangler dev would otherwise gzip (and so buffer) the stream.
    let _ = headers.set("content-encoding", "identity");
    let _ = headers.set("x-accel-buffering", "no");
    let init = web_sys::ResponseInit::new();
    init.set_status(200);
    init.set_headers(&headers);
    let response = web_sys::Response::new_with_opt_readable_stream_and_init(Some(&readable), &init)
        .map_err(|_| internal())?;
    ex.ctx.wait_until(pump(pump_state, writer, first));
    Ok(response)
}
