//! `cors`: Cross-Origin Resource Sharing (Kong's plugin and option names: `origins`, `methods`,
//! `headers`, `exposed_headers`, `credentials`, `max_age`, `preflight_continue`, `private_network`,
//! `allow_origin_absent`). Preflights are answered at the edge, in the rewrite phase (before every
//! other plugin's request hook); actual responses (the origin's, other plugins' answers and the
//! gateway's own errors) get the CORS headers. Not consumer-scoped (as Kong's). See
//! docs/traffic-policies.md.
//!
//! Pure decisions only: which headers a preflight answer carries ([`CorsConfig::preflight`]) and
//! what to change on an actual response ([`CorsConfig::actual`]).

use crate::plugins::{settings, PluginError};
use regex_lite::Regex;
use serde::Deserialize;

/// Kong's methods, and the default `Access-Control-Allow-Methods`.
pub const METHODS: [&str; 9] = [
    "GET", "HEAD", "PUT", "PATCH", "POST", "DELETE", "OPTIONS", "TRACE", "CONNECT",
];

/// Status of a preflight answered by the gateway (Kong 3.x answers 200).
pub const PREFLIGHT_STATUS: u16 = 200;

#[derive(Debug, Deserialize)]
#[cfg_attr(
    feature = "schema",
    derive(schemars::JsonSchema),
    schemars(
        rename = "CorsPluginConfig",
        description = "Settings of the `cors` plugin (docs/traffic-policies.md#cors)."
    )
)]
#[serde(deny_unknown_fields)]
pub(crate) struct Raw {
    #[serde(default)]
    origins: Option<Vec<String>>,
    #[serde(default)]
    methods: Option<Vec<String>>,
    #[serde(default)]
    headers: Option<Vec<String>>,
    #[serde(default)]
    exposed_headers: Option<Vec<String>>,
    #[serde(default)]
    credentials: bool,
    #[serde(default)]
    max_age: Option<u64>,
    #[serde(default)]
    preflight_continue: bool,
    #[serde(default)]
    private_network: bool,
    #[serde(default = "yes")]
    allow_origin_absent: bool,
}

fn yes() -> bool {
    true
}

/// One entry of `origins` other than `*`.
#[derive(Debug, Clone)]
enum Rule {
    /// A literal origin, normalised (`scheme://host[:port]`, lower case, no default port).
    Exact(String),
    /// A regular expression matched against the whole origin (when the entry has a `:`) or only its
    /// host (when it has none), as Kong does.
    Pattern { re: Regex, by_host: bool },
}

/// A compiled `cors` instance.
#[derive(Debug, Clone)]
pub struct CorsConfig {
    /// `origins` empty or containing `*`: every origin is allowed.
    any: bool,
    rules: Vec<Rule>,
    methods: String,
    headers: Option<String>,
    exposed_headers: Option<String>,
    pub credentials: bool,
    max_age: Option<u64>,
    pub preflight_continue: bool,
    private_network: bool,
    allow_origin_absent: bool,
}

/// An origin split for matching: `domain` is `scheme://host[:port]` (lower case, default port
/// dropped), `host` the host alone. Something that is not `scheme://host[:port]` is kept whole in both.
fn normalize(origin: &str) -> (String, String) {
    let lower = origin.trim().to_ascii_lowercase();
    let Some((scheme, rest)) = lower.split_once("://") else {
        return (lower.clone(), lower);
    };
    // Port: after the last ':' unless inside an IPv6 literal.
    let (host, port) = match rest.rfind(':') {
        Some(i) if !rest[i..].contains(']') => (&rest[..i], Some(&rest[i + 1..])),
        _ => (rest, None),
    };
    let port = port.filter(|p| !matches!((scheme, *p), ("http", "80") | ("https", "443")));
    let domain = match port {
        Some(p) => format!("{scheme}://{host}:{p}"),
        None => format!("{scheme}://{host}"),
    };
    (domain, host.to_string())
}

