//! `redirect` (Kong's plugin of that name): answer with a 3xx and a `Location` instead of calling
//! the origin. `location` is a fixed URL (or an absolute path on the same host) that may name the
//! route's path parameters, `$(uri_captures.name)`; `keep_incoming_path` (Kong) replaces its path and
//! query with the request's, `keep_incoming_query` (edgegate) adds the request's query to it.

use crate::plugins::{settings, PluginError};
use serde::Deserialize;
use serde_json::Value;

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[cfg_attr(
    feature = "schema",
    derive(schemars::JsonSchema),
    schemars(
        rename = "RedirectPluginConfig",
        description = "Settings of the `redirect` plugin (docs/plugins.md#redirect)."
    )
)]
#[serde(deny_unknown_fields)]
pub(crate) struct Settings {
    #[serde(default = "default_status")]
    status_code: u16,
    location: String,
    #[serde(default)]
    keep_incoming_path: bool,
    #[serde(default)]
    keep_incoming_query: bool,
}

fn default_status() -> u16 {
    301
}

/// The statuses `status_code` accepts.
pub const STATUSES: [u16; 5] = [301, 302, 303, 307, 308];

/// Body of every redirect (Kong's).
pub const BODY: &str = "redirecting";

/// A compiled `redirect` config.
#[derive(Debug, Clone, PartialEq)]
pub struct RedirectConfig {
    pub status_code: u16,
    location: Vec<Part>,
    pub keep_incoming_path: bool,
    pub keep_incoming_query: bool,
}

#[derive(Debug, Clone, PartialEq)]
enum Part {
    Lit(String),
    Capture(String),
}

fn err(path: &str, message: impl Into<String>) -> PluginError {
    PluginError::Config(vec![(path.into(), message.into())])
}

/// Parse and validate a `redirect` config (the registry's parser).
pub fn parse(config: &Value) -> Result<RedirectConfig, PluginError> {
    let s = settings::<Settings>(config)?;
    if !STATUSES.contains(&s.status_code) {
        return Err(err(
            "status_code",
            format!(
                "{} is not a redirect status: use 301, 302, 303, 307 or 308",
                s.status_code
            ),
        ));
    }
    let location = template(&ascii_location(&s.location)?).map_err(|m| err("location", m))?;
    let literal_start: String = match location.first() {
        Some(Part::Lit(l)) => l.clone(),
        _ => String::new(),
    };
    let absolute = ["http://", "https://"].iter().any(|p| {
        literal_start.len() > p.len() && literal_start.to_ascii_lowercase().starts_with(p)
    });
    let path = literal_start.starts_with('/') && !literal_start.starts_with("//");
    if !absolute && !path {
        return Err(err(
            "location",
            // Not quoted: a value that is not a URL may be anything pasted in the wrong place.
            "neither an http(s) URL nor a path starting with `/` (not `//`; it must begin with one, before any template)",
        ));
    }
    if s.location.chars().any(|c| c.is_control() || c == ' ') {
        return Err(err(
            "location",
            "spaces and control characters are not allowed; percent-encode them",
        ));
    }
    Ok(RedirectConfig {
        status_code: s.status_code,
        location,
        keep_incoming_path: s.keep_incoming_path,
        keep_incoming_query: s.keep_incoming_query,
    })
}

/// `location` with every non-ASCII character percent-encoded (UTF-8), as the URL standard writes a
/// path, query or fragment: `Location` is a URI reference, ASCII (unencoded, workerd sent the raw
/// UTF-8 bytes, which clients read as Latin-1). A non-ASCII host is refused: it must be written in
/// punycode (`xn--...`).
fn ascii_location(location: &str) -> Result<String, PluginError> {
    if location.is_ascii() {
        return Ok(location.to_string());
    }
    if let Some(i) = location.find("://") {
        let rest = &location[i + 3..];
        let end = rest.find(['/', '\\', '?', '#']).unwrap_or(rest.len());
        if !rest[..end].is_ascii() {
            return Err(err(
                "location",
                "a host with non-ASCII characters must be written in punycode (`xn--...`)",
            ));
        }
    }
    let mut out = String::with_capacity(location.len() * 2);
    for c in location.chars() {
        if c.is_ascii() {
            out.push(c);
        } else {
            let mut buf = [0u8; 4];
            for b in c.encode_utf8(&mut buf).bytes() {
                out.push_str(&format!("%{b:02X}"));
            }
        }
    }
    Ok(out)
}

