// docs/ai.md, third audit: what the two earlier audits (docs-contract-ai, docs-contract-ai2) leave out, as
// the official SDKs use it: streamed tool calls through each translation (chat chunks from Anthropic's
// tool_use events, Messages tool_use blocks and Responses function_call items from OpenAI-format deltas
// split into pieces), usage and cached tokens in each client format's final event, Anthropic's
// stop_sequence passed through, request parameters (`n`, `seed`, `stop`, `logprobs`, `response_format`)
// forwarded or translated as the page says, and provider answers that are not their format inside a
// stream. A scripted OpenAI-format and Anthropic-format provider on 127.0.0.1 answers by the model name.
import { describe, test, before, after } from "node:test";
import assert from "node:assert/strict";
import { request, startOrigin } from "./support/harness.mjs";
import { startAi, aiConfig } from "./ai-helpers.mjs";
import Anthropic from "@anthropic-ai/sdk";
import OpenAI from "openai";

const JSON_CT = { "content-type": "application/json" };
const ANT = { "anthropic-version": "2023-06-01" };
const hi = (model, extra = {}) => ({ model, messages: [{ role: "user", content: "weather?" }], ...extra });
const TOOLS = [
  { type: "function", function: { name: "get_weather", parameters: { type: "object", properties: { city: { type: "string" } } } } },
  { type: "function", function: { name: "get_time", parameters: { type: "object", properties: { tz: { type: "string" } } } } },
];
const ANT_TOOLS = TOOLS.map((t) => ({ name: t.function.name, input_schema: t.function.parameters }));
const RESP_TOOLS = TOOLS.map((t) => ({ type: "function", name: t.function.name, parameters: t.function.parameters }));

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

const chunk = (model, delta, finish_reason = null) => ({
  id: "chatcmpl-up",
  object: "chat.completion.chunk",
  created: 1,
  model,
  choices: [{ index: 0, delta, finish_reason }],
});

// Two parallel calls, their arguments cut into pieces the way OpenAI streams them.
const REFUSAL = "I'm sorry, I cannot help with that.";
const ARGS_W = '{"city": "Paris"}';
const ARGS_T = '{"tz": "Europe/Paris"}';
function openAiToolStream(m) {
  return [
    chunk(m, { role: "assistant", content: null }),
    chunk(m, { tool_calls: [{ index: 0, id: "call_w", type: "function", function: { name: "get_weather", arguments: "" } }] }),
    chunk(m, { tool_calls: [{ index: 0, function: { arguments: '{"ci' } }] }),
    chunk(m, { tool_calls: [{ index: 0, function: { arguments: 'ty": "Par' } }] }),
    chunk(m, { tool_calls: [{ index: 0, function: { arguments: 'is"}' } }] }),
    chunk(m, { tool_calls: [{ index: 1, id: "call_t", type: "function", function: { name: "get_time", arguments: '{"tz": ' } }] }),
    chunk(m, { tool_calls: [{ index: 1, function: { arguments: '"Europe/Paris"}' } }] }),
    chunk(m, {}, "tool_calls"),
    { ...chunk(m, {}), choices: [], usage: { prompt_tokens: 50, completion_tokens: 20, total_tokens: 70, prompt_tokens_details: { cached_tokens: 30 } } },
  ];
}

// Anthropic: a text block, then two tool_use blocks with input_json_delta pieces.
function anthropicToolEvents(m) {
  return [
    ["message_start", { message: { id: "msg_up", type: "message", role: "assistant", model: m, content: [], stop_reason: null, stop_sequence: null, usage: { input_tokens: 12, cache_read_input_tokens: 8, output_tokens: 1 } } }],
    ["content_block_start", { index: 0, content_block: { type: "text", text: "" } }],
    ["ping", {}],
    ["content_block_delta", { index: 0, delta: { type: "text_delta", text: "Checking." } }],
    ["content_block_stop", { index: 0 }],
    ["content_block_start", { index: 1, content_block: { type: "tool_use", id: "toolu_w", name: "get_weather", input: {} } }],
    ["content_block_delta", { index: 1, delta: { type: "input_json_delta", partial_json: "" } }],
    ["content_block_delta", { index: 1, delta: { type: "input_json_delta", partial_json: '{"city": "Pa' } }],
    ["content_block_delta", { index: 1, delta: { type: "input_json_delta", partial_json: 'ris"}' } }],
    ["content_block_stop", { index: 1 }],
    ["content_block_start", { index: 2, content_block: { type: "tool_use", id: "toolu_t", name: "get_time", input: {} } }],
    ["content_block_delta", { index: 2, delta: { type: "input_json_delta", partial_json: '{"tz": "Europe/Paris"}' } }],
    ["content_block_stop", { index: 2 }],
    ["message_delta", { delta: { stop_reason: "tool_use", stop_sequence: null }, usage: { output_tokens: 33 } }],
    ["message_stop", {}],
  ];
}

