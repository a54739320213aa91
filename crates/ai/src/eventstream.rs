//! Incremental parser of AWS's binary event stream (`application/vnd.amazon.eventstream`), the framing
//! of Bedrock's ConverseStream: bytes in, messages out, whatever the chunking.
//!
//! A message is: total length (u32, big-endian), headers length (u32), CRC32 of those 8 bytes (u32),
//! the headers, the payload, and a CRC32 of everything before it (u32). A header is a name (u8 length,
//! UTF-8), a type byte and a value: 0 true, 1 false, 2 byte, 3 short, 4 int, 5 long, 6 bytes (u16 length),
//! 7 string (u16 length), 8 timestamp (i64 ms), 9 UUID (16 bytes). Both CRCs (IEEE CRC-32, table-based,
//! no crate) are checked; a bad CRC, a length out of bounds or a malformed header is an
//! [`EventStreamError`], after which the parser ignores the rest of the stream (framing is lost).
//!
//! Memory is bounded: a message longer than [`MAX_MESSAGE_BYTES`] (AWS's own limit is 16 MiB) is an
//! error before its bytes are buffered.

/// Largest message accepted (prelude, headers, payload and CRC).
pub const MAX_MESSAGE_BYTES: usize = 16 << 20;
/// Prelude (12 bytes) plus the message CRC (4).
const OVERHEAD: usize = 16;

/// A header's value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HeaderValue {
    Bool(bool),
    Byte(i8),
    Short(i16),
    Int(i32),
    Long(i64),
    Bytes(Vec<u8>),
    String(String),
    /// Milliseconds since the Unix epoch.
    Timestamp(i64),
    Uuid([u8; 16]),
}

/// One message of the stream.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Message {
    pub headers: Vec<(String, HeaderValue)>,
    pub payload: Vec<u8>,
}

impl Message {
    /// The value of a string header (`:event-type`, `:message-type`, `:exception-type`, ...).
    pub fn header_str(&self, name: &str) -> Option<&str> {
        self.headers.iter().find_map(|(n, v)| match v {
            HeaderValue::String(s) if n == name => Some(s.as_str()),
            _ => None,
        })
    }
}

/// Why the stream could not be read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EventStreamError {
    /// The prelude's CRC does not match (expected, computed).
    PreludeCrc(u32, u32),
    /// The message's CRC does not match (expected, computed).
    MessageCrc(u32, u32),
    /// A total or headers length that cannot be (or a message over [`MAX_MESSAGE_BYTES`]).
    BadLength(usize),
    /// A header that cannot be read (what is wrong).
    BadHeader(&'static str),
    /// The stream ended inside a message (bytes of it received).
    Truncated(usize),
}

impl std::fmt::Display for EventStreamError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            EventStreamError::PreludeCrc(want, got) => write!(
                f,
                "event stream prelude CRC mismatch (expected {want:08x}, computed {got:08x})"
            ),
            EventStreamError::MessageCrc(want, got) => write!(
                f,
                "event stream message CRC mismatch (expected {want:08x}, computed {got:08x})"
            ),
            EventStreamError::BadLength(n) => {
                write!(f, "event stream message length {n} is invalid")
            }
            EventStreamError::BadHeader(what) => write!(f, "event stream header invalid: {what}"),
            EventStreamError::Truncated(n) => {
                write!(f, "event stream ended inside a message ({n} bytes of it)")
            }
        }
    }
}

/// A message as parsed, borrowing the parser's bytes (no allocation): what [`EventStreamParser::push_with`]
/// hands out. Its headers have been checked.
#[derive(Debug, Clone, Copy)]
pub struct MessageRef<'a> {
    headers: &'a [u8],
    pub payload: &'a [u8],
}

