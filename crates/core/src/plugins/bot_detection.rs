//! `bot-detection`: Kong's plugin. Turns away requests whose `User-Agent` matches a configured `deny`
//! regular expression or Kong's built-in list of bots ([`BOTS`], from Kong's `rules.lua`), unless it
//! matches an `allow` one; a request without `User-Agent` (or with an empty one) passes. See docs/plugins.md.
//!
//! As in Kong: the header value is trimmed, then `allow` is tried first (a match lets the request
//! through), then `deny`, then the built-in list (a match refuses it with 403). Expressions are
//! searched for anywhere in the value (not anchored), case-sensitively. Decisions are remembered per
//! User-Agent in a small bounded cache per compiled instance (Kong keeps an LRU per configuration).

use crate::error::{ErrorKind, GatewayError};
use crate::plugins::{settings, PluginError};
use regex_lite::Regex;
use serde::Deserialize;
use std::collections::HashMap;
use std::sync::{Mutex, OnceLock};

/// Kong's message for a refused request.
pub const MESSAGE: &str = "Forbidden";

/// Kong's built-in bot list (kong/plugins/bot-detection/rules.lua, taken by Kong from ua-parser's
/// `regexes.yaml`), written as it is there; every one compiles with regex-lite unchanged.
pub const BOTS: [&str; 12] = [
    r"(Pingdom.com_bot_version_)(\d+)\.(\d+)",
    r"(facebookexternalhit)/(\d+)\.(\d+)",
    r"Google.*/\+/web/snippet",
    r"(Twitterbot)/(\d+)\.(\d+)",
    r"/((?:Ant-)?Nutch|[A-z]+[Bb]ot|[A-z]+[Ss]pider|Axtaris|fetchurl|Isara|ShopSalad|Tailsweep)[ \-](\d+)(?:\.(\d+)(?:\.(\d+))?)?",
    r"(008|Altresium|Argus|BaiduMobaider|BoardReader|DNSGroup|DataparkSearch|EDI|Goodzer|Grub|INGRID|Infohelfer|LinkedInBot|LOOQ|Nutch|PathDefender|Peew|PostPost|Steeler|Twitterbot|VSE|WebCrunch|WebZIP|Y!J-BR[A-Z]|YahooSeeker|envolk|sproose|wminer)/(\d+)(?:\.(\d+)(?:\.(\d+))?)?",
    r"(MSIE) (\d+)\.(\d+)([a-z]\d?)?;.* MSIECrawler",
    r"(Google-HTTP-Java-Client|Apache-HttpClient|http%20client|Python-urllib|HttpMonitor|TLSProber|WinHTTP|JNLP)(?:[ /](\d+)(?:\.(\d+)(?:\.(\d+))?)?)?",
    r"(1470\.net crawler|50\.nu|8bo Crawler Bot|Aboundex|Accoona-[A-z]+-Agent|AdsBot-Google(?:-[a-z]+)?|altavista|AppEngine-Google|archive.*?\.org_bot|archiver|Ask Jeeves|[Bb]ai[Dd]u[Ss]pider(?:-[A-Za-z]+)*|bingbot|BingPreview|blitzbot|BlogBridge|BoardReader(?: [A-Za-z]+)*|boitho.com-dc|BotSeer|\b\w*favicon\w*\b|\bYeti(?:-[a-z]+)?|Catchpoint bot|[Cc]harlotte|Checklinks|clumboot|Comodo HTTP\(S\) Crawler|Comodo-Webinspector-Crawler|ConveraCrawler|CRAWL-E|CrawlConvera|Daumoa(?:-feedfetcher)?|Feed Seeker Bot|findlinks|Flamingo_SearchEngine|FollowSite Bot|furlbot|Genieo|gigabot|GomezAgent|gonzo1|(?:[a-zA-Z]+-)?Googlebot(?:-[a-zA-Z]+)?|Google SketchUp|grub-client|gsa-crawler|heritrix|HiddenMarket|holmes|HooWWWer|htdig|ia_archiver|ICC-Crawler|Icarus6j|ichiro(?:/mobile)?|IconSurf|IlTrovatore(?:-Setaccio)?|InfuzApp|Innovazion Crawler|InternetArchive|IP2[a-z]+Bot|jbot\b|KaloogaBot|Kraken|Kurzor|larbin|LEIA|LesnikBot|Linguee Bot|LinkAider|LinkedInBot|Lite Bot|Llaut|lycos|Mail\.RU_Bot|masidani_bot|Mediapartners-Google|Microsoft .*? Bot|mogimogi|mozDex|MJ12bot|msnbot(?:-media *)?|msrbot|netresearch|Netvibes|NewsGator[^/]*|^NING|Nutch[^/]*|Nymesis|ObjectsSearch|Orbiter|OOZBOT|PagePeeker|PagesInventory|PaxleFramework|Peeplo Screenshot Bot|PlantyNet_WebRobot|Pompos|Read%20Later|Reaper|RedCarpet|Retreiver|Riddler|Rival IQ|scooter|Scrapy|Scrubby|searchsight|seekbot|semanticdiscovery|Simpy|SimplePie|SEOstats|SimpleRSS|SiteCon|Slurp|snappy|Speedy Spider|Squrl Java|TheUsefulbot|ThumbShotsBot|Thumbshots\.ru|TwitterBot|URL2PNG|Vagabondo|VoilaBot|^vortex|Votay bot|^voyager|WASALive.Bot|Web-sniffer|WebThumb|WeSEE:[A-z]+|WhatWeb|WIRE|WordPress|Wotbox|www\.almaden\.ibm\.com|Xenu(?:.s)? Link Sleuth|Xerka [A-z]+Bot|yacy(?:bot)?|Yahoo[a-z]*Seeker|Yahoo! Slurp|Yandex\w+|YodaoBot(?:-[A-z]+)?|YottaaMonitor|Yowedo|^Zao|^Zao-Crawler|ZeBot_www\.ze\.bz|ZooShot|ZyBorg)(?:[ /]v?(\d+)(?:\.(\d+)(?:\.(\d+))?)?)?",
    r"(?:\/[A-Za-z0-9\.]+)? *([A-Za-z0-9 \-_\!\[\]:]*(?:[Aa]rchiver|[Ii]ndexer|[Ss]craper|[Bb]ot|[Ss]pider|[Cc]rawl[a-z]*))/(\d+)(?:\.(\d+)(?:\.(\d+))?)?",
    r"(?:\/[A-Za-z0-9\.]+)? *([A-Za-z0-9 _\!\[\]:]*(?:[Aa]rchiver|[Ii]ndexer|[Ss]craper|[Bb]ot|[Ss]pider|[Cc]rawl[a-z]*)) (\d+)(?:\.(\d+)(?:\.(\d+))?)?",
    r"((?:[A-z0-9]+|[A-z\-]+ ?)?(?: the )?(?:[Ss][Pp][Ii][Dd][Ee][Rr]|[Ss]crape|[A-Za-z0-9-]*(?:[^C][^Uu])[Bb]ot|[Cc][Rr][Aa][Ww][Ll])[A-z0-9]*)(?:(?:[ /]| v)(\d+)(?:\.(\d+)(?:\.(\d+))?)?)?",
];

