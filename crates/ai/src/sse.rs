//! Incremental Server-Sent Events parser (WHATWG HTML "event stream interpretation"): bytes in, events out.
//!
//! Lines end with `\r\n`, `\n` or `\r`, and any of them may be split across chunks (a `\r` at the end of
//! one chunk followed by `\n` at the start of the next is one line ending). Bytes are buffered until a
//! line is complete, so a UTF-8 sequence split across chunks decodes correctly; invalid UTF-8 becomes
//! U+FFFD. Comments (`:` lines) are skipped, `data` lines of one event are joined with `\n`, an event is
//! dispatched at a blank line and only if it has data. A UTF-8 BOM at the very start is skipped. Unlike
//! a browser, [`SseParser::finish`] also dispatches a last event that lacks its blank line, so a provider
//! that closes the stream right after its last `data:` line loses nothing.
//!
//! Memory is bounded: a line, or the data of one event, longer than the parser's limit
//! ([`MAX_EVENT_BYTES`] by default, [`SseParser::with_limit`]) stops the parser. It dispatches one
//! synthetic error event ([`SseParser::overflowed`] turns true) whose data every stream translator
//! understands (`{"type":"error","error":{...}}`, code `upstream_event_too_large`), and ignores the
//! rest of the stream.

/// One dispatched event.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct SseEvent {
    /// The `event:` field, if any (`None` means the default, `message`).
    pub event: Option<String>,
    /// The `data:` lines joined with `\n`.
    pub data: String,
    /// The `id:` field, if any.
    pub id: Option<String>,
}

/// Default cap on one line and on the data of one event (8 MiB: room for inline images).
pub const MAX_EVENT_BYTES: usize = 8 << 20;

/// The parser's state between chunks.
#[derive(Debug)]
pub struct SseParser {
    /// Cap on one line and on one event's data.
    limit: usize,
    /// The cap was exceeded: everything after is ignored.
    overflowed: bool,
    line: Vec<u8>,
    /// The previous chunk ended with `\r`: a `\n` at the start of the next one belongs to it.
    after_cr: bool,
    /// Number of bytes seen so far (for BOM detection).
    seen: u64,
    data: String,
    has_data: bool,
    event: Option<String>,
    id: Option<String>,
}

impl Default for SseParser {
    fn default() -> Self {
        SseParser::with_limit(MAX_EVENT_BYTES)
    }
}

impl SseParser {
    pub fn new() -> SseParser {
        SseParser::default()
    }

    /// A parser whose lines and events may not exceed `limit` bytes.
    pub fn with_limit(limit: usize) -> SseParser {
        SseParser {
            limit,
            overflowed: false,
            line: Vec::new(),
            after_cr: false,
            seen: 0,
            data: String::new(),
            has_data: false,
            event: None,
            id: None,
        }
    }

    /// Whether a line or event exceeded the limit (the stream was cut there).
    pub fn overflowed(&self) -> bool {
        self.overflowed
    }

    /// Stop parsing and dispatch the synthetic error event.
    fn overflow(&mut self, f: &mut impl FnMut(SseEvent)) {
        self.overflowed = true;
        self.line = Vec::new();
        self.data = String::new();
        self.has_data = false;
        let message = format!(
            "an event from the provider exceeded the gateway's limit of {} bytes",
            self.limit
        );
        let data = serde_json::json!({"type": "error", "error": {
            "type": "upstream_event_too_large", "status": "upstream_event_too_large",
            "code": 502, "message": message}});
        f(SseEvent {
            event: Some("error".to_string()),
            data: data.to_string(),
            id: self.id.clone(),
        });
    }

    /// Feed bytes; returns the events completed by them, in order.
    pub fn push(&mut self, bytes: &[u8]) -> Vec<SseEvent> {
        let mut out = Vec::new();
        self.push_with(bytes, |e| out.push(e));
        out
    }

