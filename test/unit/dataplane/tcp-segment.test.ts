/**
 * TcpSegmenter: every segment it writes, once its partial checksum is completed as the receiving
 * kernel would, is byte for byte what a plainly written reference segmentation (below, kernel
 * rules: FIN/PSH on the last, CWR on the first, IPv4 id + index) puts on the wire; virtio-net
 * headers, refusals, truncations and hostile bytes (fast-check).
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { foldSum, internetChecksum, sumWords } from '../../../src/dataplane/relay/checksum.js';
import { TcpSegmenter } from '../../../src/dataplane/relay/tcp-segment.js';
import {
  ACK,
  CWR,
  DATA_VALID,
  ECE,
  ETH,
  FIN,
  GSO_ECN,
  GSO_NONE,
  GSO_TCPV4,
  GSO_TCPV6,
  IP_AT,
  NEEDS_CSUM,
  PSH,
  RST,
  SYN,
  SYN_OPTIONS,
  TIMESTAMP_OPTIONS,
  URG,
  arbitraryTcpFrame,
  VNET,
  checksumsValid,
  completed,
  concat,
  get16,
  onesSum,
  payloadOf,
  pseudoSum,
  readTcp,
  tcpFrame,
  type TcpFrameSpec,
} from '../../helpers/frames.js';

/** What the kernel sends for `frame` cut into payloads of `size` bytes: full checksums, no offload (zero vnet header). */
function referenceSegments(frame: Uint8Array, size: number): Uint8Array[] {
  const v = readTcp(frame);
  const headers = IP_AT + v.ipHeader + v.tcpHeader;
  const count = Math.ceil(v.payload.length / size);
  const segments: Uint8Array[] = [];
  for (let k = 0; k < count; k++) {
    const payload = v.payload.slice(k * size, (k + 1) * size);
    const out = new Uint8Array(headers + payload.length);
    out.set(frame.subarray(0, headers));
    out.set(payload, headers);
    out.fill(0, 0, VNET);
    const ipBytes = v.ipHeader + v.tcpHeader + payload.length;
    const tcp = IP_AT + v.ipHeader;
    if (v.v6) {
      out[IP_AT + 4] = (ipBytes - 40) >> 8;
      out[IP_AT + 5] = (ipBytes - 40) & 0xff;
    } else {
      const id = (v.ipId + k) % 65536;
      out[IP_AT + 2] = ipBytes >> 8;
      out[IP_AT + 3] = ipBytes & 0xff;
      out[IP_AT + 4] = id >> 8;
      out[IP_AT + 5] = id & 0xff;
      out[IP_AT + 10] = 0;
      out[IP_AT + 11] = 0;
      const check = ~onesSum(out, IP_AT, IP_AT + v.ipHeader) & 0xffff;
      out[IP_AT + 10] = check >> 8;
      out[IP_AT + 11] = check & 0xff;
    }
    const seq = (v.seq + k * size) % 2 ** 32;
    out[tcp + 4] = Math.floor(seq / 2 ** 24);
    out[tcp + 5] = Math.floor(seq / 2 ** 16) % 256;
    out[tcp + 6] = Math.floor(seq / 256) % 256;
    out[tcp + 7] = seq % 256;
    let flags = v.flags;
    if (k < count - 1) flags &= ~(FIN | PSH);
    if (k > 0) flags &= ~CWR;
    out[tcp + 13] = flags;
    out[tcp + 16] = 0;
    out[tcp + 17] = 0;
    const check = ~onesSum(out, tcp, out.length, pseudoSum(out, out.length - tcp)) & 0xffff;
    out[tcp + 16] = check >> 8;
    out[tcp + 17] = check & 0xff;
    segments.push(out);
  }
  return segments;
}

/** The payload per segment the split should use, stated plainly. */
function expectedSegmentPayload(frame: Uint8Array, maxIp: number): number {
  const v = readTcp(frame);
  const room = Math.min(maxIp, 65535) - v.ipHeader - v.tcpHeader;
  if (v.gsoType === GSO_NONE) return room;
  return room >= v.gsoSize ? Math.floor(room / v.gsoSize) * v.gsoSize : room;
}

