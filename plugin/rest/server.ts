/**
 * The WCS-compatible REST facade: POST {prefix}/call/<method> and {prefix}/push/<method> with JSON bodies
 * (../shared/wcs-api.md).
 * startup/terminate answer 200 with an EMPTY body (WCS demo pages choke on `{}`); find answers an array
 * or 404; a bad request is 400 naming the field and why. No socket or PBX detail lives here: it maps
 * requests onto CallService and errors onto status codes.
 */
import Fastify, { type FastifyBaseLogger, type FastifyInstance, type FastifyReply, type FastifyRequest } from 'fastify';
import type { CallService } from '../calls/call-service.js';
import { CallError, NotFoundError } from '../calls/errors.js';
import { asBody, str, validateCallId, validateInjectSound,
  validateInjectStream, validateMediaSessionId, validateSendDtmf, validatePushStartup, validateRecorderStartup, validateRecorderTerminate, validateSoundOn, validateStartup, ValidationError } from '../calls/validate.js';
import type { Approval } from '../hooks/hooks.js';
import type { StartupRequest } from '../calls/types.js';
import secureJson from 'secure-json-parse';
import type { Logger } from '../lib/log.js';
import { registerAccess, type TokenFailureOptions } from './access.js';
import { httpStatusOf, WCS_CALL_CONTROL_CODES } from './errors.js';
import type { ClusterFront } from '../cluster/front.js';

/** What slow or idle clients may hold (config.ts `http`): the same on the HTTP and the HTTPS listener. */
export interface HttpLimits {
  headersTimeoutMs: number;
  requestTimeoutMs: number;
  keepAliveTimeoutMs: number;
  maxConnections: number;
}

/**
 * Node's server options for the limits (http.createServer and https.createServer take the same ones).
 * Node enforces the headers and request timeouts only when it checks its connections, every
 * connectionsCheckingInterval (30 s by default): checked often enough that a slowloris socket goes within
 * the headers timeout plus a tenth of it (a second at most; a check only walks the connections). Both
 * timeouts end when the request is in: a response (the live feed, the preview, a recording) may last as
 * long as it likes, and no idle timeout is set on it.
 */
export function nodeHttpOptions(l: HttpLimits) {
  return {
    headersTimeout: l.headersTimeoutMs,
    requestTimeout: l.requestTimeoutMs,
    keepAliveTimeout: l.keepAliveTimeoutMs,
    connectionsCheckingInterval: Math.max(100, Math.min(1000, Math.floor(l.headersTimeoutMs / 10))),
  };
}

export const DEFAULT_HTTP_LIMITS: HttpLimits = { headersTimeoutMs: 10_000, requestTimeoutMs: 30_000, keepAliveTimeoutMs: 5000, maxConnections: 1000 };

export interface RestOptions extends TokenFailureOptions {
  prefix: string;
  log: Logger;
  calls: CallService;
  /** RTMP_STREAM_PREFIX: outputs publish to rtmpUrl + "/" + prefix + stream (unless rtmpTransponderFullUrl). */
  streamPrefix?: string;
  /** Browser origins allowed (CORS) and the API token, if any (plugin/rest/access.ts). */
  corsOrigins?: string[];
  apiToken?: string;
  /** Host names served without a token besides loopback (REST_HOST, REST_HOSTNAMES). */
  hostnames?: string[];
  /** Timeouts and connection cap of the listener (config.ts `http`). */
  limits?: HttpLimits;
  /** Largest accepted request body (bytes). */
  bodyLimit?: number;
  /** WCS's approval hook: /call/startup is offered to the backend first (HOOK_APPROVE). */
  approval?: Approval;
  /** Told of every answered request (the REST latency metric); route is the matched pattern. */
  onAnswered?: (method: string, route: string, code: number, seconds: number) => void;
  /** More than one node: startups placed, controls forwarded to the call's node, finds cluster-wide (cluster/front.ts). */
  cluster?: ClusterFront;
}

/** A route's part in a cluster: which id in its body names the call whose node must answer it. */
interface ClusterScope { cluster?: 'callId' | 'mediaSessionId' }

/** The console's page and the API docs: public, even with REST_PREFIX="" (the live feed and preview are not). */
const PUBLIC_PAGES = ['/', '/console', '/docs'];

