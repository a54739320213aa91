// The docs as a contract, third pass over docs/plugins.md's general sections and small plugins, on both
// request paths (CONFIG_RELOAD_SECONDS 0: asynchronous; 600 after one warm-up request: synchronous).
// What tests/docs-contract-plugins2, plugins-basic, phases and bot-detection do not check already:
// Kong's precedence of consumer scopes, ties by document order, a disabled instance taking no part in
// precedence (but validated and keeping its id), route + service on a route of another service, the order
// authentication / ip-restriction, rewrite before access (termination before bot-detection, a route-wide
// termination before a consumer's), an answer ending the request phases (a refused bot uses up no rate
// limit), the response phases on answers of key-auth, rate-limiting, request-termination, redirect and
// bot-detection, HEAD on plugin answers, echo's message, redirect's fragment and unnamed regex groups,
// status bounds, id collisions across plugin names and consumer scopes.
import { describe, test, before, after } from "node:test";
import assert from "node:assert/strict";
import crypto from "node:crypto";
import { startGateway, startOrigin, request, problemOf, rejected } from "./support/harness.mjs";
import { DO_OPTIONS } from "./ratelimit-helpers.mjs";

const sha256hex = (s) => crypto.createHash("sha256").update(s).digest("hex");
const ORIGIN = "https://app.example";

async function addConsumer(gw, id, username, key) {
  const put = (k, v) => gw.kv.put(k, JSON.stringify(v));
  await put(`consumers/${id}`, { id, username, groups: [] });
  await put(`consumer-names/${username}`, { id });
  await put(`credentials/key-auth/${sha256hex(key)}`, { id: `cred-${id}`, consumer_id: id });
}

// request-termination's default messages not checked by docs-contract-plugins2 (edgegate's list).
const DEFAULTS = [[201, "Created"], [202, "Accepted"], [400, "Bad request"], [408, "Request timeout"], [409, "Conflict"], [413, "Request size limit exceeded"], [501, "Not implemented"], [504, "Gateway timeout"], [451, "Request terminated"]];

const aliceKey = "eg_alice_" + crypto.randomBytes(12).toString("hex");
const bobKey = "eg_bob_" + crypto.randomBytes(12).toString("hex");

