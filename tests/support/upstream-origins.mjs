// Origins for the upstream tests (tests/upstreams.test.mjs): each answers with its own name so that a
// test sees which target served a request, and some fail on purpose. All on 127.0.0.1, built on
// harness.mjs's startOrigin (which records every request).
import { startOrigin, sleep } from "./harness.mjs";

/**
 * An origin that answers 200 `{"origin": name, "method", "url", "body"}`, or what `behaviour.mode`
 * says (changeable at any time through the returned object):
 * - "ok": 200 as above;
 * - "status": `behaviour.status` (e.g. 500, 503) with the same body;
 * - "slow": waits `behaviour.ms`, then answers 200;
 * - "drop": closes the connection without answering;
 * - "cut": sends 200 headers and part of the body, then closes the connection.
 */
export async function startNamedOrigin(name, behaviour = {}) {
  const state = { mode: "ok", status: 500, ms: 1000, ...behaviour };
  const origin = await startOrigin(async (req, res, record) => {
    const body = JSON.stringify({ origin: name, method: record.method, url: record.url, body: record.body.toString("utf8") });
    switch (state.mode) {
      case "drop":
        req.socket.destroy();
        return;
      case "cut":
        res.writeHead(200, { "content-type": "text/plain", "content-length": "1000" });
        res.write("partial-");
        await sleep(50);
        res.socket.destroy();
        return;
      case "slow":
        await sleep(state.ms);
        break;
      case "status":
        res.writeHead(state.status, { "content-type": "application/json", "x-origin": name });
        res.end(body);
        return;
      default:
        break;
    }
    res.writeHead(200, { "content-type": "application/json", "x-origin": name });
    res.end(body);
  });
  origin.name = name;
  origin.state = state;
  return origin;
}

/** Which origin served each response: counts by the `x-origin` header (`"none"` when absent). */
export function tally(responses) {
  const counts = {};
  for (const r of responses) {
    const k = r.headers["x-origin"] ?? "none";
    counts[k] = (counts[k] ?? 0) + 1;
  }
  return counts;
}
