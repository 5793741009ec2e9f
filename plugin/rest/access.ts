/**
 * Who may call the REST facade: the Host it is called by, CORS for browser pages (the WCS demo pages post
 * JSON cross-origin with jQuery) and an optional shared API token. All in one fastify `onRequest` hook, so
 * they run before the body is read or parsed, and for unknown paths too (the 404 handler has hooks).
 *
 * Every request, any path (API, console, docs, live feed, preview, metrics), in this order:
 *  1. Host (only without API_TOKEN): loopback (127.0.0.1, localhost, [::1]), REST_HOST or a REST_HOSTNAMES
 *     name, any port; else 403. Without it, DNS rebinding turns any web page into a same-origin client: a
 *     name the attacker controls re-resolves to 127.0.0.1, and the browser then sends and reads requests to
 *     this server as that name's own. The browser always sends the name it resolved as Host, so the name
 *     gives it away. No Host at all (HTTP/1.0 tools) cannot come from a browser: accepted from a loopback
 *     peer only (without a token the listener is on loopback anyway, see config.ts).
 *  2. Origin, for state-changing methods (all but GET, HEAD, OPTIONS): an Origin that is neither allowed by
 *     CORS_ORIGINS nor the request's own (its host[:port] is the Host header) gets 403, with or without a
 *     token, before anything runs. A page on another site can send "simple" requests (form posts,
 *     text/plain) without a preflight; refusing them here, not only hiding the answer, means none of them
 *     does anything, whatever a body parser or handler would have made of it. Requests without Origin
 *     (curl, backends, server to server) carry no browser's ambient authority and keep working.
 *
 * Then, under the prefix only (the API, the live feed, the preview):
 *  3. CORS preflight (OPTIONS): answered here and never reaches the token check (browsers send no custom
 *     headers, so no token, on a preflight). Allowed origin: 204 with the Access-Control-* headers;
 *     disallowed: 403 JSON error. A bare OPTIONS without Origin is not a preflight: 204 with `Allow`.
 *  4. An allowed Origin gets `Access-Control-Allow-Origin: <that origin>` set now, so every later answer
 *     (401 below, 400/404/413/415 from the error handlers, 200) carries it and the page can read it.
 *  5. API token (when configured): `X-Api-Token: <t>` or `Authorization: Bearer <t>`, else 401, answered
 *     after a constant delay and counted (onAuthFailure: /metrics). A constant delay rather than a per-IP
 *     lockout: a lockout lets anyone lock the real clients out (they often share one address behind a
 *     proxy or NAT), while the delay plus the connection cap and a token of 16+ characters already puts
 *     guessing out of reach.
 * A GET from a disallowed origin is processed without CORS headers: the page cannot read the answer, and
 * no GET changes state.
 */
import { createHash, timingSafeEqual } from 'node:crypto';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { isLoopback } from '../lib/forbidden-address.js';

export interface AccessOptions extends TokenFailureOptions {
  /** REST prefix, e.g. "/rest-api"; "" means the whole server. */
  prefix: string;
  /** Allowed browser origins, scheme://host[:port]; "*" allows any; empty allows none. */
  corsOrigins: string[];
  /** Shared API token; empty means none is required (and then the Host is checked). */
  apiToken: string;
  /** Host names served without a token besides loopback: REST_HOST and REST_HOSTNAMES (no port). */
  hostnames?: string[];
  /**
   * Pages a browser loads by navigation, which can carry no token header (the console, /docs): GET and
   * HEAD at these paths (or below them) skip the token check even when the prefix is "" (the whole server).
   */
  publicPages?: string[];
}

export interface TokenFailureOptions {
  /** A 401 is answered this long after the request (ms); default AUTH_FAILURE_DELAY_MS. */
  authFailureDelayMs?: number;
  /** Told of every 401 (the /metrics counter). */
  onAuthFailure?: () => void;
}

/** Request headers a cross-origin page may send (lower case). */
const ALLOWED_REQUEST_HEADERS = new Set(['content-type', 'x-api-token', 'authorization', 'x-requested-with']);
const ALLOWED_METHODS = 'POST, OPTIONS';
const PREFLIGHT_MAX_AGE_SEC = '600';
/** Longest client-controlled header (Origin, Host) repeated back in a 403 body. */
const MAX_ECHOED = 200;
/** How late a wrong or missing token is answered: slows guessing, the same for every client. */
export const AUTH_FAILURE_DELAY_MS = 300;
const LOOPBACK_NAMES = ['127.0.0.1', 'localhost', '[::1]'];
const SAFE_METHODS = new Set(['GET', 'HEAD', 'OPTIONS']);

