//! Service URLs: `http(s)://host[:port][/base/path]`, parsed without a URL crate (wasm size).

/// A parsed service URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServiceUrl {
    /// `http` or `https`.
    pub scheme: String,
    /// Lower-case host name, IPv4 address, or bracketed IPv6 address (`[::1]`).
    pub host: String,
    pub port: Option<u16>,
    /// Base path; empty for none (or `/`). Prepended to every forwarded path. A trailing slash is
    /// kept (runs of them become one), as Kong's `path_handling: v0` keeps a service path's:
    /// `/base/` + `/x` = `/base/x`, `/base/` + `/` = `/base/` (see `router::join_base`).
    pub base_path: String,
}

impl ServiceUrl {
    pub fn parse(url: &str) -> Result<ServiceUrl, String> {
        let (scheme, rest) = url.split_once("://").ok_or_else(|| {
            // Not echoed when it may hold credentials (`user:password@host`).
            if url.contains('@') {
                "not an absolute URL (expected http://host or https://host; credentials in a \
                 service URL are not allowed, use service headers)"
                    .to_string()
            } else {
                // Quoted only when it looks like a name (`example.com`): it may be a pasted secret.
                format!(
                    "{} is not an absolute URL (expected http://host or https://host)",
                    crate::config::path_error::quote_as(url, "\"", "value")
                )
            }
        })?;
        let scheme = scheme.to_ascii_lowercase();
        if scheme != "http" && scheme != "https" {
            return Err(format!(
                "scheme {} is not supported (use http or https)",
                crate::config::path_error::quote_as(&scheme, "\"", "value")
            ));
        }
        if rest.contains(['?', '#']) {
            return Err("a service URL cannot have a query or fragment".into());
        }
        if rest.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err("a service URL cannot contain spaces or control characters".into());
        }
        let (authority, path) = match rest.find('/') {
            Some(i) => (&rest[..i], &rest[i..]),
            None => (rest, ""),
        };
        if authority.contains('@') {
            return Err(
                "credentials in a service URL are not allowed (use service headers)".into(),
            );
        }
        let (host, port) = if let Some(v6) = authority.strip_prefix('[') {
            let end = v6.find(']').ok_or("unclosed '[' in IPv6 host")?;
            let host = &authority[..end + 2];
            let after = &v6[end + 1..];
            let port = match after {
                "" => None,
                p => Some(
                    p.strip_prefix(':')
                        .ok_or("unexpected text after IPv6 host")?,
                ),
            };
            (host.to_string(), port)
        } else {
            match authority.rsplit_once(':') {
                Some((h, p)) => (h.to_string(), Some(p)),
                None => (authority.to_string(), None),
            }
        };
        if host.is_empty() {
            return Err("the service URL has no host".into());
        }
        if !host.starts_with('[')
            && !host
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '.' || c == '_')
        {
            // Not quoted: the text may be a mistyped credential or token.
            return Err("the host name is not valid (letters, digits, `-`, `.` and `_`)".into());
        }
        if !host.starts_with('[') && !labels_are_valid(&host) {
            // RFC 1123 section 2.1: a label is 1 to 63 characters and neither begins nor ends with
            // `-`. The WHATWG URL parser and workerd accept `http://-a`, but no resolver finds such
            // a name (and `-a` reads as an option to tools that log or test the URL).
            return Err(
                "the host name is not valid (each `.`-separated label has 1 to 63 \
                        characters and does not begin or end with `-`)"
                    .into(),
            );
        }
        let port = match port {
            None => None,
            Some(p) => Some(
                p.parse::<u16>()
                    .ok()
                    .filter(|p| *p != 0)
                    .ok_or("the port is not a number from 1 to 65535")?,
            ),
        };
        Ok(ServiceUrl {
            scheme,
            host: host.to_ascii_lowercase(),
            port,
            base_path: base_path(path),
        })
    }

    /// `scheme://host[:port]`, the origin to send requests to.
    pub fn origin(&self) -> String {
        format!("{}://{}", self.scheme, self.authority())
    }

    /// `host[:port]`, the Host header the origin expects.
    pub fn authority(&self) -> String {
        match self.port {
            Some(p) => format!("{}:{}", self.host, p),
            None => self.host.clone(),
        }
    }
}

/// Whether every label of a host name (already checked to hold only letters, digits, `-`, `.` and
/// `_`) is 1 to 63 characters and neither begins nor ends with `-`; one trailing `.` (a fully
/// qualified name) is allowed. An IPv4 address passes as four labels of digits.
fn labels_are_valid(host: &str) -> bool {
    let name = host.strip_suffix('.').unwrap_or(host);
    name.len() <= 253
        && name.split('.').all(|label| {
            (1..=63).contains(&label.len()) && !label.starts_with('-') && !label.ends_with('-')
        })
}

