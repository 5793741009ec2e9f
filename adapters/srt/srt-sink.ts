/**
 * An output's SRT connection: the call's frames as FLV on an ffmpeg child's stdin, remuxed (-c copy: AAC
 * and H.264 pass through, never re-encoded) to MPEG-TS and sent by libsrt in caller mode.
 *
 *   frames → FlvByteSink → stdin → ffmpeg (flv demux, mpegts mux) → libsrt → srt://host:port
 *
 * Why ffmpeg's libsrt: it is the SRT implementation (Haivision's libsrt, Debian's libsrt1.5) behind a
 * muxer we already trust, in a package we already need; Node has no maintained SRT binding, and an
 * MPEG-TS muxer of our own would be one more thing to keep right. The cost is a process per SRT output.
 *
 * Findings on Debian 12's ffmpeg 5.1 (test/unit/srt-sink.test.ts checks them):
 * - ffmpeg opens its output only after probing its input, so it connects once frames arrive: the sink
 *   says so (needsMediaToConnect) and Push feeds it while start() is pending;
 * - "Output #0" on stderr comes once the SRT handshake succeeded and the TS header went out;
 * - a refusal is logged by libsrt itself ("REJECT reported from HS processing: Incorrect passphrase");
 *   ffmpeg only adds "Input/output error", so the reason is taken from libsrt's line;
 * - a receiver that goes away breaks the connection after SRT's peer idle timeout, and ffmpeg exits.
 *
 * The passphrase and stream id travel in ffmpeg's argv (ffmpeg 5.1 has no other way): visible in
 * /proc/<pid>/cmdline to local users, never logged by us; ffmpeg prints neither (they are options, not
 * part of the URL it echoes).
 */
import { spawn, type ChildProcessByStdio } from 'node:child_process';
import { EventEmitter } from 'node:events';
import type { Readable, Writable } from 'node:stream';
import type { ConfigChange, MediaFrame } from '../../plugin/media/frame.js';
import { FlvByteSink } from '../../plugin/media/output/flv-stream.js';
import { connectFailure, type OutputError, type OutputSink } from '../../plugin/media/output/sink.js';
import { describeSrtTarget, type SrtTarget } from '../../plugin/media/output/srt-url.js';

export interface SrtSinkOptions {
  target: SrtTarget;
  ffmpegPath?: string;
  /** Give up on the handshake after this long (ms, default 5000). */
  connectTimeoutMs?: number;
  /** Give up on start() if ffmpeg has not connected this long after the first frame (ms, default connectTimeoutMs + 3000). */
  startTimeoutMs?: number;
  /**
   * The address ffmpeg connects to, checked (plugin/calls/targets.ts) at each start: ffmpeg gets the
   * address, not the name, so it cannot resolve it anew elsewhere. Rejects with a code (EFORBIDDEN, ENOTFOUND).
   */
  connectAddress?: (host: string, port: number) => Promise<string>;
}

const STDERR_TAIL = 2000;

/**
 * libsrt's options as ffmpeg output options, not in the URL: ffmpeg 5.1 does not %-decode URL values, so
 * a stream id with '&' or '%' could not be said there. `-srt_streamid` is libsrt's alias for streamid
 * (ffmpeg's own -streamid means something else). Latency in µs.
 */
