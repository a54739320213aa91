//! Settings of the `ai-proxy` plugin: providers (key by secret NAME), model aliases with ordered or
//! weighted targets, fallback, prompt guard, prompt decoration, prompt templates; and what the glue asks
//! of them at request time (resolve a model to targets, check the guard, fill a template).
//!
//! ```json
//! {"providers": {"anthropic": {"key_secret": "ANTHROPIC_API_KEY"},
//!                "local": {"kind": "openai", "base_url": "http://127.0.0.1:9100/v1"}},
//!  "models": {"fast": "local/llama3",
//!             "smart": {"targets": ["anthropic/claude-sonnet-4-5", "local/llama3"]}},
//!  "default_model": "fast",
//!  "fallback": {"first_byte_timeout_ms": 20000},
//!  "prompt_guard": {"deny": ["(?i)ignore (all )?previous instructions"]},
//!  "decorate": {"prepend": [{"role": "system", "content": "Answer briefly."}]},
//!  "templates": {"summarize": {"model": "fast",
//!                "messages": [{"role": "user", "content": "Summarize in {{lang}}: {{text}}"}]}}}
//! ```

use super::types::{ChatRequest, Content, Message, ModelInfo, ModelList};
use super::{vertex, AiError, ProviderKind, ProviderTarget, DEFAULT_MAX_TOKENS};
use edgegate_path_error::{key_path, quote_as, quote_key};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use std::collections::BTreeMap;

/// Validation errors: (path relative to the plugin's `config`, message).
pub type ConfigErrors = Vec<(String, String)>;

/// Split `provider/model` at the first slash (`openrouter/anthropic/claude` is provider `openrouter`,
/// model `anthropic/claude`). `None` when either side is empty or there is no slash.
pub fn parse_model_name(name: &str) -> Option<(&str, &str)> {
    let (p, m) = name.split_once('/')?;
    if p.is_empty() || m.is_empty() {
        None
    } else {
        Some((p, m))
    }
}

/// Providers known by name: their wire format and base URL.
pub fn known_provider(name: &str) -> Option<(ProviderKind, &'static str)> {
    Some(match name {
        "openai" => (ProviderKind::OpenAi, "https://api.openai.com/v1"),
        "azure" => (ProviderKind::Azure, ""),
        "anthropic" => (ProviderKind::Anthropic, "https://api.anthropic.com"),
        "gemini" | "google" => (
            ProviderKind::Gemini,
            "https://generativelanguage.googleapis.com",
        ),
        "mistral" => (ProviderKind::OpenAi, "https://api.mistral.ai/v1"),
        "groq" => (ProviderKind::OpenAi, "https://api.groq.com/openai/v1"),
        "deepseek" => (ProviderKind::OpenAi, "https://api.deepseek.com"),
        "openrouter" => (ProviderKind::OpenAi, "https://openrouter.ai/api/v1"),
        "together" => (ProviderKind::OpenAi, "https://api.together.xyz/v1"),
        // The URL is the region's (`https://bedrock-runtime.{region}.amazonaws.com`).
        "bedrock" => (ProviderKind::Bedrock, ""),
        // The host of the default region (`global`); another region's host is `{region}-aiplatform…`.
        "vertex" => (ProviderKind::Vertex, "https://aiplatform.googleapis.com"),
        _ => return None,
    })
}

/// The plugin's settings as written.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AiProxyConfig {
    /// Providers by name (the `provider` of `provider/model`).
    #[serde(default)]
    pub providers: BTreeMap<String, ProviderConfig>,
    /// Aliases: `"fast": "groq/llama-3.1-8b-instant"` or `{"targets": [...], "strategy": ...}`.
    #[serde(default)]
    pub models: BTreeMap<String, AliasConfig>,
    /// Model used when the request names none.
    #[serde(default)]
    pub default_model: Option<String>,
    /// Accept `provider/model` names that no alias lists (default true). When false, clients can only
    /// use the aliases.
    #[serde(default = "yes")]
    pub allow_provider_models: bool,
    #[serde(default)]
    pub fallback: FallbackConfig,
    #[serde(default)]
    pub prompt_guard: Option<GuardConfig>,
    #[serde(default)]
    pub decorate: DecorateConfig,
    #[serde(default)]
    pub templates: BTreeMap<String, TemplateConfig>,
}

