// Fake Google Vertex AI on 127.0.0.1, for tests/ai-vertex.test.mjs: Google's OAuth token endpoint and the
// Vertex model API, one HTTP server.
//
//   POST /token   grant_type=urn:ietf:params:oauth:grant-type:jwt-bearer&assertion=<JWT>
//       The assertion must be an RS256 JWT (header {alg: RS256, typ: JWT}) signed by the private key of a
//       service account registered with addAccount(client_email, publicKey), verified here with node:crypto;
//       claims iss = that client_email, scope = https://www.googleapis.com/auth/cloud-platform, aud = this
//       endpoint's URL, iat within 60 s of now, exp = iat + 3600 at most. Answers
//       {access_token, expires_in, token_type: "Bearer"} (expires_in 3600, or what setExpiresIn gave for the
//       account; after the account's delayMs; 503 while setDown(account, true)), else 400 {error: "invalid_grant", error_description} as Google does.
//   POST /v1/projects/{project}/locations/{region}/publishers/google/models/{model}:generateContent
//                                                                       :streamGenerateContent?alt=sse
//   POST /v1/projects/{project}/locations/{region}/publishers/anthropic/models/{model}:rawPredict
//                                                                           :streamRawPredict
//       Need `Authorization: Bearer <a token issued here, not expired, not revoked>` (else 401
//       UNAUTHENTICATED in Google's error shape). Claude bodies must have no `model` and
//       `anthropic_version: "vertex-2023-10-16"` (else 400 in Anthropic's shape), `stream` matching the
//       method. Then answered by the fake Gemini / Anthropic providers of fake-providers.mjs (the request
//       forwarded with the model from the URL), so the same words in model names pick the same behaviours
//       (`tools`, `fail429`, `cut`, ...) and answers read `Hello from gemini|anthropic (<model>): ...`.
//
//   POST …/publishers/google/models/{model}:countTokens  ({contents, systemInstruction, tools} -> totalTokens)
//   POST …/publishers/anthropic/models/count-tokens:rawPredict  (Anthropic's count_tokens body, model in
//       it -> {input_tokens}); both counted by fake-providers.mjs.
//
// Recorded: `tokenRequests` ({iss, ok, error, at}), `requests` ({publisher, project, region, model, method,
// headers, json, token, at}).

import http from "node:http";
import crypto from "node:crypto";
import { startFakeProviders } from "./fake-providers.mjs";

const SCOPE = "https://www.googleapis.com/auth/cloud-platform";

