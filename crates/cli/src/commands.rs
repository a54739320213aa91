//! The commands, over any [`Kv`], so the flows are tested natively with [`crate::kv::MemoryKv`].

use crate::kv::Kv;
use edgegate_core::config::{parse_and_validate, GatewayConfig, ValidationError};
use edgegate_core::gateway::Gateway;
use edgegate_core::store::{compiled_key, version_key, Pointer, POINTER_KEY};

/// Why a command failed. `main` prints it to stderr and exits with [`CliError::exit_code`].
#[derive(Debug, PartialEq)]
pub enum CliError {
    /// Wrong arguments (exit 2).
    Usage(String),
    /// The document is not a valid configuration: every error, one per line (exit 1).
    Invalid(Vec<ValidationError>),
    /// Anything else: unreadable file, KV failure, nothing to roll back to (exit 1).
    Failed(String),
}

impl CliError {
    pub fn exit_code(&self) -> i32 {
        match self {
            CliError::Usage(_) => 2,
            CliError::Invalid(_) | CliError::Failed(_) => 1,
        }
    }

    /// The text for stderr (without a final newline).
    pub fn render(&self) -> String {
        match self {
            CliError::Usage(m) => format!("error: {m}\n\n{}", crate::USAGE.trim_end()),
            CliError::Invalid(errors) => errors
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join("\n"),
            CliError::Failed(m) => format!("error: {m}"),
        }
    }
}

impl From<String> for CliError {
    fn from(message: String) -> Self {
        CliError::Failed(message)
    }
}

/// Largest document accepted: the Workers KV value limit (25 MiB).
pub const MAX_DOCUMENT_BYTES: usize = 25 * 1024 * 1024;

/// Validate a document; the summary line on success.
pub fn validate(text: &str) -> Result<String, CliError> {
    let config = validate_document(text)?;
    Ok(summary(&config))
}

fn validate_document(text: &str) -> Result<GatewayConfig, CliError> {
    if text.len() > MAX_DOCUMENT_BYTES {
        return Err(CliError::Failed(format!(
            "the document is {} bytes; a KV value can hold at most {MAX_DOCUMENT_BYTES}",
            text.len()
        )));
    }
    parse_and_validate(text).map_err(CliError::Invalid)
}

fn summary(config: &GatewayConfig) -> String {
    format!(
        "ok: {} services, {} routes",
        config.services.len(),
        config.routes.len()
    )
}

fn read_pointer(kv: &mut dyn Kv) -> Result<Option<Pointer>, CliError> {
    match kv.get(POINTER_KEY)? {
        None => Ok(None),
        Some(text) => Pointer::parse(&text).map(Some).map_err(CliError::Failed),
    }
}

/// How far past the pointer's `latest` a push looks for a free version key, when earlier pushes
/// wrote a document but died before moving the pointer.
const MAX_ORPHANED_VERSIONS: u64 = 1000;

/// Validate `text`, store it as a new version and put that version into service.
///
/// Order: read the pointer, write `config/versions/<n>` (a key never written before), then write the
/// pointer. Until the last write nothing in service changes; if it fails, the new version is an
/// orphan that the next push skips.
pub fn push(kv: &mut dyn Kv, text: &str) -> Result<String, CliError> {
    let config = validate_document(text)?;
    let compiled = Gateway::compile_to_bytes(text).map_err(CliError::Invalid)?;
    let pointer = read_pointer(kv)?;
    let first = Pointer::next_version(pointer.as_ref());
    let mut version = first;
    while kv.get(&version_key(version))?.is_some() {
        if version - first >= MAX_ORPHANED_VERSIONS {
            return Err(CliError::Failed(format!(
                "{} to {} all exist although {POINTER_KEY} names {} as the latest version; \
                 refusing to overwrite any of them",
                version_key(first),
                version_key(version),
                first - 1
            )));
        }
        version += 1;
    }
    let mut notes = String::new();
    if version != first {
        notes = format!(
            "\nnote: {} to {} already existed (left by interrupted pushes?) and were left as they are",
            version_key(first),
            version_key(version - 1)
        );
    }
    kv.put(&version_key(version), text).map_err(|e| {
        CliError::Failed(format!(
            "{e}\nnothing changed: version {version} is not in service"
        ))
    })?;
    kv.put_bytes(&compiled_key(version), &compiled)
        .map_err(|e| {
            CliError::Failed(format!(
                "{e}\n{} was written but not its compiled form, and {POINTER_KEY} was not moved: \
                 the previous version is still in service",
                version_key(version)
            ))
        })?;
    let next = Pointer::after_push(pointer.as_ref(), version);
    kv.put(POINTER_KEY, &next.to_json()).map_err(|e| {
        CliError::Failed(format!(
            "{e}\n{} was written but {POINTER_KEY} was not moved: the previous version is still in service",
            version_key(version)
        ))
    })?;
    let previous = match &pointer {
        Some(p) => format!("version {}", p.version),
        None => "none".into(),
    };
    Ok(format!(
        "pushed version {version} ({}); now in service (previously: {previous}){notes}",
        summary(&config).trim_start_matches("ok: ")
    ))
}

