/**
 * A call's RTMP outputs (WCS "push"): the one named in /call/startup (primary) and any added with
 * /push/startup. Each has its own connection, state, reconnects, mute and sound; all share the call's
 * one encoded stream. A CallPush exists before the call's media does (a push asked for before the
 * answer), and holds the wanted mute/sound state until its Push is attached.
 */
import { randomUUID } from 'node:crypto';
import { isoOrNull } from '../lib/clock.js';
import { maskSecret } from '../lib/redact.js';
import type { OutputHealthView } from '../media/output/health.js';
import { platformLimit, type Platform, type PlatformLimit } from '../media/output/platform-limits.js';
import type { Push } from '../media/output/push.js';
import type { OutputTarget } from '../media/output/target.js';
import { FINAL_PUSH_STATES, type PushStatus } from './states.js';

export interface PushView {
  mediaSessionId: string;
  callId: string;
  streamName: string;
  /** Without credentials, query or a stream key (masked). */
  rtmpUrl: string;
  status: PushStatus;
  reason: string | null;
  muted: boolean;
  soundEnabled: boolean;
  soundFile: string | null;
  options: { action?: string; soundFile?: string };
  /** The output named in /call/startup: its failure to connect fails the call. */
  primary: boolean;
  createdAt: string;
  stats?: Push['stats'];
  /** What this output sent against the platforms' rules (both tracks, keyframe interval, size changes). */
  health?: OutputHealthView;
  /** WCS: the video size it sends, once known. */
  width?: number;
  height?: number;
  /** Only for a known platform's host (media/output/platform-limits.ts): its session limit. */
  platform?: Platform;
  sessionLimitSec?: number;
  /** When that session limit is reached: known once the push has published. */
  sessionEndsAt?: string | null;
}

export class CallPush {
  readonly id = randomUUID();
  readonly createdAt = new Date();
  push: Push | undefined;
  /** The platform's session limit, when the target is a known platform. */
  readonly limit: PlatformLimit | undefined;
  /** When it first published (monotonic ms, set by push-desk.ts): the platform's session starts there and goes on across reconnects. */
  publishedAtMs: number | undefined;
  private silentFrame: Buffer | undefined;
  private sound: { file: string; frames: Buffer[]; loop: boolean } | undefined;

  constructor(
    readonly callId: string,
    readonly streamName: string,
    /** As the client gave it (find filters on it); never shown. */
    readonly rawUrl: string,
    readonly target: OutputTarget,
    readonly options: { action?: string; soundFile?: string },
    readonly primary: boolean,
    /**
     * WCS's name for this output (its "transponder"): RTMP_STREAM_PREFIX + the stream name, unless the URL was
     * given in full. WCS pages poll /push/find with it ("rtmp_" + stream); answers carry it as `streamName`.
     */
    readonly transponderName: string = streamName,
    /** The name is the call's stream key (streamNameIsKey: its rtmpStream, an inbound call's stream), so answers mask it. */
    private readonly secretName = false,
  ) {
    this.limit = platformLimit(target.host);
  }

  /** When the platform's session limit is reached (monotonic ms), once published. */
  get sessionEndsAtMs(): number | undefined {
    return this.limit && this.publishedAtMs !== undefined ? this.publishedAtMs + this.limit.limitSec * 1000 : undefined;
  }

  get live(): boolean {
    const s = this.push?.state;
    return !s || !(FINAL_PUSH_STATES as readonly string[]).includes(s);
  }

  /** WCS's `width` and `height`: the picture this output sends, once it has sent one. */
  private size(): { width?: number; height?: number } {
    const m = /^(\d+)x(\d+)$/.exec(this.push?.health.view().size ?? '');
    return m ? { width: Number(m[1]), height: Number(m[2]) } : {};
  }

  /** Named so in /push/find: by WCS's transponder name or by the call's own stream name. */
  isNamed(name: string): boolean {
    return name === this.transponderName || name === this.streamName;
  }

  /** Start forwarding through `push`, with whatever mute/sound was asked for meanwhile. */
  attach(push: Push): void {
    this.push = push;
    push.on('soundEnded', () => {
      this.sound = undefined;
    });
    if (this.silentFrame) push.mute(this.silentFrame);
    if (this.sound) push.playSound(this.sound.frames, this.sound.loop);
  }

  mute(silentFrame: Buffer): void {
    this.silentFrame = silentFrame;
    this.push?.mute(silentFrame);
  }

  unmute(): void {
    this.silentFrame = undefined;
    this.push?.unmute();
  }

  playSound(file: string, frames: Buffer[], loop: boolean): void {
    this.sound = { file, frames, loop };
    this.push?.playSound(frames, loop);
  }

  stopSound(): void {
    this.sound = undefined;
    this.push?.stopSound();
  }

  view(): PushView {
    return {
      mediaSessionId: this.id,
      callId: this.callId,
      streamName: this.secretName ? maskSecret(this.transponderName) : this.transponderName,
      rtmpUrl: this.target.display,
      status: this.push?.state ?? 'PENDING',
      reason: this.push?.failureReason ?? null,
      muted: this.silentFrame !== undefined,
      soundEnabled: this.sound !== undefined,
      soundFile: this.sound?.file ?? null,
      options: this.options,
      primary: this.primary,
      createdAt: this.createdAt.toISOString(),
      ...(this.push ? { stats: { ...this.push.stats }, health: this.push.health.view() } : {}),
      ...this.size(),
      ...(this.limit ? { platform: this.limit.platform, sessionLimitSec: this.limit.limitSec, sessionEndsAt: isoOrNull(this.sessionEndsAtMs) } : {}),
    };
  }
}
