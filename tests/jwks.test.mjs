// JWKS fetches under concurrency (docs/authentication.md, "JWKS at the edge"): on a cold isolate, and when a
// new `kid` appears, the requests that need a JWKS being fetched wait for that one fetch and are decided with
// its result; a storm of made-up kids costs at most one fetch per refetch interval; a provider slower than
// the fetch timeout holds the waiting requests no longer than that timeout. Tokens are minted by `jose`; the
// JWKS server is local and counts its hits.
import { describe, test, before, after } from "node:test";
import assert from "node:assert/strict";
import http from "node:http";
import crypto from "node:crypto";
import * as jose from "jose";
import { startGateway, startOrigin, request, sleep } from "./support/harness.mjs";

const now = () => Math.floor(Date.now() / 1000);
const REFETCH_SECONDS = 1;


/**
 * A JWKS server on 127.0.0.1 that answers after `delayMs`, or, while `hold()` is on, when `release()` is
 * called; counts hits.
 */
async function startJwks({ delayMs = 0 } = {}) {
  const state = { keys: [], hits: 0, delayMs, held: null };
  const sockets = new Set();
  const server = http.createServer((req, res) => {
    state.hits++;
    const keys = state.keys; // what was published when the request arrived
    const answer = () => {
      res.writeHead(200, { "content-type": "application/json" });
      res.end(JSON.stringify({ keys }));
    };
    if (state.held) state.held.push(answer);
    else setTimeout(answer, state.delayMs);
  });
  server.on("connection", (s) => {
    sockets.add(s);
    s.on("close", () => sockets.delete(s));
  });
  await new Promise((r) => server.listen(0, "127.0.0.1", r));
  state.url = `http://127.0.0.1:${server.address().port}/.well-known/jwks.json`;
  state.hold = () => {
    state.held = [];
  };
  state.release = () => {
    const held = state.held ?? [];
    state.held = null;
    for (const answer of held) answer();
  };
  state.close = () => {
    for (const s of sockets) s.destroy();
    return new Promise((r) => server.close(r));
  };
  return state;
}

async function waitFor(fn, what) {
  const until = Date.now() + 10_000;
  while (!fn()) {
    if (Date.now() > until) throw new Error(`timed out waiting for ${what}`);
    await sleep(5);
  }
}

async function rsaKey(kid) {
  const { publicKey, privateKey } = await jose.generateKeyPair("RS256", { extractable: true });
  const jwk = { ...(await jose.exportJWK(publicKey)), kid, alg: "RS256", use: "sig" };
  return { kid, privateKey, jwk };
}

const mint = (key, iss, kid) =>
  new jose.SignJWT({ sub: "svc" })
    .setProtectedHeader({ alg: "RS256", kid })
    .setIssuer(iss)
    .setIssuedAt()
    .setExpirationTime(now() + 600)
    .sign(key);

