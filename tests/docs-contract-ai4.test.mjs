// docs/ai.md as the official SDKs use it (fourth audit): the `openai` SDK (5.x) and the Anthropic SDKs
// (`@anthropic-ai/sdk` 1.x, `anthropic-sdk-0` 0.x) themselves, pointed at the gateway, doing what their users
// do and reading what their code reads:
// - the error objects (`status`, `error`, `code`, `type`, `requestID`) and the ids of answers
//   (`_request_id`, `withResponse().request_id`) on every endpoint, the Anthropic SDK's model calls included;
// - the SDKs' own retries: which gateway answers they retry (a provider's 529 or 5xx, a 504) and which they
//   do not (`x-should-retry: false`), a token budget's 429 as they see it;
// - timeouts and streams the client aborts (the provider let go, the budget charged what was streamed);
// - the helpers: `chat.completions.runTools` (streamed or not), `messages.stream()`'s `on('text')` /
//   `finalMessage()`, the Anthropic 1.x tool runner, whose message threads the gateway refuses on targets
//   that cannot keep them (the SDK then sends the whole conversation), `beta.messages` (`?beta=true`),
//   `countTokens`, `asResponse()` content types.
// Everything runs twice: CONFIG_RELOAD_SECONDS 0 (asynchronous reload) and 600 (the synchronous path).
// Besides the fake providers, a scripted provider on 127.0.0.1 (`up`: OpenAI format, `ant`: Anthropic
// format) answers by the model name.
import { describe, test, before, after } from "node:test";
import assert from "node:assert/strict";
import crypto from "node:crypto";
import { startGateway, startOrigin, request, waitFor, sleep } from "./support/harness.mjs";
import { startFakeProviders } from "./support/fake-providers.mjs";
import { aiConfig, KEYS } from "./ai-helpers.mjs";
import { DO_OPTIONS } from "./ratelimit-helpers.mjs";
import OpenAI from "openai";
import Anthropic from "@anthropic-ai/sdk";
import Anthropic0 from "anthropic-sdk-0";
import { betaTool } from "@anthropic-ai/sdk/helpers/beta/json-schema";

const hi = (model, extra = {}) => ({ model, messages: [{ role: "user", content: "hi there" }], ...extra });
const newId = (what) => `${what}-${crypto.randomBytes(6).toString("hex")}`;
// Some 30 words: a stream of about 35 events, one every SLOW ms from the `slow` fakes.
const SLOW = 100;
const LONG = Array.from({ length: 28 }, (_, i) => `word${i}`).join(" ");
const WEATHER = {
  name: "get_weather",
  description: "The weather in a city",
  parameters: { type: "object", properties: { city: { type: "string" } }, required: ["city"] },
};

/** The scripted provider: OpenAI format under /v1, Anthropic format under /v1/messages, by model name. */
function scripted() {
  const seen = new Map();
  return async (req, res, rec) => {
    const j = JSON.parse(rec.body.toString() || "{}");
    const m = String(j.model ?? "");
    rec.model = m;
    res.on("close", () => {
      if (!res.writableFinished) rec.abandonedAt = Date.now();
    });
    const json = (status, v, h = {}) => {
      res.writeHead(status, { "content-type": "application/json", ...h });
      res.end(JSON.stringify(v));
    };
    const n = (seen.get(m) ?? 0) + 1;
    seen.set(m, n);
    if (m.includes("flaky529") && n === 1) {
      return json(529, { type: "error", error: { type: "overloaded_error", message: "Overloaded" } });
    }
    if (m.includes("e503")) return json(503, { error: { message: "down for a while", type: "server_error", param: null, code: null } });
    if (m.includes("e400")) {
      return json(400, { error: { message: "temperature too high", type: "invalid_request_error", param: "temperature", code: "invalid_value" } });
    }
    if (m.includes("slowjson")) await sleep(2500);
    if (req.url.endsWith("/v1/messages")) {
      return json(200, {
        id: "msg_up",
        type: "message",
        role: "assistant",
        model: m,
        content: [{ type: "text", text: "ok" }],
        stop_reason: "end_turn",
        stop_sequence: null,
        usage: { input_tokens: 3, output_tokens: 1 },
      });
    }
    return json(200, {
      id: "chatcmpl-up",
      object: "chat.completion",
      created: 1,
      model: m,
      choices: [{ index: 0, message: { role: "assistant", content: "ok" }, finish_reason: "stop" }],
      usage: { prompt_tokens: 1, completion_tokens: 1, total_tokens: 2 },
    });
  };
}

