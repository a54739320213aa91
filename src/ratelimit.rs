//! Rate-limit phase, and the `RateLimiter` Durable Object that counts for it.
//!
//! For each `rate-limiting` instance that applies to the request, the counter key is chosen
//! (`edgegate_core::ratelimit::key`) and checked:
//! - `policy: durable` (default): one Durable Object per (plugin instance, key), named with
//!   `idFromName`. The object runs one event at a time and its storage calls close its input gate,
//!   so loading, deciding and storing is atomic: concurrent requests are admitted in a single order,
//!   exactly up to the limit. With permit leases (`lease`, default on for request counts) the
//!   object also grants the isolate a batch of permits that later requests spend here without a
//!   round trip (`edgegate_core::ratelimit::lease`); the next batch is asked for in the background
//!   (`waitUntil`). `lease: false`: one round trip per request.
//! - `policy: local`: counted in this isolate's memory (approximate, see docs/rate-limiting.md).
//!
//! All the arithmetic lives in `edgegate_core::ratelimit` (`decide_op`, `lease::serve`,
//! `lease::LeaseTable`).
//!
//! Token budgets (`count: tokens`): before the request the counter is only peeked (refused while
//! the budget is used up, nothing charged); the AI phase then charges the answer's real token count
//! with [`charge_tokens`] (awaited for a JSON answer; for a stream, registered with `waitUntil` and
//! run when the stream ends or the client goes away, see [`AiTokens`]).

use crate::exchange::Exchange;
use crate::runtime;
use edgegate_core::plugins::PluginInstance;
use edgegate_core::ratelimit::headers::{client_headers, openai_headers, retry_after_secs};
use edgegate_core::ratelimit::key::{identifier, object_name, KeyInputs};
use edgegate_core::ratelimit::lease::{serve, Answer, Ask, LeaseTable, Plan};
use edgegate_core::ratelimit::local::LocalCounters;
use edgegate_core::ratelimit::{
    CheckRequest, Count, CounterPolicy, Decision, Op, RateLimitConfig, State as Counts, STATE_KEY,
};
use edgegate_core::{ErrorKind, GatewayError};
use futures_util::future::{join_all, select, Either};
use std::cell::{Cell, RefCell};
use std::future::Future;
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context as TaskContext, Poll, Waker};
use std::time::Duration;
use worker::{
    durable_object, wasm_bindgen::JsValue, DurableObject, Env, Method, Request, RequestInit,
    Response, ScheduledTime, State,
};

/// The Durable Object namespace binding (wrangler.toml `[[durable_objects.bindings]]`).
pub const BINDING: &str = "RATE_LIMITER";

thread_local! {
    /// Counters of the `local` policy, per isolate.
    static LOCAL: RefCell<LocalCounters> = RefCell::new(LocalCounters::default());
    /// Permit leases of the `durable` policy, per isolate.
    static LEASES: RefCell<LeaseTable> = RefCell::new(LeaseTable::default());
}

/// The total tokens of an AI answer, shared between the AI phase (and its stream) and the charge
/// of token budgets: set before a JSON answer is returned, and when a stream ends ([`AiTokens::end`],
/// called from the stream's `Drop`, also when the client goes away), which wakes [`AiTokens::ended`].
#[derive(Default)]
pub struct AiTokens {
    tokens: Cell<Option<u64>>,
    done: Cell<bool>,
    waker: RefCell<Option<Waker>>,
}

impl AiTokens {
    pub fn set(&self, tokens: Option<u64>) {
        self.tokens.set(tokens);
    }

    pub fn get(&self) -> Option<u64> {
        self.tokens.get()
    }

    /// The stream is over: wake whoever waits in [`AiTokens::ended`].
    pub fn end(&self) {
        self.done.set(true);
        if let Some(w) = self.waker.borrow_mut().take() {
            w.wake();
        }
    }

