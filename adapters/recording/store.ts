/**
 * Recordings on disk, in RECORDINGS_DIR: `<name>.recording.flv` while recording, `<name>.mp4` when done
 * (ffmpeg -c copy, moov up front). A `.recording.flv` left by a killed run is made an MP4 on the next
 * start (recover()); until then it plays as it is.
 */
import { createReadStream, createWriteStream, type WriteStream } from 'node:fs';
import { mkdir, open, readdir, rename, stat, unlink } from 'node:fs/promises';
import { join } from 'node:path';
import { parseRange } from '../../plugin/lib/http-range.js';
import type { RecordingFile, RecordingRead, RecordingStore } from '../../plugin/media/output/recording.js';
import { runFfmpeg } from '../ffmpeg/run.js';

export const RECORDING_SUFFIX = '.recording.flv';

export interface FileRecordingStoreOptions {
  dir: string;
  ffmpegPath?: string;
  /** Longest an MP4 may take to make (ms, default 10 min: hours of media, copied). */
  remuxTimeoutMs?: number;
}

/**
 * A recording's file: tags gathered and written together every FLUSH_MS (one writev instead of ~75 small
 * writes a second through libuv's thread pool: a third of the cost). A kill -9 loses at most that much.
 */
const FLUSH_MS = 250;
const FLUSH_BYTES = 256 * 1024;

class FileOut implements RecordingFile {
  private readonly closed: Promise<void>;
  private pending: Buffer[] = [];
  private pendingBytes = 0;
  private timer: NodeJS.Timeout | undefined;

  constructor(readonly path: string, private readonly ws: WriteStream) {
    this.closed = new Promise((resolve) => ws.once('close', () => resolve()));
  }

  write(chunk: Buffer): boolean {
    if (this.ws.destroyed || this.ws.writableEnded) return false;
    this.pending.push(chunk);
    this.pendingBytes += chunk.length;
    if (this.pendingBytes >= FLUSH_BYTES) this.flush();
    else this.timer ??= setTimeout(() => this.flush(), FLUSH_MS);
    return true;
  }

  private flush(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    if (this.pending.length === 0 || this.ws.destroyed || this.ws.writableEnded) return;
    // Chunks written while the stream is busy are handed to writev together.
    this.ws.cork();
    for (const c of this.pending) this.ws.write(c);
    this.ws.uncork();
    this.pending = [];
    this.pendingBytes = 0;
  }

  get writableLength(): number {
    return this.ws.writableLength + this.pendingBytes;
  }

  onError(listener: (err: Error & { code?: string }) => void): void {
    this.ws.on('error', listener);
  }

  async close(): Promise<void> {
    this.flush();
    if (!this.ws.writableEnded && !this.ws.destroyed) this.ws.end();
    await this.closed;
    const err = this.ws.errored as (Error & { code?: string }) | null;
    if (err) throw err;
  }
}

export class FileRecordingStore implements RecordingStore {
  constructor(private readonly o: FileRecordingStoreOptions) {}

  get dir(): string {
    return this.o.dir;
  }

  async open(name: string): Promise<RecordingFile> {
    await mkdir(this.o.dir, { recursive: true });
    // 'wx': never over another file (two recordings of one name get -1, -2…).
    for (let n = 0; ; n++) {
      const path = join(this.o.dir, `${name}${n ? `-${n}` : ''}${RECORDING_SUFFIX}`);
      try {
        const fh = await open(path, 'wx');
        // The FileHandle itself, not its fd: a handle left unreferenced is closed when it is collected.
        const ws = createWriteStream('', { fd: fh, autoClose: true });
        ws.on('error', () => {}); // FileOut's listener reports it; this one keeps an early error from being unhandled
        return new FileOut(path, ws);
      } catch (err) {
        if ((err as { code?: string }).code === 'EEXIST' && n < 1000) continue;
        throw err;
      }
    }
  }

  async finish(flvPath: string, name: string): Promise<{ path: string; bytes: number }> {
    const path = await this.unused(`${name}`, '.mp4');
    const tmp = `${path}.tmp`;
    try {
      await runFfmpeg([
        '-nostdin', '-hide_banner', '-loglevel', 'error', '-y', '-f', 'flv', '-i', flvPath,
        // Audio and video only: the flv demuxer may add a data stream for script tags, which MP4 can't hold.
        '-map', '0:v?', '-map', '0:a?', '-c', 'copy', '-movflags', '+faststart', '-f', 'mp4', tmp,
      ], { maxBytes: 64 * 1024, timeoutMs: this.o.remuxTimeoutMs ?? 600_000, what: 'making the recording an MP4', ...(this.o.ffmpegPath ? { ffmpegPath: this.o.ffmpegPath } : {}) });
      await rename(tmp, path);
    } catch (err) {
      await unlink(tmp).catch(() => {});
      throw err;
    }
    await unlink(flvPath).catch(() => {});
    return { path, bytes: (await stat(path)).size };
  }

  async read(fileName: string, range?: string): Promise<RecordingRead | { unsatisfiable: true; size: number } | undefined> {
    // A name, never a path: letters, digits, '.', '-', '_' (what renderFileName makes), and no hidden file.
    if (!/^[A-Za-z0-9_-][A-Za-z0-9._-]*\.(mp4|flv)$/.test(fileName)) return undefined;
    const path = join(this.o.dir, fileName);
    let size: number;
    try {
      const st = await stat(path);
      if (!st.isFile()) return undefined;
      size = st.size;
    } catch {
      return undefined;
    }
    const r = parseRange(range, size);
    if ('unsatisfiable' in r) return { unsatisfiable: true, size };
    return { stream: createReadStream(path, { start: r.start, end: r.end }), size, ...r };
  }

  /**
   * What a killed run left: every `.recording.flv` not written for `idleMs` (another process may still be
   * writing a fresh one) made an MP4. Returns what was done, per file.
   */
  async recover(idleMs = 10_000): Promise<{ flv: string; mp4?: string; error?: string }[]> {
    let names: string[];
    try {
      names = await readdir(this.o.dir);
    } catch {
      return [];
    }
    const out: { flv: string; mp4?: string; error?: string }[] = [];
    for (const n of names.filter((x) => x.endsWith(RECORDING_SUFFIX))) {
      const flv = join(this.o.dir, n);
      try {
        if (Date.now() - (await stat(flv)).mtimeMs < idleMs) continue;
        out.push({ flv, mp4: (await this.finish(flv, n.slice(0, -RECORDING_SUFFIX.length))).path });
      } catch (err) {
        out.push({ flv, error: (err as Error).message });
      }
    }
    return out;
  }

  private async unused(name: string, ext: string): Promise<string> {
    for (let n = 0; ; n++) {
      const path = join(this.o.dir, `${name}${n ? `-${n}` : ''}${ext}`);
      try {
        await stat(path);
      } catch {
        return path;
      }
    }
  }
}