impl<'a> MessageRef<'a> {
    /// The value of a string header (`:event-type`, `:message-type`, `:exception-type`, ...).
    pub fn header_str(&self, name: &str) -> Option<&'a str> {
        let mut found = None;
        let _ = walk(self.headers, |n, t, v| {
            if found.is_none() && t == 7 && n == name.as_bytes() {
                found = std::str::from_utf8(v).ok();
            }
        });
        found
    }

    /// The message, owned, every header's value decoded.
    pub fn to_message(&self) -> Message {
        let mut headers = Vec::new();
        let _ = walk(self.headers, |n, t, v| {
            let value = match t {
                0 => HeaderValue::Bool(true),
                1 => HeaderValue::Bool(false),
                2 => HeaderValue::Byte(v[0] as i8),
                3 => HeaderValue::Short(i16::from_be_bytes([v[0], v[1]])),
                4 => HeaderValue::Int(i32::from_be_bytes([v[0], v[1], v[2], v[3]])),
                5 | 8 => {
                    let mut a = [0u8; 8];
                    a.copy_from_slice(v);
                    let n = i64::from_be_bytes(a);
                    if t == 5 {
                        HeaderValue::Long(n)
                    } else {
                        HeaderValue::Timestamp(n)
                    }
                }
                6 => HeaderValue::Bytes(v.to_vec()),
                7 => HeaderValue::String(String::from_utf8_lossy(v).into_owned()),
                _ => {
                    let mut a = [0u8; 16];
                    a.copy_from_slice(v);
                    HeaderValue::Uuid(a)
                }
            };
            headers.push((String::from_utf8_lossy(n).into_owned(), value));
        });
        Message {
            headers,
            payload: self.payload.to_vec(),
        }
    }
}

/// The parser's state between chunks.
#[derive(Debug, Default)]
pub struct EventStreamParser {
    /// The start of a message whose end has not arrived yet.
    buf: Vec<u8>,
    /// An error was returned: everything after is ignored.
    failed: bool,
}

impl EventStreamParser {
    pub fn new() -> EventStreamParser {
        EventStreamParser::default()
    }

    /// Whether the parser stopped on an error.
    pub fn failed(&self) -> bool {
        self.failed
    }

    /// Feed bytes; returns the messages they complete, then at most one error (the last item).
    pub fn push(&mut self, bytes: &[u8]) -> Vec<Result<Message, EventStreamError>> {
        let mut out = Vec::new();
        self.push_with(bytes, |m| out.push(m.map(|m| m.to_message())));
        out
    }

