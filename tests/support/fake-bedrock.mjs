// A fake AWS Bedrock Runtime on 127.0.0.1 for the AI gateway tests: Converse
// (`POST /model/{modelId}/converse`, JSON) and ConverseStream (`POST /model/{modelId}/converse-stream`,
// binary `application/vnd.amazon.eventstream`), each request's SigV4 signature checked with node:crypto
// (written from AWS's documentation, independently of the gateway's Rust signer).
//
// Signature: `Authorization: AWS4-HMAC-SHA256 Credential=<id>/<date>/<region>/bedrock/aws4_request,
// SignedHeaders=..., Signature=...`, `x-amz-date` within 5 minutes, `x-amz-security-token` when the fake
// has a session token (and signed). The canonical path is the path as received, URI-encoded once more.
// A wrong key id is a 403 UnrecognizedClientException, a wrong signature a 403 InvalidSignatureException,
// a missing or wrong token a 403 UnrecognizedClientException, all with `x-amzn-ErrorType` and
// `{"message": ...}` as Bedrock answers.
//
// CountTokens (`POST /model/{modelId}/count-tokens`, `{"input": {"converse": {messages, system}}}`) answers
// `{"inputTokens": words + 3}`, or 400 ValidationException for a model id with `nocount`.
// Answers: `Hello from bedrock (<model>): you said "<last user text>"`, streamed one word per
// contentBlockDelta (each frame written in two pieces, so the gateway sees frames split across reads).
// Behaviour by words in the model id: fail429 (429 ThrottlingException), fail500 (500
// InternalServerException), badreq (400 ValidationException), exception (stream: an exception frame
// after the first word), corrupt (stream: the third frame's CRC broken), cut (stream: ends inside a
// frame), slow (`slowDelayMs`, default 80, inside each frame), tools (calls the first declared tool that no
// toolResult answers yet with {"city": "Paris"}, else answers `called: <names>`).
// Every request is recorded in `requests` ({method, url, model, op, headers, body, json, signature}; and
// `abandonedAt` when the gateway let go of a stream before its end).

import http from "node:http";
import crypto from "node:crypto";

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const sha256 = (data) => crypto.createHash("sha256").update(data).digest("hex");
const hmac = (key, data) => crypto.createHmac("sha256", key).update(data).digest();

// --- binary event stream ----------------------------------------------------------------------------

const CRC_TABLE = (() => {
  const t = new Uint32Array(256);
  for (let i = 0; i < 256; i++) {
    let c = i;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    t[i] = c >>> 0;
  }
  return t;
})();

export function crc32(buf) {
  let c = 0xffffffff;
  for (const b of buf) c = CRC_TABLE[(c ^ b) & 0xff] ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
}

/** One event stream message with string headers. */
export function frame(headers, payload) {
  const parts = [];
  for (const [name, value] of Object.entries(headers)) {
    const n = Buffer.from(name);
    const v = Buffer.from(value);
    const h = Buffer.alloc(1 + n.length + 1 + 2 + v.length);
    h.writeUInt8(n.length, 0);
    n.copy(h, 1);
    h.writeUInt8(7, 1 + n.length);
    h.writeUInt16BE(v.length, 2 + n.length);
    v.copy(h, 4 + n.length);
    parts.push(h);
  }
  const hb = Buffer.concat(parts);
  const pb = Buffer.from(typeof payload === "string" ? payload : JSON.stringify(payload));
  const total = 12 + hb.length + pb.length + 4;
  const out = Buffer.alloc(total);
  out.writeUInt32BE(total, 0);
  out.writeUInt32BE(hb.length, 4);
  out.writeUInt32BE(crc32(out.subarray(0, 8)), 8);
  hb.copy(out, 12);
  pb.copy(out, 12 + hb.length);
  out.writeUInt32BE(crc32(out.subarray(0, total - 4)), total - 4);
  return out;
}

const event = (type, payload) =>
  frame({ ":event-type": type, ":content-type": "application/json", ":message-type": "event" }, {
    ...payload,
    p: "abcdefghijklmnopqrstuvwxyz".slice(0, 3 + (JSON.stringify(payload).length % 20)),
  });

// --- SigV4 ------------------------------------------------------------------------------------------

const uriEncode = (s, keepSlash) =>
  Array.from(Buffer.from(s, "utf8"))
    .map((b) => {
      const c = String.fromCharCode(b);
      if (/[A-Za-z0-9\-_.~]/.test(c) || (keepSlash && c === "/")) return c;
      return "%" + b.toString(16).toUpperCase().padStart(2, "0");
    })
    .join("");

