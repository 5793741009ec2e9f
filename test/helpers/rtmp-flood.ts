/**
 * A hostile RTMP server's chunk flood: after a Set Chunk Size, one large message started on each of many
 * chunk stream ids and never finished. Each piece is one first chunk (fmt 0 header + `chunkSize` bytes).
 */
import { ChunkWriter } from '../../plugin/rtmp/chunk.js';
import { buildSetChunkSize } from '../../plugin/rtmp/messages.js';

export interface FloodOptions {
  /** Total bytes of the flood (pieces stop once it is reached). */
  totalBytes: number;
  /** The chunk size announced first: each piece carries this much of its message. */
  chunkSize?: number;
  /** Declared length of every message: more than a chunk, so none completes. */
  messageLength?: number;
}

/** The Set Chunk Size message, then pieces, each starting a message on a new chunk stream id (64 up). */
export function* chunkFlood(o: FloodOptions): Generator<Buffer> {
  const chunkSize = o.chunkSize ?? 64 * 1024;
  const length = o.messageLength ?? (1 << 20) - 1;
  const first = new ChunkWriter().encode(2, 1, 0, 0, buildSetChunkSize(chunkSize));
  yield first;
  const body = Buffer.alloc(Math.min(chunkSize, length), 0x5a);
  let sent = first.length;
  for (let csid = 64; sent < o.totalBytes; csid = csid >= 65599 ? 64 : csid + 1) {
    const head = Buffer.alloc(3 + 11);
    head[0] = 1; // fmt 0, the 3-byte basic header: ids 64 to 65599
    head.writeUInt16LE(csid - 64, 1);
    head.writeUIntBE(0, 3, 3); // timestamp
    head.writeUIntBE(length, 6, 3);
    head[9] = 9; // video
    head.writeUInt32LE(1, 10); // message stream id
    const piece = Buffer.concat([head, body]);
    sent += piece.length;
    yield piece;
  }
}