describe("JWKS fetches under concurrency", { timeout: 120_000 }, () => {
  let gw, origin, idp, slowIdp;
  let k1, k2;

  const call = (path, token) =>
    request(gw.at(path), { headers: { authorization: `Bearer ${token}` }, timeoutMs: 20_000 });
  const burst = (n, path, tokenFor) => Promise.all(Array.from({ length: n }, (_, i) => call(path, tokenFor(i))));
  const statuses = (responses) => responses.map((r) => r.status);
  const jwksLogs = () => gw.logs.filter((l) => l.json?.event?.startsWith("jwks_")).map((l) => l.json);

  before(async () => {
    origin = await startOrigin();
    idp = await startJwks({ delayMs: 100 });
    // Slower than the gateway's 5 s fetch timeout.
    slowIdp = await startJwks({ delayMs: 8_000 });
    k1 = await rsaKey("k1");
    k2 = await rsaKey("k2");
    idp.keys = [k1.jwk];
    slowIdp.keys = [k1.jwk];
    const config = { jwks_refetch_interval_seconds: REFETCH_SECONDS, jwks_cache_seconds: 300 };
    gw = await startGateway({
      config: {
        format_version: 1,
        services: [{ name: "origin", url: origin.url }],
        routes: [
          { name: "idp", service: "origin", paths: ["/idp"] },
          { name: "slow", service: "origin", paths: ["/slow"] },
        ],
        plugins: [
          { name: "jwt", route: "idp", config },
          { name: "jwt", route: "slow", config },
        ],
      },
    });
    const put = (key, value) => gw.kv.put(key, JSON.stringify(value));
    await put("consumers/c-svc", { id: "c-svc", username: "svc", groups: [] });
    await put("consumer-names/svc", { id: "c-svc" });
    await put("credentials/jwt/https://idp.test", {
      id: "jwt-idp",
      consumer_id: "c-svc",
      key: "https://idp.test",
      jwks_url: idp.url,
    });
    await put("credentials/jwt/https://slow.test", {
      id: "jwt-slow",
      consumer_id: "c-svc",
      key: "https://slow.test",
      jwks_url: slowIdp.url,
    });
  });
  after(async () => {
    await gw?.dispose();
    await origin?.close();
    await idp?.close();
    await slowIdp?.close();
  });

  test("cold isolate: 20 concurrent valid tokens give 20 x 200 and one JWKS fetch", async () => {
    // The first requests this isolate ever serves; the provider answers only once they are all sent
    // and the fetch has started.
    const token = await mint(k1.privateKey, "https://idp.test", "k1");
    idp.hold();
    const pending = burst(20, "/idp", () => token);
    await waitFor(() => idp.hits === 1, "the JWKS fetch");
    await sleep(300);
    idp.release();
    const responses = await pending;
    assert.deepEqual(statuses(responses), Array(20).fill(200), responses.find((r) => r.status !== 200)?.text);
    for (const r of responses) {
      // Each got the origin's answer through its own request, identity attached.
      assert.equal(r.json().headers["x-consumer-username"], "svc");
      assert.equal(r.json().headers["x-credential-identifier"], "jwt-idp");
    }
    assert.equal(idp.hits, 1, "one JWKS fetch");
    const fetched = jwksLogs().filter((l) => l.event === "jwks_fetched");
    assert.equal(fetched.length, 1);
    assert.ok(fetched[0].waiters >= 1 && fetched[0].waiters <= 19, `waiters: ${fetched[0].waiters}`);
  });

  test("rotation: a new kid's concurrent requests all succeed with one refetch; the old kid never waits", async () => {
    idp.keys = [k1.jwk, k2.jwk];
    await sleep(REFETCH_SECONDS * 1000 + 100); // past the refetch interval since the cold-start fetch
    const before = idp.hits;
    const t1 = await mint(k1.privateKey, "https://idp.test", "k1");
    const t2 = await mint(k2.privateKey, "https://idp.test", "k2");
    idp.hold();
    const newKid = burst(20, "/idp", () => t2);
    await waitFor(() => idp.hits === before + 1, "the refetch");
    // While the refetch is held, k1 (cached) is admitted at once.
    const oldKid = await burst(5, "/idp", () => t1);
    assert.deepEqual(statuses(oldKid), Array(5).fill(200), oldKid.find((r) => r.status !== 200)?.text);
    idp.release();
    const responses = await newKid;
    assert.deepEqual(statuses(responses), Array(20).fill(200), responses.find((r) => r.status !== 200)?.text);
    assert.equal(idp.hits - before, 1, "one refetch for the new kid");
  });

  test("a storm of made-up kids costs at most one fetch per refetch interval, and every one is refused", async () => {
    await sleep(REFETCH_SECONDS * 1000 + 100);
    const before = idp.hits;
    const started = Date.now();
    const refused = [];
    // Waves of 10 concurrent requests, each with a new random kid, for 2.5 s.
    while (Date.now() - started < 2_500) {
      const tokens = await Promise.all(
        Array.from({ length: 10 }, () => mint(k2.privateKey, "https://idp.test", crypto.randomUUID())),
      );
      const wave = await burst(10, "/idp", (i) => tokens[i]);
      refused.push(...wave);
    }
    const elapsed = Date.now() - started;
    for (const r of refused) {
      assert.equal(r.status, 401, r.text);
      assert.equal(r.json().code, "invalid_credentials");
    }
    const fetches = idp.hits - before;
    // At most one per interval: the first at once, then one each time another interval has passed.
    const bound = Math.floor(elapsed / (REFETCH_SECONDS * 1000)) + 1;
    assert.ok(fetches >= 1, "the first unknown kid triggers a refetch");
    assert.ok(fetches <= bound, `${fetches} fetches in ${elapsed} ms (bound ${bound}) for ${refused.length} requests`);
    assert.ok(refused.length >= 30);
  });

  test("a provider slower than the fetch timeout holds waiting requests at most that timeout", async () => {
    const token = await mint(k1.privateKey, "https://slow.test", "k1");
    const started = Date.now();
    const responses = await burst(5, "/slow", () => token);
    const elapsed = Date.now() - started;
    for (const r of responses) {
      assert.equal(r.status, 401, r.text);
      assert.equal(r.json().code, "invalid_credentials");
    }
    assert.equal(slowIdp.hits, 1, "one fetch, the others waited for it");
    assert.ok(elapsed >= 4_500 && elapsed < 7_500, `answered after ${elapsed} ms (timeout 5 s)`);
    const failed = jwksLogs().filter((l) => l.event === "jwks_fetch_failed" && l.url === slowIdp.url);
    assert.equal(failed.length, 1);
    assert.equal(failed[0].waiters, 4);
  });
});
