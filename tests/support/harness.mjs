// Test harness for the edgegate Worker under Miniflare.
//
// - startGateway(): a Miniflare instance running build/index.js with a CONFIG KV namespace, reload interval 0 (see below),
//   and the Worker's console output captured (one entry per console.* call).
// - putConfig()/putRaw()/setPointer()/rollback(): write configuration the way the CLI does
//   (`config/versions/<n>` first, then the `config/current` pointer).
// - startOrigin(): a throwaway node:http origin on 127.0.0.1 that records every request it gets.
// - request()/streamRequest(): real HTTP requests over node:http (so that Host, Connection, TE... can be set).
//
// EDGEGATE_TEST_RELOAD=<s> (opt-in): startGateway's default CONFIG_RELOAD_SECONDS becomes <s> instead of 0, so
// that most requests take the Worker's synchronous path as in production, and putConfig()/putRaw()/rollback()
// on such a gateway then wait until the next request re-reads the pointer (see `reloadWait`). A test that
// sets its own CONFIG_RELOAD_SECONDS binding keeps it; startGateway's `reload` option does the same per gateway.
//
// Everything listens on 127.0.0.1 only, and every start function registers its cleanup with the caller's
// `t.after`/`after` (or returns a close/dispose function), so tests end by themselves.

import { Miniflare } from "miniflare";
import { before, after } from "node:test";
import os from "node:os";
import http from "node:http";
import net from "node:net";
import crypto from "node:crypto";
import fs from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { spawn } from "node:child_process";

export const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..", "..");
export const SCRIPT = path.join(ROOT, "build", "index.js");

/** True when the Worker has been built (scripts/build). */
export function workerBuilt() {
  return fs.existsSync(SCRIPT);
}

// ---------------------------------------------------------------------------------------------------------
// Miniflare

/**
 * Start the gateway. Returns { mf, url, logs, kv, fetch helpers, dispose }.
 * `logs` collects { level, message, json } for every console line the Worker writes.
 * Options: kvNamespaceId (default "CONFIG"), kvPersist (a directory), bindings (merged over defaults),
 * config (a config object pushed before returning), reload (CONFIG_RELOAD_SECONDS, default EDGEGATE_TEST_RELOAD
 * or 0; with more than 0, putConfig/putRaw/rollback wait until the next request re-reads the pointer), miniflare (extra Miniflare options merged last, e.g.
 * `{ durableObjects: { RATE_LIMITER: "RateLimiter" } }`).
 */
export async function startGateway(opts = {}) {
  if (!workerBuilt()) throw new Error(`${SCRIPT} is missing: run scripts/build first`);
  const logs = [];
  // The reload interval the writers below wait for (opts.reload, else EDGEGATE_TEST_RELOAD), unless the
  // test sets CONFIG_RELOAD_SECONDS itself (then it does its own waiting).
  const reload = opts.bindings?.CONFIG_RELOAD_SECONDS === undefined ? String(opts.reload ?? TEST_RELOAD ?? "0") : undefined;
  const bindings = { CONFIG_RELOAD_SECONDS: reload, ...(opts.bindings ?? {}) };
  const kvId = opts.kvNamespaceId ?? "CONFIG";
  const mf = new Miniflare({
    modules: true,
    scriptPath: SCRIPT,
    modulesRoot: ROOT,
    modulesRules: [{ type: "CompiledWasm", include: ["**/*.wasm"], fallthrough: true }],
    kvNamespaces: { CONFIG: kvId },
    ...(opts.kvPersist ? { kvPersist: opts.kvPersist } : {}),
    bindings,
    compatibilityDate: "2026-05-01",
    host: "127.0.0.1",
    port: 0,
    handleStructuredLogs: (entry) => {
      let json;
      try {
        json = JSON.parse(entry.message);
      } catch {
        json = undefined;
      }
      logs.push({ level: entry.level, message: entry.message, json });
    },
    // Extra Miniflare options (Durable Objects, persistence...), merged last.
    ...(opts.miniflare ?? {}),
  });
  const url = new URL(await mf.ready);
  const kv = await mf.getKVNamespace("CONFIG");
  const gw = {
    mf,
    url,
    kv,
    logs,
    /** Absolute URL on the gateway. */
    at(p) {
      return new URL(p, url).toString();
    },
    putConfig(config) {
      return putConfig(gw, config);
    },
    /** After a test's own KV write (the pointer, `cache/generations`): see afterWrite below. */
    afterWrite() {
      return afterWrite(gw);
    },
    async dispose() {
      await mf.dispose();
    },
  };
  // No request has been made yet: the first one reads the pointer whatever the interval.
  if (opts.config) await putRaw({ kv }, JSON.stringify(opts.config));
  if (reload !== undefined) {
    reloadOf.set(kv, Number(reload) || 0);
    reloadOf.set(mf, Number(reload) || 0);
  }
  return gw;
}

