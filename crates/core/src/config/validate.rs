//! Validation of a configuration document. Reports every error at once, each with its JSON path.
//!
//! Steps, each reporting as much as it can:
//! 1. Parse the text as JSON (a syntax error is the only error then, at `$`, with line and column);
//!    duplicate keys in an object are errors too (JSON parsers keep only one of them).
//! 2. Check the top level: an object with only known fields, `format_version` 1.
//! 3. Deserialize each service and each route on its own, so a type error or an unknown field in one
//!    element is reported with its path and does not hide the errors in the others.
//! 4. Check the meaning of the typed values: names, URLs, timeouts, headers, methods, references from
//!    routes to services, then the matching fields of each route (`router::check_route`) and finally
//!    routes that can never match (`router::find_shadowed`, only once everything else is valid).
//!
//! Paths look like `routes[3].paths[0]`, `services[1].headers.x-from`, `format_version`; a map key
//! that is an HTTP token but not a plain identifier is quoted: `services[0].headers["x.y"]`; any other
//! key (it may be a secret pasted in the wrong place) is hidden, only its length said:
//! `services[0].headers[<hidden key, 40 characters>]` (`edgegate_path_error::key_form`). The whole
//! document is `$`. A message that quotes a key builds it by the same rule, where the message is made
//! (`edgegate_path_error::quote_key`): `"x-from"`, or `<hidden key, 40 characters>` unquoted. A
//! message that quotes a name the user wrote (a reference to a service or route, a duplicate name or
//! id) uses the same rule (`quote_name`): `"users"`, or `<hidden name, 40 characters>`.

use super::model::{
    Algorithm, GatewayConfig, HashOn, PluginConfig, RouteConfig, ServiceConfig, TargetConfig,
};
use super::path_error::quote_key;
use super::url::ServiceUrl;
use crate::router;
use serde::de::{self, DeserializeSeed, MapAccess, SeqAccess, Visitor};
use serde::Deserialize;
use serde_json::{Map, Value};
use std::cell::RefCell;
use std::collections::{HashMap, HashSet};
use std::fmt;

/// The only format version that exists.
const FORMAT_VERSION: u32 = 1;
/// Limits that keep validation and routing cheap whatever the document. (The caller limits its size.)
const MAX_SERVICES: usize = 10_000;
const MAX_ROUTES: usize = 100_000;
const MAX_NAME_LEN: usize = 128;
const MAX_TIMEOUT_MS: u64 = 600_000;

const TOP_LEVEL_FIELDS: [&str; 5] = ["$schema", "format_version", "services", "routes", "plugins"];
const MAX_PLUGINS: usize = 10_000;

/// One problem in a configuration document, located by a JSON path such as `routes[3].paths[0]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ValidationError {
    pub path: String,
    pub message: String,
}

impl fmt::Display for ValidationError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.path, self.message)
    }
}

/// Parse JSON text and validate it; on failure return every error found.
pub fn parse_and_validate(text: &str) -> Result<GatewayConfig, Vec<ValidationError>> {
    let mut errors = Vec::new();
    let value = parse_json(text, &mut errors).map_err(|e| vec![e])?;
    let config = check_document(&value, &mut errors);
    match config {
        Some(config) if errors.is_empty() => Ok(config),
        _ => {
            if errors.is_empty() {
                // Unreachable in practice: every way of not building the config records an error.
                errors.push(error(
                    "",
                    "the document is not a valid configuration".into(),
                ));
            }
            Err(errors)
        }
    }
}

fn error(path: &str, message: String) -> ValidationError {
    ValidationError {
        path: if path.is_empty() {
            "$".to_string()
        } else {
            path.to_string()
        },
        message: without_quoted_strings(message),
    }
}

/// serde's type errors quote the offending string (`invalid type: string "Bearer ...", expected a
/// map`). A string in the wrong place can be a credential (a service's `headers` written as one
/// string), and errors are printed by the CLI and logged by the Worker, so the quoted value is left
/// out: `invalid type: string, expected a map`. The path still says where it is.
fn without_quoted_strings(message: String) -> String {
    const QUOTING: [&str; 2] = ["invalid type: string \"", "invalid value: string \""];
    if !QUOTING.iter().any(|p| message.contains(p)) {
        return message;
    }
    let mut out = String::with_capacity(message.len());
    let mut rest = message.as_str();
    while let Some((at, len)) = QUOTING
        .iter()
        .filter_map(|p| rest.find(p).map(|i| (i, p.len())))
        .min()
    {
        // Keep `invalid type: string`, drop ` "...."` (a Rust-escaped string: `\"` inside).
        out.push_str(&rest[..at + len - 2]);
        let quoted = &rest[at + len..];
        let mut end = quoted.len();
        let mut escaped = false;
        for (i, c) in quoted.char_indices() {
            match c {
                _ if escaped => escaped = false,
                '\\' => escaped = true,
                '"' => {
                    end = i + 1;
                    break;
                }
                _ => {}
            }
        }
        rest = &quoted[end..];
    }
    out.push_str(rest);
    out
}

// ---------------------------------------------------------------------------------------------------
// Paths. Internally the root is the empty string; `error` renders it as `$`.

fn key_path(parent: &str, key: &str) -> String {
    use super::path_error::{key_form, KeyForm};
    let parent = match key_form(key) {
        KeyForm::Plain(_) => parent,
        _ if parent.is_empty() => "$",
        _ => parent,
    };
    super::path_error::key_path(parent, key)
}

fn index_path(parent: &str, index: usize) -> String {
    let parent = if parent.is_empty() { "$" } else { parent };
    format!("{parent}[{index}]")
}

/// Append a path relative to `parent` (`paths[0]`, `headers.x`, `[2]`, or empty for `parent` itself).
fn join_path(parent: &str, relative: &str) -> String {
    if relative.is_empty() {
        parent.to_string()
    } else if parent.is_empty() {
        relative.to_string()
    } else if relative.starts_with('[') {
        format!("{parent}{relative}")
    } else {
        format!("{parent}.{relative}")
    }
}

fn path_from_serde(parent: &str, path: &super::path_error::Path) -> String {
    let mut out = parent.to_string();
    for segment in path.iter() {
        out = match segment {
            super::path_error::Segment::Seq { index } => index_path(&out, *index),
            super::path_error::Segment::Map { key } => key_path(&out, key),
            super::path_error::Segment::Enum { variant } => key_path(&out, variant),
            super::path_error::Segment::Unknown => join_path(&out, "?"),
        };
    }
    out
}

fn kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

// ---------------------------------------------------------------------------------------------------
// Step 1: JSON text to a Value, noting duplicate keys (serde_json's Value silently keeps the last one).

/// Where in the document a value is, as a chain on the stack; rendered only when an error needs it.
enum Loc<'a> {
    Root,
    Key(&'a Loc<'a>, &'a str),
    Index(&'a Loc<'a>, usize),
}

impl Loc<'_> {
    fn render(&self) -> String {
        match self {
            Loc::Root => String::new(),
            Loc::Key(parent, key) => key_path(&parent.render(), key),
            Loc::Index(parent, index) => index_path(&parent.render(), *index),
        }
    }
}

struct ValueSeed<'a> {
    at: &'a Loc<'a>,
    duplicates: &'a RefCell<Vec<ValidationError>>,
}

impl<'de> DeserializeSeed<'de> for ValueSeed<'_> {
    type Value = Value;

    fn deserialize<D: de::Deserializer<'de>>(self, deserializer: D) -> Result<Value, D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for ValueSeed<'_> {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_bool<E>(self, v: bool) -> Result<Value, E> {
        Ok(Value::Bool(v))
    }

    fn visit_i64<E>(self, v: i64) -> Result<Value, E> {
        Ok(Value::from(v))
    }

    fn visit_u64<E>(self, v: u64) -> Result<Value, E> {
        Ok(Value::from(v))
    }

    fn visit_f64<E>(self, v: f64) -> Result<Value, E> {
        Ok(Value::from(v))
    }

    fn visit_str<E>(self, v: &str) -> Result<Value, E> {
        Ok(Value::String(v.to_string()))
    }

    fn visit_string<E>(self, v: String) -> Result<Value, E> {
        Ok(Value::String(v))
    }

    fn visit_unit<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_none<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let mut items = Vec::new();
        loop {
            let at = Loc::Index(self.at, items.len());
            let seed = ValueSeed {
                at: &at,
                duplicates: self.duplicates,
            };
            match seq.next_element_seed(seed)? {
                Some(item) => items.push(item),
                None => break,
            }
        }
        Ok(Value::Array(items))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        let mut object = Map::new();
        while let Some(key) = map.next_key::<String>()? {
            let at = Loc::Key(self.at, &key);
            let value = map.next_value_seed(ValueSeed {
                at: &at,
                duplicates: self.duplicates,
            })?;
            if object.contains_key(&key) {
                self.duplicates.borrow_mut().push(error(
                    &at.render(),
                    format!(
                        "duplicate key {} in the same object (only one is allowed)",
                        quote_key(&key, "\"")
                    ),
                ));
            }
            object.insert(key, value);
        }
        Ok(Value::Object(object))
    }
}

fn parse_json(text: &str, errors: &mut Vec<ValidationError>) -> Result<Value, ValidationError> {
    let duplicates = RefCell::new(Vec::new());
    let mut deserializer = serde_json::Deserializer::from_str(text);
    let seed = ValueSeed {
        at: &Loc::Root,
        duplicates: &duplicates,
    };
    let value = seed
        .deserialize(&mut deserializer)
        .and_then(|value| deserializer.end().map(|()| value))
        .map_err(|e| error("", format!("invalid JSON: {e}")))?;
    errors.extend(duplicates.into_inner());
    Ok(value)
}

// ---------------------------------------------------------------------------------------------------
// Steps 2 to 4.

fn check_document(value: &Value, errors: &mut Vec<ValidationError>) -> Option<GatewayConfig> {
    let Some(object) = value.as_object() else {
        errors.push(error(
            "",
            format!(
                "expected a JSON object (the configuration document), found {}",
                kind(value)
            ),
        ));
        return None;
    };
    for key in object.keys() {
        if !TOP_LEVEL_FIELDS.contains(&key.as_str()) {
            errors.push(error(
                &key_path("", key),
                format!(
                    "unknown field {}, expected one of {}",
                    quote_key(key, "`"),
                    TOP_LEVEL_FIELDS.map(|f| format!("`{f}`")).join(", ")
                ),
            ));
        }
    }

    let schema = match object.get("$schema") {
        None => None,
        Some(v) => Option::<String>::deserialize(v)
            .map_err(|e| errors.push(error("$schema", e.to_string())))
            .ok()
            .flatten(),
    };

    let format_version = match object.get("format_version") {
        None => {
            errors.push(error("format_version", "missing field (must be 1)".into()));
            None
        }
        Some(v) => match u32::deserialize(v) {
            Ok(FORMAT_VERSION) => Some(FORMAT_VERSION),
            Ok(n) => {
                errors.push(error(
                    "format_version",
                    format!("unsupported format version {n} (only {FORMAT_VERSION} exists)"),
                ));
                None
            }
            Err(e) => {
                errors.push(error("format_version", format!("{e} (must be 1)")));
                None
            }
        },
    };

    let services = check_services(object.get("services"), errors);
    let routes = check_routes(
        object.get("routes"),
        services.as_ref().map(|s| &s.names),
        errors,
    );

    let plugins = check_plugins(
        object.get("plugins"),
        services.as_ref().map(|s| &s.names),
        routes.as_deref(),
        errors,
    );

    Some(GatewayConfig {
        schema,
        format_version: format_version?,
        services: services?.parsed?,
        routes: routes?,
        plugins: plugins?,
    })
}

