/** What Asterisk 22 offers on the media leg with formats=slin16,ulaw,h264 (asterisk-facts.md). */
export const ASTERISK_OFFER = [
  'v=0', 'o=- 1234 1234 IN IP4 127.0.0.1', 's=Asterisk', 'c=IN IP4 127.0.0.1', 't=0 0',
  'm=audio 10010 RTP/AVP 118 0 101 102', 'a=rtpmap:118 L16/16000', 'a=rtpmap:0 PCMU/8000',
  'a=rtpmap:101 telephone-event/16000', 'a=fmtp:101 0-16', 'a=rtpmap:102 telephone-event/8000', 'a=fmtp:102 0-16',
  'a=ptime:20', 'a=maxptime:140', 'a=sendrecv',
  'm=video 10012 RTP/AVP 99', 'a=rtpmap:99 H264/90000', 'a=sendrecv', '',
].join('\r\n');
