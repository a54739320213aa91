// AWS Bedrock behind the AI route (docs/ai.md, "AWS Bedrock"): the gateway signs Converse and
// ConverseStream requests with SigV4 from Worker secrets (the fake in tests/support/fake-bedrock.mjs checks
// every signature with node:crypto), parses the binary event stream, and answers every client format:
// the official `openai` SDK (chat completions streamed and not, tools over two turns, Responses) and
// `@anthropic-ai/sdk` (messages.stream, with tools). Errors (429 with fallback, 400, a refused signature,
// a missing secret, in-stream exceptions, a corrupt or cut stream) and no AWS secret in any response or log.
// The configuration is the example of docs/ai.md, "AWS Bedrock", with base_url pointing at the fake.
import { describe, test, before, after } from "node:test";
import assert from "node:assert/strict";
import crypto from "node:crypto";
import OpenAI from "openai";
import Anthropic from "@anthropic-ai/sdk";
import Anthropic0 from "anthropic-sdk-0";
import fs from "node:fs";
import path from "node:path";
import { startGateway, request, streamRequest, waitFor, ROOT } from "./support/harness.mjs";
import { startFakeBedrock } from "./support/fake-bedrock.mjs";
import { startFakeProviders } from "./support/fake-providers.mjs";

const AWS = {
  accessKeyId: "AKIA" + crypto.randomBytes(8).toString("hex").toUpperCase(),
  secretAccessKey: "wJalrSECRET/" + crypto.randomBytes(15).toString("base64"),
  sessionToken: "IQoJb3JpZ2luX2VjSECRET" + crypto.randomBytes(24).toString("base64"),
};
const OAI_KEY = "sk-oai-SECRET-" + crypto.randomBytes(8).toString("hex");
const CLAUDE = "anthropic.claude-3-5-sonnet-20240620-v1:0";

// The example of docs/ai.md, "AWS Bedrock", read from the page (plus base_url: the fake instead of
// bedrock-runtime.us-east-1.amazonaws.com).
const DOC = (() => {
  const md = fs.readFileSync(path.join(ROOT, "docs", "ai.md"), "utf8");
  const section = md.slice(md.indexOf("### AWS Bedrock"));
  return JSON.parse(/```json\n([\s\S]*?)```/.exec(section)[1]);
})();
const docProviders = (url) => ({ bedrock: { ...DOC.config.providers.bedrock, base_url: url } });
const docModels = DOC.config.models;

const weather = {
  type: "function",
  function: { name: "get_weather", description: "The weather of a city", parameters: { type: "object", properties: { city: { type: "string" } }, required: ["city"] } },
};