/// Whether text appended to `s` lands in the authority (user info, host, port) of an absolute URL:
/// `s` has a `://` and nothing after it ends the authority yet.
fn in_authority(s: &str) -> bool {
    s.find("://")
        .is_some_and(|i| !s[i + 3..].contains(ENDS_AUTHORITY))
}

/// The characters that end the authority of an http(s) URL (`\\` as `/`, as browsers read it).
const ENDS_AUTHORITY: [char; 4] = ['/', '\\', '?', '#'];

/// Append a capture to the authority of the location without letting it change the host: the
/// characters that would end the host or turn it into user info (`@`, `/`, `\`, `?`, `#`) are
/// percent-encoded, which makes such a host invalid instead of another host.
fn push_host_safe(out: &mut String, value: &str) {
    for c in value.chars() {
        match c {
            '@' => out.push_str("%40"),
            '/' => out.push_str("%2F"),
            '\\' => out.push_str("%5C"),
            '?' => out.push_str("%3F"),
            '#' => out.push_str("%23"),
            c => out.push(c),
        }
    }
}

/// Split `text` into literals and `$(uri_captures.name)` references.
fn template(text: &str) -> Result<Vec<Part>, String> {
    let mut parts = Vec::new();
    let mut rest = text;
    while let Some(at) = rest.find("$(") {
        if at > 0 {
            parts.push(Part::Lit(rest[..at].to_string()));
        }
        let after = &rest[at + 2..];
        let end = after
            .find(')')
            .ok_or_else(|| format!("unclosed `$(` at byte {}", text.len() - rest.len() + at))?;
        let inner = after[..end].trim();
        // The text inside `$(...)` is shown only when it looks like a name (it may be anything).
        let shown = crate::config::path_error::quote_as(inner, "", "text");
        let name = inner.strip_prefix("uri_captures.").ok_or_else(|| {
            format!("unknown template `$({shown})`: only `$(uri_captures.<name>)` is supported")
        })?;
        if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
            return Err(format!(
                "`$({shown})`: a capture name is letters, digits and `_`"
            ));
        }
        parts.push(Part::Capture(name.to_string()));
        rest = &after[end + 1..];
    }
    if !rest.is_empty() {
        parts.push(Part::Lit(rest.to_string()));
    }
    Ok(parts)
}

