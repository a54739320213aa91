// Rate-limit counters belong to a plugin instance's stable identity (`<scope>/<id>`, docs/plugins.md
// "Instance ids"), not to its position in `plugins`: inserting or reordering instances keeps counting,
// changing the id (or scope) starts a new counter (docs/rate-limiting.md "Which counter").
import { describe, test, before, after } from "node:test";
import assert from "node:assert/strict";
import { startGateway, startOrigin, request } from "./support/harness.mjs";
import { DO_OPTIONS, rlConfig, configure } from "./ratelimit-helpers.mjs";

describe("counters follow the instance's identity, not its position", () => {
  let gw, origin;
  before(async () => {
    origin = await startOrigin();
    gw = await startGateway({ miniflare: DO_OPTIONS });
  });
  after(async () => {
    await gw?.dispose();
    await origin?.close();
  });

  const routes = ["limited", "other"];
  const hit = async (ip) => {
    const r = await request(gw.at("/limited"), { headers: { "cf-connecting-ip": ip } });
    return [r.status, r.headers["x-ratelimit-remaining-hour"]];
  };

  test("an instance without an id keeps its counter when instances are inserted before it and reordered", async () => {
    const ours = { name: "rate-limiting", route: "limited", config: { hour: 4, limit_by: "ip" } };
    await configure(gw, rlConfig(origin.url, [ours], routes));
    const ip = "198.51.100.61";
    assert.deepEqual([await hit(ip), await hit(ip)], [[200, "3"], [200, "2"]]);

    // Other instances inserted before it (another scope, another plugin, an explicit id), and it moves.
    await configure(
      gw,
      rlConfig(
        origin.url,
        [
          { name: "rate-limiting", route: "other", config: { hour: 100, limit_by: "ip" } },
          { name: "rate-limiting", id: "global-cap", config: { day: 1000, limit_by: "ip" } },
          { name: "acl", route: "other", config: { allow: ["nobody"] } },
          ours,
        ],
        routes,
      ),
    );
    assert.deepEqual([await hit(ip), await hit(ip), await hit(ip)], [[200, "1"], [200, "0"], [429, "0"]]);
  });

  test("an explicit id keeps the counter through reordering and a new limit; a new id starts afresh", async () => {
    const withId = (id, hour) => ({ name: "rate-limiting", id, route: "limited", config: { hour, limit_by: "ip" } });
    const ip = "198.51.100.62";
    await configure(gw, rlConfig(origin.url, [withId("per-hour", 3), withId("second-policy", 50)], routes));
    assert.deepEqual([await hit(ip), await hit(ip)], [[200, "2"], [200, "1"]]);

    // Swapped, and the limit raised from 3 to 4: two more fit, as the 2 already counted stay counted.
    await configure(gw, rlConfig(origin.url, [withId("second-policy", 50), withId("per-hour", 4)], routes));
    assert.deepEqual([await hit(ip), await hit(ip), await hit(ip)], [[200, "1"], [200, "0"], [429, "0"]]);

    // A new id is a new counter (documented as restarting).
    await configure(gw, rlConfig(origin.url, [withId("second-policy", 50), withId("per-hour-v2", 4)], routes));
    assert.deepEqual(await hit(ip), [200, "3"]);
  });
});
