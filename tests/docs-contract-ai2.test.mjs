// docs/ai.md "Errors", "Streaming" and the Messages / Responses error paragraphs, checked the way the
// official OpenAI and Anthropic SDKs read them: the error body of every endpoint for every status the docs
// list (401, 403, 404, 405, 413, 502, 504), the `type` strings the SDKs turn into exception classes,
// `x-should-retry`, errors that come after a stream started (the SDKs raise them), and a provider that
// answers something that is not its format (an HTML 5xx page of a proxy, a 200 that is not JSON).
// Besides the fake providers, a scripted OpenAI-format and Anthropic-format provider (`up`, `ant`) on
// 127.0.0.1 answers by the model name.
import { describe, test, before, after } from "node:test";
import assert from "node:assert/strict";
import { request, startOrigin } from "./support/harness.mjs";
import { startAi, aiConfig } from "./ai-helpers.mjs";
import Anthropic from "@anthropic-ai/sdk";
import OpenAI from "openai";

const JSON_CT = { "content-type": "application/json" };
const ANT = { "anthropic-version": "2023-06-01" };
const hi = (model, extra = {}) => ({ model, messages: [{ role: "user", content: "hi there" }], ...extra });
const HTML = "<html><head><title>502 Bad Gateway</title></head><body>" + "<p>upstream trouble</p>".repeat(40) + "</body></html>";

function sse(text) {
  return text
    .split("\n\n")
    .filter((b) => b.trim() !== "")
    .map((block) => {
      const e = {};
      for (const line of block.split("\n")) {
        if (line.startsWith("event: ")) e.event = line.slice(7);
        else if (line.startsWith("data: ")) e.data = line.slice(6) === "[DONE]" ? "[DONE]" : JSON.parse(line.slice(6));
      }
      return e;
    });
}

function openAiError(res, status, { type, code } = {}) {
  assert.equal(res.status, status, res.text);
  assert.match(res.headers["content-type"], /^application\/json/);
  const body = res.json();
  assert.deepEqual(Object.keys(body), ["error"], res.text);
  assert.deepEqual(Object.keys(body.error).sort(), ["code", "message", "param", "type"], res.text);
  assert.equal(typeof body.error.message, "string");
  if (type) assert.equal(body.error.type, type, res.text);
  if (code !== undefined) assert.equal(body.error.code, code, res.text);
  assert.ok(res.headers["x-request-id"], "x-request-id");
  return body.error;
}

function anthropicError(res, status, type) {
  assert.equal(res.status, status, res.text);
  assert.match(res.headers["content-type"], /^application\/json/);
  const body = res.json();
  assert.equal(body.type, "error", res.text);
  assert.equal(body.error.type, type, res.text);
  assert.equal(typeof body.error.message, "string");
  assert.ok(res.headers["request-id"], "request-id");
  assert.equal(res.headers["request-id"], res.headers["x-request-id"]);
  // As Anthropic's API: the request id in the body too.
  assert.equal(body.request_id, res.headers["request-id"]);
  assert.deepEqual(Object.keys(body).sort(), ["error", "request_id", "type"]);
  return body.error;
}

/** A chat.completion.chunk of the scripted provider. */
const chunk = (model, delta, finish_reason = null) => ({
  id: "chatcmpl-up",
  object: "chat.completion.chunk",
  created: 1,
  model,
  choices: [{ index: 0, delta, finish_reason }],
});

