//! A provider's rate-limit timing, passed on with its 429 so that the client's backoff (the OpenAI
//! SDKs read `retry-after-ms`, then `retry-after`) can honour it.
//!
//! What is passed on: `retry-after`, `retry-after-ms` and every `x-ratelimit-*` header of the
//! provider's 429 answer ([`rate_limit_headers`]); Gemini sends its delay in the error body instead
//! (`google.rpc.RetryInfo` `retryDelay`), which becomes `retry-after` ([`gemini_retry_delay_ms`]).
//!
//! When every target answered 429 ([`merge`]): the client gets the LAST target's answer (its message
//! and its `x-ratelimit-*` headers, which describe that provider's limits), and as `retry-after` /
//! `retry-after-ms` the SHORTEST wait any of those targets asked for: the gateway tries the targets
//! again on the next request, so the soonest moment one of them accepts is when retrying makes sense.

use serde_json::Value;

/// Whether a provider response header (any case) is rate-limit timing passed on with a 429.
pub fn is_rate_limit_header(name: &str) -> bool {
    name.eq_ignore_ascii_case("retry-after")
        || name.eq_ignore_ascii_case("retry-after-ms")
        || name
            .get(..12)
            .is_some_and(|p| p.eq_ignore_ascii_case("x-ratelimit-"))
}

/// The rate-limit headers of a provider answer, names lower-cased, in the answer's order.
pub fn rate_limit_headers<'a>(
    headers: impl IntoIterator<Item = (&'a str, &'a str)>,
) -> Vec<(String, String)> {
    headers
        .into_iter()
        .filter(|(n, _)| is_rate_limit_header(n))
        .map(|(n, v)| (n.to_ascii_lowercase(), v.trim().to_string()))
        .collect()
}

/// Gemini's `retryDelay` (`"34s"`, `"1.5s"`) from the `google.rpc.RetryInfo` detail of an error
/// body, in milliseconds.
pub fn gemini_retry_delay_ms(error: &Value) -> Option<u64> {
    error
        .get("details")?
        .as_array()?
        .iter()
        .filter(|d| {
            d.get("@type")
                .and_then(Value::as_str)
                .is_some_and(|t| t.ends_with("google.rpc.RetryInfo"))
        })
        .find_map(|d| d.get("retryDelay")?.as_str()?.strip_suffix('s'))
        .and_then(|secs| secs.trim().parse::<f64>().ok())
        .filter(|s| s.is_finite() && *s >= 0.0)
        .map(|s| (s * 1000.0).ceil() as u64)
}

/// The wait one answer asks for, in milliseconds: `retry-after-ms` if it has a usable one, else
/// `retry-after` (delay in seconds, or an HTTP date compared with `now_secs`).
fn wait_ms(headers: &[(String, String)], now_secs: u64) -> Option<u64> {
    let get = |name: &str| {
        headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.trim())
    };
    let ms = get("retry-after-ms")
        .and_then(|v| v.parse::<f64>().ok())
        .filter(|v| v.is_finite() && *v >= 0.0)
        .map(|v| v.ceil() as u64);
    ms.or_else(|| {
        let v = get("retry-after")?;
        match v.parse::<f64>() {
            Ok(s) if s.is_finite() && s >= 0.0 => Some((s * 1000.0).ceil() as u64),
            Ok(_) => None,
            Err(_) => http_date(v).map(|at| at.saturating_sub(now_secs) * 1000),
        }
    })
}

