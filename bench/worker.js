// Baseline for scripts/bench: the least a Worker can do to proxy, with no routing, no config and no logs.
// `env.ORIGIN` is the origin's base URL (for example http://127.0.0.1:9001). With `env.LOG` set it also writes
// one JSON line per request, as edgegate does, to measure what logging costs.
export default {
  async fetch(req, env) {
    const u = new URL(req.url);
    const origin = new URL(env.ORIGIN);
    u.protocol = origin.protocol;
    u.host = origin.host;
    const resp = await fetch(new Request(u, req));
    if (env.LOG) console.log(JSON.stringify({ event: "request", method: req.method, path: u.pathname, status: resp.status }));
    return resp;
  },
};