/// Validate a document and make its compiled form (what `push` stores next to the JSON); returns the
/// bytes and the summary line.
pub fn compile(text: &str) -> Result<(Vec<u8>, String), CliError> {
    let config = validate_document(text)?;
    let compiled = Gateway::compile_to_bytes(text).map_err(CliError::Invalid)?;
    Ok((compiled, summary(&config)))
}

/// Put the version that was in service before the current one back into service.
pub fn rollback(kv: &mut dyn Kv) -> Result<String, CliError> {
    let pointer = read_pointer(kv)?.ok_or_else(|| {
        CliError::Failed(format!(
            "no configuration has been pushed yet ({POINTER_KEY} is missing)"
        ))
    })?;
    let target = pointer.after_rollback().map_err(CliError::Failed)?;
    let key = version_key(target.version);
    let document = kv.get(&key)?.ok_or_else(|| {
        CliError::Failed(format!(
            "cannot roll back to version {}: {key} is missing",
            target.version
        ))
    })?;
    if let Err(errors) = parse_and_validate(&document) {
        return Err(CliError::Failed(format!(
            "cannot roll back to version {}: this gateway would reject it:\n{}",
            target.version,
            errors
                .iter()
                .map(|e| format!("  {e}"))
                .collect::<Vec<_>>()
                .join("\n")
        )));
    }
    kv.put(POINTER_KEY, &target.to_json())?;
    Ok(format!(
        "rolled back from version {} to version {}",
        pointer.version, target.version
    ))
}

/// The pointer, the version in service, and one version's document (the one in service by default).
pub fn show(kv: &mut dyn Kv, version: Option<u64>) -> Result<String, CliError> {
    let pointer = read_pointer(kv)?;
    let shown = match (version, &pointer) {
        (Some(v), _) => v,
        (None, Some(p)) => p.version,
        (None, None) => {
            return Err(CliError::Failed(format!(
                "no configuration has been pushed yet ({POINTER_KEY} is missing)"
            )))
        }
    };
    let mut out = String::new();
    match &pointer {
        Some(p) => {
            out.push_str(&format!("{POINTER_KEY}: {}\n", p.to_json()));
            let back = match p.history.last() {
                Some(v) => format!("rollback goes to version {v}"),
                None => "nothing to roll back to".into(),
            };
            out.push_str(&format!(
                "in service: version {} (latest pushed: {}; {back})\n",
                p.version, p.latest
            ));
        }
        None => out.push_str(&format!("{POINTER_KEY}: missing (nothing in service)\n")),
    }
    let key = version_key(shown);
    let document = kv
        .get(&key)?
        .ok_or_else(|| CliError::Failed(format!("{key} is missing")))?;
    let in_service = pointer.as_ref().map(|p| p.version) == Some(shown);
    let state = if in_service {
        "in service"
    } else {
        "not in service"
    };
    match parse_and_validate(&document) {
        Ok(config) => {
            // The typed form: fields in their documented order, defaults written out.
            let pretty = serde_json::to_string_pretty(&redacted(config.clone()))
                .map_err(|e| e.to_string())?;
            out.push_str(&format!(
                "{key} ({state}): {}; shown with defaults filled in\n{pretty}",
                summary(&config)
            ));
        }
        Err(errors) => {
            let errors: Vec<String> = errors.iter().map(|e| format!("  {e}")).collect();
            // The stored text, unless it is JSON with a credential header to hide.
            let mut stored = document.trim_end().to_string();
            if let Ok(mut value) = serde_json::from_str::<serde_json::Value>(&document) {
                if redact(&mut value) {
                    stored = serde_json::to_string_pretty(&value).map_err(|e| e.to_string())?;
                }
            }
            out.push_str(&format!(
                "{key} ({state}): INVALID, this gateway would reject it:\n{}\nstored text:\n{stored}",
                errors.join("\n"),
            ));
        }
    }
    Ok(out)
}