function anthropicStopSeqEvents(m) {
  return [
    ["message_start", { message: { id: "msg_up", type: "message", role: "assistant", model: m, content: [], stop_reason: null, stop_sequence: null, usage: { input_tokens: 5, output_tokens: 1 } } }],
    ["content_block_start", { index: 0, content_block: { type: "text", text: "" } }],
    ["content_block_delta", { index: 0, delta: { type: "text_delta", text: "one two " } }],
    ["content_block_stop", { index: 0 }],
    ["message_delta", { delta: { stop_reason: "stop_sequence", stop_sequence: "END" }, usage: { output_tokens: 3 } }],
    ["message_stop", {}],
  ];
}

async function scripted(req, res, rec) {
  const j = JSON.parse(rec.body.toString() || "{}");
  const m = String(j.model ?? "");
  const json = (status, v, h = {}) => {
    res.writeHead(status, { ...JSON_CT, ...h });
    res.end(JSON.stringify(v));
  };
  const events = (list) => {
    res.writeHead(200, { "content-type": "text/event-stream" });
    for (const [event, data] of list) res.write(`event: ${event}\ndata: ${JSON.stringify({ type: event, ...data })}\n\n`);
    res.end();
  };
  const chunks = (list, tail = "data: [DONE]\n\n") => {
    res.writeHead(200, { "content-type": "text/event-stream" });
    for (const c of list) res.write(typeof c === "string" ? c : `data: ${JSON.stringify(c)}\n\n`);
    res.end(tail);
  };
  if (req.url.endsWith("/v1/messages")) {
    if (m.includes("anttools")) {
      if (j.stream) return events(anthropicToolEvents(m));
      return json(200, {
        id: "msg_up", type: "message", role: "assistant", model: m, stop_reason: "tool_use", stop_sequence: null,
        content: [
          { type: "text", text: "Checking." },
          { type: "tool_use", id: "toolu_w", name: "get_weather", input: { city: "Paris" } },
        ],
        usage: { input_tokens: 12, cache_read_input_tokens: 8, output_tokens: 33 },
      });
    }
    if (m.includes("antgarbage")) {
      res.writeHead(200, { "content-type": "text/event-stream" });
      const [ev, data] = anthropicStopSeqEvents(m)[0];
      res.write(`event: ${ev}\ndata: ${JSON.stringify({ type: ev, ...data })}\n\n`);
      return res.end("event: content_block_start\ndata: <html>reset</html>\n\n");
    }
    if (m.includes("stopseq")) {
      if (j.stream) return events(anthropicStopSeqEvents(m));
      return json(200, {
        id: "msg_up", type: "message", role: "assistant", model: m, stop_reason: "stop_sequence", stop_sequence: "END",
        content: [{ type: "text", text: "one two " }], usage: { input_tokens: 5, output_tokens: 3 },
      });
    }
    return json(200, {
      id: "msg_up", type: "message", role: "assistant", model: m, stop_reason: "end_turn", stop_sequence: null,
      content: [{ type: "text", text: "ok" }], usage: { input_tokens: 5, output_tokens: 1 },
    });
  }
  // OpenAI format.
  if (m.includes("tools2")) {
    if (j.stream) return chunks(openAiToolStream(m));
    return json(200, {
      id: "chatcmpl-up", object: "chat.completion", created: 1, model: m,
      choices: [{ index: 0, finish_reason: "tool_calls", message: { role: "assistant", content: null, tool_calls: [
        { id: "call_w", type: "function", function: { name: "get_weather", arguments: ARGS_W } },
        { id: "call_t", type: "function", function: { name: "get_time", arguments: ARGS_T } },
      ] } }],
      usage: { prompt_tokens: 50, completion_tokens: 20, total_tokens: 70, prompt_tokens_details: { cached_tokens: 30 } },
    });
  }
  if (m.includes("garbage")) {
    // A good chunk, then a data line that is not JSON (a proxy's message spliced into the stream).
    return chunks([chunk(m, { role: "assistant", content: "Hello " }), "data: <html>upstream reset</html>\n\n", chunk(m, { content: "world" }, "stop")]);
  }
  if (m.includes("refuse")) {
    // Structured outputs: the model refuses (`refusal` instead of `content`).
    if (j.stream) {
      return chunks([
        chunk(m, { role: "assistant", content: null, refusal: "" }),
        chunk(m, { refusal: "I'm sorry, " }),
        chunk(m, { refusal: "I cannot help with that." }),
        chunk(m, {}, "stop"),
        { ...chunk(m, {}), choices: [], usage: { prompt_tokens: 9, completion_tokens: 7, total_tokens: 16 } },
      ]);
    }
    return json(200, {
      id: "chatcmpl-up", object: "chat.completion", created: 1, model: m,
      choices: [{ index: 0, finish_reason: "stop", message: { role: "assistant", content: null, refusal: REFUSAL } }],
      usage: { prompt_tokens: 9, completion_tokens: 7, total_tokens: 16 },
    });
  }
  if (m.includes("json200err")) {
    // An OpenAI-compatible server reporting an error with a 200 (its code in the body).
    return json(200, { error: { message: "slow down", type: "rate_limit_error", code: 429 } });
  }
  if (m.includes("jsonbody")) {
    // Asked for a stream, answers one JSON completion (a server that ignores `stream`).
    return json(200, {
      id: "chatcmpl-up", object: "chat.completion", created: 1, model: m,
      choices: [{ index: 0, finish_reason: "stop", message: { role: "assistant", content: "not streamed" } }],
      usage: { prompt_tokens: 1, completion_tokens: 2, total_tokens: 3 },
    });
  }
  if (j.stream) {
    return chunks([
      chunk(m, { role: "assistant", content: "ok" }),
      chunk(m, {}, "stop"),
      { ...chunk(m, {}), choices: [], usage: { prompt_tokens: 4, completion_tokens: 1, total_tokens: 5 } },
    ]);
  }
  return json(200, {
    id: "chatcmpl-up", object: "chat.completion", created: 1, model: m,
    choices: [{ index: 0, message: { role: "assistant", content: "ok" }, finish_reason: "stop" }],
    usage: { prompt_tokens: 1, completion_tokens: 1, total_tokens: 2 },
  });
}