    /// Feed bytes; `f` gets each message they complete, in order, then at most one error. Only the
    /// start of an incomplete message is copied (into the parser's buffer).
    pub fn push_with(
        &mut self,
        bytes: &[u8],
        mut f: impl FnMut(Result<MessageRef<'_>, EventStreamError>),
    ) {
        if self.failed {
            return;
        }
        if self.buf.is_empty() {
            let used = self.parse(bytes, &mut f);
            if !self.failed {
                self.buf.extend_from_slice(&bytes[used..]);
            }
            return;
        }
        // Complete the buffered message first, copying no more than it needs (or the prelude).
        let mut rest = bytes;
        let need = |buf: &[u8]| -> usize {
            if buf.len() < 12 {
                12
            } else {
                (be32(&buf[0..4]) as usize).clamp(12, MAX_MESSAGE_BYTES + 1)
            }
        };
        while !rest.is_empty() {
            let want = need(&self.buf);
            let take = want.saturating_sub(self.buf.len()).min(rest.len());
            self.buf.extend_from_slice(&rest[..take]);
            rest = &rest[take..];
            if self.buf.len() < want {
                continue; // rest is empty
            }
            if self.buf.len() == 12 && need(&self.buf) > 12 {
                // Prelude complete: check it before buffering the rest of the message.
                let buf = std::mem::take(&mut self.buf);
                let used = self.parse(&buf, &mut f);
                if self.failed {
                    return;
                }
                debug_assert_eq!(used, 0);
                self.buf = buf;
                continue;
            }
            let buf = std::mem::take(&mut self.buf);
            let used = self.parse(&buf, &mut f);
            if self.failed {
                return;
            }
            debug_assert_eq!(used, buf.len());
            let mut buf = buf;
            buf.clear();
            self.buf = buf;
            break;
        }
        if rest.is_empty() {
            return;
        }
        let used = self.parse(rest, &mut f);
        if !self.failed {
            self.buf.extend_from_slice(&rest[used..]);
        }
    }

    /// Parse the whole messages at the start of `data`; returns the bytes they took. An error is
    /// passed to `f` and stops the parser.
    fn parse(
        &mut self,
        data: &[u8],
        f: &mut impl FnMut(Result<MessageRef<'_>, EventStreamError>),
    ) -> usize {
        let mut pos = 0;
        loop {
            let rest = &data[pos..];
            if rest.len() < 12 {
                return pos;
            }
            let total = be32(&rest[0..4]) as usize;
            let headers_len = be32(&rest[4..8]) as usize;
            let prelude_crc = be32(&rest[8..12]);
            let computed = crc32(&rest[..8]);
            let error = if computed != prelude_crc {
                Some(EventStreamError::PreludeCrc(prelude_crc, computed))
            } else if !(OVERHEAD..=MAX_MESSAGE_BYTES).contains(&total)
                || headers_len > total - OVERHEAD
            {
                Some(EventStreamError::BadLength(total))
            } else if rest.len() < total {
                return pos;
            } else {
                let msg = &rest[..total];
                let message_crc = be32(&msg[total - 4..]);
                let computed = crc32(&msg[..total - 4]);
                let headers = &msg[12..12 + headers_len];
                if computed != message_crc {
                    Some(EventStreamError::MessageCrc(message_crc, computed))
                } else if let Err(e) = walk(headers, |_, _, _| {}) {
                    Some(e)
                } else {
                    f(Ok(MessageRef {
                        headers,
                        payload: &msg[12 + headers_len..total - 4],
                    }));
                    pos += total;
                    None
                }
            };
            if let Some(e) = error {
                self.failed = true;
                self.buf = Vec::new();
                f(Err(e));
                return pos;
            }
        }
    }

    /// The stream ended: an error when it ended inside a message.
    pub fn finish(&mut self) -> Option<EventStreamError> {
        if self.failed || self.buf.is_empty() {
            return None;
        }
        self.failed = true;
        let left = std::mem::take(&mut self.buf).len();
        Some(EventStreamError::Truncated(left))
    }
}

fn be32(b: &[u8]) -> u32 {
    u32::from_be_bytes([b[0], b[1], b[2], b[3]])
}

/// Walk a message's headers: `f(name, type, value bytes)` for each (a string's or bytes' content without
/// its length; a fixed-size value's bytes; nothing for booleans). An error when one runs past the
/// section, has an empty or non-UTF-8 name or string, or an unknown type.
fn walk<'a>(
    mut b: &'a [u8],
    mut f: impl FnMut(&'a [u8], u8, &'a [u8]),
) -> Result<(), EventStreamError> {
    fn take<'a>(b: &mut &'a [u8], n: usize) -> Result<&'a [u8], EventStreamError> {
        if b.len() < n {
            return Err(EventStreamError::BadHeader("runs past the headers"));
        }
        let (head, tail) = b.split_at(n);
        *b = tail;
        Ok(head)
    }
    while !b.is_empty() {
        let name_len = take(&mut b, 1)?[0] as usize;
        if name_len == 0 {
            return Err(EventStreamError::BadHeader("empty name"));
        }
        let name = take(&mut b, name_len)?;
        if std::str::from_utf8(name).is_err() {
            return Err(EventStreamError::BadHeader("name is not UTF-8"));
        }
        let t = take(&mut b, 1)?[0];
        let value = match t {
            0 | 1 => &b[..0],
            2 => take(&mut b, 1)?,
            3 => take(&mut b, 2)?,
            4 => take(&mut b, 4)?,
            5 | 8 => take(&mut b, 8)?,
            9 => take(&mut b, 16)?,
            6 | 7 => {
                let len = take(&mut b, 2)?;
                let v = take(&mut b, u16::from_be_bytes([len[0], len[1]]) as usize)?;
                if t == 7 && std::str::from_utf8(v).is_err() {
                    return Err(EventStreamError::BadHeader("string value is not UTF-8"));
                }
                v
            }
            _ => return Err(EventStreamError::BadHeader("unknown value type")),
        };
        f(name, t, value);
    }
    Ok(())
}

