// OpenAI Responses on the AI route (docs/ai.md, "OpenAI Responses"): the official `openai` SDK's
// responses.create / responses.stream against OpenAI-, Anthropic- and Gemini-format fake providers, streamed
// and not, function tools over two turns, text.format json_schema, the stateless refusals, bad bodies, and
// models.retrieve.
import { describe, test, before, after } from "node:test";
import assert from "node:assert/strict";
import crypto from "node:crypto";
import OpenAI from "openai";
import { waitFor } from "./support/harness.mjs";
import { startAi, aiConfig, KEYS } from "./ai-helpers.mjs";

const sha256hex = (s) => crypto.createHash("sha256").update(s).digest("hex");
// The text of a response's message items (the SDK's `output_text` is not set on a stream's final response).
const textOf = (r) =>
  r.output
    .filter((o) => o.type === "message")
    .flatMap((o) => o.content)
    .filter((c) => c.type === "output_text")
    .map((c) => c.text)
    .join("");
const PROVIDERS = [
  ["fast", "openai", "oai/gpt-tools"],
  ["smart", "anthropic", "claude/claude-tools"],
  ["flash", "gemini", "gem/gemini-tools"],
];
const weather = {
  type: "function",
  name: "get_weather",
  description: "The weather of a city",
  parameters: { type: "object", properties: { city: { type: "string" } }, required: ["city"], additionalProperties: false },
  strict: true,
};

