/**
 * Outbound targets that are never acceptable, whoever asks: link-local addresses and the clouds'
 * instance-metadata services (they hand out the machine's credentials to anything that asks from inside).
 * Private ranges and loopback are NOT refused here: a PBX admin's SIP and RTMP servers often live there.
 *
 * Addresses are parsed by hand (plugin/lib must not import node:net), in every form a resolver accepts:
 * getaddrinfo (what net.connect, ffmpeg and Asterisk use) takes inet_aton's shorthands, so
 * `rtmp://2852039166/` and `rtmp://0xA9FEA9FE/` reach 169.254.169.254 although WHATWG URL leaves an
 * rtmp:// host as it is (only http(s) hosts are normalised).
 */

export interface IpAddress {
  family: 4 | 6;
  /** 4 or 16 bytes, network order. */
  bytes: number[];
}

/**
 * A literal IP address in any form a resolver takes: dotted quad or inet_aton shorthand (`127.1`,
 * `2852039166`, `0xA9FEA9FE`, `0251.0376.0251.0376`), IPv6 with `::`, an embedded dotted quad, a zone id
 * (`fe80::1%eth0`) or brackets. Undefined for anything else (a host name).
 */
export function parseIp(text: string): IpAddress | undefined {
  let s = text.trim();
  if (s.startsWith('[') && s.endsWith(']')) s = s.slice(1, -1);
  if (s.includes(':')) return parseIpv6(s.replace(/%.*$/, ''));
  const v4 = parseIpv4(s);
  return v4 && { family: 4, bytes: v4 };
}

/** inet_aton: 1 to 4 parts, each decimal, 0x-hex or 0-octal; the last part fills the remaining bytes. */
function parseIpv4(s: string): number[] | undefined {
  const parts = s.split('.');
  if (parts.length > 4 || parts.some((p) => p === '')) return undefined;
  const nums: number[] = [];
  for (const p of parts) {
    let n: number;
    if (/^0x[0-9a-f]*$/i.test(p)) n = p.length === 2 ? 0 : parseInt(p.slice(2), 16);
    else if (/^0[0-7]+$/.test(p)) n = parseInt(p, 8);
    else if (/^(0|[1-9]\d*)$/.test(p)) n = Number(p);
    else return undefined;
    nums.push(n);
  }
  const last = nums.pop()!;
  if (nums.some((n) => n > 255)) return undefined;
  const lastBytes = 4 - nums.length;
  if (last >= 2 ** (8 * lastBytes)) return undefined;
  const out = [...nums];
  for (let i = lastBytes - 1; i >= 0; i--) out.push(Math.floor(last / 2 ** (8 * i)) % 256);
  return out;
}

function parseIpv6(s: string): IpAddress | undefined {
  if (!/^[0-9a-f:.]+$/i.test(s)) return undefined;
  const halves = s.split('::');
  if (halves.length > 2) return undefined;
  const groups = (h: string): number[] | undefined => {
    if (h === '') return [];
    const out: number[] = [];
    const parts = h.split(':');
    for (let i = 0; i < parts.length; i++) {
      const p = parts[i]!;
      if (i === parts.length - 1 && p.includes('.')) {
        // An embedded IPv4 address (::ffff:1.2.3.4): only a full dotted quad, as inet_pton takes it.
        if (!/^\d{1,3}(\.\d{1,3}){3}$/.test(p)) return undefined;
        const b = p.split('.').map(Number);
        if (b.some((n) => n > 255)) return undefined;
        out.push(b[0]! * 256 + b[1]!, b[2]! * 256 + b[3]!);
      } else {
        if (!/^[0-9a-f]{1,4}$/i.test(p)) return undefined;
        out.push(parseInt(p, 16));
      }
    }
    return out;
  };
  const head = groups(halves[0]!);
  const tail = halves.length === 2 ? groups(halves[1]!) : [];
  if (!head || !tail) return undefined;
  const missing = 8 - head.length - tail.length;
  if (halves.length === 2 ? missing < 1 : missing !== 0) return undefined;
  const all = [...head, ...new Array<number>(halves.length === 2 ? missing : 0).fill(0), ...tail];
  return { family: 6, bytes: all.flatMap((g) => [g >> 8, g & 0xff]) };
}

/**
 * The IPv4 address an IPv6 one stands for, where a host would reach IPv4 with it: IPv4-mapped
 * (::ffff:a.b.c.d), IPv4-compatible (::a.b.c.d, deprecated but still parsed) and NAT64's well-known
 * prefix (64:ff9b::a.b.c.d, translated by a NAT64 gateway).
 */
