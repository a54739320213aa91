//! Templates in plugin values, Kong's syntax: `$(headers.x-foo)`, `$(headers["x-foo"])`,
//! `$(query_params.page)`, `$(uri_captures.id)`, `$(uri_captures[1])`, `$(consumer.username)`,
//! alternatives with `or` (`$(headers.x-tenant or query_params.tenant or 'public')`) and quoted
//! literals (`$('$(')` writes `$(`). Parsed once when a configuration is compiled (errors name the
//! problem; the caller adds the JSON path), rendered per request from a [`RequestVars`] the glue
//! fills. No Lua: these forms are all there is (docs/transformations.md#templates).

use crate::auth::percent_decode_bytes;
use crate::identity::Identity;
use std::borrow::Cow;

/// A parsed template: literal text and `$(...)` expressions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Template {
    parts: Vec<Part>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Part {
    Lit(String),
    /// The first operand with a value wins; none: the empty string.
    Expr(Vec<Operand>),
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Operand {
    Lit(String),
    Var(Var),
}

/// A variable a template reads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Var {
    /// A request header (lower-case name).
    Header(String),
    /// A query parameter of the client's URL (decoded name).
    Query(String),
    /// A named path parameter of the matched route.
    Capture(String),
    /// The `n`th path parameter of the matched route (1-based).
    CaptureAt(usize),
    /// A field of the authenticated consumer.
    Consumer(ConsumerField),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConsumerField {
    Id,
    Username,
    CustomId,
}

/// What templates read: the request as the client sent it, plus what the gateway learnt.
pub struct RequestVars<'a> {
    /// A request header by lower-case name (several values joined with ", ").
    pub header: &'a dyn Fn(&str) -> Option<String>,
    /// The client's raw query string (without `?`).
    pub query: &'a str,
    /// The matched route's path parameters, in order, as they appear in the URL.
    pub captures: &'a [(String, String)],
    /// The consumer an authentication plugin established, if any.
    pub consumer: Option<&'a Identity>,
}

/// A variable's value: text, or the percent-decoded bytes of a query parameter (not always UTF-8).
enum Got<'a> {
    Text(Cow<'a, str>),
    Bytes(Vec<u8>),
}

impl RequestVars<'_> {
    fn get(&self, var: &Var) -> Option<Got<'_>> {
        let text = match var {
            // The runtime hands header values over as text: their bytes decoded as UTF-8, a byte that
            // is not part of valid UTF-8 read as U+FFFD.
            Var::Header(name) => (self.header)(name).map(Cow::Owned),
            Var::Query(name) => return query_param_bytes(self.query, name).map(Got::Bytes),
            Var::Capture(name) => self
                .captures
                .iter()
                .find(|(n, _)| n == name)
                .map(|(_, v)| Cow::Borrowed(v.as_str())),
            Var::CaptureAt(n) => self
                .captures
                .get(n.wrapping_sub(1))
                .map(|(_, v)| Cow::Borrowed(v.as_str())),
            Var::Consumer(field) => {
                let c = self.consumer?;
                match field {
                    ConsumerField::Id => Some(Cow::Borrowed(c.consumer_id.as_str())),
                    ConsumerField::Username => Some(Cow::Borrowed(c.username.as_str())),
                    ConsumerField::CustomId => c.custom_id.as_deref().map(Cow::Borrowed),
                }
            }
        };
        text.map(Got::Text)
    }
}

/// The first value of the query parameter `name` (names compared after decoding), percent- and
/// `+`-decoded to bytes; `None` when there is no such parameter.
fn query_param_bytes(query: &str, name: &str) -> Option<Vec<u8>> {
    if query.is_empty() {
        return None;
    }
    query.split('&').find_map(|pair| {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        (percent_decode_bytes(k) == name.as_bytes()).then(|| percent_decode_bytes(v))
    })
}

/// `bytes` as text: the UTF-8 in it as is, each byte that is not part of valid UTF-8 written back
/// as `%XX` (upper-case hex), as it was in the URL: `caf%C3%A9%FF` gives `café%FF`.
fn push_text(out: &mut String, bytes: &[u8]) {
    for chunk in bytes.utf8_chunks() {
        out.push_str(chunk.valid());
        for b in chunk.invalid() {
            out.push('%');
            out.push(
                char::from_digit(u32::from(b >> 4), 16)
                    .unwrap_or('0')
                    .to_ascii_uppercase(),
            );
            out.push(
                char::from_digit(u32::from(b & 15), 16)
                    .unwrap_or('0')
                    .to_ascii_uppercase(),
            );
        }
    }
}

