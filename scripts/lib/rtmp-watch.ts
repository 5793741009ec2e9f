/**
 * A light RTMP player that measures, from the server's side, whether a live stream stays real time:
 * one socket per stream, no decoding, constant memory (running maxima, no per-tag arrays). A benchmark
 * runs many of these in one process instead of one ffmpeg per stream.
 *
 *   TCP → handshake → Set Chunk Size + connect(app) → createStream → play(name, -1)
 *
 * then every audio (8) and video (9) message goes to a StreamClock with its arrival time and tag
 * timestamp. Server pings are answered and Acknowledgements sent each window, so the server never holds
 * the stream back. Playing before the stream is published works on nginx-rtmp (idle_streams is on by
 * default): NetStream.Play.Start comes at once, and when the publisher starts, User Control Stream Begin,
 * onMetaData, the sequence headers and the media follow. When it stops, nginx sends only Stream EOF
 * (UnpublishNotify / Play.Stop need publish_notify / play_restart on) and keeps the connection: `ended`
 * becomes 'unpublished', and if the name is published again the play goes on (`republished`). No
 * reconnects: when the connection drops, the reason is recorded in `ended`.
 *
 * Built from the project's own RTMP modules (plugin/rtmp), like RtmpPublisher; only the play side is here.
 */
import { EventEmitter } from 'node:events';
import { connect as netConnect, type Socket } from 'node:net';
import { connect as tlsConnect } from 'node:tls';
import { performance } from 'node:perf_hooks';
import { ChunkReader, ChunkWriter, type ChunkMessage } from '../../plugin/rtmp/chunk.js';
import { ClientFlowControl, type ControlReply } from '../../plugin/rtmp/flow-control.js';
import { ClientHandshake } from '../../plugin/rtmp/handshake.js';
import {
  buildCommand,
  buildConnect,
  buildSetChunkSize,
  Csid,
  MessageType,
  parseMessage,
  statusInfo,
  UserControlEvent,
  type RtmpMessage,
} from '../../plugin/rtmp/messages.js';
import { parseRtmpUrl, type RtmpTarget } from '../../plugin/rtmp/url.js';

// ------------------------------------------------------------------------------------------ the clock

/**
 * What one audio/video message is, for the bookkeeping:
 *  'audio' / 'video'            a media frame
 *  'keyframe'                   a video key frame (not a sequence header)
 *  'audio-header'/'video-header' AAC / AVC sequence header (codec configuration, not on the timeline)
 */
export type MediaEventKind = 'audio' | 'video' | 'keyframe' | 'audio-header' | 'video-header';

export interface ClockStats {
  /** Arrival time of the first audio or video message that is not a sequence header. */
  firstMediaAt?: number;
  /** Every audio / video message, sequence headers included. */
  audioTags: number;
  videoTags: number;
  keyframes: number;
  /** Arrival time of the last audio or video message (sequence headers included). */
  lastArrival?: number;
  /** Largest gap between consecutive media arrivals (either track) after the first, outside the burst window. */
  maxStallMs: number;
  /** Gaps longer than the clock's stall threshold. */
  stalls: number;
  /** Largest |(ts - ts0) - (arrival - arrival0)| over both tracks (see StreamClock for ts0 / arrival0). */
  maxDriftMs: number;
  audioMaxDriftMs: number;
  videoMaxDriftMs: number;
  /** Largest tag-timestamp difference between consecutive key frames. */
  maxKeyframeIntervalMs: number;
  /** Tag-timestamp span of the media seen, per track (unwrapped across 2^32; summed over re-publishes), in ms. */
  audioSpanMs: number;
  videoSpanMs: number;
}

/** One track's timeline: 32-bit timestamps unwrapped, and the arrival − timestamp base drift is measured against. */
class Track {
  started = false;
  /** Last raw u32 timestamp and its unwrapped value. */
  lastRaw = 0;
  ext = 0;
  firstExt = 0;
  /** arrival − ts of the reference point (ts0 / arrival0). */
  base = 0;
  maxDrift = 0;
  hasKey = false;
  lastKeyExt = 0;
  /** Span of the timelines before the last reset. */
  spanBefore = 0;

