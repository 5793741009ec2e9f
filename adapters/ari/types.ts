/**
 * ARI resource and event shapes: the subset sip-as-rtmp uses, named as in Asterisk's ARI docs
 * (https://docs.asterisk.org/Asterisk_22_Documentation/API_Documentation/Asterisk_REST_Interface/).
 */

export type ChannelState =
  | 'Down' | 'Rsrved' | 'OffHook' | 'Dialing' | 'Ring' | 'Ringing' | 'Up' | 'Busy'
  | 'Dialing Offhook' | 'Pre-ring' | 'Unknown';

export interface CallerId {
  name: string;
  number: string;
}

export interface DialplanCep {
  context: string;
  exten: string;
  priority: number;
  app_name?: string;
  app_data?: string;
}

export interface Channel {
  id: string;
  name: string;
  state: ChannelState;
  caller: CallerId;
  connected: CallerId;
  accountcode: string;
  dialplan: DialplanCep;
  creationtime: string;
  language: string;
  protocol_id?: string;
  channelvars?: Record<string, string>;
}

export interface Bridge {
  id: string;
  technology: string;
  bridge_type: 'mixing' | 'holding';
  bridge_class: string;
  creator: string;
  name: string;
  channels: string[];
  video_mode?: string;
  video_source_id?: string;
  creationtime?: string;
}

/** An endpoint as ARI lists it (GET /endpoints/{tech}): for PJSIP, one per configured endpoint object. */
export interface Endpoint {
  technology: string;
  resource: string;
  state?: 'unknown' | 'offline' | 'online';
  channel_ids: string[];
}

export interface Playback {
  id: string;
  media_uri: string;
  next_media_uri?: string;
  target_uri: string;
  language?: string;
  state: 'queued' | 'playing' | 'continuing' | 'done' | 'failed';
}

export interface AsteriskInfo {
  system?: { version: string; entity_id: string };
  status?: { startup_time: string; last_reload_time: string };
  build?: Record<string, unknown>;
  config?: Record<string, unknown>;
}

/** One attribute of a dynamic config object (PUT/GET /asterisk/config/dynamic/...). */
export interface ConfigTuple {
  attribute: string;
  value: string;
}

export interface Variable {
  value: string;
}

// ---------------------------------------------------------------------------------------------------------
// Events (the WebSocket at /ari/events)

interface EventBase {
  type: string;
  application: string;
  timestamp: string;
  asterisk_id?: string;
}

export interface StasisStart extends EventBase {
  type: 'StasisStart';
  args: string[];
  channel: Channel;
  replace_channel?: Channel;
}
export interface StasisEnd extends EventBase {
  type: 'StasisEnd';
  channel: Channel;
}
export interface ChannelStateChange extends EventBase {
  type: 'ChannelStateChange';
  channel: Channel;
}
export interface ChannelDestroyed extends EventBase {
  type: 'ChannelDestroyed';
  channel: Channel;
  /** Q.850 cause code. */
  cause: number;
  cause_txt: string;
  tech_cause?: number;
}
export interface ChannelHangupRequest extends EventBase {
  type: 'ChannelHangupRequest';
  channel: Channel;
  cause?: number;
  soft?: boolean;
  tech_cause?: number;
}
export interface Dial extends EventBase {
  type: 'Dial';
  caller?: Channel;
  peer: Channel;
  forward?: string;
  forwarded?: Channel;
  dialstring?: string;
  /** '' while dialing; then RINGING, PROGRESS, ANSWER, BUSY, NOANSWER, CANCEL, CONGESTION, CHANUNAVAIL... */
  dialstatus: string;
}
export interface ChannelDtmfReceived extends EventBase {
  type: 'ChannelDtmfReceived';
  channel: Channel;
  digit: string;
  duration_ms: number;
}
export interface ChannelHold extends EventBase {
  type: 'ChannelHold';
  channel: Channel;
  musicclass?: string;
}
export interface ChannelUnhold extends EventBase {
  type: 'ChannelUnhold';
  channel: Channel;
}
export interface ChannelVarset extends EventBase {
  type: 'ChannelVarset';
  channel?: Channel;
  variable: string;
  value: string;
}
export interface ChannelEnteredBridge extends EventBase {
  type: 'ChannelEnteredBridge';
  bridge: Bridge;
  channel: Channel;
}
export interface ChannelLeftBridge extends EventBase {
  type: 'ChannelLeftBridge';
  bridge: Bridge;
  channel: Channel;
}
export interface BridgeDestroyed extends EventBase {
  type: 'BridgeDestroyed';
  bridge: Bridge;
}
export interface PlaybackStarted extends EventBase {
  type: 'PlaybackStarted';
  playback: Playback;
}
export interface PlaybackFinished extends EventBase {
  type: 'PlaybackFinished';
  playback: Playback;
}

export type AriEvent =
  | StasisStart | StasisEnd | ChannelStateChange | ChannelDestroyed | ChannelHangupRequest | Dial
  | ChannelDtmfReceived | ChannelHold | ChannelUnhold | ChannelVarset | ChannelEnteredBridge
  | ChannelLeftBridge | BridgeDestroyed | PlaybackStarted | PlaybackFinished;

export type AriEventType = AriEvent['type'];
export const ARI_EVENT_TYPES: ReadonlySet<string> = new Set<AriEventType>([
  'StasisStart', 'StasisEnd', 'ChannelStateChange', 'ChannelDestroyed', 'ChannelHangupRequest', 'Dial',
  'ChannelDtmfReceived', 'ChannelHold', 'ChannelUnhold', 'ChannelVarset', 'ChannelEnteredBridge',
  'ChannelLeftBridge', 'BridgeDestroyed', 'PlaybackStarted', 'PlaybackFinished',
]);
