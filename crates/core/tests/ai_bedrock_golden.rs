//! Golden tests of the AWS Bedrock provider (Converse / ConverseStream), fixtures in
//! tests/fixtures/ai_bedrock/:
//!
//! - `target.json`: the target, the AWS test credentials (AWS's documentation example keys) and the
//!   signing time;
//! - `<case>.request.json` (an OpenAI request) -> `<case>.upstream.json` (method, URL, headers with the
//!   SigV4 signature, body);
//! - `<case>.response.json` (`{"status", "headers"?, "body"|"text"}` from Bedrock) ->
//!   `<case>.response.expected.json` (the client's answer or error);
//! - `<case>.stream.json` (event stream messages: `[":event-type", payload]` or `{"headers", "payload"}`,
//!   encoded to the binary framing here; `cut`: bytes dropped from the end, `flip`: a payload byte of
//!   that message flipped, so its CRC fails) -> `<case>.stream.expected.sse` (OpenAI chunks),
//!   `<case>.messages.expected.sse` (Anthropic Messages events) and `<case>.responses.expected.sse`
//!   (OpenAI Responses events). Every stream is also fed split at 200 seeded random places and one byte
//!   at a time, and must give identical output.
//!
//! `EDGEGATE_BLESS=1 cargo test -p edgegate-core --test ai_bedrock_golden` rewrites the expected files
//! (review the diff: they are the specification).

use edgegate_core::ai::bedrock::{self, AwsAuth};
use edgegate_core::ai::eventstream::encode;
use edgegate_core::ai::ingress::IngressRequest;
use edgegate_core::ai::sigv4::Credentials;
use edgegate_core::ai::{
    build_request, messages_in, parse_response, provider_error, responses_in, ChatRequest,
    ProviderKind, ProviderTarget, StreamContext, StreamTranslator,
};
use serde_json::{json, Value};
use std::path::PathBuf;
#[cfg(target_arch = "wasm32")]
use wasm_bindgen_test::wasm_bindgen_test as test;

macro_rules! fixtures {
    ($($path:literal,)*) => {
        &[$(($path, include_str!(concat!("fixtures/ai_bedrock/", $path))),)*]
    };
}
static FIXTURES: &[(&str, &str)] = fixtures![
    "bad-signature.response.expected.json",
    "bad-signature.response.json",
    "chat.request.json",
    "chat.upstream.json",
    "crc.messages.expected.sse",
    "crc.responses.expected.sse",
    "crc.stream.expected.sse",
    "crc.stream.json",
    "exception.messages.expected.sse",
    "exception.responses.expected.sse",
    "exception.stream.expected.sse",
    "exception.stream.json",
    "expired-token.response.expected.json",
    "expired-token.response.json",
    "first-exception.messages.expected.sse",
    "first-exception.responses.expected.sse",
    "first-exception.stream.expected.sse",
    "first-exception.stream.json",
    "guardrail.response.expected.json",
    "guardrail.response.json",
    "max-tokens.response.expected.json",
    "max-tokens.response.json",
    "no-metadata.messages.expected.sse",
    "no-metadata.responses.expected.sse",
    "no-metadata.stream.expected.sse",
    "no-metadata.stream.json",
    "not-found.response.expected.json",
    "not-found.response.json",
    "not-json.response.expected.json",
    "not-json.response.json",
    "reasoning.no-usage.messages.expected.sse",
    "reasoning.no-usage.responses.expected.sse",
    "reasoning.no-usage.stream.expected.sse",
    "reasoning.no-usage.stream.json",
    "stream.request.json",
    "stream.upstream.json",
    "target.json",
    "text.messages.expected.sse",
    "text.response.expected.json",
    "text.response.json",
    "text.responses.expected.sse",
    "text.stream.expected.sse",
    "text.stream.json",
    "throttled.response.expected.json",
    "throttled.response.json",
    "tool-choice-none.request.json",
    "tool-choice-none.upstream.json",
    "tool-use.response.expected.json",
    "tool-use.response.json",
    "tools.messages.expected.sse",
    "tools.responses.expected.sse",
    "tools.stream.expected.sse",
    "tools.stream.json",
    "truncated.messages.expected.sse",
    "truncated.responses.expected.sse",
    "truncated.stream.expected.sse",
    "truncated.stream.json",
    "unavailable.response.expected.json",
    "unavailable.response.json",
    "validation.response.expected.json",
    "validation.response.json",
];

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/ai_bedrock")
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

