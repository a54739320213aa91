//! Unit tests of the client formats (golden fixtures: crates/core/tests/ai_ingress_golden.rs).

use super::ingress::*;
use super::*;
use serde_json::json;
#[cfg(target_arch = "wasm32")]
use wasm_bindgen_test::wasm_bindgen_test as test;

fn messages(v: Value) -> Result<IngressRequest, AiError> {
    messages_in::parse_request(v.to_string().as_bytes(), Some("2023-06-01"), None, false)
}

fn responses(v: Value) -> Result<IngressRequest, AiError> {
    responses_in::parse_request(v.to_string().as_bytes())
}

fn ctx(id: &str) -> StreamContext {
    StreamContext {
        id: id.into(),
        model: "smart".into(),
        created: 1_700_000_000,
        include_usage: false,
        tool_call_seed: 1,
    }
}

#[test]
fn malformed_messages_bodies_are_400s_in_anthropic_shape_naming_the_path() {
    for (body, path) in [
        (json!({"max_tokens": 5, "messages": []}), "model"),
        (json!({"model": "m", "messages": []}), "max_tokens"),
        (
            json!({"model": "m", "max_tokens": 0, "messages": []}),
            "max_tokens",
        ),
        (json!({"model": "m", "max_tokens": 5}), "messages"),
        (
            json!({"model": "m", "max_tokens": 5, "messages": {}}),
            "messages",
        ),
        (
            json!({"model": "m", "max_tokens": 5, "messages": [{"role": "robot", "content": "x"}]}),
            "messages.0.role",
        ),
        (
            json!({"model": "m", "max_tokens": 5, "messages": [{"role": "user"}]}),
            "messages.0.content",
        ),
        (
            json!({"model": "m", "max_tokens": 5, "messages": [{"role": "user", "content": 3}]}),
            "messages.0.content",
        ),
        (
            json!({"model": "m", "max_tokens": 5, "messages": [{"role": "user", "content": [{"text": "x"}]}]}),
            "messages.0.content.0.type",
        ),
        (
            json!({"model": "m", "max_tokens": 5, "messages": [{"role": "user", "content": [{"type": "image"}]}]}),
            "messages.0.content.0.source",
        ),
        (
            json!({"model": "m", "max_tokens": 5, "messages": [{"role": "user", "content": [{"type": "document"}]}]}),
            "messages.0.content.0.source",
        ),
        (
            json!({"model": "m", "max_tokens": 5, "messages": [{"role": "user", "content": [{"type": "image", "source": {"type": "base64", "data": "x"}}]}]}),
            "messages.0.content.0.source.media_type",
        ),
        (
            json!({"model": "m", "max_tokens": 5, "messages": [{"role": "assistant", "content": [{"type": "tool_use", "name": "f"}]}]}),
            "messages.0.content.0.id",
        ),
        (
            json!({"model": "m", "max_tokens": 5, "messages": [{"role": "user", "content": [{"type": "tool_result"}]}]}),
            "messages.0.content.0.tool_use_id",
        ),
        (
            json!({"model": "m", "max_tokens": 5, "messages": [], "tools": [{"name": "f"}]}),
            "tools.0.input_schema",
        ),
        (
            json!({"model": "m", "max_tokens": 5, "messages": [], "tool_choice": {"type": "sometimes"}}),
            "tool_choice.type",
        ),
        (
            json!({"model": "m", "max_tokens": 5, "messages": [], "stop_sequences": "x"}),
            "stop_sequences",
        ),
        (
            json!({"model": "m", "max_tokens": 5, "messages": [], "temperature": "hot"}),
            "temperature",
        ),
        (
            json!({"model": "m", "max_tokens": 5, "messages": [], "stream": "yes"}),
            "stream",
        ),
    ] {
        let e = messages(body.clone()).expect_err(&body.to_string());
        assert_eq!(e.status, 400, "{body}");
        assert_eq!(e.param.as_deref(), Some(path), "{body}: {e}");
        assert!(e.message.starts_with(path), "{}", e.message);
        // A missing field is "Field required", as Anthropic says it (docs/ai.md's example).
        if path.ends_with(".source") {
            assert_eq!(e.message, format!("{path}: Field required"));
        }
        let b = e.body();
        assert_eq!(b["type"], "error");
        assert_eq!(b["error"]["type"], "invalid_request_error");
    }
    for body in [&b"not json"[..], b"[1]", b""] {
        let e = messages_in::parse_request(body, None, None, false).unwrap_err();
        assert_eq!((e.status, e.shape), (400, ErrorShape::Anthropic));
    }
    // count_tokens does not need max_tokens.
    let r = messages_in::parse_request(
        br#"{"model": "m", "messages": [{"role": "user", "content": "hi"}]}"#,
        None,
        None,
        true,
    )
    .unwrap();
    assert_eq!(r.chat.max_tokens, None);
}

