//! Anthropic Messages as a client format (`POST …/v1/messages`, `POST …/v1/messages/count_tokens`).
//!
//! In: the body is checked ([`parse_request`]: errors name the JSON path, as Anthropic's do) and
//! read into a chat completion request: `system` → a system message; user `text`, `image` (base64 →
//! a `data:` URL, URL source → `image_url`), `document` (base64 PDF → a `file` part, plain-text source →
//! text) blocks → parts; `tool_result` blocks → `tool` messages (images in them follow as image parts
//! of the user turn); assistant `tool_use` → `tool_calls`; `thinking` blocks of earlier turns are
//! dropped; `tools` → function tools; `tool_choice` auto / any / tool / none → auto / required / named
//! / none (`disable_parallel_tool_use` → `parallel_tool_calls: false`); `stop_sequences` → `stop`;
//! `metadata.user_id` → `user`. What only Anthropic has (server tools, URL or file documents,
//! search results, ...) makes such a request fail on targets of other formats only
//! ([`IngressRequest::unsupported`]).
//!
//! To an Anthropic-kind provider the client's body goes as it is, model replaced ([`build_native`]),
//! and its answer and stream come back as they are ([`parse_native`], [`AnthropicPassStream`]).
//!
//! Out, from any other provider: a chat completion becomes a `message` ([`from_chat`]); chat chunks
//! become Anthropic's event sequence ([`MessagesOut`]): `message_start`, `content_block_start` /
//! `content_block_delta` (`text_delta`, `input_json_delta`) / `content_block_stop` per block,
//! `message_delta` (stop reason and usage), `message_stop`; an error as an `error` event.

use super::ingress::{estimate_tokens, write_json_str, write_named, IngressAnswer};
use super::ingress::{IngressFormat, IngressRequest};
use super::sse::SseParser;
use super::*;
use serde_json::{json, Map, Value};

/// `anthropic-version` values the gateway accepts from clients (an absent header is accepted too).
pub const ACCEPTED_VERSIONS: &[&str] = &["2023-06-01", "2026-10-21"];

fn bad(path: &str, message: impl std::fmt::Display) -> AiError {
    let path_msg = if path.is_empty() {
        message.to_string()
    } else {
        format!("{path}: {message}")
    };
    let e = if path.is_empty() {
        AiError::invalid(path_msg)
    } else {
        AiError::invalid_param(path, path_msg)
    };
    e.with_shape(ErrorShape::Anthropic)
}

/// Check the client's `anthropic-version`.
pub fn check_version(version: Option<&str>) -> Result<(), AiError> {
    match version {
        None => Ok(()),
        Some(v) if ACCEPTED_VERSIONS.contains(&v.trim()) => Ok(()),
        Some(v) => Err(AiError::invalid(format!(
            "anthropic-version: {v:?} is not a supported version (use {})",
            ACCEPTED_VERSIONS.join(" or ")
        ))
        .with_shape(ErrorShape::Anthropic)),
    }
}

/// Read a Messages request body (`count_tokens`: the `count_tokens` endpoint's, where `max_tokens`
/// is not required).
pub fn parse_request(
    body: &[u8],
    version: Option<&str>,
    beta: Option<&str>,
    count_tokens: bool,
) -> Result<IngressRequest, AiError> {
    check_version(version)?;
    let v: Value = serde_json::from_slice(body)
        .map_err(|e| bad("", format!("the body is not valid JSON: {e}")))?;
    let Value::Object(native) = v else {
        return Err(bad("", "the body must be a JSON object"));
    };
    let (chat, unsupported) = to_chat(&native, count_tokens)?;
    Ok(IngressRequest {
        format: IngressFormat::Messages,
        chat,
        native: Some(native),
        unsupported,
        anthropic_version: version.map(|v| v.trim().to_string()),
        anthropic_beta: beta.map(str::to_string),
        echo: Map::new(),
    })
}

/// Collects the first thing only Anthropic can do.
struct Unsupported(Option<AiError>);

impl Unsupported {
    fn note(&mut self, path: &str, what: &str) {
        if self.0.is_none() {
            self.0 = Some(bad(
                path,
                format!("{what} can only be sent to an Anthropic-format provider"),
            ));
        }
    }
}

fn get_str<'a>(o: &'a Map<String, Value>, key: &str, path: &str) -> Result<&'a str, AiError> {
    match o.get(key) {
        Some(Value::String(s)) => Ok(s),
        Some(_) => Err(bad(&format!("{path}.{key}"), "must be a string")),
        None => Err(bad(&format!("{path}.{key}"), "Field required")),
    }
}

fn as_object<'a>(v: &'a Value, path: &str) -> Result<&'a Map<String, Value>, AiError> {
    v.as_object().ok_or_else(|| bad(path, "must be an object"))
}

/// The object at `o[key]` (`{path}.{key}`): "Field required" when absent, as Anthropic says it.
fn get_object<'a>(
    o: &'a Map<String, Value>,
    key: &str,
    path: &str,
) -> Result<&'a Map<String, Value>, AiError> {
    let p = format!("{path}.{key}");
    match o.get(key) {
        Some(v) => as_object(v, &p),
        None => Err(bad(&p, "Field required")),
    }
}