export async function startFakeVertex(opts = {}) {
  const inner = await startFakeProviders({ slowDelayMs: opts.slowDelayMs ?? 120 });
  const accounts = new Map(); // client_email -> {publicKey, expiresIn}
  const tokens = new Map(); // access token -> {iss, expiresAt}
  const tokenRequests = [];
  const requests = [];
  const sockets = new Set();
  let tokenUrl = "";

  const server = http.createServer(async (req, res) => {
    const chunks = [];
    for await (const c of req) chunks.push(c);
    const body = Buffer.concat(chunks);
    const url = new URL(req.url, "http://x");
    try {
      if (req.method === "POST" && url.pathname === "/token") return token(body, res);
      const m = /^\/v1\/projects\/([^/]+)\/locations\/([^/]+)\/publishers\/(google|anthropic)\/models\/([^/:]+):(\w+)$/.exec(url.pathname);
      if (req.method !== "POST" || !m) return send(res, 404, { error: { code: 404, message: "Not found", status: "NOT_FOUND" } });
      const [, project, region, publisher, model, method] = m.map(decodeURIComponent);
      let json = null;
      try {
        json = JSON.parse(body.toString("utf8"));
      } catch {}
      const auth = req.headers.authorization ?? "";
      const bearer = auth.startsWith("Bearer ") ? auth.slice(7) : null;
      const record = { publisher, project, region, model, method, search: url.search, headers: { ...req.headers }, json, token: bearer, at: Date.now() };
      requests.push(record);
      const t = bearer && tokens.get(bearer);
      if (!t || t.expiresAt <= Date.now()) {
        record.refused = true;
        return send(res, 401, {
          error: { code: 401, message: "Request had invalid authentication credentials. Expected OAuth 2 access token.", status: "UNAUTHENTICATED" },
        });
      }
      if (publisher === "google") {
        if (method === "countTokens") {
          if (json?.generateContentRequest || !Array.isArray(json?.contents)) {
            return send(res, 400, { error: { code: 400, message: "countTokens takes contents", status: "INVALID_ARGUMENT" } });
          }
          return forward(res, `/gemini/v1beta/models/${encodeURIComponent(model)}:countTokens`, body, {});
        }
        if (!["generateContent", "streamGenerateContent"].includes(method)) return send(res, 400, { error: { code: 400, message: `unknown method ${method}`, status: "INVALID_ARGUMENT" } });
        if ((method === "streamGenerateContent") !== (url.searchParams.get("alt") === "sse")) {
          return send(res, 400, { error: { code: 400, message: "streamGenerateContent takes alt=sse here", status: "INVALID_ARGUMENT" } });
        }
        return forward(res, `/gemini/v1beta/models/${encodeURIComponent(model)}:${method}${url.search}`, body, {});
      }
      const bad = (message) => send(res, 400, { type: "error", error: { type: "invalid_request_error", message } });
      if (!["rawPredict", "streamRawPredict"].includes(method)) return bad(`unknown method ${method}`);
      if (!json || typeof json !== "object") return bad("the body is not JSON");
      if (model === "count-tokens") {
        if (method !== "rawPredict" || typeof json.model !== "string") return bad("model: Field required");
        return forward(res, "/anthropic/v1/messages/count_tokens", body, { "anthropic-version": "2023-06-01" });
      }
      if ("model" in json) return bad("model: Extra inputs are not permitted");
      if (json.anthropic_version !== "vertex-2023-10-16") return bad("anthropic_version: Input should be 'vertex-2023-10-16'");
      if ((method === "streamRawPredict") !== (json.stream === true)) return bad(`${method} with stream ${json.stream}`);
      const { anthropic_version, ...rest } = json;
      const headers = { "anthropic-version": "2023-06-01" };
      if (req.headers["anthropic-beta"]) headers["anthropic-beta"] = req.headers["anthropic-beta"];
      return forward(res, "/anthropic/v1/messages", Buffer.from(JSON.stringify({ model, ...rest })), headers);
    } catch (e) {
      if (!res.headersSent) send(res, 500, { error: { code: 500, message: String(e?.stack), status: "INTERNAL" } });
      else res.destroy();
    }
  });

  async function token(body, res) {
    const form = new URLSearchParams(body.toString("utf8"));
    const fail = (iss, why) => {
      tokenRequests.push({ iss, ok: false, error: why, at: Date.now() });
      send(res, 400, { error: "invalid_grant", error_description: why });
    };
    if (form.get("grant_type") !== "urn:ietf:params:oauth:grant-type:jwt-bearer") return fail(null, "Invalid grant_type");
    const parts = (form.get("assertion") ?? "").split(".");
    if (parts.length !== 3) return fail(null, "Invalid JWT");
    let header, claims;
    try {
      header = JSON.parse(Buffer.from(parts[0], "base64url").toString("utf8"));
      claims = JSON.parse(Buffer.from(parts[1], "base64url").toString("utf8"));
    } catch {
      return fail(null, "Invalid JWT");
    }
    const account = accounts.get(claims.iss);
    if (header.alg !== "RS256" || header.typ !== "JWT") return fail(claims.iss, "Invalid JWT header");
    if (!account) return fail(claims.iss, "Invalid issuer");
    const signed = crypto.verify("sha256", Buffer.from(`${parts[0]}.${parts[1]}`), account.publicKey, Buffer.from(parts[2], "base64url"));
    if (!signed) return fail(claims.iss, "Invalid JWT Signature.");
    const now = Date.now() / 1000;
    if (claims.scope !== SCOPE) return fail(claims.iss, "Invalid scope");
    if (claims.aud !== tokenUrl) return fail(claims.iss, "Invalid JWT audience");
    if (!(Math.abs(claims.iat - now) < 60) || !(claims.exp > claims.iat && claims.exp - claims.iat <= 3600)) {
      return fail(claims.iss, "Invalid JWT: Token must be a short-lived token (60 minutes) and in a reasonable timeframe.");
    }
    if (account.delayMs) await new Promise((r) => setTimeout(r, account.delayMs));
    if (account.down) {
      tokenRequests.push({ iss: claims.iss, ok: false, error: "down", at: Date.now() });
      return send(res, 503, { error: "internal_failure", error_description: "The service is currently unavailable." });
    }
    const accessToken = "ya29.fake-" + crypto.randomBytes(24).toString("base64url");
    tokens.set(accessToken, { iss: claims.iss, expiresAt: Date.now() + account.expiresIn * 1000 });
    tokenRequests.push({ iss: claims.iss, ok: true, claims, at: Date.now(), token: accessToken });
    send(res, 200, { access_token: accessToken, expires_in: account.expiresIn, token_type: "Bearer" });
  }

  function forward(res, path, body, headers) {
    const up = http.request(
      `${inner.url}${path}`,
      { method: "POST", headers: { "content-type": "application/json", "content-length": body.length, ...headers } },
      (r) => {
        res.writeHead(r.statusCode, r.headers);
        res.flushHeaders();
        r.pipe(res);
        r.on("error", () => res.destroy());
        r.on("aborted", () => res.destroy());
      },
    );
    up.on("error", () => res.destroy());
    res.on("close", () => {
      if (!res.writableFinished) up.destroy();
    });
    up.end(body);
  }

  server.on("connection", (s) => {
    sockets.add(s);
    s.on("close", () => sockets.delete(s));
  });
  await new Promise((resolve) => server.listen(opts.port ?? 0, "127.0.0.1", resolve));
  const { port } = server.address();
  const url = `http://127.0.0.1:${port}`;
  tokenUrl = `${url}/token`;
  return {
    port,
    url,
    tokenUrl,
    tokenRequests,
    requests,
    /** Accept assertions signed by `publicKey` (a KeyObject or PEM) for `clientEmail`; its tokens live
     * `expiresIn` seconds and are issued after `delayMs`. */
    addAccount(clientEmail, publicKey, { expiresIn = 3600, delayMs = 0 } = {}) {
      accounts.set(clientEmail, { publicKey, expiresIn, delayMs });
    },
    /** Tokens issued from now on for `clientEmail` live `seconds`. */
    setExpiresIn(clientEmail, seconds) {
      accounts.get(clientEmail).expiresIn = seconds;
    },
    /** Answer the account's token requests 503 (`down` true) or normally again. */
    setDown(clientEmail, down) {
      accounts.get(clientEmail).down = down;
    },
    /** Refuse every token issued so far (as if revoked). */
    revokeAll() {
      tokens.clear();
    },
    tokensFor(clientEmail) {
      return tokenRequests.filter((t) => t.iss === clientEmail && t.ok);
    },
    async close() {
      for (const s of sockets) s.destroy();
      await new Promise((resolve) => server.close(resolve));
      await inner.close();
    },
  };
}

function send(res, status, value, headers = {}) {
  const text = JSON.stringify(value);
  res.writeHead(status, { "content-type": "application/json", "content-length": Buffer.byteLength(text), ...headers });
  res.end(text);
}
