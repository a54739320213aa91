// Request header values are read without the spaces and tabs before the end of the line (RFC 9110 section 5.5;
// docs/proxying.md, "Request headers sent upstream"): workerd hands them to the Worker, so each feature that
// reads a header would otherwise see `value<SP><SP><HT>`. Sent over a raw socket (node:http would not send
// them), on both request paths (CONFIG_RELOAD_SECONDS 0; 600 after a warm-up request: the synchronous path).
import { describe, test, before, after } from "node:test";
import assert from "node:assert/strict";
import { startGateway, startOrigin, request, raw } from "./support/harness.mjs";

const APP = "https://app.example.com";

const CONFIG = (originUrl) => ({
  format_version: 1,
  services: [{ name: "o", url: originUrl }],
  routes: [
    { name: "cors", service: "o", paths: ["/cors"] },
    { name: "tpl", service: "o", paths: ["/tpl"] },
    { name: "limited", service: "o", paths: ["/limited"] },
    { name: "probe", service: "o", paths: ["/__probe"] },
  ],
  plugins: [
    { name: "cors", route: "cors", config: { origins: [APP] } },
    { name: "request-transformer", route: "tpl", config: { add: { querystring: ["seen:$(headers.x-v)"] } } },
    {
      name: "rate-limiting", route: "limited",
      config: { minute: 1, limit_by: "header", header_name: "x-client", policy: "local" },
    },
  ],
});

for (const reload of ["0", "600"]) describe(`trailing whitespace in request header values (CONFIG_RELOAD_SECONDS ${reload})`, { timeout: 120_000 }, () => {
  let gw, origin;
  before(async () => {
    origin = await startOrigin();
    gw = await startGateway({ reload, config: CONFIG(origin.url) });
    assert.equal((await request(gw.at("/__probe"))).status, 200);
  });
  after(async () => {
    await gw?.dispose();
    await origin?.close();
  });
  const host = () => `Host: 127.0.0.1:${gw.url.port}`;

  test("cors: an allowed Origin followed by spaces and a tab is that origin", async () => {
    const res = await raw(gw.url, `GET /cors HTTP/1.1\r\n${host()}\r\nOrigin: ${APP}  \t`);
    assert.equal(res.status, 200, res.text);
    assert.match(res.text, new RegExp(`\\r\\naccess-control-allow-origin: ${APP.replace(/\./g, "\\.")}\\r\\n`, "i"));
  });

  test("templates: $(headers.x-v) has no trailing whitespace", async () => {
    const res = await raw(gw.url, `GET /tpl HTTP/1.1\r\n${host()}\r\nX-V: abc \t `);
    assert.equal(res.status, 200, res.text);
    const seen = origin.requests.at(-1).url;
    assert.match(seen, /[?&]seen=abc(&|$)/, seen);
  });

  test("limit_by: header: `a` and `a` followed by whitespace are one counter", async () => {
    const client = `c-${reload}`;
    const first = await raw(gw.url, `GET /limited HTTP/1.1\r\n${host()}\r\nX-Client: ${client}`);
    assert.equal(first.status, 200, first.text);
    const second = await raw(gw.url, `GET /limited HTTP/1.1\r\n${host()}\r\nX-Client: ${client}\t \t`);
    assert.equal(second.status, 429, second.text);
  });
});