    /// Feed bytes, calling `f` for each completed event (no intermediate vector).
    pub fn push_with(&mut self, mut bytes: &[u8], mut f: impl FnMut(SseEvent)) {
        if self.overflowed {
            return;
        }
        if self.seen < 3 {
            // Skip a BOM (EF BB BF) at the very start, even when split across chunks.
            const BOM: [u8; 3] = [0xEF, 0xBB, 0xBF];
            while self.seen < 3 && !bytes.is_empty() {
                let i = self.seen as usize;
                if self.line.len() == i && bytes[0] == BOM[i] {
                    self.line.push(bytes[0]);
                    bytes = &bytes[1..];
                    self.seen += 1;
                    if self.seen == 3 {
                        self.line.clear();
                    }
                } else {
                    self.seen = u64::MAX; // not a BOM: whatever was buffered stays as line content
                }
            }
        }
        if self.after_cr && !bytes.is_empty() {
            self.after_cr = false;
            if bytes[0] == b'\n' {
                bytes = &bytes[1..];
            }
        }
        while !bytes.is_empty() {
            match bytes.iter().position(|&b| b == b'\n' || b == b'\r') {
                None => {
                    if self.line.len() + bytes.len() > self.limit {
                        self.overflow(&mut f);
                    } else {
                        self.line.extend_from_slice(bytes);
                    }
                    return;
                }
                Some(i) => {
                    let end = bytes[i];
                    if self.line.len() + i > self.limit {
                        self.overflow(&mut f);
                        return;
                    }
                    if self.line.is_empty() {
                        self.process_line_slice(&bytes[..i], &mut f);
                    } else {
                        self.line.extend_from_slice(&bytes[..i]);
                        let line = std::mem::take(&mut self.line);
                        self.process_line_slice(&line, &mut f);
                        self.line = line;
                        self.line.clear();
                    }
                    if self.overflowed {
                        return;
                    }
                    bytes = &bytes[i + 1..];
                    if end == b'\r' {
                        match bytes.first() {
                            Some(b'\n') => bytes = &bytes[1..],
                            Some(_) => {}
                            None => self.after_cr = true,
                        }
                    }
                }
            }
        }
    }

    /// End of stream: an unterminated last line is processed and a pending event with data dispatched.
    pub fn finish(&mut self) -> Vec<SseEvent> {
        let mut out = Vec::new();
        if self.overflowed {
            return out;
        }
        if !self.line.is_empty() {
            let line = std::mem::take(&mut self.line);
            self.process_line_slice(&line, &mut |e| out.push(e));
        }
        self.process_line_slice(b"", &mut |e| out.push(e));
        out
    }