  /** Unwrapped timestamp: the signed 32-bit step from the previous one, so 2^32 wraps (and small steps back) are continuous. */
  unwrap(raw: number): number {
    if (!this.started) {
      this.lastRaw = raw >>> 0;
      this.ext = this.lastRaw;
      this.firstExt = this.ext;
      return this.ext;
    }
    const step = ((raw >>> 0) - this.lastRaw) | 0;
    this.lastRaw = raw >>> 0;
    this.ext += step;
    return this.ext;
  }

  span(): number {
    return this.spanBefore + (this.started ? this.ext - this.firstExt : 0);
  }

  /** Forget the timeline (a new publish); the drift maximum and the span so far are kept. */
  reset(): void {
    this.spanBefore = this.span();
    this.started = false;
    this.hasKey = false;
  }
}

/**
 * Drift, stall and key-frame bookkeeping for one played stream, fed with (arrival ms, tag timestamp ms, kind).
 * Pure and allocation-free per event.
 *
 * Drift, per track: |(ts - ts0) - (arrival - arrival0)|, i.e. how far the arrivals have slid from the
 * timestamps since the reference point; the larger of the two tracks is maxDriftMs. Arrival is when the
 * player processed the message, so a player too slow to keep up shows as drift too, on purpose.
 * Sequence headers are counted but stay off the timeline (no drift, stall or first-media effect).
 *
 * The initial-burst rule. A player that joins a live stream may first get a burst: the sequence headers,
 * plus whatever the server buffered (a GOP cache, queued audio), delivered faster than real time. Measured
 * against the first message, such a burst reads as drift (later messages arrive "early"), and the wait for
 * the first live message after it reads as a stall. So:
 *  - for the first `burstMs` (1000) of arrival time after the first media message, drift and stalls are
 *    not counted;
 *  - the reference point (arrival0 − ts0) is re-based once, when that window closes, to the minimum of
 *    (arrival − ts) seen in the window for that track. The minimum is the message that arrived most promptly
 *    for its timestamp: a burst ahead of real time lowers it and is forgiven, while a stream that was
 *    late during the window doesn't lower it (its first message stays the minimum), so that lateness is
 *    still counted once the window is over. It is applied lazily: the base stays the running minimum while
 *    arrivals are inside the window and is frozen from the first arrival after it.
 *  - A track whose first media arrives after the window has its first message as the reference, as is.
 * Stall: the largest gap between consecutive media arrivals (either track) whose later arrival is after the
 * window. The trailing silence before an end is not a stall (the publisher may linger before it unpublishes);
 * it is reported by the watcher as silentMs.
 * Timestamps are u32 and unwrapped per track by their signed 32-bit step, so a wrap at 2^32 is seamless.
 * A re-publish (restart()) starts new timelines: see restart().
 */
export class StreamClock {
  private readonly audio = new Track();
  private readonly video = new Track();
  private firstMediaAt: number | undefined;
  private windowEnd = Infinity;
  private lastMediaArrival: number | undefined;
  private lastArrival: number | undefined;
  private audioTags = 0;
  private videoTags = 0;
  private keyframes = 0;
  private maxStall = 0;
  private stalls = 0;
  private maxKeyInterval = 0;
  private restartPending = false;

  constructor(
    private readonly opts: { burstMs?: number; stallMs?: number } = {},
  ) {}

