/**
 * How long the live platforms let one session run, by the output's RTMP host. The platform enforces it
 * (ends the stream, or keeps no archive past it); the app only shows when a push reaches it and warns
 * before (calls/limits.ts). Pure, no imports: a table and a lookup.
 *
 * - Facebook Live: a live video must "not exceed 8 hours", else "unexpected termination of stream"
 *   (https://developers.facebook.com/documentation/live-video-api/reference, Recommended Settings).
 * - YouTube: live streams under 12 hours are archived; longer ones are not
 *   (https://support.google.com/youtube/answer/6247592).
 */

export type Platform = 'facebook' | 'youtube';

export interface PlatformLimit {
  platform: Platform;
  limitSec: number;
}

/** Host suffixes: live-api-s.facebook.com, a.rtmp.youtube.com, b.rtmps.youtube.com, … */
const PLATFORMS: readonly (PlatformLimit & { domain: string })[] = [
  { domain: 'facebook.com', platform: 'facebook', limitSec: 8 * 3600 },
  { domain: 'youtube.com', platform: 'youtube', limitSec: 12 * 3600 },
];

/** The platform an RTMP host belongs to, and its session limit; undefined for any other server. */
export function platformLimit(host: string): PlatformLimit | undefined {
  const h = host.toLowerCase().replace(/\.$/, '');
  // A whole label must match: notfacebook.com is not Facebook.
  const p = PLATFORMS.find(({ domain }) => h === domain || h.endsWith(`.${domain}`));
  return p && { platform: p.platform, limitSec: p.limitSec };
}
