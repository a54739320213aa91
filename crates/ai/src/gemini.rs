//! Google Gemini (AI Studio): `models/{model}:generateContent`, `:streamGenerateContent?alt=sse`,
//! `:batchEmbedContents`; key in the `x-goog-api-key` header (never in the URL, which may be logged).
//!
//! Out: system messages become `systemInstruction`; user/assistant turns `contents` with roles
//! `user`/`model`; text and image parts `text`/`inlineData`/`fileData`; assistant `tool_calls`
//! `functionCall` parts, `tool` messages `functionResponse` parts (the function name is found from the
//! latest earlier call with that id); tools `functionDeclarations`; sampling parameters `generationConfig`;
//! JSON response formats `responseMimeType` (+ `responseJsonSchema`).
//! Back: `candidates` become choices, `finishReason` the finish reason, `usageMetadata` usage.

use super::sse::SseParser;
use super::*;
use serde_json::{json, Map, Value};

/// Gemini `finishReason` to OpenAI `finish_reason` (`had_calls`: the candidate called functions).
pub fn finish_reason(reason: &str, had_calls: bool) -> &'static str {
    match reason {
        "MAX_TOKENS" => "length",
        "SAFETY" | "RECITATION" | "BLOCKLIST" | "PROHIBITED_CONTENT" | "SPII" | "IMAGE_SAFETY"
        | "LANGUAGE" => "content_filter",
        _ if had_calls => "tool_calls",
        _ => "stop", // STOP, FINISH_REASON_UNSPECIFIED, OTHER, MALFORMED_FUNCTION_CALL, ...
    }
}

fn guess_mime(url: &str) -> &'static str {
    let path = url
        .split(['?', '#'])
        .next()
        .unwrap_or(url)
        .to_ascii_lowercase();
    match path.rsplit('.').next().unwrap_or("") {
        "png" => "image/png",
        "gif" => "image/gif",
        "webp" => "image/webp",
        "pdf" => "application/pdf",
        "heic" => "image/heic",
        _ => "image/jpeg",
    }
}