fn yes() -> bool {
    true
}

/// One provider.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProviderConfig {
    /// Wire format; defaults from the name for known providers (openai, azure, anthropic, gemini,
    /// mistral, groq, deepseek, openrouter, together).
    #[serde(default)]
    pub kind: Option<ProviderKind>,
    /// Base URL; defaults from the name for known providers (required for azure and custom ones).
    #[serde(default)]
    pub base_url: Option<String>,
    /// NAME of the Worker secret holding the key. Required for known providers at their default URL.
    #[serde(default)]
    pub key_secret: Option<String>,
    /// Azure `api-version` (default 2024-10-21) or Anthropic `anthropic-version` (default 2023-06-01);
    /// Vertex: the `anthropic_version` of Claude bodies (default vertex-2023-10-16).
    #[serde(default)]
    pub api_version: Option<String>,
    /// Static extra headers (no credentials).
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
    /// `max_tokens` for Anthropic when the client sets none (default 4096).
    #[serde(default)]
    pub default_max_tokens: Option<u64>,
    /// Bedrock: the AWS region (`us-east-1`), required; it also gives the default base URL. Vertex AI:
    /// the location (default `global`); it also picks the host (`{region}-aiplatform.googleapis.com`).
    /// Other kinds: refused.
    #[serde(default)]
    pub region: Option<String>,
    /// Bedrock: NAME of the Worker secret holding the AWS access key id (default `AWS_ACCESS_KEY_ID`).
    #[serde(default)]
    pub access_key_id_secret: Option<String>,
    /// Bedrock: NAME of the Worker secret holding the AWS secret access key (default
    /// `AWS_SECRET_ACCESS_KEY`).
    #[serde(default)]
    pub secret_access_key_secret: Option<String>,
    /// Bedrock: NAME of the Worker secret holding a session token (temporary credentials; none by
    /// default).
    #[serde(default)]
    pub session_token_secret: Option<String>,
    /// Vertex AI: Google Cloud project id (default: the service account's `project_id`).
    #[serde(default)]
    pub project: Option<String>,
    /// Vertex AI: `google` (Gemini) or `anthropic` (Claude) for every model of the provider
    /// (default: by model name, `claude…` is Anthropic's).
    #[serde(default)]
    pub publisher: Option<vertex::Publisher>,
}

/// An alias: one `provider/model`, or targets tried in order / picked by weight.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum AliasConfig {
    One(String),
    Many(AliasTargets),
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AliasTargets {
    pub targets: Vec<TargetRef>,
    #[serde(default)]
    pub strategy: Strategy,
}

/// A target of an alias: `"provider/model"` or `{"model": "provider/model", "weight": 3}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum TargetRef {
    Name(String),
    Weighted {
        model: String,
        #[serde(default = "one")]
        weight: u32,
    },
}

fn one() -> u32 {
    1
}

impl TargetRef {
    fn model(&self) -> &str {
        match self {
            TargetRef::Name(m) | TargetRef::Weighted { model: m, .. } => m,
        }
    }
    fn weight(&self) -> u32 {
        match self {
            TargetRef::Name(_) => 1,
            TargetRef::Weighted { weight, .. } => *weight,
        }
    }
}

/// How an alias orders its targets.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Strategy {
    /// First target first, then the next on failure.
    #[default]
    Ordered,
    /// First target picked at random by weight, the rest by weight after it.
    Weighted,
}

