//! What the core cannot do itself on wasm32: read the clock, draw random bytes, write logs.

/// Milliseconds since the epoch. Inside a Worker the clock only advances across I/O, which is what
/// latency figures need.
pub fn now_ms() -> f64 {
    js_sys::Date::now()
}

/// Random bytes for request and trace ids (not secrets: `Math.random` is enough and costs no import).
pub fn random_bytes<const N: usize>() -> [u8; N] {
    let mut out = [0u8; N];
    for chunk in out.chunks_mut(6) {
        let r = (js_sys::Math::random() * (1u64 << 48) as f64) as u64;
        for (i, b) in chunk.iter_mut().enumerate() {
            *b = (r >> (8 * i)) as u8;
        }
    }
    out
}

pub fn log(line: &str) {
    web_sys::console::log_1(&line.into());
}

pub fn log_error(line: &str) {
    web_sys::console::error_1(&line.into());
}
