/**
 * AMF0 (Adobe "Action Message Format" version 0), the encoding of RTMP commands (type 20) and data
 * messages (type 18, e.g. onMetaData).
 *
 * JS values map to AMF0 as:
 *   number → Number, boolean → Boolean, string → String (Long String past 65535 bytes), null → Null,
 *   undefined → Undefined, Date → Date, array → Strict Array, plain object → Object,
 *   Amf0EcmaArray → ECMA Array (the "associative array" onMetaData uses; servers care about the marker).
 * Decoding is strict: every read is bounds-checked and throws Amf0Error, so hostile input can't hang or
 * read past the buffer. Encoding sizes the output first and writes it into one buffer.
 */

export type Amf0Value =
  | number
  | boolean
  | string
  | null
  | undefined
  | Date
  | Amf0Value[]
  | Amf0EcmaArray
  | Amf0Object;

export interface Amf0Object {
  [key: string]: Amf0Value;
}

/** An ECMA array: string keys like an object, but a different marker on the wire. */
export class Amf0EcmaArray {
  constructor(readonly props: Amf0Object = {}) {}
}

export class Amf0Error extends Error {
  override readonly name = 'Amf0Error';
  constructor(
    message: string,
    /** Byte offset in the input where decoding failed. */
    readonly offset: number,
  ) {
    super(`AMF0: ${message} at byte ${offset}`);
  }
}

/** Type markers (AMF0 spec, section 2.1). */
const enum Marker {
  Number = 0x00,
  Boolean = 0x01,
  String = 0x02,
  Object = 0x03,
  MovieClip = 0x04,
  Null = 0x05,
  Undefined = 0x06,
  Reference = 0x07,
  EcmaArray = 0x08,
  ObjectEnd = 0x09,
  StrictArray = 0x0a,
  Date = 0x0b,
  LongString = 0x0c,
  Unsupported = 0x0d,
  RecordSet = 0x0e,
  XmlDocument = 0x0f,
  TypedObject = 0x10,
  AvmPlus = 0x11,
}

/** Nesting limit: deeper input is hostile, and recursion must not blow the stack. */
const MAX_DEPTH = 64;

// ---------------------------------------------------------------------------------------------- encode

/** Encode values back to back (a command is name, transaction id, command object, args...). */
export function encodeAmf0(...values: Amf0Value[]): Buffer {
  let size = 0;
  for (const v of values) size += sizeOf(v, 0);
  const buf = Buffer.allocUnsafe(size);
  let off = 0;
  for (const v of values) off = write(buf, off, v);
  return buf;
}

function sizeOfKey(key: string): number {
  return 2 + Buffer.byteLength(key, 'utf8');
}

function sizeOfProps(props: Amf0Object, depth: number): number {
  let n = 3; // empty key + ObjectEnd
  for (const [k, v] of Object.entries(props)) n += sizeOfKey(k) + sizeOf(v, depth + 1);
  return n;
}

function sizeOf(v: Amf0Value, depth: number): number {
  if (depth > MAX_DEPTH) throw new Amf0Error('value nested too deeply to encode', 0);
  if (v === null || v === undefined) return 1;
  switch (typeof v) {
    case 'number':
      return 9;
    case 'boolean':
      return 2;
    case 'string': {
      const len = Buffer.byteLength(v, 'utf8');
      return len > 0xffff ? 5 + len : 3 + len;
    }
  }
  if (v instanceof Date) return 11;
  if (Array.isArray(v)) {
    let n = 5;
    for (const item of v) n += sizeOf(item, depth + 1);
    return n;
  }
  if (v instanceof Amf0EcmaArray) return 5 + sizeOfProps(v.props, depth);
  return 1 + sizeOfProps(v, depth);
}

function writeKey(buf: Buffer, off: number, key: string): number {
  const len = buf.write(key, off + 2, 'utf8');
  buf.writeUInt16BE(len, off);
  return off + 2 + len;
}

function writeProps(buf: Buffer, off: number, props: Amf0Object): number {
  for (const [k, v] of Object.entries(props)) off = write(buf, writeKey(buf, off, k), v);
  buf.writeUInt16BE(0, off);
  buf[off + 2] = Marker.ObjectEnd;
  return off + 3;
}

