// Time to first byte of an AI answer: straight to the fake provider vs through edgegate under Miniflare.
//
//   node bench/ai-ttfb.mjs [--n 200]      (build the Worker first: scripts/build)
//
// For each provider format (OpenAI, Anthropic, Gemini) and streamed / not streamed, N sequential requests
// (after 20 warm-up ones); prints p50 / p90 / p99 of the time until the first body byte (streamed: the first
// `data:` event) and the added time through the gateway (translation, key lookup, config, access log).
// The last rows: an Anthropic Messages client (`/ai/v1/messages`) on the OpenAI-format provider, against the
// same OpenAI request straight to the provider (the two translations, in and out, are the added cost).
import http from "node:http";
import { startGateway } from "../tests/support/harness.mjs";
import { startFakeProviders } from "../tests/support/fake-providers.mjs";

const n = Number(process.argv[process.argv.indexOf("--n") + 1]) || 200;
const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });

function ttfb(url, headers, body) {
  return new Promise((resolve, reject) => {
    const started = process.hrtime.bigint();
    const req = http.request(url, { method: "POST", headers: { "content-type": "application/json", ...headers }, agent }, (res) => {
      let first = null;
      res.on("data", () => {
        if (first === null) first = Number(process.hrtime.bigint() - started) / 1e6;
      });
      res.on("end", () => (res.statusCode === 200 ? resolve(first) : reject(new Error(`HTTP ${res.statusCode}`))));
    });
    req.on("error", reject);
    req.end(JSON.stringify(body));
  });
}

const pct = (xs, p) => xs.slice().sort((a, b) => a - b)[Math.min(xs.length - 1, Math.floor((p / 100) * xs.length))];

const fake = await startFakeProviders({});
const gw = await startGateway({});
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
          oai: { kind: "openai", base_url: fake.baseUrls.openai },
          claude: { kind: "anthropic", base_url: fake.baseUrls.anthropic },
          gem: { kind: "gemini", base_url: fake.baseUrls.gemini },
        },
      },
    },
  ],
});

const messages = [{ role: "user", content: "Say hello in ten words please" }];
const rows = [];
const chat = (model) => (s) => [gw.at("/ai/v1/chat/completions"), {}, { model, messages, stream: s }];
for (const [fmt, model, direct, viaGateway = chat(model)] of [
  ["openai", "oai/gpt-bench", (s) => [`${fake.baseUrls.openai}/chat/completions`, {}, { model: "gpt-bench", messages, stream: s }]],
  [
    "anthropic",
    "claude/claude-bench",
    (s) => [`${fake.baseUrls.anthropic}/v1/messages`, { "anthropic-version": "2023-06-01" }, { model: "claude-bench", max_tokens: 100, messages, stream: s }],
  ],
  [
    "gemini",
    "gem/gemini-bench",
    (s) => [
      `${fake.baseUrls.gemini}/v1beta/models/gemini-bench:${s ? "streamGenerateContent?alt=sse" : "generateContent"}`,
      {},
      { contents: [{ role: "user", parts: [{ text: messages[0].content }] }] },
    ],
  ],
  [
    "anthropic client on openai",
    "oai/gpt-bench",
    (s) => [`${fake.baseUrls.openai}/chat/completions`, {}, { model: "gpt-bench", messages, stream: s }],
    (s) => [gw.at("/ai/v1/messages"), { "anthropic-version": "2023-06-01" }, { model: "oai/gpt-bench", max_tokens: 100, messages, stream: s }],
  ],
]) {
  for (const stream of [false, true]) {
    const measure = async (f) => {
      for (let i = 0; i < 20; i++) await f();
      const xs = [];
      for (let i = 0; i < n; i++) xs.push(await f());
      return xs;
    };
    const d = await measure(() => ttfb(...direct(stream)));
    const g = await measure(() => ttfb(...viaGateway(stream)));
    rows.push({
      format: fmt,
      stream,
      direct_p50: pct(d, 50),
      gateway_p50: pct(g, 50),
      gateway_p90: pct(g, 90),
      gateway_p99: pct(g, 99),
      added_p50: pct(g, 50) - pct(d, 50),
    });
  }
}
const f = (x) => x.toFixed(2);
console.log(`time to first byte, ms (n=${n} sequential requests per row, keep-alive)`);
console.log("| provider format | stream | direct p50 | gateway p50 | gateway p90 | gateway p99 | added p50 |");
console.log("|---|---|---|---|---|---|---|");
for (const r of rows) {
  console.log(
    `| ${r.format} | ${r.stream ? "yes" : "no"} | ${f(r.direct_p50)} | ${f(r.gateway_p50)} | ${f(r.gateway_p90)} | ${f(r.gateway_p99)} | ${f(r.added_p50)} |`,
  );
}
agent.destroy();
await gw.dispose();
await fake.close();
