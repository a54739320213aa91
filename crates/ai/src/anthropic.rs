//! Anthropic Messages API (`POST /v1/messages`, `x-api-key` + `anthropic-version` headers).
//!
//! Out: system and developer messages are hoisted into `system`; multi-part content becomes content
//! blocks (images from `data:` URLs as base64 sources, others as URL sources, PDFs from `file` parts);
//! assistant `tool_calls` become `tool_use` blocks and `tool` messages `tool_result` blocks of a user turn;
//! consecutive turns of one role are merged. `max_tokens` is required by Anthropic and defaulted;
//! `temperature` is clamped to Anthropic's 0..1; JSON response formats become a system instruction.
//! Back: content blocks become the message text and `tool_calls`, `stop_reason` the `finish_reason`,
//! `usage.input_tokens` (plus cache reads and writes) the prompt tokens.

use super::sse::SseParser;
use super::*;
use serde_json::{json, Map, Value};

/// `anthropic-version` sent when the target sets none.
pub const DEFAULT_VERSION: &str = "2023-06-01";

/// `stop_reason` to OpenAI `finish_reason`.
pub fn finish_reason(stop_reason: &str) -> &'static str {
    match stop_reason {
        "max_tokens" | "model_context_window_exceeded" => "length",
        "tool_use" => "tool_calls",
        "refusal" => "content_filter",
        _ => "stop", // end_turn, stop_sequence, pause_turn
    }
}

fn image_block(url: &str) -> Value {
    match parse_data_url(url) {
        Some((media_type, data)) => json!({
            "type": "image",
            "source": {"type": "base64", "media_type": media_type, "data": data}
        }),
        None => json!({"type": "image", "source": {"type": "url", "url": url}}),
    }
}

fn part_blocks(content: &Content, param: &str) -> Result<Vec<Value>, AiError> {
    match content {
        Content::Text(s) => Ok(vec![json!({"type": "text", "text": s})]),
        Content::Parts(parts) => parts
            .iter()
            .map(|p| match p.kind.as_str() {
                "text" => Ok(json!({"type": "text", "text": p.text.clone().unwrap_or_default()})),
                "image_url" => match &p.image_url {
                    Some(img) => Ok(image_block(&img.url)),
                    None => Err(AiError::invalid_param(param, "image_url part without image_url")),
                },
                "file" => {
                    let data = p
                        .extra
                        .get("file")
                        .and_then(|f| f.get("file_data"))
                        .and_then(Value::as_str)
                        .and_then(parse_data_url);
                    match data {
                        Some((media_type, data)) => Ok(json!({
                            "type": "document",
                            "source": {"type": "base64", "media_type": media_type, "data": data}
                        })),
                        None => Err(AiError::invalid_param(
                            param,
                            "file parts need file.file_data as a base64 data: URL for this provider",
                        )),
                    }
                }
                other => Err(AiError::invalid_param(
                    param,
                    format!("content part type {other:?} is not supported by this provider"),
                )),
            })
            .collect(),
    }
}

/// The system instruction asking for JSON, when `response_format` asks for it.
pub fn json_instruction(response_format: Option<&Value>) -> Option<String> {
    let rf = response_format?;
    match rf.get("type").and_then(Value::as_str) {
        Some("json_object") => {
            Some("Respond with a single valid JSON object and nothing else.".to_string())
        }
        Some("json_schema") => {
            let schema = rf
                .get("json_schema")
                .and_then(|s| s.get("schema"))
                .cloned()
                .unwrap_or(Value::Null);
            Some(format!(
                "Respond with a single valid JSON object that conforms to this JSON Schema, and nothing else:\n{schema}"
            ))
        }
        _ => None,
    }
}

