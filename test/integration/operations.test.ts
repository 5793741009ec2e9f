/**
 * What operators' tools read, against the real sandbox:
 *  - /metrics scraped before, during and after a call: the counters move as the call does (calls by
 *    status, active pushes, RTP received and rejected, encoder CPU, REST latency), never backwards;
 *  - /docs: Swagger UI and the OpenAPI document, whose examples, posted exactly as given, place a call,
 *    add a push, find it and hang it up.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { createSocket } from 'node:dgram';
import { after, before, test } from 'node:test';
import { startTestApp, udpPortsInRange, waitFor, type TestApp } from '../helpers/app.js';
import { isPublished } from '../helpers/audio-analysis.js';
import { registeredRoutes } from '../helpers/routes.js';
import { uniqueId } from '../helpers/sandbox.js';

let t: TestApp;
let origin: string;
before(async () => {
  t = await startTestApp({});
  origin = new URL(t.app.restUrl).origin;
});
after(async () => {
  await t?.stop();
});

/** Prometheus text → "name{labels}" → value. */
async function scrape(): Promise<Map<string, number>> {
  const res = await fetch(`${origin}/metrics`);
  assert.equal(res.status, 200);
  assert.match(res.headers.get('content-type') ?? '', /^text\/plain/);
  const m = new Map<string, number>();
  for (const line of (await res.text()).split('\n')) {
    const x = /^([a-z_:]+(?:\{[^}]*\})?) (\S+)$/.exec(line);
    if (x) m.set(x[1]!, Number(x[2]));
  }
  return m;
}
const v = (m: Map<string, number>, key: string) => m.get(key) ?? 0;

test('/metrics during a call: calls by status, pushes, RTP received and rejected, encoder CPU, audio and REST latency', { timeout: 60_000 }, async () => {
  const before = await scrape();
  const callId = uniqueId('metrics');
  const stream = uniqueId('metrics');
  const r = await t.post('/call/startup', { callId, callee: 'softphone', sipDomain: '127.0.0.1', sipPort: t.env.BARESIP_PORT, rtmpUrl: t.env.RTMP_URL, rtmpStream: stream });
  assert.equal(r.status, 200, r.text);
  await t.waitStatus(callId, ['ESTABLISHED']);
  await waitFor(async () => (await t.find(callId))?.rtmpStreamStatus === 'PUBLISHING', 10_000, 'publishing');

  // A stranger's datagrams at the call's ports: dropped and counted.
  const stranger = createSocket('udp4');
  for (const port of udpPortsInRange(21000, 21999)) stranger.send(Buffer.from([0xde, 0xad]), port, '127.0.0.1');
  await new Promise((res) => setTimeout(res, 1000));
  stranger.close();

  const during = await scrape();
  const during2 = await (async () => {
    await new Promise((res) => setTimeout(res, 1000));
    return scrape();
  })();
  console.log(`# during the call: ${[...during].filter(([k]) => /^sip_as_rtmp_(calls|pushes_active|rtp_packets|encoder|rtmp_re)/.test(k)).map(([k, x]) => `${k}=${x}`).join(' ')}`);
  assert.equal(v(during, 'sip_as_rtmp_calls{status="ESTABLISHED"}'), v(before, 'sip_as_rtmp_calls{status="ESTABLISHED"}') + 1);
  assert.equal(v(during, 'sip_as_rtmp_pushes_active'), 1);
  assert.equal(v(during, 'sip_as_rtmp_pushes{state="PUBLISHING"}'), 1);
  assert.equal(v(during, 'sip_as_rtmp_calls_started_total{direction="outbound"}'), v(before, 'sip_as_rtmp_calls_started_total{direction="outbound"}') + 1);
  const rx = 'sip_as_rtmp_rtp_packets_received_total{media="audio"}';
  assert.ok(v(during, rx) > v(before, rx) + 50, 'RTP received counted');
  assert.ok(v(during2, rx) >= v(during, rx) + 40, `still moving: 50 packets a second (${v(during, rx)} → ${v(during2, rx)})`);
  assert.ok(v(during, 'sip_as_rtmp_rtp_packets_rejected_total{media="audio"}') > v(before, 'sip_as_rtmp_rtp_packets_rejected_total{media="audio"}'), 'the stranger\'s packets counted as rejected');
  assert.equal(v(during, 'sip_as_rtmp_rtp_packets_lost_total{media="audio"}'), v(before, 'sip_as_rtmp_rtp_packets_lost_total{media="audio"}'), 'nothing lost on loopback');
  assert.ok(v(during2, 'sip_as_rtmp_encoder_cpu_seconds_total{encoder="native"}') > v(before, 'sip_as_rtmp_encoder_cpu_seconds_total{encoder="native"}'), 'the in-process encoder\'s time');
  assert.equal(v(during, 'sip_as_rtmp_encoder_processes'), 0, 'no encoder children with the native encoder');
  assert.equal(v(during, 'sip_as_rtmp_jitter_buffer_delay_seconds'), 0.06);
  const lat = 'sip_as_rtmp_audio_latency_seconds_count';
  assert.ok(v(during2, lat) > v(during, lat) && v(during, lat) > v(before, lat), 'audio latency observed as frames leave');
  assert.equal(v(during2, 'sip_as_rtmp_audio_latency_seconds_bucket{le="+Inf"}'), v(during2, lat));
  const startupCount = 'sip_as_rtmp_rest_request_duration_seconds_count{method="POST",route="/rest-api/call/startup",code="200"}';
  assert.equal(v(during, startupCount), v(before, startupCount) + 1, 'REST latency observed per route');

  assert.equal((await t.post('/call/terminate', { callId })).status, 200);
  await t.waitStatus(callId, ['FINISH']);
  await t.assertNoLeaks([t.app.calls.get(callId)!.key]);
  const afterEnd = await scrape();
  assert.equal(v(afterEnd, 'sip_as_rtmp_calls_ended_total{status="FINISH",reason="NORMAL_CALL_CLEARING"}'), v(before, 'sip_as_rtmp_calls_ended_total{status="FINISH",reason="NORMAL_CALL_CLEARING"}') + 1);
  assert.equal(v(afterEnd, 'sip_as_rtmp_calls{status="FINISH"}'), v(before, 'sip_as_rtmp_calls{status="FINISH"}') + 1, 'listed as FINISH until ENDED_CALL_TTL_SEC');
  assert.equal(v(afterEnd, 'sip_as_rtmp_pushes_active'), 0);
  assert.ok(v(afterEnd, rx) >= v(during2, rx), 'counters never go back when a call ends');
});

