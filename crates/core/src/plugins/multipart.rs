//! `multipart/form-data` bodies (RFC 7578, RFC 2046 section 5.1) for request-transformer's body rules:
//! parts are read by their `Content-Disposition` name, and a body is written back with the same
//! boundary, parts no rule touches keeping their exact bytes (headers, file contents and all).

use super::transform::Rules;
use crate::error::{ErrorKind, GatewayError};
use crate::template::RequestVars;

/// The `boundary` parameter of a `multipart/form-data` Content-Type (quoted or not, 1 to 70 characters,
/// RFC 2046), or `None` when there is none or it is not usable.
pub fn boundary(content_type: &str) -> Option<String> {
    let mut params = content_type.split(';');
    let media = params.next()?.trim();
    if !media.eq_ignore_ascii_case("multipart/form-data") {
        return None;
    }
    for param in split_params(&content_type[content_type.find(';')? + 1..]) {
        let Some((name, value)) = param.split_once('=') else {
            continue;
        };
        if !name.trim().eq_ignore_ascii_case("boundary") {
            continue;
        }
        let value = unquote(value.trim())?;
        let usable = (1..=70).contains(&value.len())
            && !value.ends_with(' ')
            && value.bytes().all(|b| b.is_ascii_graphic() || b == b' ');
        return usable.then_some(value);
    }
    None
}