/// The Anthropic request body.
pub fn request_body(req: &ChatRequest, target: &ProviderTarget) -> Result<Value, AiError> {
    let mut system: Vec<String> = Vec::new();
    let mut turns: Vec<(&'static str, Vec<Value>)> = Vec::new();
    let mut push = |role: &'static str, blocks: Vec<Value>| {
        if blocks.is_empty() {
            return;
        }
        match turns.last_mut() {
            Some((r, b)) if *r == role => b.extend(blocks),
            _ => turns.push((role, blocks)),
        }
    };
    for (i, m) in req.messages.iter().enumerate() {
        let param = format!("messages[{i}]");
        match m.role.as_str() {
            "system" | "developer" => system.push(m.text_content()),
            "user" => {
                let blocks = match &m.content {
                    Some(c) => part_blocks(c, &param)?,
                    None => Vec::new(),
                };
                push("user", blocks);
            }
            "assistant" => {
                let mut blocks = Vec::new();
                if let Some(c) = &m.content {
                    let text = c.text();
                    if !text.is_empty() {
                        blocks.push(json!({"type": "text", "text": text}));
                    }
                }
                for call in m.tool_calls.iter().flatten() {
                    let input = super::call_arguments(call, &param)?;
                    blocks.push(json!({
                        "type": "tool_use",
                        "id": call.id,
                        "name": call.function.name,
                        "input": input,
                    }));
                }
                push("assistant", blocks);
            }
            "tool" => {
                let id = m.tool_call_id.clone().ok_or_else(|| {
                    AiError::invalid_param(&param, "tool messages need tool_call_id")
                })?;
                push(
                    "user",
                    vec![json!({
                        "type": "tool_result",
                        "tool_use_id": id,
                        "content": m.text_content(),
                    })],
                );
            }
            other => {
                return Err(AiError::invalid_param(
                    &param,
                    format!("unsupported role {other:?}"),
                ))
            }
        }
    }
    if let Some(instr) = json_instruction(req.response_format.as_ref()) {
        system.push(instr);
    }
    let messages: Vec<Value> = turns
        .into_iter()
        .map(|(role, mut blocks)| {
            let content = if blocks.len() == 1 && blocks[0]["type"] == "text" {
                blocks.swap_remove(0)["text"].take()
            } else {
                Value::Array(blocks)
            };
            json!({"role": role, "content": content})
        })
        .collect();

    let mut body = Map::new();
    body.insert("model".into(), json!(target.model));
    body.insert("messages".into(), Value::Array(messages));
    body.insert(
        "max_tokens".into(),
        json!(req.max_output_tokens().unwrap_or(target.default_max_tokens)),
    );
    if !system.is_empty() {
        body.insert("system".into(), json!(system.join("\n\n")));
    }
    if let Some(t) = req.temperature {
        body.insert("temperature".into(), json!(t.clamp(0.0, 1.0)));
    }
    if let Some(p) = req.top_p {
        body.insert("top_p".into(), json!(p));
    }
    let stop = req.stop_list();
    if !stop.is_empty() {
        body.insert("stop_sequences".into(), json!(stop));
    }
    if req.is_stream() {
        body.insert("stream".into(), json!(true));
    }
    if let Some(tools) = &req.tools {
        let tools: Vec<Value> = tools
            .iter()
            .map(|t| {
                let mut o = Map::new();
                o.insert("name".into(), json!(t.function.name));
                if let Some(d) = &t.function.description {
                    o.insert("description".into(), json!(d));
                }
                o.insert(
                    "input_schema".into(),
                    t.function
                        .parameters
                        .clone()
                        .unwrap_or_else(|| json!({"type": "object", "properties": {}})),
                );
                Value::Object(o)
            })
            .collect();
        if !tools.is_empty() {
            body.insert("tools".into(), Value::Array(tools));
        }
    }
    let mut choice = match &req.tool_choice {
        None => None,
        Some(Value::String(s)) => match s.as_str() {
            "auto" => Some(json!({"type": "auto"})),
            "none" => Some(json!({"type": "none"})),
            "required" => Some(json!({"type": "any"})),
            other => {
                return Err(AiError::invalid_param(
                    "tool_choice",
                    format!("unknown tool_choice {other:?}"),
                ))
            }
        },
        Some(v) => match v.get("function").and_then(|f| f.get("name")) {
            Some(name) => Some(json!({"type": "tool", "name": name})),
            None => {
                return Err(AiError::invalid_param(
                    "tool_choice",
                    "unsupported tool_choice",
                ))
            }
        },
    };
    if req.parallel_tool_calls == Some(false) && body.contains_key("tools") {
        let c = choice.get_or_insert_with(|| json!({"type": "auto"}));
        if c["type"] != "none" {
            c["disable_parallel_tool_use"] = json!(true);
        }
    }
    if let Some(c) = choice {
        body.insert("tool_choice".into(), c);
    }
    if let Some(u) = &req.user {
        body.insert("metadata".into(), json!({"user_id": u}));
    }
    Ok(Value::Object(body))
}