/// When to try the next target.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FallbackConfig {
    /// Try the next target on 429, 5xx, connection failure and first-byte timeout (default true).
    #[serde(default = "yes")]
    pub enabled: bool,
    /// Most targets tried per request (default: all).
    #[serde(default)]
    /// `u64`, not `usize`: a count must read the same natively (the CLI) and on wasm32 (the Worker).
    pub max_attempts: Option<u64>,
    /// No first byte from the provider within this time counts as a failure (default 30000).
    #[serde(default = "first_byte")]
    pub first_byte_timeout_ms: u64,
}

fn first_byte() -> u64 {
    30_000
}

impl Default for FallbackConfig {
    fn default() -> Self {
        FallbackConfig {
            enabled: true,
            max_attempts: None,
            first_byte_timeout_ms: first_byte(),
        }
    }
}

/// Prompt guard (Kong ai-prompt-guard): deny patterns win, then at least one allow pattern must match
/// when any are given.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GuardConfig {
    #[serde(default)]
    pub allow: Vec<String>,
    #[serde(default)]
    pub deny: Vec<String>,
    /// Check every user message, not only the last one (default false).
    #[serde(default)]
    pub all_messages: bool,
}

/// Messages added around the client's (Kong ai-prompt-decorator).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DecorateConfig {
    #[serde(default)]
    pub prepend: Vec<Message>,
    #[serde(default)]
    pub append: Vec<Message>,
}

/// A prompt template served as a plain REST endpoint: the JSON body's fields fill `{{name}}`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TemplateConfig {
    /// Model or alias (default: the plugin's `default_model`).
    #[serde(default)]
    pub model: Option<String>,
    pub messages: Vec<Message>,
    /// Extra chat parameters (temperature, max_tokens, response_format, ...).
    #[serde(default)]
    pub params: Map<String, Value>,
}

/// Validated settings, ready for requests.
#[derive(Debug, Clone)]
pub struct CompiledAiProxy {
    pub config: AiProxyConfig,
    providers: BTreeMap<String, ProviderTarget>,
    allow: Vec<regex_lite::Regex>,
    deny: Vec<regex_lite::Regex>,
}

const KEY_FIELDS: &[&str] = &[
    "api_key",
    "key",
    "apikey",
    "token",
    "secret",
    "api-key",
    "access_key_id",
    "secret_access_key",
    "session_token",
    "aws_access_key_id",
    "aws_secret_access_key",
    "aws_session_token",
];
const KEY_HEADERS: &[&str] = &[
    "authorization",
    "x-api-key",
    "api-key",
    "x-goog-api-key",
    "proxy-authorization",
    "x-amz-security-token",
];

pub(crate) fn is_secret_name(s: &str) -> bool {
    let mut chars = s.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
        && s.len() <= 128
}

impl AiProxyConfig {
    /// Parse and validate the plugin's `config` (`null` counts as `{}`).
    pub fn compile(config: &Value) -> Result<CompiledAiProxy, ConfigErrors> {
        // A key pasted into the config is refused with a pointed message, before serde's generic one.
        let mut errors = ConfigErrors::new();
        if let Some(ps) = config.get("providers").and_then(Value::as_object) {
            for (name, p) in ps {
                for f in KEY_FIELDS {
                    if p.get(*f).is_some() {
                        errors.push((
                            key_path(&key_path("providers", name), f),
                            "provider keys are never stored in the configuration: put the key in a \
                             Worker secret and name the secret in key_secret"
                                .to_string(),
                        ));
                    }
                }
            }
        }
        if !errors.is_empty() {
            return Err(errors);
        }
        let empty = Value::Object(Map::new());
        let value = if config.is_null() { &empty } else { config };
        let parsed: AiProxyConfig = edgegate_path_error::deserialize(value).map_err(|e| {
            let path = e.path().to_string();
            let path = if path == "." { String::new() } else { path };
            vec![(path, e.into_inner().to_string())]
        })?;
        parsed.validate()
    }

