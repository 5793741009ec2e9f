/**
 * AAC encoding off the main thread (AAC_ENCODER_THREADS ≥ 1): our AAC-LC encoder in worker threads, so the
 * event loop that times every call's media keeps a third of its work less, and a second core can encode.
 *
 * Each call's encoder lives in one worker (the least loaded when it opens). The calls' writes of one media
 * tick are all made in one callback (the shared ticker), so a worker gets them as ONE message, flushed in a
 * microtask after the first write: two messages per worker per tick, whatever the number of calls. Frames
 * come back the same way, a message hop later (well under a millisecond on an idle loop).
 *
 * A worker that dies fails its calls' encoders ('error': the call ends FAILED, as when an ffmpeg encoder
 * dies); the next calls get a new one.
 */
import { EventEmitter } from 'node:events';
import { Worker } from 'node:worker_threads';
import { audioSpecificConfig } from '../../plugin/media/encode/adts.js';
import { nativeEncoderTime } from '../../plugin/media/encode/aac/audio-encoder.js';
import type { AudioEncoder, AudioEncoderEvents, AudioEncoderFactory, AudioEncoderOptions } from '../../plugin/media/ports.js';
import type { FromWorker, ToWorker } from './aac-worker.js';

const WORKER_URL = new URL('./aac-worker.js', import.meta.url);

class EncoderThread {
  readonly worker: Worker;
  readonly encoders = new Map<number, PooledAacEncoder>();
  private readonly finishing = new Map<number, () => void>();
  private ids: number[] = [];
  private parts: Int16Array[] = [];
  private samples = 0;
  private flushQueued = false;
  dead = false;

  constructor(private readonly onExit: (t: EncoderThread) => void) {
    this.worker = new Worker(WORKER_URL);
    this.worker.unref();
    this.worker.on('message', (m: FromWorker) => this.onMessage(m));
    this.worker.on('error', (err) => this.die(err.message));
    this.worker.on('exit', (code) => this.die(`exited with code ${code}`));
  }

  post(m: ToWorker, transfer: ArrayBuffer[] = []): void {
    if (!this.dead) this.worker.postMessage(m, transfer);
  }

  write(id: number, pcm: Int16Array): void {
    this.ids.push(id, pcm.length);
    this.parts.push(pcm);
    this.samples += pcm.length;
    if (!this.flushQueued) {
      this.flushQueued = true;
      queueMicrotask(() => this.flush());
    }
  }

  /** The writes so far, as one batch (control messages flush first: they must follow their call's writes). */
  flush(): void {
    this.flushQueued = false;
    if (this.parts.length === 0) return;
    const head = Int32Array.from(this.ids);
    const pcm = new Int16Array(this.samples);
    let at = 0;
    for (const p of this.parts) {
      pcm.set(p, at);
      at += p.length;
    }
    this.ids = [];
    this.parts = [];
    this.samples = 0;
    this.post({ t: 'batch', head, pcm }, [head.buffer, pcm.buffer]);
  }

  finish(id: number): Promise<void> {
    this.flush();
    return new Promise((resolve) => {
      this.finishing.set(id, resolve);
      this.post({ t: 'finish', id });
      if (this.dead) resolve();
    });
  }

  private onMessage(m: FromWorker): void {
    switch (m.t) {
      case 'frames': {
        nativeEncoderTime.seconds += m.encodeMs / 1000;
        let h = 0;
        let at = 0;
        while (h < m.head.length) {
          const enc = this.encoders.get(m.head[h++]!);
          const n = m.head[h++]!;
          for (let i = 0; i < n; i++) {
            const len = m.head[h++]!;
            // A copy: a frame may be kept (outputs, recordings) long after the batch it came in.
            enc?.frameOut(Buffer.from(m.data.subarray(at, at + len)));
            at += len;
          }
        }
        break;
      }
      case 'finished':
        this.finishing.get(m.id)?.();
        this.finishing.delete(m.id);
        break;
      case 'failed':
        this.encoders.get(m.id)?.fail(new Error(`AAC encoder thread: ${m.message}`));
        break;
    }
  }

  private die(why: string): void {
    if (this.dead) return;
    this.dead = true;
    for (const enc of this.encoders.values()) enc.fail(new Error(`AAC encoder thread ${why}`));
    for (const resolve of this.finishing.values()) resolve();
    this.finishing.clear();
    this.onExit(this);
  }
}

let nextId = 1;

/** One call's encoder, living in an EncoderThread. */
class PooledAacEncoder extends EventEmitter<AudioEncoderEvents> implements AudioEncoder {
  readonly audioSpecificConfig: Buffer;
  readonly outputRate: number;
  readonly pid = undefined;
  private readonly id = nextId++;
  private index = 0;
  private closed = false;

  constructor(private readonly thread: EncoderThread, opts: AudioEncoderOptions) {
    super();
    if (opts.channels !== 1 && opts.channels !== 2) throw new RangeError(`AAC channels must be 1 or 2, got ${opts.channels}`);
    if (opts.outputRate !== 48000 && opts.outputRate !== 44100) throw new RangeError(`AAC output rate ${opts.outputRate} (44100 or 48000)`);
    this.audioSpecificConfig = audioSpecificConfig(1, opts.outputRate, opts.channels);
    this.outputRate = opts.outputRate;
    thread.encoders.set(this.id, this);
    thread.post({ t: 'open', id: this.id, opts });
  }

  write(pcm: Int16Array): void {
    if (this.closed || pcm.length === 0) return;
    this.thread.write(this.id, pcm);
  }

  async finish(timeoutMs: number): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([this.thread.finish(this.id), new Promise<void>((r) => (timer = setTimeout(r, timeoutMs)))]);
    clearTimeout(timer);
    this.release();
  }

  async close(): Promise<void> {
    if (this.closed && !this.thread.encoders.has(this.id)) return;
    this.closed = true;
    this.thread.post({ t: 'close', id: this.id });
    this.release();
  }

  frameOut(raw: Buffer): void {
    if (!this.thread.encoders.has(this.id)) return;
    this.emit('frame', { raw, index: this.index++ });
  }

  fail(err: Error): void {
    if (!this.thread.encoders.has(this.id)) return;
    this.release();
    this.closed = true;
    this.emit('error', err);
  }

  private release(): void {
    this.thread.encoders.delete(this.id);
  }
}

/** `threads` encoder threads; their factory places each new call's encoder on the least loaded one. */
export class AacEncoderPool {
  private readonly threads: EncoderThread[] = [];

  constructor(private readonly size: number) {
    if (!(size >= 1)) throw new RangeError(`AacEncoderPool: ${size} threads`);
  }

  readonly factory: AudioEncoderFactory = (opts) => new PooledAacEncoder(this.pick(), opts);

  /** Encoders open now, per thread (for tests and the shutdown report). */
  get load(): number[] {
    return this.threads.map((t) => t.encoders.size);
  }

  private pick(): EncoderThread {
    while (this.threads.length < this.size) {
      this.threads.push(new EncoderThread((dead) => this.threads.splice(this.threads.indexOf(dead), 1)));
    }
    return this.threads.reduce((a, b) => (b.encoders.size < a.encoders.size ? b : a));
  }

  /** At shutdown, once the calls are gone: the threads end without failing anything. */
  async close(): Promise<void> {
    const all = this.threads.splice(0);
    for (const t of all) t.dead = true;
    await Promise.all(all.map((t) => t.worker.terminate()));
  }
}
