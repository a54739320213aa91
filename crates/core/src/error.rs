//! The one error type of the gateway, and the single place where an error becomes a status and a body.
//!
//! Every failure a client can see is a [`GatewayError`]. The glue never invents statuses: it calls
//! [`GatewayError::status`] and [`GatewayError::problem_json`].

use std::fmt;

/// What went wrong, in the gateway's own words. Each kind has one status and one stable `code`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ErrorKind {
    /// No route matches the request (404).
    NoRoute,
    /// A route matches the host and path, but not the method (405). Holds the allowed methods.
    MethodNotAllowed { allow: Vec<String> },
    /// The request is malformed (400).
    BadRequest,
    /// The path the gateway would forward has a `.` or `..` segment, in some spelling, that could take
    /// it out of the service's base path (400; see `router::dot_segment`).
    InvalidPath,
    /// The request body is larger than allowed (413; 417 when the client sent `Expect: 100-continue`,
    /// as Kong's request-size-limiting does).
    PayloadTooLarge { expect_continue: bool },
    /// The request has a body without a `Content-Length` and the route requires one (411).
    LengthRequired,
    /// An `ip-restriction` or `geo-restriction` rule refused the client (403 unless the plugin sets
    /// `status`). `code`: `ip_not_allowed` or `country_not_allowed`.
    Restricted { status: u16, code: &'static str },
    /// The origin refused the connection, could not be reached, or answered with something unusable (502).
    UpstreamUnreachable,
    /// The origin did not answer within the service timeout (504).
    UpstreamTimeout,
    /// Every target of the service is out after failing its passive health checks (503).
    /// `retry_after_secs`: seconds until the first cool-down ends (`Retry-After`), when known.
    NoHealthyUpstream { retry_after_secs: Option<u64> },
    /// `Cache-Control: only-if-cached` and no stored response can answer (504, RFC 9111 5.2.1.7).
    NotCached,
    /// The gateway has no usable configuration (503).
    NoConfig,
    /// A bug or an unexpected runtime failure (500).
    Internal,
    /// Missing, invalid, expired, not yet valid or revoked credentials (401, `WWW-Authenticate: challenge`).
    Unauthorized {
        failure: crate::auth::AuthFailure,
        challenge: String,
    },
    /// Authenticated, but an ACL does not let the consumer through (403).
    Forbidden,
    /// A rate-limiting policy refused the request (429 unless the policy sets `error_code`).
    RateLimit { status: u16, retry_after_secs: u64 },
    /// The rate-limit counter could not be reached and the policy is not fault tolerant (503).
    RateLimitUnavailable,
    /// An error on an AI (OpenAI-compatible) route, shown in OpenAI's error shape; status from the
    /// `AiError`. `wraps`: the gateway error it stands for (auth, limits), whose headers it keeps.
    Ai {
        error: Box<crate::ai::AiError>,
        wraps: Option<Box<ErrorKind>>,
    },
}

impl ErrorKind {
    pub fn status(&self) -> u16 {
        match self {
            ErrorKind::NoRoute => 404,
            ErrorKind::MethodNotAllowed { .. } => 405,
            ErrorKind::BadRequest => 400,
            ErrorKind::InvalidPath => 400,
            ErrorKind::PayloadTooLarge {
                expect_continue: false,
            } => 413,
            ErrorKind::PayloadTooLarge {
                expect_continue: true,
            } => 417,
            ErrorKind::LengthRequired => 411,
            ErrorKind::Restricted { status, .. } => *status,
            ErrorKind::UpstreamUnreachable => 502,
            ErrorKind::UpstreamTimeout => 504,
            ErrorKind::NotCached => 504,
            ErrorKind::NoHealthyUpstream { .. } => 503,
            ErrorKind::NoConfig => 503,
            ErrorKind::Internal => 500,
            ErrorKind::Unauthorized { .. } => 401,
            ErrorKind::Forbidden => 403,
            ErrorKind::RateLimit { status, .. } => *status,
            ErrorKind::RateLimitUnavailable => 503,
            ErrorKind::Ai { error, .. } => error.status,
        }
    }

