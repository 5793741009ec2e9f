/**
 * RFC 6184 send side: one access unit's NAL units → RTP payloads. A NAL unit that fits goes as a single
 * NAL unit packet (§5.6, all that packetization-mode 0 allows); a bigger one is cut into FU-A fragments
 * (§5.8, mode 1). The last payload of the access unit carries the marker bit.
 */
export interface H264Payload {
  payload: Buffer;
  marker: boolean;
}

/** Payload bytes per packet: well under a 1500-byte Ethernet MTU after IP/UDP/RTP headers. */
export const DEFAULT_MAX_PAYLOAD = 1200;

export function packetizeH264(nalus: readonly Buffer[], maxPayload = DEFAULT_MAX_PAYLOAD): H264Payload[] {
  if (maxPayload < 3) throw new RangeError(`H.264 packetizer: max payload ${maxPayload} < 3`);
  const out: H264Payload[] = [];
  for (const nal of nalus) {
    if (nal.length === 0) continue;
    if (nal.length <= maxPayload) {
      out.push({ payload: nal, marker: false });
      continue;
    }
    // FU indicator: the NAL's F and NRI bits with type 28; FU header: S/E bits and the NAL's type.
    const indicator = (nal[0]! & 0xe0) | 28;
    const type = nal[0]! & 0x1f;
    const chunk = maxPayload - 2;
    for (let at = 1; at < nal.length; at += chunk) {
      const end = Math.min(nal.length, at + chunk);
      const header = (at === 1 ? 0x80 : 0) | (end === nal.length ? 0x40 : 0) | type;
      out.push({ payload: Buffer.concat([Buffer.from([indicator, header]), nal.subarray(at, end)]), marker: false });
    }
  }
  if (out.length > 0) out[out.length - 1]!.marker = true;
  return out;
}
