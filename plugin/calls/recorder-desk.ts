/**
 * The /recorder API (WCS: /recorder/startup|terminate|find_all, formerly /stream/startRecording and
 * stopRecording) and `record: true` on /call/startup. A recording is one more sink on the call's stream
 * (mediaSessionId = the callId), or a tap on one output (mediaSessionId = the push's: what that output
 * plays, mute and sound included). The stream is encoded once; a recording only writes its frames.
 *
 * When a recording ends (terminated, its call or output ended), its FLV is closed at once and made an MP4
 * in the background (FINALIZING → DONE): the call's end never waits on ffmpeg. close() waits for those.
 */
import type { Call } from './call.js';
import type { CallContext } from './context.js';
import { ConflictError, NotFoundError, UnsupportedError } from './errors.js';
import { LateSink } from '../media/output/late-sink.js';
import { Recording, RECORDING_STATES, describeFileError, type RecordingState, type RecordingStore } from '../media/output/recording.js';
import type { CallPush } from './pushes.js';
import { compactUtc, renderFileName } from '../lib/file-template.js';
import { CallRecording, type RecordingView } from './recordings.js';
import { streamNameIsKey } from './types.js';

export interface RecorderDeskDeps {
  /** Where files go (adapters/recording/store.ts); without one, recording is not available. */
  store?: RecordingStore;
  /** A push by mediaSessionId, if there is one (push-desk.ts). */
  pushById: (id: string) => CallPush | undefined;
  /** {prefix}/recordings/ */
  downloadBase: string;
}

/** Finished recordings listed by find_all, newest kept. */
const KEEP_FINISHED = 1000;

export class RecorderDesk {
  private readonly recordings = new Map<string, CallRecording>();
  private readonly finishing = new Set<Promise<void>>();
  /** Recordings started and failed; bytes written and seconds recorded by those no longer listed (for /metrics). */
  readonly totals = { started: 0, failed: 0, bytes: 0, seconds: 0 };

  constructor(private readonly ctx: CallContext, private readonly d: RecorderDeskDeps) {}

  /** /recorder/startup: record a call (by callId) or one of its outputs (by its mediaSessionId). */
  async startup(mediaSessionId: string, fileTemplate?: string): Promise<RecordingView> {
    const call = this.ctx.get(mediaSessionId);
    const cp = call ? undefined : this.d.pushById(mediaSessionId);
    const owner = call ?? (cp ? this.ctx.get(cp.callId) : undefined);
    if (!owner || owner.final || owner.ending) throw new NotFoundError(`no live call or push with mediaSessionId ${mediaSessionId}`, 'mediaSessionId');
    return (await this.start(owner, fileTemplate, cp)).view();
  }

  /** `record: true` on /call/startup: the whole call, from its first frame. */
  async startForCall(call: Call): Promise<void> {
    await this.start(call, undefined, undefined).catch((err: Error) => {
      this.ctx.log.warn({ callId: call.req.callId, err: err.message }, 'recording not started');
    });
  }

