// Fake LLM providers on 127.0.0.1 speaking the wire formats of OpenAI, Anthropic and Google Gemini, for the
// AI gateway tests and the dev demo. One HTTP server, one path prefix per provider:
//
//   OpenAI     base_url http://127.0.0.1:PORT/openai/v1   POST /chat/completions, POST /embeddings
//   Anthropic  base_url http://127.0.0.1:PORT/anthropic   POST /v1/messages
//   Gemini     base_url http://127.0.0.1:PORT/gemini      POST /v1beta/models/{m}:generateContent,
//                                                         :streamGenerateContent?alt=sse, :batchEmbedContents
//
// Answers are deterministic: `Hello from <provider> (<model>): you said "<last user text>"`, streamed one word
// per event. Behaviour is picked by words in the MODEL name, so a gateway config can mix them:
//   fail429  -> 429 in the provider's error format, with the provider's rate-limit timing: OpenAI
//               `retry-after: N`, `retry-after-ms: N*1000 - 250`, `x-ratelimit-*` (requests and tokens);
//               Anthropic `retry-after: N`
//               and `anthropic-ratelimit-*`; Gemini a RetryInfo `retryDelay: "Ns"` in the body. N is the
//               number after `ra` in the model name (`m-fail429-ra7`), 1 by default
//   flaky429 -> the first request for that model gets the fail429 answer, later ones a normal answer
//   fail500  -> 500 (Anthropic: 529 overloaded_error)
//   silent   -> accepts the request and never answers (no status line)
//   stall    -> sends the status and headers, then nothing
//   slow     -> streams with `slowDelayMs` (default 150 ms) between events
//   lag      -> streams, waiting `slowDelayMs` before the first event too (after the headers)
//   linger   -> streams, waiting `slowDelayMs` before the events that end the message too
//   cut      -> streams two words, then closes the connection without ending the message
//   tools    -> when the request declares tools, calls the first one no tool result in the conversation
//               answers yet, with arguments {"city": "Paris"}, else answers `called: <answered names in
//               order>`. Gemini: a functionCall without id (as Gemini does); Anthropic: a text block, then
//               a tool_use block (`toolu_fake_<n>`; streamed as input_json_delta fragments); OpenAI: a
//               tool call (`call_fake_<n>`; streamed as argument fragments)
// Anthropic also answers POST /v1/messages/count_tokens ({"input_tokens": N}: words + 3; 400 for fields
// that endpoint does not take, as Anthropic does), Gemini :countTokens ({"totalTokens": N}: words + 2).
// Keys: when `keys` is given ({openai, anthropic, gemini}), a request without the right key in that
// provider's own header (Authorization: Bearer / x-api-key / x-goog-api-key) gets the provider's 401/400.
// Every request is recorded in `requests` ({provider, method, url, headers, body, json, at}); a response
// whose connection closed before it was finished also gets `abandonedAt` (ms, when the gateway let go).
//
// CLI (dev demo): node tests/support/fake-providers.mjs [--port 9100]

import http from "node:http";
import crypto from "node:crypto";
import { fileURLToPath } from "node:url";

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/** Start the fake providers. Options: port (0 = any), keys, chunkDelayMs (default 0), slowDelayMs (150). */
export async function startFakeProviders(opts = {}) {
  const state = {
    keys: opts.keys ?? null,
    chunkDelayMs: opts.chunkDelayMs ?? 0,
    slowDelayMs: opts.slowDelayMs ?? 150,
    // Models that already had their one 429 (flaky429).
    flaky: new Set(),
  };
  const requests = [];
  const sockets = new Set();
  const server = http.createServer(async (req, res) => {
    const chunks = [];
    for await (const c of req) chunks.push(c);
    const body = Buffer.concat(chunks);
    let json = null;
    try {
      json = body.length ? JSON.parse(body.toString("utf8")) : null;
    } catch {
      json = null;
    }
    const url = new URL(req.url, "http://x");
    const provider = url.pathname.split("/")[1];
    const record = { provider, port: req.socket.remotePort, method: req.method, url: req.url, headers: { ...req.headers }, body, json, at: Date.now() };
    requests.push(record);
    res.on("close", () => {
      if (!res.writableFinished) record.abandonedAt = Date.now();
    });
    try {
      if (provider === "openai") await openai(req, res, url, json, state);
      else if (provider === "anthropic") await anthropic(req, res, url, json, state);
      else if (provider === "gemini") await gemini(req, res, url, json, state);
      else send(res, 404, { error: "unknown provider path" });
    } catch (e) {
      if (!res.headersSent) send(res, 500, { error: String(e && e.stack) });
      else res.destroy();
    }
  });
  server.on("connection", (s) => {
    sockets.add(s);
    s.on("close", () => sockets.delete(s));
  });
  await new Promise((resolve) => server.listen(opts.port ?? 0, "127.0.0.1", resolve));
  const { port } = server.address();
  const base = `http://127.0.0.1:${port}`;
  return {
    port,
    url: base,
    baseUrls: { openai: `${base}/openai/v1`, anthropic: `${base}/anthropic`, gemini: `${base}/gemini` },
    requests,
    options: state,
    /** Requests of one provider. */
    of(provider) {
      return requests.filter((r) => r.provider === provider);
    },
    async close() {
      for (const s of sockets) s.destroy();
      await new Promise((resolve) => server.close(resolve));
    },
  };
}