    /// Resolves once [`AiTokens::end`] has been called.
    pub fn ended(self: Rc<Self>) -> impl Future<Output = ()> {
        Ended(self)
    }
}

struct Ended(Rc<AiTokens>);

impl Future for Ended {
    type Output = ();
    fn poll(self: Pin<&mut Self>, cx: &mut TaskContext<'_>) -> Poll<()> {
        if self.0.done.get() {
            Poll::Ready(())
        } else {
            *self.0.waker.borrow_mut() = Some(cx.waker().clone());
            Poll::Pending
        }
    }
}

/// One policy to check for this request.
struct Check<'g> {
    instance: &'g PluginInstance,
    config: &'g RateLimitConfig,
    name: String,
}

/// The `rate-limiting` instances that apply to this request, with their counter names.
fn applicable<'g>(ex: &Exchange<'g>) -> Vec<Check<'g>> {
    let username = ex.identity.as_ref().map(|i| i.username.as_str());
    let mut checks = Vec::new();
    for p in ex.plugins() {
        let Some(config) = p.config::<RateLimitConfig>() else {
            continue;
        };
        if p.consumer.is_some() && p.consumer.as_deref() != username {
            continue;
        }
        let header = config.header_name.as_deref().and_then(|h| ex.header(h));
        let inputs = KeyInputs {
            consumer_id: ex.identity.as_ref().map(|i| i.consumer_id.as_str()),
            credential_id: ex
                .identity
                .as_ref()
                .and_then(|i| i.credential_id.as_deref()),
            client_ip: ex.client_ip.as_deref(),
            header: header.as_deref(),
            path: ex.url.path,
            route: ex.plan.route,
            service: &ex.plan.upstream.name,
        };
        if let Some(id) = identifier(config, &inputs) {
            checks.push(Check {
                instance: p,
                config,
                name: object_name(&p.key, &id),
            });
        }
    }
    checks
}

/// What is sent before the request: check-and-charge for request counts, a peek (is at least one
/// token left?) for token budgets.
fn before(config: &RateLimitConfig) -> (Op, u64) {
    match config.count {
        Count::Requests => (Op::Check, config.cost),
        Count::Tokens => (Op::Peek, 1),
    }
}

/// The access hook of `rate-limiting` (`crate::plugins::HOOKS`); the instances that apply are
/// worked out by [`applicable`], with their counter names.
pub fn access<'x, 'a>(
    ex: &'x mut Exchange<'a>,
    _instances: &'x [&'a PluginInstance],
) -> crate::plugins::Step<'x> {
    Box::pin(async move {
        enforce(ex).await?;
        Ok(crate::plugins::Flow::Continue)
    })
}

/// The access hook when every counter is decided from a lease in hand (no Durable Object call);
/// `None` otherwise. What was planned then is parked for [`access`] (the lease table already
/// counted it), and `None` is the answer again until `access` takes it.
pub fn decide_now(
    ex: &mut Exchange<'_>,
    _instances: &[&PluginInstance],
) -> Option<Result<crate::plugins::Flow, GatewayError>> {
    let key = parked_key(ex);
    if PARKED.with(|p| p.borrow().iter().any(|x| x.key == key)) {
        return None;
    }
    let checks = applicable(ex);
    if checks.is_empty() {
        return Some(Ok(crate::plugins::Flow::Continue));
    }
    let (outcomes, remote) = plan(ex, &checks);
    if remote.is_empty() {
        let outcomes = outcomes
            .into_iter()
            .map(|o| o.unwrap_or_else(|| Err("not decided".into())))
            .collect();
        return Some(conclude(ex, &checks, outcomes).map(|()| crate::plugins::Flow::Continue));
    }
    PARKED.with(|p| {
        let mut p = p.borrow_mut();
        // Only a request that never reached `access` leaves one behind (one per request waiting
        // for its counter at most); bounded all the same.
        if p.len() >= 4096 {
            p.remove(0);
        }
        p.push(Parked {
            key,
            outcomes,
            remote,
        });
    });
    None
}