  private async start(call: Call, template: string | undefined, cp: CallPush | undefined): Promise<CallRecording> {
    const store = this.d.store;
    if (!store) throw new UnsupportedError('recording is not configured (RECORDINGS_DIR)');
    const media = call.media;
    if (!media) throw new ConflictError(`call ${call.req.callId} has no media yet (not answered): record it with record: true on /call/startup`, 'mediaSessionId');
    if (cp && !cp.push) throw new ConflictError(`push ${cp.id} has not started yet (the call is not answered)`, 'mediaSessionId');
    const sessionId = cp?.id ?? call.req.callId;
    for (const r of this.recordings.values()) {
      if (r.mediaSessionId === sessionId && r.live) throw new ConflictError(`mediaSessionId ${sessionId} is being recorded already (recordingId ${r.id})`, 'mediaSessionId');
    }
    const now = new Date();
    const stream = media.stream.joinConfig()?.stream;
    const values = {
      // The stream name the API knows the call by; never rtmpStream, which is often a platform's key (an
      // inbound call's toStream is its rtmpStream: the callId then).
      streamName: streamNameIsKey(call.req) ? call.req.callId : call.req.toStream,
      callId: call.req.callId,
      mediaSessionId: sessionId,
      startTime: String(now.getTime()),
      startTimeMillis: String(now.getTime()),
      date: compactUtc(now),
      ...(stream?.audio ? { audioCodec: stream.audio.codec } : {}),
      ...(stream?.video ? { videoCodec: stream.video.codec } : {}),
    };
    const tpl = template ?? this.ctx.config.recordings.fileTemplate;
    // Frames from the call's stream, or as the output plays them, from now: held while the file opens.
    const late = new LateSink();
    if (cp?.push) cp.push.addTap(late);
    else media.stream.addSink(late);
    const detach = () => (cp?.push ? cp.push.removeTap(late) : media.stream.removeSink(late));
    let recording: Recording;
    try {
      recording = new Recording(await store.open(renderFileName(tpl, values)));
    } catch (err) {
      // Unwritable: a FAILED recording with the reason, listed like any other; the call goes on.
      recording = Recording.failed(`cannot write in RECORDINGS_DIR: ${describeFileError(err as Error)}`);
    }
    const cr = new CallRecording(call.req.callId, sessionId, cp ? 'push' : 'call', recording, values, tpl, this.d.downloadBase);
    this.keep(cr);
    this.totals.started++;
    const log = { callId: call.req.callId, recordingId: cr.id, mediaSessionId: sessionId };
    const observe = (state: string, reason?: string) => {
      this.ctx.log.info({ ...log, state, reason, file: cr.view().fileName }, 'recording state');
      if (state === 'FAILED') this.totals.failed++;
      this.ctx.hook('RecordingStatusEvent', { ...cr.view(), appKey: call.req.appKey });
      this.ctx.changed(call);
    };
    recording.on('state', ({ state, reason }) => observe(state, reason));
    // Listed with the call whatever happens: a recording that could not start shows there, FAILED, with why.
    call.recordings.push(cr);
    observe(recording.state, recording.failureReason);
    if (recording.state !== 'RECORDING') {
      detach();
      late.discard();
      return cr;
    }
    late.attach(recording);
    cr.stop = () => {
      detach();
      return this.finish(cr);
    };
    // Released with the call: the file closed at once; the MP4 is made in the background (finish()).
    call.resources.add(`recording ${cr.id}`, () => void cr.stop());
    // An output's recording ends with the output.
    cp?.push?.on('state', ({ state }) => {
      if (state === 'CLOSED' || state === 'FAILED') void cr.stop();
    });
    return cr;
  }

  /** /recorder/terminate: by the recorded mediaSessionId (WCS) or by recordingId. */
  async terminate(id: string): Promise<RecordingView> {
    const cr = this.recordings.get(id) ?? [...this.recordings.values()].find((r) => r.mediaSessionId === id && r.live);
    if (!cr) throw new NotFoundError(`no recording with mediaSessionId or recordingId ${id}`, 'mediaSessionId');
    void cr.stop(); // FINALIZING at once; DONE once the MP4 is made (the hook and find_all say so)
    return cr.view();
  }

  /** /recorder/find_all: live and finished recordings, oldest first. */
  findAll(filter: { callId?: string; mediaSessionId?: string } = {}): RecordingView[] {
    const out: RecordingView[] = [];
    for (const r of this.recordings.values()) {
      if (filter.callId && r.callId !== filter.callId) continue;
      if (filter.mediaSessionId && r.mediaSessionId !== filter.mediaSessionId) continue;
      out.push(r.view());
    }
    return out;
  }

  /** The FLV closed now; the MP4 made in the background (tracked for close()). */
  private finish(cr: CallRecording): Promise<void> {
    const r = cr.recording;
    if (r.state !== 'RECORDING') return Promise.resolve();
    const p = r.stop(cr.finalName(), this.d.store!).finally(() => this.finishing.delete(p));
    this.finishing.add(p);
    return p;
  }

  private keep(cr: CallRecording): void {
    this.recordings.set(cr.id, cr);
    if (this.recordings.size <= KEEP_FINISHED) return;
    for (const [id, r] of this.recordings) {
      if (r.recording.state === 'DONE' || r.recording.state === 'FAILED') {
        const s = r.recording.stats;
        this.totals.bytes += s.writtenBytes;
        this.totals.seconds += s.durationMs / 1000;
        this.recordings.delete(id);
        return;
      }
    }
  }

  /** Recordings by state; bytes written and seconds recorded, all time (monotonic), for /metrics. */
  stats(): { byState: Record<RecordingState, number>; started: number; failed: number; writtenBytes: number; seconds: number } {
    const byState = Object.fromEntries(RECORDING_STATES.map((st) => [st, 0])) as Record<RecordingState, number>;
    let writtenBytes = this.totals.bytes;
    let seconds = this.totals.seconds;
    for (const r of this.recordings.values()) {
      byState[r.recording.state]++;
      const s = r.recording.stats;
      writtenBytes += s.writtenBytes;
      seconds += s.durationMs / 1000;
    }
    return { byState, started: this.totals.started, failed: this.totals.failed, writtenBytes, seconds };
  }

  /** Waits for the MP4s being made (at app stop). */
  async close(): Promise<void> {
    await Promise.allSettled([...this.finishing]);
  }
}
