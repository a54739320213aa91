//! `ip-restriction`: let through or turn away clients by IP address and CIDR range, IPv4 and IPv6
//! (Kong's plugin: `allow`, `deny`, `status`, `message`). See docs/traffic-policies.md.
//!
//! As in Kong 3.x, `deny` is checked first: an address in `deny` is refused even when it is also in
//! `allow`; then, when `allow` is not empty, an address outside it is refused.

use crate::error::{ErrorKind, GatewayError};
use crate::plugins::{settings, PluginError};
use serde::Deserialize;
use std::net::IpAddr;

/// Kong's default message.
pub const DEFAULT_MESSAGE: &str = "Your IP address is not allowed";

/// An IPv4 or IPv6 network: the address with its host bits cleared, and the prefix length.
/// IPv4 networks written in IPv6 as IPv4-mapped addresses (`::ffff:10.0.0.0/104`) are stored as
/// IPv4 (`10.0.0.0/8`), so that they match IPv4 clients and IPv4-mapped clients alike.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cidr {
    V4 { net: u32, prefix: u8 },
    V6 { net: u128, prefix: u8 },
}

fn mask32(prefix: u8) -> u32 {
    if prefix == 0 {
        0
    } else {
        u32::MAX << (32 - u32::from(prefix))
    }
}

fn mask128(prefix: u8) -> u128 {
    if prefix == 0 {
        0
    } else {
        u128::MAX << (128 - u32::from(prefix))
    }
}

/// A client address as the rules see it: IPv4-mapped IPv6 addresses (`::ffff:a.b.c.d`) become IPv4.
pub fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => IpAddr::V6(v6),
        },
        v4 => v4,
    }
}

/// `"<text>"` followed by `then`, when `text` is made only of what addresses and ranges are written
/// with (hex digits, `.`, `:`, `/`) and no longer than the longest of them; nothing otherwise: an
/// entry that is not an address at all may be anything pasted in the wrong place, a secret included.
fn quoted(text: &str, then: &str) -> String {
    let address_like = text.len() <= 49
        && text
            .bytes()
            .all(|b| b.is_ascii_hexdigit() || b".:/".contains(&b));
    if address_like {
        format!("{text:?}{then}")
    } else {
        String::new()
    }
}

impl Cidr {
    /// Parse `a.b.c.d`, `a.b.c.d/n` (n 0..=32), an IPv6 address, or `addr/n` (n 0..=128). Host bits
    /// beyond the prefix are allowed and ignored (`10.1.2.3/8` is `10.0.0.0/8`), as in Kong.
    pub fn parse(text: &str) -> Result<Cidr, String> {
        let (addr, prefix) = match text.split_once('/') {
            Some((a, p)) => (a, Some(p)),
            None => (text, None),
        };
        let ip: IpAddr = addr.parse().map_err(|_| {
            format!(
                "{}not an IP address or CIDR range (e.g. 192.168.0.0/16, 2001:db8::/32)",
                quoted(text, " is ")
            )
        })?;
        let max = if ip.is_ipv4() { 32 } else { 128 };
        let prefix = match prefix {
            None => max,
            Some(p) => match p.parse::<u8>() {
                Ok(n) if n <= max && !p.starts_with('+') && !p.is_empty() => n,
                _ => {
                    return Err(format!(
                        "{}the prefix length must be a number from 0 to {max}",
                        quoted(text, ": ")
                    ))
                }
            },
        };
        Ok(match ip {
            IpAddr::V4(v4) => Cidr::V4 {
                net: u32::from(v4) & mask32(prefix),
                prefix,
            },
            IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
                Some(v4) if prefix >= 96 => Cidr::V4 {
                    net: u32::from(v4) & mask32(prefix - 96),
                    prefix: prefix - 96,
                },
                _ => Cidr::V6 {
                    net: u128::from(v6) & mask128(prefix),
                    prefix,
                },
            },
        })
    }

    /// Whether `ip` (already [`canonical`]) is in this network.
    pub fn contains(&self, ip: IpAddr) -> bool {
        match (self, ip) {
            (Cidr::V4 { net, prefix }, IpAddr::V4(a)) => u32::from(a) & mask32(*prefix) == *net,
            (Cidr::V6 { net, prefix }, IpAddr::V6(a)) => u128::from(a) & mask128(*prefix) == *net,
            _ => false,
        }
    }
}