/// `(case, contents)` of the files named `<case><suffix>`, sorted.
fn cases(suffix: &str) -> Vec<(String, &'static str)> {
    let mut v: Vec<_> = FIXTURES
        .iter()
        .filter_map(|(p, t)| Some((p.strip_suffix(suffix)?.to_string(), *t)))
        .collect();
    v.sort();
    v
}

fn setup() -> Value {
    serde_json::from_str(fixture("target.json").unwrap()).unwrap()
}

fn target() -> ProviderTarget {
    let v = setup();
    let mut t = ProviderTarget::new(ProviderKind::Bedrock, v["model"].as_str().unwrap());
    t.provider = v["provider"].as_str().unwrap().to_string();
    t.base_url = v["base_url"].as_str().unwrap().to_string();
    t.aws = Some(AwsAuth {
        region: v["region"].as_str().unwrap().to_string(),
        access_key_id_secret: "AWS_ACCESS_KEY_ID".into(),
        secret_access_key_secret: "AWS_SECRET_ACCESS_KEY".into(),
        session_token_secret: Some("AWS_SESSION_TOKEN".into()),
    });
    t
}

fn creds() -> Credentials {
    let c = &setup()["credentials"];
    Credentials {
        access_key_id: c["access_key_id"].as_str().unwrap().into(),
        secret_access_key: c["secret_access_key"].as_str().unwrap().into(),
        session_token: c["session_token"].as_str().map(str::to_string),
    }
}

fn ctx(id: &str, include_usage: bool) -> StreamContext {
    StreamContext {
        id: id.to_string(),
        model: "smart".to_string(),
        created: 1_700_000_000,
        include_usage,
        tool_call_seed: 0x5EED,
    }
}

#[test]
fn requests_translated_out_and_signed() {
    let t = target();
    let now = setup()["now"].as_u64().unwrap();
    let secret = creds().secret_access_key;
    let mut n = 0;
    for (case, text) in cases(".request.json") {
        let req: ChatRequest = serde_json::from_str(text).unwrap();
        let up = build_request(&req, &t).unwrap_or_else(|e| panic!("{case}: {e}"));
        assert!(up.key_header.is_none());
        let mut headers = up.headers.clone();
        headers.extend(bedrock::sign(&up, t.aws.as_ref().unwrap(), &creds(), now).unwrap());
        let headers: serde_json::Map<String, Value> = headers
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
        assert!(!got.to_string().contains(&secret), "{case}: secret key");
        check_json(&format!("{case}.upstream.json"), &got);
        n += 1;
    }
    assert!(n >= 3);
}

#[test]
fn responses_translated_back() {
    let t = target();
    let mut n = 0;
    for (case, text) in cases(".response.json") {
        let input: Value = serde_json::from_str(text).unwrap();
        let status = input["status"].as_u64().unwrap() as u16;
        let body = match input.get("text") {
            Some(text) => text.as_str().unwrap().as_bytes().to_vec(),
            None => serde_json::to_vec(&input["body"]).unwrap(),
        };
        let headers: Vec<(String, String)> = input
            .get("headers")
            .and_then(Value::as_object)
            .into_iter()
            .flatten()
            .map(|(n, v)| (n.clone(), v.as_str().unwrap().to_string()))
            .collect();
        let result = if (200..300).contains(&status) {
            parse_response(&t, status, &body, &ctx("chatcmpl-gw-req-1", false))
        } else {
            Err(provider_error(&t, status, &body, &headers))
        };
        let got = match result {
            Ok(r) => json!({"status": 200, "body": r}),
            Err(e) => {
                let mut got =
                    json!({"status": e.status, "retryable": e.retryable, "body": e.body()});
                if !e.headers.is_empty() {
                    got["headers"] = json!(e.headers);
                }
                got
            }
        };
        check_json(&format!("{case}.response.expected.json"), &got);
        n += 1;
    }
    assert!(n >= 10, "only {n} response cases");
}

