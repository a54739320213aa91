//! Client formats ("ingress") besides OpenAI chat completions, on the same AI route: Anthropic Messages
//! ([`messages_in`]) and OpenAI Responses ([`responses_in`]).
//!
//! A request in a client format becomes an [`IngressRequest`]: the request as a chat completion (what
//! the prompt guard checks, what decoration applies to, what providers of every format get through
//! the existing translators) and, for Anthropic Messages, the client's own body, which an
//! Anthropic-kind provider gets as it is (model replaced): nothing is lost on that path
//! (`cache_control`, thinking blocks, citations, server tools, betas).
//!
//! Answers go back in the client's format: [`parse_ingress_response`] for a whole answer, a
//! [`StreamTranslator::for_ingress`] for a stream (the provider's stream translated to chat chunks as
//! for chat clients, then an [`OutStage`] turning those chunks into the client's events; an Anthropic
//! stream to a Messages client passes through, parsed only to count tokens and to notice a cut).

use super::*;
use serde_json::{Map, Value};

/// The client's wire format, picked by the endpoint's path.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IngressFormat {
    /// OpenAI chat completions (`…/chat/completions`).
    Chat,
    /// Anthropic Messages (`…/v1/messages`).
    Messages,
    /// OpenAI Responses (`…/responses`).
    Responses,
}

impl IngressFormat {
    /// The shape of this format's error bodies.
    pub fn error_shape(self) -> ErrorShape {
        match self {
            IngressFormat::Messages => ErrorShape::Anthropic,
            _ => ErrorShape::OpenAi,
        }
    }

    /// The `endpoint` in the access log.
    pub fn endpoint(self) -> &'static str {
        match self {
            IngressFormat::Chat => "chat",
            IngressFormat::Messages => "messages",
            IngressFormat::Responses => "responses",
        }
    }
}

/// A client's request, in a form every provider can be given.
#[derive(Debug, Clone)]
pub struct IngressRequest {
    pub format: IngressFormat,
    /// The request as a chat completion.
    pub chat: ChatRequest,
    /// Anthropic Messages: the client's body, for Anthropic-kind providers.
    pub native: Option<Map<String, Value>>,
    /// What keeps the request from going to a provider of another format (a block or a tool only
    /// Anthropic has): the error such targets give.
    pub unsupported: Option<AiError>,
    /// Anthropic Messages: the client's `anthropic-version` and `anthropic-beta` headers.
    pub anthropic_version: Option<String>,
    pub anthropic_beta: Option<String>,
    /// OpenAI Responses: request fields the response object repeats (`instructions`, `tools`, ...).
    pub echo: Map<String, Value>,
}

impl IngressRequest {
    /// A chat completion request as it is.
    pub fn chat(chat: ChatRequest) -> IngressRequest {
        IngressRequest {
            format: IngressFormat::Chat,
            chat,
            native: None,
            unsupported: None,
            anthropic_version: None,
            anthropic_beta: None,
            echo: Map::new(),
        }
    }

    /// Whether `target` gets the client's own body (Anthropic Messages to an Anthropic-kind provider).
    pub fn passes_through(&self, target: &ProviderTarget) -> bool {
        self.format == IngressFormat::Messages
            && (target.kind == ProviderKind::Anthropic || vertex::is_anthropic(target))
            && self.native.is_some()
    }

    pub fn is_stream(&self) -> bool {
        self.chat.is_stream()
    }

    /// Add the route's `decorate` messages: to the chat form, and to the native body (system
    /// messages to `system`, the others as text messages before and after the client's).
    pub fn decorate(&mut self, cfg: &CompiledAiProxy) {
        cfg.decorate(&mut self.chat);
        let d = &cfg.config.decorate;
        if let Some(native) = &mut self.native {
            messages_in::decorate_native(native, &d.prepend, &d.append);
        }
    }
}

/// Build the upstream request for `target`.
pub fn build_ingress_request(
    req: &IngressRequest,
    target: &ProviderTarget,
) -> Result<UpstreamRequest, AiError> {
    if req.passes_through(target) {
        if target.kind == ProviderKind::Vertex {
            // Claude on Vertex takes Anthropic's body but keeps no message threads (the Anthropic
            // SDKs' Vertex client has none either).
            if req.native.as_ref().is_some_and(messages_in::has_thread) {
                return Err(messages_in::thread_unsupported());
            }
            return vertex::build_native(req, target);
        }
        return messages_in::build_native(req, target, false);
    }
    if let Some(e) = &req.unsupported {
        return Err(e.clone());
    }
    build_request(&req.chat, target)
}

