//! Path confinement: the part of the upstream path the gateway appends to a service's base path must
//! not be able to climb out of it.
//!
//! The Workers runtime's `fetch` parses the URL it is given with the WHATWG URL parser, which resolves
//! dot segments (`.`, `..`, and their percent-encoded spellings `%2e`, `.%2e`, `%2E%2e`...) and, in
//! http(s) URLs, reads `\` as `/`; it also removes tabs and newlines before parsing. So a check on the
//! string the gateway builds has to see that string the way the parser will. Origins add their own
//! readings: many decode `%2F` / `%5C` before resolving dot segments, and some (Java servlet
//! containers) drop `;` path parameters from a segment first (`..;x` is `..` to them). The check below
//! refuses all of these; docs/routing.md states the rule.

use std::borrow::Cow;

/// The first segment of `path` (the forwarded part of an upstream path, before the service's base
/// path is prepended) that a URL parser or an origin could read as `.` or `..`, or `None` when there
/// is none. Pure and allocation-free unless `path` contains a tab, LF or CR (or a dot segment is found).
///
/// - Segments are separated by `/`, by `\`, and by `%2F` and `%5C` in any case.
/// - Tab, LF and CR are removed first, as the URL parser does.
/// - A segment is a dot segment when, up to its first `;`, it is one or two dots, each written `.` or
///   `%2e` / `%2E`: `.`, `..`, `%2e`, `.%2E`, `%2e%2e`, `..;jsessionid=x`, `.%2e;`...
/// - Dots inside a segment are not dot segments: `file.tar.gz`, `a..b`, `...`, `.hidden`, `v2..` all pass.
pub fn dot_segment(path: &str) -> Option<String> {
    let bytes = path.as_bytes();
    // Fast path, taken by most paths: a dot cannot be written without '.' or '%'.
    if !bytes.iter().any(|&b| b == b'.' || b == b'%') {
        return None;
    }
    let cleaned: Cow<[u8]> = if bytes.iter().any(|&b| matches!(b, b'\t' | b'\n' | b'\r')) {
        Cow::Owned(
            bytes
                .iter()
                .copied()
                .filter(|b| !matches!(b, b'\t' | b'\n' | b'\r'))
                .collect(),
        )
    } else {
        Cow::Borrowed(bytes)
    };
    let b: &[u8] = &cleaned;
    let found = |seg: &[u8]| is_dot_segment(seg).then(|| String::from_utf8_lossy(seg).into_owned());
    let mut start = 0;
    let mut i = 0;
    while i < b.len() {
        match separator_len(&b[i..]) {
            0 => i += 1,
            len => {
                if let Some(seg) = found(&b[start..i]) {
                    return Some(seg);
                }
                i += len;
                start = i;
            }
        }
    }
    found(&b[start..])
}

/// Length of the segment separator `rest` starts with: 1 for `/` and `\`, 3 for `%2F`, `%5C` (any
/// case), 0 when it starts with none.
fn separator_len(rest: &[u8]) -> usize {
    match rest {
        [b'/' | b'\\', ..] => 1,
        [b'%', b'2', b'f' | b'F', ..] | [b'%', b'5', b'c' | b'C', ..] => 3,
        _ => 0,
    }
}

fn is_dot_segment(seg: &[u8]) -> bool {
    let seg = match seg.iter().position(|&b| b == b';') {
        Some(p) => &seg[..p],
        None => seg,
    };
    let mut dots = 0;
    let mut rest = seg;
    while !rest.is_empty() {
        rest = match rest {
            [b'.', tail @ ..] => tail,
            [b'%', b'2', b'e' | b'E', tail @ ..] => tail,
            _ => return false,
        };
        dots += 1;
        if dots > 2 {
            return false;
        }
    }
    dots > 0
}

#[cfg(test)]
mod tests {
    use super::dot_segment;
    #[cfg(target_arch = "wasm32")]
    use wasm_bindgen_test::wasm_bindgen_test as test;

    /// Every way of writing one dot.
    const DOTS: [&str; 3] = [".", "%2e", "%2E"];

    #[test]
    fn every_spelling_of_dot_and_dot_dot_is_found() {
        let mut spellings: Vec<String> = DOTS.iter().map(|d| d.to_string()).collect();
        for a in DOTS {
            for b in DOTS {
                spellings.push(format!("{a}{b}"));
            }
        }
        assert_eq!(spellings.len(), 12);
        for seg in &spellings {
            for path in [
                format!("/{seg}"),
                format!("/{seg}/"),
                format!("/{seg}/admin/x"),
                format!("/a/{seg}/b"),
                format!("/a/b/{seg}"),
                format!("{seg}/x"),
                seg.clone(),
            ] {
                assert_eq!(dot_segment(&path).as_deref(), Some(seg.as_str()), "{path}");
            }
        }
    }

    #[test]
    fn backslash_and_encoded_separators_split_segments() {
        for path in [
            "/a\\..\\b",
            "\\..",
            "/a\\%2e%2e",
            "/a%2f..%2fb",
            "/a%2F..%2Fb",
            "/a%5c..%5cb",
            "/a%5C..%5Cb",
            "/x/..%2Fadmin",
            "/x/%2e%2e%5Cadmin",
            "/a/b%2f.",
        ] {
            assert!(dot_segment(path).is_some(), "{path}");
        }
    }

    #[test]
    fn tabs_and_newlines_are_ignored_as_the_url_parser_does() {
        for path in [
            "/.\t./x",
            "/\n..",
            "/%2\te%2e",
            "/a/.\r",
            "/a%2\tf..",
            "/%\t2e.",
        ] {
            assert!(dot_segment(path).is_some(), "{path:?}");
        }
    }

    #[test]
    fn path_parameters_do_not_hide_a_dot_segment() {
        for path in ["/..;/admin", "/..;jsessionid=1/x", "/.;x", "/%2e%2e;a=b/c"] {
            assert!(dot_segment(path).is_some(), "{path}");
        }
        assert_eq!(dot_segment("/x;/..;").as_deref(), Some("..;"));
    }

    #[test]
    fn dots_inside_a_segment_pass() {
        for path in [
            "/",
            "",
            "/v2/file.tar.gz",
            "/a..b",
            "/...",
            "/....",
            "/.hidden",
            "/v2..",
            "/..a",
            "/a..",
            "/%2e%2e%2e",
            "/.%2e.",
            "/%2ex",
            "/%2",
            "/%2g",
            "/%",
            "/a%2e",
            "/%252e%252e",
            "/a;..",
            "/users/a%2Fb",
            "/files/a/b/c.txt",
            "/caf%C3%A9/d.json",
        ] {
            assert_eq!(dot_segment(path), None, "{path}");
        }
    }

    #[test]
    fn non_ascii_paths_do_not_panic() {
        assert_eq!(dot_segment("/é/ü.."), None);
        assert_eq!(dot_segment("/é/..").as_deref(), Some(".."));
        assert_eq!(dot_segment("/é\t/..").as_deref(), Some(".."));
    }
}