/** EDGEGATE_TEST_RELOAD, if set: the default CONFIG_RELOAD_SECONDS of startGateway. */
export const TEST_RELOAD = process.env.EDGEGATE_TEST_RELOAD?.trim() || undefined;

// The reload interval (s) of each gateway started here, by its KV namespace and its Miniflare instance.
const reloadOf = new WeakMap();

/**
 * After a pointer write: wait until the next request to the gateway re-reads the pointer. The Worker reads it
 * when CONFIG_RELOAD_SECONDS have passed since the end of its last read (src/config.rs `step`, store.rs
 * `ConfigCache::step`); a read under way during the write may end (and restart that interval) a little after
 * it, hence the slack. Nothing to wait for at 0, or without EDGEGATE_TEST_RELOAD (default behaviour).
 */
async function reloadWait(target) {
  const seconds = reloadOf.get(target.kv ?? target) ?? 0;
  if (seconds > 0) await sleep(seconds * 1000 + 250);
}

/**
 * For a test that writes KV itself (the pointer, `cache/generations`, which the Worker re-reads on the same
 * interval) and expects the next request to see it: the same wait as putConfig's (nothing at reload 0).
 */
export const afterWrite = (target) => reloadWait(target);

// ---------------------------------------------------------------------------------------------------------
// Configuration in KV (same layout as crates/core/src/store.rs)

export const POINTER_KEY = "config/current";
export const versionKey = (n) => `config/versions/${n}`;

async function kvOf(target) {
  if (target.kv) return target.kv;
  return target.getKVNamespace("CONFIG");
}

export async function readPointer(target) {
  const kv = await kvOf(target);
  const text = await kv.get(POINTER_KEY);
  return text == null ? null : JSON.parse(text);
}

/** Write a document (object, or raw string for broken ones) as the next version and point at it. */
export async function putRaw(target, text) {
  const kv = await kvOf(target);
  const current = await readPointer(target);
  const version = current ? current.latest + 1 : 1;
  await kv.put(versionKey(version), text);
  const history = current ? [...current.history, current.version] : [];
  const pointer = { version, latest: current ? Math.max(current.latest, version) : version, history };
  await kv.put(POINTER_KEY, JSON.stringify(pointer)); // pointer last
  await reloadWait(target);
  return version;
}

/** `putConfig(mfOrGateway, configObject)`: write `config/versions/<n>`, then the pointer. Returns n. */
export async function putConfig(target, config) {
  return putRaw(target, JSON.stringify(config));
}

/** Point `config/current` back at the previous version in history. Returns the version now in service. */
export async function rollback(target) {
  const kv = await kvOf(target);
  const p = await readPointer(target);
  if (!p || p.history.length === 0) throw new Error("nothing to roll back to");
  const history = p.history.slice(0, -1);
  const version = p.history[p.history.length - 1];
  await kv.put(POINTER_KEY, JSON.stringify({ version, latest: p.latest, history }));
  await reloadWait(target);
  return version;
}

/** Remove every configuration key (pointer and versions). */
export async function clearConfig(target) {
  const kv = await kvOf(target);
  const { keys } = await kv.list({ prefix: "config/" });
  for (const k of keys) await kv.delete(k.name);
}

