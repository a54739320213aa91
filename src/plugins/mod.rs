//! The glue side of the plugin registry: one hook per phase for each plugin of
//! `edgegate_core::plugins::REGISTRY`, in one table ([`HOOKS`]). The runner (`crate::pipeline`)
//! calls them, per phase, in the plugins' priority order.
//!
//! **Adding a plugin** (docs/plugins.md, "Writing a plugin"): write its core module and registry
//! entry (`crates/core/src/plugins/registry.rs`), then its glue module here (`src/plugins/<name>.rs`,
//! one `pub fn` per phase listed in the entry, with the signatures below) and one line in [`HOOKS`].
//! Nothing else: not the runner, not another plugin.
//!
//! What a hook gets:
//! - the [`Exchange`]: the client request (`ex.raw`, `ex.info`, `ex.header(..)`, `ex.url`, `ex.host`,
//!   `ex.client_ip`, `ex.cf(..)`), the route (`ex.plan`, `ex.plan.params`), the consumer
//!   (`ex.identity`), and what goes upstream, which request hooks may change: headers
//!   (`ex.upstream_set`, `ex.upstream_remove`), path and query (`ex.set_upstream_path_and_query`),
//!   method (`ex.upstream_method`) and body (`ex.upstream_body`); headers for the client's answer
//!   whatever it is (`ex.response_headers`); log fields (`ex.log`);
//! - the instances of its plugin that run for this request, already picked per the plugin's
//!   `Runs` (one for `MostSpecific`, all for `All`; consumer-scoped ones only for their consumer).
//!   A hook is not called when no instance of its plugin runs.
//!
//! Request hooks (rewrite, access, serve) return [`Flow::Continue`] or [`Flow::Respond`] (the
//! answer, which skips the rest of the request phases), or an error (answered as problem+json, or in
//! OpenAI's shape on AI routes). Response hooks (header_filter, body_filter) edit a [`Reply`]; log
//! hooks only look.

use crate::exchange::{Exchange, LogFields};
use edgegate_core::plugins::{Phase, PluginInstance};
use edgegate_core::GatewayError;
use std::future::Future;
use std::pin::Pin;

mod cors;
mod geo_restriction;
mod ip_restriction;
mod redirect;
mod reply;
mod request_size_limiting;
mod request_termination;
mod request_transformer;
mod response_transformer;
mod transform_js;
pub use reply::Reply;

/// What a request hook decided.
pub enum Flow {
    /// Go on with the next hook (and in the end, the proxy).
    Continue,
    /// Answer with this response now; later request hooks and the proxy are skipped (the response
    /// phases still run).
    Respond(web_sys::Response),
}

/// The future a request hook returns.
pub type Step<'x> = Pin<Box<dyn Future<Output = Result<Flow, GatewayError>> + 'x>>;
/// rewrite, access, serve.
pub type RequestHook = for<'x, 'a> fn(&'x mut Exchange<'a>, &'x [&'a PluginInstance]) -> Step<'x>;
/// header_filter: read and change the response's status and headers.
pub type HeaderHook = for<'x, 'a> fn(&'x mut Exchange<'a>, &'x [&'a PluginInstance], &'x mut Reply);
/// body_filter: wrap (`Reply::body` + `Reply::set_body`) or replace the body.
pub type BodyHook = for<'x, 'a> fn(
    &'x mut Exchange<'a>,
    &'x [&'a PluginInstance],
    &'x mut Reply,
) -> Pin<Box<dyn Future<Output = ()> + 'x>>;
/// log: the final status and log fields, after the response is settled.
pub type LogHook = for<'x, 'a> fn(&'x Exchange<'a>, &'x [&'a PluginInstance], &'x LogFields);
/// Not a Kong phase: reshape the gateway's error answers on the routes of this plugin (called for
/// every plugin of the route that has one, whether or not one of its instances ran).
pub type ErrorHook = for<'x, 'a> fn(&'x Exchange<'a>, GatewayError) -> GatewayError;

/// A plugin's hooks; `None` for the phases it does not take part in.
#[derive(Clone, Copy)]
pub struct Hooks {
    pub rewrite: Option<RequestHook>,
    pub access: Option<RequestHook>,
    pub serve: Option<RequestHook>,
    pub header_filter: Option<HeaderHook>,
    pub body_filter: Option<BodyHook>,
    pub log: Option<LogHook>,
    pub error: Option<ErrorHook>,
}