/// Text of a `system` value or of a tool result's content: a string or a list of text blocks.
fn text_of(v: &Value, path: &str) -> Result<String, AiError> {
    match v {
        Value::String(s) => Ok(s.clone()),
        Value::Array(blocks) => {
            let mut parts = Vec::new();
            for (i, b) in blocks.iter().enumerate() {
                let p = format!("{path}.{i}");
                let b = as_object(b, &p)?;
                if get_str(b, "type", &p)? == "text" {
                    parts.push(get_str(b, "text", &p)?.to_string());
                }
            }
            Ok(parts.join("\n"))
        }
        Value::Null => Ok(String::new()),
        _ => Err(bad(path, "must be a string or a list of content blocks")),
    }
}

fn text_part(text: &str) -> ContentPart {
    ContentPart {
        kind: "text".into(),
        text: Some(text.to_string()),
        ..ContentPart::default()
    }
}

fn image_part(url: String) -> ContentPart {
    ContentPart {
        kind: "image_url".into(),
        image_url: Some(ImageUrl { url, detail: None }),
        ..ContentPart::default()
    }
}

/// An `image` block's source as a URL (`data:` for base64), or `None` when only Anthropic can read it.
fn image_url(b: &Map<String, Value>, path: &str) -> Result<Option<String>, AiError> {
    let p = format!("{path}.source");
    let src = get_object(b, "source", path)?;
    Ok(match get_str(src, "type", &p)? {
        "base64" => Some(format!(
            "data:{};base64,{}",
            get_str(src, "media_type", &p)?,
            get_str(src, "data", &p)?
        )),
        "url" => Some(get_str(src, "url", &p)?.to_string()),
        _ => None,
    })
}

/// Turn user content blocks into parts (`tool_result`s into tool messages, returned first).
fn user_blocks(
    blocks: &[Value],
    path: &str,
    unsupported: &mut Unsupported,
) -> Result<(Vec<Message>, Vec<ContentPart>), AiError> {
    let mut tools = Vec::new();
    let mut parts = Vec::new();
    let mut tool_images = Vec::new();
    for (j, b) in blocks.iter().enumerate() {
        let p = format!("{path}.{j}");
        let o = as_object(b, &p)?;
        match get_str(o, "type", &p)? {
            "text" => parts.push(text_part(get_str(o, "text", &p)?)),
            "image" => match image_url(o, &p)? {
                Some(url) => parts.push(image_part(url)),
                None => unsupported.note(&p, "an image with this source type"),
            },
            "document" => {
                let sp = format!("{p}.source");
                let src = get_object(o, "source", &p)?;
                match get_str(src, "type", &sp)? {
                    "base64" => {
                        let media = get_str(src, "media_type", &sp)?;
                        let data = get_str(src, "data", &sp)?;
                        let mut file = Map::new();
                        file.insert(
                            "file_data".into(),
                            json!(format!("data:{media};base64,{data}")),
                        );
                        file.insert(
                            "filename".into(),
                            o.get("title")
                                .and_then(Value::as_str)
                                .map_or_else(|| json!("document.pdf"), |t| json!(t)),
                        );
                        let mut extra = Map::new();
                        extra.insert("file".into(), Value::Object(file));
                        parts.push(ContentPart {
                            kind: "file".into(),
                            extra,
                            ..ContentPart::default()
                        });
                    }
                    "text" => parts.push(text_part(get_str(src, "data", &sp)?)),
                    "content" => parts.push(text_part(&text_of(
                        src.get("content").unwrap_or(&Value::Null),
                        &format!("{sp}.content"),
                    )?)),
                    _ => unsupported.note(&p, "a document with this source type"),
                }
            }
            "tool_result" => {
                let id = get_str(o, "tool_use_id", &p)?.to_string();
                let mut text = Vec::new();
                match o.get("content") {
                    None | Some(Value::Null) => {}
                    Some(Value::String(s)) => text.push(s.clone()),
                    Some(Value::Array(items)) => {
                        for (k, item) in items.iter().enumerate() {
                            let ip = format!("{p}.content.{k}");
                            let io = as_object(item, &ip)?;
                            match get_str(io, "type", &ip)? {
                                "text" => text.push(get_str(io, "text", &ip)?.to_string()),
                                "image" => match image_url(io, &ip)? {
                                    Some(url) => tool_images.push((id.clone(), url)),
                                    None => unsupported.note(&ip, "an image with this source type"),
                                },
                                other => unsupported
                                    .note(&ip, &format!("a {other:?} block in a tool result")),
                            }
                        }
                    }
                    Some(_) => {
                        return Err(bad(
                            &format!("{p}.content"),
                            "must be a string or a list of content blocks",
                        ))
                    }
                }
                let mut content = text.join("\n");
                if o.get("is_error").and_then(Value::as_bool) == Some(true) {
                    content = format!("Error: {content}");
                }
                tools.push(Message {
                    role: "tool".into(),
                    content: Some(Content::Text(content)),
                    tool_call_id: Some(id),
                    ..Message::default()
                });
            }
            // Earlier turns' reasoning, and what the client marks for caching only, carry nothing
            // for other providers.
            "thinking" | "redacted_thinking" => {}
            other => unsupported.note(&p, &format!("a {other:?} block")),
        }
    }
    for (id, url) in tool_images {
        parts.push(text_part(&format!("(image returned by tool call {id})")));
        parts.push(image_part(url));
    }
    Ok((tools, parts))
}

/// Whether a Messages body asks for a message thread (`thread`, not `null`).
pub fn has_thread(o: &Map<String, Value>) -> bool {
    o.get("thread").is_some_and(|t| !t.is_null())
}