fn parts_of(content: &Content, param: &str) -> Result<Vec<Value>, AiError> {
    match content {
        Content::Text(s) => Ok(vec![json!({"text": s})]),
        Content::Parts(parts) => parts
            .iter()
            .map(|p| match p.kind.as_str() {
                "text" => Ok(json!({"text": p.text.clone().unwrap_or_default()})),
                "image_url" => {
                    let url = p.image_url.as_ref().map(|i| i.url.as_str()).ok_or_else(|| {
                        AiError::invalid_param(param, "image_url part without image_url")
                    })?;
                    Ok(match parse_data_url(url) {
                        Some((mime, data)) => json!({"inlineData": {"mimeType": mime, "data": data}}),
                        None => json!({"fileData": {"mimeType": guess_mime(url), "fileUri": url}}),
                    })
                }
                "input_audio" => {
                    let a = p.extra.get("input_audio");
                    let data = a.and_then(|a| a.get("data")).and_then(Value::as_str);
                    let format = a
                        .and_then(|a| a.get("format"))
                        .and_then(Value::as_str)
                        .unwrap_or("wav");
                    match data {
                        Some(d) => Ok(
                            json!({"inlineData": {"mimeType": format!("audio/{format}"), "data": d}}),
                        ),
                        None => Err(AiError::invalid_param(param, "input_audio part without data")),
                    }
                }
                "file" => {
                    let data = p
                        .extra
                        .get("file")
                        .and_then(|f| f.get("file_data"))
                        .and_then(Value::as_str)
                        .and_then(parse_data_url);
                    match data {
                        Some((mime, data)) => Ok(json!({"inlineData": {"mimeType": mime, "data": data}})),
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

/// Remove JSON Schema keywords Gemini's `parameters` (an OpenAPI subset) rejects.
fn sanitize_schema(v: &Value) -> Value {
    // Maps are built with `extend`, not `collect` (which sorts: a copy of the standard sort in the wasm).
    match v {
        Value::Object(m) => {
            let mut out = Map::new();
            out.extend(
                m.iter()
                    .filter(|(k, _)| {
                        !matches!(k.as_str(), "additionalProperties" | "$schema" | "strict")
                    })
                    .map(|(k, v)| {
                        // `properties` maps names to schemas: keep its keys, clean its values.
                        let v = if k == "properties" {
                            match v {
                                Value::Object(p) => {
                                    let mut props = Map::new();
                                    props.extend(
                                        p.iter().map(|(n, s)| (n.clone(), sanitize_schema(s))),
                                    );
                                    Value::Object(props)
                                }
                                other => other.clone(),
                            }
                        } else {
                            sanitize_schema(v)
                        };
                        (k.clone(), v)
                    }),
            );
            Value::Object(out)
        }
        Value::Array(a) => Value::Array(a.iter().map(sanitize_schema).collect()),
        other => other.clone(),
    }
}

/// The Gemini request body.
pub fn request_body(req: &ChatRequest) -> Result<Value, AiError> {
    let mut system: Vec<String> = Vec::new();
    let mut contents: Vec<(&'static str, Vec<Value>)> = Vec::new();
    let mut call_names: Vec<(String, String)> = Vec::new();
    for (i, m) in req.messages.iter().enumerate() {
        let param = format!("messages[{i}]");
        let (role, parts) = match m.role.as_str() {
            "system" | "developer" => {
                system.push(m.text_content());
                continue;
            }
            "user" => (
                "user",
                match &m.content {
                    Some(c) => parts_of(c, &param)?,
                    None => Vec::new(),
                },
            ),
            "assistant" => {
                let mut parts = Vec::new();
                let text = m.text_content();
                if !text.is_empty() {
                    parts.push(json!({"text": text}));
                }
                for call in m.tool_calls.iter().flatten() {
                    let args = super::call_arguments(call, &param)?;
                    call_names.push((call.id.clone(), call.function.name.clone()));
                    parts.push(json!({"functionCall": {"name": call.function.name, "args": args}}));
                }
                ("model", parts)
            }
            "tool" => {
                // The function of the call this message answers, from the request's own assistant
                // messages: the latest call with that id before it (conversations from before call
                // ids were unique repeat `call_0_0` in every turn; each answers its own turn's call).
                let id = m.tool_call_id.as_deref().unwrap_or("");
                let name = call_names
                    .iter()
                    .rev()
                    .find(|(c, _)| c == id)
                    .map(|(_, n)| n.clone())
                    .or_else(|| m.name.clone())
                    .ok_or_else(|| {
                        AiError::invalid_param(
                            &param,
                            "tool message does not answer a known tool call (tool_call_id)",
                        )
                    })?;
                let text = m.text_content();
                let response = match serde_json::from_str::<Value>(&text) {
                    Ok(Value::Object(o)) => Value::Object(o),
                    Ok(other) => json!({ "result": other }),
                    Err(_) => json!({ "result": text }),
                };
                (
                    "user",
                    vec![json!({"functionResponse": {"name": name, "response": response}})],
                )
            }
            other => {
                return Err(AiError::invalid_param(
                    &param,
                    format!("unsupported role {other:?}"),
                ))
            }
        };
        if parts.is_empty() {
            continue;
        }
        match contents.last_mut() {
            Some((r, p)) if *r == role => p.extend(parts),
            _ => contents.push((role, parts)),
        }
    }
    let mut body = Map::new();
    body.insert(
        "contents".into(),
        Value::Array(
            contents
                .into_iter()
                .map(|(role, parts)| json!({"role": role, "parts": parts}))
                .collect(),
        ),
    );
    if !system.is_empty() {
        body.insert(
            "systemInstruction".into(),
            json!({"parts": [{"text": system.join("\n\n")}]}),
        );
    }
    let mut gc = Map::new();
    if let Some(t) = req.temperature {
        gc.insert("temperature".into(), json!(t));
    }
    if let Some(p) = req.top_p {
        gc.insert("topP".into(), json!(p));
    }
    if let Some(m) = req.max_output_tokens() {
        gc.insert("maxOutputTokens".into(), json!(m));
    }
    let stop = req.stop_list();
    if !stop.is_empty() {
        gc.insert("stopSequences".into(), json!(stop));
    }
    if let Some(n) = req.n {
        gc.insert("candidateCount".into(), json!(n));
    }
    if let Some(s) = req.seed {
        gc.insert("seed".into(), json!(s));
    }
    if let Some(p) = req.presence_penalty {
        gc.insert("presencePenalty".into(), json!(p));
    }
    if let Some(p) = req.frequency_penalty {
        gc.insert("frequencyPenalty".into(), json!(p));
    }
    if let Some(rf) = &req.response_format {
        match rf.get("type").and_then(Value::as_str) {
            Some("json_object") => {
                gc.insert("responseMimeType".into(), json!("application/json"));
            }
            Some("json_schema") => {
                gc.insert("responseMimeType".into(), json!("application/json"));
                if let Some(s) = rf.get("json_schema").and_then(|s| s.get("schema")) {
                    gc.insert("responseJsonSchema".into(), s.clone());
                }
            }
            _ => {}
        }
    }
    if !gc.is_empty() {
        body.insert("generationConfig".into(), Value::Object(gc));
    }
    if let Some(tools) = req.tools.as_ref().filter(|t| !t.is_empty()) {
        let decls: Vec<Value> = tools
            .iter()
            .map(|t| {
                let mut d = Map::new();
                d.insert("name".into(), json!(t.function.name));
                if let Some(desc) = &t.function.description {
                    d.insert("description".into(), json!(desc));
                }
                if let Some(p) = &t.function.parameters {
                    d.insert("parameters".into(), sanitize_schema(p));
                }
                Value::Object(d)
            })
            .collect();
        body.insert("tools".into(), json!([{ "functionDeclarations": decls }]));
    }
    let mode = match &req.tool_choice {
        None => None,
        Some(Value::String(s)) => match s.as_str() {
            "auto" => Some(json!({"mode": "AUTO"})),
            "none" => Some(json!({"mode": "NONE"})),
            "required" => Some(json!({"mode": "ANY"})),
            other => {
                return Err(AiError::invalid_param(
                    "tool_choice",
                    format!("unknown tool_choice {other:?}"),
                ))
            }
        },
        Some(v) => match v.get("function").and_then(|f| f.get("name")) {
            Some(name) => Some(json!({"mode": "ANY", "allowedFunctionNames": [name]})),
            None => {
                return Err(AiError::invalid_param(
                    "tool_choice",
                    "unsupported tool_choice",
                ))
            }
        },
    };
    if let Some(m) = mode {
        body.insert("toolConfig".into(), json!({ "functionCallingConfig": m }));
    }
    Ok(Value::Object(body))
}

fn model_url(target: &ProviderTarget, op: &str) -> String {
    let model = target
        .model
        .strip_prefix("models/")
        .unwrap_or(&target.model);
    join_url(
        &target.base_url,
        &format!("v1beta/models/{}:{op}", encode_component(model)),
    )
}

fn headers(target: &ProviderTarget, stream: bool) -> Vec<(String, String)> {
    let mut h = vec![("content-type".to_string(), "application/json".to_string())];
    if stream {
        h.push(("accept".to_string(), "text/event-stream".to_string()));
    }
    h.extend(target.headers.iter().cloned());
    h
}

const KEY: KeyHeader = KeyHeader {
    name: "x-goog-api-key",
    prefix: "",
};

pub fn build_request(
    req: &ChatRequest,
    target: &ProviderTarget,
) -> Result<UpstreamRequest, AiError> {
    let body = request_body(req)?;
    let url = if req.is_stream() {
        format!("{}?alt=sse", model_url(target, "streamGenerateContent"))
    } else {
        model_url(target, "generateContent")
    };
    Ok(UpstreamRequest {
        method: "POST",
        url,
        headers: headers(target, req.is_stream()),
        key_header: Some(KEY),
        body: serde_json::to_vec(&body).map_err(|e| AiError::invalid(e.to_string()))?,
        stream: req.is_stream(),
    })
}

/// `usageMetadata` to OpenAI usage (thinking tokens count as completion tokens).
pub fn usage(u: &Value) -> Usage {
    let n = |k: &str| u.get(k).and_then(Value::as_u64).unwrap_or(0);
    let prompt = n("promptTokenCount") + n("toolUsePromptTokenCount");
    let completion = n("candidatesTokenCount") + n("thoughtsTokenCount");
    let mut usage = Usage::new(prompt, completion);
    if let Some(total) = u.get("totalTokenCount").and_then(Value::as_u64) {
        usage.total_tokens = total.max(prompt + completion);
    }
    let cached = n("cachedContentTokenCount");
    if cached > 0 {
        usage.extra.insert(
            "prompt_tokens_details".into(),
            json!({"cached_tokens": cached}),
        );
    }
    if n("thoughtsTokenCount") > 0 {
        usage.extra.insert(
            "completion_tokens_details".into(),
            json!({"reasoning_tokens": n("thoughtsTokenCount")}),
        );
    }
    usage
}

/// Text and calls of one candidate's parts (thought summaries skipped).
fn candidate_parts(c: &Value) -> (String, Vec<(Option<String>, String, String)>) {
    let mut text = String::new();
    let mut calls = Vec::new();
    for p in c["content"]["parts"].as_array().into_iter().flatten() {
        if p.get("thought").and_then(Value::as_bool) == Some(true) {
            continue;
        }
        if let Some(t) = p.get("text").and_then(Value::as_str) {
            text.push_str(t);
        }
        if let Some(f) = p.get("functionCall") {
            calls.push((
                f.get("id").and_then(Value::as_str).map(str::to_string),
                f["name"].as_str().unwrap_or("").to_string(),
                f.get("args")
                    .map(Value::to_string)
                    .unwrap_or_else(|| "{}".to_string()),
            ));
        }
    }
    (text, calls)
}

/// The call's own id when Gemini sent one, else one unique to this answer ([`tool_call_id`]).
fn call_id(given: Option<String>, ctx: &StreamContext, candidate: u32, n: usize) -> String {
    given.unwrap_or_else(|| tool_call_id(ctx.tool_call_seed, candidate, n as u32))
}

fn candidate_index(c: &Value, position: usize) -> u32 {
    c.get("index")
        .and_then(Value::as_u64)
        .map(|i| i as u32)
        .unwrap_or(position as u32)
}

fn blocked(v: &Value) -> bool {
    v.get("promptFeedback")
        .and_then(|f| f.get("blockReason"))
        .is_some_and(|r| !r.is_null())
}

pub fn parse_response(
    target: &ProviderTarget,
    body: &[u8],
    ctx: &StreamContext,
) -> Result<ChatResponse, AiError> {
    let v: Value =
        serde_json::from_slice(body).map_err(|e| AiError::bad_response(&target.provider, e))?;
    if v.get("error").is_some() {
        return Err(super::parse_error(target, 502, body));
    }
    let mut choices = Vec::new();
    for (pos, c) in v["candidates"].as_array().into_iter().flatten().enumerate() {
        let index = candidate_index(c, pos);
        let (text, calls) = candidate_parts(c);
        let had_calls = !calls.is_empty();
        let tool_calls: Vec<ToolCall> = calls
            .into_iter()
            .enumerate()
            .map(|(n, (id, name, args))| ToolCall {
                id: call_id(id, ctx, index, n),
                kind: "function".to_string(),
                function: FunctionCall {
                    name,
                    arguments: args,
                },
            })
            .collect();
        choices.push(Choice {
            index,
            message: ResponseMessage {
                content: if text.is_empty() && had_calls {
                    None
                } else {
                    Some(text)
                },
                tool_calls: if had_calls { Some(tool_calls) } else { None },
                ..ResponseMessage::default()
            },
            finish_reason: c
                .get("finishReason")
                .and_then(Value::as_str)
                .map(|r| finish_reason(r, had_calls).to_string()),
            extra: Extra::new(),
        });
    }
    if choices.is_empty() && blocked(&v) {
        choices.push(Choice {
            index: 0,
            message: ResponseMessage {
                content: Some(String::new()),
                ..ResponseMessage::default()
            },
            finish_reason: Some("content_filter".to_string()),
            extra: Extra::new(),
        });
    }
    Ok(ChatResponse {
        id: v
            .get("responseId")
            .and_then(Value::as_str)
            .map(str::to_string)
            .unwrap_or_else(|| ctx.id.clone()),
        object: "chat.completion".to_string(),
        created: ctx.created,
        model: v
            .get("modelVersion")
            .and_then(Value::as_str)
            .map(str::to_string)
            .unwrap_or_else(|| ctx.model.clone()),
        choices,
        usage: v.get("usageMetadata").map(usage),
        extra: Extra::new(),
    })
}

/// Highest candidate index the stream translator accepts (Gemini allows up to 8 candidates).
const MAX_CANDIDATE: u32 = 64;

/// Gemini `alt=sse` stream (each event a whole `GenerateContentResponse`) to OpenAI chunks.
#[derive(Debug)]
pub struct GeminiStream {
    sse: SseParser,
    ctx: StreamContext,
    pub(crate) state: StreamState,
    id: String,
    model: String,
    /// Per candidate index: role chunk sent, tool calls so far.
    candidates: Vec<(bool, u32)>,
    started: bool,
}

impl GeminiStream {
    pub fn new(ctx: StreamContext) -> GeminiStream {
        GeminiStream {
            sse: SseParser::new(),
            ctx,
            state: StreamState::default(),
            id: String::new(),
            model: String::new(),
            candidates: Vec::new(),
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
                if self.ctx.include_usage {
                    if let Some(u) = &self.state.usage {
                        let mut c = chunk(&self.ctx, &self.id, &self.model, ChunkChoice::default());
                        c.choices.clear();
                        c.usage = Some(u.clone());
                        write_event(out, &c);
                    }
                }
            } else {
                let e = AiError::stream_truncated(
                    !self.started,
                    "the provider's stream ended before a finish reason",
                );
                write_error(out, &e);
                self.state.error = Some(e);
            }
        }
        write_done(out);
        self.state.done = true;
    }

    fn emit(&self, out: &mut Vec<u8>, index: u32, delta: Delta, finish: Option<String>) {
        let c = chunk(
            &self.ctx,
            &self.id,
            &self.model,
            ChunkChoice {
                index,
                delta,
                finish_reason: finish,
                extra: Extra::new(),
            },
        );
        write_event(out, &c);
    }

    fn event(&mut self, data: &str, out: &mut Vec<u8>) {
        if self.state.done || self.state.error.is_some() {
            return;
        }
        let Ok(v) = serde_json::from_str::<Value>(data) else {
            if let Some(e) = AiError::not_json_event("gemini", data) {
                write_error(out, &e);
                self.state.error = Some(e);
            }
            return;
        };
        let v = match v {
            Value::Array(mut a) if !a.is_empty() => a.swap_remove(0),
            v => v,
        };
        if let Some(err) = v.get("error") {
            let status = err
                .get("code")
                .and_then(Value::as_u64)
                .and_then(|c| u16::try_from(c).ok())
                .unwrap_or(500);
            let e = AiError::from_provider(
                "gemini",
                status,
                err.get("status").and_then(Value::as_str),
                err.get("message").and_then(Value::as_str).unwrap_or(""),
            );
            write_error(out, &e);
            self.state.error = Some(e);
            return;
        }
        if self.id.is_empty() {
            if let Some(id) = v.get("responseId").and_then(Value::as_str) {
                self.id = id.to_string();
            }
        }
        if let Some(m) = v.get("modelVersion").and_then(Value::as_str) {
            self.model = m.to_string();
            self.state.model = Some(self.model.clone());
        }
        if let Some(u) = v.get("usageMetadata") {
            self.state.usage = Some(usage(u));
        }
        self.started = true;
        let candidates = v["candidates"].as_array().map(Vec::as_slice).unwrap_or(&[]);
        if candidates.is_empty() && blocked(&v) {
            self.role_chunk(out, 0);
            let r = "content_filter".to_string();
            self.state.finish_reason = Some(r.clone());
            self.emit(out, 0, Delta::default(), Some(r));
        }
        for (pos, c) in candidates.iter().enumerate() {
            let index = candidate_index(c, pos);
            if index > MAX_CANDIDATE {
                continue; // nonsense index: do not allocate for it
            }
            self.role_chunk(out, index);
            let (text, calls) = candidate_parts(c);
            if !text.is_empty() {
                self.emit(
                    out,
                    index,
                    Delta {
                        content: Some(text),
                        ..Delta::default()
                    },
                    None,
                );
            }
            if !calls.is_empty() {
                let first = self.slot(index).1;
                let deltas = calls
                    .into_iter()
                    .enumerate()
                    .map(|(n, (id, name, args))| {
                        let k = first + n as u32;
                        ToolCallDelta::start(
                            k,
                            Some(call_id(id, &self.ctx, index, k as usize)),
                            Some(name),
                            args,
                        )
                    })
                    .collect::<Vec<_>>();
                self.slot(index).1 += deltas.len() as u32;
                self.emit(
                    out,
                    index,
                    Delta {
                        tool_calls: Some(deltas),
                        ..Delta::default()
                    },
                    None,
                );
            }
            if let Some(r) = c.get("finishReason").and_then(Value::as_str) {
                let had_calls = self.slot(index).1 > 0;
                let r = finish_reason(r, had_calls).to_string();
                self.state.finish_reason = Some(r.clone());
                self.emit(out, index, Delta::default(), Some(r));
            }
        }
    }

    fn slot(&mut self, index: u32) -> &mut (bool, u32) {
        let i = index as usize;
        if self.candidates.len() <= i {
            self.candidates.resize(i + 1, (false, 0));
        }
        &mut self.candidates[i]
    }

    fn role_chunk(&mut self, out: &mut Vec<u8>, index: u32) {
        if !self.slot(index).0 {
            self.slot(index).0 = true;
            self.emit(
                out,
                index,
                Delta {
                    role: Some("assistant".to_string()),
                    content: Some(String::new()),
                    ..Delta::default()
                },
                None,
            );
        }
    }
}

pub fn build_embeddings_request(
    req: &EmbeddingsRequest,
    target: &ProviderTarget,
) -> Result<UpstreamRequest, AiError> {
    let texts = req.texts().ok_or_else(|| {
        AiError::invalid_param(
            "input",
            "this provider takes text inputs only (not token arrays)",
        )
    })?;
    let model = target
        .model
        .strip_prefix("models/")
        .unwrap_or(&target.model);
    let requests: Vec<Value> = texts
        .iter()
        .map(|t| {
            let mut r =
                json!({"model": format!("models/{model}"), "content": {"parts": [{"text": t}]}});
            if let Some(d) = req.dimensions {
                r["outputDimensionality"] = json!(d);
            }
            r
        })
        .collect();
    Ok(UpstreamRequest {
        method: "POST",
        url: model_url(target, "batchEmbedContents"),
        headers: headers(target, false),
        key_header: Some(KEY),
        body: serde_json::to_vec(&json!({ "requests": requests }))
            .map_err(|e| AiError::invalid(e.to_string()))?,
        stream: false,
    })
}

pub fn parse_embeddings_response(
    target: &ProviderTarget,
    body: &[u8],
    model: &str,
) -> Result<EmbeddingsResponse, AiError> {
    let v: Value =
        serde_json::from_slice(body).map_err(|e| AiError::bad_response(&target.provider, e))?;
    let list = v["embeddings"]
        .as_array()
        .ok_or_else(|| AiError::bad_response(&target.provider, "no embeddings array"))?;
    Ok(EmbeddingsResponse {
        object: "list".to_string(),
        data: list
            .iter()
            .enumerate()
            .map(|(i, e)| Embedding {
                object: "embedding".to_string(),
                index: i as u32,
                embedding: e.get("values").cloned().unwrap_or(json!([])),
            })
            .collect(),
        model: model.to_string(),
        // Gemini reports no token counts for embeddings.
        usage: Some(Usage::new(0, 0)),
        extra: Extra::new(),
    })
}

/// `models/{model}:countTokens` for a chat request: the whole `generateContent` body (system
/// instruction and tools included) under `generateContentRequest`; the answer's `totalTokens` is
/// read by [`parse_count_tokens`].
pub fn build_count_tokens_request(
    req: &ChatRequest,
    target: &ProviderTarget,
) -> Result<UpstreamRequest, AiError> {
    let mut inner = request_body(req)?;
    let model = target
        .model
        .strip_prefix("models/")
        .unwrap_or(&target.model);
    inner["model"] = json!(format!("models/{model}"));
    if let Some(o) = inner.as_object_mut() {
        // Sampling settings mean nothing to a count.
        o.remove("generationConfig");
    }
    Ok(UpstreamRequest {
        method: "POST",
        url: model_url(target, "countTokens"),
        headers: headers(target, false),
        key_header: Some(KEY),
        body: serde_json::to_vec(&json!({ "generateContentRequest": inner }))
            .map_err(|e| AiError::invalid(e.to_string()))?,
        stream: false,
    })
}

/// The `totalTokens` of a `countTokens` answer.
pub fn parse_count_tokens(target: &ProviderTarget, body: &[u8]) -> Result<u64, AiError> {
    let v: Value =
        serde_json::from_slice(body).map_err(|e| AiError::bad_response(&target.provider, e))?;
    v.get("totalTokens")
        .and_then(Value::as_u64)
        .ok_or_else(|| AiError::bad_response(&target.provider, "no totalTokens"))
}