/** A one-service, one-route config. `route` and `service` fields override the defaults. */
export function simpleConfig(originUrl, { route = {}, service = {} } = {}) {
  return {
    format_version: 1,
    services: [{ name: "origin", url: originUrl, ...service }],
    routes: [{ name: "r", service: "origin", ...route }],
  };
}

// ---------------------------------------------------------------------------------------------------------
// Origins

/**
 * Start a recording origin. `handler(req, res, record)` is optional: by default it answers 200 with a JSON
 * echo of { method, url, headers, body }. `record` is this request's entry in `origin.requests`
 * (its `body` is filled before the handler runs unless `opts.rawBody` is set, in which case the handler
 * reads the request itself).
 * Returns { url, port, requests, hits (getter), server, close() }.
 */
export async function startOrigin(handler, opts = {}) {
  const requests = [];
  const sockets = new Set();
  const server = http.createServer(async (req, res) => {
    const record = {
      method: req.method,
      url: req.url,
      headers: { ...req.headers },
      rawHeaders: req.rawHeaders.slice(),
      body: null,
      at: Date.now(),
    };
    requests.push(record);
    try {
      if (!opts.rawBody) {
        const chunks = [];
        for await (const c of req) chunks.push(c);
        record.body = Buffer.concat(chunks);
      }
      if (handler) {
        await handler(req, res, record);
      } else {
        const body = JSON.stringify({
          method: record.method,
          url: record.url,
          headers: record.headers,
          body: record.body.toString("utf8"),
        });
        res.writeHead(200, { "content-type": "application/json", "x-origin": "yes" });
        res.end(body);
      }
    } catch (e) {
      if (!res.headersSent) {
        res.writeHead(500, { "content-type": "text/plain" });
        res.end(String(e && e.stack));
      } else {
        res.destroy();
      }
    }
  });
  server.on("connection", (s) => {
    sockets.add(s);
    s.on("close", () => sockets.delete(s));
  });
  if (opts.onUpgrade) server.on("upgrade", opts.onUpgrade);
  await new Promise((resolve, reject) => {
    server.once("error", reject);
    server.listen(0, "127.0.0.1", resolve);
  });
  const port = server.address().port;
  return {
    server,
    port,
    url: `http://127.0.0.1:${port}`,
    requests,
    get hits() {
      return requests.length;
    },
    get last() {
      return requests[requests.length - 1];
    },
    async close() {
      for (const s of sockets) s.destroy();
      await new Promise((resolve) => server.close(() => resolve()));
    },
  };
}

/** A 127.0.0.1 port with nothing listening on it (bound, then released). */
export async function closedPort() {
  const srv = net.createServer();
  await new Promise((resolve) => srv.listen(0, "127.0.0.1", resolve));
  const { port } = srv.address();
  await new Promise((resolve) => srv.close(resolve));
  return port;
}

// ---------------------------------------------------------------------------------------------------------
// Client

/**
 * One HTTP request over node:http with full control of headers. `body` may be a string, Buffer, or an
 * async iterable / Readable (streamed with chunked encoding). Resolves once the whole response is read:
 * { status, headers, body (Buffer), text, json() }.
 */
export async function request(url, { method = "GET", headers = {}, body, timeoutMs = 30_000 } = {}) {
  const res = await streamRequest(url, { method, headers, body, timeoutMs });
  const chunks = [];
  for await (const c of res) chunks.push(c);
  const buf = Buffer.concat(chunks);
  return {
    status: res.statusCode,
    headers: res.headers,
    body: buf,
    text: buf.toString("utf8"),
    json() {
      return JSON.parse(buf.toString("utf8"));
    },
  };
}