describe("AWS Bedrock provider", () => {
  let bedrock, fake, gw, openai, anthropic;
  const seen = []; // every response body and headers, checked for secrets at the end

  before(async () => {
    bedrock = await startFakeBedrock({ credentials: AWS, region: "us-east-1" });
    fake = await startFakeProviders({ keys: { openai: OAI_KEY } });
    gw = await startGateway({
      bindings: {
        AWS_ACCESS_KEY_ID: AWS.accessKeyId,
        AWS_SECRET_ACCESS_KEY: AWS.secretAccessKey,
        AWS_SESSION_TOKEN: AWS.sessionToken,
        WRONG_AWS_SECRET: "wJalrWRONG/" + crypto.randomBytes(15).toString("base64"),
        OAI_KEY,
      },
    });
    await gw.putConfig({
      format_version: 1,
      services: [{ name: "unused", url: "http://127.0.0.1:9/" }],
      routes: [{ name: "llm", service: "unused", paths: ["/ai"] }],
      plugins: [
        {
          name: "ai-proxy",
          route: "llm",
          config: {
            providers: {
              ...docProviders(bedrock.url),
              // Same keys, but the secret key from another secret: a signature the fake refuses.
              "aws-wrong": { kind: "bedrock", region: "us-east-1", base_url: bedrock.url, secret_access_key_secret: "WRONG_AWS_SECRET", session_token_secret: "AWS_SESSION_TOKEN" },
              "aws-nokey": { kind: "bedrock", region: "us-east-1", base_url: bedrock.url, access_key_id_secret: "MISSING_AWS_KEY_ID" },
              oai: { kind: "openai", base_url: fake.baseUrls.openai, key_secret: "OAI_KEY" },
            },
            models: {
              ...docModels,
              tools: "bedrock/anthropic.claude-tools-v1:0",
              "fb-429": { targets: ["bedrock/m-fail429", "oai/gpt-after-bedrock"] },
              "fb-nokey": { targets: ["aws-nokey/m-x", "oai/gpt-after-nokey"] },
            },
            default_model: DOC.config.default_model,
            fallback: { first_byte_timeout_ms: 5000 },
          },
        },
      ],
    });
    openai = new OpenAI({ baseURL: gw.at("/ai/v1"), apiKey: "client-key", maxRetries: 0, timeout: 20_000 });
    anthropic = new Anthropic({ baseURL: gw.at("/ai"), apiKey: "client-key", maxRetries: 0, timeout: 20_000 });
  });
  after(async () => {
    await gw?.dispose();
    await bedrock?.close();
    await fake?.close();
  });
  const keep = (value, response) => {
    seen.push(JSON.stringify(value ?? null));
    if (response) seen.push(JSON.stringify([...response.headers]));
    return value;
  };

  test("chat completion (openai SDK) through Converse, signed with the session token", async () => {
    const before = bedrock.requests.length;
    const { data, response } = await openai.chat.completions
      .create({ model: "claude", max_tokens: 64, temperature: 0.2, messages: [{ role: "system", content: "Be brief." }, { role: "user", content: "What is edgegate?" }] })
      .withResponse();
    keep(data, response);
    assert.equal(data.object, "chat.completion");
    assert.equal(data.choices[0].message.content, `Hello from bedrock (${CLAUDE}): you said "What is edgegate?"`);
    assert.equal(data.choices[0].finish_reason, "stop");
    assert.equal(data.model, CLAUDE);
    assert.ok(data.usage.prompt_tokens > 0 && data.usage.completion_tokens > 0);
    assert.equal(data.usage.total_tokens, data.usage.prompt_tokens + data.usage.completion_tokens);
    assert.equal(response.headers.get("x-edgegate-ai-provider"), "bedrock");
    assert.equal(response.headers.get("x-edgegate-ai-model"), CLAUDE);
    const up = bedrock.requests.slice(before);
    assert.equal(up.length, 1);
    assert.equal(up[0].signature, "ok");
    assert.equal(up[0].url, "/model/anthropic.claude-3-5-sonnet-20240620-v1%3A0/converse");
    assert.equal(up[0].headers["x-amz-security-token"], AWS.sessionToken);
    assert.match(up[0].headers.authorization, new RegExp(`^AWS4-HMAC-SHA256 Credential=${AWS.accessKeyId}/\\d{8}/us-east-1/bedrock/aws4_request, SignedHeaders=[a-z0-9;-]*host[a-z0-9;-]*, Signature=[0-9a-f]{64}$`));
    assert.deepEqual(up[0].json.system, [{ text: "Be brief." }]);
    assert.deepEqual(up[0].json.inferenceConfig, { maxTokens: 64, temperature: 0.2 });
    // The client's credential is not forwarded.
    assert.ok(!JSON.stringify(up[0].headers).includes("client-key"));
  });

  test("streamed chat completion (openai SDK) from ConverseStream's binary frames", async () => {
    const before = bedrock.requests.length;
    const stream = await openai.chat.completions.create({
      model: "nova",
      stream: true,
      stream_options: { include_usage: true },
      messages: [{ role: "user", content: "Stream please" }],
    });
    let text = "";
    let finish = null;
    let usage = null;
    let chunks = 0;
    for await (const c of stream) {
      keep(c);
      chunks++;
      if (c.choices[0]?.delta?.content) text += c.choices[0].delta.content;
      if (c.choices[0]?.finish_reason) finish = c.choices[0].finish_reason;
      if (c.usage) usage = c.usage;
    }
    assert.equal(text, `Hello from bedrock (amazon.nova-pro-v1:0): you said "Stream please"`);
    assert.ok(chunks >= 8, `one chunk per word: ${chunks}`);
    assert.equal(finish, "stop");
    assert.ok(usage.prompt_tokens > 0 && usage.completion_tokens === 8, JSON.stringify(usage));
    const up = bedrock.requests.slice(before);
    assert.equal(up[0].url, "/model/amazon.nova-pro-v1%3A0/converse-stream");
    assert.equal(up[0].headers.accept, "application/vnd.amazon.eventstream");
    assert.equal(up[0].signature, "ok");
  });

  for (const stream of [false, true]) {
    test(`tools over two turns (openai SDK, ${stream ? "streamed" : "not streamed"})`, async () => {
      const messages = [{ role: "user", content: "Weather in Paris?" }];
      let call;
      if (stream) {
        const runner = openai.chat.completions.stream({ model: "tools", messages, tools: [weather] });
        const final = await runner.finalChatCompletion();
        keep(final);
        assert.equal(final.choices[0].finish_reason, "tool_calls");
        call = final.choices[0].message.tool_calls[0];
        assert.equal(final.choices[0].message.content, "Let me check.");
      } else {
        const r = keep(await openai.chat.completions.create({ model: "tools", messages, tools: [weather], tool_choice: "required" }));
        assert.equal(r.choices[0].finish_reason, "tool_calls");
        call = r.choices[0].message.tool_calls[0];
        const up = bedrock.requests.at(-1).json;
        assert.deepEqual(up.toolConfig.toolChoice, { any: {} });
        assert.deepEqual(up.toolConfig.tools[0].toolSpec.inputSchema.json, weather.function.parameters);
      }
      assert.equal(call.id, "tooluse_fake_1");
      assert.equal(call.function.name, "get_weather");
      assert.deepEqual(JSON.parse(call.function.arguments), { city: "Paris" });
      messages.push({ role: "assistant", content: null, tool_calls: [call] });
      messages.push({ role: "tool", tool_call_id: call.id, content: "18 degrees" });
      const r2 = keep(await openai.chat.completions.create({ model: "tools", messages, tools: [weather] }));
      assert.equal(r2.choices[0].message.content, "called: get_weather");
      const up = bedrock.requests.at(-1).json;
      assert.deepEqual(up.messages[1], { role: "assistant", content: [{ toolUse: { toolUseId: "tooluse_fake_1", name: "get_weather", input: { city: "Paris" } } }] });
      assert.deepEqual(up.messages[2].content[0], { toolResult: { toolUseId: "tooluse_fake_1", content: [{ text: "18 degrees" }], status: "success" } });
    });
  }

  test("Anthropic SDK messages.stream over Bedrock, text and tools", async () => {
    const s = anthropic.messages.stream({ model: "claude", max_tokens: 100, messages: [{ role: "user", content: "Hi Claude" }] });
    const events = [];
    s.on("streamEvent", (e) => events.push(e.type));
    const msg = keep(await s.finalMessage());
    assert.equal(msg.content[0].text, `Hello from bedrock (${CLAUDE}): you said "Hi Claude"`);
    assert.equal(msg.stop_reason, "end_turn");
    assert.ok(msg.usage.input_tokens > 0 && msg.usage.output_tokens > 0);
    assert.equal(events[0], "message_start");
    assert.equal(events.at(-1), "message_stop");
    assert.ok(events.includes("content_block_delta") && events.includes("message_delta"));

    const tools = [{ name: "get_weather", description: "The weather", input_schema: weather.function.parameters }];
    const t = anthropic.messages.stream({ model: "tools", max_tokens: 100, tools, messages: [{ role: "user", content: "Weather?" }] });
    const m1 = keep(await t.finalMessage());
    assert.equal(m1.stop_reason, "tool_use");
    const use = m1.content.find((b) => b.type === "tool_use");
    assert.deepEqual([use.id, use.name, use.input], ["tooluse_fake_1", "get_weather", { city: "Paris" }]);
    const m2 = keep(
      await anthropic.messages
        .stream({
          model: "tools",
          max_tokens: 100,
          tools,
          messages: [
            { role: "user", content: "Weather?" },
            { role: "assistant", content: m1.content },
            { role: "user", content: [{ type: "tool_result", tool_use_id: use.id, content: "18 degrees" }] },
          ],
        })
        .finalMessage(),
    );
    assert.equal(m2.content[0].text, "called: get_weather");
  });

  test("Anthropic SDK messages.create with an image and a PDF; count_tokens; no embeddings", async () => {
    const png = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg==";
    const pdf = Buffer.from("%PDF-1.4 tiny").toString("base64");
    const { data, response } = await anthropic.messages
      .create({
        model: "claude",
        max_tokens: 80,
        system: "Describe briefly.",
        stop_sequences: ["END"],
        messages: [
          {
            role: "user",
            content: [
              { type: "image", source: { type: "base64", media_type: "image/png", data: png } },
              { type: "document", source: { type: "base64", media_type: "application/pdf", data: pdf } },
              { type: "text", text: "What are these?" },
            ],
          },
        ],
      })
      .withResponse();
    keep(data, response);
    assert.equal(data.type, "message");
    assert.equal(data.content[0].text, `Hello from bedrock (${CLAUDE}): you said "What are these?"`);
    const up = bedrock.requests.at(-1);
    assert.equal(up.signature, "ok");
    assert.deepEqual(up.json.system, [{ text: "Describe briefly." }]);
    assert.deepEqual(up.json.inferenceConfig, { maxTokens: 80, stopSequences: ["END"] });
    assert.deepEqual(up.json.messages[0].content[0], { image: { format: "png", source: { bytes: png } } });
    assert.equal(up.json.messages[0].content[1].document.format, "pdf");
    assert.equal(up.json.messages[0].content[1].document.source.bytes, pdf);

    // count_tokens: exact from Bedrock's CountTokens; an estimate for a model that cannot count.
    const count = async (model) => {
      const res = await request(gw.at("/ai/v1/messages/count_tokens"), {
        method: "POST",
        headers: { "content-type": "application/json", "anthropic-version": "2023-06-01" },
        body: JSON.stringify({ model, system: "Be brief.", messages: [{ role: "user", content: "How many tokens is this?" }] }),
      });
      keep(res.text);
      assert.equal(res.status, 200, res.text);
      return [res.headers["x-edgegate-token-count"], res.json().input_tokens];
    };
    assert.deepEqual(await count("claude"), ["exact", 5 + 2 + 3]);
    const cu = bedrock.requests.at(-1);
    assert.equal(cu.url, "/model/anthropic.claude-3-5-sonnet-20240620-v1%3A0/count-tokens");
    assert.equal(cu.signature, "ok");
    assert.deepEqual(cu.json, { input: { converse: { messages: [{ role: "user", content: [{ text: "How many tokens is this?" }] }], system: [{ text: "Be brief." }] } } });
    const [how, n] = await count("bedrock/m-nocount");
    assert.equal(how, "estimate");
    assert.ok(n > 0);

    const emb = await request(gw.at("/ai/v1/embeddings"), {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ model: "bedrock/amazon.titan-embed-text-v2:0", input: "x" }),
    });
    keep(emb.text);
    assert.equal(emb.status, 400, emb.text);
    assert.match(emb.json().error.message, /bedrock/);
  });

  test("tool_choice none sends no tools; an image link is a 400 naming the message", async () => {
    keep(await openai.chat.completions.create({ model: "nova", tools: [weather], tool_choice: "none", messages: [{ role: "user", content: "no tools" }] }));
    assert.equal(bedrock.requests.at(-1).json.toolConfig, undefined);
    const before = bedrock.requests.length;
    const e = await openai.chat.completions
      .create({ model: "nova", messages: [{ role: "user", content: [{ type: "image_url", image_url: { url: "https://example.com/cat.png" } }] }] })
      .catch((err) => err);
    keep(e.error);
    assert.equal(e.status, 400);
    assert.equal(e.error.param, "messages[0]");
    assert.match(e.error.message, /data: URLs/);
    assert.equal(bedrock.requests.length, before, "nothing sent to Bedrock");
  });

  test("Anthropic SDK 0.x messages.stream over Bedrock", async () => {
    const old = new Anthropic0({ baseURL: gw.at("/ai"), apiKey: "client-key", maxRetries: 0, timeout: 20_000 });
    const msg = keep(await old.messages.stream({ model: "nova", max_tokens: 50, messages: [{ role: "user", content: "Old SDK" }] }).finalMessage());
    assert.equal(msg.content[0].text, `Hello from bedrock (amazon.nova-pro-v1:0): you said "Old SDK"`);
    assert.equal(msg.stop_reason, "end_turn");
  });

  test("a client leaving mid-stream: Bedrock's stream let go at once, one ai_usage line with complete: false", async () => {
    const res = await streamRequest(gw.at("/ai/v1/chat/completions"), {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ model: "bedrock/m-slow", stream: true, messages: [{ role: "user", content: "one two three four five six seven eight nine ten" }] }),
    });
    assert.equal(res.statusCode, 200);
    const rid = res.headers["x-request-id"];
    await new Promise((r) => res.once("data", r));
    res.destroy();
    const abortedAt = Date.now();
    const usage = await waitFor(() => gw.logs.find((l) => l.json?.event === "ai_usage" && l.json.request_id === rid), { timeoutMs: 5000 });
    assert.equal(usage.json.complete, false);
    const up = bedrock.requests.find((r) => r.model === "m-slow");
    const letGo = await waitFor(() => up.abandonedAt, { timeoutMs: 5000, what: "Bedrock stream let go" });
    assert.ok(letGo - abortedAt < 1500, `let go ${letGo - abortedAt} ms after the client`);
    assert.equal(gw.logs.filter((l) => l.json?.event === "ai_usage" && l.json.request_id === rid).length, 1);
    assert.ok(!gw.logs.some((l) => /Critical error/.test(l.message)));
  });

  test("Responses API (openai SDK) over Bedrock, streamed and not", async () => {
    const r = keep(await openai.responses.create({ model: "claude", input: "Hello there", instructions: "Be brief.", store: false }));
    assert.equal(r.status, "completed");
    assert.equal(r.output_text, `Hello from bedrock (${CLAUDE}): you said "Hello there"`);
    assert.ok(r.usage.input_tokens > 0);
    assert.deepEqual(bedrock.requests.at(-1).json.system, [{ text: "Be brief." }]);
    const s = openai.responses.stream({ model: "nova", input: "Stream it", store: false });
    let deltas = "";
    for await (const e of s) if (e.type === "response.output_text.delta") deltas += e.delta;
    const final = keep(await s.finalResponse());
    assert.equal(deltas, `Hello from bedrock (amazon.nova-pro-v1:0): you said "Stream it"`);
    assert.equal(final.status, "completed");

    // Function tools over two turns.
    const tool = { type: "function", name: "get_weather", description: "The weather", parameters: weather.function.parameters };
    const t1 = keep(await openai.responses.create({ model: "tools", input: "Weather?", tools: [tool], store: false }));
    const call = t1.output.find((o) => o.type === "function_call");
    assert.deepEqual([call.call_id, call.name, JSON.parse(call.arguments)], ["tooluse_fake_1", "get_weather", { city: "Paris" }]);
    const t2 = keep(
      await openai.responses.create({
        model: "tools",
        tools: [tool],
        store: false,
        input: [{ role: "user", content: "Weather?" }, call, { type: "function_call_output", call_id: call.call_id, output: "18 degrees" }],
      }),
    );
    assert.equal(t2.output_text, "called: get_weather");
  });

  test("Bedrock errors: 429 falls back, 400 passes on, a refused signature is a 502 without AWS's message", async () => {
    const fb = await openai.chat.completions.create({ model: "fb-429", messages: [{ role: "user", content: "hi" }] }).withResponse();
    keep(fb.data, fb.response);
    assert.equal(fb.response.headers.get("x-edgegate-ai-provider"), "oai");
    assert.equal(fb.response.headers.get("x-edgegate-ai-attempts"), "2");
    const fallback = await waitFor(() => gw.logs.find((l) => l.json?.event === "ai_fallback" && l.json.provider === "bedrock"));
    assert.equal(fallback.json.status, 429);

    const err = async (model, stream = false) => {
      try {
        const r = await openai.chat.completions.create({ model, stream, messages: [{ role: "user", content: "hi" }] });
        if (stream) for await (const c of r) keep(c);
      } catch (e) {
        keep(e.error);
        return e;
      }
      assert.fail(`${model}: no error`);
    };
    const e429 = await err("bedrock/m-fail429");
    assert.equal(e429.status, 429);
    assert.equal(e429.error.message, "Too many requests, please wait before trying again.");
    assert.equal(e429.error.code, "rate_limit_exceeded");
    const e400 = await err("bedrock/m-badreq");
    assert.equal(e400.status, 400);
    assert.equal(e400.error.code, "ValidationException");
    assert.equal(e400.error.message, "The provided request is not valid");
    const e500 = await err("bedrock/m-fail500");
    assert.equal(e500.status, 502);
    assert.equal(e500.error.code, "InternalServerException");
    const bad = await err("aws-wrong/m-x");
    assert.equal(bad.status, 502);
    assert.equal(bad.error.code, "upstream_auth_failed");
    assert.match(bad.error.message, /InvalidSignatureException/);
    assert.ok(!bad.error.message.includes("Secret Access Key"));
    assert.equal(bedrock.requests.at(-1).signature, "InvalidSignatureException");
    // A missing secret: that target fails (retryable), the next answers; the log names the secret only.
    const nk = await openai.chat.completions.create({ model: "fb-nokey", messages: [{ role: "user", content: "hi" }] }).withResponse();
    assert.equal(nk.response.headers.get("x-edgegate-ai-provider"), "oai");
    const missing = await waitFor(() => gw.logs.find((l) => l.json?.event === "ai_key_missing" && l.json.provider === "aws-nokey"));
    assert.equal(missing.json.secret, "MISSING_AWS_KEY_ID");
    const only = await err("aws-nokey/m-x");
    assert.equal(only.status, 502);
    assert.equal(only.error.code, "provider_key_missing");
  });

  test("in-stream exception, corrupt frame (CRC) and cut stream end with an error event", async () => {
    const streamError = async (model) => {
      const res = await request(gw.at("/ai/v1/chat/completions"), {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify({ model, stream: true, messages: [{ role: "user", content: "hi there" }] }),
      });
      keep(res.text);
      assert.equal(res.status, 200, res.text);
      const data = res.text.split("\n\n").filter((e) => e.startsWith("data: ")).map((e) => e.slice(6));
      assert.equal(data.at(-1), "[DONE]");
      const err = JSON.parse(data.at(-2)).error;
      assert.ok(err, res.text);
      const text = data.slice(0, -2).map((d) => JSON.parse(d).choices[0]?.delta?.content ?? "").join("");
      return { err, text };
    };
    const ex = await streamError("bedrock/m-exception");
    assert.equal(ex.text, "Hello");
    assert.equal(ex.err.type, "rate_limit_error");
    assert.equal(ex.err.message, "Too many tokens, please wait before trying again.");
    const crc = await streamError("bedrock/m-corrupt");
    assert.equal(crc.text, "Hello");
    assert.equal(crc.err.code, "bad_upstream_response");
    assert.match(crc.err.message, /CRC/);
    const cut = await streamError("bedrock/m-cut");
    assert.equal(cut.err.code, "upstream_stream_truncated");
    // The openai SDK raises the in-stream error.
    await assert.rejects(async () => {
      for await (const c of await openai.chat.completions.create({ model: "bedrock/m-corrupt", stream: true, messages: [{ role: "user", content: "x" }] })) keep(c);
    }, /CRC/);
  });

  test("the access log and ai_usage lines count Bedrock's tokens", async () => {
    const { response } = await openai.chat.completions.create({ model: "claude", messages: [{ role: "user", content: "count me" }] }).withResponse();
    const rid = response.headers.get("x-request-id");
    const line = await waitFor(() => gw.logs.find((l) => l.json?.event === "request" && l.json.request_id === rid));
    assert.equal(line.json.ai.provider, "bedrock");
    assert.ok(line.json.ai.total_tokens > 0);
    const s = await openai.chat.completions.create({ model: "claude", stream: true, messages: [{ role: "user", content: "count me too" }] }).withResponse();
    for await (const c of s.data) keep(c);
    const srid = s.response.headers.get("x-request-id");
    const usage = await waitFor(() => gw.logs.find((l) => l.json?.event === "ai_usage" && l.json.request_id === srid));
    assert.equal(usage.json.complete, true);
    assert.equal(usage.json.finish_reason, "stop");
    assert.ok(usage.json.ai.completion_tokens > 0);
  });

  test("no AWS secret (secret key, session token, key id) in any response or log", () => {
    const everything = seen.join("\n") + "\n" + gw.logs.map((l) => l.message).join("\n");
    assert.ok(seen.length > 20);
    for (const secret of [AWS.secretAccessKey, AWS.sessionToken, AWS.accessKeyId, "wJalrWRONG", OAI_KEY]) {
      assert.ok(!everything.includes(secret), `leaked ${secret.slice(0, 8)}…`);
    }
  });
});