#[test]
fn anthropic_versions() {
    for v in [None, Some("2023-06-01"), Some("2026-10-21")] {
        assert!(messages_in::check_version(v).is_ok(), "{v:?}");
    }
    let e = messages_in::check_version(Some("2022-01-01")).unwrap_err();
    assert_eq!(e.status, 400);
    assert!(e.message.contains("2023-06-01") && e.message.contains("2026-10-21"));
    assert_eq!(e.body()["error"]["type"], "invalid_request_error");
}

#[test]
fn anthropic_error_types_follow_the_status() {
    for (status, code, t) in [
        (400, None, "invalid_request_error"),
        (401, None, "authentication_error"),
        (403, None, "permission_error"),
        (404, Some("model_not_found"), "not_found_error"),
        (413, None, "request_too_large"),
        (429, None, "rate_limit_error"),
        (502, Some("upstream_unreachable"), "api_error"),
        (502, Some("overloaded_error"), "overloaded_error"),
        (504, None, "timeout_error"),
    ] {
        let e = AiError::new(status, "x", code, "msg").with_shape(ErrorShape::Anthropic);
        assert_eq!(
            e.body(),
            json!({"type": "error", "error": {"type": t, "message": "msg"}}),
            "{status}"
        );
    }
    // An overload is Anthropic's 529 (the SDKs' OverloadedError); in OpenAI's shape it stays a 502.
    let overloaded = AiError::from_provider("claude", 529, Some("overloaded_error"), "Overloaded");
    assert_eq!(overloaded.status, 502);
    assert_eq!(
        overloaded.clone().with_shape(ErrorShape::Anthropic).status,
        529
    );
    assert_eq!(overloaded.with_shape(ErrorShape::OpenAi).status, 502);
    assert_eq!(
        AiError::new(502, "x", Some("upstream_unreachable"), "m")
            .with_shape(ErrorShape::Anthropic)
            .status,
        502
    );
    // The default shape is OpenAI's.
    assert!(AiError::invalid("x").body()["error"]["message"].is_string());
}

#[test]
fn what_only_anthropic_can_do_fails_only_on_other_targets() {
    let req = messages(json!({"model": "m", "max_tokens": 5,
        "messages": [{"role": "user", "content": "hi"}],
        "tools": [{"type": "web_search_20250305", "name": "web_search"}]}))
    .unwrap();
    let anthropic = ProviderTarget::new(ProviderKind::Anthropic, "claude");
    let up = build_ingress_request(&req, &anthropic).unwrap();
    let body: Value = serde_json::from_slice(&up.body).unwrap();
    assert_eq!(body["tools"][0]["type"], "web_search_20250305");
    assert_eq!(body["model"], "claude");
    for kind in [ProviderKind::OpenAi, ProviderKind::Gemini] {
        let e = build_ingress_request(&req, &ProviderTarget::new(kind, "x")).unwrap_err();
        assert_eq!(e.status, 400);
        assert!(e.message.contains("tools.0"), "{}", e.message);
    }
}