/** Like request() but resolves with the http.IncomingMessage as soon as headers arrive. */
export function streamRequest(url, { method = "GET", headers = {}, body, timeoutMs = 30_000, agent = false } = {}) {
  return new Promise((resolve, reject) => {
    const req = http.request(url, { method, headers, agent }, (res) => {
      resolve(res);
    });
    req.setTimeout(timeoutMs, () => req.destroy(new Error(`request to ${url} timed out after ${timeoutMs} ms`)));
    req.on("error", reject);
    if (body == null) {
      req.end();
    } else if (typeof body === "string") {
      // As bytes: node:http writes the head together with a first string chunk in that chunk's encoding
      // (UTF-8), so a header value's bytes 80..FF would each go out as two (nodejs/node#42579).
      req.end(Buffer.from(body, "utf8"));
    } else if (Buffer.isBuffer(body) || body instanceof Uint8Array) {
      req.end(body);
    } else {
      (async () => {
        try {
          for await (const chunk of body) {
            if (!req.write(chunk)) await new Promise((r) => req.once("drain", r));
          }
          req.end();
        } catch (e) {
          req.destroy(e);
        }
      })();
    }
  });
}

/**
 * Request headers that make Miniflare give the Worker this `request.cf` object (e.g. `{ country: "DE" }`)
 * instead of its default one: the `MF-CF-Blob` header, which Miniflare reads (the Worker still sees the
 * header; Cloudflare gives it no meaning). `headers` are merged in.
 */
export function withCf(cf, headers = {}) {
  return { ...headers, "mf-cf-blob": JSON.stringify(cf) };
}

export const sha256 = (buf) => crypto.createHash("sha256").update(buf).digest("hex");

export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/** Deterministic pseudo-random bytes, generated in chunks (for big bodies without holding them in memory). */
export function* pseudoRandomChunks(totalBytes, chunkSize = 64 * 1024, seed = 1) {
  let x = seed >>> 0 || 1;
  let left = totalBytes;
  while (left > 0) {
    const n = Math.min(chunkSize, left);
    const b = Buffer.allocUnsafe(n);
    for (let i = 0; i < n; i += 4) {
      // xorshift32
      x ^= x << 13;
      x >>>= 0;
      x ^= x >>> 17;
      x ^= x << 5;
      x >>>= 0;
      b[i] = x & 0xff;
      if (i + 1 < n) b[i + 1] = (x >>> 8) & 0xff;
      if (i + 2 < n) b[i + 2] = (x >>> 16) & 0xff;
      if (i + 3 < n) b[i + 3] = (x >>> 24) & 0xff;
    }
    left -= n;
    yield b;
  }
}

/** Wait until `fn()` returns truthy (polling), or throw after `timeoutMs`. */
export async function waitFor(fn, { timeoutMs = 3000, intervalMs = 20, what = "condition" } = {}) {
  const end = Date.now() + timeoutMs;
  for (;;) {
    const v = await fn();
    if (v) return v;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await sleep(intervalMs);
  }
}

/** Assert helper: the body is an RFC 9457 problem with this status and code, and request_id = header. */
export function problemOf(res) {
  const ct = res.headers["content-type"] || "";
  if (!ct.startsWith("application/problem+json")) {
    throw new Error(`expected application/problem+json, got ${ct}: ${res.text.slice(0, 300)}`);
  }
  return res.json();
}

// ---------------------------------------------------------------------------------------------------------
// Minimal WebSocket (RFC 6455) pieces: enough for a text echo, no extensions, no fragmentation.

const WS_GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";

export const wsAccept = (key) => crypto.createHash("sha1").update(key + WS_GUID).digest("base64");

/** Encode one frame. Client frames must be masked (RFC 6455 5.3); server frames must not. */
export function wsEncode(payload, { opcode = 0x1, mask = false } = {}) {
  const data = Buffer.isBuffer(payload) ? payload : Buffer.from(String(payload), "utf8");
  const len = data.length;
  let header;
  if (len < 126) {
    header = Buffer.from([0x80 | opcode, (mask ? 0x80 : 0) | len]);
  } else if (len < 65536) {
    header = Buffer.alloc(4);
    header[0] = 0x80 | opcode;
    header[1] = (mask ? 0x80 : 0) | 126;
    header.writeUInt16BE(len, 2);
  } else {
    header = Buffer.alloc(10);
    header[0] = 0x80 | opcode;
    header[1] = (mask ? 0x80 : 0) | 127;
    header.writeBigUInt64BE(BigInt(len), 2);
  }
  if (!mask) return Buffer.concat([header, data]);
  const key = crypto.randomBytes(4);
  const masked = Buffer.alloc(len);
  for (let i = 0; i < len; i++) masked[i] = data[i] ^ key[i % 4];
  return Buffer.concat([header, key, masked]);
}