/// The headers to send with the final 429 when `answers` (the headers of each target's 429, in the
/// order the targets were tried) all asked the client to wait: the last answer's headers, with
/// `retry-after` (whole seconds, rounded up) and `retry-after-ms` (only when some answer sent one)
/// set to the shortest wait any answer asked for. An answer whose timing cannot be read does not
/// count; with no readable timing at all, no `retry-after` is sent.
pub fn merge(answers: &[Vec<(String, String)>], now_secs: u64) -> Vec<(String, String)> {
    let Some(last) = answers.last() else {
        return Vec::new();
    };
    let is_timing =
        |n: &str| n.eq_ignore_ascii_case("retry-after") || n.eq_ignore_ascii_case("retry-after-ms");
    let mut out: Vec<(String, String)> = last
        .iter()
        .filter(|(n, _)| !is_timing(n))
        .cloned()
        .collect();
    if let Some(ms) = answers.iter().filter_map(|a| wait_ms(a, now_secs)).min() {
        out.push(("retry-after".to_string(), ms.div_ceil(1000).to_string()));
        let any_ms = answers
            .iter()
            .flatten()
            .any(|(n, _)| n.eq_ignore_ascii_case("retry-after-ms"));
        if any_ms {
            out.push(("retry-after-ms".to_string(), ms.to_string()));
        }
    }
    out
}

