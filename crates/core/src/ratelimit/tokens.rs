//! What a token budget (`count: tokens`) charges for one AI answer.
//!
//! The provider's `usage` when the answer is complete. When a stream ends early (the client went
//! away, the provider cut it) the provider may not have reported its usage yet, so the charge is
//! what was counted so far, estimated where nothing was reported: the prompt at about four
//! characters a token (plus a few per message, as OpenAI's rule of thumb has it) and one token per
//! streamed event. The larger of what was reported and the estimate is charged, so an interrupted
//! stream is never free.

use crate::ai::{ChatRequest, Usage};

/// Rough prompt size in tokens: about 4 characters a token, plus 4 per message.
pub fn prompt_estimate(req: &ChatRequest) -> u64 {
    req.messages
        .iter()
        .map(|m| {
            let chars = match &m.content {
                None => 0,
                Some(c) => c.text().chars().count() as u64,
            };
            chars.div_ceil(4) + 4
        })
        .fold(0u64, u64::saturating_add)
}

/// The tokens to charge for an answer. `finished`: the stream reached its end (a JSON answer is
/// always finished); `prompt_estimate`: [`prompt_estimate`] of the request; `events`: the number of
/// answer events streamed to the client. `None` when there is nothing to charge.
pub fn tokens_to_charge(
    usage: Option<&Usage>,
    finished: bool,
    prompt_estimate: u64,
    events: u64,
) -> Option<u64> {
    let reported = usage.map(|u| {
        let (p, c) = (u.prompt_tokens, u.completion_tokens);
        let total = if u.total_tokens > 0 {
            u.total_tokens
        } else {
            p.saturating_add(c)
        };
        (p, c, total)
    });
    let n = match reported {
        Some((_, _, total)) if finished && total > 0 => total,
        _ => {
            let (p, c, total) = reported.unwrap_or((0, 0, 0));
            let prompt = if p > 0 { p } else { prompt_estimate };
            total.max(prompt.saturating_add(c.max(events)))
        }
    };
    (n > 0).then_some(n)
}
