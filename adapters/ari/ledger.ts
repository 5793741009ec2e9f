/**
 * What this process holds in Asterisk, as far as it has seen: the channels, bridges and dynamic PJSIP objects
 * it created over ARI (or that entered its Stasis app) and has not yet seen go. Fed by AriClient's successful
 * answers and by the app's events; read at shutdown to say what could not be released.
 *
 * It is a view from this side only: an object removed behind our back is dropped when its event comes
 * (ChannelDestroyed, StasisEnd, BridgeDestroyed); PJSIP objects have no such event, so only our DELETE drops them.
 */
import type { AriEvent } from './types.js';

export interface HeldCounts {
  channels: number;
  bridges: number;
  pjsipObjects: number;
}

/**
 * Channel and bridge ids seen going, kept a while: a fast-failing channel's ChannelDestroyed can arrive before
 * the REST answer that created it. (PJSIP objects have no events, so no such race.)
 */
const TOMBSTONES = 2000;

const PJSIP_PATH = /^\/asterisk\/config\/dynamic\/res_pjsip\/([^/]+)\/([^/]+)$/;

/** Ids of one kind, with the recently gone ones kept as tombstones. */
class Tracked {
  readonly live = new Set<string>();
  private readonly gone = new Set<string>();

  add(id: string): void {
    if (!this.gone.has(id)) this.live.add(id);
  }

  drop(id: string): void {
    this.live.delete(id);
    this.gone.add(id);
    if (this.gone.size > TOMBSTONES) this.gone.delete(this.gone.values().next().value!);
  }
}

export class AriLedger {
  private readonly channels = new Tracked();
  private readonly bridges = new Tracked();
  /** "type/id" */
  private readonly pjsip = new Set<string>();

  counts(): HeldCounts {
    return { channels: this.channels.live.size, bridges: this.bridges.live.size, pjsipObjects: this.pjsip.size };
  }

  /**
   * One ARI answer: `status` 2xx with its parsed body, or 404 (the object is not there). `path` is the
   * request's path below /ari, without the query.
   */
  noteAnswer(method: string, path: string, status: number, body: unknown): void {
    const ok = status >= 200 && status < 300;
    const seg = path.split('/').slice(1).map(decodeURIComponent);
    const pj = PJSIP_PATH.exec(path);
    // A DELETE done, or any request told the object itself is not there (a 404 on /channels/{id}: e.g. the
    // check after a reconnect, for a channel whose ChannelDestroyed was missed).
    if ((method === 'DELETE' && ok) || status === 404) {
      if (seg.length === 2 && seg[0] === 'channels') this.channels.drop(seg[1]!);
      else if (seg.length === 2 && seg[0] === 'bridges') this.bridges.drop(seg[1]!);
      else if (pj) this.pjsip.delete(pjsipKey(pj));
      return;
    }
    if (!ok) return;
    const id = body && typeof body === 'object' && 'id' in body && typeof body.id === 'string' ? body.id : undefined;
    if (method === 'POST' && id && (path === '/channels' || path === '/channels/externalMedia')) this.channels.add(id);
    else if (method === 'POST' && id && path === '/bridges') this.bridges.add(id);
    else if (method === 'PUT' && pj) this.pjsip.add(pjsipKey(pj));
  }

  onEvent(e: AriEvent): void {
    switch (e.type) {
      case 'StasisStart':
        // Inbound callers handed to the app are ours to hang up too.
        this.channels.add(e.channel.id);
        break;
      case 'StasisEnd':
      case 'ChannelDestroyed':
        this.channels.drop(e.channel.id);
        break;
      case 'BridgeDestroyed':
        this.bridges.drop(e.bridge.id);
        break;
      default:
        break;
    }
  }
}

function pjsipKey(m: RegExpExecArray): string {
  return `${decodeURIComponent(m[1]!)}/${decodeURIComponent(m[2]!)}`;
}
