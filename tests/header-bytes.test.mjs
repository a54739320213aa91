// Header values with bytes 80..FF across the gateway (docs/proxying.md, "Header bytes"): request headers reach
// the origin with the client's bytes, with or without a body, UTF-8 or not; response headers reach the client
// with the origin's bytes. (The harness's request() sends a string body as bytes: node:http would otherwise
// write the head UTF-8 encoded with it, nodejs/node#42579, the "double encoding" once taken for the gateway's.)
// Also: a client X-Request-Id that the client's Connection header names is not reused (docs/proxying.md).
import { describe, test, before, after } from "node:test";
import assert from "node:assert/strict";
import { Readable } from "node:stream";
import { startGateway, startOrigin, request, simpleConfig } from "./support/harness.mjs";

// node:http writes a header string one byte per character (Latin-1) and reads it back the same way, so a
// string made with `latin1` of some bytes is those bytes on the wire.
const wire = (bytes) => Buffer.from(bytes).toString("latin1");
const bytesOf = (s) => (s === undefined ? undefined : Buffer.from(s, "latin1").toString("hex"));
const utf8 = (s) => wire(Buffer.from(s, "utf8"));

const CAFE = utf8("café"); // 63 61 66 c3 a9
const JAPAN = utf8("日本語"); // three-byte sequences
const MOJIBAKE = utf8("cafÃ©"); // 63 61 66 c3 83 c2 a9: never decoded into c3 a9
const LATIN1 = wire([0x63, 0x61, 0x66, 0xe9]); // not UTF-8 (obs-text, RFC 9110 5.5)

const BODIES = {
  "GET without a body": { method: "GET" },
  "POST with Content-Length": { method: "POST", body: "hello" },
  "PUT with a chunked body": { method: "PUT", body: () => Readable.from([Buffer.from("a"), Buffer.from("b")]) },
  "POST with an empty body": { method: "POST", body: "" },
};

describe("header bytes", () => {
  let gw;
  let origin;
  before(async () => {
    origin = await startOrigin((req, res) => {
      res.writeHead(200, [
        ["content-type", "text/plain"],
        ["x-out-utf8", CAFE],
        ["x-out-latin1", LATIN1],
      ]);
      res.end(Buffer.from("ok"));
    });
    gw = await startGateway({
      config: {
        ...simpleConfig(origin.url),
        plugins: [{ name: "request-transformer", route: "r", config: { add: { headers: ["x-plugin:café"] } } }],
      },
    });
  });
  after(async () => {
    await gw?.dispose();
    await origin?.close();
  });

  for (const [name, { method, body }] of Object.entries(BODIES)) {
    test(`request header values reach the origin byte for byte: ${name}`, async () => {
      const res = await request(gw.at("/b"), {
        method,
        body: typeof body === "function" ? body() : body,
        headers: { "x-cafe": CAFE, "x-japan": JAPAN, "x-mojibake": MOJIBAKE, "x-latin1": LATIN1, "x-ascii": "plain" },
      });
      assert.equal(res.status, 200, res.text);
      const h = origin.last.headers;
      assert.equal(bytesOf(h["x-cafe"]), "636166c3a9");
      assert.equal(bytesOf(h["x-japan"]), Buffer.from("日本語").toString("hex"));
      assert.equal(bytesOf(h["x-mojibake"]), "636166c383c2a9");
      assert.equal(bytesOf(h["x-latin1"]), "636166e9");
      assert.equal(h["x-ascii"], "plain");
      if (body === "hello") assert.equal(origin.last.body.toString(), "hello");
    });

    test(`response header bytes reach the client unchanged: ${name}`, async () => {
      const res = await request(gw.at("/r"), { method, body: typeof body === "function" ? body() : body });
      assert.equal(res.status, 200, res.text);
      assert.equal(bytesOf(res.headers["x-out-utf8"]), "636166c3a9");
      assert.equal(bytesOf(res.headers["x-out-latin1"]), "636166e9");
    });
  }

  test("a value a plugin sets is sent UTF-8 encoded, beside the client's bytes", async () => {
    const res = await request(gw.at("/p"), { method: "POST", body: "x", headers: { "x-latin1": LATIN1 } });
    assert.equal(res.status, 200, res.text);
    assert.equal(bytesOf(origin.last.headers["x-plugin"]), "636166c3a9");
    assert.equal(bytesOf(origin.last.headers["x-latin1"]), "636166e9");
  });
});

describe("X-Request-Id named by Connection", () => {
  let gw;
  let origin;
  before(async () => {
    origin = await startOrigin();
    gw = await startGateway({ config: simpleConfig(origin.url) });
  });
  after(async () => {
    await gw?.dispose();
    await origin?.close();
  });

  test("the client's id is not reused: the origin and the client get a new one", async () => {
    const res = await request(gw.at("/id"), { headers: { "x-request-id": "client-id-1", connection: "keep-alive, X-Request-Id" } });
    assert.equal(res.status, 200, res.text);
    const sent = origin.last.headers["x-request-id"];
    assert.match(sent, /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
    assert.equal(res.headers["x-request-id"], sent);
    assert.equal(origin.last.rawHeaders.filter((h) => h.toLowerCase() === "x-request-id").length, 1);
  });

  test("not named, it is reused as before", async () => {
    const res = await request(gw.at("/id"), { headers: { "x-request-id": "client-id-2", connection: "keep-alive" } });
    assert.equal(res.status, 200, res.text);
    assert.equal(origin.last.headers["x-request-id"], "client-id-2");
    assert.equal(res.headers["x-request-id"], "client-id-2");
  });
});
