// Clients that go away in the middle of a streamed AI answer (docs/ai.md, "Streaming" and "Logs and token
// counts"): every stream's end is accounted with one `ai_usage` line (`complete: false` when the client left),
// on routes with and without a token budget; the provider's stream is let go at once rather than when the
// request ends; and hanging up never traps the Worker (no "Critical error", no re-initialised instance: the
// gateway keeps its loaded configuration and answers the next request normally).
//
// The fake providers (tests/support/fake-providers.mjs) stream one word every SLOW ms; `lag` delays the
// first event and `linger` the events that end the message by as much, so that the client can leave before
// the first byte, after the first chunk, mid-way and just before the end.
import { describe, test, before, after } from "node:test";
import assert from "node:assert/strict";
import crypto from "node:crypto";
import http from "node:http";
import { startGateway, streamRequest, request, waitFor, sleep } from "./support/harness.mjs";
import { startFakeProviders } from "./support/fake-providers.mjs";
import { DO_OPTIONS } from "./ratelimit-helpers.mjs";

const SLOW = 80;
// A question the providers echo word by word: some 40 events, over three seconds at SLOW ms each.
const QUESTION = Array.from({ length: 36 }, (_, i) => `word${i}`).join(" ");

function config(fake) {
  return {
    format_version: 1,
    services: [{ name: "unused", url: "http://127.0.0.1:9/" }],
    routes: [
      { name: "llm", service: "unused", paths: ["/ai"] },
      { name: "llm-budget", service: "unused", paths: ["/budget"] },
    ],
    plugins: [
      {
        name: "ai-proxy",
        config: {
          providers: {
            oai: { kind: "openai", base_url: fake.baseUrls.openai },
            claude: { kind: "anthropic", base_url: fake.baseUrls.anthropic },
            gem: { kind: "gemini", base_url: fake.baseUrls.gemini },
          },
          models: {},
          allow_provider_models: true,
        },
      },
      // A token budget nobody reaches: the stream's end is charged to it.
      { name: "rate-limiting", route: "llm-budget", config: { minute: 1_000_000_000, count: "tokens", limit_by: "route" } },
    ],
  };
}

/** Log lines that say the Worker trapped, panicked or was re-initialised. */
const FATAL = /Critical error|panicked|RuntimeError|Module terminated|Reinitializing|Uncaught/i;

const newId = (what) => `${what}-${crypto.randomBytes(6).toString("hex")}`;

/**
 * Stream a chat completion and hang up at `point`: "before" (the provider has the request, the client has no
 * byte yet), "first" (after the first chunk), "mid" (after four words), "end" (after the last word, before the
 * finish events). Resolves with { id, abortedAt }.
 */
async function abandon(gw, fake, { prefix, model, point }) {
  const id = newId(`${point}-${model.split("/")[0]}`);
  const req = http.request(gw.at(`${prefix}/v1/chat/completions`), {
    method: "POST",
    agent: false,
    headers: { "content-type": "application/json", "x-request-id": id },
  });
  req.on("error", () => {});
  req.end(JSON.stringify({ model, stream: true, messages: [{ role: "user", content: QUESTION }] }));
  if (point === "before") {
    await waitFor(() => fake.requests.some((r) => r.headers["x-request-id"] === id), { what: `${id} upstream` });
    req.destroy();
    return { id, abortedAt: Date.now() };
  }
  const res = await new Promise((resolve, reject) => {
    req.once("response", resolve);
    req.once("error", reject);
  });
  assert.equal(res.statusCode, 200);
  let buffered = "";
  let content = "";
  let events = 0;
  return new Promise((resolve, reject) => {
    res.on("error", () => {});
    res.on("end", () => reject(new Error(`${id}: the stream ended before the client left at ${point}`)));
    res.on("data", (chunk) => {
      buffered += chunk.toString("utf8");
      let cut;
      while ((cut = buffered.indexOf("\n\n")) >= 0) {
        const event = buffered.slice(0, cut);
        buffered = buffered.slice(cut + 2);
        if (!event.startsWith("data: ") || event === "data: [DONE]") continue;
        events++;
        content += JSON.parse(event.slice(6)).choices[0]?.delta?.content ?? "";
      }
      const words = content.split(" ").filter(Boolean).length;
      const leave =
        (point === "first" && events >= 1) || (point === "mid" && words >= 4) || (point === "end" && content.endsWith('"'));
      if (leave) {
        req.destroy();
        resolve({ id, abortedAt: Date.now() });
      }
    });
  });
}