/// `a; b="x;y"; c` -> `a`, ` b="x;y"`, ` c`: split on `;` outside quoted strings.
fn split_params(s: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let (mut start, mut quoted, mut escaped) = (0, false, false);
    for (i, c) in s.char_indices() {
        match c {
            _ if escaped => escaped = false,
            '\\' if quoted => escaped = true,
            '"' => quoted = !quoted,
            ';' if !quoted => {
                out.push(&s[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    out.push(&s[start..]);
    out
}

/// A parameter value: a token as it is, or a quoted string without its quotes and escapes. `None` for
/// an unterminated quoted string.
fn unquote(v: &str) -> Option<String> {
    let Some(inner) = v.strip_prefix('"') else {
        return Some(v.to_string());
    };
    let mut out = String::new();
    let mut chars = inner.chars();
    while let Some(c) = chars.next() {
        match c {
            '"' => return Some(out),
            '\\' => out.push(chars.next()?),
            c => out.push(c),
        }
    }
    None
}

/// One part: its bytes between the delimiter lines (headers, blank line, content), and the name its
/// `Content-Disposition` gives it.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Part {
    name: Option<String>,
    raw: Vec<u8>,
}

impl Part {
    /// A text field written by a rule: `Content-Disposition: form-data; name="..."` and the value.
    fn field(name: &str, value: &str) -> Part {
        let mut raw = Vec::with_capacity(name.len() + value.len() + 48);
        raw.extend_from_slice(b"Content-Disposition: form-data; name=\"");
        raw.extend_from_slice(escape_name(name).as_bytes());
        raw.extend_from_slice(b"\"\r\n\r\n");
        raw.extend_from_slice(value.as_bytes());
        Part {
            name: Some(name.to_string()),
            raw,
        }
    }

    /// The same part under another name: the `name` parameter of its `Content-Disposition` rewritten,
    /// every other header and parameter (a `filename`) and the content kept.
    fn renamed(&self, new: &str) -> Part {
        let (head, _) = split_head(&self.raw);
        let mut raw = Vec::with_capacity(self.raw.len() + new.len());
        let mut offset = 0;
        for line in head.split(|&b| b == b'\n') {
            let end = offset + line.len();
            let text = std::str::from_utf8(line).unwrap_or("");
            if let Some(span) = disposition_name_span(text) {
                raw.extend_from_slice(&self.raw[offset..offset + span.0]);
                raw.extend_from_slice(format!("name=\"{}\"", escape_name(new)).as_bytes());
                raw.extend_from_slice(&self.raw[offset + span.1..end]);
            } else {
                raw.extend_from_slice(line);
            }
            if end < head.len() {
                raw.push(b'\n');
            }
            offset = end + 1;
        }
        raw.extend_from_slice(&self.raw[head.len()..]);
        Part {
            name: Some(new.to_string()),
            raw,
        }
    }
}

/// A name in a `name="..."` parameter, as browsers write it (WHATWG HTML): `"`, CR and LF percent-encoded.
fn escape_name(name: &str) -> String {
    name.replace('"', "%22")
        .replace('\r', "%0D")
        .replace('\n', "%0A")
}

/// A part's header block (up to, not including, the blank line) and its content.
fn split_head(raw: &[u8]) -> (&[u8], &[u8]) {
    if raw.starts_with(b"\r\n") {
        return (&[], &raw[2..]);
    }
    match find(raw, b"\r\n\r\n", 0) {
        Some(i) => (&raw[..i], &raw[i + 4..]),
        None => (raw, &[]),
    }
}

/// In a header line, the byte span of the `name=...` parameter when the line is a
/// `Content-Disposition: form-data` header.
fn disposition_name_span(line: &str) -> Option<(usize, usize)> {
    let (field, value) = line.split_once(':')?;
    if !field.trim().eq_ignore_ascii_case("content-disposition") {
        return None;
    }
    let base = field.len() + 1;
    let mut at = 0;
    for (i, param) in split_params(value).into_iter().enumerate() {
        let start = at;
        at += param.len() + 1;
        if i == 0 {
            continue;
        }
        let trimmed = param.trim_start();
        let lead = param.len() - trimmed.len();
        if let Some((n, _)) = trimmed.split_once('=') {
            if n.trim().eq_ignore_ascii_case("name") {
                let end = param.trim_end().len();
                return Some((base + start + lead, base + start + end));
            }
        }
    }
    None
}

/// The `name` parameter of a part's `Content-Disposition`, if any.
fn part_name(raw: &[u8]) -> Option<String> {
    let (head, _) = split_head(raw);
    let head = std::str::from_utf8(head).ok()?;
    for line in head.split("\r\n") {
        if let Some((s, e)) = disposition_name_span(line) {
            let (_, value) = line[s..e].split_once('=')?;
            return unquote(value.trim());
        }
    }
    None
}

fn find(hay: &[u8], needle: &[u8], from: usize) -> Option<usize> {
    if needle.is_empty() || hay.len() < needle.len() {
        return None;
    }
    (from..=hay.len() - needle.len()).find(|&i| &hay[i..i + needle.len()] == needle)
}

/// A `multipart/form-data` body as parts (the preamble and epilogue, which carry nothing, are dropped
/// when the body is written again).
#[derive(Debug, Clone)]
pub struct Multipart {
    boundary: String,
    parts: Vec<Part>,
}

impl Multipart {
    /// The parts of `body`, or `None` when it is not a well-formed multipart body with this boundary
    /// (no opening delimiter, no closing one): it is then sent as it came.
    pub fn parse(body: &[u8], boundary: &str) -> Option<Multipart> {
        let dash = format!("--{boundary}");
        let delimiter = format!("\r\n--{boundary}");
        // The first delimiter: at the very start, or after a preamble that ends in CRLF.
        let mut at = if body.starts_with(dash.as_bytes()) {
            dash.len()
        } else {
            find(body, delimiter.as_bytes(), 0)? + delimiter.len()
        };
        let mut parts = Vec::new();
        loop {
            // After a delimiter: `--` closes the body; otherwise optional whitespace, then CRLF.
            if body[at..].starts_with(b"--") {
                return Some(Multipart {
                    boundary: boundary.to_string(),
                    parts,
                });
            }
            while matches!(body.get(at), Some(b' ' | b'\t')) {
                at += 1;
            }
            if !body[at..].starts_with(b"\r\n") {
                return None;
            }
            at += 2;
            let end = find(body, delimiter.as_bytes(), at)?;
            let raw = body[at..end].to_vec();
            parts.push(Part {
                name: part_name(&raw),
                raw,
            });
            at = end + delimiter.len();
        }
    }

    fn has(&self, name: &str) -> bool {
        self.parts.iter().any(|p| p.name.as_deref() == Some(name))
    }

    /// Apply the body rules in Kong's order (remove, rename, replace, add, append); whether anything
    /// changed. `remove` and `rename` act on every part of that name, file parts included (a renamed
    /// file keeps its filename and bytes); `replace` turns the first part of that name into a text field
    /// with the new value and drops the others; `add` and `append` write text fields. An error when a
    /// value written would contain the boundary's delimiter (it would cut the body there).
    pub fn apply(&mut self, rules: &Rules, vars: &RequestVars<'_>) -> Result<bool, GatewayError> {
        let before = self.parts.clone();
        let field = |name: &str, value: String| -> Result<Part, GatewayError> {
            if value.contains(&format!("--{}", self.boundary)) {
                return Err(GatewayError::new(
                    ErrorKind::BadRequest,
                    format!(
                        "request-transformer: the value for body field {name:?} contains the multipart boundary of the request body"
                    ),
                ));
            }
            Ok(Part::field(name, &value))
        };
        let mut parts = std::mem::take(&mut self.parts);
        for name in &rules.remove {
            parts.retain(|p| p.name.as_deref() != Some(name.as_str()));
        }
        for (old, new) in &rules.rename {
            if old == new
                || !parts
                    .iter()
                    .any(|p| p.name.as_deref() == Some(old.as_str()))
            {
                continue;
            }
            parts.retain(|p| p.name.as_deref() != Some(new.as_str()));
            for p in parts
                .iter_mut()
                .filter(|p| p.name.as_deref() == Some(old.as_str()))
            {
                *p = p.renamed(new);
            }
        }
        for e in &rules.replace {
            if let Some(first) = parts
                .iter()
                .position(|p| p.name.as_deref() == Some(e.name.as_str()))
            {
                parts[first] = field(&e.name, e.value.render(vars))?;
                let mut i = 0;
                parts.retain(|p| {
                    i += 1;
                    i - 1 == first || p.name.as_deref() != Some(e.name.as_str())
                });
            }
        }
        self.parts = parts;
        for e in &rules.add {
            if !self.has(&e.name) {
                let part = field(&e.name, e.value.render(vars))?;
                self.parts.push(part);
            }
        }
        for e in &rules.append {
            let part = field(&e.name, e.value.render(vars))?;
            self.parts.push(part);
        }
        Ok(self.parts != before)
    }

    /// The body, with the same boundary: each part between delimiter lines, then the closing delimiter.
    pub fn encode(&self) -> Vec<u8> {
        let b = self.boundary.as_bytes();
        let size: usize = self.parts.iter().map(|p| p.raw.len() + b.len() + 6).sum();
        let mut out = Vec::with_capacity(size + b.len() + 6);
        for part in &self.parts {
            out.extend_from_slice(b"--");
            out.extend_from_slice(b);
            out.extend_from_slice(b"\r\n");
            out.extend_from_slice(&part.raw);
            out.extend_from_slice(b"\r\n");
        }
        out.extend_from_slice(b"--");
        out.extend_from_slice(b);
        out.extend_from_slice(b"--\r\n");
        out
    }

    /// The names of the parts, in order (for tests and logs).
    pub fn names(&self) -> Vec<Option<&str>> {
        self.parts.iter().map(|p| p.name.as_deref()).collect()
    }
}

#[cfg(test)]
mod tests {
    #[cfg(target_arch = "wasm32")]
    use wasm_bindgen_test::wasm_bindgen_test as test;

    use super::*;
    use crate::plugins::transform::Entry;
    use crate::template::Template;

    fn vars_none<R>(f: impl FnOnce(&RequestVars<'_>) -> R) -> R {
        let header = |_: &str| None;
        let vars = RequestVars {
            header: &header,
            query: "",
            captures: &[],
            consumer: None,
        };
        f(&vars)
    }

    fn entry(name: &str, value: &str) -> Entry {
        Entry {
            name: name.into(),
            value: Template::parse(value).unwrap(),
            json_type: Default::default(),
        }
    }

    const B: &str = "----WebKitFormBoundary7MA4YWxkTrZu0gW";

    /// A file's bytes: not UTF-8, with a CRLF inside.
    const FILE: &[u8] = b"\x89PNG\r\n\x00\x01";

    fn body() -> Vec<u8> {
        [
            format!(
                "--{B}\r\nContent-Disposition: form-data; name=\"password\"\r\n\r\np\r\n\
                 --{B}\r\nContent-Disposition: form-data; name=\"user\"\r\n\r\nal\r\n\
                 --{B}\r\nContent-Disposition: form-data; name=\"avatar\"; filename=\"a.png\"\r\nContent-Type: image/png\r\n\r\n"
            )
            .as_bytes(),
            FILE,
            format!(
                "\r\n--{B}\r\nContent-Disposition: form-data; name=\"role\"\r\n\r\nadmin\r\n\
                 --{B}--\r\n"
            )
            .as_bytes(),
        ]
        .concat()
    }

    #[test]
    fn boundaries_are_read_from_the_content_type() {
        assert_eq!(
            boundary("multipart/form-data; boundary=abc").as_deref(),
            Some("abc")
        );
        assert_eq!(
            boundary("Multipart/Form-Data; charset=utf-8; BOUNDARY=\"a b;c\"").as_deref(),
            Some("a b;c")
        );
        assert_eq!(boundary("multipart/form-data"), None);
        assert_eq!(boundary("multipart/mixed; boundary=abc"), None);
        assert_eq!(boundary("multipart/form-data; boundary=\"abc"), None);
        assert_eq!(boundary("multipart/form-data; boundary="), None);
        assert_eq!(
            boundary(&format!("multipart/form-data; boundary={}", "x".repeat(71))),
            None
        );
    }

    #[test]
    fn parts_are_read_and_written_back_byte_for_byte() {
        let body = body();
        let m = Multipart::parse(&body, B).unwrap();
        assert_eq!(
            m.names(),
            [Some("password"), Some("user"), Some("avatar"), Some("role")]
        );
        assert_eq!(m.encode(), body);
        // A preamble and an epilogue are accepted (and dropped).
        let mut framed = b"preamble\r\n".to_vec();
        framed.extend_from_slice(&body);
        framed.extend_from_slice(b"epilogue");
        assert_eq!(Multipart::parse(&framed, B).unwrap().encode(), body);
    }

    #[test]
    fn rules_apply_in_kongs_order_and_untouched_parts_keep_their_bytes() {
        let body = body();
        let mut m = Multipart::parse(&body, B).unwrap();
        let rules = Rules {
            remove: vec!["password".into()],
            rename: vec![
                ("user".into(), "username".into()),
                ("avatar".into(), "photo".into()),
            ],
            replace: vec![entry("role", "user"), entry("absent", "x")],
            add: vec![entry("source", "api"), entry("role", "not-added")],
            append: vec![entry("tags", "new")],
        };
        assert!(vars_none(|v| m.apply(&rules, v)).unwrap());
        let expected = [
            format!(
                "--{B}\r\nContent-Disposition: form-data; name=\"username\"\r\n\r\nal\r\n\
                 --{B}\r\nContent-Disposition: form-data; name=\"photo\"; filename=\"a.png\"\r\nContent-Type: image/png\r\n\r\n"
            )
            .as_bytes(),
            FILE,
            format!(
                "\r\n--{B}\r\nContent-Disposition: form-data; name=\"role\"\r\n\r\nuser\r\n\
                 --{B}\r\nContent-Disposition: form-data; name=\"source\"\r\n\r\napi\r\n\
                 --{B}\r\nContent-Disposition: form-data; name=\"tags\"\r\n\r\nnew\r\n\
                 --{B}--\r\n"
            )
            .as_bytes(),
        ]
        .concat();
        assert_eq!(
            String::from_utf8_lossy(&m.encode()),
            String::from_utf8_lossy(&expected)
        );
        assert_eq!(m.encode(), expected);
        // Reparsed, the renamed file part still reads under its new name.
        let again = Multipart::parse(&m.encode(), B).unwrap();
        assert_eq!(
            again.names(),
            [
                Some("username"),
                Some("photo"),
                Some("role"),
                Some("source"),
                Some("tags")
            ]
        );
    }

    #[test]
    fn nothing_changes_when_no_rule_matches() {
        let body = body();
        let mut m = Multipart::parse(&body, B).unwrap();
        let rules = Rules {
            remove: vec!["nope".into()],
            rename: vec![("nope".into(), "other".into())],
            replace: vec![entry("nope", "x")],
            ..Default::default()
        };
        assert!(!vars_none(|v| m.apply(&rules, v)).unwrap());
    }

    #[test]
    fn duplicate_names_and_escaped_names() {
        let body = format!(
            "--{B}\r\nContent-Disposition: form-data; name=\"t\"\r\n\r\n1\r\n\
             --{B}\r\ncontent-disposition: form-data; name=t\r\n\r\n2\r\n\
             --{B}\r\nContent-Disposition: form-data; filename=\"x;name=y\"; name=\"a\\\"b\"\r\n\r\n3\r\n\
             --{B}--"
        );
        let mut m = Multipart::parse(body.as_bytes(), B).unwrap();
        assert_eq!(m.names(), [Some("t"), Some("t"), Some("a\"b")]);
        let rules = Rules {
            replace: vec![entry("t", "one")],
            append: vec![entry("q\"x", "v")],
            ..Default::default()
        };
        assert!(vars_none(|v| m.apply(&rules, v)).unwrap());
        let out = String::from_utf8(m.encode()).unwrap();
        assert!(out.contains("name=\"t\"\r\n\r\none\r\n"), "{out}");
        assert!(!out.contains("\r\n\r\n2\r\n"), "{out}");
        assert!(out.contains("name=\"q%22x\"\r\n\r\nv"), "{out}");
        assert!(
            out.contains("filename=\"x;name=y\"; name=\"a\\\"b\""),
            "{out}"
        );
    }

    #[test]
    fn malformed_bodies_are_not_parsed() {
        for bad in [
            String::new(),
            "no delimiter at all".to_string(),
            format!("--{B}\r\nContent-Disposition: form-data; name=\"a\"\r\n\r\nno end"),
            format!("--{B}garbage\r\n\r\nx\r\n--{B}--"),
            format!("--{B}"),
        ] {
            assert!(Multipart::parse(bad.as_bytes(), B).is_none(), "{bad:?}");
        }
        // An empty body with only the closing delimiter has no parts.
        let empty = format!("--{B}--\r\n");
        assert_eq!(
            Multipart::parse(empty.as_bytes(), B).unwrap().names().len(),
            0
        );
    }

    #[test]
    fn a_value_holding_the_boundary_is_refused() {
        let body = body();
        let mut m = Multipart::parse(&body, B).unwrap();
        let rules = Rules {
            add: vec![entry("evil", &format!("x\r\n--{B}--"))],
            ..Default::default()
        };
        let err = vars_none(|v| m.apply(&rules, v)).unwrap_err();
        assert_eq!(err.kind, ErrorKind::BadRequest);
    }
}