function config(origin) {
  const svc = (name) => ({ name, url: origin.url });
  const r = (name, service = "shop") => ({ name, service, paths: [`/${name}`] });
  const rt = (scope, value) => ({ name: "response-transformer", ...scope, config: { add: { headers: [`x-who:${value}`] } } });
  // cors and response-transformer on a route: the response phases, whatever answers.
  const looks = (route) => [
    { name: "cors", route, config: { origins: [ORIGIN] } },
    { name: "response-transformer", route, config: { add: { headers: ["x-phase:header_filter"] } } },
  ];
  return {
    format_version: 1,
    services: [svc("shop"), svc("s2"), svc("s3"), svc("s4")],
    routes: [
      r("warm"),
      // Precedence with consumers.
      r("p-consumer"), r("p-cs", "s2"), r("p-tie"), r("tie2"), r("mismatch"), r("p-disabled", "s3"), r("p-disabled-c", "s4"),
      // Priorities.
      r("ip-auth"),
      // Response phases on every kind of answer.
      r("ph-401"), r("ph-429"), r("ph-term"), r("ph-redirect"), r("ph-bot"),
      // HEAD and statuses.
      r("term-head"), ...DEFAULTS.map(([c]) => r(`st-${c}`)), r("term-both"), r("bot-term"), r("rt-redirect"), r("echo-default"), r("echo-msg"), r("ph-term-c"), r("bot-rl"), r("term-599"), r("redir-302"), r("redir-303"), r("redir-307"), r("frag-q"), r("frag-p"),
      { name: "cap-num", service: "shop", paths: ["~^/cap-num/(\\d+)$"] },
      { name: "cap-seg", service: "shop", paths: ["/cap-seg/{1}"] },
    ],
    plugins: [
      // consumer alone beats route alone (Kong: consumer is 5th, route 6th).
      { name: "key-auth", route: "p-consumer" },
      rt({ route: "p-consumer" }, "route"),
      rt({ consumer: "alice" }, "consumer"),
      // consumer + service beats route + service and consumer alone.
      { name: "key-auth", route: "p-cs" },
      rt({ route: "p-cs", service: "s2" }, "route+service"),
      rt({ consumer: "alice", service: "s2" }, "consumer+service"),
      // Two consumer + route instances: the earlier in the document wins.
      { name: "key-auth", route: "p-tie" },
      rt({ consumer: "alice", route: "p-tie" }, "first"),
      rt({ consumer: "alice", route: "p-tie", id: "second" }, "second"),
      // route + service where the route is not on that service: never runs.
      { name: "request-termination", route: "mismatch", service: "s2", config: { status_code: 410 } },
      // Two route instances: the earlier wins, also when the later has an explicit id.
      rt({ route: "tie2", id: "b" }, "first"),
      rt({ route: "tie2", id: "a" }, "second"),
      // A disabled route instance takes no part: the service's runs.
      rt({ service: "s3" }, "service"),
      { ...rt({ route: "p-disabled" }, "disabled-route"), enabled: false },
      // A disabled consumer instance takes no part either.
      { name: "key-auth", route: "p-disabled-c" },
      rt({ route: "p-disabled-c" }, "route"),
      { ...rt({ consumer: "alice", route: "p-disabled-c" }, "disabled-consumer"), enabled: false },

      // ip-restriction (990) runs after authentication (key-auth 1250).
      { name: "ip-restriction", route: "ip-auth", config: { deny: ["192.0.2.0/24"] } },
      { name: "key-auth", route: "ip-auth" },

      // The response phases run on a 401, a 429, a termination, a redirect and a bot's 403.
      ...looks("ph-401"), { name: "key-auth", route: "ph-401" },
      ...looks("ph-429"), { name: "rate-limiting", route: "ph-429", config: { minute: 1, limit_by: "ip" } },
      ...looks("ph-term"), { name: "request-termination", route: "ph-term", config: { status_code: 451 } },
      ...looks("ph-redirect"), { name: "redirect", route: "ph-redirect", config: { location: "https://new.example/x" } },
      ...looks("ph-bot"), { name: "bot-detection", route: "ph-bot" },

      ...looks("ph-term-c"), { name: "key-auth", route: "ph-term-c" },
      { name: "request-termination", route: "ph-term-c", consumer: "bob", config: { status_code: 403, message: "blocked" } },
      // bot-detection (2500) answers before rate-limiting (910): a refused bot uses up no request.
      { name: "bot-detection", route: "bot-rl" },
      { name: "rate-limiting", route: "bot-rl", config: { minute: 1, limit_by: "ip" } },

      // request-termination without consumer (rewrite) answers before bot-detection (access).
      { name: "bot-detection", route: "bot-term" },
      { name: "request-termination", route: "bot-term", config: { status_code: 503, message: "maintenance" } },
      // request-transformer (801) runs before redirect (779), but redirect uses the path as the client sent it.
      { name: "request-transformer", route: "rt-redirect", config: { replace: { uri: "/rewritten" } } },
      { name: "redirect", route: "rt-redirect", config: { location: "https://n.example", keep_incoming_path: true } },

      // A route-wide termination (rewrite) and one for alice on the same route (access).
      { name: "key-auth", route: "term-both" },
      { name: "request-termination", route: "term-both", config: { status_code: 503, message: "route", trigger: "x-route" } },
      { name: "request-termination", route: "term-both", consumer: "alice", config: { status_code: 403, message: "alice" } },

      ...DEFAULTS.map(([c]) => ({ name: "request-termination", route: `st-${c}`, config: { status_code: c } })),
      { name: "request-termination", route: "term-head", config: { status_code: 503 } },
      { name: "request-termination", route: "echo-default", config: { echo: true, status_code: 503 } },
      { name: "request-termination", route: "echo-msg", config: { echo: true, status_code: 200, message: "hi" } },
      { name: "request-termination", route: "term-599", config: { status_code: 599 } },
      { name: "redirect", route: "redir-302", config: { location: "/to", status_code: 302 } },
      { name: "redirect", route: "redir-303", config: { location: "/to", status_code: 303 } },
      { name: "redirect", route: "redir-307", config: { location: "/to", status_code: 307 } },
      { name: "redirect", route: "cap-num", config: { location: "/to/$(uri_captures.1)/end" } },
      { name: "redirect", route: "cap-seg", config: { location: "/to/$(uri_captures.1)/end" } },
      { name: "redirect", route: "frag-q", config: { location: "/a?x=1#top", keep_incoming_query: true } },
      { name: "redirect", route: "frag-p", config: { location: "https://n.example/base#top", keep_incoming_path: true } },
    ],
  };
}

