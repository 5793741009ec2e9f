/**
 * The operator console on the REST port:
 *  - the page (/console/: plain HTML, CSS and ES modules; no build step, no CDN), its player
 *    (mpegts.js from node_modules) and the very validators the API runs (compiled plugin modules, so a
 *    form field shows the message the API would answer);
 *  - {prefix}/events: the live feed (SSE, live-feed.ts);
 *  - {prefix}/preview/<callId>.flv: HTTP-FLV of what the call publishes (media/output/flv-stream.ts).
 * The page itself holds no secrets and is public; the feed and the preview are under the prefix, so the
 * API token (when set) guards them like every API method.
 */
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { FastifyInstance, FastifyReply } from 'fastify';
import type { CallService } from '../calls/call-service.js';
import { ConflictError, NotFoundError, RateLimitedError } from '../calls/errors.js';
import type { Logger } from '../lib/log.js';
import { LiveFeed } from './live-feed.js';
import { FlvByteSink } from '../media/output/flv-stream.js';

export interface ConsoleOptions {
  prefix: string;
  calls: CallService;
  log: Logger;
  tokenRequired: boolean;
  streamPrefix: string;
  /** Viewers per call (each is one more copy of the stream on the wire). */
  maxPreviewsPerCall?: number;
  /** Live-feed connections at once (each gets every call's stats once a second). */
  maxFeedClients?: number;
}

const HERE = dirname(fileURLToPath(import.meta.url));
/** dist/plugin/console → the repository: the page's files are not compiled, they are served as written. */
const STATIC_DIR = join(HERE, '../../../plugin/console/static');
/** The compiled plugin tree (dist/plugin): the browser imports these modules as they are. */
const PLUGIN_DIR = join(HERE, '..');
/**
 * The page's own ES modules (static/*.js: console.js is the entry, the others are its parts), served at
 * /console/<file>. Every module it imports must be here: a missing one is a 404 and a blank page.
 */
const PAGE_MODULES = [
  'console.js', 'state.js', 'dom.js', 'api.js', 'feed.js', 'calls-table.js', 'call-form.js', 'call-panel.js', 'pushes.js', 'recordings.js',
  'preview.js',
];
/**
 * Browser-safe modules (no Node imports): the validators, the statuses and states (calls/states.ts), and what
 * they import. Served at /console/lib/<path in dist/plugin>, so their relative imports resolve as on disk.
 */
const SHARED_MODULES = [
  'calls/validate.js', 'calls/errors.js', 'media/output/target.js', 'rtmp/url.js', 'lib/redact.js',
  'calls/states.js', 'media/output/states.js', 'media/output/srt-url.js', 'lib/file-template.js',
];

/**
 * The page runs only its own files: no inline script, nothing from elsewhere (a call's fields come from SIP
 * and are only ever set as text). media-src blob: is MSE's object URL for the preview.
 */
const PAGE_CSP = [
  "default-src 'self'", "script-src 'self'", "style-src 'self'", "img-src 'self' data:", "media-src 'self' blob:",
  "connect-src 'self'", "worker-src 'self' blob:", "object-src 'none'", "base-uri 'none'", "frame-ancestors 'none'", "form-action 'self'",
].join('; ');

const TYPES: Record<string, string> = { '.html': 'text/html; charset=utf-8', '.js': 'text/javascript; charset=utf-8', '.css': 'text/css; charset=utf-8' };

