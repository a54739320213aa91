//! OpenAI wire types: chat completions (request, response, stream chunk), embeddings, models list.
//!
//! Permissive on input: every object keeps the fields it does not know in `extra`, so a client sending a
//! parameter newer than this code is neither rejected nor stripped (OpenAI-compatible providers get it
//! as it came). Optional fields are omitted on output when absent.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// Unknown fields of an object, kept in order of appearance for pass-through.
pub type Extra = Map<String, Value>;

/// `POST /v1/chat/completions` request body.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ChatRequest {
    #[serde(default)]
    pub model: String,
    #[serde(default)]
    pub messages: Vec<Message>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stream: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stream_options: Option<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub temperature: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub top_p: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_tokens: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_completion_tokens: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub n: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stop: Option<Stop>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tools: Option<Vec<Tool>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tool_choice: Option<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parallel_tool_calls: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub response_format: Option<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seed: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub presence_penalty: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub frequency_penalty: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
    #[serde(flatten)]
    pub extra: Extra,
}

impl ChatRequest {
    /// Parse a client's JSON body. Here rather than `serde_json::from_slice` at the caller so that the
    /// deserializer is compiled into this crate (built for size: Cargo.toml's release profile).
    pub fn from_json(body: &[u8]) -> Result<ChatRequest, serde_json::Error> {
        serde_json::from_slice(body)
    }

    /// For a body [`ChatRequest::from_json`] refused: the parameter at fault and OpenAI's `code`, as
    /// OpenAI's API names them: a known field of the wrong type (`messages` a string, `model` a number,
    /// `messages[2]` not an object: `invalid_type`), a message without a string `role`
    /// (`messages[0].role`: `missing_required_parameter`, or `invalid_type`). `None` when the body is not
    /// a JSON object or the fault is elsewhere.
    pub fn param_at_fault(body: &[u8]) -> Option<(String, &'static str)> {
        let v: Value = serde_json::from_slice(body).ok()?;
        let o = v.as_object()?;
        type Check = fn(&Value) -> bool;
        let kinds: [(&str, Check); 15] = [
            ("model", Value::is_string),
            ("messages", Value::is_array),
            ("stream", |v| v.is_boolean() || v.is_null()),
            ("temperature", |v| v.is_number() || v.is_null()),
            ("top_p", |v| v.is_number() || v.is_null()),
            ("presence_penalty", |v| v.is_number() || v.is_null()),
            ("frequency_penalty", |v| v.is_number() || v.is_null()),
            ("max_tokens", |v| v.is_u64() || v.is_null()),
            ("max_completion_tokens", |v| v.is_u64() || v.is_null()),
            ("n", |v| {
                v.as_u64().is_some_and(|n| n <= u32::MAX as u64) || v.is_null()
            }),
            ("seed", |v| v.is_i64() || v.is_null()),
            ("tools", |v| v.is_array() || v.is_null()),
            ("user", |v| v.is_string() || v.is_null()),
            ("parallel_tool_calls", |v| v.is_boolean() || v.is_null()),
            ("stop", |v| v.is_string() || v.is_array() || v.is_null()),
        ];
        for (name, ok) in kinds {
            if o.get(name).is_some_and(|v| !ok(v)) {
                return Some((name.to_string(), "invalid_type"));
            }
        }
        let messages = o.get("messages")?.as_array()?;
        for (i, m) in messages.iter().enumerate() {
            let Some(m) = m.as_object() else {
                return Some((format!("messages[{i}]"), "invalid_type"));
            };
            match m.get("role") {
                None => return Some((format!("messages[{i}].role"), "missing_required_parameter")),
                Some(r) if !r.is_string() => {
                    return Some((format!("messages[{i}].role"), "invalid_type"))
                }
                Some(_) => {}
            }
            if m.get("content")
                .is_some_and(|c| !(c.is_string() || c.is_array() || c.is_null()))
            {
                return Some((format!("messages[{i}].content"), "invalid_type"));
            }
        }
        None
    }

    /// Whether the client asked for a stream.
    pub fn is_stream(&self) -> bool {
        self.stream == Some(true)
    }

    /// Whether the client itself asked for the final usage chunk (`stream_options.include_usage`).
    pub fn client_wants_usage(&self) -> bool {
        self.stream_options
            .as_ref()
            .and_then(|o| o.get("include_usage"))
            .and_then(Value::as_bool)
            .unwrap_or(false)
    }

    /// The token limit the client set (`max_completion_tokens` wins over the older `max_tokens`).
    pub fn max_output_tokens(&self) -> Option<u64> {
        self.max_completion_tokens.or(self.max_tokens)
    }

