//! Golden tests of the AI translation, per provider, with fixtures written from each provider's published
//! API documentation (tests/fixtures/ai/<provider>/):
//!
//! - `target.json`: the provider target the cases use;
//! - `<case>.request.json` (an OpenAI request) -> `<case>.upstream.json` (method, url, headers with the
//!   key `TEST-KEY` in place, body);
//! - `<case>.response.json` (`{"status", "headers"?, "body"|"text"}` from the provider) ->
//!   `<case>.response.expected.json` (`{"status", "retryable"?, "body", "headers"?}` for the client: the
//!   headers an error passes on, a 429's rate-limit timing);
//! - `<case>.stream.sse` (the provider's event stream) -> `<case>.stream.expected.sse` (OpenAI chunks),
//!   with the usage chunk unless the case name contains `no-usage`; every stream is also fed split at
//!   seeded random positions and one byte at a time, and must give identical output.
//!
//! `EDGEGATE_BLESS=1 cargo test -p edgegate-core --test ai_golden` rewrites the expected files (review
//! the diff: they are the specification).

use edgegate_core::ai::{
    build_request, parse_response, provider_error, ChatRequest, ProviderKind, ProviderTarget,
    SseParser, StreamContext, StreamTranslator,
};
use serde_json::{json, Value};
use std::fs;
use std::path::{Path, PathBuf};

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/ai")
}

fn bless() -> bool {
    std::env::var_os("EDGEGATE_BLESS").is_some()
}

fn target(dir: &Path) -> ProviderTarget {
    let v: Value =
        serde_json::from_str(&fs::read_to_string(dir.join("target.json")).unwrap()).unwrap();
    let kind: ProviderKind = serde_json::from_value(v["kind"].clone()).unwrap();
    let mut t = ProviderTarget::new(kind, v["model"].as_str().unwrap());
    t.provider = v["provider"].as_str().unwrap().to_string();
    t.base_url = v["base_url"].as_str().unwrap().to_string();
    t.api_version = v["api_version"].as_str().map(str::to_string);
    if let Some(n) = v["default_max_tokens"].as_u64() {
        t.default_max_tokens = n;
    }
    for h in v["headers"].as_array().into_iter().flatten() {
        t.headers
            .push((h[0].as_str().unwrap().into(), h[1].as_str().unwrap().into()));
    }
    t
}

fn ctx(t: &ProviderTarget, include_usage: bool) -> StreamContext {
    StreamContext {
        id: "chatcmpl-gw-req-1".to_string(),
        model: t.model.clone(),
        created: 1_700_000_000,
        include_usage,
        tool_call_seed: 0x5EED,
    }
}

/// Compare with the expected file, or write it when blessing.
fn check_text(path: &Path, got: &str) {
    if bless() {
        fs::write(path, got).unwrap();
        return;
    }
    let want = fs::read_to_string(path)
        .unwrap_or_else(|_| panic!("missing {} (run with EDGEGATE_BLESS=1)", path.display()));
    assert_eq!(got, want, "golden mismatch: {}", path.display());
}

fn check_json(path: &Path, got: &Value) {
    let text = serde_json::to_string_pretty(got).unwrap() + "\n";
    if bless() {
        fs::write(path, text).unwrap();
        return;
    }
    let want: Value = serde_json::from_str(
        &fs::read_to_string(path)
            .unwrap_or_else(|_| panic!("missing {} (run with EDGEGATE_BLESS=1)", path.display())),
    )
    .unwrap();
    assert_eq!(
        got,
        &want,
        "golden mismatch: {}\ngot: {text}",
        path.display()
    );
}

fn cases(dir: &Path, suffix: &str) -> Vec<(String, PathBuf)> {
    let mut v: Vec<_> = fs::read_dir(dir)
        .unwrap()
        .filter_map(|e| {
            let p = e.unwrap().path();
            let name = p.file_name()?.to_str()?.to_string();
            let case = name.strip_suffix(suffix)?.to_string();
            Some((case, p))
        })
        .collect();
    v.sort();
    v
}

fn providers() -> Vec<PathBuf> {
    let mut v: Vec<_> = fs::read_dir(root())
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.join("target.json").exists())
        .collect();
    v.sort();
    v
}

#[test]
fn requests_translated_out() {
    let mut n = 0;
    for dir in providers() {
        let t = target(&dir);
        for (case, path) in cases(&dir, ".request.json") {
            let req: ChatRequest =
                serde_json::from_str(&fs::read_to_string(&path).unwrap()).unwrap();
            let up = build_request(&req, &t).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            let headers: serde_json::Map<String, Value> = up
                .headers_with_key(Some("TEST-KEY"))
                .into_iter()
                .map(|(k, v)| (k, Value::String(v)))
                .collect();
            let got = json!({
                "method": up.method,
                "url": up.url,
                "stream": up.stream,
                "headers": headers,
                "body": serde_json::from_slice::<Value>(&up.body).unwrap(),
            });
            // The request holds no key; only headers_with_key adds it.
            assert!(!format!("{up:?}").contains("TEST-KEY"));
            check_json(&dir.join(format!("{case}.upstream.json")), &got);
            n += 1;
        }
    }
    assert!(n >= 7, "only {n} request cases");
}

