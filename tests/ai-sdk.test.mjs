// The official OpenAI SDK (npm `openai`) as the client of the AI gateway, changing only its base URL and key,
// against Anthropic-format and Gemini-format fake providers (and an OpenAI-format one), streaming and not.
// The SDK's key is the GATEWAY credential (key-auth consumer), never the provider's.
import { describe, test, before, after } from "node:test";
import assert from "node:assert/strict";
import crypto from "node:crypto";
import OpenAI from "openai";
import { waitFor } from "./support/harness.mjs";
import { startAi, aiConfig, KEYS } from "./ai-helpers.mjs";

const sha256hex = (s) => crypto.createHash("sha256").update(s).digest("hex");

describe("OpenAI SDK against the gateway", () => {
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

  for (const [alias, provider] of [
    ["smart", "anthropic"],
    ["flash", "gemini"],
    ["fast", "openai"],
  ]) {
    test(`chat.completions.create, not streamed: ${alias} (${provider} format)`, async () => {
      const { data, response } = await client.chat.completions
        .create({
          model: alias,
          messages: [
            { role: "system", content: "Be brief." },
            { role: "user", content: "What is edgegate?" },
          ],
          max_tokens: 50,
          temperature: 0.5,
        })
        .withResponse();
      assert.equal(data.object, "chat.completion");
      assert.match(data.choices[0].message.content, new RegExp(`^Hello from ${provider} .*: you said "What is edgegate\\?"$`));
      assert.equal(data.choices[0].message.role, "assistant");
      assert.equal(data.choices[0].finish_reason, "stop");
      assert.ok(data.usage.total_tokens > 0);
      assert.ok(response.headers.get("x-edgegate-ai-provider"));
      // The provider got its own key, not the SDK's.
      const up = fake.of(provider).at(-1);
      assert.ok(!JSON.stringify(up.headers).includes(gatewayKey));
      const rid = response.headers.get("x-request-id");
      const line = await waitFor(() => gw.logs.find((l) => l.json?.event === "request" && l.json.request_id === rid));
      assert.equal(line.json.consumer, "app");
      assert.equal(line.json.ai.total_tokens, data.usage.total_tokens);
    });

    test(`chat.completions.create, streamed: ${alias} (${provider} format)`, async () => {
      const stream = await client.chat.completions.create({
        model: alias,
        messages: [{ role: "user", content: "Stream please" }],
        stream: true,
        stream_options: { include_usage: true },
      });
      let text = "";
      let usage = null;
      let finish = null;
      let chunks = 0;
      for await (const chunk of stream) {
        chunks++;
        text += chunk.choices[0]?.delta?.content ?? "";
        finish = chunk.choices[0]?.finish_reason ?? finish;
        if (chunk.usage) usage = chunk.usage;
      }
      assert.match(text, new RegExp(`^Hello from ${provider} .*: you said "Stream please"$`));
      assert.ok(chunks > 5, `${chunks} chunks`);
      assert.equal(finish, "stop");
      assert.ok(usage && usage.total_tokens === usage.prompt_tokens + usage.completion_tokens, JSON.stringify(usage));
    });
  }

  test("the SDK's stream helper with fallback (429 then Gemini)", async () => {
    const runner = client.chat.completions.stream({ model: "fb-429", messages: [{ role: "user", content: "again" }] });
    const final = await runner.finalChatCompletion();
    assert.match(final.choices[0].message.content, /^Hello from gemini \(gemini-after-429\)/);
  });

  test("embeddings.create and models.list", async () => {
    const e = await client.embeddings.create({ model: "oai/text-embedding-3-small", input: ["a b", "c"] });
    assert.equal(e.data.length, 2);
    assert.equal(e.data[0].embedding.length, 8);
    const g = await client.embeddings.create({ model: "gem/text-embedding-004", input: "hello" });
    assert.equal(g.data[0].embedding.length, 8);
    const ids = [];
    for await (const m of client.models.list()) ids.push(m.id);
    assert.ok(ids.includes("smart") && ids.includes("claude/claude-test"), ids.join());
  });

  test("errors surface as the SDK's typed errors", async () => {
    await assert.rejects(
      client.chat.completions.create({ model: "no-such-model", messages: [{ role: "user", content: "x" }] }),
      (e) => e instanceof OpenAI.NotFoundError && e.status === 404 && e.code === "model_not_found",
    );
    await assert.rejects(
      client.chat.completions.create({ model: "oai/m-fail429", messages: [{ role: "user", content: "x" }] }),
      (e) => e instanceof OpenAI.RateLimitError && /Rate limit reached/.test(e.message),
    );
    // A wrong gateway key: the auth phase's 401 in OpenAI's shape.
    const stranger = new OpenAI({ baseURL: gw.at("/ai/v1"), apiKey: "eg_wrong", maxRetries: 0 });
    await assert.rejects(
      stranger.chat.completions.create({ model: "fast", messages: [{ role: "user", content: "x" }] }),
      (e) => e instanceof OpenAI.AuthenticationError && e.status === 401 && typeof e.code === "string",
    );
  });

  test("the SDK's retry waits what the provider's 429 asked for (retry-after-ms through the gateway)", async () => {
    const patient = new OpenAI({ baseURL: gw.at("/ai/v1"), apiKey: gatewayKey, maxRetries: 1, timeout: 20_000 });
    // The first request for this model gets a 429 asking for 3 s (retry-after-ms 2750), the next an answer.
    const r = await patient.chat.completions.create({ model: "oai/m-flaky429-ra3", messages: [{ role: "user", content: "x" }] });
    assert.match(r.choices[0].message.content, /^Hello from openai \(m-flaky429-ra3\)/);
    const tries = fake.of("openai").filter((q) => q.json?.model === "m-flaky429-ra3");
    assert.equal(tries.length, 2);
    // The SDK's own first backoff is under a second: it waited because the gateway passed the header on.
    const gap = tries[1].at - tries[0].at;
    assert.ok(gap >= 2600 && gap < 6000, `the SDK retried ${gap} ms later`);
  });

  test("no provider key reached the client or the logs", () => {
    const logs = gw.logs.map((l) => l.message).join("\n");
    for (const k of Object.values(KEYS)) assert.ok(!logs.includes(k));
    assert.ok(!logs.includes(gatewayKey));
  });
});
