import assert from 'node:assert/strict';
import { test } from 'node:test';
import { registeredRoutes } from '../helpers/routes.js';
import { createLogger } from '../../plugin/lib/log.js';
import { buildOpenApi, EXAMPLES } from '../../plugin/rest/openapi.js';
import { buildRestServer } from '../../plugin/rest/server.js';
import { CALL_REASONS, CALL_STATUSES, PUSH_STATES, STREAM_STATUSES } from '../../plugin/calls/states.js';
import {
  asBody, str, validateCallId, validateInjectSound, validateInjectStream, validateMediaSessionId, validatePushStartup, validateRecorderStartup, validateRecorderTerminate, validateSendDtmf, validateSoundOn,
  validateStartup, ValidationError,
} from '../../plugin/calls/validate.js';

const PREFIX = '/rest-api';
type Json = Record<string, unknown>;
type Operation = { operationId?: string; summary?: string; tags?: string[]; responses?: Json; requestBody?: Json };

const doc = buildOpenApi({ prefix: PREFIX, tokenRequired: true }) as Json & { paths: Record<string, Record<string, Operation>> };

/** Routes that serve the documentation itself (a Swagger UI, the JSON): not part of the API. */
const SELF_DOCS = /\/(docs|documentation)(\/|$)|openapi\.json$/;

/** fastify's `:param` as OpenAPI's `{param}`. */
const toOpenApiPath = (path: string) => path.replace(/:([A-Za-z0-9_]+)/g, '{$1}');

function operations(): [string, string, Operation][] {
  return Object.entries(doc.paths).flatMap(([path, item]) => Object.entries(item).map(([method, op]) => [path, method, op] as [string, string, Operation]));
}

test('every route server.ts registers is documented, and every WCS method documented is registered', async () => {
  const app = buildRestServer({ prefix: PREFIX, log: createLogger({ level: 'silent' }), calls: {} as never });
  try {
    await app.ready();
    const routes = registeredRoutes(app);
    assert.ok(routes.includes(`POST ${PREFIX}/call/startup`), `route tree not understood:\n${app.printRoutes()}`);
    assert.ok(routes.length >= 16, `only ${routes.length} routes found`);
    for (const route of routes) {
      const [method, path] = route.split(' ') as [string, string];
      if (SELF_DOCS.test(path)) continue;
      assert.ok(doc.paths[toOpenApiPath(path)]?.[method.toLowerCase()], `${route} is registered in server.ts but not documented in openapi.ts`);
    }
    // The other way round for the WCS methods (Live/Operations endpoints may be served elsewhere in the app).
    for (const [path, method, op] of operations()) {
      if (!op.tags?.some((t) => t === 'Calls' || t === 'Pushes')) continue;
      assert.ok(app.hasRoute({ method: method.toUpperCase() as 'POST', url: path.replace(/\{(\w+)\}/g, ':$1') }), `${method} ${path} is documented but not registered`);
    }
  } finally {
    await app.close();
  }
});

/** What the server does with each method's body; find's checks are inline in server.ts, repeated here. */
const atLeastOne = (fields: string[]) => (raw: unknown) => {
  const b = asBody(raw);
  assert.ok(fields.some((f) => str(b, f, { max: 1024 })), `one of ${fields.join(', ')} is required`);
};
const VALIDATORS: Record<string, (body: unknown) => unknown> = {
  '/call/startup': validateStartup,
  '/call/terminate': validateCallId,
  '/call/hold': validateCallId,
  '/call/unhold': validateCallId,
  '/call/send_dtmf': validateSendDtmf,
  '/call/inject_sound': validateInjectSound,
  '/call/find': atLeastOne(['callId', 'callee', 'rtmpUrl', 'status']),
  '/call/find_all': asBody,
  '/push/startup': validatePushStartup,
  '/push/find': atLeastOne(['streamName', 'rtmpUrl']),
  '/push/find_all': asBody,
  '/push/terminate': validateMediaSessionId,
  '/push/mute': validateMediaSessionId,
  '/push/unmute': validateMediaSessionId,
  '/push/sound_on': validateSoundOn,
  '/push/sound_off': validateMediaSessionId,
  '/recorder/startup': validateRecorderStartup,
  '/stream/startRecording': validateRecorderStartup,
  '/recorder/terminate': validateRecorderTerminate,
  '/stream/stopRecording': validateRecorderTerminate,
  '/recorder/find_all': asBody,
  '/call/inject_stream/startup': validateInjectStream,
  '/call/inject_stream/terminate': validateCallId,
  '/call/inject_stream': validateInjectStream,
};