/// Kong's test for "this entry is a regular expression": a character outside `[A-Za-z0-9.:/-]`.
fn is_pattern(entry: &str) -> bool {
    entry
        .bytes()
        .any(|b| !(b.is_ascii_alphanumeric() || b".:/-".contains(&b)))
}

fn is_token(s: &str) -> bool {
    !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b))
}

/// Headers to set on a response, and whether `Vary` must name `Origin`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CorsHeaders {
    /// `(name, value)` pairs to set (replacing what the origin sent).
    pub set: Vec<(&'static str, String)>,
    /// Remove the origin's `Access-Control-Allow-Origin` (the request's origin is not allowed).
    pub remove_allow_origin: bool,
    /// Add `Origin` to `Vary` (the answer depends on the request's `Origin`).
    pub vary_origin: bool,
    /// A preflight answer that echoes the request's `Access-Control-Request-Headers` (no `headers`
    /// configured): `Vary` names it.
    pub vary_request_headers: bool,
    /// A preflight answer whose `Access-Control-Allow-Private-Network` depends on the request's
    /// `Access-Control-Request-Private-Network` (`private_network`): `Vary` names it.
    pub vary_private_network: bool,
}

impl CorsHeaders {
    /// The `Vary` of a preflight answer: the request headers the answer depends on (`None`: none).
    /// `Access-Control-Request-Method` is never among them: `Access-Control-Allow-Methods` is the
    /// configured list whatever the method asked for.
    pub fn preflight_vary(&self) -> Option<String> {
        let names = [
            (self.vary_origin, "Origin"),
            (self.vary_request_headers, "Access-Control-Request-Headers"),
            (
                self.vary_private_network,
                "Access-Control-Request-Private-Network",
            ),
        ];
        let list: Vec<&str> = names
            .iter()
            .filter(|(on, _)| *on)
            .map(|(_, n)| *n)
            .collect();
        (!list.is_empty()).then(|| list.join(", "))
    }
}

/// Whether a request is a CORS preflight: `OPTIONS` with `Origin` and `Access-Control-Request-Method`.
pub fn is_preflight(method: &str, origin: Option<&str>, request_method: Option<&str>) -> bool {
    method.eq_ignore_ascii_case("OPTIONS") && origin.is_some() && request_method.is_some()
}

impl CorsConfig {
    pub fn parse(config: &serde_json::Value) -> Result<CorsConfig, PluginError> {
        let raw: Raw = settings(config)?;
        let mut errors: Vec<(String, String)> = Vec::new();
        let origins = raw.origins.unwrap_or_default();
        let mut any = origins.is_empty();
        let mut rules = Vec::new();
        for (i, entry) in origins.iter().enumerate() {
            let path = format!("origins[{i}]");
            if entry == "*" {
                any = true;
            } else if entry.is_empty() {
                errors.push((path, "an origin cannot be empty".into()));
            } else if is_pattern(entry) {
                let body = entry.strip_prefix('^').unwrap_or(entry);
                let body = body.strip_suffix('$').unwrap_or(body);
                match regex_lite::RegexBuilder::new(&format!("^(?:{body})$"))
                    .size_limit(1 << 20)
                    .build()
                {
                    Ok(re) => rules.push(Rule::Pattern {
                        re,
                        by_host: !entry.contains(':'),
                    }),
                    Err(e) => errors.push((path, format!("invalid regular expression: {e}"))),
                }
            } else if entry == "null" {
                rules.push(Rule::Exact("null".into()));
            } else {
                let ok = entry.split_once("://").is_some_and(|(scheme, rest)| {
                    !scheme.is_empty() && !rest.is_empty() && !rest.contains('/')
                });
                if ok {
                    rules.push(Rule::Exact(normalize(entry).0));
                } else {
                    // Not quoted: the entry may be a URL with credentials or a token in it.
                    errors.push((
                        path,
                        "not an origin: write scheme://host[:port] (e.g. \
                         https://app.example.com, no path), \"*\", or a regular expression"
                            .into(),
                    ));
                }
            }
        }
        let methods = match raw.methods {
            None => METHODS.join(","),
            Some(list) => {
                for (i, m) in list.iter().enumerate() {
                    if !METHODS.contains(&m.as_str()) {
                        // Quoted only when it looks like a method (letters): anything else may
                        // be a secret pasted in the wrong place.
                        let shown = if (1..=16).contains(&m.len())
                            && m.bytes().all(|b| b.is_ascii_alphabetic())
                        {
                            format!("{m:?} is ")
                        } else {
                            String::new()
                        };
                        errors.push((
                            format!("methods[{i}]"),
                            format!("{shown}not one of {}", METHODS.join(", ")),
                        ));
                    }
                }
                list.join(",")
            }
        };
        let mut names = |field: &str, list: Option<Vec<String>>| -> Option<String> {
            let list = list.filter(|l| !l.is_empty())?;
            for (i, h) in list.iter().enumerate() {
                if !is_token(h) {
                    errors.push((
                        format!("{field}[{i}]"),
                        // Not quoted: it may be a whole `Name: secret` line.
                        format!(
                            "not a valid header name ({})",
                            super::transform::bad_name_char(h)
                        ),
                    ));
                }
            }
            Some(list.join(","))
        };
        let headers = names("headers", raw.headers);
        let exposed_headers = names("exposed_headers", raw.exposed_headers);
        if !errors.is_empty() {
            return Err(PluginError::Config(errors));
        }
        Ok(CorsConfig {
            any,
            rules,
            methods,
            headers,
            exposed_headers,
            credentials: raw.credentials,
            max_age: raw.max_age,
            preflight_continue: raw.preflight_continue,
            private_network: raw.private_network,
            allow_origin_absent: raw.allow_origin_absent,
        })
    }