describe("docs/ai.md third audit: streamed tools, usage, parameters, malformed streams", () => {
  let fake, gw, up, oai, ant;
  const post = (path, body, headers = {}) =>
    request(gw.at(path), { method: "POST", headers: { ...JSON_CT, ...headers }, body: typeof body === "string" ? body : JSON.stringify(body) });
  const lastUp = () => JSON.parse(up.requests.at(-1).body.toString());

  before(async () => {
    up = await startOrigin(scripted);
    ({ fake, gw } = await startAi({
      config: (f) => {
        const c = aiConfig(f);
        const proxy = c.plugins.find((p) => p.name === "ai-proxy");
        proxy.config.providers.up = { kind: "openai", base_url: `${up.url}/v1`, key_secret: "OAI_KEY" };
        proxy.config.providers.ant = { kind: "anthropic", base_url: up.url, key_secret: "ANTHROPIC_KEY" };
        return c;
      },
    }));
    oai = new OpenAI({ baseURL: gw.at("/ai/v1"), apiKey: "k", maxRetries: 0 });
    ant = new Anthropic({ baseURL: gw.at("/ai"), apiKey: "k", maxRetries: 0 });
  });
  after(async () => {
    await gw?.dispose();
    await fake?.close();
    await up?.close();
  });

  // --- Streamed tool calls ------------------------------------------------------------------------------

  test("chat stream from Anthropic tool_use blocks: per call a first delta with index, id, type, name, then argument pieces", async () => {
    const r = await post("/ai/v1/chat/completions", hi("ant/anttools", { stream: true, tools: TOOLS }));
    assert.equal(r.status, 200, r.text);
    const ev = sse(r.text);
    assert.equal(ev.at(-1).data, "[DONE]");
    const chunks = ev.slice(0, -1).map((e) => e.data);
    assert.equal(chunks[0].choices[0].delta.role, "assistant");
    const calls = chunks.flatMap((c) => c.choices[0]?.delta.tool_calls ?? []);
    const firsts = calls.filter((c) => c.id);
    assert.deepEqual(
      firsts.map((c) => [c.index, c.id, c.type, c.function.name]),
      [
        [0, "toolu_w", "function", "get_weather"],
        [1, "toolu_t", "function", "get_time"],
      ],
    );
    for (const c of calls.filter((c) => !c.id)) {
      assert.deepEqual(Object.keys(c).sort(), ["function", "index"], JSON.stringify(c));
      assert.equal(c.function.name, undefined);
    }
    const args = (i) => calls.filter((c) => c.index === i).map((c) => c.function.arguments ?? "").join("");
    assert.deepEqual(JSON.parse(args(0)), { city: "Paris" });
    assert.deepEqual(JSON.parse(args(1)), { tz: "Europe/Paris" });
    assert.equal(chunks.map((c) => c.choices[0]?.finish_reason).filter(Boolean).join(), "tool_calls");
    assert.equal(chunks.map((c) => c.choices[0]?.delta.content ?? "").join(""), "Checking.");

    // The SDK's stream helper assembles the same message.
    const final = await oai.chat.completions.stream(hi("ant/anttools", { tools: TOOLS })).finalChatCompletion();
    const msg = final.choices[0].message;
    assert.equal(final.choices[0].finish_reason, "tool_calls");
    assert.equal(msg.content, "Checking.");
    assert.deepEqual(
      msg.tool_calls.map((c) => [c.id, c.function.name, JSON.parse(c.function.arguments)]),
      [
        ["toolu_w", "get_weather", { city: "Paris" }],
        ["toolu_t", "get_time", { tz: "Europe/Paris" }],
      ],
    );
  });

  test("chat stream include_usage from Anthropic: last chunk choices [] with prompt = input + cache reads, cached_tokens", async () => {
    const chunks = [];
    for await (const c of await oai.chat.completions.create(hi("ant/anttools", { stream: true, tools: TOOLS, stream_options: { include_usage: true } }))) chunks.push(c);
    const last = chunks.at(-1);
    assert.deepEqual(last.choices, []);
    assert.equal(last.usage.prompt_tokens, 20);
    assert.equal(last.usage.completion_tokens, 33);
    assert.equal(last.usage.total_tokens, 53);
    assert.equal(last.usage.prompt_tokens_details.cached_tokens, 8);
    assert.ok(chunks.slice(0, -1).every((c) => c.usage == null), "usage only in the last chunk");
  });

  test("messages stream from OpenAI-format tool deltas: tool_use blocks, input_json_delta pieces, usage with cache reads", async () => {
    const body = { ...hi("up/tools2"), max_tokens: 100, tools: ANT_TOOLS, stream: true };
    const r = await post("/ai/v1/messages", body, ANT);
    assert.equal(r.status, 200, r.text);
    const ev = sse(r.text);
    for (const e of ev) assert.equal(e.event, e.data.type, "event name = type");
    assert.deepEqual(
      ev.map((e) => e.event),
      [
        "message_start",
        "content_block_start", "content_block_delta", "content_block_delta", "content_block_delta", "content_block_stop",
        "content_block_start", "content_block_delta", "content_block_delta", "content_block_stop",
        "message_delta", "message_stop",
      ],
    );
    assert.deepEqual(ev[1].data, { type: "content_block_start", index: 0, content_block: { type: "tool_use", id: "call_w", name: "get_weather", input: {} } });
    assert.deepEqual(ev[6].data.content_block, { type: "tool_use", id: "call_t", name: "get_time", input: {} });
    assert.equal(ev[6].data.index, 1);
    const pieces = (i) => ev.filter((e) => e.event === "content_block_delta" && e.data.index === i).map((e) => {
      assert.equal(e.data.delta.type, "input_json_delta");
      return e.data.delta.partial_json;
    });
    assert.deepEqual(pieces(0), ['{"ci', 'ty": "Par', 'is"}']);
    assert.equal(pieces(1).join(""), ARGS_T);
    const md = ev.at(-2).data;
    assert.equal(md.delta.stop_reason, "tool_use");
    assert.equal(md.delta.stop_sequence, null);
    // usage: input_tokens = prompt - cached, cached as cache reads.
    assert.equal(md.usage.input_tokens, 20);
    assert.equal(md.usage.cache_read_input_tokens, 30);
    assert.equal(md.usage.output_tokens, 20);
    assert.deepEqual(ev[0].data.message.usage.output_tokens, 0, "message_start usage zero");

    const final = await ant.messages.stream({ ...body, stream: undefined }).finalMessage();
    assert.equal(final.stop_reason, "tool_use");
    assert.deepEqual(
      final.content.map((b) => [b.type, b.id, b.name, b.input]),
      [
        ["tool_use", "call_w", "get_weather", { city: "Paris" }],
        ["tool_use", "call_t", "get_time", { tz: "Europe/Paris" }],
      ],
    );
    assert.equal(final.usage.input_tokens, 20);
    assert.equal(final.usage.output_tokens, 20);
  });

  test("messages non-streamed from OpenAI-format tool calls: tool_use blocks, input parsed, cache reads split out", async () => {
    const msg = await ant.messages.create({ ...hi("up/tools2"), max_tokens: 100, tools: ANT_TOOLS });
    assert.equal(msg.stop_reason, "tool_use");
    assert.equal(msg.stop_sequence, null);
    assert.deepEqual(msg.content.map((b) => b.input), [{ city: "Paris" }, { tz: "Europe/Paris" }]);
    assert.deepEqual(msg.usage, { input_tokens: 20, cache_creation_input_tokens: 0, cache_read_input_tokens: 30, output_tokens: 20 });
  });

  test("responses stream from OpenAI-format tool deltas: function_call items in order, arguments adding up, usage in response.completed", async () => {
    const r = await post("/ai/v1/responses", { model: "up/tools2", input: "weather?", tools: RESP_TOOLS, stream: true });
    assert.equal(r.status, 200, r.text);
    const ev = sse(r.text);
    ev.forEach((e, i) => {
      assert.equal(e.event, e.data.type);
      assert.equal(e.data.sequence_number, i);
    });
    const types = ev.map((e) => e.event);
    assert.deepEqual(types, [
      "response.created", "response.in_progress",
      "response.output_item.added", "response.function_call_arguments.delta", "response.function_call_arguments.delta",
      "response.function_call_arguments.delta", "response.function_call_arguments.done", "response.output_item.done",
      "response.output_item.added", "response.function_call_arguments.delta", "response.function_call_arguments.delta",
      "response.function_call_arguments.done", "response.output_item.done",
      "response.completed",
    ]);
    const added = ev.filter((e) => e.event === "response.output_item.added").map((e) => e.data);
    assert.deepEqual(added.map((a) => [a.output_index, a.item.type, a.item.call_id, a.item.name, a.item.status]), [
      [0, "function_call", "call_w", "get_weather", "in_progress"],
      [1, "function_call", "call_t", "get_time", "in_progress"],
    ]);
    const dones = ev.filter((e) => e.event === "response.function_call_arguments.done").map((e) => e.data.arguments);
    assert.deepEqual(dones, [ARGS_W, ARGS_T]);
    const deltas = ev.filter((e) => e.event === "response.function_call_arguments.delta" && e.data.output_index === 0);
    assert.equal(deltas.map((e) => e.data.delta).join(""), ARGS_W);
    assert.equal(deltas[0].data.item_id, added[0].item.id);
    const done = ev.at(-1).data.response;
    assert.equal(done.status, "completed");
    assert.deepEqual(done.usage, {
      input_tokens: 50, input_tokens_details: { cached_tokens: 30 },
      output_tokens: 20, output_tokens_details: { reasoning_tokens: 0 }, total_tokens: 70,
    });
    assert.deepEqual(done.output.map((o) => [o.type, o.call_id, o.arguments, o.status]), [
      ["function_call", "call_w", ARGS_W, "completed"],
      ["function_call", "call_t", ARGS_T, "completed"],
    ]);

    // The SDK: the same from Anthropic's tool_use events, with a message item first.
    const final = await oai.responses.stream({ model: "ant/anttools", input: "weather?", tools: RESP_TOOLS }).finalResponse();
    assert.deepEqual(final.output.map((o) => o.type), ["message", "function_call", "function_call"]);
    assert.equal(final.output[0].content.map((c) => c.text).join(""), "Checking.");
    assert.deepEqual(JSON.parse(final.output[1].arguments), { city: "Paris" });
    assert.equal(final.output[2].call_id, "toolu_t");
    assert.equal(final.usage.input_tokens, 20);
    assert.equal(final.usage.input_tokens_details.cached_tokens, 8);
    assert.equal(final.usage.total_tokens, 53);
  });

  // --- An OpenAI-format provider's refusal ----------------------------------------------------------------

  test("a refusal (structured outputs) reaches Messages clients as text with stop_reason refusal, Responses clients as a refusal part", async () => {
    const schema = { type: "object", properties: { a: { type: "string" } } };
    // Messages, whole and streamed.
    const body = { ...hi("up/refuse"), max_tokens: 50 };
    const msg = await ant.messages.create(body);
    assert.deepEqual(msg.content, [{ type: "text", text: REFUSAL }]);
    assert.equal(msg.stop_reason, "refusal");
    const r = await post("/ai/v1/messages", { ...body, stream: true }, ANT);
    const ev = sse(r.text);
    assert.deepEqual(ev.map((e) => e.event), [
      "message_start", "content_block_start", "content_block_delta", "content_block_delta", "content_block_stop", "message_delta", "message_stop",
    ]);
    assert.equal(ev.at(-2).data.delta.stop_reason, "refusal");
    const final = await ant.messages.stream(body).finalMessage();
    assert.equal(final.content[0].text, REFUSAL);
    assert.equal(final.stop_reason, "refusal");
    // Responses, whole and streamed.
    const req = { model: "up/refuse", input: "hi", text: { format: { type: "json_schema", name: "x", schema, strict: true } } };
    const whole = await oai.responses.create(req);
    assert.deepEqual(whole.output.map((o) => [o.type, o.content]), [["message", [{ type: "refusal", refusal: REFUSAL }]]]);
    assert.equal(whole.status, "completed");
    const rr = await post("/ai/v1/responses", { ...req, stream: true });
    const rev = sse(rr.text);
    rev.forEach((e, i) => assert.equal(e.data.sequence_number, i));
    assert.deepEqual(rev.map((e) => e.event), [
      "response.created", "response.in_progress", "response.output_item.added", "response.content_part.added",
      "response.refusal.delta", "response.refusal.delta", "response.refusal.done", "response.content_part.done",
      "response.output_item.done", "response.completed",
    ]);
    assert.deepEqual(rev[3].data.part, { type: "refusal", refusal: "" });
    assert.equal(rev.filter((e) => e.event === "response.refusal.delta").map((e) => e.data.delta).join(""), REFUSAL);
    assert.equal(rev[6].data.refusal, REFUSAL);
    assert.deepEqual(rev.at(-1).data.response.output[0].content, [{ type: "refusal", refusal: REFUSAL }]);
    const fr = await oai.responses.stream(req).finalResponse();
    assert.deepEqual(fr.output[0].content.map((p) => [p.type, p.refusal]), [["refusal", REFUSAL]]);
    // Chat clients get the provider's chunks as they came.
    const c = await oai.chat.completions.create(hi("up/refuse"));
    assert.equal(c.choices[0].message.refusal, REFUSAL);
  });

  // --- Anthropic's stop_sequence -----------------------------------------------------------------------

  test("stop_sequence: an Anthropic provider's passes through to Messages clients; chat clients get finish_reason stop", async () => {
    const body = { ...hi("ant/stopseq"), max_tokens: 20, stop_sequences: ["END"] };
    const msg = await ant.messages.create(body);
    assert.equal(msg.stop_reason, "stop_sequence");
    assert.equal(msg.stop_sequence, "END");
    assert.deepEqual(lastUp().stop_sequences, ["END"]);
    const final = await ant.messages.stream(body).finalMessage();
    assert.equal(final.stop_reason, "stop_sequence");
    assert.equal(final.stop_sequence, "END");
    const c = await oai.chat.completions.create(hi("ant/stopseq", { stop: "END" }));
    assert.equal(c.choices[0].finish_reason, "stop");
    assert.deepEqual(lastUp().stop_sequences, ["END"]);
  });

  // --- Request parameters ------------------------------------------------------------------------------

  test("OpenAI-format providers get n, seed, stop, logprobs, top_logprobs, response_format as sent", async () => {
    const params = {
      n: 2, seed: 7, stop: ["\n\n"], logprobs: true, top_logprobs: 3,
      response_format: { type: "json_schema", json_schema: { name: "w", schema: { type: "object" }, strict: true } },
    };
    const r = await post("/ai/v1/chat/completions", hi("up/plain", params));
    assert.equal(r.status, 200, r.text);
    const sent = lastUp();
    for (const [k, v] of Object.entries(params)) assert.deepEqual(sent[k], v, k);
    assert.equal(sent.model, "plain");
  });

  test("Anthropic-format providers: stop becomes stop_sequences, response_format a system instruction; n, seed, logprobs are not sent", async () => {
    const r = await post("/ai/v1/chat/completions", hi("ant/plain", {
      n: 2, seed: 7, stop: "END", logprobs: true, top_logprobs: 2, frequency_penalty: 0.5,
      response_format: { type: "json_object" },
    }));
    assert.equal(r.status, 200, r.text);
    const body = r.json();
    assert.equal(body.choices.length, 1, "one choice");
    assert.equal(body.choices[0].logprobs ?? null, null);
    const sent = lastUp();
    assert.deepEqual(sent.stop_sequences, ["END"]);
    assert.match(sent.system, /JSON/);
    for (const k of ["n", "seed", "stop", "logprobs", "top_logprobs", "frequency_penalty", "response_format"]) {
      assert.ok(!(k in sent), `${k} not sent`);
    }
  });

  test("Gemini: n, seed, penalties, stop become generationConfig; logprobs, top_logprobs, logit_bias are not sent", async () => {
    const r = await post("/ai/v1/chat/completions", hi("flash", {
      n: 1, seed: 7, stop: ["END"], presence_penalty: 0.25, frequency_penalty: 0.5, logprobs: true, top_logprobs: 2, logit_bias: { 50256: -100 },
    }));
    assert.equal(r.status, 200, r.text);
    assert.equal(r.json().choices[0].logprobs ?? null, null);
    const sent = fake.of("gemini").at(-1).json;
    assert.deepEqual(
      [sent.generationConfig.candidateCount, sent.generationConfig.seed, sent.generationConfig.stopSequences, sent.generationConfig.presencePenalty, sent.generationConfig.frequencyPenalty],
      [1, 7, ["END"], 0.25, 0.5],
    );
    const text = JSON.stringify(sent);
    for (const k of ["logprobs", "top_logprobs", "logit_bias", "logprob"]) assert.ok(!text.toLowerCase().includes(k.toLowerCase()), `${k} not sent: ${text}`);
  });

  test("Messages client on an OpenAI-format provider: stop_sequences sent as stop; stop_reason end_turn, stop_sequence null", async () => {
    const body = { ...hi("up/plain"), max_tokens: 20, stop_sequences: ["END", "STOP"] };
    const msg = await ant.messages.create(body);
    assert.deepEqual(lastUp().stop, ["END", "STOP"]);
    assert.equal(msg.stop_reason, "end_turn");
    assert.equal(msg.stop_sequence, null);
    const final = await ant.messages.stream(body).finalMessage();
    assert.equal(final.stop_reason, "end_turn");
    assert.equal(final.stop_sequence, null);
    assert.equal(final.usage.input_tokens, 4);
    assert.equal(final.usage.output_tokens, 1);
  });

  test("chat stream: the gateway asks OpenAI-format providers for usage, keeping the client's other stream_options", async () => {
    const chunks = [];
    for await (const c of await oai.chat.completions.create(hi("up/plain", { stream: true, stream_options: { include_usage: false, extra_opt: 1 } }))) chunks.push(c);
    assert.deepEqual(lastUp().stream_options, { include_usage: true, extra_opt: 1 });
    assert.ok(chunks.every((c) => c.usage == null && c.choices.length === 1), "no usage chunk when the client said false");
    // stream_options without stream is not sent (OpenAI refuses it).
    await oai.chat.completions.create(hi("up/plain", { stream_options: { include_usage: true } }));
    assert.ok(!("stream_options" in lastUp()));
  });

  // --- A provider's 429 timing on the Messages and Responses endpoints ------------------------------------

  test("a provider's 429 timing reaches Messages and Responses clients (streamed or not); the SDKs wait retry-after-ms and retry", async () => {
    for (const stream of [false, true]) {
      const m = await post("/ai/v1/messages", { ...hi("oai/m-fail429-ra3"), max_tokens: 5, stream }, ANT);
      assert.equal(m.status, 429, m.text);
      assert.equal(m.json().error.type, "rate_limit_error");
      assert.equal(m.headers["retry-after"], "3");
      assert.equal(m.headers["retry-after-ms"], "2750");
      assert.equal(m.headers["x-ratelimit-limit-requests"], "60");
      const r = await post("/ai/v1/responses", { model: "oai/m-fail429-ra3", input: "hi", stream });
      assert.equal(r.status, 429, r.text);
      assert.equal(r.json().error.type, "rate_limit_error");
      assert.equal(r.headers["retry-after"], "3");
      assert.equal(r.headers["retry-after-ms"], "2750");
      assert.equal(r.headers["x-ratelimit-remaining-tokens"], "149000");
    }
    // Gemini's RetryInfo becomes retry-after for a Messages client too.
    const g = await post("/ai/v1/messages", { ...hi("gem/m-fail429-ra5"), max_tokens: 5 }, ANT);
    assert.equal(g.status, 429, g.text);
    assert.equal(g.headers["retry-after"], "5");
    // flaky429: the first request is refused with retry-after-ms 750, the SDK's retry is answered.
    const antRetry = new Anthropic({ baseURL: gw.at("/ai"), apiKey: "k", maxRetries: 1 });
    let t0 = Date.now();
    const msg = await antRetry.messages.create({ ...hi("oai/m-flaky429-ra1-a"), max_tokens: 5 });
    assert.equal(msg.type, "message");
    assert.ok(Date.now() - t0 >= 700, `waited ${Date.now() - t0} ms`);
    const oaiRetry = new OpenAI({ baseURL: gw.at("/ai/v1"), apiKey: "k", maxRetries: 1 });
    t0 = Date.now();
    const resp = await oaiRetry.responses.create({ model: "oai/m-flaky429-ra1-b", input: "hi" });
    assert.equal(resp.status, "completed");
    assert.ok(Date.now() - t0 >= 700, `waited ${Date.now() - t0} ms`);
  });

  // --- Malformed streams ---------------------------------------------------------------------------------

  test("a stream event that is not JSON: chat error event bad_upstream_response then [DONE]; Messages and Responses error events; the SDKs raise APIError", async () => {
    const r = await post("/ai/v1/chat/completions", hi("up/garbage", { stream: true }));
    assert.equal(r.status, 200, r.text);
    const ev = sse(r.text);
    assert.equal(ev.at(-1).data, "[DONE]");
    assert.equal(ev.at(-2).data.error.code, "bad_upstream_response", r.text);
    assert.equal(ev.length, 3, "nothing after the bad event is forwarded");
    assert.equal(ev[0].data.choices[0].delta.content, "Hello ");
    const seen = [];
    await assert.rejects(
      (async () => {
        for await (const c of await oai.chat.completions.create(hi("up/garbage", { stream: true }))) seen.push(c);
      })(),
      (err) => {
        assert.ok(err instanceof OpenAI.APIError, String(err));
        assert.match(err.message, /not JSON/);
        return true;
      },
    );
    assert.equal(seen.length, 1);
    // Translated (Anthropic provider → chat) and passed through (Anthropic provider → Messages).
    const c = sse((await post("/ai/v1/chat/completions", hi("ant/antgarbage", { stream: true }))).text);
    assert.equal(c.at(-2).data.error.code, "bad_upstream_response");
    for (const model of ["ant/antgarbage", "up/garbage"]) {
      const m = await post("/ai/v1/messages", { ...hi(model), max_tokens: 5, stream: true }, ANT);
      const mev = sse(m.text);
      assert.equal(mev.at(-1).event, "error", m.text);
      assert.equal(mev.at(-1).data.error.type, "api_error");
      assert.ok(!mev.some((e) => e.event === "message_stop"));
      await assert.rejects(ant.messages.stream({ ...hi(model), max_tokens: 5 }).finalMessage(), Anthropic.APIError);
    }
    const rr = sse((await post("/ai/v1/responses", { model: "up/garbage", input: "hi", stream: true })).text);
    assert.equal(rr.at(-1).event, "error");
    assert.equal(rr.at(-1).data.code, "bad_upstream_response");
    await assert.rejects(oai.responses.stream({ model: "up/garbage", input: "hi" }).finalResponse(), OpenAI.APIError);
  });

  test("a stream asked for, one JSON completion answered: 502 bad_upstream_response before the stream starts", async () => {
    const r = await post("/ai/v1/chat/completions", hi("up/jsonbody", { stream: true }));
    assert.equal(r.status, 502, r.text);
    assert.match(r.headers["content-type"], /^application\/json/);
    const e = r.json().error;
    assert.equal(e.type, "upstream_error");
    assert.equal(e.code, "bad_upstream_response");
    assert.equal(r.headers["x-should-retry"], "false");
    const m = await post("/ai/v1/messages", { ...hi("up/jsonbody"), max_tokens: 5, stream: true }, ANT);
    assert.equal(m.status, 502, m.text);
    assert.equal(m.json().error.type, "api_error");
    await assert.rejects(oai.chat.completions.create(hi("up/jsonbody", { stream: true })), OpenAI.InternalServerError);
  });

  test("a stream asked for, a JSON error answered with a 200: the provider's error (429 rate_limit_error, retryable)", async () => {
    const r = await post("/ai/v1/chat/completions", hi("up/json200err", { stream: true }));
    assert.equal(r.status, 429, r.text);
    const e = r.json().error;
    assert.equal(e.type, "rate_limit_error");
    assert.equal(e.message, "slow down");
    assert.equal(r.headers["x-should-retry"], undefined);
    await assert.rejects(oai.chat.completions.create(hi("up/json200err", { stream: true })), OpenAI.RateLimitError);
  });
});