export function buildRestServer(o: RestOptions): FastifyInstance {
  const limits = o.limits ?? DEFAULT_HTTP_LIMITS;
  const http = nodeHttpOptions(limits);
  const app = Fastify({
    // Per-request logging off (warn and up only): a busy WCS page polls find every few seconds.
    loggerInstance: o.log.child({ component: 'rest' }, { level: 'warn' }) as FastifyBaseLogger,
    bodyLimit: o.bodyLimit ?? 64 * 1024,
    // fastify sets these two on its server after creating it: given here too, or its defaults win.
    requestTimeout: http.requestTimeout,
    keepAliveTimeout: http.keepAliveTimeout,
    http,
  });
  app.server.maxConnections = limits.maxConnections;
  registerAccess(app, {
    prefix: o.prefix, corsOrigins: o.corsOrigins ?? [], apiToken: o.apiToken ?? '', hostnames: o.hostnames ?? [], publicPages: PUBLIC_PAGES,
    ...(o.authFailureDelayMs !== undefined ? { authFailureDelayMs: o.authFailureDelayMs } : {}),
    ...(o.onAuthFailure ? { onAuthFailure: o.onAuthFailure } : {}),
  });
  const onAnswered = o.onAnswered;
  if (onAnswered) {
    // The matched pattern, never the raw URL: ids in paths would make a label per call.
    app.addHook('onResponse', async (req, reply) => onAnswered(req.method, req.routeOptions.url ?? 'unmatched', reply.statusCode, reply.elapsedTime / 1000));
  }

  // WCS clients post JSON; an empty body (find_all) is an empty object, not an error. __proto__ and
  // constructor.prototype keys are refused (prototype poisoning), as fastify's own parser does.
  app.removeContentTypeParser('application/json');
  app.addContentTypeParser('application/json', { parseAs: 'string' }, (_req, body, done) => {
    const text = String(body).trim();
    if (!text) return done(null, {});
    try {
      done(null, secureJson.parse(text, undefined, { protoAction: 'error', constructorAction: 'error' }));
    } catch (err) {
      const poisoned = /forbidden prototype/.test((err as Error).message);
      done(new ValidationError('body', poisoned ? 'must not contain __proto__ or constructor.prototype keys' : 'is not valid JSON'), undefined);
    }
  });

  app.setErrorHandler((err, req, reply) => {
    const core = httpStatusOf(err);
    // Routes that answer with WCS's documented codes only (errors.ts: WCS_CALL_CONTROL_CODES).
    const code = core === undefined ? undefined : ((req.routeOptions.config as { codes?: Record<number, number> } | undefined)?.codes?.[core] ?? core);
    if (code !== undefined) return sendError(reply, code, (err as CallError).message, (err as CallError).field);
    const e = err as { statusCode?: number; code?: string; message: string };
    if (e.code === 'FST_ERR_CTP_BODY_TOO_LARGE') return sendError(reply, 413, 'request body too large');
    if (e.code === 'FST_ERR_CTP_INVALID_MEDIA_TYPE') return sendError(reply, 415, 'Content-Type must be application/json');
    if (e.statusCode && e.statusCode >= 400 && e.statusCode < 500) return sendError(reply, e.statusCode, e.message);
    o.log.error({ err: e.message }, 'REST handler failed');
    return sendError(reply, 500, 'internal error');
  });
  app.setNotFoundHandler((req, reply) => sendError(reply, 404, `no such method ${req.method} ${req.url.split('?')[0]}`));

  const p = o.prefix;
  const cluster = o.cluster;
  const BY_CALL = { config: { cluster: 'callId' } satisfies ClusterScope };
  const BY_PUSH = { config: { cluster: 'mediaSessionId' } satisfies ClusterScope };
  const WCS_CODES = { config: { codes: WCS_CALL_CONTROL_CODES, cluster: 'callId' } satisfies ClusterScope & { codes: unknown } };
  const validation = { streamPrefix: o.streamPrefix ?? '' };

  // In a cluster, a control for a call held by another node is answered by that node.
  if (cluster) {
    app.addHook('preHandler', async (req, reply) => {
      const scope = (req.routeOptions.config as ClusterScope | undefined)?.cluster;
      if (!scope || cluster.isForwarded(req.headers)) return;
      const id = (req.body as Record<string, unknown> | undefined)?.[scope];
      if (typeof id !== 'string' || id.length > 128) return; // the route's validation answers it
      const path = (req.routeOptions.url ?? '').slice(p.length);
      if (scope === 'callId') {
        const node = await cluster.callOwner(id);
        if (!node) return;
        const a = await cluster.forward(node, path, req.body, req.headers);
        return reply.code(a.status).send(a.body);
      }
      if (cluster.hasPush(id)) return;
      const node = await cluster.pushOwner(id);
      const a = node ? await cluster.forward(node, path, req.body, req.headers) : await cluster.askAround(path, req.body, req.headers);
      if (a) return reply.code(a.status).send(a.body);
    });
  }

  /** A startup run here: vetted, offered to the backend, its place taken, then started. */
  const startHere = async (call: StartupRequest, placed: boolean) => {
    try {
      // Hosts and SIP identity (DNS, the PBX): refused here with a 400, before the backend is asked.
      await o.calls.vetStartup(call, { placed });
      // WCS's backend veto (HOOK_APPROVE): asked before anything reaches the PBX.
      await o.approval?.approve('call', call.appKey, approvalBody(call));
      await o.calls.reserve(call, placed);
      o.calls.startup(call);
    } catch (err) {
      await o.calls.unreserve(call.callId);
      throw err;
    }
  };
  app.post(`${p}/call/startup`, async (req, reply) => {
    const call = validateStartup(req.body, validation);
    if (cluster && !cluster.isForwarded(req.headers)) {
      const there = await cluster.placeStartup(call.callId, req.body, req.headers, () => startHere(call, true));
      if (there) return reply.code(there.status).send(there.body);
    } else {
      await startHere(call, cluster?.isPlaced(req.headers) ?? false);
    }
    return reply.code(200).send();
  });

  app.post(`${p}/call/terminate`, BY_CALL, async (req, reply) => {
    o.calls.terminate(validateCallId(req.body));
    return reply.code(200).send();
  });

  // Our extension: hold the SIP party; the RTMP output goes on (silence, generated video).
  for (const [name, on] of [['hold', true], ['unhold', false]] as const) {
    app.post(`${p}/call/${name}`, BY_CALL, async (req, reply) => {
      await o.calls.hold(validateCallId(req.body), on);
      return reply.code(200).send();
    });
  }

  app.post(`${p}/call/send_dtmf`, WCS_CODES, async (req, reply) => {
    const r = validateSendDtmf(req.body);
    await o.calls.sendDtmf(r.callId, r.dtmf, r.mode);
    return reply.code(200).send();
  });

  app.post(`${p}/call/inject_sound`, WCS_CODES, async (req, reply) => {
    const r = validateInjectSound(req.body);
    await o.calls.injectSound(r.callId, r.fileName);
    return reply.code(200).send();
  });

  // /call/inject_stream alone is WCS 5.0's name for it, which the sip-as-rtmp-4 demo page still posts.
  for (const path of ['inject_stream/startup', 'inject_stream']) {
    app.post(`${p}/call/${path}`, WCS_CODES, async (req, reply) => {
      const r = validateInjectStream(req.body);
      await o.calls.injectStream(r.callId, r.streamName);
      return reply.code(200).send();
    });
  }

  app.post(`${p}/call/inject_stream/terminate`, WCS_CODES, async (req, reply) => {
    await o.calls.stopInjectStream(validateCallId(req.body));
    return reply.code(200).send();
  });

  app.post(`${p}/call/find`, async (req, reply) => {
    const b = asBody(req.body);
    const filter = {
      callId: str(b, 'callId', { max: 128 }),
      callee: str(b, 'callee'),
      rtmpUrl: str(b, 'rtmpUrl', { max: 1024 }),
      status: str(b, 'status', { max: 32 }),
    };
    if (!filter.callId && !filter.callee && !filter.rtmpUrl && !filter.status) {
      throw new ValidationError('callId', 'or callee, rtmpUrl or status is required to find calls (find_all lists them all)');
    }
    return sendList(reply, await findCalls(filter));
  });

  const findCalls = async (filter: Parameters<CallService['find']>[0]) => cluster ? cluster.findCalls(filter) : o.calls.find(filter);
  app.post(`${p}/call/find_all`, async (_req, reply) => sendList(reply, await findCalls({})));
  /** /push/find*: this node's outputs, and in a cluster every other node's (asked with the same body). */
  const findPushes = async (req: FastifyRequest, filter: Parameters<CallService['pushFind']>[0]) => {
    const here = o.calls.pushFind(filter);
    if (!cluster || cluster.isForwarded(req.headers)) return here;
    return [...here, ...await cluster.fanOut((req.routeOptions.url ?? '').slice(p.length), req.body, req.headers)];
  };

  // ---- /push: more RTMP outputs of a call's stream (WCS "SIP as RTMP" variant 4) ----
  app.post(`${p}/push/startup`, async (req, reply) => {
    const r = validatePushStartup(req.body, validation);
    try {
      return reply.code(200).send(await o.calls.pushStartup(r));
    } catch (err) {
      // In a cluster, the call of that stream may be on another node.
      if (!(err instanceof NotFoundError) || !cluster || cluster.isForwarded(req.headers)) throw err;
      const there = await cluster.askAround('/push/startup', req.body, req.headers);
      if (!there) throw err;
      return reply.code(there.status).send(there.body);
    }
  });

  app.post(`${p}/push/find`, async (req, reply) => {
    const b = asBody(req.body);
    const filter = { streamName: str(b, 'streamName'), rtmpUrl: str(b, 'rtmpUrl', { max: 1024 }) };
    if (!filter.streamName && !filter.rtmpUrl) throw new ValidationError('streamName', 'or rtmpUrl is required (find_all lists them all)');
    return sendList(reply, await findPushes(req, filter), 'pushes');
  });

  app.post(`${p}/push/find_all`, async (req, reply) => sendList(reply, await findPushes(req, {}), 'pushes'));

  const byId = (name: string, run: (id: string) => Promise<void> | void) =>
    app.post(`${p}/push/${name}`, BY_PUSH, async (req, reply) => {
      await run(validateMediaSessionId(req.body));
      return reply.code(200).send();
    });
  byId('terminate', (id) => o.calls.pushTerminate(id));
  byId('mute', (id) => o.calls.pushMute(id, true));
  byId('unmute', (id) => o.calls.pushMute(id, false));
  byId('sound_off', (id) => o.calls.pushSoundOff(id));
  app.post(`${p}/push/sound_on`, BY_PUSH, async (req, reply) => {
    const r = validateSoundOn(req.body);
    await o.calls.pushSound(r.mediaSessionId, r.soundFile, r.loop);
    return reply.code(200).send();
  });

  // ---- /recorder: recordings of a call or of one of its outputs (WCS; /stream/*Recording are WCS's older names) ----
  const recorderStartup = async (req: FastifyRequest, reply: FastifyReply) => {
    const r = validateRecorderStartup(req.body);
    return reply.code(200).send(await o.calls.recorderStartup(r.mediaSessionId, r.fileTemplate));
  };
  const recorderTerminate = async (req: FastifyRequest, reply: FastifyReply) => reply.code(200).send(await o.calls.recorderTerminate(validateRecorderTerminate(req.body)));
  app.post(`${p}/recorder/startup`, recorderStartup);
  app.post(`${p}/stream/startRecording`, recorderStartup);
  app.post(`${p}/recorder/terminate`, recorderTerminate);
  app.post(`${p}/stream/stopRecording`, recorderTerminate);
  app.post(`${p}/recorder/find_all`, async (req, reply) => {
    const b = asBody(req.body);
    return sendList(reply, o.calls.recorderFindAll({ callId: str(b, 'callId', { max: 128 }), mediaSessionId: str(b, 'mediaSessionId', { max: 128 }) }), 'recordings');
  });
  // A finished recording's file (the API token guards it like every method); Range for players that seek.
  app.get(`${p}/recordings/:name`, async (req, reply) => {
    const { name: file } = req.params as { name: string };
    const r = await o.calls.openRecording(file, req.headers.range);
    if (!r) return sendError(reply, 404, `no recording file ${file.slice(0, 64)}`, 'file');
    if ('unsatisfiable' in r) return reply.code(416).header('content-range', `bytes */${r.size}`).send();
    reply.header('accept-ranges', 'bytes').header('content-length', String(r.end - r.start + 1));
    // inline: a browser plays it where it opens it; saving it keeps the name.
    reply.header('content-disposition', `inline; filename="${file}"`);
    if (r.partial) reply.code(206).header('content-range', `bytes ${r.start}-${r.end}/${r.size}`);
    return reply.type(file.endsWith('.mp4') ? 'video/mp4' : 'video/x-flv').send(r.stream);
  });

  return app;
}

/** What the backend is shown of a /call/startup: the WCS call fields, never the SIP password or a stream key. */
function approvalBody(r: StartupRequest): Record<string, unknown> {
  return {
    callId: r.callId, callee: r.callee, caller: r.sipLogin, sipLogin: r.sipLogin, sipDomain: r.sipDomain, visibleName: r.visibleName,
    hasAudio: r.hasAudio, hasVideo: r.hasVideo, toStream: r.toStream, rtmpUrl: r.target?.display ?? '', incoming: false,
  };
}

function sendList(reply: FastifyReply, list: unknown[], what = 'calls') {
  if (list.length === 0) return sendError(reply, 404, `no ${what} found`);
  return reply.code(200).send(list);
}

function sendError(reply: FastifyReply, status: number, message: string, field?: string) {
  return reply.code(status).send({ status, error: message, ...(field ? { field } : {}) });
}
