// docs/ai.md, fifth audit, from outside: raw HTTP and the official SDKs (`openai`, `@anthropic-ai/sdk`) against
// a provider scripted in this file (OpenAI format on 127.0.0.1), on both request paths (CONFIG_RELOAD_SECONDS 0
// and 600). What the earlier audits (docs-contract-ai{,2,3,4}.test.mjs) left out:
// - what a client that gives up costs a token budget: a whole (non-streamed) answer the client abandons is
//   charged in full (the gateway reads the provider's answer to its end, and the provider bills it), on chat
//   completions and Messages; a stream the client abandons is charged only what was counted so far (its
//   provider is let go) — docs/ai.md "A client that stops waiting", docs/rate-limiting.md "Token budgets";
// - request validation: `messages` / `model` of the wrong type (400 with `param`), no `model` and no
//   `default_model` (400, `param` `model`), the request's Content-Type (not checked: `curl -d` works);
// - the body size bound at exactly 10 MiB;
// - the usage chunk only when the client asks (`stream_options.include_usage`), though the provider is always
//   asked for usage; `[DONE]` once, last.
import { describe, test, before, after } from "node:test";
import assert from "node:assert/strict";
import crypto from "node:crypto";
import http from "node:http";
import { startGateway, startOrigin, request, waitFor, sleep } from "./support/harness.mjs";
import { DO_OPTIONS } from "./ratelimit-helpers.mjs";
import OpenAI from "openai";
import Anthropic from "@anthropic-ai/sdk";

const newId = (what) => `${what}-${crypto.randomBytes(6).toString("hex")}`;
// What the scripted provider's answers cost (its `usage`): far more than any estimate of the short prompts.
const USAGE = { prompt_tokens: 400, completion_tokens: 600, total_tokens: 1000 };
// How long the `slow` models take: the whole answer after SLOW_JSON ms, stream events every SLOW_EVENT ms.
const SLOW_JSON = 1500;
const SLOW_EVENT = 100;
const EVENTS = 30;

/** The scripted OpenAI-format provider: `slow…` answers late, `stream: true` streams EVENTS words slowly. */
function provider() {
  return async (req, res, rec) => {
    const j = JSON.parse(rec.body.toString() || "{}");
    const m = String(j.model ?? "");
    rec.json = j;
    rec.model = m;
    res.on("close", () => {
      if (!res.writableFinished) rec.abandonedAt = Date.now();
    });
    if (j.stream) {
      res.writeHead(200, { "content-type": "text/event-stream" });
      const chunk = (delta, finish = null) =>
        `data: ${JSON.stringify({ id: "chatcmpl-s", object: "chat.completion.chunk", created: 1, model: m, choices: [{ index: 0, delta, finish_reason: finish }] })}\n\n`;
      res.write(chunk({ role: "assistant", content: "" }));
      for (let i = 0; i < EVENTS && !res.destroyed; i++) {
        res.write(chunk({ content: `w${i} ` }));
        if (m.includes("slow")) await sleep(SLOW_EVENT);
      }
      if (res.destroyed) return;
      res.write(chunk({}, "stop"));
      if (j.stream_options?.include_usage) {
        res.write(`data: ${JSON.stringify({ id: "chatcmpl-s", object: "chat.completion.chunk", created: 1, model: m, choices: [], usage: USAGE })}\n\n`);
      }
      res.end("data: [DONE]\n\n");
      return;
    }
    if (m.includes("slow")) await sleep(SLOW_JSON);
    res.writeHead(200, { "content-type": "application/json" });
    if (req.url.endsWith("/embeddings")) {
      const usage = { prompt_tokens: USAGE.total_tokens, total_tokens: USAGE.total_tokens };
      return res.end(JSON.stringify({ object: "list", data: [{ object: "embedding", index: 0, embedding: [0.5, -0.25] }], model: m, usage }));
    }
    res.end(
      JSON.stringify({
        id: "chatcmpl-up",
        object: "chat.completion",
        created: 1,
        model: m,
        choices: [{ index: 0, message: { role: "assistant", content: "ok" }, finish_reason: "stop" }],
        usage: USAGE,
      }),
    );
  };
}

