/**
 * MSB-first bit writer into a preallocated buffer. Bits collect in a small accumulator and go out a
 * byte at a time, so a write is a shift and an OR; nothing is allocated after construction.
 */
export class BitWriter {
  readonly buffer: Uint8Array;
  private pos = 0; // whole bytes written to buffer
  private acc = 0; // pending bits, right-aligned; fewer than 8 between calls
  private accBits = 0;

  constructor(capacityBytes: number) {
    this.buffer = new Uint8Array(capacityBytes);
  }

  reset(): void {
    this.pos = 0;
    this.acc = 0;
    this.accBits = 0;
  }

  /** Append the low `bits` bits of `value` (0 ≤ bits ≤ 32), most significant first. */
  write(value: number, bits: number): void {
    if (bits > 24) {
      // Keep the accumulator within 32 bits: fewer than 8 pending + at most 24 new.
      this.write(Math.floor(value / 0x1000000) & ((1 << (bits - 24)) - 1), bits - 24);
      bits = 24;
    }
    if (bits === 0) return;
    const acc = (this.acc << bits) | (value & ((1 << bits) - 1));
    let n = this.accBits + bits;
    const buf = this.buffer;
    if (this.pos + (n >> 3) > buf.length) throw new RangeError('BitWriter: buffer full');
    while (n >= 8) {
      n -= 8;
      buf[this.pos++] = (acc >>> n) & 0xff;
    }
    this.acc = acc & ((1 << n) - 1);
    this.accBits = n;
  }

  /** Pad with zero bits to the next byte boundary. */
  byteAlign(): void {
    if (this.accBits > 0) this.write(0, 8 - this.accBits);
  }

  /** Bits written so far. */
  get bitLength(): number {
    return this.pos * 8 + this.accBits;
  }

  /** Whole bytes written so far (call byteAlign first to include a partial byte). */
  get length(): number {
    return this.pos;
  }

  /** A view of the whole bytes written so far (valid until the next reset/write). */
  get bytes(): Uint8Array {
    return this.buffer.subarray(0, this.pos);
  }
}
