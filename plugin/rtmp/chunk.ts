/**
 * The RTMP chunk stream (Adobe RTMP spec, section 5.3): messages are cut into chunks of at most
 * `chunkSize` payload bytes, each with a basic header (fmt + chunk stream id) and a message header that
 * is compressed against the previous message on the same chunk stream:
 *   fmt 0: timestamp, length, type, stream id (11 bytes)   fmt 1: delta, length, type (7)
 *   fmt 2: delta (3)                                       fmt 3: nothing (continuation / repeat)
 * A timestamp or delta ≥ 0xFFFFFF is sent as 0xFFFFFF plus a 4-byte extended timestamp, which is repeated
 * on every fmt 3 chunk of that message (what FFmpeg and nginx-rtmp do).
 * Pure: buffers in, buffers / messages out. Timestamps are u32 milliseconds and wrap at 2^32.
 */

export interface ChunkMessage {
  /** Chunk stream id (2 = protocol control; the others are the sender's choice). */
  csid: number;
  /** Absolute, u32 ms. */
  timestamp: number;
  typeId: number;
  /** Message stream id (0 = the NetConnection). */
  streamId: number;
  payload: Buffer;
}

export class ChunkError extends Error {
  override readonly name = 'ChunkError';
}

export const DEFAULT_CHUNK_SIZE = 128;
const EXTENDED = 0xffffff;
const MAX_CSID = 65599;
const EMPTY = Buffer.alloc(0);

interface WriterStream {
  timestamp: number;
  length: number;
  typeId: number;
  streamId: number;
}

function basicHeaderSize(csid: number): number {
  return csid < 64 ? 1 : csid < 320 ? 2 : 3;
}

function writeBasicHeader(buf: Buffer, off: number, fmt: number, csid: number): number {
  if (csid < 64) {
    buf[off] = (fmt << 6) | csid;
    return off + 1;
  }
  if (csid < 320) {
    buf[off] = fmt << 6;
    buf[off + 1] = csid - 64;
    return off + 2;
  }
  buf[off] = (fmt << 6) | 1;
  buf[off + 1] = (csid - 64) & 0xff;
  buf[off + 2] = (csid - 64) >> 8;
  return off + 3;
}

/**
 * Serializes whole messages into one buffer each (header + all chunks), so a message costs a single
 * socket write. fmt 0 starts a chunk stream and follows any change of message stream or a timestamp that
 * went backwards; otherwise fmt 1 (length or type changed) or fmt 2 (only the delta) with a delta.
 * fmt 3 is never used to start a message: it saves one to three bytes and some servers get it wrong.
 */
export class ChunkWriter {
  /** Outgoing chunk size; change it only right after sending Set Chunk Size. */
  chunkSize = DEFAULT_CHUNK_SIZE;
  private readonly streams = new Map<number, WriterStream>();
  readonly stats = { messages: 0, bytes: 0, fmt0: 0, fmt1: 0, fmt2: 0 };

  encode(csid: number, typeId: number, streamId: number, timestamp: number, payload: Buffer): Buffer {
    if (!Number.isInteger(csid) || csid < 2 || csid > MAX_CSID) throw new RangeError(`chunk stream id ${csid} out of range`);
    if (payload.length > 0xffffff) throw new RangeError(`RTMP message of ${payload.length} bytes exceeds 16 MiB`);
    const ts = timestamp >>> 0;
    const prev = this.streams.get(csid);
    let fmt: 0 | 1 | 2;
    let field: number;
    const delta = prev ? (ts - prev.timestamp) >>> 0 : 0;
    if (!prev || prev.streamId !== streamId || delta >= 0x80000000) {
      fmt = 0;
      field = ts;
    } else {
      fmt = prev.length !== payload.length || prev.typeId !== typeId ? 1 : 2;
      field = delta;
    }
    this.streams.set(csid, { timestamp: ts, length: payload.length, typeId, streamId });

    const ext = field >= EXTENDED;
    const basic = basicHeaderSize(csid);
    const extSize = ext ? 4 : 0;
    const first = basic + (fmt === 0 ? 11 : fmt === 1 ? 7 : 3) + extSize;
    const chunks = Math.max(1, Math.ceil(payload.length / this.chunkSize));
    const out = Buffer.allocUnsafe(first + (chunks - 1) * (basic + extSize) + payload.length);

    let off = writeBasicHeader(out, 0, fmt, csid);
    out.writeUIntBE(ext ? EXTENDED : field, off, 3);
    off += 3;
    if (fmt <= 1) {
      out.writeUIntBE(payload.length, off, 3);
      out[off + 3] = typeId;
      off += 4;
    }
    if (fmt === 0) {
      out.writeUInt32LE(streamId, off); // the one little-endian field in RTMP
      off += 4;
    }
    if (ext) off = out.writeUInt32BE(field, off);

    for (let pos = 0; pos < payload.length; ) {
      if (pos > 0) {
        off = writeBasicHeader(out, off, 3, csid);
        if (ext) off = out.writeUInt32BE(field, off);
      }
      const end = Math.min(pos + this.chunkSize, payload.length);
      off += payload.copy(out, off, pos, end);
      pos = end;
    }
    this.stats.messages++;
    this.stats.bytes += out.length;
    this.stats[fmt === 0 ? 'fmt0' : fmt === 1 ? 'fmt1' : 'fmt2']++;
    return out;
  }