/// An HTTP date in the IMF-fixdate form (`Sun, 06 Nov 1994 08:49:37 GMT`, RFC 9110 5.6.7), as Unix
/// seconds. The obsolete forms are not read (no provider sends them).
pub fn http_date(s: &str) -> Option<u64> {
    let rest = s.trim().get(5..)?; // "Sun, "
    let mut it = rest.split(' ');
    let day: u64 = it.next()?.parse().ok()?;
    let month = match it.next()? {
        "Jan" => 1,
        "Feb" => 2,
        "Mar" => 3,
        "Apr" => 4,
        "May" => 5,
        "Jun" => 6,
        "Jul" => 7,
        "Aug" => 8,
        "Sep" => 9,
        "Oct" => 10,
        "Nov" => 11,
        "Dec" => 12,
        _ => return None,
    };
    let year: i64 = it.next()?.parse().ok()?;
    let mut hms = it.next()?.split(':').map(|p| p.parse::<u64>().ok());
    let (h, m, sec) = (hms.next()??, hms.next()??, hms.next()??);
    if it.next()? != "GMT" || it.next().is_some() || hms.next().is_some() {
        return None;
    }
    if !(1..=31).contains(&day) || h > 23 || m > 59 || sec > 60 || year < 1970 {
        return None;
    }
    // Days since 1970-01-01 of a civil date (Howard Hinnant's days_from_civil).
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day as i64 - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    u64::try_from(days)
        .ok()
        .map(|d| d * 86_400 + h * 3600 + m * 60 + sec)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    #[cfg(target_arch = "wasm32")]
    use wasm_bindgen_test::wasm_bindgen_test as test;

    fn h(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(n, v)| (n.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn only_timing_headers_are_picked_names_lower_cased() {
        let got = rate_limit_headers([
            ("Content-Type", "application/json"),
            ("Retry-After", " 7 "),
            ("retry-after-ms", "6500"),
            ("X-RateLimit-Limit-Requests", "500"),
            ("x-ratelimit-reset-tokens", "6m0s"),
            ("anthropic-ratelimit-requests-limit", "50"),
            ("x-ratelimit", "not a prefix match"),
            ("set-cookie", "a=b"),
        ]);
        assert_eq!(
            got,
            h(&[
                ("retry-after", "7"),
                ("retry-after-ms", "6500"),
                ("x-ratelimit-limit-requests", "500"),
                ("x-ratelimit-reset-tokens", "6m0s"),
            ])
        );
    }

    #[test]
    fn one_answer_passes_through() {
        let a = h(&[
            ("retry-after", "2"),
            ("retry-after-ms", "1500"),
            ("x-ratelimit-remaining-requests", "0"),
        ]);
        assert_eq!(
            merge(&[a], 0),
            h(&[
                ("x-ratelimit-remaining-requests", "0"),
                ("retry-after", "2"),
                ("retry-after-ms", "1500"),
            ])
        );
        assert_eq!(
            merge(&[h(&[("retry-after", "30")])], 0),
            h(&[("retry-after", "30")])
        );
        assert!(merge(&[], 0).is_empty());
        assert!(merge(&[Vec::new()], 0).is_empty());
    }

    #[test]
    fn several_answers_the_shortest_wait_and_the_last_answers_limits() {
        let first = h(&[("retry-after", "20"), ("x-ratelimit-limit-requests", "10")]);
        let second = h(&[("retry-after-ms", "2500")]);
        let last = h(&[
            ("retry-after", "60"),
            ("x-ratelimit-limit-requests", "99"),
            ("x-ratelimit-reset-requests", "1m"),
        ]);
        assert_eq!(
            merge(&[first.clone(), second, last.clone()], 0),
            h(&[
                ("x-ratelimit-limit-requests", "99"),
                ("x-ratelimit-reset-requests", "1m"),
                ("retry-after", "3"),
                ("retry-after-ms", "2500"),
            ])
        );
        // No retry-after-ms anywhere: none invented.
        assert_eq!(
            merge(&[last, first], 0),
            h(&[("x-ratelimit-limit-requests", "10"), ("retry-after", "20")])
        );
        // An answer without timing does not make the wait zero.
        assert_eq!(
            merge(&[Vec::new(), h(&[("retry-after", "5")])], 0),
            h(&[("retry-after", "5")])
        );
        // Unreadable values are ignored.
        assert_eq!(
            merge(
                &[h(&[("retry-after", "soon")]), h(&[("retry-after", "4")])],
                0
            ),
            h(&[("retry-after", "4")])
        );
        assert_eq!(
            merge(&[h(&[("retry-after", "-1"), ("retry-after-ms", "NaN")])], 0),
            Vec::new()
        );
    }

    #[test]
    fn http_dates_count_from_now() {
        assert_eq!(
            http_date("Sun, 06 Nov 1994 08:49:37 GMT"),
            Some(784_111_777)
        );
        assert_eq!(http_date("Thu, 01 Jan 1970 00:00:00 GMT"), Some(0));
        assert_eq!(
            http_date("Tue, 29 Feb 2028 23:59:59 GMT"),
            Some(1_835_481_599)
        );
        for bad in [
            "",
            "Sun, 06 Nov 1994 08:49:37",
            "Sun, 06 Foo 1994 08:49:37 GMT",
            "Sunday, 06-Nov-94 08:49:37 GMT",
            "Sun, 32 Nov 1994 08:49:37 GMT",
            "Sun, 06 Nov 1994 08:49 GMT",
            "Sun, 06 Nov 1994 08:49:37 GMT extra",
        ] {
            assert_eq!(http_date(bad), None, "{bad:?}");
        }
        let now = 784_111_777 - 90;
        assert_eq!(
            merge(
                &[h(&[("retry-after", "Sun, 06 Nov 1994 08:49:37 GMT")])],
                now
            ),
            h(&[("retry-after", "90")])
        );
        // A date in the past: retry now.
        assert_eq!(
            merge(
                &[h(&[("retry-after", "Thu, 01 Jan 1970 00:00:00 GMT")])],
                now
            ),
            h(&[("retry-after", "0")])
        );
    }

    #[test]
    fn gemini_retry_info() {
        let e = json!({"code": 429, "details": [
            {"@type": "type.googleapis.com/google.rpc.QuotaFailure"},
            {"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": "34s"}]});
        assert_eq!(gemini_retry_delay_ms(&e), Some(34_000));
        let e = json!({"details": [{"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": "1.25s"}]});
        assert_eq!(gemini_retry_delay_ms(&e), Some(1250));
        for e in [
            json!({}),
            json!({"details": "x"}),
            json!({"details": [{"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": "34"}]}),
            json!({"details": [{"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": "-3s"}]}),
            json!({"details": [{"retryDelay": "3s"}]}),
        ] {
            assert_eq!(gemini_retry_delay_ms(&e), None, "{e}");
        }
    }
}
