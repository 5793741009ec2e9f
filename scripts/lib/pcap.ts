/**
 * A minimal pcap (libpcap classic format) writer and reader for UDP datagrams: what sipp's
 * play_pcap_video replays. Link type 1 (Ethernet), IPv4, UDP, microsecond timestamps, little endian.
 * sipp keeps only the UDP header and payload (and rewrites ports and addresses), but it rejects frames
 * it cannot walk, so the framing is complete and the checksums are right.
 */

export const LINKTYPE_ETHERNET = 1;
const MAGIC_USEC = 0xa1b2c3d4;
const ETH_LEN = 14;
const IP_LEN = 20;
const UDP_LEN = 8;

export interface UdpDatagram {
  /** Capture time in seconds (microsecond resolution in the file). */
  time: number;
  src: string;
  dst: string;
  srcPort: number;
  dstPort: number;
  payload: Buffer;
}

export interface PcapRecord {
  /** Seconds (sec + usec / 1e6). */
  time: number;
  sec: number;
  usec: number;
  data: Buffer;
}

/** One's-complement sum of 16-bit big-endian words (odd length padded with a zero byte). */
function sum16(buf: Buffer, start = 0, end = buf.length, acc = 0): number {
  let s = acc;
  for (let i = start; i + 1 < end; i += 2) s += buf.readUInt16BE(i);
  if ((end - start) % 2 === 1) s += buf[end - 1]! << 8;
  return s;
}

function fold(s: number): number {
  while (s > 0xffff) s = (s & 0xffff) + Math.floor(s / 0x10000);
  return s;
}

function ipv4(addr: string): Buffer {
  const parts = addr.split('.').map(Number);
  if (parts.length !== 4 || parts.some((p) => !Number.isInteger(p) || p < 0 || p > 255)) throw new Error(`bad IPv4 address ${addr}`);
  return Buffer.from(parts);
}

/** An Ethernet + IPv4 + UDP frame carrying `d.payload`, with valid IP and UDP checksums. */
export function udpFrame(d: Omit<UdpDatagram, 'time'>, ipId = 0): Buffer {
  const udpLen = UDP_LEN + d.payload.length;
  if (IP_LEN + udpLen > 0xffff) throw new Error('datagram too large');
  const f = Buffer.alloc(ETH_LEN + IP_LEN + udpLen);
  // Locally administered MACs; nobody reads them.
  Buffer.from([0x02, 0, 0, 0, 0, 0x02, 0x02, 0, 0, 0, 0, 0x01]).copy(f, 0);
  f.writeUInt16BE(0x0800, 12);
  const ip = ETH_LEN;
  const src = ipv4(d.src);
  const dst = ipv4(d.dst);
  f[ip] = 0x45; // v4, 5 words
  f.writeUInt16BE(IP_LEN + udpLen, ip + 2);
  f.writeUInt16BE(ipId & 0xffff, ip + 4);
  f.writeUInt16BE(0x4000, ip + 6); // don't fragment
  f[ip + 8] = 64;
  f[ip + 9] = 17; // UDP
  src.copy(f, ip + 12);
  dst.copy(f, ip + 16);
  f.writeUInt16BE(~fold(sum16(f, ip, ip + IP_LEN)) & 0xffff, ip + 10);
  const u = ip + IP_LEN;
  f.writeUInt16BE(d.srcPort, u);
  f.writeUInt16BE(d.dstPort, u + 2);
  f.writeUInt16BE(udpLen, u + 4);
  d.payload.copy(f, u + UDP_LEN);
  // Pseudo-header + UDP header + payload; 0 is sent as 0xffff (0 means "no checksum").
  const pseudo = sum16(src) + sum16(dst) + 17 + udpLen;
  const c = ~fold(sum16(f, u, u + udpLen, pseudo)) & 0xffff;
  f.writeUInt16BE(c === 0 ? 0xffff : c, u + 6);
  return f;
}