#[test]
fn a_message_thread_passes_to_anthropic_and_is_refused_elsewhere_with_the_sdks_error_code() {
    // As the Anthropic SDK's tool runner sends a later turn: only the new messages, and the thread.
    let req = messages(json!({"model": "m", "max_tokens": 5,
        "thread": {"type": "continue", "previous_message_id": "msg_1"},
        "messages": [{"role": "user", "content": [
            {"type": "tool_result", "tool_use_id": "toolu_1", "content": "sunny"}]}]}))
    .unwrap();
    let anthropic = ProviderTarget::new(ProviderKind::Anthropic, "claude");
    let body: Value =
        serde_json::from_slice(&build_ingress_request(&req, &anthropic).unwrap().body).unwrap();
    assert_eq!(body["thread"]["previous_message_id"], "msg_1");
    for target in [
        ProviderTarget::new(ProviderKind::OpenAi, "x"),
        ProviderTarget::new(ProviderKind::Gemini, "x"),
        ProviderTarget::new(ProviderKind::Bedrock, "x"),
        // Claude on Vertex: Anthropic's body, but no threads.
        ProviderTarget::new(ProviderKind::Vertex, "claude-sonnet-4-5@20250929"),
    ] {
        let e = build_ingress_request(&req, &target).unwrap_err();
        assert_eq!(e.status, 400);
        let b = e.body();
        assert_eq!(b["error"]["type"], "invalid_request_error");
        assert_eq!(
            b["error"]["details"]["error_code"],
            "thread_unsupported_request"
        );
        assert_eq!(b["error"]["details"]["unsupported"], json!(["thread"]));
        assert!(b["error"]["message"]
            .as_str()
            .unwrap()
            .starts_with("thread: "));
    }
    // `thread: null`, and count_tokens, are not a thread.
    let plain = messages(json!({"model": "m", "max_tokens": 5, "thread": null,
        "messages": [{"role": "user", "content": "hi"}]}))
    .unwrap();
    assert!(plain.unsupported.is_none());
    let count = messages_in::parse_request(
        json!({"model": "m", "thread": {"type": "create"}, "messages": [{"role": "user", "content": "hi"}]})
            .to_string()
            .as_bytes(),
        None,
        None,
        true,
    )
    .unwrap();
    assert!(count.unsupported.is_none());
    // Other errors carry no details.
    assert!(AiError::invalid("x")
        .with_shape(ErrorShape::Anthropic)
        .body()["error"]
        .get("details")
        .is_none());
}

#[test]
fn native_body_keeps_everything_and_takes_the_clients_headers() {
    let body = json!({"model": "smart", "max_tokens": 50, "stream": true,
        "system": [{"type": "text", "text": "S", "cache_control": {"type": "ephemeral"}}],
        "messages": [{"role": "user", "content": [{"type": "text", "text": "hi",
            "cache_control": {"type": "ephemeral"}}]},
            {"role": "assistant", "content": [{"type": "thinking", "thinking": "t", "signature": "s"}]}],
        "thinking": {"type": "enabled", "budget_tokens": 1024}, "brand_new": {"x": 1}});
    let req = messages_in::parse_request(
        body.to_string().as_bytes(),
        Some("2026-10-21"),
        Some("context-1m-2025-08-07"),
        false,
    )
    .unwrap();
    let mut t = ProviderTarget::new(ProviderKind::Anthropic, "claude-x");
    t.base_url = "http://a".into();
    let up = build_ingress_request(&req, &t).unwrap();
    assert_eq!(up.url, "http://a/v1/messages");
    assert!(up.stream);
    let sent: Value = serde_json::from_slice(&up.body).unwrap();
    let mut want = body.clone();
    want["model"] = json!("claude-x");
    assert_eq!(sent, want);
    let h = up.headers_with_key(Some("K"));
    for (n, v) in [
        ("anthropic-version", "2026-10-21"),
        ("anthropic-beta", "context-1m-2025-08-07"),
        ("x-api-key", "K"),
        ("accept", "text/event-stream"),
    ] {
        assert!(h.contains(&(n.to_string(), v.to_string())), "{n}: {h:?}");
    }
    // The target's own version wins.
    t.api_version = Some("2023-06-01".into());
    let up = build_ingress_request(&req, &t).unwrap();
    assert!(up
        .headers
        .contains(&("anthropic-version".into(), "2023-06-01".into())));
    // count_tokens: only the fields that endpoint takes.
    let up = messages_in::build_native(&req, &t, true).unwrap();
    assert_eq!(up.url, "http://a/v1/messages/count_tokens");
    assert!(!up.stream);
    let sent: Value = serde_json::from_slice(&up.body).unwrap();
    let keys: Vec<&String> = sent.as_object().unwrap().keys().collect();
    assert_eq!(keys, ["messages", "model", "system", "thinking"]);
}