/// Encode a message with string headers (tests, benches, fixtures).
pub fn encode(headers: &[(&str, &str)], payload: &[u8]) -> Vec<u8> {
    let mut h = Vec::new();
    for (name, value) in headers {
        h.push(name.len() as u8);
        h.extend_from_slice(name.as_bytes());
        h.push(7);
        h.extend_from_slice(&(value.len() as u16).to_be_bytes());
        h.extend_from_slice(value.as_bytes());
    }
    let total = OVERHEAD + h.len() + payload.len();
    let mut out = Vec::with_capacity(total);
    out.extend_from_slice(&(total as u32).to_be_bytes());
    out.extend_from_slice(&(h.len() as u32).to_be_bytes());
    let prelude_crc = crc32(&out);
    out.extend_from_slice(&prelude_crc.to_be_bytes());
    out.extend_from_slice(&h);
    out.extend_from_slice(payload);
    let crc = crc32(&out);
    out.extend_from_slice(&crc.to_be_bytes());
    out
}

/// CRC-32 (IEEE 802.3, reflected, polynomial 0xEDB88320), as zlib's `crc32`.
pub fn crc32(bytes: &[u8]) -> u32 {
    const TABLE: [u32; 256] = {
        let mut t = [0u32; 256];
        let mut i = 0;
        while i < 256 {
            let mut c = i as u32;
            let mut k = 0;
            while k < 8 {
                c = if c & 1 != 0 {
                    0xEDB8_8320 ^ (c >> 1)
                } else {
                    c >> 1
                };
                k += 1;
            }
            t[i] = c;
            i += 1;
        }
        t
    };
    let mut c = !0u32;
    for &b in bytes {
        c = TABLE[((c ^ b as u32) & 0xFF) as usize] ^ (c >> 8);
    }
    !c
}

#[cfg(test)]
mod tests {
    use super::*;
    #[cfg(target_arch = "wasm32")]
    use wasm_bindgen_test::wasm_bindgen_test as test;

    // aws-c-event-stream tests/message_deserializer_test.c.
    const NO_OP: &[u8] = &[
        0x00, 0x00, 0x00, 0x10, 0x00, 0x00, 0x00, 0x00, 0x05, 0xc2, 0x48, 0xeb, 0x7d, 0x98, 0xc8,
        0xff,
    ];
    const NO_HEADERS: &[u8] = &[
        0x00, 0x00, 0x00, 0x1D, 0x00, 0x00, 0x00, 0x00, 0xfd, 0x52, 0x8c, 0x5a, 0x7b, 0x27, 0x66,
        0x6f, 0x6f, 0x27, 0x3a, 0x27, 0x62, 0x61, 0x72, 0x27, 0x7d, 0xc3, 0x65, 0x39, 0x36,
    ];
    fn one_header() -> Vec<u8> {
        let mut v = vec![
            0x00, 0x00, 0x00, 0x3D, 0x00, 0x00, 0x00, 0x20, 0x07, 0xFD, 0x83, 0x96, 0x0C,
        ];
        v.extend_from_slice(b"content-type");
        v.extend_from_slice(&[0x07, 0x00, 0x10]);
        v.extend_from_slice(b"application/json");
        v.extend_from_slice(b"{'foo':'bar'}");
        v.extend_from_slice(&[0x8D, 0x9C, 0x08, 0xB1]);
        v
    }

