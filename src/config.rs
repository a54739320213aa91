//! The isolate's configuration: reads the pointer and versions from KV (binding `CONFIG`) as
//! `edgegate_core::store::ConfigCache` decides, compiles a version once and shares it.

use crate::runtime;
use edgegate_core::compiled::Unused;
use edgegate_core::gateway::{errors_to_string, Gateway};
use edgegate_core::store::{compiled_key, LOAD_WAIT_MS};
use edgegate_core::store::{
    version_key, AfterPointer, ConfigCache, LoadEvent, LoadFailure, Pointer, Step, POINTER_KEY,
};
use futures_util::future::{join, select};
use std::cell::{Cell, RefCell};
use std::sync::Arc;
use std::time::Duration;
use wasm_bindgen::JsValue;
use wasm_bindgen_futures::JsFuture;
use worker::{Context, Env};

pub const KV_BINDING: &str = "CONFIG";
/// Seconds between pointer checks, from the `CONFIG_RELOAD_SECONDS` var (default 30).
const RELOAD_VAR: &str = "CONFIG_RELOAD_SECONDS";
const DEFAULT_RELOAD_SECONDS: f64 = 30.0;

thread_local! {
    static CACHE: RefCell<Option<ConfigCache<Gateway>>> = const { RefCell::new(None) };
    /// Requests waiting for the check under way: (waiter id, its promise's resolve).
    static WAITERS: RefCell<Vec<(u64, js_sys::Function)>> = const { RefCell::new(Vec::new()) };
    static NEXT_WAITER: Cell<u64> = const { Cell::new(0) };
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

fn emit(events: Vec<LoadEvent>) {
    for e in events {
        if e.level == "error" {
            runtime::log_error(&e.json);
        } else {
            runtime::log(&e.json);
        }
    }
}

/// Whether this request re-reads the pointer (`Step::ReadPointer`: it must then call [`refresh`], since
/// the cache now counts on it), waits for another request's first load (`Step::Wait`: call [`wait`]) or
/// serves the version in service. Synchronous, so that a request with nothing else asynchronous to do
/// never enters a Rust future (see `lib.rs`).
pub fn step(env: &Env, now: f64) -> Step {
    with_cache(env, |c| c.step(now))
}

/// The version in service, if any.
pub fn in_service() -> Option<(u64, Arc<Gateway>)> {
    CACHE.with(|cell| cell.borrow().as_ref().and_then(|c| c.current()))
}

/// Re-read the pointer (and load the version it names when it changed), after [`step`] said so. The
/// check runs as its own task kept alive with `waitUntil`, so that the requests waiting for it (see
/// [`wait`]) get its result even if the client that started it goes away; they are woken at its end.
pub async fn refresh(env: &Env, ctx: &Context) {
    let task = wasm_bindgen_futures::future_to_promise({
        let env = env.clone();
        async move {
            check(&env).await;
            let waiters = WAITERS.with(|w| std::mem::take(&mut *w.borrow_mut()));
            for (_, resolve) in waiters {
                // Each promise belongs to its waiter's request; the runtime settles it there.
                let _ = resolve.call0(&JsValue::UNDEFINED);
            }
            Ok(JsValue::UNDEFINED)
        }
    });
    let kept = task.clone();
    ctx.wait_until(async move {
        let _ = JsFuture::from(kept).await;
    });
    let _ = JsFuture::from(task).await;
}

/// Wait for the check under way (another request's [`refresh`]) to end, at most `LOAD_WAIT_MS`.
pub async fn wait() {
    let id = NEXT_WAITER.with(|n| {
        let id = n.get();
        n.set(id.wrapping_add(1));
        id
    });
    let woken = js_sys::Promise::new(&mut |resolve, _reject| {
        WAITERS.with(|w| w.borrow_mut().push((id, resolve)));
    });
    // Take the resolver out again however the wait ends (a timeout, or this future dropped).
    struct Registered(u64);
    impl Drop for Registered {
        fn drop(&mut self) {
            WAITERS.with(|w| {
                if let Ok(mut w) = w.try_borrow_mut() {
                    w.retain(|(i, _)| *i != self.0);
                }
            });
        }
    }
    let _registered = Registered(id);
    // The check may have ended between this request's step and now.
    let checking = CACHE.with(|c| {
        c.borrow()
            .as_ref()
            .is_some_and(|c| c.checking(runtime::now_ms()))
    });
    if !checking {
        return;
    }
    let timeout = worker::Delay::from(Duration::from_millis(LOAD_WAIT_MS as u64));
    let woken = JsFuture::from(woken);
    futures_util::pin_mut!(woken);
    let _ = select(woken, timeout).await;
}

/// One check: read the pointer, then load versions as the cache asks (the one named, then older ones
/// when it cannot be used).
async fn check(env: &Env) {
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
    let (mut next, events) = with_cache(env, |c| c.pointer_read(runtime::now_ms(), pointer));
    emit(events);
    while let (AfterPointer::Load(version), Ok(kv)) = (next, &kv) {
        let (result, source) = load(kv, version).await;
        let events;
        (next, events) = with_cache(env, |c| c.version_loaded_from(version, result, source));
        emit(events);
    }
}

/// Read version `version` and its compiled form (both at once), and load it from the compiled form
/// when that can be used, else from the JSON (logging why not: `config_compiled_unused`).
async fn load(
    kv: &worker::KvStore,
    version: u64,
) -> (Result<Gateway, LoadFailure>, Option<&'static str>) {
    let key = version_key(version);
    let ckey = compiled_key(version);
    let (json, blob) = join(kv.get(&key).bytes(), kv.get(&ckey).bytes()).await;
    let json = match json {
        Ok(Some(json)) => json,
        Ok(None) => {
            return (
                Err(LoadFailure::Invalid(format!("{key} does not exist"))),
                None,
            )
        }
        Err(e) => {
            return (
                Err(LoadFailure::Unavailable(format!("reading {key}: {e}"))),
                None,
            )
        }
    };
    let (unused, json) = match blob {
        Ok(Some(blob)) => match Gateway::from_compiled(blob, json) {
            Ok(gateway) => return (Ok(gateway), Some("compiled")),
            Err(back) => back,
        },
        Ok(None) => (Unused::Missing, json),
        Err(e) => (Unused::Corrupt(format!("reading {ckey}: {e}")), json),
    };
    runtime::log(
        &serde_json::json!({
            "event": "config_compiled_unused",
            "version": version,
            "reason": unused.reason(),
            "detail": unused.detail(),
        })
        .to_string(),
    );
    let result = match String::from_utf8(json) {
        Ok(text) => Gateway::compile(&text)
            .map_err(|errors| LoadFailure::Invalid(errors_to_string(&errors))),
        Err(_) => Err(LoadFailure::Invalid(format!("{key} is not UTF-8 text"))),
    };
    (result, Some("json"))
}