/**
 * Incremental frame decoder: feed(chunk) returns the complete frames so far as
 * { fin, opcode, payload (Buffer, unmasked) }.
 */
export function wsDecoder() {
  let buf = Buffer.alloc(0);
  return {
    feed(chunk) {
      buf = Buffer.concat([buf, chunk]);
      const frames = [];
      for (;;) {
        if (buf.length < 2) break;
        const fin = (buf[0] & 0x80) !== 0;
        const opcode = buf[0] & 0x0f;
        const masked = (buf[1] & 0x80) !== 0;
        let len = buf[1] & 0x7f;
        let off = 2;
        if (len === 126) {
          if (buf.length < 4) break;
          len = buf.readUInt16BE(2);
          off = 4;
        } else if (len === 127) {
          if (buf.length < 10) break;
          len = Number(buf.readBigUInt64BE(2));
          off = 10;
        }
        const maskLen = masked ? 4 : 0;
        if (buf.length < off + maskLen + len) break;
        const key = masked ? buf.subarray(off, off + 4) : null;
        const payload = Buffer.from(buf.subarray(off + maskLen, off + maskLen + len));
        if (key) for (let i = 0; i < len; i++) payload[i] ^= key[i % 4];
        frames.push({ fin, opcode, payload });
        buf = buf.subarray(off + maskLen + len);
      }
      return frames;
    },
  };
}

/**
 * An origin 'upgrade' handler: completes the handshake and echoes text/binary frames back ("echo: " is
 * prepended to text), answers ping with pong, and closes on close. `upgrades` records the requests.
 */
export function wsEchoUpgradeHandler(upgrades = []) {
  return (req, socket) => {
    upgrades.push({ url: req.url, headers: { ...req.headers } });
    const key = req.headers["sec-websocket-key"];
    if (!key || String(req.headers.upgrade).toLowerCase() !== "websocket") {
      socket.end("HTTP/1.1 400 Bad Request\r\ncontent-length: 0\r\n\r\n");
      return;
    }
    socket.write(
      "HTTP/1.1 101 Switching Protocols\r\n" +
        "Upgrade: websocket\r\n" +
        "Connection: Upgrade\r\n" +
        `Sec-WebSocket-Accept: ${wsAccept(key)}\r\n` +
        "x-origin-ws: yes\r\n\r\n",
    );
    const dec = wsDecoder();
    socket.on("data", (chunk) => {
      for (const f of dec.feed(chunk)) {
        if (f.opcode === 0x1) socket.write(wsEncode("echo: " + f.payload.toString("utf8")));
        else if (f.opcode === 0x2) socket.write(wsEncode(f.payload, { opcode: 0x2 }));
        else if (f.opcode === 0x9) socket.write(wsEncode(f.payload, { opcode: 0xa }));
        else if (f.opcode === 0x8) {
          socket.end(wsEncode(f.payload, { opcode: 0x8 }));
        }
      }
    });
    socket.on("error", () => {});
  };
}

/**
 * Open a WebSocket client connection to `url` (http://...). Resolves with
 * { status, headers, send(text), next(timeoutMs) -> frame, close() } after a 101, or rejects with the
 * non-101 response's status and body.
 */
