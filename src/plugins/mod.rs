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
//! OpenAI's shape on AI routes). They come in three kinds ([`RequestHook`]): `Now` decides at once,
//! `Later` returns a future, `Either` decides at once when it can and says `None` (having changed
//! nothing) when it must wait. A route whose hooks all decide at once is served without a Rust
//! future, almost as cheaply as a route without plugins (`lib.rs`, `fast`); the first hook that must
//! wait moves the rest of the request onto a future. Response hooks (header_filter, body_filter)
//! edit a [`Reply`] and never wait: a body_filter that needs the body whole asks the runner to read
//! it ([`ReadBody`]), which it does in the promise chain of the answer; log hooks only look.

use crate::exchange::{Exchange, LogFields};
use edgegate_core::plugins::{Phase, PluginInstance};
use edgegate_core::GatewayError;
use std::future::Future;
use std::pin::Pin;

pub(crate) mod body_js;
mod bot_detection;
mod collector;
mod cors;
mod geo_restriction;
mod http_log;
mod ip_restriction;
mod opentelemetry;
mod redirect;
mod reply;
mod request_size_limiting;
mod request_termination;
mod request_transformer;
mod response_transformer;
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
/// A request hook that may wait: rewrite, access, serve.
pub type LaterHook = for<'x, 'a> fn(&'x mut Exchange<'a>, &'x [&'a PluginInstance]) -> Step<'x>;
/// A request hook that decides at once.
pub type NowHook =
    for<'x, 'a> fn(&'x mut Exchange<'a>, &'x [&'a PluginInstance]) -> Result<Flow, GatewayError>;
/// A request hook that decides at once when it can; `None` when it must wait, having changed
/// nothing (then its [`LaterHook`] runs).
pub type MaybeHook = for<'x, 'a> fn(
    &'x mut Exchange<'a>,
    &'x [&'a PluginInstance],
) -> Option<Result<Flow, GatewayError>>;

/// rewrite, access, serve. A route whose request hooks all decide at once is run without a Rust
/// future (`lib.rs`, `fast`): prefer `Now` when nothing needs awaiting.
#[derive(Clone, Copy)]
pub enum RequestHook {
    Now(NowHook),
    Later(LaterHook),
    Either(MaybeHook, LaterHook),
}

/// header_filter: read and change the response's status and headers.
pub type HeaderHook = for<'x, 'a> fn(&'x mut Exchange<'a>, &'x [&'a PluginInstance], &'x mut Reply);
/// body_filter: wrap (`Reply::body` + `Reply::set_body`) or replace the body. `applies` says whether
/// `run` has anything to do for this response (when not, it is not called). `run` decides at once:
/// it edits the reply (a stream can be wrapped without waiting) and returns `None`, or it asks for
/// the body read into memory with a bound and returns what to do with it ([`ReadBody`]). The runner
/// reads it in the promise chain of the answer and calls `then` synchronously: a response phase
/// never needs a Rust future.
#[derive(Clone, Copy)]
pub struct BodyHook {
    pub applies: for<'x, 'a> fn(&'x Exchange<'a>, &'x [&'a PluginInstance], &'x Reply) -> bool,
    pub run: BodyRun,
}
/// What a body_filter hook does: edit the reply now, or ask for its body ([`ReadBody`]).
pub type BodyRun = for<'x, 'a> fn(
    &'x mut Exchange<'a>,
    &'x [&'a PluginInstance],
    &'x mut Reply,
) -> Option<ReadBody>;
/// A body_filter hook's request to read the body: up to `limit` bytes, then `then` (which no longer
/// sees the exchange: it captures what it needs from the request, e.g. rendered templates).
pub struct ReadBody {
    /// The largest body read: a larger one is [`BodyRead::Over`].
    pub limit: u64,
    /// The body's length is known to be within `limit` (its `Content-Length`): it is read in one go,
    /// natively. Otherwise it is counted while it is read.
    pub whole: bool,
    pub then: BodyThen,
}
/// What a body_filter hook does with the body it asked for.
pub type BodyThen = Box<dyn FnOnce(&mut Reply, BodyRead)>;
/// What reading the body came to.
pub enum BodyRead {
    /// The whole body, at most `limit` bytes (the reply's body is consumed: set one).
    Whole(js_sys::Uint8Array),
    /// Larger than `limit`: the reply's body is already a stream of what was read, then the rest,
    /// untouched.
    Over,
    /// It could not be read.
    Failed,
    /// The reply has no body at all.
    Absent,
}
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
    /// The log hook reads the response headers (`LogFields::response_headers`): the runner copies
    /// them out of the answer only for a request where such a hook runs.
    pub log_response_headers: bool,
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
    log_response_headers: false,
    error: None,
};