/// The base path of a URL path: `` and `/` are none; `/base/` keeps one trailing slash.
fn base_path(path: &str) -> String {
    let trimmed = path.trim_end_matches('/');
    if trimmed.is_empty() {
        String::new()
    } else if trimmed.len() < path.len() {
        format!("{trimmed}/")
    } else {
        path.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    #[cfg(target_arch = "wasm32")]
    use wasm_bindgen_test::wasm_bindgen_test as test;

    #[test]
    fn parses_host_port_and_base_path() {
        let u = ServiceUrl::parse("http://127.0.0.1:9001/base/").unwrap();
        assert_eq!(u.origin(), "http://127.0.0.1:9001");
        // Kong's path_handling v0 keeps a service path's trailing slash (one of a run).
        assert_eq!(u.base_path, "/base/");
        for (url, base) in [
            ("http://h/base", "/base"),
            ("http://h/base//", "/base/"),
            ("http://h/a/b/", "/a/b/"),
            ("http://h/", ""),
            ("http://h//", ""),
            ("http://h", ""),
        ] {
            assert_eq!(ServiceUrl::parse(url).unwrap().base_path, base, "{url}");
        }
        let u = ServiceUrl::parse("HTTPS://API.Example.com").unwrap();
        assert_eq!(
            (u.scheme.as_str(), u.host.as_str(), u.port),
            ("https", "api.example.com", None)
        );
        assert_eq!(u.base_path, "");
        let u = ServiceUrl::parse("http://[::1]:8080/x").unwrap();
        assert_eq!(u.authority(), "[::1]:8080");
    }

    #[test]
    fn rejects_bad_urls() {
        for bad in [
            "example.com",
            "ftp://example.com",
            "http://",
            "http://:80",
            "http://host:99999",
            "http://host:0",
            "http://host:abc",
            "http://user:pw@host",
            "http://host/a?b=c",
            "http://ho st",
            "http://[::1",
            "http://-a",
            "http://a-",
            "http://a-.b",
            "http://-a.b:80",
            "http://a.-b/x",
            "http://a..b",
            "http://.a",
            "http://a..",
        ] {
            assert!(ServiceUrl::parse(bad).is_err(), "{bad} should be rejected");
        }
    }

    #[test]
    fn errors_never_echo_credentials() {
        for bad in [
            "admin:s3cret@api.example.com",
            "https://admin:s3cret@api.example.com",
            "http://admin:s3cret@api.example.com/v1?x=1",
            "http://admin:s3cret@api.example.com:99999",
        ] {
            let e = ServiceUrl::parse(bad).unwrap_err();
            assert!(!e.contains("s3cret"), "{bad}: {e}");
        }
        // A value that looks like a name helps; another may be a secret pasted in the wrong place.
        assert_eq!(
            ServiceUrl::parse("sk-live-SECRET0123456789abcdefghij").unwrap_err(),
            "<hidden value, 34 characters> is not an absolute URL (expected http://host or https://host)"
        );
        assert_eq!(
            ServiceUrl::parse("Bearer SECRET://h").unwrap_err(),
            "scheme <hidden value, 13 characters> is not supported (use http or https)"
        );
        assert_eq!(
            ServiceUrl::parse("ftp://h").unwrap_err(),
            "scheme \"ftp\" is not supported (use http or https)"
        );
        // Without credentials the value helps.
        assert!(ServiceUrl::parse("example.com")
            .unwrap_err()
            .contains("\"example.com\" is not an absolute URL"));
    }

    #[test]
    fn errors_never_quote_the_url() {
        for url in [
            "https://h=sk-SECRET",
            "https://h!sk-SECRET/x",
            "https://h:sk-SECRET/",
        ] {
            let e = ServiceUrl::parse(url).unwrap_err();
            assert!(!e.contains("SECRET"), "{e}");
        }
        assert_eq!(
            ServiceUrl::parse("https://h:99999").unwrap_err(),
            "the port is not a number from 1 to 65535"
        );
    }

    #[test]
    fn host_labels_follow_rfc_1123() {
        for ok in [
            "http://a",
            "http://a-b.c-d",
            "http://a--b",
            "http://a.",
            "http://x_y.internal",
            "http://127.0.0.1",
            "http://0a.b",
        ] {
            assert!(ServiceUrl::parse(ok).is_ok(), "{ok} should be accepted");
        }
        let long = format!("http://{}.b", "a".repeat(63));
        assert!(ServiceUrl::parse(&long).is_ok());
        let too_long = format!("http://{}.b", "a".repeat(64));
        let expected =
            "the host name is not valid (each `.`-separated label has 1 to 63 characters \
                        and does not begin or end with `-`)";
        for bad in ["http://-a", "http://a-.b", "http://a..b", too_long.as_str()] {
            assert_eq!(ServiceUrl::parse(bad).unwrap_err(), expected, "{bad}");
        }
        let name = format!("http://{}", vec!["a".repeat(63); 4].join("."));
        assert_eq!(ServiceUrl::parse(&name).unwrap_err(), expected);
    }
}
