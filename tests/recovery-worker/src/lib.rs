//! Test-only Worker (tests/recovery.test.mjs): what happens to the next requests after a panic or an
//! out-of-memory abort. Built like the gateway (tests/recovery-worker/build.sh: worker-build with
//! scripts/esbuild-worker, so its default export is the gateway's src/entry.mjs, and the workspace's
//! release profile with panic = "abort"), and like the gateway it links the `worker` crate, whose
//! start function installs the panic hook that logs `Critical Error: Rust panic: ...`.
//!
//! Routes:
//! - `/ok`: 200, `{"served":N}`, N counting the requests this wasm instance has seen (it starts again
//!   at 1 on a fresh instance, which is how the test sees that one was started);
//! - `/panic`: panics while `fetch` runs, before it returns a promise;
//! - `/panic-async`: panics inside the request's future, after awaiting a timer;
//! - `/oom`: allocates until an allocation fails (Rust then aborts: a trap, as for a panic);
//! - anything else: 404.

use std::alloc::{handle_alloc_error, Layout};
use std::cell::Cell;
use std::time::Duration;
use wasm_bindgen::prelude::*;

thread_local! {
    /// Requests seen by this wasm instance.
    static SERVED: Cell<u64> = const { Cell::new(0) };
}

/// The Worker's `fetch` export, written out as the gateway's is (src/lib.rs).
#[wasm_bindgen]
pub fn fetch(
    req: web_sys::Request,
    _env: worker::Env,
    _ctx: worker::worker_sys::Context,
) -> js_sys::Promise {
    let served = SERVED.with(|n| {
        n.set(n.get() + 1);
        n.get()
    });
    let path = web_sys::Url::new(&req.url())
        .map(|u| u.pathname())
        .unwrap_or_default();
    match path.as_str() {
        "/ok" => respond(200, &serde_json::json!({ "served": served }).to_string()),
        "/panic" => panic!("recovery-worker: synchronous panic on purpose"),
        "/panic-async" => wasm_bindgen_futures::future_to_promise(async {
            worker::Delay::from(Duration::from_millis(1)).await;
            panic!("recovery-worker: panic after an await, on purpose");
        }),
        "/oom" => grow_until_out_of_memory(),
        _ => respond(404, "not found"),
    }
}

fn respond(status: u16, body: &str) -> js_sys::Promise {
    let init = web_sys::ResponseInit::new();
    init.set_status(status);
    match web_sys::Response::new_with_opt_str_and_init(Some(body), &init) {
        Ok(response) => js_sys::Promise::resolve(&JsValue::from(response)),
        Err(e) => js_sys::Promise::reject(&e),
    }
}

/// Holds on to 64 MiB blocks until the allocator cannot get another one from the runtime (the wasm
/// memory cannot grow further), then takes the path every failed allocation takes:
/// `handle_alloc_error`, which aborts. Only the first page of each block is written, so the memory
/// is committed by the runtime but mostly never becomes resident on the test machine.
fn grow_until_out_of_memory() -> ! {
    const BLOCK: usize = 64 << 20;
    let mut held: Vec<Vec<u8>> = Vec::with_capacity(128);
    loop {
        let mut block = Vec::new();
        if block.try_reserve_exact(BLOCK).is_err() {
            let grown: usize = held.iter().map(Vec::capacity).sum();
            web_sys::console::log_1(
                &serde_json::json!({ "event": "oom", "held_bytes": grown })
                    .to_string()
                    .into(),
            );
            handle_alloc_error(Layout::array::<u8>(BLOCK).expect("block layout"));
        }
        block.push(1);
        held.push(block);
        std::hint::black_box(&held);
    }
}
