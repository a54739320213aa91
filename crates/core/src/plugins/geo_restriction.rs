//! `geo-restriction`: let through or turn away clients by the country Cloudflare reports for them
//! (`request.cf.country`). Not a Kong OSS plugin: designed like `ip-restriction` (`deny` checked
//! first, then `allow`; `status`, `message`). See docs/traffic-policies.md.

use crate::error::{ErrorKind, GatewayError};
use crate::plugins::ip_restriction::check_status_message;
use crate::plugins::{settings, PluginError};
use serde::Deserialize;

pub const DEFAULT_MESSAGE: &str = "Access from your country is not allowed";

/// The officially assigned ISO 3166-1 alpha-2 codes (249), then the codes Cloudflare adds:
/// `XK` (Kosovo), `XX` (unknown) and `T1` (Tor).
const ISO_3166_1: &str = "AD AE AF AG AI AL AM AO AQ AR AS AT AU AW AX AZ BA BB BD BE BF BG BH BI BJ BL \
BM BN BO BQ BR BS BT BV BW BY BZ CA CC CD CF CG CH CI CK CL CM CN CO CR CU CV CW CX CY CZ DE DJ DK DM DO \
DZ EC EE EG EH ER ES ET FI FJ FK FM FO FR GA GB GD GE GF GG GH GI GL GM GN GP GQ GR GS GT GU GW GY HK HM \
HN HR HT HU ID IE IL IM IN IO IQ IR IS IT JE JM JO JP KE KG KH KI KM KN KP KR KW KY KZ LA LB LC LI LK LR \
LS LT LU LV LY MA MC MD ME MF MG MH MK ML MM MN MO MP MQ MR MS MT MU MV MW MX MY MZ NA NC NE NF NG NI NL \
NO NP NR NU NZ OM PA PE PF PG PH PK PL PM PN PR PS PT PW PY QA RE RO RS RU RW SA SB SC SD SE SG SH SI SJ \
SK SL SM SN SO SR SS ST SV SX SY SZ TC TD TF TG TH TJ TK TL TM TN TO TR TT TV TW TZ UA UG UM US UY UZ VA \
VC VE VG VI VN VU WF WS YE YT ZA ZM ZW";
const CLOUDFLARE_CODES: [&str; 3] = ["XK", "XX", "T1"];

/// The code that stands for "country unknown".
pub const UNKNOWN: &str = "XX";

/// Whether `code` is a country code `request.cf.country` can hold (upper case).
pub fn known_code(code: &str) -> bool {
    code.len() == 2
        && (CLOUDFLARE_CODES.contains(&code) || ISO_3166_1.split(' ').any(|c| c == code))
}

/// What to do with a request whose country is unknown (`cf.country` missing, empty or `XX`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[cfg_attr(
    feature = "schema",
    derive(schemars::JsonSchema),
    schemars(rename = "GeoRestrictionUnknownCountry")
)]
#[serde(rename_all = "lowercase")]
pub enum Unknown {
    /// Treat it as the code `XX`: refused by an `allow_countries` list without `XX`, let through by
    /// a `deny_countries` list without `XX`.
    Match,
    /// Always let it through (the lists are not consulted).
    Allow,
    /// Always refuse it.
    Deny,
}

#[derive(Debug, Deserialize)]
#[cfg_attr(
    feature = "schema",
    derive(schemars::JsonSchema),
    schemars(
        rename = "GeoRestrictionPluginConfig",
        description = "Settings of the `geo-restriction` plugin (docs/traffic-policies.md#geo-restriction)."
    )
)]
#[serde(deny_unknown_fields)]
pub(crate) struct Raw {
    #[serde(default)]
    allow_countries: Option<Vec<String>>,
    #[serde(default)]
    deny_countries: Option<Vec<String>>,
    #[serde(default)]
    unknown_country: Option<Unknown>,
    #[serde(default)]
    status: Option<u16>,
    #[serde(default)]
    message: Option<String>,
}

/// A compiled `geo-restriction` instance (codes upper case).
#[derive(Debug, Clone, PartialEq)]
pub struct GeoRestrictionConfig {
    pub allow_countries: Vec<String>,
    pub deny_countries: Vec<String>,
    pub unknown_country: Unknown,
    pub status: u16,
    pub message: String,
}