  add(arrival: number, ts: number, kind: MediaEventKind): void {
    const isAudio = kind === 'audio' || kind === 'audio-header';
    if (isAudio) this.audioTags++;
    else this.videoTags++;
    this.lastArrival = arrival;
    if (kind === 'audio-header' || kind === 'video-header') return;

    if (this.firstMediaAt === undefined) {
      this.firstMediaAt = arrival;
      this.windowEnd = arrival + (this.opts.burstMs ?? 1000);
    }
    let inWindow = arrival < this.windowEnd;

    if (this.lastMediaArrival !== undefined && (!inWindow || this.restartPending)) {
      const gap = arrival - this.lastMediaArrival;
      if (gap > this.maxStall) this.maxStall = gap;
      if (gap > (this.opts.stallMs ?? 200)) this.stalls++;
    }
    this.lastMediaArrival = arrival;
    if (this.restartPending) {
      // A new publish: new timelines, and a new burst window from here (the gap before it was counted above).
      this.restartPending = false;
      this.audio.reset();
      this.video.reset();
      this.windowEnd = arrival + (this.opts.burstMs ?? 1000);
      inWindow = true;
    }

    const t = isAudio ? this.audio : this.video;
    const ext = t.unwrap(ts);
    const offset = arrival - ext;
    if (!t.started) {
      t.started = true;
      t.base = offset;
    } else if (inWindow) {
      if (offset < t.base) t.base = offset;
    } else {
      const drift = Math.abs(offset - t.base);
      if (drift > t.maxDrift) t.maxDrift = drift;
    }

    if (kind === 'keyframe') {
      this.keyframes++;
      if (t.hasKey) {
        const interval = ext - t.lastKeyExt;
        if (interval > this.maxKeyInterval) this.maxKeyInterval = interval;
      }
      t.hasKey = true;
      t.lastKeyExt = ext;
    }
  }

  /**
   * The stream was published again (on the same play): its timestamps start over, so each track gets a new
   * reference at its next message and a new burst window opens; maxima and counts carry on, and the gap up to
   * the next media counts as a stall.
   */
  restart(): void {
    if (this.lastMediaArrival !== undefined) this.restartPending = true;
  }

  /**
   * Judge from here on (the benchmark's measured window, once every call is up): each track takes a new
   * reference at its next message, with no burst window, and the drift, stall and key-frame maxima restart.
   * How a stream starts (a burst, a long probe) is then the first-media figure's business, not drift.
   */
  measureFrom(): void {
    for (const t of [this.audio, this.video]) {
      t.reset();
      t.maxDrift = 0;
    }
    this.maxStall = 0;
    this.stalls = 0;
    this.maxKeyInterval = 0;
    if (this.firstMediaAt !== undefined) this.windowEnd = -Infinity;
  }

  /** Arrival of the last media message that is not a sequence header. */
  get lastMediaAt(): number | undefined {
    return this.lastMediaArrival;
  }

  stats(): ClockStats {
    const s: ClockStats = {
      audioTags: this.audioTags,
      videoTags: this.videoTags,
      keyframes: this.keyframes,
      maxStallMs: this.maxStall,
      stalls: this.stalls,
      maxDriftMs: Math.max(this.audio.maxDrift, this.video.maxDrift),
      audioMaxDriftMs: this.audio.maxDrift,
      videoMaxDriftMs: this.video.maxDrift,
      maxKeyframeIntervalMs: this.maxKeyInterval,
      audioSpanMs: this.audio.span(),
      videoSpanMs: this.video.span(),
    };
    if (this.firstMediaAt !== undefined) s.firstMediaAt = this.firstMediaAt;
    if (this.lastArrival !== undefined) s.lastArrival = this.lastArrival;
    return s;
  }
}

/** AAC sequence header: sound format 10 and AACPacketType 0. */
function isAacHeader(p: Buffer): boolean {
  return p.length >= 2 && p[0]! >> 4 === 10 && p[1] === 0;
}

/** Video kind from the FLV video tag header: frame type (high nibble) and, for AVC (codec 7), the packet type. */
function videoKind(p: Buffer): MediaEventKind {
  if (p.length === 0) return 'video';
  const b0 = p[0]!;
  if ((b0 & 0x0f) === 7 && p.length >= 2 && p[1] === 0) return 'video-header';
  return b0 >> 4 === 1 ? 'keyframe' : 'video';
}

// ---------------------------------------------------------------------------------------- the watcher

export interface WatchStats extends ClockStats {
  /** Bytes of audio + video message payloads. */
  bytes: number;
  /** All bytes read from the socket, handshake included. */
  socketBytes: number;
  /** When NetStream.Play.Start arrived. */
  playingAt?: number;
  /** How often the stream was published again after it had ended (unpublished) on this connection. */
  republished: number;
  /** Time since the last media arrival, up to now (still playing) or to when the play ended. */
  silentMs?: number;
  /** Why the play ended: 'unpublished', 'stopped', 'closed' (server hung up), 'local-close', 'ETIMEDOUT', a status code (NetStream.Play.StreamNotFound), a socket error code. */
  ended?: string;
  endedAt?: number;
  /** Details for an error end (the server's description or the socket error message). */
  error?: string;
}

