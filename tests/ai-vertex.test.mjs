// Google Vertex AI providers (docs/ai.md, "Google Vertex AI"): the configuration example of the docs, against
// a fake Vertex (tests/support/fake-vertex.mjs: Google's token endpoint verifying the RS256 assertion with the
// service account's public key, and the Vertex API answering in Gemini's and Anthropic's formats). Clients:
// the official `openai` SDK (chat, streamed and not, tools; responses) and `@anthropic-ai/sdk` (messages, streamed
// and not, tools; count_tokens), on
// Gemini-on-Vertex and Claude-on-Vertex. Access tokens: one token request for many requests, one for 20
// concurrent first requests, refreshed before expiry, fetched again after the provider refused one; the
// private key never in a log, a response or an error.
import { describe, test, before, after } from "node:test";
import assert from "node:assert/strict";
import crypto from "node:crypto";
import fs from "node:fs";
import path from "node:path";
import OpenAI from "openai";
import Anthropic from "@anthropic-ai/sdk";
import { startGateway, waitFor, sleep, closedPort, ROOT } from "./support/harness.mjs";
import { startFakeVertex } from "./support/fake-vertex.mjs";

/** The JSON example of docs/ai.md's "Google Vertex AI" section. */
function docsExample() {
  const md = fs.readFileSync(path.join(ROOT, "docs/ai.md"), "utf8");
  const section = md.split("\n### Google Vertex AI\n")[1];
  const block = /```json\n([\s\S]*?)```/.exec(section)[1];
  return JSON.parse(block);
}

function account(email, fake, extra = {}) {
  const { privateKey, publicKey } = crypto.generateKeyPairSync("rsa", { modulusLength: 2048 });
  const pem = privateKey.export({ type: "pkcs8", format: "pem" });
  fake.addAccount(email, publicKey, extra);
  const json = {
    type: "service_account",
    project_id: "edge-proj",
    private_key_id: crypto.randomBytes(20).toString("hex"),
    private_key: pem,
    client_email: email,
    client_id: "1234567890",
    token_uri: fake.tokenUrl,
  };
  // What must never show: the PEM's body lines.
  const secretLines = pem.split("\n").filter((l) => l.length > 20 && !l.startsWith("-----"));
  return { json, text: JSON.stringify(json), secretLines };
}

function assertNoKey(text, accounts, what) {
  for (const a of accounts) {
    for (const line of a.secretLines) assert.ok(!text.includes(line), `${what} holds private key material`);
    assert.ok(!text.includes(JSON.stringify(a.json.private_key).slice(1, 60)), `${what} holds the escaped key`);
  }
  assert.ok(!text.includes("PRIVATE KEY"), `${what} mentions the PEM`);
}