/// An array field of the top level, or `None` (after recording an error) when it is not an array or
/// is too long.
fn top_level_array<'v>(
    field: &str,
    value: Option<&'v Value>,
    what: &str,
    max: usize,
    errors: &mut Vec<ValidationError>,
) -> Option<&'v [Value]> {
    match value {
        None => Some(&[]),
        Some(Value::Array(items)) if items.len() > max => {
            errors.push(error(
                field,
                format!("too many {what}: {} (at most {max})", items.len()),
            ));
            None
        }
        Some(Value::Array(items)) => Some(items),
        Some(other) => {
            errors.push(error(
                field,
                format!("expected an array of {what}, found {}", kind(other)),
            ));
            None
        }
    }
}

/// Deserialize one element of `services` or `routes` on its own, reporting the error with its path.
fn deserialize_element<'v, T: Deserialize<'v>>(
    path: &str,
    value: &'v Value,
    errors: &mut Vec<ValidationError>,
) -> Option<T> {
    match super::path_error::deserialize::<T>(value) {
        Ok(t) => Some(t),
        Err(e) => {
            let at = path_from_serde(path, e.path());
            errors.push(error(&at, e.into_inner().to_string()));
            None
        }
    }
}

struct Services {
    /// Every service name in the document, including those of services with other errors, so a
    /// route naming them is not also reported as naming an unknown service.
    names: HashSet<String>,
    /// All services, or `None` when at least one could not be deserialized.
    parsed: Option<Vec<ServiceConfig>>,
}

fn check_services(value: Option<&Value>, errors: &mut Vec<ValidationError>) -> Option<Services> {
    let items = top_level_array("services", value, "services", MAX_SERVICES, errors)?;
    let names = items
        .iter()
        .filter_map(|item| item.get("name").and_then(Value::as_str))
        .map(str::to_string)
        .collect();
    let mut parsed = Some(Vec::with_capacity(items.len()));
    let mut first_use: HashMap<String, usize> = HashMap::new();
    for (i, item) in items.iter().enumerate() {
        let path = index_path("services", i);
        let Some(service) = deserialize_element::<ServiceConfig>(&path, item, errors) else {
            parsed = None;
            continue;
        };
        check_name(&key_path(&path, "name"), &service.name, errors);
        if let Some(first) = first_use.get(&service.name) {
            errors.push(error(
                &key_path(&path, "name"),
                format!(
                    "duplicate service name {} (first used at services[{first}])",
                    quote_name(&service.name)
                ),
            ));
        } else {
            first_use.insert(service.name.clone(), i);
        }
        check_service(&path, &service, errors);
        if let Some(parsed) = parsed.as_mut() {
            parsed.push(service);
        }
    }
    Some(Services { names, parsed })
}

fn check_service(path: &str, service: &ServiceConfig, errors: &mut Vec<ValidationError>) {
    match (service.url.is_empty(), service.targets.is_empty()) {
        (false, true) => {
            if let Err(e) = ServiceUrl::parse(&service.url) {
                errors.push(error(&key_path(path, "url"), e));
            }
        }
        (true, true) => errors.push(error(
            path,
            "missing field `url` (or `targets`, for several origins)".into(),
        )),
        (false, false) => errors.push(error(
            &key_path(path, "targets"),
            "give either `url` (one origin) or `targets` (several), not both".into(),
        )),
        (true, false) => check_targets(&key_path(path, "targets"), &service.targets, errors),
    }
    check_balancing(path, service, errors);
    if !(1..=MAX_TIMEOUT_MS).contains(&service.timeout_ms) {
        errors.push(error(
            &key_path(path, "timeout_ms"),
            format!(
                "{} is out of range (1 to {MAX_TIMEOUT_MS} milliseconds)",
                service.timeout_ms
            ),
        ));
    }
    let headers_path = key_path(path, "headers");
    let mut seen: HashMap<String, &str> = HashMap::new();
    for (name, value) in &service.headers {
        let at = key_path(&headers_path, name);
        if !check_header_name(&at, name, &mut seen, errors) {
            continue;
        }
        let lower = name.to_ascii_lowercase();
        if lower == "host" {
            errors.push(error(
                &at,
                "a service cannot set \"host\" (the service URL gives it; see the route's \
                 preserve_host)"
                    .into(),
            ));
        } else if crate::proxy::HOP_BY_HOP.contains(&lower.as_str()) {
            errors.push(error(
                &at,
                format!(
                    "{} is a hop-by-hop header and cannot be set on a service",
                    quote_key(name, "\"")
                ),
            ));
        }
        if value.contains(['\r', '\n', '\0']) {
            errors.push(error(
                &at,
                "a header value cannot contain CR, LF or NUL characters".into(),
            ));
        }
    }
}

fn check_routes(
    value: Option<&Value>,
    service_names: Option<&HashSet<String>>,
    errors: &mut Vec<ValidationError>,
) -> Option<Vec<RouteConfig>> {
    let items = top_level_array("routes", value, "routes", MAX_ROUTES, errors)?;
    let errors_before = errors.len();
    let mut parsed = Some(Vec::with_capacity(items.len()));
    let mut first_use: HashMap<String, usize> = HashMap::new();
    for (i, item) in items.iter().enumerate() {
        let path = index_path("routes", i);
        let Some(route) = deserialize_element::<RouteConfig>(&path, item, errors) else {
            parsed = None;
            continue;
        };
        let name_path = key_path(&path, "name");
        check_name(&name_path, &route.name, errors);
        if let Some(first) = first_use.get(&route.name) {
            errors.push(error(
                &name_path,
                format!(
                    "duplicate route name {} (first used at routes[{first}])",
                    quote_name(&route.name)
                ),
            ));
        } else {
            first_use.insert(route.name.clone(), i);
        }
        // Without a usable service list (not an array, too long) every reference would look unknown.
        if !route.service.is_empty() {
            if let Some(names) = service_names {
                if !names.contains(&route.service) {
                    errors.push(error(
                        &key_path(&path, "service"),
                        format!("unknown service {}", quote_name(&route.service)),
                    ));
                }
            }
        }
        check_split(&path, &route, service_names, errors);
        check_methods(&key_path(&path, "methods"), &route.methods, errors);
        // The router checks the syntax of header names and values; names that differ only in case
        // would be two conditions on one header.
        let headers_path = key_path(&path, "headers");
        let mut seen: HashMap<String, &str> = HashMap::new();
        for name in route.headers.keys() {
            match seen.get(&name.to_ascii_lowercase()) {
                Some(first) => errors.push(error(
                    &key_path(&headers_path, name),
                    format!(
                        "header {} is the same as {} (header names ignore case)",
                        quote_key(name, "\""),
                        quote_key(first, "\"")
                    ),
                )),
                None => {
                    seen.insert(name.to_ascii_lowercase(), name);
                }
            }
        }
        for (relative, message) in router::check_route(&route) {
            errors.push(error(&join_path(&path, &relative), message));
        }
        if let Some(parsed) = parsed.as_mut() {
            parsed.push(route);
        }
    }
    let routes = parsed?;
    // Shadowing compares compiled match conditions, so it needs every route valid.
    if errors.len() == errors_before {
        for (i, message) in router::find_shadowed(&routes) {
            errors.push(error(&index_path("routes", i), message));
        }
    }
    Some(routes)
}

/// Plugins: each element on its own, its references to routes and services, then the plugin's own
/// settings through `plugins::parse` (errors land under `plugins[i].config`).
fn check_plugins(
    value: Option<&Value>,
    service_names: Option<&HashSet<String>>,
    routes: Option<&[RouteConfig]>,
    errors: &mut Vec<ValidationError>,
) -> Option<Vec<PluginConfig>> {
    let items = top_level_array("plugins", value, "plugins", MAX_PLUGINS, errors)?;
    let mut parsed = Some(Vec::with_capacity(items.len()));
    for (i, item) in items.iter().enumerate() {
        let path = index_path("plugins", i);
        let Some(plugin) = deserialize_element::<PluginConfig>(&path, item, errors) else {
            parsed = None;
            continue;
        };
        if let (Some(names), Some(service)) = (service_names, &plugin.service) {
            if !names.contains(service) {
                errors.push(error(
                    &key_path(&path, "service"),
                    format!("unknown service {}", quote_name(service)),
                ));
            }
        }
        if let (Some(routes), Some(route)) = (routes, &plugin.route) {
            if !routes.iter().any(|r| &r.name == route) {
                errors.push(error(
                    &key_path(&path, "route"),
                    format!("unknown route {}", quote_name(route)),
                ));
            }
        }
        if let Some(consumer) = &plugin.consumer {
            check_name(&key_path(&path, "consumer"), consumer, errors);
            if crate::plugins::registry::find(&plugin.name).is_some_and(|d| d.no_consumer) {
                errors.push(error(
                    &key_path(&path, "consumer"),
                    format!(
                        "{} cannot be scoped to a consumer, as in Kong (it runs before the consumer \
                         is known): attach it globally, to a service or to a route",
                        plugin.name
                    ),
                ));
            }
        }
        match crate::plugins::parse(&plugin.name, &plugin.config) {
            Ok(_) => {}
            Err(crate::plugins::PluginError::UnknownName(message)) => {
                errors.push(error(&key_path(&path, "name"), message))
            }
            Err(crate::plugins::PluginError::Config(list)) => {
                let config_path = key_path(&path, "config");
                for (relative, message) in list {
                    errors.push(error(&join_path(&config_path, &relative), message));
                }
            }
        }
        if let Some(id) = &plugin.id {
            check_plugin_id(&key_path(&path, "id"), id, errors);
        }
        if let Some(parsed) = parsed.as_mut() {
            parsed.push(plugin);
        }
    }
    if let Some(plugins) = &parsed {
        check_plugin_keys(plugins, errors);
    }
    parsed
}

/// An explicit plugin `id`: like a name, at most `MAX_ID_LEN` characters.
fn check_plugin_id(path: &str, id: &str, errors: &mut Vec<ValidationError>) {
    let before = errors.len();
    check_name(path, id, errors);
    if errors.len() == before && id.len() > crate::plugins::MAX_ID_LEN {
        errors.push(error(
            path,
            format!(
                "an id can be at most {} characters long (this one has {})",
                crate::plugins::MAX_ID_LEN,
                id.len()
            ),
        ));
    }
}