for (const reload of ["0", "600"]) {
  describe(`docs/ai.md through the official SDKs (CONFIG_RELOAD_SECONDS ${reload})`, { timeout: 240_000 }, () => {
    let fake, gw, up;
    const oai = (opts = {}) => new OpenAI({ baseURL: gw.at("/ai/v1"), apiKey: "k", maxRetries: 0, ...opts });
    const ant = (opts = {}) => new Anthropic({ baseURL: gw.at("/ai"), apiKey: "k", maxRetries: 0, ...opts });
    const ant0 = (opts = {}) => new Anthropic0({ baseURL: gw.at("/ai"), apiKey: "k", maxRetries: 0, ...opts });
    const upOf = (model) => up.requests.filter((r) => r.model === model);
    const usageLine = (id) => gw.logs.find((l) => l.json?.event === "ai_usage" && l.json.request_id === id)?.json;
    // GET …/models costs no tokens: what is left of a route's token budget.
    const remaining = async (prefix) => Number((await request(gw.at(`${prefix}/v1/models`))).headers["x-ratelimit-remaining-tokens"]);

    before(async () => {
      up = await startOrigin(scripted());
      fake = await startFakeProviders({ keys: KEYS, slowDelayMs: SLOW });
      const c = aiConfig(fake);
      const proxy = c.plugins.find((p) => p.name === "ai-proxy");
      proxy.config.providers.up = { kind: "openai", base_url: `${up.url}/v1`, key_secret: "OAI_KEY" };
      proxy.config.providers.ant = { kind: "anthropic", base_url: up.url, key_secret: "ANTHROPIC_KEY" };
      // /budget: 5 tokens a minute for the route (the first answer spends it); /meter: a budget nobody reaches,
      // to read what a request was charged.
      for (const [name, minute] of [
        ["budget", 5],
        ["meter", 1_000_000_000],
      ]) {
        c.routes.push({ name, service: "unused", paths: [`/${name}`] });
        c.plugins.push({ ...proxy, route: name, config: { ...proxy.config, fallback: { first_byte_timeout_ms: 10_000 } } });
        c.plugins.push({ name: "rate-limiting", route: name, config: { minute, count: "tokens", limit_by: "route" } });
      }
      gw = await startGateway({
        reload,
        config: c,
        miniflare: DO_OPTIONS,
        bindings: { OAI_KEY: KEYS.openai, ANTHROPIC_KEY: KEYS.anthropic, GEMINI_KEY: KEYS.gemini, WRONG_KEY: "sk-wrong-SECRET-0" },
      });
      // Loads the version: with 600, every later request is served on the synchronous path.
      assert.equal((await request(gw.at("/ai/v1/models"))).status, 200);
    });
    after(async () => {
      await gw?.dispose();
      await fake?.close();
      await up?.close();
    });

    // --- Ids, headers and content types as the SDKs read them ------------------------------------------

    test("withResponse(): OpenAI's request_id is x-request-id; the Anthropic SDKs' _request_id is request-id on messages, countTokens and models", async () => {
      const { data, response, request_id } = await oai().chat.completions.create(hi("fast")).withResponse();
      assert.equal(request_id, response.headers.get("x-request-id"));
      assert.ok(request_id);
      assert.equal(data._request_id, request_id);
      assert.equal(response.headers.get("x-edgegate-ai-provider"), "oai");
      assert.equal(response.headers.get("x-edgegate-ai-model"), "gpt-fast");
      assert.equal(response.headers.get("x-edgegate-ai-attempts"), "1");
      // docs/proxying.md: the AI gateway's answers carry Date (RFC 9110 section 6.6.1).
      assert.ok(Math.abs(Date.parse(response.headers.get("date")) - Date.now()) < 60_000, `Date: ${response.headers.get("date")}`);
      const page = await oai().models.list();
      assert.ok(page.data.some((m) => m.id === "fast"));

      for (const client of [ant(), ant0()]) {
        const m = await client.messages.create({ ...hi("flash"), max_tokens: 20 }).withResponse();
        assert.ok(m.request_id, "request-id on messages");
        assert.equal(m.request_id, m.response.headers.get("x-request-id"));
        assert.equal(m.data._request_id, m.request_id);
        assert.equal(m.data.id, `msg_${m.request_id}`, "a translated message's id is msg_<request id>");
        const c = await client.messages.countTokens(hi("smart")).withResponse();
        assert.ok(c.data.input_tokens > 0);
        assert.equal(c.response.headers.get("x-edgegate-token-count"), "exact");
        assert.equal(c.data._request_id, c.response.headers.get("x-request-id"));
        // models.retrieve / models.list send anthropic-version: Anthropic's objects, and request-id.
        const model = await client.models.retrieve("fast");
        assert.equal(model.type, "model");
        assert.equal(model.id, "fast");
        assert.ok(model._request_id, "request-id on models.retrieve");
        const list = await client.models.list().withResponse();
        assert.ok(list.request_id, "request-id on models.list");
        assert.ok(list.data.data.some((x) => x.id === "smart"));
      }
    });

    test("asResponse(): application/json for whole answers, text/event-stream; charset=utf-8 for streams", async () => {
      const cases = [
        [await oai().chat.completions.create(hi("smart")).asResponse(), "application/json"],
        [await oai().chat.completions.create(hi("smart", { stream: true })).asResponse(), "text/event-stream; charset=utf-8"],
        [await oai().responses.create({ model: "flash", input: "hi" }).asResponse(), "application/json"],
        [await oai().responses.create({ model: "flash", input: "hi", stream: true }).asResponse(), "text/event-stream; charset=utf-8"],
        [await ant().messages.create({ ...hi("fast"), max_tokens: 9 }).asResponse(), "application/json"],
        [await ant().messages.create({ ...hi("fast"), max_tokens: 9, stream: true }).asResponse(), "text/event-stream; charset=utf-8"],
        [await ant().models.retrieve("fast").asResponse(), "application/json"],
      ];
      for (const [res, type] of cases) {
        assert.equal(res.status, 200);
        assert.match(res.headers.get("content-type"), new RegExp(`^${type.replace(/[/;]/g, "\\$&")}`));
        if (type.startsWith("text/event-stream")) assert.equal(res.headers.get("content-type"), type);
        await res.text();
      }
    });

    // --- Error objects ----------------------------------------------------------------------------------

    test("the Anthropic SDKs' models.retrieve of an unknown model: NotFoundError in Anthropic's shape with its request id", async () => {
      for (const client of [ant(), ant0()]) {
        await assert.rejects(client.models.retrieve("no-such"), (err) => {
          assert.ok(err instanceof Anthropic.NotFoundError || err instanceof Anthropic0.NotFoundError, String(err));
          assert.equal(err.status, 404);
          assert.equal(err.error.type, "error");
          assert.equal(err.error.error.type, "not_found_error");
          assert.ok(err.requestID, "request-id");
          assert.equal(err.error.request_id, err.requestID);
          return true;
        });
      }
      // Without anthropic-version (the OpenAI SDK): OpenAI's shape.
      await assert.rejects(oai().models.retrieve("no-such"), (err) => {
        assert.ok(err instanceof OpenAI.NotFoundError);
        assert.equal(err.code, "model_not_found");
        assert.equal(err.type, "invalid_request_error");
        assert.equal(err.param, "model");
        assert.ok(err.requestID);
        return true;
      });
    });

    test("APIError fields: OpenAI's code, type, param and requestID; Anthropic's type, error body and requestID", async () => {
      await assert.rejects(oai().chat.completions.create(hi("up/e400")), (err) => {
        assert.ok(err instanceof OpenAI.BadRequestError);
        assert.equal(err.status, 400);
        assert.deepEqual(
          { code: err.code, type: err.type, param: err.param },
          { code: "invalid_value", type: "invalid_request_error", param: "temperature" },
        );
        assert.equal(err.error.message, "temperature too high");
        assert.equal(err.requestID, err.headers.get("x-request-id"));
        assert.ok(err.requestID);
        return true;
      });
      for (const client of [ant(), ant0()]) {
        await assert.rejects(client.messages.create({ ...hi("up/e400"), max_tokens: 5 }), (err) => {
          assert.equal(err.status, 400);
          assert.equal(err.error.error.type, "invalid_request_error");
          assert.equal(err.error.error.message, "temperature too high");
          assert.ok(err.requestID);
          assert.equal(err.error.request_id, err.requestID);
          return true;
        });
      }
      // 1.x reads `type` off the body too.
      await assert.rejects(ant().messages.create({ ...hi("no-such"), max_tokens: 5 }), (err) => {
        assert.ok(err instanceof Anthropic.NotFoundError);
        assert.equal(err.type, "not_found_error");
        return true;
      });
    });

    test("max_tokens missing (the SDKs' types require it, JavaScript callers can leave it out): BadRequestError naming it, nothing sent", async () => {
      const before = fake.requests.length;
      for (const client of [ant(), ant0()]) {
        await assert.rejects(client.messages.create(hi("smart")), (err) => {
          assert.equal(err.status, 400);
          assert.equal(err.error.error.type, "invalid_request_error");
          assert.match(err.error.error.message, /^max_tokens: /);
          return true;
        });
        await assert.rejects(client.messages.stream(hi("smart")).finalMessage(), (err) => {
          assert.equal(err.status, 400);
          assert.match(err.error.error.message, /^max_tokens: /);
          return true;
        });
      }
      assert.equal(fake.requests.length, before, "no provider was asked");
    });

    // --- The SDKs' retries --------------------------------------------------------------------------------

    test("an Anthropic-format provider's 529: the Anthropic SDKs retry it (OverloadedError when retries run out, the answer when the provider recovers)", async () => {
      const model = `ant/flaky529-${reload}`;
      const m = await ant({ maxRetries: 2 }).messages.create({ ...hi(model), max_tokens: 5 });
      assert.equal(m.content[0].text, "ok");
      assert.equal(upOf(model.slice(4)).length, 2, "one retry by the SDK");
      const model0 = `ant/flaky529-0-${reload}`;
      const m0 = await ant0({ maxRetries: 2 }).messages.create({ ...hi(model0), max_tokens: 5 });
      assert.equal(m0.content[0].text, "ok");
      // Always overloaded (the fake's fail500 is a 529): raised after maxRetries + 1 attempts.
      const attempts = () => fake.of("anthropic").filter((r) => r.json?.model === "m-fail500").length;
      const before = attempts();
      await assert.rejects(ant({ maxRetries: 1 }).messages.create({ ...hi("claude/m-fail500"), max_tokens: 5 }), (err) => {
        assert.ok(err instanceof Anthropic.OverloadedError, String(err));
        assert.equal(err.status, 529);
        assert.equal(err.type, "overloaded_error");
        return true;
      });
      assert.equal(attempts(), before + 2);
    });

    test("the gateway's 504 (no first byte in time) and a provider's 5xx are retried by the SDKs; x-should-retry: false is not", async () => {
      const stalls = () => fake.of("anthropic").filter((r) => r.json?.model === "m-stall").length;
      let before = stalls();
      await assert.rejects(oai({ maxRetries: 1 }).chat.completions.create(hi("claude/m-stall")), (err) => {
        assert.ok(err instanceof OpenAI.InternalServerError);
        assert.equal(err.status, 504);
        assert.equal(err.code, "upstream_timeout");
        return true;
      });
      assert.equal(stalls(), before + 2, "the OpenAI SDK retried the 504");
      before = stalls();
      await assert.rejects(ant({ maxRetries: 1 }).messages.create({ ...hi("claude/m-stall"), max_tokens: 5 }), (err) => {
        assert.ok(err instanceof Anthropic.GatewayTimeoutError, String(err));
        assert.equal(err.type, "timeout_error");
        return true;
      });
      assert.equal(stalls(), before + 2, "the Anthropic SDK retried the 504");
      const e503 = upOf("e503").length;
      await assert.rejects(ant({ maxRetries: 1 }).messages.create({ ...hi("up/e503"), max_tokens: 5 }), Anthropic.InternalServerError);
      assert.equal(upOf("e503").length, e503 + 2);
      // A provider refusing the gateway's key: 502 upstream_auth_failed with x-should-retry: false, asked once.
      const wrong = () => fake.of("openai").filter((r) => r.json?.model === "gpt-wrong").length;
      before = wrong();
      await assert.rejects(oai({ maxRetries: 2 }).chat.completions.create(hi("wrongkey/gpt-wrong")), (err) => {
        assert.equal(err.status, 502);
        assert.equal(err.code, "upstream_auth_failed");
        assert.equal(err.headers.get("x-should-retry"), "false");
        return true;
      });
      await assert.rejects(ant({ maxRetries: 2 }).messages.create({ ...hi("wrongkey/gpt-wrong"), max_tokens: 5 }), Anthropic.InternalServerError);
      assert.equal(wrong(), before + 2, "one request per SDK call: no retry");
    });

    test("a token budget's 429 as the SDKs raise it: RateLimitError, rate_limit_error, code rate_limited, retry-after in whole seconds", async () => {
      // The first answer spends the 5 tokens; then the route's budget refuses.
      const first = new OpenAI({ baseURL: gw.at("/budget/v1"), apiKey: "k", maxRetries: 0 });
      await first.chat.completions.create(hi("fast"));
      await waitFor(async () => (await request(gw.at("/budget/v1/models"))).status === 429, { what: "budget spent" });
      await assert.rejects(first.chat.completions.create(hi("fast")), (err) => {
        assert.ok(err instanceof OpenAI.RateLimitError);
        assert.equal(err.type, "rate_limit_error");
        assert.equal(err.code, "rate_limited");
        // Whole seconds until a token is free again: over a minute when the last answer took the window
        // over its limit (docs/ai.md: the OpenAI SDKs then back off on their own).
        const after = Number(err.headers.get("retry-after"));
        assert.ok(Number.isInteger(after) && after >= 1, `retry-after ${after}`);
        assert.equal(err.headers.get("x-should-retry"), null);
        assert.equal(err.headers.get("x-ratelimit-remaining-tokens"), "0");
        return true;
      });
      for (const Client of [Anthropic, Anthropic0]) {
        const client = new Client({ baseURL: gw.at("/budget"), apiKey: "k", maxRetries: 0 });
        await assert.rejects(client.messages.create({ ...hi("fast"), max_tokens: 5 }), (err) => {
          assert.ok(err instanceof Client.RateLimitError, String(err));
          assert.equal(err.error.error.type, "rate_limit_error");
          assert.ok(Number(err.headers.get("retry-after")) >= 1);
          assert.ok(err.requestID);
          return true;
        });
      }
    });

    // --- Timeouts and aborted streams ---------------------------------------------------------------------

    test("the SDK's timeout on a whole answer: APIConnectionTimeoutError; the provider's answer is awaited and charged in full", async () => {
      const model = `slowjson-${reload}`;
      const before = await remaining("/meter");
      const id = newId("timeout");
      // The provider answers after 2.5 s (the route's first_byte_timeout_ms is 10 s); the client gives up at 0.5 s.
      const client = new OpenAI({ baseURL: gw.at("/meter/v1"), apiKey: "k", maxRetries: 0, timeout: 500 });
      await assert.rejects(client.chat.completions.create(hi(`up/${model}`), { headers: { "x-request-id": id } }), OpenAI.APIConnectionTimeoutError);
      const line = await waitFor(() => gw.logs.find((l) => l.json?.event === "request" && l.json.request_id === id)?.json, {
        what: "the access log line",
        timeoutMs: 8000,
      });
      assert.equal(line.status, 200);
      assert.equal(line.ai.total_tokens, 2);
      assert.equal(upOf(model).length, 1);
      assert.equal(upOf(model)[0].abandonedAt, undefined, "the provider's answer was read to its end");
      await waitFor(async () => (await remaining("/meter")) === before - 2, { what: "the answer's 2 tokens charged", timeoutMs: 5000 });
    });

    test("a chat stream the OpenAI SDK leaves (break): the provider's stream let go, one ai_usage line complete: false, the budget charged what was streamed", async () => {
      const before = await remaining("/meter");
      const id = newId("oai-break");
      const client = new OpenAI({ baseURL: gw.at("/meter/v1"), apiKey: "k", maxRetries: 0 });
      const stream = await client.chat.completions.create(
        { model: "oai/gpt-slow", stream: true, messages: [{ role: "user", content: LONG }] },
        { headers: { "x-request-id": id } },
      );
      let n = 0;
      for await (const c of stream) {
        if (c.choices[0]?.delta?.content && ++n === 3) break;
      }
      const up = fake.requests.find((r) => r.headers["x-request-id"] === id);
      assert.ok(up, "the provider got the request");
      await waitFor(() => up.abandonedAt, { what: "the provider's stream let go", timeoutMs: 5000 });
      const line = await waitFor(() => usageLine(id), { what: "ai_usage", timeoutMs: 5000 });
      assert.equal(line.complete, false);
      assert.ok(line.charged_tokens > 0, JSON.stringify(line));
      // Far less than the whole answer (some 35 events) was streamed: the provider did not keep going.
      assert.ok(up.abandonedAt - up.at < 20 * SLOW, `${up.abandonedAt - up.at} ms`);
      await waitFor(async () => (await remaining("/meter")) === before - line.charged_tokens, {
        what: `${line.charged_tokens} tokens charged`,
        timeoutMs: 5000,
      });
      await sleep(3 * SLOW);
      assert.equal(gw.logs.filter((l) => l.json?.event === "ai_usage" && l.json.request_id === id).length, 1, "accounted once");
    });

    test("a Messages stream the Anthropic SDK aborts (stream.abort()): the provider let go, complete: false, charged at least the prompt", async () => {
      for (const [Client, model] of [
        [Anthropic, "claude/claude-slow"],
        [Anthropic0, "gem/gemini-slow"],
      ]) {
        const before = await remaining("/meter");
        const id = newId("ant-abort");
        const client = new Client({ baseURL: gw.at("/meter"), apiKey: "k", maxRetries: 0 });
        const stream = client.messages.stream(
          { model, max_tokens: 200, messages: [{ role: "user", content: LONG }] },
          { headers: { "x-request-id": id } },
        );
        let texts = 0;
        stream.on("text", () => {
          if (++texts === 2) stream.abort();
        });
        await assert.rejects(stream.finalMessage(), (err) => err instanceof Client.APIUserAbortError);
        const up = await waitFor(() => fake.requests.find((r) => r.headers["x-request-id"] === id), { what: "upstream" });
        await waitFor(() => up.abandonedAt, { what: `${model}: the provider's stream let go`, timeoutMs: 5000 });
        const line = await waitFor(() => usageLine(id), { what: "ai_usage", timeoutMs: 5000 });
        assert.equal(line.complete, false);
        // Both providers report the prompt at the start; at least that is charged.
        assert.ok(line.charged_tokens >= 28, JSON.stringify(line));
        await waitFor(async () => (await remaining("/meter")) === before - line.charged_tokens, { what: "charged", timeoutMs: 5000 });
      }
    });

    // --- Helpers ---------------------------------------------------------------------------------------------

    for (const [model, format] of [
      ["oai/gpt-tools", "OpenAI"],
      ["claude/claude-tools", "Anthropic"],
      ["gem/gemini-tools", "Gemini"],
    ]) {
      test(`chat.completions.runTools, streamed and not (${format} format): the SDK runs the call and sends the result back`, async () => {
        for (const stream of [false, true]) {
          const calls = [];
          const runner = oai().chat.completions.runTools({
            model,
            stream,
            messages: [{ role: "user", content: "What is the weather in Paris?" }],
            tools: [
              {
                type: "function",
                function: {
                  ...WEATHER,
                  parse: JSON.parse,
                  function: async (args) => {
                    calls.push(args);
                    return "sunny";
                  },
                },
              },
            ],
          });
          assert.equal(await runner.finalContent(), "called: get_weather", `${model} stream ${stream}`);
          assert.deepEqual(calls, [{ city: "Paris" }]);
          const messages = runner.messages;
          const call = messages.find((m) => m.role === "assistant" && m.tool_calls?.length)?.tool_calls[0];
          assert.ok(call?.id, "the call has an id");
          assert.equal(messages.find((m) => m.role === "tool")?.tool_call_id, call.id);
          const final = await runner.finalChatCompletion();
          assert.equal(final.choices[0].finish_reason, "stop");
        }
      });

      test(`messages.stream() helpers (${format} format): on('text') pieces make finalText(), on('inputJson') the tool input, finalMessage() usage`, async () => {
        for (const client of [ant(), ant0()]) {
          const stream = client.messages.stream({ ...hi(model.replace("tools", "x")), max_tokens: 50 });
          let text = "";
          stream.on("text", (delta) => (text += delta));
          const final = await stream.finalMessage();
          assert.equal(text, await stream.finalText());
          assert.match(text, /you said "hi there"/);
          assert.equal(final.stop_reason, "end_turn");
          assert.ok(final.usage.output_tokens > 0);
          const tools = client.messages.stream({
            ...hi(model),
            max_tokens: 50,
            tools: [{ name: WEATHER.name, description: WEATHER.description, input_schema: WEATHER.parameters }],
          });
          let json = "";
          tools.on("inputJson", (delta) => (json += delta));
          const m = await tools.finalMessage();
          const use = m.content.find((b) => b.type === "tool_use");
          assert.deepEqual(use.input, { city: "Paris" });
          assert.deepEqual(JSON.parse(json), { city: "Paris" });
          assert.equal(m.stop_reason, "tool_use");
        }
      });

      test(`the Anthropic 1.x tool runner (${format} format): runs the call and ends with the model's answer`, async () => {
        for (const stream of [false, true]) {
          const calls = [];
          const name = `${model}-runner-${stream}`;
          const runner = ant().beta.messages.toolRunner({
            model: name,
            max_tokens: 100,
            stream,
            messages: [{ role: "user", content: "What is the weather in Paris?" }],
            tools: [
              betaTool({
                name: WEATHER.name,
                description: WEATHER.description,
                inputSchema: WEATHER.parameters,
                run: async (input) => {
                  calls.push(input);
                  return "sunny";
                },
              }),
            ],
          });
          const final = await runner.runUntilDone();
          assert.deepEqual(calls, [{ city: "Paris" }], `${name}`);
          const sent = fake.requests.filter((r) => r.json?.model === name.split("/")[1] || r.url.includes(`/${name.split("/")[1]}:`));
          assert.equal(sent.length, 2, `${name}: two turns`);
          if (format === "Anthropic") {
            // Passed through: the SDK's thread as it sent it (the second turn continues the first message).
            assert.deepEqual(sent[0].json.thread, { type: "create" });
            assert.deepEqual(sent[1].json.thread, { type: "continue", previous_message_id: "msg_fake_call" });
          } else {
            // Refused with thread_unsupported_request before anything was sent, the SDK sent each turn again
            // without a thread: the second turn holds the whole conversation, and the answer names the call.
            const second = JSON.stringify(sent[1].json);
            assert.ok(second.includes("What is the weather in Paris?") && second.includes("sunny"), second);
            assert.equal(final.content.find((b) => b.type === "text")?.text, "called: get_weather");
          }
        }
      });
    }

    test("message threads: passed to Anthropic-format providers as sent; on other targets 400 thread_unsupported_request, on which the SDK goes on without a thread", async () => {
      // The refusal as the wire shows it.
      const body = { ...hi("fast"), max_tokens: 5, thread: { type: "create" } };
      const r = await request(gw.at("/ai/v1/messages"), {
        method: "POST",
        headers: { "content-type": "application/json", "anthropic-version": "2023-06-01" },
        body: JSON.stringify(body),
      });
      assert.equal(r.status, 400, r.text);
      const e = r.json().error;
      assert.equal(e.type, "invalid_request_error");
      assert.deepEqual(e.details, { error_code: "thread_unsupported_request", unsupported: ["thread"] });
      assert.match(e.message, /^thread: /);
      // An Anthropic-format provider gets it as it came.
      const before = fake.of("anthropic").length;
      const ok = await request(gw.at("/ai/v1/messages"), {
        method: "POST",
        headers: { "content-type": "application/json", "anthropic-version": "2023-06-01", "anthropic-beta": "message-threads-2026-08-12" },
        body: JSON.stringify({ ...body, model: "smart" }),
      });
      assert.equal(ok.status, 200, ok.text);
      const sent = fake.of("anthropic").slice(before).at(-1);
      assert.deepEqual(sent.json.thread, { type: "create" });
      assert.equal(sent.headers["anthropic-beta"], "message-threads-2026-08-12");
      // The Anthropic SDKs raise it as a BadRequestError with the code they read (`errorCode` in 1.x).
      await assert.rejects(ant().messages.create(body), (err) => {
        assert.ok(err instanceof Anthropic.BadRequestError);
        assert.equal(err.errorCode, "thread_unsupported_request");
        return true;
      });
    });

    test("beta.messages (0.x posts to /v1/messages?beta=true) and beta.messages.countTokens reach the Messages endpoints", async () => {
      for (const client of [ant(), ant0()]) {
        const m = await client.beta.messages.create({ ...hi("flash"), max_tokens: 20, betas: ["some-beta-2025-01-01"] });
        assert.equal(m.type, "message");
        assert.match(m.content[0].text, /you said "hi there"/);
        const c = await client.beta.messages.countTokens({ ...hi("smart"), betas: ["some-beta-2025-01-01"] });
        assert.ok(c.input_tokens > 0);
      }
      const sent = fake.of("anthropic").filter((r) => r.url.endsWith("/count_tokens")).at(-1);
      assert.match(sent.headers["anthropic-beta"], /some-beta-2025-01-01/);
    });

    test("chat.completions.stream() with include_usage: finalChatCompletion() has the usage on every format", async () => {
      for (const model of ["fast", "smart", "flash"]) {
        const stream = oai().chat.completions.stream({ ...hi(model), stream_options: { include_usage: true } });
        const chunks = [];
        stream.on("chunk", (c) => chunks.push(c));
        const final = await stream.finalChatCompletion();
        assert.ok(final.usage?.prompt_tokens > 0, model);
        assert.equal(final.usage.total_tokens, final.usage.prompt_tokens + final.usage.completion_tokens);
        assert.deepEqual(chunks.at(-1).choices, []);
        assert.match(final.choices[0].message.content, /you said "hi there"/);
      }
    });
  });
}