export function wsConnect(url, { headers = {}, timeoutMs = 5000 } = {}) {
  return new Promise((resolve, reject) => {
    const key = crypto.randomBytes(16).toString("base64");
    const req = http.request(url, {
      agent: false,
      headers: {
        connection: "Upgrade",
        upgrade: "websocket",
        "sec-websocket-version": "13",
        "sec-websocket-key": key,
        ...headers,
      },
    });
    const timer = setTimeout(() => req.destroy(new Error("websocket handshake timed out")), timeoutMs);
    req.on("error", (e) => {
      clearTimeout(timer);
      reject(e);
    });
    req.on("response", (res) => {
      clearTimeout(timer);
      const chunks = [];
      res.on("data", (c) => chunks.push(c));
      res.on("end", () => {
        const err = new Error(`expected 101, got ${res.statusCode}: ${Buffer.concat(chunks).toString()}`);
        err.status = res.statusCode;
        err.headers = res.headers;
        reject(err);
      });
    });
    req.on("upgrade", (res, socket, head) => {
      clearTimeout(timer);
      const dec = wsDecoder();
      const queue = [];
      const waiters = [];
      const push = (frames) => {
        for (const f of frames) {
          const w = waiters.shift();
          if (w) w(f);
          else queue.push(f);
        }
      };
      socket.on("data", (c) => push(dec.feed(c)));
      socket.on("error", () => {});
      if (head && head.length) push(dec.feed(head));
      resolve({
        status: res.statusCode,
        headers: res.headers,
        expectedAccept: wsAccept(key),
        send(text) {
          socket.write(wsEncode(text, { mask: true }));
        },
        next(ms = 5000) {
          if (queue.length) return Promise.resolve(queue.shift());
          return new Promise((res2, rej2) => {
            const t = setTimeout(() => rej2(new Error("no websocket frame within " + ms + " ms")), ms);
            waiters.push((f) => {
              clearTimeout(t);
              res2(f);
            });
          });
        },
        close() {
          try {
            socket.write(wsEncode(Buffer.from([0x03, 0xe8]), { opcode: 0x8, mask: true }));
          } catch {
            // already gone
          }
          socket.destroy();
        },
      });
    });
    req.end();
  });
}

/**
 * Send `head` (request line and header lines, no final blank line) and `body` on a raw socket, with
 * `Connection: close`; resolves with `{ status, text }` (the response as latin1 text) at its end.
 */
export function raw(url, head, body = "") {
  return new Promise((resolve, reject) => {
    const socket = net.connect(Number(url.port), url.hostname);
    const chunks = [];
    const timer = setTimeout(() => socket.destroy(new Error("raw request timed out")), 15_000);
    // Done at the end of the response (the runtime may keep the connection open a while after it).
    const done = () => {
      clearTimeout(timer);
      const text = Buffer.concat(chunks).toString("latin1");
      resolve({ status: Number(text.split(" ")[1]), text });
      socket.destroy();
    };
    socket.on("data", (c) => {
      chunks.push(c);
      const text = Buffer.concat(chunks).toString("latin1");
      const end = text.indexOf("\r\n\r\n");
      if (end < 0) return;
      const head = text.slice(0, end).toLowerCase();
      const length = /\r\ncontent-length: *([0-9]+)/.exec(head);
      if (length && text.length - end - 4 >= Number(length[1])) done();
      else if (/\r\ntransfer-encoding: *chunked/.test(head) && text.endsWith("\r\n0\r\n\r\n")) done();
    });
    socket.on("error", (e) => {
      clearTimeout(timer);
      reject(e);
    });
    socket.on("close", done);
    socket.write(Buffer.from(`${head}\r\nConnection: close\r\n\r\n${body}`, "latin1"));
  });
}

/** The KV namespace id wrangler.toml gives the CONFIG binding (wrangler's local state is keyed by it). */
export function configNamespaceId() {
  const toml = fs.readFileSync(path.join(ROOT, "wrangler.toml"), "utf8");
  for (const block of toml.split("[[kv_namespaces]]").slice(1)) {
    if (/binding\s*=\s*"CONFIG"/.test(block)) {
      const m = /^\s*id\s*=\s*"([^"]+)"/m.exec(block);
      if (m) return m[1];
    }
  }
  throw new Error("no CONFIG kv_namespaces entry with an id in wrangler.toml");
}