/// What `diff` compares: each service, route and plugin instance of a document, by its identity (a
/// service's or route's name; a plugin instance's name, `id` and scope), as the JSON of its effective form
/// (defaults filled in, as `show` prints it).
fn elements(config: &GatewayConfig) -> Vec<(String, serde_json::Value)> {
    let mut out = Vec::new();
    let value = |v: serde_json::Result<serde_json::Value>| v.unwrap_or(serde_json::Value::Null);
    for s in &config.services {
        out.push((
            format!("service {:?}", s.name),
            value(serde_json::to_value(s)),
        ));
    }
    for r in &config.routes {
        out.push((
            format!("route {:?}", r.name),
            value(serde_json::to_value(r)),
        ));
    }
    let mut seen: std::collections::BTreeMap<String, usize> = Default::default();
    for p in &config.plugins {
        let mut scope = Vec::new();
        for (kind, v) in [
            ("route", &p.route),
            ("service", &p.service),
            ("consumer", &p.consumer),
        ] {
            if let Some(v) = v {
                scope.push(format!("{kind} {v:?}"));
            }
        }
        let scope = if scope.is_empty() {
            "global".to_string()
        } else {
            scope.join(", ")
        };
        // The documented default id: the plugin's name, `name.2`, `name.3`... in the same scope.
        let id = match &p.id {
            Some(id) => id.clone(),
            None => {
                let n = seen.entry(format!("{}\n{scope}", p.name)).or_insert(0);
                *n += 1;
                if *n == 1 {
                    p.name.clone()
                } else {
                    format!("{}.{n}", p.name)
                }
            }
        };
        out.push((
            format!("plugin {:?} (id {id:?}, {scope})", p.name),
            value(serde_json::to_value(p)),
        ));
    }
    out
}

/// Compare a document with a version in KV (the one in service, or `version`): which services, routes
/// and plugin instances are added (`+`), removed (`-`) or changed (`~`, with the fields that differ).
/// Prints names and field names only, never values.
pub fn diff(
    kv: &mut dyn Kv,
    file: &str,
    text: &str,
    version: Option<u64>,
) -> Result<String, CliError> {
    let new = validate_document(text)?;
    let pointer = read_pointer(kv)?;
    let (old, against) = match (version, &pointer) {
        (None, None) => (
            None,
            "nothing (no configuration has been pushed yet)".to_string(),
        ),
        (v, p) => {
            let shown = v.or(p.as_ref().map(|p| p.version)).unwrap_or_default();
            let key = version_key(shown);
            let document = kv
                .get(&key)?
                .ok_or_else(|| CliError::Failed(format!("{key} is missing")))?;
            let state = if p.as_ref().map(|p| p.version) == Some(shown) {
                "in service"
            } else {
                "not in service"
            };
            let old = parse_and_validate(&document).map_err(|_| {
                CliError::Failed(format!(
                    "{key} is not valid for this gateway (see `show --version {shown}`); cannot compare"
                ))
            })?;
            (Some(old), format!("{key} ({state})"))
        }
    };
    let before = old.as_ref().map(elements).unwrap_or_default();
    let after = elements(&new);
    let mut lines = Vec::new();
    for (id, value) in &after {
        match before.iter().find(|(b, _)| b == id) {
            None => lines.push(format!("+ {id}")),
            Some((_, old)) if old != value => {
                let fields = |v: &serde_json::Value| -> Vec<String> {
                    v.as_object()
                        .map(|o| o.keys().cloned().collect())
                        .unwrap_or_default()
                };
                let mut names: Vec<String> = fields(old);
                for f in fields(value) {
                    if !names.contains(&f) {
                        names.push(f);
                    }
                }
                let changed: Vec<String> = names
                    .into_iter()
                    .filter(|f| old.get(f) != value.get(f))
                    .collect();
                lines.push(format!("~ {id}: {}", changed.join(", ")));
            }
            Some(_) => {}
        }
    }
    for (id, _) in &before {
        if !after.iter().any(|(a, _)| a == id) {
            lines.push(format!("- {id}"));
        }
    }
    if lines.is_empty() {
        return Ok(format!(
            "no changes: {file} is the same configuration as {against}"
        ));
    }
    let n = lines.len();
    Ok(format!(
        "comparing {file} with {against}:\n{}\n{n} change{}",
        lines.join("\n"),
        if n == 1 { "" } else { "s" }
    ))
}

/// What `show` prints instead of a credential header's value.
pub const REDACTED: &str = "<redacted>";

/// Whether a header's value is a credential that `show` does not print: `authorization`,
/// `proxy-authorization`, `cookie`, and names that say key, token, secret, password, auth, session,
/// signature or credential (`x-api-key`, `api-key`, `x-auth-token`, ...).
pub fn is_credential_header(name: &str) -> bool {
    let name = name.trim().to_ascii_lowercase();
    name == "cookie"
        || [
            "auth",
            "key",
            "token",
            "secret",
            "password",
            "session",
            "signature",
            "credential",
        ]
        .iter()
        .any(|word| name.contains(word))
}

