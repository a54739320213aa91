// Shared by tests/ai*.test.mjs: the AI route configuration over the fake providers, and a starter.
import crypto from "node:crypto";
import { startGateway } from "./support/harness.mjs";
import { startFakeProviders } from "./support/fake-providers.mjs";

export const KEYS = {
  openai: "sk-oai-SECRET-" + crypto.randomBytes(8).toString("hex"),
  anthropic: "sk-ant-SECRET-" + crypto.randomBytes(8).toString("hex"),
  gemini: "AIza-SECRET-" + crypto.randomBytes(8).toString("hex"),
};

/** The AI route used by the AI tests: route `llm` on `/ai`, three fake providers, aliases for each mode. */
export function aiConfig(fake, extra = {}) {
  return {
    format_version: 1,
    services: [{ name: "unused", url: "http://127.0.0.1:9/" }],
    routes: [{ name: "llm", service: "unused", paths: ["/ai"] }],
    plugins: [
      {
        name: "ai-proxy",
        route: "llm",
        config: {
          providers: {
            oai: { kind: "openai", base_url: fake.baseUrls.openai, key_secret: "OAI_KEY" },
            claude: { kind: "anthropic", base_url: fake.baseUrls.anthropic, key_secret: "ANTHROPIC_KEY" },
            gem: { kind: "gemini", base_url: fake.baseUrls.gemini, key_secret: "GEMINI_KEY" },
            wrongkey: { kind: "openai", base_url: fake.baseUrls.openai, key_secret: "WRONG_KEY" },
            nokey: { kind: "anthropic", base_url: fake.baseUrls.anthropic, key_secret: "MISSING_KEY" },
          },
          models: {
            fast: "oai/gpt-fast",
            smart: "claude/claude-test",
            flash: "gem/gemini-test",
            "fb-429": { targets: ["claude/m-fail429", "gem/gemini-after-429"] },
            "fb-500": { targets: ["oai/m-fail500", "claude/claude-after-500"] },
            "fb-silent": { targets: ["gem/m-silent", "oai/gpt-backup-s"] },
            "fb-stall": { targets: ["claude/m-stall", "gem/gemini-backup-t"] },
            "fb-nokey": { targets: ["nokey/claude-x", "oai/gpt-after-nokey"] },
            "all-fail": { targets: ["oai/m-fail429", "gem/m-fail500"] },
            // Every target answers 429, each asking for another wait (4 s, 6 s, 9 s - 250 ms).
            "all-429": { targets: ["claude/m-fail429-ra4", "gem/m-fail429-ra6", "oai/m-fail429-ra9"] },
          },
          default_model: "fast",
          fallback: { first_byte_timeout_ms: 700 },
          prompt_guard: { deny: ["(?i)ignore (all )?previous instructions"] },
          templates: {
            summarize: {
              model: "smart",
              params: { temperature: 0.2 },
              messages: [{ role: "user", content: "Summarize in {{lang}}: {{text}}" }],
            },
          },
          ...extra,
        },
      },
    ],
  };
}

export async function startAi({ config, keys = KEYS, fakeOpts = {} } = {}) {
  const fake = await startFakeProviders({ keys, slowDelayMs: 120, ...fakeOpts });
  const gw = await startGateway({
    bindings: { OAI_KEY: keys.openai, ANTHROPIC_KEY: keys.anthropic, GEMINI_KEY: keys.gemini, WRONG_KEY: "sk-wrong-SECRET-0" },
  });
  await gw.putConfig(config ? config(fake) : aiConfig(fake));
  return { fake, gw };
}

