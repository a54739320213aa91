//! AWS Bedrock Runtime, Converse API: `POST {base}/model/{modelId}/converse` and
//! `/model/{modelId}/converse-stream` (binary `application/vnd.amazon.eventstream`, [`eventstream`]),
//! signed with SigV4 ([`sigv4`], service `bedrock`) from AWS keys the glue reads from Worker secrets.
//!
//! Out: system and developer messages become `system` text blocks; user content `text`, `image`
//! (base64 `data:` URLs; `format` from the media type) and `document` blocks (PDF and other `file`
//! parts); assistant `tool_calls` `toolUse` blocks, `tool` messages `toolResult` blocks of a user turn;
//! consecutive turns of one role merged; `max_tokens`, `temperature`, `top_p`, `stop` the
//! `inferenceConfig`; tools and `tool_choice` the `toolConfig`; JSON response formats a system
//! instruction (as for Anthropic).
//! Back: `output.message.content` becomes the text and `tool_calls`, `stopReason` the finish reason,
//! `usage` (`inputTokens` + cache reads and writes, `outputTokens`) the usage. ConverseStream's events
//! (`messageStart`, `contentBlockStart`, `contentBlockDelta`, `contentBlockStop`, `messageStop`,
//! `metadata`) become chunks; an `exception` message is an error event.

use super::eventstream::{EventStreamError, EventStreamParser, MessageRef};
use super::sigv4::{self, Credentials};
use super::*;
use serde_json::{json, Map, Value};

/// The AWS service name SigV4 signs Bedrock Runtime requests for.
pub const SERVICE: &str = "bedrock";
/// Worker secrets read when the configuration names none.
pub const DEFAULT_ACCESS_KEY_ID_SECRET: &str = "AWS_ACCESS_KEY_ID";
pub const DEFAULT_SECRET_ACCESS_KEY_SECRET: &str = "AWS_SECRET_ACCESS_KEY";

/// How a Bedrock target signs: its region and the NAMES of the Worker secrets holding its keys.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AwsAuth {
    pub region: String,
    pub access_key_id_secret: String,
    pub secret_access_key_secret: String,
    /// Temporary credentials: the secret holding the session token (`X-Amz-Security-Token`).
    pub session_token_secret: Option<String>,
}

/// Bedrock Runtime's URL in `region`.
pub fn default_base_url(region: &str) -> String {
    format!("https://bedrock-runtime.{region}.amazonaws.com")
}

/// Whether `region` looks like an AWS region (`us-east-1`, `eu-central-2`, `us-gov-west-1`).
pub fn valid_region(region: &str) -> bool {
    !region.is_empty()
        && region.len() <= 32
        && region
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !region.starts_with('-')
        && !region.ends_with('-')
}

