//! OpenAI Responses as a client format (`POST …/responses`), stateless.
//!
//! In ([`parse_request`]): `input` as a string or a list of items (messages with `input_text`,
//! `output_text`, `input_image`, `input_file` parts; `function_call` and `function_call_output`
//! items; `reasoning` items dropped), `instructions` (→ a system message first), function `tools`,
//! `tool_choice`, `parallel_tool_calls`, `text.format` (`json_schema`, `json_object`),
//! `max_output_tokens`, `temperature`, `top_p`, `reasoning.effort` (→ `reasoning_effort`, used by
//! OpenAI-format providers). The gateway stores nothing: `previous_response_id`, `conversation`,
//! `item_reference` items and `background` are refused with a 400 saying so; `store` is accepted and
//! answered `false`.
//!
//! Out: a chat completion becomes a `response` object ([`from_chat`]); chat chunks become Responses
//! events ([`ResponsesOut`]), each with its `sequence_number`: `response.created`,
//! `response.in_progress`, per output item `response.output_item.added`, for text
//! `response.content_part.added`, `response.output_text.delta`… `response.output_text.done`,
//! `response.content_part.done`, for a function call `response.function_call_arguments.delta`…
//! `.done`, then `response.output_item.done`; finally `response.completed` (or `response.incomplete`)
//! with the whole response and its usage. An error becomes an `error` event.

use super::ingress::{write_json_str, IngressFormat, IngressRequest};
use super::sse::SseParser;
use super::*;
use serde_json::{json, Map, Value};

fn bad(param: &str, message: impl Into<String>) -> AiError {
    AiError::invalid_param(param, message)
}

/// The refusal of anything that needs stored responses.
fn stateless(param: &str) -> AiError {
    AiError {
        code: Some("stateless_gateway".to_string()),
        ..bad(
            param,
            format!(
                "{param} is not supported: this gateway stores no responses (send the whole \
                 conversation in `input`, with `store: false`)"
            ),
        )
    }
}

/// Fields of the request the response object repeats.
const ECHO: &[&str] = &[
    "instructions",
    "max_output_tokens",
    "metadata",
    "parallel_tool_calls",
    "reasoning",
    "temperature",
    "text",
    "tool_choice",
    "tools",
    "top_p",
    "truncation",
    "user",
];

fn text_part(text: &str) -> ContentPart {
    ContentPart {
        kind: "text".into(),
        text: Some(text.to_string()),
        ..ContentPart::default()
    }
}

/// A message item's content as chat content (`assistant`: text only).
fn content(v: &Value, path: &str, assistant: bool) -> Result<Content, AiError> {
    let parts = match v {
        Value::String(s) => return Ok(Content::Text(s.clone())),
        Value::Array(parts) => parts,
        _ => return Err(bad(path, "must be a string or a list of content parts")),
    };
    let mut out = Vec::new();
    for (i, p) in parts.iter().enumerate() {
        let pp = format!("{path}[{i}]");
        let kind = p
            .get("type")
            .and_then(Value::as_str)
            .ok_or_else(|| bad(&format!("{pp}.type"), "is required"))?;
        let str_field = |k: &str| p.get(k).and_then(Value::as_str);
        match kind {
            "input_text" | "output_text" | "text" | "refusal" => {
                let key = if kind == "refusal" { "refusal" } else { "text" };
                out.push(text_part(str_field(key).ok_or_else(|| {
                    bad(&format!("{pp}.{key}"), "must be a string")
                })?));
            }
            "input_image" if !assistant => {
                let url = str_field("image_url").ok_or_else(|| {
                    bad(
                        &format!("{pp}.image_url"),
                        "an image needs image_url (a URL or a data: URL); file_id needs stored files",
                    )
                })?;
                out.push(ContentPart {
                    kind: "image_url".into(),
                    image_url: Some(ImageUrl {
                        url: url.to_string(),
                        detail: str_field("detail").map(str::to_string),
                    }),
                    ..ContentPart::default()
                });
            }
            "input_file" if !assistant => {
                let data = str_field("file_data").ok_or_else(|| {
                    bad(
                        &format!("{pp}.file_data"),
                        "a file needs file_data (file_id and file_url are not supported)",
                    )
                })?;
                let data = if data.starts_with("data:") {
                    data.to_string()
                } else {
                    format!("data:application/pdf;base64,{data}")
                };
                let mut file = Map::new();
                file.insert("file_data".into(), json!(data));
                if let Some(name) = str_field("filename") {
                    file.insert("filename".into(), json!(name));
                }
                let mut extra = Map::new();
                extra.insert("file".into(), Value::Object(file));
                out.push(ContentPart {
                    kind: "file".into(),
                    extra,
                    ..ContentPart::default()
                });
            }
            other => {
                return Err(bad(
                    &format!("{pp}.type"),
                    format!("content part type {other:?} is not supported here"),
                ))
            }
        }
    }
    if assistant || out.iter().all(|p| p.kind == "text") {
        let text: Vec<&str> = out.iter().filter_map(|p| p.text.as_deref()).collect();
        return Ok(Content::Text(text.join(if assistant { "" } else { "\n" })));
    }
    Ok(Content::Parts(out))
}

