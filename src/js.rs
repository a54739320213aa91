//! The few JS helpers the hot path uses, so that forwarding a request costs two crossings of the
//! wasm/JS boundary instead of dozens (each `Headers.set` from Rust is one, with its strings decoded).
//! They apply decisions made in Rust (`edgegate_core::proxy`); they decide nothing themselves.
//!
//! Header lists cross as one string: names separated by `\n` (`remove`), or `name\nvalue\n...` after
//! the URL and the request id (`plan`, see [`HeaderEdits`]). URLs, header names and values cannot
//! contain a newline, so the encoding is unambiguous. Lists that never change are JS arrays made once
//! per isolate.

use wasm_bindgen::prelude::*;

#[wasm_bindgen(inline_js = r#"
// The upstream request's headers: `req`'s without those named in `always` (an array) and `remove`, and
// without the other spellings of the headers the gateway sets (a name with a "_" that, read with "-" for
// "_", is in `guarded`, a Set, or is one of the names `pairs` sets: edgegate_core::proxy::
// forges_gateway_header); then X-Request-Id `requestId` and the header pairs of `pairs` from index `from` on.
function upstreamHeaders(req, always, guarded, remove, requestId, pairs, from) {
  const h = new Headers(req.headers);
  for (const n of always) h.delete(n);
  if (remove) for (const n of remove.split("\n")) h.delete(n);
  let forged = null;
  for (const n of h.keys()) {
    if (n.indexOf("_") < 0) continue;
    const d = n.replaceAll("_", "-");
    if (guarded.has(d) || setsHeader(pairs, from, d)) (forged ??= []).push(n);
  }
  if (forged !== null) for (const n of forged) h.delete(n);
  h.set("x-request-id", requestId);
  for (let i = from; i + 1 < pairs.length; i += 2) h.set(pairs[i], pairs[i + 1]);
  return h;
}

// Whether the header pairs of `pairs` from index `from` on set `name`.
function setsHeader(pairs, from, name) {
  for (let i = from; i + 1 < pairs.length; i += 2) if (pairs[i] === name) return true;
  return false;
}

const TIMED_OUT = 1;
const FAILED = 2;
const BODY_REFUSED = 3;

// Whether a request body (a string, bytes or a stream) is empty. A stream is read up to its first
// non-empty chunk (then cancelled), so a body that is not empty is never read further.
async function emptyBody(b) {
  if (typeof b === "string") return b.length === 0;
  if (b.byteLength !== undefined) return b.byteLength === 0;
  if (typeof b.getReader !== "function") return false;
  const r = b.getReader();
  for (;;) {
    const { done, value } = await r.read();
    if (done) return true;
    if (value && value.byteLength > 0) {
      r.cancel().catch(() => {});
      return false;
    }
  }
}

// Fetch with `req`'s method and body what `plan` says: its lines are the upstream URL, the request id,
// then header name / value pairs to set upstream, after the headers named in `always` (an array) and
// `remove` and the forged spellings `guarded` judges (see upstreamHeaders) have been removed and
// X-Request-Id set. Resolve to what `done(outcome, status, upstreamMs)`
// returns (reject with what it throws). `outcome` is 1 (TIMED_OUT) when no response headers arrived within
// `timeoutMs`, 2 (FAILED) when the fetch failed (`status` is 0 for both); otherwise it is the response to
// send, `status` its status and `upstreamMs` the time the origin took: the same streaming body, without
// the headers named in `respAlways` (an array) and in the response's own Connection header (they are
// hop-by-hop, RFC 9110 7.6.1), with X-Request-Id and the latency headers in ms (`startedMs` is when the
// request arrived). `method` and `body`, unless undefined, replace the request's (a plugin's edit;
// `body` null sends none). A 101 (WebSocket) response is passed as it is: it carries the socket. An exception
// while preparing the response counts as a failed fetch. A GET or HEAD cannot carry a body in the Fetch API:
// an empty one (`Content-Length: 0`, an empty chunked body) is left out; another gives `outcome` 3
// (BODY_REFUSED) without any fetch. (One `plan` string rather than three: each
// string from wasm costs a decoder call.)
//
// The timeout is a race, not an abort: an AbortController per request costs more CPU than the rest of
// this function, and the fetch left behind is cancelled anyway when the request ends (the 504 answer).
export function forward(req, plan, always, guarded, remove, resolveOverride, timeoutMs, respAlways, startedMs, body, done,
                        method) {
  const p = plan.split("\n");
  const url = p[0];
  const requestId = p[1];
  const init = { method: method ?? req.method,
                 headers: upstreamHeaders(req, always, guarded, remove, requestId, p, 2), redirect: "manual" };
  // `body`: the request body kept in the Worker for retries (a copy per attempt), or a plugin's
  // replacement (a string, bytes or a stream; null: none); else the client's stream.
  if (body !== undefined) init.body = body === null || typeof body === "string" || !body.slice ? body : body.slice(0);
  else if (req.body !== null) init.body = req.body;
  // A body counted by request-size-limiting aborts the upload past its limit (src/plugins/request_size_limiting.rs).
  if (init.body && init.body.edgegateSignal) init.signal = init.body.edgegateSignal;
  if (resolveOverride) init.cf = { resolveOverride };
  // Whichever comes first, the response headers or the deadline, settles the promise; `done` runs once.
  return new Promise((resolve, reject) => {
    let settled = false;
    const settle = (outcome, status, upstreamMs) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      try {
        resolve(done(outcome, status, upstreamMs));
      } catch (e) {
        reject(e);
      }
    };
    const timer = setTimeout(settle, timeoutMs, TIMED_OUT, 0, 0);
    const send = () => {
      const sent = Date.now();
      fetch(url, init).then(
        (r) => {
          if (settled) return;
          const upstream = Math.max(0, Date.now() - sent);
          let out;
          try {
            out = clientResponse(r, upstream, sent - startedMs, respAlways, requestId);
          } catch {
            return settle(FAILED, 0, 0);
          }
          settle(out, r.status, upstream);
        },
        () => settle(FAILED, 0, 0));
    };
    if (init.body == null || (init.method !== "GET" && init.method !== "HEAD")) return send();
    emptyBody(init.body).then(
      (empty) => {
        if (settled) return;
        if (!empty) return settle(BODY_REFUSED, 0, 0);
        delete init.body;
        delete init.signal;
        init.headers.delete("content-length");
        init.headers.delete("transfer-encoding");
        send();
      },
      () => settle(BODY_REFUSED, 0, 0));
  });
}

