/**
 * The encoder thread (aac-pool.ts): our AAC-LC encoder, one instance per call, fed a batch per media tick.
 *
 * In:  { t: 'open', id, opts } | { t: 'batch', head, pcm } | { t: 'finish', id } | { t: 'close', id }
 *      batch: head = Int32Array [id, samples, id, samples, …], pcm = every call's samples back to back.
 * Out: { t: 'frames', head, data, encodeMs }: head = Int32Array [id, frames, bytes of each frame…, …],
 *      data = the frames back to back; { t: 'finished', id } after a finish's last frames; { t: 'failed', id, message }.
 * Batches and control messages are handled in the order they were posted, so a finish follows every write.
 */
import { parentPort } from 'node:worker_threads';
import { AacLcEncoder } from '../../plugin/media/encode/aac/encoder.js';
import type { AudioEncoderOptions } from '../../plugin/media/ports.js';

export type ToWorker =
  | { t: 'open'; id: number; opts: AudioEncoderOptions }
  | { t: 'batch'; head: Int32Array; pcm: Int16Array }
  | { t: 'finish'; id: number }
  | { t: 'close'; id: number };

export type FromWorker =
  | { t: 'frames'; head: Int32Array; data: Uint8Array; encodeMs: number }
  | { t: 'finished'; id: number }
  | { t: 'failed'; id: number; message: string };

const port = parentPort!;
const encoders = new Map<number, AacLcEncoder>();

/** Frames of several calls in one reply (the same layout as a batch). */
function reply(parts: [number, Buffer[]][], encodeMs: number): void {
  let frames = 0;
  let bytes = 0;
  for (const [, fs] of parts) {
    frames += fs.length;
    for (const f of fs) bytes += f.length;
  }
  if (frames === 0) return;
  const head = new Int32Array(2 * parts.length + frames);
  const data = new Uint8Array(bytes);
  let h = 0;
  let at = 0;
  for (const [id, fs] of parts) {
    head[h++] = id;
    head[h++] = fs.length;
    for (const f of fs) {
      head[h++] = f.length;
      data.set(f, at);
      at += f.length;
    }
  }
  const msg: FromWorker = { t: 'frames', head, data, encodeMs };
  port.postMessage(msg, [head.buffer, data.buffer]);
}

function failed(id: number, err: unknown): void {
  encoders.delete(id);
  const msg: FromWorker = { t: 'failed', id, message: err instanceof Error ? err.message : String(err) };
  port.postMessage(msg);
}

port.on('message', (m: ToWorker) => {
  switch (m.t) {
    case 'open':
      try {
        encoders.set(m.id, new AacLcEncoder({ ...m.opts, channels: m.opts.channels as 1 | 2 }));
      } catch (err) {
        failed(m.id, err);
      }
      break;
    case 'batch': {
      const t0 = performance.now();
      const parts: [number, Buffer[]][] = [];
      let at = 0;
      for (let i = 0; i < m.head.length; i += 2) {
        const id = m.head[i]!;
        const n = m.head[i + 1]!;
        const enc = encoders.get(id);
        if (enc) {
          try {
            parts.push([id, enc.encode(m.pcm.subarray(at, at + n))]);
          } catch (err) {
            failed(id, err);
          }
        }
        at += n;
      }
      reply(parts, performance.now() - t0);
      break;
    }
    case 'finish': {
      const enc = encoders.get(m.id);
      encoders.delete(m.id);
      if (enc) reply([[m.id, enc.flush()]], 0);
      const msg: FromWorker = { t: 'finished', id: m.id };
      port.postMessage(msg);
      break;
    }
    case 'close':
      encoders.delete(m.id);
      break;
  }
});
