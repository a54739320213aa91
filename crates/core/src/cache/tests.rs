use super::*;
use crate::identity::Identity;
use serde_json::json;
use std::collections::BTreeMap;
#[cfg(target_arch = "wasm32")]
use wasm_bindgen_test::wasm_bindgen_test as test;

fn cfg(v: serde_json::Value) -> ProxyCacheConfig {
    parse(&v).unwrap_or_else(|e| panic!("{v}: {e:?}"))
}

fn headers(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_ascii_lowercase(), v.to_string()))
        .collect()
}

struct Req {
    method: &'static str,
    host: &'static str,
    path: &'static str,
    query: &'static str,
    headers: BTreeMap<String, String>,
    identity: Option<Identity>,
}

impl Req {
    fn get(path: &'static str, query: &'static str) -> Req {
        Req {
            method: "GET",
            host: "api.example.com",
            path,
            query,
            headers: BTreeMap::new(),
            identity: None,
        }
    }
    fn with(mut self, name: &str, value: &str) -> Req {
        self.headers.insert(name.to_ascii_lowercase(), value.into());
        self
    }
    fn method(mut self, m: &'static str) -> Req {
        self.method = m;
        self
    }
    fn consumer(mut self, id: &str) -> Req {
        self.identity = Some(Identity {
            consumer_id: id.into(),
            username: format!("user-{id}"),
            ..Default::default()
        });
        self
    }
    fn run<T>(&self, f: impl FnOnce(&RequestInfo<'_>) -> T) -> T {
        let h = |n: &str| self.headers.get(n).cloned();
        let info = RequestInfo {
            method: self.method,
            host: self.host,
            path: self.path,
            query: self.query,
            header: &h,
            identity: self.identity.as_ref(),
        };
        f(&info)
    }
    fn decision(&self, c: &ProxyCacheConfig) -> RequestDecision {
        self.run(|r| request_decision(c, r))
    }
    fn key(&self, c: &ProxyCacheConfig) -> String {
        self.run(|r| cache_key(c, r, "r", "0.0"))
    }
}

fn storable(c: &ProxyCacheConfig, status: u16, pairs: &[(&str, &str)]) -> Storable {
    let h = headers(pairs);
    let get = |n: &str| h.get(n).cloned();
    response_decision(
        c,
        &ResponseInfo {
            status,
            header: &get,
            now_secs: NOW_SECS,
        },
    )
}

/// 2023-11-14 22:13:20 GMT.
const NOW_SECS: u64 = 1_700_000_000;

const JSON: (&str, &str) = ("content-type", "application/json; charset=utf-8");

// ---------------------------------------------------------------------------------------------------
// Settings

#[test]
fn defaults_are_kongs() {
    let c = cfg(json!({}));
    assert_eq!(c.request_method, ["GET", "HEAD"]);
    assert_eq!(c.response_code, [200, 301, 404]);
    assert_eq!(c.content_type, ["text/plain", "application/json"]);
    assert_eq!(c.cache_ttl, 300);
    assert!(!c.cache_control && !c.public && !c.cache_set_cookie && !c.show_cache_key);
    assert_eq!(c.stale_if_error, 0);
    assert!(c.cache_lock);
    assert_eq!(c.cache_lock_timeout, 5.0);
    assert_eq!(c.lock_timeout_ms(), 5_000.0);
    assert_eq!(c.lock_age_ms(), 5_000.0);
    assert_eq!(c, ProxyCacheConfig::default());
    assert_eq!(parse(&serde_json::Value::Null).unwrap(), c);
}

#[test]
fn settings_are_normalized() {
    let c = cfg(
        json!({"vary_headers": ["X-B", "x-a", "X-A"], "vary_query_params": ["z", "a", "z"],
                      "content_type": ["Application/JSON"], "tags": ["t2", "t1", "t2"]}),
    );
    assert_eq!(c.vary_headers, ["x-a", "x-b"]);
    assert_eq!(c.vary_query_params, ["a", "z"]);
    assert_eq!(c.content_type, ["application/json"]);
    assert_eq!(c.tags, ["t1", "t2"]);
}

#[test]
fn bad_settings_are_reported_with_paths() {
    let errors = |v: serde_json::Value| match parse(&v) {
        Err(crate::plugins::PluginError::Config(e)) => e,
        other => panic!("{v}: expected errors, got {other:?}"),
    };
    assert_eq!(
        errors(json!({"response_code": [200, 304]}))[0].0,
        "response_code[1]"
    );
    assert_eq!(errors(json!({"strategy": "redis"}))[0].0, "strategy");
    assert_eq!(
        cfg(json!({"strategy": "memory"})).strategy.as_deref(),
        Some("memory")
    );
    let e = errors(
        json!({"request_method": ["GET", "DELETE"], "response_code": [200, 206, 700],
                          "content_type": ["json"], "cache_ttl": 0, "vary_headers": ["bad header"],
                          "vary_query_params": ["a=b"], "tags": ["a,b", ""]}),
    );
    let paths: Vec<&str> = e.iter().map(|(p, _)| p.as_str()).collect();
    assert_eq!(
        paths,
        [
            "request_method[1]",
            "response_code[1]",
            "response_code[2]",
            "content_type[0]",
            "cache_ttl",
            "vary_headers[0]",
            "vary_query_params[0]",
            "tags[0]",
            "tags[1]"
        ]
    );
    assert_eq!(errors(json!({"request_method": []}))[0].0, "request_method");
    assert_eq!(
        errors(json!({"stale_if_error": 1u64 << 40}))[0].0,
        "stale_if_error"
    );
    for bad in [json!(0), json!(-1), json!(300.5), json!("5"), json!(true)] {
        assert_eq!(
            errors(json!({ "cache_lock_timeout": bad }))[0].0,
            "cache_lock_timeout",
            "{bad}"
        );
    }
    assert_eq!(errors(json!({"cache_lock_age": 0}))[0].0, "cache_lock_age");
    assert_eq!(errors(json!({"cache_lock": "yes"}))[0].0, "cache_lock");
    let c = cfg(json!({"cache_lock": false, "cache_lock_timeout": 0.25}));
    assert!(!c.cache_lock);
    assert_eq!(c.lock_timeout_ms(), 250.0);
    assert_eq!(
        cfg(json!({"cache_lock_timeout": 300})).cache_lock_timeout,
        300.0
    );
    // Unknown fields and wrong types, with their path.
    assert_eq!(errors(json!({"cache_ttll": 5}))[0].0, "cache_ttll");
    assert!(errors(json!({"cache_ttll": 5}))[0]
        .1
        .contains("unknown field"));
    assert_eq!(errors(json!({"cache_ttl": "5"}))[0].0, "cache_ttl");
    assert_eq!(
        errors(json!({"response_code": [200, "x"]}))[0].0,
        "response_code[1]"
    );
}

#[test]
fn plugin_registry_knows_proxy_cache() {
    assert!(crate::plugins::registry::find("proxy-cache").is_some());
    let p = crate::plugins::parse("proxy-cache", &json!({"cache_ttl": 5})).unwrap();
    assert_eq!(p.get::<ProxyCacheConfig>().map(|c| c.cache_ttl), Some(5));
}

// ---------------------------------------------------------------------------------------------------
// Request cacheability

#[test]
fn methods_outside_the_policy_bypass() {
    let c = cfg(json!({}));
    assert_eq!(
        Req::get("/a", "").decision(&c),
        RequestDecision::Cache { lookup: true }
    );
    assert_eq!(
        Req::get("/a", "").method("HEAD").decision(&c),
        RequestDecision::Cache { lookup: true }
    );
    for m in ["POST", "PUT", "DELETE", "PATCH", "OPTIONS"] {
        assert_eq!(
            Req::get("/a", "").method(m).decision(&c),
            RequestDecision::Bypass(Bypass::Method),
            "{m}"
        );
    }
    let post = cfg(json!({"request_method": ["POST"]}));
    assert_eq!(
        Req::get("/a", "").decision(&post),
        RequestDecision::Bypass(Bypass::Method)
    );
    assert_eq!(
        Req::get("/a", "").method("POST").decision(&post),
        RequestDecision::Cache { lookup: true }
    );
}

#[test]
fn upgrades_and_ranges_bypass() {
    let c = cfg(json!({}));
    assert_eq!(
        Req::get("/a", "").with("upgrade", "websocket").decision(&c),
        RequestDecision::Bypass(Bypass::Upgrade)
    );
    assert_eq!(
        Req::get("/a", "").with("range", "bytes=0-10").decision(&c),
        RequestDecision::Bypass(Bypass::Range)
    );
}

#[test]
fn credentials_need_a_consumer_or_public() {
    let c = cfg(json!({}));
    let public = cfg(json!({"public": true}));
    for (name, value) in [
        ("authorization", "Bearer x"),
        ("cookie", "session=1"),
        ("apikey", "k"),
        ("x-api-key", "k"),
        ("proxy-authorization", "Basic x"),
    ] {
        let r = Req::get("/a", "").with(name, value);
        assert_eq!(
            r.decision(&c),
            RequestDecision::Bypass(Bypass::Credentials),
            "{name}"
        );
        assert_eq!(
            r.decision(&public),
            RequestDecision::Cache { lookup: true },
            "{name}"
        );
        // An authenticated consumer gets a key of its own.
        assert_eq!(
            r.consumer("c1").decision(&c),
            RequestDecision::Cache { lookup: true },
            "{name}"
        );
    }
    for q in [
        "apikey=k",
        "a=1&jwt=t",
        "API_KEY=k",
        "access_token=t",
        "access%5Ftoken=t",
        "%61pikey=k",
        "a=1&ap%69_key=k",
        "%6Awt=t",
    ] {
        assert_eq!(
            Req {
                query: Box::leak(q.to_string().into_boxed_str()),
                ..Req::get("/a", "")
            }
            .decision(&c),
            RequestDecision::Bypass(Bypass::Credentials),
            "{q}"
        );
    }
    assert_eq!(
        Req::get("/a", "apikeys=1&key=2").decision(&c),
        RequestDecision::Cache { lookup: true }
    );
    // The anonymous fallback consumer is not an authentication.
    let mut anon = Req::get("/a", "")
        .with("authorization", "Bearer bad")
        .consumer("anon");
    anon.identity.as_mut().unwrap().anonymous = true;
    assert_eq!(
        anon.decision(&c),
        RequestDecision::Bypass(Bypass::Credentials)
    );
}

#[test]
fn client_cache_control_counts_only_when_obeyed() {
    let obey = cfg(json!({"cache_control": true}));
    let ignore = cfg(json!({}));
    let r = |v: &str| Req::get("/a", "").with("cache-control", v);
    assert_eq!(
        r("no-store").decision(&obey),
        RequestDecision::Bypass(Bypass::RequestNoStore)
    );
    assert_eq!(
        r("no-cache").decision(&obey),
        RequestDecision::Cache { lookup: false }
    );
    assert_eq!(
        r("max-age=0").decision(&obey),
        RequestDecision::Cache { lookup: false }
    );
    assert_eq!(
        Req::get("/a", "")
            .with("pragma", "no-cache")
            .decision(&obey),
        RequestDecision::Cache { lookup: false }
    );
    assert_eq!(
        r("max-age=60").decision(&obey),
        RequestDecision::Cache { lookup: true }
    );
    for v in ["no-store", "no-cache", "max-age=0"] {
        assert_eq!(
            r(v).decision(&ignore),
            RequestDecision::Cache { lookup: true },
            "{v}"
        );
    }
}

// ---------------------------------------------------------------------------------------------------
// Response cacheability and TTL

#[test]
fn statuses_and_content_types_outside_the_policy_are_not_stored() {
    let c = cfg(json!({}));
    assert_eq!(
        storable(&c, 200, &[JSON]),
        Storable::Yes { ttl: 300, stale: 0 }
    );
    assert_eq!(
        storable(&c, 301, &[("content-type", "text/plain")]),
        Storable::Yes { ttl: 300, stale: 0 }
    );
    assert_eq!(
        storable(&c, 404, &[JSON]),
        Storable::Yes { ttl: 300, stale: 0 }
    );
    for s in [201, 204, 302, 400, 401, 403, 500, 502, 503] {
        assert_eq!(storable(&c, s, &[JSON]), Storable::No("status"), "{s}");
    }
    assert_eq!(
        storable(&c, 200, &[("content-type", "text/html")]),
        Storable::No("content-type")
    );
    assert_eq!(storable(&c, 200, &[]), Storable::No("content-type"));
    let wild = cfg(json!({"content_type": ["image/*"]}));
    assert!(matches!(
        storable(&wild, 200, &[("content-type", "image/png")]),
        Storable::Yes { .. }
    ));
    assert_eq!(
        storable(&wild, 200, &[("content-type", "text/png")]),
        Storable::No("content-type")
    );
    let any = cfg(json!({"content_type": []}));
    assert!(matches!(storable(&any, 200, &[]), Storable::Yes { .. }));
    let all = cfg(json!({"content_type": ["*/*"]}));
    assert!(matches!(
        storable(&all, 200, &[("content-type", "x/y")]),
        Storable::Yes { .. }
    ));
}

#[test]
fn set_cookie_and_vary_guard_shared_entries() {
    let c = cfg(json!({}));
    assert_eq!(
        storable(&c, 200, &[JSON, ("set-cookie", "a=1")]),
        Storable::No("set-cookie")
    );
    let cookies = cfg(json!({"cache_set_cookie": true}));
    assert!(matches!(
        storable(&cookies, 200, &[JSON, ("set-cookie", "a=1")]),
        Storable::Yes { .. }
    ));
    assert_eq!(
        storable(&c, 200, &[JSON, ("vary", "*")]),
        Storable::No("vary")
    );
    assert_eq!(
        storable(&c, 200, &[JSON, ("vary", "Accept-Language")]),
        Storable::No("vary")
    );
    assert!(matches!(
        storable(&c, 200, &[JSON, ("vary", "Accept-Encoding")]),
        Storable::Yes { .. }
    ));
    let lang = cfg(json!({"vary_headers": ["Accept-Language"]}));
    assert!(matches!(
        storable(
            &lang,
            200,
            &[JSON, ("vary", "accept-encoding, Accept-Language")]
        ),
        Storable::Yes { .. }
    ));
}

#[test]
fn no_store_and_private_are_always_obeyed() {
    for c in [cfg(json!({})), cfg(json!({"cache_control": true}))] {
        for (cc, why) in [
            ("no-store", "no-store"),
            ("private", "private"),
            ("private, max-age=60", "private"),
            ("max-age=60, private=\"set-cookie\"", "private"),
            ("public, NO-STORE", "no-store"),
        ] {
            assert_eq!(
                storable(&c, 200, &[JSON, ("cache-control", cc)]),
                Storable::No(why),
                "{cc}"
            );
        }
    }
}

#[test]
fn ttl_comes_from_cache_control_when_obeyed() {
    let obey = cfg(json!({"cache_control": true, "cache_ttl": 120, "stale_if_error": 30}));
    let ttl = |cc: Option<&str>, age: Option<&str>| {
        let mut h = vec![JSON];
        if let Some(cc) = cc {
            h.push(("cache-control", cc));
        }
        if let Some(a) = age {
            h.push(("age", a));
        }
        storable(&obey, 200, &h)
    };
    assert_eq!(
        ttl(None, None),
        Storable::Yes {
            ttl: 120,
            stale: 30
        }
    );
    assert_eq!(
        ttl(Some("max-age=60"), None),
        Storable::Yes { ttl: 60, stale: 30 }
    );
    assert_eq!(
        ttl(Some("max-age=60, s-maxage=10"), None),
        Storable::Yes { ttl: 10, stale: 0 }
    );
    assert_eq!(
        ttl(Some("s-maxage=10, max-age=60"), None),
        Storable::Yes { ttl: 10, stale: 0 }
    );
    assert_eq!(
        ttl(Some("max-age=60"), Some("45")),
        Storable::Yes { ttl: 15, stale: 30 }
    );
    assert_eq!(ttl(Some("max-age=60"), Some("90")), Storable::No("max-age"));
    assert_eq!(ttl(Some("max-age=0"), None), Storable::No("max-age"));
    assert_eq!(ttl(Some("max-age=abc"), None), Storable::No("max-age"));
    assert_eq!(ttl(Some("no-cache"), None), Storable::No("no-cache"));
    assert_eq!(
        ttl(Some("max-age=60, stale-if-error=600"), None),
        Storable::Yes {
            ttl: 60,
            stale: 600
        }
    );
    // Ignored unless obeyed: cache_ttl wins.
    let ignore = cfg(json!({"cache_ttl": 120}));
    assert_eq!(
        storable(
            &ignore,
            200,
            &[JSON, ("cache-control", "max-age=5, no-cache")]
        ),
        Storable::Yes { ttl: 120, stale: 0 }
    );
}

#[test]
fn cache_control_parser_handles_quotes_case_and_junk() {
    let cc = CacheControl::parse(Some(
        "Public, private=\"set-cookie, x-a\", MAX-AGE=\"30\", s-maxage=5,, foo=bar, stale-if-error=x",
    ));
    assert!(cc.public && cc.private && !cc.no_store && !cc.no_cache);
    assert_eq!(cc.max_age, Some(30));
    assert_eq!(cc.s_maxage, Some(5));
    assert_eq!(cc.shared_max_age(), Some(5));
    assert_eq!(cc.stale_if_error, None);
    assert_eq!(CacheControl::parse(None), CacheControl::default());
    assert_eq!(CacheControl::parse(Some("")), CacheControl::default());
}

// ---------------------------------------------------------------------------------------------------
// Keys

#[test]
fn key_has_every_component() {
    let c = cfg(json!({"vary_headers": ["accept-language", "x-tenant"]}));
    let key = Req::get("/users/1", "b=2&a=1")
        .with("accept-language", " fr ")
        .run(|r| cache_key(&c, r, "users", "3.7"));
    assert_eq!(
        key,
        "edgegate-cache 1\ngeneration 3.7\nroute users\nmethod GET\nhost api.example.com\npath /users/1\n\
         query a=1&b=2\nheader accept-language: fr\nheader x-tenant\nconsumer -\n"
    );
}

#[test]
fn query_order_does_not_split_the_cache() {
    let c = cfg(json!({}));
    let k = |q: &'static str| Req::get("/a", q).key(&c);
    assert_eq!(k("a=1&b=2"), k("b=2&a=1"));
    assert_eq!(k("a=1&b=2"), k("&b=2&&a=1&"));
    assert_eq!(k("a=1&a=2"), k("a=2&a=1"));
    assert_ne!(k("a=1"), k("a=2"));
    assert_ne!(k("a=1"), k(""));
    assert_ne!(k("a"), k("a="));
    assert_eq!(sorted_query("b=1&a=2&ab=3", &[]), "a=2&ab=3&b=1");
}

#[test]
fn chosen_query_params_only() {
    let c = cfg(json!({"vary_query_params": ["page"]}));
    let k = |q: &'static str| Req::get("/a", q).key(&c);
    assert_eq!(k("page=1&utm_source=x"), k("utm_source=y&page=1"));
    assert_eq!(k(""), k("utm=1"));
    assert_ne!(k("page=1"), k("page=2"));
    // A chosen parameter spelled with percent-encoding is still part of the key (no poisoning of the
    // entry without `page` by `?p%61ge=2`, which the origin reads as page 2).
    for cloaked in ["p%61ge=2", "%70age=2", "pag%65=2&utm=1"] {
        assert_ne!(k(cloaked), k(""), "{cloaked}");
        assert_ne!(k(cloaked), k("page=1"), "{cloaked}");
    }
    assert_eq!(
        sorted_query("p%61ge=2&x=1", &["page".to_string()]),
        "p%61ge=2"
    );
}

#[test]
fn vary_headers_split_the_cache_and_others_do_not() {
    let c = cfg(json!({"vary_headers": ["X-Tenant"]}));
    let k = |tenant: Option<&str>, other: &str| {
        let mut r = Req::get("/a", "").with("x-other", other);
        if let Some(t) = tenant {
            r = r.with("x-tenant", t);
        }
        r.key(&c)
    };
    assert_ne!(k(Some("a"), "1"), k(Some("b"), "1"));
    assert_ne!(k(Some(""), "1"), k(None, "1"));
    assert_eq!(k(Some("a"), "1"), k(Some("a"), "2"));
}

#[test]
fn consumers_are_isolated_unless_public() {
    let c = cfg(json!({}));
    let k1 = Req::get("/a", "").consumer("c1").key(&c);
    let k2 = Req::get("/a", "").consumer("c2").key(&c);
    let none = Req::get("/a", "").key(&c);
    assert!(k1.contains("consumer c1\n"));
    assert_ne!(k1, k2);
    assert_ne!(k1, none);
    let public = cfg(json!({"public": true}));
    assert_eq!(
        Req::get("/a", "").consumer("c1").key(&public),
        Req::get("/a", "").consumer("c2").key(&public)
    );
    // Without a consumer id, the username is used.
    let mut r = Req::get("/a", "").consumer("");
    r.identity.as_mut().unwrap().username = "alice".into();
    assert!(r.key(&c).contains("consumer alice\n"));
}

#[test]
fn head_shares_get_and_other_components_split() {
    let c = cfg(json!({"request_method": ["GET", "HEAD", "POST"]}));
    let get = Req::get("/a", "").key(&c);
    assert_eq!(get, Req::get("/a", "").method("HEAD").key(&c));
    assert_ne!(get, Req::get("/a", "").method("POST").key(&c));
    assert_ne!(get, Req::get("/A", "").key(&c));
    assert_ne!(
        get,
        Req {
            host: "other.example.com",
            ..Req::get("/a", "")
        }
        .key(&c)
    );
    let ci = cfg(json!({"ignore_uri_case": true}));
    assert_eq!(Req::get("/A", "").key(&ci), Req::get("/a", "").key(&ci));
    let r = Req::get("/a", "");
    assert_ne!(
        r.run(|x| cache_key(&c, x, "r1", "0.0")),
        r.run(|x| cache_key(&c, x, "r2", "0.0"))
    );
    assert_ne!(
        r.run(|x| cache_key(&c, x, "r", "0.0")),
        r.run(|x| cache_key(&c, x, "r", "0.1"))
    );
}

#[test]
fn digest_and_url() {
    let d = key_digest("abc");
    assert_eq!(
        d,
        "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
    );
    assert_eq!(
        cache_url("api.example.com", &d),
        format!("https://api.example.com/.edgegate-cache/{d}")
    );
    assert_eq!(cache_url("::1", "x"), "https://[::1]/.edgegate-cache/x");
    assert_eq!(cache_url("[::1]", "x"), "https://[::1]/.edgegate-cache/x");
    assert_eq!(
        cache_url("a/b@c", "x"),
        "https://edgegate-cache.invalid/.edgegate-cache/x"
    );
    assert_eq!(
        cache_url("", "x"),
        "https://edgegate-cache.invalid/.edgegate-cache/x"
    );
}

// ---------------------------------------------------------------------------------------------------
// Purge generations

#[test]
fn generations_bump_and_change_keys() {
    let mut g = Generations::default();
    let tags = vec!["catalog".to_string(), "images".to_string()];
    let before = g.for_request("users", &tags);
    assert_eq!(before, "0.0");
    assert_eq!(g.bump_route("users"), 1);
    assert_eq!(g.for_request("users", &tags), "0.1");
    assert_eq!(
        g.for_request("orders", &tags),
        "0.0",
        "other routes keep their entries"
    );
    assert_eq!(g.bump_tag("images"), 1);
    assert_eq!(g.bump_tag("images"), 2);
    assert_eq!(g.for_request("users", &tags), "0.1,images=2");
    assert_eq!(
        g.for_request("users", &[]),
        "0.1",
        "untagged instances are not purged by a tag"
    );
    assert_eq!(g.bump_all(), 1);
    assert_eq!(g.for_request("orders", &[]), "1.0");
    let back = Generations::parse(&g.to_json()).unwrap();
    assert_eq!(back, g);
    assert_eq!(Generations::parse("{}").unwrap(), Generations::default());
    assert!(Generations::parse("{\"all\": \"x\"}").is_err());
    assert!(Generations::parse("nope").is_err());
    let mut max = Generations {
        all: u64::MAX,
        ..Default::default()
    };
    assert_eq!(max.bump_all(), u64::MAX);
}

// ---------------------------------------------------------------------------------------------------
// Stored entries: age, freshness, stale-if-error (time injected)

const T0: f64 = 1_700_000_000_000.0;

#[test]
fn meta_round_trips_and_rejects_junk() {
    let m = StoredMeta::new(T0, 60, 30, Some("5"));
    assert_eq!(m.to_header(), "stored=1700000000000;ttl=60;age=5;stale=30");
    assert_eq!(StoredMeta::parse(&m.to_header()), Some(m));
    assert_eq!(m.storage_seconds(), 90);
    for bad in [
        "",
        "stored=1;ttl=2;age=3",
        "stored=x;ttl=2;age=3;stale=4",
        "garbage",
    ] {
        assert_eq!(StoredMeta::parse(bad), None, "{bad}");
    }
    assert_eq!(StoredMeta::new(T0, 1, 0, Some("junk")).age, 0);
}

#[test]
fn freshness_over_time() {
    let m = StoredMeta::new(T0, 60, 30, Some("5"));
    let at = |s: f64| m.freshness(T0 + s * 1000.0);
    let f = at(0.0);
    assert!(f.fresh && !f.usable_on_error);
    assert_eq!((f.age, f.remaining), (5, 60));
    let f = at(59.9);
    assert!(f.fresh);
    assert_eq!((f.age, f.remaining), (64, 1));
    let f = at(60.0);
    assert!(!f.fresh && f.usable_on_error);
    assert_eq!(f.remaining, -1);
    let f = at(89.9);
    assert!(!f.fresh && f.usable_on_error);
    assert_eq!(f.remaining, -30);
    assert_eq!(at(60.5).remaining, -1);
    assert_eq!(at(61.2).remaining, -2);
    let f = at(90.0);
    assert!(!f.fresh && !f.usable_on_error);
    // A clock that went backwards does not make an entry older than it is.
    let f = at(-10.0);
    assert!(f.fresh);
    assert_eq!(f.age, 5);
}

#[test]
fn stale_if_error_decisions() {
    let m = StoredMeta::new(T0, 10, 20, None);
    let stale = m.freshness(T0 + 15_000.0);
    for (origin, serve) in [
        (None, true),
        (Some(500), true),
        (Some(502), true),
        (Some(503), true),
        (Some(200), false),
        (Some(404), false),
        (Some(429), false),
    ] {
        assert_eq!(stale.serve_stale(origin), serve, "{origin:?}");
    }
    assert!(
        !m.freshness(T0 + 31_000.0).serve_stale(None),
        "past the window"
    );
    assert!(
        !m.freshness(T0 + 5_000.0).serve_stale(None),
        "fresh entries are hits, not stale"
    );
    let never = StoredMeta::new(T0, 10, 0, None);
    assert!(!never.freshness(T0 + 11_000.0).serve_stale(Some(500)));
}

// ---------------------------------------------------------------------------------------------------
// Status headers

#[test]
fn cache_status_values() {
    assert_eq!(CacheStatus::hit(42).x.as_str(), "Hit");
    assert_eq!(
        CacheStatus::hit(42).header_value(None),
        "edgegate; hit; ttl=42"
    );
    assert_eq!(
        CacheStatus::hit(42).header_value(Some("ab\"c")),
        "edgegate; hit; ttl=42; key=\"ab\\\"c\""
    );
    let miss = CacheStatus::forwarded(false, false, 200, Ok(300));
    assert_eq!(miss.x, XCacheStatus::Miss);
    assert_eq!(
        miss.header_value(None),
        "edgegate; fwd=uri-miss; fwd-status=200; stored; ttl=300"
    );
    let not_stored = CacheStatus::forwarded(false, false, 500, Err("status"));
    assert_eq!(not_stored.x, XCacheStatus::Bypass);
    assert_eq!(
        not_stored.header_value(None),
        "edgegate; fwd=uri-miss; fwd-status=500; detail=\"status\""
    );
    let refresh = CacheStatus::forwarded(true, false, 200, Ok(60));
    assert_eq!(refresh.x, XCacheStatus::Refresh);
    assert_eq!(
        refresh.header_value(None),
        "edgegate; fwd=stale; fwd-status=200; stored; ttl=60"
    );
    let asked = CacheStatus::forwarded(false, true, 200, Ok(60));
    assert_eq!(asked.x, XCacheStatus::Refresh);
    assert!(asked.header_value(None).contains("fwd=request"));
    let bypass = CacheStatus::bypass(Bypass::Credentials);
    assert_eq!(bypass.x.as_str(), "Bypass");
    assert_eq!(
        bypass.header_value(None),
        "edgegate; fwd=bypass; detail=\"credentials\""
    );
    assert_eq!(
        CacheStatus::bypass(Bypass::Method).header_value(None),
        "edgegate; fwd=method; detail=\"method\""
    );
    let stale = CacheStatus::stale(-5, Some(503));
    assert_eq!(stale.x.as_str(), "Stale");
    assert_eq!(
        stale.header_value(None),
        "edgegate; fwd=stale; fwd-status=503; ttl=-5; detail=\"stale-if-error\""
    );
    assert_eq!(
        CacheStatus::stale(-1, None).header_value(None),
        "edgegate; fwd=stale; ttl=-1; detail=\"stale-if-error\""
    );
    // Coalesced misses (cache_lock).
    let shared = CacheStatus::collapsed_hit(299, false);
    assert_eq!(shared.x.as_str(), "Hit");
    assert_eq!(
        shared.header_value(None),
        "edgegate; fwd=uri-miss; collapsed; ttl=299"
    );
    assert_eq!(
        CacheStatus::collapsed_hit(10, true).header_value(None),
        "edgegate; fwd=stale; collapsed; ttl=10"
    );
    let gave_up = CacheStatus::lock_timeout(false, 200);
    assert_eq!(gave_up.x.as_str(), "Miss");
    assert_eq!(
        gave_up.header_value(None),
        "edgegate; fwd=uri-miss; fwd-status=200; collapsed=?0; detail=\"lock-timeout\""
    );
    assert_eq!(CacheStatus::lock_timeout(true, 200).x.as_str(), "Refresh");
}

// ---------------------------------------------------------------------------------------------------
// Which instance applies

#[test]
fn most_specific_instance_wins_and_consumer_scoped_needs_that_consumer() {
    use crate::plugins::{Plugin, PluginInstance};
    let inst = |index: usize, ttl: u64, route: bool, consumer: Option<&str>| PluginInstance {
        index,
        key: format!("proxy-cache.{index}"),
        name: "proxy-cache".into(),
        def: crate::plugins::registry::find("proxy-cache").unwrap(),
        plugin: Plugin::new(ProxyCacheConfig {
            cache_ttl: ttl,
            ..Default::default()
        }),
        route: route.then_some(0),
        service: None,
        consumer: consumer.map(String::from),
    };
    let all = [
        inst(0, 1, false, None),
        inst(1, 2, true, None),
        inst(2, 3, true, Some("alice")),
    ];
    assert_eq!(select(all.iter(), None).unwrap().cache_ttl, 2);
    assert_eq!(select(all.iter(), Some("bob")).unwrap().cache_ttl, 2);
    assert_eq!(select(all.iter(), Some("alice")).unwrap().cache_ttl, 3);
    assert_eq!(select(all[..1].iter(), None).unwrap().cache_ttl, 1);
    assert!(select(all[2..].iter(), None).is_none());
    assert!(select([].iter(), None).is_none());
}

// ---------------------------------------------------------------------------------------------------
// Client demands, Expires, must-revalidate, conditional requests, invalidation

#[test]
fn client_max_age_min_fresh_and_only_if_cached() {
    let obey = cfg(json!({"cache_control": true}));
    let ignore = cfg(json!({}));
    let wants = |c: &ProxyCacheConfig, v: &str| {
        let h = headers(&[("cache-control", v)]);
        client_wants(c, &|n: &str| h.get(n).cloned())
    };
    let f = |age: u64, remaining: i64| Freshness {
        fresh: remaining > 0,
        age,
        remaining,
        usable_on_error: false,
    };
    assert!(wants(&obey, "max-age=10").accepts(&f(10, 50)));
    assert!(!wants(&obey, "max-age=10").accepts(&f(11, 50)));
    assert!(wants(&obey, "min-fresh=50").accepts(&f(0, 50)));
    assert!(!wants(&obey, "min-fresh=51").accepts(&f(0, 50)));
    assert!(
        !wants(&obey, "max-stale=600").accepts(&f(0, -1)),
        "never stale"
    );
    assert!(wants(&obey, "only-if-cached").only_if_cached);
    assert!(wants(&obey, "max-age=5, Only-If-Cached").only_if_cached);
    for v in ["max-age=1", "min-fresh=100", "only-if-cached"] {
        assert_eq!(wants(&ignore, v), ClientWants::default(), "{v}");
        assert!(wants(&ignore, v).accepts(&f(100, 1)));
    }
    // Pragma counts only without Cache-Control (RFC 9111 5.4).
    assert_eq!(
        Req::get("/a", "")
            .with("pragma", "no-cache")
            .with("cache-control", "max-age=60")
            .decision(&obey),
        RequestDecision::Cache { lookup: true }
    );
}

#[test]
fn expires_sets_the_ttl_when_obeyed() {
    let obey = cfg(json!({"cache_control": true, "stale_if_error": 30}));
    let date = "Tue, 14 Nov 2023 22:13:20 GMT";
    assert_eq!(http_date(date), Some(NOW_SECS));
    let with = |pairs: &[(&str, &str)]| {
        let mut h = vec![JSON];
        h.extend_from_slice(pairs);
        storable(&obey, 200, &h)
    };
    assert_eq!(
        with(&[("date", date), ("expires", "Tue, 14 Nov 2023 22:14:20 GMT")]),
        Storable::Yes { ttl: 60, stale: 30 }
    );
    // No Date: from now.
    assert_eq!(
        with(&[("expires", "Tue, 14 Nov 2023 22:15:20 GMT")]),
        Storable::Yes {
            ttl: 120,
            stale: 30
        }
    );
    assert_eq!(
        with(&[
            ("date", date),
            ("expires", "Tue, 14 Nov 2023 22:14:20 GMT"),
            ("age", "20")
        ]),
        Storable::Yes { ttl: 40, stale: 30 }
    );
    // A Date in the past: the response is already that old (RFC 9111 4.2.3), so it is fresh until its
    // Expires by our clock, not for Expires - Date from now; the origin's Age counts when larger.
    let before = "Tue, 14 Nov 2023 22:12:20 GMT"; // 60 s before NOW_SECS
    assert_eq!(
        with(&[
            ("date", before),
            ("expires", "Tue, 14 Nov 2023 22:14:20 GMT")
        ]),
        Storable::Yes { ttl: 60, stale: 30 }
    );
    assert_eq!(
        with(&[
            ("date", before),
            ("expires", "Tue, 14 Nov 2023 22:14:20 GMT"),
            ("age", "90")
        ]),
        Storable::Yes { ttl: 30, stale: 30 }
    );
    assert_eq!(
        with(&[
            ("date", before),
            ("expires", "Tue, 14 Nov 2023 22:13:00 GMT")
        ]),
        Storable::No("expires")
    );
    // A Date ahead of our clock (the origin's clock is fast): Expires - Date, no negative age.
    assert_eq!(
        with(&[
            ("date", "Tue, 14 Nov 2023 22:14:20 GMT"),
            ("expires", "Tue, 14 Nov 2023 22:16:20 GMT")
        ]),
        Storable::Yes {
            ttl: 120,
            stale: 30
        }
    );
    assert_eq!(with(&[("expires", "0")]), Storable::No("expires"));
    assert_eq!(
        with(&[("date", date), ("expires", date)]),
        Storable::No("expires")
    );
    // max-age wins over Expires.
    assert_eq!(
        with(&[("expires", "0"), ("cache-control", "max-age=10")]),
        Storable::Yes { ttl: 10, stale: 30 }
    );
    // Ignored without cache_control.
    assert!(matches!(
        storable(&cfg(json!({})), 200, &[JSON, ("expires", "0")]),
        Storable::Yes { ttl: 300, .. }
    ));
    // must-revalidate / proxy-revalidate: no stale window of ours.
    for d in ["must-revalidate", "proxy-revalidate"] {
        let v = format!("max-age=60, {d}");
        assert_eq!(
            with(&[("cache-control", v.as_str())]),
            Storable::Yes { ttl: 60, stale: 0 },
            "{d}"
        );
    }
    assert_eq!(
        with(&[("cache-control", "s-maxage=60")]),
        Storable::Yes { ttl: 60, stale: 0 },
        "s-maxage implies proxy-revalidate"
    );
    assert_eq!(
        with(&[(
            "cache-control",
            "max-age=60, must-revalidate, stale-if-error=5"
        )]),
        Storable::Yes { ttl: 60, stale: 5 }
    );
}

#[test]
fn http_dates_in_all_three_forms() {
    let t = 784_111_777; // Sun, 06 Nov 1994 08:49:37 GMT
    assert_eq!(http_date("Sun, 06 Nov 1994 08:49:37 GMT"), Some(t));
    assert_eq!(http_date("Sunday, 06-Nov-94 08:49:37 GMT"), Some(t));
    assert_eq!(http_date("Sun Nov  6 08:49:37 1994"), Some(t));
    assert_eq!(http_date("Thu, 01 Jan 1970 00:00:00 GMT"), Some(0));
    for bad in [
        "0",
        "",
        "-1",
        "Sun, 06 Nov 1994 08:49:37",
        "Sun, 06 Foo 1994 08:49:37 GMT",
        "Sun, 32 Nov 1994 08:49:37 GMT",
    ] {
        assert_eq!(http_date(bad), None, "{bad:?}");
    }
}

#[test]
fn conditional_requests_against_a_stored_200() {
    let resp = headers(&[
        ("etag", "W/\"v1\""),
        ("last-modified", "Sun, 06 Nov 1994 08:49:37 GMT"),
    ]);
    let r = |n: &str| resp.get(n).cloned();
    let check = |status: u16, pairs: &[(&str, &str)]| {
        let q = headers(pairs);
        not_modified(status, &|n: &str| q.get(n).cloned(), &r)
    };
    assert!(
        check(200, &[("if-none-match", "\"v1\"")]),
        "weak comparison"
    );
    assert!(check(200, &[("if-none-match", "\"x\", W/\"v1\"")]));
    assert!(check(200, &[("if-none-match", "*")]));
    assert!(!check(200, &[("if-none-match", "\"v2\"")]));
    assert!(!check(404, &[("if-none-match", "\"v1\"")]), "only a 200");
    assert!(check(
        200,
        &[("if-modified-since", "Sun, 06 Nov 1994 08:49:37 GMT")]
    ));
    assert!(check(
        200,
        &[("if-modified-since", "Mon, 07 Nov 1994 08:49:37 GMT")]
    ));
    assert!(!check(
        200,
        &[("if-modified-since", "Sat, 05 Nov 1994 08:49:37 GMT")]
    ));
    assert!(!check(200, &[("if-modified-since", "yesterday")]));
    // If-None-Match wins over If-Modified-Since.
    assert!(!check(
        200,
        &[
            ("if-none-match", "\"v2\""),
            ("if-modified-since", "Mon, 07 Nov 1994 08:49:37 GMT")
        ]
    ));
    assert!(!check(200, &[]));
    let q = headers(&[("if-none-match", "\"v1\"")]);
    assert!(is_conditional(&|n: &str| q.get(n).cloned()));
    assert!(!is_conditional(&|_: &str| -> Option<String> { None }));
    // Without validators in the response nothing matches but `*`.
    let none = |_: &str| -> Option<String> { None };
    assert!(!not_modified(200, &|n: &str| q.get(n).cloned(), &none));
}

#[test]
fn unsafe_successes_invalidate() {
    for m in ["POST", "PUT", "DELETE", "PATCH", "purge"] {
        assert!(invalidates(m, 200), "{m}");
        assert!(invalidates(m, 303), "{m}");
        assert!(!invalidates(m, 404), "{m}");
        assert!(!invalidates(m, 500), "{m}");
    }
    for m in ["GET", "HEAD", "OPTIONS", "TRACE"] {
        assert!(!invalidates(m, 200), "{m}");
    }
    assert_eq!(
        CacheStatus::not_cached().header_value(None),
        "edgegate; detail=\"only-if-cached\""
    );
    assert_eq!(CacheStatus::not_cached().x.as_str(), "Miss");
}

#[test]
fn vary_errors_never_quote_the_bad_entry() {
    let e = match parse(&json!({"vary_headers": ["Authorization: Bearer sk-SECRET"],
                                "vary_query_params": ["token=sk-SECRET"]}))
    {
        Err(crate::plugins::PluginError::Config(e)) => e,
        other => panic!("expected errors, got {other:?}"),
    };
    assert!(!format!("{e:?}").contains("SECRET"), "{e:?}");
    assert_eq!(e[0].1, "not a valid header name (it contains ':')");
    assert_eq!(
        e[1].1,
        "not a query parameter name (empty, or `&`, `=` or `#` in it)"
    );
}

// ---------------------------------------------------------------------------------------------------
// Third audit: directive values, duplicates, Age lists, no-store with only-if-cached, entity-tags

#[test]
fn directive_values_follow_delta_seconds() {
    let p = |v: &str| CacheControl::parse(Some(v));
    assert_eq!(p("max-age=\"60\"").max_age, Some(60), "quoted");
    assert_eq!(p("max-age=\"6\\0\"").max_age, Some(60), "quoted-pair");
    for bad in [
        "max-age=+60",
        "max-age=-1",
        "max-age=1.5",
        "max-age=",
        "max-age",
        "max-age=6 0",
    ] {
        assert_eq!(p(bad).max_age, Some(0), "{bad}: malformed is stale");
    }
    // Too large to represent: 2^31 (RFC 9111 1.2.2), not 0.
    assert_eq!(
        p("s-maxage=99999999999999999999999").s_maxage,
        Some(1 << 31)
    );
    assert_eq!(p("min-fresh=x").min_fresh, None);
    assert_eq!(p("stale-if-error=-5").stale_if_error, None);
}

#[test]
fn duplicate_directives_take_the_stricter_value() {
    let p = |v: &str| CacheControl::parse(Some(v));
    assert_eq!(p("max-age=0, max-age=600").max_age, Some(0));
    assert_eq!(p("max-age=600, max-age=60").max_age, Some(0));
    assert_eq!(
        p("max-age=60, MAX-AGE=\"60\"").max_age,
        Some(60),
        "same value"
    );
    assert_eq!(p("s-maxage=60, s-maxage=30").s_maxage, Some(0));
    assert_eq!(p("min-fresh=5, min-fresh=10").min_fresh, Some(10));
    assert_eq!(
        p("stale-if-error=60, stale-if-error=5").stale_if_error,
        Some(5)
    );
    let obey = cfg(json!({"cache_control": true}));
    assert_eq!(
        storable(
            &obey,
            200,
            &[JSON, ("cache-control", "max-age=0, max-age=600")]
        ),
        Storable::No("max-age")
    );
    assert_eq!(
        storable(
            &obey,
            200,
            &[JSON, ("cache-control", "public, max-age=60, max-age=60")]
        ),
        Storable::Yes { ttl: 60, stale: 0 }
    );
}

#[test]
fn age_is_the_first_member_and_invalid_ages_are_ignored() {
    let obey = cfg(json!({"cache_control": true}));
    let ttl = |age: &str| {
        storable(
            &obey,
            200,
            &[JSON, ("cache-control", "max-age=100"), ("age", age)],
        )
    };
    assert_eq!(ttl("30, 90"), Storable::Yes { ttl: 70, stale: 0 });
    assert_eq!(ttl("abc"), Storable::Yes { ttl: 100, stale: 0 });
    assert_eq!(ttl("-5"), Storable::Yes { ttl: 100, stale: 0 });
    assert_eq!(ttl("99999999999999999999999"), Storable::No("max-age"));
    assert_eq!(StoredMeta::new(0.0, 60, 0, Some("30, 40")).age, 30);
    assert_eq!(StoredMeta::new(0.0, 60, 0, Some("x")).age, 0);
}

#[test]
fn no_store_with_only_if_cached_may_be_answered_from_the_cache() {
    let obey = cfg(json!({"cache_control": true}));
    let r = |v: &str| Req::get("/a", "").with("cache-control", v);
    assert_eq!(
        r("no-store, only-if-cached").decision(&obey),
        RequestDecision::Cache { lookup: true }
    );
    assert_eq!(
        r("no-store, no-cache, only-if-cached").decision(&obey),
        RequestDecision::Cache { lookup: false }
    );
    assert_eq!(
        r("No-Store").decision(&obey),
        RequestDecision::Bypass(Bypass::RequestNoStore)
    );
}

#[test]
fn entity_tags_with_commas_and_backslashes() {
    let resp = headers(&[("etag", "\"a,b\"")]);
    let r = |n: &str| resp.get(n).cloned();
    let check = |inm: &str| {
        let q = headers(&[("if-none-match", inm)]);
        not_modified(200, &|n: &str| q.get(n).cloned(), &r)
    };
    assert!(check("\"x\", \"a,b\""));
    assert!(!check("\"a\", \"b\""));
    let resp = headers(&[("etag", "\"a\\\"")]);
    let r = |n: &str| resp.get(n).cloned();
    let q = headers(&[("if-none-match", "\"a\\\", \"z\"")]);
    assert!(not_modified(200, &|n: &str| q.get(n).cloned(), &r));
}

#[test]
fn expires_counts_from_now_when_the_date_is_not_a_date() {
    let obey = cfg(json!({"cache_control": true}));
    // NOW_SECS + 60 s.
    let expires = ("expires", "Tue, 14 Nov 2023 22:14:20 GMT");
    assert_eq!(
        storable(&obey, 200, &[JSON, ("date", "yesterday"), expires]),
        Storable::Yes { ttl: 60, stale: 0 }
    );
    assert_eq!(
        storable(&obey, 200, &[JSON, expires]),
        Storable::Yes { ttl: 60, stale: 0 }
    );
}