/** Check the request's signature; null when good, else [errorType, message]. */
function verify(req, body, creds, region) {
  const auth = req.headers.authorization ?? "";
  const m = /^AWS4-HMAC-SHA256 Credential=([^/]+)\/(\d{8})\/([^/]+)\/([^/]+)\/aws4_request, SignedHeaders=([^,]+), Signature=([0-9a-f]{64})$/.exec(auth);
  if (!m) return ["IncompleteSignatureException", "Authorization header requires 'Credential', 'SignedHeaders' and 'Signature'."];
  const [, keyId, date, reqRegion, service, signedHeaders, signature] = m;
  if (keyId !== creds.accessKeyId) return ["UnrecognizedClientException", "The security token included in the request is invalid."];
  if (service !== "bedrock" || reqRegion !== region) return ["InvalidSignatureException", `Credential should be scoped to a valid region and service 'bedrock' (${reqRegion}/${service}).`];
  const amzDate = req.headers["x-amz-date"] ?? "";
  const t = /^(\d{4})(\d{2})(\d{2})T(\d{2})(\d{2})(\d{2})Z$/.exec(amzDate);
  if (!t || amzDate.slice(0, 8) !== date) return ["InvalidSignatureException", "x-amz-date is missing or does not match the credential scope."];
  const when = Date.UTC(+t[1], +t[2] - 1, +t[3], +t[4], +t[5], +t[6]);
  if (Math.abs(Date.now() - when) > 5 * 60_000) return ["InvalidSignatureException", "Signature expired."];
  const names = signedHeaders.split(";");
  for (const required of ["host", "x-amz-date", ...(creds.sessionToken ? ["x-amz-security-token"] : [])]) {
    if (!names.includes(required)) return ["InvalidSignatureException", `${required} must be signed.`];
  }
  if (creds.sessionToken && req.headers["x-amz-security-token"] !== creds.sessionToken) {
    return ["UnrecognizedClientException", "The security token included in the request is invalid."];
  }
  const [rawPath, rawQuery = ""] = req.url.split("?");
  const query = rawQuery
    .split("&")
    .filter(Boolean)
    .map((p) => p.split("=").map((x) => uriEncode(decodeURIComponent(x ?? ""), false)))
    .map(([k, v = ""]) => `${k}=${v}`)
    .sort()
    .join("&");
  const canonicalHeaders = names
    .map((n) => `${n}:${String(req.headers[n] ?? "").trim().replace(/\s+/g, " ")}\n`)
    .join("");
  const canonical = [req.method, uriEncode(rawPath, true), query, canonicalHeaders, signedHeaders, sha256(body)].join("\n");
  const scope = `${date}/${region}/bedrock/aws4_request`;
  const toSign = ["AWS4-HMAC-SHA256", amzDate, scope, sha256(canonical)].join("\n");
  let key = hmac("AWS4" + creds.secretAccessKey, date);
  key = hmac(key, region);
  key = hmac(key, "bedrock");
  key = hmac(key, "aws4_request");
  const want = hmac(key, toSign).toString("hex");
  if (want !== signature) {
    return ["InvalidSignatureException", "The request signature we calculated does not match the signature you provided. Check your AWS Secret Access Key and signing method."];
  }
  return null;
}

// --- the fake -----------------------------------------------------------------------------------------

function sendError(res, status, type, message) {
  res.writeHead(status, {
    "content-type": "application/json",
    "x-amzn-errortype": `${type}:http://internal.amazon.com/coral/com.amazon.bedrock/`,
    "x-amzn-requestid": crypto.randomUUID(),
  });
  res.end(JSON.stringify({ message }));
}

const textOf = (content) => (content ?? []).filter((b) => typeof b.text === "string").map((b) => b.text).join("\n");
const words = (s) => s.split(/\s+/).filter(Boolean).length;

/** What the model "says": [{text} | {toolUse}], stopReason. */
function answer(model, json) {
  const messages = json?.messages ?? [];
  const lastUser = [...messages].reverse().find((m) => m.role === "user" && m.content?.some((b) => typeof b.text === "string"));
  const said = textOf(lastUser?.content);
  const tools = json?.toolConfig?.tools ?? [];
  if (model.includes("tools") && tools.length) {
    const calls = new Map();
    for (const m of messages) for (const b of m.content ?? []) if (b.toolUse) calls.set(b.toolUse.toolUseId, b.toolUse.name);
    const answered = [];
    for (const m of messages) for (const b of m.content ?? []) if (b.toolResult) answered.push(calls.get(b.toolResult.toolUseId));
    const next = tools.map((t) => t.toolSpec.name).find((n) => !answered.includes(n));
    if (next) {
      const n = calls.size + 1;
      return {
        blocks: [{ text: "Let me check." }, { toolUse: { toolUseId: `tooluse_fake_${n}`, name: next, input: { city: "Paris" } } }],
        stopReason: "tool_use",
      };
    }
    return { blocks: [{ text: `called: ${answered.join(", ")}` }], stopReason: "end_turn" };
  }
  return { blocks: [{ text: `Hello from bedrock (${model}): you said "${said}"` }], stopReason: "end_turn" };
}

/**
 * Start the fake. Options: credentials {accessKeyId, secretAccessKey, sessionToken?}, region
 * (default us-east-1), port (0), delayMs between stream frames (0).
 */
