//! What the core cannot do itself on wasm32: read the clock, draw random bytes, write logs.

/// Milliseconds since the epoch. Inside a Worker the clock only advances across I/O, which is what
/// latency figures need.
pub fn now_ms() -> f64 {
    js_sys::Date::now()
}

thread_local! {
    /// xorshift64* state, seeded once per isolate from `Math.random` and the clock.
    static RNG: std::cell::Cell<u64> = const { std::cell::Cell::new(0) };
}

/// Random bytes for request ids, trace ids and load-balancing choices. Not for secrets: a generator
/// seeded once per isolate, so ids cost no call into JS.
pub fn random_bytes<const N: usize>() -> [u8; N] {
    RNG.with(|state| {
        let mut x = state.get();
        if x == 0 {
            let a = (js_sys::Math::random() * (1u64 << 53) as f64) as u64;
            let b = (js_sys::Math::random() * (1u64 << 53) as f64) as u64;
            x = (a << 11) ^ b ^ (now_ms() as u64).rotate_left(32) | 1;
        }
        let mut out = [0u8; N];
        for chunk in out.chunks_mut(8) {
            x ^= x >> 12;
            x ^= x << 25;
            x ^= x >> 27;
            let r = x.wrapping_mul(0x2545_f491_4f6c_dd1d);
            chunk.copy_from_slice(&r.to_le_bytes()[..chunk.len()]);
        }
        state.set(x);
        out
    })
}

pub fn log(line: &str) {
    web_sys::console::log_1(&line.into());
}

pub fn log_error(line: &str) {
    web_sys::console::error_1(&line.into());
}