/// Validate a provider's AWS settings (`config.rs`): for kind `bedrock` a region (which gives the
/// default base URL), secret NAMES (defaults `AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`) and no
/// `key_secret`; for other kinds, no AWS secrets. Returns the base URL and the signing settings.
pub fn check_provider(
    name: &str,
    kind: ProviderKind,
    p: &config::ProviderConfig,
    base_url: String,
    errors: &mut config::ConfigErrors,
) -> (String, Option<AwsAuth>) {
    let at = |f: &str| {
        edgegate_path_error::key_path(&edgegate_path_error::key_path("providers", name), f)
    };
    let fields = [
        ("access_key_id_secret", &p.access_key_id_secret),
        ("secret_access_key_secret", &p.secret_access_key_secret),
        ("session_token_secret", &p.session_token_secret),
    ];
    if kind != ProviderKind::Bedrock {
        for (f, v) in fields {
            if v.is_some() {
                errors.push((at(f), "only bedrock providers take AWS keys".into()));
            }
        }
        return (base_url, None);
    }
    for (f, v) in fields {
        if let Some(s) = v {
            if !config::is_secret_name(s) {
                errors.push((
                    at(f),
                    format!("{f} is the NAME of a Worker secret (letters, digits, _), not the key"),
                ));
            }
        }
    }
    if p.key_secret.is_some() {
        errors.push((
            at("key_secret"),
            "bedrock requests are signed with AWS keys: name their secrets in access_key_id_secret \
             and secret_access_key_secret (defaults AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY)"
                .into(),
        ));
    }
    let region = match p.region.as_deref() {
        Some(r) if valid_region(r) => r.to_string(),
        Some(_) => {
            errors.push((
                at("region"),
                "region is an AWS region name such as us-east-1".into(),
            ));
            return (base_url, None);
        }
        None => {
            errors.push((
                at("region"),
                "bedrock providers need a region (such as us-east-1)".into(),
            ));
            return (base_url, None);
        }
    };
    let base_url = if p.base_url.is_none() {
        default_base_url(&region)
    } else {
        base_url
    };
    let auth = AwsAuth {
        region,
        access_key_id_secret: p
            .access_key_id_secret
            .clone()
            .unwrap_or_else(|| DEFAULT_ACCESS_KEY_ID_SECRET.to_string()),
        secret_access_key_secret: p
            .secret_access_key_secret
            .clone()
            .unwrap_or_else(|| DEFAULT_SECRET_ACCESS_KEY_SECRET.to_string()),
        session_token_secret: p.session_token_secret.clone(),
    };
    (base_url, Some(auth))
}

/// `stopReason` to OpenAI `finish_reason`.
pub fn finish_reason(stop_reason: &str) -> &'static str {
    match stop_reason {
        "max_tokens" | "model_context_window_exceeded" => "length",
        "tool_use" => "tool_calls",
        "guardrail_intervened" | "content_filtered" => "content_filter",
        _ => "stop", // end_turn, stop_sequence
    }
}

/// Bedrock's image `format` of a media type.
fn image_format(media: &str) -> Option<&'static str> {
    Some(match media.to_ascii_lowercase().as_str() {
        "image/png" => "png",
        "image/jpeg" | "image/jpg" => "jpeg",
        "image/gif" => "gif",
        "image/webp" => "webp",
        _ => return None,
    })
}

/// Bedrock's document `format` of a media type.
fn document_format(media: &str) -> Option<&'static str> {
    Some(match media.to_ascii_lowercase().as_str() {
        "application/pdf" => "pdf",
        "text/csv" => "csv",
        "application/msword" => "doc",
        "application/vnd.openxmlformats-officedocument.wordprocessingml.document" => "docx",
        "application/vnd.ms-excel" => "xls",
        "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet" => "xlsx",
        "text/html" => "html",
        "text/plain" => "txt",
        "text/markdown" => "md",
        _ => return None,
    })
}

fn content_blocks(content: &Content, param: &str) -> Result<Vec<Value>, AiError> {
    let parts = match content {
        Content::Text(s) => return Ok(vec![json!({"text": s})]),
        Content::Parts(parts) => parts,
    };
    let mut docs = 0;
    parts
        .iter()
        .map(|p| match p.kind.as_str() {
            "text" => Ok(json!({"text": p.text.clone().unwrap_or_default()})),
            "image_url" => {
                let url = p.image_url.as_ref().map(|i| i.url.as_str()).ok_or_else(|| {
                    AiError::invalid_param(param, "image_url part without image_url")
                })?;
                let Some((media, data)) = parse_data_url(url) else {
                    return Err(AiError::invalid_param(
                        param,
                        "Bedrock takes images as base64 data: URLs, not links",
                    ));
                };
                let format = image_format(&media).ok_or_else(|| {
                    AiError::invalid_param(
                        param,
                        format!("image type {media:?} is not supported by Bedrock (png, jpeg, gif, webp)"),
                    )
                })?;
                Ok(json!({"image": {"format": format, "source": {"bytes": data}}}))
            }
            "file" => {
                let file = p.extra.get("file");
                let data = file
                    .and_then(|f| f.get("file_data"))
                    .and_then(Value::as_str)
                    .and_then(parse_data_url);
                let Some((media, data)) = data else {
                    return Err(AiError::invalid_param(
                        param,
                        "file parts need file.file_data as a base64 data: URL for this provider",
                    ));
                };
                let format = document_format(&media).ok_or_else(|| {
                    AiError::invalid_param(
                        param,
                        format!("document type {media:?} is not supported by Bedrock"),
                    )
                })?;
                docs += 1;
                // Bedrock requires a name: letters, digits, spaces, hyphens, parentheses, brackets.
                let name: String = file
                    .and_then(|f| f.get("filename"))
                    .and_then(Value::as_str)
                    .map(|n| {
                        n.chars()
                            .map(|c| {
                                if c.is_ascii_alphanumeric() || " -()[]".contains(c) {
                                    c
                                } else {
                                    '-'
                                }
                            })
                            .collect()
                    })
                    .filter(|n: &String| !n.trim().is_empty())
                    .unwrap_or_else(|| format!("document {docs}"));
                Ok(json!({"document": {"format": format, "name": name, "source": {"bytes": data}}}))
            }
            other => Err(AiError::invalid_param(
                param,
                format!("content part type {other:?} is not supported by this provider"),
            )),
        })
        .collect()
}