#[test]
fn decoration_reaches_the_native_body() {
    let mut native = json!({"system": "S", "messages": [{"role": "user", "content": "hi"}]})
        .as_object()
        .unwrap()
        .clone();
    messages_in::decorate_native(
        &mut native,
        &[
            Message::text("system", "Be brief."),
            Message::text("user", "Context."),
        ],
        &[Message::text("user", "Last.")],
    );
    assert_eq!(
        Value::Object(native),
        json!({"system": [{"type": "text", "text": "Be brief."}, {"type": "text", "text": "S"}],
               "messages": [{"role": "user", "content": "Context."},
                            {"role": "user", "content": "hi"},
                            {"role": "user", "content": "Last."}]})
    );
}

#[test]
fn native_answers_pass_through_with_their_usage() {
    let t = ProviderTarget::new(ProviderKind::Anthropic, "claude");
    let req = messages(json!({"model": "m", "max_tokens": 5, "messages": []})).unwrap();
    let body = br#"{"id":"msg_1","type":"message","role":"assistant","model":"claude-x","content":[{"type":"text","text":"hi","citations":[{"type":"char_location"}]}],"stop_reason":"end_turn","usage":{"input_tokens":5,"cache_read_input_tokens":3,"output_tokens":2}}"#;
    let a = parse_ingress_response(&req, &t, 200, body, &ctx("msg_1")).unwrap();
    let IngressAnswer::Body {
        body: out,
        usage,
        model,
    } = a
    else {
        panic!()
    };
    assert_eq!(out, body.to_vec(), "byte for byte");
    assert_eq!(usage.unwrap().prompt_tokens, 8);
    assert_eq!(model.as_deref(), Some("claude-x"));
    let e = parse_ingress_response(&req, &t, 200, b"{}", &ctx("m")).unwrap_err();
    assert_eq!(e.status, 502);
    let e = parse_ingress_response(
        &req,
        &t,
        429,
        br#"{"type":"error","error":{"type":"rate_limit_error","message":"slow down"}}"#,
        &ctx("m"),
    )
    .unwrap_err();
    assert_eq!((e.status, e.message.as_str()), (429, "slow down"));
}

#[test]
fn count_tokens_estimate_grows_with_the_request() {
    let small = messages_in::parse_request(
        br#"{"model": "m", "messages": [{"role": "user", "content": "hi"}]}"#,
        None,
        None,
        true,
    )
    .unwrap();
    let big = messages_in::parse_request(
        json!({"model": "m", "system": "You are helpful and answer every question at length.",
               "messages": [{"role": "user", "content": "hi ".repeat(100)}],
               "tools": [{"name": "f", "input_schema": {"type": "object"}}]})
        .to_string()
        .as_bytes(),
        None,
        None,
        true,
    )
    .unwrap();
    let (s, b) = (
        messages_in::estimate_input_tokens(&small),
        messages_in::estimate_input_tokens(&big),
    );
    assert!((1..10).contains(&s), "{s}");
    assert!(b > s + 75, "{b}");
}

