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
    crate::sort::sort_by_key(&mut per_window, |s| s.window);
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

/// Less remaining; on a tie the longer window (as Kong), then (the same window of two policies)
/// the one that resets later.
pub(crate) fn tighter(a: &WindowStatus, b: &WindowStatus) -> bool {
    a.remaining < b.remaining
        || (a.remaining == b.remaining
            && (a.window > b.window || (a.window == b.window && a.reset_ms > b.reset_ms)))
}

/// OpenAI's rate-limit headers for one kind (`"tokens"` or `"requests"`), from the most restrictive
/// window of the given decisions: `x-ratelimit-limit-<kind>`, `x-ratelimit-remaining-<kind>` and
/// `x-ratelimit-reset-<kind>` (a duration such as `1s`, `6m0s`, as OpenAI writes it).
pub fn openai_headers<'a>(
    kind: &str,
    decisions: impl IntoIterator<Item = &'a Decision>,
) -> Vec<(String, String)> {
    let tightest = decisions.into_iter().flat_map(|d| d.windows.iter()).fold(
        None::<&WindowStatus>,
        |best, s| match best {
            Some(b) if !tighter(s, b) => Some(b),
            _ => Some(s),
        },
    );
    match tightest {
        None => Vec::new(),
        Some(t) => vec![
            (format!("x-ratelimit-limit-{kind}"), t.limit.to_string()),
            (
                format!("x-ratelimit-remaining-{kind}"),
                t.remaining.to_string(),
            ),
            (
                format!("x-ratelimit-reset-{kind}"),
                openai_duration(t.reset_ms),
            ),
        ],
    }
}

/// A duration as OpenAI's headers write it: `250ms`, `1s`, `6m0s`, `1h2m3s` (whole seconds rounded
/// up from one second on).
pub fn openai_duration(ms: u64) -> String {
    if ms < 1000 {
        return format!("{ms}ms");
    }
    let secs = seconds(ms);
    let (h, m, s) = (secs / 3600, secs / 60 % 60, secs % 60);
    if h > 0 {
        format!("{h}h{m}m{s}s")
    } else if m > 0 {
        format!("{m}m{s}s")
    } else {
        format!("{s}s")
    }
}