/// The refusal of a message thread by a target that cannot keep one (400, code
/// [`THREAD_UNSUPPORTED`], `details` in Anthropic's body).
pub fn thread_unsupported() -> AiError {
    AiError {
        code: Some(THREAD_UNSUPPORTED.to_string()),
        ..bad(
            "thread",
            "message threads can only be kept by Anthropic's own API (an `anthropic` provider); send the whole conversation in `messages` without `thread`",
        )
    }
}

/// The Messages body as a chat completion request, and what only Anthropic can do, if anything.
pub fn to_chat(
    o: &Map<String, Value>,
    count_tokens: bool,
) -> Result<(ChatRequest, Option<AiError>), AiError> {
    let mut unsupported = Unsupported(None);
    let model = get_str(o, "model", "")
        .map_err(|_| bad("model", "Field required (a string)"))?
        .to_string();
    let max_tokens = match o.get("max_tokens") {
        Some(v) => Some(
            v.as_u64()
                .filter(|n| *n >= 1)
                .ok_or_else(|| bad("max_tokens", "must be an integer of at least 1"))?,
        ),
        None if count_tokens => None,
        None => return Err(bad("max_tokens", "Field required")),
    };
    // A message thread (Anthropic's `message-threads` beta: `thread.previous_message_id` stands for
    // the turns the provider stored) only an Anthropic-format provider can keep: the gateway stores
    // nothing, and a provider of another format would get the new turns without the earlier ones.
    if has_thread(o) && !count_tokens {
        unsupported.0 = Some(thread_unsupported());
    }
    let mut messages = Vec::new();
    if let Some(system) = o.get("system") {
        let text = text_of(system, "system")?;
        if !text.is_empty() {
            messages.push(Message::text("system", text));
        }
    }
    let list = match o.get("messages") {
        Some(Value::Array(a)) => a,
        Some(_) => return Err(bad("messages", "must be a list")),
        None => return Err(bad("messages", "Field required")),
    };
    for (i, m) in list.iter().enumerate() {
        let p = format!("messages.{i}");
        let m = as_object(m, &p)?;
        let role = get_str(m, "role", &p)?;
        let cp = format!("{p}.content");
        let content = m.get("content").ok_or_else(|| bad(&cp, "Field required"))?;
        match role {
            "user" => match content {
                Value::String(s) => messages.push(Message::text("user", s.clone())),
                Value::Array(blocks) => {
                    let (tools, parts) = user_blocks(blocks, &cp, &mut unsupported)?;
                    messages.extend(tools);
                    if parts.iter().all(|p| p.kind == "text") {
                        let text: Vec<&str> =
                            parts.iter().filter_map(|p| p.text.as_deref()).collect();
                        if !text.is_empty() {
                            messages.push(Message::text("user", text.join("\n")));
                        }
                    } else {
                        messages.push(Message {
                            role: "user".into(),
                            content: Some(Content::Parts(parts)),
                            ..Message::default()
                        });
                    }
                }
                _ => return Err(bad(&cp, "must be a string or a list of content blocks")),
            },
            "assistant" => {
                let mut text = String::new();
                let mut calls = Vec::new();
                match content {
                    Value::String(s) => text.push_str(s),
                    Value::Array(blocks) => {
                        for (j, b) in blocks.iter().enumerate() {
                            let bp = format!("{cp}.{j}");
                            let b = as_object(b, &bp)?;
                            match get_str(b, "type", &bp)? {
                                "text" => text.push_str(get_str(b, "text", &bp)?),
                                "tool_use" => calls.push(ToolCall {
                                    id: get_str(b, "id", &bp)?.to_string(),
                                    kind: "function".into(),
                                    function: FunctionCall {
                                        name: get_str(b, "name", &bp)?.to_string(),
                                        arguments: b
                                            .get("input")
                                            .map_or_else(|| "{}".to_string(), Value::to_string),
                                    },
                                }),
                                "thinking" | "redacted_thinking" => {}
                                other => unsupported.note(&bp, &format!("a {other:?} block")),
                            }
                        }
                    }
                    _ => return Err(bad(&cp, "must be a string or a list of content blocks")),
                }
                messages.push(Message {
                    role: "assistant".into(),
                    content: if text.is_empty() && !calls.is_empty() {
                        None
                    } else {
                        Some(Content::Text(text))
                    },
                    tool_calls: (!calls.is_empty()).then_some(calls),
                    ..Message::default()
                });
            }
            other => {
                return Err(bad(
                    &format!("{p}.role"),
                    format!("{other:?} is not one of \"user\", \"assistant\""),
                ))
            }
        }
    }
    let mut chat = ChatRequest {
        model,
        messages,
        max_tokens,
        stream: match o.get("stream") {
            None | Some(Value::Null) => None,
            Some(Value::Bool(b)) => Some(*b),
            Some(_) => return Err(bad("stream", "must be a boolean")),
        },
        ..ChatRequest::default()
    };
    let number = |key: &str| -> Result<Option<f64>, AiError> {
        match o.get(key) {
            None | Some(Value::Null) => Ok(None),
            Some(v) => v
                .as_f64()
                .map(Some)
                .ok_or_else(|| bad(key, "must be a number")),
        }
    };
    chat.temperature = number("temperature")?;
    chat.top_p = number("top_p")?;
    if let Some(stop) = o.get("stop_sequences") {
        let list: Vec<String> = stop
            .as_array()
            .and_then(|a| a.iter().map(|s| s.as_str().map(str::to_string)).collect())
            .ok_or_else(|| bad("stop_sequences", "must be a list of strings"))?;
        if !list.is_empty() {
            chat.stop = Some(Stop::Many(list));
        }
    }
    if let Some(user) = o
        .get("metadata")
        .and_then(|m| m.get("user_id"))
        .and_then(Value::as_str)
    {
        chat.user = Some(user.to_string());
    }
    if let Some(tools) = o.get("tools") {
        let tools = tools
            .as_array()
            .ok_or_else(|| bad("tools", "must be a list"))?;
        let mut list = Vec::new();
        for (i, t) in tools.iter().enumerate() {
            let p = format!("tools.{i}");
            let t = as_object(t, &p)?;
            match t.get("type").and_then(Value::as_str) {
                None | Some("custom") => {}
                Some(other) => {
                    unsupported.note(&p, &format!("the {other:?} tool"));
                    continue;
                }
            }
            let schema = t
                .get("input_schema")
                .cloned()
                .ok_or_else(|| bad(&format!("{p}.input_schema"), "Field required"))?;
            list.push(Tool {
                kind: "function".into(),
                function: FunctionDef {
                    name: get_str(t, "name", &p)?.to_string(),
                    description: t
                        .get("description")
                        .and_then(Value::as_str)
                        .map(str::to_string),
                    parameters: Some(schema),
                    extra: Map::new(),
                },
                extra: Map::new(),
            });
        }
        if !list.is_empty() {
            chat.tools = Some(list);
        }
    }
    if let Some(choice) = o.get("tool_choice") {
        let c = as_object(choice, "tool_choice")?;
        chat.tool_choice = Some(match get_str(c, "type", "tool_choice")? {
            "auto" => json!("auto"),
            "any" => json!("required"),
            "none" => json!("none"),
            "tool" => json!({"type": "function",
                             "function": {"name": get_str(c, "name", "tool_choice")?}}),
            other => {
                return Err(bad(
                    "tool_choice.type",
                    format!("{other:?} is not one of auto, any, tool, none"),
                ))
            }
        });
        if c.get("disable_parallel_tool_use").and_then(Value::as_bool) == Some(true)
            && chat.tools.is_some()
        {
            chat.parallel_tool_calls = Some(false);
        }
    }
    Ok((chat, unsupported.0))
}