fn codes(field: &str, list: &[String], errors: &mut Vec<(String, String)>) -> Vec<String> {
    let mut out = Vec::with_capacity(list.len());
    for (i, c) in list.iter().enumerate() {
        let up = c.trim().to_ascii_uppercase();
        if known_code(&up) {
            out.push(up);
        } else {
            errors.push((
                format!("{field}[{i}]"),
                format!(
                    // Quoted only when it looks like a code: anything else may be a secret
                    // pasted in the wrong place.
                    "{}not an ISO 3166-1 alpha-2 country code (e.g. \"DE\"), nor one of \
                     Cloudflare's \"XK\", \"XX\" (unknown), \"T1\" (Tor)",
                    if (1..=3).contains(&c.len()) && c.bytes().all(|b| b.is_ascii_alphanumeric()) {
                        format!("{c:?} is ")
                    } else {
                        String::new()
                    }
                ),
            ));
        }
    }
    out
}

impl GeoRestrictionConfig {
    pub fn parse(config: &serde_json::Value) -> Result<GeoRestrictionConfig, PluginError> {
        let raw: Raw = settings(config)?;
        let mut errors = Vec::new();
        let allow_countries = codes(
            "allow_countries",
            raw.allow_countries.as_deref().unwrap_or(&[]),
            &mut errors,
        );
        let deny_countries = codes(
            "deny_countries",
            raw.deny_countries.as_deref().unwrap_or(&[]),
            &mut errors,
        );
        let empty = |l: &Option<Vec<String>>| l.as_ref().is_none_or(Vec::is_empty);
        if empty(&raw.allow_countries) && empty(&raw.deny_countries) {
            errors.push((
                "allow_countries".into(),
                "give `allow_countries` or `deny_countries` (or both): a list of country codes"
                    .into(),
            ));
        }
        let (status, message) =
            check_status_message(raw.status, raw.message, DEFAULT_MESSAGE, &mut errors);
        if !errors.is_empty() {
            return Err(PluginError::Config(errors));
        }
        Ok(GeoRestrictionConfig {
            allow_countries,
            deny_countries,
            unknown_country: raw.unknown_country.unwrap_or(Unknown::Match),
            status,
            message,
        })
    }

    /// The rule itself, for the country `request.cf.country` holds (`None` when there is none).
    pub fn admits(&self, country: Option<&str>) -> bool {
        let code = country
            .map(|c| c.trim().to_ascii_uppercase())
            .filter(|c| !c.is_empty())
            .unwrap_or_else(|| UNKNOWN.to_string());
        if code == UNKNOWN {
            match self.unknown_country {
                Unknown::Allow => return true,
                Unknown::Deny => return false,
                Unknown::Match => {}
            }
        }
        if self.deny_countries.contains(&code) {
            return false;
        }
        self.allow_countries.is_empty() || self.allow_countries.contains(&code)
    }

