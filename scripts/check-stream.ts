/**
 * Check a stream against YouTube's and Facebook's documented ingest rules (scripts/lib/stream-rules.ts):
 *   npm run check-stream -- <rtmp(s)://... | file.flv> [--seconds N] [--json] [--max-keyframe-interval S]
 *                           [--max-first-keyframe S] [--max-gap-ms N] [--max-av-offset-ms N]
 * A file (e.g. an nginx-rtmp recording) is judged from its first byte. A URL is played for --seconds (default
 * 20) by an ffmpeg child (`-c copy -f flv pipe:1`), the bytes judged as they come; a player that joins late
 * did not see the stream's start, so first-keyframe is then only a warning.
 * Exit status: 0 every error-level rule passed, 1 one failed, 2 usage or I/O error (no such file, not an FLV,
 * cannot connect, no media). The stream key and URL credentials are never printed.
 */
import { spawn } from 'node:child_process';
import { createReadStream } from 'node:fs';
import { parseArgs } from 'node:util';
import { FlvFormatError, FlvTagReader } from '../plugin/media/output/flv-reader.js';
import { describeTarget, parseRtmpUrl, RtmpUrlError, type RtmpTarget } from '../plugin/rtmp/url.js';
import { aacObjectTypeName, checkRules, StreamAnalyzer, summarize, type RuleOptions, type RuleResult, type StreamFacts } from './lib/stream-rules.js';

const USAGE = `usage: check-stream <rtmp(s)://host/app/key | file.flv> [--seconds N=20] [--json]
       [--max-keyframe-interval S=2.5] [--max-first-keyframe S=1] [--max-gap-ms N=100] [--max-av-offset-ms N=500]`;

class UsageError extends Error {}
class InputError extends Error {}

function positiveNumber(name: string, v: string | undefined): number | undefined {
  if (v === undefined) return undefined;
  const n = Number(v);
  if (!(n > 0) || !Number.isFinite(n)) throw new UsageError(`--${name} needs a positive number, not "${v}"`);
  return n;
}

interface Pulled {
  label: string;
  facts: StreamFacts;
  joinedLate: boolean;
  notes: string[];
}

async function readFile(path: string): Promise<Pulled> {
  const reader = new FlvTagReader(64 * 1024 * 1024);
  const an = new StreamAnalyzer();
  try {
    for await (const chunk of createReadStream(path)) for (const tag of reader.push(chunk as Buffer)) an.push(tag);
  } catch (err) {
    if (err instanceof FlvFormatError) throw new InputError(`${path}: ${err.message}`);
    throw new InputError(`${path}: ${(err as Error).message}`);
  }
  return { label: path, facts: an.facts(), joinedLate: false, notes: [] };
}

/** Every rtmp(s):// URL in ffmpeg's words masked, and the secrets themselves wherever they appear. */
function masker(url: string, target: RtmpTarget): (text: string) => string {
  const secrets = [url, target.streamName, target.streamName.split('?')[0]!, target.password ?? '']
    .filter((x) => x.length >= 3)
    .sort((x, y) => y.length - x.length);
  const masked = describeTarget(target);
  return (text) => {
    let out = text.replace(/rtmps?:\/\/\S+/gi, masked);
    for (const secret of secrets) out = out.split(secret).join('***');
    return out;
  };
}

async function pullUrl(url: string, seconds: number): Promise<Pulled> {
  let target: RtmpTarget;
  try {
    target = parseRtmpUrl(url);
  } catch (err) {
    throw new UsageError(err instanceof RtmpUrlError ? err.message : 'unparseable RTMP URL');
  }
  const mask = masker(url, target);
  const label = describeTarget(target);
  const reader = new FlvTagReader(64 * 1024 * 1024);
  const an = new StreamAnalyzer();
  let stderr = '';
  let formatError: string | undefined;
  const child = spawn('ffmpeg', [
    '-nostdin', '-hide_banner', '-loglevel', 'error', '-rw_timeout', '10000000',
    '-i', url, '-t', String(seconds), '-c', 'copy', '-f', 'flv', 'pipe:1',
  ], { stdio: ['ignore', 'pipe', 'pipe'] });
  child.stdout.on('data', (chunk: Buffer) => {
    if (formatError) return;
    try {
      for (const tag of reader.push(chunk)) an.push(tag);
    } catch (err) {
      formatError = (err as Error).message;
      child.kill('SIGTERM');
    }
  });
  child.stderr.on('data', (chunk: Buffer) => {
    stderr = (stderr + chunk.toString('utf8')).slice(-4000);
  });
  // ffmpeg ends by itself after -t; this covers a server that accepts but never sends media.
  const guard = setTimeout(() => child.kill('SIGTERM'), (seconds + 15) * 1000);
  const code = await new Promise<number | null>((resolve, reject) => {
    child.once('error', (err) => reject(new InputError(`cannot run ffmpeg: ${err.message}`)));
    child.once('close', (c) => resolve(c));
  }).finally(() => clearTimeout(guard));

  const facts = an.facts();
  const ffmpegSaid = mask(stderr.trim().split('\n').slice(-3).join(' | '));
  if (formatError) throw new InputError(`${label}: ffmpeg's output is not FLV: ${formatError}`);
  if (facts.tags.audio + facts.tags.video === 0) {
    throw new InputError(`${label}: no media received${code ? ` (ffmpeg exit ${code}${ffmpegSaid ? `: ${ffmpegSaid}` : ''})` : ''}`);
  }
  const notes = [
    `played live for up to ${seconds} s: a player joining late does not see the stream's start, so first-keyframe is a warning here; for that rule check a server recording (nginx-rtmp "record all") with this command`,
  ];
  if (code) notes.push(`ffmpeg ended with exit ${code}${ffmpegSaid ? `: ${ffmpegSaid}` : ''}`);
  return { label, facts, joinedLate: true, notes };
}

