/**
 * Sounds an API client names by file: confined to one directory, encoded or decoded once, and cached.
 *
 * Names come from API clients, so resolve() refuses anything that could reach outside the directory
 * (`..`, absolute paths, symlinks pointing out) and its messages never show the server's paths.
 */
import { realpath, stat } from 'node:fs/promises';
import type { Stats } from 'node:fs';
import path from 'node:path';
import type { AacClip, AacClipEncoder, AacClipFormat, PcmDecoder } from './ports.js';

export type SoundErrorReason = 'invalid' | 'outside' | 'missing';

export class SoundError extends Error {
  override readonly name = 'SoundError';
  constructor(readonly reason: SoundErrorReason, message: string) {
    super(message);
  }
}

export interface SoundLibraryOptions {
  dir: string;
  encodeClip: AacClipEncoder;
  decodePcm: PcmDecoder;
  /** Entries per cache (clips, decoded PCM, silence frames); least recently used goes first. Default 16. */
  maxCached?: number;
}

const SILENCE_MS = 100;

/** A small LRU of promises: concurrent requests for one key share one run; failures are not kept. */
class PromiseCache<T> {
  private readonly entries = new Map<string, Promise<T>>();
  constructor(private readonly max: number) {}

  get(key: string, make: () => Promise<T>): Promise<T> {
    const hit = this.entries.get(key);
    if (hit !== undefined) {
      this.entries.delete(key);
      this.entries.set(key, hit);
      return hit;
    }
    const p = make();
    this.entries.set(key, p);
    // Evicting a pending entry is harmless: its waiters still get the result.
    while (this.entries.size > this.max) this.entries.delete(this.entries.keys().next().value!);
    p.catch(() => {
      if (this.entries.get(key) === p) this.entries.delete(key);
    });
    return p;
  }
}

const formatKey = (f: AacClipFormat) => `${f.sampleRate}/${f.channels}/${f.bitrate}`;

/** `rel` (from path.relative) stays below its base. A name like "..x" is inside. */
const isBelow = (rel: string) => rel !== '' && rel !== '..' && !rel.startsWith(`..${path.sep}`) && !path.isAbsolute(rel);

export class SoundLibrary {
  private readonly clips: PromiseCache<AacClip>;
  private readonly pcms: PromiseCache<Int16Array>;
  private readonly silences: PromiseCache<Buffer>;

  constructor(private readonly opts: SoundLibraryOptions) {
    const max = opts.maxCached ?? 16;
    if (!(Number.isInteger(max) && max >= 1)) throw new RangeError(`SoundLibrary: maxCached ${max}`);
    this.clips = new PromiseCache(max);
    this.pcms = new PromiseCache(max);
    this.silences = new PromiseCache(max);
  }

  /** The real path of the regular file `name` (relative to the sound directory) names. */
  async resolve(name: string): Promise<string> {
    return (await this.lookup(name)).real;
  }

  /** `name` encoded as AAC in `format`. Shared with other callers: do not modify. */
  async clip(name: string, format: AacClipFormat): Promise<AacClip> {
    const { real, dir, stats } = await this.lookup(name);
    return this.clips.get(`${fileKey(real, stats)}\0${formatKey(format)}`, () =>
      scrubbed(this.opts.encodeClip({ file: real }, format), real, dir, name));
  }

  /** One raw AAC frame of silence in `format` (a steady-state frame, not the encoder's first). */
  silence(format: AacClipFormat): Promise<Buffer> {
    return this.silences.get(formatKey(format), async () => {
      const { frames } = await this.opts.encodeClip({ silenceMs: SILENCE_MS }, format);
      const frame = frames[frames.length >> 1];
      if (frame === undefined) throw new Error(`no AAC frames for ${SILENCE_MS} ms of silence`);
      // A copy, so the cache does not hold the whole clip's buffer.
      return Buffer.from(frame);
    });
  }

  /** `name` decoded to mono s16 at `sampleRate`. Shared with other callers: do not modify. */
  async pcm(name: string, sampleRate: number): Promise<Int16Array> {
    const { real, dir, stats } = await this.lookup(name);
    return this.pcms.get(`${fileKey(real, stats)}\0${sampleRate}`, () =>
      scrubbed(this.opts.decodePcm(real, sampleRate), real, dir, name));
  }

  private async lookup(name: string): Promise<{ real: string; dir: string; stats: Stats }> {
    const quoted = typeof name === 'string' ? JSON.stringify(name.length > 200 ? `${name.slice(0, 200)}…` : name) : '';
    if (typeof name !== 'string' || name === '') throw new SoundError('invalid', 'soundFile must name a file in the sound directory');
    if (name.includes('\0')) throw new SoundError('invalid', 'soundFile must not contain NUL characters');
    if (path.isAbsolute(name)) throw new SoundError('invalid', 'soundFile must be a path relative to the sound directory'); // not echoed: it is a server path

    let dir: string;
    try {
      dir = await realpath(this.opts.dir);
    } catch (err) {
      // A server problem, not the client's: no SoundError, and still no path.
      throw new Error(`the sound directory is not available (${errCode(err)})`);
    }
    const outside = new SoundError('outside', `soundFile ${quoted} must name a file inside the sound directory`);
    // Checked before touching the file system, so "outside" vs "missing" says nothing about files out there.
    const candidate = path.resolve(dir, name);
    if (candidate !== dir && !isBelow(path.relative(dir, candidate))) throw outside;

    let real: string;
    let stats: Stats;
    try {
      real = await realpath(candidate);
      stats = await stat(real);
    } catch (err) {
      const code = errCode(err);
      if (code === 'ENOENT' || code === 'ENOTDIR') throw new SoundError('missing', `soundFile ${quoted} does not exist in the sound directory`);
      if (code === 'ELOOP') throw new SoundError('invalid', `soundFile ${quoted} is a symbolic link loop`);
      // fs messages carry the absolute path: keep only the code.
      throw new Error(`soundFile ${quoted} cannot be read (${code})`);
    }
    // Symlinks resolved: the file itself must still be in the directory.
    if (real !== dir && !isBelow(path.relative(dir, real))) throw outside;
    if (!stats.isFile()) throw new SoundError('invalid', `soundFile ${quoted} must name a file, not a directory or device`);
    return { real, dir, stats };
  }
}

/** Identity of the file's current content: a replaced or rewritten file gets a new key. */
const fileKey = (real: string, s: Stats) => `${real}\0${s.mtimeMs}\0${s.size}\0${s.ino}`;

function errCode(err: unknown): string {
  return (err as NodeJS.ErrnoException | undefined)?.code ?? 'error';
}

/** ffmpeg's stderr names the file by its absolute path: show the client's name instead. */
async function scrubbed<T>(p: Promise<T>, real: string, dir: string, name: string): Promise<T> {
  try {
    return await p;
  } catch (err) {
    if (!(err instanceof Error)) throw err;
    const message = err.message.split(real).join(name).split(dir).join('<sound directory>');
    if (message === err.message) throw err;
    throw new Error(message);
  }
}