/// A whole answer for the client.
#[derive(Debug, Clone, PartialEq)]
pub enum IngressAnswer {
    /// A chat completion (chat clients, templates).
    Chat(ChatResponse),
    /// The body in the client's format, with what the log and token budgets need.
    Body {
        body: Vec<u8>,
        usage: Option<Usage>,
        model: Option<String>,
    },
}

/// Turn a provider's whole answer into the client's format (`status` 2xx; errors as [`parse_error`]).
pub fn parse_ingress_response(
    req: &IngressRequest,
    target: &ProviderTarget,
    status: u16,
    body: &[u8],
    ctx: &StreamContext,
) -> Result<IngressAnswer, AiError> {
    if !(200..300).contains(&status) {
        return Err(parse_error(target, status, body));
    }
    if req.passes_through(target) {
        return messages_in::parse_native(target, body);
    }
    let resp = parse_response(target, status, body, ctx)?;
    let value = match req.format {
        IngressFormat::Chat => return Ok(IngressAnswer::Chat(resp)),
        IngressFormat::Messages => messages_in::from_chat(&resp, ctx),
        IngressFormat::Responses => responses_in::from_chat(&resp, req, ctx),
    };
    Ok(IngressAnswer::Body {
        body: serde_json::to_vec(&value).unwrap_or_default(),
        usage: resp.usage.clone(),
        model: (!resp.model.is_empty()).then(|| resp.model.clone()),
    })
}

/// The second stage of a stream for a client of another format: chat chunks in, the client's
/// events out.
#[derive(Debug)]
#[allow(clippy::large_enum_variant)] // one per stream, never moved around
pub enum OutStage {
    Messages(messages_in::MessagesOut),
    Responses(responses_in::ResponsesOut),
}

impl OutStage {
    pub fn new(req: &IngressRequest, ctx: &StreamContext) -> Option<OutStage> {
        match req.format {
            IngressFormat::Chat => None,
            IngressFormat::Messages => Some(OutStage::Messages(messages_in::MessagesOut::new(ctx))),
            IngressFormat::Responses => Some(OutStage::Responses(responses_in::ResponsesOut::new(
                req, ctx,
            ))),
        }
    }

    /// Feed chat chunk bytes (`data: {...}\n\n`, `data: [DONE]`); append the client's events.
    pub fn push(&mut self, chunks: &[u8], out: &mut Vec<u8>) {
        match self {
            OutStage::Messages(s) => s.push(chunks, out),
            OutStage::Responses(s) => s.push(chunks, out),
        }
    }

    /// The chunks have ended.
    pub fn finish(&mut self, out: &mut Vec<u8>) {
        match self {
            OutStage::Messages(s) => s.finish(out),
            OutStage::Responses(s) => s.finish(out),
        }
    }
}

/// Append one named SSE event: `event: <name>\ndata: <json>\n\n`.
pub(crate) fn write_named(out: &mut Vec<u8>, name: &str, value: &impl serde::Serialize) {
    out.extend_from_slice(b"event: ");
    out.extend_from_slice(name.as_bytes());
    out.extend_from_slice(b"\ndata: ");
    if serde_json::to_writer(&mut *out, value).is_err() {
        out.extend_from_slice(b"{}");
    }
    out.extend_from_slice(b"\n\n");
}

/// A JSON string literal (quotes and escapes) appended to `out`.
pub(crate) fn write_json_str(out: &mut Vec<u8>, s: &str) {
    if serde_json::to_writer(&mut *out, s).is_err() {
        out.extend_from_slice(b"\"\"");
    }
}

/// Rough token count of a text (4 characters a token), for estimates.
pub fn estimate_tokens(text: &str) -> u64 {
    (text.chars().count() as u64).div_ceil(4)
}

/// Unix seconds as an RFC 3339 UTC timestamp (`2026-12-02T06:52:25Z`).
pub fn rfc3339(secs: u64) -> String {
    // Howard Hinnant's civil_from_days.
    let days = (secs / 86_400) as i64;
    let rem = secs % 86_400;
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        rem / 60 % 60,
        rem % 60
    )
}