export async function startFakeBedrock(opts = {}) {
  const creds = opts.credentials;
  const region = opts.region ?? "us-east-1";
  const requests = [];
  const server = http.createServer(async (req, res) => {
    const chunks = [];
    for await (const c of req) chunks.push(c);
    const body = Buffer.concat(chunks);
    let json = null;
    try {
      json = JSON.parse(body.toString("utf8"));
    } catch {}
    const m = /^\/model\/([^/]+)\/(converse|converse-stream|count-tokens)$/.exec(req.url.split("?")[0]);
    const model = m ? decodeURIComponent(m[1]) : null;
    const bad = verify(req, body, creds, region);
    const record = { method: req.method, url: req.url, model, op: m?.[2], headers: { ...req.headers }, body, json, signature: bad ? bad[0] : "ok" };
    requests.push(record);
    res.on("close", () => {
      if (!res.writableFinished) record.abandonedAt = Date.now();
    });
    try {
      if (bad) return sendError(res, 403, bad[0], bad[1]);
      if (!m || req.method !== "POST") return sendError(res, 404, "UnknownOperationException", "unknown operation");
      if (m[2] === "count-tokens") {
        const input = json?.input?.converse;
        if (!input || !Array.isArray(input.messages)) return sendError(res, 400, "ValidationException", "input.converse.messages is required");
        if (model.includes("nocount")) return sendError(res, 400, "ValidationException", "The provided model doesn't support counting tokens.");
        const n = input.messages.reduce((k, msg) => k + words(textOf(msg.content)), 0) + words(textOf(input.system)) + 3;
        res.writeHead(200, { "content-type": "application/json" });
        return res.end(JSON.stringify({ inputTokens: n }));
      }
      if (!json || !Array.isArray(json.messages)) return sendError(res, 400, "ValidationException", "messages is required");
      if (model.includes("fail429")) return sendError(res, 429, "ThrottlingException", "Too many requests, please wait before trying again.");
      if (model.includes("fail500")) return sendError(res, 500, "InternalServerException", "The server encountered an internal error.");
      if (model.includes("badreq")) return sendError(res, 400, "ValidationException", "The provided request is not valid");
      const { blocks, stopReason } = answer(model, json);
      const inputTokens = json.messages.reduce((n, msg) => n + words(textOf(msg.content)), 0) + 2;
      const outputTokens = blocks.reduce((n, b) => n + (b.text ? words(b.text) : 5), 0);
      const usage = { inputTokens, outputTokens, totalTokens: inputTokens + outputTokens };
      if (m[2] === "converse") {
        res.writeHead(200, { "content-type": "application/json", "x-amzn-requestid": crypto.randomUUID() });
        return res.end(JSON.stringify({ output: { message: { role: "assistant", content: blocks } }, stopReason, usage, metrics: { latencyMs: 12 } }));
      }
      const frames = [event("messageStart", { role: "assistant" })];
      blocks.forEach((b, i) => {
        if (b.text !== undefined) {
          const ws = b.text.split(" ");
          ws.forEach((w, j) => {
            frames.push(event("contentBlockDelta", { contentBlockIndex: i, delta: { text: j ? " " + w : w } }));
            if (j === 0 && model.includes("exception")) {
              frames.push(frame({ ":message-type": "exception", ":exception-type": "throttlingException", ":content-type": "application/json" }, { message: "Too many tokens, please wait before trying again." }));
            }
          });
        } else {
          frames.push(event("contentBlockStart", { contentBlockIndex: i, start: { toolUse: { toolUseId: b.toolUse.toolUseId, name: b.toolUse.name } } }));
          const input = JSON.stringify(b.toolUse.input);
          const half = Math.floor(input.length / 2);
          frames.push(event("contentBlockDelta", { contentBlockIndex: i, delta: { toolUse: { input: input.slice(0, half) } } }));
          frames.push(event("contentBlockDelta", { contentBlockIndex: i, delta: { toolUse: { input: input.slice(half) } } }));
        }
        frames.push(event("contentBlockStop", { contentBlockIndex: i }));
      });
      frames.push(event("messageStop", { stopReason }));
      frames.push(event("metadata", { usage, metrics: { latencyMs: 12 } }));
      if (model.includes("corrupt")) frames[2][frames[2].length - 6] ^= 0x01;
      res.writeHead(200, { "content-type": "application/vnd.amazon.eventstream", "x-amzn-requestid": crypto.randomUUID() });
      for (let i = 0; i < frames.length; i++) {
        const f = frames[i];
        if (model.includes("cut") && i === 3) {
          res.write(f.subarray(0, f.length - 9));
          await sleep(20);
          return res.destroy();
        }
        const at = 1 + (i * 7) % (f.length - 1);
        res.write(f.subarray(0, at));
        await sleep(model.includes("slow") ? (opts.slowDelayMs ?? 80) : (opts.delayMs ?? 1));
        res.write(f.subarray(at));
      }
      res.end();
    } catch (e) {
      if (!res.headersSent) sendError(res, 500, "InternalServerException", String(e?.stack));
      else res.destroy();
    }
  });
  await new Promise((r) => server.listen(opts.port ?? 0, "127.0.0.1", r));
  const { port } = server.address();
  return {
    url: `http://127.0.0.1:${port}`,
    requests,
    close: () =>
      new Promise((r) => {
        server.closeAllConnections?.();
        server.close(() => r());
      }),
  };
}
