/**
 * Who may call the REST facade: CORS for browser pages (the WCS demo pages post JSON cross-origin with
 * jQuery) and an optional shared API token. Both live in one fastify `onRequest` hook, so they run before
 * the body is read or parsed, and for unknown paths under the prefix too (the 404 handler has hooks).
 *
 * Per request under the prefix, in this order:
 *  1. CORS preflight (OPTIONS): answered here and never reaches the token check (browsers send no custom
 *     headers, so no token, on a preflight). Allowed origin: 204 with the Access-Control-* headers;
 *     disallowed: 403 JSON error. A bare OPTIONS without Origin is not a preflight: 204 with `Allow`.
 *  2. An allowed Origin gets `Access-Control-Allow-Origin: <that origin>` set now, so every later answer
 *     (401 below, 400/404/413/415 from the error handlers, 200) carries it and the page can read it.
 *  3. API token (when configured): `X-Api-Token: <t>` or `Authorization: Bearer <t>`, else 401.
 *
 * A non-preflight request from a disallowed origin is still processed, only without CORS headers. That
 * is safe because:
 *  - the token, when configured, is still checked (step 3), and the page cannot read the answer anyway;
 *  - without a token (only allowed on loopback, see config.ts) a foreign page can send only a "simple"
 *    request: no custom headers and a Content-Type of text/plain, form-urlencoded or multipart. Every
 *    call that changes state needs a JSON object body: text/plain parses to a string, which asBody()
 *    rejects (400), and the other two have no parser (415). application/json forces a preflight, which
 *    step 1 refuses. What is left (find_all with any body) has no effect and its answer is unreadable;
 *  - server-to-server callers (curl, backends) send no Origin at all and must keep working.
 */
import { createHash, timingSafeEqual } from 'node:crypto';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';

export interface AccessOptions {
  /** REST prefix, e.g. "/rest-api"; "" means the whole server. */
  prefix: string;
  /** Allowed browser origins, scheme://host[:port]; "*" allows any; empty allows none. */
  corsOrigins: string[];
  /** Shared API token; empty means none is required. */
  apiToken: string;
  /**
   * Pages a browser loads by navigation, which can carry no token header (the console, /docs): GET and
   * HEAD at these paths (or below them) skip the token check even when the prefix is "" (the whole server).
   */
  publicPages?: string[];
}

/** Request headers a cross-origin page may send (lower case). */
const ALLOWED_REQUEST_HEADERS = new Set(['content-type', 'x-api-token', 'authorization', 'x-requested-with']);
const ALLOWED_METHODS = 'POST, OPTIONS';
const PREFLIGHT_MAX_AGE_SEC = '600';
/** Longest origin repeated back in a 403 body (the header is client-controlled). */
const MAX_ECHOED_ORIGIN = 200;

export function registerAccess(app: FastifyInstance, opts: AccessOptions): void {
  const prefix = opts.prefix.replace(/\/+$/, '');
  const anyOrigin = opts.corsOrigins.includes('*');
  const origins = new Set(opts.corsOrigins.map(normalizeOrigin).filter(Boolean));
  const corsEnabled = anyOrigin || origins.size > 0;
  // Only the digest of the token is kept in a variable the hook touches; never logged nor echoed.
  const expected = opts.apiToken ? sha256(opts.apiToken) : undefined;

  const isUnder = (path: string): boolean => prefix === '' || path === prefix || path.startsWith(`${prefix}/`);
  const isAllowedOrigin = (origin: string): boolean => anyOrigin || origins.has(normalizeOrigin(origin));
  const pages = opts.publicPages ?? [];
  const isPublicPage = (path: string): boolean => pages.some((p) => path === p || (p !== '/' && path.startsWith(`${p}/`)));

  app.addHook('onRequest', async (req: FastifyRequest, reply: FastifyReply) => {
    if (!underPrefix(req, isUnder)) return;
    if ((req.method === 'GET' || req.method === 'HEAD') && isPublicPage(req.url.split('?')[0] ?? '')) return;
    const origin = headerValue(req.headers.origin);

    if (req.method === 'OPTIONS') {
      if (origin === undefined) {
        return reply.code(204).header('allow', ALLOWED_METHODS).send();
      }
      if (corsEnabled) addVary(reply, 'Origin', 'Access-Control-Request-Headers');
      if (!isAllowedOrigin(origin)) {
        const shown = origin.length > MAX_ECHOED_ORIGIN ? `${origin.slice(0, MAX_ECHOED_ORIGIN)}...` : origin;
        return sendError(reply, 403, `origin ${shown} is not allowed (CORS_ORIGINS)`);
      }
      reply
        .header('access-control-allow-origin', origin)
        .header('access-control-allow-methods', ALLOWED_METHODS)
        .header('access-control-max-age', PREFLIGHT_MAX_AGE_SEC);
      const requested = allowedRequestHeaders(headerValue(req.headers['access-control-request-headers']));
      if (requested) reply.header('access-control-allow-headers', requested);
      return reply.code(204).send();
    }

    // The answer depends on Origin whenever CORS is on: tell caches, whatever the origin (or none).
    if (corsEnabled) addVary(reply, 'Origin');
    if (origin !== undefined && isAllowedOrigin(origin)) reply.header('access-control-allow-origin', origin);

    if (expected && !hasToken(req, expected)) {
      reply.header('www-authenticate', 'Bearer');
      return sendError(reply, 401, 'missing or wrong API token (X-Api-Token header)');
    }
    return;
  });
}