test('every example passes its validator and is the one in the document', () => {
  const posts = operations().filter(([, method]) => method === 'post').map(([path]) => path.slice(PREFIX.length)).sort();
  assert.deepEqual(Object.keys(EXAMPLES).sort(), posts, 'one example per POST method');
  assert.deepEqual(Object.keys(VALIDATORS).sort(), posts, 'one validator per POST method');
  for (const [path, example] of Object.entries(EXAMPLES)) {
    assert.doesNotThrow(() => VALIDATORS[path]!(example), `${path} example`);
    const body = doc.paths[PREFIX + path]!.post!.requestBody as { content: Record<string, { example: unknown; schema: { $ref: string } }> };
    assert.deepEqual(body.content['application/json']!.example, example, `${path}: document and EXAMPLES differ`);
    // ...and fits the schema's string rules.
    const schemaName = body.content['application/json']!.schema.$ref.split('/').pop()!;
    const props = ((doc.components as { schemas: Record<string, { properties: Record<string, Json> }> }).schemas[schemaName]!.properties);
    for (const [field, value] of Object.entries(example)) {
      const rule = props[field];
      assert.ok(rule, `${path}: ${field} is not in ${schemaName}`);
      if (typeof value !== 'string') continue;
      if (typeof rule.pattern === 'string') assert.match(value, new RegExp(rule.pattern), `${path}: ${field}`);
      if (typeof rule.maxLength === 'number') assert.ok(value.length <= rule.maxLength, `${path}: ${field} too long`);
    }
  }
});

test('the examples fit together: same call, its stream, another destination, WCS string forms', () => {
  const call = validateStartup(EXAMPLES['/call/startup']);
  for (const path of ['/call/terminate', '/call/hold', '/call/send_dtmf', '/call/inject_sound', '/call/find']) {
    assert.equal(EXAMPLES[path]!.callId, call.callId, path);
  }
  const push = validatePushStartup(EXAMPLES['/push/startup']);
  assert.equal(push.streamName, call.toStream || call.rtmpStream, 'push/startup names the call\'s stream');
  assert.equal(EXAMPLES['/push/find']!.streamName, push.streamName);
  assert.notEqual(push.rtmpUrl, call.rtmpUrl, 'a push to the call\'s own destination would be a 409');
  const s = EXAMPLES['/call/startup']!;
  assert.deepEqual([s.hasAudio, s.hasVideo, s.sipPort], ['true', 'false', '5080'], 'booleans and ports as WCS sends them');
});

