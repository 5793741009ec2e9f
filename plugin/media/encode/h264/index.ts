/**
 * H.264 helpers: access units → RTP payloads (packetizer; the depacketizer is ingest's), NAL framing (nal), SPS fields (sps), and
 * the AVCDecoderConfigurationRecord that FLV's AVC sequence header carries (avc-config).
 */
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