describe("streams the client abandons", () => {
  let fake, gw;

  before(async () => {
    fake = await startFakeProviders({ slowDelayMs: SLOW, chunkDelayMs: 2 });
    gw = await startGateway({ miniflare: DO_OPTIONS });
    await gw.putConfig(config(fake));
    assert.equal((await request(gw.at("/ai/v1/models"))).status, 200);
  });
  after(async () => {
    await gw?.dispose();
    await fake?.close();
  });

  const usageLines = (id) => gw.logs.filter((l) => l.json?.event === "ai_usage" && l.json.request_id === id);

  test("left before the first byte, after the first chunk, mid-way and at the end: each accounted once, provider let go", async () => {
    const left = [];
    for (const prefix of ["/ai", "/budget"]) {
      for (const model of ["oai/gpt-slow-lag-linger", "claude/claude-slow-lag-linger"]) {
        // Three of each point at once.
        const group = [];
        for (const point of ["before", "first", "mid", "end"]) {
          for (let i = 0; i < 3; i++) group.push(abandon(gw, fake, { prefix, model, point }).then((r) => ({ ...r, prefix, model, point })));
        }
        left.push(...(await Promise.all(group)));
      }
    }
    assert.equal(left.length, 48);
    for (const s of left) {
      const what = `${s.prefix} ${s.model} left ${s.point} (${s.id})`;
      const lines = await waitFor(() => (usageLines(s.id).length ? usageLines(s.id) : null), {
        what: `the ai_usage line of ${what}`,
        timeoutMs: 5000,
      });
      // The provider's stream is cancelled as soon as the gateway notices (at its next write, SLOW ms
      // later at most), long before the provider would have finished on its own (some 40 events to go). At
      // the end there is nothing left to cancel: the provider sends its last events at once, and the
      // gateway's write of them is what fails.
      if (s.point !== "end") {
        const upstream = fake.requests.find((r) => r.headers["x-request-id"] === s.id);
        const letGo = await waitFor(() => upstream.abandonedAt, { what: `${what}: provider let go`, timeoutMs: 5000 });
        assert.ok(letGo - s.abortedAt < 1500, `${what}: provider let go ${letGo - s.abortedAt} ms after the client`);
      }
      await sleep(0);
      assert.equal(usageLines(s.id).length, 1, `${what}: one ai_usage line`);
      const line = lines[0].json;
      assert.equal(line.complete, false, `${what}: ${lines[0].message}`);
      assert.equal(line.route, s.prefix === "/ai" ? "llm" : "llm-budget");
      assert.equal(line.ai.stream, true);
      assert.ok(line.charged_tokens > 0, `${what}: charged ${line.charged_tokens}`);
    }
    // Nothing trapped, and the gateway answers normally on the same instance.
    const fatal = gw.logs.filter((l) => FATAL.test(l.message));
    assert.deepEqual(fatal.map((l) => l.message), []);
    const after = await request(gw.at("/ai/v1/chat/completions"), {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ model: "oai/gpt-after", messages: [{ role: "user", content: "still there?" }] }),
    });
    assert.equal(after.status, 200, after.text);
    assert.equal(gw.logs.filter((l) => l.json?.event === "config_loaded").length, 1, "configuration loaded once");
  });

  test("under concurrent load with streams dropped at random points: no trap, every stream accounted once", async () => {
    // Enough streams, some left, that the garbage collector runs while abandoned ones are about.
    const models = ["oai/gpt-quick", "claude/claude-quick", "gem/gemini-quick"];
    let seed = 7;
    const rand = () => ((seed = (seed * 1103515245 + 12345) & 0x7fffffff) / 0x7fffffff);
    const streams = [];
    let next = 0;
    const TOTAL = 240;
    const one = async (i) => {
      const id = newId("load");
      const leaveAfter = rand() < 0.25 ? Math.floor(rand() * 12) : -1;
      const prefix = i % 2 ? "/ai" : "/budget";
      const s = { id, leaveAfter, finished: false };
      streams.push(s);
      const res = await streamRequest(gw.at(`${prefix}/v1/chat/completions`), {
        method: "POST",
        headers: { "content-type": "application/json", "x-request-id": id },
        body: JSON.stringify({ model: models[i % 3], stream: true, messages: [{ role: "user", content: "hi there friend" }] }),
      });
      if (leaveAfter === 0) return res.destroy();
      let chunks = 0;
      let text = "";
      await new Promise((resolve) => {
        res.on("data", (c) => {
          text += c;
          if (leaveAfter >= 0 && ++chunks >= leaveAfter) {
            res.destroy();
            resolve();
          }
        });
        res.on("end", () => {
          s.finished = text.endsWith("data: [DONE]\n\n");
          resolve();
        });
        res.on("close", resolve);
        res.on("error", resolve);
      });
    };
    await Promise.all(
      Array.from({ length: 12 }, async () => {
        while (next < TOTAL) await one(next++);
      }),
    );
    assert.ok(streams.filter((s) => s.leaveAfter >= 0).length >= 30);
    // Let what the garbage collector frees late show itself before anything else is checked.
    await sleep(1000);
    const fatal = gw.logs.filter((l) => FATAL.test(l.message));
    assert.deepEqual(fatal.map((l) => l.message), []);
    await waitFor(() => streams.every((s) => usageLines(s.id).length > 0), {
      what: "an ai_usage line for every stream",
      timeoutMs: 10_000,
    });
    for (const s of streams) {
      const lines = usageLines(s.id);
      assert.equal(lines.length, 1, `${s.id}: ${lines.length} ai_usage lines`);
      if (s.finished) assert.equal(lines[0].json.complete, true, `${s.id} read to the end`);
    }
    assert.deepEqual(
      gw.logs.filter((l) => FATAL.test(l.message)).map((l) => l.message),
      [],
    );
    const after = await request(gw.at("/ai/v1/models"));
    assert.equal(after.status, 200);
    assert.equal(gw.logs.filter((l) => l.json?.event === "config_loaded").length, 1, "configuration loaded once");
  });
});