/// What [`decide_now`] planned for a request that must wait for a counter.
struct Parked {
    key: (usize, String),
    outcomes: Vec<Option<Result<Decision, String>>>,
    remote: Vec<Remote>,
}

thread_local! {
    static PARKED: RefCell<Vec<Parked>> = const { RefCell::new(Vec::new()) };
}

/// Which request a parked plan is for: its `RequestInfo` (alive, at one address, for as long as the
/// request) and its id.
fn parked_key(ex: &Exchange<'_>) -> (usize, String) {
    (
        ex.info as *const crate::js::RequestInfo as usize,
        ex.request_id.to_string(),
    )
}

/// A counter that needs the Durable Object: a plain call (no lease), or an ask for a lease.
type Remote = Either<(usize, Op, u64), (usize, Ask, u64)>;

/// Decide what a lease in hand covers without awaiting anything; the rest (`Remote`) waits for
/// its counter.
fn plan(
    ex: &Exchange<'_>,
    checks: &[Check<'_>],
) -> (Vec<Option<Result<Decision, String>>>, Vec<Remote>) {
    let env = ex.env;
    let now = runtime::now_ms() as u64;
    let mut outcomes: Vec<Option<Result<Decision, String>>> = Vec::with_capacity(checks.len());
    let mut remote = Vec::new();
    for (i, c) in checks.iter().enumerate() {
        let (op, cost) = before(c.config);
        if !uses_leases(c.config) {
            outcomes.push(None);
            remote.push(Either::Left((i, op, cost)));
            continue;
        }
        match LEASES.with(|t| {
            t.borrow_mut()
                .plan_for(&c.name, &c.config.spec, cost, c.config.lease, now)
        }) {
            Plan::Local { decision, refill } => {
                outcomes.push(Some(Ok(decision)));
                if let Some(ask) = refill {
                    ex.ctx.wait_until(refill_lease(
                        env.clone(),
                        c.name.clone(),
                        c.config.clone(),
                        ask,
                        ex.request_id.to_string(),
                        c.instance.index,
                        c.instance.key.clone(),
                    ));
                }
            }
            Plan::Remote(ask) => {
                outcomes.push(None);
                remote.push(Either::Right((i, ask, cost)));
            }
        }
    }
    (outcomes, remote)
}

async fn enforce(ex: &mut Exchange<'_>) -> Result<(), GatewayError> {
    let key = parked_key(ex);
    let parked = PARKED.with(|p| {
        let mut p = p.borrow_mut();
        let at = p.iter().position(|x| x.key == key)?;
        Some(p.remove(at))
    });
    let checks = applicable(ex);
    if checks.is_empty() {
        return Ok(());
    }
    let env = ex.env;
    let (mut outcomes, remote) = match parked {
        Some(p) if p.outcomes.len() == checks.len() => (p.outcomes, p.remote),
        _ => plan(ex, &checks),
    };
    if !remote.is_empty() {
        let checks = &checks;
        let answers = join_all(remote.iter().map(|r| async move {
            match *r {
                Either::Left((i, op, cost)) => {
                    let c = &checks[i];
                    (i, counter(env, &c.name, c.config, op, cost).await)
                }
                Either::Right((i, ref ask, cost)) => {
                    let c = &checks[i];
                    let req = ask.request(&c.config.spec, Op::Check, cost);
                    let answer = object_call(env, &c.name, c.config, &req).await;
                    let now = runtime::now_ms() as u64;
                    let decided = LEASES.with(|t| {
                        let mut t = t.borrow_mut();
                        match answer {
                            Ok(answer) => t
                                .answered(&c.name, ask, answer, Some(cost), now)
                                .ok_or_else(|| "no decision".to_string()),
                            Err(reason) => {
                                t.failed(&c.name, ask);
                                Err(reason)
                            }
                        }
                    });
                    (i, decided)
                }
            }
        }))
        .await;
        for (i, outcome) in answers {
            outcomes[i] = Some(outcome);
        }
    }
    let outcomes: Vec<Result<Decision, String>> = outcomes
        .into_iter()
        .map(|o| o.unwrap_or_else(|| Err("not decided".into())))
        .collect();
    conclude(ex, &checks, outcomes)
}

/// The request's fate from every counter's decision: the client headers, and the error when one
/// refused (or could not be reached, unless fault tolerant).
fn conclude(
    ex: &mut Exchange<'_>,
    checks: &[Check<'_>],
    outcomes: Vec<Result<Decision, String>>,
) -> Result<(), GatewayError> {
    let mut shown: Vec<&Decision> = Vec::new();
    let mut tokens: Vec<&Decision> = Vec::new();
    let mut requests: Vec<&Decision> = Vec::new();
    let mut refused: Option<(&RateLimitConfig, &Decision)> = None;
    let mut unavailable = false;
    for (c, outcome) in checks.iter().zip(&outcomes) {
        match outcome {
            Ok(decision) => {
                if !c.config.hide_client_headers {
                    shown.push(decision);
                    match c.config.count {
                        Count::Tokens => tokens.push(decision),
                        Count::Requests => requests.push(decision),
                    }
                }
                if !decision.allowed
                    && refused.is_none_or(|(_, r)| r.retry_after_ms < decision.retry_after_ms)
                {
                    refused = Some((c.config, decision));
                }
            }
            Err(reason) => {
                log_unavailable(
                    ex.request_id,
                    c.instance.index,
                    &c.instance.key,
                    c.config,
                    "check",
                    reason,
                );
                unavailable |= !c.config.fault_tolerant;
            }
        }
    }
    ex.response_headers.extend(client_headers(shown));
    // OpenAI's names, which its SDKs and dashboards read.
    ex.response_headers.extend(openai_headers("tokens", tokens));
    if !requests.is_empty() && crate::ai::is_ai_route(ex) {
        ex.response_headers
            .extend(openai_headers("requests", requests));
    }
    if let Some((config, decision)) = refused {
        return Err(GatewayError::new(
            ErrorKind::RateLimit {
                status: config.error_code,
                retry_after_secs: retry_after_secs(decision),
            },
            config.error_message.clone(),
        ));
    }
    if unavailable {
        return Err(GatewayError::new(
            ErrorKind::RateLimitUnavailable,
            "the rate-limit counter could not be reached",
        ));
    }
    Ok(())
}

fn log_unavailable(
    request_id: &str,
    plugin: usize,
    plugin_id: &str,
    config: &RateLimitConfig,
    op: &str,
    reason: &str,
) {
    runtime::log_error(
        &serde_json::json!({
            "event": "ratelimit_unavailable",
            "request_id": request_id,
            "plugin": plugin,
            "plugin_id": plugin_id,
            "op": op,
            "fault_tolerant": config.fault_tolerant,
            "reason": reason,
        })
        .to_string(),
    );
}

/// A token charge still to be made, owned so that it can outlive the request (a stream's end).
pub struct TokenCharge {
    plugin: usize,
    plugin_id: String,
    name: String,
    config: RateLimitConfig,
}

/// The token budgets (`count: tokens`) that apply to this request, to charge once the answer's
/// token count is known.
pub fn token_charges(ex: &Exchange<'_>) -> Vec<TokenCharge> {
    applicable(ex)
        .into_iter()
        .filter(|c| c.config.count == Count::Tokens)
        .map(|c| TokenCharge {
            plugin: c.instance.index,
            plugin_id: c.instance.key.clone(),
            name: c.name,
            config: c.config.clone(),
        })
        .collect()
}

/// Charge `tokens` to every budget (always succeeds at the counter, may go over the limit). A
/// counter that cannot be reached is logged (the answer has already been given, so even a policy
/// that is not fault tolerant cannot refuse it any more).
pub async fn charge_tokens(env: &Env, charges: &[TokenCharge], tokens: u64, request_id: &str) {
    if tokens == 0 || charges.is_empty() {
        return;
    }
    let outcomes = join_all(
        charges
            .iter()
            .map(|c| counter(env, &c.name, &c.config, Op::Charge, tokens)),
    )
    .await;
    for (c, outcome) in charges.iter().zip(outcomes) {
        if let Err(reason) = outcome {
            log_unavailable(
                request_id,
                c.plugin,
                &c.plugin_id,
                &c.config,
                "charge",
                &reason,
            );
        }
    }
}

/// Whether requests of this policy go through the isolate's lease table (the durable request
/// counts; `lease: false` too, so that a lease held from before is given back).
fn uses_leases(config: &RateLimitConfig) -> bool {
    config.policy == CounterPolicy::Durable && config.count == Count::Requests
}

/// Ask the object for the next batch in the background (`waitUntil`), at most one per key at a
/// time. A failure is logged; the requests go on with what is left, then ask in the foreground.
async fn refill_lease(
    env: Env,
    name: String,
    config: RateLimitConfig,
    ask: Ask,
    request_id: String,
    plugin: usize,
    plugin_id: String,
) {
    let req = ask.request(&config.spec, Op::Check, 0);
    let answer = object_call(&env, &name, &config, &req).await;
    let now = runtime::now_ms() as u64;
    let failed = LEASES.with(|t| {
        let mut t = t.borrow_mut();
        match answer {
            Ok(answer) => {
                t.answered(&name, &ask, answer, None, now);
                None
            }
            Err(reason) => {
                t.failed(&name, &ask);
                Some(reason)
            }
        }
    });
    if let Some(reason) = failed {
        log_unavailable(&request_id, plugin, &plugin_id, &config, "lease", &reason);
    }
}

/// One operation on one counter, local or in its Durable Object (within the policy's timeout).
async fn counter(
    env: &Env,
    name: &str,
    config: &RateLimitConfig,
    op: Op,
    cost: u64,
) -> Result<Decision, String> {
    match config.policy {
        CounterPolicy::Local => {
            let now = runtime::now_ms() as u64;
            Ok(LOCAL.with(|l| l.borrow_mut().apply(name, &config.spec, op, cost, now)))
        }
        CounterPolicy::Durable => {
            let req = CheckRequest {
                spec: config.spec.clone(),
                cost,
                op,
                want: 0,
                ret: None,
                unit: 0,
                held: None,
            };
            object_call(env, name, config, &req)
                .await
                .map(|answer| answer.decision)
        }
    }
}

/// One round trip to the counter's Durable Object, within the policy's timeout.
async fn object_call(
    env: &Env,
    name: &str,
    config: &RateLimitConfig,
    req: &CheckRequest,
) -> Result<Answer, String> {
    let round_trip = Box::pin(ask_object(env, name, config.location_hint.as_deref(), req));
    let timeout = worker::Delay::from(Duration::from_millis(config.timeout_ms));
    match select(round_trip, timeout).await {
        Either::Left((result, _)) => result,
        Either::Right(_) => Err(format!(
            "no answer from the counter within {} ms",
            config.timeout_ms
        )),
    }
}

async fn ask_object(
    env: &Env,
    name: &str,
    location_hint: Option<&str>,
    req: &CheckRequest,
) -> Result<Answer, String> {
    let body = serde_json::to_string(req).map_err(|e| e.to_string())?;
    let namespace = env
        .durable_object(BINDING)
        .map_err(|e| format!("binding {BINDING}: {e}"))?;
    let id = namespace
        .id_from_name(name)
        .map_err(|e| format!("stub: {e}"))?;
    let stub = match location_hint {
        Some(hint) => id.get_stub_with_location_hint(hint),
        None => id.get_stub(),
    }
    .map_err(|e| format!("stub: {e}"))?;
    let mut init = RequestInit::new();
    init.with_method(Method::Post)
        .with_body(Some(JsValue::from_str(&body)));
    let request = Request::new_with_init("https://rate-limiter/check", &init)
        .map_err(|e| format!("request: {e}"))?;
    let mut response = stub
        .fetch_with_request(request)
        .await
        .map_err(|e| format!("fetch: {e}"))?;
    let text = response.text().await.map_err(|e| format!("body: {e}"))?;
    if response.status_code() != 200 {
        return Err(format!(
            "status {}: {}",
            response.status_code(),
            text.chars().take(200).collect::<String>()
        ));
    }
    serde_json::from_str(&text).map_err(|e| format!("answer: {e}"))
}

// ------------------------------------------------------------------------------------------------
// The Durable Object

/// Counts for one (plugin instance, key). State is kept in memory and in the object's storage (so
/// an evicted object resumes where it was); an alarm deletes it once it has expired.
#[durable_object(alarm)]
pub struct RateLimiter {
    state: State,
    /// `None` until loaded from storage.
    counts: RefCell<Option<Counts>>,
    /// When the alarm this instance scheduled fires (ms), if any.
    alarm_at: Cell<Option<u64>>,
}

impl RateLimiter {
    async fn load(&self) -> worker::Result<()> {
        if self.counts.borrow().is_some() {
            return Ok(());
        }
        let stored: Option<String> = self.state.storage().get(STATE_KEY).await?;
        let counts = stored
            .and_then(|s| serde_json::from_str::<Counts>(&s).ok())
            .unwrap_or_default();
        let mut slot = self.counts.borrow_mut();
        if slot.is_none() {
            *slot = Some(counts);
        }
        Ok(())
    }

    async fn schedule_cleanup(&self, at: u64) -> worker::Result<()> {
        let at = at.max(now()).saturating_add(1);
        let date = js_sys::Date::new(&JsValue::from_f64(at as f64));
        self.state
            .storage()
            .set_alarm(ScheduledTime::new(date))
            .await?;
        self.alarm_at.set(Some(at));
        Ok(())
    }
}

fn now() -> u64 {
    runtime::now_ms() as u64
}

impl DurableObject for RateLimiter {
    fn new(state: State, _env: Env) -> Self {
        RateLimiter {
            state,
            counts: RefCell::new(None),
            alarm_at: Cell::new(None),
        }
    }

    async fn fetch(&self, mut req: Request) -> worker::Result<Response> {
        let check: CheckRequest = match serde_json::from_str(&req.text().await?) {
            Ok(c) => c,
            Err(e) => return Response::error(format!("bad check request: {e}"), 400),
        };
        self.load().await?;
        // No await between reading and updating the counts: this is the atomic step.
        let now = now();
        let (next, answer) = {
            let mut slot = self.counts.borrow_mut();
            let current = slot.get_or_insert_with(Counts::default);
            let (next, answer) = serve(&check.spec, current, &check, now);
            if check.op == Op::Peek {
                // Nothing charged: nothing to store.
                return Response::from_json(&answer);
            }
            *current = next.clone();
            (next, answer)
        };
        let text = serde_json::to_string(&next)?;
        // The output gate holds the answer until this write is durable.
        self.state.storage().put(STATE_KEY, text).await?;
        if !next.is_expired(now) && self.alarm_at.get().is_none_or(|at| at <= now) {
            self.schedule_cleanup(next.expires_at).await?;
        }
        Response::from_json(&answer)
    }

    async fn alarm(&self) -> worker::Result<Response> {
        self.alarm_at.set(None);
        self.load().await?;
        let now = now();
        let expires_at = self.counts.borrow().as_ref().map_or(0, |c| c.expires_at);
        if expires_at <= now {
            self.state.storage().delete_all().await?;
            *self.counts.borrow_mut() = Some(Counts::default());
        } else {
            self.schedule_cleanup(expires_at).await?;
        }
        Response::ok("")
    }
}