    /// Stop sequences as a list.
    pub fn stop_list(&self) -> Vec<String> {
        match &self.stop {
            None => Vec::new(),
            Some(Stop::One(s)) => vec![s.clone()],
            Some(Stop::Many(v)) => v.clone(),
        }
    }
}

/// `stop`: one string or a list.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Stop {
    One(String),
    Many(Vec<String>),
}

/// One message of the conversation.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Message {
    pub role: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub content: Option<Content>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tool_calls: Option<Vec<ToolCall>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tool_call_id: Option<String>,
    #[serde(flatten)]
    pub extra: Extra,
}

impl Message {
    /// A message with plain text content.
    pub fn text(role: &str, text: impl Into<String>) -> Message {
        Message {
            role: role.to_string(),
            content: Some(Content::Text(text.into())),
            ..Message::default()
        }
    }

    /// The text of the message: the string content, or its text parts joined with newlines.
    pub fn text_content(&self) -> String {
        match &self.content {
            None => String::new(),
            Some(c) => c.text(),
        }
    }
}

/// Message content: a string or a list of typed parts.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Content {
    Text(String),
    Parts(Vec<ContentPart>),
}

impl Content {
    /// All the text, parts joined with newlines.
    pub fn text(&self) -> String {
        match self {
            Content::Text(s) => s.clone(),
            Content::Parts(parts) => parts
                .iter()
                .filter_map(|p| p.text.as_deref())
                .collect::<Vec<_>>()
                .join("\n"),
        }
    }
}

/// One part of a multi-part content (`text`, `image_url`, `input_audio`, `file`, ...).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ContentPart {
    #[serde(rename = "type")]
    pub kind: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub text: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image_url: Option<ImageUrl>,
    #[serde(flatten)]
    pub extra: Extra,
}

/// `image_url` of a content part.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ImageUrl {
    pub url: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
}

/// A tool the model may call.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Tool {
    #[serde(rename = "type", default = "function_type")]
    pub kind: String,
    #[serde(default)]
    pub function: FunctionDef,
    #[serde(flatten)]
    pub extra: Extra,
}

fn function_type() -> String {
    "function".to_string()
}

/// A function tool's declaration.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct FunctionDef {
    #[serde(default)]
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parameters: Option<Value>,
    #[serde(flatten)]
    pub extra: Extra,
}

/// A call of a tool made by the assistant.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ToolCall {
    #[serde(default)]
    pub id: String,
    #[serde(rename = "type", default = "function_type")]
    pub kind: String,
    #[serde(default)]
    pub function: FunctionCall,
}

/// Name and JSON-encoded arguments of a function call.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct FunctionCall {
    #[serde(default)]
    pub name: String,
    #[serde(default)]
    pub arguments: String,
}

/// Token counts.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Usage {
    #[serde(default)]
    pub prompt_tokens: u64,
    #[serde(default)]
    pub completion_tokens: u64,
    #[serde(default)]
    pub total_tokens: u64,
    #[serde(flatten)]
    pub extra: Extra,
}

impl Usage {
    pub fn new(prompt: u64, completion: u64) -> Usage {
        Usage {
            prompt_tokens: prompt,
            completion_tokens: completion,
            total_tokens: prompt + completion,
            extra: Extra::new(),
        }
    }
}

/// `POST /v1/chat/completions` response body (non-streaming).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ChatResponse {
    #[serde(default)]
    pub id: String,
    #[serde(default = "chat_completion")]
    pub object: String,
    #[serde(default)]
    pub created: u64,
    #[serde(default)]
    pub model: String,
    #[serde(default)]
    pub choices: Vec<Choice>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub usage: Option<Usage>,
    #[serde(flatten)]
    pub extra: Extra,
}

fn chat_completion() -> String {
    "chat.completion".to_string()
}

/// One choice of a response.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Choice {
    #[serde(default)]
    pub index: u32,
    #[serde(default)]
    pub message: ResponseMessage,
    #[serde(default)]
    pub finish_reason: Option<String>,
    #[serde(flatten)]
    pub extra: Extra,
}

/// The assistant's message in a response.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ResponseMessage {
    #[serde(default = "assistant")]
    pub role: String,
    #[serde(default)]
    pub content: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tool_calls: Option<Vec<ToolCall>>,
    #[serde(flatten)]
    pub extra: Extra,
}

impl Default for ResponseMessage {
    fn default() -> Self {
        ResponseMessage {
            role: assistant(),
            content: None,
            tool_calls: None,
            extra: Extra::new(),
        }
    }
}

fn assistant() -> String {
    "assistant".to_string()
}

/// One `data:` chunk of a chat completion stream.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ChatChunk {
    #[serde(default)]
    pub id: String,
    #[serde(default = "chunk_object")]
    pub object: String,
    #[serde(default)]
    pub created: u64,
    #[serde(default)]
    pub model: String,
    #[serde(default)]
    pub choices: Vec<ChunkChoice>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub usage: Option<Usage>,
    #[serde(flatten)]
    pub extra: Extra,
}