export function srtSinkArgs(t: SrtTarget, connectTimeoutMs = 5000): string[] {
  const host = t.host.includes(':') ? `[${t.host}]` : t.host;
  // linger: at the end, what is still in SRT's send buffer goes out (live mode would drop it on close).
  const srt = ['-connect_timeout', String(connectTimeoutMs), '-linger', '1'];
  if (t.streamId !== undefined) srt.push('-srt_streamid', t.streamId);
  if (t.passphrase !== undefined) srt.push('-passphrase', t.passphrase);
  if (t.pbkeylen !== undefined) srt.push('-pbkeylen', String(t.pbkeylen));
  if (t.latencyMs !== undefined) srt.push('-latency', String(t.latencyMs * 1000));
  return [
    // info: "Output #0" says it connected; -nostats: no progress line twice a second to read.
    '-hide_banner', '-nostdin', '-nostats', '-loglevel', 'info',
    // Input: FLV whose first tags are the codec configs; streams made from onMetaData, so a short probe
    // finds both (without -flv_metadata, a video track whose config comes second can be missed).
    '-flv_metadata', '1', '-probesize', '4096', '-analyzeduration', '0', '-f', 'flv', '-i', 'pipe:0',
    // Audio and video only (the flv demuxer may add a data stream for script tags).
    '-map', '0:v?', '-map', '0:a?', '-c', 'copy',
    // Each packet out at once (live); timestamps as they came, from 0.
    '-flush_packets', '1', '-muxdelay', '0', '-f', 'mpegts', '-mpegts_flags', 'resend_headers', '-pes_payload_size', '0',
    ...srt,
    `srt://${host}:${t.port}?mode=caller&transtype=live`,
  ];
}

/** What libsrt or ffmpeg said went wrong, without the URL (it holds the passphrase). */
export function srtFailureReason(stderr: string, t: SrtTarget, connected = false): string {
  const reject = /REJECT reported from HS processing: (.+?)(?: - not processing further)?\s*$/m.exec(stderr);
  if (reject) {
    const why = reject[1]!.trim();
    // A receiver's own refusal (a listener callback: SRT_REJX_* codes) reaches the caller only as this.
    return /application-defined/i.test(why)
      ? 'SRT connection rejected by the receiver (application-defined reason: an unknown or unauthorised streamid, usually)'
      : `SRT connection rejected: ${why}`;
  }
  const setup = /Connection setup failure: (.+?)\.?\s*$/m.exec(stderr);
  if (setup) return `SRT connection setup failure: ${setup[1]!.trim()}`;
  if (/Connection was broken|Connection does not exist|connection lost/i.test(stderr)) return 'SRT connection broken (the receiver went away)';
  if (connected && /Input\/output error|Broken pipe|Error writing|Error closing/i.test(stderr)) return 'SRT connection lost (the receiver went away or stopped answering)';
  // A handshake nobody answered: libsrt says nothing, ffmpeg only "Connection to … failed: Input/output error".
  if (/Connection to \S+ failed: Input\/output error/.test(stderr)) return 'SRT: no answer to the handshake (nothing listening there, or a firewall), connect timeout reached';
  const scrubbed = stderr.replace(/srt:\/\/\S+/g, describeSrtTarget(t)).trim().split('\n').filter((l) => l.trim()).slice(-2).join(' / ');
  return scrubbed || 'ffmpeg exited';
}

export class SrtSink extends EventEmitter<{ close: [{ error?: OutputError }] }> implements OutputSink {
  readonly needsMediaToConnect = true;
  private child: ChildProcessByStdio<Writable, null, Readable> | undefined;
  private flv: FlvByteSink | undefined;
  private stderr = '';
  private connected = false;
  private closing = false;
  private exited: Promise<void> = Promise.resolve();
  /** Bytes written to ffmpeg; frames skipped while it did not take them. */
  readonly stats = { bytes: 0, dropped: 0 };

  constructor(private readonly o: SrtSinkOptions) {
    super();
  }

  /** Configs that came before ffmpeg was started (while the address was checked): replayed to it. */
  private early: ConfigChange[] = [];

  async start(): Promise<void> {
    const t = this.o.target;
    if (!this.o.connectAddress) return this.spawn(t);
    let host: string;
    try {
      host = await this.o.connectAddress(t.host, t.port);
    } catch (err) {
      const e = err as NodeJS.ErrnoException;
      throw outputError(e.code === 'EFORBIDDEN' ? e.message : connectFailure(t.host, t.port, { code: e.code ?? 'EDNS' }));
    }
    if (this.closing) throw outputError('SRT: closed before it connected');
    const started = this.spawn({ ...t, host });
    for (const c of this.early.splice(0)) this.out()?.config(c);
    return started;
  }