/** The scripted provider: OpenAI format under /v1, Anthropic format under /v1/messages, by model name. */
async function scripted(req, res, rec) {
  const j = JSON.parse(rec.body.toString() || "{}");
  const m = String(j.model ?? "");
  const json = (status, v, h = {}) => {
    res.writeHead(status, { ...JSON_CT, ...h });
    res.end(JSON.stringify(v));
  };
  if (m.includes("html502")) {
    res.writeHead(502, { "content-type": "text/html" });
    return res.end(HTML);
  }
  if (m.includes("text200")) {
    res.writeHead(200, { "content-type": "text/plain" });
    return res.end("hello, not json");
  }
  if (m.includes("e503")) return json(503, { error: { message: "down for a while", type: "server_error", param: null, code: null } });
  if (m.includes("e400")) {
    return json(400, { error: { message: "temperature too high", type: "invalid_request_error", param: "temperature", code: "invalid_value" } });
  }
  if (m.includes("ant529")) return json(529, { type: "error", error: { type: "overloaded_error", message: "Overloaded" } });
  if (m.includes("midstream")) {
    // Two words, then OpenAI's in-stream error object.
    res.writeHead(200, { "content-type": "text/event-stream" });
    res.write(`data: ${JSON.stringify(chunk(m, { role: "assistant", content: "Hello " }))}\n\n`);
    res.write(`data: ${JSON.stringify(chunk(m, { content: "there " }))}\n\n`);
    res.write(`data: ${JSON.stringify({ error: { message: "The server had an error mid-stream", type: "server_error", param: null, code: null } })}\n\n`);
    return res.end();
  }
  if (m.includes("antmid")) {
    // Anthropic: message_start, a text block begun, then its `error` event (as Anthropic sends an overload).
    res.writeHead(200, { "content-type": "text/event-stream" });
    const ev = (event, data) => res.write(`event: ${event}\ndata: ${JSON.stringify({ type: event, ...data })}\n\n`);
    ev("message_start", {
      message: { id: "msg_up", type: "message", role: "assistant", model: m, content: [], stop_reason: null, stop_sequence: null, usage: { input_tokens: 3, output_tokens: 1 } },
    });
    ev("content_block_start", { index: 0, content_block: { type: "text", text: "" } });
    ev("content_block_delta", { index: 0, delta: { type: "text_delta", text: "Hello " } });
    ev("error", { error: { type: "overloaded_error", message: "Overloaded" } });
    return res.end();
  }
  return json(200, {
    id: "chatcmpl-up",
    object: "chat.completion",
    created: 1,
    model: m,
    choices: [{ index: 0, message: { role: "assistant", content: "ok" }, finish_reason: "stop" }],
    usage: { prompt_tokens: 1, completion_tokens: 1, total_tokens: 2 },
  });
}