fn chunk_object() -> String {
    "chat.completion.chunk".to_string()
}

/// One choice of a stream chunk.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ChunkChoice {
    #[serde(default)]
    pub index: u32,
    #[serde(default)]
    pub delta: Delta,
    #[serde(default)]
    pub finish_reason: Option<String>,
    #[serde(flatten)]
    pub extra: Extra,
}

/// What a chunk adds to the message.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Delta {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub role: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub content: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tool_calls: Option<Vec<ToolCallDelta>>,
    #[serde(flatten)]
    pub extra: Extra,
}

/// A piece of a tool call in a stream: the first piece carries `id` and the name, later ones arguments.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ToolCallDelta {
    pub index: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    #[serde(rename = "type", default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub function: Option<FunctionDelta>,
}

impl ToolCallDelta {
    /// The first delta of a function call: its index among the message's calls, id, name and the
    /// arguments known so far.
    pub fn start(
        index: u32,
        id: Option<String>,
        name: Option<String>,
        arguments: String,
    ) -> ToolCallDelta {
        ToolCallDelta {
            index,
            id,
            kind: Some("function".to_string()),
            function: Some(FunctionDelta {
                name,
                arguments: Some(arguments),
            }),
        }
    }
}

/// Name and/or a fragment of the arguments.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct FunctionDelta {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub arguments: Option<String>,
}

/// `POST /v1/embeddings` request body.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct EmbeddingsRequest {
    #[serde(default)]
    pub model: String,
    /// A string, a list of strings, or token arrays.
    pub input: Value,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub encoding_format: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dimensions: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
    #[serde(flatten)]
    pub extra: Extra,
}

impl EmbeddingsRequest {
    /// Parse a client's JSON body (in this crate, as [`ChatRequest::from_json`]).
    pub fn from_json(body: &[u8]) -> Result<EmbeddingsRequest, serde_json::Error> {
        serde_json::from_slice(body)
    }

    /// For a body [`EmbeddingsRequest::from_json`] refused: the parameter at fault and OpenAI's `code`
    /// (as [`ChatRequest::param_at_fault`]): no `input` (`missing_required_parameter`), `model`,
    /// `encoding_format`, `dimensions` or `user` of the wrong type (`invalid_type`).
    pub fn param_at_fault(body: &[u8]) -> Option<(String, &'static str)> {
        let v: Value = serde_json::from_slice(body).ok()?;
        let o = v.as_object()?;
        type Check = fn(&Value) -> bool;
        let kinds: [(&str, Check); 4] = [
            ("model", Value::is_string),
            ("encoding_format", |v| v.is_string() || v.is_null()),
            ("dimensions", |v| {
                v.as_u64().is_some_and(|n| n <= u32::MAX as u64) || v.is_null()
            }),
            ("user", |v| v.is_string() || v.is_null()),
        ];
        for (name, ok) in kinds {
            if o.get(name).is_some_and(|v| !ok(v)) {
                return Some((name.to_string(), "invalid_type"));
            }
        }
        if !o.contains_key("input") {
            return Some(("input".to_string(), "missing_required_parameter"));
        }
        None
    }

    /// The inputs as texts (`None` when the input holds token arrays).
    pub fn texts(&self) -> Option<Vec<String>> {
        match &self.input {
            Value::String(s) => Some(vec![s.clone()]),
            Value::Array(items) => items
                .iter()
                .map(|v| v.as_str().map(str::to_string))
                .collect(),
            _ => None,
        }
    }
}

/// `POST /v1/embeddings` response body.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct EmbeddingsResponse {
    #[serde(default = "list")]
    pub object: String,
    #[serde(default)]
    pub data: Vec<Embedding>,
    #[serde(default)]
    pub model: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub usage: Option<Usage>,
    #[serde(flatten)]
    pub extra: Extra,
}

fn list() -> String {
    "list".to_string()
}

/// One embedding vector (or its base64 string when `encoding_format` is `base64`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Embedding {
    #[serde(default = "embedding")]
    pub object: String,
    #[serde(default)]
    pub index: u32,
    pub embedding: Value,
}

fn embedding() -> String {
    "embedding".to_string()
}

/// `GET /v1/models` response body.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ModelList {
    #[serde(default = "list")]
    pub object: String,
    pub data: Vec<ModelInfo>,
}

/// One entry of the models list.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ModelInfo {
    pub id: String,
    #[serde(default = "model")]
    pub object: String,
    #[serde(default)]
    pub created: u64,
    #[serde(default)]
    pub owned_by: String,
}

fn model() -> String {
    "model".to_string()
}
