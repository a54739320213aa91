// docs/ai.md as the contract, checked on the wire as the official SDKs read it: error bodies and statuses
// per client format (OpenAI's `{"error": {message, type, param, code}}`, Anthropic's
// `{"type": "error", "error": {type, message}}`), request ids, `retry-after`, SSE framing of chat,
// Messages and Responses streams, models / embeddings / count_tokens shapes, and the refusals of bad
// bodies. One gateway and one set of fake providers for the whole file; each statement of the docs that
// no other tests/ai*.test.mjs asserts is asserted here.
import { describe, test, before, after } from "node:test";
import assert from "node:assert/strict";
import http from "node:http";
import { request } from "./support/harness.mjs";
import { startAi, aiConfig } from "./ai-helpers.mjs";
import Anthropic from "@anthropic-ai/sdk";
import OpenAI from "openai";

const JSON_CT = { "content-type": "application/json" };
const post = (gw, path, body, headers = {}) =>
  request(gw.at(path), {
    method: "POST",
    headers: { ...JSON_CT, ...headers },
    body: typeof body === "string" || Buffer.isBuffer(body) ? body : JSON.stringify(body),
  });
const hi = (model, extra = {}) => ({ model, messages: [{ role: "user", content: "hi there" }], ...extra });
const ANT = { "anthropic-version": "2023-06-01" };

/** SSE events of a body: [{event, data}] (data parsed as JSON unless `[DONE]`). */
function sse(text) {
  assert.ok(!text.includes("\r"), "SSE lines end in \\n");
  return text
    .split("\n\n")
    .filter((b) => b.trim() !== "")
    .map((block) => {
      const e = { event: undefined, data: undefined };
      for (const line of block.split("\n")) {
        if (line.startsWith(":")) continue;
        if (line.startsWith("event: ")) e.event = line.slice(7);
        else if (line.startsWith("data: ")) e.data = line.slice(6) === "[DONE]" ? "[DONE]" : JSON.parse(line.slice(6));
        else assert.fail(`unexpected SSE line ${JSON.stringify(line)}`);
      }
      return e;
    });
}

function openAiError(res, status, { type, code } = {}) {
  assert.equal(res.status, status, res.text);
  assert.match(res.headers["content-type"], /^application\/json/);
  const body = res.json();
  assert.deepEqual(Object.keys(body), ["error"], res.text);
  for (const k of ["message", "type", "param", "code"]) assert.ok(k in body.error, `${k} in ${res.text}`);
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
  assert.ok(res.headers["x-request-id"], "x-request-id");
  return body.error;
}