describe("OpenAI SDK Responses against the gateway", () => {
  let fake, gw, client;
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
    client = new OpenAI({ baseURL: gw.at("/ai/v1"), apiKey: gatewayKey, maxRetries: 0, timeout: 20_000 });
  });
  after(async () => {
    await gw?.dispose();
    await fake?.close();
  });

  for (const [alias, provider, toolModel] of PROVIDERS) {
    test(`responses.create: ${alias} (${provider} format)`, async () => {
      const { data, response } = await client.responses
        .create({ model: alias, instructions: "Be brief.", input: "What is edgegate?", store: false, max_output_tokens: 50 })
        .withResponse();
      assert.equal(data.object, "response");
      assert.equal(data.status, "completed");
      assert.match(data.id, /^resp_/);
      assert.match(data.output_text, new RegExp(`^Hello from ${provider} .*: you said "What is edgegate\\?"$`));
      assert.equal(data.output[0].type, "message");
      assert.equal(data.instructions, "Be brief.");
      assert.equal(data.store, false);
      assert.ok(data.usage.input_tokens > 0 && data.usage.output_tokens > 0);
      assert.equal(data.usage.total_tokens, data.usage.input_tokens + data.usage.output_tokens);
      const rid = response.headers.get("x-request-id");
      const line = await waitFor(() => gw.logs.find((l) => l.json?.event === "request" && l.json.request_id === rid));
      assert.equal(line.json.ai.endpoint, "responses");
      assert.equal(line.json.ai.total_tokens, data.usage.total_tokens);
    });

    test(`responses.stream: ${alias} (${provider} format)`, async () => {
      const stream = client.responses.stream({ model: alias, input: [{ role: "user", content: "Stream please" }] });
      const types = [];
      let text = "";
      for await (const e of stream) {
        types.push(e.type);
        if (e.type === "response.output_text.delta") text += e.delta;
      }
      const final = await stream.finalResponse();
      assert.match(text, new RegExp(`^Hello from ${provider} .*: you said "Stream please"$`));
      assert.equal(textOf(final), text);
      assert.equal(final.status, "completed");
      assert.ok(final.usage.output_tokens > 0);
      assert.deepEqual(types.slice(0, 4), ["response.created", "response.in_progress", "response.output_item.added", "response.content_part.added"]);
      assert.equal(types.at(-1), "response.completed");
      assert.ok(types.filter((t) => t === "response.output_text.delta").length > 5);
    });

    for (const streamed of [false, true]) {
      test(`function tools over two turns: ${provider} format, ${streamed ? "streamed" : "not streamed"}`, async () => {
        const input = [{ role: "user", content: "Weather in Paris?" }];
        const ask = async (inp) => {
          if (!streamed) return client.responses.create({ model: toolModel, input: inp, tools: [weather], store: false });
          const s = client.responses.stream({ model: toolModel, input: inp, tools: [weather], store: false });
          const args = [];
          s.on("response.function_call_arguments.delta", (e) => args.push(e.delta));
          const r = await s.finalResponse();
          const call = r.output.find((o) => o.type === "function_call");
          if (call) assert.equal(args.join(""), call.arguments);
          return r;
        };
        const first = await ask(input);
        const call = first.output.find((o) => o.type === "function_call");
        assert.ok(call, JSON.stringify(first.output));
        assert.equal(call.name, "get_weather");
        assert.deepEqual(JSON.parse(call.arguments), { city: "Paris" });
        assert.ok(call.call_id);
        input.push(...first.output.filter((o) => o.type !== "message" || o.content.some((c) => c.text)));
        input.push({ type: "function_call_output", call_id: call.call_id, output: "21 degrees" });
        const second = await ask(input);
        assert.equal(textOf(second), "called: get_weather");
      });
    }
  }

  test("text.format json_schema reaches each provider's JSON mode", async () => {
    const format = { type: "json_schema", name: "answer", schema: { type: "object", properties: { a: { type: "string" } } }, strict: true };
    await client.responses.create({ model: "fast", input: "x", text: { format } });
    assert.deepEqual(fake.of("openai").at(-1).json.response_format, {
      type: "json_schema",
      json_schema: { name: "answer", schema: format.schema, strict: true },
    });
    await client.responses.create({ model: "flash", input: "x", text: { format } });
    const gen = fake.of("gemini").at(-1).json.generationConfig;
    assert.equal(gen.responseMimeType, "application/json");
    assert.deepEqual(gen.responseJsonSchema, format.schema);
    const r = await client.responses.create({ model: "smart", input: "x", text: { format } });
    assert.match(fake.of("anthropic").at(-1).json.system, /JSON Schema/);
    assert.deepEqual(r.text, { format });
  });

  test("stateless: previous_response_id is refused in OpenAI's shape", async () => {
    await assert.rejects(client.responses.create({ model: "fast", input: "x", previous_response_id: "resp_123" }), (e) => {
      assert.ok(e instanceof OpenAI.BadRequestError, String(e));
      assert.equal(e.param, "previous_response_id");
      assert.equal(e.code, "stateless_gateway");
      assert.match(e.message, /stores no responses/);
      return true;
    });
  });

  test("malformed bodies, errors and models.retrieve", async () => {
    for (const [body, param] of [
      [{ model: "fast" }, "input"],
      [{ model: "fast", input: [{ type: "function_call", name: "f" }] }, "input[0].call_id"],
      [{ model: "fast", input: "x", tools: [{ type: "web_search" }] }, "tools[0].type"],
    ]) {
      const r = await fetch(gw.at("/ai/v1/responses"), {
        method: "POST",
        headers: { authorization: `Bearer ${gatewayKey}`, "content-type": "application/json" },
        body: JSON.stringify(body),
      });
      assert.equal(r.status, 400);
      const j = await r.json();
      assert.equal(j.error.type, "invalid_request_error");
      assert.equal(j.error.param, param);
    }
    await assert.rejects(client.responses.create({ model: "no-such", input: "x" }), (e) => e instanceof OpenAI.NotFoundError);
    await assert.rejects(client.responses.create({ model: "oai/m-fail429", input: "x" }), (e) => e instanceof OpenAI.RateLimitError);
    // A stream cut by the provider: an error event the SDK raises.
    const s = client.responses.stream({ model: "gem/m-slow-cut", input: "x" });
    await assert.rejects(s.finalResponse(), /stream ended before/);
    const m = await client.models.retrieve("smart");
    assert.deepEqual([m.id, m.object, m.owned_by], ["smart", "model", "edgegate"]);
    const p = await client.models.retrieve("oai/gpt-anything");
    assert.equal(p.owned_by, "oai");
    await assert.rejects(client.models.retrieve("zz/nope"), (e) => e instanceof OpenAI.NotFoundError);
  });

  test("no provider key reached the client or the logs", () => {
    const logs = gw.logs.map((l) => l.message).join("\n");
    for (const k of Object.values(KEYS)) assert.ok(!logs.includes(k));
    assert.ok(!logs.includes(gatewayKey));
  });
});
