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