export interface RealtimeLimits {
  driftMs: number;
  stallMs: number;
}

/**
 * Judges stats: media arrived, drift and stalls within limits, and — while still playing — no silence longer
 * than the stall limit (a stream stuck for good has no gap between arrivals to show for it).
 */
export function judgeRealtime(s: WatchStats, limits: RealtimeLimits = { driftMs: 100, stallMs: 200 }): { ok: boolean; why?: string } {
  if (s.firstMediaAt === undefined) return { ok: false, why: `no media arrived${s.ended ? ` (ended: ${s.ended})` : ''}` };
  if (s.maxDriftMs > limits.driftMs) return { ok: false, why: `drift ${s.maxDriftMs.toFixed(1)} ms > ${limits.driftMs} ms (audio ${s.audioMaxDriftMs.toFixed(1)}, video ${s.videoMaxDriftMs.toFixed(1)})` };
  if (s.maxStallMs > limits.stallMs) return { ok: false, why: `stall ${s.maxStallMs.toFixed(1)} ms > ${limits.stallMs} ms (${s.stalls} gaps over the limit)` };
  if (s.ended === undefined && s.silentMs !== undefined && s.silentMs > limits.stallMs) {
    return { ok: false, why: `no media for the last ${s.silentMs.toFixed(0)} ms` };
  }
  return { ok: true };
}

export interface RtmpWatcherOptions {
  /** Clock in ms (default performance.now). */
  now?: () => number;
  /** Gaps above this count as stalls, and the default stall limit of realtime(). Default 200. */
  stallMs?: number;
  /** Initial-burst window (see StreamClock). Default 1000. */
  burstMs?: number;
  /** From start() to NetStream.Play.Start. Default 10000. */
  connectTimeoutMs?: number;
  /** rtmps: verify the certificate unless false. */
  rejectUnauthorized?: boolean;
}

export interface RtmpWatcherEvents {
  /** NetStream.Play.Start: the server accepted the play (media may follow much later). */
  playing: [];
  /** The first media message that is not a sequence header. */
  media: [];
  /** The play ended (see WatchStats.ended). May be followed by more media if the stream is published again. */
  end: [reason: string];
}

const FLASHVER = 'LNX 9,0,124,2';
const CHUNK_SIZE = 4096;

export class RtmpWatcher extends EventEmitter<RtmpWatcherEvents> {
  private readonly target: RtmpTarget;
  private readonly now: () => number;
  private readonly clock: StreamClock;
  private readonly stallMs: number;
  private socket: Socket | undefined;
  private handshake: ClientHandshake | undefined = new ClientHandshake();
  private readonly reader = new ChunkReader({ maxMessageSize: 1 << 23 });
  private readonly writer = new ChunkWriter();
  private timer: NodeJS.Timeout | undefined;
  private started = false;
  private closed = false;

  private connectTx = 0;
  private createTx = 0;
  private nextTx = 1;

  private readonly flow = new ClientFlowControl();

  private bytes = 0;
  private socketBytes = 0;
  private republished = 0;
  private playingAt: number | undefined;
  private ended: string | undefined;
  private endedAt: number | undefined;
  private error: string | undefined;
  /** Arrival time of the socket read being processed (status changes are stamped with it, like media). */
  private arrival = 0;

  constructor(
    url: string,
    streamName: string,
    private readonly opts: RtmpWatcherOptions = {},
  ) {
    super();
    this.target = parseRtmpUrl(url, streamName);
    this.now = opts.now ?? (() => performance.now());
    this.stallMs = opts.stallMs ?? 200;
    this.clock = new StreamClock({ stallMs: this.stallMs, burstMs: opts.burstMs ?? 1000 });
  }