export function registerConsole(app: FastifyInstance, o: ConsoleOptions): LiveFeed {
  const feed = new LiveFeed(o.calls, { prefix: o.prefix });
  const files = new Map<string, string>([
    ['/console/', join(STATIC_DIR, 'index.html')],
    ...PAGE_MODULES.map((m) => [`/console/${m}`, join(STATIC_DIR, m)] as [string, string]),
    ['/console/console.css', join(STATIC_DIR, 'console.css')],
    ['/console/vendor/mpegts.js', join(dirname(createRequire(import.meta.url).resolve('mpegts.js/package.json')), 'dist/mpegts.js')],
    ...SHARED_MODULES.map((m) => [`/console/lib/${m}`, join(PLUGIN_DIR, m)] as [string, string]),
  ]);
  for (const [url, file] of files) {
    const type = TYPES[file.slice(file.lastIndexOf('.'))] ?? 'application/octet-stream';
    // Read per request: small files, rare requests, and an edited page shows on reload.
    app.get(url, async (_req, reply) => {
      reply.type(type).header('cache-control', 'no-cache');
      // The page's URL may carry pre-filled fields: never sent on as a Referer.
      if (type.startsWith('text/html')) reply.header('content-security-policy', PAGE_CSP).header('referrer-policy', 'no-referrer');
      return reply.send(readFileSync(file));
    });
  }
  const toConsole = async (_req: unknown, reply: FastifyReply) => reply.redirect('/console/');
  app.get('/', toConsole);
  app.get('/console', toConsole);
  app.get('/console/config.json', async () => ({ restPrefix: o.prefix, tokenRequired: o.tokenRequired, streamPrefix: o.streamPrefix }));

  const maxFeed = o.maxFeedClients ?? 32;
  app.get(`${o.prefix}/events`, async (req, reply) => {
    if (feed.clientCount >= maxFeed) throw new RateLimitedError(`the live feed already has ${feed.clientCount} listeners`);
    reply.hijack();
    const res = reply.raw;
    res.writeHead(200, {
      'content-type': 'text/event-stream; charset=utf-8',
      'cache-control': 'no-store',
      // nginx and friends buffer responses by default: this one must flow.
      'x-accel-buffering': 'no',
    });
    const client = { write: (s: string) => res.write(s), get writableLength() { return res.writableLength; }, end: () => res.end(), destroy: () => res.destroy() };
    req.raw.on('close', () => feed.detach(client));
    feed.attach(client);
  });

  const viewers = new Map<string, number>();
  const maxViewers = o.maxPreviewsPerCall ?? 4;
  app.get(`${o.prefix}/preview/:file`, async (req, reply) => {
    const file = (req.params as { file: string }).file;
    if (!file.endsWith('.flv')) throw new NotFoundError('preview URLs end in .flv', 'callId');
    const callId = file.slice(0, -4);
    const call = o.calls.get(callId);
    if (!call || call.final || call.ending) throw new NotFoundError(`no live call ${callId}`, 'callId');
    if (!call.media) throw new ConflictError(`call ${callId} has no media yet (status ${call.status})`, 'callId');
    const n = viewers.get(call.key) ?? 0;
    if (n >= maxViewers) throw new RateLimitedError(`call ${callId} already has ${n} preview viewers`, undefined, 'callId');
    viewers.set(call.key, n + 1);

    const stream = call.media.stream;
    reply.hijack();
    const res = reply.raw;
    res.writeHead(200, { 'content-type': 'video/x-flv', 'cache-control': 'no-store', 'x-content-type-options': 'nosniff' });
    const sink = new FlvByteSink(res, {
      hasAudio: true, // the AAC track is always there (silent when hasAudio is false)
      hasVideo: call.req.hasVideo,
      onOverflow: () => {
        o.log.warn({ callId }, 'preview viewer too slow: disconnected');
        res.destroy();
      },
    });
    let left = false;
    const leave = () => {
      if (left) return;
      left = true;
      stream.removeSink(sink);
      viewers.set(call.key, (viewers.get(call.key) ?? 1) - 1);
      if (viewers.get(call.key)! <= 0) viewers.delete(call.key);
      forget();
    };
    // The call's end closes the viewer's response, like every other resource the call holds.
    const forget = call.resources.add('preview viewer', () => {
      leave();
      res.end();
    });
    res.on('close', leave);
    stream.addSink(sink);
  });
  return feed;
}
