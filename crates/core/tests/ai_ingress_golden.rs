//! Golden tests of the client formats besides chat completions (Anthropic Messages, OpenAI Responses),
//! fixtures in tests/fixtures/ai_ingress/<format>/:
//!
//! - `<case>.request.json` (the client's request) -> `<case>.chat.json` (the chat completion request
//!   providers of other formats are built from, and the deferred error, if any);
//! - `<case>.chat-response.json` (a chat completion from any provider) -> `<case>.expected.json` (the
//!   answer in the client's format);
//! - every provider stream of tests/fixtures/ai/<provider>/<case>.stream.sse ->
//!   `<provider>-<case>.expected.sse` (the client's events; for Messages from an Anthropic provider:
//!   the stream passed through). Each is also fed split at seeded random positions and one byte at a
//!   time, and must give identical output.
//!
//! `EDGEGATE_BLESS=1 cargo test -p edgegate-core --test ai_ingress_golden` rewrites the expected
//! files (review the diff: they are the specification).

use edgegate_core::ai::ingress::{parse_ingress_response, IngressAnswer, IngressRequest};
use edgegate_core::ai::{
    messages_in, responses_in, ProviderKind, ProviderTarget, StreamContext, StreamTranslator,
};
use serde_json::{json, Value};
use std::path::PathBuf;
#[cfg(target_arch = "wasm32")]
use wasm_bindgen_test::wasm_bindgen_test as test;

macro_rules! fixtures {
    ($dir:literal: $($path:literal,)*) => {
        &[$(($path, include_str!(concat!($dir, $path))),)*]
    };
}

/// The client-side fixtures (`<format>/<file>`).
static FIXTURES: &[(&str, &str)] = fixtures![
    "fixtures/ai_ingress/":
    "messages/anthropic-error.expected.sse",
    "messages/anthropic-text.expected.sse",
    "messages/anthropic-thinking.no-usage.expected.sse",
    "messages/anthropic-tools.expected.sse",
    "messages/anthropic-truncated.expected.sse",
    "messages/azure-filter.no-usage.expected.sse",
    "messages/full.chat.json",
    "messages/full.request.json",
    "messages/gemini-blocked.expected.sse",
    "messages/gemini-error.expected.sse",
    "messages/gemini-function.expected.sse",
    "messages/gemini-text.expected.sse",
    "messages/gemini-truncated.expected.sse",
    "messages/length.chat-response.json",
    "messages/length.expected.json",
    "messages/openai-comments-no-done.expected.sse",
    "messages/openai-error.expected.sse",
    "messages/openai-no-usage.expected.sse",
    "messages/openai-tools.expected.sse",
    "messages/openai-truncated.expected.sse",
    "messages/openai-usage.expected.sse",
    "messages/server-tool.chat.json",
    "messages/server-tool.request.json",
    "messages/text.chat-response.json",
    "messages/text.expected.json",
    "messages/tools.chat-response.json",
    "messages/tools.expected.json",
    "responses/anthropic-error.expected.sse",
    "responses/anthropic-text.expected.sse",
    "responses/anthropic-thinking.no-usage.expected.sse",
    "responses/anthropic-tools.expected.sse",
    "responses/anthropic-truncated.expected.sse",
    "responses/azure-filter.no-usage.expected.sse",
    "responses/full.chat.json",
    "responses/full.request.json",
    "responses/gemini-blocked.expected.sse",
    "responses/gemini-error.expected.sse",
    "responses/gemini-function.expected.sse",
    "responses/gemini-text.expected.sse",
    "responses/gemini-truncated.expected.sse",
    "responses/length.chat-response.json",
    "responses/length.expected.json",
    "responses/openai-comments-no-done.expected.sse",
    "responses/openai-error.expected.sse",
    "responses/openai-no-usage.expected.sse",
    "responses/openai-tools.expected.sse",
    "responses/openai-truncated.expected.sse",
    "responses/openai-usage.expected.sse",
    "responses/text.chat-response.json",
    "responses/text.expected.json",
    "responses/tools.chat-response.json",
    "responses/tools.expected.json",
];