pub fn build_request(
    req: &ChatRequest,
    target: &ProviderTarget,
) -> Result<UpstreamRequest, AiError> {
    let body = request_body(req, target)?;
    let mut headers = vec![
        ("content-type".to_string(), "application/json".to_string()),
        (
            "anthropic-version".to_string(),
            target
                .api_version
                .clone()
                .unwrap_or_else(|| DEFAULT_VERSION.to_string()),
        ),
    ];
    if req.is_stream() {
        headers.push(("accept".to_string(), "text/event-stream".to_string()));
    }
    headers.extend(target.headers.iter().cloned());
    Ok(UpstreamRequest {
        method: "POST",
        url: join_url(&target.base_url, "v1/messages"),
        headers,
        key_header: Some(KeyHeader {
            name: "x-api-key",
            prefix: "",
        }),
        body: serde_json::to_vec(&body).map_err(|e| AiError::invalid(e.to_string()))?,
        stream: req.is_stream(),
    })
}

/// Anthropic `usage` to OpenAI usage (cache reads and writes count as prompt tokens).
pub fn usage(u: &Value) -> Usage {
    usage_of(
        u,
        [
            "input_tokens",
            "cache_creation_input_tokens",
            "cache_read_input_tokens",
            "output_tokens",
        ],
    )
}

/// A usage object with the named fields `[input, cache writes, cache reads, output]` to OpenAI usage:
/// cache reads and writes count as prompt tokens, reads also as `prompt_tokens_details.cached_tokens`
/// (Anthropic's and Bedrock's usage differ only in the names).
pub(super) fn usage_of(u: &Value, [input, written, read, output]: [&str; 4]) -> Usage {
    let n = |k: &str| u.get(k).and_then(Value::as_u64).unwrap_or(0);
    let cached = n(read);
    let mut usage = Usage::new(n(input) + n(written) + cached, n(output));
    if cached > 0 {
        usage.extra.insert(
            "prompt_tokens_details".into(),
            json!({"cached_tokens": cached}),
        );
    }
    usage
}