    /// Validate parsed settings.
    pub fn validate(self) -> Result<CompiledAiProxy, ConfigErrors> {
        let mut errors = ConfigErrors::new();
        let mut providers = BTreeMap::new();
        for (name, p) in &self.providers {
            let provider_path = key_path("providers", name);
            let at = |f: &str| key_path(&provider_path, f);
            if name.is_empty() || name.contains('/') {
                errors.push((
                    provider_path.clone(),
                    "provider names are non-empty and contain no '/'".to_string(),
                ));
                continue;
            }
            let known = known_provider(name);
            let kind = match (p.kind, known) {
                (Some(k), _) => k,
                (None, Some((k, _))) => k,
                (None, None) => {
                    errors.push((
                        at("kind"),
                        format!(
                            "{} is not a known provider: set kind (openai, azure, anthropic, gemini, bedrock or vertex) and base_url",
                            quote_key(name, "\"")
                        ),
                    ));
                    continue;
                }
            };
            let default_url = match known {
                Some((k, url)) if k == kind => url,
                _ => "",
            };
            if p.region.is_some() && !matches!(kind, ProviderKind::Bedrock | ProviderKind::Vertex) {
                errors.push((
                    at("region"),
                    "region is a setting of bedrock and vertex providers".into(),
                ));
            }
            let vertex_options = vertex_options(name, kind, p, &mut errors);
            let base_url = p.base_url.clone().unwrap_or_else(|| match &vertex_options {
                Some(v) => vertex::base_url(&v.region),
                None => default_url.to_string(),
            });
            let (base_url, aws) =
                super::bedrock::check_provider(name, kind, p, base_url, &mut errors);
            if base_url.is_empty() {
                errors.push((
                    at("base_url"),
                    "base_url is required for this provider".into(),
                ));
            } else if !(base_url.starts_with("https://") || base_url.starts_with("http://")) {
                errors.push((
                    at("base_url"),
                    "base_url must be an http:// or https:// URL".into(),
                ));
            } else if base_url.contains('?') || base_url.contains('#') {
                errors.push((at("base_url"), "base_url takes no query or fragment".into()));
            }
            match &p.key_secret {
                Some(s) if !is_secret_name(s) => errors.push((
                    at("key_secret"),
                    "key_secret is the NAME of a Worker secret (letters, digits, _), not the key"
                        .into(),
                )),
                None if kind == ProviderKind::Vertex => errors.push((
                    at("key_secret"),
                    format!(
                        "{} needs a service account: name the Worker secret holding its JSON key in key_secret",
                        quote_key(name, "")
                    ),
                )),
                None if p.base_url.is_none()
                    && known.is_some()
                    && kind != ProviderKind::Bedrock =>
                {
                    errors.push((
                        at("key_secret"),
                        format!(
                            "{} needs a key: name the Worker secret holding it in key_secret",
                            quote_key(name, "")
                        ),
                    ))
                }
                _ => {}
            }
            for h in p.headers.keys() {
                let lower = h.to_ascii_lowercase();
                if KEY_HEADERS.contains(&lower.as_str()) {
                    errors.push((
                        key_path(&at("headers"), h),
                        "credential headers cannot be set in the configuration: use key_secret"
                            .into(),
                    ));
                } else if lower.is_empty()
                    || !lower
                        .bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b"-_".contains(&b))
                {
                    errors.push((key_path(&at("headers"), h), "invalid header name".into()));
                }
            }
            if p.default_max_tokens == Some(0) {
                errors.push((at("default_max_tokens"), "must be at least 1".into()));
            }
            providers.insert(
                name.clone(),
                ProviderTarget {
                    provider: name.clone(),
                    kind,
                    base_url: base_url.trim_end_matches('/').to_string(),
                    model: String::new(),
                    api_version: p.api_version.clone(),
                    headers: p
                        .headers
                        .iter()
                        .map(|(k, v)| (k.to_ascii_lowercase(), v.clone()))
                        .collect(),
                    default_max_tokens: p.default_max_tokens.unwrap_or(DEFAULT_MAX_TOKENS),
                    key_secret: p.key_secret.clone(),
                    aws,
                    vertex: vertex_options.map(Box::new),
                },
            );
        }
        let check_model =
            |errors: &mut ConfigErrors, path: String, m: &str| match parse_model_name(m) {
                None => errors.push((
                    path,
                    format!("{} is not provider/model", quote_as(m, "\"", "name")),
                )),
                Some((p, _)) if !self.providers.contains_key(p) => errors.push((
                    path,
                    format!(
                        "unknown provider {} (declare it in providers)",
                        quote_as(p, "\"", "name")
                    ),
                )),
                _ => {}
            };
        for (alias, a) in &self.models {
            if alias.is_empty() {
                errors.push(("models".into(), "empty alias".into()));
            }
            let alias_path = key_path("models", alias);
            match a {
                AliasConfig::One(m) => check_model(&mut errors, alias_path.clone(), m),
                AliasConfig::Many(t) => {
                    if t.targets.is_empty() {
                        errors.push((key_path(&alias_path, "targets"), "no targets".into()));
                    }
                    for (i, r) in t.targets.iter().enumerate() {
                        check_model(&mut errors, format!("{alias_path}.targets[{i}]"), r.model());
                        if r.weight() == 0 {
                            errors.push((
                                format!("{alias_path}.targets[{i}].weight"),
                                "weight must be at least 1".into(),
                            ));
                        }
                    }
                }
            }
        }
        let model_ok = |m: &str| {
            self.models.contains_key(m)
                || parse_model_name(m).is_some_and(|(p, _)| self.providers.contains_key(p))
        };
        if let Some(d) = &self.default_model {
            if !model_ok(d) {
                errors.push((
                    "default_model".into(),
                    format!("{d:?} is neither an alias nor provider/model of a declared provider"),
                ));
            }
        }
        if self.fallback.max_attempts == Some(0) {
            errors.push(("fallback.max_attempts".into(), "must be at least 1".into()));
        }
        if self.fallback.first_byte_timeout_ms == 0 {
            errors.push((
                "fallback.first_byte_timeout_ms".into(),
                "must be at least 1".into(),
            ));
        }
        let mut compile = |list: &[String], field: &str| {
            list.iter()
                .enumerate()
                .filter_map(|(i, p)| match regex_lite::Regex::new(p) {
                    Ok(r) => Some(r),
                    Err(e) => {
                        errors.push((format!("prompt_guard.{field}[{i}]"), e.to_string()));
                        None
                    }
                })
                .collect::<Vec<_>>()
        };
        let (allow, deny) = match &self.prompt_guard {
            Some(g) => (compile(&g.allow, "allow"), compile(&g.deny, "deny")),
            None => (Vec::new(), Vec::new()),
        };
        for (field, list) in [
            ("prepend", &self.decorate.prepend),
            ("append", &self.decorate.append),
        ] {
            for (i, m) in list.iter().enumerate() {
                if !matches!(
                    m.role.as_str(),
                    "system" | "developer" | "user" | "assistant"
                ) {
                    errors.push((
                        format!("decorate.{field}[{i}].role"),
                        "role must be system, developer, user or assistant".into(),
                    ));
                }
            }
        }
        for (name, t) in &self.templates {
            let at = |f: &str| key_path(&key_path("templates", name), f);
            if let Some(m) = &t.model {
                if !model_ok(m) {
                    errors.push((
                        at("model"),
                        format!(
                            "{m:?} is neither an alias nor provider/model of a declared provider"
                        ),
                    ));
                }
            } else if self.default_model.is_none() {
                errors.push((
                    at("model"),
                    "a model is needed (here or in default_model)".into(),
                ));
            }
            if t.messages.is_empty() {
                errors.push((at("messages"), "no messages".into()));
            }
            for (i, m) in t.messages.iter().enumerate() {
                for text in message_texts(m) {
                    if let Err(e) = placeholders(text) {
                        errors.push((format!("{}[{i}].content", at("messages")), e));
                    }
                }
            }
            for k in ["messages", "model", "stream"] {
                if t.params.contains_key(k) {
                    errors.push((
                        format!("{}.{k}", at("params")),
                        format!("{k} cannot be set in params"),
                    ));
                }
            }
            if let Err(e) = serde_json::from_value::<ChatRequest>(Value::Object(t.params.clone())) {
                errors.push((at("params"), e.to_string()));
            }
        }
        if errors.is_empty() {
            Ok(CompiledAiProxy {
                config: self,
                providers,
                allow,
                deny,
            })
        } else {
            Err(errors)
        }
    }
}

