/**
 * The client side of RTMP's flow control, the same for a publisher (RtmpPublisher) and a player (the
 * benchmark's watcher): an Acknowledgement each time the bytes received cross the server's window, our
 * window announced back when the server sets our peer bandwidth, and pings answered. A server that gets
 * no acknowledgements stops sending; one whose pings go unanswered drops the connection.
 *
 * It only decides: the replies come back as control messages for the owner to send on its connection.
 * One instance per connection.
 */
import { buildAcknowledgement, buildUserControl, buildWindowAckSize, MessageType, UserControlEvent, type RtmpMessage } from './messages.js';

export interface ControlReply {
  typeId: number;
  body: Buffer;
}

export interface FlowControlCounters {
  acksSent: number;
  acksReceived: number;
  pingsAnswered: number;
}

/** Announced when a server sets a peer bandwidth of 0 (meaningless): what nginx-rtmp uses by default. */
const FALLBACK_WINDOW = 5_000_000;

export class ClientFlowControl {
  private bytesIn = 0;
  private ackedAt = 0;
  private window = 0;
  private announcedWindow = 0;

  /** `counters`: where to count (the owner's stats object), else its own. */
  constructor(readonly counters: FlowControlCounters = { acksSent: 0, acksReceived: 0, pingsAnswered: 0 }) {}

  /** The server's acknowledgement window (0 until it sets one). */
  get peerWindow(): number {
    return this.window;
  }

  /** Chunk-stream bytes received (after the handshake): an Acknowledgement once a window is crossed. */
  received(n: number): ControlReply | undefined {
    this.bytesIn += n;
    if (this.window === 0 || this.bytesIn - this.ackedAt < this.window) return undefined;
    this.ackedAt = this.bytesIn;
    this.counters.acksSent++;
    return { typeId: MessageType.Acknowledgement, body: buildAcknowledgement(this.bytesIn) };
  }

  /** A message from the server: the reply it needs, if it is flow control that needs one. */
  onMessage(m: RtmpMessage): ControlReply | undefined {
    switch (m.kind) {
      case 'ack':
        this.counters.acksReceived++;
        return undefined;
      case 'windowAckSize':
        this.window = m.size;
        return undefined;
      case 'setPeerBandwidth':
        // The server limits what we send; answer with our window so it acknowledges what we send.
        if (m.size === this.announcedWindow) return undefined;
        this.announcedWindow = m.size;
        return { typeId: MessageType.WindowAckSize, body: buildWindowAckSize(m.size || FALLBACK_WINDOW) };
      case 'userControl':
        if (m.event !== UserControlEvent.PingRequest) return undefined;
        this.counters.pingsAnswered++;
        return { typeId: MessageType.UserControl, body: buildUserControl(UserControlEvent.PingResponse, m.value) };
      default:
        return undefined;
    }
  }
}