    /// Stable, machine-readable code, part of the public API.
    pub fn code(&self) -> &'static str {
        match self {
            ErrorKind::NoRoute => "no_route",
            ErrorKind::MethodNotAllowed { .. } => "method_not_allowed",
            ErrorKind::BadRequest => "bad_request",
            ErrorKind::InvalidPath => "invalid_path",
            ErrorKind::PayloadTooLarge { .. } => "payload_too_large",
            ErrorKind::LengthRequired => "length_required",
            ErrorKind::Restricted { code, .. } => code,
            ErrorKind::UpstreamUnreachable => "upstream_unreachable",
            ErrorKind::UpstreamTimeout => "upstream_timeout",
            ErrorKind::NotCached => "not_cached",
            ErrorKind::NoHealthyUpstream { .. } => "no_healthy_upstream",
            ErrorKind::NoConfig => "no_config",
            ErrorKind::Internal => "internal_error",
            ErrorKind::Unauthorized { failure, .. } => failure.code(),
            ErrorKind::Forbidden => "forbidden",
            ErrorKind::RateLimit { .. } => "rate_limited",
            ErrorKind::RateLimitUnavailable => "rate_limit_unavailable",
            ErrorKind::Ai { wraps: Some(k), .. } => k.code(),
            ErrorKind::Ai { error, .. } => crate::ai::static_code(error),
        }
    }

    pub fn title(&self) -> &'static str {
        match self {
            ErrorKind::NoRoute => "No route matches the request",
            ErrorKind::MethodNotAllowed { .. } => "Method not allowed",
            ErrorKind::BadRequest => "Bad request",
            ErrorKind::InvalidPath => "Invalid path",
            ErrorKind::PayloadTooLarge {
                expect_continue: false,
            } => "Payload too large",
            ErrorKind::PayloadTooLarge {
                expect_continue: true,
            } => "Expectation failed",
            ErrorKind::LengthRequired => "Length required",
            ErrorKind::Restricted { status: 403, .. } => "Forbidden",
            ErrorKind::Restricted { status: 404, .. } => "Not found",
            ErrorKind::Restricted { status: 451, .. } => "Unavailable for legal reasons",
            ErrorKind::Restricted { .. } => "Access restricted",
            ErrorKind::UpstreamUnreachable => "Upstream unreachable",
            ErrorKind::UpstreamTimeout => "Upstream timed out",
            ErrorKind::NotCached => "Not in the cache",
            ErrorKind::NoHealthyUpstream { .. } => "No healthy upstream",
            ErrorKind::NoConfig => "Gateway has no usable configuration",
            ErrorKind::Internal => "Internal gateway error",
            ErrorKind::Unauthorized { .. } => "Unauthorized",
            ErrorKind::Forbidden => "Forbidden",
            ErrorKind::RateLimit { .. } => "Too many requests",
            ErrorKind::RateLimitUnavailable => "Rate limiting unavailable",
            ErrorKind::Ai { wraps: Some(k), .. } => k.title(),
            ErrorKind::Ai { .. } => "AI gateway error",
        }
    }
}

/// A failure with a human-readable detail. The detail is shown to clients: never put secrets in it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GatewayError {
    pub kind: ErrorKind,
    pub detail: String,
}

impl GatewayError {
    pub fn new(kind: ErrorKind, detail: impl Into<String>) -> Self {
        GatewayError {
            kind,
            detail: detail.into(),
        }
    }

    pub fn status(&self) -> u16 {
        self.kind.status()
    }

    /// Extra response headers the error requires (`Allow` on 405).
    pub fn headers(&self) -> Vec<(&'static str, String)> {
        match &self.kind {
            ErrorKind::MethodNotAllowed { allow } => vec![("allow", allow.join(", "))],
            ErrorKind::Unauthorized { challenge, .. } => {
                vec![("www-authenticate", challenge.clone())]
            }
            ErrorKind::RateLimit {
                retry_after_secs, ..
            } => vec![("retry-after", retry_after_secs.to_string())],
            ErrorKind::NoHealthyUpstream {
                retry_after_secs: Some(secs),
            } => vec![("retry-after", secs.to_string())],
            ErrorKind::Ai { wraps: Some(k), .. } => GatewayError::new((**k).clone(), "").headers(),
            _ => Vec::new(),
        }
    }

    /// RFC 9457 problem details body (`application/problem+json`).
    pub fn problem_json(&self, request_id: &str) -> String {
        serde_json::json!({
            "type": format!("https://edgegate.dev/errors/{}", self.kind.code()),
            "title": self.kind.title(),
            "status": self.status(),
            "detail": self.detail,
            "code": self.kind.code(),
            "request_id": request_id,
        })
        .to_string()
    }
}

