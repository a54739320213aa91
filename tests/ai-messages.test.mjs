// Anthropic Messages on the AI route (docs/ai.md, "Anthropic Messages"): the official Anthropic SDK, a 1.x
// and a 0.x release, as clients of the gateway, with a key-auth gateway key given as `apiKey` (x-api-key)
// or `authToken` (Authorization: Bearer), against Anthropic-, OpenAI- and Gemini-format fake providers:
// streamed and not, with tools over two turns, count_tokens, models.retrieve, typed errors, bad bodies.
import { describe, test, before, after } from "node:test";
import assert from "node:assert/strict";
import crypto from "node:crypto";
import Anthropic1 from "@anthropic-ai/sdk";
import Anthropic0 from "anthropic-sdk-0";
import { waitFor } from "./support/harness.mjs";
import { startAi, aiConfig, KEYS } from "./ai-helpers.mjs";

const sha256hex = (s) => crypto.createHash("sha256").update(s).digest("hex");
const SDKS = [
  ["1.x", Anthropic1],
  ["0.x", Anthropic0],
];
const PROVIDERS = [
  ["smart", "anthropic", "claude/claude-tools"],
  ["fast", "openai", "oai/gpt-tools"],
  ["flash", "gemini", "gem/gemini-tools"],
];
const weather = {
  name: "get_weather",
  description: "The weather of a city",
  input_schema: { type: "object", properties: { city: { type: "string" } }, required: ["city"] },
};