/// Add the route's `decorate` messages to a native body.
pub fn decorate_native(native: &mut Map<String, Value>, prepend: &[Message], append: &[Message]) {
    if prepend.is_empty() && append.is_empty() {
        return;
    }
    let sys = |list: &[Message]| -> Vec<String> {
        list.iter()
            .filter(|m| m.role == "system" || m.role == "developer")
            .map(Message::text_content)
            .collect()
    };
    let turn = |m: &Message| {
        (m.role == "user" || m.role == "assistant")
            .then(|| json!({"role": m.role, "content": m.text_content()}))
    };
    let (before, after) = (sys(prepend), sys(append));
    if !before.is_empty() || !after.is_empty() {
        let mut blocks: Vec<Value> = before
            .iter()
            .map(|t| json!({"type": "text", "text": t}))
            .collect();
        match native.remove("system") {
            Some(Value::String(s)) => blocks.push(json!({"type": "text", "text": s})),
            Some(Value::Array(a)) => blocks.extend(a),
            _ => {}
        }
        blocks.extend(after.iter().map(|t| json!({"type": "text", "text": t})));
        native.insert("system".into(), Value::Array(blocks));
    }
    if let Some(Value::Array(messages)) = native.get_mut("messages") {
        let mut list: Vec<Value> = prepend.iter().filter_map(turn).collect();
        list.append(messages);
        list.extend(append.iter().filter_map(turn));
        *messages = list;
    }
}

/// Fields the `count_tokens` endpoint takes (the others of a Messages body are dropped).
const COUNT_FIELDS: &[&str] = &[
    "model",
    "messages",
    "system",
    "tools",
    "tool_choice",
    "thinking",
    "mcp_servers",
];

/// The client's body for an Anthropic-kind provider: model replaced, headers from the client's
/// `anthropic-version` (unless the target sets one) and `anthropic-beta`. `count_tokens`: the
/// `count_tokens` endpoint.
pub fn build_native(
    req: &IngressRequest,
    target: &ProviderTarget,
    count_tokens: bool,
) -> Result<UpstreamRequest, AiError> {
    let mut body = req.native.clone().unwrap_or_default();
    body.insert("model".into(), json!(target.model));
    if count_tokens {
        body.retain(|k, _| COUNT_FIELDS.contains(&k.as_str()));
    } else if !body.contains_key("max_tokens") {
        body.insert("max_tokens".into(), json!(target.default_max_tokens));
    }
    let stream = !count_tokens && req.is_stream();
    let mut headers = vec![
        ("content-type".to_string(), "application/json".to_string()),
        (
            "anthropic-version".to_string(),
            target
                .api_version
                .clone()
                .or_else(|| req.anthropic_version.clone())
                .unwrap_or_else(|| anthropic::DEFAULT_VERSION.to_string()),
        ),
    ];
    if let Some(beta) = &req.anthropic_beta {
        headers.push(("anthropic-beta".to_string(), beta.clone()));
    }
    if stream {
        headers.push(("accept".to_string(), "text/event-stream".to_string()));
    }
    headers.extend(target.headers.iter().cloned());
    Ok(UpstreamRequest {
        method: "POST",
        url: join_url(
            &target.base_url,
            if count_tokens {
                "v1/messages/count_tokens"
            } else {
                "v1/messages"
            },
        ),
        headers,
        key_header: Some(KeyHeader {
            name: "x-api-key",
            prefix: "",
        }),
        body: serde_json::to_vec(&Value::Object(body))
            .map_err(|e| AiError::invalid(e.to_string()))?,
        stream,
    })
}