/// The provider streams (shared with tests/ai_golden.rs).
static STREAMS: &[(&str, &str)] = fixtures![
    "fixtures/ai/":
    "anthropic/error.stream.sse",
    "anthropic/text.stream.sse",
    "anthropic/thinking.no-usage.stream.sse",
    "anthropic/tools.stream.sse",
    "anthropic/truncated.stream.sse",
    "azure/filter.no-usage.stream.sse",
    "gemini/blocked.stream.sse",
    "gemini/error.stream.sse",
    "gemini/function.stream.sse",
    "gemini/text.stream.sse",
    "gemini/truncated.stream.sse",
    "openai/comments-no-done.stream.sse",
    "openai/error.stream.sse",
    "openai/no-usage.stream.sse",
    "openai/tools.stream.sse",
    "openai/truncated.stream.sse",
    "openai/usage.stream.sse",
];

const FORMATS: &[&str] = &["messages", "responses"];

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/ai_ingress")
}

fn bless() -> bool {
    cfg!(not(target_arch = "wasm32")) && std::env::var_os("EDGEGATE_BLESS").is_some()
}

fn fixture(path: &str) -> Option<&'static str> {
    FIXTURES.iter().find(|(p, _)| *p == path).map(|(_, t)| *t)
}

fn check_text(path: &str, got: &str) {
    if bless() {
        std::fs::write(root().join(path), got).unwrap();
        return;
    }
    let want = fixture(path)
        .unwrap_or_else(|| panic!("missing {path} (run with EDGEGATE_BLESS=1, list it)"));
    assert_eq!(got, want, "golden mismatch: {path}");
}

fn check_json(path: &str, got: &Value) {
    let text = serde_json::to_string_pretty(got).unwrap() + "\n";
    if bless() {
        std::fs::write(root().join(path), &text).unwrap();
        return;
    }
    let want: Value = serde_json::from_str(
        fixture(path).unwrap_or_else(|| panic!("missing {path} (run with EDGEGATE_BLESS=1)")),
    )
    .unwrap();
    assert_eq!(got, &want, "golden mismatch: {path}\ngot: {text}");
}

fn target(provider: &str) -> ProviderTarget {
    let kind = match provider {
        "anthropic" => ProviderKind::Anthropic,
        "gemini" => ProviderKind::Gemini,
        "azure" => ProviderKind::Azure,
        _ => ProviderKind::OpenAi,
    };
    let mut t = ProviderTarget::new(kind, "upstream-model");
    t.provider = provider.to_string();
    if kind == ProviderKind::Azure {
        t.base_url = "https://r.openai.azure.com".into();
    }
    t
}

fn ctx(format: &str) -> StreamContext {
    StreamContext {
        id: if format == "messages" {
            "msg_gw-req-1".into()
        } else {
            "resp_gw-req-1".into()
        },
        model: "smart".into(),
        created: 1_700_000_000,
        include_usage: false,
        tool_call_seed: 0x5EED,
    }
}

/// A streamed request in the format (its fields are echoed by Responses).
fn stream_request(format: &str) -> IngressRequest {
    if format == "messages" {
        let body = json!({"model": "smart", "max_tokens": 100, "stream": true,
                          "messages": [{"role": "user", "content": "Hi"}]});
        messages_in::parse_request(body.to_string().as_bytes(), Some("2023-06-01"), None, false)
            .unwrap()
    } else {
        let body = json!({"model": "smart", "stream": true, "input": "Hi",
                          "instructions": "Be brief.", "store": false});
        responses_in::parse_request(body.to_string().as_bytes()).unwrap()
    }
}