// The response to send for the origin's response `r` (see `forward`).
function clientResponse(r, upstreamMs, proxyMs, respAlways, requestId) {
  if (r.status === 101) return r;
  // Same status, status text and body stream; headers copied into a mutable set.
  const out = new Response(r.body, r);
  const h = out.headers;
  const c = h.get("connection");
  for (const n of respAlways) h.delete(n);
  if (c) for (const t of c.split(",")) { const n = t.trim(); if (n) h.delete(n); }
  // RFC 9110 section 6.6.1: a recipient with a clock forwarding a response without Date adds one.
  if (!h.has("date")) h.set("date", new Date().toUTCString());
  h.set("x-request-id", requestId);
  h.set("x-edgegate-upstream-latency", String(upstreamMs));
  h.set("x-edgegate-proxy-latency", String(Math.max(0, proxyMs)));
  return out;
}

// What the gateway reads of every request, in one call: method, URL, then the values of the headers
// named in `names` (an array: REQUEST_HEADERS in src/js.rs), "\u0000" for a missing one; joined by "\n".
export function requestInfo(req, names) {
  const h = req.headers;
  let out = req.method + "\n" + req.url;
  for (const n of names) {
    const v = h.get(n);
    out += v === null ? "\n\u0000" : "\n" + v;
  }
  return out;
}
"#)]
extern "C" {
    /// See the JS above: resolves to what `done` returns.
    #[allow(clippy::too_many_arguments)]
    pub fn forward(
        req: &web_sys::Request,
        plan: &str,
        always: &JsValue,
        guarded: &JsValue,
        remove: Option<&str>,
        resolve_override: Option<String>,
        timeout_ms: f64,
        resp_always: &JsValue,
        started_ms: f64,
        body: &JsValue,
        done: &JsValue,
        method: Option<String>,
    ) -> js_sys::Promise;

    #[wasm_bindgen(js_name = requestInfo)]
    fn request_info(req: &web_sys::Request, names: &JsValue) -> String;
}

/// `outcome` values of `forward` that are not a response.
pub const TIMED_OUT: f64 = 1.0;
/// A GET or HEAD with a body that is not empty: not sent (the Fetch API cannot send it).
pub const BODY_REFUSED: f64 = 3.0;

/// The request headers every request needs, read in the same call as the method and URL.
const REQUEST_HEADERS: [&str; 6] = [
    "x-request-id",
    "cf-connecting-ip",
    "connection",
    "x-forwarded-for",
    "traceparent",
    "via",
];

/// What the gateway reads of every request (see `request_info` in the JS above).
#[derive(Debug, Default)]
pub struct RequestInfo {
    pub method: String,
    pub url: String,
    pub request_id: Option<String>,
    pub client_ip: Option<String>,
    pub connection: Option<String>,
    pub forwarded_for: Option<String>,
    pub traceparent: Option<String>,
    pub via: Option<String>,
}

impl RequestInfo {
    pub fn read(req: &web_sys::Request) -> RequestInfo {
        thread_local! {
            // The names as a JS array, made once per isolate.
            static NAMES: JsValue = REQUEST_HEADERS
                .iter()
                .map(|n| JsValue::from_str(n))
                .collect::<js_sys::Array>()
                .into();
        }
        let text = NAMES.with(|names| request_info(req, names));
        let mut parts = text.split('\n');
        let mut next = || parts.next().unwrap_or("\u{0}");
        let mut opt = || Some(next()).filter(|v| *v != "\u{0}").map(str::to_string);
        let method = opt().unwrap_or_default();
        let url = opt().unwrap_or_default();
        RequestInfo {
            method,
            url,
            request_id: opt(),
            client_ip: opt(),
            connection: opt(),
            forwarded_for: opt(),
            traceparent: opt(),
            via: opt(),
        }
    }
}

/// Builds `forward`'s `remove` argument and its `plan`: `url\nrequest id\nname\nvalue\n...`.
pub struct HeaderEdits {
    pub remove: String,
    /// `url\nrequest id` followed by `\nname\nvalue` per header to set.
    pub plan: String,
}

impl HeaderEdits {
    /// Edits whose `plan` starts with the two lines `forward` reads first.
    pub fn new(url: &str, request_id: &str) -> HeaderEdits {
        let mut plan = String::with_capacity(url.len() + request_id.len() + 256);
        plan.push_str(url);
        plan.push('\n');
        plan.push_str(request_id);
        HeaderEdits {
            remove: String::new(),
            plan,
        }
    }

    pub fn remove(&mut self, name: &str) {
        if !self.remove.is_empty() {
            self.remove.push('\n');
        }
        self.remove.push_str(name);
    }

    pub fn set(&mut self, name: &str, value: &str) {
        self.plan.push('\n');
        self.plan.push_str(name);
        self.plan.push('\n');
        self.plan.push_str(value);
    }
}