/// Two instances of one scope cannot have the same id (explicit or derived from the name), since
/// rate-limit counters belong to `<scope>/<id>`.
fn check_plugin_keys(plugins: &[PluginConfig], errors: &mut Vec<ValidationError>) {
    let keys = crate::plugins::instance_keys(plugins);
    let ids = crate::plugins::instance_ids(plugins);
    let mut first: HashMap<&str, usize> = HashMap::new();
    for (i, key) in keys.iter().enumerate() {
        match first.get(key.as_str()) {
            None => {
                first.insert(key, i);
            }
            Some(&j) => {
                // Report it on the instance that set an explicit id (the later one if both did).
                let at = if plugins[i].id.is_some() { i } else { j };
                let other = if at == i { j } else { i };
                errors.push(error(
                    &key_path(&index_path("plugins", at), "id"),
                    format!(
                        "id {} is already used by plugins[{other}] in the same scope ({}); ids must be unique within a scope",
                        quote_name(&ids[at]),
                        crate::plugins::scope(&plugins[at])
                    ),
                ));
            }
        }
    }
}

/// A name (of a service, route, plugin id, method...) as an error message quotes it: between double
/// quotes when it looks like a name by the rule of keys, otherwise `<hidden name, N characters>` (it
/// may be a secret pasted in the wrong place).
pub(crate) fn quote_name(name: &str) -> super::path_error::QuotedKey<'_> {
    super::path_error::quote_as(name, "\"", "name")
}

fn check_name(path: &str, name: &str, errors: &mut Vec<ValidationError>) {
    if name.is_empty() {
        errors.push(error(path, "a name cannot be empty".into()));
        return;
    }
    if let Some(bad) = name
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-')))
    {
        // Quoted only when it looks like a name: it may be anything pasted in the wrong place.
        errors.push(error(
            path,
            format!(
                "{} contains {bad:?}; a name may only contain letters, digits, '.', '_' and '-'",
                super::path_error::quote_as(name, "\"", "name")
            ),
        ));
    } else if name.len() > MAX_NAME_LEN {
        errors.push(error(
            path,
            format!(
                "a name can be at most {MAX_NAME_LEN} characters long (this one has {})",
                name.len()
            ),
        ));
    }
}

/// RFC 9110 `token`: the syntax of header names and methods.
fn is_token(s: &str) -> bool {
    !s.is_empty()
        && s.bytes().all(|b| {
            b.is_ascii_alphanumeric()
                || matches!(
                    b,
                    b'!' | b'#'
                        | b'$'
                        | b'%'
                        | b'&'
                        | b'\''
                        | b'*'
                        | b'+'
                        | b'-'
                        | b'.'
                        | b'^'
                        | b'_'
                        | b'`'
                        | b'|'
                        | b'~'
                )
        })
}

/// Check a header name: a token, and not the same as an earlier name of the same map ignoring case
/// (`seen` maps lower-case names to their first spelling). Returns whether it is a valid token.
fn check_header_name<'n>(
    path: &str,
    name: &'n str,
    seen: &mut HashMap<String, &'n str>,
    errors: &mut Vec<ValidationError>,
) -> bool {
    if name.is_empty() {
        errors.push(error(path, "a header name cannot be empty".into()));
        return false;
    }
    if !is_token(name) {
        errors.push(error(
            path,
            // Not quoted: it may be a whole `Name: secret` line.
            format!(
                "not a valid header name ({}; allowed: letters, digits and \
                 !#$%&'*+-.^_`|~)",
                crate::plugins::transform::bad_name_char(name)
            ),
        ));
        return false;
    }
    match seen.get(&name.to_ascii_lowercase()) {
        Some(first) => errors.push(error(
            path,
            format!(
                "header {} is the same as {} (header names ignore case)",
                quote_key(name, "\""),
                quote_key(first, "\"")
            ),
        )),
        None => {
            seen.insert(name.to_ascii_lowercase(), name);
        }
    }
    true
}

fn check_methods(path: &str, methods: &[String], errors: &mut Vec<ValidationError>) {
    let mut first_use: HashMap<&str, usize> = HashMap::new();
    for (j, method) in methods.iter().enumerate() {
        let at = index_path(path, j);
        if method.is_empty() {
            errors.push(error(&at, "a method cannot be empty".into()));
        } else if !is_token(method) {
            errors.push(error(
                &at,
                format!(
                    // Not quoted: a method that is not a token may be anything pasted there.
                    "not a valid HTTP method ({}; allowed: letters, digits and !#$%&'*+-.^_`|~)",
                    crate::plugins::transform::bad_name_char(method)
                ),
            ));
        } else if method.bytes().any(|b| b.is_ascii_lowercase()) {
            errors.push(error(
                &at,
                format!(
                    "methods are upper case: write {:?}, not {method:?}",
                    method.to_ascii_uppercase()
                ),
            ));
        } else if let Some(first) = first_use.get(method.as_str()) {
            errors.push(error(
                &at,
                format!("duplicate method {method:?} (already at methods[{first}])"),
            ));
        } else {
            first_use.insert(method, j);
        }
    }
}

// ---------------------------------------------------------------------------------------------------
// Upstreams: targets, balancing, health checks, retries, traffic splits (docs/upstreams.md).

/// At most this many targets per service, and services per route split.
pub const MAX_TARGETS: usize = 64;
const MAX_WEIGHT: u64 = 65_535;
const MAX_RETRIES: u64 = 10;
const MAX_THRESHOLD: u64 = 255;
const MAX_HEALTH_MS: u64 = 3_600_000;

fn check_targets(path: &str, targets: &[TargetConfig], errors: &mut Vec<ValidationError>) {
    if targets.len() > MAX_TARGETS {
        errors.push(error(
            path,
            format!(
                "too many targets: {} (at most {MAX_TARGETS})",
                targets.len()
            ),
        ));
        return;
    }
    let mut first: Option<(usize, String)> = None;
    let mut seen: HashMap<String, usize> = HashMap::new();
    for (j, t) in targets.iter().enumerate() {
        let at = index_path(path, j);
        match ServiceUrl::parse(&t.url) {
            Err(e) => errors.push(error(&key_path(&at, "url"), e)),
            Ok(url) => {
                let origin = url.origin();
                // An explicit default port names the same origin as none.
                let same = match (url.scheme.as_str(), url.port) {
                    ("http", Some(80)) | ("https", Some(443)) => {
                        format!("{}://{}", url.scheme, url.host)
                    }
                    _ => origin.clone(),
                };
                if let Some(k) = seen.get(&same) {
                    errors.push(error(
                        &key_path(&at, "url"),
                        format!("the same origin as targets[{k}] ({origin})"),
                    ));
                } else {
                    seen.insert(same, j);
                }
                match &first {
                    None => first = Some((j, url.base_path)),
                    Some((k, base)) if *base != url.base_path => errors.push(error(
                        &key_path(&at, "url"),
                        format!(
                            "base path {:?} differs from targets[{k}]'s {base:?}; the targets of a service share one base path",
                            url.base_path
                        ),
                    )),
                    Some(_) => {}
                }
            }
        }
        check_weight(&key_path(&at, "weight"), t.weight, errors);
    }
    if targets.iter().all(|t| t.weight == 0) {
        errors.push(error(
            path,
            "at least one target needs a weight above 0".into(),
        ));
    }
}

fn check_weight(path: &str, weight: u64, errors: &mut Vec<ValidationError>) {
    if weight > MAX_WEIGHT {
        errors.push(error(
            path,
            format!("{weight} is out of range (0 to {MAX_WEIGHT})"),
        ));
    }
}

fn check_token_name(path: &str, name: &str, what: &str, errors: &mut Vec<ValidationError>) {
    if !is_token(name) {
        errors.push(error(
            path,
            // Not quoted: it may be a whole `Name: secret` line.
            format!(
                "not a valid {what} name ({}; allowed: letters, digits and !#$%&'*+-.^_`|~)",
                crate::plugins::transform::bad_name_char(name)
            ),
        ));
    }
}

/// `hash_on` with its `hash_on_header` / `hash_on_cookie` (`prefix` is `hash_on` or
/// `hash_fallback`): the name it needs is there, valid, and no other is.
fn check_hash_names(
    path: &str,
    prefix: &str,
    on: HashOn,
    header: Option<&String>,
    cookie: Option<(&str, Option<&String>)>,
    errors: &mut Vec<ValidationError>,
) {
    let header_field = format!("{prefix}_header");
    match (on, header) {
        (HashOn::Header, None) => errors.push(error(
            &key_path(path, &header_field),
            format!("missing: `{prefix}: header` needs the header's name here"),
        )),
        (HashOn::Header, Some(h)) => {
            check_token_name(&key_path(path, &header_field), h, "header", errors)
        }
        (_, Some(_)) => errors.push(error(
            &key_path(path, &header_field),
            format!("only used with `{prefix}: header`"),
        )),
        (_, None) => {}
    }
    if let Some((cookie_field, cookie)) = cookie {
        if on == HashOn::Cookie {
            match cookie {
                None => errors.push(error(
                    &key_path(path, cookie_field),
                    format!("missing: `{prefix}: cookie` needs the cookie's name here"),
                )),
                Some(c) => check_token_name(&key_path(path, cookie_field), c, "cookie", errors),
            }
        }
    }
}

fn check_balancing(path: &str, s: &ServiceConfig, errors: &mut Vec<ValidationError>) {
    let hashing = s.algorithm == Algorithm::ConsistentHashing;
    if hashing && s.hash_on == HashOn::None {
        errors.push(error(
            &key_path(path, "hash_on"),
            "`algorithm: consistent-hashing` needs `hash_on` (consumer, ip, header, cookie or path)".into(),
        ));
    }
    if !hashing && s.hash_on != HashOn::None {
        errors.push(error(
            &key_path(path, "hash_on"),
            "`hash_on` is only used with `algorithm: consistent-hashing`".into(),
        ));
    }
    check_hash_names(
        path,
        "hash_on",
        s.hash_on,
        s.hash_on_header.as_ref(),
        None,
        errors,
    );
    check_hash_names(
        path,
        "hash_fallback",
        s.hash_fallback,
        s.hash_fallback_header.as_ref(),
        None,
        errors,
    );
    let cookie_used = s.hash_on == HashOn::Cookie || s.hash_fallback == HashOn::Cookie;
    match (&s.hash_on_cookie, cookie_used) {
        (None, true) => errors.push(error(
            &key_path(path, "hash_on_cookie"),
            "missing: hashing on `cookie` needs the cookie's name here".into(),
        )),
        (Some(c), true) => check_token_name(&key_path(path, "hash_on_cookie"), c, "cookie", errors),
        (Some(_), false) => errors.push(error(
            &key_path(path, "hash_on_cookie"),
            "only used with `hash_on: cookie` or `hash_fallback: cookie`".into(),
        )),
        (None, false) => {}
    }
    if s.hash_fallback != HashOn::None {
        let at = key_path(path, "hash_fallback");
        if s.hash_on == HashOn::None || s.hash_on == HashOn::Cookie {
            errors.push(error(
                &at,
                "a fallback needs `hash_on` set to consumer, ip, header or path".into(),
            ));
        } else if s.hash_fallback == s.hash_on
            && (s.hash_on != HashOn::Header || s.hash_on_header == s.hash_fallback_header)
        {
            errors.push(error(&at, "the fallback is the same as `hash_on`".into()));
        }
    }
    if s.retries > MAX_RETRIES {
        errors.push(error(
            &key_path(path, "retries"),
            format!("{} is out of range (0 to {MAX_RETRIES})", s.retries),
        ));
    }
    if let Some(h) = &s.healthchecks {
        let p = key_path(&key_path(path, "healthchecks"), "passive");
        let u = &h.passive.unhealthy;
        let up = key_path(&p, "unhealthy");
        for (name, v) in [
            ("http_failures", u.http_failures),
            ("tcp_failures", u.tcp_failures),
            ("timeouts", u.timeouts),
        ] {
            if v > MAX_THRESHOLD {
                errors.push(error(
                    &key_path(&up, name),
                    format!("{v} is out of range (0 to {MAX_THRESHOLD}; 0 turns it off)"),
                ));
            }
        }
        for (j, status) in u.http_statuses.iter().enumerate() {
            if !(100..=999).contains(status) {
                errors.push(error(
                    &index_path(&key_path(&up, "http_statuses"), j),
                    format!("{status} is not an HTTP status (100 to 999)"),
                ));
            }
        }
        let successes = h.passive.healthy.successes;
        if !(1..=MAX_THRESHOLD).contains(&successes) {
            errors.push(error(
                &key_path(&key_path(&p, "healthy"), "successes"),
                format!("{successes} is out of range (1 to {MAX_THRESHOLD})"),
            ));
        }
        for (name, v) in [
            ("window_ms", h.passive.window_ms),
            ("cooldown_ms", h.passive.cooldown_ms),
        ] {
            if !(1..=MAX_HEALTH_MS).contains(&v) {
                errors.push(error(
                    &key_path(&p, name),
                    format!("{v} is out of range (1 to {MAX_HEALTH_MS} milliseconds)"),
                ));
            }
        }
    }
}

