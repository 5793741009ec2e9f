/** RFC 6184 send side: what the packetizer makes, read back by our own depacketizer. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { packetizeH264 } from '../../plugin/media/encode/h264/index.js';
import { H264Depacketizer } from '../../plugin/media/ingest/h264-depacketizer.js';

const nal = (type: number, size: number) => {
  const b = Buffer.alloc(size);
  for (let i = 0; i < size; i++) b[i] = (i * 7 + type) & 0xff;
  b[0] = 0x60 | type;
  if (type === 5 || type === 1) b[1] = 0x88; // first_mb_in_slice = 0
  return b;
};

test('NAL units that fit go alone (packetization-mode 0); the marker is on the last payload only', () => {
  const units = [nal(7, 10), nal(8, 4), nal(5, 1200)];
  const out = packetizeH264(units, 1200);
  assert.deepEqual(out.map((p) => p.payload), units);
  assert.deepEqual(out.map((p) => p.marker), [false, false, true]);
});

test('a bigger NAL unit becomes FU-A fragments: S on the first, E on the last, NRI kept, every payload ≤ max', () => {
  const big = nal(5, 3000);
  const out = packetizeH264([big], 1000);
  assert.equal(out.length, 4); // 2999 body bytes in chunks of 998
  for (const [i, { payload, marker }] of out.entries()) {
    assert.ok(payload.length <= 1000);
    assert.equal(payload[0], 0x60 | 28, 'FU indicator: F=0, NRI=3, type 28');
    assert.equal(payload[1]! & 0x1f, 5, 'FU header keeps the NAL type');
    assert.equal(!!(payload[1]! & 0x80), i === 0, 'S bit');
    assert.equal(!!(payload[1]! & 0x40), i === out.length - 1, 'E bit');
    assert.equal(marker, i === out.length - 1);
  }
  assert.deepEqual(Buffer.concat([big.subarray(0, 1), ...out.map((p) => p.payload.subarray(2))]), big);
});

test('round trip: a GOP packetized at several sizes is depacketized into the same access units', () => {
  for (const max of [3, 50, 1200]) {
    const d = new H264Depacketizer();
    let seq = 0;
    const gop = [[nal(7, 12), nal(8, 5), nal(5, 2500)], [nal(1, 300)], [nal(1, 40), nal(1, 1300)]];
    gop.forEach((au, k) => {
      const out = packetizeH264(au, max).flatMap((p) => d.push({ sequenceNumber: seq++, timestamp: k * 6000, marker: p.marker, payload: p.payload }));
      assert.equal(out.length, 1, `max ${max}, AU ${k}`);
      assert.deepEqual(out[0]!.nalus, au);
      assert.equal(out[0]!.keyframe, k === 0);
    });
  }
  assert.throws(() => packetizeH264([nal(1, 10)], 2), RangeError);
  assert.deepEqual(packetizeH264([]), []);
});