// Runs a command in the repository (the CLI, scripts), collecting its output: { code, stdout, stderr }.
// The repository's node_modules/.bin comes first on PATH (the CLI runs wrangler), as under scripts/test.
export function run(cmd, args) {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, {
      cwd: ROOT,
      env: { ...process.env, WRANGLER_SEND_METRICS: "false", PATH: `${path.join(ROOT, "node_modules", ".bin")}:${process.env.PATH}` },
      stdio: ["ignore", "pipe", "pipe"],
    });
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (d) => (stdout += d));
    child.stderr.on("data", (d) => (stderr += d));
    child.on("error", reject);
    child.on("close", (code) => resolve({ code, stdout, stderr }));
  });
}

// ---------------------------------------------------------------------------------------------------------
// Configuration versions seen from the Worker (any CONFIG_RELOAD_SECONDS)

/**
 * Push `doc` and wait until the gateway serves it: probe requests (`OPTIONS /__probe`) until one's access
 * log line names the new version. Throws at once when the gateway rejects it. Returns the version.
 */
export async function putAndWait(gw, doc) {
  const version = await gw.putConfig(doc);
  const rejection = () => gw.logs.find((l) => l.json?.event === "config_rejected" && l.json.version === version);
  await waitFor(
    async () => {
      await request(gw.at("/__probe"), { method: "OPTIONS" });
      if (rejection()) throw new Error(`version ${version} rejected: ${JSON.stringify(rejection().json.error)}`);
      return gw.logs.some((l) => l.json?.event === "request" && l.json.path === "/__probe" && l.json.config_version === version);
    },
    { what: `version ${version} in service`, timeoutMs: 10_000 },
  );
  return version;
}

/** Push `doc`, which the gateway must refuse (the previous version stays in service); its `error`. */
export async function rejected(gw, doc) {
  const version = await gw.putConfig(doc);
  const line = await waitFor(
    async () => {
      await request(gw.at("/__probe"), { method: "OPTIONS" });
      return gw.logs.find((l) => l.json?.event === "config_rejected" && l.json.version === version);
    },
    { what: `version ${version} rejected`, timeoutMs: 10_000 },
  );
  return line.json.error;
}

/**
 * For a `describe` whose tests write credentials with the CLI: in its `before`, builds `edgegate-config`, makes a
 * temporary wrangler local state, starts an origin and a gateway persisting KV there (AUTH_CACHE_SECONDS 1)
 * serving the route `r` (`/api`, service `o`) with `plugins`; its `after` disposes of them. Returns the object
 * `before` fills: `{ gw, origin, persist, cli }`, where `cli(...args)` runs the CLI with `--local --persist-to`,
 * asserts exit 0 and resolves to its stdout.
 */
export function cliGateway(prefix, plugins) {
  const bin = path.join(ROOT, "target", "release", "edgegate-config");
  const env = {};
  let dir;
  env.cli = async (...args) => {
    const r = await run(bin, [...args, "--local", "--persist-to", env.persist]);
    if (r.code !== 0) throw new Error(`edgegate-config ${args.join(" ")} exited ${r.code}: ${r.stderr}`);
    return r.stdout;
  };
  before(async () => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), prefix));
    env.persist = path.join(dir, "state");
    env.origin = await startOrigin();
    const built = await run("cargo", ["build", "-q", "--release", "-p", "edgegate-cli"]);
    if (built.code !== 0) throw new Error(`cargo build -p edgegate-cli failed: ${built.stderr}`);
    env.gw = await startGateway({
      kvPersist: path.join(env.persist, "v3", "kv"),
      kvNamespaceId: configNamespaceId(),
      bindings: { AUTH_CACHE_SECONDS: "1" },
    });
    await env.gw.putConfig({
      format_version: 1,
      services: [{ name: "o", url: env.origin.url }],
      routes: [{ name: "r", service: "o", paths: ["/api"] }],
      plugins,
    });
  });
  after(async () => {
    await env.gw?.dispose();
    await env.origin?.close();
    if (dir) fs.rmSync(dir, { recursive: true, force: true });
  });
  return env;
}