/// The Vertex settings of provider `name` (`None` for other kinds, which may not set `project` or
/// `publisher`).
fn vertex_options(
    name: &str,
    kind: ProviderKind,
    p: &ProviderConfig,
    errors: &mut ConfigErrors,
) -> Option<vertex::VertexOptions> {
    let at = |f: &str| key_path(&key_path("providers", name), f);
    if kind != ProviderKind::Vertex {
        for (f, set) in [
            ("project", p.project.is_some()),
            ("publisher", p.publisher.is_some()),
        ] {
            if set {
                errors.push((at(f), format!("{f} is a setting of vertex providers")));
            }
        }
        return None;
    }
    let region = p.region.as_deref().unwrap_or(vertex::DEFAULT_REGION);
    if !vertex::valid_region(region) {
        errors.push((
            at("region"),
            "region is a Google Cloud location such as global, us-central1 or europe-west1".into(),
        ));
    }
    if let Some(project) = &p.project {
        if !vertex::valid_project(project) {
            errors.push((
                at("project"),
                "project is a Google Cloud project id (lowercase letters, digits, -)".into(),
            ));
        }
    }
    Some(vertex::VertexOptions {
        project: p.project.clone(),
        region: region.to_string(),
        publisher: p.publisher,
    })
}

fn message_texts(m: &Message) -> Vec<&str> {
    match &m.content {
        None => Vec::new(),
        Some(Content::Text(s)) => vec![s.as_str()],
        Some(Content::Parts(parts)) => parts.iter().filter_map(|p| p.text.as_deref()).collect(),
    }
}