/// For each entry of [`BOTS`], words one of which the User-Agent, in ASCII lower case, must contain
/// for the entry to match (each is a literal the entry requires, lower-cased): a cheap check that
/// spares most browsers' User-Agents the expensive expressions. `BOTS[8]` has none here: it is split
/// into its names, each with the literal it requires ([`bots`]).
const HINTS: [&[&str]; 12] = [
    &["pingdom"],
    &["facebookexternalhit/"],
    &["/web/snippet"],
    &["twitterbot/"],
    &[
        "nutch",
        "bot",
        "spider",
        "axtaris",
        "fetchurl",
        "isara",
        "shopsalad",
        "tailsweep",
    ],
    &[
        "008",
        "altresium",
        "argus",
        "baidumobaider",
        "boardreader",
        "dnsgroup",
        "dataparksearch",
        "edi",
        "goodzer",
        "grub",
        "ingrid",
        "infohelfer",
        "linkedinbot",
        "looq",
        "nutch",
        "pathdefender",
        "peew",
        "postpost",
        "steeler",
        "twitterbot",
        "vse",
        "webcrunch",
        "webzip",
        "y!j-br",
        "yahooseeker",
        "envolk",
        "sproose",
        "wminer",
    ],
    &["msiecrawler"],
    &[
        "google-http-java-client",
        "apache-httpclient",
        "http%20client",
        "python-urllib",
        "httpmonitor",
        "tlsprober",
        "winhttp",
        "jnlp",
    ],
    &[],
    &["archiver", "indexer", "scraper", "bot", "spider", "crawl"],
    &["archiver", "indexer", "scraper", "bot", "spider", "crawl"],
    &["spider", "scrape", "bot", "crawl"],
];