function writeAll(segmenter: TcpSegmenter, count: number): Uint8Array[] {
  const out: Uint8Array[] = [];
  for (let i = 0; i < count; i++) {
    const bytes = segmenter.segmentBytes(i);
    const buffer = new Uint8Array(bytes + 5);
    assert.equal(segmenter.write(i, buffer, 5), bytes);
    out.push(buffer.subarray(5));
  }
  return out;
}

/** Splits and checks every segment against the reference; returns the segments as written. */
function splitAndCheck(frame: Uint8Array, maxIp: number): Uint8Array[] {
  const segmenter = new TcpSegmenter();
  const count = segmenter.load(frame, maxIp);
  const v = readTcp(frame);
  if (v.ipHeader + v.tcpHeader + v.payload.length <= maxIp) {
    assert.equal(count, 1);
    const [only] = writeAll(segmenter, 1);
    assert.deepEqual(only, frame);
    return [only];
  }
  const size = expectedSegmentPayload(frame, maxIp);
  const reference = referenceSegments(frame, size);
  assert.equal(count, reference.length);
  const segments = writeAll(segmenter, count);
  const mss = v.gsoType === GSO_NONE ? size : v.gsoSize;
  segments.forEach((segment, i) => {
    const s = readTcp(segment);
    assert.equal(s.vnetFlags, NEEDS_CSUM, `segment ${i} flags`);
    assert.equal(s.csumStart, ETH + v.ipHeader);
    assert.equal(s.csumOffset, 16);
    assert.equal(s.hdrLen, ETH + v.ipHeader + v.tcpHeader);
    if (s.payload.length > mss) {
      assert.equal(s.gsoType, (v.v6 ? GSO_TCPV6 : GSO_TCPV4) | ((s.flags & CWR) !== 0 ? GSO_ECN : 0), `segment ${i} gso type`);
      assert.equal(s.gsoSize, mss);
    } else {
      assert.equal(s.gsoType, GSO_NONE, `segment ${i} gso type`);
      assert.equal(s.gsoSize, 0);
    }
    const tcp = IP_AT + v.ipHeader;
    assert.equal(get16(segment, tcp + 16), pseudoSum(segment, segment.length - tcp), `segment ${i} partial checksum`);
    const wire = completed(segment);
    assert.ok(checksumsValid(wire));
    assert.deepEqual(wire, reference[i], `segment ${i} differs from the reference`);
  });
  return segments;
}

const BASE: TcpFrameSpec = { payload: payloadOf(0), options: TIMESTAMP_OPTIONS, flags: ACK | PSH };