// ---------------------------------------------------------------------------------------------------------
// Shared helpers

function send(res, status, value, headers = {}) {
  const text = JSON.stringify(value);
  res.writeHead(status, { "content-type": "application/json", "content-length": Buffer.byteLength(text), ...headers });
  res.end(text);
}

function startSse(res) {
  res.writeHead(200, { "content-type": "text/event-stream", "cache-control": "no-cache", connection: "keep-alive" });
  res.flushHeaders();
}

const mode = (model, word) => String(model ?? "").includes(word);

/** Handles the modes that look the same for every provider. Returns true when the request is dealt with. */
async function common(res, model) {
  if (mode(model, "silent")) return true; // never answer; the socket is destroyed on close()
  if (mode(model, "stall")) {
    res.writeHead(200, { "content-type": "text/event-stream" });
    res.flushHeaders();
    return true;
  }
  return false;
}

function words(text) {
  return String(text).split(/(?<= )/);
}

function countTokens(text) {
  return String(text).split(/\s+/).filter(Boolean).length;
}

function reply(provider, model, lastUser) {
  return `Hello from ${provider} (${model}): you said "${lastUser}"`;
}

function delayFor(state, model) {
  return mode(model, "slow") ? state.slowDelayMs : state.chunkDelayMs;
}

/** Before the first event (`lag`) and before the events that end the message (`linger`). */
const lagFor = (state, model) => (mode(model, "lag") ? state.slowDelayMs : 0);
const lingerFor = (state, model) => (mode(model, "linger") ? state.slowDelayMs : 0);

/** Whether this request gets a 429: `fail429` always, `flaky429` the first time for its model. */
function limited(state, provider, model) {
  if (mode(model, "fail429")) return true;
  if (!mode(model, "flaky429")) return false;
  const key = `${provider}/${model}`;
  if (state.flaky.has(key)) return false;
  state.flaky.add(key);
  return true;
}

/** The wait a 429 asks for, in seconds: the number after `ra` in the model name, else 1. */
function retryAfterSecs(model) {
  const m = /ra(\d+)/.exec(String(model ?? ""));
  return m ? Number(m[1]) : 1;
}

function textOf(content) {
  if (content == null) return "";
  if (typeof content === "string") return content;
  if (Array.isArray(content)) return content.map((p) => (typeof p === "string" ? p : p.text ?? "")).join("");
  return "";
}

function vector(text, dims = 8) {
  const h = crypto.createHash("sha256").update(String(text)).digest();
  return Array.from({ length: dims }, (_, i) => Math.round(((h[i] / 255) * 2 - 1) * 1e4) / 1e4);
}

// ---------------------------------------------------------------------------------------------------------
// OpenAI