/// An Anthropic-kind provider's whole answer, passed on as it came (read for usage and model).
pub fn parse_native(target: &ProviderTarget, body: &[u8]) -> Result<IngressAnswer, AiError> {
    let v: Value =
        serde_json::from_slice(body).map_err(|e| AiError::bad_response(&target.provider, e))?;
    if v.get("type").and_then(Value::as_str) == Some("error") {
        return Err(parse_error(target, 502, body));
    }
    if !v.get("content").is_some_and(Value::is_array) {
        return Err(AiError::bad_response(&target.provider, "no content array"));
    }
    Ok(IngressAnswer::Body {
        body: body.to_vec(),
        usage: v.get("usage").map(anthropic::usage),
        model: v.get("model").and_then(Value::as_str).map(str::to_string),
    })
}

/// The estimate `count_tokens` gives for providers that cannot count: about 4 characters a token
/// over the messages' text, the system prompt and the tools' JSON, plus 4 per message.
pub fn estimate_input_tokens(req: &IngressRequest) -> u64 {
    let chat = &req.chat;
    let mut n: u64 = chat
        .messages
        .iter()
        .map(|m| {
            let mut t = estimate_tokens(&m.text_content()) + 4;
            for c in m.tool_calls.iter().flatten() {
                t += estimate_tokens(&c.function.name) + estimate_tokens(&c.function.arguments);
            }
            if let Some(Content::Parts(parts)) = &m.content {
                // An image or document: a flat guess (Anthropic's images cost ~1,600 tokens at most).
                t += 1000 * parts.iter().filter(|p| p.kind != "text").count() as u64;
            }
            t
        })
        .fold(0, u64::saturating_add);
    for t in chat.tools.iter().flatten() {
        n += estimate_tokens(&serde_json::to_string(&t.function).unwrap_or_default());
    }
    n.max(1)
}

/// Chat `finish_reason` to Anthropic `stop_reason`.
pub fn stop_reason(finish_reason: &str) -> &'static str {
    match finish_reason {
        "length" => "max_tokens",
        "tool_calls" | "function_call" => "tool_use",
        "content_filter" => "refusal",
        _ => "end_turn",
    }
}

/// Chat usage to Anthropic usage (cached prompt tokens as cache reads).
pub fn usage_out(u: Option<&Usage>) -> Value {
    let (prompt, completion, cached) = match u {
        Some(u) => (
            u.prompt_tokens,
            u.completion_tokens,
            u.extra
                .get("prompt_tokens_details")
                .and_then(|d| d.get("cached_tokens"))
                .and_then(Value::as_u64)
                .unwrap_or(0),
        ),
        None => (0, 0, 0),
    };
    json!({
        "input_tokens": prompt.saturating_sub(cached),
        "cache_creation_input_tokens": 0,
        "cache_read_input_tokens": cached,
        "output_tokens": completion,
    })
}

/// The message id for the client: the gateway's (`ctx.id`, `msg_<request id>`).
fn message_id(ctx: &StreamContext) -> String {
    ctx.id.clone()
}

/// A chat completion as an Anthropic `message`.
pub fn from_chat(resp: &ChatResponse, ctx: &StreamContext) -> Value {
    let mut content = Vec::new();
    let choice = resp.choices.first();
    // An OpenAI-format provider's refusal (structured outputs): its text, and `stop_reason: refusal`.
    let refusal = choice
        .and_then(|c| c.message.extra.get("refusal"))
        .and_then(Value::as_str)
        .filter(|t| !t.is_empty());
    if let Some(c) = choice {
        if let Some(text) = c.message.content.as_deref().filter(|t| !t.is_empty()) {
            content.push(json!({"type": "text", "text": text}));
        }
        if let Some(text) = refusal {
            content.push(json!({"type": "text", "text": text}));
        }
        for call in c.message.tool_calls.iter().flatten() {
            let input: Value = serde_json::from_str(&call.function.arguments)
                .ok()
                .filter(Value::is_object)
                .unwrap_or_else(|| json!({}));
            content.push(
                json!({"type": "tool_use", "id": call.id, "name": call.function.name,
                                "input": input}),
            );
        }
    }
    let reason = match refusal {
        Some(_) => "refusal",
        None => choice
            .and_then(|c| c.finish_reason.as_deref())
            .map(stop_reason)
            .unwrap_or("end_turn"),
    };
    let model = if resp.model.is_empty() {
        &ctx.model
    } else {
        &resp.model
    };
    json!({
        "id": message_id(ctx),
        "type": "message",
        "role": "assistant",
        "model": model,
        "content": content,
        "stop_reason": reason,
        "stop_sequence": null,
        "usage": usage_out(resp.usage.as_ref()),
    })
}