impl RedirectConfig {
    /// The `Location` for a request with this `path` and raw `query` (no `?`), matched with these
    /// route `captures`.
    pub fn location(&self, path: &str, query: &str, captures: &[(String, String)]) -> String {
        let mut out = String::new();
        for (k, p) in self.location.iter().enumerate() {
            match p {
                Part::Lit(l) => out.push_str(l),
                Part::Capture(name) => {
                    let Some((_, v)) = captures.iter().find(|(n, _)| n == name) else {
                        continue;
                    };
                    if !in_authority(&out) {
                        out.push_str(v);
                    } else if matches!(self.location.get(k + 1), Some(Part::Lit(l)) if !l.starts_with(ENDS_AUTHORITY))
                        || matches!(self.location.get(k + 1), Some(Part::Capture(_)))
                    {
                        // More of the host follows: the value cannot end it or add user info.
                        push_host_safe(&mut out, v);
                    } else {
                        // The value would end the host: it may only start the path (or query).
                        if !v.is_empty() && !v.starts_with(ENDS_AUTHORITY) {
                            out.push('/');
                        }
                        out.push_str(v);
                    }
                }
            }
        }
        // A capture must not turn a same-host path into another host (`//evil.example`).
        if out.starts_with('/') {
            let trimmed = out.trim_start_matches(['/', '\\']);
            out = format!("/{trimmed}");
        }
        let (before_fragment, fragment) = match out.find('#') {
            Some(i) => (out[..i].to_string(), &out[i..]),
            None => (out.clone(), ""),
        };
        let (base, own_query) = before_fragment
            .split_once('?')
            .map_or((before_fragment.as_str(), ""), |(b, q)| (b, q));
        if self.keep_incoming_path {
            // Kong: the location's path and query become the request's.
            let origin_end = base
                .find("://")
                .map(|i| base[i + 3..].find('/').map_or(base.len(), |j| i + 3 + j))
                .unwrap_or(0);
            let mut s = format!("{}{path}", &base[..origin_end]);
            if origin_end == 0 {
                // A relative location takes the request's path: `//evil.example` must stay a path.
                s = format!("/{}", s.trim_start_matches(['/', '\\']));
            }
            if !query.is_empty() {
                s.push('?');
                s.push_str(query);
            }
            s.push_str(fragment);
            return s;
        }
        if self.keep_incoming_query && !query.is_empty() {
            let joined = if own_query.is_empty() {
                query.to_string()
            } else {
                format!("{own_query}&{query}")
            };
            return format!("{base}?{joined}{fragment}");
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    #[cfg(target_arch = "wasm32")]
    use wasm_bindgen_test::wasm_bindgen_test as test;

    fn cfg(v: Value) -> RedirectConfig {
        parse(&v).unwrap()
    }

    fn error(v: Value) -> (String, String) {
        match parse(&v) {
            Err(PluginError::Config(mut e)) => e.remove(0),
            other => panic!("expected an error, got {other:?}"),
        }
    }

    #[test]
    fn fixed_location_and_default_status() {
        let c = cfg(json!({"location": "https://new.example.com/docs"}));
        assert_eq!(c.status_code, 301);
        assert_eq!(
            c.location("/old", "a=1", &[]),
            "https://new.example.com/docs"
        );
    }

    #[test]
    fn keep_incoming_path_replaces_path_and_query_like_kong() {
        let c = cfg(
            json!({"location": "https://new.example.com/some-path?x=1#top", "keep_incoming_path": true}),
        );
        assert_eq!(
            c.location("/demo", "foo=bar", &[]),
            "https://new.example.com/demo?foo=bar#top"
        );
        assert_eq!(
            c.location("/demo", "", &[]),
            "https://new.example.com/demo#top"
        );
        let c = cfg(json!({"location": "https://new.example.com", "keep_incoming_path": true}));
        assert_eq!(
            c.location("/demo", "foo=bar", &[]),
            "https://new.example.com/demo?foo=bar"
        );
        let c = cfg(json!({"location": "/v2", "keep_incoming_path": true}));
        assert_eq!(c.location("/v1/x", "", &[]), "/v1/x");
    }

    #[test]
    fn keep_incoming_query_adds_the_query() {
        let c = cfg(json!({"location": "https://n.example/a?x=1", "keep_incoming_query": true}));
        assert_eq!(c.location("/p", "q=2", &[]), "https://n.example/a?x=1&q=2");
        assert_eq!(c.location("/p", "", &[]), "https://n.example/a?x=1");
        let c = cfg(json!({"location": "/b", "keep_incoming_query": true}));
        assert_eq!(c.location("/p", "q=2", &[]), "/b?q=2");
    }

    #[test]
    fn a_kept_path_cannot_make_a_relative_location_another_host() {
        let c = cfg(json!({"location": "/moved", "keep_incoming_path": true}));
        assert_eq!(c.location("//evil.example/x", "", &[]), "/evil.example/x");
        assert_eq!(
            c.location("/\\evil.example", "q=1", &[]),
            "/evil.example?q=1"
        );
        assert_eq!(c.location("/a//b", "", &[]), "/a//b");
        let abs = cfg(json!({"location": "https://new.example/moved", "keep_incoming_path": true}));
        assert_eq!(
            abs.location("//evil.example/x", "", &[]),
            "https://new.example//evil.example/x"
        );
    }

    #[test]
    fn a_capture_in_the_host_cannot_change_the_host() {
        let caps = |v: &str| vec![("rest".to_string(), v.to_string())];
        // At the end of the host: the value starts the path.
        let c = cfg(json!({"location": "https://example.com$(uri_captures.rest)"}));
        for (value, location) in [
            ("@evil.example", "https://example.com/@evil.example"),
            (".evil.example", "https://example.com/.evil.example"),
            (
                ":8443@evil.example",
                "https://example.com/:8443@evil.example",
            ),
            ("/a@b", "https://example.com/a@b"),
            ("?q=1", "https://example.com?q=1"),
            ("", "https://example.com"),
        ] {
            assert_eq!(c.location("/x", "", &caps(value)), location, "{value}");
        }
        // Inside the host: what would end it or add user info is percent-encoded.
        let sub = cfg(json!({"location": "https://api-$(uri_captures.rest).example.com/"}));
        assert_eq!(
            sub.location("/x", "", &caps("evil.test/@x?#\\")),
            "https://api-evil.test%2F%40x%3F%23%5C.example.com/"
        );
        assert_eq!(
            sub.location("/x", "", &caps("eu")),
            "https://api-eu.example.com/"
        );
        // In the path, the value is copied as it is.
        let p = cfg(json!({"location": "https://example.com/$(uri_captures.rest)"}));
        assert_eq!(
            p.location("/x", "", &caps("a@b/c")),
            "https://example.com/a@b/c"
        );
    }

    #[test]
    fn captures_fill_the_template() {
        let caps = vec![("id".to_string(), "42".to_string())];
        let c = cfg(
            json!({"location": "https://n.example/users/$(uri_captures.id)/profile", "status_code": 308}),
        );
        assert_eq!(
            c.location("/u/42", "", &caps),
            "https://n.example/users/42/profile"
        );
        assert_eq!(
            c.location("/u", "", &[]),
            "https://n.example/users//profile"
        );
        let c = cfg(json!({"location": "/$(uri_captures.rest)"}));
        let evil = vec![("rest".to_string(), "/evil.example/x".to_string())];
        assert_eq!(c.location("/", "", &evil), "/evil.example/x");
    }

    #[test]
    fn bad_settings_name_their_field() {
        assert_eq!(error(json!({})).0, "");
        assert!(error(json!({})).1.contains("location"));
        assert_eq!(
            error(json!({"location": "/a", "status_code": 200})).0,
            "status_code"
        );
        assert_eq!(error(json!({"location": "ftp://x"})).0, "location");
        assert_eq!(error(json!({"location": "//evil.example"})).0, "location");
        assert_eq!(
            error(json!({"location": "$(uri_captures.x)"})).0,
            "location"
        );
        assert_eq!(error(json!({"location": "/a/$(headers.x)"})).0, "location");
        // The text inside `$(...)` is quoted only when it looks like a name, as keys are in paths.
        assert_eq!(
            error(json!({"location": "/a/$(headers.x)"})).1,
            "unknown template `$(headers.x)`: only `$(uri_captures.<name>)` is supported"
        );
        assert_eq!(
            error(json!({"location": "/a/$( Authorization: Bearer sk-1 )"})).1,
            "unknown template `$(<hidden text, 26 characters>)`: only `$(uri_captures.<name>)` is supported"
        );
        assert_eq!(
            error(json!({"location": "/a/$(uri_captures.a-b)"})).1,
            "`$(uri_captures.a-b)`: a capture name is letters, digits and `_`"
        );
        assert_eq!(
            error(json!({"location": "/a/$(uri_captures.sk-live-0123456789abcdef)"})).1,
            "`$(<hidden text, 37 characters>)`: a capture name is letters, digits and `_`"
        );
        assert_eq!(
            error(json!({"location": "/a/$(uri_captures.x"})).0,
            "location"
        );
        assert_eq!(error(json!({"location": "/a b"})).0, "location");
        // Non-ASCII: percent-encoded (UTF-8) outside the host, refused in the host.
        let c = cfg(json!({"location": "https://ex.example/caf\u{e9}/\u{20ac}?q=\u{fc}#\u{e9}"}));
        assert_eq!(
            c.location("/", "", &[]),
            "https://ex.example/caf%C3%A9/%E2%82%AC?q=%C3%BC#%C3%A9"
        );
        assert_eq!(
            cfg(json!({"location": "/\u{e9}/$(uri_captures.id)"})).location(
                "/",
                "",
                &[("id".into(), "7".into())]
            ),
            "/%C3%A9/7"
        );
        assert!(error(json!({"location": "https://b\u{fc}cher.example/"}))
            .1
            .contains("punycode"));
        // The location is not quoted: what is not a URL may be anything, a secret included.
        let (path, message) = error(json!({"location": "Bearer sk-SECRET"}));
        assert_eq!(path, "location");
        assert!(message.starts_with("neither an http(s) URL"), "{message}");
        assert!(!message.contains("SECRET"), "{message}");
        assert!(error(json!({"location": "/a", "extra": 1}))
            .1
            .contains("unknown field"));
    }
}