  start(): void {
    if (this.started) return;
    this.started = true;
    const t = this.target;
    const socket = t.secure
      ? tlsConnect({ host: t.host, port: t.port, rejectUnauthorized: this.opts.rejectUnauthorized ?? true })
      : netConnect({ host: t.host, port: t.port });
    this.socket = socket;
    socket.setNoDelay(true);
    this.timer = setTimeout(() => this.finish('ETIMEDOUT', `no NetStream.Play.Start within ${this.opts.connectTimeoutMs ?? 10_000} ms`), this.opts.connectTimeoutMs ?? 10_000);
    socket.once(t.secure ? 'secureConnect' : 'connect', () => this.send(this.handshake!.hello()));
    socket.on('data', (d: Buffer) => this.onData(d));
    socket.on('error', (err: NodeJS.ErrnoException) => this.finish(err.code ?? 'error', err.message));
    socket.on('close', () => this.finish('closed'));
  }

  /** Stop playing and release the socket. Idempotent; ended becomes 'local-close' unless it ended before. */
  close(): void {
    if (this.closed) return;
    this.finish('local-close');
  }

  stats(): WatchStats {
    const s: WatchStats = {
      ...this.clock.stats(),
      bytes: this.bytes,
      socketBytes: this.socketBytes,
      republished: this.republished,
    };
    if (this.playingAt !== undefined) s.playingAt = this.playingAt;
    const last = this.clock.lastMediaAt;
    if (last !== undefined) s.silentMs = (this.endedAt ?? this.now()) - last;
    if (this.ended !== undefined) s.ended = this.ended;
    if (this.endedAt !== undefined) s.endedAt = this.endedAt;
    if (this.error !== undefined) s.error = this.error;
    return s;
  }

  /** See StreamClock.measureFrom(). */
  measureFrom(): void {
    this.clock.measureFrom();
  }

  realtime(limits: RealtimeLimits = { driftMs: 100, stallMs: this.stallMs }): { ok: boolean; why?: string } {
    return judgeRealtime(this.stats(), limits);
  }

  // ------------------------------------------------------------------------------------------ inbound

  private onData(data: Buffer): void {
    if (this.closed) return;
    const arrival = this.now(); // one clock read per socket read: its messages all arrived together
    this.arrival = arrival;
    this.socketBytes += data.length;
    try {
      if (this.handshake) {
        const done = this.handshake.push(data);
        if (!done) return;
        this.handshake = undefined;
        const setChunk = this.writer.encode(Csid.Control, MessageType.SetChunkSize, 0, 0, buildSetChunkSize(CHUNK_SIZE));
        this.writer.chunkSize = CHUNK_SIZE;
        this.connectTx = this.nextTx++;
        const connect = this.writer.encode(
          Csid.Command,
          MessageType.CommandAmf0,
          0,
          0,
          buildConnect({ app: this.target.app, tcUrl: this.target.tcUrl, flashVer: FLASHVER }),
        );
        this.send(Buffer.concat([done.c2, setChunk, connect]));
        if (done.rest.length === 0) return;
        data = done.rest;
      }
      const msgs = this.reader.push(data);
      for (let i = 0; i < msgs.length; i++) {
        this.onMessage(msgs[i]!, arrival);
        if (this.closed) return;
      }
      this.sendControl(this.flow.received(data.length));
    } catch (err) {
      this.finish('EPROTO', (err as Error).message);
    }
  }

  private onMessage(m: ChunkMessage, arrival: number): void {
    // Media first and without parseMessage: no allocation beyond the reader's own.
    if (m.typeId === MessageType.Audio) {
      this.onMedia(arrival, m.timestamp, isAacHeader(m.payload) ? 'audio-header' : 'audio', m.payload.length);
      return;
    }
    if (m.typeId === MessageType.Video) {
      this.onMedia(arrival, m.timestamp, videoKind(m.payload), m.payload.length);
      return;
    }
    if (m.typeId === MessageType.DataAmf0 || m.typeId === MessageType.DataAmf3) return; // onMetaData, |RtmpSampleAccess
    this.onControl(parseMessage(m));
  }

  private onMedia(arrival: number, ts: number, kind: MediaEventKind, size: number): void {
    this.bytes += size;
    const first = this.clock.lastMediaAt === undefined;
    this.clock.add(arrival, ts, kind);
    if (first && this.clock.lastMediaAt !== undefined) this.emit('media');
  }