    /// Whether `origin` is in `origins` (not counting `*`).
    fn listed(&self, origin: &str) -> bool {
        let (domain, host) = normalize(origin);
        self.rules.iter().any(|r| match r {
            Rule::Exact(o) => *o == domain,
            Rule::Pattern { re, by_host } => re.is_match(if *by_host { &host } else { &domain }),
        })
    }

    /// `Access-Control-Allow-Origin` for a request from `origin` (`None`: not allowed), and whether
    /// the answer depends on the origin (then `Vary: Origin`).
    fn allow_origin(&self, origin: Option<&str>) -> (Option<String>, bool) {
        match (self.any, self.credentials, origin) {
            // `*` cannot carry credentials (Fetch standard): echo the origin instead.
            (true, true, Some(o)) => (Some(o.to_string()), true),
            (true, true, None) => (Some("*".into()), true),
            (true, false, _) => (Some("*".into()), false),
            (false, _, Some(o)) if self.listed(o) => (Some(o.to_string()), true),
            (false, _, _) => (None, true),
        }
    }

    /// The headers of the answer to a preflight from `origin` (status [`PREFLIGHT_STATUS`], empty
    /// body). An origin that is not allowed gets none of the `Access-Control-*` headers.
    pub fn preflight(
        &self,
        origin: &str,
        request_headers: Option<&str>,
        request_private_network: Option<&str>,
    ) -> CorsHeaders {
        let (allow, vary_origin) = self.allow_origin(Some(origin));
        let mut set = Vec::new();
        let allowed = allow.is_some();
        if let Some(allow) = allow {
            let star = allow == "*";
            set.push(("access-control-allow-origin", allow));
            if self.credentials && !star {
                set.push(("access-control-allow-credentials", "true".into()));
            }
            match (&self.headers, request_headers) {
                (Some(h), _) => set.push(("access-control-allow-headers", h.clone())),
                (None, Some(h)) if !h.trim().is_empty() => {
                    set.push(("access-control-allow-headers", h.trim().to_string()))
                }
                _ => {}
            }
            set.push(("access-control-allow-methods", self.methods.clone()));
            if let Some(age) = self.max_age {
                set.push(("access-control-max-age", age.to_string()));
            }
            if self.private_network
                && request_private_network.is_some_and(|v| v.trim().eq_ignore_ascii_case("true"))
            {
                set.push(("access-control-allow-private-network", "true".into()));
            }
        }
        CorsHeaders {
            set,
            remove_allow_origin: false,
            vary_origin,
            vary_request_headers: allowed && self.headers.is_none(),
            vary_private_network: allowed && self.private_network,
        }
    }

