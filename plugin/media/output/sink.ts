/**
 * What an output (push.ts) needs of one connection to its destination, in neutral frames: the sink muxes
 * and writes them (adapters/rtmp/rtmp-sink.ts: FLV over RTMP; adapters/srt/srt-sink.ts: MPEG-TS over SRT). One sink is one connection; reconnecting
 * is the output's business (it asks for a new sink).
 */
import type { FrameSink } from '../frame.js';

/** A connection's failure, with the server's own words where it gave any (`code`, `description`). */
export type OutputError = Error & { description?: string; code?: string };

export interface OutputSink extends FrameSink {
  /** Resolves once publishing; rejects with an OutputError. */
  start(): Promise<void>;
  /**
   * It connects only once media flows (an ffmpeg child reads its input before it opens its output): the
   * output feeds it config and frames while start() is pending, instead of holding them back.
   */
  readonly needsMediaToConnect?: boolean;
  close(): Promise<void>;
  /** Once, after a successful start(): the connection ended (error set unless close() ended it). */
  on(event: 'close', listener: (e: { error?: OutputError }) => void): unknown;
}

/** The server's own words where it gave any ("NetStream.Publish.BadName: Already publishing"), else the error's message. */
export function describeRtmpError(err: OutputError & { stage?: string }): string {
  return err.description ? [err.code, err.description].filter(Boolean).join(': ') : err.message;
}