    fn process_line_slice(&mut self, line: &[u8], f: &mut impl FnMut(SseEvent)) {
        if line.is_empty() {
            if self.has_data {
                let event = SseEvent {
                    event: self.event.take(),
                    data: std::mem::take(&mut self.data),
                    id: self.id.clone(),
                };
                self.has_data = false;
                f(event);
            } else {
                self.event = None;
                self.data.clear();
            }
            return;
        }
        if line[0] == b':' {
            return;
        }
        let (field, value) = match line.iter().position(|&b| b == b':') {
            Some(i) => {
                let v = &line[i + 1..];
                (&line[..i], v.strip_prefix(b" ").unwrap_or(v))
            }
            None => (line, &b""[..]),
        };
        match field {
            b"data" => {
                if self.data.len() + value.len() + 1 > self.limit {
                    self.overflow(f);
                    return;
                }
                if self.has_data {
                    self.data.push('\n');
                }
                self.data.push_str(&String::from_utf8_lossy(value));
                self.has_data = true;
            }
            b"event" => self.event = Some(String::from_utf8_lossy(value).into_owned()),
            b"id" if !value.contains(&0) => {
                self.id = Some(String::from_utf8_lossy(value).into_owned());
            }
            _ => {} // `retry` and unknown fields are ignored
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    #[cfg(target_arch = "wasm32")]
    use wasm_bindgen_test::wasm_bindgen_test as test;

    fn ev(event: Option<&str>, data: &str) -> SseEvent {
        SseEvent {
            event: event.map(str::to_string),
            data: data.to_string(),
            id: None,
        }
    }

    /// Parse `input` in one go, in every two-way split, and one byte at a time; all must agree.
    fn parse_all_ways(input: &[u8]) -> Vec<SseEvent> {
        let mut p = SseParser::new();
        let mut whole = p.push(input);
        whole.extend(p.finish());
        for cut in 0..=input.len() {
            let mut p = SseParser::new();
            let mut got = p.push(&input[..cut]);
            got.extend(p.push(&input[cut..]));
            got.extend(p.finish());
            assert_eq!(
                got,
                whole,
                "split at {cut} of {:?}",
                String::from_utf8_lossy(input)
            );
        }
        let mut p = SseParser::new();
        let mut got = Vec::new();
        for b in input {
            got.extend(p.push(std::slice::from_ref(b)));
        }
        got.extend(p.finish());
        assert_eq!(got, whole, "byte by byte");
        whole
    }

    #[test]
    fn line_endings_lf_crlf_cr_and_mixed() {
        for input in [
            &b"data: a\n\ndata: b\n\n"[..],
            b"data: a\r\n\r\ndata: b\r\n\r\n",
            b"data: a\r\rdata: b\r\r",
            b"data: a\r\n\rdata: b\n\r\n",
        ] {
            assert_eq!(
                parse_all_ways(input),
                vec![ev(None, "a"), ev(None, "b")],
                "{input:?}"
            );
        }
    }

    #[test]
    fn multi_line_data_and_event_names() {
        let got = parse_all_ways(
            b"event: message_start\ndata: {\"a\":\ndata: 1}\n\nevent: ping\ndata: {}\n\n",
        );
        assert_eq!(
            got,
            vec![
                ev(Some("message_start"), "{\"a\":\n1}"),
                ev(Some("ping"), "{}")
            ]
        );
    }

    #[test]
    fn comments_unknown_fields_and_empty_events_are_skipped() {
        let got = parse_all_ways(
            b": OPENROUTER PROCESSING\n\nretry: 100\nfoo: bar\n\nevent: x\n\ndata: y\n\n",
        );
        // `event: x` with no data is discarded, and its name does not leak into the next event.
        assert_eq!(got, vec![ev(None, "y")]);
    }

    #[test]
    fn field_value_spaces() {
        let got = parse_all_ways(b"data:no-space\n\ndata:  two\n\ndata\n\ndata:\n\n");
        assert_eq!(
            got,
            vec![
                ev(None, "no-space"),
                ev(None, " two"),
                ev(None, ""),
                ev(None, "")
            ]
        );
    }

    #[test]
    fn split_utf8_sequences() {
        let input = "data: héllo wörld 日本語 🎉\n\n".as_bytes();
        assert_eq!(
            parse_all_ways(input),
            vec![ev(None, "héllo wörld 日本語 🎉")]
        );
    }

    #[test]
    fn invalid_utf8_is_replaced_not_panicking() {
        let got = parse_all_ways(b"data: a\xff\xfeb\n\n");
        assert_eq!(got, vec![ev(None, "a\u{fffd}\u{fffd}b")]);
    }

    #[test]
    fn bom_skipped_only_at_start() {
        let got = parse_all_ways(b"\xEF\xBB\xBFdata: a\n\n");
        assert_eq!(got, vec![ev(None, "a")]);
        // A partial BOM is not a BOM: those bytes belong to the first line (an unknown field here).
        let got = parse_all_ways(b"\xEF\xBBdata: a\n\ndata: b\n\n");
        assert_eq!(got, vec![ev(None, "b")]);
    }

    #[test]
    fn last_event_without_blank_line_is_dispatched_at_finish() {
        assert_eq!(
            parse_all_ways(b"data: a\n\ndata: b"),
            vec![ev(None, "a"), ev(None, "b")]
        );
        assert_eq!(
            parse_all_ways(b"data: a\n\ndata: b\n"),
            vec![ev(None, "a"), ev(None, "b")]
        );
        assert_eq!(parse_all_ways(b"data: a\r"), vec![ev(None, "a")]);
        assert_eq!(parse_all_ways(b""), vec![]);
    }

    #[test]
    fn ids_persist() {
        let got = parse_all_ways(b"id: 7\ndata: a\n\ndata: b\n\n");
        assert_eq!(got[0].id.as_deref(), Some("7"));
        assert_eq!(got[1].id.as_deref(), Some("7"));
    }

    #[test]
    fn overlong_line_or_event_stops_the_parser_with_one_error_event() {
        // A line over the limit, whole or split anywhere: the events before it, then one error event,
        // then nothing (not even the well-formed event after it).
        let mut input = b"data: ok\n\ndata: ".to_vec();
        input.extend(std::iter::repeat_n(b'x', 100));
        input.extend_from_slice(b"\n\ndata: after\n\n");
        let run = |chunks: &mut dyn Iterator<Item = &[u8]>| {
            let mut p = SseParser::with_limit(64);
            let mut got = Vec::new();
            for c in chunks {
                got.extend(p.push(c));
            }
            got.extend(p.finish());
            assert!(p.overflowed());
            got
        };
        let whole = run(&mut std::iter::once(&input[..]));
        assert_eq!(whole.len(), 2, "{whole:?}");
        assert_eq!(whole[0], ev(None, "ok"));
        assert_eq!(whole[1].event.as_deref(), Some("error"));
        assert!(whole[1].data.contains("upstream_event_too_large"));
        assert_eq!(run(&mut input.chunks(1)), whole, "byte by byte");
        for cut in 0..=input.len() {
            let (a, b) = input.split_at(cut);
            assert_eq!(run(&mut [a, b].into_iter()), whole, "split at {cut}");
        }
        // Many short data lines adding up past the limit.
        let mut p = SseParser::with_limit(64);
        let mut got = p.push(&b"data: 0123456789\n".repeat(10));
        got.extend(p.finish());
        assert_eq!(got.len(), 1);
        assert!(p.overflowed());
        // The default limit leaves room for big events.
        let big = format!("data: {}\n\n", "y".repeat(1 << 20));
        assert_eq!(SseParser::new().push(big.as_bytes()).len(), 1);
    }

    #[test]
    fn overlong_event_becomes_an_openai_error_and_done_for_every_provider() {
        use crate::{ProviderKind, ProviderTarget, StreamContext, StreamTranslator};
        let huge = format!("data: {{\"x\": \"{}\"}}\n\n", "z".repeat(MAX_EVENT_BYTES));
        for kind in [
            ProviderKind::OpenAi,
            ProviderKind::Anthropic,
            ProviderKind::Gemini,
        ] {
            let ctx = StreamContext {
                id: "chatcmpl-1".into(),
                model: "m".into(),
                created: 1,
                include_usage: false,
                tool_call_seed: 7,
            };
            let mut t = StreamTranslator::new(&ProviderTarget::new(kind, "m"), ctx);
            let mut out = t.push(huge.as_bytes());
            out.extend(t.finish());
            let text = String::from_utf8(out).unwrap();
            assert!(text.contains("\"error\""), "{kind:?}: {text}");
            assert!(text.ends_with("data: [DONE]\n\n"), "{kind:?}: {text}");
            assert!(t.error().is_some(), "{kind:?}");
            assert!(
                text.len() < 4096,
                "{kind:?}: the oversized data is not echoed"
            );
        }
    }

    #[test]
    fn done_sentinel_is_plain_data() {
        assert_eq!(
            parse_all_ways(b"data: [DONE]\n\n"),
            vec![ev(None, "[DONE]")]
        );
    }
}
