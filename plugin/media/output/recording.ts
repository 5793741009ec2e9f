/**
 * A recording: one more sink on a call's stream (or on one output, after its mute and sound), written as
 * FLV to a file while it runs and made an MP4 when it ends.
 *
 * - FLV while recording: every tag is on disk (in the kernel's cache) as soon as it is written, so a
 *   `kill -9` of the app leaves a file that plays up to its last second; the next start makes it an MP4
 *   (adapters/recording/store.ts). No process per recording: the muxer is ours (flv-stream.ts).
 * - MP4 at the end: ffmpeg -c copy, moov up front (faststart), so browsers play and seek it at once.
 * - Its timeline is the stream's: an RTMP output reconnecting or the call on hold changes nothing here.
 * - A write error (disk full, a directory gone read-only) fails the recording with the reason and
 *   nothing else: the call and its live outputs never wait on the disk (a slow disk drops frames, as a
 *   slow viewer does, rather than holding memory).
 */
import { EventEmitter } from 'node:events';
import type { Readable } from 'node:stream';
import type { ConfigChange, FrameSink, MediaFrame } from '../frame.js';
import { FlvByteSink } from './flv-stream.js';

import { type RecordingState } from './states.js';

export { RECORDING_STATES, type RecordingState } from './states.js';

/** One open file, written in order (adapters/recording/store.ts). */
export interface RecordingFile {
  /** Where it is written (the FLV while recording). */
  readonly path: string;
  write(chunk: Buffer): boolean;
  readonly writableLength: number;
  /** A write failed (ENOSPC, EIO…): the file takes no more. */
  onError(listener: (err: Error & { code?: string }) => void): void;
  /** Flushes and closes. */
  close(): Promise<void>;
}

/** Part of a recording file, to send (a download). */
export interface RecordingRead {
  stream: Readable;
  size: number;
  start: number;
  end: number;
  partial: boolean;
}

/** Where recordings go: files by name, and the MP4 made from a finished one. */
export interface RecordingStore {
  /** A file of the store by its name (no path), the range asked for; undefined: no such file. */
  read(fileName: string, range?: string): Promise<RecordingRead | { unsatisfiable: true; size: number } | undefined>;
  /** A new file for `name` (no extension; made unique). Rejects (EROFS, EACCES, ENOSPC) with the reason. */
  open(name: string): Promise<RecordingFile>;
  /** The finished FLV as an MP4 named `name` (made unique): resolves with its path and size; the FLV is removed. */
  finish(flvPath: string, name: string): Promise<{ path: string; bytes: number }>;
}

export interface RecordingEvents {
  state: [{ state: RecordingState; reason?: string }];
}

/** "No space left on device" is what an admin searches for; the code alone is what they grep logs for. */
export function describeFileError(err: Error & { code?: string }): string {
  const plain: Record<string, string> = {
    ENOSPC: 'disk full', EDQUOT: 'disk quota exceeded', EROFS: 'read-only file system', EACCES: 'permission denied',
    EPERM: 'operation not permitted', ENOENT: 'directory does not exist', EIO: 'I/O error',
  };
  const what = err.code ? plain[err.code] : undefined;
  return what ? `${what} (${err.code})` : err.message;
}

export class Recording extends EventEmitter<RecordingEvents> implements FrameSink {
  private _state: RecordingState = 'RECORDING';
  private reason: string | undefined;
  private flv: FlvByteSink | undefined;
  private finalPath: string | undefined;
  private finalBytes = 0;
  readonly startedAt = new Date();
  endedAt: Date | undefined;

  /** A recording that could not start (its file could not be made): FAILED with the reason, listed like any other. */
  static failed(reason: string): Recording {
    const r = new Recording(NO_FILE);
    r.fail(reason);
    return r;
  }

  constructor(private readonly file: RecordingFile) {
    super();
    file.onError((err) => this.fail(`writing ${baseName(file.path)}: ${describeFileError(err)}`));
  }

  get state(): RecordingState {
    return this._state;
  }

  get failureReason(): string | undefined {
    return this.reason;
  }

  /** The file as it stands: the FLV while recording, the MP4 once done. */
  get path(): string {
    return this.finalPath ?? this.file.path;
  }

  /** bytes: the file's as it stands (the MP4's once DONE); writtenBytes: FLV written (only grows). */
  get stats(): { bytes: number; writtenBytes: number; durationMs: number; dropped: number } {
    const s = this.flv?.stats;
    const written = s?.bytes ?? 0;
    return { bytes: this.finalPath ? this.finalBytes : written, writtenBytes: written, durationMs: s?.durationMs ?? 0, dropped: s?.dropped ?? 0 };
  }

  config(c: ConfigChange): void {
    if (this._state !== 'RECORDING') return;
    this.flv ??= new FlvByteSink(this.file, {
      // Both tracks declared: a track's config may come after the first (audio's before video's).
      hasAudio: true,
      hasVideo: true,
      // A disk that falls this far behind is not keeping up: skip frames, then give up.
      dropAboveBytes: 4 * 1024 * 1024,
      closeAboveBytes: 32 * 1024 * 1024,
      onOverflow: () => this.fail(`the disk is not keeping up writing ${baseName(this.file.path)}`),
    });
    this.flv.config(c);
  }

  frame(f: MediaFrame): void {
    if (this._state === 'RECORDING') this.flv?.frame(f);
  }

  /** Ends it: the FLV closed, then made an MP4 named `name` (DONE), or FAILED with the reason. */
  async stop(name: string, store: RecordingStore): Promise<void> {
    if (this._state !== 'RECORDING') return;
    this.endedAt = new Date();
    this.setState('FINALIZING');
    try {
      await this.file.close();
    } catch (err) {
      return this.fail(`closing ${baseName(this.file.path)}: ${describeFileError(err as Error)}`);
    }
    if ((this._state as RecordingState) !== 'FINALIZING') return; // a late write error
    if (!this.flv || this.flv.stats.tags === 0) return this.fail('nothing was recorded (no media reached it)');
    try {
      const done = await store.finish(this.file.path, name);
      this.finalPath = done.path;
      this.finalBytes = done.bytes;
      this.setState('DONE');
    } catch (err) {
      this.fail(`making the MP4 (the FLV is kept: ${baseName(this.file.path)}): ${(err as Error).message}`);
    }
  }

  /** Fails it and closes the file; what was written stays. */
  fail(reason: string): void {
    if (this._state === 'DONE' || this._state === 'FAILED') return;
    this.endedAt ??= new Date();
    this.setState('FAILED', reason);
    void this.file.close().catch(() => {});
  }

  private setState(state: RecordingState, reason?: string): void {
    this._state = state;
    if (reason) this.reason = reason;
    this.emit('state', { state, ...(reason ? { reason } : {}) });
  }
}

const NO_FILE: RecordingFile = { path: '', write: () => false, writableLength: 0, onError() {}, close: async () => {} };

function baseName(p: string): string {
  return p.slice(p.lastIndexOf('/') + 1);
}