/// The `{{name}}` placeholders of a template text, in order (names: letters, digits, `_`, `-`, `.`;
/// spaces inside the braces allowed).
pub fn placeholders(text: &str) -> Result<Vec<&str>, String> {
    let mut out = Vec::new();
    let mut rest = text;
    while let Some(i) = rest.find("{{") {
        let after = &rest[i + 2..];
        let end = after
            .find("}}")
            .ok_or_else(|| "unclosed {{ in template".to_string())?;
        let name = after[..end].trim();
        if name.is_empty()
            || !name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"_-.".contains(&b))
        {
            return Err(format!("invalid placeholder {{{{{}}}}}", &after[..end]));
        }
        out.push(name);
        rest = &after[end + 2..];
    }
    Ok(out)
}

/// Fill `{{name}}` placeholders from `vars` in one pass (filled text is not scanned again). Strings go
/// in as they are, other JSON values as JSON. A missing variable is an error naming it.
pub fn fill(text: &str, vars: &Map<String, Value>) -> Result<String, AiError> {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(i) = rest.find("{{") {
        out.push_str(&rest[..i]);
        let after = &rest[i + 2..];
        let Some(end) = after.find("}}") else {
            out.push_str(&rest[i..]);
            return Ok(out);
        };
        let name = after[..end].trim();
        match vars.get(name) {
            Some(Value::String(s)) => out.push_str(s),
            Some(v) => out.push_str(&v.to_string()),
            None => {
                return Err(AiError::invalid_param(
                    name,
                    format!("missing template variable {name:?}"),
                ))
            }
        }
        rest = &after[end + 2..];
    }
    out.push_str(rest);
    Ok(out)
}

