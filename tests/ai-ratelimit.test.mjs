// Token budgets on AI routes: a `rate-limiting` policy with `count: "tokens"` (tokens per minute per
// consumer) in front of the fake OpenAI-format provider, which reports usage. Requests pass until the
// budget is spent (each answer's prompt + completion tokens are charged after it), then 429 with
// Retry-After; a STREAMED answer is charged when the stream ends; consumers do not share budgets.
// The configuration is the example of docs/ai.md and docs/rate-limiting.md ("Token budgets").
import { describe, test, before, after } from "node:test";
import assert from "node:assert/strict";
import crypto from "node:crypto";
import { startGateway, request, streamRequest, waitFor } from "./support/harness.mjs";
import { startFakeProviders } from "./support/fake-providers.mjs";
import { DO_OPTIONS } from "./ratelimit-helpers.mjs";

const sha256hex = (s) => crypto.createHash("sha256").update(s).digest("hex");
const newKey = () => "eg_" + crypto.randomBytes(24).toString("base64url");
const OAI_KEY = "sk-oai-SECRET-" + crypto.randomBytes(8).toString("hex");
const BUDGET = 25; // tokens per minute; each answer below costs 10 (2 prompt + 8 completion)

export function tokenBudgetConfig(fake) {
  return {
    format_version: 1,
    services: [{ name: "unused", url: "http://127.0.0.1:9/" }],
    routes: [
      { name: "llm", service: "unused", paths: ["/ai"] },
      { name: "llm-local", service: "unused", paths: ["/local"] },
    ],
    plugins: [
      { name: "key-auth" },
      {
        name: "ai-proxy",
        config: {
          providers: { oai: { kind: "openai", base_url: fake.baseUrls.openai, key_secret: "OAI_KEY" } },
          models: { fast: "oai/gpt-fast" },
          default_model: "fast",
        },
      },
      { name: "rate-limiting", route: "llm", config: { minute: BUDGET, count: "tokens", limit_by: "consumer" } },
      {
        name: "rate-limiting",
        route: "llm-local",
        config: { minute: BUDGET, count: "tokens", limit_by: "consumer", policy: "local" },
      },
    ],
  };
}