/// An error event in Anthropic's stream shape.
fn write_error_event(out: &mut Vec<u8>, e: &AiError) {
    let e = e.clone().with_shape(ErrorShape::Anthropic);
    write_named(out, "error", &e.body());
}

/// Pieces of the answer held back while a tool call's arguments are incomplete.
#[derive(Debug)]
enum Pending {
    Text(Vec<String>),
    Tool(HeldCall),
}

/// A tool call held back while another call's arguments are incomplete (see [`JsonProgress`]): the
/// chat chunks' tool call index, its id and name, and its argument pieces as they came.
#[derive(Debug)]
pub(crate) struct HeldCall {
    pub(crate) index: u32,
    pub(crate) id: String,
    pub(crate) name: String,
    pub(crate) pieces: Vec<String>,
}

impl HeldCall {
    pub(crate) fn new(
        index: u32,
        id: Option<String>,
        name: Option<String>,
        args: &str,
    ) -> HeldCall {
        HeldCall {
            index,
            id: id.unwrap_or_default(),
            name: name.unwrap_or_default(),
            pieces: (!args.is_empty())
                .then(|| args.to_string())
                .into_iter()
                .collect(),
        }
    }

    /// A later chunk of the same call: its id and name when not known yet, its arguments.
    pub(crate) fn absorb(&mut self, id: Option<String>, name: Option<String>, args: &str) {
        if self.id.is_empty() {
            self.id = id.unwrap_or_default();
        }
        if self.name.is_empty() {
            self.name = name.unwrap_or_default();
        }
        if !args.is_empty() {
            self.pieces.push(args.to_string());
        }
    }
}

/// Whether a tool call's streamed arguments form a whole JSON value yet (an object or array closed at
/// depth 0, strings and escapes skipped): the call is then over, and what was held back can follow.
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct JsonProgress {
    depth: u32,
    opened: bool,
    in_string: bool,
    escaped: bool,
}

impl JsonProgress {
    pub(crate) fn feed(&mut self, piece: &str) {
        for b in piece.bytes() {
            if self.in_string {
                match b {
                    _ if self.escaped => self.escaped = false,
                    b'\\' => self.escaped = true,
                    b'"' => self.in_string = false,
                    _ => {}
                }
                continue;
            }
            match b {
                b'"' => self.in_string = true,
                b'{' | b'[' => {
                    self.depth += 1;
                    self.opened = true;
                }
                b'}' | b']' => self.depth = self.depth.saturating_sub(1),
                _ => {}
            }
        }
    }

    pub(crate) fn complete(&self) -> bool {
        self.opened && self.depth == 0 && !self.in_string
    }
}

/// Chat chunks to Anthropic Messages events.
#[derive(Debug)]
pub struct MessagesOut {
    sse: SseParser,
    id: String,
    model: String,
    started: bool,
    /// The open content block: (index, is text).
    open: Option<(u32, bool)>,
    next_block: u32,
    /// (tool call index in the chunks, block index) of the calls given a block.
    tools: Vec<(u32, u32)>,
    /// The arguments of the tool call streaming in the open block.
    progress: JsonProgress,
    /// What arrived while the open tool call's arguments were incomplete (providers may interleave
    /// the pieces of parallel calls, and an Anthropic block cannot be reopened): written, piece by
    /// piece, once they are complete or the answer ends.
    pending: Vec<Pending>,
    stop_reason: Option<&'static str>,
    /// The provider refused (OpenAI `refusal` deltas): the stop reason is `refusal`.
    refused: bool,
    usage: Option<Usage>,
    done: bool,
}

impl MessagesOut {
    pub fn new(ctx: &StreamContext) -> MessagesOut {
        MessagesOut {
            sse: SseParser::new(),
            id: message_id(ctx),
            model: ctx.model.clone(),
            started: false,
            open: None,
            next_block: 0,
            tools: Vec::new(),
            progress: JsonProgress::default(),
            pending: Vec::new(),
            stop_reason: None,
            refused: false,
            usage: None,
            done: false,
        }
    }

    pub fn push(&mut self, chunks: &[u8], out: &mut Vec<u8>) {
        for e in self.sse.push(chunks) {
            self.event(&e.data, out);
        }
    }

    pub fn finish(&mut self, out: &mut Vec<u8>) {
        for e in self.sse.finish() {
            self.event(&e.data, out);
        }
        if !self.done {
            // The chunks always end with `[DONE]`; this is only a guard.
            self.end(out);
        }
    }

    fn start(&mut self, out: &mut Vec<u8>) {
        if self.started {
            return;
        }
        self.started = true;
        write_named(
            out,
            "message_start",
            &json!({"type": "message_start", "message": {
                "id": self.id, "type": "message", "role": "assistant", "model": self.model,
                "content": [], "stop_reason": null, "stop_sequence": null,
                "usage": usage_out(None),
            }}),
        );
    }

    fn close_block(&mut self, out: &mut Vec<u8>) {
        if let Some((index, _)) = self.open.take() {
            out.extend_from_slice(
                b"event: content_block_stop\ndata: {\"type\":\"content_block_stop\",\"index\":",
            );
            out.extend_from_slice(index.to_string().as_bytes());
            out.extend_from_slice(b"}\n\n");
        }
    }

    fn open_block(&mut self, out: &mut Vec<u8>, block: Value, text: bool) -> u32 {
        self.close_block(out);
        let index = self.next_block;
        self.next_block += 1;
        self.open = Some((index, text));
        write_named(
            out,
            "content_block_start",
            &json!({"type": "content_block_start", "index": index, "content_block": block}),
        );
        index
    }