describe('TcpSegmenter', () => {
  it('splits a 64 KB IPv4 super-frame into 45 MSS segments, the last one short, PSH only on it', () => {
    const frame = tcpFrame({ ...BASE, payload: payloadOf(44 * 1448 + 1000, 3), gso: { size: 1448 } });
    const segments = splitAndCheck(frame, 1500);
    assert.equal(segments.length, 45);
    const views = segments.map(readTcp);
    assert.deepEqual(
      views.map((s) => s.payload.length),
      [...Array<number>(44).fill(1448), 1000],
    );
    assert.deepEqual(
      views.map((s) => s.flags),
      [...Array<number>(44).fill(ACK), ACK | PSH],
    );
    assert.deepEqual(
      views.map((s) => s.ipId),
      views.map((_, i) => 0x1234 + i),
    );
    assert.deepEqual(concat(views.map((s) => s.payload)), readTcp(frame).payload);
  });

  it('splits an IPv6 super-frame with traffic class, flow label and SYN-style options copied to every segment', () => {
    const frame = tcpFrame({ ...BASE, v6: true, tos: 0x2e, flowLabel: 0xabcde, ttl: 9, options: SYN_OPTIONS, payload: payloadOf(10_000, 1), gso: { size: 1420 } });
    const segments = splitAndCheck(frame, 1480);
    assert.equal(segments.length, 8);
    for (const s of segments.map(readTcp)) {
      assert.deepEqual(s.options, Uint8Array.from(SYN_OPTIONS));
      assert.deepEqual(s.ipFixed, readTcp(frame).ipFixed);
    }
  });

  it('copies IPv4 options to every segment and recomputes each header checksum', () => {
    const frame = tcpFrame({ ...BASE, ipOptions: [0x94, 4, 0, 0, 1], payload: payloadOf(5000), gso: { size: 1000 } });
    const segments = splitAndCheck(frame, 1100);
    assert.equal(segments.length, 5);
    for (const segment of segments) assert.equal(segment[IP_AT], 0x47);
  });

  it('puts CWR on the first segment only and FIN on the last only; ECE on all', () => {
    const frame = tcpFrame({ ...BASE, flags: ACK | CWR | ECE | FIN | PSH, payload: payloadOf(4000), gso: { size: 1000, ecn: true } });
    const flags = splitAndCheck(frame, 1100).map((s) => readTcp(s).flags);
    assert.deepEqual(flags, [ACK | ECE | CWR, ACK | ECE, ACK | ECE, ACK | ECE | FIN | PSH]);
  });

  it('gives a jumbo path multi-MSS GSO segments; the ECN GSO bit only where CWR is', () => {
    const frame = tcpFrame({ ...BASE, flags: ACK | CWR, payload: payloadOf(20 * 1448 + 77), gso: { size: 1448, ecn: true } });
    const segments = splitAndCheck(frame, 9000).map(readTcp);
    assert.deepEqual(
      segments.map((s) => s.payload.length),
      [6 * 1448, 6 * 1448, 6 * 1448, 2 * 1448 + 77],
    );
    assert.deepEqual(
      segments.map((s) => s.gsoType),
      [GSO_TCPV4 | GSO_ECN, GSO_TCPV4, GSO_TCPV4, GSO_TCPV4],
    );
    assert.deepEqual(
      segments.map((s) => s.gsoSize),
      [1448, 1448, 1448, 1448],
    );
  });

  it('splits an oversized plain (GSO none) frame at the largest payload that fits, full checksum or partial', () => {
    for (const checksum of ['full', 'partial'] as const) {
      const frame = tcpFrame({ ...BASE, checksum, payload: payloadOf(8000) });
      const segments = splitAndCheck(frame, 1400).map(readTcp);
      assert.deepEqual(
        segments.map((s) => s.payload.length),
        [1348, 1348, 1348, 1348, 1348, 1260],
      );
    }
  });

  it('refuses a plain frame whose full checksum does not verify, unless DATA_VALID vouches for it', () => {
    const frame = tcpFrame({ ...BASE, checksum: 'full', payload: payloadOf(3000) });
    frame[frame.length - 1]! ^= 1;
    assert.equal(new TcpSegmenter().load(frame, 1500), -1);
    frame[0] = DATA_VALID;
    assert.equal(new TcpSegmenter().load(frame, 1500), 3);
  });

  it('cuts below the MSS when the path is smaller: at least 8 bytes for GSO frames, 1 for plain ones', () => {
    const gso = tcpFrame({ ...BASE, payload: payloadOf(100), gso: { size: 90 } });
    const headers = 20 + 32;
    assert.equal(new TcpSegmenter().load(gso, headers + 7), -1);
    assert.equal(splitAndCheck(gso, headers + 8).length, 13);
    assert.equal(splitAndCheck(gso, headers + 50).length, 2);
    const plain = tcpFrame({ ...BASE, payload: payloadOf(10) });
    assert.equal(new TcpSegmenter().load(plain, headers), -1);
    assert.equal(splitAndCheck(plain, headers + 1).length, 10);
  });

  it('returns 1 for a frame that fits, and write(0) copies it unchanged', () => {
    const frame = tcpFrame({ ...BASE, payload: payloadOf(3000), gso: { size: 1448 } });
    const segmenter = new TcpSegmenter();
    assert.equal(segmenter.load(frame, 9000), 1);
    assert.equal(segmenter.segmentBytes(0), frame.length);
    assert.deepEqual(writeAll(segmenter, 1)[0], frame);
    assert.equal(segmenter.load(tcpFrame({ ...BASE, flags: SYN, payload: payloadOf(0) }), 1500), 1);
  });

  it('advances the sequence number modulo 2^32 and the IPv4 id modulo 2^16', () => {
    const frame = tcpFrame({ ...BASE, seq: 2 ** 32 - 1500, ipId: 0xfffe, payload: payloadOf(4000), gso: { size: 1000 } });
    const segments = splitAndCheck(frame, 1100).map(readTcp);
    assert.deepEqual(
      segments.map((s) => s.seq),
      [2 ** 32 - 1500, 2 ** 32 - 500, 500, 1500],
    );
    assert.deepEqual(
      segments.map((s) => s.ipId),
      [0xfffe, 0xffff, 0, 1],
    );
  });

  it('refuses what it cannot split', () => {
    const big = { ...BASE, payload: payloadOf(3000) };
    const cases: Array<[string, Uint8Array, number?]> = [];
    for (const flag of [SYN, RST, URG]) cases.push([`flag ${flag}`, tcpFrame({ ...big, flags: ACK | flag })]);
    const fragment = tcpFrame({ ...big, df: false });
    fragment[IP_AT + 6] = 0x20; // MF
    fixIpv4Checksum(fragment);
    cases.push(['an IPv4 fragment', fragment]);
    const badIpChecksum = tcpFrame(big);
    badIpChecksum[IP_AT + 10]! ^= 0xff;
    cases.push(['a bad IPv4 header checksum', badIpChecksum]);
    const udp = tcpFrame(big);
    udp[IP_AT + 9] = 17;
    fixIpv4Checksum(udp);
    cases.push(['UDP', udp]);
    const extension = tcpFrame({ ...big, v6: true });
    extension[IP_AT + 6] = 0; // hop-by-hop options
    cases.push(['an IPv6 extension header', extension]);
    const vlan = tcpFrame(big);
    vlan[VNET + 12] = 0x81;
    vlan[VNET + 13] = 0x00;
    cases.push(['a VLAN tag', vlan]);
    const wrongCsumStart = tcpFrame(big);
    wrongCsumStart[6] = 30;
    cases.push(['csum_start not at the TCP header', wrongCsumStart]);
    const wrongCsumOffset = tcpFrame({ ...big, v6: true });
    wrongCsumOffset[8] = 6;
    cases.push(['csum_offset not 16', wrongCsumOffset]);
    const v6AsV4 = tcpFrame({ ...big, v6: true, gso: { size: 1000 } });
    v6AsV4[1] = GSO_TCPV4;
    cases.push(['a TCPV4 GSO type on IPv6', v6AsV4]);
    const gsoNoCsum = tcpFrame({ ...big, gso: { size: 1000 } });
    gsoNoCsum[0] = 0;
    cases.push(['GSO without NEEDS_CSUM', gsoNoCsum]);
    const longIp = tcpFrame(big);
    longIp[IP_AT + 2] = 0xff;
    fixIpv4Checksum(longIp);
    cases.push(['an IP length past the frame', longIp]);
    const jumbogram = tcpFrame({ ...big, v6: true });
    jumbogram[IP_AT + 4] = 0;
    jumbogram[IP_AT + 5] = 0;
    cases.push(['an IPv6 payload length of 0', jumbogram]);
    cases.push(['maxIpBytes 0', tcpFrame(big), 0]);
    cases.push(['maxIpBytes NaN', tcpFrame(big), Number.NaN]);
    cases.push(['maxIpBytes 1400.5', tcpFrame(big), 1400.5]);
    for (const [name, frame, maxIp] of cases) assert.equal(new TcpSegmenter().load(frame, maxIp ?? 1500), -1, name);
  });

  it('returns -1 for every truncation of a valid frame', () => {
    for (const spec of [
      { ...BASE, payload: payloadOf(2000), gso: { size: 500 } },
      { ...BASE, v6: true, payload: payloadOf(2000), gso: { size: 500 } },
      { ...BASE, checksum: 'full' as const, payload: payloadOf(1700) },
    ]) {
      const frame = tcpFrame(spec);
      const segmenter = new TcpSegmenter();
      for (let length = 0; length < frame.length; length++) assert.equal(segmenter.load(frame.subarray(0, length), 600), -1, `length ${length}`);
      assert.ok(segmenter.load(frame, 600) > 1);
    }
  });

  it('answers -1 to a segment index it does not have or a buffer too small, writing nothing', () => {
    const segmenter = new TcpSegmenter();
    assert.equal(segmenter.segmentBytes(0), -1);
    assert.equal(segmenter.write(0, new Uint8Array(100), 0), -1);
    assert.equal(segmenter.load(tcpFrame({ ...BASE, payload: payloadOf(3000), gso: { size: 1000 } }), 1100), 3);
    for (const i of [-1, 3, 0.5]) assert.equal(segmenter.segmentBytes(i), -1);
    const small = new Uint8Array(segmenter.segmentBytes(0) - 1);
    assert.equal(segmenter.write(0, small, 0), -1);
    assert.ok(small.every((b) => b === 0));
    assert.equal(segmenter.write(0, new Uint8Array(5000), 4999), -1);
  });

  it('matches the reference for random frames and paths (property)', () => {
    fc.assert(
      fc.property(arbitraryTcpFrame(), fc.integer({ min: 60, max: 12_000 }), (frame, maxIp) => {
        const v = readTcp(frame);
        const room = maxIp - v.ipHeader - v.tcpHeader;
        const fits = v.ipHeader + v.tcpHeader + v.payload.length <= maxIp;
        if (!fits && room < (v.gsoType === GSO_NONE ? 1 : 8)) {
          assert.equal(new TcpSegmenter().load(frame, maxIp), -1);
          return;
        }
        splitAndCheck(frame, maxIp);
      }),
      { numRuns: 200 },
    );
  });

  it('never throws on random bytes or mutated frames (property)', () => {
    const segmenter = new TcpSegmenter();
    const out = new Uint8Array(70_000);
    const exercise = (frame: Uint8Array, maxIp: number): void => {
      const count = segmenter.load(frame, maxIp);
      for (let i = 0; i < count; i++) assert.equal(segmenter.write(i, out, 0), segmenter.segmentBytes(i));
    };
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 300 }), fc.integer({ min: -10, max: 70_000 }), (bytes, maxIp) => {
        exercise(bytes, maxIp);
        // Random bytes behind a plausible virtio-net + Ethernet + IP prefix reach deeper checks.
        const frame = tcpFrame({ ...BASE, payload: payloadOf(40), gso: { size: 8 } });
        exercise(concat([frame.subarray(0, IP_AT + 1), bytes]), maxIp);
      }),
      { numRuns: 300 },
    );
    fc.assert(
      fc.property(
        arbitraryTcpFrame(),
        fc.array(fc.tuple(fc.nat(), fc.integer({ min: 0, max: 255 })), { minLength: 1, maxLength: 6 }),
        fc.integer({ min: 1, max: 9000 }),
        (frame, mutations, maxIp) => {
          const mutated = frame.slice();
          for (const [at, value] of mutations) mutated[at % mutated.length] = value;
          exercise(mutated, maxIp);
        },
      ),
      { numRuns: 300 },
    );
  });
});