pub fn parse_response(
    target: &ProviderTarget,
    body: &[u8],
    ctx: &StreamContext,
) -> Result<ChatResponse, AiError> {
    let v: Value =
        serde_json::from_slice(body).map_err(|e| AiError::bad_response(&target.provider, e))?;
    if v.get("type").and_then(Value::as_str) == Some("error") {
        return Err(super::parse_error(target, 502, body));
    }
    let blocks = v
        .get("content")
        .and_then(Value::as_array)
        .ok_or_else(|| AiError::bad_response(&target.provider, "no content array"))?;
    let mut text = String::new();
    let mut calls = Vec::new();
    for b in blocks {
        match b.get("type").and_then(Value::as_str) {
            Some("text") => text.push_str(b.get("text").and_then(Value::as_str).unwrap_or("")),
            Some("tool_use") => calls.push(ToolCall {
                id: b
                    .get("id")
                    .and_then(Value::as_str)
                    .unwrap_or("")
                    .to_string(),
                kind: "function".to_string(),
                function: FunctionCall {
                    name: b
                        .get("name")
                        .and_then(Value::as_str)
                        .unwrap_or("")
                        .to_string(),
                    arguments: b
                        .get("input")
                        .map(Value::to_string)
                        .unwrap_or_else(|| "{}".to_string()),
                },
            }),
            _ => {} // thinking, redacted_thinking, server tool blocks: not part of OpenAI's message
        }
    }
    let reason = v
        .get("stop_reason")
        .and_then(Value::as_str)
        .map(|r| finish_reason(r).to_string());
    let message = ResponseMessage {
        content: if text.is_empty() && !calls.is_empty() {
            None
        } else {
            Some(text)
        },
        tool_calls: if calls.is_empty() { None } else { Some(calls) },
        ..ResponseMessage::default()
    };
    Ok(ChatResponse {
        id: v
            .get("id")
            .and_then(Value::as_str)
            .map(str::to_string)
            .unwrap_or_else(|| ctx.id.clone()),
        object: "chat.completion".to_string(),
        created: ctx.created,
        model: v
            .get("model")
            .and_then(Value::as_str)
            .map(str::to_string)
            .unwrap_or_else(|| ctx.model.clone()),
        choices: vec![Choice {
            index: 0,
            message,
            finish_reason: reason,
            extra: Extra::new(),
        }],
        usage: v.get("usage").map(usage),
        extra: Extra::new(),
    })
}

/// Anthropic event stream to OpenAI chunks.
#[derive(Debug)]
pub struct AnthropicStream {
    sse: SseParser,
    ctx: StreamContext,
    pub(crate) state: StreamState,
    id: String,
    model: String,
    /// (content block index, tool call index) of the tool_use blocks seen.
    tool_blocks: Vec<(u64, u32)>,
    /// input tokens from message_start.
    usage_raw: Map<String, Value>,
    started: bool,
}