/// Small deterministic PRNG (xorshift64*) for weighted picks; the glue supplies the seed.
pub fn xorshift(state: &mut u64) -> u64 {
    let mut x = if *state == 0 {
        0x9E37_79B9_7F4A_7C15
    } else {
        *state
    };
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    *state = x;
    x.wrapping_mul(0x2545_F491_4F6C_DD1D)
}

impl CompiledAiProxy {
    /// The provider declared under `name`, with no model set.
    pub fn provider(&self, name: &str) -> Option<&ProviderTarget> {
        self.providers.get(name)
    }

    fn target(&self, model: &str) -> Option<ProviderTarget> {
        let (p, m) = parse_model_name(model)?;
        let mut t = self.providers.get(p)?.clone();
        t.model = m.to_string();
        Some(t)
    }

    /// The targets to try for the requested model, in order (weighted aliases use `seed`), cut to
    /// `fallback.max_attempts` (1 when fallback is disabled).
    pub fn resolve(&self, requested: &str, seed: u64) -> Result<Vec<ProviderTarget>, AiError> {
        let name = if requested.is_empty() {
            self.config
                .default_model
                .as_deref()
                .ok_or_else(|| AiError::invalid_param("model", "model is required"))?
        } else {
            requested
        };
        let mut targets = match self.config.models.get(name) {
            Some(AliasConfig::One(m)) => self.target(m).into_iter().collect(),
            Some(AliasConfig::Many(a)) => {
                let mut refs: Vec<&TargetRef> = a.targets.iter().collect();
                if a.strategy == Strategy::Weighted {
                    let mut state = seed;
                    let mut ordered = Vec::with_capacity(refs.len());
                    while !refs.is_empty() {
                        let total: u64 = refs.iter().map(|r| r.weight() as u64).sum();
                        let mut pick = xorshift(&mut state) % total.max(1);
                        let mut i = 0;
                        while i + 1 < refs.len() && pick >= refs[i].weight() as u64 {
                            pick -= refs[i].weight() as u64;
                            i += 1;
                        }
                        ordered.push(refs.remove(i));
                    }
                    refs = ordered;
                }
                refs.iter().filter_map(|r| self.target(r.model())).collect()
            }
            None if self.config.allow_provider_models => match self.target(name) {
                Some(t) => vec![t],
                None => return Err(AiError::model_not_found(name)),
            },
            None => return Err(AiError::model_not_found(name)),
        };
        if targets.is_empty() {
            return Err(AiError::model_not_found(name));
        }
        let max = if self.config.fallback.enabled {
            (self.config.fallback.max_attempts)
                .map_or(usize::MAX, |n| usize::try_from(n).unwrap_or(usize::MAX))
        } else {
            1
        };
        targets.truncate(max.max(1));
        Ok(targets)
    }

    /// Whether a failed attempt should move on to the next target (nothing sent to the client yet).
    pub fn should_fall_back(&self, error: &AiError) -> bool {
        self.config.fallback.enabled && error.retryable
    }

    /// Check the client's messages against the prompt guard.
    pub fn check_guard(&self, req: &ChatRequest) -> Result<(), AiError> {
        let Some(g) = &self.config.prompt_guard else {
            return Ok(());
        };
        let users: Vec<&Message> = req.messages.iter().filter(|m| m.role == "user").collect();
        let checked: &[&Message] = if g.all_messages {
            &users
        } else {
            users.last().map(std::slice::from_ref).unwrap_or(&[])
        };
        let reject = || {
            AiError::new(
                400,
                "invalid_request_error",
                Some("prompt_guard"),
                "the prompt was rejected by this route's prompt guard",
            )
        };
        for m in checked {
            let text = m.text_content();
            if self.deny.iter().any(|r| r.is_match(&text)) {
                return Err(reject());
            }
            if !self.allow.is_empty() && !self.allow.iter().any(|r| r.is_match(&text)) {
                return Err(reject());
            }
        }
        Ok(())
    }

