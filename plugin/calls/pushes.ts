/**
 * A call's RTMP outputs (WCS "push"): the one named in /call/startup (primary) and any added with
 * /push/startup. Each has its own connection, state, reconnects, mute and sound; all share the call's
 * one encoded stream. A CallPush exists before the call's media does (a push asked for before the
 * answer), and holds the wanted mute/sound state until its Push is attached.
 */
import { randomUUID } from 'node:crypto';
import type { OutputHealthView } from '../media/output/health.js';
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
}

export class CallPush {
  readonly id = randomUUID();
  readonly createdAt = new Date();
  push: Push | undefined;
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
  ) {}

  get live(): boolean {
    const s = this.push?.state;
    return !s || !(FINAL_PUSH_STATES as readonly string[]).includes(s);
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
      streamName: this.streamName,
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
    };
  }
}