/// One expression of the built-in list, with the words one of which it needs (empty: none known).
#[derive(Debug)]
struct Entry {
    re: Regex,
    hints: Vec<String>,
}

/// The alternatives at the top level of `pattern` (split on `|` outside groups and classes).
fn alternatives(pattern: &str) -> Vec<&str> {
    let (mut out, mut depth, mut class, mut start) = (Vec::new(), 0usize, false, 0);
    let b = pattern.as_bytes();
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'\\' => i += 1,
            b'[' if !class => class = true,
            b']' if class => class = false,
            b'(' if !class => depth += 1,
            b')' if !class => depth = depth.saturating_sub(1),
            b'|' if !class && depth == 0 => {
                out.push(&pattern[start..i]);
                start = i + 1;
            }
            _ => {}
        }
        i += 1;
    }
    out.push(&pattern[start..]);
    out
}

/// The longest run of plain characters at the top level of `alternative` (outside groups and
/// classes, none made optional by a quantifier), in lower case: every match contains it.
fn required_literal(alternative: &str) -> String {
    let b = alternative.as_bytes();
    let plain = |c: u8| c.is_ascii_alphanumeric() || b" _%!:,/-".contains(&c);
    let (mut best, mut run, mut depth, mut class) = (String::new(), String::new(), 0usize, false);
    let mut i = 0;
    let end_run = |run: &mut String, best: &mut String, next: Option<u8>| {
        if matches!(next, Some(b'?' | b'*' | b'{')) {
            run.pop();
        }
        if run.len() > best.len() {
            *best = run.clone();
        }
        run.clear();
    };
    while i < b.len() {
        let c = b[i];
        if class {
            if c == b'\\' {
                i += 1;
            } else if c == b']' {
                class = false;
            }
        } else if c == b'\\' {
            end_run(&mut run, &mut best, Some(c));
            i += 1;
        } else if c == b'[' {
            end_run(&mut run, &mut best, Some(c));
            class = true;
        } else if c == b'(' {
            end_run(&mut run, &mut best, Some(c));
            depth += 1;
        } else if c == b')' {
            depth = depth.saturating_sub(1);
        } else if depth == 0 && plain(c) {
            run.push(c.to_ascii_lowercase() as char);
        } else if depth == 0 {
            end_run(&mut run, &mut best, Some(c));
        }
        i += 1;
    }
    end_run(&mut run, &mut best, None);
    best
}

