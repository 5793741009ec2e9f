/**
 * H.264 on RTP: payloads → access units (depacketizer) and back (packetizer), NAL framing (nal), SPS fields (sps), and
 * the AVCDecoderConfigurationRecord that FLV's AVC sequence header carries (avc-config).
 */
export {
  H264Depacketizer,
  startsAccessUnit,
  type AccessUnit,
  type H264DepacketizerOptions,
  type H264DepacketizerStats,
  type H264Packet,
} from './depacketizer.js';
export {
  escapeRbsp,
  isVcl,
  joinAnnexB,
  nalType,
  NalType,
  splitAnnexB,
  splitAvcc,
  toAvcc,
  unescapeRbsp,
} from './nal.js';
export { BitReader, parseSps, type Sps } from './sps.js';
export {
  AvcConfigTracker,
  buildAvcDecoderConfig,
  parseAvcDecoderConfig,
  parseSpropParameterSets,
  type AvcConfigTrackerStats,
  type AvcDecoderConfig,
} from './avc-config.js';
export { DEFAULT_MAX_PAYLOAD, packetizeH264, type H264Payload } from './packetizer.js';
