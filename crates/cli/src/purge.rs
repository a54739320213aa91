//! `purge`: invalidate cached responses in every data centre by bumping a purge generation.
//!
//! The Workers Cache API is per data centre, so nothing is deleted: the generations document at
//! `cache/generations` (KV namespace `CONFIG`) is part of every cache key; bumping the generation of a
//! route, a tag or `all` makes the old entries unreachable everywhere once the Worker re-reads it
//! (at most `CONFIG_RELOAD_SECONDS` later, plus KV's own propagation, up to about 60 s). Old entries
//! expire by themselves. Cost: one KV read and one KV write.
//!
//!   edgegate-config purge ROUTE (--local|--remote) [--persist-to DIR]
//!   edgegate-config purge --tag TAG (--local|--remote) [--persist-to DIR]
//!   edgegate-config purge --all (--local|--remote) [--persist-to DIR]

use crate::commands::CliError;
use crate::kv::{Kv, WranglerKv};
use edgegate_core::cache::{Generations, GENERATIONS_KEY};
use edgegate_core::config::GatewayConfig;
use edgegate_core::store::{version_key, Pointer, POINTER_KEY};
use std::path::PathBuf;

#[derive(Debug, PartialEq, Eq)]
pub enum Target {
    Route(String),
    Tag(String),
    All,
}

#[derive(Debug, PartialEq)]
pub struct Args {
    pub target: Target,
    pub remote: bool,
    pub persist_to: Option<PathBuf>,
}

fn usage(m: impl Into<String>) -> CliError {
    CliError::Usage(m.into())
}

/// Parse the arguments after `purge`.
pub fn parse_args(args: &[String]) -> Result<Args, CliError> {
    let (mut local, mut remote, mut all) = (false, false, false);
    let mut persist_to = None;
    let mut tag = None;
    let mut routes = Vec::new();
    let mut it = args.iter();
    while let Some(arg) = it.next() {
        let (flag, inline) = crate::split_flag(arg);
        let mut value = |name: &str| crate::flag_value(&inline, &mut it, name).map_err(usage);
        match flag {
            "--local" => local = true,
            "--remote" => remote = true,
            "--all" => all = true,
            "--persist-to" => persist_to = Some(PathBuf::from(value("--persist-to")?)),
            "--tag" => tag = Some(value("--tag")?),
            f if f.starts_with('-') => return Err(usage(format!("unknown option {f} for purge"))),
            _ => routes.push(arg.clone()),
        }
    }
    let target = match (routes.as_slice(), tag, all) {
        ([route], None, false) => Target::Route(route.clone()),
        ([], Some(t), false) if !t.is_empty() => Target::Tag(t),
        ([], None, true) => Target::All,
        ([], None, false) => return Err(usage("purge needs a ROUTE, --tag TAG or --all")),
        _ => {
            return Err(usage(
                "purge takes exactly one of ROUTE, --tag TAG and --all",
            ))
        }
    };
    match (local, remote) {
        (true, true) => Err(usage("--local and --remote exclude each other")),
        (false, false) => Err(usage(
            "purge needs --local (wrangler's local state) or --remote (the deployed namespace)",
        )),
        (_, true) if persist_to.is_some() => Err(usage("--persist-to only applies to --local")),
        (_, remote) => Ok(Args {
            target,
            remote,
            persist_to,
        }),
    }
}

/// The configuration in service, if any (to check the route or tag exists).
fn config_in_service(kv: &mut dyn Kv) -> Result<Option<GatewayConfig>, CliError> {
    let Some(text) = kv.get(POINTER_KEY)? else {
        return Ok(None);
    };
    let pointer = Pointer::parse(&text).map_err(CliError::Failed)?;
    let Some(doc) = kv.get(&version_key(pointer.version))? else {
        return Ok(None);
    };
    Ok(serde_json::from_str(&doc).ok())
}

/// Bump the generation for `target`; the message for the user.
pub fn purge(kv: &mut dyn Kv, target: &Target) -> Result<String, CliError> {
    let config = config_in_service(kv)?;
    let mut note = String::new();
    if let (Some(config), Target::Route(route)) = (&config, target) {
        if !config.routes.iter().any(|r| &r.name == route) {
            let names: Vec<&str> = config.routes.iter().map(|r| r.name.as_str()).collect();
            return Err(CliError::Failed(format!(
                "the configuration in service has no route {route:?} (routes: {})",
                names.join(", ")
            )));
        }
    }
    if let (Some(config), Target::Tag(tag)) = (&config, target) {
        let tagged = config.plugins.iter().any(|p| {
            p.name == "proxy-cache"
                && p.config
                    .get("tags")
                    .and_then(|t| t.as_array())
                    .is_some_and(|t| t.iter().any(|v| v.as_str() == Some(tag)))
        });
        if !tagged {
            note = format!("\nnote: no proxy-cache instance in service carries the tag {tag:?}");
        }
    }
    let mut generations = match kv.get(GENERATIONS_KEY)? {
        None => Generations::default(),
        Some(text) => Generations::parse(&text).map_err(|e| {
            CliError::Failed(format!("{e}; fix or delete the key, then purge again"))
        })?,
    };
    let (what, n) = match target {
        Target::Route(r) => (format!("route {r:?}"), generations.bump_route(r)),
        Target::Tag(t) => (format!("tag {t:?}"), generations.bump_tag(t)),
        Target::All => ("every cached response".to_string(), generations.bump_all()),
    };
    kv.put(GENERATIONS_KEY, &generations.to_json())?;
    Ok(format!(
        "purged {what}: generation {n} written to {GENERATIONS_KEY}; every location stops serving \
         the old entries within CONFIG_RELOAD_SECONDS (plus up to 60 s of KV propagation){note}"
    ))
}

