//! OpenAI-compatible providers (OpenAI, Mistral, Groq, DeepSeek, OpenRouter, Together, any base URL)
//! and Azure OpenAI: the body passes through with the upstream model name, and a streaming request asks
//! for usage (`stream_options.include_usage: true`) so tokens are counted.

use super::sse::SseParser;
use super::*;
use serde::Deserialize;
use serde_json::Value;

/// Azure `api-version` used when the target sets none (latest GA of the inference API).
pub const AZURE_DEFAULT_API_VERSION: &str = "2024-10-21";

fn endpoint(target: &ProviderTarget, op: &str) -> Result<String, AiError> {
    match target.kind {
        ProviderKind::Azure => {
            if target.base_url.is_empty() {
                return Err(AiError::new(
                    500,
                    "server_error",
                    Some("gateway_misconfigured"),
                    format!("provider {}: Azure needs a base_url", target.provider),
                ));
            }
            let version = target
                .api_version
                .as_deref()
                .unwrap_or(AZURE_DEFAULT_API_VERSION);
            Ok(join_url(
                &target.base_url,
                &format!(
                    "openai/deployments/{}/{op}?api-version={}",
                    encode_component(&target.model),
                    encode_component(version)
                ),
            ))
        }
        _ => Ok(join_url(&target.base_url, op)),
    }
}

fn key_header(target: &ProviderTarget) -> KeyHeader {
    match target.kind {
        ProviderKind::Azure => KeyHeader {
            name: "api-key",
            prefix: "",
        },
        _ => KeyHeader {
            name: "authorization",
            prefix: "Bearer ",
        },
    }
}

fn headers(target: &ProviderTarget, stream: bool) -> Vec<(String, String)> {
    let accept = if stream {
        "text/event-stream"
    } else {
        "application/json"
    };
    super::json_headers(target, accept)
}

/// The request body for an OpenAI-format provider.
pub fn request_body(req: &ChatRequest, target: &ProviderTarget) -> ChatRequest {
    let mut body = req.clone();
    body.model = target.model.clone();
    if body.is_stream() {
        let mut opts = match body.stream_options.take() {
            Some(Value::Object(m)) => m,
            _ => serde_json::Map::new(),
        };
        opts.insert("include_usage".to_string(), Value::Bool(true));
        body.stream_options = Some(Value::Object(opts));
    } else {
        // stream_options without stream is an error for OpenAI.
        body.stream_options = None;
    }
    body
}

pub fn build_request(
    req: &ChatRequest,
    target: &ProviderTarget,
) -> Result<UpstreamRequest, AiError> {
    let body = request_body(req, target);
    Ok(UpstreamRequest {
        method: "POST",
        url: endpoint(target, "chat/completions")?,
        headers: headers(target, req.is_stream()),
        key_header: Some(key_header(target)),
        body: serde_json::to_vec(&body).map_err(|e| AiError::invalid(e.to_string()))?,
        stream: req.is_stream(),
    })
}

pub fn parse_response(
    target: &ProviderTarget,
    body: &[u8],
    ctx: &StreamContext,
) -> Result<ChatResponse, AiError> {
    let v: Value =
        serde_json::from_slice(body).map_err(|e| AiError::bad_response(&target.provider, e))?;
    if v.get("error").is_some_and(|e| !e.is_null()) && v.get("choices").is_none() {
        // Some OpenAI-compatible servers report errors with a 200.
        let status = v["error"]
            .get("code")
            .and_then(Value::as_u64)
            .and_then(|c| u16::try_from(c).ok())
            .filter(|c| *c >= 400)
            .unwrap_or(502);
        return Err(super::parse_error(target, status, body));
    }
    let mut r: ChatResponse =
        serde_json::from_value(v).map_err(|e| AiError::bad_response(&target.provider, e))?;
    if r.id.is_empty() {
        r.id = ctx.id.clone();
    }
    if r.model.is_empty() {
        r.model = ctx.model.clone();
    }
    if r.created == 0 {
        r.created = ctx.created;
    }
    Ok(r)
}