    fn delta(out: &mut Vec<u8>, index: u32, kind: &str, field: &str, text: &str) {
        out.extend_from_slice(
            b"event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":",
        );
        out.extend_from_slice(index.to_string().as_bytes());
        out.extend_from_slice(b",\"delta\":{\"type\":\"");
        out.extend_from_slice(kind.as_bytes());
        out.extend_from_slice(b"\",\"");
        out.extend_from_slice(field.as_bytes());
        out.extend_from_slice(b"\":");
        write_json_str(out, text);
        out.extend_from_slice(b"}}\n\n");
    }

    /// Whether what arrives now must wait: the open block is a tool call whose arguments are not
    /// complete yet, or something already waits.
    fn holding(&self) -> bool {
        matches!(self.open, Some((_, false))) && !self.progress.complete()
            || !self.pending.is_empty()
    }

    /// Write what waited, in arrival order, each in a block of its own (its pieces as they came), as
    /// long as the open tool call is complete (`force`: regardless, at the end of the answer).
    fn drain(&mut self, out: &mut Vec<u8>, force: bool) {
        while !self.pending.is_empty() {
            if !force && matches!(self.open, Some((_, false))) && !self.progress.complete() {
                return;
            }
            match self.pending.remove(0) {
                Pending::Text(pieces) => {
                    let index = self.open_block(out, json!({"type": "text", "text": ""}), true);
                    for piece in &pieces {
                        Self::delta(out, index, "text_delta", "text", piece);
                    }
                }
                Pending::Tool(held) => {
                    let block =
                        json!({"type": "tool_use", "id": held.id, "name": held.name, "input": {}});
                    let index = self.open_block(out, block, false);
                    self.tools.push((held.index, index));
                    self.progress = JsonProgress::default();
                    for piece in &held.pieces {
                        self.progress.feed(piece);
                        Self::delta(out, index, "input_json_delta", "partial_json", piece);
                    }
                }
            }
        }
        if force {
            self.close_block(out);
        }
    }

    /// `message_delta` (stop reason, usage) and `message_stop`.
    fn end(&mut self, out: &mut Vec<u8>) {
        self.start(out);
        self.drain(out, true);
        let usage = usage_out(self.usage.as_ref());
        write_named(
            out,
            "message_delta",
            &json!({"type": "message_delta",
                    "delta": {"stop_reason": self.stop_reason.unwrap_or("end_turn"), "stop_sequence": null},
                    "usage": usage}),
        );
        out.extend_from_slice(b"event: message_stop\ndata: {\"type\":\"message_stop\"}\n\n");
        self.done = true;
    }

    fn event(&mut self, data: &str, out: &mut Vec<u8>) {
        if self.done {
            return;
        }
        if data == "[DONE]" {
            self.end(out);
            return;
        }
        // One parse: an error chunk is a chunk whose unknown fields hold `error`.
        let Ok(mut chunk) = serde_json::from_str::<ChatChunk>(data) else {
            return;
        };
        if let Some(err) = chunk.extra.remove("error").filter(|e| !e.is_null()) {
            let err = &err;
            let status = match err.get("type").and_then(Value::as_str) {
                Some("rate_limit_error") => 429,
                Some("invalid_request_error") => 400,
                _ => 502,
            };
            let mut e = AiError::new(
                status,
                err.get("type")
                    .and_then(Value::as_str)
                    .unwrap_or("api_error"),
                err.get("code").and_then(Value::as_str),
                err.get("message")
                    .and_then(Value::as_str)
                    .unwrap_or("provider error"),
            );
            if e.code.as_deref() == Some("overloaded_error") {
                e.status = 529;
            }
            write_error_event(out, &e);
            self.done = true;
            return;
        }
        if !self.started && !chunk.model.is_empty() {
            self.model = chunk.model.clone();
        }
        if let Some(u) = chunk.usage {
            self.usage = Some(u);
        }
        let Some(choice) = chunk.choices.into_iter().find(|c| c.index == 0) else {
            return;
        };
        self.start(out);
        let refusal = choice
            .delta
            .extra
            .get("refusal")
            .and_then(Value::as_str)
            .filter(|t| !t.is_empty());
        self.refused |= refusal.is_some();
        for text in [choice.delta.content.as_deref(), refusal]
            .into_iter()
            .flatten()
            .filter(|t| !t.is_empty())
        {
            if self.holding() {
                match self.pending.last_mut() {
                    Some(Pending::Text(t)) => t.push(text.to_string()),
                    _ => self.pending.push(Pending::Text(vec![text.to_string()])),
                }
                continue;
            }
            let index = match self.open {
                Some((i, true)) => i,
                _ => self.open_block(out, json!({"type": "text", "text": ""}), true),
            };
            Self::delta(out, index, "text_delta", "text", text);
        }
        for call in choice.delta.tool_calls.into_iter().flatten() {
            let function = call.function.unwrap_or_default();
            let args = function.arguments.as_deref().unwrap_or_default();
            // The call streaming in the open block.
            let live = self
                .tools
                .iter()
                .find(|(t, _)| *t == call.index)
                .map(|(_, b)| *b);
            if let Some(index) = live {
                // Pieces of a call whose block was closed (complete, or the answer ended) have no place.
                if self.open == Some((index, false)) && !args.is_empty() {
                    self.progress.feed(args);
                    Self::delta(out, index, "input_json_delta", "partial_json", args);
                    self.drain(out, false);
                }
                continue;
            }
            let waiting = self.pending.iter_mut().find_map(|p| match p {
                Pending::Tool(held) if held.index == call.index => Some(held),
                _ => None,
            });
            if let Some(held) = waiting {
                held.absorb(call.id, function.name, args);
                continue;
            }
            if self.holding() {
                let held = HeldCall::new(call.index, call.id, function.name, args);
                self.pending.push(Pending::Tool(held));
                continue;
            }
            let block = json!({"type": "tool_use",
                "id": call.id.unwrap_or_default(),
                "name": function.name.unwrap_or_default(),
                "input": {}});
            let index = self.open_block(out, block, false);
            self.tools.push((call.index, index));
            self.progress = JsonProgress::default();
            if !args.is_empty() {
                self.progress.feed(args);
                Self::delta(out, index, "input_json_delta", "partial_json", args);
            }
        }
        if let Some(r) = choice.finish_reason.as_deref() {
            self.stop_reason = Some(if self.refused {
                "refusal"
            } else {
                stop_reason(r)
            });
            self.drain(out, true);
        }
    }
}

