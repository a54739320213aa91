//! `request-size-limiting`: refuse request bodies over a size (Kong's plugin: `allowed_payload_size`,
//! `size_unit`, `require_content_length`). See docs/traffic-policies.md.
//!
//! A `Content-Length` over the limit is refused at once (413; 417 with `Expect: 100-continue`, as
//! Kong). A body of unknown length (chunked) is counted while it streams to the origin: the glue
//! wraps it ([`Decision::Count`]), and past the limit the stream is cut.

use crate::error::{ErrorKind, GatewayError};
use crate::plugins::{settings, PluginError};
use serde::Deserialize;

/// Kong's units: powers of 1024.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[cfg_attr(
    feature = "schema",
    derive(schemars::JsonSchema),
    schemars(rename = "RequestSizeLimitingUnit")
)]
#[serde(rename_all = "lowercase")]
pub enum SizeUnit {
    Bytes,
    Kilobytes,
    Megabytes,
}

impl SizeUnit {
    pub fn bytes(self) -> u64 {
        match self {
            SizeUnit::Bytes => 1,
            SizeUnit::Kilobytes => 1024,
            SizeUnit::Megabytes => 1024 * 1024,
        }
    }
}

fn default_size() -> u64 {
    128
}

#[derive(Debug, Deserialize)]
#[cfg_attr(
    feature = "schema",
    derive(schemars::JsonSchema),
    schemars(
        rename = "RequestSizeLimitingPluginConfig",
        description = "Settings of the `request-size-limiting` plugin (docs/traffic-policies.md#request-size-limiting)."
    )
)]
#[serde(deny_unknown_fields)]
pub(crate) struct Raw {
    #[serde(default = "default_size")]
    allowed_payload_size: u64,
    #[serde(default)]
    size_unit: Option<SizeUnit>,
    #[serde(default)]
    require_content_length: bool,
}

/// A compiled `request-size-limiting` instance.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestSizeLimitingConfig {
    pub allowed_payload_size: u64,
    pub size_unit: SizeUnit,
    pub require_content_length: bool,
    /// `allowed_payload_size` in bytes.
    pub limit: u64,
}

/// What to do with a request that passed the header checks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    /// Nothing more to check (a `Content-Length` within the limit, or no body).
    Pass,
    /// A body of unknown length: count it while it streams and cut it past this many bytes.
    Count(u64),
}

/// The request facts the decision needs.
#[derive(Debug, Clone, Copy, Default)]
pub struct BodyFacts<'a> {
    pub content_length: Option<&'a str>,
    /// Whether the request has a body (a stream) at all.
    pub has_body: bool,
    pub expect: Option<&'a str>,
}

impl RequestSizeLimitingConfig {
    pub fn parse(config: &serde_json::Value) -> Result<RequestSizeLimitingConfig, PluginError> {
        let raw: Raw = settings(config)?;
        let size_unit = raw.size_unit.unwrap_or(SizeUnit::Megabytes);
        let limit = raw
            .allowed_payload_size
            .checked_mul(size_unit.bytes())
            .filter(|&l| l <= (1 << 53))
            .ok_or_else(|| {
                PluginError::Config(vec![(
                    "allowed_payload_size".into(),
                    format!(
                        "{} {:?} is too large (at most 2^53 bytes)",
                        raw.allowed_payload_size, size_unit
                    ),
                )])
            })?;
        Ok(RequestSizeLimitingConfig {
            allowed_payload_size: raw.allowed_payload_size,
            size_unit,
            require_content_length: raw.require_content_length,
            limit,
        })
    }

    /// The error for a body over the limit.
    pub fn too_large(&self, expect: Option<&str>) -> GatewayError {
        let expect_continue = expect.is_some_and(|e| e.trim().eq_ignore_ascii_case("100-continue"));
        GatewayError::new(
            ErrorKind::PayloadTooLarge { expect_continue },
            format!(
                "Request size limit exceeded: the body may have at most {} bytes",
                self.limit
            ),
        )
    }

    /// Decide from the headers: refuse a `Content-Length` over the limit, refuse a body without one
    /// when `require_content_length` is set, and say whether the body must be counted.
    pub fn decide(&self, req: BodyFacts<'_>) -> Result<Decision, GatewayError> {
        let length = req
            .content_length
            .map(str::trim)
            .filter(|v| !v.is_empty() && v.bytes().all(|b| b.is_ascii_digit()));
        if let Some(v) = length {
            // All digits: a number too long for u64 is over any limit.
            let n = v.parse::<u64>().unwrap_or(u64::MAX);
            return if n > self.limit {
                Err(self.too_large(req.expect))
            } else {
                Ok(Decision::Pass)
            };
        }
        if !req.has_body {
            return Ok(Decision::Pass);
        }
        if self.require_content_length {
            return Err(GatewayError::new(
                ErrorKind::LengthRequired,
                "A valid Content-Length header is required",
            ));
        }
        Ok(Decision::Count(self.limit))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    #[cfg(target_arch = "wasm32")]
    use wasm_bindgen_test::wasm_bindgen_test as test;

    fn config(v: serde_json::Value) -> RequestSizeLimitingConfig {
        RequestSizeLimitingConfig::parse(&v).expect("valid")
    }

    fn facts(cl: Option<&str>, has_body: bool) -> BodyFacts<'_> {
        BodyFacts {
            content_length: cl,
            has_body,
            expect: None,
        }
    }