function write(buf: Buffer, off: number, v: Amf0Value): number {
  if (v === null) {
    buf[off] = Marker.Null;
    return off + 1;
  }
  if (v === undefined) {
    buf[off] = Marker.Undefined;
    return off + 1;
  }
  switch (typeof v) {
    case 'number':
      buf[off] = Marker.Number;
      buf.writeDoubleBE(v, off + 1);
      return off + 9;
    case 'boolean':
      buf[off] = Marker.Boolean;
      buf[off + 1] = v ? 1 : 0;
      return off + 2;
    case 'string': {
      const len = Buffer.byteLength(v, 'utf8');
      if (len > 0xffff) {
        buf[off] = Marker.LongString;
        buf.writeUInt32BE(len, off + 1);
        return off + 5 + buf.write(v, off + 5, 'utf8');
      }
      buf[off] = Marker.String;
      buf.writeUInt16BE(len, off + 1);
      return off + 3 + buf.write(v, off + 3, 'utf8');
    }
  }
  if (v instanceof Date) {
    buf[off] = Marker.Date;
    buf.writeDoubleBE(v.getTime(), off + 1);
    buf.writeInt16BE(0, off + 9); // time zone: reserved, "should be 0x0000"
    return off + 11;
  }
  if (Array.isArray(v)) {
    buf[off] = Marker.StrictArray;
    buf.writeUInt32BE(v.length, off + 1);
    off += 5;
    for (const item of v) off = write(buf, off, item);
    return off;
  }
  if (v instanceof Amf0EcmaArray) {
    buf[off] = Marker.EcmaArray;
    // The count is only a hint to readers; the end marker is what terminates it.
    buf.writeUInt32BE(Object.keys(v.props).length, off + 1);
    return writeProps(buf, off + 5, v.props);
  }
  buf[off] = Marker.Object;
  return writeProps(buf, off + 1, v);
}

// ---------------------------------------------------------------------------------------------- decode

/** Decode every value in the buffer. Throws Amf0Error on anything malformed or truncated. */
export function decodeAmf0(buf: Buffer): Amf0Value[] {
  const r = new Reader(buf);
  const out: Amf0Value[] = [];
  while (r.off < buf.length) out.push(r.value(0));
  return out;
}

class Reader {
  off = 0;
  constructor(private readonly buf: Buffer) {}

  private need(n: number, what: string): void {
    if (this.off + n > this.buf.length) throw new Amf0Error(`truncated ${what}`, this.off);
  }

  private u8(what: string): number {
    this.need(1, what);
    return this.buf[this.off++]!;
  }

  private u16(what: string): number {
    this.need(2, what);
    const v = this.buf.readUInt16BE(this.off);
    this.off += 2;
    return v;
  }

  private u32(what: string): number {
    this.need(4, what);
    const v = this.buf.readUInt32BE(this.off);
    this.off += 4;
    return v;
  }

  private double(what: string): number {
    this.need(8, what);
    const v = this.buf.readDoubleBE(this.off);
    this.off += 8;
    return v;
  }

  private utf8(len: number, what: string): string {
    this.need(len, what);
    const s = this.buf.toString('utf8', this.off, this.off + len);
    this.off += len;
    return s;
  }

  /** Key/value pairs up to the empty key + ObjectEnd marker. */
  private props(depth: number): Amf0Object {
    const o: Amf0Object = {};
    for (;;) {
      const key = this.utf8(this.u16('property name length'), 'property name');
      if (key === '' && this.buf[this.off] === Marker.ObjectEnd) {
        this.off++;
        return o;
      }
      // Own property even for "__proto__": data from the network must not reach the prototype.
      Object.defineProperty(o, key, { value: this.value(depth + 1), enumerable: true, writable: true, configurable: true });
    }
  }

  value(depth: number): Amf0Value {
    if (depth > MAX_DEPTH) throw new Amf0Error('nested too deeply', this.off);
    const at = this.off;
    const marker = this.u8('type marker');
    switch (marker) {
      case Marker.Number:
        return this.double('number');
      case Marker.Boolean:
        return this.u8('boolean') !== 0;
      case Marker.String:
        return this.utf8(this.u16('string length'), 'string');
      case Marker.LongString:
      case Marker.XmlDocument:
        return this.utf8(this.u32('long string length'), 'long string');
      case Marker.Object:
        return this.props(depth);
      case Marker.TypedObject:
        this.utf8(this.u16('class name length'), 'class name'); // class name: not meaningful to us
        return this.props(depth);
      case Marker.EcmaArray:
        this.u32('ECMA array count'); // a hint only; some writers get it wrong
        return new Amf0EcmaArray(this.props(depth));
      case Marker.StrictArray: {
        const count = this.u32('strict array count');
        // Each element takes at least one byte: a bigger count is a lie, refuse before allocating.
        if (count > this.buf.length - this.off) throw new Amf0Error(`strict array count ${count} exceeds the input`, at);
        const arr: Amf0Value[] = [];
        for (let i = 0; i < count; i++) arr.push(this.value(depth + 1));
        return arr;
      }
      case Marker.Date: {
        const ms = this.double('date');
        this.u16('date time zone');
        return new Date(ms);
      }
      case Marker.Null:
        return null;
      case Marker.Undefined:
      case Marker.Unsupported:
        return undefined;
      case Marker.ObjectEnd:
        throw new Amf0Error('object end marker outside an object', at);
      case Marker.Reference:
        throw new Amf0Error('references are not supported', at);
      case Marker.AvmPlus:
        throw new Amf0Error('AMF3 values are not supported', at);
      default:
        throw new Amf0Error(`unknown type marker 0x${marker.toString(16).padStart(2, '0')}`, at);
    }
  }
}

/** Narrowing helper for decoded command objects: the value if it is a plain AMF0 object. */
export function asObject(v: Amf0Value): Amf0Object | undefined {
  if (v === null || typeof v !== 'object' || Array.isArray(v) || v instanceof Date) return undefined;
  return v instanceof Amf0EcmaArray ? v.props : v;
}
