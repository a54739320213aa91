//! AI translation benchmark: native cost per streamed chunk for each provider format, plus request
//! building and non-streaming response parsing.
//!
//! Run in release: `cargo bench -p edgegate-core --bench ai`. Plain `fn main` (harness = false), timed
//! with `std::time::Instant` (native only; never in Worker code).

use edgegate_core::ai::ingress::IngressRequest;
use edgegate_core::ai::{
    build_request, messages_in, parse_response, responses_in, ChatRequest, ProviderKind,
    ProviderTarget, StreamContext, StreamTranslator,
};
use serde_json::json;
use std::hint::black_box;
use std::time::Instant;

const EVENTS: usize = 2000;

/// A provider stream of `EVENTS` text deltas (~6 tokens each), in the provider's own format.
fn stream(kind: ProviderKind) -> Vec<u8> {
    let text = "Hello, wörld! ";
    let mut s = String::new();
    match kind {
        ProviderKind::OpenAi | ProviderKind::Azure => {
            for _ in 0..EVENTS {
                s.push_str(&format!(
                    "data: {{\"id\":\"chatcmpl-1\",\"object\":\"chat.completion.chunk\",\"created\":1,\"model\":\"gpt-4o-mini\",\"system_fingerprint\":\"fp_1\",\"choices\":[{{\"index\":0,\"delta\":{{\"content\":\"{text}\"}},\"logprobs\":null,\"finish_reason\":null}}],\"usage\":null}}\n\n"
                ));
            }
            s.push_str("data: {\"id\":\"chatcmpl-1\",\"object\":\"chat.completion.chunk\",\"created\":1,\"model\":\"gpt-4o-mini\",\"choices\":[{\"index\":0,\"delta\":{},\"finish_reason\":\"stop\"}]}\n\n");
            s.push_str("data: {\"id\":\"chatcmpl-1\",\"object\":\"chat.completion.chunk\",\"created\":1,\"model\":\"gpt-4o-mini\",\"choices\":[],\"usage\":{\"prompt_tokens\":9,\"completion_tokens\":12000,\"total_tokens\":12009}}\n\ndata: [DONE]\n\n");
        }
        ProviderKind::Anthropic => {
            s.push_str("event: message_start\ndata: {\"type\":\"message_start\",\"message\":{\"id\":\"msg_1\",\"type\":\"message\",\"role\":\"assistant\",\"content\":[],\"model\":\"claude-sonnet-4-5\",\"stop_reason\":null,\"stop_sequence\":null,\"usage\":{\"input_tokens\":25,\"output_tokens\":1}}}\n\n");
            s.push_str("event: content_block_start\ndata: {\"type\":\"content_block_start\",\"index\":0,\"content_block\":{\"type\":\"text\",\"text\":\"\"}}\n\n");
            for _ in 0..EVENTS {
                s.push_str(&format!("event: content_block_delta\ndata: {{\"type\":\"content_block_delta\",\"index\":0,\"delta\":{{\"type\":\"text_delta\",\"text\":\"{text}\"}}}}\n\n"));
            }
            s.push_str("event: content_block_stop\ndata: {\"type\":\"content_block_stop\",\"index\":0}\n\n");
            s.push_str("event: message_delta\ndata: {\"type\":\"message_delta\",\"delta\":{\"stop_reason\":\"end_turn\",\"stop_sequence\":null},\"usage\":{\"output_tokens\":12000}}\n\n");
            s.push_str("event: message_stop\ndata: {\"type\":\"message_stop\"}\n\n");
        }
        ProviderKind::Vertex => return stream(ProviderKind::Gemini),
        ProviderKind::Gemini => {
            for i in 0..EVENTS {
                let finish = if i + 1 == EVENTS {
                    ",\"finishReason\":\"STOP\""
                } else {
                    ""
                };
                s.push_str(&format!("data: {{\"candidates\":[{{\"content\":{{\"parts\":[{{\"text\":\"{text}\"}}],\"role\":\"model\"}}{finish},\"index\":0}}],\"usageMetadata\":{{\"promptTokenCount\":8,\"candidatesTokenCount\":{i},\"totalTokenCount\":{}}},\"modelVersion\":\"gemini-2.0-flash\",\"responseId\":\"abc\"}}\r\n\r\n", i + 8));
            }
        }
        ProviderKind::Bedrock => return bedrock_stream(text),
    }
    s.into_bytes()
}