async function openai(req, res, url, json, state) {
  const err = (status, message, type, code, headers) =>
    send(res, status, { error: { message, type, param: null, code } }, headers);
  if (state.keys) {
    const auth = req.headers.authorization ?? "";
    if (auth !== `Bearer ${state.keys.openai}`) {
      return err(401, `Incorrect API key provided: ${auth.slice(7, 10)}***. `, "invalid_request_error", "invalid_api_key");
    }
  }
  const model = json?.model;
  if (await common(res, model)) return;
  if (limited(state, "openai", model)) {
    const n = retryAfterSecs(model);
    return err(429, "Rate limit reached for requests", "requests", "rate_limit_exceeded", {
      "retry-after": String(n),
      "retry-after-ms": String(n * 1000 - 250),
      "x-ratelimit-limit-requests": "60",
      "x-ratelimit-remaining-requests": "0",
      "x-ratelimit-reset-requests": `${n}s`,
      "x-ratelimit-limit-tokens": "150000",
      "x-ratelimit-remaining-tokens": "149000",
      "x-request-id": "req_fake429",
    });
  }
  if (mode(model, "fail500")) return err(500, "The server had an error while processing your request.", "server_error", null);
  if (url.pathname.endsWith("/embeddings")) {
    const inputs = Array.isArray(json.input) ? json.input : [json.input];
    const tokens = inputs.reduce((n, t) => n + countTokens(t), 0);
    return send(res, 200, {
      object: "list",
      data: inputs.map((t, index) => ({
        object: "embedding",
        index,
        embedding:
          json.encoding_format === "base64" ? Buffer.from(new Float32Array(vector(t)).buffer).toString("base64") : vector(t),
      })),
      model,
      usage: { prompt_tokens: tokens, total_tokens: tokens },
    });
  }
  if (!url.pathname.endsWith("/chat/completions")) return err(404, "Unknown endpoint", "invalid_request_error", null);
  const messages = json.messages ?? [];
  const lastUser = textOf([...messages].reverse().find((m) => m.role === "user")?.content);
  const prompt = messages.reduce((n, m) => n + countTokens(textOf(m.content)), 0);
  if (mode(model, "tools") && json.tools?.length) {
    const calls = new Map(messages.flatMap((m) => m.tool_calls ?? []).map((c) => [c.id, c.function?.name]));
    const answered = messages.filter((m) => m.role === "tool").map((m) => calls.get(m.tool_call_id));
    const name = json.tools.map((t) => t.function?.name).find((n) => !answered.includes(n));
    if (name) return openaiCall(res, json, model, name, `call_fake_${answered.length}`, prompt);
    json = { ...json, _answer: `called: ${answered.join(",")}` };
  }
  const text = json._answer ?? reply("openai", model, lastUser);
  const usage = { prompt_tokens: prompt, completion_tokens: countTokens(text), total_tokens: prompt + countTokens(text) };
  const id = "chatcmpl-fake";
  const created = 1700000000;
  if (!json.stream) {
    return send(res, 200, {
      id,
      object: "chat.completion",
      created,
      model,
      choices: [{ index: 0, message: { role: "assistant", content: text }, finish_reason: "stop", logprobs: null }],
      usage,
    });
  }
  startSse(res);
  const chunk = (delta, finish_reason = null) => ({
    id,
    object: "chat.completion.chunk",
    created,
    model,
    choices: [{ index: 0, delta, finish_reason }],
  });
  const delay = delayFor(state, model);
  if (lagFor(state, model)) await sleep(lagFor(state, model));
  res.write(`data: ${JSON.stringify(chunk({ role: "assistant", content: "" }))}\n\n`);
  const parts = words(text);
  for (let i = 0; i < parts.length; i++) {
    if (delay) await sleep(delay);
    res.write(`data: ${JSON.stringify(chunk({ content: parts[i] }))}\n\n`);
    if (mode(model, "cut") && i === 1) return res.destroy();
  }
  if (lingerFor(state, model)) await sleep(lingerFor(state, model));
  res.write(`data: ${JSON.stringify(chunk({}, "stop"))}\n\n`);
  if (json.stream_options?.include_usage) {
    res.write(`data: ${JSON.stringify({ ...chunk({}), choices: [], usage })}\n\n`);
  }
  res.end("data: [DONE]\n\n");
}

// ---------------------------------------------------------------------------------------------------------
// Anthropic Messages