/// The template variables, for messages.
pub const KNOWN_VARIABLES: &str = "headers, query_params, uri_captures, consumer";

impl Template {
    /// Parse `text`. Text outside `$(...)` is literal; a `$` not followed by `(` is literal too.
    pub fn parse(text: &str) -> Result<Template, String> {
        let mut parts = Vec::new();
        let mut lit = String::new();
        let mut rest = text;
        while let Some(at) = rest.find("$(") {
            lit.push_str(&rest[..at]);
            let after = &rest[at + 2..];
            let (operands, used) =
                parse_expr(after).map_err(|e| format!("template {text:?}: {e}"))?;
            if !lit.is_empty() {
                parts.push(Part::Lit(std::mem::take(&mut lit)));
            }
            parts.push(Part::Expr(operands));
            rest = &after[used..];
        }
        lit.push_str(rest);
        if !lit.is_empty() {
            parts.push(Part::Lit(lit));
        }
        // Literal-only expressions (escapes) fold into text.
        let mut folded: Vec<Part> = Vec::with_capacity(parts.len());
        for p in parts {
            let p = match p {
                Part::Expr(ops) if matches!(ops.first(), Some(Operand::Lit(_))) => match &ops[0] {
                    Operand::Lit(s) => Part::Lit(s.clone()),
                    Operand::Var(_) => unreachable!(),
                },
                p => p,
            };
            match (folded.last_mut(), p) {
                (Some(Part::Lit(prev)), Part::Lit(s)) => prev.push_str(&s),
                (_, p) => folded.push(p),
            }
        }
        Ok(Template { parts: folded })
    }

    /// The text, when the template has no variable.
    pub fn literal(&self) -> Option<&str> {
        match self.parts.as_slice() {
            [] => Some(""),
            [Part::Lit(s)] => Some(s),
            _ => None,
        }
    }

    /// The text for one request: each expression's first operand with a value, else nothing. A query
    /// parameter that is not UTF-8 once decoded has its other bytes written back as `%XX`
    /// (`?x=caf%C3%A9%ff` renders `café%FF`); see [`Template::render_bytes`] for the bytes themselves.
    pub fn render(&self, vars: &RequestVars<'_>) -> String {
        if let Some(s) = self.literal() {
            return s.to_string();
        }
        let mut out = String::new();
        self.each(vars, |got| match got {
            Got::Text(s) => out.push_str(&s),
            Got::Bytes(b) => push_text(&mut out, &b),
        });
        out
    }

    /// The bytes for one request, for a value that is percent-encoded again where it goes (a query
    /// string or form body): a query parameter gives exactly the bytes it decodes to, so `?x=%FF`
    /// copied into another parameter arrives as `%FF`, as with Kong.
    pub fn render_bytes(&self, vars: &RequestVars<'_>) -> Vec<u8> {
        if let Some(s) = self.literal() {
            return s.as_bytes().to_vec();
        }
        let mut out = Vec::new();
        self.each(vars, |got| match got {
            Got::Text(s) => out.extend_from_slice(s.as_bytes()),
            Got::Bytes(b) => out.extend_from_slice(&b),
        });
        out
    }

    fn each(&self, vars: &RequestVars<'_>, mut push: impl FnMut(Got<'_>)) {
        for p in &self.parts {
            match p {
                Part::Lit(s) => push(Got::Text(Cow::Borrowed(s))),
                Part::Expr(ops) => {
                    for op in ops {
                        match op {
                            Operand::Lit(s) => {
                                push(Got::Text(Cow::Borrowed(s)));
                                break;
                            }
                            Operand::Var(v) => {
                                if let Some(value) = vars.get(v) {
                                    push(value);
                                    break;
                                }
                            }
                        }
                    }
                }
            }
        }
    }
}

