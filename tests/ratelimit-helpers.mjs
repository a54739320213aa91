// Shared by tests/ratelimit*.test.mjs.
import { request } from "./support/harness.mjs";

/** Miniflare options binding RATE_LIMITER as wrangler.toml does (SQLite-backed class). */
export const DO_OPTIONS = { durableObjects: { RATE_LIMITER: { className: "RateLimiter", useSQLite: true } } };

/** One service, one catch-all route per name in `routes`, and the given plugin instances. */
export function rlConfig(originUrl, plugins, routes = ["r"]) {
  return {
    format_version: 1,
    services: [{ name: "origin", url: originUrl }],
    routes: routes.map((name) => ({ name, service: "origin", paths: [`/${name}`] })),
    plugins,
  };
}

/** Push a config and make sure the isolate serves it before concurrent requests start. */
export async function configure(gw, config) {
  await gw.putConfig(config);
  await request(gw.at("/not-a-route"));
}