    fn parse_all(pieces: &[&[u8]]) -> Vec<Result<Message, EventStreamError>> {
        let mut p = EventStreamParser::new();
        let mut out = Vec::new();
        for piece in pieces {
            out.extend(p.push(piece));
        }
        out.extend(p.finish().map(Err));
        out
    }

    #[test]
    fn crc32_check_value() {
        assert_eq!(crc32(b"123456789"), 0xCBF4_3926);
        assert_eq!(crc32(b""), 0);
    }

    #[test]
    fn aws_vectors() {
        let got = parse_all(&[NO_OP, NO_HEADERS, &one_header()]);
        assert_eq!(
            got,
            vec![
                Ok(Message::default()),
                Ok(Message {
                    headers: vec![],
                    payload: b"{'foo':'bar'}".to_vec()
                }),
                Ok(Message {
                    headers: vec![(
                        "content-type".into(),
                        HeaderValue::String("application/json".into())
                    )],
                    payload: b"{'foo':'bar'}".to_vec()
                }),
            ]
        );
        // Our encoder writes the same bytes.
        assert_eq!(encode(&[], b"{'foo':'bar'}"), NO_HEADERS);
        assert_eq!(
            encode(&[("content-type", "application/json")], b"{'foo':'bar'}"),
            one_header()
        );
    }

    fn all_types() -> Vec<u8> {
        let mut h = Vec::new();
        let mut put = |name: &str, t: u8, v: &[u8]| {
            h.push(name.len() as u8);
            h.extend_from_slice(name.as_bytes());
            h.push(t);
            h.extend_from_slice(v);
        };
        put("t", 0, &[]);
        put("f", 1, &[]);
        put("b", 2, &[0xFF]);
        put("s", 3, &[0x01, 0x02]);
        put("i", 4, &[0, 0, 1, 0]);
        put("l", 5, &[0, 0, 0, 0, 0, 0, 0, 7]);
        put("by", 6, &[0, 2, 0xAB, 0xCD]);
        put(":event-type", 7, &[0, 5, b'h', b'e', b'l', b'l', b'o']);
        put("ts", 8, &[0, 0, 0, 0, 0, 0, 3, 0xE8]);
        put("u", 9, &[7; 16]);
        let total = OVERHEAD + h.len() + 2;
        let mut out = Vec::new();
        out.extend_from_slice(&(total as u32).to_be_bytes());
        out.extend_from_slice(&(h.len() as u32).to_be_bytes());
        let c = crc32(&out);
        out.extend_from_slice(&c.to_be_bytes());
        out.extend_from_slice(&h);
        out.extend_from_slice(b"{}");
        let c = crc32(&out);
        out.extend_from_slice(&c.to_be_bytes());
        out
    }

    #[test]
    fn every_header_type_is_read() {
        let got = parse_all(&[&all_types()]);
        let m = got[0].clone().unwrap();
        assert_eq!(m.header_str(":event-type"), Some("hello"));
        assert_eq!(
            m.headers.iter().map(|(_, v)| v.clone()).collect::<Vec<_>>(),
            vec![
                HeaderValue::Bool(true),
                HeaderValue::Bool(false),
                HeaderValue::Byte(-1),
                HeaderValue::Short(0x0102),
                HeaderValue::Int(256),
                HeaderValue::Long(7),
                HeaderValue::Bytes(vec![0xAB, 0xCD]),
                HeaderValue::String("hello".into()),
                HeaderValue::Timestamp(1000),
                HeaderValue::Uuid([7; 16]),
            ]
        );
        assert_eq!(m.payload, b"{}");
        assert_eq!(got.len(), 1);
    }

