//! What the cache did, as `X-Cache-Status` (Kong's values) and RFC 9211 `Cache-Status`.

use super::Bypass;

/// The cache's name in `Cache-Status`.
pub const CACHE_NAME: &str = "edgegate";

/// `X-Cache-Status`: Kong's four values, plus `Stale` for a stale copy served because the origin
/// failed (`stale_if_error`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum XCacheStatus {
    /// Served from the cache.
    Hit,
    /// Not in the cache; fetched from the origin (and stored if storable).
    Miss,
    /// The cache was not used for this request or this response.
    Bypass,
    /// An entry existed but was stale, or the client asked for a fresh copy; fetched again.
    Refresh,
    /// The origin failed; a stale copy within `stale_if_error` was served.
    Stale,
}

impl XCacheStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            XCacheStatus::Hit => "Hit",
            XCacheStatus::Miss => "Miss",
            XCacheStatus::Bypass => "Bypass",
            XCacheStatus::Refresh => "Refresh",
            XCacheStatus::Stale => "Stale",
        }
    }
}

/// One cache outcome; renders both headers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CacheStatus {
    pub x: XCacheStatus,
    pub hit: bool,
    /// RFC 9211 `fwd`: why the request went to the origin.
    pub fwd: Option<&'static str>,
    /// The origin's status, when it answered.
    pub fwd_status: Option<u16>,
    /// The origin's response was stored.
    pub stored: bool,
    /// Seconds of freshness left (negative when stale).
    pub ttl: Option<i64>,
    pub detail: Option<&'static str>,
    /// RFC 9211 `collapsed`: the request waited for another miss of the same key (`cache_lock`);
    /// `true` when that one's stored answer was served, `false` when it went to the origin itself.
    pub collapsed: Option<bool>,
}

impl CacheStatus {
    fn new(x: XCacheStatus) -> CacheStatus {
        CacheStatus {
            x,
            hit: false,
            fwd: None,
            fwd_status: None,
            stored: false,
            ttl: None,
            detail: None,
            collapsed: None,
        }
    }

    /// A waiting miss was served the copy another miss of the same key stored (`cache_lock`).
    /// `X-Cache-Status: Hit`; `Cache-Status` says it was collapsed onto that miss's fetch.
    pub fn collapsed_hit(remaining: i64, had_entry: bool) -> CacheStatus {
        CacheStatus {
            fwd: Some(if had_entry { "stale" } else { "uri-miss" }),
            ttl: Some(remaining),
            collapsed: Some(true),
            ..Self::new(XCacheStatus::Hit)
        }
    }

    /// A waiting miss gave up after `cache_lock_timeout` and asked the origin itself; the answer
    /// is not stored. `X-Cache-Status: Miss` (`Refresh` when a stale entry existed).
    pub fn lock_timeout(had_entry: bool, origin_status: u16) -> CacheStatus {
        let mut s = Self::forwarded(had_entry, false, origin_status, Err("lock-timeout"));
        s.x = if had_entry {
            XCacheStatus::Refresh
        } else {
            XCacheStatus::Miss
        };
        s.collapsed = Some(false);
        s
    }

    /// `only-if-cached` and nothing stored could answer: a 504 that never reached the origin
    /// (`X-Cache-Status: Miss`, no `fwd`).
    pub fn not_cached() -> CacheStatus {
        CacheStatus {
            detail: Some("only-if-cached"),
            ..Self::new(XCacheStatus::Miss)
        }
    }

    /// A fresh entry was served.
    pub fn hit(remaining: i64) -> CacheStatus {
        CacheStatus {
            hit: true,
            ttl: Some(remaining),
            ..Self::new(XCacheStatus::Hit)
        }
    }

    /// The request did not use the cache.
    pub fn bypass(reason: Bypass) -> CacheStatus {
        CacheStatus {
            fwd: Some(reason.fwd()),
            detail: Some(reason.detail()),
            ..Self::new(XCacheStatus::Bypass)
        }
    }

    /// The origin was asked. `had_entry`: a stale entry existed; `client_refresh`: the client asked for
    /// a fresh copy. `stored`: `Ok(ttl)` when the response was stored, else why not.
    pub fn forwarded(
        had_entry: bool,
        client_refresh: bool,
        origin_status: u16,
        stored: Result<u64, &'static str>,
    ) -> CacheStatus {
        let (x, fwd) = if client_refresh {
            (XCacheStatus::Refresh, "request")
        } else if had_entry {
            (XCacheStatus::Refresh, "stale")
        } else {
            (XCacheStatus::Miss, "uri-miss")
        };
        let mut s = Self::new(x);
        s.fwd = Some(fwd);
        s.fwd_status = Some(origin_status);
        match stored {
            Ok(ttl) => {
                s.stored = true;
                s.ttl = Some(ttl as i64);
            }
            Err(why) => {
                // Kong reports a response it will not store as a bypass.
                s.x = XCacheStatus::Bypass;
                s.detail = Some(why);
            }
        }
        s
    }

    /// A stale entry was served because the origin failed (`origin_status` None: unreachable).
    pub fn stale(remaining: i64, origin_status: Option<u16>) -> CacheStatus {
        CacheStatus {
            fwd: Some("stale"),
            fwd_status: origin_status,
            ttl: Some(remaining),
            detail: Some("stale-if-error"),
            ..Self::new(XCacheStatus::Stale)
        }
    }

    /// The RFC 9211 `Cache-Status` value, with `key` when given.
    pub fn header_value(&self, key: Option<&str>) -> String {
        let mut out = String::from(CACHE_NAME);
        if self.hit {
            out.push_str("; hit");
        }
        if let Some(f) = self.fwd {
            out.push_str("; fwd=");
            out.push_str(f);
        }
        if let Some(s) = self.fwd_status {
            out.push_str(&format!("; fwd-status={s}"));
        }
        match self.collapsed {
            Some(true) => out.push_str("; collapsed"),
            Some(false) => out.push_str("; collapsed=?0"),
            None => {}
        }
        if self.stored {
            out.push_str("; stored");
        }
        if let Some(t) = self.ttl {
            out.push_str(&format!("; ttl={t}"));
        }
        if let Some(k) = key {
            out.push_str(&format!("; key={}", sf_string(k)));
        }
        if let Some(d) = self.detail {
            out.push_str(&format!("; detail={}", sf_string(d)));
        }
        out
    }
}

/// An RFC 8941 string: quoted, with `\` and `"` escaped, printable ASCII only.
fn sf_string(s: &str) -> String {
    let mut out = String::from("\"");
    for c in s.chars() {
        match c {
            '"' | '\\' => {
                out.push('\\');
                out.push(c);
            }
            ' '..='~' => out.push(c),
            _ => out.push('?'),
        }
    }
    out.push('"');
    out
}