/**
 * Under the prefix by the raw path, its percent-decoded form, or the route fastify matched: the router
 * decodes %-escapes, so `/rest%2Dapi/call/startup` reaches a `/rest-api/...` route and must not slip
 * past the token check.
 */
function underPrefix(req: FastifyRequest, isUnder: (path: string) => boolean): boolean {
  const raw = req.url.split('?')[0] ?? '';
  if (isUnder(raw)) return true;
  let decoded = raw;
  try {
    decoded = decodeURIComponent(raw);
  } catch {
    // malformed escape: fall through to the matched-route check
  }
  if (decoded !== raw && isUnder(decoded)) return true;
  const route = req.routeOptions.url;
  return route !== undefined && isUnder(route);
}

/**
 * The same token check for a route outside the prefix (/metrics): a hook answering 401 without it.
 * No token configured: everything passes (loopback only, see config.ts).
 */
export function requireToken(apiToken: string): (req: FastifyRequest, reply: FastifyReply) => Promise<unknown> {
  const expected = apiToken ? sha256(apiToken) : undefined;
  return async (req, reply) => {
    if (!expected || hasToken(req, expected)) return undefined;
    reply.header('www-authenticate', 'Bearer');
    return sendError(reply, 401, 'missing or wrong API token (X-Api-Token header or Authorization: Bearer)');
  };
}

function hasToken(req: FastifyRequest, expected: Buffer): boolean {
  const candidates: string[] = [];
  const x = req.headers['x-api-token'];
  for (const v of Array.isArray(x) ? x : x === undefined ? [] : [x]) candidates.push(v.trim());
  const auth = headerValue(req.headers.authorization);
  const m = auth === undefined ? null : /^bearer[ \t]+(.+)$/i.exec(auth.trim());
  if (m?.[1]) candidates.push(m[1].trim());
  let ok = false;
  // Compare every candidate (no early exit) on fixed-length digests, so timing says nothing about the token.
  for (const c of candidates) {
    if (c && timingSafeEqual(sha256(c), expected)) ok = true;
  }
  return ok;
}

/** The comma-separated request headers that are on the allow-list, lower-cased and de-duplicated. */
function allowedRequestHeaders(requested: string | undefined): string {
  if (!requested) return '';
  const out = new Set<string>();
  for (const h of requested.split(',')) {
    const name = h.trim().toLowerCase();
    if (ALLOWED_REQUEST_HEADERS.has(name)) out.add(name);
  }
  return [...out].join(', ');
}

function normalizeOrigin(origin: string): string {
  return origin.trim().toLowerCase().replace(/\/+$/, '');
}

function headerValue(v: string | string[] | undefined): string | undefined {
  const s = Array.isArray(v) ? v[0] : v;
  return s === undefined || s === '' ? undefined : s;
}

function addVary(reply: FastifyReply, ...names: string[]): void {
  const current = reply.getHeader('vary');
  const list = current === undefined ? [] : String(current).split(',').map((s) => s.trim()).filter(Boolean);
  for (const n of names) {
    if (!list.some((v) => v.toLowerCase() === n.toLowerCase() || v === '*')) list.push(n);
  }
  reply.header('vary', list.join(', '));
}

function sha256(s: string): Buffer {
  return createHash('sha256').update(s, 'utf8').digest();
}

/** Same body shape as server.ts: {status, error}. */
function sendError(reply: FastifyReply, status: number, message: string) {
  return reply.code(status).send({ status, error: message });
}
