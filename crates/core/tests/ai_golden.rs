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
use std::path::{Path, PathBuf};
#[cfg(target_arch = "wasm32")]
use wasm_bindgen_test::wasm_bindgen_test as test;

/// `(path under tests/fixtures/ai, contents)` of every fixture, compiled in: the suite also runs on
/// wasm32 (scripts/test), where there is no filesystem. `fixture_list_matches_the_directory` fails when
/// a file is added or removed without updating the list.
macro_rules! fixtures {
    ($($path:literal,)*) => {
        &[$(($path, include_str!(concat!("fixtures/ai/", $path))),)*]
    };
}
static FIXTURES: &[(&str, &str)] = fixtures![
    "anthropic/bad-key.response.expected.json",
    "anthropic/bad-key.response.json",
    "anthropic/chat.request.json",
    "anthropic/chat.upstream.json",
    "anthropic/error.stream.expected.sse",
    "anthropic/error.stream.sse",
    "anthropic/invalid.response.expected.json",
    "anthropic/invalid.response.json",
    "anthropic/json.request.json",
    "anthropic/json.upstream.json",
    "anthropic/max-tokens.response.expected.json",
    "anthropic/max-tokens.response.json",
    "anthropic/overloaded.response.expected.json",
    "anthropic/overloaded.response.json",
    "anthropic/rate-limit.response.expected.json",
    "anthropic/rate-limit.response.json",
    "anthropic/target.json",
    "anthropic/text.response.expected.json",
    "anthropic/text.response.json",
    "anthropic/text.stream.expected.sse",
    "anthropic/text.stream.sse",
    "anthropic/thinking.no-usage.stream.expected.sse",
    "anthropic/thinking.no-usage.stream.sse",
    "anthropic/tool-use.response.expected.json",
    "anthropic/tool-use.response.json",
    "anthropic/tools.stream.expected.sse",
    "anthropic/tools.stream.sse",
    "anthropic/truncated.stream.expected.sse",
    "anthropic/truncated.stream.sse",
    "azure/basic.response.expected.json",
    "azure/basic.response.json",
    "azure/chat.request.json",
    "azure/chat.upstream.json",
    "azure/content-filter.response.expected.json",
    "azure/content-filter.response.json",
    "azure/deployment-missing.response.expected.json",
    "azure/deployment-missing.response.json",
    "azure/filter.no-usage.stream.expected.sse",
    "azure/filter.no-usage.stream.sse",
    "azure/target.json",
    "azure/throttled.response.expected.json",
    "azure/throttled.response.json",
    "gemini/bad-key.response.expected.json",
    "gemini/bad-key.response.json",
    "gemini/blocked.response.expected.json",
    "gemini/blocked.response.json",
    "gemini/blocked.stream.expected.sse",
    "gemini/blocked.stream.sse",
    "gemini/chat.request.json",
    "gemini/chat.upstream.json",
    "gemini/error.stream.expected.sse",
    "gemini/error.stream.sse",
    "gemini/function-call.response.expected.json",
    "gemini/function-call.response.json",
    "gemini/function.stream.expected.sse",
    "gemini/function.stream.sse",
    "gemini/invalid.response.expected.json",
    "gemini/invalid.response.json",
    "gemini/quota.response.expected.json",
    "gemini/quota.response.json",
    "gemini/safety.response.expected.json",
    "gemini/safety.response.json",
    "gemini/stream.request.json",
    "gemini/stream.upstream.json",
    "gemini/target.json",
    "gemini/text.response.expected.json",
    "gemini/text.response.json",
    "gemini/text.stream.expected.sse",
    "gemini/text.stream.sse",
    "gemini/truncated.stream.expected.sse",
    "gemini/truncated.stream.sse",
    "gemini/unavailable.response.expected.json",
    "gemini/unavailable.response.json",
    "openai/bad-key.response.expected.json",
    "openai/bad-key.response.json",
    "openai/basic.response.expected.json",
    "openai/basic.response.json",
    "openai/chat.request.json",
    "openai/chat.upstream.json",
    "openai/comments-no-done.stream.expected.sse",
    "openai/comments-no-done.stream.sse",
    "openai/context.response.expected.json",
    "openai/context.response.json",
    "openai/error.stream.expected.sse",
    "openai/error.stream.sse",
    "openai/gateway-down.response.expected.json",
    "openai/gateway-down.response.json",
    "openai/no-usage.stream.expected.sse",
    "openai/no-usage.stream.sse",
    "openai/rate-limit.response.expected.json",
    "openai/rate-limit.response.json",
    "openai/stream.request.json",
    "openai/stream.upstream.json",
    "openai/target.json",
    "openai/tools.response.expected.json",
    "openai/tools.response.json",
    "openai/tools.stream.expected.sse",
    "openai/tools.stream.sse",
    "openai/truncated.stream.expected.sse",
    "openai/truncated.stream.sse",
    "openai/usage.stream.expected.sse",
    "openai/usage.stream.sse",
    "openrouter/chat.request.json",
    "openrouter/chat.upstream.json",
    "openrouter/target.json",
];

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/ai")
}