for (const reload of ["0", "600"]) describe(`docs contract: plugins.md, third pass (CONFIG_RELOAD_SECONDS ${reload})`, { timeout: 180_000 }, () => {
  let gw, origin;
  const get = (path, headers = {}, opts = {}) =>
    request(gw.at(path), { headers: { "accept-encoding": "identity", ...headers }, ...opts });

  before(async () => {
    origin = await startOrigin();
    gw = await startGateway({ reload, config: config(origin), miniflare: DO_OPTIONS });
    await addConsumer(gw, "c-alice", "alice", aliceKey);
    await addConsumer(gw, "c-bob", "bob", bobKey);
    // Loads the version: with 600, every later request is served on the synchronous path.
    assert.equal((await get("/warm")).status, 200);
  });
  after(async () => {
    await gw?.dispose();
    await origin?.close();
  });

  describe("which instances run", () => {
    test("an instance scoped to a consumer alone beats one on the route, once the consumer is known", async () => {
      assert.equal((await get("/p-consumer", { apikey: aliceKey })).headers["x-who"], "consumer");
      assert.equal((await get("/p-consumer", { apikey: bobKey })).headers["x-who"], "route");
    });

    test("consumer + service beats route + service", async () => {
      assert.equal((await get("/p-cs", { apikey: aliceKey })).headers["x-who"], "consumer+service");
      assert.equal((await get("/p-cs", { apikey: bobKey })).headers["x-who"], "route+service");
    });

    test("an instance on a route and a service the route does not send to never runs", async () => {
      assert.equal((await get("/mismatch")).status, 200);
    });

    test("between two consumer + route instances, the earlier in the document wins", async () => {
      assert.equal((await get("/p-tie", { apikey: aliceKey })).headers["x-who"], "first");
      assert.equal((await get("/tie2")).headers["x-who"], "first", "document order, not the ids' order");
    });

    test("a disabled instance never runs and takes no part in precedence: a less specific one runs", async () => {
      assert.equal((await get("/p-disabled")).headers["x-who"], "service");
      // alice's consumer + route instance is disabled: her consumer-alone instance (global) runs.
      assert.equal((await get("/p-disabled-c", { apikey: aliceKey })).headers["x-who"], "consumer");
      assert.equal((await get("/p-disabled-c", { apikey: bobKey })).headers["x-who"], "route");
    });
  });

  describe("priorities", () => {
    test("ip-restriction runs after authentication: a denied address without credentials gets 401", async () => {
      const denied = { "cf-connecting-ip": "192.0.2.7" };
      const noKey = await get("/ip-auth", denied);
      assert.equal(noKey.status, 401);
      const withKey = await get("/ip-auth", { ...denied, apikey: aliceKey });
      assert.equal(withKey.status, 403);
      assert.equal(problemOf(withKey).code, "ip_not_allowed");
      assert.equal((await get("/ip-auth", { "cf-connecting-ip": "198.51.100.7", apikey: aliceKey })).status, 200);
    });
  });

  describe("order of phases", () => {
    test("a request-termination without consumer (rewrite) answers a bot before bot-detection (access)", async () => {
      const res = await get("/bot-term", { "user-agent": "Twitterbot/1.0" });
      assert.equal(res.status, 503);
      assert.deepEqual(res.json(), { message: "maintenance" });
    });

    test("a route-wide termination answers in rewrite, even for a consumer with its own instance", async () => {
      const routeWide = await get("/term-both", { apikey: aliceKey, "x-route": "1" });
      assert.equal(routeWide.status, 503);
      assert.deepEqual(routeWide.json(), { message: "route" });
      const alice = await get("/term-both", { apikey: aliceKey });
      assert.equal(alice.status, 403);
      assert.deepEqual(alice.json(), { message: "alice" });
      assert.equal((await get("/term-both", { apikey: bobKey })).status, 200);
      assert.equal((await get("/term-both", { "x-route": "1" })).status, 503, "before authentication");
    });

    test("redirect keeps the path as sent, not request-transformer's uri", async () => {
      const res = await get("/rt-redirect/a%2Fb?x=1");
      assert.equal(res.status, 301);
      assert.equal(res.headers.location, "https://n.example/rt-redirect/a%2Fb?x=1");
    });
  });

  describe("order of phases: the response phases run on every answer", () => {
    // An answer of the gateway's: it did not reach the origin.
    const answer = async (path, headers) => {
      const before = origin.requests.length;
      const res = await get(path, headers);
      assert.equal(origin.requests.length, before, "the origin is not called");
      return res;
    };
    const looksOk = (res, status) => {
      assert.equal(res.status, status);
      assert.equal(res.headers["access-control-allow-origin"], ORIGIN);
      assert.equal(res.headers["x-phase"], "header_filter");
      assert.ok(res.headers["x-request-id"]);
    };

    test("a 401 from key-auth", async () => {
      looksOk(await answer("/ph-401", { origin: ORIGIN }), 401);
    });

    test("a 429 from rate-limiting", async () => {
      const ip = { origin: ORIGIN, "cf-connecting-ip": `203.0.113.${reload === "0" ? 40 : 41}` };
      looksOk(await get("/ph-429", ip), 200);
      const refused = await answer("/ph-429", ip);
      looksOk(refused, 429);
      assert.ok(refused.headers["retry-after"]);
    });

    test("a request-termination answer", async () => {
      const res = await answer("/ph-term", { origin: ORIGIN });
      looksOk(res, 451);
      assert.deepEqual(res.json(), { message: "Request terminated" });
    });

    test("a redirect", async () => {
      const res = await answer("/ph-redirect", { origin: ORIGIN });
      looksOk(res, 301);
      assert.equal(res.headers.location, "https://new.example/x");
    });

    test("a bot's 403", async () => {
      const res = await answer("/ph-bot", { origin: ORIGIN, "user-agent": "Mozilla/5.0 (compatible; bingbot/2.0)" });
      looksOk(res, 403);
      assert.equal(problemOf(res).code, "forbidden");
    });

    test("a consumer-scoped request-termination answer (access phase)", async () => {
      const res = await answer("/ph-term-c", { origin: ORIGIN, apikey: bobKey });
      looksOk(res, 403);
      assert.deepEqual(res.json(), { message: "blocked" });
      // alice is not terminated (her consumer-alone response-transformer beats the route's here).
      const alice = await get("/ph-term-c", { origin: ORIGIN, apikey: aliceKey });
      assert.equal(alice.status, 200);
      assert.equal(alice.headers["x-who"], "consumer");
    });

    test("an answer ends the request phases: a bot refused by bot-detection uses up no rate limit", async () => {
      const ip = { "cf-connecting-ip": `203.0.113.${reload === "0" ? 50 : 51}` };
      for (let i = 0; i < 3; i++) {
        const bot = await get("/bot-rl", { ...ip, "user-agent": "Twitterbot/1.0" });
        assert.equal(bot.status, 403);
        assert.equal(bot.headers["x-ratelimit-limit-minute"], undefined);
      }
      const first = await get("/bot-rl", { ...ip, "user-agent": "Mozilla/5.0 Firefox/128.0" });
      assert.equal(first.status, 200);
      assert.equal(first.headers["x-ratelimit-remaining-minute"], "0");
      assert.equal((await get("/bot-rl", { ...ip, "user-agent": "Mozilla/5.0 Firefox/128.0" })).status, 429);
    });

  });

  describe("request-termination and redirect answers", () => {
    test("HEAD on a termination: the status and headers, no body", async () => {
      const res = await get("/term-head", {}, { method: "HEAD" });
      assert.equal(res.status, 503);
      assert.equal(res.headers["content-type"], "application/json; charset=utf-8");
      assert.equal(res.body.length, 0);
      assert.deepEqual((await get("/term-head")).json(), { message: "Service unavailable" });
    });

    test("echo: JSON, its message is the option or else the status's default message; HEAD without a body", async () => {
      const res = await get("/echo-default");
      assert.equal(res.status, 503);
      assert.equal(res.headers["content-type"], "application/json; charset=utf-8");
      assert.equal(res.json().message, "Service unavailable");
      assert.equal(res.json().request.path, "/echo-default");
      const msg = await get("/echo-msg");
      assert.equal(msg.status, 200);
      assert.equal(msg.json().message, "hi");
      const head = await get("/echo-msg", {}, { method: "HEAD" });
      assert.equal(head.status, 200);
      assert.equal(head.body.length, 0);
    });

    test("edgegate's default messages, and `Request terminated` for statuses without one", async () => {
      for (const [code, message] of DEFAULTS) {
        const res = await get(`/st-${code}`);
        assert.equal(res.status, code);
        assert.deepEqual(res.json(), { message }, `status ${code}`);
      }
    });

    test("status_code 599 is accepted and answered with the message for statuses without one", async () => {
      const res = await get("/term-599");
      assert.equal(res.status, 599);
      assert.deepEqual(res.json(), { message: "Request terminated" });
    });

    test("redirect: a fragment of location stays at the end", async () => {
      assert.equal((await get("/frag-q?q=2")).headers.location, "/a?x=1&q=2#top");
      assert.equal((await get("/frag-q")).headers.location, "/a?x=1#top");
      assert.equal((await get("/frag-p/x?q=2")).headers.location, "https://n.example/frag-p/x?q=2#top");
    });

    test("redirect: an unnamed regex group is not a capture; a path parameter named 1 is", async () => {
      assert.equal((await get("/cap-num/42")).headers.location, "/to//end");
      assert.equal((await get("/cap-seg/42")).headers.location, "/to/42/end");
    });

    test("redirect: 302, 303 and 307 on POST and HEAD, with Location and no body on HEAD", async () => {
      for (const s of [302, 303, 307]) {
        const post = await get(`/redir-${s}`, { "content-type": "text/plain" }, { method: "POST", body: "x" });
        assert.equal(post.status, s);
        assert.equal(post.headers.location, "/to");
        assert.equal(post.text, "redirecting");
        const head = await get(`/redir-${s}`, {}, { method: "HEAD" });
        assert.equal(head.status, s);
        assert.equal(head.headers.location, "/to");
        assert.equal(head.body.length, 0);
      }
    });
  });
});