#[test]
fn responses_refuses_what_needs_storage() {
    for (body, param) in [
        (
            json!({"model": "m", "input": "x", "previous_response_id": "resp_1"}),
            "previous_response_id",
        ),
        (
            json!({"model": "m", "input": "x", "conversation": "conv_1"}),
            "conversation",
        ),
        (
            json!({"model": "m", "input": "x", "background": true}),
            "background",
        ),
    ] {
        let e = responses(body).unwrap_err();
        assert_eq!((e.status, e.param.as_deref()), (400, Some(param)));
        assert_eq!(e.code.as_deref(), Some("stateless_gateway"));
        assert!(e.message.contains("stores no responses"), "{}", e.message);
        assert_eq!(e.body()["error"]["type"], "invalid_request_error");
    }
    let e = responses(json!({"model": "m", "input": [{"type": "item_reference", "id": "x"}]}))
        .unwrap_err();
    assert_eq!(e.code.as_deref(), Some("stateless_gateway"));
    // store is accepted either way.
    for store in [true, false] {
        assert!(responses(json!({"model": "m", "input": "x", "store": store})).is_ok());
    }
}

#[test]
fn malformed_responses_bodies_are_400s_naming_the_param() {
    for (body, param) in [
        (json!({"model": "m"}), "input"),
        (json!({"model": 3, "input": "x"}), "model"),
        (json!({"model": "m", "input": 3}), "input"),
        (
            json!({"model": "m", "input": [{"content": "x"}]}),
            "input[0].role",
        ),
        (
            json!({"model": "m", "input": [{"role": "robot", "content": "x"}]}),
            "input[0].role",
        ),
        (
            json!({"model": "m", "input": [{"role": "user", "content": [{"type": "input_audio"}]}]}),
            "input[0].content[0].type",
        ),
        (
            json!({"model": "m", "input": [{"type": "function_call", "name": "f"}]}),
            "input[0].call_id",
        ),
        (
            json!({"model": "m", "input": [{"type": "function_call_output", "call_id": "c"}]}),
            "input[0].output",
        ),
        (
            json!({"model": "m", "input": [{"type": "web_search_call"}]}),
            "input[0].type",
        ),
        (
            json!({"model": "m", "input": "x", "tools": [{"type": "web_search"}]}),
            "tools[0].type",
        ),
        (
            json!({"model": "m", "input": "x", "tools": [{"type": "function"}]}),
            "tools[0].name",
        ),
        (
            json!({"model": "m", "input": "x", "tool_choice": "sometimes"}),
            "tool_choice",
        ),
        (
            json!({"model": "m", "input": "x", "text": {"format": {"type": "json_schema"}}}),
            "text.format.schema",
        ),
        (
            json!({"model": "m", "input": "x", "text": {"format": {"type": "xml"}}}),
            "text.format.type",
        ),
        (
            json!({"model": "m", "input": "x", "max_output_tokens": -1}),
            "max_output_tokens",
        ),
    ] {
        let e = responses(body.clone()).expect_err(&body.to_string());
        assert_eq!(
            (e.status, e.param.as_deref()),
            (400, Some(param)),
            "{body}: {e}"
        );
        assert_eq!(e.shape, ErrorShape::OpenAi);
    }
    let e = responses_in::parse_request(b"{").unwrap_err();
    assert_eq!(e.status, 400);
}

#[test]
fn has_content_ignores_errors_pings_and_done() {
    let t = StreamTranslator::new(&ProviderTarget::new(ProviderKind::OpenAi, "m"), ctx("x"));
    assert!(!t.has_content(b"data: {\"error\":{\"message\":\"x\"}}\n\ndata: [DONE]\n\n"));
    assert!(!t.has_content(
        b"event: error\ndata: {\"type\":\"error\",\"error\":{\"type\":\"overloaded_error\"}}\n\n"
    ));
    assert!(!t.has_content(b"event: ping\ndata: {\"type\": \"ping\"}\n\n"));
    assert!(!t.has_content(
        b"event: error\ndata: {\"code\":\"x\",\"sequence_number\":0,\"type\":\"error\"}\n\n"
    ));
    assert!(t.has_content(b"event: message_start\ndata: {\"type\":\"message_start\"}\n\n"));
    assert!(t.has_content(b"data: {\"choices\":[]}\n\n"));
}