fn fixture(path: &str) -> Option<&'static str> {
    FIXTURES
        .iter()
        .find(|(p, _)| *p == path)
        .map(|(_, text)| *text)
}

fn bless() -> bool {
    cfg!(not(target_arch = "wasm32")) && std::env::var_os("EDGEGATE_BLESS").is_some()
}

/// Write an expected file (blessing, native only).
fn write(path: &str, text: &str) {
    std::fs::write(root().join(path), text).unwrap();
}

fn target(provider: &str) -> ProviderTarget {
    let v: Value =
        serde_json::from_str(fixture(&format!("{provider}/target.json")).unwrap()).unwrap();
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
fn check_text(path: &str, got: &str) {
    if bless() {
        write(path, got);
        return;
    }
    let want = fixture(path).unwrap_or_else(|| {
        panic!("missing {path} (run with EDGEGATE_BLESS=1, add it to FIXTURES)")
    });
    assert_eq!(got, want, "golden mismatch: {path}");
}

fn check_json(path: &str, got: &Value) {
    let text = serde_json::to_string_pretty(got).unwrap() + "\n";
    if bless() {
        write(path, &text);
        return;
    }
    let want: Value = serde_json::from_str(fixture(path).unwrap_or_else(|| {
        panic!("missing {path} (run with EDGEGATE_BLESS=1, add it to FIXTURES)")
    }))
    .unwrap();
    assert_eq!(got, &want, "golden mismatch: {path}\ngot: {text}");
}

/// `(case, path, contents)` of the provider's files named `<case><suffix>`, sorted.
fn cases(provider: &str, suffix: &str) -> Vec<(String, String, &'static str)> {
    let mut v: Vec<_> = FIXTURES
        .iter()
        .filter_map(|(path, text)| {
            let name = path.strip_prefix(provider)?.strip_prefix('/')?;
            let case = name.strip_suffix(suffix)?.to_string();
            Some((case, path.to_string(), *text))
        })
        .collect();
    v.sort();
    v
}

/// The providers: the directories with a `target.json`.
fn providers() -> Vec<&'static str> {
    let mut v: Vec<_> = FIXTURES
        .iter()
        .filter_map(|(path, _)| path.strip_suffix("/target.json"))
        .collect();
    v.sort();
    v
}

/// Not on wasm32: it reads the fixture directory, which exists only natively.
#[cfg(not(target_arch = "wasm32"))]
#[test]
fn fixture_list_matches_the_directory() {
    let mut on_disk = Vec::new();
    for dir in std::fs::read_dir(root()).unwrap() {
        let dir = dir.unwrap().path();
        let provider = dir.file_name().unwrap().to_str().unwrap().to_string();
        for file in std::fs::read_dir(&dir).unwrap() {
            let name = file.unwrap().file_name().to_str().unwrap().to_string();
            on_disk.push(format!("{provider}/{name}"));
        }
    }
    on_disk.sort();
    let listed: Vec<String> = FIXTURES.iter().map(|(p, _)| p.to_string()).collect();
    assert_eq!(
        listed,
        on_disk,
        "FIXTURES in tests/ai_golden.rs must list every file of tests/fixtures/ai, sorted:\n{}",
        on_disk
            .iter()
            .map(|p| format!("    \"{p}\","))
            .collect::<Vec<_>>()
            .join("\n")
    );
}

#[test]
fn requests_translated_out() {
    let mut n = 0;
    for provider in providers() {
        let t = target(provider);
        for (case, path, text) in cases(provider, ".request.json") {
            let req: ChatRequest = serde_json::from_str(text).unwrap();
            let up = build_request(&req, &t).unwrap_or_else(|e| panic!("{path}: {e}"));
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
            check_json(&format!("{provider}/{case}.upstream.json"), &got);
            n += 1;
        }
    }
    assert!(n >= 7, "only {n} request cases");
}

#[test]
fn responses_translated_back() {
    let mut n = 0;
    for provider in providers() {
        let t = target(provider);
        for (case, _, text) in cases(provider, ".response.json") {
            let input: Value = serde_json::from_str(text).unwrap();
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
            check_json(&format!("{provider}/{case}.response.expected.json"), &got);
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
    for provider in providers() {
        let t = target(provider);
        for (case, _, text) in cases(provider, ".stream.sse") {
            let input = text.as_bytes();
            let include_usage = !case.contains("no-usage");
            let (whole, usage) = translate(&t, include_usage, &[input]);
            let text = String::from_utf8(whole.clone()).unwrap();
            check_text(&format!("{provider}/{case}.stream.expected.sse"), &text);

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
                let pieces = split_at(input, &mut cuts);
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