async function anthropic(req, res, url, json, state) {
  const err = (status, type, message, headers) => send(res, status, { type: "error", error: { type, message } }, headers);
  if (!req.headers["anthropic-version"]) return err(400, "invalid_request_error", "anthropic-version header is required");
  if (state.keys && req.headers["x-api-key"] !== state.keys.anthropic) {
    return err(401, "authentication_error", "invalid x-api-key");
  }
  if (url.pathname.endsWith("/v1/messages/count_tokens")) {
    for (const k of ["max_tokens", "stream", "temperature", "metadata"]) {
      if (json && k in json) return err(400, "invalid_request_error", `${k}: Extra inputs are not permitted`);
    }
    const n = (json?.messages ?? []).reduce((n, m) => n + countTokens(textOf(m.content)), 0) + countTokens(textOf(json?.system));
    return send(res, 200, { input_tokens: n + 3 });
  }
  if (!url.pathname.endsWith("/v1/messages")) return err(404, "not_found_error", "Not found");
  const model = json?.model;
  if (await common(res, model)) return;
  if (limited(state, "anthropic", model)) {
    return err(429, "rate_limit_error", "Number of request tokens has exceeded your per-minute rate limit", {
      "retry-after": String(retryAfterSecs(model)),
      "anthropic-ratelimit-requests-limit": "50",
      "anthropic-ratelimit-requests-remaining": "0",
    });
  }
  if (mode(model, "fail500")) return err(529, "overloaded_error", "Overloaded");
  if (typeof json.max_tokens !== "number") return err(400, "invalid_request_error", "max_tokens: Field required");
  const messages = json.messages ?? [];
  const lastUser = textOf([...messages].reverse().find((m) => m.role === "user")?.content);
  const input = messages.reduce((n, m) => n + countTokens(textOf(m.content)), 0) + countTokens(textOf(json.system));
  let text = reply("anthropic", model, lastUser);
  if (mode(model, "tools") && json.tools?.length) {
    const blocks = messages.flatMap((m) => (Array.isArray(m.content) ? m.content : []));
    const calls = new Map(blocks.filter((b) => b.type === "tool_use").map((b) => [b.id, b.name]));
    const answered = blocks.filter((b) => b.type === "tool_result").map((b) => calls.get(b.tool_use_id));
    const name = json.tools.map((t) => t.name).find((n) => !answered.includes(n));
    if (name) return anthropicCall(res, json, model, name, `toolu_fake_${answered.length}`, input);
    text = `called: ${answered.join(",")}`;
  }
  const output = countTokens(text);
  const id = "msg_fake01";
  if (!json.stream) {
    return send(res, 200, {
      id,
      type: "message",
      role: "assistant",
      model,
      content: [{ type: "text", text }],
      stop_reason: "end_turn",
      stop_sequence: null,
      usage: { input_tokens: input, output_tokens: output },
    });
  }
  startSse(res);
  const ev = (event, data) => res.write(`event: ${event}\ndata: ${JSON.stringify({ type: event, ...data })}\n\n`);
  const delay = delayFor(state, model);
  if (lagFor(state, model)) await sleep(lagFor(state, model));
  ev("message_start", {
    message: {
      id,
      type: "message",
      role: "assistant",
      model,
      content: [],
      stop_reason: null,
      stop_sequence: null,
      usage: { input_tokens: input, output_tokens: 1 },
    },
  });
  ev("content_block_start", { index: 0, content_block: { type: "text", text: "" } });
  ev("ping", {});
  const parts = words(text);
  for (let i = 0; i < parts.length; i++) {
    if (delay) await sleep(delay);
    ev("content_block_delta", { index: 0, delta: { type: "text_delta", text: parts[i] } });
    if (mode(model, "cut") && i === 1) return res.destroy();
  }
  if (lingerFor(state, model)) await sleep(lingerFor(state, model));
  ev("content_block_stop", { index: 0 });
  ev("message_delta", { delta: { stop_reason: "end_turn", stop_sequence: null }, usage: { output_tokens: output } });
  ev("message_stop", {});
  res.end();
}

/** `tools` mode: a text block, then a tool_use block, whole or as Anthropic's event stream. */
function anthropicCall(res, json, model, name, id, input) {
  const usage = { input_tokens: input, output_tokens: 7 };
  if (!json.stream) {
    return send(res, 200, {
      id: "msg_fake_call",
      type: "message",
      role: "assistant",
      model,
      content: [
        { type: "text", text: "Let me check." },
        { type: "tool_use", id, name, input: { city: "Paris" } },
      ],
      stop_reason: "tool_use",
      stop_sequence: null,
      usage,
    });
  }
  startSse(res);
  const ev = (event, data) => res.write(`event: ${event}\ndata: ${JSON.stringify({ type: event, ...data })}\n\n`);
  ev("message_start", {
    message: { id: "msg_fake_call", type: "message", role: "assistant", model, content: [], stop_reason: null, stop_sequence: null, usage: { input_tokens: input, output_tokens: 1 } },
  });
  ev("content_block_start", { index: 0, content_block: { type: "text", text: "" } });
  ev("content_block_delta", { index: 0, delta: { type: "text_delta", text: "Let me check." } });
  ev("content_block_stop", { index: 0 });
  ev("content_block_start", { index: 1, content_block: { type: "tool_use", id, name, input: {} } });
  ev("content_block_delta", { index: 1, delta: { type: "input_json_delta", partial_json: "" } });
  ev("content_block_delta", { index: 1, delta: { type: "input_json_delta", partial_json: '{"city": ' } });
  ev("content_block_delta", { index: 1, delta: { type: "input_json_delta", partial_json: '"Paris"}' } });
  ev("content_block_stop", { index: 1 });
  ev("message_delta", { delta: { stop_reason: "tool_use", stop_sequence: null }, usage: { output_tokens: 7 } });
  ev("message_stop", {});
  res.end();
}