#[test]
fn an_overloaded_first_event_is_retryable_for_every_client_format() {
    let stream = b"event: error\ndata: {\"type\":\"error\",\"error\":{\"type\":\"overloaded_error\",\"message\":\"Overloaded\"}}\n\n";
    let t = ProviderTarget::new(ProviderKind::Anthropic, "m");
    for req in [
        messages(json!({"model": "m", "max_tokens": 5, "stream": true, "messages": []})).unwrap(),
        responses(json!({"model": "m", "stream": true, "input": "x"})).unwrap(),
        IngressRequest::chat(ChatRequest::default()),
    ] {
        let mut tr = StreamTranslator::for_ingress(&req, &t, ctx("x"));
        let out = tr.push(stream);
        let e = tr.error().expect("error recorded");
        assert!(e.retryable, "{:?}", req.format);
        assert!(
            !tr.has_content(&out),
            "{:?}: {}",
            req.format,
            String::from_utf8_lossy(&out)
        );
    }
}

#[test]
fn rfc3339_dates() {
    assert_eq!(rfc3339(0), "1970-01-01T00:00:00Z");
    assert_eq!(rfc3339(1_700_000_000), "2023-11-14T22:13:20Z");
    assert_eq!(rfc3339(951_782_400), "2000-02-29T00:00:00Z");
}

#[test]
fn model_info_finds_aliases_and_provider_models() {
    let cfg = AiProxyConfig::compile(&json!({
        "providers": {"oai": {"kind": "openai", "base_url": "http://x/v1"}},
        "models": {"fast": "oai/gpt-4o-mini"}
    }))
    .unwrap();
    assert_eq!(cfg.model_info("fast", 5).unwrap().owned_by, "edgegate");
    assert_eq!(
        cfg.model_info("oai/gpt-4o-mini", 5).unwrap().owned_by,
        "oai"
    );
    assert_eq!(cfg.model_info("oai/other", 5).unwrap().id, "oai/other");
    for missing in ["nope", "zz/model", "oai"] {
        let e = cfg.model_info(missing, 5).unwrap_err();
        assert_eq!(
            (e.status, e.code.as_deref()),
            (404, Some("model_not_found"))
        );
    }
    let strict = AiProxyConfig::compile(&json!({
        "providers": {"oai": {"kind": "openai", "base_url": "http://x/v1"}},
        "models": {"fast": "oai/gpt-4o-mini"}, "allow_provider_models": false
    }))
    .unwrap();
    assert!(strict.model_info("oai/other", 5).is_err());
}

#[test]
fn gemini_counts_the_translated_request() {
    let req = messages_in::parse_request(
        br#"{"model": "m", "system": "S", "messages": [{"role": "user", "content": "hi"}],
             "tools": [{"name": "f", "input_schema": {"type": "object"}}]}"#,
        None,
        None,
        true,
    )
    .unwrap();
    let mut t = ProviderTarget::new(ProviderKind::Gemini, "gemini-x");
    t.base_url = "http://g".into();
    let up = gemini::build_count_tokens_request(&req.chat, &t).unwrap();
    assert_eq!(up.url, "http://g/v1beta/models/gemini-x:countTokens");
    let body: Value = serde_json::from_slice(&up.body).unwrap();
    let inner = &body["generateContentRequest"];
    assert_eq!(inner["model"], "models/gemini-x");
    assert_eq!(inner["systemInstruction"]["parts"][0]["text"], "S");
    assert_eq!(inner["contents"][0]["parts"][0]["text"], "hi");
    assert!(inner["tools"][0]["functionDeclarations"].is_array());
    assert_eq!(
        gemini::parse_count_tokens(&t, br#"{"totalTokens": 12}"#).unwrap(),
        12
    );
    assert_eq!(
        gemini::parse_count_tokens(&t, b"{}").unwrap_err().status,
        502
    );
}