/// No hook at all: write entries as `Hooks { access: Some(..), ..NONE }`.
pub const NONE: Hooks = Hooks {
    rewrite: None,
    access: None,
    serve: None,
    header_filter: None,
    body_filter: None,
    log: None,
    error: None,
};

/// Every plugin's hooks, by registry name. One line per plugin.
pub static HOOKS: &[(&str, Hooks)] = &[
    (
        "jwt",
        Hooks {
            access: Some(crate::auth::access),
            ..NONE
        },
    ),
    (
        "key-auth",
        Hooks {
            access: Some(crate::auth::access),
            ..NONE
        },
    ),
    (
        "basic-auth",
        Hooks {
            access: Some(crate::auth::access),
            ..NONE
        },
    ),
    (
        "acl",
        Hooks {
            access: Some(crate::auth::access),
            ..NONE
        },
    ),
    (
        "rate-limiting",
        Hooks {
            access: Some(crate::ratelimit::access),
            ..NONE
        },
    ),
    (
        "ai-proxy",
        Hooks {
            serve: Some(crate::ai::serve_hook),
            error: Some(crate::ai::error_shape),
            ..NONE
        },
    ),
    (
        "proxy-cache",
        Hooks {
            serve: Some(crate::cache::serve_hook),
            ..NONE
        },
    ),
    (
        "cors",
        Hooks {
            access: Some(cors::access),
            header_filter: Some(cors::header_filter),
            ..NONE
        },
    ),
    (
        "request-transformer",
        Hooks {
            access: Some(request_transformer::access),
            ..NONE
        },
    ),
    (
        "ip-restriction",
        Hooks {
            access: Some(ip_restriction::access),
            ..NONE
        },
    ),
    (
        "geo-restriction",
        Hooks {
            access: Some(geo_restriction::access),
            ..NONE
        },
    ),
    (
        "request-size-limiting",
        Hooks {
            access: Some(request_size_limiting::access),
            error: Some(request_size_limiting::error),
            ..NONE
        },
    ),
    (
        "response-transformer",
        Hooks {
            header_filter: Some(response_transformer::header_filter),
            body_filter: Some(response_transformer::body_filter),
            ..NONE
        },
    ),
    (
        "redirect",
        Hooks {
            access: Some(redirect::access),
            ..NONE
        },
    ),
    (
        "request-termination",
        Hooks {
            rewrite: Some(request_termination::rewrite),
            access: Some(request_termination::access),
            ..NONE
        },
    ),
];

/// The hooks of plugin `name` (none for a name without an entry).
pub fn hooks(name: &str) -> Hooks {
    HOOKS
        .iter()
        .find(|(n, _)| *n == name)
        .map_or(NONE, |(_, h)| *h)
}

impl Hooks {
    /// The request hook of `phase` (rewrite, access or serve).
    pub fn request(&self, phase: Phase) -> Option<RequestHook> {
        match phase {
            Phase::Rewrite => self.rewrite,
            Phase::Access => self.access,
            Phase::Serve => self.serve,
            _ => None,
        }
    }

    /// Whether there is a hook for `phase`.
    #[allow(dead_code)] // used by the tests
    pub fn has(&self, phase: Phase) -> bool {
        match phase {
            Phase::Rewrite => self.rewrite.is_some(),
            Phase::Access => self.access.is_some(),
            Phase::Serve => self.serve.is_some(),
            Phase::HeaderFilter => self.header_filter.is_some(),
            Phase::BodyFilter => self.body_filter.is_some(),
            Phase::Log => self.log.is_some(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use edgegate_core::plugins::REGISTRY;

    /// The glue has a hook for exactly the phases each registry entry lists, and no entry of its own.
    #[test]
    fn hooks_match_the_registry() {
        let phases = [
            Phase::Rewrite,
            Phase::Access,
            Phase::Serve,
            Phase::HeaderFilter,
            Phase::BodyFilter,
            Phase::Log,
        ];
        for def in REGISTRY {
            let h = hooks(def.name);
            for p in phases {
                assert_eq!(h.has(p), def.takes_part_in(p), "{} {p:?}", def.name);
            }
        }
        for (name, _) in HOOKS {
            assert!(
                REGISTRY.iter().any(|d| d.name == *name),
                "{name} not in the registry"
            );
        }
    }
}