function embeddedIpv4(b: number[]): number[] | undefined {
  const zeros = (from: number, to: number) => b.slice(from, to).every((x) => x === 0);
  if (zeros(0, 10) && b[10] === 0xff && b[11] === 0xff) return b.slice(12);
  if (zeros(0, 12) && !(zeros(12, 15) && (b[15] ?? 0) <= 1)) return b.slice(12); // not :: or ::1
  if (b[0] === 0 && b[1] === 0x64 && b[2] === 0xff && b[3] === 0x9b && zeros(4, 12)) return b.slice(12);
  return undefined;
}

/** The address as the OS would use it: IPv4 for an IPv4-mapped (or otherwise embedded) IPv6 address. */
function effective(ip: IpAddress): IpAddress {
  const v4 = ip.family === 6 ? embeddedIpv4(ip.bytes) : undefined;
  return v4 ? { family: 4, bytes: v4 } : ip;
}

/** One canonical text per address (`::ffff:7f00:1` and `127.1` both give 127.0.0.1), for comparing. */
export function canonicalIp(text: string): string | undefined {
  const parsed = parseIp(text);
  if (!parsed) return undefined;
  const ip = effective(parsed);
  if (ip.family === 4) return ip.bytes.join('.');
  const groups: string[] = [];
  for (let i = 0; i < 16; i += 2) groups.push(((ip.bytes[i]! << 8) | ip.bytes[i + 1]!).toString(16));
  // The longest run of zero groups becomes '::' (RFC 5952).
  let best = -1;
  let bestLen = 1;
  for (let i = 0; i < 8; ) {
    let j = i;
    while (j < 8 && groups[j] === '0') j++;
    if (j - i > bestLen) [best, bestLen] = [i, j - i];
    i = j > i ? j : i + 1;
  }
  if (best < 0) return groups.join(':');
  return `${groups.slice(0, best).join(':')}::${groups.slice(best + bestLen).join(':')}`;
}

/**
 * Cloud metadata services outside the link-local ranges (those inside, like AWS's and GCP's
 * 169.254.169.254 or ECS's 169.254.170.2, are refused with their range).
 */
const METADATA_ADDRESSES = new Set([
  'fd00:ec2::254', // AWS instance metadata over IPv6 (Nitro)
  'fd20:ce::254', // GCP metadata server over IPv6
  '100.100.100.200', // Alibaba Cloud metadata
  '168.63.129.16', // Azure WireServer (platform agent endpoint; serves extension settings)
  '192.0.0.192', // Oracle Cloud's older metadata address
]);

/**
 * Host names of metadata services (all resolve to the addresses above inside their cloud, and some only
 * there, through its DNS; refused by name so no resolver quirk matters).
 */
const METADATA_NAMES = new Set([
  'metadata.google.internal', // GCP
  'metadata.goog', // GCP
  'metadata', // GCP's short name (via the VM's search domain)
  'instance-data', // AWS
  'instance-data.ec2.internal', // AWS
  'metadata.tencentyun.com', // Tencent Cloud
]);

/** Why this address may never be a target ("a link-local address", ...), or undefined. */
export function forbiddenAddress(text: string): string | undefined {
  const parsed = parseIp(text);
  if (!parsed) return undefined;
  const ip = effective(parsed);
  const b = ip.bytes;
  if (METADATA_ADDRESSES.has(canonicalIp(text)!)) return 'a cloud metadata address';
  if (ip.family === 4 && b[0] === 169 && b[1] === 254) return 'a link-local address';
  if (ip.family === 6 && b[0] === 0xfe && (b[1]! & 0xc0) === 0x80) return 'a link-local address';
  return undefined;
}

/** Why this host (a name or an address literal) may never be a target, or undefined. DNS is checked separately. */
export function forbiddenHost(host: string): string | undefined {
  if (parseIp(host)) return forbiddenAddress(host);
  const name = host.trim().toLowerCase().replace(/\.+$/, '');
  return METADATA_NAMES.has(name) ? 'a cloud metadata name' : undefined;
}

/** 127.0.0.0/8 and ::1 (in any form, IPv4-mapped included). */
export function isLoopback(text: string): boolean {
  const parsed = parseIp(text);
  if (!parsed) return false;
  const ip = effective(parsed);
  if (ip.family === 4) return ip.bytes[0] === 127;
  return ip.bytes.slice(0, 15).every((x) => x === 0) && ip.bytes[15] === 1;
}

/** 0.0.0.0/8 and ::: connecting there reaches this host (Linux), like loopback. */
export function isUnspecified(text: string): boolean {
  const parsed = parseIp(text);
  if (!parsed) return false;
  const ip = effective(parsed);
  return ip.family === 4 ? ip.bytes[0] === 0 : ip.bytes.every((x) => x === 0);
}

/** Host names that mean this host, whatever a resolver says. */
export function isLocalName(host: string): boolean {
  const name = host.trim().toLowerCase().replace(/\.+$/, '');
  return name === 'localhost' || name.endsWith('.localhost') || name === 'localhost.localdomain' || name === 'ip6-localhost' || name === 'ip6-loopback';
}
