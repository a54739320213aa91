// The demo origin: a small plain node:http server that edgegate proxies to in `scripts/dev`, the bench and
// the Miniflare tests.
//
//   node tests/support/origin.mjs [--port 9001] [--host 127.0.0.1] [--verbose]
//   import { startOrigin } from "./support/origin.mjs";
//   const origin = await startOrigin({ port: 0 }); // -> { url, port, close() }
//
// Endpoints:
//   /echo, /echo/... and any unknown path   JSON echo: method, path, query, headers, body_length, body
//   /slow?ms=N                              waits N ms (default 1000), then answers JSON {slept_ms}
//   /sse?n=5&interval=200                   text/event-stream: n events spaced by interval ms, then closes
//   /download?mb=N                          streams N MiB (default 1, fractions allowed) of
//                                           application/octet-stream without holding it in memory
//   POST /upload                            consumes the body as a stream, answers JSON {bytes, sha256}
//   /status/N                               answers status N (200..599) with JSON {status}

import http from "node:http";
import { createHash } from "node:crypto";
import { pathToFileURL } from "node:url";

/** Bodies up to this size are echoed back as text in `body`. */
const ECHO_BODY_LIMIT = 64 * 1024;
const CHUNK = Buffer.alloc(64 * 1024, "edgegate-download-".repeat(4));

function sendJson(res, status, value, extraHeaders = {}) {
  const body = JSON.stringify(value);
  res.writeHead(status, {
    "content-type": "application/json",
    "content-length": Buffer.byteLength(body),
    ...extraHeaders,
  });
  res.end(body);
}

function numberParam(query, name, fallback, { min = 0, max = Number.MAX_SAFE_INTEGER } = {}) {
  const raw = query.get(name);
  if (raw === null || raw === "") return fallback;
  const n = Number(raw);
  if (!Number.isFinite(n)) return fallback;
  return Math.min(max, Math.max(min, n));
}

function queryObject(searchParams) {
  const out = {};
  for (const [k, v] of searchParams) {
    if (k in out) out[k] = [].concat(out[k], v);
    else out[k] = v;
  }
  return out;
}

function echo(req, res, url) {
  const chunks = [];
  let length = 0;
  req.on("data", (chunk) => {
    length += chunk.length;
    if (length <= ECHO_BODY_LIMIT) chunks.push(chunk);
  });
  req.on("end", () => {
    const result = {
      method: req.method,
      path: url.pathname,
      query: queryObject(url.searchParams),
      raw_query: url.search,
      headers: req.headers,
      body_length: length,
    };
    if (length > 0 && length <= ECHO_BODY_LIMIT) result.body = Buffer.concat(chunks).toString("utf8");
    sendJson(res, 200, result);
  });
  req.on("error", () => res.destroy());
}

function slow(req, res, url) {
  const ms = numberParam(url.searchParams, "ms", 1000, { max: 600_000 });
  req.resume();
  const timer = setTimeout(() => sendJson(res, 200, { slept_ms: ms }), ms);
  res.on("close", () => clearTimeout(timer));
}

function sse(req, res, url) {
  const n = Math.floor(numberParam(url.searchParams, "n", 5, { max: 100_000 }));
  const interval = numberParam(url.searchParams, "interval", 200, { max: 600_000 });
  req.resume();
  res.writeHead(200, {
    "content-type": "text/event-stream",
    "cache-control": "no-cache",
  });
  res.flushHeaders();
  let sent = 0;
  let timer = null;
  const tick = () => {
    if (sent >= n) {
      res.end();
      return;
    }
    sent += 1;
    res.write(`id: ${sent}\nevent: tick\ndata: ${JSON.stringify({ n: sent, of: n, at: Date.now() })}\n\n`);
    timer = setTimeout(tick, sent >= n ? 0 : interval);
  };
  res.on("close", () => clearTimeout(timer));
  tick();
}

function download(req, res, url) {
  const mb = numberParam(url.searchParams, "mb", 1, { max: 100_000 });
  const total = Math.round(mb * 1024 * 1024);
  req.resume();
  res.writeHead(200, {
    "content-type": "application/octet-stream",
    "content-length": total,
  });
  let remaining = total;
  const pump = () => {
    while (remaining > 0) {
      const n = Math.min(remaining, CHUNK.length);
      remaining -= n;
      const ok = res.write(n === CHUNK.length ? CHUNK : CHUNK.subarray(0, n));
      if (!ok) {
        res.once("drain", pump);
        return;
      }
    }
    res.end();
  };
  res.on("close", () => {
    remaining = 0;
  });
  pump();
}

