//! `acl`: allow or deny consumer groups on a route or service (Kong's `acl` plugin).

use super::{forbidden, unauthorized, AuthFailure};
use crate::error::GatewayError;
use crate::identity::Identity;
use crate::plugins::PluginError;
use serde::Deserialize;

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[cfg_attr(
    feature = "schema",
    derive(schemars::JsonSchema),
    schemars(
        rename = "AclPluginConfig",
        description = "Settings of the `acl` plugin (docs/authentication.md)."
    )
)]
#[serde(deny_unknown_fields)]
pub struct AclConfig {
    /// Groups let through; every other consumer gets 403.
    #[serde(default)]
    #[cfg_attr(feature = "schema", schemars(with = "Option<Vec<String>>"))]
    pub allow: Vec<String>,
    /// Groups turned away with 403; everyone else passes.
    #[serde(default)]
    #[cfg_attr(feature = "schema", schemars(with = "Option<Vec<String>>"))]
    pub deny: Vec<String>,
    /// Do not send `X-Consumer-Groups` upstream.
    #[serde(default)]
    #[cfg_attr(feature = "schema", schemars(with = "Option<bool>"))]
    pub hide_groups_header: bool,
    /// Kong's setting, accepted so Kong configurations load; no effect here (only LDAP and OAuth2
    /// plugins give Kong "authenticated groups", and edgegate has neither: the consumer's groups are
    /// always the ones checked).
    #[serde(default)]
    #[cfg_attr(feature = "schema", schemars(with = "Option<bool>"))]
    pub always_use_authenticated_groups: bool,
}

impl AclConfig {
    pub fn validate(self) -> Result<AclConfig, PluginError> {
        match (self.allow.is_empty(), self.deny.is_empty()) {
            (true, true) => Err(PluginError::Config(vec![(
                "allow".into(),
                "give `allow` or `deny` (a list of consumer groups)".into(),
            )])),
            (false, false) => Err(PluginError::Config(vec![(
                "deny".into(),
                "give `allow` or `deny`, not both".into(),
            )])),
            _ => Ok(self),
        }
    }

    /// Whether `identity` may pass. No identity at all (no auth plugin admitted the request) is a 401:
    /// an ACL needs to know who is calling.
    pub fn check(&self, identity: Option<&Identity>) -> Result<(), GatewayError> {
        let Some(id) = identity else {
            return Err(unauthorized(
                AuthFailure::MissingCredentials,
                super::DEFAULT_CHALLENGE,
            ));
        };
        // As Kong: the anonymous consumer without groups on an `allow` list is asked to authenticate
        // (401); any other consumer outside the rule is refused (403).
        if id.anonymous && id.groups.is_empty() && !self.allow.is_empty() {
            return Err(unauthorized(
                AuthFailure::MissingCredentials,
                super::DEFAULT_CHALLENGE,
            ));
        }
        let member = |list: &[String]| id.groups.iter().any(|g| list.contains(g));
        if !self.deny.is_empty() && member(&self.deny) {
            return Err(forbidden());
        }
        if !self.allow.is_empty() && !member(&self.allow) {
            return Err(forbidden());
        }
        Ok(())
    }
}