function fixIpv4Checksum(frame: Uint8Array): void {
  const header = (frame[IP_AT]! & 15) * 4;
  frame[IP_AT + 10] = 0;
  frame[IP_AT + 11] = 0;
  const check = ~onesSum(frame, IP_AT, IP_AT + header) & 0xffff;
  frame[IP_AT + 10] = check >> 8;
  frame[IP_AT + 11] = check & 0xff;
}

describe('internet checksum (checksum.ts, used by the segmenter)', () => {
  it('sums any range of any view like a plain 16-bit ones-complement sum (property)', () => {
    fc.assert(
      fc.property(fc.uint8Array({ minLength: 1, maxLength: 3000 }), fc.nat(), fc.nat(), fc.nat({ max: 7 }), (bytes, a, b, viewOffset) => {
        const backing = new Uint8Array(bytes.length + viewOffset);
        backing.set(bytes, viewOffset);
        const view = backing.subarray(viewOffset);
        const start = a % bytes.length;
        const length = b % (bytes.length - start + 1);
        assert.equal(foldSum(sumWords(view, start, length, 0)), onesSum(bytes, start, start + length));
        assert.equal(internetChecksum(view, start, length), ~onesSum(bytes, start, start + length) & 0xffff);
      }),
      { numRuns: 300 },
    );
  });
});
