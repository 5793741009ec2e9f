/**
 * DTMF as RFC 4733 telephone-events on the media leg, both ways.
 *
 * With Asterisk's native RTP bridge (MEDIA_BRIDGE=native) the callee's packets reach the leg as they were
 * sent, telephone-events included, and nothing of ours passes Asterisk's core: the callee's digits are read
 * here, and ours are sent from here (Asterisk relays them unchanged, or hands them to its core when the
 * callee uses another DTMF mode).
 *
 * Payload (RFC 4733 §2.3): event (8 bits) | E (1) | R (1) | volume (6) | duration (16, in the RTP clock).
 * Every packet of one event carries the event's start timestamp; the end packet is repeated (3 times).
 */

const DIGITS = '0123456789*#ABCD';

/** The event code of a digit (0-9, *, #, A-D), or undefined. */
export function dtmfEventCode(digit: string): number | undefined {
  const i = DIGITS.indexOf(digit.toUpperCase());
  return i < 0 ? undefined : i;
}

export interface TelephoneEvent {
  digit: string | undefined;
  end: boolean;
  volume: number;
  /** In RTP clock units. */
  duration: number;
}

/** Parses a telephone-event payload; undefined when it is too short. Events past D (flash, tones) have no digit. */
export function parseTelephoneEvent(payload: Buffer): TelephoneEvent | undefined {
  if (payload.length < 4) return undefined;
  const code = payload[0]!;
  return { digit: DIGITS[code], end: (payload[1]! & 0x80) !== 0, volume: payload[1]! & 0x3f, duration: payload.readUInt16BE(2) };
}

/** A telephone-event payload (volume 10: -10 dBm0, as Asterisk sends). */
export function telephoneEventPayload(code: number, end: boolean, duration: number): Buffer {
  const b = Buffer.alloc(4);
  b[0] = code;
  b[1] = (end ? 0x80 : 0) | 10;
  b.writeUInt16BE(Math.min(0xffff, duration), 2);
  return b;
}

/**
 * One digit per event from a stream of telephone-event packets (in order, as the jitter buffer releases
 * them): reported at its first end packet, or when the next event starts if every end packet was lost.
 * An event is known by its RTP timestamp, so the repeated end packets report nothing more.
 */
export class DtmfDetector {
  private current: { timestamp: number; digit: string; duration: number; reported: boolean } | undefined;

  constructor(private readonly clockRate: number, private readonly onDigit: (digit: string, durationMs: number) => void) {}

  push(timestamp: number, payload: Buffer): void {
    const ev = parseTelephoneEvent(payload);
    if (!ev?.digit) return;
    const c = this.current;
    if (!c || c.timestamp !== timestamp) {
      if (c && !c.reported) this.report(c);
      this.current = { timestamp, digit: ev.digit, duration: ev.duration, reported: false };
    } else {
      c.duration = Math.max(c.duration, ev.duration);
    }
    if (ev.end && !this.current!.reported) this.report(this.current!);
  }

  private report(c: NonNullable<DtmfDetector['current']>): void {
    c.reported = true;
    this.onDigit(c.digit, Math.round((c.duration * 1000) / this.clockRate));
  }
}

/** How far apart the two reports of one digit may come (ms): an INFO digit's event against its RFC 4733 end. */
const PAIR_WINDOW_MS = 2000;

/**
 * One call's digits from two reporters, each counted once. Where Asterisk relays DTMF natively, a digit may
 * be reported by both ARI (a SIP INFO digit, or any digit of a call bridged through the core) and the media
 * leg (the same digit as RFC 4733); where it is reported once, by either, it still counts. A report pairs
 * with the oldest unpaired one of the same digit from the other reporter within PAIR_WINDOW_MS, so "11"
 * stays two digits.
 */
export class DtmfMerge {
  private readonly unpaired: { from: string; digit: string; at: number }[] = [];

  /** Is this a new digit (true), or the other reporter's report of one already counted (false)? */
  add(from: 'pbx' | 'leg', digit: string, now: number): boolean {
    while (this.unpaired.length > 0 && now - this.unpaired[0]!.at > PAIR_WINDOW_MS) this.unpaired.shift();
    const i = this.unpaired.findIndex((u) => u.from !== from && u.digit === digit);
    if (i >= 0) {
      this.unpaired.splice(i, 1);
      return false;
    }
    this.unpaired.push({ from, digit, at: now });
    return true;
  }
}