#[test]
fn responses_translated_back() {
    let mut n = 0;
    for dir in providers() {
        let t = target(&dir);
        for (case, path) in cases(&dir, ".response.json") {
            let input: Value = serde_json::from_str(&fs::read_to_string(&path).unwrap()).unwrap();
            let status = input["status"].as_u64().unwrap() as u16;
            let body = match input.get("text") {
                Some(text) => text.as_str().unwrap().as_bytes().to_vec(),
                None => serde_json::to_vec(&input["body"]).unwrap(),
            };
            // The provider's response headers, when the case gives them (an error's rate-limit
            // timing is kept from them).
            let headers: Vec<(String, String)> = input
                .get("headers")
                .and_then(Value::as_object)
                .into_iter()
                .flatten()
                .map(|(n, v)| (n.clone(), v.as_str().unwrap().to_string()))
                .collect();
            let result = if headers.is_empty() {
                parse_response(&t, status, &body, &ctx(&t, false))
            } else {
                assert!(!(200..300).contains(&status), "headers are for error cases");
                Err(provider_error(&t, status, &body, &headers))
            };
            let got = match result {
                Ok(r) => json!({"status": 200, "body": r}),
                Err(e) => {
                    assert!(
                        !e.message.contains("sk-proj"),
                        "key fragment leaked: {}",
                        e.message
                    );
                    let mut got =
                        json!({"status": e.status, "retryable": e.retryable, "body": e.body()});
                    if !e.headers.is_empty() {
                        got["headers"] = json!(e.headers);
                    }
                    got
                }
            };
            check_json(&dir.join(format!("{case}.response.expected.json")), &got);
            n += 1;
        }
    }
    assert!(n >= 20, "only {n} response cases");
}

/// xorshift64: seeded split positions without a rand crate.
fn xorshift(state: &mut u64) -> u64 {
    let mut x = *state;
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    *state = x;
    x
}

fn translate(
    t: &ProviderTarget,
    include_usage: bool,
    pieces: &[&[u8]],
) -> (Vec<u8>, Option<Value>) {
    let mut tr = StreamTranslator::new(t, ctx(t, include_usage));
    let mut out = Vec::new();
    for p in pieces {
        out.extend(tr.push(p));
    }
    out.extend(tr.finish());
    let usage = tr.usage().map(|u| serde_json::to_value(u).unwrap());
    (out, usage)
}

fn split_at<'a>(input: &'a [u8], cuts: &mut [usize]) -> Vec<&'a [u8]> {
    cuts.sort_unstable();
    let mut pieces = Vec::new();
    let mut start = 0;
    for &c in cuts.iter() {
        pieces.push(&input[start..c]);
        start = c;
    }
    pieces.push(&input[start..]);
    pieces
}

#[test]
fn streams_translated_back_however_split() {
    let mut n = 0;
    for dir in providers() {
        let t = target(&dir);
        for (case, path) in cases(&dir, ".stream.sse") {
            let input = fs::read(&path).unwrap();
            let include_usage = !case.contains("no-usage");
            let (whole, usage) = translate(&t, include_usage, &[&input]);
            let text = String::from_utf8(whole.clone()).unwrap();
            check_text(&dir.join(format!("{case}.stream.expected.sse")), &text);

            // Well-formed OpenAI stream: JSON events, exactly one [DONE], last.
            let mut p = SseParser::new();
            let mut events = p.push(&whole);
            events.extend(p.finish());
            assert_eq!(events.last().unwrap().data, "[DONE]", "{case}");
            assert_eq!(
                events.iter().filter(|e| e.data == "[DONE]").count(),
                1,
                "{case}"
            );
            for e in &events[..events.len() - 1] {
                serde_json::from_str::<Value>(&e.data)
                    .unwrap_or_else(|err| panic!("{case}: bad JSON {err}: {}", e.data));
            }

            // Random splits (seeded) and one byte at a time give the same bytes and usage.
            let mut seed = 0x2545_F491_4F6C_DD1D_u64 ^ (n as u64 + 1);
            for round in 0..200 {
                let k = 1 + (xorshift(&mut seed) % 12) as usize;
                let mut cuts: Vec<usize> = (0..k)
                    .map(|_| (xorshift(&mut seed) % (input.len() as u64 + 1)) as usize)
                    .collect();
                let pieces = split_at(&input, &mut cuts);
                let got = translate(&t, include_usage, &pieces);
                assert_eq!(got.0, whole, "{case}: split round {round} at {cuts:?}");
                assert_eq!(got.1, usage, "{case}: usage, round {round}");
            }
            let bytes: Vec<&[u8]> = input.chunks(1).collect();
            let got = translate(&t, include_usage, &bytes);
            assert_eq!(got.0, whole, "{case}: byte at a time");
            assert_eq!(got.1, usage, "{case}: usage, byte at a time");
            n += 1;
        }
    }
    assert!(n >= 15, "only {n} stream cases");
}
