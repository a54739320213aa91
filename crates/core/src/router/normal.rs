//! The normal form of a request path, in which routes are matched and the request is forwarded
//! (docs/routing.md, "Path normalization"): spellings that origins read as one path are one path to
//! the router too, so `/%61dmin` or `//admin` cannot pass a route for `/admin` (and the plugins that
//! guard it) on their way to an origin that serves `/admin`.

use std::borrow::Cow;

/// `path` in normal form, as RFC 3986 section 6.2.2 and Kong's router have it: percent-encoded
/// unreserved characters (letters, digits, `-`, `.`, `_`, `~`) are decoded, other percent-encodings get
/// upper-case hex digits (`%2f` is `%2F`, and stays encoded), and runs of `/` are merged into one (as
/// nginx's `merge_slashes`). Case is kept: paths are case-sensitive. A `%` not followed by two hex
/// digits is kept as it is. Dot segments are not resolved here: the runtime's URL parser has resolved
/// those it reads, and the router refuses the rest (`invalid_path`). A path already in normal form,
/// nearly every path, is returned borrowed.
pub fn normalize_path(path: &str) -> Cow<'_, str> {
    let bytes = path.as_bytes();
    let clean = !bytes.contains(&b'%') && !bytes.windows(2).any(|w| w == b"//");
    if clean {
        return Cow::Borrowed(path);
    }
    let hex = |b: u8| (b as char).to_digit(16).map(|d| d as u8);
    let mut out = String::with_capacity(path.len());
    let mut rest = path;
    while let Some(c) = rest.chars().next() {
        let b = rest.as_bytes();
        if c == '%' && b.len() >= 3 {
            if let (Some(h), Some(l)) = (hex(b[1]), hex(b[2])) {
                let v = h * 16 + l;
                if v.is_ascii_alphanumeric() || matches!(v, b'-' | b'.' | b'_' | b'~') {
                    out.push(v as char);
                } else {
                    out.push('%');
                    out.push(char::from(b"0123456789ABCDEF"[(v >> 4) as usize]));
                    out.push(char::from(b"0123456789ABCDEF"[(v & 15) as usize]));
                }
                rest = &rest[3..];
                continue;
            }
        }
        if !(c == '/' && out.ends_with('/')) {
            out.push(c);
        }
        rest = &rest[c.len_utf8()..];
    }
    if out == path {
        Cow::Borrowed(path)
    } else {
        Cow::Owned(out)
    }
}

/// A literal path pattern (prefix, exact or template, without its `=`) in the form requests are matched
/// in. A request path arrives from the runtime's URL parser with every non-ASCII byte, space and
/// `"` `<` `>` `` ` `` `^` percent-encoded (upper-case hex), so the pattern gets the same encoding
/// first (`/café` is `/caf%C3%A9`, as Kong, which decodes the request instead, matches `/café`), and
/// `\` is read as `/` as the parser reads it; then `normalize_path`. `?`, `#` and control characters are refused: a request path never holds them.
pub(crate) fn normalize_pattern(raw: &str) -> Result<Cow<'_, str>, String> {
    if let Some(c) = raw
        .chars()
        .find(|c| matches!(c, '?' | '#') || c.is_control())
    {
        let hint = match c {
            '?' => " (it starts the query string; write %3F to match an encoded '?')",
            '#' => " (it starts the fragment, which clients do not send; write %23 to match an encoded '#')",
            _ => " (the URL parser drops or refuses it)",
        };
        return Err(format!(
            "the character {c:?} is never part of a request path{hint}"
        ));
    }
    let encode = |b: u8| !b.is_ascii() || matches!(b, b' ' | b'"' | b'<' | b'>' | b'`' | b'^');
    if !raw.bytes().any(|b| encode(b) || b == b'\\') {
        return Ok(normalize_path(raw));
    }
    let mut out = String::with_capacity(raw.len() + 8);
    for b in raw.bytes() {
        if encode(b) {
            out.push('%');
            out.push(char::from(b"0123456789ABCDEF"[(b >> 4) as usize]));
            out.push(char::from(b"0123456789ABCDEF"[(b & 15) as usize]));
        } else if b == b'\\' {
            out.push('/');
        } else {
            out.push(b as char);
        }
    }
    Ok(Cow::Owned(normalize_path(&out).into_owned()))
}

#[cfg(test)]
mod tests {
    #[cfg(target_arch = "wasm32")]
    use wasm_bindgen_test::wasm_bindgen_test as test;

    use super::{normalize_path, normalize_pattern};
    use std::borrow::Cow;

    #[test]
    fn literal_patterns_get_the_encoding_of_the_url_parser() {
        assert_eq!(normalize_pattern("/caf\u{e9}").unwrap(), "/caf%C3%A9");
        assert_eq!(
            normalize_pattern("/a b\"<>`^|").unwrap(),
            "/a%20b%22%3C%3E%60%5E|"
        );
        assert_eq!(normalize_pattern("//%61pi/{id}").unwrap(), "/api/{id}");
        assert_eq!(normalize_pattern("/a\\b\\\\c").unwrap(), "/a/b/c");
        assert!(matches!(
            normalize_pattern("/api").unwrap(),
            Cow::Borrowed(_)
        ));
        for bad in ["/a?b", "/a#b", "/a\tb", "/a\u{7f}"] {
            let e = normalize_pattern(bad).unwrap_err();
            assert!(e.contains("never part of a request path"), "{bad}: {e}");
        }
    }

    #[test]
    fn unreserved_characters_are_decoded_and_slashes_merged_only() {
        assert_eq!(normalize_path("/%61dmin"), "/admin");
        assert_eq!(normalize_path("//admin"), "/admin");
        assert_eq!(normalize_path("/a%2fb%2Fc"), "/a%2Fb%2Fc");
        assert_eq!(normalize_path("/%7euser/%41-%5F.%2E"), "/~user/A-_..");
        assert_eq!(normalize_path("/a%20b%zz%4"), "/a%20b%zz%4");
        assert_eq!(normalize_path("//a///b/"), "/a/b/");
        assert_eq!(normalize_path("/caf\u{e9}/%c3%a9"), "/caf\u{e9}/%C3%A9");
        assert_eq!(normalize_path("/Admin"), "/Admin");
        assert_eq!(normalize_path("/%"), "/%");
    }

    #[test]
    fn a_normal_path_is_borrowed() {
        for p in ["/", "/api/v1/items", "/a%20b", "/%2F"] {
            assert!(matches!(normalize_path(p), Cow::Borrowed(_)), "{p}");
        }
    }
}