  private spawn(t: SrtTarget): Promise<void> {
    const child = spawn(this.o.ffmpegPath ?? 'ffmpeg', srtSinkArgs(t, this.o.connectTimeoutMs), { stdio: ['pipe', 'ignore', 'pipe'] });
    this.child = child;
    this.exited = new Promise((resolve) => {
      child.once('close', () => resolve());
      child.once('error', () => {
        if (child.pid === undefined) resolve();
      });
    });
    child.stdin.on('error', () => {}); // EPIPE when it died: 'close' reports it
    return new Promise<void>((resolve, reject) => {
      let settled = false;
      const startTimeout = this.o.startTimeoutMs ?? (this.o.connectTimeoutMs ?? 5000) + 3000;
      let timer: NodeJS.Timeout | undefined;
      const settle = (err?: OutputError) => {
        if (settled) return;
        settled = true;
        if (timer) clearTimeout(timer);
        if (err) reject(err);
        else resolve();
      };
      this.armStartTimer = () => {
        timer ??= setTimeout(() => {
          settle(outputError(`SRT: not connected ${startTimeout} ms after the first frame`));
          child.kill('SIGKILL');
        }, startTimeout);
      };
      child.stderr.on('data', (d: Buffer) => {
        this.stderr = (this.stderr + d.toString()).slice(-STDERR_TAIL);
        if (!this.connected && /^Output #0, mpegts/m.test(this.stderr)) {
          this.connected = true;
          settle();
        }
      });
      child.once('error', (err) => settle(outputError(`ffmpeg could not start for SRT: ${err.message}`)));
      child.once('close', (code, signal) => {
        const reason = srtFailureReason(this.stderr, this.o.target, this.connected);
        if (!settled) return settle(outputError(reason));
        if (this.closing) return this.emit('close', {});
        this.emit('close', { error: outputError(`${reason} (ffmpeg ${signal ?? `exit code ${code}`})`) });
      });
    });
  }

  /** Set by start(): the handshake is given a bounded time from the first frame on (ffmpeg probes first). */
  private armStartTimer: () => void = () => {};

  config(c: ConfigChange): void {
    if (!this.child && !this.closing) this.early.push(c);
    else this.out()?.config(c);
  }

  frame(f: MediaFrame): void {
    const out = this.flv;
    if (!out || this.closing) return; // no config yet (nothing a demuxer could use), or closed
    this.armStartTimer();
    out.frame(f);
    this.stats.bytes = out.stats.bytes;
    this.stats.dropped = out.stats.dropped;
  }

  /** The FLV writer on ffmpeg's stdin, made with the first config. */
  private out(): FlvByteSink | undefined {
    const child = this.child;
    if (!child || this.closing) return undefined;
    this.flv ??= new FlvByteSink(child.stdin, {
      // Both tracks declared: a track's config may come after the first (audio's before video's).
      hasAudio: true,
      hasVideo: true,
      // ffmpeg not taking its input (stuck, or SRT's send buffer full for long): skip, then give up.
      dropAboveBytes: 1024 * 1024,
      closeAboveBytes: 8 * 1024 * 1024,
      onOverflow: () => {
        this.stderr += '\nffmpeg stopped taking its input (SRT send blocked)';
        child.kill('SIGKILL');
      },
    });
    return this.flv;
  }

  async close(): Promise<void> {
    this.closing = true;
    const child = this.child;
    if (child && child.exitCode === null && child.signalCode === null && child.pid !== undefined) {
      child.stdin.end(); // EOF: ffmpeg flushes and exits (libsrt lingers up to 1 s for what is unsent)
      const t = setTimeout(() => child.kill('SIGKILL'), 2000);
      await this.exited;
      clearTimeout(t);
    }
    await this.exited;
  }

  get pid(): number | undefined {
    return this.child?.pid;
  }
}

function outputError(description: string): OutputError {
  const e: OutputError = new Error(description);
  e.description = description;
  return e;
}