  private onControl(m: RtmpMessage): void {
    this.sendControl(this.flow.onMessage(m)); // acks, windows, pings
    switch (m.kind) {
      case 'userControl':
        // nginx-rtmp tells players that the publisher left with Stream EOF, and that one arrived with Stream
        // Begin; the onStatus notifications (UnpublishNotify / PublishNotify) come only with publish_notify on.
        if (m.event === UserControlEvent.StreamEof) this.markEnded('unpublished');
        else if (m.event === UserControlEvent.StreamBegin) this.resumed();
        return;
      case 'command':
        this.onCommand(m);
        return;
      default:
        return; // chunk size and abort are applied by the reader; acks need nothing
    }
  }

  private onCommand(c: Extract<RtmpMessage, { kind: 'command' }>): void {
    const info = statusInfo(c);
    if (c.name === '_result' || c.name === '_error') {
      const failed = c.name === '_error' || info.level === 'error';
      if (c.transactionId === this.connectTx) {
        if (failed) return this.finish(info.code ?? 'NetConnection.Connect.Rejected', info.description);
        this.createTx = this.nextTx++;
        this.sendMessage(Csid.Command, MessageType.CommandAmf0, 0, buildCommand('createStream', this.createTx, null));
        return;
      }
      if (c.transactionId === this.createTx) {
        const id = c.args[0];
        if (failed || typeof id !== 'number') return this.finish(info.code ?? 'createStream-failed', info.description);
        // Live only (-1); nginx-rtmp ignores start for live streams and, with idle_streams on, lets us wait for the publisher.
        this.sendMessage(Csid.Stream, MessageType.CommandAmf0, id, buildCommand('play', 0, null, this.target.streamName, -1));
      }
      return;
    }
    if (c.name === 'close') return this.finish('closed', info.description);
    if (c.name !== 'onStatus') return; // onBWDone, onMetaData-like calls
    switch (info.code) {
      case 'NetStream.Play.Start':
        if (this.playingAt === undefined) {
          this.playingAt = this.arrival;
          this.clearTimer();
          this.emit('playing');
        }
        return;
      case 'NetStream.Play.PublishNotify':
        return this.resumed();
      case 'NetStream.Play.UnpublishNotify':
        return this.markEnded('unpublished');
      case 'NetStream.Play.Stop':
        return this.markEnded('stopped');
      default:
        if (info.level === 'error') this.finish(info.code ?? 'error', info.description);
        return;
    }
  }

  /** The stream ended but the connection stays (the server may send PublishNotify and more media). */
  private markEnded(reason: string): void {
    if (this.ended !== undefined) return;
    this.ended = reason;
    this.endedAt = this.arrival;
    this.emit('end', reason);
  }

  /** The stream started (again) while the connection stayed: after an unpublish, the play goes on (the gap shows as a stall). */
  private resumed(): void {
    if (this.ended !== 'unpublished' && this.ended !== 'stopped') return;
    this.ended = undefined;
    this.endedAt = undefined;
    this.republished++;
    this.clock.restart();
  }

  // ----------------------------------------------------------------------------------------- outbound

  private sendControl(r: ControlReply | undefined): void {
    if (r) this.sendMessage(Csid.Control, r.typeId, 0, r.body);
  }

  private sendMessage(csid: number, typeId: number, streamId: number, payload: Buffer): void {
    this.send(this.writer.encode(csid, typeId, streamId, 0, payload));
  }

  private send(bytes: Buffer): void {
    const s = this.socket;
    if (s && !s.destroyed) s.write(bytes);
  }

  // -------------------------------------------------------------------------------------------- ending

  /** The connection is over: record why (the first reason wins) and release everything. */
  private finish(reason: string, detail?: string): void {
    if (this.closed) return;
    this.closed = true;
    this.clearTimer();
    const s = this.socket;
    this.socket = undefined;
    if (s) {
      s.removeAllListeners('data');
      s.removeAllListeners('close');
      s.removeAllListeners('error');
      s.on('error', () => {});
      s.destroy();
    }
    if (this.ended === undefined) {
      this.ended = reason;
      this.endedAt = this.now();
      if (detail !== undefined) this.error = detail;
      this.emit('end', reason);
    }
  }

  private clearTimer(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
  }
}