/// A route's `services` (traffic split) and its hash options.
fn check_split(
    path: &str,
    route: &RouteConfig,
    service_names: Option<&HashSet<String>>,
    errors: &mut Vec<ValidationError>,
) {
    let split = !route.services.is_empty();
    match (route.service.is_empty(), split) {
        (true, false) => errors.push(error(
            path,
            "missing field `service` (or `services`, to split traffic)".into(),
        )),
        (false, true) => errors.push(error(
            &key_path(path, "services"),
            "give either `service` or `services`, not both".into(),
        )),
        _ => {}
    }
    if split {
        let sp = key_path(path, "services");
        if route.services.len() > MAX_TARGETS {
            errors.push(error(
                &sp,
                format!(
                    "too many services: {} (at most {MAX_TARGETS})",
                    route.services.len()
                ),
            ));
        }
        let mut seen: HashMap<&str, usize> = HashMap::new();
        for (j, w) in route.services.iter().enumerate() {
            let at = index_path(&sp, j);
            if let Some(names) = service_names {
                if !names.contains(&w.name) {
                    errors.push(error(
                        &key_path(&at, "name"),
                        format!("unknown service {}", quote_name(&w.name)),
                    ));
                }
            }
            if let Some(k) = seen.get(w.name.as_str()) {
                errors.push(error(
                    &key_path(&at, "name"),
                    format!(
                        "service {} is already at services[{k}]",
                        quote_name(&w.name)
                    ),
                ));
            } else {
                seen.insert(&w.name, j);
            }
            check_weight(&key_path(&at, "weight"), w.weight, errors);
        }
        if route.services.iter().all(|w| w.weight == 0) {
            errors.push(error(
                &sp,
                "at least one service needs a weight above 0".into(),
            ));
        }
    } else if route.hash_on != HashOn::None {
        errors.push(error(
            &key_path(path, "hash_on"),
            "`hash_on` on a route is only used with `services` (a traffic split)".into(),
        ));
    }
    if route.hash_on == HashOn::Consumer {
        errors.push(error(
            &key_path(path, "hash_on"),
            "a route picks its service before plugins identify the consumer; use ip, header, cookie or path".into(),
        ));
    }
    check_hash_names(
        path,
        "hash_on",
        route.hash_on,
        route.hash_on_header.as_ref(),
        Some(("hash_on_cookie", route.hash_on_cookie.as_ref())),
        errors,
    );
    if route.hash_on != HashOn::Cookie && route.hash_on_cookie.is_some() {
        errors.push(error(
            &key_path(path, "hash_on_cookie"),
            "only used with `hash_on: cookie`".into(),
        ));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    #[cfg(target_arch = "wasm32")]
    use wasm_bindgen_test::wasm_bindgen_test as test;

    /// A count means the same on every target. The CLI validates natively (64-bit `usize`), the
    /// Worker on wasm32 (32-bit `usize`): a `usize` field would take 5000000000 in the CLI and make
    /// the Worker refuse the version. Config counts are `u64`.
    #[test]
    fn large_counts_are_read_alike_on_64_and_32_bit_targets() {
        use crate::plugins::parse;
        let big = 5_000_000_000u64;
        // Refused alike, by the documented bound rather than by the integer's width.
        let Err(crate::plugins::PluginError::Config(errors)) =
            parse("jwt", &json!({ "max_token_bytes": big }))
        else {
            panic!("max_token_bytes {big} accepted")
        };
        assert_eq!(
            errors,
            [(
                "max_token_bytes".to_string(),
                "must be between 64 and 65536".to_string()
            )]
        );
        let ai = json!({
            "providers": {"local": {"kind": "openai", "base_url": "http://127.0.0.1:9/v1/"}},
            "models": {},
            "fallback": {"max_attempts": big}
        });
        assert!(parse("ai-proxy", &ai).is_ok());
    }

    /// A valid document to start from; tests change one thing and look at the errors.
    fn base() -> Value {
        json!({
            "format_version": 1,
            "services": [
                {"name": "echo", "url": "http://127.0.0.1:9001/base", "timeout_ms": 5000,
                 "headers": {"x-from": "edgegate"}},
                {"name": "other", "url": "https://other.example.com"}
            ],
            "routes": [
                {"name": "users", "service": "echo", "paths": ["/users"], "methods": ["GET"]},
                {"name": "health", "service": "other", "paths": ["=/health"]}
            ]
        })
    }

    fn errors_of(doc: &Value) -> Vec<String> {
        match parse_and_validate(&doc.to_string()) {
            Ok(_) => Vec::new(),
            Err(errors) => errors.iter().map(ToString::to_string).collect(),
        }
    }

    /// Exactly one error, at `path`, whose message contains `fragment`.
    #[track_caller]
    fn assert_one_error(doc: &Value, path: &str, fragment: &str) {
        let text = doc.to_string();
        let errors = parse_and_validate(&text).expect_err("document should be rejected");
        assert_eq!(errors.len(), 1, "expected one error, got {errors:#?}");
        assert_eq!(errors[0].path, path, "{errors:#?}");
        assert!(
            errors[0].message.contains(fragment),
            "message {:?} should contain {fragment:?}",
            errors[0].message
        );
    }

    #[track_caller]
    fn assert_text_error(text: &str, path: &str, fragment: &str) {
        let errors = parse_and_validate(text).expect_err("document should be rejected");
        assert_eq!(errors.len(), 1, "expected one error, got {errors:#?}");
        assert_eq!(errors[0].path, path, "{errors:#?}");
        assert!(
            errors[0].message.contains(fragment),
            "message {:?} should contain {fragment:?}",
            errors[0].message
        );
    }

    #[test]
    fn valid_document_parses_with_defaults() {
        let config = parse_and_validate(&base().to_string()).unwrap();
        assert_eq!(config.format_version, 1);
        assert_eq!(config.services.len(), 2);
        assert_eq!(config.services[1].timeout_ms, 60_000);
        assert!(config.services[1].headers.is_empty());
        let route = &config.routes[1];
        assert_eq!(route.service, "other");
        assert!(route.strip_path && !route.preserve_host);
        assert_eq!((route.priority, route.rewrite.as_ref()), (0, None));
        assert_eq!(config.schema, None);
    }

    #[test]
    fn example_from_the_documentation_is_valid() {
        let doc = json!({"format_version": 1,
            "services": [{"name": "echo", "url": "http://127.0.0.1:9001/base", "timeout_ms": 5000,
                          "headers": {"x-from": "edgegate"}}],
            "routes": [{"name": "users", "service": "echo", "hosts": ["api.example.com", "*.example.com"],
                        "paths": ["/users/{id}", "/api", "=/health", "~^/v[0-9]+/items$"],
                        "methods": ["GET"], "headers": {"x-env": ["prod", "~^stag"]}, "priority": 0,
                        "strip_path": true, "preserve_host": false, "rewrite": "/v2/users"}]});
        assert_eq!(errors_of(&doc), Vec::<String>::new());
    }

    #[test]
    fn empty_document_with_only_the_version_is_valid() {
        let config = parse_and_validate(r#"{"format_version": 1}"#).unwrap();
        assert!(config.services.is_empty() && config.routes.is_empty());
        let config = parse_and_validate(
            r#"{"$schema": "../docs/config.schema.json", "format_version": 1, "services": [], "routes": []}"#,
        )
        .unwrap();
        assert_eq!(config.schema.as_deref(), Some("../docs/config.schema.json"));
    }

    // --- JSON syntax and top level -------------------------------------------------------------

    #[test]
    fn syntax_error_is_one_error_at_root_with_line_and_column() {
        assert_text_error(
            "{\n  \"format_version\": 1,\n  \"services\": [\n}",
            "$",
            "line 4 column 1",
        );
        assert_text_error("", "$", "invalid JSON");
        assert_text_error(
            r#"{"format_version": 1} trailing"#,
            "$",
            "trailing characters",
        );
    }

    #[test]
    fn top_level_must_be_an_object() {
        assert_text_error("[1, 2]", "$", "expected a JSON object");
        assert_text_error("\"config\"", "$", "found a string");
        assert_text_error("null", "$", "found null");
    }

    #[test]
    fn unknown_top_level_field_is_named_with_expected_ones() {
        let mut doc = base();
        doc["rotues"] = json!([]);
        assert_one_error(
            &doc,
            "rotues",
            "unknown field `rotues`, expected one of `$schema`, `format_version`, `services`, `routes`, `plugins`",
        );
        let mut doc = base();
        doc["a b"] = json!(1);
        assert_one_error(
            &doc,
            "$[<hidden key, 3 characters>]",
            "unknown field `<hidden key, 3 characters>`",
        );
    }

    #[test]
    fn schema_link_must_be_a_string() {
        let mut doc = base();
        doc["$schema"] = json!(5);
        assert_one_error(&doc, "$schema", "expected a string");
    }

    #[test]
    fn format_version_must_be_present_and_1() {
        let mut doc = base();
        doc.as_object_mut().unwrap().remove("format_version");
        assert_one_error(&doc, "format_version", "missing");
        doc["format_version"] = json!(2);
        assert_one_error(&doc, "format_version", "unsupported format version 2");
        doc["format_version"] = json!("1");
        assert_one_error(&doc, "format_version", "invalid type: string, expected u32");
        doc["format_version"] = json!(1.5);
        assert_one_error(&doc, "format_version", "invalid type: floating point");
    }

    #[test]
    fn duplicate_keys_are_reported_with_their_path() {
        let text = r#"{"format_version": 1, "services": [{"name": "a", "url": "http://a", "url": "http://b"}],
                       "routes": [], "routes": []}"#;
        let errors: Vec<String> = parse_and_validate(text)
            .unwrap_err()
            .iter()
            .map(ToString::to_string)
            .collect();
        assert_eq!(
            errors,
            [
                "services[0].url: duplicate key \"url\" in the same object (only one is allowed)",
                "routes: duplicate key \"routes\" in the same object (only one is allowed)",
            ]
        );
    }

    #[test]
    fn services_and_routes_must_be_arrays() {
        let mut doc = base();
        doc["services"] = json!({"name": "echo"});
        let errors = errors_of(&doc);
        // Routes are still checked, but not reported as naming unknown services.
        assert_eq!(
            errors,
            ["services: expected an array of services, found an object"]
        );
        let mut doc = base();
        doc["routes"] = json!(null);
        assert_one_error(&doc, "routes", "expected an array of routes, found null");
    }

    #[test]
    fn too_many_services_or_routes() {
        let mut doc = base();
        doc["services"] = Value::Array(vec![json!({}); MAX_SERVICES + 1]);
        doc["routes"] = json!([]);
        assert_one_error(&doc, "services", "too many services: 10001 (at most 10000)");
        let mut doc = base();
        doc["routes"] = Value::Array(vec![json!(0); MAX_ROUTES + 1]);
        assert_one_error(&doc, "routes", "too many routes: 100001 (at most 100000)");
    }

    // --- per-element deserialization -------------------------------------------------------------

    #[test]
    fn unknown_service_field_names_it_and_the_expected_ones() {
        let mut doc = base();
        doc["services"][1]["timeout"] = json!(5);
        assert_one_error(
            &doc,
            "services[1].timeout",
            "unknown field `timeout`, expected one of `name`, `url`, `targets`, `algorithm`",
        );
    }

    #[test]
    fn unknown_route_field_names_it_and_the_expected_ones() {
        let mut doc = base();
        doc["routes"][0]["path"] = json!("/x");
        assert_one_error(
            &doc,
            "routes[0].path",
            "unknown field `path`, expected one of `name`",
        );
    }

    #[test]
    fn missing_required_fields_are_reported_at_the_element() {
        let mut doc = base();
        doc["services"][0].as_object_mut().unwrap().remove("url");
        assert_one_error(&doc, "services[0]", "missing field `url`");
        let mut doc = base();
        doc["routes"][1].as_object_mut().unwrap().remove("service");
        assert_one_error(&doc, "routes[1]", "missing field `service`");
    }

    #[test]
    fn type_errors_have_the_path_of_the_value() {
        let mut doc = base();
        doc["services"][0]["timeout_ms"] = json!("5s");
        assert_one_error(
            &doc,
            "services[0].timeout_ms",
            "invalid type: string, expected u64",
        );
        let mut doc = base();
        doc["routes"][0]["paths"][0] = json!(7);
        assert_one_error(&doc, "routes[0].paths[0]", "invalid type: integer `7`");
        let mut doc = base();
        doc["routes"][0]["headers"] = json!({"x-env": "prod"});
        assert_one_error(&doc, "routes[0].headers.x-env", "expected a sequence");
        let mut doc = base();
        doc["services"][0]["headers"] = json!({"x-n": 1});
        assert_one_error(&doc, "services[0].headers.x-n", "expected a string");
        let mut doc = base();
        doc["routes"][1] = json!("health");
        assert_one_error(
            &doc,
            "routes[1]",
            "invalid type: string, expected struct RouteConfig",
        );
        let mut doc = base();
        doc["routes"][0]["priority"] = json!(3_000_000_000u64);
        assert_one_error(&doc, "routes[0].priority", "invalid value");
        let mut doc = base();
        doc["routes"][0]["strip_path"] = json!("yes");
        assert_one_error(&doc, "routes[0].strip_path", "expected a boolean");
    }

    #[test]
    fn route_of_a_broken_service_is_not_reported_as_unknown() {
        let mut doc = base();
        doc["services"][0]["timeout_ms"] = json!(-1);
        assert_one_error(
            &doc,
            "services[0].timeout_ms",
            "invalid value: integer `-1`",
        );
    }

    // --- names -----------------------------------------------------------------------------------

    #[test]
    fn names_cannot_be_empty() {
        let mut doc = base();
        doc["services"][1]["name"] = json!("");
        doc["routes"][1]["service"] = json!("echo");
        assert_one_error(&doc, "services[1].name", "cannot be empty");
        // An empty `service` on a route is no service at all (`services` may be given instead).
        let mut doc = base();
        doc["routes"][1]["service"] = json!("");
        assert_one_error(&doc, "routes[1]", "missing field `service` (or `services`");
        let mut doc = base();
        doc["routes"][0]["name"] = json!("");
        assert_one_error(&doc, "routes[0].name", "cannot be empty");
    }

    #[test]
    fn names_only_use_letters_digits_dot_underscore_dash() {
        let mut doc = base();
        doc["routes"][1]["name"] = json!("health check");
        assert_one_error(
            &doc,
            "routes[1].name",
            "<hidden name, 12 characters> contains ' '",
        );
        doc["routes"][1]["name"] = json!("health+check");
        assert_one_error(&doc, "routes[1].name", "\"health+check\" contains '+'");
        let mut doc = base();
        doc["services"][0]["name"] = json!("échо");
        doc["routes"][0]["service"] = json!("échо");
        assert_one_error(&doc, "services[0].name", "may only contain letters, digits");
        let mut doc = base();
        doc["routes"][0]["name"] = json!("Users.v2_beta-1");
        assert_eq!(errors_of(&doc), Vec::<String>::new());
    }

    #[test]
    fn names_are_at_most_128_characters() {
        let mut doc = base();
        doc["routes"][0]["name"] = json!("r".repeat(128));
        assert_eq!(errors_of(&doc), Vec::<String>::new());
        doc["routes"][0]["name"] = json!("r".repeat(129));
        assert_one_error(
            &doc,
            "routes[0].name",
            "at most 128 characters long (this one has 129)",
        );
        let mut doc = base();
        doc["services"][1]["name"] = json!("s".repeat(129));
        doc["routes"][1]["service"] = json!("s".repeat(129));
        assert_one_error(&doc, "services[1].name", "at most 128");
    }

    #[test]
    fn duplicate_service_name_names_the_first_use() {
        let mut doc = base();
        doc["services"][1]["name"] = json!("echo");
        doc["routes"][1]["service"] = json!("echo");
        assert_one_error(
            &doc,
            "services[1].name",
            "duplicate service name \"echo\" (first used at services[0])",
        );
    }

    #[test]
    fn duplicate_route_name_names_the_first_use() {
        let mut doc = base();
        let routes = doc["routes"].as_array_mut().unwrap();
        routes.push(json!({"name": "a", "service": "echo", "paths": ["/a"]}));
        routes.push(json!({"name": "b", "service": "echo", "paths": ["/b"]}));
        routes.push(json!({"name": "a", "service": "echo", "paths": ["/c"]}));
        assert_one_error(
            &doc,
            "routes[4].name",
            "duplicate route name \"a\" (first used at routes[2])",
        );
        assert_eq!(
            errors_of(&doc),
            ["routes[4].name: duplicate route name \"a\" (first used at routes[2])"]
        );
    }

    #[test]
    fn names_are_case_sensitive() {
        let mut doc = base();
        doc["routes"][1]["name"] = json!("Users");
        assert_eq!(errors_of(&doc), Vec::<String>::new());
    }

    // --- services --------------------------------------------------------------------------------

    #[test]
    fn service_url_must_parse() {
        let mut doc = base();
        doc["services"][1]["url"] = json!("ftp://files.example.com");
        assert_one_error(&doc, "services[1].url", "scheme \"ftp\" is not supported");
        doc["services"][1]["url"] = json!("http://h/a?b=c");
        assert_one_error(&doc, "services[1].url", "query or fragment");
        doc["services"][1]["url"] = json!("other.example.com");
        assert_one_error(&doc, "services[1].url", "not an absolute URL");
    }

    #[test]
    fn timeout_is_between_1_and_600000() {
        for ok in [1, 600_000] {
            let mut doc = base();
            doc["services"][0]["timeout_ms"] = json!(ok);
            assert_eq!(errors_of(&doc), Vec::<String>::new());
        }
        for bad in [0, 600_001, u64::MAX] {
            let mut doc = base();
            doc["services"][0]["timeout_ms"] = json!(bad);
            assert_one_error(
                &doc,
                "services[0].timeout_ms",
                &format!("{bad} is out of range (1 to 600000 milliseconds)"),
            );
        }
    }

    #[test]
    fn service_header_names_are_tokens() {
        let mut doc = base();
        doc["services"][0]["headers"] = json!({"x from": "a"});
        assert_one_error(
            &doc,
            "services[0].headers[<hidden key, 6 characters>]",
            "not a valid header name (it contains a space;",
        );
        doc["services"][0]["headers"] = json!({"": "a"});
        assert_one_error(
            &doc,
            "services[0].headers[\"\"]",
            "header name cannot be empty",
        );
        doc["services"][0]["headers"] = json!({"x:y": "a"});
        assert_one_error(
            &doc,
            "services[0].headers[<hidden key, 3 characters>]",
            "not a valid header name",
        );
        doc["services"][0]["headers"] = json!({"X-Api-Key": "k", "x.y~z!": "v"});
        assert_eq!(errors_of(&doc), Vec::<String>::new());
    }

    #[test]
    fn bad_hash_header_and_cookie_names_are_not_quoted() {
        let mut doc = base();
        doc["services"][0]["algorithm"] = json!("consistent-hashing");
        doc["services"][0]["hash_on"] = json!("header");
        doc["services"][0]["hash_on_header"] = json!("X-Key: sk-SECRET");
        assert_one_error(
            &doc,
            "services[0].hash_on_header",
            "not a valid header name (it contains ':'; allowed:",
        );
        assert!(!format!("{:?}", parse_and_validate(&doc.to_string())).contains("SECRET"));
        doc["services"][0]["hash_on"] = json!("cookie");
        doc["services"][0]
            .as_object_mut()
            .unwrap()
            .remove("hash_on_header");
        doc["services"][0]["hash_on_cookie"] = json!("session=sk-SECRET");
        assert_one_error(
            &doc,
            "services[0].hash_on_cookie",
            "not a valid cookie name (it contains '=';",
        );
        assert!(!format!("{:?}", parse_and_validate(&doc.to_string())).contains("SECRET"));
    }

    #[test]
    fn service_header_values_have_no_line_breaks() {
        for bad in ["a\r\nx-evil: 1", "a\nb", "a\rb", "a\0b"] {
            let mut doc = base();
            doc["services"][0]["headers"] = json!({"x-from": bad});
            assert_one_error(
                &doc,
                "services[0].headers.x-from",
                "cannot contain CR, LF or NUL",
            );
        }
        let mut doc = base();
        doc["services"][0]["headers"] = json!({"x-from": "tab\tand spaces, \"quotes\""});
        assert_eq!(errors_of(&doc), Vec::<String>::new());
    }

    #[test]
    fn service_cannot_set_hop_by_hop_headers_or_host() {
        for name in [
            "connection",
            "Keep-Alive",
            "proxy-authenticate",
            "Proxy-Authorization",
            "TE",
            "trailer",
            "Transfer-Encoding",
            "upgrade",
        ] {
            let mut doc = base();
            doc["services"][0]["headers"] = json!({ name: "x" });
            assert_one_error(
                &doc,
                &format!("services[0].headers.{name}"),
                &format!("{name:?} is a hop-by-hop header"),
            );
        }
        let mut doc = base();
        doc["services"][0]["headers"] = json!({"Host": "example.com"});
        assert_one_error(&doc, "services[0].headers.Host", "cannot set \"host\"");
    }

    #[test]
    fn service_header_names_differing_only_in_case_collide() {
        let mut doc = base();
        doc["services"][0]["headers"] = json!({"X-From": "a", "x-from": "b"});
        assert_one_error(
            &doc,
            "services[0].headers.x-from",
            "header \"x-from\" is the same as \"X-From\"",
        );
    }

    // --- routes ----------------------------------------------------------------------------------

    #[test]
    fn route_service_must_exist() {
        let mut doc = base();
        doc["routes"][0]["service"] = json!("nope");
        assert_one_error(&doc, "routes[0].service", "unknown service \"nope\"");
        // Names are exact.
        doc["routes"][0]["service"] = json!("Echo");
        assert_one_error(&doc, "routes[0].service", "unknown service \"Echo\"");
    }

    #[test]
    fn methods_are_upper_case_tokens_without_duplicates() {
        let mut doc = base();
        doc["routes"][0]["methods"] = json!(["GET", "get"]);
        assert_one_error(&doc, "routes[0].methods[1]", "write \"GET\", not \"get\"");
        doc["routes"][0]["methods"] = json!(["GET", "PO ST"]);
        assert_one_error(
            &doc,
            "routes[0].methods[1]",
            "not a valid HTTP method (it contains a space; allowed: letters, digits and",
        );
        doc["routes"][0]["methods"] = json!([""]);
        assert_one_error(&doc, "routes[0].methods[0]", "method cannot be empty");
        doc["routes"][0]["methods"] = json!(["GET", "POST", "GET"]);
        assert_one_error(
            &doc,
            "routes[0].methods[2]",
            "duplicate method \"GET\" (already at methods[0])",
        );
        doc["routes"][0]["methods"] = json!(["GET", "HEAD", "POST", "PURGE", "M-SEARCH"]);
        assert_eq!(errors_of(&doc), Vec::<String>::new());
    }

    /// A key that may be a secret (not a name, or longer than 32 characters) never appears in an error,
    /// whoever builds the path or message (validator, serde, router, a plugin); its place still does.
    #[test]
    fn secret_looking_keys_never_appear_in_errors() {
        let secret = "Authorization: Bearer sk-live-0123456789abcdef";
        let long = "sk-proj-0123456789abcdefghijklmnopqrstuv";
        let hidden = "<hidden key, 46 characters>";
        let mut doc = base();
        doc[secret] = json!(1);
        doc["services"][0]["headers"] = json!({ secret: "x", long: "y" });
        doc["services"][1][secret] = json!(1);
        doc["routes"][0]["headers"] = json!({ secret: ["x"] });
        doc["plugins"] = json!([
            {"name": "ai-proxy", "config": {"providers": {secret: {"base_url": "https://x.example"}}}},
            {"name": "ai-proxy", "config": {"providers": {"p": {"kind": "openai"}}, secret: 1}},
        ]);
        let errors = errors_of(&doc);
        let all = errors.join("\n");
        for fragment in ["sk-live", "Bearer", "Authorization", "sk-proj"] {
            assert!(!all.contains(fragment), "{fragment} in {all}");
        }
        for expected in [
            format!("$[{hidden}]: unknown field `{hidden}`"),
            format!("services[0].headers[{hidden}]: not a valid header name"),
            format!("services[1][{hidden}]: unknown field `{hidden}`"),
            format!("routes[0].headers[{hidden}]: "),
            format!("plugins[0].config.providers[{hidden}].kind: {hidden} is not a known provider"),
            format!("plugins[1].config[{hidden}]: unknown field `{hidden}`"),
        ] {
            assert!(
                errors.iter().any(|e| e.starts_with(&expected)),
                "{expected} not in {errors:#?}"
            );
        }
        // The same key twice in one object (read from the text: a Value cannot hold it twice).
        let text = format!(
            r#"{{"format_version": 1, "services": [{{"name": "a", "url": "http://a.example",
               "headers": {{"{secret}": "1", "{secret}": "2"}}}}], "routes": []}}"#
        );
        let errors = parse_and_validate(&text).unwrap_err();
        let all = format!("{errors:?}");
        assert!(!all.contains("sk-live"), "{all}");
        assert!(
            errors
                .iter()
                .any(|e| e.path == format!("services[0].headers[{hidden}]")
                    && e.message.starts_with(&format!("duplicate key {hidden}"))),
            "{errors:#?}"
        );
        // A name-like key of at most 32 characters is shown, and one with a `.` is quoted.
        let mut doc = base();
        doc["services"][0]["headers"] = json!({"Connection": "close", "x.y": "\n"});
        let errors = errors_of(&doc);
        assert!(errors
            .iter()
            .any(|e| e.starts_with("services[0].headers.Connection: ")));
        assert!(errors
            .iter()
            .any(|e| e.starts_with("services[0].headers[\"x.y\"]: ")));
    }

    /// Each message that names a key renders it where it is made, by the rule of paths: a hidden key
    /// whose text is another key's placeholder is not mistaken for it, a shown key is shown as before.
    #[test]
    fn keys_in_messages_are_rendered_where_the_message_is_made() {
        let secret = "Authorization: Bearer sk-live-0123456789abcdef"; // 46 characters
        let lookalike = "<hidden key, 46 characters>"; // 27 characters, hidden too
        let (h46, h27) = ("<hidden key, 46 characters>", "<hidden key, 27 characters>");
        let mut doc = base();
        doc[secret] = json!(1);
        doc[lookalike] = json!(1);
        let expected =
            "expected one of `$schema`, `format_version`, `services`, `routes`, `plugins`";
        assert_eq!(
            errors_of(&doc),
            [
                format!("$[{h27}]: unknown field `{h27}`, {expected}"),
                format!("$[{h46}]: unknown field `{h46}`, {expected}"),
            ]
        );
        // A token longer than 32 characters is hidden in a path and in the message about it.
        let long = "X-Very-Long-Header-Name-For-Tests-0123"; // 38 characters
        let mut doc = base();
        doc["services"][0]["headers"] = json!({ long: "a", long.to_ascii_lowercase(): "b" });
        assert_one_error(
            &doc,
            "services[0].headers[<hidden key, 38 characters>]",
            "header <hidden key, 38 characters> is the same as <hidden key, 38 characters> (header names ignore case)",
        );
        doc["services"][0]["headers"] = json!({"X-From": "a", "x-from": "b"});
        assert_one_error(
            &doc,
            "services[0].headers.x-from",
            "header \"x-from\" is the same as \"X-From\" (header names ignore case)",
        );
        // Duplicate keys, read from the text.
        let text = format!(
            r#"{{"format_version": 1, "services": [], "routes": [], "{lookalike}": 1, "{lookalike}": 2,
               "plugins": [], "plugins": []}}"#
        );
        let errors: Vec<String> = parse_and_validate(&text)
            .unwrap_err()
            .iter()
            .map(ToString::to_string)
            .collect();
        assert!(
            errors.contains(&format!(
                "$[{h27}]: duplicate key {h27} in the same object (only one is allowed)"
            )),
            "{errors:#?}"
        );
        assert!(
            errors.contains(
                &"plugins: duplicate key \"plugins\" in the same object (only one is allowed)"
                    .to_string()
            ),
            "{errors:#?}"
        );
        // Plugin settings: map keys in hand-built paths and messages.
        let mut doc = base();
        doc["plugins"] = json!([{"name": "ai-proxy", "config": {
            "providers": {secret: {"kind": "vertex"}, lookalike: {}, "x.y": {}},
            "models": {secret: "nope"},
            "templates": {secret: {"model": "nope", "messages": []}}
        }}]);
        let errors = errors_of(&doc);
        let all = errors.join("\n");
        assert!(!all.contains("sk-live"), "{all}");
        for expected in [
            format!("plugins[0].config.providers[{h46}].key_secret: {h46} needs a service account"),
            format!("plugins[0].config.providers[{h27}].kind: {h27} is not a known provider"),
            "plugins[0].config.providers[\"x.y\"].kind: \"x.y\" is not a known provider"
                .to_string(),
            format!("plugins[0].config.models[{h46}]: \"nope\" is not provider/model"),
            format!("plugins[0].config.templates[{h46}].model: \"nope\" is neither"),
            format!("plugins[0].config.templates[{h46}].messages: no messages"),
        ] {
            assert!(
                errors.iter().any(|e| e.starts_with(&expected)),
                "{expected} not in {errors:#?}"
            );
        }
    }

    /// A bad name (service, route, plugin consumer or id) is quoted only when it looks like a name, by
    /// the rule of keys; otherwise only its length is said.
    #[test]
    fn bad_names_are_quoted_only_when_they_look_like_names() {
        let rule = "a name may only contain letters, digits, '.', '_' and '-'";
        let mut doc = base();
        doc["plugins"] = json!([
            {"name": "cors", "id": "b$d", "config": {}},
            {"name": "rate-limiting", "consumer": "Bearer sk-live-0123", "config": {"minute": 1}},
            {"name": "rate-limiting", "id": "x:y", "consumer": "a!b", "config": {"minute": 1}},
        ]);
        assert_eq!(
            errors_of(&doc),
            [
                format!("plugins[0].id: \"b$d\" contains '$'; {rule}"),
                format!("plugins[1].consumer: <hidden name, 19 characters> contains ' '; {rule}"),
                format!("plugins[2].consumer: \"a!b\" contains '!'; {rule}"),
                format!("plugins[2].id: <hidden name, 3 characters> contains ':'; {rule}"),
            ]
        );
        let mut doc = base();
        doc["routes"][0]["name"] = json!("sk-proj-0123456789abcdefghijklmnopqrstuv!");
        assert_one_error(
            &doc,
            "routes[0].name",
            &format!("<hidden name, 41 characters> contains '!'; {rule}"),
        );
    }

    #[test]
    fn route_header_names_are_tokens_without_case_duplicates() {
        let mut doc = base();
        doc["routes"][0]["headers"] = json!({"x env": ["prod"]});
        assert_one_error(
            &doc,
            "routes[0].headers[<hidden key, 5 characters>]",
            "header name",
        );
        doc["routes"][0]["headers"] = json!({"X-Env": ["prod"], "x-env": ["stag"]});
        assert_one_error(&doc, "routes[0].headers.x-env", "the same as \"X-Env\"");
        doc["routes"][0]["headers"] = json!({"x-env": ["prod", "~^stag"]});
        assert_eq!(errors_of(&doc), Vec::<String>::new());
    }

    #[test]
    fn route_matching_errors_come_from_the_router_with_the_route_prefix() {
        let mut doc = base();
        doc["routes"][1]["paths"] = json!(["/ok", "users"]);
        let errors = parse_and_validate(&doc.to_string()).unwrap_err();
        assert!(
            errors
                .iter()
                .any(|e| e.path.starts_with("routes[1].paths[1]")),
            "{errors:#?}"
        );
        assert!(
            errors.iter().all(|e| e.path.starts_with("routes[1]")),
            "{errors:#?}"
        );

        let mut doc = base();
        doc["routes"][0]["paths"] = json!(["~^/v[0-9+/items$"]);
        let errors = parse_and_validate(&doc.to_string()).unwrap_err();
        assert!(
            errors
                .iter()
                .any(|e| e.path.starts_with("routes[0].paths[0]")),
            "{errors:#?}"
        );
    }

    #[test]
    fn shadowed_route_is_reported_at_the_route() {
        let mut doc = base();
        doc["routes"]
            .as_array_mut()
            .unwrap()
            .push(json!({"name": "users-again", "service": "other", "paths": ["/users"], "methods": ["GET"]}));
        let errors = parse_and_validate(&doc.to_string()).unwrap_err();
        assert_eq!(errors.len(), 1, "{errors:#?}");
        assert_eq!(errors[0].path, "routes[2]");
        assert!(errors[0].message.contains("users"), "{errors:#?}");
    }

    #[test]
    fn shadowing_is_not_checked_while_other_route_errors_exist() {
        let mut doc = base();
        let routes = doc["routes"].as_array_mut().unwrap();
        routes.push(json!({"name": "users-again", "service": "other", "paths": ["/users"], "methods": ["GET"]}));
        routes.push(json!({"name": "bad", "service": "missing"}));
        assert_eq!(
            errors_of(&doc),
            ["routes[3].service: unknown service \"missing\""]
        );
    }

    // --- everything at once ----------------------------------------------------------------------

    #[test]
    fn reports_every_error_at_once_in_document_order() {
        let doc = json!({
            "format_version": 2,
            "extra": true,
            "services": [
                {"name": "echo", "url": "ftp://x", "timeout_ms": 0, "headers": {"connection": "close"}},
                {"name": "echo", "url": "http://ok", "colour": "blue"},
                {"name": "b@d", "url": "http://ok"}
            ],
            "routes": [
                {"name": "r1", "service": "nope", "methods": ["get"]},
                {"name": "r1", "service": "echo", "paths": [1]},
                {"name": "r2", "service": "b@d", "headers": {"bad header": ["x"]}}
            ]
        });
        assert_eq!(
            errors_of(&doc),
            [
                "extra: unknown field `extra`, expected one of `$schema`, `format_version`, `services`, `routes`, `plugins`",
                "format_version: unsupported format version 2 (only 1 exists)",
                "services[0].url: scheme \"ftp\" is not supported (use http or https)",
                "services[0].timeout_ms: 0 is out of range (1 to 600000 milliseconds)",
                "services[0].headers.connection: \"connection\" is a hop-by-hop header and cannot be set on a service",
                "services[1].colour: unknown field `colour`, expected one of `name`, `url`, `targets`, `algorithm`, `hash_on`, `hash_on_header`, `hash_on_cookie`, `hash_fallback`, `hash_fallback_header`, `healthchecks`, `retries`, `retry_on`, `retry_non_idempotent`, `timeout_ms`, `headers`",
                "services[2].name: <hidden name, 3 characters> contains '@'; a name may only contain letters, digits, '.', '_' and '-'",
                "routes[0].service: unknown service \"nope\"",
                "routes[0].methods[0]: methods are upper case: write \"GET\", not \"get\"",
                "routes[1].paths[0]: invalid type: integer `1`, expected a string",
                "routes[2].headers[<hidden key, 10 characters>]: invalid character ' ' in header name <hidden key, 10 characters>",
            ]
        );
    }

    #[test]
    fn misplaced_strings_are_not_echoed() {
        let doc = json!({"format_version": 1, "services": [
            {"name": "a", "url": "http://a", "headers": "authorization: Bearer s3cret \"x\" y"},
            {"name": "b", "url": "http://b", "timeout_ms": "s3cret"}
        ]});
        assert_eq!(
            errors_of(&doc),
            [
                "services[0].headers: invalid type: string, expected a map",
                "services[1].timeout_ms: invalid type: string, expected u64",
            ]
        );
        assert_eq!(
            without_quoted_strings(
                "invalid value: string \"a\\\", b\", expected x; invalid type: string \"c\"".into()
            ),
            "invalid value: string, expected x; invalid type: string"
        );
        // Other messages keep their quoted values.
        let kept = "unknown service \"user-api\"".to_string();
        assert_eq!(without_quoted_strings(kept.clone()), kept);
    }

    #[test]
    fn path_rendering() {
        assert_eq!(key_path("", "routes"), "routes");
        assert_eq!(key_path("", "$schema"), "$schema");
        assert_eq!(key_path("a[0]", "x-y_z"), "a[0].x-y_z");
        assert_eq!(key_path("a", "x.y"), "a[\"x.y\"]");
        assert_eq!(key_path("", ""), "$[\"\"]");
        assert_eq!(index_path("", 3), "$[3]");
        assert_eq!(join_path("routes[1]", "paths[0]"), "routes[1].paths[0]");
        assert_eq!(join_path("routes[1]", ""), "routes[1]");
        assert_eq!(join_path("routes[1]", "[2]"), "routes[1][2]");
        assert_eq!(error("", "m".into()).to_string(), "$: m");
    }

    #[test]
    fn deeply_nested_json_is_an_error_not_a_crash() {
        let text = format!("{}{}", "[".repeat(100_000), "]".repeat(100_000));
        assert_text_error(&text, "$", "recursion limit exceeded");
    }

    #[test]
    fn an_unknown_plugin_name_that_looks_like_a_secret_is_not_quoted() {
        let mut doc = base();
        let secret = "sk-live-0123456789abcdefghij:klmnop";
        doc["plugins"] = json!([{ "name": secret }]);
        let errors = errors_of(&doc).join("\n");
        assert!(!errors.contains("0123456789"), "{errors}");
        assert!(
            errors.contains("plugins[0].name: unknown plugin <hidden name, 35 characters>"),
            "{errors}"
        );
    }

    #[test]
    fn plugin_references_and_names_are_checked() {
        let mut doc = base();
        doc["plugins"] = json!([
            {"name": "no-such-plugin"},
            {"name": "no-such-plugin", "route": "missing-route", "service": "missing-service"},
            {"name": "x", "colour": 1}
        ]);
        let errors = errors_of(&doc);
        assert!(
            errors.contains(&"plugins[0].name: unknown plugin \"no-such-plugin\"".to_string())
                || errors
                    .iter()
                    .any(|e| e.starts_with("plugins[0].name: unknown plugin \"no-such-plugin\"")),
            "{errors:?}"
        );
        assert!(
            errors.contains(&"plugins[1].route: unknown route \"missing-route\"".to_string()),
            "{errors:?}"
        );
        assert!(
            errors.contains(&"plugins[1].service: unknown service \"missing-service\"".to_string()),
            "{errors:?}"
        );
        assert!(
            errors
                .iter()
                .any(|e| e.starts_with("plugins[2].colour: unknown field `colour`")),
            "{errors:?}"
        );
    }

    #[test]
    fn a_cors_instance_cannot_be_scoped_to_a_consumer() {
        let mut doc = base();
        doc["plugins"] = json!([
            {"name": "cors", "route": "users", "consumer": "alice"},
            {"name": "cors", "route": "users"},
            {"name": "request-termination", "consumer": "alice"}
        ]);
        assert_eq!(
            errors_of(&doc),
            [
                "plugins[0].consumer: cors cannot be scoped to a consumer, as in Kong (it runs \
              before the consumer is known): attach it globally, to a service or to a route"
            ]
        );
    }

    // --- upstreams (docs/upstreams.md) ---------------------------------------------------------

    fn upstream_doc(service: Value) -> Value {
        let mut doc = base();
        doc["services"][0] = service;
        doc
    }

    #[test]
    fn the_upstreams_example_is_valid() {
        let doc = upstream_doc(json!({
            "name": "echo",
            "targets": [{"url": "http://10.0.0.1:8080/base", "weight": 300},
                        {"url": "http://10.0.0.2:8080/base"}],
            "algorithm": "consistent-hashing", "hash_on": "header", "hash_on_header": "x-user",
            "hash_fallback": "ip",
            "healthchecks": {"passive": {"unhealthy": {"tcp_failures": 2, "http_failures": 3,
                "timeouts": 1, "http_statuses": [500, 503]}, "healthy": {"successes": 2},
                "window_ms": 5000, "cooldown_ms": 10000}},
            "retries": 2, "retry_on": ["connect-failure", "timeout", 503],
            "retry_non_idempotent": true
        }));
        let config = parse_and_validate(&doc.to_string()).unwrap();
        let s = &config.services[0];
        assert_eq!(s.targets[1].weight, 100);
        assert_eq!(s.retry_on[2], crate::config::RetryOn::Status(503));
        // Defaults of a plain service.
        let plain = &config.services[1];
        assert_eq!(
            (plain.retries, plain.retry_on.clone()),
            (1, vec![crate::config::RetryOn::ConnectFailure])
        );
        assert!(plain.healthchecks.is_none() && !plain.retry_non_idempotent);
    }

    #[test]
    fn url_and_targets_exclude_each_other() {
        let mut doc = base();
        doc["services"][0]["targets"] = json!([{"url": "http://a"}]);
        assert_one_error(&doc, "services[0].targets", "either `url`");
        doc["services"][0].as_object_mut().unwrap().remove("url");
        assert_eq!(errors_of(&doc), Vec::<String>::new());
    }

    #[test]
    fn targets_are_checked_one_by_one() {
        let doc = upstream_doc(json!({"name": "echo", "targets": [
            {"url": "http://a:1/base", "weight": 70000},
            {"url": "ftp://b"},
            {"url": "http://a:1/base"},
            {"url": "http://c/other"},
            {"url": "http://d/base", "wieght": 1}
        ]}));
        assert_eq!(
            errors_of(&doc),
            ["services[0].targets[4].wieght: unknown field `wieght`, expected `url` or `weight`"]
        );
        let doc = upstream_doc(json!({"name": "echo", "targets": [
            {"url": "http://a:1/base", "weight": 70000},
            {"url": "ftp://b"},
            {"url": "http://a:1/base"},
            {"url": "http://c/other"}
        ]}));
        assert_eq!(
            errors_of(&doc),
            [
                "services[0].targets[0].weight: 70000 is out of range (0 to 65535)",
                "services[0].targets[1].url: scheme \"ftp\" is not supported (use http or https)",
                "services[0].targets[2].url: the same origin as targets[0] (http://a:1)",
                "services[0].targets[3].url: base path \"/other\" differs from targets[0]'s \"/base\"; the targets of a service share one base path",
            ]
        );
        let doc =
            upstream_doc(json!({"name": "echo", "targets": [{"url": "http://a", "weight": 0}]}));
        assert_one_error(
            &doc,
            "services[0].targets",
            "at least one target needs a weight above 0",
        );
        let doc = upstream_doc(json!({"name": "echo", "targets": []}));
        assert_one_error(&doc, "services[0]", "missing field `url` (or `targets`");
    }

    #[test]
    fn an_explicit_default_port_is_the_same_target_origin() {
        for (first, second) in [("http://a", "http://a:80"), ("https://a:443", "https://A")] {
            let doc =
                upstream_doc(json!({"name": "echo", "targets": [{"url": first}, {"url": second}]}));
            assert_one_error(
                &doc,
                "services[0].targets[1].url",
                "the same origin as targets[0]",
            );
        }
        let doc = upstream_doc(json!({"name": "echo", "targets": [
            {"url": "http://a:443"}, {"url": "https://a"}, {"url": "http://a:8080"}
        ]}));
        assert!(parse_and_validate(&doc.to_string()).is_ok());
    }

    #[test]
    fn inconsistent_hash_options_are_errors() {
        let cases = [
            (
                json!({"algorithm": "consistent-hashing"}),
                "services[0].hash_on",
                "needs `hash_on`",
            ),
            (
                json!({"hash_on": "ip"}),
                "services[0].hash_on",
                "only used with `algorithm: consistent-hashing`",
            ),
            (
                json!({"algorithm": "consistent-hashing", "hash_on": "header"}),
                "services[0].hash_on_header",
                "missing",
            ),
            (
                json!({"algorithm": "consistent-hashing", "hash_on": "ip", "hash_on_header": "x"}),
                "services[0].hash_on_header",
                "only used with `hash_on: header`",
            ),
            (
                json!({"algorithm": "consistent-hashing", "hash_on": "cookie"}),
                "services[0].hash_on_cookie",
                "missing",
            ),
            (
                json!({"algorithm": "consistent-hashing", "hash_on": "ip", "hash_on_cookie": "s"}),
                "services[0].hash_on_cookie",
                "only used",
            ),
            (
                json!({"algorithm": "consistent-hashing", "hash_on": "ip", "hash_fallback": "ip"}),
                "services[0].hash_fallback",
                "same as `hash_on`",
            ),
            (
                json!({"algorithm": "consistent-hashing", "hash_on": "cookie", "hash_on_cookie": "s", "hash_fallback": "ip"}),
                "services[0].hash_fallback",
                "a fallback needs",
            ),
            (
                json!({"algorithm": "consistent-hashing", "hash_on": "header", "hash_on_header": "a b"}),
                "services[0].hash_on_header",
                "not a valid header name",
            ),
            (
                json!({"algorithm": "random"}),
                "services[0].algorithm",
                "unknown variant `random`",
            ),
            (
                json!({"hash_on": "query"}),
                "services[0].hash_on",
                "unknown variant `query`",
            ),
        ];
        for (extra, path, fragment) in cases {
            let mut service = json!({"name": "echo", "url": "http://a"});
            for (k, v) in extra.as_object().unwrap() {
                service[k] = v.clone();
            }
            assert_one_error(&upstream_doc(service), path, fragment);
        }
    }

    #[test]
    fn retries_and_health_checks_are_bounded() {
        let cases = [
            (
                json!({"retries": 11}),
                "services[0].retries",
                "11 is out of range (0 to 10)",
            ),
            (
                json!({"retry_on": ["connect-failure", "reset"]}),
                "services[0].retry_on[1]",
                "unknown retry condition \"reset\"",
            ),
            (
                json!({"retry_on": [200]}),
                "services[0].retry_on[0]",
                "status 200 cannot be retried on (400 to 599)",
            ),
            (
                json!({"healthchecks": {"passive": {"unhealthy": {"tcp_failures": 256}}}}),
                "services[0].healthchecks.passive.unhealthy.tcp_failures",
                "out of range",
            ),
            (
                json!({"healthchecks": {"passive": {"unhealthy": {"http_statuses": [42]}}}}),
                "services[0].healthchecks.passive.unhealthy.http_statuses[0]",
                "not an HTTP status",
            ),
            (
                json!({"healthchecks": {"passive": {"healthy": {"successes": 0}}}}),
                "services[0].healthchecks.passive.healthy.successes",
                "1 to 255",
            ),
            (
                json!({"healthchecks": {"passive": {"cooldown_ms": 0}}}),
                "services[0].healthchecks.passive.cooldown_ms",
                "out of range",
            ),
            (
                json!({"healthchecks": {"active": {}}}),
                "services[0].healthchecks.active",
                "unknown field `active`",
            ),
        ];
        for (extra, path, fragment) in cases {
            let mut service = json!({"name": "echo", "url": "http://a"});
            for (k, v) in extra.as_object().unwrap() {
                service[k] = v.clone();
            }
            assert_one_error(&upstream_doc(service), path, fragment);
        }
    }

    #[test]
    fn route_splits_name_known_services_with_weights() {
        let mut doc = base();
        doc["routes"][0].as_object_mut().unwrap().remove("service");
        doc["routes"][0]["services"] =
            json!([{"name": "echo", "weight": 90}, {"name": "other", "weight": 10}]);
        doc["routes"][0]["hash_on"] = json!("header");
        doc["routes"][0]["hash_on_header"] = json!("x-user");
        assert_eq!(errors_of(&doc), Vec::<String>::new());
        let mut bad = doc.clone();
        bad["routes"][0]["services"][1] = json!({"name": "nope", "weight": 70000});
        assert_eq!(
            errors_of(&bad),
            [
                "routes[0].services[1].name: unknown service \"nope\"",
                "routes[0].services[1].weight: 70000 is out of range (0 to 65535)",
            ]
        );
        let mut bad = doc.clone();
        bad["routes"][0]["service"] = json!("echo");
        assert_one_error(&bad, "routes[0].services", "either `service` or `services`");
        let mut bad = doc.clone();
        bad["routes"][0]["hash_on"] = json!("consumer");
        bad["routes"][0]
            .as_object_mut()
            .unwrap()
            .remove("hash_on_header");
        assert_one_error(
            &bad,
            "routes[0].hash_on",
            "before plugins identify the consumer",
        );
        let mut bad = doc.clone();
        bad["routes"][0]["services"] = json!([{"name": "echo", "weight": 0}]);
        assert_one_error(
            &bad,
            "routes[0].services",
            "at least one service needs a weight above 0",
        );
        let mut bad = base();
        bad["routes"][0]["hash_on"] = json!("ip");
        assert_one_error(&bad, "routes[0].hash_on", "only used with `services`");
    }

    /// A reference to a service or route, a duplicate name or id, a method and an ai-proxy model quote
    /// the value only when it looks like a name; a secret pasted there is said only by its length.
    #[test]
    fn references_and_duplicates_do_not_quote_secrets() {
        let spaced = "Bearer sk-live-SECRET"; // 21 characters, not a token
        let long = "sk-live-SECRET0123456789abcdefghij"; // 34 characters
        let hs = "<hidden name, 21 characters>";
        let hl = "<hidden name, 34 characters>";
        let mut doc = base();
        doc["services"][1]["name"] = json!(long);
        doc["services"]
            .as_array_mut()
            .unwrap()
            .push(json!({"name": long, "url": "http://a"}));
        doc["routes"][0]["service"] = json!(spaced);
        doc["routes"][0]["methods"] = json!(["GET", spaced]);
        doc["routes"][1]["name"] = json!(long);
        doc["routes"]
            .as_array_mut()
            .unwrap()
            .push(json!({"name": long, "service": "echo", "paths": ["/x"]}));
        doc["routes"]
            .as_array_mut()
            .unwrap()
            .push(json!({"name": "split", "paths": ["/s"],
                         "services": [{"name": spaced, "weight": 1}, {"name": spaced, "weight": 1}]}));
        doc["plugins"] = json!([
            {"name": "cors", "service": spaced},
            {"name": "cors", "id": long},
            {"name": "cors", "id": long},
            {"name": "ai-proxy", "config": {"models": {"a": spaced, "b": format!("{spaced}/m")}}}
        ]);
        let errors = errors_of(&doc);
        let all = errors.join("\n");
        assert!(!all.contains("SECRET"), "{all}");
        for expected in [
            format!("services[2].name: duplicate service name {hl} (first used at services[1])"),
            format!("routes[0].service: unknown service {hs}"),
            "routes[0].methods[1]: not a valid HTTP method (it contains a space;".to_string(),
            format!("routes[2].name: duplicate route name {hl} (first used at routes[1])"),
            format!("routes[3].services[0].name: unknown service {hs}"),
            format!("routes[3].services[1].name: service {hs} is already at services[0]"),
            format!("plugins[0].service: unknown service {hs}"),
            format!("plugins[2].id: id {hl} is already used by plugins[1]"),
            format!("plugins[3].config.models.a: {hs} is not provider/model"),
            format!("plugins[3].config.models.b: unknown provider {hs} (declare it in providers)"),
        ] {
            assert!(
                errors.iter().any(|e| e.starts_with(&expected)),
                "{expected} not in {errors:#?}"
            );
        }
        // A route reference is checked once the routes are valid.
        let mut doc = base();
        doc["plugins"] = json!([{"name": "cors", "route": long}]);
        assert_one_error(&doc, "plugins[0].route", &format!("unknown route {hl}"));
        // A value that looks like a name is quoted as before.
        let mut doc = base();
        doc["plugins"] = json!([
            {"name": "ai-proxy", "config": {"models": {"a": "nope", "b": "nope/m"}}}
        ]);
        let errors = errors_of(&doc);
        for expected in [
            "plugins[0].config.models.a: \"nope\" is not provider/model",
            "plugins[0].config.models.b: unknown provider \"nope\" (declare it in providers)",
        ] {
            assert!(
                errors.iter().any(|e| e == expected),
                "{expected} not in {errors:#?}"
            );
        }
    }

    /// A host label beginning or ending with `-` (or empty, or longer than 63 characters) is refused,
    /// in `url` and in `targets`, at the URL's path.
    #[test]
    fn hosts_with_bad_labels_are_refused() {
        let fragment =
            "the host name is not valid (each `.`-separated label has 1 to 63 characters";
        for url in ["http://-a", "https://a-.example.com:8443/v1", "http://a..b"] {
            let mut doc = base();
            doc["services"][1]["url"] = json!(url);
            assert_one_error(&doc, "services[1].url", fragment);
        }
        let doc = upstream_doc(json!({
            "name": "echo",
            "targets": [{"url": "http://10.0.0.1:8080"}, {"url": "http://-b:8080"}]
        }));
        assert_one_error(&doc, "services[0].targets[1].url", fragment);
    }
}