/** The documented 400 examples are what the validators really say. */
test('documented 400 answers are the validators\' own messages', () => {
  const cases: [string, (b: unknown) => unknown, Json][] = [
    ['/call/startup', validateStartup, { ...EXAMPLES['/call/startup'], callee: '' }],
    ['/call/startup', validateStartup, { ...EXAMPLES['/call/startup'], rtmpUrl: 'http://127.0.0.1/live' }],
    ['/call/startup', validateStartup, { ...EXAMPLES['/call/startup'], hasAudio: 'false' }],
    ['/call/startup', validateStartup, { ...EXAMPLES['/call/startup'], maxDuration: '2h' }],
    ['/call/terminate', validateCallId, {}],
    ['/call/send_dtmf', validateSendDtmf, { ...EXAMPLES['/call/send_dtmf'], dtmf: 'x' }],
    ['/call/send_dtmf', validateSendDtmf, { ...EXAMPLES['/call/send_dtmf'], type: 'inband' }],
    ['/call/inject_sound', validateInjectSound, { callId: 'c' }],
    ['/push/startup', validatePushStartup, { ...EXAMPLES['/push/startup'], options: { action: 'loud' } }],
    ['/push/startup', validatePushStartup, { rtmpUrl: 'rtmp://h/live' }],
    ['/push/sound_on', validateSoundOn, { mediaSessionId: 'm' }],
    ['/push/mute', validateMediaSessionId, {}],
    ['/recorder/startup', validateRecorderStartup, {}],
    ['/recorder/startup', validateRecorderStartup, { mediaSessionId: 'x', config: { fileTemplate: '{nope}' } }],
    ['/recorder/terminate', validateRecorderTerminate, {}],
  ];
  for (const [path, validate, body] of cases) {
    let answer: Json | undefined;
    try {
      validate(body);
    } catch (err) {
      assert.ok(err instanceof ValidationError);
      answer = { status: 400, error: err.message, field: err.field };
    }
    assert.ok(answer, `${path}: ${JSON.stringify(body)} should be refused`);
    const examples = (doc.paths[PREFIX + path]!.post!.responses!['400'] as { content: Record<string, { examples: Record<string, { value: unknown }> }> })
      .content['application/json']!.examples;
    assert.ok(Object.values(examples).some((x) => JSON.stringify(x.value) === JSON.stringify(answer)), `${path}: ${JSON.stringify(answer)} is not among the documented 400s`);
  }
});

function walk(node: unknown, visit: (o: Json) => void): void {
  if (Array.isArray(node)) for (const x of node) walk(x, visit);
  else if (node && typeof node === 'object') {
    visit(node as Json);
    for (const v of Object.values(node)) walk(v, visit);
  }
}