describe("docs/ai.md errors as the SDKs see them", () => {
  let fake, gw, up;
  const post = (path, body, headers = {}) =>
    request(gw.at(path), {
      method: "POST",
      headers: { ...JSON_CT, ...headers },
      body: typeof body === "string" ? body : JSON.stringify(body),
    });

  before(async () => {
    up = await startOrigin(scripted);
    ({ fake, gw } = await startAi({
      config: (f) => {
        const c = aiConfig(f);
        const proxy = c.plugins.find((p) => p.name === "ai-proxy");
        proxy.config.providers.up = { kind: "openai", base_url: `${up.url}/v1`, key_secret: "OAI_KEY" };
        proxy.config.providers.ant = { kind: "anthropic", base_url: up.url, key_secret: "ANTHROPIC_KEY" };
        proxy.config.models["html-then-ok"] = { targets: ["up/html502", "oai/gpt-after-html"] };
        // /keyed: key-auth; /denied: ip-restriction refusing 127.0.0.1 (403).
        for (const name of ["keyed", "denied"]) {
          c.routes.push({ name, service: "unused", paths: [`/${name}`] });
          c.plugins.push({ ...proxy, route: name });
        }
        c.plugins.push({ name: "key-auth", route: "keyed", config: {} });
        c.plugins.push({ name: "ip-restriction", route: "denied", config: { deny: ["127.0.0.0/8", "::1"] } });
        return c;
      },
    }));
  });
  after(async () => {
    await gw?.dispose();
    await fake?.close();
    await up?.close();
  });

  // --- The gateway's own refusals, every endpoint -------------------------------------------------------

  test("401 from key-auth: OpenAI's shape on chat, embeddings, responses, models; Anthropic's on messages and count_tokens", async () => {
    for (const [method, path, body] of [
      ["POST", "/keyed/v1/chat/completions", hi("fast")],
      ["POST", "/keyed/v1/embeddings", { model: "oai/e", input: "a" }],
      ["POST", "/keyed/v1/responses", { model: "fast", input: "hi" }],
      ["GET", "/keyed/v1/models"],
      ["GET", "/keyed/v1/models/fast"],
    ]) {
      const r = await request(gw.at(path), { method, headers: JSON_CT, body: body && JSON.stringify(body) });
      openAiError(r, 401, { type: "authentication_error" });
      assert.ok(r.headers["www-authenticate"], path);
    }
    for (const path of ["/keyed/v1/messages", "/keyed/v1/messages/count_tokens"]) {
      anthropicError(await post(path, { ...hi("fast"), max_tokens: 5 }, ANT), 401, "authentication_error");
    }
    const oai = new OpenAI({ baseURL: gw.at("/keyed/v1"), apiKey: "wrong", maxRetries: 0 });
    await assert.rejects(oai.models.list(), OpenAI.AuthenticationError);
    await assert.rejects(oai.embeddings.create({ model: "oai/e", input: "a" }), OpenAI.AuthenticationError);
    await assert.rejects(oai.responses.create({ model: "fast", input: "hi" }), OpenAI.AuthenticationError);
    const ant = new Anthropic({ baseURL: gw.at("/keyed"), apiKey: "wrong", maxRetries: 0 });
    await assert.rejects(ant.messages.countTokens(hi("fast")), Anthropic.AuthenticationError);
  });

  test("403 from an access plugin: permission_error in both shapes (the SDKs' PermissionDeniedError)", async () => {
    openAiError(await post("/denied/v1/chat/completions", hi("fast")), 403, { type: "permission_error" });
    const m = await post("/denied/v1/messages", { ...hi("fast"), max_tokens: 5 }, ANT);
    anthropicError(m, 403, "permission_error");
    const ant = new Anthropic({ baseURL: gw.at("/denied"), apiKey: "k", maxRetries: 0 });
    await assert.rejects(ant.messages.create({ ...hi("fast"), max_tokens: 5 }), Anthropic.PermissionDeniedError);
    const oai = new OpenAI({ baseURL: gw.at("/denied/v1"), apiKey: "k", maxRetries: 0 });
    await assert.rejects(oai.chat.completions.create(hi("fast")), OpenAI.PermissionDeniedError);
  });

  test("405 with Allow on every endpoint, request-id on the Messages ones", async () => {
    for (const [method, path, allow] of [
      ["GET", "/ai/v1/embeddings", "POST"],
      ["GET", "/ai/v1/responses", "POST"],
      ["DELETE", "/ai/v1/models", "GET"],
      ["PUT", "/ai/v1/models/fast", "GET"],
    ]) {
      const r = await request(gw.at(path), { method });
      openAiError(r, 405, { type: "invalid_request_error", code: "method_not_allowed" });
      assert.equal(r.headers.allow, allow, path);
    }
    const c = await request(gw.at("/ai/v1/messages/count_tokens"), { headers: ANT });
    anthropicError(c, 405, "invalid_request_error");
    assert.equal(c.headers.allow, "POST");
  });

  test("unknown model: 404 before any stream starts (JSON, not SSE), the SDKs' NotFoundError", async () => {
    const c = await post("/ai/v1/chat/completions", hi("no-such", { stream: true }));
    const e = openAiError(c, 404, { type: "invalid_request_error", code: "model_not_found" });
    assert.equal(e.param, "model");
    openAiError(await post("/ai/v1/responses", { model: "no-such", input: "hi", stream: true }), 404, { code: "model_not_found" });
    openAiError(await post("/ai/v1/embeddings", { model: "no-such", input: "a" }), 404, { code: "model_not_found" });
    anthropicError(await post("/ai/v1/messages", { ...hi("no-such"), max_tokens: 5, stream: true }, ANT), 404, "not_found_error");
    anthropicError(await post("/ai/v1/messages/count_tokens", hi("no-such"), ANT), 404, "not_found_error");
    const oai = new OpenAI({ baseURL: gw.at("/ai/v1"), apiKey: "k", maxRetries: 0 });
    await assert.rejects(oai.chat.completions.create(hi("no-such", { stream: true })), OpenAI.NotFoundError);
    await assert.rejects(oai.models.retrieve("no-such"), OpenAI.NotFoundError);
    const ant = new Anthropic({ baseURL: gw.at("/ai"), apiKey: "k", maxRetries: 0 });
    await assert.rejects(ant.messages.stream({ ...hi("no-such"), max_tokens: 5 }).finalMessage(), Anthropic.NotFoundError);
  });

  test("malformed JSON bodies: 400 invalid_request_error on every POST endpoint (the SDKs' BadRequestError)", async () => {
    for (const path of ["/ai/v1/chat/completions", "/ai/v1/embeddings", "/ai/v1/responses", "/ai/templates/summarize"]) {
      for (const body of ["", "{", "null"]) openAiError(await post(path, body), 400, { type: "invalid_request_error" });
    }
    for (const path of ["/ai/v1/messages", "/ai/v1/messages/count_tokens"]) {
      for (const body of ["", "{", "null", "[]"]) anthropicError(await post(path, body, ANT), 400, "invalid_request_error");
    }
  });

  test("413 over 10 MiB on every POST endpoint: OpenAI's shape, Anthropic's request_too_large on count_tokens", async () => {
    const big = Buffer.from(JSON.stringify({ ...hi("fast"), max_tokens: 5, input: "x", pad: "x".repeat(10 * 1024 * 1024 + 10) }));
    // Chunked (no content-length): the gateway reads the body, then refuses it.
    const send = (path, headers = {}) =>
      request(gw.at(path), {
        method: "POST",
        headers: { ...JSON_CT, ...headers },
        body: (async function* () {
          for (let i = 0; i < big.length; i += 1 << 20) yield big.subarray(i, i + (1 << 20));
        })(),
      });
    for (const path of ["/ai/v1/embeddings", "/ai/v1/responses", "/ai/templates/summarize"]) {
      openAiError(await send(path), 413, { type: "invalid_request_error" });
    }
    anthropicError(await send("/ai/v1/messages/count_tokens", ANT), 413, "request_too_large");
  });

  // --- A provider's failures ----------------------------------------------------------------------------

  test("a provider's HTML 5xx page: 502 in JSON, message cut to 300 characters; retryable, so the next target answers", async () => {
    const c = await post("/ai/v1/chat/completions", hi("up/html502"));
    const e = openAiError(c, 502, { type: "upstream_error" });
    assert.ok(e.message.length <= 300, e.message.length);
    assert.ok(e.message.startsWith("<html>"));
    assert.equal(c.headers["x-should-retry"], undefined, "retryable: the SDKs may retry");
    openAiError(await post("/ai/v1/responses", { model: "up/html502", input: "hi" }), 502, { type: "upstream_error" });
    openAiError(await post("/ai/v1/embeddings", { model: "up/html502", input: "a" }), 502, { type: "upstream_error" });
    anthropicError(await post("/ai/v1/messages", { ...hi("up/html502"), max_tokens: 5 }, ANT), 502, "api_error");
    const ok = await post("/ai/v1/chat/completions", hi("html-then-ok"));
    assert.equal(ok.status, 200, ok.text);
    assert.equal(ok.headers["x-edgegate-ai-attempts"], "2");
    assert.equal(ok.headers["x-edgegate-ai-model"], "gpt-after-html");
  });

  test("a provider's 200 that is not its format: 502 bad_upstream_response, x-should-retry: false", async () => {
    const c = await post("/ai/v1/chat/completions", hi("up/text200"));
    openAiError(c, 502, { type: "upstream_error", code: "bad_upstream_response" });
    assert.equal(c.headers["x-should-retry"], "false");
    anthropicError(await post("/ai/v1/messages", { ...hi("up/text200"), max_tokens: 5 }, ANT), 502, "api_error");
  });

  test("a provider's 5xx: 502 upstream_error with its message and code; the SDKs retry it (no x-should-retry)", async () => {
    const before = up.requests.length;
    const oai = new OpenAI({ baseURL: gw.at("/ai/v1"), apiKey: "k", maxRetries: 1 });
    await assert.rejects(oai.chat.completions.create(hi("up/e503")), (err) => {
      assert.ok(err instanceof OpenAI.InternalServerError);
      assert.equal(err.status, 502);
      assert.equal(err.type, "upstream_error");
      assert.equal(err.code, "server_error");
      assert.match(err.message, /down for a while/);
      return true;
    });
    assert.equal(up.requests.length, before + 2, "one SDK retry");
    const m = await post("/ai/v1/messages", { ...hi("up/e503"), max_tokens: 5, stream: true }, ANT);
    const e = anthropicError(m, 502, "api_error");
    assert.equal(e.message, "down for a while");
  });

  test("an Anthropic provider's 529 overloaded_error: Messages clients get 529 overloaded_error (the SDK's OverloadedError)", async () => {
    const m = await post("/ai/v1/messages", { ...hi("ant/ant529"), max_tokens: 5 }, ANT);
    anthropicError(m, 529, "overloaded_error");
    assert.equal(m.headers["x-should-retry"], undefined, "retryable");
    const ant = new Anthropic({ baseURL: gw.at("/ai"), apiKey: "k", maxRetries: 0 });
    await assert.rejects(ant.messages.create({ ...hi("ant/ant529"), max_tokens: 5 }), Anthropic.OverloadedError);
    // The fake Anthropic provider's 529 likewise, for a stream too (refused before it starts).
    anthropicError(await post("/ai/v1/messages", { ...hi("claude/m-fail500"), max_tokens: 5, stream: true }, ANT), 529, "overloaded_error");
    const c = openAiError(await post("/ai/v1/chat/completions", hi("ant/ant529")), 502, { type: "upstream_error" });
    assert.equal(c.code, "overloaded_error");
  });

  test("a provider's 4xx: same status, invalid_request_error with the provider's param and code", async () => {
    for (const [path, body] of [
      ["/ai/v1/chat/completions", hi("up/e400")],
      ["/ai/v1/responses", { model: "up/e400", input: "hi" }],
      ["/ai/v1/embeddings", { model: "up/e400", input: "a" }],
    ]) {
      const e = openAiError(await post(path, body), 400, { type: "invalid_request_error", code: "invalid_value" });
      assert.equal(e.param, "temperature");
      assert.equal(e.message, "temperature too high");
    }
    const e = anthropicError(await post("/ai/v1/messages", { ...hi("up/e400"), max_tokens: 5 }, ANT), 400, "invalid_request_error");
    assert.equal(e.message, "temperature too high");
    const ant = new Anthropic({ baseURL: gw.at("/ai"), apiKey: "k", maxRetries: 0 });
    await assert.rejects(ant.messages.create({ ...hi("up/e400"), max_tokens: 5 }), Anthropic.BadRequestError);
  });

  test("no first byte in time: 504 (OpenAI upstream_error / upstream_timeout; Anthropic timeout_error)", async () => {
    openAiError(await post("/ai/v1/chat/completions", hi("claude/m-stall")), 504, { type: "upstream_error", code: "upstream_timeout" });
    anthropicError(await post("/ai/v1/messages", { ...hi("gem/m-silent"), max_tokens: 5 }, ANT), 504, "timeout_error");
    openAiError(await post("/ai/v1/responses", { model: "claude/m-stall", input: "hi", stream: true }), 504, { code: "upstream_timeout" });
  });

  // --- Errors after a stream started --------------------------------------------------------------------

  test("chat stream: a provider's in-stream error reaches the client as data: {error}, then [DONE]; the OpenAI SDK raises it", async () => {
    for (const model of ["up/midstream", "ant/antmid"]) {
      const r = await post("/ai/v1/chat/completions", hi(model, { stream: true }));
      assert.equal(r.status, 200, r.text);
      assert.equal(r.headers["content-type"], "text/event-stream; charset=utf-8");
      assert.equal(r.headers["cache-control"], "no-cache");
      const ev = sse(r.text);
      assert.equal(ev.at(-1).data, "[DONE]", model);
      const err = ev.at(-2).data.error;
      assert.equal(typeof err.message, "string", r.text);
      assert.ok(ev.slice(0, -2).every((e) => e.data.object === "chat.completion.chunk"), r.text);
    }
    const oai = new OpenAI({ baseURL: gw.at("/ai/v1"), apiKey: "k", maxRetries: 0 });
    for (const model of ["up/midstream", "ant/antmid"]) {
      const seen = [];
      await assert.rejects(
        (async () => {
          for await (const c of await oai.chat.completions.create(hi(model, { stream: true }))) seen.push(c);
        })(),
        (err) => {
          assert.ok(err instanceof OpenAI.APIError, String(err));
          assert.match(err.message, /mid-stream|Overloaded/);
          return true;
        },
      );
      assert.ok(seen.length >= 1, "the chunks before the error were delivered");
    }
  });

  test("messages stream: an error after message_start is an `event: error` with Anthropic's error type; the SDK raises it", async () => {
    for (const [model, type] of [
      ["ant/antmid", "overloaded_error"],
      ["up/midstream", "api_error"],
      ["oai/m-slow-cut", "api_error"],
    ]) {
      const r = await post("/ai/v1/messages", { ...hi(model), max_tokens: 20, stream: true }, ANT);
      assert.equal(r.status, 200, r.text);
      assert.match(r.headers["content-type"], /^text\/event-stream/);
      assert.equal(r.headers["cache-control"], "no-cache");
      const ev = sse(r.text);
      assert.equal(ev[0].event, "message_start");
      const last = ev.at(-1);
      assert.equal(last.event, "error", r.text);
      assert.equal(last.data.type, "error");
      assert.equal(last.data.error.type, type, r.text);
      assert.equal(typeof last.data.error.message, "string");
      assert.ok(!ev.some((e) => e.event === "message_stop"), "no message_stop after an error");
    }
    const ant = new Anthropic({ baseURL: gw.at("/ai"), apiKey: "k", maxRetries: 0 });
    for (const model of ["ant/antmid", "up/midstream"]) {
      const stream = ant.messages.stream({ ...hi(model), max_tokens: 20 });
      await assert.rejects(stream.finalMessage(), (err) => {
        assert.ok(err instanceof Anthropic.APIError, String(err));
        return true;
      });
    }
  });

  test("responses stream: a provider's in-stream error is an `error` event ending the stream; the OpenAI SDK raises it", async () => {
    const r = await post("/ai/v1/responses", { model: "up/midstream", input: "hi", stream: true });
    assert.equal(r.status, 200, r.text);
    assert.equal(r.headers["cache-control"], "no-cache");
    const ev = sse(r.text);
    const last = ev.at(-1);
    assert.equal(last.event, "error", r.text);
    assert.equal(last.data.type, "error");
    assert.equal(last.data.sequence_number, ev.length - 1);
    assert.equal(typeof last.data.message, "string");
    assert.ok(!ev.some((e) => e.event === "response.completed"));
    const oai = new OpenAI({ baseURL: gw.at("/ai/v1"), apiKey: "k", maxRetries: 0 });
    await assert.rejects(oai.responses.stream({ model: "up/midstream", input: "hi" }).finalResponse(), OpenAI.APIError);
  });

  // --- Streaming headers and usage ---------------------------------------------------------------------

  test("chat stream through an OpenAI-format provider: include_usage's usage chunk is last, before [DONE]; the SDK sees it", async () => {
    const oai = new OpenAI({ baseURL: gw.at("/ai/v1"), apiKey: "k", maxRetries: 0 });
    for (const model of ["fast", "smart", "flash"]) {
      const chunks = [];
      for await (const c of await oai.chat.completions.create(hi(model, { stream: true, stream_options: { include_usage: true } }))) chunks.push(c);
      const last = chunks.at(-1);
      assert.deepEqual(last.choices, [], model);
      assert.ok(last.usage.prompt_tokens > 0, model);
      assert.equal(chunks.filter((c) => c.usage).length, 1, model);
    }
  });
});