/// Parse `operand (or operand)* )` at the start of `s`; returns the operands and the bytes used
/// (the closing parenthesis included).
fn parse_expr(s: &str) -> Result<(Vec<Operand>, usize), String> {
    let b = s.as_bytes();
    let mut i = 0;
    let mut ops = Vec::new();
    loop {
        i = skip_ws(b, i);
        let (op, used) = parse_operand(&s[i..])?;
        ops.push(op);
        i = skip_ws(b, i + used);
        match b.get(i) {
            Some(b')') => return Ok((ops, i + 1)),
            None => return Err("unclosed \"$(\": a \")\" is missing".into()),
            Some(_) if s[i..].starts_with("or") && b.get(i + 2).is_some_and(|c| !is_name(*c)) => {
                i += 2;
            }
            Some(_) => {
                return Err(format!(
                    "unexpected {:?} in an expression (expected \")\" or \"or\")",
                    s[i..].chars().next().unwrap_or(' ')
                ))
            }
        }
    }
}

fn skip_ws(b: &[u8], mut i: usize) -> usize {
    while b.get(i).is_some_and(|c| c.is_ascii_whitespace()) {
        i += 1;
    }
    i
}

fn is_name(c: u8) -> bool {
    c.is_ascii_alphanumeric() || c == b'_' || c == b'-'
}

/// A quoted string at the start of `s` (`'...'` or `"..."`, `\` escapes the next character).
fn parse_quoted(s: &str) -> Result<(String, usize), String> {
    let mut chars = s.char_indices();
    let Some((_, quote)) = chars.next() else {
        return Err("a quoted string is missing".into());
    };
    let mut out = String::new();
    while let Some((i, c)) = chars.next() {
        if c == '\\' {
            match chars.next() {
                Some((_, e)) => out.push(e),
                None => break,
            }
        } else if c == quote {
            return Ok((out, i + 1));
        } else {
            out.push(c);
        }
    }
    Err(format!(
        "unterminated string (a closing {quote} is missing)"
    ))
}

fn parse_operand(s: &str) -> Result<(Operand, usize), String> {
    let b = s.as_bytes();
    match b.first() {
        Some(b'\'' | b'"') => {
            let (text, used) = parse_quoted(s)?;
            return Ok((Operand::Lit(text), used));
        }
        None | Some(b')') => return Err("empty expression in \"$()\"".into()),
        _ => {}
    }
    let mut i = 0;
    while b
        .get(i)
        .is_some_and(|c| c.is_ascii_alphanumeric() || *c == b'_')
    {
        i += 1;
    }
    let root = &s[..i];
    if root.is_empty() {
        return Err(format!(
            "unexpected {:?}; an expression is a variable ({KNOWN_VARIABLES}) or a quoted string",
            s.chars().next().unwrap_or(' ')
        ));
    }
    if !matches!(
        root,
        "headers" | "query_params" | "uri_captures" | "consumer"
    ) {
        return Err(format!(
            "unknown template variable {root:?}; known: {KNOWN_VARIABLES}"
        ));
    }
    // The key: `.name` or `["name"]` / `['name']` / `[n]` (uri_captures).
    enum Key {
        Dot(String),
        Quoted(String),
        Index(usize),
    }
    let key = match b.get(i) {
        Some(b'.') => {
            let start = i + 1;
            let mut j = start;
            while b.get(j).is_some_and(|c| is_name(*c)) {
                j += 1;
            }
            if j == start {
                return Err(format!("{root}. needs a name after the dot"));
            }
            let name = s[start..j].to_string();
            i = j;
            Key::Dot(name)
        }
        Some(b'[') => {
            let j = skip_ws(b, i + 1);
            let (key, used) = match b.get(j) {
                Some(b'\'' | b'"') => {
                    let (text, used) = parse_quoted(&s[j..])?;
                    (Key::Quoted(text), used)
                }
                Some(c) if c.is_ascii_digit() => {
                    let mut k = j;
                    while b.get(k).is_some_and(u8::is_ascii_digit) {
                        k += 1;
                    }
                    let n: usize = s[j..k]
                        .parse()
                        .map_err(|_| format!("{root}[{}]: index too large", &s[j..k]))?;
                    (Key::Index(n), k - j)
                }
                _ => {
                    return Err(format!(
                        "{root}[...] takes a quoted name, e.g. {root}[\"name\"]"
                    ))
                }
            };
            let k = skip_ws(b, j + used);
            if b.get(k) != Some(&b']') {
                return Err(format!("{root}[...]: a \"]\" is missing"));
            }
            i = k + 1;
            key
        }
        _ => {
            return Err(format!(
                "{root} needs a name: $({root}.name) or $({root}[\"name\"])"
            ))
        }
    };
    let var = match (root, key) {
        ("headers", Key::Dot(n)) => Var::Header(n.to_ascii_lowercase().replace('_', "-")),
        ("headers", Key::Quoted(n)) => {
            if !crate::proxy::is_token(&n) {
                return Err(format!("headers[{n:?}]: not a valid header name"));
            }
            Var::Header(n.to_ascii_lowercase())
        }
        ("query_params", Key::Dot(n) | Key::Quoted(n)) => {
            if n.is_empty() {
                return Err("query_params[\"\"]: the name is empty".into());
            }
            Var::Query(n)
        }
        ("uri_captures", Key::Dot(n) | Key::Quoted(n)) => {
            if n.is_empty() {
                return Err("uri_captures[\"\"]: the name is empty".into());
            }
            Var::Capture(n)
        }
        ("uri_captures", Key::Index(0)) => {
            return Err("uri_captures[0]: captures are numbered from 1".into())
        }
        ("uri_captures", Key::Index(n)) => Var::CaptureAt(n),
        ("consumer", Key::Dot(n) | Key::Quoted(n)) => Var::Consumer(match n.as_str() {
            "id" => ConsumerField::Id,
            "username" => ConsumerField::Username,
            "custom_id" => ConsumerField::CustomId,
            _ => {
                return Err(format!(
                    "unknown consumer field {n:?}; known: id, username, custom_id"
                ))
            }
        }),
        (root, Key::Index(n)) => {
            return Err(format!(
                "{root}[{n}]: only uri_captures is indexed by number"
            ))
        }
        (root, _) => return Err(format!("unknown template variable {root:?}")),
    };
    Ok((Operand::Var(var), i))
}