/// The Converse request body (the model goes in the URL).
pub fn request_body(req: &ChatRequest) -> Result<Value, AiError> {
    let mut system: Vec<Value> = Vec::new();
    let mut turns: Vec<(&'static str, Vec<Value>)> = Vec::new();
    let mut has_tool_blocks = false;
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
            "system" | "developer" => {
                let text = m.text_content();
                if !text.is_empty() {
                    system.push(json!({"text": text}));
                }
            }
            "user" => {
                let blocks = match &m.content {
                    Some(c) => content_blocks(c, &param)?,
                    None => Vec::new(),
                };
                push("user", blocks);
            }
            "assistant" => {
                let mut blocks = Vec::new();
                if let Some(c) = &m.content {
                    let text = c.text();
                    if !text.is_empty() {
                        blocks.push(json!({"text": text}));
                    }
                }
                for call in m.tool_calls.iter().flatten() {
                    let input = super::call_arguments(call, &param)?;
                    has_tool_blocks = true;
                    blocks.push(json!({"toolUse": {
                        "toolUseId": call.id,
                        "name": call.function.name,
                        "input": input,
                    }}));
                }
                push("assistant", blocks);
            }
            "tool" => {
                let id = m.tool_call_id.clone().ok_or_else(|| {
                    AiError::invalid_param(&param, "tool messages need tool_call_id")
                })?;
                has_tool_blocks = true;
                let text = m.text_content();
                // "Error: " is how the Messages ingress marks `is_error` results.
                let status = if text.starts_with("Error: ") {
                    "error"
                } else {
                    "success"
                };
                push(
                    "user",
                    vec![json!({"toolResult": {
                        "toolUseId": id,
                        "content": [{"text": text}],
                        "status": status,
                    }})],
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
    if let Some(instr) = anthropic::json_instruction(req.response_format.as_ref()) {
        system.push(json!({"text": instr}));
    }
    let messages: Vec<Value> = turns
        .into_iter()
        .map(|(role, blocks)| json!({"role": role, "content": blocks}))
        .collect();

    let mut body = Map::new();
    body.insert("messages".into(), Value::Array(messages));
    if !system.is_empty() {
        body.insert("system".into(), Value::Array(system));
    }
    let mut inference = Map::new();
    if let Some(n) = req.max_output_tokens() {
        inference.insert("maxTokens".into(), json!(n));
    }
    if let Some(t) = req.temperature {
        inference.insert("temperature".into(), json!(t));
    }
    if let Some(p) = req.top_p {
        inference.insert("topP".into(), json!(p));
    }
    let stop = req.stop_list();
    if !stop.is_empty() {
        inference.insert("stopSequences".into(), json!(stop));
    }
    if !inference.is_empty() {
        body.insert("inferenceConfig".into(), Value::Object(inference));
    }
    let tools: Vec<Value> = req
        .tools
        .iter()
        .flatten()
        .map(|t| {
            let mut spec = Map::new();
            spec.insert("name".into(), json!(t.function.name));
            if let Some(d) = &t.function.description {
                spec.insert("description".into(), json!(d));
            }
            spec.insert(
                "inputSchema".into(),
                json!({"json": t
                    .function
                    .parameters
                    .clone()
                    .unwrap_or_else(|| json!({"type": "object", "properties": {}}))}),
            );
            json!({"toolSpec": spec})
        })
        .collect();
    let choice = match &req.tool_choice {
        None => None,
        Some(Value::String(s)) => match s.as_str() {
            "auto" => Some(json!({"auto": {}})),
            "required" => Some(json!({"any": {}})),
            // Bedrock has no "none": the tools are not sent, unless the conversation already holds
            // tool blocks (Bedrock then requires the toolConfig).
            "none" => None,
            other => {
                return Err(AiError::invalid_param(
                    "tool_choice",
                    format!("unknown tool_choice {other:?}"),
                ))
            }
        },
        Some(v) => match v.get("function").and_then(|f| f.get("name")) {
            Some(name) => Some(json!({"tool": {"name": name}})),
            None => {
                return Err(AiError::invalid_param(
                    "tool_choice",
                    "unsupported tool_choice",
                ))
            }
        },
    };
    let none = req.tool_choice.as_ref().and_then(Value::as_str) == Some("none");
    if !tools.is_empty() && (!none || has_tool_blocks) {
        let mut config = Map::new();
        config.insert("tools".into(), Value::Array(tools));
        if let Some(c) = choice {
            config.insert("toolChoice".into(), c);
        }
        body.insert("toolConfig".into(), Value::Object(config));
    }
    Ok(Value::Object(body))
}

pub fn build_request(
    req: &ChatRequest,
    target: &ProviderTarget,
) -> Result<UpstreamRequest, AiError> {
    let body = request_body(req)?;
    let stream = req.is_stream();
    let op = if stream {
        "converse-stream"
    } else {
        "converse"
    };
    let headers = super::json_headers(
        target,
        if stream {
            "application/vnd.amazon.eventstream"
        } else {
            "application/json"
        },
    );
    Ok(UpstreamRequest {
        method: "POST",
        url: join_url(
            &target.base_url,
            &format!("model/{}/{op}", encode_component(&target.model)),
        ),
        headers,
        key_header: None,
        body: serde_json::to_vec(&body).map_err(|e| AiError::invalid(e.to_string()))?,
        stream,
    })
}

/// Bedrock's CountTokens (`POST {base}/model/{modelId}/count-tokens`) for the request's messages and
/// system prompt, as Converse would get them: `{"input": {"converse": {"messages", "system"}}}`.
pub fn build_count_tokens_request(
    req: &ChatRequest,
    target: &ProviderTarget,
) -> Result<UpstreamRequest, AiError> {
    let body = request_body(req)?;
    let mut converse = Map::new();
    for k in ["messages", "system"] {
        if let Some(v) = body.get(k) {
            converse.insert(k.to_string(), v.clone());
        }
    }
    let body = json!({"input": {"converse": converse}});
    let headers = super::json_headers(target, "application/json");
    Ok(UpstreamRequest {
        method: "POST",
        url: join_url(
            &target.base_url,
            &format!("model/{}/count-tokens", encode_component(&target.model)),
        ),
        headers,
        key_header: None,
        body: serde_json::to_vec(&body).map_err(|e| AiError::invalid(e.to_string()))?,
        stream: false,
    })
}

/// The `inputTokens` of a CountTokens answer.
pub fn parse_count_tokens(target: &ProviderTarget, body: &[u8]) -> Result<u64, AiError> {
    let v: Value =
        serde_json::from_slice(body).map_err(|e| AiError::bad_response(&target.provider, e))?;
    v.get("inputTokens")
        .and_then(Value::as_u64)
        .ok_or_else(|| AiError::bad_response(&target.provider, "no inputTokens"))
}

/// The headers that sign `up` for `auth`'s region at `unix_secs`: `x-amz-date`, `x-amz-security-token`
/// (temporary credentials) and `authorization`. They hold the session token and a signature: the glue
/// puts them on the request and nowhere else.
pub fn sign(
    up: &UpstreamRequest,
    auth: &AwsAuth,
    creds: &Credentials,
    unix_secs: u64,
) -> Result<Vec<(String, String)>, AiError> {
    sigv4::sign(
        up.method,
        &up.url,
        &up.headers,
        &up.body,
        creds,
        &auth.region,
        SERVICE,
        &sigv4::amz_date(unix_secs),
    )
    .ok_or_else(|| {
        AiError::new(
            502,
            "upstream_error",
            Some("gateway_misconfigured"),
            "the Bedrock request URL cannot be signed",
        )
    })
}

/// Bedrock `usage` to OpenAI usage (cache reads and writes count as prompt tokens).
pub fn usage(u: &Value) -> Usage {
    super::anthropic::usage_of(
        u,
        [
            "inputTokens",
            "cacheWriteInputTokens",
            "cacheReadInputTokens",
            "outputTokens",
        ],
    )
}

pub fn parse_response(
    target: &ProviderTarget,
    body: &[u8],
    ctx: &StreamContext,
) -> Result<ChatResponse, AiError> {
    let v: Value =
        serde_json::from_slice(body).map_err(|e| AiError::bad_response(&target.provider, e))?;
    let blocks = v
        .pointer("/output/message/content")
        .and_then(Value::as_array)
        .ok_or_else(|| AiError::bad_response(&target.provider, "no output.message.content"))?;
    let mut text = String::new();
    let mut calls = Vec::new();
    for b in blocks {
        if let Some(t) = b.get("text").and_then(Value::as_str) {
            text.push_str(t);
        } else if let Some(u) = b.get("toolUse") {
            calls.push(ToolCall {
                id: u
                    .get("toolUseId")
                    .and_then(Value::as_str)
                    .unwrap_or("")
                    .to_string(),
                kind: "function".to_string(),
                function: FunctionCall {
                    name: u
                        .get("name")
                        .and_then(Value::as_str)
                        .unwrap_or("")
                        .to_string(),
                    arguments: u
                        .get("input")
                        .map(Value::to_string)
                        .unwrap_or_else(|| "{}".to_string()),
                },
            });
        } // reasoningContent, citations, guardContent: not part of OpenAI's message
    }
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
        id: ctx.id.clone(),
        object: "chat.completion".to_string(),
        created: ctx.created,
        model: target.model.clone(),
        choices: vec![Choice {
            index: 0,
            message,
            finish_reason: v
                .get("stopReason")
                .and_then(Value::as_str)
                .map(|r| finish_reason(r).to_string()),
            extra: Extra::new(),
        }],
        usage: v.get("usage").map(usage),
        extra: Extra::new(),
    })
}

/// The HTTP status Bedrock answers an error type with (for exceptions inside a stream).
fn exception_status(kind: &str) -> u16 {
    match kind
        .trim_end_matches("Exception")
        .to_ascii_lowercase()
        .as_str()
    {
        "throttling" | "modelnotready" | "toomanyrequests" => 429,
        "validation" | "serialization" => 400,
        "accessdenied" | "unrecognizedclient" | "invalidsignature" | "expiredtoken" => 403,
        "resourcenotfound" => 404,
        "modeltimeout" => 408,
        "modelerror" => 424,
        "serviceunavailable" => 503,
        _ => 500, // internalServer, modelStreamError, unknown
    }
}

/// Error types that mean the gateway's AWS keys were refused (whatever the status).
fn auth_error(kind: &str) -> bool {
    matches!(
        kind,
        "UnrecognizedClientException"
            | "InvalidSignatureException"
            | "ExpiredTokenException"
            | "AccessDeniedException"
            | "IncompleteSignatureException"
            | "MissingAuthenticationTokenException"
            | "InvalidClientTokenId"
            | "SignatureDoesNotMatch"
    )
}

/// Translate a Bedrock error answer: `{"message": ...}` (or `Message`), its type in the
/// `x-amzn-ErrorType` header (`ThrottlingException:http://…`) or the body's `__type`.
pub fn provider_error(
    target: &ProviderTarget,
    status: u16,
    body: &[u8],
    headers: &[(String, String)],
) -> AiError {
    let v: Value = serde_json::from_slice(body).unwrap_or(Value::Null);
    let message = ["message", "Message"]
        .iter()
        .find_map(|k| v.get(*k).and_then(Value::as_str))
        .map(str::to_string)
        .unwrap_or_else(|| {
            String::from_utf8_lossy(body)
                .chars()
                .take(300)
                .collect::<String>()
                .trim()
                .to_string()
        });
    let kind = headers
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case("x-amzn-errortype"))
        .map(|(_, v)| v.as_str())
        .or_else(|| v.get("__type").and_then(Value::as_str))
        .map(|t| {
            // `ThrottlingException:http://internal…` or `com.amazon.coral…#ThrottlingException`.
            let t = t.split(':').next().unwrap_or(t);
            t.rsplit('#').next().unwrap_or(t).to_string()
        });
    let status_for = if kind.as_deref().is_some_and(auth_error) {
        403
    } else {
        status
    };
    let mut e = AiError::from_provider(&target.provider, status_for, kind.as_deref(), &message);
    e.upstream_status = Some(status);
    if e.status == 429 {
        e.headers =
            retry::rate_limit_headers(headers.iter().map(|(n, v)| (n.as_str(), v.as_str()))).into();
    }
    e
}