impl AnthropicStream {
    pub fn new(ctx: StreamContext) -> AnthropicStream {
        AnthropicStream {
            sse: SseParser::new(),
            ctx,
            state: StreamState::default(),
            id: String::new(),
            model: String::new(),
            tool_blocks: Vec::new(),
            usage_raw: Map::new(),
            started: false,
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
        if self.state.error.is_none() {
            if self.state.finish_reason.is_some() {
                // message_stop missing but the message had finished: close normally.
                self.write_usage(out);
            } else {
                let e = AiError::stream_truncated(
                    !self.started,
                    "the provider's stream ended before the message finished",
                );
                write_error(out, &e);
                self.state.error = Some(e);
            }
        }
        write_done(out);
        self.state.done = true;
    }

    fn emit(&self, out: &mut Vec<u8>, delta: Delta, finish: Option<String>) {
        let c = chunk(
            &self.ctx,
            &self.id,
            &self.model,
            ChunkChoice {
                index: 0,
                delta,
                finish_reason: finish,
                extra: Extra::new(),
            },
        );
        write_event(out, &c);
    }

    fn write_usage(&self, out: &mut Vec<u8>) {
        if !self.ctx.include_usage {
            return;
        }
        if let Some(u) = &self.state.usage {
            let mut c = chunk(&self.ctx, &self.id, &self.model, ChunkChoice::default());
            c.choices.clear();
            c.usage = Some(u.clone());
            write_event(out, &c);
        }
    }

    fn update_usage(&mut self, u: &Value) {
        if let Some(o) = u.as_object() {
            for (k, v) in o {
                if !v.is_null() {
                    self.usage_raw.insert(k.clone(), v.clone());
                }
            }
        }
        self.state.usage = Some(usage(&Value::Object(self.usage_raw.clone())));
    }

    fn event(&mut self, data: &str, out: &mut Vec<u8>) {
        if self.state.done || self.state.error.is_some() {
            return;
        }
        let Ok(v) = serde_json::from_str::<Value>(data) else {
            if let Some(e) = AiError::not_json_event("anthropic", data) {
                write_error(out, &e);
                self.state.error = Some(e);
            }
            return;
        };
        match v.get("type").and_then(Value::as_str).unwrap_or("") {
            "message_start" => {
                let m = &v["message"];
                self.id = m["id"].as_str().unwrap_or("").to_string();
                self.model = m["model"].as_str().unwrap_or("").to_string();
                if !self.model.is_empty() {
                    self.state.model = Some(self.model.clone());
                }
                if let Some(u) = m.get("usage") {
                    self.update_usage(u);
                }
                self.started = true;
                self.emit(
                    out,
                    Delta {
                        role: Some("assistant".to_string()),
                        content: Some(String::new()),
                        ..Delta::default()
                    },
                    None,
                );
            }
            "content_block_start" => {
                let index = v["index"].as_u64().unwrap_or(0);
                let block = &v["content_block"];
                match block["type"].as_str() {
                    Some("text") => {
                        let text = block["text"].as_str().unwrap_or("");
                        if !text.is_empty() {
                            self.emit(out, text_delta(text), None);
                        }
                    }
                    Some("tool_use") => {
                        let tool_index = self.tool_blocks.len() as u32;
                        self.tool_blocks.push((index, tool_index));
                        self.emit(
                            out,
                            Delta {
                                tool_calls: Some(vec![ToolCallDelta::start(
                                    tool_index,
                                    block["id"].as_str().map(str::to_string),
                                    block["name"].as_str().map(str::to_string),
                                    String::new(),
                                )]),
                                ..Delta::default()
                            },
                            None,
                        );
                    }
                    _ => {}
                }
            }
            "content_block_delta" => {
                let index = v["index"].as_u64().unwrap_or(0);
                let d = &v["delta"];
                match d["type"].as_str() {
                    Some("text_delta") => {
                        let text = d["text"].as_str().unwrap_or("");
                        if !text.is_empty() {
                            self.emit(out, text_delta(text), None);
                        }
                    }
                    Some("input_json_delta") => {
                        let part = d["partial_json"].as_str().unwrap_or("");
                        let tool = self.tool_blocks.iter().find(|(b, _)| *b == index);
                        if let (false, Some(&(_, tool_index))) = (part.is_empty(), tool) {
                            self.emit(
                                out,
                                Delta {
                                    tool_calls: Some(vec![ToolCallDelta {
                                        index: tool_index,
                                        function: Some(FunctionDelta {
                                            name: None,
                                            arguments: Some(part.to_string()),
                                        }),
                                        ..ToolCallDelta::default()
                                    }]),
                                    ..Delta::default()
                                },
                                None,
                            );
                        }
                    }
                    _ => {} // thinking_delta, signature_delta, citations_delta
                }
            }
            "message_delta" => {
                if let Some(u) = v.get("usage") {
                    self.update_usage(u);
                }
                if let Some(r) = v["delta"]["stop_reason"].as_str() {
                    let r = finish_reason(r).to_string();
                    self.state.finish_reason = Some(r.clone());
                    self.emit(out, Delta::default(), Some(r));
                }
            }
            "message_stop" => {
                self.write_usage(out);
                write_done(out);
                self.state.done = true;
            }
            "error" => {
                let err = &v["error"];
                let kind = err["type"].as_str();
                let status = match kind {
                    Some("rate_limit_error") => 429,
                    Some("overloaded_error") => 529,
                    Some("invalid_request_error") => 400,
                    _ => 500,
                };
                let e = AiError::from_provider(
                    "anthropic",
                    status,
                    kind,
                    err["message"].as_str().unwrap_or(""),
                );
                write_error(out, &e);
                self.state.error = Some(e);
            }
            _ => {} // ping and future event types
        }
    }
}

fn text_delta(text: &str) -> Delta {
    Delta {
        content: Some(text.to_string()),
        ..Delta::default()
    }
}