fn parse(format: &str, body: &str) -> IngressRequest {
    if format == "messages" {
        messages_in::parse_request(body.as_bytes(), Some("2023-06-01"), Some("b1"), false).unwrap()
    } else {
        responses_in::parse_request(body.as_bytes()).unwrap()
    }
}

#[test]
fn requests_become_chat_requests() {
    for format in FORMATS {
        let prefix = format!("{format}/");
        for (path, text) in FIXTURES {
            let Some(case) = path
                .strip_prefix(&prefix)
                .and_then(|n| n.strip_suffix(".request.json"))
            else {
                continue;
            };
            let req = parse(format, text);
            let got = json!({
                "chat": serde_json::to_value(&req.chat).unwrap(),
                "unsupported": req.unsupported.as_ref().map(|e| e.message.clone()),
            });
            check_json(&format!("{format}/{case}.chat.json"), &got);
        }
    }
}

#[test]
fn chat_answers_become_the_client_format() {
    for format in FORMATS {
        let prefix = format!("{format}/");
        let req = stream_request(format);
        for (path, text) in FIXTURES {
            let Some(case) = path
                .strip_prefix(&prefix)
                .and_then(|n| n.strip_suffix(".chat-response.json"))
            else {
                continue;
            };
            let t = target("openai");
            let answer =
                parse_ingress_response(&req, &t, 200, text.as_bytes(), &ctx(format)).unwrap();
            let IngressAnswer::Body { body, usage, .. } = answer else {
                panic!("{path}: not a body");
            };
            let v: Value = serde_json::from_slice(&body).unwrap();
            let chat: Value = serde_json::from_str(text).unwrap();
            assert_eq!(
                usage.map(|u| u.prompt_tokens),
                chat["usage"]["prompt_tokens"].as_u64(),
                "{path}"
            );
            check_json(&format!("{format}/{case}.expected.json"), &v);
        }
    }
}

/// Seeded xorshift for split positions.
fn next(state: &mut u64) -> u64 {
    let mut x = *state;
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    *state = x;
    x
}

fn run(format: &str, provider: &str, chunks: &mut dyn Iterator<Item = &[u8]>) -> String {
    let req = stream_request(format);
    let mut tr = StreamTranslator::for_ingress(&req, &target(provider), ctx(format));
    let mut out = Vec::new();
    for c in chunks {
        out.extend(tr.push(c));
    }
    out.extend(tr.finish());
    String::from_utf8(out).unwrap()
}

#[test]
fn streams_become_client_events_however_split() {
    for format in FORMATS {
        for (path, text) in STREAMS {
            let (provider, name) = path.split_once('/').unwrap();
            let case = name.strip_suffix(".stream.sse").unwrap();
            let input = text.as_bytes();
            let whole = run(format, provider, &mut std::iter::once(input));
            check_text(&format!("{format}/{provider}-{case}.expected.sse"), &whole);
            assert_eq!(
                run(format, provider, &mut input.chunks(1)),
                whole,
                "{format} {path} byte by byte"
            );
            let mut seed = 0x9E37_79B9_7F4A_7C15u64 ^ input.len() as u64;
            for _ in 0..60 {
                let mut cuts: Vec<usize> = (0..1 + next(&mut seed) % 12)
                    .map(|_| (next(&mut seed) % (input.len() as u64 + 1)) as usize)
                    .collect();
                cuts.sort_unstable();
                let mut pieces = Vec::new();
                let mut at = 0;
                for c in cuts {
                    pieces.push(&input[at..c]);
                    at = c;
                }
                pieces.push(&input[at..]);
                assert_eq!(
                    run(format, provider, &mut pieces.into_iter()),
                    whole,
                    "{format} {path} split"
                );
            }
            check_event_grammar(format, provider, &whole);
        }
    }
}