function summaryLines(f: StreamFacts): string[] {
  const lines: string[] = [];
  const v = f.video;
  if (v) {
    const p = v.profiles[0];
    const size = v.sizes.map((z) => `${z.width}x${z.height}`).join(' → ') || '?x?';
    const fps = v.expectedStepMs ? ` ${(1000 / v.expectedStepMs).toFixed(1)} fps,` : '';
    lines.push(`video: ${v.codecName}${p ? ` ${p.name} ${(p.levelIdc / 10).toFixed(1)}` : ''}, ${size},${fps} ${v.frames} frames, ${v.keyframes} keyframes, ${v.bitrateKbps} kb/s, ${(v.durationMs / 1000).toFixed(2)} s`);
  } else lines.push('video: none');
  const a = f.audio;
  if (a) {
    const asc = a.objectTypes.length
      ? `${a.objectTypes.map(aacObjectTypeName).join('/')} ${a.sampleRates.join('/')} Hz ${a.channelCounts.join('/')} ch` : a.codecName;
    lines.push(`audio: ${asc}, ${a.frames} frames, ${a.bitrateKbps} kb/s, ${(a.durationMs / 1000).toFixed(2)} s`);
  } else lines.push('audio: none');
  return lines;
}

function printText(p: Pulled, results: RuleResult[]): void {
  const width = Math.max(...results.map((r) => r.rule.length));
  console.log(`stream: ${p.label}`);
  for (const l of summaryLines(p.facts)) console.log(`  ${l}`);
  for (const r of results) {
    const mark = r.skipped ? 'SKIP' : r.ok ? 'PASS' : r.level === 'error' ? 'FAIL' : 'WARN';
    console.log(`${mark}  ${r.rule.padEnd(width)}  ${r.detail}`);
    if (!r.ok) console.log(`      ${''.padEnd(width)}  rule: ${r.source}`);
  }
  for (const n of p.notes) console.log(`note: ${n}`);
  const s = summarize(results);
  console.log(`result: ${s.ok ? 'PASS' : 'FAIL'} (${s.errors.length} error(s), ${s.warnings.length} warning(s))`);
}

async function main(): Promise<number> {
  let args;
  try {
    args = parseArgs({
      allowPositionals: true,
      options: {
        seconds: { type: 'string' }, json: { type: 'boolean' }, help: { type: 'boolean', short: 'h' },
        'max-keyframe-interval': { type: 'string' }, 'max-first-keyframe': { type: 'string' },
        'max-gap-ms': { type: 'string' }, 'max-av-offset-ms': { type: 'string' },
      },
    });
  } catch (err) {
    throw new UsageError((err as Error).message);
  }
  if (args.values.help) {
    console.log(USAGE);
    return 0;
  }
  const source = args.positionals[0];
  if (!source || args.positionals.length > 1) throw new UsageError('give one rtmp(s):// URL or FLV file');
  const opts: RuleOptions = {};
  const kf = positiveNumber('max-keyframe-interval', args.values['max-keyframe-interval']);
  const first = positiveNumber('max-first-keyframe', args.values['max-first-keyframe']);
  const gap = positiveNumber('max-gap-ms', args.values['max-gap-ms']);
  const av = positiveNumber('max-av-offset-ms', args.values['max-av-offset-ms']);
  if (kf !== undefined) opts.maxKeyframeIntervalS = kf;
  if (first !== undefined) opts.maxFirstKeyframeS = first;
  if (gap !== undefined) opts.maxGapMs = gap;
  if (av !== undefined) opts.maxAvOffsetMs = av;
  const seconds = positiveNumber('seconds', args.values.seconds) ?? 20;

  const pulled = /^rtmps?:\/\//i.test(source) ? await pullUrl(source, seconds) : await readFile(source);
  opts.joinedLate = pulled.joinedLate;
  const results = checkRules(pulled.facts, opts);
  if (args.values.json) {
    const s = summarize(results);
    console.log(JSON.stringify({ source: pulled.label, joinedLate: pulled.joinedLate, ok: s.ok, notes: pulled.notes, results, facts: pulled.facts }, null, 2));
  } else printText(pulled, results);
  return summarize(results).ok ? 0 : 1;
}

main().then(
  (code) => {
    process.exitCode = code;
  },
  (err: unknown) => {
    if (err instanceof UsageError) console.error(`check-stream: ${err.message}\n${USAGE}`);
    else if (err instanceof InputError) console.error(`check-stream: ${err.message}`);
    else console.error(`check-stream: ${(err as Error).stack ?? String(err)}`);
    process.exitCode = 2;
  },
);