/// The binary stream of a `<case>.stream.json`.
fn encode_stream(spec: &Value) -> Vec<u8> {
    let mut out = Vec::new();
    for (i, m) in spec["messages"].as_array().unwrap().iter().enumerate() {
        let (headers, payload): (Vec<(String, String)>, &Value) = match m {
            Value::Array(a) => (
                vec![
                    (":event-type".into(), a[0].as_str().unwrap().into()),
                    (":content-type".into(), "application/json".into()),
                    (":message-type".into(), "event".into()),
                ],
                &a[1],
            ),
            _ => (
                m["headers"]
                    .as_object()
                    .unwrap()
                    .iter()
                    .map(|(k, v)| (k.clone(), v.as_str().unwrap().to_string()))
                    .collect(),
                &m["payload"],
            ),
        };
        let h: Vec<(&str, &str)> = headers
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        let mut bytes = encode(&h, payload.to_string().as_bytes());
        if spec["flip"].as_u64() == Some(i as u64) {
            let at = bytes.len() - 6;
            bytes[at] ^= 0x01;
        }
        out.extend(bytes);
    }
    if let Some(cut) = spec["cut"].as_u64() {
        out.truncate(out.len() - cut as usize);
    }
    out
}

fn ingress(format: &str) -> IngressRequest {
    match format {
        "messages" => {
            let body = json!({"model": "smart", "max_tokens": 100, "stream": true,
                              "messages": [{"role": "user", "content": "Hi"}]});
            messages_in::parse_request(body.to_string().as_bytes(), Some("2023-06-01"), None, false)
                .unwrap()
        }
        "responses" => {
            let body = json!({"model": "smart", "stream": true, "input": "Hi", "store": false});
            responses_in::parse_request(body.to_string().as_bytes()).unwrap()
        }
        _ => {
            let body = json!({"model": "smart", "stream": true,
                              "messages": [{"role": "user", "content": "Hi"}]});
            IngressRequest::chat(serde_json::from_value(body).unwrap())
        }
    }
}

fn translate(format: &str, include_usage: bool, pieces: &[&[u8]]) -> (String, Option<Value>) {
    let t = target();
    let id = match format {
        "messages" => "msg_gw-req-1",
        "responses" => "resp_gw-req-1",
        _ => "chatcmpl-gw-req-1",
    };
    let mut tr = StreamTranslator::for_ingress(&ingress(format), &t, ctx(id, include_usage));
    let mut out = Vec::new();
    for p in pieces {
        out.extend(tr.push(p));
    }
    out.extend(tr.finish());
    let usage = tr.usage().map(|u| serde_json::to_value(u).unwrap());
    (String::from_utf8(out).unwrap(), usage)
}

fn xorshift(state: &mut u64) -> u64 {
    let mut x = *state;
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    *state = x;
    x
}