/// ConverseStream (binary event stream) to OpenAI chunks.
#[derive(Debug)]
pub struct BedrockStream {
    parser: EventStreamParser,
    ctx: StreamContext,
    pub(crate) state: StreamState,
    provider: String,
    model: String,
    /// (content block index, tool call index) of the toolUse blocks seen.
    tool_blocks: Vec<(u64, u32)>,
    started: bool,
}

impl BedrockStream {
    pub fn new(target: &ProviderTarget, ctx: StreamContext) -> BedrockStream {
        BedrockStream {
            parser: EventStreamParser::new(),
            ctx,
            state: StreamState {
                model: Some(target.model.clone()),
                ..StreamState::default()
            },
            provider: target.provider.clone(),
            model: target.model.clone(),
            tool_blocks: Vec::new(),
            started: false,
        }
    }

    pub fn push(&mut self, bytes: &[u8], out: &mut Vec<u8>) {
        // The parser lends its bytes to `message`, which needs `self`: taken out meanwhile.
        let mut parser = std::mem::take(&mut self.parser);
        parser.push_with(bytes, |m| match m {
            Ok(m) => self.message(&m, out),
            Err(e) => self.corrupt(&e, out),
        });
        self.parser = parser;
    }

    pub fn finish(&mut self, out: &mut Vec<u8>) {
        // Ended inside a message: a cut stream, reported below unless the message had finished.
        let _ = self.parser.finish();
        if self.state.done {
            return;
        }
        if self.state.error.is_none() {
            if self.state.finish_reason.is_some() {
                // metadata missing but the message had finished: close normally.
                self.write_usage(out);
            } else {
                self.truncated(out);
            }
        }
        write_done(out);
        self.state.done = true;
    }