use RequestHook::{Either, Later, Now};

/// Every plugin's hooks, by registry name. One line per plugin.
pub static HOOKS: &[(&str, Hooks)] = &[
    (
        "bot-detection",
        Hooks {
            access: Some(Now(bot_detection::access)),
            ..NONE
        },
    ),
    (
        "jwt",
        Hooks {
            access: Some(Later(crate::auth::access)),
            ..NONE
        },
    ),
    (
        "key-auth",
        Hooks {
            access: Some(Later(crate::auth::access)),
            ..NONE
        },
    ),
    (
        "basic-auth",
        Hooks {
            access: Some(Later(crate::auth::access)),
            ..NONE
        },
    ),
    (
        "hmac-auth",
        Hooks {
            access: Some(Later(crate::auth::access)),
            ..NONE
        },
    ),
    (
        "acl",
        Hooks {
            access: Some(Later(crate::auth::access)),
            ..NONE
        },
    ),
    (
        "rate-limiting",
        Hooks {
            access: Some(Either(
                crate::ratelimit::decide_now,
                crate::ratelimit::access,
            )),
            ..NONE
        },
    ),
    (
        "ai-proxy",
        Hooks {
            serve: Some(Later(crate::ai::serve_hook)),
            error: Some(crate::ai::error_shape),
            ..NONE
        },
    ),
    (
        "proxy-cache",
        Hooks {
            serve: Some(Later(crate::cache::serve_hook)),
            ..NONE
        },
    ),
    (
        "cors",
        Hooks {
            rewrite: Some(Now(cors::rewrite)),
            header_filter: Some(cors::header_filter),
            ..NONE
        },
    ),
    (
        "request-transformer",
        Hooks {
            access: Some(Either(
                request_transformer::now,
                request_transformer::access,
            )),
            ..NONE
        },
    ),
    (
        "ip-restriction",
        Hooks {
            access: Some(Now(ip_restriction::access)),
            ..NONE
        },
    ),
    (
        "geo-restriction",
        Hooks {
            access: Some(Now(geo_restriction::access)),
            ..NONE
        },
    ),
    (
        "request-size-limiting",
        Hooks {
            access: Some(Now(request_size_limiting::access)),
            error: Some(request_size_limiting::error),
            ..NONE
        },
    ),
    (
        "response-transformer",
        Hooks {
            header_filter: Some(response_transformer::header_filter),
            body_filter: Some(BodyHook {
                applies: response_transformer::body_applies,
                run: response_transformer::body_filter,
            }),
            ..NONE
        },
    ),
    (
        "redirect",
        Hooks {
            access: Some(Now(redirect::access)),
            ..NONE
        },
    ),
    (
        "opentelemetry",
        Hooks {
            rewrite: Some(Now(opentelemetry::rewrite)),
            log: Some(opentelemetry::log),
            ..NONE
        },
    ),
    (
        "http-log",
        Hooks {
            log: Some(http_log::log),
            log_response_headers: true,
            ..NONE
        },
    ),
    (
        "request-termination",
        Hooks {
            rewrite: Some(Now(request_termination::rewrite)),
            access: Some(Now(request_termination::access)),
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

thread_local! {
    /// [`HOOKS`] in registry order, made once per isolate.
    static BY_REGISTRY: Vec<Hooks> = edgegate_core::plugins::REGISTRY
        .iter()
        .map(|d| hooks(d.name))
        .collect();
}

/// The hooks of the plugin at position `i` of the registry.
pub fn hooks_at(i: usize) -> Hooks {
    BY_REGISTRY.with(|t| t.get(i).copied().unwrap_or(NONE))
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
