// Baseline for scripts/bench: the least a Worker can do to proxy, with no routing, no config and no logs.
// `env.ORIGIN` is the origin's base URL without a trailing slash (for example http://127.0.0.1:9001). With
// `env.LOG` set it also writes one JSON line per request, as edgegate does, to measure what logging costs.
//
// A baseline must be the fastest plain pass-through, or every ratio against it flatters the gateway. The
// default is the fastest of the variants measured interleaved (docs/proxying.md, Performance): the URL by
// string slicing, and `fetch(url, init)` with the incoming method, headers and body, as the gateway itself
// does. `env.VARIANT` selects another one, for comparison (optional bench rows `bare-*`):
//   "request":  fetch(new Request(url, req)), the baseline before issue 12
//   "url":      the URL rebuilt with new URL() (protocol and host replaced), then fetch(url, init)
//   "forward":  fetch(url, req): the incoming request as the init
// and, to price reading a small body and answering from bytes (docs/plugins.md, What a plugin costs):
//   "read-copy":   the response copied (new Response(r.body, r)), its body read with arrayBuffer(), then
//                  answered with new Response(bytes, {status, statusText, headers}): edgegate's way
//   "read-direct": the origin's response read with arrayBuffer(), its headers copied once into the answer
//   "read-text":   as read-direct, with text()
//   "read-orig":   as read-copy, but the body read from the origin's response rather than from the copy
export default {
  fetch(req, env) {
    const incoming = req.url;
    // Everything from the first "/" after "scheme://host": path and query.
    const path = incoming.slice(incoming.indexOf("/", incoming.indexOf("//") + 2));
    const url = env.ORIGIN + path;
    const variant = env.VARIANT;
    let resp;
    if (variant === undefined) {
      resp = fetch(url, { method: req.method, headers: req.headers, body: req.body, redirect: "manual" });
    } else if (variant === "request") {
      resp = fetch(new Request(url, req));
    } else if (variant === "url") {
      const u = new URL(incoming);
      const origin = new URL(env.ORIGIN);
      u.protocol = origin.protocol;
      u.host = origin.host;
      resp = fetch(u, { method: req.method, headers: req.headers, body: req.body, redirect: "manual" });
    } else if (variant === "forward") {
      resp = fetch(url, req);
    } else if (variant.startsWith("read-")) {
      const init = { method: req.method, headers: req.headers, body: req.body, redirect: "manual" };
      resp = fetch(url, init).then((r) => {
        if (variant === "read-copy" || variant === "read-orig") {
          const out = new Response(r.body, r);
          out.headers.set("x-edge", "1");
          return (variant === "read-orig" ? r : out).arrayBuffer().then((b) => {
            out.headers.delete("content-length");
            return new Response(new Uint8Array(b), { status: out.status, statusText: out.statusText, headers: out.headers });
          });
        }
        const h = new Headers(r.headers);
        h.set("x-edge", "1");
        h.delete("content-length");
        const body = variant === "read-text" ? r.text() : r.arrayBuffer();
        return body.then((b) => new Response(b, { status: r.status, statusText: r.statusText, headers: h }));
      });
    } else {
      throw new Error(`unknown VARIANT ${variant}`);
    }
    if (!env.LOG) return resp;
    return resp.then((r) => {
      console.log(JSON.stringify({ event: "request", method: req.method, path, status: r.status }));
      return r;
    });
  },
};