    fn fail(&mut self, e: AiError, out: &mut Vec<u8>) {
        if self.state.done || self.state.error.is_some() {
            return;
        }
        write_error(out, &e);
        self.state.error = Some(e);
    }

    fn truncated(&mut self, out: &mut Vec<u8>) {
        let e = AiError::stream_truncated(
            !self.started,
            "the provider's stream ended before the message finished",
        );
        self.fail(e, out);
    }

    fn corrupt(&mut self, e: &EventStreamError, out: &mut Vec<u8>) {
        if let EventStreamError::Truncated(_) = e {
            return self.truncated(out);
        }
        let e = AiError {
            retryable: !self.started,
            ..AiError::bad_response(&self.provider, format!("corrupt event stream: {e}"))
        };
        self.fail(e, out);
    }

    fn emit(&self, out: &mut Vec<u8>, delta: Delta, finish: Option<String>) {
        let c = chunk(
            &self.ctx,
            "",
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
            let mut c = chunk(&self.ctx, "", &self.model, ChunkChoice::default());
            c.choices.clear();
            c.usage = Some(u.clone());
            write_event(out, &c);
        }
    }

    fn message(&mut self, m: &MessageRef<'_>, out: &mut Vec<u8>) {
        if self.state.done || self.state.error.is_some() {
            return;
        }
        let payload: Value = serde_json::from_slice(m.payload).unwrap_or(Value::Null);
        match m.header_str(":message-type").unwrap_or("event") {
            "event" => {}
            "exception" => {
                // `throttlingException` in a stream, `ThrottlingException` in an HTTP answer: one code.
                let raw = m
                    .header_str(":exception-type")
                    .unwrap_or("internalServerException");
                let mut chars = raw.chars();
                let kind: String = chars
                    .next()
                    .map(|c| c.to_ascii_uppercase())
                    .into_iter()
                    .chain(chars)
                    .collect();
                let e = AiError::from_provider(
                    &self.provider,
                    exception_status(raw),
                    Some(&kind),
                    payload
                        .get("message")
                        .or_else(|| payload.get("Message"))
                        .and_then(Value::as_str)
                        .unwrap_or(""),
                );
                return self.fail(e, out);
            }
            _ => {
                // `error`: `:error-code` and `:error-message` headers.
                let code = m.header_str(":error-code").unwrap_or("InternalError");
                let e = AiError::from_provider(
                    &self.provider,
                    500,
                    Some(code),
                    m.header_str(":error-message").unwrap_or(""),
                );
                return self.fail(e, out);
            }
        }
        match m.header_str(":event-type").unwrap_or("") {
            "messageStart" => {
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
            "contentBlockStart" => {
                let index = payload["contentBlockIndex"].as_u64().unwrap_or(0);
                if let Some(t) = payload.pointer("/start/toolUse") {
                    let tool_index = self.tool_blocks.len() as u32;
                    self.tool_blocks.push((index, tool_index));
                    self.emit(
                        out,
                        Delta {
                            tool_calls: Some(vec![ToolCallDelta::start(
                                tool_index,
                                t["toolUseId"].as_str().map(str::to_string),
                                t["name"].as_str().map(str::to_string),
                                String::new(),
                            )]),
                            ..Delta::default()
                        },
                        None,
                    );
                }
            }
            "contentBlockDelta" => {
                let index = payload["contentBlockIndex"].as_u64().unwrap_or(0);
                let d = &payload["delta"];
                if let Some(text) = d["text"].as_str() {
                    if !text.is_empty() {
                        self.emit(
                            out,
                            Delta {
                                content: Some(text.to_string()),
                                ..Delta::default()
                            },
                            None,
                        );
                    }
                } else if let Some(part) = d.pointer("/toolUse/input").and_then(Value::as_str) {
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
                } // reasoningContent, citation: not part of OpenAI's message
            }
            "messageStop" => {
                let r = finish_reason(payload["stopReason"].as_str().unwrap_or("end_turn"));
                self.state.finish_reason = Some(r.to_string());
                self.emit(out, Delta::default(), Some(r.to_string()));
            }
            "metadata" => {
                if let Some(u) = payload.get("usage") {
                    self.state.usage = Some(usage(u));
                }
                if self.state.finish_reason.is_some() {
                    self.write_usage(out);
                    write_done(out);
                    self.state.done = true;
                }
            }
            _ => {} // contentBlockStop, future event types
        }
    }
}