export function registerAccess(app: FastifyInstance, opts: AccessOptions): void {
  const prefix = opts.prefix.replace(/\/+$/, '');
  const anyOrigin = opts.corsOrigins.includes('*');
  const origins = new Set(opts.corsOrigins.map(normalizeOrigin).filter(Boolean));
  const corsEnabled = anyOrigin || origins.size > 0;
  const refuseToken = tokenCheck(opts.apiToken, opts, 'missing or wrong API token (X-Api-Token header)');
  // With a token, the token is what keeps foreign pages out; without one, the name they reach us by.
  const hosts = opts.apiToken ? undefined : new Set([...LOOPBACK_NAMES, ...(opts.hostnames ?? []).map(hostKey)]);

  const isUnder = (path: string): boolean => prefix === '' || path === prefix || path.startsWith(`${prefix}/`);
  const isAllowedOrigin = (origin: string): boolean => anyOrigin || origins.has(normalizeOrigin(origin));
  const pages = opts.publicPages ?? [];
  const isPublicPage = (path: string): boolean => pages.some((p) => path === p || (p !== '/' && path.startsWith(`${p}/`)));

  app.addHook('onRequest', async (req: FastifyRequest, reply: FastifyReply) => {
    const host = headerValue(req.headers.host);
    if (hosts && !hostServed(hosts, host, req.socket.remoteAddress)) {
      return sendError(reply, 403, `host ${shown(host ?? '(none)')} is not served here (REST_HOSTNAMES)`);
    }
    const origin = headerValue(req.headers.origin);
    if (origin !== undefined && !SAFE_METHODS.has(req.method) && !isAllowedOrigin(origin) && !sameOrigin(origin, host)) {
      return sendError(reply, 403, `origin ${shown(origin)} is not allowed (CORS_ORIGINS)`);
    }
    if (!underPrefix(req, isUnder)) return;
    if ((req.method === 'GET' || req.method === 'HEAD') && isPublicPage(req.url.split('?')[0] ?? '')) return;

    if (req.method === 'OPTIONS') {
      if (origin === undefined) {
        return reply.code(204).header('allow', ALLOWED_METHODS).send();
      }
      if (corsEnabled) addVary(reply, 'Origin', 'Access-Control-Request-Headers');
      if (!isAllowedOrigin(origin)) return sendError(reply, 403, `origin ${shown(origin)} is not allowed (CORS_ORIGINS)`);
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
    return refuseToken(req, reply);
  });
}

/** A Host header's name part, lower case, as REST_HOSTNAMES spells it ("[::1]:8081" → "[::1]"); undefined when malformed. */
function hostName(host: string): string | undefined {
  const m = /^(\[[0-9a-f:.]+\]|[a-z0-9._-]+)(?::\d{1,5})?$/.exec(host.trim().toLowerCase());
  return m?.[1]?.replace(/\.$/, '');
}

/** A configured name as a Host header would carry it: IPv6 addresses bracketed. */
function hostKey(name: string): string {
  const h = name.toLowerCase();
  return h.includes(':') && !h.startsWith('[') ? `[${h}]` : h;
}

function hostServed(hosts: Set<string>, host: string | undefined, peer: string | undefined): boolean {
  if (host === undefined) return isLoopbackAddress(peer);
  const name = hostName(host);
  return name !== undefined && hosts.has(name);
}

function isLoopbackAddress(a: string | undefined): boolean {
  return a !== undefined && isLoopback(a);
}

/** The page's own server: Origin's host[:port] is the Host header (each port normalized for Origin's scheme). */
function sameOrigin(origin: string, host: string | undefined): boolean {
  if (host === undefined || hostName(host) === undefined) return false;
  try {
    const o = new URL(origin);
    if (o.protocol !== 'http:' && o.protocol !== 'https:') return false;
    return o.host === new URL(`${o.protocol}//${host}`).host;
  } catch {
    return false;
  }
}

function shown(v: string): string {
  return v.length > MAX_ECHOED ? `${v.slice(0, MAX_ECHOED)}...` : v;
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
export function requireToken(apiToken: string, o: TokenFailureOptions = {}): (req: FastifyRequest, reply: FastifyReply) => Promise<unknown> {
  return tokenCheck(apiToken, o, 'missing or wrong API token (X-Api-Token header or Authorization: Bearer)');
}

/** A hook step: undefined when the token is there (or none is configured), else the delayed, counted 401. */
function tokenCheck(apiToken: string, o: TokenFailureOptions, message: string): (req: FastifyRequest, reply: FastifyReply) => Promise<unknown> {
  // Only the digest of the token is kept in a variable the hook touches; never logged nor echoed.
  const expected = apiToken ? sha256(apiToken) : undefined;
  const delayMs = o.authFailureDelayMs ?? AUTH_FAILURE_DELAY_MS;
  return async (req, reply) => {
    if (!expected || hasToken(req, expected)) return undefined;
    o.onAuthFailure?.();
    if (delayMs > 0) await new Promise((resolve) => setTimeout(resolve, delayMs));
    reply.header('www-authenticate', 'Bearer');
    return sendError(reply, 401, message);
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
