/**
 * The client side of the simple RTMP handshake (Adobe RTMP spec, section 5.2):
 *   C0 (version 3) + C1 (time, 4 zero bytes, 1528 random bytes)  →
 *   ← S0 + S1 + S2
 *   C2 (an echo of S1, with our read time in bytes 4..7)         →
 * Zero bytes 4..7 in C1 tell servers that do the "complex" (digest) handshake to fall back to the simple
 * one; nginx-rtmp, Wowza, YouTube and Facebook all accept it. S2 is not checked: complex-handshake servers
 * answer with a digest instead of an echo, and nothing we do depends on it.
 */
import { randomBytes } from 'node:crypto';

export const RTMP_VERSION = 3;
export const HANDSHAKE_SIZE = 1536;

export class HandshakeError extends Error {
  override readonly name = 'HandshakeError';
}

export class ClientHandshake {
  private buf: Buffer[] = [];
  private have = 0;
  private done = false;

  /**
   * @param timeMs the C1/C2 time fields (the spec lets them start anywhere; injected for tests)
   * @param random source of C1's random block (injected for tests)
   */
  constructor(
    private readonly timeMs: () => number = () => 0,
    private readonly random: (n: number) => Buffer = randomBytes,
  ) {}

  /** C0 + C1, to send as soon as the transport is up. */
  hello(): Buffer {
    const out = Buffer.alloc(1 + HANDSHAKE_SIZE);
    out[0] = RTMP_VERSION;
    out.writeUInt32BE(this.timeMs() >>> 0, 1);
    // bytes 5..8 stay zero: "simple handshake, please"
    this.random(HANDSHAKE_SIZE - 8).copy(out, 9);
    return out;
  }

  /**
   * Feed server bytes. Returns undefined until S0+S1+S2 are complete; then C2 to send and whatever bytes
   * followed S2 (the start of the chunk stream, if the server was quick). Throws HandshakeError if the
   * server speaks another version (or isn't an RTMP server at all).
   */
  push(data: Buffer): { c2: Buffer; rest: Buffer } | undefined {
    if (this.done) throw new HandshakeError('handshake already complete');
    if (this.have === 0 && data.length > 0 && data[0] !== RTMP_VERSION) {
      // Not the byte itself: echoing what a port answers would make this a port scanner's probe.
      throw new HandshakeError(`not an RTMP server (its answer is not RTMP version ${RTMP_VERSION})`);
    }
    this.buf.push(data);
    this.have += data.length;
    const need = 1 + 2 * HANDSHAKE_SIZE;
    if (this.have < need) return undefined;
    const all = this.buf.length === 1 ? data : Buffer.concat(this.buf, this.have);
    this.buf = [];
    this.done = true;
    const c2 = Buffer.from(all.subarray(1, 1 + HANDSHAKE_SIZE)); // echo S1
    c2.writeUInt32BE(this.timeMs() >>> 0, 4);
    return { c2, rest: all.subarray(need) };
  }
}