describe("Vertex AI providers", () => {
  let fake, gw, main, other, bad, concurrent, short, refused, flaky;
  const route = (providers, models) => ({
    format_version: 1,
    services: [{ name: "unused", url: "http://127.0.0.1:9/" }],
    routes: [{ name: "llm", service: "unused", paths: ["/ai"] }],
    plugins: [{ name: "ai-proxy", route: "llm", config: { providers, models } }],
  });

  before(async () => {
    fake = await startFakeVertex();
    main = account("gw@edge-proj.iam.gserviceaccount.com", fake);
    // Its token comes 300 ms after the request: all 20 concurrent requests arrive meanwhile.
    concurrent = account("burst@edge-proj.iam.gserviceaccount.com", fake, { delayMs: 300 });
    short = account("short@edge-proj.iam.gserviceaccount.com", fake, { expiresIn: 2 });
    refused = account("refused@edge-proj.iam.gserviceaccount.com", fake);
    flaky = account("flaky@edge-proj.iam.gserviceaccount.com", fake, { expiresIn: 2 });
    other = account("other@edge-proj.iam.gserviceaccount.com", fake);
    // Signed with a key the fake does not know for that account.
    bad = account("bad@edge-proj.iam.gserviceaccount.com", { addAccount() {} , tokenUrl: fake.tokenUrl });
    fake.addAccount(bad.json.client_email, crypto.generateKeyPairSync("rsa", { modulusLength: 2048 }).publicKey);
    gw = await startGateway({
      bindings: {
        VERTEX_SERVICE_ACCOUNT: main.text,
        VERTEX_BURST: concurrent.text,
        VERTEX_SHORT: short.text,
        VERTEX_REFUSED: refused.text,
        VERTEX_FLAKY: flaky.text,
        VERTEX_BAD: bad.text,
        VERTEX_OTHER: other.text,
        VERTEX_NOT_JSON: "{" + main.json.private_key,
        VERTEX_NO_KEY: JSON.stringify({ ...main.json, private_key: undefined }),
        // A token endpoint where nothing listens.
        VERTEX_UNREACHABLE: JSON.stringify({ ...other.json, token_uri: `http://127.0.0.1:${await closedPort()}/token` }),
      },
    });
    // The docs' example, its host replaced by the fake's.
    const doc = docsExample();
    const config = route(doc.config.providers, doc.config.models);
    config.plugins[0].config.default_model = doc.config.default_model;
    const p = config.plugins[0].config.providers;
    p.vertex.base_url = fake.url;
    const at = (secret, extra = {}) => ({ kind: "vertex", key_secret: secret, base_url: fake.url, region: "europe-west1", ...extra });
    Object.assign(p, {
      burst: at("VERTEX_BURST"),
      short: at("VERTEX_SHORT"),
      refused: at("VERTEX_REFUSED"),
      flaky: at("VERTEX_FLAKY"),
      bad: at("VERTEX_BAD"),
      notjson: at("VERTEX_NOT_JSON"),
      nokey: at("VERTEX_NO_KEY"),
      unreachable: at("VERTEX_UNREACHABLE"),
      // Project given, publisher forced for a model name that does not say.
      forced: at("VERTEX_OTHER", { project: "other-proj", publisher: "anthropic" }),
    });
    Object.assign(config.plugins[0].config.models, {
      "bad-then-gemini": { targets: ["bad/gemini-2.5-flash", "vertex/gemini-2.5-flash"] },
    });
    await gw.putConfig(config);
  });
  after(async () => {
    if (gw) {
      const all = gw.logs.map((l) => l.message).join("\n");
      assertNoKey(all, [main, concurrent, short, refused, flaky, bad, other], "the gateway's log");
    }
    await gw?.dispose();
    await fake?.close();
  });

  const openai = () => new OpenAI({ baseURL: gw.at("/ai/v1"), apiKey: "unused", maxRetries: 0, timeout: 20_000 });
  const last = (publisher) => fake.requests.filter((r) => r.publisher === publisher).at(-1);

  test("docs example: Gemini on Vertex, chat not streamed (openai SDK)", async () => {
    const { data, response } = await openai()
      .chat.completions.create({ model: "gemini", messages: [{ role: "user", content: "Hi there" }] })
      .withResponse();
    assert.equal(data.choices[0].message.content, 'Hello from gemini (gemini-2.5-flash): you said "Hi there"');
    assert.equal(data.choices[0].finish_reason, "stop");
    assert.ok(data.usage.total_tokens > 0);
    assert.equal(response.headers.get("x-edgegate-ai-provider"), "vertex");
    const up = last("google");
    // Project from the key file's project_id, region from the config.
    assert.deepEqual([up.project, up.region, up.model, up.method], ["edge-proj", "us-east5", "gemini-2.5-flash", "generateContent"]);
    assert.equal(up.json.contents[0].parts[0].text, "Hi there");
    assert.ok(fake.tokensFor(main.json.client_email).some((t) => t.token === up.token));
    assert.ok(!("x-goog-api-key" in up.headers));
    const claims = fake.tokensFor(main.json.client_email)[0].claims;
    assert.deepEqual(Object.keys(claims).sort(), ["aud", "exp", "iat", "iss", "scope"]);
    assert.equal(claims.aud, fake.tokenUrl);
    assert.equal(claims.exp - claims.iat, 3600);
  });

  test("Gemini on Vertex, chat streamed (openai SDK)", async () => {
    const stream = await openai().chat.completions.create({
      model: "vertex/gemini-2.5-flash",
      stream: true,
      stream_options: { include_usage: true },
      messages: [{ role: "user", content: "stream me" }],
    });
    let text = "";
    let usage;
    for await (const c of stream) {
      text += c.choices[0]?.delta?.content ?? "";
      if (c.usage) usage = c.usage;
    }
    assert.equal(text, 'Hello from gemini (gemini-2.5-flash): you said "stream me"');
    assert.ok(usage.total_tokens > 0);
    const up = last("google");
    assert.equal(up.method, "streamGenerateContent");
    assert.equal(up.search, "?alt=sse");
  });

  test("Claude on Vertex, chat not streamed and streamed (openai SDK)", async () => {
    const r = await openai().chat.completions.create({
      model: "claude",
      max_tokens: 64,
      messages: [
        { role: "system", content: "Be brief." },
        { role: "user", content: "Hello Claude" },
      ],
    });
    assert.equal(r.choices[0].message.content, 'Hello from anthropic (claude-sonnet-4-5@20250929): you said "Hello Claude"');
    let up = last("anthropic");
    assert.deepEqual([up.project, up.region, up.model, up.method], ["edge-proj", "us-east5", "claude-sonnet-4-5@20250929", "rawPredict"]);
    assert.equal(up.json.anthropic_version, "vertex-2023-10-16");
    assert.ok(!("model" in up.json));
    assert.equal(up.json.system, "Be brief.");
    assert.equal(up.json.max_tokens, 64);
    assert.ok(!("x-api-key" in up.headers) && !("anthropic-version" in up.headers));
    assert.match(up.headers.authorization, /^Bearer ya29\.fake-/);

    const stream = await openai().chat.completions.create({ model: "claude", stream: true, messages: [{ role: "user", content: "stream Claude" }] });
    let text = "";
    let finish;
    for await (const c of stream) {
      text += c.choices[0]?.delta?.content ?? "";
      finish = c.choices[0]?.finish_reason ?? finish;
    }
    assert.equal(text, 'Hello from anthropic (claude-sonnet-4-5@20250929): you said "stream Claude"');
    assert.equal(finish, "stop");
    up = last("anthropic");
    assert.equal(up.method, "streamRawPredict");
    assert.equal(up.json.stream, true);
  });

  const weatherTool = {
    type: "function",
    function: { name: "get_weather", description: "Weather of a city", parameters: { type: "object", properties: { city: { type: "string" } }, required: ["city"] } },
  };
  for (const model of ["vertex/gemini-tools", "vertex/claude-tools@20250929"]) {
    test(`tools over two turns, streamed and not (openai SDK, ${model})`, async () => {
      const messages = [{ role: "user", content: "Weather in Paris?" }];
      const r = await openai().chat.completions.create({ model, messages, tools: [weatherTool] });
      const call = r.choices[0].message.tool_calls[0];
      assert.equal(r.choices[0].finish_reason, "tool_calls");
      assert.equal(call.function.name, "get_weather");
      assert.deepEqual(JSON.parse(call.function.arguments), { city: "Paris" });
      // Streamed: the same call, arguments adding up.
      const stream = openai().chat.completions.stream({ model, messages, tools: [weatherTool] });
      const final = await stream.finalChatCompletion();
      const sc = final.choices[0].message.tool_calls[0];
      assert.equal(sc.function.name, "get_weather");
      assert.deepEqual(JSON.parse(sc.function.arguments), { city: "Paris" });
      // Second turn: the result reaches the provider, which answers.
      const r2 = await openai().chat.completions.create({
        model,
        tools: [weatherTool],
        messages: [...messages, r.choices[0].message, { role: "tool", tool_call_id: call.id, content: '{"temp": 21}' }],
      });
      assert.equal(r2.choices[0].message.content, "called: get_weather");
    });
  }

  test("Anthropic SDK messages.stream: Claude on Vertex passes the body through", async () => {
    const client = new Anthropic({ baseURL: gw.at("/ai"), apiKey: "unused", maxRetries: 0, timeout: 20_000 });
    const stream = client.messages.stream(
      {
        model: "claude",
        max_tokens: 100,
        system: [{ type: "text", text: "Be brief.", cache_control: { type: "ephemeral" } }],
        messages: [{ role: "user", content: [{ type: "text", text: "Hi from the SDK", cache_control: { type: "ephemeral" } }] }],
      },
      { headers: { "anthropic-beta": "prompt-caching-2024-07-31" } },
    );
    const events = [];
    stream.on("streamEvent", (e) => events.push(e.type));
    const msg = await stream.finalMessage();
    assert.equal(msg.content[0].text, 'Hello from anthropic (claude-sonnet-4-5@20250929): you said "Hi from the SDK"');
    assert.equal(msg.stop_reason, "end_turn");
    assert.ok(msg.usage.output_tokens > 0);
    assert.equal(events[0], "message_start");
    assert.equal(events.at(-1), "message_stop");
    const up = last("anthropic");
    assert.equal(up.method, "streamRawPredict");
    // The client's body as it came: cache_control kept, only model out and anthropic_version in.
    assert.deepEqual(up.json, {
      anthropic_version: "vertex-2023-10-16",
      max_tokens: 100,
      stream: true,
      system: [{ type: "text", text: "Be brief.", cache_control: { type: "ephemeral" } }],
      messages: [{ role: "user", content: [{ type: "text", text: "Hi from the SDK", cache_control: { type: "ephemeral" } }] }],
    });
    assert.equal(up.headers["anthropic-beta"], "prompt-caching-2024-07-31");
  });

  test("Anthropic SDK messages.create with tools: Claude on Vertex over two turns", async () => {
    const client = new Anthropic({ baseURL: gw.at("/ai"), apiKey: "unused", maxRetries: 0, timeout: 20_000 });
    const tools = [{ name: "get_weather", description: "Weather of a city", input_schema: weatherTool.function.parameters }];
    const messages = [{ role: "user", content: "Weather in Paris?" }];
    const first = await client.messages.create({ model: "vertex/claude-tools@20250929", max_tokens: 100, tools, messages });
    assert.equal(first.stop_reason, "tool_use");
    const use = first.content.find((b) => b.type === "tool_use");
    assert.deepEqual([use.name, use.input], ["get_weather", { city: "Paris" }]);
    assert.equal(last("anthropic").method, "rawPredict");
    const second = await client.messages.create({
      model: "vertex/claude-tools@20250929",
      max_tokens: 100,
      tools,
      messages: [...messages, { role: "assistant", content: first.content }, { role: "user", content: [{ type: "tool_result", tool_use_id: use.id, content: "21 C" }] }],
    });
    assert.equal(second.content[0].text, "called: get_weather");
  });

  for (const [model, provider] of [["claude", "anthropic"], ["gemini", "gemini"]]) {
    test(`openai SDK responses.create and responses.stream: ${model} on Vertex`, async () => {
      const r = await openai().responses.create({ model, input: "Hello responses", store: false });
      assert.equal(r.status, "completed");
      assert.match(r.output_text, new RegExp(`^Hello from ${provider} \\(.*\\): you said "Hello responses"$`));
      assert.ok(r.usage.total_tokens > 0);
      const stream = openai().responses.stream({ model, input: "Stream responses" });
      const types = [];
      for await (const e of stream) types.push(e.type);
      const final = await stream.finalResponse();
      // The SDK sets no output_text on a stream's final response: read its message item.
      const text = final.output.filter((o) => o.type === "message").flatMap((o) => o.content).map((c) => c.text).join("");
      assert.match(text, /you said "Stream responses"$/);
      assert.equal(types[0], "response.created");
      assert.equal(types.at(-1), "response.completed");
    });
  }

  test("Anthropic SDK messages.stream: Gemini on Vertex, translated", async () => {
    const client = new Anthropic({ baseURL: gw.at("/ai"), apiKey: "unused", maxRetries: 0, timeout: 20_000 });
    const msg = await client.messages.stream({ model: "gemini", max_tokens: 100, messages: [{ role: "user", content: "Hi Gemini" }] }).finalMessage();
    assert.equal(msg.content[0].text, 'Hello from gemini (gemini-2.5-flash): you said "Hi Gemini"');
    assert.equal(last("google").method, "streamGenerateContent");
  });

  test("count_tokens: exact from Claude and Gemini on Vertex", async () => {
    const client = new Anthropic({ baseURL: gw.at("/ai"), apiKey: "unused", maxRetries: 0, timeout: 20_000 });
    for (const [model, publisher] of [["claude", "anthropic"], ["gemini", "google"]]) {
      const { data, response } = await client.messages
        .countTokens({ model, system: "Be brief.", messages: [{ role: "user", content: "one two three four" }] })
        .withResponse();
      assert.equal(response.headers.get("x-edgegate-token-count"), "exact");
      // The fakes count words: Anthropic's + 3, Gemini's + 2.
      assert.equal(data.input_tokens, publisher === "anthropic" ? 9 : 8, model);
      const up = last(publisher);
      if (publisher === "anthropic") {
        assert.deepEqual([up.model, up.method], ["count-tokens", "rawPredict"]);
        assert.deepEqual(up.json, { model: "claude-sonnet-4-5@20250929", system: "Be brief.", messages: [{ role: "user", content: "one two three four" }] });
      } else {
        assert.deepEqual([up.model, up.method], ["gemini-2.5-flash", "countTokens"]);
        assert.deepEqual(Object.keys(up.json).sort(), ["contents", "systemInstruction"]);
      }
    }
  });

  test("publisher and project options", async () => {
    const r = await openai().chat.completions.create({ model: "forced/my-tuned-model", messages: [{ role: "user", content: "x" }] });
    assert.equal(r.choices[0].message.content, 'Hello from anthropic (my-tuned-model): you said "x"');
    const up = last("anthropic");
    assert.deepEqual([up.project, up.region], ["other-proj", "europe-west1"]);
  });

  test("one token for many requests of one isolate", async () => {
    const before = fake.tokensFor(main.json.client_email).length;
    assert.equal(before, 1, "the earlier tests used one token");
    for (let i = 0; i < 10; i++) {
      await openai().chat.completions.create({ model: i % 2 ? "gemini" : "claude", messages: [{ role: "user", content: `n${i}` }] });
    }
    assert.equal(fake.tokensFor(main.json.client_email).length, 1);
  });

  test("20 concurrent first requests: one token request", async () => {
    const results = await Promise.all(
      Array.from({ length: 20 }, (_, i) =>
        openai().chat.completions.create({ model: `burst/gemini-2.5-flash-${i}`, messages: [{ role: "user", content: `c${i}` }] }),
      ),
    );
    results.forEach((r, i) => assert.equal(r.choices[0].message.content, `Hello from gemini (gemini-2.5-flash-${i}): you said "c${i}"`));
    const tokens = fake.tokensFor(concurrent.json.client_email);
    assert.equal(tokens.length, 1);
    const used = new Set(fake.requests.filter((r) => r.model.startsWith("gemini-2.5-flash-")).map((r) => r.token));
    assert.deepEqual([...used], [tokens[0].token]);
  });

  test("a token is refreshed before it expires, and fetched again once expired", async () => {
    const ask = () => openai().chat.completions.create({ model: "short/gemini-2.5-flash", messages: [{ role: "user", content: "s" }] });
    await ask();
    await ask();
    assert.equal(fake.tokensFor(short.json.client_email).length, 1);
    // Half its 2-second lifetime gone: this request still uses it, and one refresh starts.
    await sleep(1100);
    await ask();
    await waitFor(() => fake.tokensFor(short.json.client_email).length === 2, { what: "the background refresh" });
    const [t1, t2] = fake.tokensFor(short.json.client_email).map((t) => t.token);
    await ask();
    assert.equal(fake.requests.at(-1).token, t2);
    assert.notEqual(t1, t2);
    // Long past expiry: fetched before the request goes.
    await sleep(2100);
    await ask();
    const tokens = fake.tokensFor(short.json.client_email);
    assert.equal(tokens.length, 3);
    assert.equal(fake.requests.at(-1).token, tokens[2].token);
    assert.ok(!fake.requests.filter((r) => r.model === "gemini-2.5-flash" && r.token !== null).some((r) => r.refused));
  });

  test("token endpoint down: the valid token goes on being used, then a clear 502, then recovery", async () => {
    const email = flaky.json.client_email;
    const ask = () => openai().chat.completions.create({ model: "flaky/gemini-2.5-flash", messages: [{ role: "user", content: "f" }] });
    const failed = () => fake.tokenRequests.filter((t) => t.iss === email && !t.ok).length;
    await ask();
    await sleep(1100);
    fake.setDown(email, true);
    // Past half its life: answered with the token still valid, the background refresh fails...
    await ask();
    await waitFor(() => failed() === 1, { what: "the failed refresh" });
    // ...and is not tried again by every request (10 s back-off) while the token is valid.
    await ask();
    await ask();
    assert.equal(failed(), 1);
    const line = await waitFor(() => gw.logs.find((l) => l.json?.event === "vertex_token_failed" && l.json.provider === "flaky"));
    assert.equal(line.json.error, "provider flaky: no access token from the service account (the token endpoint answered HTTP 503, internal_failure)");
    // Expired: the request needs a new token and cannot get one.
    await sleep(1000);
    await assert.rejects(ask(), (e) => e.status === 502 && /answered HTTP 503, internal_failure/.test(e.message));
    fake.setDown(email, false);
    assert.match((await ask()).choices[0].message.content, /^Hello from gemini/);
    assert.equal(fake.tokensFor(email).length, 2);
  });

  test("a token the provider refuses is forgotten", async () => {
    const ask = () => openai().chat.completions.create({ model: "refused/gemini-2.5-flash", messages: [{ role: "user", content: "r" }] });
    await ask();
    fake.revokeAll();
    await assert.rejects(ask(), (e) => e.status === 502 && /rejected the gateway's credentials/.test(e.message));
    const r = await ask();
    assert.match(r.choices[0].message.content, /^Hello from gemini/);
    assert.equal(fake.tokensFor(refused.json.client_email).length, 2);
    // The other accounts' tokens were revoked too: fetched again on their next request.
    await openai().chat.completions.create({ model: "gemini", messages: [{ role: "user", content: "again" }] }).catch(() => {});
    const r2 = await openai().chat.completions.create({ model: "gemini", messages: [{ role: "user", content: "again" }] });
    assert.match(r2.choices[0].message.content, /^Hello from gemini/);
  });

  test("token endpoint refusal: a clear 502, no key material, fallback to the next target", async () => {
    const res = await fetch(gw.at("/ai/v1/chat/completions"), {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ model: "bad/gemini-2.5-flash", messages: [{ role: "user", content: "x" }] }),
    });
    const text = await res.text();
    assert.equal(res.status, 502);
    const body = JSON.parse(text);
    assert.equal(body.error.code, "upstream_auth_failed");
    assert.equal(body.error.message, "provider bad: no access token from the service account (the token endpoint answered HTTP 400, invalid_grant)");
    assertNoKey(text, [bad], "the error");
    assert.ok(fake.tokenRequests.some((t) => t.iss === bad.json.client_email && t.error === "Invalid JWT Signature."));
    // In an alias, the next target answers.
    const r = await openai().chat.completions.create({ model: "bad-then-gemini", messages: [{ role: "user", content: "fb" }] });
    assert.equal(r.choices[0].message.content, 'Hello from gemini (gemini-2.5-flash): you said "fb"');
  });

  test("token endpoint unreachable: a clear 502", async () => {
    const res = await fetch(gw.at("/ai/v1/chat/completions"), {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ model: "unreachable/gemini-2.5-flash", messages: [{ role: "user", content: "x" }] }),
    });
    const text = await res.text();
    assert.equal(res.status, 502);
    const body = JSON.parse(text);
    assert.equal(body.error.code, "upstream_auth_failed");
    assert.equal(
      body.error.message,
      "provider unreachable: no access token from the service account (the token endpoint could not be reached or did not answer within 10000 ms)",
    );
    assertNoKey(text, [other], "the error");
  });

  test("a secret that is not a key file: 502 naming the secret, never its text", async () => {
    for (const [provider, why] of [
      ["notjson", "is not a service-account key file (not JSON)"],
      ["nokey", "is not a service-account key file (private_key is missing)"],
    ]) {
      const secret = { notjson: "VERTEX_NOT_JSON", nokey: "VERTEX_NO_KEY" }[provider];
      const res = await fetch(gw.at("/ai/v1/chat/completions"), {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify({ model: `${provider}/gemini-2.5-flash`, messages: [{ role: "user", content: "x" }] }),
      });
      const text = await res.text();
      assert.equal(res.status, 502);
      const body = JSON.parse(text);
      assert.equal(body.error.code, "gateway_misconfigured");
      assert.equal(body.error.message, `provider ${provider}: the Worker secret ${secret} ${why}`);
      assertNoKey(text, [main], "the error");
      const line = await waitFor(() => gw.logs.find((l) => l.json?.event === "vertex_key_invalid" && l.json.provider === provider));
      assert.equal(line.json.secret, secret);
    }
  });

  test("log lines: a vertex_token line per token, no token and no key in any log", async () => {
    const lines = gw.logs.filter((l) => l.json?.event === "vertex_token");
    assert.ok(lines.length >= 5);
    assert.ok(lines.every((l) => typeof l.json.expires_in === "number" && l.json.provider));
    const burst = lines.filter((l) => l.json.provider === "burst");
    assert.equal(burst.length, 1);
    assert.equal(burst[0].json.waiters, 19);
    const all = gw.logs.map((l) => l.message).join("\n");
    for (const t of fake.tokenRequests.filter((t) => t.ok)) assert.ok(!all.includes(t.token), "an access token in the log");
  });
});
