/**
 * Real encoded media for output tests without a call: ffmpeg encodes a test pattern and a 1 kHz tone
 * (H.264 + AAC, in FLV), read back with the app's FLV reader into the neutral frames a LiveStream carries.
 */
import { execFileSync } from 'node:child_process';
import type { AudioConfig, MediaFrame, VideoConfig } from '../../plugin/media/frame.js';
import { parseAudioBody, parseVideoBody, FlvTagReader } from '../../plugin/media/output/flv-reader.js';
import { FlvTagType } from '../../plugin/media/output/flv.js';
import type { LiveStream } from '../../plugin/media/output/live-stream.js';

export interface EncodedClip {
  audio: AudioConfig;
  video: VideoConfig;
  /** In decode order, dts from 0. */
  frames: MediaFrame[];
  durationMs: number;
}

export function encodedClip(seconds: number, o: { width?: number; height?: number; gopFrames?: number; videoKbps?: number } = {}): EncodedClip {
  const w = o.width ?? 320;
  const h = o.height ?? 240;
  const flv = execFileSync('ffmpeg', [
    '-nostdin', '-loglevel', 'error',
    '-f', 'lavfi', '-i', `testsrc2=size=${w}x${h}:rate=25:duration=${seconds}`,
    '-f', 'lavfi', '-i', `sine=frequency=1000:sample_rate=48000:duration=${seconds}`,
    '-c:v', 'libx264', '-preset', 'ultrafast', '-profile:v', 'baseline', '-bf', '0', '-g', String(o.gopFrames ?? 50), '-pix_fmt', 'yuv420p',
    ...(o.videoKbps ? ['-b:v', `${o.videoKbps}k`, '-maxrate', `${o.videoKbps}k`, '-bufsize', `${o.videoKbps * 2}k`] : []),
    '-c:a', 'aac', '-ac', '1', '-b:a', '64k', '-f', 'flv', 'pipe:1',
  ], { maxBuffer: 64 * 1024 * 1024 });
  let audio: AudioConfig | undefined;
  let video: VideoConfig | undefined;
  const frames: MediaFrame[] = [];
  for (const tag of new FlvTagReader().push(flv)) {
    if (tag.type === FlvTagType.Audio) {
      const b = parseAudioBody(tag.body);
      if (b.kind === 'aac-config') audio = { codec: 'aac', audioSpecificConfig: b.audioSpecificConfig, sampleRate: 48000, channels: 1, bitrate: 64000 };
      else if (b.kind === 'aac-frame') frames.push({ track: 'audio', dts: tag.timestampMs, pts: tag.timestampMs, keyframe: true, payload: b.raw });
    } else if (tag.type === FlvTagType.Video) {
      const b = parseVideoBody(tag.body);
      if (b.kind === 'avc-config') video = { codec: 'h264', avcConfig: b.avcConfig, width: w, height: h, frameRate: 25 };
      else if (b.kind === 'avc-frame') frames.push({ track: 'video', dts: tag.timestampMs, pts: tag.timestampMs, keyframe: b.keyframe, payload: b.nalusAvcc });
    }
  }
  if (!audio || !video) throw new Error('ffmpeg gave no AAC or H.264 config');
  // A loop lasts until after its last frame (the AAC encoder's last frame ends past `seconds`), in whole video frames.
  const last = Math.max(...frames.map((f) => f.dts));
  return { audio, video, frames, durationMs: Math.ceil((last + 1) / 40) * 40 };
}

/**
 * Plays the clip into a stream at its own pace (real time, `speed` times faster), looping with
 * increasing timestamps, for `ms` of stream time. Resolves when done (or aborted).
 */
export async function playClip(stream: LiveStream, clip: EncodedClip, ms: number, speed = 1, signal?: AbortSignal): Promise<void> {
  stream.setAudioFormat(clip.audio);
  stream.setVideoFormat(clip.video);
  const t0 = performance.now();
  for (let loop = 0; loop * clip.durationMs < ms; loop++) {
    for (const f of clip.frames) {
      const ts = f.dts + loop * clip.durationMs;
      if (ts >= ms || signal?.aborted) return;
      const due = t0 + ts / speed;
      const wait = due - performance.now();
      if (wait > 2) await new Promise((r) => setTimeout(r, wait));
      stream.frame({ ...f, dts: ts, pts: ts });
    }
  }
}