    #[test]
    fn same_messages_however_split() {
        let mut stream = Vec::new();
        stream.extend_from_slice(NO_OP);
        stream.extend(all_types());
        stream.extend(one_header());
        stream.extend_from_slice(NO_HEADERS);
        let whole = parse_all(&[&stream]);
        assert_eq!(whole.len(), 4);
        assert!(whole.iter().all(Result::is_ok));
        let bytes: Vec<&[u8]> = stream.chunks(1).collect();
        assert_eq!(parse_all(&bytes), whole);
        let mut seed = 0x9E37_79B9_7F4A_7C15u64;
        for _ in 0..300 {
            let mut cuts: Vec<usize> = (0..1 + super::super::config::xorshift(&mut seed) % 8)
                .map(|_| {
                    (super::super::config::xorshift(&mut seed) % (stream.len() as u64 + 1)) as usize
                })
                .collect();
            cuts.sort_unstable();
            let mut pieces = Vec::new();
            let mut start = 0;
            for c in cuts {
                pieces.push(&stream[start..c]);
                start = c;
            }
            pieces.push(&stream[start..]);
            assert_eq!(parse_all(&pieces), whole);
        }
    }

    /// The same result whole and one byte at a time.
    fn same_bytewise(input: &[u8]) -> Vec<Result<Message, EventStreamError>> {
        let whole = parse_all(&[input]);
        let bytes: Vec<&[u8]> = input.chunks(1).collect();
        assert_eq!(parse_all(&bytes), whole);
        let halves: Vec<&[u8]> = input.chunks(input.len().div_ceil(2).max(1)).collect();
        assert_eq!(parse_all(&halves), whole);
        whole
    }

    #[test]
    fn bad_crcs_lengths_and_truncation_are_errors_not_panics() {
        let mut bad_prelude = NO_HEADERS.to_vec();
        bad_prelude[9] ^= 1;
        assert!(matches!(
            same_bytewise(&bad_prelude)[..],
            [Err(EventStreamError::PreludeCrc(_, _))]
        ));
        let mut bad_payload = NO_HEADERS.to_vec();
        bad_payload[14] ^= 0x20;
        let got = same_bytewise(&[NO_OP, &bad_payload[..], NO_OP].concat());
        assert_eq!(got.len(), 2, "nothing after the error: {got:?}");
        assert!(matches!(got[1], Err(EventStreamError::MessageCrc(_, _))));
        assert!(got[1].clone().unwrap_err().to_string().contains("CRC"));
        // Truncated: the stream ended mid-message.
        assert_eq!(
            parse_all(&[&NO_HEADERS[..20]]),
            vec![Err(EventStreamError::Truncated(20))]
        );
        // A length beyond the cap, with a valid prelude CRC.
        let mut huge = Vec::new();
        huge.extend_from_slice(&(MAX_MESSAGE_BYTES as u32 + 1).to_be_bytes());
        huge.extend_from_slice(&0u32.to_be_bytes());
        let c = crc32(&huge);
        huge.extend_from_slice(&c.to_be_bytes());
        assert!(matches!(
            same_bytewise(&huge)[..],
            [Err(EventStreamError::BadLength(_))]
        ));
        // A header running past its section, with valid CRCs.
        let mut m = encode(&[("x", "yy")], b"");
        m[4..8].copy_from_slice(&5u32.to_be_bytes()); // headers_len 5 instead of 6
        let c = crc32(&m[..8]);
        m[8..12].copy_from_slice(&c.to_be_bytes());
        let n = m.len();
        let c = crc32(&m[..n - 4]);
        m[n - 4..].copy_from_slice(&c.to_be_bytes());
        assert!(matches!(
            same_bytewise(&m)[..],
            [Err(EventStreamError::BadHeader(_))]
        ));
        // Garbage of every length never panics.
        let mut seed = 7u64;
        for len in 0..64 {
            let junk: Vec<u8> = (0..len)
                .map(|_| super::super::config::xorshift(&mut seed) as u8)
                .collect();
            let _ = same_bytewise(&junk);
        }
    }
}