/// What the pass-through stream looks at in each chunk (the chunk itself is forwarded as it came).
#[derive(Deserialize)]
struct Peek {
    #[serde(default)]
    model: Option<String>,
    #[serde(default)]
    choices: Option<Vec<PeekChoice>>,
    #[serde(default)]
    usage: Option<Usage>,
    #[serde(default)]
    error: Option<Value>,
}

#[derive(Deserialize)]
struct PeekChoice {
    #[serde(default)]
    finish_reason: Option<String>,
}

/// Pass-through of an OpenAI-format stream: chunks are forwarded unchanged (comments dropped, framing
/// normalised), usage and finish reasons recorded, the usage-only chunk dropped unless the client
/// wants it, `[DONE]` guaranteed at the end.
#[derive(Debug)]
pub struct OpenAiStream {
    sse: SseParser,
    ctx: StreamContext,
    pub(crate) state: StreamState,
    saw_data: bool,
}

impl OpenAiStream {
    pub fn new(ctx: StreamContext) -> OpenAiStream {
        OpenAiStream {
            sse: SseParser::new(),
            ctx,
            state: StreamState::default(),
            saw_data: false,
        }
    }

    pub fn push(&mut self, bytes: &[u8], out: &mut Vec<u8>) {
        for e in self.sse.push(bytes) {
            self.event(&e.data, out);
        }
    }

    pub fn finish(&mut self, out: &mut Vec<u8>) {
        for e in self.sse.finish() {
            self.event(&e.data, out);
        }
        if self.state.done {
            return;
        }
        if self.state.error.is_none() && self.state.finish_reason.is_none() {
            let e = AiError::stream_truncated(
                !self.saw_data,
                "the provider's stream ended before the completion finished",
            );
            write_error(out, &e);
            self.state.error = Some(e);
        }
        write_done(out);
        self.state.done = true;
    }

    fn event(&mut self, data: &str, out: &mut Vec<u8>) {
        if self.state.done {
            return;
        }
        if data.trim() == "[DONE]" {
            write_done(out);
            self.state.done = true;
            return;
        }
        if let Some(e) = AiError::not_json_event("upstream", data) {
            // Forwarded, it would break the client's JSON parser (the SDKs raise a SyntaxError, not
            // an API error): the stream ends with an error event instead.
            write_error(out, &e);
            write_done(out);
            self.state.error = Some(e);
            self.state.done = true;
            return;
        }
        self.saw_data = true;
        if let Ok(peek) = serde_json::from_str::<Peek>(data) {
            if let Some(err) = peek.error.filter(|e| !e.is_null()) {
                let message = err
                    .get("message")
                    .and_then(Value::as_str)
                    .unwrap_or("provider error in stream");
                let kind = err.get("type").and_then(Value::as_str);
                self.state.error = Some(AiError::from_provider("upstream", 502, kind, message));
            }
            if let Some(m) = peek.model.filter(|m| !m.is_empty()) {
                self.state.model = Some(m);
            }
            let no_choices = peek.choices.as_ref().is_none_or(|c| c.is_empty());
            for c in peek.choices.iter().flatten() {
                if let Some(r) = &c.finish_reason {
                    self.state.finish_reason = Some(r.clone());
                }
            }
            if let Some(u) = peek.usage {
                self.state.usage = Some(u);
                if no_choices && !self.ctx.include_usage {
                    return;
                }
            }
        }
        out.extend_from_slice(b"data: ");
        for (i, line) in data.split('\n').enumerate() {
            if i > 0 {
                out.extend_from_slice(b"\ndata: ");
            }
            out.extend_from_slice(line.as_bytes());
        }
        out.extend_from_slice(b"\n\n");
    }
}

pub fn build_embeddings_request(
    req: &EmbeddingsRequest,
    target: &ProviderTarget,
) -> Result<UpstreamRequest, AiError> {
    let mut body = req.clone();
    body.model = target.model.clone();
    Ok(UpstreamRequest {
        method: "POST",
        url: endpoint(target, "embeddings")?,
        headers: headers(target, false),
        key_header: Some(key_header(target)),
        body: serde_json::to_vec(&body).map_err(|e| AiError::invalid(e.to_string()))?,
        stream: false,
    })
}