/// An Anthropic provider's stream passed on to a Messages client as it came (events re-framed,
/// comments dropped), read for usage, stop reason and errors; a stream cut before `message_stop`
/// ends with an `error` event.
#[derive(Debug)]
pub struct AnthropicPassStream {
    sse: SseParser,
    pub(crate) state: StreamState,
    usage_raw: Map<String, Value>,
    started: bool,
}

impl Default for AnthropicPassStream {
    fn default() -> Self {
        AnthropicPassStream::new()
    }
}

impl AnthropicPassStream {
    pub fn new() -> AnthropicPassStream {
        AnthropicPassStream {
            sse: SseParser::new(),
            state: StreamState::default(),
            usage_raw: Map::new(),
            started: false,
        }
    }

    pub fn push(&mut self, bytes: &[u8], out: &mut Vec<u8>) {
        for e in self.sse.push(bytes) {
            self.event(e, out);
        }
    }

    pub fn finish(&mut self, out: &mut Vec<u8>) {
        for e in self.sse.finish() {
            self.event(e, out);
        }
        if self.state.done || self.state.error.is_some() {
            return;
        }
        if self.state.finish_reason.is_some() {
            // message_stop missing but the message had finished.
            out.extend_from_slice(b"event: message_stop\ndata: {\"type\":\"message_stop\"}\n\n");
        } else {
            let e = AiError::stream_truncated(
                !self.started,
                "the provider's stream ended before the message finished",
            )
            .with_shape(ErrorShape::Anthropic);
            write_error_event(out, &e);
            self.state.error = Some(e);
        }
        self.state.done = true;
    }

    fn update_usage(&mut self, u: &Value) {
        if let Some(o) = u.as_object() {
            for (k, v) in o {
                if !v.is_null() {
                    self.usage_raw.insert(k.clone(), v.clone());
                }
            }
        }
        self.state.usage = Some(anthropic::usage(&Value::Object(self.usage_raw.clone())));
    }

    fn event(&mut self, e: SseEvent, out: &mut Vec<u8>) {
        if self.state.done || self.state.error.is_some() {
            return;
        }
        if let Some(err) = AiError::not_json_event("anthropic", &e.data) {
            let err = err.with_shape(ErrorShape::Anthropic);
            write_error_event(out, &err);
            self.state.error = Some(err);
            return;
        }
        let v: Value = serde_json::from_str(&e.data).unwrap_or(Value::Null);
        let kind = v
            .get("type")
            .and_then(Value::as_str)
            .or(e.event.as_deref())
            .unwrap_or("message")
            .to_string();
        match kind.as_str() {
            "message_start" => {
                self.started = true;
                if let Some(m) = v["message"]["model"].as_str() {
                    self.state.model = Some(m.to_string());
                }
                if let Some(u) = v["message"].get("usage") {
                    self.update_usage(u);
                }
            }
            "message_delta" => {
                if let Some(u) = v.get("usage") {
                    self.update_usage(u);
                }
                if let Some(r) = v["delta"]["stop_reason"].as_str() {
                    self.state.finish_reason = Some(anthropic::finish_reason(r).to_string());
                }
            }
            "message_stop" => self.state.done = true,
            "error" => {
                let err = &v["error"];
                let t = err["type"].as_str();
                let status = match t {
                    Some("rate_limit_error") => 429,
                    Some("overloaded_error") => 529,
                    Some("invalid_request_error") => 400,
                    _ => 500,
                };
                let mut error = AiError::from_provider(
                    "anthropic",
                    status,
                    t,
                    err["message"].as_str().unwrap_or(""),
                )
                .with_shape(ErrorShape::Anthropic);
                error.retryable = error.retryable && !self.started;
                self.state.error = Some(error);
            }
            _ => {}
        }
        out.extend_from_slice(b"event: ");
        out.extend_from_slice(kind.as_bytes());
        out.extend_from_slice(b"\ndata: ");
        for (i, line) in e.data.split('\n').enumerate() {
            if i > 0 {
                out.extend_from_slice(b"\ndata: ");
            }
            out.extend_from_slice(line.as_bytes());
        }
        out.extend_from_slice(b"\n\n");
    }
}