function config(up) {
  const proxy = {
    name: "ai-proxy",
    config: {
      providers: { up: { kind: "openai", base_url: `${up.url}/v1` } },
      models: { fast: "up/gpt-fast" },
      allow_provider_models: true,
      fallback: { first_byte_timeout_ms: 20_000 },
    },
  };
  const c = {
    format_version: 1,
    services: [{ name: "unused", url: "http://127.0.0.1:9/" }],
    // /ai: no budget, no default_model. /meter: a budget nobody reaches, to read what a request was charged.
    // /tight: 500 tokens a minute, less than one answer.
    routes: ["ai", "meter", "tight"].map((name) => ({ name, service: "unused", paths: [`/${name}`] })),
    plugins: [],
  };
  for (const name of ["ai", "meter", "tight"]) c.plugins.push({ ...proxy, route: name });
  // A year window: a minute's sliding estimate would count the previous minute's charges less and less as the
  // clock runs, and the remaining counts this test compares would drift when a minute ends during it.
  c.plugins.push({ name: "rate-limiting", route: "meter", config: { year: 1_000_000_000, count: "tokens", limit_by: "route" } });
  c.plugins.push({ name: "rate-limiting", route: "tight", config: { minute: 500, count: "tokens", limit_by: "route" } });
  return c;
}

/** POST a JSON body over node:http and hang up after `ms` without reading the answer. */
async function abandonAfter(url, body, ms, headers = {}) {
  const req = http.request(url, { method: "POST", agent: false, headers: { "content-type": "application/json", ...headers } });
  let answered = false;
  req.on("error", () => {});
  req.on("response", () => (answered = true));
  req.end(Buffer.from(JSON.stringify(body)));
  await sleep(ms);
  req.destroy();
  assert.equal(answered, false, `${url}: an answer came before the client left`);
}

const hi = (model, extra = {}) => ({ model, messages: [{ role: "user", content: "hi there" }], ...extra });

/** Split an SSE body into its `data:` payloads. */
const dataOf = (text) =>
  text
    .split("\n\n")
    .filter((e) => e.startsWith("data: "))
    .map((e) => e.slice(6));