#[cfg(test)]
mod tests {
    use super::*;
    #[cfg(target_arch = "wasm32")]
    use wasm_bindgen_test::wasm_bindgen_test as test;

    fn render(t: &str) -> String {
        let header = |n: &str| match n {
            "x-foo" => Some("foo-value".to_string()),
            "x-tenant" => Some("acme".to_string()),
            _ => None,
        };
        let captures = vec![
            ("id".to_string(), "42".to_string()),
            ("rest".into(), "a/b".into()),
        ];
        let consumer = Identity {
            consumer_id: "c-1".into(),
            username: "alice".into(),
            ..Identity::default()
        };
        let vars = RequestVars {
            header: &header,
            query: "page=3&q=a+b%21",
            captures: &captures,
            consumer: Some(&consumer),
        };
        Template::parse(t).unwrap().render(&vars)
    }

    #[test]
    fn renders_every_variable_form() {
        assert_eq!(render("plain"), "plain");
        assert_eq!(render("$(headers.x-foo)"), "foo-value");
        assert_eq!(render("$(headers.X_FOO)"), "foo-value");
        assert_eq!(render("v=$(headers[\"x-foo\"])!"), "v=foo-value!");
        assert_eq!(render("$(headers['X-Foo'])"), "foo-value");
        assert_eq!(
            render("$(query_params.page)/$(query_params[\"q\"])"),
            "3/a b!"
        );
        assert_eq!(render("/users/$(uri_captures.id)"), "/users/42");
        assert_eq!(render("$(uri_captures[2])"), "a/b");
        assert_eq!(render("$(uri_captures[\"id\"])"), "42");
        assert_eq!(render("$(consumer.username):$(consumer.id)"), "alice:c-1");
        assert_eq!(render("[$(consumer.custom_id)]"), "[]");
        assert_eq!(render("[$(headers.x-missing)]"), "[]");
        assert_eq!(render("$( headers.x-missing or query_params.page )"), "3");
        assert_eq!(render("$(headers.x-missing or 'none')"), "none");
        assert_eq!(render("$(headers.x-tenant or 'none')"), "acme");
        assert_eq!(render("$('$(headers.x-foo)')"), "$(headers.x-foo)");
        assert_eq!(render("cost $5 (USD)"), "cost $5 (USD)");
    }