/// Chat chunks with parallel tool calls whose pieces interleave (call 0 goes on after call 1 started,
/// text comes in between), as some providers stream them.
fn interleaved_chunks() -> Vec<u8> {
    let chunk = |delta: Value, finish: Value| {
        format!(
            "data: {}\n\n",
            json!({"id": "c", "object": "chat.completion.chunk", "created": 1, "model": "m",
                   "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]})
        )
    };
    let call = |index: u32, id: Option<&str>, name: Option<&str>, args: &str| {
        let mut f = json!({"arguments": args});
        if let Some(n) = name {
            f["name"] = json!(n);
        }
        let mut c = json!({"index": index, "function": f});
        if let Some(i) = id {
            c["id"] = json!(i);
            c["type"] = json!("function");
        }
        json!({"tool_calls": [c]})
    };
    [
        chunk(
            json!({"role": "assistant", "content": "Checking."}),
            Value::Null,
        ),
        chunk(
            call(0, Some("call_a"), Some("weather"), "{\"city\":"),
            Value::Null,
        ),
        chunk(
            call(1, Some("call_b"), Some("time"), "{\"tz\":"),
            Value::Null,
        ),
        chunk(call(0, None, None, "\"Paris\"}"), Value::Null),
        chunk(json!({"content": " Done."}), Value::Null),
        chunk(call(1, None, None, "\"CET\"}"), Value::Null),
        chunk(json!({}), json!("tool_calls")),
        "data: [DONE]\n\n".to_string(),
    ]
    .concat()
    .into_bytes()
}

fn sse_events(bytes: &[u8]) -> Vec<Value> {
    String::from_utf8(bytes.to_vec())
        .unwrap()
        .split("\n\n")
        .filter_map(|e| e.lines().find_map(|l| l.strip_prefix("data: ")))
        .map(|d| serde_json::from_str(d).unwrap())
        .collect()
}

/// docs/ai.md: interleaved pieces of parallel tool calls all reach a Messages client, in blocks that
/// are opened, filled and closed one after the other (none written to after its `content_block_stop`).
#[test]
fn interleaved_tool_call_pieces_reach_a_messages_client_in_sequential_blocks() {
    let mut out = Vec::new();
    let mut t = messages_in::MessagesOut::new(&ctx("r1"));
    t.push(&interleaved_chunks(), &mut out);
    t.finish(&mut out);
    let events = sse_events(&out);
    // Every block is started, written and stopped before the next one starts.
    let mut open: Option<u64> = None;
    let mut blocks: Vec<(Value, String)> = Vec::new();
    for e in &events {
        match e["type"].as_str().unwrap() {
            "content_block_start" => {
                assert_eq!(open, None, "{e} while a block is open");
                let i = e["index"].as_u64().unwrap();
                assert_eq!(i as usize, blocks.len());
                open = Some(i);
                blocks.push((e["content_block"].clone(), String::new()));
            }
            "content_block_delta" => {
                let i = e["index"].as_u64().unwrap();
                assert_eq!(open, Some(i), "{e} outside its block");
                let d = &e["delta"];
                let piece = d["text"].as_str().or(d["partial_json"].as_str()).unwrap();
                blocks[i as usize].1.push_str(piece);
            }
            "content_block_stop" => {
                assert_eq!(open, e["index"].as_u64(), "{e}");
                open = None;
            }
            _ => {}
        }
    }
    assert_eq!(open, None);
    let summary: Vec<(String, String, String)> = blocks
        .iter()
        .map(|(b, content)| {
            let kind = b["type"].as_str().unwrap().to_string();
            let name = b["name"].as_str().unwrap_or_default().to_string();
            (kind, name, content.clone())
        })
        .collect();
    let s = |a: &str, b: &str, c: &str| (a.to_string(), b.to_string(), c.to_string());
    assert_eq!(
        summary,
        [
            s("text", "", "Checking."),
            s("tool_use", "weather", "{\"city\":\"Paris\"}"),
            // Held back until the first call's arguments were complete; in the order they started.
            s("tool_use", "time", "{\"tz\":\"CET\"}"),
            s("text", "", " Done."),
        ]
    );
    assert_eq!(blocks[2].0["id"], "call_b");
    // Each call's pieces as the provider sent them, one delta each.
    let deltas = |i: u64| {
        events
            .iter()
            .filter(|e| e["type"] == "content_block_delta" && e["index"] == i)
            .count()
    };
    assert_eq!((deltas(1), deltas(2)), (2, 2));
    let delta = events
        .iter()
        .find(|e| e["type"] == "message_delta")
        .unwrap();
    assert_eq!(delta["delta"]["stop_reason"], "tool_use");
    assert_eq!(events.last().unwrap()["type"], "message_stop");
}

/// docs/ai.md: interleaved pieces of parallel tool calls all reach a Responses client: each function
/// call item gets all of its arguments, none after its `response.output_item.done`.
#[test]
fn interleaved_tool_call_pieces_reach_a_responses_client_whole() {
    let req = responses(json!({"model": "smart", "input": "hi", "stream": true})).unwrap();
    let mut out = Vec::new();
    let mut t = responses_in::ResponsesOut::new(&req, &ctx("r2"));
    t.push(&interleaved_chunks(), &mut out);
    t.finish(&mut out);
    let events = sse_events(&out);
    let mut done: Vec<u64> = Vec::new();
    let mut args: std::collections::BTreeMap<u64, String> = Default::default();
    for e in &events {
        let i = e["output_index"].as_u64();
        match e["type"].as_str().unwrap() {
            "response.function_call_arguments.delta" | "response.output_text.delta" => {
                let i = i.unwrap();
                assert!(!done.contains(&i), "{e} after its item is done");
                args.entry(i)
                    .or_default()
                    .push_str(e["delta"].as_str().unwrap());
            }
            "response.output_item.done" => done.push(i.unwrap()),
            _ => {}
        }
    }
    let completed = events.last().unwrap();
    assert_eq!(completed["type"], "response.completed");
    let output = completed["response"]["output"].as_array().unwrap();
    let calls: Vec<(&str, &str, &str)> = output
        .iter()
        .filter(|o| o["type"] == "function_call")
        .map(|o| {
            (
                o["call_id"].as_str().unwrap(),
                o["name"].as_str().unwrap(),
                o["arguments"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        calls,
        [
            ("call_a", "weather", "{\"city\":\"Paris\"}"),
            ("call_b", "time", "{\"tz\":\"CET\"}"),
        ]
    );
    // The streamed deltas add up to the same arguments and texts.
    for (i, o) in output.iter().enumerate() {
        let streamed = args.get(&(i as u64)).cloned().unwrap_or_default();
        let whole = match o["type"].as_str().unwrap() {
            "function_call" => o["arguments"].as_str().unwrap().to_string(),
            _ => o["content"][0]["text"].as_str().unwrap().to_string(),
        };
        assert_eq!(streamed, whole, "output[{i}]");
    }
    assert_eq!(done.len(), output.len());
}

#[test]
fn tool_arguments_are_complete_once_their_json_closes() {
    let complete = |pieces: &[&str]| {
        let mut p = messages_in::JsonProgress::default();
        pieces.iter().for_each(|s| p.feed(s));
        p.complete()
    };
    assert!(!complete(&[]));
    assert!(!complete(&[""]));
    assert!(!complete(&["{\"a\":"]));
    assert!(complete(&["{\"a\":", " 1}"]));
    assert!(complete(&["{}"]));
    // Braces and quotes inside strings do not count.
    assert!(!complete(&["{\"a\": \"}\\\"{\""]));
    assert!(complete(&["{\"a\": \"}\\\"{\"", "}"]));
    assert!(complete(&["[1, {\"b\": [2]}]"]));
}