describe("docs contract: plugins.md, third pass: validation", { timeout: 120_000 }, () => {
  let gw, origin;
  before(async () => {
    origin = await startOrigin();
    gw = await startGateway({ config: config(origin) });
    assert.equal((await request(gw.at("/warm"))).status, 200);
  });
  after(async () => {
    await gw?.dispose();
    await origin?.close();
  });

  const withPlugin = (p) => {
    const c = config(origin);
    c.plugins = [...c.plugins, p];
    return c;
  };
  const last = () => config(origin).plugins.length;

  test("request-termination status_code outside 200 to 599 is refused at its path", async () => {
    for (const s of [199, 600, 100]) {
      const error = await rejected(gw, withPlugin({ name: "request-termination", config: { status_code: s } }));
      assert.match(error, new RegExp(`plugins\\[${last()}\\]\\.config\\.status_code: ${s} is not a status`));
    }
  });

  test("redirect status_code other than 301, 302, 303, 307, 308 is refused at its path", async () => {
    for (const s of [300, 304, 200]) {
      const error = await rejected(gw, withPlugin({ name: "redirect", config: { location: "/x", status_code: s } }));
      assert.match(error, new RegExp(`plugins\\[${last()}\\]\\.config\\.status_code: ${s} is not a redirect status`));
    }
  });

  test("an id of 65 characters or with a space is refused at plugins[i].id", async () => {
    let error = await rejected(gw, withPlugin({ name: "cors", id: "a".repeat(65) }));
    assert.match(error, new RegExp(`plugins\\[${last()}\\]\\.id`));
    error = await rejected(gw, withPlugin({ name: "cors", id: "" }));
    assert.match(error, new RegExp(`plugins\\[${last()}\\]\\.id`));
  });

  test("ids: a derived id collides with an explicit one of the same scope (reported at the explicit id); scopes with a consumer", async () => {
    let c = config(origin);
    let n = c.plugins.length;
    c.plugins.push({ name: "redirect", id: "cors", route: "warm", config: { location: "/x" } });
    c.plugins.push({ name: "cors", route: "warm" });
    let error = await rejected(gw, c);
    assert.match(error, new RegExp(`plugins\\[${n}\\]\\.id: id "cors" is already used by plugins\\[${n + 1}\\] in the same scope \\(route=warm\\)`));
    c = config(origin);
    n = c.plugins.length;
    c.plugins.push({ name: "ip-restriction", id: "a", route: "warm", consumer: "alice", config: { deny: ["192.0.2.1"] } });
    c.plugins.push({ name: "ip-restriction", id: "a", route: "warm", consumer: "bob", config: { deny: ["192.0.2.1"] } });
    c.plugins.push({ name: "ip-restriction", id: "a", route: "warm", consumer: "alice", config: { deny: ["192.0.2.2"] } });
    error = await rejected(gw, c);
    assert.match(error, new RegExp(`plugins\\[${n + 2}\\]\\.id: id "a" is already used by plugins\\[${n}\\] in the same scope \\(route=warm,consumer=alice\\)`));
    assert.ok(!error.includes(`plugins[${n + 1}]`), "another consumer is another scope");
  });

  test("bot-detection and opentelemetry cannot be scoped to a consumer (plugins[i].consumer)", async () => {
    let error = await rejected(gw, withPlugin({ name: "bot-detection", consumer: "alice" }));
    assert.match(error, new RegExp(`plugins\\[${last()}\\]\\.consumer: bot-detection cannot be scoped to a consumer`));
    error = await rejected(gw, withPlugin({ name: "opentelemetry", consumer: "alice", config: { endpoint: "http://127.0.0.1:1/v1/traces" } }));
    assert.match(error, new RegExp(`plugins\\[${last()}\\]\\.consumer: opentelemetry cannot be scoped to a consumer`));
  });

  test("a disabled instance is validated like any other (its config, its route)", async () => {
    let error = await rejected(gw, withPlugin({ name: "redirect", enabled: false, config: { location: "/x", status_code: 200 } }));
    assert.match(error, new RegExp(`plugins\\[${last()}\\]\\.config\\.status_code`));
    error = await rejected(gw, withPlugin({ name: "cors", route: "nope", enabled: false }));
    assert.match(error, new RegExp(`plugins\\[${last()}\\]\\.route: unknown route`));
  });

  test("a disabled instance keeps its id: another with that id in its scope is refused", async () => {
    const c = config(origin);
    const n = c.plugins.length;
    c.plugins.push({ name: "cors", id: "dup", route: "warm", enabled: false });
    c.plugins.push({ name: "redirect", id: "dup", route: "warm", config: { location: "/x" } });
    const error = await rejected(gw, c);
    assert.match(error, new RegExp(`plugins\\[${n + 1}\\]\\.id: id "dup" is already used by plugins\\[${n}\\]`));
  });
});
