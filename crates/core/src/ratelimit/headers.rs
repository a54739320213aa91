//! Client headers for one or more decisions (Kong / IETF draft names).

use super::algorithm::{Decision, WindowStatus};

/// Seconds for `Retry-After` / `RateLimit-Reset`: rounded up, at least 1 when anything is left.
pub fn seconds(ms: u64) -> u64 {
    ms.div_ceil(1000)
}

/// `Retry-After` for a refused decision (at least 1 second).
pub fn retry_after_secs(decision: &Decision) -> u64 {
    seconds(decision.retry_after_ms.unwrap_or(1000)).max(1)
}

/// The headers for every decision taken for a request (several policies may apply):
/// `RateLimit-Limit`, `RateLimit-Remaining`, `RateLimit-Reset` for the most restrictive window of all,
/// and `X-RateLimit-Limit-<Window>` / `X-RateLimit-Remaining-<Window>` per window (the most
/// restrictive when two policies share a window). `Retry-After` is added separately on a refusal.
pub fn client_headers<'a>(
    decisions: impl IntoIterator<Item = &'a Decision>,
) -> Vec<(String, String)> {
    let mut per_window: Vec<WindowStatus> = Vec::new();
    for d in decisions {
        for s in &d.windows {
            match per_window.iter_mut().find(|p| p.window == s.window) {
                Some(p) if tighter(s, p) => *p = *s,
                Some(_) => {}
                None => per_window.push(*s),
            }
        }
    }
    per_window.sort_by_key(|s| s.window);
    let mut out = Vec::with_capacity(3 + 2 * per_window.len());
    if let Some(t) = per_window
        .iter()
        .fold(None::<&WindowStatus>, |best, s| match best {
            Some(b) if !tighter(s, b) => Some(b),
            _ => Some(s),
        })
    {
        out.push(("ratelimit-limit".into(), t.limit.to_string()));
        out.push(("ratelimit-remaining".into(), t.remaining.to_string()));
        out.push(("ratelimit-reset".into(), seconds(t.reset_ms).to_string()));
    }
    for s in &per_window {
        let title = s.window.title();
        out.push((format!("x-ratelimit-limit-{title}"), s.limit.to_string()));
        out.push((
            format!("x-ratelimit-remaining-{title}"),
            s.remaining.to_string(),
        ));
    }
    out
}

/// Less remaining, or as little remaining for longer.
fn tighter(a: &WindowStatus, b: &WindowStatus) -> bool {
    a.remaining < b.remaining || (a.remaining == b.remaining && a.reset_ms > b.reset_ms)
}