    pub fn check(&self, country: Option<&str>) -> Result<(), GatewayError> {
        if self.admits(country) {
            Ok(())
        } else {
            Err(GatewayError::new(
                ErrorKind::Restricted {
                    status: self.status,
                    code: "country_not_allowed",
                },
                self.message.clone(),
            ))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    #[cfg(target_arch = "wasm32")]
    use wasm_bindgen_test::wasm_bindgen_test as test;

    fn config(v: serde_json::Value) -> GeoRestrictionConfig {
        GeoRestrictionConfig::parse(&v).expect("valid")
    }

    fn errors(v: serde_json::Value) -> Vec<(String, String)> {
        match GeoRestrictionConfig::parse(&v) {
            Err(PluginError::Config(e)) => e,
            other => panic!("expected errors, got {other:?}"),
        }
    }

    #[test]
    fn the_code_table_has_every_assigned_code_once() {
        let codes: Vec<&str> = ISO_3166_1.split(' ').collect();
        assert_eq!(codes.len(), 249);
        let mut sorted = codes.clone();
        sorted.sort_unstable();
        sorted.dedup();
        assert_eq!(sorted, codes, "sorted, no duplicates");
        for c in ["DE", "US", "FR", "JP", "ZW", "AX", "XK", "XX", "T1"] {
            assert!(known_code(c), "{c}");
        }
        for c in ["UK", "EU", "ZZ", "de", "DEU", ""] {
            assert!(!known_code(c), "{c}");
        }
    }

    #[test]
    fn allow_and_deny_lists_deny_first() {
        let c = config(json!({"allow_countries": ["de", "FR"], "deny_countries": ["FR"]}));
        assert_eq!(c.allow_countries, ["DE", "FR"]);
        assert!(c.admits(Some("DE")));
        assert!(!c.admits(Some("FR")), "deny wins");
        assert!(!c.admits(Some("US")));
        let d = config(json!({"deny_countries": ["RU", "T1"]}));
        assert!(d.admits(Some("US")));
        assert!(!d.admits(Some("RU")));
        assert!(!d.admits(Some("T1")), "Tor is a code like any other");
    }

    #[test]
    fn unknown_country_is_configurable() {
        let allow = |u: &str| config(json!({"allow_countries": ["DE"], "unknown_country": u}));
        let deny = |u: &str| config(json!({"deny_countries": ["RU"], "unknown_country": u}));
        for unknown in [None, Some(""), Some("XX"), Some("xx")] {
            // "match": unknown is "XX", matched against the lists.
            assert!(!allow("match").admits(unknown), "{unknown:?}");
            assert!(deny("match").admits(unknown), "{unknown:?}");
            assert!(allow("allow").admits(unknown));
            assert!(deny("allow").admits(unknown));
            assert!(!allow("deny").admits(unknown));
            assert!(!deny("deny").admits(unknown));
        }
        assert!(config(json!({"allow_countries": ["XX"]})).admits(None));
        assert_eq!(
            config(json!({"deny_countries": ["RU"]})).unknown_country,
            Unknown::Match
        );
        // A known country is unaffected by `unknown_country`.
        assert!(allow("deny").admits(Some("DE")));
        assert!(!deny("allow").admits(Some("RU")));
    }

    #[test]
    fn refusal_uses_status_and_message() {
        let c = config(json!({"allow_countries": ["DE"], "status": 451, "message": "Not here"}));
        let e = c.check(Some("US")).unwrap_err();
        assert_eq!(e.status(), 451);
        assert_eq!(e.kind.code(), "country_not_allowed");
        assert_eq!(e.kind.title(), "Unavailable for legal reasons");
        assert_eq!(e.detail, "Not here");
        let e = config(json!({"deny_countries": ["US"]}))
            .check(Some("US"))
            .unwrap_err();
        assert_eq!((e.status(), e.detail.as_str()), (403, DEFAULT_MESSAGE));
        assert!(c.check(Some("DE")).is_ok());
    }

    #[test]
    fn bad_input_is_reported_with_paths() {
        let e =
            errors(json!({"allow_countries": ["DE", "UK", "Germany"], "deny_countries": ["EU"]}));
        let paths: Vec<&str> = e.iter().map(|(p, _)| p.as_str()).collect();
        assert_eq!(
            paths,
            [
                "allow_countries[1]",
                "allow_countries[2]",
                "deny_countries[0]"
            ]
        );
        assert!(e[0].1.starts_with("\"UK\" is not an ISO 3166-1"), "{e:?}");
        // Only what looks like a code is quoted: anything else may be a secret.
        assert!(e[1].1.starts_with("not an ISO 3166-1"), "{e:?}");
        assert!(!format!("{e:?}").contains("Germany"), "{e:?}");
        assert_eq!(errors(json!({}))[0].0, "allow_countries");
        assert_eq!(
            errors(json!({"deny_countries": ["RU"], "unknown_country": "maybe"}))[0].0,
            "unknown_country"
        );
        assert_eq!(
            errors(json!({"deny_countries": ["RU"], "status": 302}))[0].0,
            "status"
        );
        assert!(
            errors(json!({"deny_countries": ["RU"], "countries": []}))[0]
                .1
                .contains("unknown field")
        );
    }
}