describe("docs/ai.md contract on the wire", () => {
  let fake, gw;
  before(async () => {
    ({ fake, gw } = await startAi({
      config: (f) => {
        // Besides `llm` on /ai: the same AI proxy behind key-auth (/keyed) and behind a request limit (/limited).
        const c = aiConfig(f);
        const proxy = c.plugins.find((p) => p.name === "ai-proxy");
        for (const name of ["keyed", "limited"]) {
          c.routes.push({ name, service: "unused", paths: [`/${name}`] });
          c.plugins.push({ ...proxy, route: name });
        }
        c.plugins.push({ name: "key-auth", route: "keyed", config: {} });
        c.plugins.push({ name: "rate-limiting", route: "limited", config: { minute: 1, limit_by: "route", policy: "local" } });
        return c;
      },
    }));
  });
  after(async () => {
    await gw?.dispose();
    await fake?.close();
  });

  // --- Errors, OpenAI format ------------------------------------------------------------------------

  test("chat: unknown model 404 model_not_found, non-JSON body 400, OpenAI's four error fields", async () => {
    openAiError(await post(gw, "/ai/v1/chat/completions", hi("no-such-alias")), 404, { code: "model_not_found" });
    openAiError(await post(gw, "/ai/v1/chat/completions", "this is not json"), 400, { type: "invalid_request_error" });
    openAiError(await post(gw, "/ai/v1/chat/completions", "[1,2]"), 400, { type: "invalid_request_error" });
    openAiError(await post(gw, "/ai/v1/responses", "not json"), 400, { type: "invalid_request_error" });
    openAiError(await post(gw, "/ai/v1/embeddings", "not json"), 400, { type: "invalid_request_error" });
    anthropicError(await post(gw, "/ai/v1/messages/count_tokens", "not json", ANT), 400, "invalid_request_error");
  });

  test("chat: no messages, or a function tool without a name: 400 naming the param (as OpenAI's API)", async () => {
    for (const [body, param] of [
      [{ model: "fast" }, "messages"],
      [{ model: "smart", messages: [] }, "messages"],
      [hi("smart", { tools: [{ type: "function" }] }), "tools[0].function.name"],
      [hi("fast", { tools: [{ type: "function", function: { name: "f" } }, { type: "function", function: {} }] }), "tools[1].function.name"],
    ]) {
      const e = openAiError(await post(gw, "/ai/v1/chat/completions", body), 400, { type: "invalid_request_error" });
      assert.equal(e.param, param);
    }
  });

  test("unknown AI path 404, wrong method 405 with Allow (OpenAI shape; Anthropic's under …/messages/)", async () => {
    openAiError(await request(gw.at("/ai/v1/nothing-here")), 404, { type: "invalid_request_error" });
    const m = await request(gw.at("/ai/v1/chat/completions"));
    openAiError(m, 405);
    assert.equal(m.headers.allow, "POST");
    const g = await post(gw, "/ai/v1/models", {});
    openAiError(g, 405);
    assert.equal(g.headers.allow, "GET");
    anthropicError(await post(gw, "/ai/v1/messages/batches", {}, ANT), 404, "not_found_error");
    const mm = await request(gw.at("/ai/v1/messages"), { headers: ANT });
    anthropicError(mm, 405, "invalid_request_error");
    assert.equal(mm.headers.allow, "POST");
  });

  test("bodies over 10 MiB: 413 (OpenAI shape on chat, request_too_large on messages)", async () => {
    // Chunked (no content-length): the gateway reads the body, then refuses it.
    const big = Buffer.from(JSON.stringify(hi("fast", { max_tokens: 5, pad: "x".repeat(10 * 1024 * 1024 + 10) })));
    const chunked = async function* () {
      for (let i = 0; i < big.length; i += 1 << 20) yield big.subarray(i, i + (1 << 20));
    };
    const send = (path, headers) => request(gw.at(path), { method: "POST", headers: { ...JSON_CT, ...headers }, body: chunked() });
    openAiError(await send("/ai/v1/chat/completions"), 413);
    anthropicError(await send("/ai/v1/messages", ANT), 413, "request_too_large");
    // A content-length over the limit is answered before the body is sent.
    const early = await new Promise((resolve, reject) => {
      const req = http.request(gw.at("/ai/v1/messages"), {
        method: "POST",
        headers: { ...JSON_CT, ...ANT, "content-length": String(big.length) },
      });
      req.on("response", (res) => {
        const parts = [];
        res.on("data", (c) => parts.push(c));
        res.on("end", () => {
          const text = Buffer.concat(parts).toString();
          resolve({ status: res.statusCode, headers: res.headers, text, json: () => JSON.parse(text) });
          req.destroy();
        });
      });
      req.on("error", reject);
      req.flushHeaders();
    });
    anthropicError(early, 413, "request_too_large");
    assert.equal(early.headers["request-id"], early.headers["x-request-id"]);
  });

  test("a provider's 429: rate_limit_error with retry-after, in each client's shape", async () => {
    const c = await post(gw, "/ai/v1/chat/completions", hi("oai/m-fail429-ra7"));
    openAiError(c, 429, { type: "rate_limit_error" });
    assert.equal(c.headers["retry-after"], "7");
    const m = await post(gw, "/ai/v1/messages", { ...hi("claude/m-fail429-ra7"), max_tokens: 10 }, ANT);
    anthropicError(m, 429, "rate_limit_error");
    assert.equal(m.headers["retry-after"], "7");
  });

  test("a provider refusing the gateway's key: 502 upstream_auth_failed, x-should-retry: false (the SDKs do not retry)", async () => {
    const before = fake.of("openai").length;
    const client = new OpenAI({ baseURL: gw.at("/ai/v1"), apiKey: "unused", maxRetries: 2 });
    await assert.rejects(client.chat.completions.create(hi("wrongkey/gpt-x")), (err) => {
      assert.equal(err.status, 502);
      assert.equal(err.code, "upstream_auth_failed");
      assert.equal(err.headers["x-should-retry"] ?? err.headers.get?.("x-should-retry"), "false");
      return true;
    });
    assert.equal(fake.of("openai").length, before + 1, "one attempt, no SDK retries");
    // A 429 is retryable: no such header.
    const r = await post(gw, "/ai/v1/chat/completions", hi("oai/m-fail429-ra1"));
    assert.equal(r.status, 429);
    assert.equal(r.headers["x-should-retry"], undefined);
  });

  test("the gateway's own errors in each client's shape: key-auth 401, rate-limit 429 with retry-after", async () => {
    openAiError(await post(gw, "/keyed/v1/chat/completions", hi("fast")), 401, { type: "authentication_error" });
    const c401 = await post(gw, "/keyed/v1/chat/completions", hi("fast"), { authorization: "Bearer nope" });
    openAiError(c401, 401, { type: "authentication_error", code: "invalid_credentials" });
    assert.ok(c401.headers["www-authenticate"]);
    const m401 = await post(gw, "/keyed/v1/messages", { ...hi("fast"), max_tokens: 5 }, { ...ANT, "x-api-key": "nope" });
    anthropicError(m401, 401, "authentication_error");
    // The refusal of a plugin that answers before the AI proxy carries request-id too on Messages paths.
    assert.equal(m401.headers["request-id"], m401.headers["x-request-id"]);
    assert.equal(c401.headers["request-id"], undefined);
    const client = new Anthropic({ baseURL: gw.at("/keyed"), apiKey: "nope", maxRetries: 0 });
    await assert.rejects(client.messages.create({ ...hi("fast"), max_tokens: 5 }), Anthropic.AuthenticationError);

    // One request a minute on the route: the second is refused (a third in case a minute began in between).
    let c429;
    for (let i = 0; i < 3 && c429?.status !== 429; i++) c429 = await post(gw, "/limited/v1/chat/completions", hi("fast"));
    openAiError(c429, 429, { type: "rate_limit_error" });
    assert.ok(Number(c429.headers["retry-after"]) > 0, "retry-after");
    const m429 = await post(gw, "/limited/v1/messages", { ...hi("fast"), max_tokens: 5 }, ANT);
    anthropicError(m429, 429, "rate_limit_error");
    assert.ok(Number(m429.headers["retry-after"]) > 0, "retry-after");
    assert.equal(m429.headers["request-id"], m429.headers["x-request-id"]);
    const r429 = await post(gw, "/limited/v1/responses", { model: "fast", input: "hi" });
    openAiError(r429, 429, { type: "rate_limit_error" });
  });

  // --- Errors, Anthropic format -----------------------------------------------------------------------

  test("messages: unknown model not_found_error 404, non-JSON invalid_request_error 400, bad version 400", async () => {
    anthropicError(await post(gw, "/ai/v1/messages", { ...hi("no-such-alias"), max_tokens: 5 }, ANT), 404, "not_found_error");
    anthropicError(await post(gw, "/ai/v1/messages", "{not json", ANT), 400, "invalid_request_error");
    const v = await post(gw, "/ai/v1/messages", { ...hi("smart"), max_tokens: 5 }, { "anthropic-version": "2020-01-01" });
    const e = anthropicError(v, 400, "invalid_request_error");
    assert.match(e.message, /2023-06-01/);
  });

  test("messages: max_tokens is required (as Anthropic's API), named in the error", async () => {
    for (const model of ["smart", "fast", "flash"]) {
      const r = await post(gw, "/ai/v1/messages", hi(model), ANT);
      const e = anthropicError(r, 400, "invalid_request_error");
      assert.match(e.message, /max_tokens/);
    }
  });

  test("model: Messages requires it (400 naming it); chat without one uses default_model", async () => {
    const { model, ...noModel } = { ...hi("x"), max_tokens: 5 };
    const e = anthropicError(await post(gw, "/ai/v1/messages", noModel, ANT), 400, "invalid_request_error");
    assert.match(e.message, /^model: /);
    const c = await post(gw, "/ai/v1/chat/completions", { messages: noModel.messages });
    assert.equal(c.status, 200, c.text);
    assert.equal(c.headers["x-edgegate-ai-model"], "gpt-fast");
  });

  test("Messages endpoints carry request-id (what the Anthropic SDKs read) as well as x-request-id", async () => {
    const ok = await post(gw, "/ai/v1/messages", { ...hi("fast"), max_tokens: 5 }, ANT);
    assert.equal(ok.status, 200);
    assert.equal(ok.headers["request-id"], ok.headers["x-request-id"]);
    const bad = await post(gw, "/ai/v1/messages", hi("fast"), ANT);
    assert.equal(bad.status, 400);
    assert.equal(bad.headers["request-id"], bad.headers["x-request-id"]);
    const client = new Anthropic({ baseURL: gw.at("/ai"), apiKey: "unused", maxRetries: 0 });
    const { data, response } = await client.messages.create({ ...hi("fast"), max_tokens: 5 }).withResponse();
    assert.equal(data._request_id, response.headers.get("x-request-id"));
    await assert.rejects(client.messages.create({ ...hi("no-such-alias"), max_tokens: 5 }), (err) => {
      assert.ok(err instanceof Anthropic.NotFoundError);
      assert.ok(err.requestID, "error.requestID");
      return true;
    });
  });

  test("a malformed Messages body names the JSON path", async () => {
    const r = await post(
      gw,
      "/ai/v1/messages",
      {
        model: "fast",
        max_tokens: 5,
        messages: [
          { role: "user", content: "a" },
          { role: "assistant", content: "b" },
          { role: "user", content: [{ type: "image" }] },
        ],
      },
      ANT,
    );
    const e = anthropicError(r, 400, "invalid_request_error");
    assert.match(e.message, /^messages\.2\.content\.0\.source: Field required/);
  });

  // --- Streaming --------------------------------------------------------------------------------------

  for (const [alias, fmt] of [
    ["fast", "openai"],
    ["smart", "anthropic"],
    ["flash", "gemini"],
  ]) {
    test(`chat stream (${fmt}): data-only events, [DONE] last; usage chunk only with include_usage, last with empty choices`, async () => {
      const plain = await post(gw, "/ai/v1/chat/completions", hi(alias, { stream: true }));
      assert.equal(plain.status, 200);
      assert.equal(plain.headers["content-type"], "text/event-stream; charset=utf-8");
      assert.equal(plain.headers["cache-control"], "no-cache");
      assert.equal(plain.headers["content-encoding"], "identity");
      assert.equal(plain.headers["x-accel-buffering"], "no");
      let ev = sse(plain.text);
      assert.ok(ev.every((e) => e.event === undefined && e.data !== undefined));
      assert.equal(ev.at(-1).data, "[DONE]");
      assert.equal(ev.filter((e) => e.data === "[DONE]").length, 1);
      let chunks = ev.slice(0, -1).map((e) => e.data);
      assert.ok(chunks.every((c) => c.object === "chat.completion.chunk" && c.choices.length > 0), plain.text);
      assert.ok(chunks.every((c) => !c.usage), "no usage without include_usage");
      assert.equal(chunks[0].choices[0].delta.role, "assistant");
      assert.equal(chunks.filter((c) => c.choices[0].finish_reason).length, 1);
      assert.equal(chunks.at(-1).choices[0].finish_reason, "stop");

      const withUsage = await post(gw, "/ai/v1/chat/completions", hi(alias, { stream: true, stream_options: { include_usage: true } }));
      ev = sse(withUsage.text);
      assert.equal(ev.at(-1).data, "[DONE]");
      chunks = ev.slice(0, -1).map((e) => e.data);
      const last = chunks.at(-1);
      assert.deepEqual(last.choices, []);
      assert.ok(last.usage.prompt_tokens > 0 && last.usage.completion_tokens > 0, JSON.stringify(last));
      assert.equal(last.usage.total_tokens, last.usage.prompt_tokens + last.usage.completion_tokens);
      assert.ok(chunks.slice(0, -1).every((c) => c.choices.length > 0 && !c.usage));
    });

    test(`messages stream (${fmt}): Anthropic's events, named, in order`, async () => {
      const r = await post(gw, "/ai/v1/messages", { ...hi(alias), max_tokens: 50, stream: true }, ANT);
      assert.equal(r.status, 200, r.text);
      assert.match(r.headers["content-type"], /^text\/event-stream/);
      const ev = sse(r.text).filter((e) => e.event !== "ping");
      for (const e of ev) assert.equal(e.event, e.data.type, "event name = data.type");
      const names = ev.map((e) => e.event);
      assert.equal(names[0], "message_start");
      assert.equal(names.at(-1), "message_stop");
      assert.equal(names.at(-2), "message_delta");
      assert.equal(names[1], "content_block_start");
      assert.ok(names.slice(2, -3).every((n) => n === "content_block_delta"), names.join());
      assert.equal(names.at(-3), "content_block_stop");
      const start = ev[0].data.message;
      assert.equal(start.type, "message");
      assert.equal(start.role, "assistant");
      assert.deepEqual(start.content, []);
      // Translated answers: msg_<request id>; an Anthropic provider's passes through unchanged.
      if (fmt === "anthropic") assert.match(start.id, /^msg_/);
      else assert.equal(start.id, `msg_${r.headers["x-request-id"]}`);
      assert.equal(start.stop_reason, null);
      assert.deepEqual(ev[1].data.content_block, { type: "text", text: "" });
      assert.equal(ev[1].data.index, 0);
      assert.equal(typeof start.usage.input_tokens, "number");
      const delta = ev.at(-2).data;
      assert.equal(delta.delta.stop_reason, "end_turn");
      assert.ok(delta.usage.output_tokens > 0);
      const text = ev.filter((e) => e.event === "content_block_delta").map((e) => e.data.delta.text).join("");
      assert.match(text, /you said "hi there"/);
    });

    test(`responses stream (${fmt}): sequence_number from 0 in order, event = type, created … completed`, async () => {
      const r = await post(gw, "/ai/v1/responses", { model: alias, input: "hi there", stream: true });
      assert.equal(r.status, 200, r.text);
      const ev = sse(r.text);
      ev.forEach((e, i) => {
        assert.equal(e.event, e.data.type);
        assert.equal(e.data.sequence_number, i);
      });
      const names = ev.map((e) => e.event);
      assert.deepEqual(names.slice(0, 4), [
        "response.created",
        "response.in_progress",
        "response.output_item.added",
        "response.content_part.added",
      ]);
      assert.deepEqual(names.slice(-4), [
        "response.output_text.done",
        "response.content_part.done",
        "response.output_item.done",
        "response.completed",
      ]);
      assert.ok(names.slice(4, -4).every((n) => n === "response.output_text.delta"));
      const done = ev.at(-1).data.response;
      assert.equal(done.status, "completed");
      assert.equal(done.object, "response");
      assert.match(done.id, /^resp_/);
      assert.ok(done.usage.input_tokens > 0 && done.usage.total_tokens === done.usage.input_tokens + done.usage.output_tokens);
      assert.equal(ev[0].data.response.status, "in_progress");
    });
  }

  test("a stream cut mid-way: chat error event then [DONE]; messages `event: error`; responses `error`", async () => {
    const c = sse((await post(gw, "/ai/v1/chat/completions", hi("claude/m-slow-cut", { stream: true }))).text);
    assert.equal(c.at(-1).data, "[DONE]");
    assert.equal(c.at(-2).data.error.code, "upstream_stream_truncated");
    const m = sse((await post(gw, "/ai/v1/messages", { ...hi("oai/m-slow-cut"), max_tokens: 20, stream: true }, ANT)).text);
    assert.equal(m.at(-1).event, "error");
    assert.equal(m.at(-1).data.type, "error");
    assert.equal(typeof m.at(-1).data.error.type, "string");
    assert.equal(typeof m.at(-1).data.error.message, "string");
    const rs = sse((await post(gw, "/ai/v1/responses", { model: "gem/m-slow-cut", input: "hi", stream: true })).text);
    const last = rs.at(-1);
    assert.equal(last.event, "error");
    assert.equal(last.data.type, "error");
    assert.equal(last.data.code, "upstream_stream_truncated");
    assert.equal(last.data.sequence_number, rs.length - 1);
    for (const k of ["message", "param"]) assert.ok(k in last.data, `${k} in the error event`);
    assert.equal(typeof last.data.error, "object");
  });

  // --- Shapes -----------------------------------------------------------------------------------------

  test("models: OpenAI list and model objects; Anthropic's with anthropic-version; 404 model_not_found", async () => {
    const list = await request(gw.at("/ai/v1/models"));
    assert.equal(list.status, 200);
    const l = list.json();
    assert.equal(l.object, "list");
    assert.ok(l.data.length > 0);
    for (const m of l.data) {
      assert.deepEqual(Object.keys(m).sort(), ["created", "id", "object", "owned_by"]);
      assert.equal(m.object, "model");
    }
    const ids = l.data.map((m) => m.id);
    // The route's aliases, then each provider/model they name.
    const firstProviderModel = ids.findIndex((id) => id.includes("/"));
    assert.ok(firstProviderModel > 0 && ids.slice(firstProviderModel).every((id) => id.includes("/")), ids.join());
    assert.ok(ids.includes("fast") && ids.includes("oai/gpt-fast"));
    const one = await request(gw.at("/ai/v1/models/oai%2Fgpt-fast"));
    assert.equal(one.status, 200, one.text);
    assert.deepEqual(Object.keys(one.json()).sort(), ["created", "id", "object", "owned_by"]);
    assert.equal(one.json().id, "oai/gpt-fast");
    const ant = await request(gw.at("/ai/v1/models/smart"), { headers: ANT });
    assert.equal(ant.status, 200);
    assert.equal(ant.json().type, "model");
    assert.equal(ant.json().id, "smart");
    assert.equal(typeof ant.json().display_name, "string");
    assert.ok(!Number.isNaN(Date.parse(ant.json().created_at)));
    openAiError(await request(gw.at("/ai/v1/models/nope")), 404, { code: "model_not_found" });
    // With anthropic-version, the list is Anthropic's page of model objects; the SDK pages through it.
    const al = await request(gw.at("/ai/v1/models"), { headers: ANT });
    assert.equal(al.status, 200);
    const page = al.json();
    assert.equal(page.has_more, false);
    assert.deepEqual(page.data.map((m) => m.id), ids);
    assert.equal(page.first_id, ids[0]);
    assert.equal(page.last_id, ids.at(-1));
    for (const m of page.data) assert.deepEqual(Object.keys(m).sort(), ["created_at", "display_name", "id", "type"]);
    const client = new Anthropic({ baseURL: gw.at("/ai"), apiKey: "unused", maxRetries: 0 });
    const seen = [];
    for await (const m of client.models.list()) seen.push(m.id);
    assert.deepEqual(seen, ids);
  });

  test("embeddings: OpenAI's list shape, base64 when asked", async () => {
    const r = await post(gw, "/ai/v1/embeddings", { model: "oai/text-embed", input: ["a", "bb"] });
    assert.equal(r.status, 200, r.text);
    const b = r.json();
    assert.equal(b.object, "list");
    assert.equal(b.data.length, 2);
    b.data.forEach((d, i) => {
      assert.equal(d.object, "embedding");
      assert.equal(d.index, i);
      assert.ok(Array.isArray(d.embedding));
    });
    assert.equal(typeof b.model, "string");
    assert.equal(typeof b.usage.prompt_tokens, "number");
    assert.equal(typeof b.usage.total_tokens, "number");
    for (const model of ["oai/text-embed", "gem/text-embedding-004"]) {
      const b64 = (await post(gw, "/ai/v1/embeddings", { model, input: "a", encoding_format: "base64" })).json();
      assert.equal(typeof b64.data[0].embedding, "string", JSON.stringify(b64));
    }
  });

  test("count_tokens: {input_tokens} and x-edgegate-token-count", async () => {
    const r = await post(gw, "/ai/v1/messages/count_tokens", hi("fast"), ANT);
    assert.equal(r.status, 200, r.text);
    assert.deepEqual(Object.keys(r.json()), ["input_tokens"]);
    assert.equal(r.headers["x-edgegate-token-count"], "estimate");
    // 4 characters a token over the text ("hi there": 2), 4 tokens a message.
    assert.equal(r.json().input_tokens, 6);
    assert.equal(r.headers["x-edgegate-ai-attempts"], "1");
    assert.equal(r.headers["request-id"], r.headers["x-request-id"]);
    const e = await post(gw, "/ai/v1/messages/count_tokens", hi("smart"), ANT);
    assert.equal(e.status, 200, e.text);
    assert.equal(e.headers["x-edgegate-token-count"], "exact");
  });

  test("non-streamed shapes: chat.completion, message (msg_<request id>), response (resp_<request id>)", async () => {
    const c = await post(gw, "/ai/v1/chat/completions", hi("fast"));
    assert.equal(c.json().object, "chat.completion");
    const m = await post(gw, "/ai/v1/messages", { ...hi("fast"), max_tokens: 20 }, ANT);
    assert.equal(m.status, 200, m.text);
    assert.equal(m.json().id, `msg_${m.headers["x-request-id"]}`);
    assert.equal(m.json().type, "message");
    assert.equal(m.json().stop_sequence, null);
    for (const k of ["input_tokens", "output_tokens", "cache_read_input_tokens"]) assert.equal(typeof m.json().usage[k], "number", k);
    const r = await post(gw, "/ai/v1/responses", { model: "fast", input: "hi", store: true });
    assert.equal(r.status, 200, r.text);
    assert.equal(r.json().id, `resp_${r.headers["x-request-id"]}`);
    assert.equal(r.json().store, false);
    assert.equal(r.json().object, "response");
    assert.equal(r.json().status, "completed");
    const u = r.json().usage;
    assert.equal(u.total_tokens, u.input_tokens + u.output_tokens);
    assert.equal(typeof u.input_tokens_details.cached_tokens, "number");
    assert.equal(typeof u.output_tokens_details.reasoning_tokens, "number");
    // Stateless: no GET …/responses/{id}.
    openAiError(await request(gw.at("/ai/v1/responses/resp_1")), 404);
    assert.equal(r.json().output_text === undefined || typeof r.json().output_text === "string", true);
  });

  test("responses: stateless refusals (400 stateless_gateway naming the param)", async () => {
    for (const [field, body] of [
      ["previous_response_id", { previous_response_id: "resp_1" }],
      ["conversation", { conversation: "conv_1" }],
      ["background", { background: true }],
      ["input", { input: [{ type: "item_reference", id: "msg_1" }] }],
    ]) {
      const e = openAiError(await post(gw, "/ai/v1/responses", { model: "fast", input: "hi", ...body }), 400, {
        type: "invalid_request_error",
        code: "stateless_gateway",
      });
      assert.ok(e.param.startsWith(field), e.param);
    }
    // Tools other than functions: 400.
    openAiError(await post(gw, "/ai/v1/responses", { model: "fast", input: "hi", tools: [{ type: "web_search" }] }), 400, {
      type: "invalid_request_error",
    });
  });

  test("unknown request fields are forwarded to OpenAI-format providers", async () => {
    const r = await post(gw, "/ai/v1/chat/completions", hi("fast", { brand_new_param: { x: 1 }, logprobs: true, n: 2 }));
    assert.equal(r.status, 200, r.text);
    const up = fake.of("openai").at(-1).json;
    assert.deepEqual(up.brand_new_param, { x: 1 });
    assert.equal(up.logprobs, true);
    assert.equal(up.n, 2);
  });
});
