// Bodies stream through the gateway in both directions: server-sent events arrive as they are sent,
// and 50 MB uploads and downloads pass intact.
import { describe, test, before, after } from "node:test";
import assert from "node:assert/strict";
import crypto from "node:crypto";
import {
  startGateway,
  startOrigin,
  streamRequest,
  request,
  simpleConfig,
  sleep,
  pseudoRandomChunks,
} from "./support/harness.mjs";

const MB = 1024 * 1024;
const BIG = 50 * MB;

describe("streaming", () => {
  let gw;
  let origin;
  let sseFinishedAt = 0;
  let downloadHash = null;

  before(async () => {
    gw = await startGateway();
    origin = await startOrigin(
      async (req, res) => {
        if (req.url.startsWith("/events")) {
          // Drain the (empty) request body first.
          for await (const _ of req);
          res.writeHead(200, { "content-type": "text/event-stream", "cache-control": "no-cache" });
          res.flushHeaders();
          for (let i = 1; i <= 5; i++) {
            res.write(`id: ${i}\ndata: {"n":${i}}\n\n`);
            if (i < 5) await sleep(200);
          }
          sseFinishedAt = Date.now();
          res.end();
        } else if (req.url.startsWith("/upload")) {
          const hash = crypto.createHash("sha256");
          let bytes = 0;
          for await (const chunk of req) {
            bytes += chunk.length;
            hash.update(chunk);
          }
          res.writeHead(200, { "content-type": "application/json" });
          res.end(JSON.stringify({ bytes, sha256: hash.digest("hex") }));
        } else if (req.url.startsWith("/download")) {
          for await (const _ of req);
          const hash = crypto.createHash("sha256");
          res.writeHead(200, { "content-type": "application/octet-stream", "content-length": String(BIG) });
          for (const chunk of pseudoRandomChunks(BIG, 256 * 1024, 7)) {
            hash.update(chunk);
            if (!res.write(chunk)) await new Promise((r) => res.once("drain", r));
          }
          res.end();
          downloadHash = hash.digest("hex");
        } else {
          for await (const _ of req);
          res.end("?");
        }
      },
      { rawBody: true },
    );
    await gw.putConfig(simpleConfig(origin.url, { service: { timeout_ms: 30000 } }));
  });
  after(async () => {
    await gw?.dispose();
    await origin?.close();
  });

  for (const acceptEncoding of ["identity", "gzip, deflate, br"]) {
    test(`server-sent events arrive one by one, as the origin sends them (accept-encoding: ${acceptEncoding})`, async () => {
      const t0 = Date.now();
      const res = await streamRequest(gw.at("/events"), {
        headers: { accept: "text/event-stream", "accept-encoding": acceptEncoding },
      });
      assert.equal(res.statusCode, 200);
      assert.match(res.headers["content-type"] ?? "", /^text\/event-stream/);
      const arrivals = [];
      let buf = "";
      for await (const chunk of res) {
        buf += chunk.toString("utf8");
        let i;
        while ((i = buf.indexOf("\n\n")) >= 0) {
          const event = buf.slice(0, i);
          buf = buf.slice(i + 2);
          arrivals.push({ at: Date.now() - t0, event });
        }
      }
      assert.equal(arrivals.length, 5, JSON.stringify(arrivals));
      assert.deepEqual(
        arrivals.map((a) => a.event),
        [1, 2, 3, 4, 5].map((n) => `id: ${n}\ndata: {"n":${n}}`),
      );
      const spread = arrivals[4].at - arrivals[0].at;
      assert.ok(spread >= 600, `events arrived within ${spread} ms of each other: buffered? ${JSON.stringify(arrivals)}`);
      const firstBeforeEnd = sseFinishedAt - t0 - arrivals[0].at;
      assert.ok(firstBeforeEnd >= 500, `first event only ${firstBeforeEnd} ms before the origin finished`);
      // Successive events are about 200 ms apart (allowing one to be squeezed by a late predecessor).
      const gaps = arrivals.slice(1).map((a, k) => a.at - arrivals[k].at);
      assert.ok(gaps.filter((g) => g >= 100).length >= 3, `gaps ${gaps.join(", ")} ms`);
    });
  }

  test("timeout_ms bounds the wait for response headers, not a slow streamed body", async () => {
    await gw.putConfig(simpleConfig(origin.url, { service: { timeout_ms: 300 } }));
    try {
      const res = await request(gw.at("/events"), { headers: { "accept-encoding": "identity" } });
      assert.equal(res.status, 200);
      assert.equal(res.text.split("\n\n").filter(Boolean).length, 5, res.text);
    } finally {
      await gw.putConfig(simpleConfig(origin.url, { service: { timeout_ms: 30000 } }));
    }
  });

  test("a 50 MB streamed upload reaches the origin intact", { timeout: 60_000 }, async () => {
    const hash = crypto.createHash("sha256");
    function* body() {
      for (const chunk of pseudoRandomChunks(BIG, 256 * 1024, 3)) {
        hash.update(chunk);
        yield chunk;
      }
    }
    // No content-length: the client streams with chunked encoding.
    const res = await request(gw.at("/upload"), {
      method: "POST",
      headers: { "content-type": "application/octet-stream", "accept-encoding": "identity" },
      body: body(),
      timeoutMs: 60_000,
    });
    assert.equal(res.status, 200, res.text.slice(0, 500));
    const got = res.json();
    assert.equal(got.bytes, BIG);
    assert.equal(got.sha256, hash.digest("hex"));
  });

  test("a 50 MB upload with content-length reaches the origin intact", { timeout: 60_000 }, async () => {
    const hash = crypto.createHash("sha256");
    function* body() {
      for (const chunk of pseudoRandomChunks(BIG, 256 * 1024, 4)) {
        hash.update(chunk);
        yield chunk;
      }
    }
    const res = await request(gw.at("/upload"), {
      method: "PUT",
      headers: {
        "content-type": "application/octet-stream",
        "content-length": String(BIG),
        "accept-encoding": "identity",
      },
      body: body(),
      timeoutMs: 60_000,
    });
    assert.equal(res.status, 200, res.text.slice(0, 500));
    const got = res.json();
    assert.equal(got.bytes, BIG);
    assert.equal(got.sha256, hash.digest("hex"));
  });

  test("a 50 MB download streams to the client intact", { timeout: 60_000 }, async () => {
    const res = await streamRequest(gw.at("/download"), {
      headers: { "accept-encoding": "identity" },
      timeoutMs: 60_000,
    });
    assert.equal(res.statusCode, 200);
    const hash = crypto.createHash("sha256");
    let bytes = 0;
    let reads = 0;
    for await (const chunk of res) {
      bytes += chunk.length;
      reads++;
      hash.update(chunk);
    }
    assert.equal(bytes, BIG);
    assert.ok(reads > 10, `arrived in ${reads} reads`);
    assert.equal(hash.digest("hex"), downloadHash);
  });
});