#[derive(Debug, Deserialize)]
#[cfg_attr(
    feature = "schema",
    derive(schemars::JsonSchema),
    schemars(
        rename = "IpRestrictionPluginConfig",
        description = "Settings of the `ip-restriction` plugin (docs/traffic-policies.md#ip-restriction)."
    )
)]
#[serde(deny_unknown_fields)]
pub(crate) struct Raw {
    #[serde(default)]
    allow: Option<Vec<String>>,
    #[serde(default)]
    deny: Option<Vec<String>>,
    #[serde(default)]
    status: Option<u16>,
    #[serde(default)]
    message: Option<String>,
}

/// A compiled `ip-restriction` instance.
#[derive(Debug, Clone, PartialEq)]
pub struct IpRestrictionConfig {
    pub allow: Vec<Cidr>,
    pub deny: Vec<Cidr>,
    pub status: u16,
    pub message: String,
}

/// Parse lists of addresses and ranges, reporting each bad entry under `field[i]`.
pub(crate) fn parse_list(
    field: &str,
    list: &[String],
    errors: &mut Vec<(String, String)>,
) -> Vec<Cidr> {
    let mut out = Vec::with_capacity(list.len());
    for (i, entry) in list.iter().enumerate() {
        match Cidr::parse(entry.trim()) {
            Ok(c) => out.push(c),
            Err(e) => errors.push((format!("{field}[{i}]"), e)),
        }
    }
    out
}

/// Check a `status` / `message` pair shared by the restriction plugins.
pub(crate) fn check_status_message(
    status: Option<u16>,
    message: Option<String>,
    default_message: &str,
    errors: &mut Vec<(String, String)>,
) -> (u16, String) {
    let status = status.unwrap_or(403);
    if !(400..=599).contains(&status) {
        errors.push((
            "status".into(),
            format!("{status} is not an error status (use 400..599)"),
        ));
    }
    let message = message.unwrap_or_else(|| default_message.to_string());
    // Characters, as the docs say (not UTF-8 bytes: 1024 `é` are 1024 characters).
    if message.is_empty() || message.chars().count() > 1024 {
        errors.push(("message".into(), "must be 1 to 1024 characters long".into()));
    }
    (status, message)
}

impl IpRestrictionConfig {
    pub fn parse(config: &serde_json::Value) -> Result<IpRestrictionConfig, PluginError> {
        let raw: Raw = settings(config)?;
        let mut errors = Vec::new();
        let allow = parse_list("allow", raw.allow.as_deref().unwrap_or(&[]), &mut errors);
        let deny = parse_list("deny", raw.deny.as_deref().unwrap_or(&[]), &mut errors);
        let empty = |l: &Option<Vec<String>>| l.as_ref().is_none_or(Vec::is_empty);
        if empty(&raw.allow) && empty(&raw.deny) {
            errors.push((
                "allow".into(),
                "give `allow` or `deny` (or both): a list of IP addresses and CIDR ranges".into(),
            ));
        }
        let (status, message) =
            check_status_message(raw.status, raw.message, DEFAULT_MESSAGE, &mut errors);
        if !errors.is_empty() {
            return Err(PluginError::Config(errors));
        }
        Ok(IpRestrictionConfig {
            allow,
            deny,
            status,
            message,
        })
    }

    /// Whether the client at `client_ip` (the `CF-Connecting-IP` the platform reports) may pass.
    /// No address, or one that does not parse, is refused with 403 (Kong does the same when it
    /// cannot identify the client).
    pub fn check(&self, client_ip: Option<&str>) -> Result<(), GatewayError> {
        let Some(ip) = client_ip.and_then(|s| s.trim().parse::<IpAddr>().ok()) else {
            return Err(GatewayError::new(
                ErrorKind::Restricted {
                    status: 403,
                    code: "ip_not_allowed",
                },
                "Cannot identify the client IP address",
            ));
        };
        if !self.admits(ip) {
            return Err(GatewayError::new(
                ErrorKind::Restricted {
                    status: self.status,
                    code: "ip_not_allowed",
                },
                self.message.clone(),
            ));
        }
        Ok(())
    }

