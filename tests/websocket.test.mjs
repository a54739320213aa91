// WebSocket upgrades pass through a route to the origin; messages flow both ways.
import { describe, test, before, after } from "node:test";
import assert from "node:assert/strict";
import { startGateway, startOrigin, wsConnect, wsEchoUpgradeHandler, request } from "./support/harness.mjs";

describe("websocket", () => {
  let gw;
  let origin;
  const upgrades = [];

  before(async () => {
    gw = await startGateway();
    origin = await startOrigin(undefined, { onUpgrade: wsEchoUpgradeHandler(upgrades) });
    await gw.putConfig({
      format_version: 1,
      services: [{ name: "ws", url: `${origin.url}/sock`, headers: { "x-from": "edgegate" } }],
      routes: [{ name: "ws", service: "ws", paths: ["/ws"] }],
    });
  });
  after(async () => {
    await gw?.dispose();
    await origin?.close();
  });

  test("upgrade through a route; a message echoes back", async () => {
    const ws = await wsConnect(gw.at("/ws/chat?room=1"), { headers: { "x-request-id": "ws-req-1" } });
    try {
      assert.equal(ws.status, 101);
      assert.equal(String(ws.headers.upgrade).toLowerCase(), "websocket");
      assert.equal(ws.headers["sec-websocket-accept"], ws.expectedAccept);
      ws.send("hello");
      const f = await ws.next();
      assert.equal(f.opcode, 0x1);
      assert.equal(f.payload.toString(), "echo: hello");
      ws.send("second");
      assert.equal((await ws.next()).payload.toString(), "echo: second");
    } finally {
      ws.close();
    }
    const up = upgrades[upgrades.length - 1];
    assert.equal(up.url, "/sock/chat?room=1");
    assert.equal(up.headers["x-request-id"], "ws-req-1");
    assert.equal(up.headers["x-from"], "edgegate");
    assert.equal(String(up.headers.upgrade).toLowerCase(), "websocket");
  });

  test("a websocket upgrade on a path without a route is a 404 problem", async () => {
    await assert.rejects(wsConnect(gw.at("/elsewhere")), (e) => e.status === 404);
  });

  test("plain HTTP on the websocket route still proxies", async () => {
    const res = await request(gw.at("/ws/plain"));
    assert.equal(res.status, 200);
    assert.equal(origin.last.url, "/sock/plain");
  });
});
