//! The isolate's configuration: reads the pointer and versions from KV (binding `CONFIG`) as
//! `edgegate_core::store::ConfigCache` decides, compiles a version once and shares it.

use crate::runtime;
use edgegate_core::gateway::{errors_to_string, Gateway};
use edgegate_core::store::{
    version_key, AfterPointer, ConfigCache, LoadEvent, LoadFailure, Pointer, Step, POINTER_KEY,
};
use std::cell::RefCell;
use std::sync::Arc;
use worker::Env;

pub const KV_BINDING: &str = "CONFIG";
/// Seconds between pointer checks, from the `CONFIG_RELOAD_SECONDS` var (default 30).
const RELOAD_VAR: &str = "CONFIG_RELOAD_SECONDS";
const DEFAULT_RELOAD_SECONDS: f64 = 30.0;

thread_local! {
    static CACHE: RefCell<Option<ConfigCache<Gateway>>> = const { RefCell::new(None) };
}

fn with_cache<R>(env: &Env, f: impl FnOnce(&mut ConfigCache<Gateway>) -> R) -> R {
    CACHE.with(|cell| {
        let mut slot = cell.borrow_mut();
        let cache = slot.get_or_insert_with(|| {
            let seconds = env
                .var(RELOAD_VAR)
                .ok()
                .and_then(|v| v.to_string().trim().parse::<f64>().ok())
                .filter(|s| s.is_finite() && *s >= 0.0)
                .unwrap_or(DEFAULT_RELOAD_SECONDS);
            ConfigCache::new(seconds * 1000.0)
        });
        f(cache)
    })
}

fn emit(event: Option<LoadEvent>) {
    if let Some(e) = event {
        if e.level == "error" {
            runtime::log_error(&e.json);
        } else {
            runtime::log(&e.json);
        }
    }
}

/// Whether this request re-reads the pointer (`Step::ReadPointer`: it must then call [`refresh`], since
/// the cache now counts on it) or serves the version in service. Synchronous, so that a request with
/// nothing else asynchronous to do never enters a Rust future (see `lib.rs`).
pub fn step(env: &Env, now: f64) -> Step {
    with_cache(env, |c| c.step(now))
}

/// The version in service, if any.
pub fn in_service() -> Option<(u64, Arc<Gateway>)> {
    CACHE.with(|cell| cell.borrow().as_ref().and_then(|c| c.current()))
}

/// Re-read the pointer (and load the version it names when it changed), after [`step`] said so.
pub async fn refresh(env: &Env) {
    let kv = env
        .kv(KV_BINDING)
        .map_err(|e| format!("KV binding {KV_BINDING}: {e}"));
    let pointer = match &kv {
        Ok(kv) => match kv.get(POINTER_KEY).text().await {
            Ok(Some(text)) => Pointer::parse(&text).map(Some),
            Ok(None) => Ok(None),
            Err(e) => Err(format!("reading {POINTER_KEY}: {e}")),
        },
        Err(e) => Err(e.clone()),
    };
    let (next, event) = with_cache(env, |c| c.pointer_read(runtime::now_ms(), pointer));
    emit(event);
    if let (AfterPointer::Load(version), Ok(kv)) = (next, &kv) {
        let key = version_key(version);
        let result = match kv.get(&key).text().await {
            Ok(Some(text)) => Gateway::compile(&text)
                .map_err(|errors| LoadFailure::Invalid(errors_to_string(&errors))),
            Ok(None) => Err(LoadFailure::Invalid(format!("{key} does not exist"))),
            Err(e) => Err(LoadFailure::Unavailable(format!("reading {key}: {e}"))),
        };
        emit(with_cache(env, |c| c.version_loaded(version, result)));
    }
}