impl fmt::Display for GatewayError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.kind.code(), self.detail)
    }
}

impl std::error::Error for GatewayError {}

pub const PROBLEM_JSON: &str = "application/problem+json";

/// An [`AiError`](crate::ai::AiError) to and from the gateway's error type (an inherent impl before the AI
/// code moved to the `edgegate-ai` crate; the same calls with this trait in scope).
pub trait AiErrorExt {
    fn from_gateway(e: &GatewayError) -> crate::ai::AiError;
    fn into_gateway(self) -> GatewayError;
}

impl AiErrorExt for crate::ai::AiError {
    /// A gateway error (authentication, ACL, rate limit, routing) shown on an AI route: same status
    /// and message, OpenAI's `type` for the status, the gateway's stable code.
    fn from_gateway(e: &GatewayError) -> crate::ai::AiError {
        if let ErrorKind::Ai { error, .. } = &e.kind {
            return (**error).clone();
        }
        let status = e.status();
        let kind = match status {
            401 => "authentication_error",
            403 => "permission_error",
            429 => "rate_limit_error",
            s if s >= 500 => "server_error",
            _ => "invalid_request_error",
        };
        let message = if e.detail.is_empty() {
            e.kind.title().to_string()
        } else {
            e.detail.clone()
        };
        crate::ai::AiError::new(status, kind, Some(e.kind.code()), message)
    }

    /// Wrap into the gateway's error type (rendered in OpenAI's shape by the glue).
    fn into_gateway(self) -> GatewayError {
        let detail = self.message.clone();
        GatewayError::new(
            ErrorKind::Ai {
                error: Box::new(self),
                wraps: None,
            },
            detail,
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    #[cfg(target_arch = "wasm32")]
    use wasm_bindgen_test::wasm_bindgen_test as test;

    #[test]
    fn every_kind_maps_to_documented_status() {
        let cases = [
            (ErrorKind::NoRoute, 404),
            (ErrorKind::MethodNotAllowed { allow: vec![] }, 405),
            (ErrorKind::BadRequest, 400),
            (ErrorKind::InvalidPath, 400),
            (
                ErrorKind::PayloadTooLarge {
                    expect_continue: false,
                },
                413,
            ),
            (
                ErrorKind::PayloadTooLarge {
                    expect_continue: true,
                },
                417,
            ),
            (ErrorKind::LengthRequired, 411),
            (
                ErrorKind::Restricted {
                    status: 403,
                    code: "ip_not_allowed",
                },
                403,
            ),
            (ErrorKind::UpstreamUnreachable, 502),
            (ErrorKind::UpstreamTimeout, 504),
            (ErrorKind::NotCached, 504),
            (ErrorKind::NoConfig, 503),
            (ErrorKind::Internal, 500),
            (
                ErrorKind::RateLimit {
                    status: 429,
                    retry_after_secs: 3,
                },
                429,
            ),
            (ErrorKind::RateLimitUnavailable, 503),
        ];
        for (kind, status) in cases {
            assert_eq!(kind.status(), status, "{kind:?}");
        }
    }

    #[test]
    fn problem_json_has_rfc9457_fields_and_request_id() {
        let e = GatewayError::new(ErrorKind::NoRoute, "no route for GET /x");
        let v: serde_json::Value = serde_json::from_str(&e.problem_json("req-1")).unwrap();
        assert_eq!(v["status"], 404);
        assert_eq!(v["code"], "no_route");
        assert_eq!(v["request_id"], "req-1");
        assert_eq!(v["detail"], "no route for GET /x");
        assert!(v["type"].as_str().unwrap().ends_with("/no_route"));
    }

    #[test]
    fn invalid_path_is_a_400_with_its_own_code() {
        let e = GatewayError::new(ErrorKind::InvalidPath, "x");
        assert_eq!(e.status(), 400);
        let v: serde_json::Value = serde_json::from_str(&e.problem_json("r")).unwrap();
        assert_eq!(v["code"], "invalid_path");
        assert_eq!(v["title"], "Invalid path");
        assert!(e.headers().is_empty());
    }

    #[test]
    fn method_not_allowed_sets_allow_header() {
        let e = GatewayError::new(
            ErrorKind::MethodNotAllowed {
                allow: vec!["GET".into(), "POST".into()],
            },
            "x",
        );
        assert_eq!(e.headers(), vec![("allow", "GET, POST".to_string())]);
    }
}