describe("token budgets on AI routes (count: tokens)", () => {
  let gw, fake;
  const keys = { alice: newKey(), bob: newKey(), carol: newKey(), dave: newKey(), erin: newKey() };

  before(async () => {
    fake = await startFakeProviders({ keys: { openai: OAI_KEY } });
    gw = await startGateway({ miniflare: DO_OPTIONS, bindings: { OAI_KEY } });
    const put = (k, v) => gw.kv.put(k, JSON.stringify(v));
    for (const who of Object.keys(keys)) {
      await put(`consumers/c-${who}`, { id: `c-${who}`, username: who, groups: [] });
      await put(`consumer-names/${who}`, { id: `c-${who}` });
      await put(`credentials/key-auth/${sha256hex(keys[who])}`, { id: `cred-${who}`, consumer_id: `c-${who}` });
    }
    await gw.putConfig(tokenBudgetConfig(fake));
  });

  after(async () => {
    await gw?.dispose();
    await fake?.close();
  });

  const auth = (who) => ({ authorization: `Bearer ${keys[who]}`, "content-type": "application/json" });
  const chat = (who, { stream = false, prefix = "/ai" } = {}) =>
    request(gw.at(`${prefix}/v1/chat/completions`), {
      method: "POST",
      headers: auth(who),
      body: JSON.stringify({ model: "fast", stream, messages: [{ role: "user", content: "hi there" }] }),
    });
  const readAll = async (res) => {
    let text = "";
    for await (const chunk of res) text += chunk;
    return text;
  };
  const chatStream = (who, model = "fast") =>
    streamRequest(gw.at("/ai/v1/chat/completions"), {
      method: "POST",
      headers: auth(who),
      body: JSON.stringify({ model, stream: true, messages: [{ role: "user", content: "hi there" }] }),
    });
  // GET …/models is peeked (refused when the budget is spent) but costs no tokens: a probe.
  const remaining = async (who) => {
    const r = await request(gw.at("/ai/v1/models"), { headers: auth(who) });
    return { status: r.status, remaining: Number(r.headers["x-ratelimit-remaining-tokens"]), res: r };
  };

  test("requests pass until the budget is spent, then 429 with Retry-After", async () => {
    let spent = 0;
    const seen = [];
    for (let i = 0; i < 6; i++) {
      const r = await chat("alice");
      if (spent < BUDGET) {
        assert.equal(r.status, 200, `request ${i} with ${spent} tokens spent: ${r.text}`);
        const usage = JSON.parse(r.text).usage;
        assert.equal(usage.total_tokens, 10);
        // Headers show the budget before this answer was charged.
        assert.equal(r.headers["x-ratelimit-limit-tokens"], String(BUDGET));
        assert.equal(r.headers["x-ratelimit-remaining-tokens"], String(BUDGET - spent));
        assert.match(r.headers["x-ratelimit-reset-tokens"], /^(\d+ms|\d+s|\dm\d+s)$/);
        assert.equal(r.headers["ratelimit-limit"], String(BUDGET));
        assert.equal(r.headers["x-ratelimit-limit-minute"], String(BUDGET));
        spent += usage.total_tokens;
      } else {
        assert.equal(r.status, 429, `request ${i} with ${spent} tokens spent`);
        const retry = Number(r.headers["retry-after"]);
        assert.ok(retry >= 1 && retry <= 120, `Retry-After ${r.headers["retry-after"]}`);
        assert.equal(r.headers["x-ratelimit-remaining-tokens"], "0");
        // OpenAI's error shape on AI routes.
        assert.equal(JSON.parse(r.text).error.code, "rate_limited");
      }
      seen.push(r.status);
    }
    // 10 + 10 + 10: the third answer took the budget over 25 (charged anyway); refused from then on.
    assert.deepEqual(seen, [200, 200, 200, 429, 429, 429]);
    const probe = await remaining("alice");
    assert.equal(probe.status, 429);
  });

  test("two consumers do not share budgets", async () => {
    const r = await chat("bob");
    assert.equal(r.status, 200, r.text);
    assert.equal(r.headers["x-ratelimit-remaining-tokens"], String(BUDGET));
    assert.equal((await chat("alice")).status, 429);
  });

  test("a provider's 429 on a budget route: its timing passed on, the budget's own token headers win", async () => {
    const r = await request(gw.at("/ai/v1/chat/completions"), {
      method: "POST",
      headers: auth("bob"),
      body: JSON.stringify({ model: "oai/m-fail429-ra3", messages: [{ role: "user", content: "hi there" }] }),
    });
    assert.equal(r.status, 429, r.text);
    assert.equal(JSON.parse(r.text).error.code, "rate_limit_exceeded");
    // The provider's wait and request limits...
    assert.equal(r.headers["retry-after"], "3");
    assert.equal(r.headers["retry-after-ms"], "2750");
    assert.equal(r.headers["x-ratelimit-limit-requests"], "60");
    // ...but x-ratelimit-*-tokens describe this consumer's budget at the gateway, not the provider account's.
    assert.equal(r.headers["x-ratelimit-limit-tokens"], String(BUDGET));
    assert.equal(r.headers["x-ratelimit-remaining-tokens"], String(BUDGET - 10));
    // An error costs no tokens.
    assert.equal((await remaining("bob")).remaining, BUDGET - 10);
  });

  test("the tokens of a streamed answer are charged when the stream ends", async () => {
    const s = await chatStream("carol");
    assert.equal(s.statusCode, 200);
    assert.equal(s.headers["x-ratelimit-remaining-tokens"], String(BUDGET));
    const body = await readAll(s);
    assert.match(body, /data: \[DONE\]/);
    // The charge runs in waitUntil once the stream is over: the next request sees it.
    await waitFor(async () => (await remaining("carol")).remaining === BUDGET - 10, {
      what: "the streamed answer's 10 tokens charged",
    });
    const s2 = await chatStream("carol");
    assert.equal(s2.statusCode, 200);
    await readAll(s2);
    await waitFor(async () => (await remaining("carol")).remaining === BUDGET - 20, { what: "20 tokens charged" });
    const s3 = await chatStream("carol");
    assert.equal(s3.statusCode, 200);
    await readAll(s3);
    // 30 of 25 spent: refused, streamed or not.
    await waitFor(async () => (await remaining("carol")).status === 429, { what: "budget spent by streams" });
    const refused = await chat("carol", { stream: true });
    assert.equal(refused.status, 429);
    assert.ok(Number(refused.headers["retry-after"]) >= 1);
  });

  test("a client that goes away mid-stream is charged what was counted", async () => {
    // A slow stream (one word every 150 ms): read the first event, then hang up.
    const s = await chatStream("erin", "oai/gpt-slow");
    assert.equal(s.statusCode, 200);
    await new Promise((resolve) => s.once("data", resolve));
    s.destroy();
    // No usage was reported yet: the estimate (prompt + streamed events) is charged.
    const left = await waitFor(
      async () => {
        const { remaining: r } = await remaining("erin");
        return r < BUDGET ? r : false;
      },
      { what: "the interrupted stream charged", timeoutMs: 5000 },
    );
    assert.ok(left > 0 && left < BUDGET, `remaining ${left}`);
    await waitFor(() => gw.logs.some((l) => l.json?.event === "ai_usage" && l.json.complete === false), {
      what: "the ai_usage line of the interrupted stream",
    });
  });

  test("the local policy counts tokens too (per isolate)", async () => {
    const statuses = [];
    for (let i = 0; i < 4; i++) statuses.push((await chat("dave", { prefix: "/local" })).status);
    assert.deepEqual(statuses, [200, 200, 200, 429]);
    // The durable budget of the other route is separate (another plugin instance).
    assert.equal((await chat("dave")).status, 200);
  });
});