test('the document is structurally sane', () => {
  assert.equal(doc.openapi, '3.0.3');
  const info = doc.info as Json;
  assert.equal(info.title, 'sip-as-rtmp REST API');
  assert.ok(typeof info.version === 'string' && typeof info.description === 'string');

  walk(doc, (o) => {
    if (typeof o.$ref !== 'string') return;
    assert.match(o.$ref, /^#\/components\//, o.$ref);
    let target: unknown = doc;
    for (const key of o.$ref.slice(2).split('/')) target = (target as Json | undefined)?.[key];
    assert.ok(target && typeof target === 'object', `${o.$ref} does not resolve`);
  });

  const ids = new Set<string>();
  const tags = new Set((doc.tags as { name: string }[]).map((t) => t.name));
  assert.deepEqual([...tags].sort(), ['Calls', 'Live', 'Operations', 'Pushes', 'Recordings']);
  for (const [path, method, op] of operations()) {
    const where = `${method} ${path}`;
    assert.ok(path.startsWith(PREFIX) || path === '/metrics', `${where}: missing prefix`);
    assert.ok(op.operationId && !ids.has(op.operationId), `${where}: operationId missing or repeated`);
    ids.add(op.operationId);
    assert.ok(op.summary, `${where}: summary`);
    assert.ok(op.tags?.length && op.tags.every((t) => tags.has(t)), `${where}: tags`);
    assert.ok(op.responses?.['200'], `${where}: 200 response`);
    assert.ok(op.responses['401'], `${where}: 401 when a token is required`);
  }
  assert.ok(doc.paths[`${PREFIX}/events`]?.get && doc.paths[`${PREFIX}/preview/{callId}.flv`]?.get && doc.paths['/metrics']?.get);
});

test('security, servers and prefix follow the options', () => {
  const open = buildOpenApi({ prefix: '/api/', tokenRequired: false });
  assert.equal(open.security, undefined, 'no global security without a token');
  assert.deepEqual(open.servers, [{ url: '/' }]);
  assert.ok((open.paths as Json)['/api/call/startup'], 'prefix applied, trailing slash dropped');
  walk(open.paths, (o) => assert.equal((o.responses as Json | undefined)?.['401'], undefined, 'no 401 without a token'));

  assert.deepEqual(doc.security, [{ apiToken: [] }, { bearer: [] }]);
  const schemes = (doc.components as { securitySchemes: Json }).securitySchemes;
  assert.deepEqual(schemes.apiToken, { type: 'apiKey', in: 'header', name: 'X-Api-Token', description: 'API_TOKEN.' });
  assert.equal((schemes.bearer as Json).scheme, 'bearer');
  const served = buildOpenApi({ prefix: PREFIX, serverUrl: 'http://127.0.0.1:8081', tokenRequired: true });
  assert.deepEqual(served.servers, [{ url: 'http://127.0.0.1:8081' }]);
});

test('empty 200 bodies where server.ts sends none; find answers arrays, push/startup a push', () => {
  const ok = (path: string) => doc.paths[PREFIX + path]!.post!.responses!['200'] as { content?: Record<string, { example?: unknown }> };
  for (const path of ['/call/startup', '/call/terminate', '/call/hold', '/call/send_dtmf', '/push/terminate', '/push/sound_on']) {
    assert.equal(ok(path).content, undefined, `${path}: empty body`);
  }
  assert.ok(Array.isArray(ok('/call/find').content?.['application/json']?.example));
  assert.equal((ok('/push/startup').content?.['application/json']?.example as Json).streamName, `rtmp_${EXAMPLES['/push/startup']!.streamName}`, 'answers carry WCS\'s transponder name');
});

test('every status, state and reason enum is the one declared in calls/states.ts', () => {
  type Schema = { properties: Record<string, { enum?: string[] }> };
  const schemas = (doc.components as { schemas: Record<string, Schema> }).schemas;
  const enumOf = (schema: string, field: string) => schemas[schema]?.properties[field]?.enum;
  assert.deepEqual(enumOf('Call', 'status'), [...CALL_STATUSES]);
  assert.deepEqual(enumOf('FindRequest', 'status'), [...CALL_STATUSES]);
  assert.deepEqual(enumOf('Call', 'rtmpStreamStatus'), [...STREAM_STATUSES]);
  assert.deepEqual(enumOf('Call', 'reason'), [...CALL_REASONS]);
  assert.deepEqual(enumOf('Push', 'status'), [...PUSH_STATES]);
  assert.deepEqual(PUSH_STATES, ['PENDING', 'CONNECTING', 'PUBLISHING', 'RECONNECTING', 'FAILED', 'CLOSED']);
});

test('the WCS call controls answer only WCS\'s documented codes, 404 and 500, with our message; hold (ours) keeps 409 and 503', async () => {
  const { ConflictError, UnavailableError, UnsupportedError, UndecodableError } = await import('../../plugin/calls/errors.js');
  let next: Error = new Error('unset');
  const fail = async () => {
    throw next;
  };
  const calls = { sendDtmf: fail, injectSound: fail, injectStream: fail, stopInjectStream: fail, hold: fail } as never;
  const app = buildRestServer({ prefix: PREFIX, log: createLogger({ level: 'silent' }), calls });
  const post = async (path: string, body: unknown) => {
    const r = await app.inject({ method: 'POST', url: PREFIX + path, payload: body as object });
    return [r.statusCode, (JSON.parse(r.body) as { error: string }).error];
  };
  const cases: [Error, number, number][] = [
    [new ConflictError('call c1 is not established (status RING)', 'callId'), 404, 409],
    [new UnavailableError('call c1: media not up', 'callId'), 500, 503],
    [new UnsupportedError('this PBX adapter cannot send DTMF'), 500, 501],
    [new UndecodableError('fileName could not be decoded', 'fileName'), 500, 422],
  ];
  for (const [err, wcs, ours] of cases) {
    next = err;
    for (const [path, body] of [
      ['/call/send_dtmf', { callId: 'c1', dtmf: '1' }],
      ['/call/inject_sound', { callId: 'c1', fileName: 'a.wav' }],
      ['/call/inject_stream/startup', { callId: 'c1', streamName: 's' }],
      ['/call/inject_stream', { callId: 'c1', streamName: 's' }],
      ['/call/inject_stream/terminate', { callId: 'c1' }],
    ] as const) {
      assert.deepEqual(await post(path, body), [wcs, err.message], `${path}: ${err.name}`);
    }
    assert.deepEqual(await post('/call/hold', { callId: 'c1' }), [ours, err.message], `hold: ${err.name}`);
  }
  await app.close();
});