/** A whole pcap file from records (timestamps must be >= 0; snaplen 65535). */
export function writePcap(records: { time: number; data: Buffer }[], linkType = LINKTYPE_ETHERNET): Buffer {
  const head = Buffer.alloc(24);
  head.writeUInt32LE(MAGIC_USEC, 0);
  head.writeUInt16LE(2, 4);
  head.writeUInt16LE(4, 6);
  head.writeInt32LE(0, 8); // GMT offset
  head.writeUInt32LE(0, 12); // sigfigs
  head.writeUInt32LE(65535, 16);
  head.writeUInt32LE(linkType, 20);
  const parts: Buffer[] = [head];
  for (const r of records) {
    if (!(r.time >= 0)) throw new Error(`bad pcap timestamp ${r.time}`);
    let sec = Math.floor(r.time);
    let usec = Math.round((r.time - sec) * 1e6);
    if (usec >= 1e6) {
      sec += 1;
      usec -= 1e6;
    }
    const h = Buffer.alloc(16);
    h.writeUInt32LE(sec, 0);
    h.writeUInt32LE(usec, 4);
    h.writeUInt32LE(r.data.length, 8); // captured
    h.writeUInt32LE(r.data.length, 12); // on the wire (sipp rejects truncated captures)
    parts.push(h, r.data);
  }
  return Buffer.concat(parts);
}

/** UDP datagrams as a pcap file (Ethernet + IPv4 + UDP). */
export function writeUdpPcap(datagrams: UdpDatagram[]): Buffer {
  return writePcap(datagrams.map((d, i) => ({ time: d.time, data: udpFrame(d, i) })));
}

/** Parse a classic pcap file (either byte order, microsecond timestamps). */
export function readPcap(buf: Buffer): { linkType: number; snaplen: number; records: PcapRecord[] } {
  if (buf.length < 24) throw new Error('pcap: short global header');
  let le: boolean;
  if (buf.readUInt32LE(0) === MAGIC_USEC) le = true;
  else if (buf.readUInt32BE(0) === MAGIC_USEC) le = false;
  else throw new Error(`pcap: bad magic 0x${buf.readUInt32LE(0).toString(16)}`);
  const u32 = (o: number) => (le ? buf.readUInt32LE(o) : buf.readUInt32BE(o));
  const records: PcapRecord[] = [];
  let o = 24;
  while (o < buf.length) {
    if (o + 16 > buf.length) throw new Error(`pcap: truncated record header at ${o}`);
    const sec = u32(o);
    const usec = u32(o + 4);
    const incl = u32(o + 8);
    const orig = u32(o + 12);
    if (incl !== orig) throw new Error(`pcap: record at ${o} is truncated (${incl} of ${orig})`);
    if (usec >= 1e6) throw new Error(`pcap: usec ${usec} out of range`);
    if (o + 16 + incl > buf.length) throw new Error(`pcap: truncated record data at ${o}`);
    records.push({ time: sec + usec / 1e6, sec, usec, data: buf.subarray(o + 16, o + 16 + incl) });
    o += 16 + incl;
  }
  return { linkType: u32(20), snaplen: u32(16), records };
}

/** Parse an Ethernet + IPv4 + UDP frame, verifying both checksums. */
export function parseUdpFrame(f: Buffer): Omit<UdpDatagram, 'time'> {
  if (f.length < ETH_LEN + IP_LEN + UDP_LEN) throw new Error('frame too short');
  if (f.readUInt16BE(12) !== 0x0800) throw new Error(`not IPv4: ethertype 0x${f.readUInt16BE(12).toString(16)}`);
  const ip = ETH_LEN;
  const ihl = (f[ip]! & 0x0f) * 4;
  if (f[ip]! >> 4 !== 4 || ihl < IP_LEN) throw new Error('bad IPv4 header');
  if (f[ip + 9] !== 17) throw new Error(`not UDP: protocol ${f[ip + 9]}`);
  const total = f.readUInt16BE(ip + 2);
  if (ip + total !== f.length) throw new Error(`IPv4 length ${total} does not match the frame`);
  if (fold(sum16(f, ip, ip + ihl)) !== 0xffff) throw new Error('bad IPv4 header checksum');
  const u = ip + ihl;
  const udpLen = f.readUInt16BE(u + 4);
  if (u + udpLen !== f.length) throw new Error(`UDP length ${udpLen} does not match the frame`);
  const srcB = f.subarray(ip + 12, ip + 16);
  const dstB = f.subarray(ip + 16, ip + 20);
  if (f.readUInt16BE(u + 6) !== 0 && fold(sum16(f, u, u + udpLen, sum16(srcB) + sum16(dstB) + 17 + udpLen)) !== 0xffff) {
    throw new Error('bad UDP checksum');
  }
  return {
    src: [...srcB].join('.'),
    dst: [...dstB].join('.'),
    srcPort: f.readUInt16BE(u),
    dstPort: f.readUInt16BE(u + 2),
    payload: f.subarray(u + UDP_LEN, u + udpLen),
  };
}