/// The events of each output follow the format's grammar.
fn check_event_grammar(format: &str, provider: &str, text: &str) {
    let events: Vec<(String, Value)> = text
        .split("\n\n")
        .filter(|e| !e.is_empty())
        .map(|e| {
            let mut name = String::new();
            let mut data = String::new();
            for line in e.lines() {
                if let Some(n) = line.strip_prefix("event: ") {
                    name = n.to_string();
                } else if let Some(d) = line.strip_prefix("data: ") {
                    data.push_str(d);
                }
            }
            let v: Value = serde_json::from_str(&data).unwrap_or_else(|e| panic!("{data}: {e}"));
            assert_eq!(
                v["type"].as_str(),
                Some(name.as_str()),
                "{format} {provider}: {data}"
            );
            (name, v)
        })
        .collect();
    assert!(!events.is_empty(), "{format} {provider}");
    let last = events.last().unwrap().0.as_str();
    if format == "messages" {
        assert!(
            events[0].0 == "message_start" || events[0].0 == "error",
            "{provider}: starts with {}",
            events[0].0
        );
        assert!(
            matches!(last, "message_stop" | "error"),
            "{provider}: ends with {last}"
        );
        // Blocks open and close in order (an Anthropic stream passes through as it came).
        let mut open: Option<u64> = None;
        for (name, v) in events.iter().filter(|_| provider != "anthropic") {
            match name.as_str() {
                "content_block_start" => {
                    assert!(open.is_none(), "{provider}: nested block");
                    open = v["index"].as_u64();
                }
                "content_block_delta" => assert_eq!(open, v["index"].as_u64(), "{provider}"),
                "content_block_stop" => {
                    assert_eq!(open, v["index"].as_u64(), "{provider}");
                    open = None;
                }
                "message_delta" => assert!(open.is_none(), "{provider}: block open at the end"),
                _ => {}
            }
        }
    } else {
        assert!(
            events[0].0 == "response.created" || events[0].0 == "error",
            "{provider}: starts with {}",
            events[0].0
        );
        assert!(
            matches!(last, "response.completed" | "response.incomplete" | "error"),
            "{provider}: ends with {last}"
        );
        for (i, (_, v)) in events.iter().enumerate() {
            assert_eq!(v["sequence_number"].as_u64(), Some(i as u64), "{provider}");
        }
        if matches!(last, "response.completed" | "response.incomplete") {
            let r = &events.last().unwrap().1["response"];
            assert!(r["output"].is_array());
            // Deltas add up to the final items.
            for item in r["output"].as_array().unwrap() {
                let id = item["id"].as_str().unwrap();
                let deltas: String = events
                    .iter()
                    .filter(|(_, v)| v["item_id"] == id && v["delta"].is_string())
                    .map(|(_, v)| v["delta"].as_str().unwrap())
                    .collect();
                let whole = if item["type"] == "message" {
                    item["content"][0]["text"].as_str().unwrap().to_string()
                } else {
                    item["arguments"].as_str().unwrap().to_string()
                };
                assert_eq!(deltas, whole, "{provider}: {id}");
            }
        }
    }
}

/// Not on wasm32: it reads the fixture directory, which exists only natively.
#[cfg(not(target_arch = "wasm32"))]
#[test]
fn fixture_list_matches_the_directory() {
    let mut on_disk = Vec::new();
    for dir in std::fs::read_dir(root()).unwrap() {
        let dir = dir.unwrap().path();
        let format = dir.file_name().unwrap().to_str().unwrap().to_string();
        for file in std::fs::read_dir(&dir).unwrap() {
            let name = file.unwrap().file_name().to_str().unwrap().to_string();
            on_disk.push(format!("{format}/{name}"));
        }
    }
    on_disk.sort();
    let listed: Vec<String> = FIXTURES.iter().map(|(p, _)| p.to_string()).collect();
    assert_eq!(
        listed,
        on_disk,
        "FIXTURES must list every file of tests/fixtures/ai_ingress, sorted:\n{}",
        on_disk
            .iter()
            .map(|p| format!("    \"{p}\","))
            .collect::<Vec<_>>()
            .join("\n")
    );
}
