//! Conditional requests answered by the cache (RFC 9110 section 13, RFC 9111 section 4.3.2): a client
//! that already holds the representation (`If-None-Match`, `If-Modified-Since`) gets `304 Not
//! Modified` without a body when the stored (or just fetched) response matches.

/// Request headers whose conditions the cache evaluates itself on GET requests it may store: they
/// are not sent to the origin, so that the origin answers with the whole response (which is stored),
/// and the client gets a 304 from the gateway when its copy is current.
pub const CONDITIONAL_HEADERS: &[&str] = &["if-none-match", "if-modified-since"];

/// Headers of a 200 left out of the 304 made from it: representation metadata about a body the 304
/// does not carry (RFC 9110 section 15.4.5 keeps ETag, Last-Modified, Cache-Control, Expires, Vary,
/// Content-Location and Date).
pub const NOT_MODIFIED_DROP: &[&str] = &[
    "content-length",
    "content-type",
    "content-encoding",
    "content-language",
    "content-range",
    "content-md5",
    "content-disposition",
    "transfer-encoding",
];

/// Does the request carry a condition the cache evaluates?
pub fn is_conditional(req: &dyn Fn(&str) -> Option<String>) -> bool {
    CONDITIONAL_HEADERS.iter().any(|h| req(h).is_some())
}

/// Should the client of a GET or HEAD get `304 Not Modified` instead of the response with status
/// `status` and headers `resp`? `If-None-Match` wins over `If-Modified-Since` (RFC 9110 13.2.2); only a
/// 200 is turned into a 304 (a stored 301 or 404 is served as it is).
pub fn not_modified(
    status: u16,
    req: &dyn Fn(&str) -> Option<String>,
    resp: &dyn Fn(&str) -> Option<String>,
) -> bool {
    if status != 200 {
        return false;
    }
    if let Some(inm) = req("if-none-match") {
        let Some(etag) = resp("etag") else {
            // `*` matches any current representation; anything else needs an ETag to match.
            return inm.trim() == "*";
        };
        return etag_matches_any(&inm, &etag);
    }
    if let Some(ims) = req("if-modified-since") {
        let (Some(since), Some(modified)) = (
            http_date(&ims),
            resp("last-modified").and_then(|l| http_date(&l)),
        ) else {
            return false;
        };
        return modified <= since;
    }
    false
}

/// Weak comparison (RFC 9110 8.8.3.2) of `etag` with a comma-separated `If-None-Match` list, or `*`.
fn etag_matches_any(list: &str, etag: &str) -> bool {
    let opaque = |t: &str| {
        let t = t.trim();
        let t = t.strip_prefix("W/").unwrap_or(t);
        t.to_string()
    };
    let ours = opaque(etag);
    if !ours.starts_with('"') {
        return false;
    }
    // An entity-tag may itself contain a comma (`"a,b"`): split outside quotes (a backslash is an
    // ordinary entity-tag character, not an escape).
    super::control::split_outside_quotes(list, false)
        .into_iter()
        .any(|candidate| {
            let c = candidate.trim();
            c == "*" || opaque(c) == ours
        })
}

/// An HTTP date (RFC 9110 5.6.7) as Unix seconds: IMF-fixdate (`Sun, 06 Nov 1994 08:49:37 GMT`), and
/// the obsolete RFC 850 (`Sunday, 06-Nov-94 08:49:37 GMT`) and asctime (`Sun Nov  6 08:49:37 1994`)
/// forms recipients must also read. `None` when it is none of these.
pub fn http_date(s: &str) -> Option<u64> {
    let s = s.trim();
    let parts: Vec<&str> = s.split_whitespace().collect();
    let (day, month, year, time) = match parts.as_slice() {
        // IMF-fixdate: "Sun," "06" "Nov" "1994" "08:49:37" "GMT"
        [wd, d, m, y, t, "GMT"] if wd.ends_with(',') && wd.len() == 4 => (
            d.parse::<u64>().ok()?,
            month_number(m)?,
            y.parse::<i64>().ok()?,
            *t,
        ),
        // RFC 850: "Sunday," "06-Nov-94" "08:49:37" "GMT"
        [wd, dmy, t, "GMT"] if wd.ends_with(',') => {
            let mut it = dmy.split('-');
            let d = it.next()?.parse::<u64>().ok()?;
            let m = month_number(it.next()?)?;
            let yy: i64 = it.next()?.parse().ok()?;
            if it.next().is_some() {
                return None;
            }
            // Two-digit years: within 50 years of now (RFC 9110 5.6.7), taken as 1970..2069.
            let y = if yy < 70 { 2000 + yy } else { 1900 + yy };
            (d, m, y, *t)
        }
        // asctime: "Sun" "Nov" "6" "08:49:37" "1994"
        [_, m, d, t, y] => (
            d.parse::<u64>().ok()?,
            month_number(m)?,
            y.parse::<i64>().ok()?,
            *t,
        ),
        _ => return None,
    };
    let mut hms = time.split(':').map(|p| p.parse::<u64>().ok());
    let (h, m, sec) = (hms.next()??, hms.next()??, hms.next()??);
    if hms.next().is_some() {
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

fn month_number(m: &str) -> Option<i64> {
    Some(match m {
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
    })
}