/** `tools` mode: one tool call, whole or as OpenAI chunks (id and name first, then argument pieces). */
function openaiCall(res, json, model, name, id, prompt) {
  const usage = { prompt_tokens: prompt, completion_tokens: 5, total_tokens: prompt + 5 };
  const call = { id, type: "function", function: { name, arguments: '{"city":"Paris"}' } };
  const base = { id: "chatcmpl-fake-call", created: 1700000000, model };
  if (!json.stream) {
    return send(res, 200, {
      ...base,
      object: "chat.completion",
      choices: [{ index: 0, message: { role: "assistant", content: null, tool_calls: [call] }, finish_reason: "tool_calls", logprobs: null }],
      usage,
    });
  }
  startSse(res);
  const chunk = (delta, finish_reason = null) =>
    res.write(`data: ${JSON.stringify({ ...base, object: "chat.completion.chunk", choices: [{ index: 0, delta, finish_reason }] })}\n\n`);
  chunk({ role: "assistant", content: null });
  chunk({ tool_calls: [{ index: 0, id, type: "function", function: { name, arguments: "" } }] });
  chunk({ tool_calls: [{ index: 0, function: { arguments: '{"city":' } }] });
  chunk({ tool_calls: [{ index: 0, function: { arguments: '"Paris"}' } }] });
  chunk({}, "tool_calls");
  if (json.stream_options?.include_usage) {
    res.write(`data: ${JSON.stringify({ ...base, object: "chat.completion.chunk", choices: [], usage })}\n\n`);
  }
  res.end("data: [DONE]\n\n");
}

// ---------------------------------------------------------------------------------------------------------
// Gemini (AI Studio)