    #[test]
    fn defaults_and_units_follow_kong() {
        let c = config(json!({}));
        assert_eq!(c.allowed_payload_size, 128);
        assert_eq!(c.size_unit, SizeUnit::Megabytes);
        assert_eq!(c.limit, 128 * 1024 * 1024);
        assert!(!c.require_content_length);
        assert_eq!(
            config(json!({"allowed_payload_size": 2, "size_unit": "kilobytes"})).limit,
            2048
        );
        assert_eq!(
            config(json!({"allowed_payload_size": 10, "size_unit": "bytes"})).limit,
            10
        );
        assert_eq!(
            config(json!({"allowed_payload_size": 0, "size_unit": "bytes"})).limit,
            0
        );

        // At most 2^53 bytes in all, whatever the unit.
        assert_eq!(
            config(json!({"allowed_payload_size": 1u64 << 53, "size_unit": "bytes"})).limit,
            1 << 53
        );
        for (size, unit) in [
            ((1u64 << 53) + 1, "bytes"),
            ((1 << 43) + 1, "kilobytes"),
            ((1 << 33) + 1, "megabytes"),
        ] {
            match RequestSizeLimitingConfig::parse(
                &json!({"allowed_payload_size": size, "size_unit": unit}),
            ) {
                Err(PluginError::Config(e)) => assert_eq!(e[0].0, "allowed_payload_size"),
                other => panic!("{other:?}"),
            }
        }
    }

    #[test]
    fn content_length_is_checked_at_once() {
        let c = config(json!({"allowed_payload_size": 10, "size_unit": "bytes"}));
        assert_eq!(c.decide(facts(Some("10"), true)), Ok(Decision::Pass));
        assert_eq!(c.decide(facts(Some("0"), false)), Ok(Decision::Pass));
        let e = c.decide(facts(Some("11"), true)).unwrap_err();
        assert_eq!(e.status(), 413);
        assert_eq!(e.kind.code(), "payload_too_large");
        assert!(e.detail.contains("at most 10 bytes"), "{}", e.detail);
        let huge = c
            .decide(facts(Some("99999999999999999999999"), true))
            .unwrap_err();
        assert_eq!(huge.status(), 413);
        let e = c
            .decide(BodyFacts {
                content_length: Some("11"),
                has_body: true,
                expect: Some(" 100-Continue "),
            })
            .unwrap_err();
        assert_eq!(e.status(), 417);
        assert_eq!(e.kind.code(), "payload_too_large");
    }

    #[test]
    fn unknown_length_is_counted_or_refused() {
        let c = config(json!({"allowed_payload_size": 1, "size_unit": "kilobytes"}));
        assert_eq!(c.decide(facts(None, true)), Ok(Decision::Count(1024)));
        assert_eq!(
            c.decide(facts(Some("abc"), true)),
            Ok(Decision::Count(1024))
        );
        assert_eq!(c.decide(facts(None, false)), Ok(Decision::Pass));
        let strict = config(json!({"allowed_payload_size": 1, "require_content_length": true}));
        let e = strict.decide(facts(None, true)).unwrap_err();
        assert_eq!((e.status(), e.kind.code()), (411, "length_required"));
        // No body at all: nothing to measure, nothing required.
        assert_eq!(strict.decide(facts(None, false)), Ok(Decision::Pass));
        assert_eq!(strict.decide(facts(Some("5"), true)), Ok(Decision::Pass));
    }

    #[test]
    fn bad_input_is_reported_with_paths() {
        let err = |v| match RequestSizeLimitingConfig::parse(&v) {
            Err(PluginError::Config(e)) => e,
            other => panic!("{other:?}"),
        };
        assert_eq!(err(json!({"size_unit": "gigabytes"}))[0].0, "size_unit");
        assert_eq!(
            err(json!({"allowed_payload_size": -1}))[0].0,
            "allowed_payload_size"
        );
        assert_eq!(
            err(json!({"allowed_payload_size": 1.5}))[0].0,
            "allowed_payload_size"
        );
        assert_eq!(
            err(json!({"allowed_payload_size": u64::MAX}))[0].0,
            "allowed_payload_size"
        );
        assert!(err(json!({"max": 1}))[0].1.contains("unknown field"));
    }
}