describe("Anthropic SDKs against the gateway (Messages)", () => {
  let fake, gw;
  const gatewayKey = "eg_" + crypto.randomBytes(32).toString("base64url");

  before(async () => {
    ({ fake, gw } = await startAi({
      config: (f) => {
        const c = aiConfig(f);
        c.plugins.unshift({ name: "key-auth", route: "llm", config: {} });
        return c;
      },
    }));
    const put = (k, v) => gw.kv.put(k, JSON.stringify(v));
    await put("consumers/c-app", { id: "c-app", username: "app", groups: [] });
    await put("consumer-names/app", { id: "c-app" });
    await put(`credentials/key-auth/${sha256hex(gatewayKey)}`, { id: sha256hex(gatewayKey).slice(0, 16), consumer_id: "c-app" });
  });
  after(async () => {
    await gw?.dispose();
    await fake?.close();
  });

  for (const [version, Anthropic] of SDKS) {
    for (const auth of ["apiKey", "authToken"]) {
      const client = () => new Anthropic({ baseURL: gw.at("/ai"), [auth]: gatewayKey, maxRetries: 0, timeout: 20_000 });

      for (const [alias, provider] of PROVIDERS) {
        test(`SDK ${version} (${auth}): messages.create, ${alias} (${provider} format)`, async () => {
          const { data, response } = await client()
            .messages.create({
              model: alias,
              max_tokens: 50,
              system: "Be brief.",
              messages: [{ role: "user", content: "What is edgegate?" }],
            })
            .withResponse();
          assert.equal(data.type, "message");
          assert.equal(data.role, "assistant");
          assert.equal(data.content[0].type, "text");
          assert.match(data.content[0].text, new RegExp(`^Hello from ${provider} .*: you said "What is edgegate\\?"$`));
          assert.equal(data.stop_reason, "end_turn");
          assert.ok(data.usage.input_tokens > 0 && data.usage.output_tokens > 0, JSON.stringify(data.usage));
          assert.equal(response.headers.get("x-edgegate-ai-provider"), { anthropic: "claude", openai: "oai", gemini: "gem" }[provider]);
          // The provider got the gateway's provider key, never the client's.
          const up = fake.of(provider).at(-1);
          assert.ok(!JSON.stringify(up.headers).includes(gatewayKey));
          const rid = response.headers.get("x-request-id");
          const line = await waitFor(() => gw.logs.find((l) => l.json?.event === "request" && l.json.request_id === rid));
          assert.equal(line.json.consumer, "app");
          assert.equal(line.json.ai.endpoint, "messages");
          assert.ok(line.json.ai.total_tokens > 0);
        });

        test(`SDK ${version} (${auth}): messages.stream, ${alias} (${provider} format)`, async () => {
          const stream = client().messages.stream({
            model: alias,
            max_tokens: 50,
            messages: [{ role: "user", content: "Stream please" }],
          });
          const types = [];
          let text = "";
          stream.on("streamEvent", (e) => types.push(e.type));
          stream.on("text", (t) => (text += t));
          const final = await stream.finalMessage();
          assert.match(text, new RegExp(`^Hello from ${provider} .*: you said "Stream please"$`));
          assert.equal(final.content[0].text, text);
          assert.equal(final.stop_reason, "end_turn");
          assert.ok(final.usage.output_tokens > 0, JSON.stringify(final.usage));
          assert.equal(types[0], "message_start");
          assert.equal(types.at(-1), "message_stop");
          assert.ok(types.filter((t) => t === "content_block_delta").length > 5, types.join());
        });
      }
    }

    for (const [, provider, model] of PROVIDERS) {
      for (const stream of [false, true]) {
        test(`SDK ${version}: tools over two turns, ${provider} format, ${stream ? "streamed" : "not streamed"}`, async () => {
          const c = new Anthropic({ baseURL: gw.at("/ai"), apiKey: gatewayKey, maxRetries: 0 });
          const messages = [{ role: "user", content: "Weather in Paris?" }];
          const ask = (msgs) =>
            stream
              ? c.messages.stream({ model, max_tokens: 100, tools: [weather], messages: msgs }).finalMessage()
              : c.messages.create({ model, max_tokens: 100, tools: [weather], messages: msgs });
          const first = await ask(messages);
          assert.equal(first.stop_reason, "tool_use");
          const use = first.content.find((b) => b.type === "tool_use");
          assert.ok(use, JSON.stringify(first.content));
          assert.equal(use.name, "get_weather");
          assert.deepEqual(use.input, { city: "Paris" });
          assert.ok(use.id.length > 5);
          messages.push({ role: "assistant", content: first.content });
          messages.push({ role: "user", content: [{ type: "tool_result", tool_use_id: use.id, content: "21 degrees" }] });
          const second = await ask(messages);
          assert.equal(second.stop_reason, "end_turn");
          assert.equal(second.content.find((b) => b.type === "text")?.text, "called: get_weather");
        });
      }
    }

    test(`SDK ${version}: count_tokens exact from Anthropic and Gemini, estimated otherwise`, async () => {
      const c = new Anthropic({ baseURL: gw.at("/ai"), apiKey: gatewayKey, maxRetries: 0 });
      const params = (model) => ({ model, system: "Be brief.", messages: [{ role: "user", content: "one two three" }] });
      const exact = await c.messages.countTokens(params("smart")).withResponse();
      assert.equal(exact.response.headers.get("x-edgegate-token-count"), "exact");
      // The fake counts words (+3): one two three + Be brief.
      assert.equal(exact.data.input_tokens, 8);
      const sent = fake.of("anthropic").at(-1);
      assert.match(sent.url, /\/v1\/messages\/count_tokens$/);
      assert.equal(sent.json.model, "claude-test");
      const gem = await c.messages.countTokens(params("flash")).withResponse();
      assert.equal(gem.response.headers.get("x-edgegate-token-count"), "exact");
      assert.equal(gem.data.input_tokens, 7);
      assert.match(fake.of("gemini").at(-1).url, /:countTokens$/);
      const estimate = await c.messages.countTokens(params("fast")).withResponse();
      assert.equal(estimate.response.headers.get("x-edgegate-token-count"), "estimate");
      assert.ok(estimate.data.input_tokens > 0 && estimate.data.input_tokens < 40, JSON.stringify(estimate.data));
    });

    test(`SDK ${version}: models.retrieve`, async () => {
      const c = new Anthropic({ baseURL: gw.at("/ai"), apiKey: gatewayKey, maxRetries: 0 });
      const m = await c.models.retrieve("smart");
      assert.equal(m.id, "smart");
      assert.equal(m.type, "model");
      assert.match(m.created_at, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/);
      const p = await c.models.retrieve("claude/claude-test");
      assert.equal(p.id, "claude/claude-test");
      await assert.rejects(c.models.retrieve("nope"), (e) => e instanceof Anthropic.NotFoundError);
    });

    test(`SDK ${version}: errors are Anthropic's typed errors`, async () => {
      const c = new Anthropic({ baseURL: gw.at("/ai"), apiKey: gatewayKey, maxRetries: 0 });
      const msg = { max_tokens: 10, messages: [{ role: "user", content: "x" }] };
      await assert.rejects(c.messages.create({ model: "no-such-model", ...msg }), (e) => {
        assert.ok(e instanceof Anthropic.NotFoundError, String(e));
        assert.equal(e.error.type, "error");
        assert.equal(e.error.error.type, "not_found_error");
        return true;
      });
      await assert.rejects(
        c.messages.create({ model: "claude/m-fail429", ...msg }),
        (e) => e instanceof Anthropic.RateLimitError && e.status === 429,
      );
      await assert.rejects(c.messages.stream({ model: "oai/m-fail429", ...msg }).finalMessage(), (e) => e instanceof Anthropic.RateLimitError);
      const stranger = new Anthropic({ baseURL: gw.at("/ai"), apiKey: "eg_wrong", maxRetries: 0 });
      await assert.rejects(stranger.messages.create({ model: "fast", ...msg }), (e) => {
        assert.ok(e instanceof Anthropic.AuthenticationError, String(e));
        assert.equal(e.error.error.type, "authentication_error");
        return true;
      });
      // A server tool cannot go to an OpenAI-format provider: a 400 naming it.
      await assert.rejects(
        c.messages.create({ model: "fast", ...msg, tools: [{ type: "web_search_20250305", name: "web_search" }] }),
        (e) => e instanceof Anthropic.BadRequestError && /tools\.0/.test(e.message),
      );
    });

    test(`SDK ${version}: a stream cut by the provider ends with an error the SDK raises`, async () => {
      const c = new Anthropic({ baseURL: gw.at("/ai"), apiKey: gatewayKey, maxRetries: 0 });
      // `slow`: the first events reach the gateway (and the client) before the provider hangs up.
      for (const model of ["claude/m-slow-cut", "oai/m-slow-cut", "gem/m-slow-cut"]) {
        const s = c.messages.stream({ model, max_tokens: 10, messages: [{ role: "user", content: "x" }] });
        await assert.rejects(s.finalMessage(), (e) => /stream ended before/.test(String(e.message ?? e)), model);
      }
    });
  }

  test("pass-through to Anthropic keeps cache_control, thinking and betas; fallback to another format", async () => {
    const body = {
      model: "smart",
      max_tokens: 64,
      system: [{ type: "text", text: "Sys", cache_control: { type: "ephemeral" } }],
      thinking: { type: "enabled", budget_tokens: 1024 },
      messages: [
        { role: "user", content: [{ type: "text", text: "hello", cache_control: { type: "ephemeral" } }] },
        { role: "assistant", content: [{ type: "thinking", thinking: "hmm", signature: "sig" }, { type: "text", text: "Hi" }] },
        { role: "user", content: "again" },
      ],
    };
    const r = await fetch(gw.at("/ai/v1/messages"), {
      method: "POST",
      headers: { "content-type": "application/json", "x-api-key": gatewayKey, "anthropic-version": "2026-10-21", "anthropic-beta": "interleaved-thinking-2025-05-14" },
      body: JSON.stringify(body),
    });
    assert.equal(r.status, 200);
    const sent = fake.of("anthropic").at(-1);
    assert.deepEqual(sent.json, { ...body, model: "claude-test" });
    assert.equal(sent.headers["anthropic-version"], "2026-10-21");
    assert.equal(sent.headers["anthropic-beta"], "interleaved-thinking-2025-05-14");
    assert.equal(sent.headers["x-api-key"], KEYS.anthropic);
    // fb-429: Anthropic answers 429, Gemini answers in Anthropic's format.
    const fb = await fetch(gw.at("/ai/v1/messages"), {
      method: "POST",
      headers: { "content-type": "application/json", authorization: `Bearer ${gatewayKey}` },
      body: JSON.stringify({ ...body, model: "fb-429", stream: true }),
    });
    assert.equal(fb.status, 200);
    assert.equal(fb.headers.get("x-edgegate-ai-attempts"), "2");
    const text = await fb.text();
    assert.match(text, /^event: message_start\n/);
    assert.match(text, /"text":"gemini "/);
    assert.match(text, /event: message_stop\ndata: \{"type":"message_stop"\}\n\n$/);
  });

  test("malformed bodies and bad versions: 400 in Anthropic's error shape", async () => {
    const post = (body, headers = {}) =>
      fetch(gw.at("/ai/v1/messages"), {
        method: "POST",
        headers: { "content-type": "application/json", "x-api-key": gatewayKey, ...headers },
        body: typeof body === "string" ? body : JSON.stringify(body),
      });
    for (const [body, path] of [
      ["{not json", ""],
      [{ model: "smart", messages: [] }, "max_tokens"],
      [{ model: "smart", max_tokens: 5, messages: [{ role: "user", content: [{ type: "image", source: { type: "base64" } }] }] }, "messages.0.content.0.source.media_type"],
      [{ model: "smart", max_tokens: 5, messages: [{ role: "robot", content: "x" }] }, "messages.0.role"],
    ]) {
      const r = await post(body);
      assert.equal(r.status, 400);
      const j = await r.json();
      assert.equal(j.type, "error");
      assert.equal(j.error.type, "invalid_request_error");
      assert.ok(j.error.message.startsWith(path), j.error.message);
    }
    const v = await post({ model: "smart", max_tokens: 5, messages: [] }, { "anthropic-version": "2020-01-01" });
    assert.equal(v.status, 400);
    assert.match((await v.json()).error.message, /2023-06-01/);
    // No key: key-auth's 401, in Anthropic's shape; a wrong method: 405.
    const anon = await fetch(gw.at("/ai/v1/messages"), { method: "POST", body: "{}" });
    assert.equal(anon.status, 401);
    assert.equal((await anon.json()).error.type, "authentication_error");
    const get = await fetch(gw.at("/ai/v1/messages"), { headers: { "x-api-key": gatewayKey } });
    assert.equal(get.status, 405);
    assert.equal((await get.json()).type, "error");
    // An Anthropic endpoint the gateway does not have: 404 in Anthropic's shape.
    const batches = await fetch(gw.at("/ai/v1/messages/batches"), { method: "POST", headers: { "x-api-key": gatewayKey }, body: "{}" });
    assert.equal(batches.status, 404);
    assert.equal((await batches.json()).error.type, "not_found_error");
  });

  test("no provider key reached the client or the logs", () => {
    const logs = gw.logs.map((l) => l.message).join("\n");
    for (const k of Object.values(KEYS)) assert.ok(!logs.includes(k));
    assert.ok(!logs.includes(gatewayKey));
  });
});