interface OpenApiDoc {
  paths: Record<string, Record<string, { operationId: string; requestBody?: { content: Record<string, { example?: Record<string, unknown> }> } }>>;
}
const example = (doc: OpenApiDoc, path: string) => doc.paths[`/rest-api${path}`]!.post!.requestBody!.content['application/json']!.example!;

test('/docs: Swagger UI lists every method; the examples, as given, call the sandbox, push, find and hang up', { timeout: 60_000 }, async () => {
  const page = await fetch(`${origin}/docs`, { redirect: 'follow' });
  assert.equal(page.status, 200);
  assert.match(await page.text(), /swagger-ui/i);
  const doc = (await (await fetch(`${origin}/docs/json`)).json()) as OpenApiDoc;
  const methods = Object.entries(doc.paths).flatMap(([p, ops]) => Object.keys(ops).map((m) => `${m.toUpperCase()} ${p}`));
  console.log(`# /docs lists ${methods.length} methods`);
  // Every API route the app serves (the WCS methods, the live feed, the preview, /metrics) is documented.
  const api = registeredRoutes(t.app.rest).filter((r) => / (\/rest-api\/|\/metrics$)/.test(r));
  assert.ok(api.length >= 19, api.join(', '));
  for (const route of api) {
    const path = route.replace(':file', '{callId}.flv').replace(/:(\w+)/g, '{$1}');
    assert.ok(methods.includes(path), `${path} is documented`);
  }

  const startup = example(doc, '/call/startup');
  const callId = String(startup.callId);
  const r = await t.post('/call/startup', startup);
  assert.equal(r.status, 200, `the /call/startup example as given: ${r.text}`);
  await t.waitStatus(callId, ['ESTABLISHED']);
  const found = await t.post('/call/find', example(doc, '/call/find'));
  assert.equal(found.status, 200, found.text);
  assert.equal((found.json as { callId: string }[])[0]!.callId, callId);
  await waitFor(async () => isPublished(t.env.RTMP_STAT_URL!, `rtmp_${String(startup.rtmpStream)}`), 10_000, 'the example call publishes on nginx');
  const push = await t.post('/push/startup', example(doc, '/push/startup'));
  assert.equal(push.status, 200, `the /push/startup example: ${push.text}`);
  const dtmf = await t.post('/call/send_dtmf', example(doc, '/call/send_dtmf'));
  assert.equal(dtmf.status, 200, dtmf.text);
  const end = await t.post('/call/terminate', example(doc, '/call/terminate'));
  assert.equal(end.status, 200, end.text);
  await t.waitStatus(callId, ['FINISH']);
  await t.assertNoLeaks([t.app.calls.get(callId)!.key]);
});