/// A valid document with the values of its credential headers hidden (see [`redact`]), keeping the
/// typed form's field order.
fn redacted(mut config: GatewayConfig) -> GatewayConfig {
    for service in &mut config.services {
        for (name, value) in service.headers.iter_mut() {
            if is_credential_header(name) {
                *value = REDACTED.into();
            }
        }
    }
    for route in &mut config.routes {
        for (name, values) in route.headers.iter_mut() {
            if is_credential_header(name) {
                values.iter_mut().for_each(|v| *v = REDACTED.into());
            }
        }
    }
    for plugin in &mut config.plugins {
        redact(&mut plugin.config);
    }
    config
}

/// Hide the values of credential headers anywhere in a document: every member called `headers`
/// that maps names to values (services, routes, ai-proxy providers) or lists `name:value` entries
/// (request-transformer); and every member called `password` or `*_password` (rate-limiting's
/// Kong Redis settings: `redis_password`, `redis.password`). Returns whether anything was hidden.
pub fn redact(value: &mut serde_json::Value) -> bool {
    use serde_json::Value;
    fn hide(v: &mut Value) -> bool {
        match v {
            Value::String(s) if s != REDACTED => {
                *s = REDACTED.into();
                true
            }
            Value::Array(items) => {
                let mut any = false;
                for item in items {
                    any |= hide(item);
                }
                any
            }
            _ => false,
        }
    }
    let mut hidden = false;
    match value {
        Value::Object(members) => {
            for (key, member) in members.iter_mut() {
                if key == "headers" {
                    match member {
                        Value::Object(headers) => {
                            for (name, v) in headers.iter_mut() {
                                if is_credential_header(name) {
                                    hidden |= hide(v);
                                }
                            }
                        }
                        Value::Array(entries) => {
                            for entry in entries.iter_mut() {
                                if let Value::String(s) = entry {
                                    if let Some((name, v)) = s.split_once(':') {
                                        if is_credential_header(name) && v != REDACTED {
                                            *s = format!("{name}:{REDACTED}");
                                            hidden = true;
                                        }
                                    }
                                }
                            }
                        }
                        _ => {}
                    }
                }
                if key == "password" || key.ends_with("_password") {
                    hidden |= hide(member);
                }
                hidden |= redact(member);
            }
        }
        Value::Array(items) => {
            for item in items {
                hidden |= redact(item);
            }
        }
        _ => {}
    }
    hidden
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kv::MemoryKv;

    const V1: &str = r#"{"format_version": 1,
        "services": [{"name": "echo", "url": "http://127.0.0.1:9001"}],
        "routes": [{"name": "all", "service": "echo"}]}"#;
    const V2: &str = r#"{"format_version": 1,
        "services": [{"name": "echo", "url": "http://127.0.0.1:9001"}, {"name": "b", "url": "http://b"}],
        "routes": [{"name": "all", "service": "echo"}]}"#;

    fn pointer(kv: &MemoryKv) -> Pointer {
        Pointer::parse(&kv.values[POINTER_KEY]).unwrap()
    }

    #[test]
    fn validate_reports_summary_or_every_error() {
        assert_eq!(validate(V1), Ok("ok: 1 services, 1 routes".into()));
        let err = validate(r#"{"format_version": 2, "services": [{"name": "", "url": "x"}]}"#)
            .unwrap_err();
        assert_eq!(err.exit_code(), 1);
        let text = err.render();
        assert_eq!(text.lines().count(), 3, "{text}");
        assert!(text.starts_with("format_version: unsupported format version 2"));
        assert!(text.contains("services[0].name: a name cannot be empty"));
        assert!(text.contains("services[0].url: "));
    }

    #[test]
    fn first_push_writes_version_1_then_the_pointer() {
        let mut kv = MemoryKv::default();
        let msg = push(&mut kv, V1).unwrap();
        assert_eq!(
            msg,
            "pushed version 1 (1 services, 1 routes); now in service (previously: none)"
        );
        assert_eq!(
            kv.writes,
            ["config/versions/1", "config/compiled/1", "config/current"]
        );
        assert_eq!(
            kv.values["config/versions/1"], V1,
            "stored exactly as given"
        );
        assert_eq!(
            pointer(&kv),
            Pointer {
                version: 1,
                latest: 1,
                history: vec![]
            }
        );
    }

    #[test]
    fn push_push_rollback_push() {
        let mut kv = MemoryKv::default();
        push(&mut kv, V1).unwrap();
        assert!(push(&mut kv, V2)
            .unwrap()
            .contains("pushed version 2 (2 services, 1 routes)"));
        assert_eq!(
            (
                pointer(&kv).version,
                pointer(&kv).latest,
                pointer(&kv).history
            ),
            (2, 2, vec![1])
        );
        assert_eq!(
            rollback(&mut kv).unwrap(),
            "rolled back from version 2 to version 1"
        );
        assert_eq!((pointer(&kv).version, pointer(&kv).latest), (1, 2));
        // Nothing older than 1.
        let err = rollback(&mut kv).unwrap_err();
        assert!(err.render().contains("no earlier version"), "{err:?}");
        // The next push never reuses version 2.
        assert!(push(&mut kv, V1).unwrap().starts_with("pushed version 3"));
        assert_eq!(kv.values["config/versions/2"], V2);
        assert_eq!(pointer(&kv).history, vec![1]);
    }

    #[test]
    fn invalid_document_is_not_pushed() {
        let mut kv = MemoryKv::default();
        let err = push(
            &mut kv,
            r#"{"format_version": 1, "routes": [{"name": "r", "service": "x"}]}"#,
        )
        .unwrap_err();
        assert_eq!(
            err,
            CliError::Invalid(vec![ValidationError {
                path: "routes[0].service".into(),
                message: "unknown service \"x\"".into()
            }])
        );
        assert!(kv.writes.is_empty());
    }

    /// docs/configuration.md: `history` keeps at most 100 versions, most recent last; `latest` never
    /// goes back, so a number is never reused, even after a rollback.
    #[test]
    fn history_keeps_the_last_100_versions_and_numbers_are_never_reused() {
        let mut kv = MemoryKv::default();
        for _ in 0..102 {
            push(&mut kv, V1).unwrap();
        }
        let p = pointer(&kv);
        assert_eq!((p.version, p.latest), (102, 102));
        assert_eq!(p.history, (2..=101).collect::<Vec<u64>>());
        rollback(&mut kv).unwrap();
        let msg = push(&mut kv, V2).unwrap();
        assert_eq!(
            msg,
            "pushed version 103 (2 services, 1 routes); now in service (previously: version 101)"
        );
    }

    #[test]
    fn diff_lists_what_a_push_would_change_by_name_never_values() {
        let mut kv = MemoryKv::default();
        let first = diff(&mut kv, "c.json", V1, None).unwrap();
        assert_eq!(
            first,
            "comparing c.json with nothing (no configuration has been pushed yet):\n\
             + service \"echo\"\n+ route \"all\"\n2 changes"
        );
        push(&mut kv, V1).unwrap();
        assert_eq!(
            diff(&mut kv, "c.json", V1, None).unwrap(),
            "no changes: c.json is the same configuration as config/versions/1 (in service)"
        );
        let next = r#"{"format_version": 1,
            "services": [{"name": "echo", "url": "http://127.0.0.1:9001", "timeout_ms": 60000,
                          "headers": {"authorization": "Bearer s3cret"}}],
            "routes": [{"name": "all", "service": "echo", "methods": ["GET"]}, {"name": "x", "service": "echo", "paths": ["/x"]}],
            "plugins": [{"name": "key-auth", "route": "x"}]}"#;
        let out = diff(&mut kv, "next.json", next, None).unwrap();
        assert_eq!(
            out,
            "comparing next.json with config/versions/1 (in service):\n\
             ~ service \"echo\": headers\n~ route \"all\": methods\n+ route \"x\"\n\
             + plugin \"key-auth\" (id \"key-auth\", route \"x\")\n4 changes"
        );
        assert!(!out.contains("s3cret"));
        push(&mut kv, V2).unwrap();
        let out = diff(&mut kv, "c.json", V1, None).unwrap();
        assert!(out.ends_with("- service \"b\"\n1 change"), "{out}");
        assert!(diff(&mut kv, "c.json", V1, Some(1)).unwrap().starts_with(
            "no changes: c.json is the same configuration as config/versions/1 (not in service)"
        ));
        assert_eq!(
            diff(&mut kv, "c.json", V1, Some(9)).unwrap_err().render(),
            "error: config/versions/9 is missing"
        );
        assert_eq!(kv.writes.len(), 6, "diff writes nothing");
        kv.values.insert(
            "config/versions/5".into(),
            r#"{"format_version": 9}"#.into(),
        );
        assert_eq!(
            diff(&mut kv, "c.json", V1, Some(5)).unwrap_err().render(),
            "error: config/versions/5 is not valid for this gateway (see `show --version 5`); cannot compare"
        );
    }

    #[test]
    fn push_never_overwrites_an_existing_version() {
        let mut kv = MemoryKv::default();
        push(&mut kv, V1).unwrap();
        // An interrupted push left version 2 without moving the pointer.
        kv.values
            .insert("config/versions/2".into(), "orphan".into());
        let msg = push(&mut kv, V2).unwrap();
        assert!(msg.starts_with("pushed version 3"), "{msg}");
        assert!(
            msg.contains("config/versions/2 to config/versions/2 already existed"),
            "{msg}"
        );
        assert_eq!(kv.values["config/versions/2"], "orphan");
        assert_eq!(
            pointer(&kv),
            Pointer {
                version: 3,
                latest: 3,
                history: vec![1]
            }
        );
    }

    #[test]
    fn failed_document_write_leaves_pointer_alone() {
        let mut kv = MemoryKv::default();
        push(&mut kv, V1).unwrap();
        kv.fail_put_of = Some("config/versions/2".into());
        let err = push(&mut kv, V2).unwrap_err();
        assert!(
            err.render().contains("version 2 is not in service"),
            "{err:?}"
        );
        assert_eq!(pointer(&kv).version, 1);
    }

    #[test]
    fn failed_pointer_write_keeps_previous_version_in_service() {
        let mut kv = MemoryKv::default();
        push(&mut kv, V1).unwrap();
        kv.fail_put_of = Some(POINTER_KEY.into());
        let err = push(&mut kv, V2).unwrap_err();
        assert!(
            err.render()
                .contains("previous version is still in service"),
            "{err:?}"
        );
        assert_eq!(pointer(&kv).version, 1);
        // The next push skips the orphan.
        kv.fail_put_of = None;
        assert!(push(&mut kv, V2).unwrap().starts_with("pushed version 3"));
    }

    #[test]
    fn corrupt_pointer_stops_push() {
        let mut kv = MemoryKv::default();
        kv.values.insert(POINTER_KEY.into(), "{oops".into());
        let err = push(&mut kv, V1).unwrap_err();
        assert!(
            err.render()
                .contains("config/current is not a valid pointer"),
            "{err:?}"
        );
        assert!(kv.writes.is_empty());
    }

    #[test]
    fn rollback_refuses_missing_or_invalid_target() {
        let mut kv = MemoryKv::default();
        assert!(rollback(&mut kv)
            .unwrap_err()
            .render()
            .contains("no configuration has been pushed"));
        push(&mut kv, V1).unwrap();
        push(&mut kv, V2).unwrap();
        kv.values.remove("config/versions/1");
        let err = rollback(&mut kv).unwrap_err();
        assert_eq!(
            err.render(),
            "error: cannot roll back to version 1: config/versions/1 is missing"
        );
        kv.values.insert(
            "config/versions/1".into(),
            r#"{"format_version": 9}"#.into(),
        );
        let err = rollback(&mut kv).unwrap_err().render();
        assert!(
            err.contains("this gateway would reject it:\n  format_version: unsupported"),
            "{err}"
        );
        assert_eq!(pointer(&kv).version, 2);
    }

    #[test]
    fn show_prints_pointer_status_and_pretty_document() {
        let mut kv = MemoryKv::default();
        assert!(show(&mut kv, None)
            .unwrap_err()
            .render()
            .contains("no configuration has been pushed"));
        push(&mut kv, V1).unwrap();
        push(&mut kv, V2).unwrap();
        let out = show(&mut kv, None).unwrap();
        let mut lines = out.lines();
        assert_eq!(
            lines.next(),
            Some(r#"config/current: {"version":2,"latest":2,"history":[1]}"#)
        );
        assert_eq!(
            lines.next(),
            Some("in service: version 2 (latest pushed: 2; rollback goes to version 1)")
        );
        assert_eq!(
            lines.next(),
            Some("config/versions/2 (in service): ok: 2 services, 1 routes; shown with defaults filled in")
        );
        assert_eq!(lines.next(), Some("{"));
        assert!(out.contains("\n  \"format_version\": 1,"), "{out}");
        assert!(
            out.contains("\"timeout_ms\": 60000"),
            "defaults are shown: {out}"
        );

        let out = show(&mut kv, Some(1)).unwrap();
        assert!(out.contains("config/versions/1 (not in service): ok: 1 services, 1 routes"));
        let err = show(&mut kv, Some(7)).unwrap_err();
        assert_eq!(err.render(), "error: config/versions/7 is missing");
    }

    #[test]
    fn show_a_version_without_pointer_and_an_invalid_document() {
        let mut kv = MemoryKv::default();
        kv.values
            .insert("config/versions/4".into(), "not json".into());
        let out = show(&mut kv, Some(4)).unwrap();
        assert!(
            out.starts_with("config/current: missing (nothing in service)\n"),
            "{out}"
        );
        assert!(
            out.contains("config/versions/4 (not in service): INVALID"),
            "{out}"
        );
        assert!(out.contains("  $: invalid JSON"), "{out}");
        assert!(out.ends_with("\nstored text:\nnot json"), "{out}");
    }

    /// The `console` examples of docs/configuration.md's `push`, `rollback` and `show` sections, replayed:
    /// kv-seed/config.json then a one-service document pushed, shown, rolled back twice.
    #[test]
    fn the_documented_console_sessions_are_what_the_commands_print() {
        const DOC: &str = include_str!("../../../docs/configuration.md");
        const SEED: &str = include_str!("../../../kv-seed/config.json");
        const NEW: &str =
            r#"{"format_version": 1, "services": [{"name": "a", "url": "http://a"}]}"#;
        // Each session: the `$ scripts/config ...` lines and what follows each, up to the next one.
        let sessions: Vec<Vec<(String, String)>> = DOC
            .split("```console\n")
            .skip(1)
            .map(|block| {
                let block = block.split("\n```").next().unwrap();
                let mut out: Vec<(String, String)> = Vec::new();
                for line in block.lines() {
                    match line.strip_prefix("$ ") {
                        Some(cmd) => out.push((cmd.to_string(), String::new())),
                        None => {
                            let last = out.last_mut().unwrap();
                            last.1.push_str(line);
                            last.1.push('\n');
                        }
                    }
                }
                out
            })
            .collect();
        let find = |prefix: &str| -> Vec<(String, String)> {
            sessions
                .iter()
                .find(|s| s[0].0.starts_with(prefix))
                .unwrap_or_else(|| panic!("no console block starting with {prefix}"))
                .clone()
        };
        let expect = |cmd: &(String, String), actual: Result<String, CliError>| {
            let actual = match actual {
                Ok(text) => format!("{}\n", text.trim_end()),
                Err(e) => format!("{}\n", e.render()),
            };
            assert_eq!(actual, cmd.1, "docs/configuration.md: `{}`", cmd.0);
        };

        let validate_session = find("scripts/config validate kv-seed/config.json");
        expect(&validate_session[0], validate(SEED));

        let compile_session = find("scripts/config compile kv-seed/config.json");
        let (bytes, summary) = compile(SEED).unwrap();
        let documented = compile_session[0]
            .1
            .replace("(4321 bytes)", &format!("({} bytes)", bytes.len()));
        assert_eq!(
            documented,
            format!(
                "{summary}; compiled form written to /tmp/config.compiled ({} bytes)\n",
                bytes.len()
            )
        );

        let mut kv = MemoryKv::default();
        let pushes = find("scripts/config push kv-seed/config.json");
        expect(&pushes[0], push(&mut kv, SEED));
        expect(&pushes[1], push(&mut kv, NEW));
        let shown = find("scripts/config show");
        expect(&shown[0], show(&mut kv, None));
        let diffs = find("scripts/config diff new.json");
        let mut fresh = MemoryKv::default();
        push(&mut fresh, NEW).unwrap();
        let changed = r#"{"format_version": 1, "services": [{"name": "a", "url": "http://a", "timeout_ms": 5000}],
            "routes": [{"name": "r", "service": "a", "paths": ["/r"]}]}"#;
        expect(&diffs[0], diff(&mut fresh, "new.json", changed, None));
        let rollbacks = find("scripts/config rollback");
        expect(&rollbacks[0], rollback(&mut kv));
        expect(&rollbacks[1], rollback(&mut kv));
    }

    #[test]
    fn show_hides_credential_headers_everywhere() {
        let doc = r#"{"format_version": 1,
            "services": [{"name": "a", "url": "http://a",
                          "headers": {"Authorization": "Bearer s3cret", "x-api-key": "s3cret", "x-from": "edgegate"}}],
            "routes": [{"name": "r", "service": "a", "headers": {"x-internal-token": ["s3cret"], "x-env": ["prod"]}}],
            "plugins": [{"name": "request-transformer", "route": "r",
                         "config": {"add": {"headers": ["x-auth-token:s3cret", "x-plain:visible"]}}}]}"#;
        let mut kv = MemoryKv::default();
        push(&mut kv, doc).unwrap();
        let out = show(&mut kv, None).unwrap();
        assert!(!out.contains("s3cret"), "{out}");
        for shown in [
            "\"Authorization\": \"<redacted>\"",
            "\"x-api-key\": \"<redacted>\"",
            "\"x-from\": \"edgegate\"",
            "\"<redacted>\"\n",
            "\"prod\"",
            "\"x-auth-token:<redacted>\"",
            "\"x-plain:visible\"",
        ] {
            assert!(out.contains(shown), "{shown} in {out}");
        }
        // An invalid stored document is shown redacted too (when it is JSON).
        kv.values.insert(
            "config/versions/9".into(),
            r#"{"format_version": 1, "services": [{"name": "a", "url": "http://a", "timeout_ms": 0,
                "headers": {"authorization": "Bearer s3cret"}}]}"#
                .into(),
        );
        let out = show(&mut kv, Some(9)).unwrap();
        assert!(out.contains("INVALID"), "{out}");
        assert!(!out.contains("s3cret"), "{out}");
        assert!(out.contains("\"authorization\": \"<redacted>\""), "{out}");
    }

    #[test]
    fn show_hides_kongs_redis_passwords() {
        let doc = r#"{"format_version": 1,
            "services": [{"name": "a", "url": "http://a"}],
            "plugins": [{"name": "rate-limiting", "config": {"minute": 5, "policy": "redis",
                         "redis_host": "redis.internal", "redis_password": "s3cret-flat",
                         "redis": {"host": "redis.internal", "password": "s3cret-nested",
                                   "sentinel_password": "s3cret-sentinel"}}}]}"#;
        let mut kv = MemoryKv::default();
        push(&mut kv, doc).unwrap();
        let out = show(&mut kv, None).unwrap();
        assert!(!out.contains("s3cret"), "{out}");
        for shown in [
            "\"redis_password\": \"<redacted>\"",
            "\"password\": \"<redacted>\"",
            "\"sentinel_password\": \"<redacted>\"",
            "\"redis_host\": \"redis.internal\"",
        ] {
            assert!(out.contains(shown), "{shown} in {out}");
        }
        // An invalid stored document too.
        kv.values.insert(
            "config/versions/9".into(),
            r#"{"format_version": 1, "services": [{"name": "a", "url": "http://a", "timeout_ms": 0}],
                "plugins": [{"name": "rate-limiting", "config": {"minute": 5, "redis_password": "s3cret"}}]}"#
                .into(),
        );
        let out = show(&mut kv, Some(9)).unwrap();
        assert!(out.contains("INVALID"), "{out}");
        assert!(!out.contains("s3cret"), "{out}");
        // Nor does a validation error quote it.
        let bad = r#"{"format_version": 1, "services": [{"name": "a", "url": "http://a"}],
            "plugins": [{"name": "rate-limiting", "config": {"minute": 0, "redis_password": "s3cret"}}]}"#;
        let errors = format!(
            "{:?}",
            edgegate_core::config::parse_and_validate(bad).unwrap_err()
        );
        assert!(errors.contains("minute"), "{errors}");
        assert!(!errors.contains("s3cret"), "{errors}");
    }

    /// `validate`, `compile` and `push` print a key that may be a secret only as its placeholder.
    #[test]
    fn a_secret_pasted_as_a_key_is_not_printed() {
        let secret = "Authorization: Bearer sk-live-0123456789abcdef";
        let doc = serde_json::json!({
            "format_version": 1,
            "services": [{"name": "a", "url": "http://a.example", "headers": {secret: "x"}}],
            "routes": [{"name": "r", "service": "a", "headers": {secret: ["x"]}}],
        })
        .to_string();
        let mut kv = MemoryKv::default();
        for err in [
            validate(&doc).unwrap_err(),
            compile(&doc).unwrap_err(),
            push(&mut kv, &doc).unwrap_err(),
        ] {
            let text = err.render();
            assert!(
                !text.contains("sk-live") && !text.contains("Bearer"),
                "{text}"
            );
            assert!(
                text.starts_with(
                    "services[0].headers[<hidden key, 46 characters>]: not a valid header name"
                ),
                "{text}"
            );
            assert!(
                text.contains("\nroutes[0].headers[<hidden key, 46 characters>]: "),
                "{text}"
            );
        }
        assert!(kv.values.is_empty() && kv.binary.is_empty());
    }

    #[test]
    fn push_stores_a_compiled_form_the_gateway_loads_without_validating() {
        let mut kv = MemoryKv::default();
        push(&mut kv, V2).unwrap();
        let blob = &kv.binary["config/compiled/1"];
        let gateway = Gateway::from_compiled(blob.clone(), V2.as_bytes().to_vec())
            .expect("compiled form is used");
        assert_eq!(gateway.summary(), (2, 1));
        // It belongs to the document it was made from only.
        assert!(matches!(
            Gateway::from_compiled(blob.clone(), V1.as_bytes().to_vec()),
            Err((edgegate_core::compiled::Unused::Stale, _))
        ));
    }

    #[test]
    fn compile_makes_the_same_bytes_as_push_and_refuses_invalid_documents() {
        let mut kv = MemoryKv::default();
        push(&mut kv, V1).unwrap();
        let (bytes, summary) = compile(V1).unwrap();
        assert_eq!(summary, "ok: 1 services, 1 routes");
        assert_eq!(bytes, kv.binary["config/compiled/1"]);
        let err = compile(r#"{"format_version": 1, "routes": [{"name": "r", "service": "nope"}]}"#)
            .unwrap_err();
        assert_eq!(err.render(), "routes[0].service: unknown service \"nope\"");
    }

    #[test]
    fn failed_compiled_write_leaves_pointer_alone() {
        let mut kv = MemoryKv::default();
        push(&mut kv, V1).unwrap();
        kv.fail_put_of = Some("config/compiled/2".into());
        let err = push(&mut kv, V2).unwrap_err();
        assert!(err
            .render()
            .contains("previous version is still in service"));
        assert_eq!(pointer(&kv).version, 1);
    }
}