/// `edgegate-config purge ...` (called from `main`).
pub fn run(args: &[String]) -> Result<String, CliError> {
    if args.iter().any(|a| a == "-h" || a == "--help") {
        return Ok(crate::USAGE.to_string());
    }
    let args = parse_args(args)?;
    let target = crate::Target {
        remote: args.remote,
        persist_to: args.persist_to,
    };
    let mut kv =
        WranglerKv::new(target.remote, target.persist_to.clone()).map_err(CliError::Failed)?;
    // Read, bump, write: with --local, under push's lock, so that concurrent purges each keep
    // their bump.
    let _lock = crate::lock_local(&target)?;
    purge(&mut kv, &args.target)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kv::MemoryKv;

    fn parse(s: &str) -> Result<Args, CliError> {
        parse_args(&s.split_whitespace().map(String::from).collect::<Vec<_>>())
    }

    #[test]
    fn parses_targets_and_locations() {
        let a = parse("users --local").unwrap();
        assert_eq!((a.target, a.remote), (Target::Route("users".into()), false));
        let a = parse("--tag=catalog --remote").unwrap();
        assert_eq!((a.target, a.remote), (Target::Tag("catalog".into()), true));
        let a = parse("--all --local --persist-to /tmp/s").unwrap();
        assert_eq!(a.target, Target::All);
        assert_eq!(a.persist_to, Some(PathBuf::from("/tmp/s")));
        for (args, fragment) in [
            ("--local", "needs a ROUTE"),
            ("a b --local", "exactly one"),
            ("a --tag t --local", "exactly one"),
            ("--all --tag t --local", "exactly one"),
            ("a", "needs --local"),
            ("a --local --remote", "exclude"),
            ("a --remote --persist-to d", "only applies to --local"),
            ("a --local --force", "unknown option --force"),
            ("--tag", "--tag needs a value"),
        ] {
            let e = parse(args).unwrap_err();
            assert_eq!(e.exit_code(), 2, "{args}");
            assert!(e.render().contains(fragment), "{args}: {}", e.render());
        }
    }

    fn kv_with_config() -> MemoryKv {
        let mut kv = MemoryKv::default();
        let config = serde_json::json!({
            "format_version": 1,
            "services": [{"name": "s", "url": "http://127.0.0.1:9"}],
            "routes": [{"name": "users", "service": "s"}],
            "plugins": [{"name": "proxy-cache", "route": "users", "config": {"tags": ["catalog"]}}]
        });
        kv.put("config/versions/1", &config.to_string()).unwrap();
        kv.put(POINTER_KEY, r#"{"version":1,"latest":1,"history":[]}"#)
            .unwrap();
        kv
    }

    fn stored(kv: &MemoryKv) -> Generations {
        Generations::parse(&kv.values[GENERATIONS_KEY]).unwrap()
    }

    #[test]
    fn purges_bump_generations() {
        let mut kv = kv_with_config();
        let out = purge(&mut kv, &Target::Route("users".into())).unwrap();
        assert!(
            out.contains("purged route \"users\": generation 1"),
            "{out}"
        );
        assert_eq!(stored(&kv).routes["users"], 1);
        purge(&mut kv, &Target::Route("users".into())).unwrap();
        assert_eq!(stored(&kv).routes["users"], 2);
        let out = purge(&mut kv, &Target::Tag("catalog".into())).unwrap();
        assert!(!out.contains("note:"), "{out}");
        assert_eq!(stored(&kv).tags["catalog"], 1);
        purge(&mut kv, &Target::All).unwrap();
        let g = stored(&kv);
        assert_eq!((g.all, g.routes["users"], g.tags["catalog"]), (1, 2, 1));
        // One read-modify-write of one key per purge.
        assert_eq!(
            kv.writes.iter().filter(|k| *k == GENERATIONS_KEY).count(),
            4
        );
    }

    #[test]
    fn unknown_route_is_refused_and_unknown_tag_noted() {
        let mut kv = kv_with_config();
        let e = purge(&mut kv, &Target::Route("nope".into())).unwrap_err();
        assert!(e.render().contains("no route \"nope\" (routes: users)"));
        assert!(!kv.values.contains_key(GENERATIONS_KEY));
        let out = purge(&mut kv, &Target::Tag("other".into())).unwrap();
        assert!(out.contains("note: no proxy-cache instance"), "{out}");
        // Without any configuration the purge still works (nothing to check against).
        let mut empty = MemoryKv::default();
        purge(&mut empty, &Target::Route("any".into())).unwrap();
        assert_eq!(stored(&empty).routes["any"], 1);
    }

    #[test]
    fn corrupt_generations_are_not_overwritten() {
        let mut kv = kv_with_config();
        kv.put(GENERATIONS_KEY, "not json").unwrap();
        let e = purge(&mut kv, &Target::All).unwrap_err();
        assert!(e.render().contains("fix or delete"));
        assert_eq!(kv.values[GENERATIONS_KEY], "not json");
    }
}
