/**
 * Fill videos by what they show: encoded once (an ffmpeg run of about 0.1 s), shared by every call that
 * shows the same picture at the same size, and kept while recently used. A slate that fails to encode
 * (a broken SLATE_IMAGE, no font) falls back to black: the stream must have video either way.
 */
import type { FillVideoEncoder, FillVideoSpec } from '../ports.js';
import type { GeneratedVideo } from './generated-video.js';

export interface FillLibraryOptions {
  encode: FillVideoEncoder;
  kind: 'slate' | 'black' | 'none';
  fps: number;
  /** GOP length (s): the stream's keyframe interval while it shows the fill. */
  gopSeconds: number;
  image?: string;
  /** Encoded pictures kept (LRU). */
  maxEntries?: number;
  /**
   * Encodes at once (default 1). Each is an ffmpeg run of ~0.1-0.2 CPU-s: a burst of 20 new calls a second
   * with 20 names must not take the cores from the live calls; a call shows the nameless slate meanwhile.
   */
  maxConcurrent?: number;
  /**
   * Encodes waiting or running beyond which a new call's own slate is not made (default 4): it keeps the
   * nameless one. At 150 calls placed 10 a second, one slate per name (0.29 CPU-s each, mostly ffmpeg's
   * start-up, even at nice 19) kept a 2-core box busy for 16-91 s after the last answer and every stream
   * ~1 s behind real time (0 of 150 in real time; 150 of 150 without slates, latency p99 86 ms).
   */
  maxQueued?: number;
  onError?: (err: Error, spec: FillVideoSpec) => void;
}

/** A name shown on the slate: one line, printable, at most 48 characters. */
export function slateText(name: string): string {
  const line = name.replace(/[\p{C}]+/gu, ' ').replace(/\s+/g, ' ').trim();
  return line.length > 48 ? `${line.slice(0, 47)}…` : line;
}

/** A fill to show now (if one at that size is ready), and the one asked for, when it is. */
export interface FillOffer {
  now: GeneratedVideo | undefined;
  later: Promise<GeneratedVideo | undefined>;
}

export class FillLibrary {
  private readonly entries = new Map<string, Promise<GeneratedVideo | undefined>>();
  /** Encoded ones by key, for an answer without waiting. */
  private readonly ready = new Map<string, GeneratedVideo>();
  readonly stats = { encoded: 0, hits: 0, failures: 0, skippedBusy: 0 };
  private running = 0;
  private readonly waiting: (() => void)[] = [];

  constructor(private readonly o: FillLibraryOptions) {}

  get kind(): FillLibraryOptions['kind'] {
    return this.o.kind;
  }

  /**
   * The fill for a call named `name` at this size, of the configured kind unless another is asked for
   * (undefined: VIDEO_FILL=none, or nothing could be encoded).
   */
  get(width: number, height: number, name = '', kind = this.o.kind): Promise<GeneratedVideo | undefined> {
    if (kind === 'none') return Promise.resolve(undefined);
    return this.cached(this.spec(kind, width, height, name));
  }

  /**
   * The fill for a call at a size, without waiting: its own when encoded already, else the nameless one of
   * that size (made at start for the default size), so a call's video starts at once; its own follows.
   */
  offer(width: number, height: number, name = ''): FillOffer {
    const kind = this.o.kind;
    if (kind === 'none') return { now: undefined, later: Promise.resolve(undefined) };
    const own = this.spec(kind, width, height, name);
    const nameless = this.spec(kind, width, height, '');
    const ready = (s: FillVideoSpec) => this.ready.get(JSON.stringify(s));
    // A burst of new names: those beyond the queue keep the nameless slate (one encode per size, shared).
    if (this.tooBusyFor(own)) return { now: ready(nameless), later: this.cached(nameless) };
    return { now: ready(own) ?? ready(nameless), later: this.cached(own) };
  }

  /** A call's own fill made ahead (while it rings), unless the queue is full: then it will show the nameless one. */
  prepare(width: number, height: number, name: string): void {
    if (this.o.kind === 'none') return;
    const own = this.spec(this.o.kind, width, height, name);
    if (!this.tooBusyFor(own)) void this.cached(own);
  }

  /** True (and counted) when `spec` is not made yet and maxQueued encodes are waiting or running. */
  private tooBusyFor(spec: FillVideoSpec): boolean {
    if (this.entries.has(JSON.stringify(spec)) || this.running + this.waiting.length < (this.o.maxQueued ?? 4)) return false;
    this.stats.skippedBusy++;
    return true;
  }

  private async limited<T>(job: () => Promise<T>): Promise<T> {
    // A finished job hands its slot straight to the next in line: no newcomer slips in between.
    if (this.running >= (this.o.maxConcurrent ?? 1)) await new Promise<void>((r) => this.waiting.push(r));
    else this.running++;
    try {
      return await job();
    } finally {
      const next = this.waiting.shift();
      if (next) next();
      else this.running--;
    }
  }

  /** What is drawn: a slate shows the name as slateText() makes it; black shows none. */
  private spec(kind: 'slate' | 'black', width: number, height: number, name: string): FillVideoSpec {
    const text = kind === 'slate' ? slateText(name) : '';
    return {
      kind, width, height, fps: this.o.fps, seconds: this.o.gopSeconds,
      ...(text ? { text } : {}), ...(kind === 'slate' && this.o.image ? { image: this.o.image } : {}),
    };
  }

  private cached(spec: FillVideoSpec): Promise<GeneratedVideo | undefined> {
    const key = JSON.stringify(spec);
    const hit = this.entries.get(key);
    if (hit) {
      this.stats.hits++;
      this.entries.delete(key); // LRU: most recent last
      this.entries.set(key, hit);
      return hit;
    }
    this.stats.encoded++;
    const p = this.limited(() => this.o.encode(spec)).then((g) => {
      if (this.entries.has(key)) this.ready.set(key, g);
      return g;
    }, (err: Error) => {
      this.stats.failures++;
      this.o.onError?.(err, spec);
      this.entries.delete(key); // try again next time
      if (spec.kind === 'black') return undefined;
      return this.cached(this.spec('black', spec.width, spec.height, ''));
    });
    this.entries.set(key, p);
    const max = this.o.maxEntries ?? 64;
    while (this.entries.size > max) {
      const oldest = this.entries.keys().next().value!;
      this.entries.delete(oldest);
      this.ready.delete(oldest);
    }
    return p;
  }
}