  /** Forget compression state (a new connection starts every chunk stream with fmt 0 again). */
  reset(): void {
    this.streams.clear();
  }
}

interface ReaderStream {
  timestamp: number;
  /** The delta a fmt 3 header starting a new message repeats (0 after fmt 0, as nginx-rtmp does). */
  delta: number;
  length: number;
  typeId: number;
  streamId: number;
  /** The last fmt 0/1/2 header used an extended timestamp, so fmt 3 headers carry one too. */
  extended: boolean;
  /** Message being assembled, and how much of it has arrived. */
  payload: Buffer | undefined;
  received: number;
}

export interface ChunkReaderOptions {
  /** Refuse messages declared larger than this (the peer can't make us allocate 16 MiB per chunk stream). */
  maxMessageSize?: number;
  /**
   * Refuse to hold more than this in partial messages across all chunk streams (bytes allocated). Default:
   * 8 MiB, or twice maxMessageSize if that is more (a real server interleaves an audio and a video message,
   * not thousands). Without it, a peer could start a large message on each of 65 000 chunk streams.
   */
  maxBufferedBytes?: number;
}

/** The default cap on partial messages held across chunk streams (at least twice the largest message). */
export const DEFAULT_MAX_BUFFERED = 8 * 1024 * 1024;

/**
 * Reassembles messages from interleaved chunk streams. Feed it socket data in any slicing; it keeps at most
 * one partial header (< 18 bytes) and copies payload straight into each message's buffer, which grows with
 * the bytes received (never ahead of them), so a large chunk size doesn't make it re-concatenate chunks.
 * Set Chunk Size and Abort are chunk-layer messages: the reader applies them itself, at the exact point in
 * the byte stream where they end, and still returns them.
 */
export class ChunkReader {
  private _chunkSize = DEFAULT_CHUNK_SIZE;
  private readonly streams = new Map<number, ReaderStream>();
  private pending: Buffer = EMPTY;
  /** The chunk whose payload is being read, and its bytes still to come. */
  private current: ReaderStream | undefined;
  private currentCsid = 0;
  private chunkLeft = 0;
  private readonly maxMessageSize: number;
  private readonly maxBuffered: number;
  /** Bytes allocated to partial messages, all chunk streams together. */
  private held = 0;
  readonly stats = { bytes: 0, chunks: 0, messages: 0, aborted: 0 };

  constructor(opts: ChunkReaderOptions = {}) {
    this.maxMessageSize = opts.maxMessageSize ?? 0xffffff;
    this.maxBuffered = opts.maxBufferedBytes ?? Math.max(DEFAULT_MAX_BUFFERED, 2 * this.maxMessageSize);
  }

  /** Bytes held in partly received messages, across chunk streams (never above maxBufferedBytes). */
  get bufferedBytes(): number {
    return this.held;
  }

  get chunkSize(): number {
    return this._chunkSize;
  }

  setChunkSize(size: number): void {
    if (!Number.isInteger(size) || size < 1 || size > 0x7fffffff) throw new ChunkError(`invalid chunk size ${size}`);
    this._chunkSize = size;
  }

  /** Drop the partly received message on a chunk stream (Abort Message, type 2). */
  abort(csid: number): void {
    const st = this.streams.get(csid);
    if (st?.payload) {
      this.drop(st);
      if (this.current === st) this.current = undefined;
    }
  }

  /** Forget a stream's partial message (aborted, or replaced by a new message header). */
  private drop(st: ReaderStream): void {
    this.held -= st.payload?.length ?? 0;
    st.payload = undefined;
    st.received = 0;
    this.stats.aborted++;
  }

  /** Consume socket bytes; returns the messages they complete, in order. Throws ChunkError on violations. */
  push(data: Buffer): ChunkMessage[] {
    this.stats.bytes += data.length;
    const buf = this.pending.length ? Buffer.concat([this.pending, data]) : data;
    this.pending = EMPTY;
    const out: ChunkMessage[] = [];
    let off = 0;
    while (off < buf.length) {
      if (this.current) {
        off = this.readPayload(buf, off, out);
        continue;
      }
      const next = this.readHeader(buf, off, out);
      if (next < 0) {
        // Partial header: keep a copy (never a view that would pin the whole socket buffer).
        this.pending = Buffer.from(buf.subarray(off));
        break;
      }
      off = next;
    }
    return out;
  }