    /// The rule itself: not in `deny`, and in `allow` when `allow` is given.
    pub fn admits(&self, ip: IpAddr) -> bool {
        let ip = canonical(ip);
        if self.deny.iter().any(|c| c.contains(ip)) {
            return false;
        }
        self.allow.is_empty() || self.allow.iter().any(|c| c.contains(ip))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    #[cfg(target_arch = "wasm32")]
    use wasm_bindgen_test::wasm_bindgen_test as test;

    fn config(v: serde_json::Value) -> IpRestrictionConfig {
        IpRestrictionConfig::parse(&v).expect("valid")
    }

    fn errors(v: serde_json::Value) -> Vec<(String, String)> {
        match IpRestrictionConfig::parse(&v) {
            Err(PluginError::Config(e)) => e,
            other => panic!("expected errors, got {other:?}"),
        }
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn cidrs_parse_and_match_v4_and_v6() {
        let c = Cidr::parse("10.1.2.3/8").unwrap();
        assert_eq!(
            c,
            Cidr::V4 {
                net: 0x0a00_0000,
                prefix: 8
            }
        );
        assert!(c.contains(ip("10.255.0.1")));
        assert!(!c.contains(ip("11.0.0.1")));
        let all4 = Cidr::parse("0.0.0.0/0").unwrap();
        assert!(all4.contains(ip("203.0.113.9")));
        assert!(!all4.contains(ip("2001:db8::1")));
        let v6 = Cidr::parse("2001:db8::/32").unwrap();
        assert!(v6.contains(ip("2001:db8:ffff::1")));
        assert!(!v6.contains(ip("2001:db9::1")));
        let host = Cidr::parse("2001:db8::1").unwrap();
        assert!(host.contains(ip("2001:db8::1")));
        assert!(!host.contains(ip("2001:db8::2")));
        let all6 = Cidr::parse("::/0").unwrap();
        assert!(all6.contains(ip("::1")));
        assert!(!all6.contains(ip("127.0.0.1")));
    }

    #[test]
    fn ipv4_mapped_addresses_and_ranges_are_ipv4() {
        assert_eq!(
            Cidr::parse("::ffff:10.0.0.0/104").unwrap(),
            Cidr::parse("10.0.0.0/8").unwrap()
        );
        assert_eq!(
            Cidr::parse("::ffff:192.0.2.7").unwrap(),
            Cidr::parse("192.0.2.7/32").unwrap()
        );
        let c = config(json!({"allow": ["192.0.2.0/24"]}));
        assert!(c.admits(ip("::ffff:192.0.2.55")));
        assert!(!c.admits(ip("::ffff:192.0.3.1")));
        let c = config(json!({"deny": ["::ffff:198.51.100.0/120"]}));
        assert!(!c.admits(ip("198.51.100.20")));
        assert!(c.admits(ip("198.51.101.20")));
    }

    #[test]
    fn deny_wins_over_allow_as_in_kong() {
        let c = config(json!({"allow": ["10.0.0.0/8"], "deny": ["10.0.0.5"]}));
        assert!(c.admits(ip("10.0.0.4")));
        assert!(!c.admits(ip("10.0.0.5")));
        assert!(!c.admits(ip("192.168.0.1")));
        let deny_only = config(json!({"deny": ["10.0.0.0/8"]}));
        assert!(deny_only.admits(ip("192.168.0.1")));
        assert!(!deny_only.admits(ip("10.9.9.9")));
    }

    #[test]
    fn refusal_uses_status_and_message() {
        let c = config(json!({"allow": ["10.0.0.0/8"], "status": 404, "message": "Nothing here"}));
        let e = c.check(Some("192.168.1.1")).unwrap_err();
        assert_eq!(e.status(), 404);
        assert_eq!(e.kind.code(), "ip_not_allowed");
        assert_eq!(e.detail, "Nothing here");
        assert!(c.check(Some(" 10.1.1.1 ")).is_ok());
        let d = config(json!({"deny": ["10.0.0.0/8"]}));
        let e = d.check(Some("10.0.0.1")).unwrap_err();
        assert_eq!((e.status(), e.detail.as_str()), (403, DEFAULT_MESSAGE));
        // No address, or garbage: refused with 403 whatever the lists say.
        for bad in [None, Some(""), Some("not-an-ip")] {
            let e = d.check(bad).unwrap_err();
            assert_eq!(e.status(), 403, "{bad:?}");
        }
    }

    #[test]
    fn bad_input_is_reported_with_paths() {
        let e = errors(
            json!({"allow": ["10.0.0.0/33", "10.0.0.1", "::1/129", "10.0.0/8", "fe80::1%eth0", "10.0.0.0/"]}),
        );
        let paths: Vec<&str> = e.iter().map(|(p, _)| p.as_str()).collect();
        assert_eq!(
            paths,
            ["allow[0]", "allow[2]", "allow[3]", "allow[4]", "allow[5]"]
        );
        assert!(e[0].1.contains("0 to 32"), "{e:?}");
        assert!(e[1].1.contains("0 to 128"), "{e:?}");
        assert!(e[2].1.contains("not an IP address"), "{e:?}");
        assert_eq!(errors(json!({}))[0].0, "allow");
        assert_eq!(errors(json!({"allow": [], "deny": []}))[0].0, "allow");
        assert_eq!(
            errors(json!({"deny": ["1.2.3.4"], "status": 200}))[0].0,
            "status"
        );
        assert_eq!(
            errors(json!({"deny": ["1.2.3.4"], "message": ""}))[0].0,
            "message"
        );
        assert_eq!(
            errors(json!({"deny": ["1.2.3.4"], "whitelist": []}))[0].0,
            "whitelist"
        );
        assert!(errors(json!({"deny": ["1.2.3.4"], "whitelist": []}))[0]
            .1
            .contains("unknown field"));
        assert_eq!(errors(json!({"deny": "1.2.3.4"}))[0].0, "deny");
    }

    #[test]
    fn single_addresses_trimmed_entries_and_what_is_not_an_address() {
        // An address without a prefix is /32 or /128; spaces around an entry are ignored.
        assert_eq!(
            Cidr::parse("192.0.2.7").unwrap(),
            Cidr::parse("192.0.2.7/32").unwrap()
        );
        assert_eq!(
            Cidr::parse("2001:DB8:0:0:0:0:0:7").unwrap(),
            Cidr::parse("2001:db8::7/128").unwrap()
        );
        let c = config(json!({"allow": [" 198.51.100.0/24 "], "status": 418}));
        assert!(c.admits(ip("198.51.100.255")));
        assert!(!c.admits(ip("198.51.101.0")));
        // Zone ids, ports, brackets and leading zeros are not addresses, in entries and from the client.
        let bad = [
            "fe80::1%eth0",
            "192.0.2.7:443",
            "[2001:db8::7]",
            "010.0.0.1",
        ];
        let e = errors(json!({ "allow": bad }));
        assert_eq!(e.len(), bad.len(), "{e:?}");
        for b in bad.iter().chain(&["192.0.2.7, 10.0.0.1"]) {
            let err = c.check(Some(b)).unwrap_err();
            assert_eq!(err.status(), 403, "{b}: 403 whatever `status` says");
            assert_eq!(err.detail, "Cannot identify the client IP address", "{b}");
        }
    }

    #[test]
    fn message_length_is_counted_in_characters() {
        let ok = "\u{e9}".repeat(1024);
        assert_eq!(
            config(json!({"deny": ["1.2.3.4"], "message": ok})).message,
            ok
        );
        let e = errors(json!({"deny": ["1.2.3.4"], "message": "\u{e9}".repeat(1025)}));
        assert_eq!(e[0].0, "message");
    }

    #[test]
    fn only_address_like_entries_are_quoted() {
        let e =
            errors(json!({"deny": ["10.0.0.0/33", "sk-SECRET", "10.0.0.1/sk-SECRET", "10.0.0/8"]}));
        assert_eq!(
            e[0].1,
            "\"10.0.0.0/33\": the prefix length must be a number from 0 to 32"
        );
        assert_eq!(
            e[1].1,
            "not an IP address or CIDR range (e.g. 192.168.0.0/16, 2001:db8::/32)"
        );
        assert_eq!(e[2].1, "the prefix length must be a number from 0 to 32");
        assert!(
            e[3].1.starts_with("\"10.0.0/8\" is not an IP address"),
            "{e:?}"
        );
        assert!(!format!("{e:?}").contains("SECRET"), "{e:?}");
    }
}