function upload(req, res) {
  if (req.method !== "POST" && req.method !== "PUT") {
    req.resume();
    sendJson(res, 405, { error: "use POST" }, { allow: "POST, PUT" });
    return;
  }
  const hash = createHash("sha256");
  let bytes = 0;
  req.on("data", (chunk) => {
    bytes += chunk.length;
    hash.update(chunk);
  });
  req.on("end", () => sendJson(res, 200, { bytes, sha256: hash.digest("hex") }));
  req.on("error", () => res.destroy());
}

function status(req, res, code) {
  req.resume();
  if (!(code >= 200 && code <= 599)) {
    sendJson(res, 400, { error: "status must be 200..599" });
    return;
  }
  if (code === 204 || code === 304) {
    res.writeHead(code);
    res.end();
    return;
  }
  sendJson(res, code, { status: code });
}

export function handle(req, res) {
  let url;
  try {
    url = new URL(req.url, "http://origin.invalid");
  } catch {
    req.resume();
    sendJson(res, 400, { error: "bad request target" });
    return;
  }
  const path = url.pathname;
  if (path === "/slow") return slow(req, res, url);
  if (path === "/sse") return sse(req, res, url);
  if (path === "/download") return download(req, res, url);
  if (path === "/upload") return upload(req, res);
  const m = /^\/status\/(\d{3})$/.exec(path);
  if (m) return status(req, res, Number(m[1]));
  return echo(req, res, url);
}

/**
 * Start the origin. Resolves once it listens.
 * @param {{port?: number, host?: string, verbose?: boolean}} [options]
 * @returns {Promise<{url: string, port: number, close: () => Promise<void>}>}
 */
export async function startOrigin({ port = 0, host = "127.0.0.1", verbose = false } = {}) {
  const server = http.createServer((req, res) => {
    if (verbose) {
      const start = Date.now();
      res.on("finish", () =>
        console.log(`origin: ${req.method} ${req.url} -> ${res.statusCode} (${Date.now() - start} ms)`),
      );
    }
    handle(req, res);
  });
  // Load generators keep connections open; don't cut them while a benchmark pauses.
  server.keepAliveTimeout = 65_000;
  await new Promise((resolve, reject) => {
    server.once("error", reject);
    server.listen(port, host, () => {
      server.off("error", reject);
      resolve();
    });
  });
  const actual = server.address().port;
  const hostPart = host.includes(":") ? `[${host}]` : host;
  return {
    url: `http://${hostPart}:${actual}`,
    port: actual,
    server,
    close: () =>
      new Promise((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}

function parseArgs(argv) {
  const opts = { port: Number(process.env.ORIGIN_PORT || 9001), host: "127.0.0.1", verbose: false };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a === "--port") opts.port = Number(argv[++i]);
    else if (a.startsWith("--port=")) opts.port = Number(a.slice(7));
    else if (a === "--host") opts.host = argv[++i];
    else if (a.startsWith("--host=")) opts.host = a.slice(7);
    else if (a === "--verbose" || a === "-v") opts.verbose = true;
    else if (a === "--help" || a === "-h") {
      console.log("usage: node tests/support/origin.mjs [--port 9001] [--host 127.0.0.1] [--verbose]");
      process.exit(0);
    } else {
      console.error(`origin: unknown argument ${a}`);
      process.exit(2);
    }
  }
  if (!Number.isInteger(opts.port) || opts.port < 0 || opts.port > 65535) {
    console.error("origin: --port must be 0..65535");
    process.exit(2);
  }
  return opts;
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const opts = parseArgs(process.argv.slice(2));
  startOrigin(opts).then(
    (origin) => {
      console.log(`origin: listening on ${origin.url}`);
      const stop = () => origin.close().then(() => process.exit(0));
      process.on("SIGINT", stop);
      process.on("SIGTERM", stop);
    },
    (err) => {
      console.error(`origin: cannot listen on ${opts.host}:${opts.port}: ${err.message}`);
      process.exit(1);
    },
  );
}