/// ConverseStream: binary event stream messages, as Bedrock sends them.
fn bedrock_stream(text: &str) -> Vec<u8> {
    use edgegate_core::ai::eventstream::encode;
    let ev = |t: &str, payload: String| {
        encode(
            &[
                (":event-type", t),
                (":content-type", "application/json"),
                (":message-type", "event"),
            ],
            payload.as_bytes(),
        )
    };
    let mut out = ev(
        "messageStart",
        r#"{"role":"assistant","p":"abcdefgh"}"#.into(),
    );
    for _ in 0..EVENTS {
        out.extend(ev(
            "contentBlockDelta",
            format!(
                r#"{{"contentBlockIndex":0,"delta":{{"text":"{text}"}},"p":"abcdefghijklmnop"}}"#
            ),
        ));
    }
    out.extend(ev("contentBlockStop", r#"{"contentBlockIndex":0}"#.into()));
    out.extend(ev("messageStop", r#"{"stopReason":"end_turn"}"#.into()));
    out.extend(ev(
        "metadata",
        r#"{"usage":{"inputTokens":9,"outputTokens":12000,"totalTokens":12009},"metrics":{"latencyMs":100}}"#.into(),
    ));
    out
}

fn target(kind: ProviderKind) -> ProviderTarget {
    let mut t = ProviderTarget::new(kind, "m");
    if kind == ProviderKind::Azure {
        t.base_url = "https://r.openai.azure.com".into();
    }
    t
}

fn ctx() -> StreamContext {
    StreamContext {
        id: "chatcmpl-gw".into(),
        model: "m".into(),
        created: 1_700_000_000,
        include_usage: true,
        tool_call_seed: 7,
    }
}

/// Translate the stream fed in `piece`-byte network chunks; returns (ns per event, output bytes).
fn run(kind: ProviderKind, input: &[u8], piece: usize, rounds: usize) -> (f64, usize) {
    let t = target(kind);
    let mut out_len = 0;
    let start = Instant::now();
    for _ in 0..rounds {
        let mut tr = StreamTranslator::new(&t, ctx());
        for chunk in input.chunks(piece) {
            out_len += black_box(tr.push(black_box(chunk))).len();
        }
        out_len += tr.finish().len();
    }
    let ns = start.elapsed().as_nanos() as f64 / (rounds * EVENTS) as f64;
    (ns, out_len / rounds)
}

/// Like [`run`], for a client of another format (`req`): the second stage included.
fn run_ingress(
    req: &IngressRequest,
    kind: ProviderKind,
    input: &[u8],
    piece: usize,
    rounds: usize,
) -> f64 {
    let t = target(kind);
    let mut out_len = 0;
    let start = Instant::now();
    for _ in 0..rounds {
        let mut tr = StreamTranslator::for_ingress(req, &t, ctx());
        for chunk in input.chunks(piece) {
            out_len += black_box(tr.push(black_box(chunk))).len();
        }
        out_len += tr.finish().len();
    }
    black_box(out_len);
    start.elapsed().as_nanos() as f64 / (rounds * EVENTS) as f64
}

fn ingress_table() {
    let messages = messages_in::parse_request(
        br#"{"model":"m","max_tokens":100,"stream":true,"messages":[{"role":"user","content":"Hi"}]}"#,
        Some("2023-06-01"),
        None,
        false,
    )
    .unwrap();
    let responses =
        responses_in::parse_request(br#"{"model":"m","stream":true,"input":"Hi","store":false}"#)
            .unwrap();
    println!(
        "\n{:<24} {:>14} {:>14} {:>14}",
        "client <- provider", "ns/event @64B", "ns/event @1KiB", "ns/event whole"
    );
    for (name, req, kind) in [
        ("messages <- openai", &messages, ProviderKind::OpenAi),
        ("messages <- anthropic", &messages, ProviderKind::Anthropic),
        ("messages <- gemini", &messages, ProviderKind::Gemini),
        ("responses <- openai", &responses, ProviderKind::OpenAi),
        (
            "responses <- anthropic",
            &responses,
            ProviderKind::Anthropic,
        ),
        ("responses <- gemini", &responses, ProviderKind::Gemini),
        ("messages <- bedrock", &messages, ProviderKind::Bedrock),
        ("responses <- bedrock", &responses, ProviderKind::Bedrock),
    ] {
        let input = stream(kind);
        run_ingress(req, kind, &input, 1024, 3); // warm-up
        println!(
            "{:<24} {:>14.0} {:>14.0} {:>14.0}",
            name,
            run_ingress(req, kind, &input, 64, 20),
            run_ingress(req, kind, &input, 1024, 20),
            run_ingress(req, kind, &input, input.len(), 20)
        );
    }
}

fn main() {
    println!("AI stream translation, {EVENTS} text events per stream (release build advised)");
    println!(
        "{:<10} {:>10} {:>14} {:>14} {:>14}",
        "provider", "in bytes", "ns/event @64B", "ns/event @1KiB", "ns/event whole"
    );
    for kind in [
        ProviderKind::OpenAi,
        ProviderKind::Anthropic,
        ProviderKind::Gemini,
        ProviderKind::Bedrock,
    ] {
        let input = stream(kind);
        run(kind, &input, 1024, 3); // warm-up
        let (small, _) = run(kind, &input, 64, 20);
        let (kib, _) = run(kind, &input, 1024, 20);
        let (whole, out) = run(kind, &input, input.len(), 20);
        println!(
            "{:<10} {:>10} {:>14.0} {:>14.0} {:>14.0}   (out {} bytes)",
            kind.as_str(),
            input.len(),
            small,
            kib,
            whole,
            out
        );
    }

    let req: ChatRequest = serde_json::from_value(json!({
        "model": "x", "stream": true, "temperature": 0.5, "max_tokens": 500,
        "messages": [
            {"role": "system", "content": "You are helpful."},
            {"role": "user", "content": "What is the weather in Paris and in Rome today? Please be brief."},
            {"role": "assistant", "content": null, "tool_calls": [{"id": "c1", "type": "function", "function": {"name": "w", "arguments": "{\"city\":\"Paris\"}"}}]},
            {"role": "tool", "tool_call_id": "c1", "content": "{\"t\": 20}"},
            {"role": "user", "content": "Thanks"}
        ],
        "tools": [{"type": "function", "function": {"name": "w", "parameters": {"type": "object", "properties": {"city": {"type": "string"}}}}}]
    }))
    .unwrap();
    let bodies = [
        (
            ProviderKind::OpenAi,
            json!({"id": "c", "object": "chat.completion", "created": 1, "model": "m", "choices": [{"index": 0, "message": {"role": "assistant", "content": "It is sunny in Paris."}, "finish_reason": "stop"}], "usage": {"prompt_tokens": 50, "completion_tokens": 6, "total_tokens": 56}}),
        ),
        (
            ProviderKind::Anthropic,
            json!({"id": "msg", "type": "message", "role": "assistant", "model": "m", "content": [{"type": "text", "text": "It is sunny in Paris."}], "stop_reason": "end_turn", "usage": {"input_tokens": 50, "output_tokens": 6}}),
        ),
        (
            ProviderKind::Gemini,
            json!({"candidates": [{"content": {"role": "model", "parts": [{"text": "It is sunny in Paris."}]}, "finishReason": "STOP", "index": 0}], "usageMetadata": {"promptTokenCount": 50, "candidatesTokenCount": 6, "totalTokenCount": 56}}),
        ),
        (
            ProviderKind::Bedrock,
            json!({"output": {"message": {"role": "assistant", "content": [{"text": "It is sunny in Paris."}]}}, "stopReason": "end_turn", "usage": {"inputTokens": 50, "outputTokens": 6, "totalTokens": 56}, "metrics": {"latencyMs": 300}}),
        ),
    ];
    println!(
        "\n{:<10} {:>16} {:>18}",
        "provider", "build_request ns", "parse_response ns"
    );
    for (kind, body) in bodies {
        let t = target(kind);
        let body = serde_json::to_vec(&body).unwrap();
        let n = 20_000;
        let start = Instant::now();
        for _ in 0..n {
            black_box(build_request(black_box(&req), &t).unwrap());
        }
        let build = start.elapsed().as_nanos() as f64 / n as f64;
        let start = Instant::now();
        for _ in 0..n {
            black_box(parse_response(&t, 200, black_box(&body), &ctx()).unwrap());
        }
        let parse = start.elapsed().as_nanos() as f64 / n as f64;
        println!("{:<10} {:>16.0} {:>18.0}", kind.as_str(), build, parse);
    }
    ingress_table();
}