    /// Add the configured messages before and after the client's.
    pub fn decorate(&self, req: &mut ChatRequest) {
        let d = &self.config.decorate;
        if d.prepend.is_empty() && d.append.is_empty() {
            return;
        }
        let mut messages = d.prepend.clone();
        messages.append(&mut req.messages);
        messages.extend(d.append.iter().cloned());
        req.messages = messages;
    }

    /// Build the chat request of template `name` from a REST body's fields.
    pub fn fill_template(
        &self,
        name: &str,
        vars: &Map<String, Value>,
    ) -> Result<ChatRequest, AiError> {
        let t = self.config.templates.get(name).ok_or_else(|| {
            AiError::new(
                404,
                "invalid_request_error",
                Some("template_not_found"),
                format!("no template {name:?}"),
            )
        })?;
        let mut req: ChatRequest = serde_json::from_value(Value::Object(t.params.clone()))
            .map_err(|e| AiError::invalid(e.to_string()))?;
        req.model = t
            .model
            .clone()
            .or_else(|| self.config.default_model.clone())
            .unwrap_or_default();
        req.messages = t
            .messages
            .iter()
            .map(|m| {
                let mut m = m.clone();
                m.content = match m.content.take() {
                    Some(Content::Text(s)) => Some(Content::Text(fill(&s, vars)?)),
                    Some(Content::Parts(mut parts)) => {
                        for p in &mut parts {
                            if let Some(t) = &p.text {
                                p.text = Some(fill(t, vars)?);
                            }
                        }
                        Some(Content::Parts(parts))
                    }
                    None => None,
                };
                Ok(m)
            })
            .collect::<Result<_, AiError>>()?;
        Ok(req)
    }

    /// `GET /v1/models/{id}`: an alias or `provider/model` of the list, or any `provider/model` the
    /// route accepts (`allow_provider_models`); else 404 `model_not_found`.
    pub fn model_info(&self, id: &str, created: u64) -> Result<ModelInfo, AiError> {
        if let Some(m) = self
            .models_list(created)
            .data
            .into_iter()
            .find(|m| m.id == id)
        {
            return Ok(m);
        }
        if !self.config.models.contains_key(id) && self.config.allow_provider_models {
            if let Some((p, _)) =
                parse_model_name(id).filter(|(p, _)| self.providers.contains_key(*p))
            {
                return Ok(ModelInfo {
                    id: id.to_string(),
                    object: "model".to_string(),
                    created,
                    owned_by: p.to_string(),
                });
            }
        }
        Err(AiError::model_not_found(id))
    }

    /// `GET /v1/models`: the aliases, then every `provider/model` they name.
    pub fn models_list(&self, created: u64) -> ModelList {
        let mut data: Vec<ModelInfo> = Vec::new();
        let mut push = |id: &str, owner: &str| {
            if !data.iter().any(|m| m.id == id) {
                data.push(ModelInfo {
                    id: id.to_string(),
                    object: "model".to_string(),
                    created,
                    owned_by: owner.to_string(),
                });
            }
        };
        for alias in self.config.models.keys() {
            push(alias, "edgegate");
        }
        for a in self.config.models.values() {
            let names: Vec<&str> = match a {
                AliasConfig::One(m) => vec![m.as_str()],
                AliasConfig::Many(t) => t.targets.iter().map(TargetRef::model).collect(),
            };
            for m in names {
                let owner = parse_model_name(m).map(|(p, _)| p).unwrap_or("");
                push(m, owner);
            }
        }
        ModelList {
            object: "list".to_string(),
            data,
        }
    }
}