async function gemini(req, res, url, json, state) {
  const err = (code, status, message, details, headers) =>
    send(res, code, { error: { code, message, status, ...(details ? { details } : {}) } }, headers);
  const key = req.headers["x-goog-api-key"] ?? url.searchParams.get("key");
  if (state.keys && key !== state.keys.gemini) {
    return err(400, "INVALID_ARGUMENT", "API key not valid. Please pass a valid API key.", [
      { "@type": "type.googleapis.com/google.rpc.ErrorInfo", reason: "API_KEY_INVALID", domain: "googleapis.com" },
    ]);
  }
  const m = /\/v1beta\/models\/([^/:]+):(\w+)$/.exec(url.pathname);
  if (!m) return err(404, "NOT_FOUND", "Not found");
  const model = decodeURIComponent(m[1]);
  const op = m[2];
  if (await common(res, model)) return;
  if (limited(state, "gemini", model)) {
    return err(429, "RESOURCE_EXHAUSTED", "Resource has been exhausted (e.g. check quota).", [
      { "@type": "type.googleapis.com/google.rpc.RetryInfo", retryDelay: `${retryAfterSecs(model)}s` },
    ]);
  }
  if (mode(model, "fail500")) return err(500, "INTERNAL", "An internal error has occurred.");
  if (op === "countTokens") {
    const r = json.generateContentRequest ?? json;
    if (r !== json && r.model !== `models/${model}`) return err(400, "INVALID_ARGUMENT", "generateContentRequest.model must name the model");
    const n = (r.contents ?? []).reduce((n, c) => n + countTokens(textOf(c.parts)), 0) + countTokens(textOf(r.systemInstruction?.parts));
    return send(res, 200, { totalTokens: n + 2 });
  }
  if (op === "batchEmbedContents") {
    return send(res, 200, {
      embeddings: (json.requests ?? []).map((r) => ({ values: vector(textOf(r.content?.parts)) })),
    });
  }
  if (op !== "generateContent" && op !== "streamGenerateContent") return err(404, "NOT_FOUND", `unknown method ${op}`);
  const contents = json.contents ?? [];
  const lastUser = textOf([...contents].reverse().find((c) => c.role === "user")?.parts);
  const prompt =
    contents.reduce((n, c) => n + countTokens(textOf(c.parts)), 0) + countTokens(textOf(json.systemInstruction?.parts));
  if (mode(model, "tools")) {
    const call = geminiToolTurn(json);
    if (call) return geminiCall(res, op, url, model, call, prompt);
  }
  const answered = mode(model, "tools") ? geminiAnswered(json) : null;
  const text = answered ? `called: ${answered.join(",")}` : reply("gemini", model, lastUser);
  const output = countTokens(text);
  const usageMetadata = { promptTokenCount: prompt, candidatesTokenCount: output, totalTokenCount: prompt + output };
  if (op === "generateContent") {
    return send(res, 200, {
      candidates: [{ content: { parts: [{ text }], role: "model" }, finishReason: "STOP", index: 0 }],
      usageMetadata,
      modelVersion: model,
      responseId: "fake-gemini-1",
    });
  }
  if (url.searchParams.get("alt") !== "sse") return err(400, "INVALID_ARGUMENT", "this fake only streams with alt=sse");
  startSse(res);
  const delay = delayFor(state, model);
  if (lagFor(state, model)) await sleep(lagFor(state, model));
  const parts = words(text);
  for (let i = 0; i < parts.length; i++) {
    if (delay) await sleep(delay);
    const last = i === parts.length - 1;
    if (last && lingerFor(state, model)) await sleep(lingerFor(state, model));
    const event = {
      candidates: [{ content: { parts: [{ text: parts[i] }], role: "model" }, index: 0, ...(last ? { finishReason: "STOP" } : {}) }],
      usageMetadata: last ? usageMetadata : { promptTokenCount: prompt, totalTokenCount: prompt },
      modelVersion: model,
      responseId: "fake-gemini-1",
    };
    res.write(`data: ${JSON.stringify(event)}\r\n\r\n`);
    if (mode(model, "cut") && i === 1) return res.destroy();
  }
  res.end();
}

/** The `functionResponse` names of a Gemini request, in order. */
function geminiAnswered(json) {
  return (json.contents ?? []).flatMap((c) => (c.parts ?? []).filter((p) => p.functionResponse).map((p) => p.functionResponse.name));
}

/** `tools` mode: the function to call now (the first declared one not answered yet), or null. */
function geminiToolTurn(json) {
  const declared = (json.tools ?? []).flatMap((t) => t.functionDeclarations ?? []).map((d) => d.name);
  const answered = geminiAnswered(json);
  return declared.find((name) => !answered.includes(name)) ?? null;
}

/** Answer with one function call, without an id (as Gemini does), whole or as an event stream. */
function geminiCall(res, op, url, model, name, prompt) {
  const answer = {
    candidates: [
      { content: { parts: [{ functionCall: { name, args: { city: "Paris" } } }], role: "model" }, finishReason: "STOP", index: 0 },
    ],
    usageMetadata: { promptTokenCount: prompt, candidatesTokenCount: 3, totalTokenCount: prompt + 3 },
    modelVersion: model,
    responseId: "fake-gemini-call",
  };
  if (op === "generateContent") return send(res, 200, answer);
  if (url.searchParams.get("alt") !== "sse") return send(res, 400, { error: { code: 400, message: "alt=sse only", status: "INVALID_ARGUMENT" } });
  startSse(res);
  res.end(`data: ${JSON.stringify(answer)}\r\n\r\n`);
}

// ---------------------------------------------------------------------------------------------------------
// CLI

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  const i = process.argv.indexOf("--port");
  const port = i > 0 ? Number(process.argv[i + 1]) : 9100;
  const fake = await startFakeProviders({ port, chunkDelayMs: Number(process.env.FAKE_CHUNK_DELAY_MS ?? 40) });
  console.log(`fake providers on ${fake.url}: ${JSON.stringify(fake.baseUrls)}`);
  const stop = async () => {
    await fake.close();
    process.exit(0);
  };
  process.on("SIGINT", stop);
  process.on("SIGTERM", stop);
}