    /// What to change on an actual (non-preflight) response to a request from `origin`. `None`: leave
    /// the response alone (no `Origin` and `allow_origin_absent` is false).
    pub fn actual(&self, origin: Option<&str>) -> Option<CorsHeaders> {
        if origin.is_none() && !self.allow_origin_absent {
            return None;
        }
        let (allow, vary_origin) = self.allow_origin(origin);
        let mut out = CorsHeaders {
            vary_origin,
            ..CorsHeaders::default()
        };
        match allow {
            Some(allow) => {
                let star = allow == "*";
                out.set.push(("access-control-allow-origin", allow));
                if self.credentials && !star {
                    out.set
                        .push(("access-control-allow-credentials", "true".into()));
                }
                if let Some(e) = &self.exposed_headers {
                    out.set.push(("access-control-expose-headers", e.clone()));
                }
            }
            None => out.remove_allow_origin = true,
        }
        Some(out)
    }
}

/// `vary` with `Origin` added (case-insensitively once; `*` stays `*`).
pub fn vary_with_origin(vary: Option<&str>) -> String {
    match vary.map(str::trim).filter(|v| !v.is_empty()) {
        None => "Origin".into(),
        Some(v)
            if v.split(',').any(|t| {
                let t = t.trim();
                t == "*" || t.eq_ignore_ascii_case("origin")
            }) =>
        {
            v.to_string()
        }
        Some(v) => format!("{v}, Origin"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    #[cfg(target_arch = "wasm32")]
    use wasm_bindgen_test::wasm_bindgen_test as test;

    fn config(v: serde_json::Value) -> CorsConfig {
        CorsConfig::parse(&v).expect("valid")
    }

    fn get<'a>(h: &'a CorsHeaders, name: &str) -> Option<&'a str> {
        h.set
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, v)| v.as_str())
    }

    #[test]
    fn preflight_detection_needs_options_origin_and_request_method() {
        assert!(is_preflight("OPTIONS", Some("https://a.test"), Some("PUT")));
        assert!(!is_preflight("OPTIONS", None, Some("PUT")));
        assert!(!is_preflight("OPTIONS", Some("https://a.test"), None));
        assert!(!is_preflight("GET", Some("https://a.test"), Some("PUT")));
    }

    #[test]
    fn defaults_allow_every_origin_with_star() {
        let c = config(json!({}));
        let p = c.preflight("https://a.test", Some("X-Token, Content-Type"), None);
        assert_eq!(get(&p, "access-control-allow-origin"), Some("*"));
        assert_eq!(
            get(&p, "access-control-allow-methods"),
            Some("GET,HEAD,PUT,PATCH,POST,DELETE,OPTIONS,TRACE,CONNECT")
        );
        // No `headers`: the request's Access-Control-Request-Headers are echoed, as Kong does.
        assert_eq!(
            get(&p, "access-control-allow-headers"),
            Some("X-Token, Content-Type")
        );
        assert_eq!(get(&p, "access-control-max-age"), None);
        assert_eq!(get(&p, "access-control-allow-credentials"), None);
        assert!(!p.vary_origin);
        let a = c.actual(Some("https://a.test")).unwrap();
        assert_eq!(get(&a, "access-control-allow-origin"), Some("*"));
        assert!(!a.vary_origin);
        // No Origin: still `*` (allow_origin_absent defaults to true).
        assert_eq!(
            get(&c.actual(None).unwrap(), "access-control-allow-origin"),
            Some("*")
        );
    }

    #[test]
    fn credentials_with_star_echo_the_origin() {
        let c = config(json!({"origins": ["*"], "credentials": true}));
        let a = c.actual(Some("https://a.test")).unwrap();
        assert_eq!(
            get(&a, "access-control-allow-origin"),
            Some("https://a.test")
        );
        assert_eq!(get(&a, "access-control-allow-credentials"), Some("true"));
        assert!(a.vary_origin);
        let p = c.preflight("https://a.test", None, None);
        assert_eq!(
            get(&p, "access-control-allow-origin"),
            Some("https://a.test")
        );
        assert_eq!(get(&p, "access-control-allow-credentials"), Some("true"));
        assert_eq!(get(&p, "access-control-allow-headers"), None);
        let none = c.actual(None).unwrap();
        assert_eq!(get(&none, "access-control-allow-origin"), Some("*"));
        assert_eq!(get(&none, "access-control-allow-credentials"), None);
        assert!(none.vary_origin);
    }

    #[test]
    fn listed_origins_exact_and_regex() {
        let c = config(json!({
            "origins": ["https://app.example.com", "http://localhost:3000", "https://.*\\.example\\.org", "(.*\\.)?partner\\.test"],
            "methods": ["GET", "POST"],
            "headers": ["X-Token", "Content-Type"],
            "exposed_headers": ["X-Request-Id"],
            "credentials": true,
            "max_age": 600,
        }));
        for ok in [
            "https://app.example.com",
            "https://APP.example.com:443",
            "http://localhost:3000",
            "https://a.example.org",
            "https://b.c.example.org",
            "http://partner.test",
            "https://x.partner.test:8443",
        ] {
            let a = c.actual(Some(ok)).unwrap();
            assert_eq!(get(&a, "access-control-allow-origin"), Some(ok), "{ok}");
            assert_eq!(get(&a, "access-control-allow-credentials"), Some("true"));
            assert_eq!(
                get(&a, "access-control-expose-headers"),
                Some("X-Request-Id")
            );
            assert!(a.vary_origin);
        }
        for bad in [
            "https://evil.com",
            "http://app.example.com",
            "https://app.example.com.evil.com",
            "https://example.org",
            "http://localhost:3001",
            "https://a.example.org.evil.com",
            "https://evilpartner.test",
            "null",
        ] {
            let a = c.actual(Some(bad)).unwrap();
            assert_eq!(a.set, vec![], "{bad}");
            assert!(a.remove_allow_origin, "{bad}");
            assert!(a.vary_origin, "{bad}: the answer depends on Origin");
        }
        let p = c.preflight("https://app.example.com", Some("x-other"), Some("true"));
        assert_eq!(get(&p, "access-control-allow-methods"), Some("GET,POST"));
        assert_eq!(
            get(&p, "access-control-allow-headers"),
            Some("X-Token,Content-Type")
        );
        assert_eq!(get(&p, "access-control-max-age"), Some("600"));
        assert_eq!(get(&p, "access-control-allow-private-network"), None);
        let refused = c.preflight("https://evil.com", Some("x-token"), None);
        assert!(refused.set.is_empty());
        assert!(refused.vary_origin);
    }

    #[test]
    fn private_network_and_origin_absent() {
        let c = config(
            json!({"origins": ["https://a.test"], "private_network": true, "allow_origin_absent": false}),
        );
        let p = c.preflight("https://a.test", None, Some("true"));
        assert_eq!(
            get(&p, "access-control-allow-private-network"),
            Some("true")
        );
        let p = c.preflight("https://a.test", None, None);
        assert_eq!(get(&p, "access-control-allow-private-network"), None);
        assert_eq!(c.actual(None), None);
        let absent_ok = config(json!({"origins": ["https://a.test"]}));
        let a = absent_ok.actual(None).unwrap();
        assert!(a.set.is_empty() && a.vary_origin && a.remove_allow_origin);
    }

    #[test]
    fn preflight_vary_names_what_the_answer_depends_on() {
        // Every origin, no credentials, headers echoed: only Access-Control-Request-Headers.
        let p = config(json!({})).preflight("https://a.test", Some("x-a"), None);
        assert_eq!(
            p.preflight_vary().as_deref(),
            Some("Access-Control-Request-Headers")
        );
        // Even when the preflight asks for no header (another one asking for some gets another answer).
        let p = config(json!({})).preflight("https://a.test", None, None);
        assert_eq!(
            p.preflight_vary().as_deref(),
            Some("Access-Control-Request-Headers")
        );
        // Listed origins, headers echoed, private network.
        let c = config(json!({"origins": ["https://a.test"], "private_network": true}));
        assert_eq!(
            c.preflight("https://a.test", Some("x-a"), Some("true"))
                .preflight_vary()
                .as_deref(),
            Some("Origin, Access-Control-Request-Headers, Access-Control-Request-Private-Network")
        );
        // Not allowed: the answer depends on Origin only.
        assert_eq!(
            c.preflight("https://evil.test", Some("x-a"), Some("true"))
                .preflight_vary()
                .as_deref(),
            Some("Origin")
        );
        // Configured headers, every origin without credentials: nothing varies.
        let fixed = config(json!({"headers": ["X-Token"]}));
        assert_eq!(
            fixed
                .preflight("https://a.test", Some("x-a"), None)
                .preflight_vary(),
            None
        );
    }

    #[test]
    fn vary_is_extended_not_replaced() {
        assert_eq!(vary_with_origin(None), "Origin");
        assert_eq!(vary_with_origin(Some("")), "Origin");
        assert_eq!(
            vary_with_origin(Some("Accept-Encoding")),
            "Accept-Encoding, Origin"
        );
        assert_eq!(vary_with_origin(Some("origin, accept")), "origin, accept");
        assert_eq!(vary_with_origin(Some("*")), "*");
    }

    #[test]
    fn bad_input_is_reported_with_paths() {
        let err = |v| match CorsConfig::parse(&v) {
            Err(PluginError::Config(e)) => e,
            other => panic!("{other:?}"),
        };
        let e = err(json!({
            "origins": ["https://ok.test", "https://(unclosed", "app.example.com", "https://a.test/path", ""],
            "methods": ["GET", "get", "FETCH"],
            "headers": ["X-Ok", "bad header"],
            "exposed_headers": ["x:y"],
        }));
        let paths: Vec<&str> = e.iter().map(|(p, _)| p.as_str()).collect();
        assert_eq!(
            paths,
            [
                "origins[1]",
                "origins[2]",
                "origins[3]",
                "origins[4]",
                "methods[1]",
                "methods[2]",
                "headers[1]",
                "exposed_headers[0]"
            ]
        );
        assert!(e[0].1.contains("invalid regular expression"), "{e:?}");
        assert!(err(json!({"max_age": -1}))[0].0 == "max_age");
        assert!(err(json!({"origin": ["*"]}))[0].1.contains("unknown field"));
        assert_eq!(err(json!({"credentials": "yes"}))[0].0, "credentials");
    }

    #[test]
    fn errors_never_quote_a_bad_entry() {
        let e = match CorsConfig::parse(&json!({
            "origins": ["https://app.test/key/sk-SECRET1", "https://u:sk-SECRET2@(x"],
            "headers": ["Authorization: Bearer sk-SECRET3"],
            "exposed_headers": ["X-Key=sk-SECRET4"],
        })) {
            Err(PluginError::Config(e)) => e,
            other => panic!("{other:?}"),
        };
        assert_eq!(e.len(), 4, "{e:?}");
        assert!(!format!("{e:?}").contains("SECRET"), "{e:?}");
        assert_eq!(e[0].0, "origins[0]");
        assert!(e[0]
            .1
            .starts_with("not an origin: write scheme://host[:port]"));
        assert_eq!(e[2].0, "headers[0]");
        assert_eq!(e[2].1, "not a valid header name (it contains ':')");
        assert_eq!(e[3].1, "not a valid header name (it contains '=')");
        // A method is quoted only when it is made of letters (a misspelt method).
        let e = match CorsConfig::parse(&json!({"methods": ["get", "sk-SECRET5"]})) {
            Err(PluginError::Config(e)) => e,
            other => panic!("{other:?}"),
        };
        assert!(
            e[0].1.starts_with("\"get\" is not one of GET, HEAD"),
            "{e:?}"
        );
        assert!(e[1].1.starts_with("not one of GET, HEAD"), "{e:?}");
        assert!(!format!("{e:?}").contains("SECRET"), "{e:?}");
    }
}
