// @ts-check
/**
 * The live preview: HTTP-FLV of what the selected call publishes, played through Media Source Extensions
 * by mpegts.js (vendor/mpegts.js, a classic script that runs before the modules). One player at a time,
 * following the selected call.
 */
import { byId, el, setText } from './dom.js';
import { isEnded, selectedCall, selectedId, token } from './state.js';

/** @typedef {import('./state.js').ConsoleCall} ConsoleCall */

const mpegts = /** @type {any} */ (window).mpegts;
const previewSupported = !!mpegts?.getFeatureList?.().mseLivePlayback;
/** @type {{ player: any, url: string|null }} */
const preview = { player: null, url: null };

/** Starts, keeps or stops the player to match the selected call. */
export function syncPreview() {
  const call = selectedCall();
  /** @type {string|null} */
  let url = null;
  let message = '';
  if (!mpegts) message = 'Preview unavailable: vendor/mpegts.js did not load.';
  else if (!previewSupported) message = 'This browser cannot play the live preview (no Media Source Extensions).';
  else if (!call) message = selectedId ? 'waiting for the call…' : '';
  else if (isEnded(call)) message = `call ended (${call.status})`;
  else if (!call.previewUrl) message = 'waiting for media';
  else url = new URL(call.previewUrl, location.origin).href;
  if (preview.player && preview.url !== url) stopPlayer();
  if (call && url && !preview.player) startPlayer(call, url);
  setText(el.previewMsg, message);
  el.previewMsg.hidden = !message;
}

function startPlayer(/** @type {ConsoleCall} */ call, /** @type {string} */ url) {
  setText(el.previewError, '');
  const player = mpegts.createPlayer(
    { type: 'flv', isLive: true, url, hasAudio: call.hasAudio, hasVideo: call.hasVideo },
    { enableStashBuffer: false, liveBufferLatencyChasing: true, headers: token ? { 'X-Api-Token': token } : undefined },
  );
  preview.player = player;
  preview.url = url;
  player.on(mpegts.Events.ERROR, (/** @type {string} */ type, /** @type {string} */ detail, /** @type {any} */ info) => {
    if (preview.player !== player) return;
    const why = info?.msg ?? (info?.code ? `HTTP ${info.code}` : '');
    setText(el.previewError, `preview error: ${type} ${detail}${why ? `: ${why}` : ''}`);
  });
  player.on(mpegts.Events.MEDIA_INFO, (/** @type {any} */ info) => {
    if (preview.player !== player) return;
    const parts = [info.audioCodec, info.videoCodec, info.width && info.height ? `${info.width}×${info.height}` : ''];
    setText(el.previewInfo, parts.filter(Boolean).join(' · '));
  });
  player.attachMediaElement(el.video);
  player.load();
  // Muted autoplay is allowed; a rejection (e.g. the player destroyed meanwhile) must not go unhandled.
  Promise.resolve(player.play()).catch((/** @type {any} */ err) => {
    if (preview.player === player && err?.name !== 'AbortError') setText(el.previewError, `preview: ${err?.message ?? err}`);
  });
}

function stopPlayer() {
  const player = preview.player;
  preview.player = null;
  preview.url = null;
  try {
    player?.destroy();
  } catch {
    // Already torn down by its own error: nothing left to release.
  }
  setText(el.previewTime, '0.0');
  setText(el.previewInfo, '');
  setText(el.previewError, '');
}

function onSoundToggle() {
  el.video.muted = !el.video.muted;
  setText(el.previewSound, el.video.muted ? 'Sound on' : 'Sound off');
  el.previewSound.setAttribute('aria-pressed', String(!el.video.muted));
}

function onPreviewReload() {
  stopPlayer();
  syncPreview();
}

/** Sound on/off, Reload, and the clock under the video. */
export function wirePreview() {
  el.previewSound.addEventListener('click', onSoundToggle);
  byId('preview-reload').addEventListener('click', onPreviewReload);
  el.video.addEventListener('timeupdate', () => setText(el.previewTime, el.video.currentTime.toFixed(1)));
}