/// Read a Responses request body.
pub fn parse_request(body: &[u8]) -> Result<IngressRequest, AiError> {
    let v: Value = serde_json::from_slice(body)
        .map_err(|e| AiError::invalid(format!("the body is not valid JSON: {e}")))?;
    let Value::Object(o) = v else {
        return Err(AiError::invalid("the body must be a JSON object"));
    };
    for key in ["previous_response_id", "conversation"] {
        if o.get(key).is_some_and(|v| !v.is_null()) {
            return Err(stateless(key));
        }
    }
    if o.get("background").and_then(Value::as_bool) == Some(true) {
        return Err(stateless("background"));
    }
    let model = match o.get("model") {
        None | Some(Value::Null) => String::new(),
        Some(Value::String(s)) => s.clone(),
        Some(_) => return Err(bad("model", "must be a string")),
    };
    let mut messages = Vec::new();
    match o.get("instructions") {
        None | Some(Value::Null) => {}
        Some(Value::String(s)) => messages.push(Message::text("system", s.clone())),
        Some(_) => return Err(bad("instructions", "must be a string")),
    }
    match o.get("input") {
        None | Some(Value::Null) => return Err(bad("input", "is required")),
        Some(Value::String(s)) => messages.push(Message::text("user", s.clone())),
        Some(Value::Array(items)) => {
            for (i, item) in items.iter().enumerate() {
                input_item(item, &format!("input[{i}]"), &mut messages)?;
            }
        }
        Some(_) => return Err(bad("input", "must be a string or a list of items")),
    }
    let mut chat = ChatRequest {
        model,
        messages,
        ..ChatRequest::default()
    };
    chat.stream = match o.get("stream") {
        None | Some(Value::Null) => None,
        Some(Value::Bool(b)) => Some(*b),
        Some(_) => return Err(bad("stream", "must be a boolean")),
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
    chat.max_completion_tokens = match o.get("max_output_tokens") {
        None | Some(Value::Null) => None,
        Some(v) => Some(
            v.as_u64()
                .ok_or_else(|| bad("max_output_tokens", "must be a positive integer"))?,
        ),
    };
    chat.parallel_tool_calls = o.get("parallel_tool_calls").and_then(Value::as_bool);
    chat.user = o
        .get("user")
        .or_else(|| o.get("safety_identifier"))
        .and_then(Value::as_str)
        .map(str::to_string);
    if let Some(effort) = o
        .get("reasoning")
        .and_then(|r| r.get("effort"))
        .and_then(Value::as_str)
    {
        chat.extra.insert("reasoning_effort".into(), json!(effort));
    }
    if let Some(tools) = o.get("tools").filter(|t| !t.is_null()) {
        let tools = tools
            .as_array()
            .ok_or_else(|| bad("tools", "must be a list"))?;
        let mut list = Vec::new();
        for (i, t) in tools.iter().enumerate() {
            let p = format!("tools[{i}]");
            match t.get("type").and_then(Value::as_str) {
                Some("function") => {}
                other => {
                    return Err(bad(
                        &format!("{p}.type"),
                        format!(
                            "tool type {:?} is not supported: only function tools are",
                            other.unwrap_or("")
                        ),
                    ))
                }
            }
            let name = t
                .get("name")
                .and_then(Value::as_str)
                .ok_or_else(|| bad(&format!("{p}.name"), "is required"))?;
            let mut extra = Map::new();
            if let Some(strict) = t.get("strict").filter(|s| s.is_boolean()) {
                extra.insert("strict".into(), strict.clone());
            }
            list.push(Tool {
                kind: "function".into(),
                function: FunctionDef {
                    name: name.to_string(),
                    description: t
                        .get("description")
                        .and_then(Value::as_str)
                        .map(str::to_string),
                    parameters: t.get("parameters").filter(|p| !p.is_null()).cloned(),
                    extra,
                },
                extra: Map::new(),
            });
        }
        if !list.is_empty() {
            chat.tools = Some(list);
        }
    }
    chat.tool_choice =
        match o.get("tool_choice") {
            None | Some(Value::Null) => None,
            Some(Value::String(s)) if matches!(s.as_str(), "auto" | "none" | "required") => {
                Some(json!(s))
            }
            Some(v) if v.get("type").and_then(Value::as_str) == Some("function") => {
                let name = v
                    .get("name")
                    .and_then(Value::as_str)
                    .ok_or_else(|| bad("tool_choice.name", "is required"))?;
                Some(json!({"type": "function", "function": {"name": name}}))
            }
            Some(_) => return Err(bad(
                "tool_choice",
                "must be \"auto\", \"none\", \"required\" or {\"type\": \"function\", \"name\": …}",
            )),
        };
    if let Some(format) = o
        .get("text")
        .and_then(|t| t.get("format"))
        .filter(|f| !f.is_null())
    {
        match format.get("type").and_then(Value::as_str) {
            Some("text") => {}
            Some("json_object") => chat.response_format = Some(json!({"type": "json_object"})),
            Some("json_schema") => {
                let schema = format
                    .get("schema")
                    .filter(|s| s.is_object())
                    .ok_or_else(|| {
                        bad("text.format.schema", "is required (a JSON Schema object)")
                    })?;
                let mut js = Map::new();
                js.insert(
                    "name".into(),
                    format
                        .get("name")
                        .cloned()
                        .unwrap_or_else(|| json!("response")),
                );
                js.insert("schema".into(), schema.clone());
                for k in ["strict", "description"] {
                    if let Some(v) = format.get(k).filter(|v| !v.is_null()) {
                        js.insert(k.into(), v.clone());
                    }
                }
                chat.response_format = Some(json!({"type": "json_schema", "json_schema": js}));
            }
            _ => {
                return Err(bad(
                    "text.format.type",
                    "must be \"text\", \"json_object\" or \"json_schema\"",
                ))
            }
        }
    }
    // `extend`, not `collect` (which sorts: a copy of the standard sort in the wasm).
    let mut echo = Map::new();
    echo.extend(
        o.iter()
            .filter(|(k, v)| ECHO.contains(&k.as_str()) && !v.is_null())
            .map(|(k, v)| (k.clone(), v.clone())),
    );
    Ok(IngressRequest {
        format: IngressFormat::Responses,
        chat,
        native: None,
        unsupported: None,
        anthropic_version: None,
        anthropic_beta: None,
        echo,
    })
}

/// One `input` item into chat messages.
fn input_item(item: &Value, path: &str, messages: &mut Vec<Message>) -> Result<(), AiError> {
    let kind = item.get("type").and_then(Value::as_str);
    let role = item.get("role").and_then(Value::as_str);
    match (kind, role) {
        (None | Some("message"), Some(role)) => {
            let role = match role {
                "user" | "system" | "developer" | "assistant" => role,
                other => {
                    return Err(bad(
                        &format!("{path}.role"),
                        format!("role {other:?} is not one of user, assistant, system, developer"),
                    ))
                }
            };
            let c = content(
                item.get("content").unwrap_or(&Value::Null),
                &format!("{path}.content"),
                role == "assistant",
            )?;
            messages.push(Message {
                role: role.to_string(),
                content: Some(c),
                ..Message::default()
            });
        }
        (Some("function_call"), _) => {
            let field = |k: &str| {
                item.get(k)
                    .and_then(Value::as_str)
                    .ok_or_else(|| bad(&format!("{path}.{k}"), "is required"))
            };
            let call = ToolCall {
                id: field("call_id")?.to_string(),
                kind: "function".into(),
                function: FunctionCall {
                    name: field("name")?.to_string(),
                    arguments: item
                        .get("arguments")
                        .and_then(Value::as_str)
                        .unwrap_or("{}")
                        .to_string(),
                },
            };
            // Calls following an assistant message (or each other) belong to that turn.
            match messages.last_mut() {
                Some(m) if m.role == "assistant" => {
                    m.tool_calls.get_or_insert_with(Vec::new).push(call);
                }
                _ => messages.push(Message {
                    role: "assistant".into(),
                    tool_calls: Some(vec![call]),
                    ..Message::default()
                }),
            }
        }
        (Some("function_call_output"), _) => {
            let id = item
                .get("call_id")
                .and_then(Value::as_str)
                .ok_or_else(|| bad(&format!("{path}.call_id"), "is required"))?;
            let output = match item.get("output") {
                Some(Value::String(s)) => s.clone(),
                Some(v @ Value::Array(_)) => content(v, &format!("{path}.output"), false)?.text(),
                _ => return Err(bad(&format!("{path}.output"), "is required (a string)")),
            };
            messages.push(Message {
                role: "tool".into(),
                content: Some(Content::Text(output)),
                tool_call_id: Some(id.to_string()),
                ..Message::default()
            });
        }
        // Earlier turns' reasoning (possibly encrypted for OpenAI): nothing other providers can use.
        (Some("reasoning"), _) => {}
        (Some("item_reference"), _) => return Err(stateless(&format!("{path} (item_reference)"))),
        (Some("message"), None) | (None, None) => {
            return Err(bad(&format!("{path}.role"), "is required"))
        }
        (Some(other), _) => {
            return Err(bad(
                &format!("{path}.type"),
                format!("input item type {other:?} is not supported"),
            ))
        }
    }
    Ok(())
}

/// Chat usage as Responses usage.
pub fn usage_out(u: &Usage) -> Value {
    let detail = |outer: &str, inner: &str| {
        u.extra
            .get(outer)
            .and_then(|d| d.get(inner))
            .and_then(Value::as_u64)
            .unwrap_or(0)
    };
    json!({
        "input_tokens": u.prompt_tokens,
        "input_tokens_details": {"cached_tokens": detail("prompt_tokens_details", "cached_tokens")},
        "output_tokens": u.completion_tokens,
        "output_tokens_details": {"reasoning_tokens": detail("completion_tokens_details", "reasoning_tokens")},
        "total_tokens": if u.total_tokens > 0 { u.total_tokens } else { u.prompt_tokens + u.completion_tokens },
    })
}

/// Status and `incomplete_details` for a finish reason.
fn status(finish_reason: Option<&str>) -> (&'static str, Value) {
    match finish_reason {
        Some("length") => ("incomplete", json!({"reason": "max_output_tokens"})),
        Some("content_filter") => ("incomplete", json!({"reason": "content_filter"})),
        _ => ("completed", Value::Null),
    }
}

/// The part of item ids after the prefix: the response id without `resp_`.
fn id_suffix(ctx: &StreamContext) -> &str {
    ctx.id.strip_prefix("resp_").unwrap_or(&ctx.id)
}

/// The response object around `output`.
fn response_object(
    echo: &Map<String, Value>,
    ctx: &StreamContext,
    model: &str,
    status: &str,
    incomplete: Value,
    output: Vec<Value>,
    usage: Value,
) -> Value {
    let e = |k: &str, default: Value| echo.get(k).cloned().unwrap_or(default);
    json!({
        "id": ctx.id,
        "object": "response",
        "created_at": ctx.created,
        "status": status,
        "background": false,
        "error": null,
        "incomplete_details": incomplete,
        "instructions": e("instructions", Value::Null),
        "max_output_tokens": e("max_output_tokens", Value::Null),
        "metadata": e("metadata", json!({})),
        "model": model,
        "output": output,
        "parallel_tool_calls": e("parallel_tool_calls", json!(true)),
        "previous_response_id": null,
        "reasoning": e("reasoning", json!({"effort": null, "summary": null})),
        "store": false,
        "temperature": e("temperature", json!(1.0)),
        "text": e("text", json!({"format": {"type": "text"}})),
        "tool_choice": e("tool_choice", json!("auto")),
        "tools": e("tools", json!([])),
        "top_p": e("top_p", json!(1.0)),
        "truncation": e("truncation", json!("disabled")),
        "usage": usage,
        "user": e("user", Value::Null),
    })
}

fn message_item(id: &str, text: &str, status: &str) -> Value {
    json!({"id": id, "type": "message", "status": status, "role": "assistant",
           "content": [{"type": "output_text", "text": text, "annotations": []}]})
}

/// A message item holding an OpenAI-format provider's refusal (structured outputs), as OpenAI's
/// Responses API gives it: a `refusal` content part.
fn refusal_item(id: &str, text: &str, status: &str) -> Value {
    json!({"id": id, "type": "message", "status": status, "role": "assistant",
           "content": [{"type": "refusal", "refusal": text}]})
}

fn call_item(id: &str, call_id: &str, name: &str, arguments: &str, status: &str) -> Value {
    json!({"id": id, "type": "function_call", "status": status, "call_id": call_id,
           "name": name, "arguments": arguments})
}

/// A chat completion as a `response` object.
pub fn from_chat(resp: &ChatResponse, req: &IngressRequest, ctx: &StreamContext) -> Value {
    let suffix = id_suffix(ctx);
    let mut output = Vec::new();
    let choice = resp.choices.first();
    let text = choice
        .and_then(|c| c.message.content.as_deref())
        .unwrap_or("");
    let calls = choice
        .and_then(|c| c.message.tool_calls.as_deref())
        .unwrap_or(&[]);
    let refusal = choice
        .and_then(|c| c.message.extra.get("refusal"))
        .and_then(Value::as_str)
        .filter(|t| !t.is_empty());
    if !text.is_empty() || (calls.is_empty() && refusal.is_none()) {
        output.push(message_item(&format!("msg_{suffix}_0"), text, "completed"));
    }
    if let Some(r) = refusal {
        let n = output.len();
        output.push(refusal_item(&format!("msg_{suffix}_{n}"), r, "completed"));
    }
    for call in calls {
        let n = output.len();
        output.push(call_item(
            &format!("fc_{suffix}_{n}"),
            &call.id,
            &call.function.name,
            &call.function.arguments,
            "completed",
        ));
    }
    let (status, incomplete) = status(choice.and_then(|c| c.finish_reason.as_deref()));
    let model = if resp.model.is_empty() {
        &ctx.model
    } else {
        &resp.model
    };
    response_object(
        &req.echo,
        ctx,
        model,
        status,
        incomplete,
        output,
        resp.usage.as_ref().map_or(Value::Null, usage_out),
    )
}

/// An output item being streamed.
#[derive(Debug)]
struct Item {
    output_index: u32,
    id: String,
    /// Function calls: the chat chunks' tool call index, call id and name.
    call: Option<(u32, String, String)>,
    /// The text or the arguments so far.
    text: String,
    /// A message item holding a refusal (its part is `refusal`, not `output_text`).
    refusal: bool,
    done: bool,
}

/// Pieces of the answer held back while a function call's arguments are incomplete.
#[derive(Debug)]
enum Pending {
    /// Text (`refusal`: of a refusal).
    Text { refusal: bool, pieces: Vec<String> },
    /// A function call.
    Call(super::messages_in::HeldCall),
}

/// Chat chunks to Responses events.
#[derive(Debug)]
pub struct ResponsesOut {
    sse: SseParser,
    ctx: StreamContext,
    echo: Map<String, Value>,
    model: String,
    seq: u64,
    started: bool,
    items: Vec<Item>,
    /// The arguments of the function call streaming in the open item.
    progress: super::messages_in::JsonProgress,
    /// What arrived while the open function call's arguments were incomplete (providers may
    /// interleave the pieces of parallel calls; an item is not reopened once done): written, piece
    /// by piece, once they are complete or the answer ends.
    pending: Vec<Pending>,
    finish_reason: Option<String>,
    usage: Option<Usage>,
    done: bool,
}

impl ResponsesOut {
    pub fn new(req: &IngressRequest, ctx: &StreamContext) -> ResponsesOut {
        ResponsesOut {
            sse: SseParser::new(),
            ctx: ctx.clone(),
            echo: req.echo.clone(),
            model: ctx.model.clone(),
            seq: 0,
            started: false,
            items: Vec::new(),
            progress: Default::default(),
            pending: Vec::new(),
            finish_reason: None,
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
            self.end(out);
        }
    }

    /// Write one event: its `type` and `sequence_number` added to `fields`.
    fn emit(&mut self, out: &mut Vec<u8>, kind: &str, fields: Value) {
        let mut v = match fields {
            Value::Object(m) => m,
            _ => Map::new(),
        };
        v.insert("type".into(), json!(kind));
        v.insert("sequence_number".into(), json!(self.seq));
        self.seq += 1;
        super::ingress::write_named(out, kind, &v);
    }

    fn snapshot(&self, status: &str, incomplete: Value, usage: Value) -> Value {
        let output = self
            .items
            .iter()
            .map(|i| self.item_value(i, if i.done { "completed" } else { "in_progress" }))
            .collect();
        response_object(
            &self.echo,
            &self.ctx,
            &self.model,
            status,
            incomplete,
            output,
            usage,
        )
    }

    fn item_value(&self, i: &Item, status: &str) -> Value {
        match &i.call {
            Some((_, call_id, name)) => call_item(&i.id, call_id, name, &i.text, status),
            None if i.refusal => refusal_item(&i.id, &i.text, status),
            None => message_item(&i.id, &i.text, status),
        }
    }

    fn start(&mut self, out: &mut Vec<u8>) {
        if self.started {
            return;
        }
        self.started = true;
        let r = self.snapshot("in_progress", Value::Null, Value::Null);
        self.emit(out, "response.created", json!({"response": r}));
        self.emit(out, "response.in_progress", json!({"response": r}));
    }

    /// Close the open item, if any.
    fn close(&mut self, out: &mut Vec<u8>) {
        let Some(pos) = self.items.iter().position(|i| !i.done) else {
            return;
        };
        self.items[pos].done = true;
        let (index, id, text) = {
            let i = &self.items[pos];
            (i.output_index, i.id.clone(), i.text.clone())
        };
        match self.items[pos].call.clone() {
            None if self.items[pos].refusal => {
                self.emit(
                    out,
                    "response.refusal.done",
                    json!({"item_id": id,
                    "output_index": index, "content_index": 0, "refusal": text}),
                );
                self.emit(
                    out,
                    "response.content_part.done",
                    json!({"item_id": id,
                    "output_index": index, "content_index": 0,
                    "part": {"type": "refusal", "refusal": text}}),
                );
            }
            None => {
                self.emit(
                    out,
                    "response.output_text.done",
                    json!({"item_id": id,
                    "output_index": index, "content_index": 0, "text": text, "logprobs": []}),
                );
                self.emit(
                    out,
                    "response.content_part.done",
                    json!({"item_id": id,
                    "output_index": index, "content_index": 0,
                    "part": {"type": "output_text", "text": text, "annotations": []}}),
                );
            }
            Some((_, _, name)) => {
                self.emit(
                    out,
                    "response.function_call_arguments.done",
                    json!({"item_id": id,
                    "output_index": index, "name": name, "arguments": text}),
                );
            }
        }
        let item = self.item_value(&self.items[pos], "completed");
        self.emit(
            out,
            "response.output_item.done",
            json!({"output_index": index, "item": item}),
        );
    }

    fn open(
        &mut self,
        out: &mut Vec<u8>,
        call: Option<(u32, String, String)>,
        refusal: bool,
    ) -> usize {
        self.close(out);
        let output_index = self.items.len() as u32;
        let suffix = id_suffix(&self.ctx);
        let id = match &call {
            None => format!("msg_{suffix}_{output_index}"),
            Some(_) => format!("fc_{suffix}_{output_index}"),
        };
        self.items.push(Item {
            output_index,
            id: id.clone(),
            call,
            text: String::new(),
            refusal,
            done: false,
        });
        let pos = self.items.len() - 1;
        let mut item = self.item_value(&self.items[pos], "in_progress");
        if self.items[pos].call.is_none() {
            // Its part follows in `response.content_part.added`.
            item["content"] = json!([]);
        }
        self.emit(
            out,
            "response.output_item.added",
            json!({"output_index": output_index, "item": item}),
        );
        if self.items[pos].call.is_none() {
            let part = if refusal {
                json!({"type": "refusal", "refusal": ""})
            } else {
                json!({"type": "output_text", "text": "", "annotations": []})
            };
            self.emit(
                out,
                "response.content_part.added",
                json!({"item_id": id,
                "output_index": output_index, "content_index": 0, "part": part}),
            );
        }
        pos
    }

    /// A delta event, written by hand (the hot path).
    fn delta(&mut self, out: &mut Vec<u8>, pos: usize, text: &str) {
        let item = &mut self.items[pos];
        item.text.push_str(text);
        let kind = if item.call.is_some() {
            "response.function_call_arguments.delta"
        } else if item.refusal {
            "response.refusal.delta"
        } else {
            "response.output_text.delta"
        };
        out.extend_from_slice(b"event: ");
        out.extend_from_slice(kind.as_bytes());
        out.extend_from_slice(b"\ndata: {\"type\":\"");
        out.extend_from_slice(kind.as_bytes());
        out.extend_from_slice(b"\",\"sequence_number\":");
        out.extend_from_slice(self.seq.to_string().as_bytes());
        out.extend_from_slice(b",\"item_id\":");
        write_json_str(out, &item.id);
        out.extend_from_slice(b",\"output_index\":");
        out.extend_from_slice(item.output_index.to_string().as_bytes());
        if item.refusal {
            out.extend_from_slice(b",\"content_index\":0");
        } else if item.call.is_none() {
            out.extend_from_slice(b",\"content_index\":0,\"logprobs\":[]");
        }
        out.extend_from_slice(b",\"delta\":");
        write_json_str(out, text);
        out.extend_from_slice(b"}\n\n");
        self.seq += 1;
    }

    /// Whether a function call's item is open with incomplete arguments.
    fn call_incomplete(&self) -> bool {
        self.items.iter().any(|i| !i.done && i.call.is_some()) && !self.progress.complete()
    }

    /// Whether what arrives now must wait (see `pending`).
    fn holding(&self) -> bool {
        self.call_incomplete() || !self.pending.is_empty()
    }

    /// Hold back a piece of text (a refusal's or not), after what already waits.
    fn hold_text(&mut self, refusal: bool, text: &str) {
        match self.pending.last_mut() {
            Some(Pending::Text { refusal: r, pieces }) if *r == refusal => {
                pieces.push(text.to_string())
            }
            _ => self.pending.push(Pending::Text {
                refusal,
                pieces: vec![text.to_string()],
            }),
        }
    }

    /// Write what waited, in arrival order, each in an item of its own (its pieces as they came), as
    /// long as the open function call is complete (`force`: regardless, at the end of the answer).
    fn drain(&mut self, out: &mut Vec<u8>, force: bool) {
        while !self.pending.is_empty() {
            if !force && self.call_incomplete() {
                return;
            }
            let (pos, pieces) = match self.pending.remove(0) {
                Pending::Text { refusal, pieces } => (self.open(out, None, refusal), pieces),
                Pending::Call(held) => {
                    self.progress = Default::default();
                    let call = Some((held.index, held.id, held.name));
                    (self.open(out, call, false), held.pieces)
                }
            };
            for piece in &pieces {
                if self.items[pos].call.is_some() {
                    self.progress.feed(piece);
                }
                self.delta(out, pos, piece);
            }
        }
        if force {
            self.close(out);
        }
    }

    fn end(&mut self, out: &mut Vec<u8>) {
        self.start(out);
        self.drain(out, true);
        let (status, incomplete) = status(self.finish_reason.as_deref());
        let usage = self.usage.as_ref().map_or(Value::Null, usage_out);
        let r = self.snapshot(status, incomplete, usage);
        let kind = if status == "completed" {
            "response.completed"
        } else {
            "response.incomplete"
        };
        self.emit(out, kind, json!({"response": r}));
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
            let s = |k: &str| err.get(k).cloned().unwrap_or(Value::Null);
            let code = if s("code").is_null() {
                s("type")
            } else {
                s("code")
            };
            self.emit(
                out,
                "error",
                json!({"code": code, "message": s("message"),
                "param": s("param"), "error": err}),
            );
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
        if let Some(text) = choice.delta.content.as_deref().filter(|t| !t.is_empty()) {
            if self.holding() {
                self.hold_text(false, text);
            } else {
                let open = self
                    .items
                    .iter()
                    .position(|i| !i.done && i.call.is_none() && !i.refusal);
                let pos = match open {
                    Some(p) => p,
                    None => self.open(out, None, false),
                };
                self.delta(out, pos, text);
            }
        }
        // An OpenAI-format provider's refusal (structured outputs): a message item with a refusal part.
        let refusal = choice.delta.extra.get("refusal").and_then(Value::as_str);
        if let Some(text) = refusal.filter(|t| !t.is_empty()) {
            if self.holding() {
                self.hold_text(true, text);
            } else {
                let open = self
                    .items
                    .iter()
                    .position(|i| !i.done && i.call.is_none() && i.refusal);
                let pos = match open {
                    Some(p) => p,
                    None => self.open(out, None, true),
                };
                self.delta(out, pos, text);
            }
        }
        for call in choice.delta.tool_calls.into_iter().flatten() {
            let function = call.function.unwrap_or_default();
            let args = function.arguments.as_deref().unwrap_or_default();
            let known = self
                .items
                .iter()
                .position(|i| i.call.as_ref().is_some_and(|c| c.0 == call.index));
            if let Some(pos) = known {
                // Pieces of a call whose item is done (complete, or the answer ended) have no place.
                if !self.items[pos].done && !args.is_empty() {
                    self.progress.feed(args);
                    self.delta(out, pos, args);
                    self.drain(out, false);
                }
                continue;
            }
            let waiting = self.pending.iter_mut().find_map(|p| match p {
                Pending::Call(held) if held.index == call.index => Some(held),
                _ => None,
            });
            if let Some(held) = waiting {
                held.absorb(call.id, function.name, args);
                continue;
            }
            if self.holding() {
                let held =
                    super::messages_in::HeldCall::new(call.index, call.id, function.name, args);
                self.pending.push(Pending::Call(held));
                continue;
            }
            self.progress = Default::default();
            let pos = self.open(
                out,
                Some((
                    call.index,
                    call.id.unwrap_or_default(),
                    function.name.unwrap_or_default(),
                )),
                false,
            );
            if !args.is_empty() {
                self.progress.feed(args);
                self.delta(out, pos, args);
            }
        }
        if let Some(r) = choice.finish_reason {
            self.finish_reason = Some(r);
            self.drain(out, true);
        }
    }
}