/** Reads an SSE stream into [event, data] pairs until `until` holds or the time is up. */
async function readFeed(url: string, until: (events: [string, unknown][]) => boolean, ms: number, during: () => Promise<void>): Promise<[string, unknown][]> {
  const ctl = new AbortController();
  const res = await fetch(url, { signal: ctl.signal });
  assert.equal(res.status, 200);
  assert.match(res.headers.get('content-type') ?? '', /^text\/event-stream/);
  const events: [string, unknown][] = [];
  const reading = (async () => {
    let buf = '';
    const dec = new TextDecoder();
    try {
      for await (const chunk of res.body as unknown as AsyncIterable<Uint8Array>) {
        buf += dec.decode(chunk, { stream: true });
        for (let i; (i = buf.indexOf('\n\n')) >= 0; buf = buf.slice(i + 2)) {
          const m = /^event: (\w+)\ndata: (.*)$/s.exec(buf.slice(0, i));
          if (m) events.push([m[1]!, JSON.parse(m[2]!)]);
        }
        if (until(events)) break;
      }
    } catch {
      // aborted
    }
  })();
  await during();
  await Promise.race([reading, new Promise((r) => setTimeout(r, ms))]);
  ctl.abort();
  return events;
}

test('the live feed: a snapshot, then each status change as it happens, and stats once a second', { timeout: 60_000 }, async () => {
  const callId = uniqueId('feed');
  const statuses = (evs: [string, unknown][]) =>
    [...new Set(evs.filter(([e, d]) => e === 'call' && (d as { callId: string }).callId === callId).map(([, d]) => (d as { status: string }).status))];
  const events = await readFeed(`${t.app.restUrl}/events`, (evs) => statuses(evs).includes('FINISH'), 20_000, async () => {
    assert.equal((await t.post('/call/startup', { callId, callee: 'softphone', sipDomain: '127.0.0.1', sipPort: t.env.BARESIP_PORT, toStream: callId })).status, 200);
    await t.waitStatus(callId, ['ESTABLISHED']);
    await new Promise((r) => setTimeout(r, 2200));
    assert.equal((await t.post('/call/terminate', { callId })).status, 200);
  });
  assert.equal(events[0]?.[0], 'snapshot');
  assert.deepEqual(statuses(events), ['TRYING', 'RING', 'ESTABLISHED', 'FINISH'].filter((s) => statuses(events).includes(s)));
  assert.ok(statuses(events).includes('ESTABLISHED') && statuses(events).at(-1) === 'FINISH', statuses(events).join(' → '));
  const stats = events.filter(([e, d]) => e === 'stats' && (d as { calls: Record<string, unknown> }).calls[callId]);
  assert.ok(stats.length >= 2, `${stats.length} stats events for the call`);
  const last = (stats.at(-1)![1] as { calls: Record<string, { audioKbps: number; audio: { received: number } }> }).calls[callId]!;
  assert.ok(last.audio.received > 50 && last.audioKbps > 0, JSON.stringify(last));
  await t.assertNoLeaks([t.app.calls.get(callId)!.key]);
});

test('the preview: 404 for an unknown call; HTTP-FLV that ffprobe reads (AAC + H.264); it ends with the call', { timeout: 60_000 }, async () => {
  const unknown = await fetch(`${t.app.restUrl}/preview/nope.flv`);
  assert.equal(unknown.status, 404);
  assert.equal(((await unknown.json()) as { field: string }).field, 'callId');
  const callId = uniqueId('preview');
  assert.equal((await t.post('/call/startup', { callId, callee: 'video', sipDomain: '127.0.0.1', sipPort: t.env.SIPP_VIDEO_PORT, hasVideo: 'true', toStream: callId })).status, 200);
  await t.waitStatus(callId, ['ESTABLISHED']);
  await waitFor(async () => t.app.calls.get(callId)?.media !== undefined, 5000, 'media');
  const url = `${t.app.restUrl}/preview/${callId}.flv`;
  const probe = await new Promise<string>((res) =>
    execFile('ffprobe', ['-v', 'error', '-read_intervals', '%+3', '-show_entries', 'stream=codec_name', '-of', 'csv=p=0', url], { timeout: 20_000 }, (_e, out) => res(out)),
  );
  // (ffprobe also lists a "text" stream: the onMetaData sent again when the caller's video replaced the
  // generated one, as the RTMP outputs get it too.)
  assert.deepEqual(probe.trim().split('\n').filter((c) => c !== 'text').sort(), ['aac', 'h264']);
  // A viewer still connected when the call ends: its response ends, and it holds nothing.
  const viewer = await fetch(url);
  const body = viewer.arrayBuffer();
  await new Promise((r) => setTimeout(r, 500));
  assert.equal((await t.post('/call/terminate', { callId })).status, 200);
  const bytes = (await body).byteLength;
  assert.ok(bytes > 1000, `${bytes} bytes before the end`);
  await t.assertNoLeaks([t.app.calls.get(callId)!.key]);
});