/// The built-in list, compiled once per isolate: `BOTS[8]` (some 150 names, then an optional
/// version) as one entry per name, each with the literal it requires; the others with [`HINTS`].
fn bots() -> &'static [Entry] {
    static BOTS_RE: OnceLock<Vec<Entry>> = OnceLock::new();
    BOTS_RE.get_or_init(|| {
        let mut out = Vec::new();
        for (i, (b, hints)) in BOTS.iter().zip(HINTS).enumerate() {
            let names = (i == 8)
                .then(|| b.strip_prefix('(')?.split_once(")(?:[ /]v?"))
                .flatten()
                .map(|(names, _)| alternatives(names));
            match names {
                Some(names) => out.extend(names.into_iter().filter_map(|n| {
                    let hint = required_literal(n);
                    Some(Entry {
                        re: Regex::new(n).ok()?,
                        hints: if hint.len() >= 3 {
                            vec![hint]
                        } else {
                            Vec::new()
                        },
                    })
                })),
                None => out.extend(Regex::new(b).ok().map(|re| Entry {
                    re,
                    hints: hints.iter().map(|h| h.to_string()).collect(),
                })),
            }
        }
        out
    })
}

/// Whether `user_agent` matches an entry of Kong's built-in list.
pub fn is_known_bot(user_agent: &str) -> bool {
    let lower = user_agent.to_ascii_lowercase();
    bots().iter().any(|e| {
        (e.hints.is_empty() || e.hints.iter().any(|h| lower.contains(h.as_str())))
            && e.re.is_match(user_agent)
    })
}

/// The largest number of User-Agents whose decision an instance remembers; when full, it forgets
/// them all and starts again.
pub const CACHE_ENTRIES: usize = 1000;
/// A User-Agent longer than this (bytes) is examined every time, not remembered.
pub const CACHE_MAX_LEN: usize = 512;

#[derive(Debug, Deserialize)]
#[cfg_attr(
    feature = "schema",
    derive(schemars::JsonSchema),
    schemars(
        rename = "BotDetectionPluginConfig",
        description = "Settings of the `bot-detection` plugin (docs/plugins.md#bot-detection)."
    )
)]
#[serde(deny_unknown_fields)]
pub(crate) struct Raw {
    /// Regular expressions: a `User-Agent` matching one is let through, whatever `deny` and the
    /// built-in list say.
    #[serde(default)]
    allow: Option<Vec<String>>,
    /// Regular expressions: a `User-Agent` matching one (and no `allow` one) is refused with 403.
    #[serde(default)]
    deny: Option<Vec<String>>,
}

/// A compiled `bot-detection` instance.
#[derive(Debug)]
pub struct BotDetectionConfig {
    allow: Vec<Regex>,
    deny: Vec<Regex>,
    /// User-Agent -> admitted, at most [`CACHE_ENTRIES`] of them.
    cache: Mutex<HashMap<Box<str>, bool>>,
}

fn compile(field: &str, list: &[String], errors: &mut Vec<(String, String)>) -> Vec<Regex> {
    let mut out = Vec::with_capacity(list.len());
    for (i, pattern) in list.iter().enumerate() {
        match regex_lite::RegexBuilder::new(pattern)
            .size_limit(1 << 20)
            .build()
        {
            Ok(re) => out.push(re),
            // regex-lite's messages never quote the pattern (it may be anything pasted there).
            Err(e) => errors.push((
                format!("{field}[{i}]"),
                format!("invalid regular expression: {e}"),
            )),
        }
    }
    out
}

impl BotDetectionConfig {
    pub fn parse(config: &serde_json::Value) -> Result<BotDetectionConfig, PluginError> {
        let raw: Raw = settings(config)?;
        let mut errors = Vec::new();
        let allow = compile("allow", raw.allow.as_deref().unwrap_or(&[]), &mut errors);
        let deny = compile("deny", raw.deny.as_deref().unwrap_or(&[]), &mut errors);
        if !errors.is_empty() {
            return Err(PluginError::Config(errors));
        }
        // The built-in list is compiled with the first instance, not by the first request.
        let _ = bots();
        Ok(BotDetectionConfig {
            allow,
            deny,
            cache: Mutex::new(HashMap::new()),
        })
    }

    /// Kong's rule for a `User-Agent` value (trimmed): `allow`, then `deny`, then the built-in list.
    fn examine(&self, user_agent: &str) -> bool {
        if self.allow.iter().any(|re| re.is_match(user_agent)) {
            return true;
        }
        if self.deny.iter().any(|re| re.is_match(user_agent)) {
            return false;
        }
        !is_known_bot(user_agent)
    }