describe("Messages: the gateway's rate limit answers in Anthropic's shape", () => {
  let fake, gw;
  before(async () => {
    ({ fake, gw } = await startAi({
      config: (f) => {
        const c = aiConfig(f);
        c.plugins.push({ name: "rate-limiting", route: "llm", config: { minute: 1, limit_by: "ip", policy: "local" } });
        return c;
      },
    }));
  });
  after(async () => {
    await gw?.dispose();
    await fake?.close();
  });

  test("the second request in the minute: 429 rate_limit_error with retry-after, raised by the SDK", async () => {
    const c = new Anthropic1({ baseURL: gw.at("/ai"), apiKey: "unused-no-key-auth", maxRetries: 0 });
    const msg = { model: "fast", max_tokens: 10, messages: [{ role: "user", content: "x" }] };
    await c.messages.create(msg);
    const r = await fetch(gw.at("/ai/v1/messages"), { method: "POST", body: JSON.stringify(msg) });
    assert.equal(r.status, 429);
    assert.ok(Number(r.headers.get("retry-after")) > 0);
    assert.deepEqual(Object.keys(await r.json()).sort(), ["error", "request_id", "type"]);
    await assert.rejects(c.messages.create(msg), (e) => e instanceof Anthropic1.RateLimitError && e.error.error.type === "rate_limit_error");
  });
});