#[test]
fn streams_translated_back_however_split() {
    let mut n = 0;
    for (case, text) in cases(".stream.json") {
        let spec: Value = serde_json::from_str(text).unwrap();
        let input = encode_stream(&spec);
        let include_usage = !case.contains("no-usage");
        for (format, suffix) in [
            ("chat", "stream"),
            ("messages", "messages"),
            ("responses", "responses"),
        ] {
            let (whole, usage) = translate(format, include_usage, &[&input]);
            check_text(&format!("{case}.{suffix}.expected.sse"), &whole);
            check_shape(format, &case, &whole);
            let mut seed = 0x2545_F491_4F6C_DD1D_u64 ^ (n as u64 + 1);
            for round in 0..200 {
                let k = 1 + (xorshift(&mut seed) % 12) as usize;
                let mut cuts: Vec<usize> = (0..k)
                    .map(|_| (xorshift(&mut seed) % (input.len() as u64 + 1)) as usize)
                    .collect();
                cuts.sort_unstable();
                let mut pieces = Vec::new();
                let mut start = 0;
                for &c in &cuts {
                    pieces.push(&input[start..c]);
                    start = c;
                }
                pieces.push(&input[start..]);
                let got = translate(format, include_usage, &pieces);
                assert_eq!(got.0, whole, "{case} {format}: round {round} at {cuts:?}");
                assert_eq!(got.1, usage, "{case} {format}: usage, round {round}");
            }
            let bytes: Vec<&[u8]> = input.chunks(1).collect();
            let got = translate(format, include_usage, &bytes);
            assert_eq!(got.0, whole, "{case} {format}: byte at a time");
            assert_eq!(got.1, usage, "{case} {format}: usage, byte at a time");
        }
        n += 1;
    }
    assert!(n >= 7, "only {n} stream cases");
}

/// Each output ends as its format requires: `[DONE]` once and last (chat), `message_stop` or an
/// `error` event (Messages), `response.completed` / `response.incomplete` or `error` (Responses).
fn check_shape(format: &str, case: &str, text: &str) {
    let events: Vec<&str> = text.split("\n\n").filter(|e| !e.is_empty()).collect();
    let data = |e: &str| -> String {
        e.lines()
            .filter_map(|l| l.strip_prefix("data: "))
            .collect::<Vec<_>>()
            .join("\n")
    };
    match format {
        "chat" => {
            assert_eq!(data(events.last().unwrap()), "[DONE]", "{case}");
            assert_eq!(text.matches("data: [DONE]").count(), 1, "{case}");
            for e in &events[..events.len() - 1] {
                serde_json::from_str::<Value>(&data(e)).unwrap();
            }
        }
        _ => {
            let last: Value = serde_json::from_str(&data(events.last().unwrap())).unwrap();
            let ok: &[&str] = if format == "messages" {
                &["message_stop", "error"]
            } else {
                &["response.completed", "response.incomplete", "error"]
            };
            assert!(
                ok.contains(&last["type"].as_str().unwrap()),
                "{case} {format}: ends with {last}"
            );
        }
    }
}