  /** Parse one chunk header at `off`; returns the offset after it, or -1 if it isn't all there yet. */
  private readHeader(buf: Buffer, off: number, out: ChunkMessage[]): number {
    const avail = buf.length - off;
    const b0 = buf[off]!;
    const fmt = b0 >> 6;
    let csid = b0 & 0x3f;
    let p = off + 1;
    if (csid === 0) {
      if (avail < 2) return -1;
      csid = 64 + buf[p]!;
      p += 1;
    } else if (csid === 1) {
      if (avail < 3) return -1;
      csid = 64 + buf[p]! + buf[p + 1]! * 256;
      p += 2;
    }
    const headerSize = fmt === 0 ? 11 : fmt === 1 ? 7 : fmt === 2 ? 3 : 0;
    if (buf.length - p < headerSize) return -1;

    let st = this.streams.get(csid);
    if (!st) {
      if (fmt !== 0) throw new ChunkError(`chunk stream ${csid} starts with a fmt ${fmt} header`);
      st = { timestamp: 0, delta: 0, length: 0, typeId: 0, streamId: 0, extended: false, payload: undefined, received: 0 };
    }
    let field = 0;
    let length = st.length;
    let typeId = st.typeId;
    let streamId = st.streamId;
    if (fmt <= 2) field = buf.readUIntBE(p, 3);
    if (fmt <= 1) {
      length = buf.readUIntBE(p + 3, 3);
      typeId = buf[p + 6]!;
    }
    if (fmt === 0) streamId = buf.readUInt32LE(p + 7);
    p += headerSize;
    const extended = fmt === 3 ? st.extended : field === EXTENDED;
    if (extended) {
      if (buf.length - p < 4) return -1;
      field = buf.readUInt32BE(p);
      p += 4;
    }
    // The whole header is here: only now change state.
    this.streams.set(csid, st);
    this.stats.chunks++;

    // A new message header in the middle of a message: the sender gave up on the old one.
    if (fmt !== 3 && st.payload) this.drop(st);
    if (!st.payload) {
      // A new message starts here.
      if (fmt === 0) {
        st.timestamp = field;
        st.delta = 0;
      } else {
        if (fmt !== 3) st.delta = field;
        st.timestamp = (st.timestamp + st.delta) >>> 0;
      }
      if (fmt !== 3) st.extended = extended;
      st.length = length;
      st.typeId = typeId;
      st.streamId = streamId;
      if (length > this.maxMessageSize) {
        throw new ChunkError(`message of ${length} bytes on chunk stream ${csid} exceeds the ${this.maxMessageSize}-byte limit`);
      }
      // Allocated as the bytes arrive (readPayload), not on the header's word: a 12-byte header may
      // declare 16 MiB, and a hostile server could send one on each of some 65 000 chunk streams.
      st.payload = EMPTY;
      st.received = 0;
    }
    this.current = st;
    this.currentCsid = csid;
    this.chunkLeft = Math.min(this._chunkSize, st.length - st.received);
    if (this.chunkLeft === 0) this.finishChunk(out);
    return p;
  }

  private readPayload(buf: Buffer, off: number, out: ChunkMessage[]): number {
    const st = this.current!;
    const n = Math.min(this.chunkLeft, buf.length - off);
    let payload = st.payload!;
    if (st.received + n > payload.length) {
      // Grow to what has arrived, at least doubling (amortised linear copying), at most the declared length
      // (so the complete message's buffer is exactly its length): memory stays within 2x the bytes received.
      const size = Math.min(st.length, Math.max(st.received + n, 2 * payload.length));
      if (this.held - payload.length + size > this.maxBuffered) {
        throw new ChunkError(`partial messages would hold ${this.held - payload.length + size} bytes across ${this.partialCount()} chunk streams, over the ${this.maxBuffered}-byte limit`);
      }
      const grown = Buffer.allocUnsafe(size);
      payload.copy(grown, 0, 0, st.received);
      this.held += size - payload.length;
      st.payload = payload = grown;
    }
    buf.copy(payload, st.received, off, off + n);
    st.received += n;
    this.chunkLeft -= n;
    if (this.chunkLeft === 0) this.finishChunk(out);
    return off + n;
  }

  private partialCount(): number {
    let n = 0;
    for (const st of this.streams.values()) if (st.payload) n++;
    return n;
  }

  private finishChunk(out: ChunkMessage[]): void {
    const st = this.current!;
    this.current = undefined;
    if (st.received < st.length) return;
    const msg: ChunkMessage = { csid: this.currentCsid, timestamp: st.timestamp, typeId: st.typeId, streamId: st.streamId, payload: st.payload! };
    this.held -= msg.payload.length;
    st.payload = undefined;
    st.received = 0;
    this.stats.messages++;
    // Chunk-layer control takes effect before the next chunk header is read.
    if (msg.typeId === 1) {
      if (msg.payload.length < 4) throw new ChunkError('Set Chunk Size message is too short');
      this.setChunkSize(msg.payload.readUInt32BE(0) & 0x7fffffff);
    } else if (msg.typeId === 2 && msg.payload.length >= 4) {
      this.abort(msg.payload.readUInt32BE(0));
    }
    out.push(msg);
  }
}