    /// Whether a request with this `User-Agent` (`None`: no such header) is let through. An empty
    /// value (or only whitespace) counts as none: the Workers runtime does not tell them apart.
    pub fn admits(&self, user_agent: Option<&str>) -> bool {
        let ua = user_agent.map_or("", str::trim);
        if ua.is_empty() {
            return true;
        }
        if ua.len() > CACHE_MAX_LEN {
            return self.examine(ua);
        }
        if let Some(&known) = self.cache.lock().ok().as_ref().and_then(|c| c.get(ua)) {
            return known;
        }
        let admitted = self.examine(ua);
        if let Ok(mut cache) = self.cache.lock() {
            if cache.len() >= CACHE_ENTRIES {
                cache.clear();
            }
            cache.insert(ua.into(), admitted);
        }
        admitted
    }

    /// 403 `forbidden` (detail `Forbidden`, Kong's message) when the User-Agent is refused.
    pub fn check(&self, user_agent: Option<&str>) -> Result<(), GatewayError> {
        if self.admits(user_agent) {
            Ok(())
        } else {
            Err(GatewayError::new(
                ErrorKind::Restricted {
                    status: 403,
                    code: "forbidden",
                },
                MESSAGE.to_string(),
            ))
        }
    }

    #[cfg(test)]
    fn cached(&self) -> usize {
        self.cache.lock().map(|c| c.len()).unwrap_or(0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    #[cfg(target_arch = "wasm32")]
    use wasm_bindgen_test::wasm_bindgen_test as test;

    fn config(v: serde_json::Value) -> BotDetectionConfig {
        BotDetectionConfig::parse(&v).expect("valid")
    }

    fn errors(v: serde_json::Value) -> Vec<(String, String)> {
        match BotDetectionConfig::parse(&v) {
            Err(PluginError::Config(e)) => e,
            other => panic!("expected errors, got {other:?}"),
        }
    }

    const FIREFOX: &str = "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0";
    const CHROME: &str = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 \
                          (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36";
    const GOOGLEBOT: &str =
        "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)";

    /// User-Agents: the first [`BOT_SAMPLES`] are bots by the built-in list, the others not.
    const SAMPLES: &[&str] = &[
        GOOGLEBOT,
        "Mozilla/5.0 (compatible; bingbot/2.0; +http://www.bing.com/bingbot.htm)",
        "facebookexternalhit/1.1 (+http://www.facebook.com/externalhit_uatext.php)",
        "Twitterbot/1.0",
        "Apache-HttpClient/4.5.14 (Java/17.0.2)",
        "Python-urllib/3.12",
        "Scrapy/2.11.0 (+https://scrapy.org)",
        "Mozilla/5.0 (compatible; YandexBot/3.0; +http://yandex.com/bots)",
        "Mozilla/5.0 (compatible; MJ12bot/v1.4.8; http://mj12bot.com/)",
        "Mozilla/5.0 (compatible; SemrushBot/7~bl; +http://www.semrush.com/bot.html)",
        "  Googlebot/2.1  ",
        "Mozilla/5.0 (compatible; Baiduspider/2.0; +http://www.baidu.com/search/spider.html)",
        "LinkedInBot/1.0 (compatible; Mozilla/5.0; Apache-HttpClient +http://www.linkedin.com)",
        "Mozilla/5.0 (compatible; Yahoo! Slurp; http://help.yahoo.com/help/us/ysearch/slurp)",
        "ia_archiver (+http://www.alexa.com/site/help/webmasters; crawler@alexa.com)",
        "Pingdom.com_bot_version_1.4_(http://www.pingdom.com/)",
        "Google-HTTP-Java-Client/1.43.3 (gzip)",
        "WinHTTP",
        "Mozilla/5.0 (compatible; robot)",
        "MyCrawler/1.0",
        "somespider",
        "webscraper 2",
        "xarchiver/1",
        "fooindexer/2",
        "acme-bot/2",
        "Mozilla/5.0 (compatible; Google/+/web/snippet)",
        "Mozilla/4.0 (compatible; MSIE 6.0; Windows NT 5.0; MSIECrawler)",
        "Grub/1.0",
        "WebZIP/4.0",
        "Y!J-BRW/1.0",
        "Mozilla/Nutch-1.9",
        "foo/Superbot 1.2",
        "Yowedo/1",
        "YandexImages/3.0",
        "holmes",
        "Kraken/0.1",
        FIREFOX,
        CHROME,
        "curl/8.5.0",
        "node",
        "PostmanRuntime/7.39.0",
        "python-requests/2.32.3",
        "Go-http-client/1.1",
        "okhttp/4.12.0",
        "Mozilla/5.0 (Linux; Android 10; CUBOT P30) AppleWebKit/537.36",
    ];
    const BOT_SAMPLES: usize = 36;

    #[test]
    fn the_built_in_list_compiles() {
        for (i, b) in BOTS.iter().enumerate() {
            assert!(Regex::new(b).is_ok(), "BOTS[{i}]");
        }
        assert!(bots().len() > 150, "{}", bots().len());
        let names = alternatives(
            BOTS[8]
                .strip_prefix('(')
                .unwrap()
                .split_once(")(?:[ /]v?")
                .unwrap()
                .0,
        );
        assert_eq!(bots().len(), BOTS.len() - 1 + names.len());
        assert_eq!(required_literal("Microsoft .*? Bot"), "microsoft ");
        assert_eq!(required_literal("msnbot(?:-media *)?"), "msnbot");
        assert_eq!(required_literal("\\b\\w*favicon\\w*\\b"), "favicon");
        assert_eq!(required_literal("Xenu(?:.s)? Link Sleuth"), " link sleuth");
        assert_eq!(required_literal("Yahoo[a-z]*Seeker"), "seeker");
        assert_eq!(required_literal("Mail\\.RU_Bot"), "ru_bot");
        assert_eq!(required_literal("abcd?"), "abc");
        assert_eq!(required_literal("^NING"), "ning");
        // Every name of BOTS[8] written as plain text is found, as itself and inside a value.
        let mut plain = 0;
        for n in &names {
            if n.bytes()
                .all(|c| c.is_ascii_alphanumeric() || b" _-".contains(&c))
            {
                plain += 1;
                assert!(is_known_bot(n), "{n}");
                assert!(
                    is_known_bot(&format!("Mozilla/5.0 (compatible; {n})")),
                    "{n}"
                );
            }
        }
        assert!(plain > 90, "{plain}");
        assert!(is_known_bot("Googlebot/2.1"));
    }

    /// The hints only skip entries that cannot match: on every User-Agent of these tests, the
    /// decision is the plain expressions' one.
    #[test]
    fn hints_never_change_a_decision() {
        let plain = |ua: &str| BOTS.iter().any(|b| Regex::new(b).unwrap().is_match(ua));
        for ua in SAMPLES {
            assert_eq!(is_known_bot(ua), plain(ua), "{ua}");
            // Each hint list holds a literal of its entry: an entry that matches has a hint in the value.
            let lower = ua.to_ascii_lowercase();
            for (b, hints) in BOTS.iter().zip(HINTS) {
                if Regex::new(b).unwrap().is_match(ua) && !hints.is_empty() {
                    assert!(hints.iter().any(|h| lower.contains(h)), "{ua} {b}");
                }
            }
        }
    }

    #[test]
    fn the_built_in_list_refuses_bots_and_admits_browsers() {
        let c = config(json!({}));
        for ua in &SAMPLES[..BOT_SAMPLES] {
            assert!(!c.admits(Some(ua)), "{ua}");
        }
        for ua in &SAMPLES[BOT_SAMPLES..] {
            assert!(c.admits(Some(ua)), "{ua}");
        }
        assert!(c.admits(None), "no User-Agent passes");
    }

    #[test]
    fn allow_wins_over_deny_and_the_built_in_list() {
        let c = config(json!({"allow": ["Googlebot", "^curl/"], "deny": ["curl", "Firefox/\\d+"]}));
        assert!(c.admits(Some(GOOGLEBOT)), "allow beats the built-in list");
        assert!(c.admits(Some("curl/8.5.0")), "allow beats deny");
        assert!(!c.admits(Some("my-curl/1")), "deny");
        assert!(!c.admits(Some(FIREFOX)), "deny");
        assert!(c.admits(Some(CHROME)));
        assert!(
            !c.admits(Some("Twitterbot/1.0")),
            "built-in list still applies"
        );
        // The docs' example.
        let e = config(json!({"allow": ["Googlebot/", "^acme-bot/\\d+"], "deny": ["^curl/"]}));
        assert!(!e.admits(Some("Mozilla/5.0 (compatible; bingbot/2.0)")));
        assert!(!e.admits(Some("curl/8.5.0")));
        assert!(e.admits(Some("Mozilla/5.0 (compatible; Googlebot/2.1)")));
        assert!(e.admits(Some("acme-bot/2")));
        assert!(e.admits(Some(FIREFOX)));
        // Searched anywhere, case-sensitively, unless the expression says otherwise.
        let d = config(json!({"deny": ["firefox", "(?i)chrome"]}));
        assert!(d.admits(Some(FIREFOX)));
        assert!(!d.admits(Some(CHROME)));
        // An empty `User-Agent` counts as none: not examined.
        let empty = config(json!({"deny": ["^$", "^\\s*$"]}));
        assert!(empty.admits(Some("")));
        assert!(empty.admits(Some("  ")));
        assert!(empty.admits(None));
    }

    #[test]
    fn refusal_is_403_forbidden() {
        let c = config(json!({"deny": ["evil"]}));
        let e = c.check(Some("evil/1.0")).unwrap_err();
        assert_eq!(e.status(), 403);
        assert_eq!(e.kind.code(), "forbidden");
        assert_eq!(e.kind.title(), "Forbidden");
        assert_eq!(e.detail, "Forbidden");
        assert!(c.check(Some(FIREFOX)).is_ok());
        assert!(c.check(None).is_ok());
    }

    #[test]
    fn the_cache_is_bounded_and_gives_the_same_answers() {
        let c = config(json!({"deny": ["^bad"]}));
        for round in 0..2 {
            for n in 0..(CACHE_ENTRIES + 10) {
                let ua = format!("bad-{n}");
                assert!(!c.admits(Some(&ua)), "{round} {ua}");
                assert!(c.admits(Some(&format!("ok-{n}"))));
                assert!(c.cached() <= CACHE_ENTRIES);
            }
        }
        let long = format!("bad{}", "x".repeat(CACHE_MAX_LEN));
        let before = c.cached();
        assert!(!c.admits(Some(&long)));
        assert_eq!(c.cached(), before, "long values are not remembered");
    }

    #[test]
    fn bad_input_is_reported_with_paths_without_quoting() {
        let e =
            errors(json!({"allow": ["ok", "(unclosed"], "deny": ["[z-a]", "sk-SECRET(", "fine"]}));
        let paths: Vec<&str> = e.iter().map(|(p, _)| p.as_str()).collect();
        assert_eq!(paths, ["allow[1]", "deny[0]", "deny[1]"]);
        assert!(e[0].1.starts_with("invalid regular expression"), "{e:?}");
        assert!(!format!("{e:?}").contains("SECRET"), "{e:?}");
        let e = errors(json!({"whitelist": ["x"]}));
        assert!(e[0].1.contains("unknown field"), "{e:?}");
        assert_eq!(errors(json!({"allow": "Googlebot"}))[0].0, "allow");
        assert_eq!(errors(json!({"deny": [1]}))[0].0, "deny[0]");
        assert!(BotDetectionConfig::parse(&serde_json::Value::Null).is_ok());
        assert!(BotDetectionConfig::parse(&json!({"allow": null, "deny": []})).is_ok());
    }
}