#[test]
fn config_defaults_and_errors() {
    use edgegate_core::ai::AiProxyConfig;
    let c = AiProxyConfig::compile(&json!({
        "providers": {
            "bedrock": {"region": "eu-central-1"},
            "aws-east": {"kind": "bedrock", "region": "us-east-1", "base_url": "http://127.0.0.1:9300",
                         "access_key_id_secret": "EAST_KEY_ID", "secret_access_key_secret": "EAST_SECRET",
                         "session_token_secret": "EAST_TOKEN"}
        },
        "models": {"claude": "bedrock/anthropic.claude-3-5-sonnet-20240620-v1:0"}
    }))
    .unwrap();
    let t = c.resolve("claude", 1).unwrap();
    assert_eq!(t[0].kind, ProviderKind::Bedrock);
    assert_eq!(
        t[0].base_url,
        "https://bedrock-runtime.eu-central-1.amazonaws.com"
    );
    assert_eq!(t[0].key_secret, None);
    let aws = t[0].aws.clone().unwrap();
    assert_eq!(
        (
            aws.region.as_str(),
            aws.access_key_id_secret.as_str(),
            aws.secret_access_key_secret.as_str(),
            aws.session_token_secret
        ),
        (
            "eu-central-1",
            "AWS_ACCESS_KEY_ID",
            "AWS_SECRET_ACCESS_KEY",
            None
        )
    );
    let up = build_request(
        &serde_json::from_value(json!({"messages": [{"role": "user", "content": "x"}]})).unwrap(),
        &t[0],
    )
    .unwrap();
    assert_eq!(
        up.url,
        "https://bedrock-runtime.eu-central-1.amazonaws.com/model/anthropic.claude-3-5-sonnet-20240620-v1%3A0/converse"
    );
    let east = c.resolve("aws-east/amazon.nova-pro-v1:0", 1).unwrap();
    assert_eq!(east[0].base_url, "http://127.0.0.1:9300");
    assert_eq!(
        east[0]
            .aws
            .as_ref()
            .unwrap()
            .session_token_secret
            .as_deref(),
        Some("EAST_TOKEN")
    );

    let errors = |v: Value| AiProxyConfig::compile(&v).unwrap_err();
    let e = errors(json!({"providers": {"bedrock": {}}}));
    assert!(
        e.iter().any(|(p, _)| p == "providers.bedrock.region"),
        "{e:?}"
    );
    let e = errors(json!({"providers": {"bedrock": {"region": "US East"}}}));
    assert_eq!(e[0].0, "providers.bedrock.region");
    let e = errors(json!({"providers": {"bedrock": {"region": "us-east-1", "key_secret": "K"}}}));
    assert_eq!(e[0].0, "providers.bedrock.key_secret");
    let e = errors(
        json!({"providers": {"bedrock": {"region": "us-east-1", "secret_access_key_secret": "wJalr/XUtn+FEMI"}}}),
    );
    assert_eq!(e[0].0, "providers.bedrock.secret_access_key_secret");
    let e = errors(
        json!({"providers": {"bedrock": {"region": "us-east-1", "secret_access_key": "wJalrXUtnFEMI"}}}),
    );
    assert_eq!(e[0].0, "providers.bedrock.secret_access_key");
    assert!(!format!("{e:?}").contains("wJalrXUtnFEMI"));
    let e =
        errors(json!({"providers": {"openai": {"key_secret": "K", "access_key_id_secret": "A"}}}));
    assert_eq!(e[0].0, "providers.openai.access_key_id_secret");
    let e = errors(
        json!({"providers": {"bedrock": {"region": "us-east-1", "headers": {"X-Amz-Security-Token": "IQo"}}}}),
    );
    assert_eq!(e[0].0, "providers.bedrock.headers.X-Amz-Security-Token");
}

#[test]
fn count_tokens_request_and_answer() {
    let t = target();
    let req: ChatRequest = serde_json::from_value(json!({
        "max_tokens": 5, "temperature": 0.1, "tools": [{"type": "function", "function": {"name": "f"}}],
        "messages": [{"role": "system", "content": "S"}, {"role": "user", "content": "Hi there"}]
    }))
    .unwrap();
    let up = bedrock::build_count_tokens_request(&req, &t).unwrap();
    assert_eq!(
        up.url,
        "https://bedrock-runtime.us-east-1.amazonaws.com/model/anthropic.claude-3-5-sonnet-20240620-v1%3A0/count-tokens"
    );
    assert_eq!(
        serde_json::from_slice::<Value>(&up.body).unwrap(),
        json!({"input": {"converse": {
            "messages": [{"role": "user", "content": [{"text": "Hi there"}]}],
            "system": [{"text": "S"}]
        }}})
    );
    assert_eq!(
        bedrock::parse_count_tokens(&t, br#"{"inputTokens": 11}"#).unwrap(),
        11
    );
    assert_eq!(
        bedrock::parse_count_tokens(&t, b"{}").unwrap_err().status,
        502
    );
}

/// Not on wasm32: it reads the fixture directory, which exists only natively.
#[cfg(not(target_arch = "wasm32"))]
#[test]
fn fixture_list_matches_the_directory() {
    let mut on_disk: Vec<String> = std::fs::read_dir(root())
        .unwrap()
        .map(|f| f.unwrap().file_name().to_str().unwrap().to_string())
        .collect();
    on_disk.sort();
    let listed: Vec<String> = FIXTURES.iter().map(|(p, _)| p.to_string()).collect();
    assert_eq!(
        listed,
        on_disk,
        "FIXTURES must list every file of tests/fixtures/ai_bedrock, sorted:\n{}",
        on_disk
            .iter()
            .map(|p| format!("    \"{p}\","))
            .collect::<Vec<_>>()
            .join("\n")
    );
}