    /// A header value is text as the runtime decoded it: rendered as it is, and as its UTF-8 bytes.
    #[test]
    fn header_values_are_text() {
        let header = |n: &str| match n {
            "x-utf8" => Some("café€".to_string()),
            "x-bad" => Some("caf\u{fffd}".to_string()), // the byte E9 alone, as the runtime reads it
            _ => None,
        };
        let vars = RequestVars {
            header: &header,
            query: "",
            captures: &[],
            consumer: None,
        };
        let both = |t: &str| {
            let t = Template::parse(t).unwrap();
            (t.render(&vars), t.render_bytes(&vars))
        };
        assert_eq!(
            both("$(headers.x-utf8)"),
            ("café€".into(), "café€".as_bytes().to_vec())
        );
        assert_eq!(
            both("$(headers.x-bad)"),
            ("caf\u{fffd}".into(), "caf\u{fffd}".as_bytes().to_vec())
        );
    }

    fn with_query(t: &str, query: &str) -> (String, Vec<u8>) {
        let header = |_: &str| None;
        let vars = RequestVars {
            header: &header,
            query,
            captures: &[],
            consumer: None,
        };
        let t = Template::parse(t).unwrap();
        (t.render(&vars), t.render_bytes(&vars))
    }

    /// A query parameter that is not UTF-8 once decoded: the text keeps its other bytes as `%XX`, the
    /// bytes are exactly what it decodes to; the first value counts even then.
    #[test]
    fn query_params_that_are_not_utf8() {
        let q = |query: &str| with_query("[$(query_params.x or 'none')]", query);
        assert_eq!(q("x=%FF"), ("[%FF]".into(), b"[\xff]".to_vec()));
        assert_eq!(q("x=%ff"), ("[%FF]".into(), b"[\xff]".to_vec()));
        assert_eq!(
            q("x=caf%C3%A9+%E9t%C3"),
            ("[café %E9t%C3]".into(), b"[caf\xc3\xa9 \xe9t\xc3]".to_vec())
        );
        assert_eq!(q("x=%FF&x=ok").0, "[%FF]");
        assert_eq!(q("x=%25FF").0, "[%FF]");
        assert_eq!(q("x=%2").0, "[%2]");
        assert_eq!(q("x=%zz").0, "[%zz]");
        assert_eq!(q("%FF=1&x=2").0, "[2]");
        assert_eq!(q("x%FF=1").0, "[none]");
        assert_eq!(q("").0, "[none]");
        assert_eq!(q("x").0, "[]");
        assert_eq!(q("y=1&x=%E2%82%AC").0, "[€]");
        assert_eq!(with_query("lit", "x=%FF"), ("lit".into(), b"lit".to_vec()));
    }

    #[test]
    fn literal_templates_are_known_at_compile_time() {
        assert_eq!(Template::parse("abc").unwrap().literal(), Some("abc"));
        assert_eq!(
            Template::parse("a$('$(')b").unwrap().literal(),
            Some("a$(b")
        );
        assert_eq!(Template::parse("$(headers.a)").unwrap().literal(), None);
    }

    #[test]
    fn malformed_templates_are_errors() {
        let err = |t: &str| Template::parse(t).unwrap_err();
        assert!(
            err("$(headers.x").contains("unclosed"),
            "{}",
            err("$(headers.x")
        );
        assert!(err("$(foo.bar)").contains("unknown template variable \"foo\""));
        assert!(err("$(shared.x)").contains("known: headers, query_params"));
        assert!(err("$(headers)").contains("needs a name"));
        assert!(err("$()").contains("empty expression"));
        assert!(err("$(consumer.email)").contains("unknown consumer field"));
        assert!(err("$(headers[1])").contains("only uri_captures"));
        assert!(err("$(uri_captures[0])").contains("from 1"));
        assert!(err("$(headers.a + 1)").contains("unexpected '+'"));
        assert!(err("$(headers['a)").contains("unterminated"));
        assert!(err("$(headers[\"a b\"])").contains("not a valid header name"));
        assert!(
            err("x $(headers.a) $(nope.b)").starts_with("template \"x $(headers.a) $(nope.b)\"")
        );
    }
}