for (const reload of ["0", "600"]) {
  describe(`docs/ai.md, fifth audit (CONFIG_RELOAD_SECONDS ${reload})`, { timeout: 180_000 }, () => {
    let up, gw;
    const upOf = (id) => up.requests.find((r) => r.headers["x-request-id"] === id);
    const accessLine = (id) => gw.logs.find((l) => l.json?.event === "request" && l.json.request_id === id)?.json;
    const usageLine = (id) => gw.logs.find((l) => l.json?.event === "ai_usage" && l.json.request_id === id)?.json;
    // GET …/models costs no tokens: what is left of a route's token budget, as the client's next request sees it.
    const budget = async (prefix) => {
      const r = await request(gw.at(`${prefix}/v1/models`));
      assert.equal(r.status, 200, r.text);
      return { tokens: Number(r.headers["x-ratelimit-remaining-tokens"]), rl: Number(r.headers["ratelimit-remaining"]) };
    };

    before(async () => {
      up = await startOrigin(provider());
      gw = await startGateway({ reload, config: config(up), miniflare: DO_OPTIONS });
      // Loads the version: with 600, every later request is served on the synchronous path.
      const warm = await request(gw.at("/ai/v1/models"));
      assert.equal(warm.status, 200, warm.text);
    });
    after(async () => {
      await gw?.dispose();
      await up?.close();
    });

    // --- What a client that gives up costs ------------------------------------------------------------------

    // Each endpoint's whole answer, the client hanging up 300 ms into the provider's 1.5 s.
    const WHOLE = [
      ["chat/completions", hi("up/slow-json")],
      ["messages", { ...hi("up/slow-json"), max_tokens: 50 }],
      ["responses", { model: "up/slow-json", input: "hi there" }],
      ["embeddings", { model: "up/slow-embed", input: "hi there" }],
    ];
    for (const [endpoint, body] of WHOLE) {
      test(`a whole ${endpoint} answer the client abandons: the provider's answer read to its end, charged in full, the next request sees it`, async () => {
        const before = await budget("/meter");
        assert.equal(before.tokens, before.rl);
        const id = newId(`left-${endpoint.split("/")[0]}`);
        await abandonAfter(gw.at(`/meter/v1/${endpoint}`), body, 300, { "x-request-id": id });
        assert.ok(upOf(id), "the provider got the request");
        // The gateway does not notice: it waits for the provider's answer, logs it and charges it.
        const line = await waitFor(() => accessLine(id), { what: "the access log line", timeoutMs: 15_000 });
        assert.equal(line.status, 200);
        assert.equal(line.ai.total_tokens, USAGE.total_tokens);
        assert.equal(upOf(id).abandonedAt, undefined, "the provider's answer was read to its end");
        // Charged before the answer was written: the very next request sees the whole answer's tokens.
        const after = await budget("/meter");
        assert.equal(after.tokens, before.tokens - USAGE.total_tokens);
        assert.equal(after.rl, before.rl - USAGE.total_tokens);
      });
    }

    test("a whole Messages answer the Anthropic SDK aborts: charged in full too", async () => {
      const before = await budget("/meter");
      const id = newId("msg-abort");
      const client = new Anthropic({ baseURL: gw.at("/meter"), apiKey: "k", maxRetries: 0 });
      const ac = new AbortController();
      setTimeout(() => ac.abort(), 300);
      await assert.rejects(
        client.messages.create({ ...hi("up/slow-msg"), max_tokens: 50 }, { signal: ac.signal, headers: { "x-request-id": id } }),
        Anthropic.APIUserAbortError,
      );
      const line = await waitFor(() => accessLine(id), { what: "the access log line", timeoutMs: 15_000 });
      assert.equal(line.status, 200);
      assert.equal(line.ai.endpoint, "messages");
      assert.equal(upOf(id).abandonedAt, undefined);
      assert.equal((await budget("/meter")).tokens, before.tokens - USAGE.total_tokens);
    });

    test("an abandoned whole answer takes a budget over its limit: the next request is refused (429) until tokens are free again", async () => {
      const before = await budget("/tight");
      assert.equal(before.tokens, 500);
      const id = newId("tight-left");
      await abandonAfter(gw.at("/tight/v1/chat/completions"), hi("up/slow-json"), 300, { "x-request-id": id });
      await waitFor(() => accessLine(id), { what: "the access log line", timeoutMs: 15_000 });
      const client = new OpenAI({ baseURL: gw.at("/tight/v1"), apiKey: "k", maxRetries: 0 });
      await assert.rejects(client.chat.completions.create(hi("up/gpt-fast")), (err) => {
        assert.ok(err instanceof OpenAI.RateLimitError, String(err));
        assert.equal(err.status, 429);
        assert.equal(err.type, "rate_limit_error");
        assert.equal(err.code, "rate_limited");
        assert.equal(err.headers.get("x-ratelimit-remaining-tokens"), "0");
        assert.equal(err.headers.get("ratelimit-remaining"), "0");
        assert.ok(Number(err.headers.get("retry-after")) >= 1, err.headers.get("retry-after"));
        return true;
      });
    });

    test("by contrast, a stream the client abandons: its provider let go, charged what was counted so far (far less than the answer's usage)", async () => {
      const before = await budget("/meter");
      const id = newId("stream-left");
      const client = new OpenAI({ baseURL: gw.at("/meter/v1"), apiKey: "k", maxRetries: 0 });
      const stream = await client.chat.completions.create(hi("up/slow-stream", { stream: true }), { headers: { "x-request-id": id } });
      let n = 0;
      for await (const c of stream) {
        if (c.choices[0]?.delta?.content && ++n === 3) break;
      }
      const rec = upOf(id);
      assert.equal(rec.json.stream_options?.include_usage, true, "the provider is asked for usage");
      // Let go before its last event (`abandonedAt` is set only when the provider's answer was not finished).
      await waitFor(() => rec.abandonedAt, { what: "the provider let go", timeoutMs: 5000 });
      const line = await waitFor(() => usageLine(id), { what: "the ai_usage line", timeoutMs: 5000 });
      assert.equal(line.complete, false);
      assert.ok(line.charged_tokens > 0 && line.charged_tokens < USAGE.total_tokens, JSON.stringify(line));
      await waitFor(async () => (await budget("/meter")).tokens === before.tokens - line.charged_tokens, {
        what: `${line.charged_tokens} tokens charged`,
        timeoutMs: 5000,
      });
    });

    // --- Request validation -----------------------------------------------------------------------------------

    const post = (path, body, headers = { "content-type": "application/json" }) =>
      request(gw.at(path), { method: "POST", headers, body: typeof body === "string" ? body : JSON.stringify(body) });

    test("a chat or embeddings body of the wrong shape: 400 invalid_request_error naming the parameter (param, code), as the OpenAI SDK reads it", async () => {
      const cases = [
        [{ model: "fast", messages: "hi there" }, "messages", "invalid_type"],
        [{ model: 42, messages: [{ role: "user", content: "hi" }] }, "model", "invalid_type"],
        [{ model: "fast", messages: [{ role: "user", content: "hi" }, "and you?"] }, "messages[1]", "invalid_type"],
        [{ model: "fast", messages: [{ content: "hi" }] }, "messages[0].role", "missing_required_parameter"],
        [{ model: "fast", messages: [{ role: "user", content: "hi" }], temperature: "warm" }, "temperature", "invalid_type"],
        [{ model: "fast", messages: [{ role: "user", content: "hi" }], n: -2 }, "n", "invalid_type"],
        [{ model: "fast", messages: [{ role: "user", content: "hi" }], stream: "yes" }, "stream", "invalid_type"],
        [{ model: "fast", messages: [{ role: "user", content: 5 }] }, "messages[0].content", "invalid_type"],
        [{ model: "fast", messages: [{ role: "user", content: "hi" }], tools: {} }, "tools", "invalid_type"],
        [{ model: "up/e" }, "input", "missing_required_parameter", "embeddings"],
        [{ model: 5, input: "x" }, "model", "invalid_type", "embeddings"],
        [{ model: "up/e", input: "x", dimensions: "8" }, "dimensions", "invalid_type", "embeddings"],
      ];
      const before = up.requests.length;
      for (const [body, param, code, endpoint = "chat/completions"] of cases) {
        const r = await post(`/ai/v1/${endpoint}`, body);
        assert.equal(r.status, 400, `${JSON.stringify(body)}: ${r.text}`);
        assert.match(r.headers["content-type"], /^application\/json/);
        const e = r.json().error;
        assert.equal(e.type, "invalid_request_error", r.text);
        assert.equal(e.param, param, r.text);
        assert.equal(e.code, code, r.text);
        assert.ok(e.message.length > 0);
      }
      // Through the SDK: its BadRequestError carries them.
      const client = new OpenAI({ baseURL: gw.at("/ai/v1"), apiKey: "k", maxRetries: 0 });
      await assert.rejects(client.chat.completions.create({ model: "fast", messages: "hi there" }), (err) => {
        assert.ok(err instanceof OpenAI.BadRequestError, String(err));
        assert.equal(err.param, "messages");
        assert.equal(err.code, "invalid_type");
        assert.equal(err.type, "invalid_request_error");
        assert.ok(err.requestID, "x-request-id");
        return true;
      });
      await assert.rejects(client.embeddings.create({ model: "up/e" }), (err) => {
        assert.ok(err instanceof OpenAI.BadRequestError, String(err));
        assert.equal(err.param, "input");
        assert.equal(err.code, "missing_required_parameter");
        return true;
      });
      assert.equal(up.requests.length, before, "nothing reached the provider");
    });

    test("no model on a route without default_model: 400 with param model; with an unknown one 404 model_not_found", async () => {
      const r = await post("/ai/v1/chat/completions", { messages: [{ role: "user", content: "hi" }] });
      assert.equal(r.status, 400, r.text);
      assert.equal(r.json().error.param, "model");
      assert.equal(r.json().error.type, "invalid_request_error");
      const u = await post("/ai/v1/chat/completions", hi("nope"));
      assert.equal(u.status, 404, u.text);
      assert.equal(u.json().error.code, "model_not_found");
    });

    test("the request's Content-Type is not checked: curl -d's form type, text/plain and none at all are read as JSON", async () => {
      for (const headers of [{ "content-type": "application/x-www-form-urlencoded" }, { "content-type": "text/plain" }, {}]) {
        const r = await post("/ai/v1/chat/completions", hi("fast"), headers);
        assert.equal(r.status, 200, `${JSON.stringify(headers)}: ${r.text}`);
        assert.equal(r.json().choices[0].message.content, "ok");
      }
    });

    test("a body of exactly 10 MiB is read; one byte more is 413 (with and without content-length)", async () => {
      const MiB10 = 10 * 1024 * 1024;
      const json = Buffer.from(JSON.stringify(hi("fast")));
      const exact = Buffer.concat([json, Buffer.alloc(MiB10 - json.length, 0x20)]);
      assert.equal(exact.length, MiB10);
      const ok = await request(gw.at("/ai/v1/chat/completions"), {
        method: "POST",
        headers: { "content-type": "application/json", "content-length": String(exact.length) },
        body: exact,
      });
      assert.equal(ok.status, 200, ok.text.slice(0, 300));
      const over = Buffer.concat([exact, Buffer.from(" ")]);
      // A content-length one byte over is answered before the body is sent (so only the head goes out).
      const big = await new Promise((resolve, reject) => {
        const req = http.request(gw.at("/ai/v1/chat/completions"), {
          method: "POST",
          agent: false,
          headers: { "content-type": "application/json", "content-length": String(over.length) },
        });
        req.on("response", (res) => {
          const parts = [];
          res.on("data", (c) => parts.push(c));
          res.on("end", () => {
            resolve({ status: res.statusCode, text: Buffer.concat(parts).toString() });
            req.destroy();
          });
        });
        req.on("error", reject);
        req.flushHeaders();
      });
      assert.equal(big.status, 413, big.text);
      assert.equal(JSON.parse(big.text).error.code, "payload_too_large");
      // Chunked (no content-length): the same bound once read.
      const chunked = await request(gw.at("/ai/v1/chat/completions"), {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: (async function* () {
          for (let i = 0; i < over.length; i += 1 << 20) yield over.subarray(i, i + (1 << 20));
        })(),
      });
      assert.equal(chunked.status, 413, chunked.text);
      assert.equal(chunked.json().error.code, "payload_too_large");
    });

    // --- Streams: usage chunk and termination ----------------------------------------------------------------

    test("a chat stream: the usage chunk only when the client asks (the provider is asked regardless), [DONE] once and last", async () => {
      for (const include of [false, true]) {
        const id = newId(`usage-${include}`);
        const body = hi("up/gpt-stream", { stream: true, ...(include ? { stream_options: { include_usage: true } } : {}) });
        const r = await request(gw.at("/ai/v1/chat/completions"), {
          method: "POST",
          headers: { "content-type": "application/json", "x-request-id": id },
          body: JSON.stringify(body),
        });
        assert.equal(r.status, 200, r.text);
        assert.match(r.headers["content-type"], /^text\/event-stream/);
        assert.equal(r.headers["x-request-id"], id);
        assert.equal(upOf(id).json.stream_options?.include_usage, true, "the provider is asked for usage");
        const data = dataOf(r.text);
        assert.equal(data.at(-1), "[DONE]");
        assert.equal(data.filter((d) => d === "[DONE]").length, 1);
        const chunks = data.slice(0, -1).map((d) => JSON.parse(d));
        const withUsage = chunks.filter((c) => c.usage);
        if (include) {
          assert.equal(withUsage.length, 1, r.text);
          assert.deepEqual(chunks.at(-1).choices, []);
          assert.equal(chunks.at(-1).usage.total_tokens, USAGE.total_tokens);
        } else {
          assert.deepEqual(withUsage, [], "no usage chunk unasked");
          assert.ok(chunks.every((c) => c.choices.length === 1));
        }
        const text = chunks.map((c) => c.choices[0]?.delta?.content ?? "").join("");
        assert.equal(text, Array.from({ length: EVENTS }, (_, i) => `w${i} `).join(""));
        // The gateway counted the tokens either way.
        const line = await waitFor(() => usageLine(id), { what: "ai_usage", timeoutMs: 5000 });
        assert.equal(line.complete, true);
        assert.equal(line.ai.total_tokens, USAGE.total_tokens);
      }
    });
  });
}
