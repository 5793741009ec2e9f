/**
 * A call's recordings (WCS /recorder/*): of the whole call (mediaSessionId = the callId) or of one
 * output (mediaSessionId = the push's), named from a file template, as WCS names them.
 */
import { randomUUID } from 'node:crypto';
import { renderFileName, type TemplateField } from '../lib/file-template.js';
import type { Recording } from '../media/output/recording.js';
import type { RecordingView } from './types.js';

export type { RecordingView } from './types.js';

export class CallRecording {
  readonly id = randomUUID();
  /** Ends it (set by recorder-desk.ts once it records): detached, then made an MP4. */
  stop: () => Promise<void> = async () => {};

  constructor(
    readonly callId: string,
    readonly mediaSessionId: string,
    readonly source: 'call' | 'push',
    readonly recording: Recording,
    /** The template's values known at the start. */
    readonly values: Partial<Record<TemplateField, string>>,
    readonly template: string,
    /** {prefix}/recordings/: where the REST server serves finished files. */
    private readonly downloadBase: string,
  ) {}

  get live(): boolean {
    return this.recording.state === 'RECORDING';
  }

  /** The final name, with the end time known. */
  finalName(): string {
    const end = this.recording.endedAt ?? new Date();
    return renderFileName(this.template, { ...this.values, endTime: String(end.getTime()), endTimeMillis: String(end.getTime()) });
  }

  view(): RecordingView {
    const r = this.recording;
    const path = r.path;
    const fileName = path.slice(path.lastIndexOf('/') + 1);
    const s = r.stats;
    return {
      recordingId: this.id,
      mediaSessionId: this.mediaSessionId,
      callId: this.callId,
      source: this.source,
      status: r.state,
      reason: r.failureReason ?? null,
      fileName,
      path,
      downloadUrl: r.state === 'DONE' ? `${this.downloadBase}${encodeURIComponent(fileName)}` : null,
      bytes: s.bytes,
      durationMs: s.durationMs,
      startedAt: r.startedAt.toISOString(),
      endedAt: r.endedAt?.toISOString() ?? null,
    };
  }
}
