//! The response on its way to the client, as response hooks (header_filter, body_filter) see it.
//!
//! The runner makes one `Reply` per request, only when a plugin of the route has a response hook.
//! Headers are edited in place when the response's headers are mutable (the gateway's own answers
//! and the proxy's, which `js::forward` already copies); otherwise they are copied once, on the
//! first edit. A new `Response` is built at the end only when the status or the body changed.

use wasm_bindgen::JsValue;

pub struct Reply {
    response: web_sys::Response,
    status: u16,
    /// The response's headers, read once.
    own: std::cell::OnceCell<web_sys::Headers>,
    /// The mutable copy of the headers, once one was needed.
    copied: Option<web_sys::Headers>,
    /// A replacement body (`Some(None)`: no body).
    body: Option<Option<JsValue>>,
    status_changed: bool,
}

// The methods are the API of header_filter and body_filter hooks; not every one has a user yet.
#[allow(dead_code)]
impl Reply {
    pub fn new(response: web_sys::Response) -> Reply {
        let status = response.status();
        Reply {
            response,
            status,
            own: std::cell::OnceCell::new(),
            copied: None,
            body: None,
            status_changed: false,
        }
    }

    pub fn status(&self) -> u16 {
        self.status
    }

    /// Change the status (200 to 599).
    pub fn set_status(&mut self, status: u16) {
        if status != self.status {
            self.status = status;
            self.status_changed = true;
        }
    }

    fn own(&self) -> &web_sys::Headers {
        self.own.get_or_init(|| self.response.headers())
    }

    fn headers(&self) -> &web_sys::Headers {
        match &self.copied {
            Some(h) => h,
            None => self.own(),
        }
    }

    pub fn header(&self, name: &str) -> Option<String> {
        if self.body.is_some() && name.eq_ignore_ascii_case("content-length") {
            return None;
        }
        self.headers().get(name).ok().flatten()
    }

    /// Apply `edit` to the headers, copying them first if they are immutable.
    fn edit(&mut self, edit: impl Fn(&web_sys::Headers) -> Result<(), JsValue>) {
        if edit(self.headers()).is_ok() {
            return;
        }
        if self.copied.is_none() {
            if let Ok(h) = web_sys::Headers::new_with_headers(self.own()) {
                let _ = edit(&h);
                self.copied = Some(h);
            }
        }
    }

    pub fn set_header(&mut self, name: &str, value: &str) {
        self.edit(|h| h.set(name, value));
    }

    pub fn append_header(&mut self, name: &str, value: &str) {
        self.edit(|h| h.append(name, value));
    }

    pub fn remove_header(&mut self, name: &str) {
        self.edit(|h| h.delete(name));
    }

    /// All header (name, value) pairs, names in lower case.
    pub fn header_pairs(&self) -> Vec<(String, String)> {
        let mut pairs = crate::respond::header_pairs(self.headers());
        if self.body.is_some() {
            pairs.retain(|(n, _)| n != "content-length");
        }
        pairs
    }

    /// The body as it stands (the replacement, if one was set): a `ReadableStream`, a string or
    /// bytes; `None` for no body.
    pub fn body(&self) -> Option<JsValue> {
        match &self.body {
            Some(b) => b.clone(),
            None => self.response.body().map(JsValue::from),
        }
    }

    /// What the body is read from: the response itself while its body is untouched (so that it can
    /// be read natively, without a new `Response` around its stream), else the replacement; `None`
    /// for no body.
    pub fn body_source(&self) -> Option<JsValue> {
        match &self.body {
            Some(b) => b.clone(),
            None => Some(JsValue::from(&self.response)),
        }
    }

    /// Replace the body: a `ReadableStream` (e.g. `body().pipeThrough(transform)`), a string, a
    /// `Uint8Array`, or `None`. `Content-Length` is gone from then on (the runtime sets it again when
    /// the new body's length is known); it is deleted in the same call that builds the response
    /// ([`Reply::finish`]), not with a call of its own.
    pub fn set_body(&mut self, body: Option<JsValue>) {
        self.body = Some(body);
    }

    /// The response as it stands, taken out to be transformed whole (give it back with [`Reply::put`]).
    pub fn take(&mut self) -> web_sys::Response {
        let empty = web_sys::Response::new().expect("an empty response");
        std::mem::replace(self, Reply::new(empty)).finish()
    }

    /// Put a response back (after [`Reply::take`]).
    pub fn put(&mut self, response: web_sys::Response) {
        *self = Reply::new(response);
    }

    /// The response to send.
    pub fn finish(self) -> web_sys::Response {
        if !self.status_changed && self.body.is_none() && self.copied.is_none() {
            return self.response;
        }
        let body = match &self.body {
            Some(Some(b)) => b.clone(),
            Some(None) => JsValue::NULL,
            None => JsValue::UNDEFINED,
        };
        super::body_js::rebuild(
            &self.response,
            self.status,
            !self.status_changed,
            self.headers(),
            &body,
        )
        .unwrap_or(self.response)
    }
}
