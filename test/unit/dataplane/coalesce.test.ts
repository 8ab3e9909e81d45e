/**
 * Coalescer: segments cut by TcpSegmenter come back as the super-frame they were cut from; what
 * may not join (gaps, reordering, other flags, other headers, limits) goes out in arrival order
 * per flow; hostile bytes never throw (fast-check).
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { isDeepStrictEqual } from 'node:util';
import fc from 'fast-check';
import { isLoomError } from '../../../src/core/errors.js';
import { Coalescer } from '../../../src/dataplane/relay/coalesce.js';
import { TcpSegmenter } from '../../../src/dataplane/relay/tcp-segment.js';
import {
  ACK,
  CWR,
  DATA_VALID,
  ECE,
  ETH,
  FIN,
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
  VNET,
  arbitraryTcpFrame,
  checksumsValid,
  completed,
  concat,
  get16,
  ipPacketBytes,
  ipv4Frame,
  payloadOf,
  pseudoSum,
  readTcp,
  tcpFrame,
  type TcpFrameSpec,
} from '../../helpers/frames.js';

/** A coalescer whose writer keeps a copy of every frame. */
function recording(init?: { maxFlows?: number; maxFrameBytes?: number }): { coalescer: Coalescer; written: Uint8Array[] } {
  const written: Uint8Array[] = [];
  const coalescer = new Coalescer((frame) => {
    written.push(frame.slice());
    return true;
  }, init);
  return { coalescer, written };
}

function split(frame: Uint8Array, maxIp: number): Uint8Array[] {
  const segmenter = new TcpSegmenter();
  const count = segmenter.load(frame, maxIp);
  assert.ok(count >= 1, 'splittable');
  const out: Uint8Array[] = [];
  for (let i = 0; i < count; i++) {
    const buffer = new Uint8Array(segmenter.segmentBytes(i));
    segmenter.write(i, buffer, 0);
    out.push(buffer);
  }
  return out;
}

/** Segments of `payloadBytes` starting at `seq`: the MSS-sized pieces a peer's segmenter sends. */
function segments(spec: Partial<TcpFrameSpec> & { payloadBytes: number; mss: number }): Uint8Array[] {
  const { payloadBytes, mss, ...rest } = spec;
  return split(tcpFrame({ options: TIMESTAMP_OPTIONS, ...rest, payload: payloadOf(payloadBytes, rest.seq ?? 0), gso: { size: mss } }), 20 + 32 + mss);
}

function payloads(frames: Uint8Array[]): Uint8Array {
  return concat(frames.map((f) => readTcp(f).payload));
}

/** Checks a written super-frame's virtio-net header and partial checksum as the file header promises. */
function assertSuperFrame(frame: Uint8Array, mss: number): void {
  const v = readTcp(frame);
  assert.equal(v.vnetFlags, NEEDS_CSUM);
  assert.equal(v.gsoType, v.v6 ? GSO_TCPV6 : GSO_TCPV4);
  assert.equal(v.gsoSize, mss);
  assert.equal(v.hdrLen, ETH + v.ipHeader + v.tcpHeader);
  assert.equal(v.csumStart, ETH + v.ipHeader);
  assert.equal(v.csumOffset, 16);
  const tcp = IP_AT + v.ipHeader;
  assert.equal(get16(frame, tcp + 16), pseudoSum(frame, frame.length - tcp));
  assert.ok(checksumsValid(completed(frame)));
}

describe('Coalescer', () => {
  it('joins the 45 segments of a 64 KB IPv4 super-frame back into that super-frame, byte for byte', () => {
    const original = tcpFrame({ options: TIMESTAMP_OPTIONS, flags: ACK | PSH, payload: payloadOf(44 * 1448 + 1000), gso: { size: 1448 } });
    const { coalescer, written } = recording();
    const parts = split(original, 1500);
    assert.equal(parts.length, 45);
    for (const part of parts) coalescer.push(part);
    assert.equal(written.length, 1, 'PSH ends the run: written without waiting for flush');
    assert.deepEqual(written[0], original);
    assertSuperFrame(written[0], 1448);
    coalescer.flush();
    assert.deepEqual(coalescer.stats(), { framesIn: 45, framesOut: 1, merged: 44, writeFailures: 0 });
  });

  it('joins IPv6 segments with SYN-style options and keeps a whole-MSS run until flush', () => {
    const original = tcpFrame({ v6: true, flowLabel: 0x12345, tos: 0x10, options: SYN_OPTIONS, payload: payloadOf(10 * 1200), gso: { size: 1200 } });
    const { coalescer, written } = recording();
    for (const part of split(original, 1200 + 40 + 40)) coalescer.push(part);
    assert.equal(written.length, 0);
    coalescer.flush();
    assert.deepEqual(written, [original]);
  });

  it('joins multi-MSS GSO segments from a jumbo path', () => {
    const original = tcpFrame({ options: TIMESTAMP_OPTIONS, payload: payloadOf(40 * 1448 + 5), gso: { size: 1448 } });
    const parts = split(original, 9000);
    assert.equal(readTcp(parts[0]!).gsoSize, 1448);
    const { coalescer, written } = recording();
    for (const part of parts) coalescer.push(part);
    coalescer.flush();
    assert.deepEqual(written, [original]);
  });

  it('writes a run of one segment exactly as it came', () => {
    const [one] = segments({ payloadBytes: 1448, mss: 1448 });
    const full = tcpFrame({ checksum: 'full', payload: payloadOf(500) });
    const { coalescer, written } = recording();
    coalescer.push(one!);
    coalescer.flush();
    coalescer.push(full);
    coalescer.flush();
    assert.deepEqual(written, [one, full]);
  });

  it('a gap ends the run: two runs, each in order', () => {
    const parts = segments({ payloadBytes: 5 * 1000, mss: 1000 });
    const { coalescer, written } = recording();
    for (const i of [0, 1, 3, 4]) coalescer.push(parts[i]!);
    coalescer.flush();
    assert.equal(written.length, 2);
    assert.deepEqual(readTcp(written[0]!).payload, payloads([parts[0]!, parts[1]!]));
    assert.deepEqual(readTcp(written[1]!).payload, payloads([parts[3]!, parts[4]!]));
    for (const frame of written) assertSuperFrame(frame, 1000);
    assert.equal(coalescer.stats().merged, 2);
  });

  it('a reordered segment is written in arrival order, never merged out of order', () => {
    const parts = segments({ payloadBytes: 4 * 1000, mss: 1000 });
    const { coalescer, written } = recording();
    for (const i of [0, 2, 1, 3]) coalescer.push(parts[i]!);
    coalescer.flush();
    assert.deepEqual(written, [parts[0], parts[2], parts[1], parts[3]]);
  });

  it('an ACK-only frame of the same flow flushes the run first', () => {
    const parts = segments({ payloadBytes: 4 * 1000, mss: 1000 });
    const ackOnly = tcpFrame({ options: TIMESTAMP_OPTIONS, payload: payloadOf(0) });
    const { coalescer, written } = recording();
    coalescer.push(parts[0]!);
    coalescer.push(parts[1]!);
    coalescer.push(ackOnly);
    coalescer.push(parts[2]!);
    coalescer.push(parts[3]!);
    coalescer.flush();
    assert.equal(written.length, 3);
    assert.deepEqual(readTcp(written[0]!).payload, payloads(parts.slice(0, 2)));
    assert.deepEqual(written[1], ackOnly);
    assert.deepEqual(readTcp(written[2]!).payload, payloads(parts.slice(2)));
  });

  it('a non-TCP frame in between goes out at once and leaves the run pending', () => {
    const parts = segments({ payloadBytes: 3 * 1000, mss: 1000 });
    const udp = ipv4Frame({ payload: payloadOf(100) });
    const { coalescer, written } = recording();
    coalescer.push(parts[0]!);
    coalescer.push(udp);
    coalescer.push(parts[1]!);
    coalescer.push(parts[2]!);
    assert.deepEqual(written, [udp]);
    coalescer.flush();
    assert.equal(written.length, 2);
    assert.deepEqual(readTcp(written[1]!).payload, payloads(parts));
  });

  it('writes the oldest run when more flows than maxFlows are pending', () => {
    const flows = [1, 2, 3].map((port) => segments({ srcPort: port, payloadBytes: 2 * 1000, mss: 1000 }));
    const { coalescer, written } = recording({ maxFlows: 2 });
    coalescer.push(flows[0]![0]!);
    coalescer.push(flows[1]![0]!);
    coalescer.push(flows[0]![1]!);
    assert.equal(written.length, 0);
    coalescer.push(flows[2]![0]!);
    assert.equal(written.length, 1, 'flow 1 (the oldest) written to make room');
    assert.equal(readTcp(written[0]!).srcPort, 1);
    assert.deepEqual(readTcp(written[0]!).payload, payloads(flows[0]!));
    coalescer.push(flows[1]![1]!);
    coalescer.push(flows[2]![1]!);
    coalescer.flush();
    assert.deepEqual(written.map((f) => readTcp(f).srcPort).sort(), [1, 2, 3]);
    for (const frame of written) assert.deepEqual(readTcp(frame).payload, payloads(flows[readTcp(frame).srcPort - 1]!));
  });

  it('never exceeds 65,535 bytes of IP packet nor maxFrameBytes', () => {
    const headers = 20 + 32;
    for (const [maxFrameBytes, perRun] of [
      [IP_AT + 65_535, 45], // the IP limit binds: 45 * 1448 + 52 <= 65,535 < 46 * 1448 + 52
      [65_000, 44], // the default frame limit binds
      [10_000, 6],
    ] as const) {
      const parts: Uint8Array[] = [];
      for (let i = 0; i < 100; i++) parts.push(...segments({ seq: 1000 + i * 1448, payloadBytes: 1448, mss: 1448 }));
      const { coalescer, written } = recording({ maxFrameBytes });
      for (const part of parts) coalescer.push(part);
      coalescer.flush();
      for (const frame of written) {
        assert.ok(frame.length <= maxFrameBytes);
        assert.ok(ipPacketBytes(frame) <= 65_535);
      }
      assert.equal(written[0]!.length, IP_AT + headers + perRun * 1448, `limit ${maxFrameBytes}`);
      assert.deepEqual(payloads(written), payloads(parts));
    }
  });

  it('PSH and a short segment join as the last and end the run', () => {
    const pushed = segments({ payloadBytes: 3 * 1000, mss: 1000, flags: ACK | PSH });
    const after = segments({ seq: 1000 + 3000, payloadBytes: 2 * 1000 + 10, mss: 1000 });
    const { coalescer, written } = recording();
    for (const part of [...pushed, ...after]) coalescer.push(part);
    assert.equal(written.length, 2, 'both runs written without flush');
    assert.equal(readTcp(written[0]!).flags, ACK | PSH);
    assert.equal(readTcp(written[1]!).flags, ACK);
    assert.equal(readTcp(written[1]!).payload.length, 2010);
    coalescer.flush();
    assert.equal(written.length, 2);
  });

  it('a longer segment after a shorter one starts a new run', () => {
    const small = segments({ payloadBytes: 500, mss: 500 });
    const big = segments({ seq: 1500, payloadBytes: 2000, mss: 1000 });
    const { coalescer, written } = recording();
    for (const part of [...small, ...big]) coalescer.push(part);
    coalescer.flush();
    assert.equal(written.length, 2);
    assert.deepEqual(written[0], small[0]);
  });

  it('never joins segments whose headers differ in what must match', () => {
    const base: TcpFrameSpec = { options: TIMESTAMP_OPTIONS, payload: payloadOf(1000) };
    const second = { ...base, seq: 2000 };
    const variants: Array<[string, TcpFrameSpec]> = [
      ['ack', { ...second, ack: 1 }],
      ['window', { ...second, window: 1 }],
      ['options', { ...second, options: [1, 1, 8, 10, 0, 0, 0, 9, 0, 0, 0, 0] }],
      ['options length', { ...second, options: [] }],
      ['TOS', { ...second, tos: 4 }],
      ['TTL', { ...second, ttl: 3 }],
      ['DF', { ...second, df: false }],
      ['source MAC', { ...second, srcMac: [2, 0, 0, 0, 0, 9] }],
    ];
    for (const [name, spec] of variants) {
      const { coalescer, written } = recording();
      coalescer.push(tcpFrame(base));
      coalescer.push(tcpFrame(spec));
      coalescer.flush();
      assert.equal(written.length, 2, name);
      assert.equal(coalescer.stats().merged, 0, name);
    }
    const v6: TcpFrameSpec = { ...base, v6: true };
    for (const [name, spec] of [
      ['flow label', { ...v6, seq: 2000, flowLabel: 5 }],
      ['hop limit', { ...v6, seq: 2000, ttl: 1 }],
    ] as const) {
      const { coalescer, written } = recording();
      coalescer.push(tcpFrame(v6));
      coalescer.push(tcpFrame(spec));
      coalescer.flush();
      assert.equal(written.length, 2, name);
    }
  });

  it('SYN, FIN, RST, URG, CWR and ECE never join: the flow is written, then the frame alone', () => {
    for (const flag of [SYN, FIN, RST, URG, CWR, ECE]) {
      const { coalescer, written } = recording();
      const first = tcpFrame({ payload: payloadOf(1000) });
      const second = tcpFrame({ seq: 2000, flags: ACK | flag, payload: payloadOf(1000) });
      const third = tcpFrame({ seq: 3000, payload: payloadOf(1000) });
      coalescer.push(first);
      coalescer.push(second);
      coalescer.push(third);
      coalescer.flush();
      assert.deepEqual(written, [first, second, third], `flag ${flag}`);
    }
  });

  it('joins segments with a full checksum that verifies (or DATA_VALID), never one that does not', () => {
    const good = [0, 1, 2].map((i) => tcpFrame({ checksum: 'full', seq: 1000 + i * 1000, payload: payloadOf(1000, i) }));
    const { coalescer, written } = recording();
    for (const frame of good) coalescer.push(frame);
    coalescer.flush();
    assert.equal(written.length, 1);
    assertSuperFrame(written[0]!, 1000);

    const bad = good.map((frame) => frame.slice());
    bad[1]![bad[1]!.length - 1]! ^= 0x40;
    const second = recording();
    for (const frame of bad) second.coalescer.push(frame);
    second.coalescer.flush();
    assert.deepEqual(second.written, bad);

    const vouched = bad.map((frame) => frame.slice());
    for (const frame of vouched) frame[0] = DATA_VALID;
    const third = recording();
    for (const frame of vouched) third.coalescer.push(frame);
    third.coalescer.flush();
    assert.equal(third.written.length, 1);
  });

  it('IPv4 with options and IPv4 fragments go out alone', () => {
    const withOptions = [0, 1].map((i) => tcpFrame({ ipOptions: [0x94, 4, 0, 0], seq: 1000 + i * 1000, payload: payloadOf(1000) }));
    const { coalescer, written } = recording();
    for (const frame of withOptions) coalescer.push(frame);
    const fragment = ipv4Frame({ payload: payloadOf(64), protocol: 6, mf: true });
    coalescer.push(fragment);
    assert.deepEqual(written, [...withOptions, fragment]);
  });

  it('counts write failures', () => {
    const coalescer = new Coalescer(() => false);
    for (const part of segments({ payloadBytes: 3000, mss: 1000 })) coalescer.push(part);
    coalescer.push(ipv4Frame({ payload: payloadOf(10) }));
    coalescer.flush();
    assert.deepEqual(coalescer.stats(), { framesIn: 4, framesOut: 0, merged: 2, writeFailures: 2 });
  });

  it('rejects bad options with ERR_INVALID_ARGUMENT', () => {
    for (const init of [{ maxFlows: 0 }, { maxFlows: 1.5 }, { maxFlows: 5000 }, { maxFrameBytes: 10 }, { maxFrameBytes: 70_000 }]) {
      assert.throws(
        () => new Coalescer(() => true, init),
        (err) => isLoomError(err, 'ERR_INVALID_ARGUMENT'),
      );
    }
  });

  it('split then coalesce gives back the byte stream and header fields, with valid checksums (property)', () => {
    fc.assert(
      fc.property(
        arbitraryTcpFrame({ ipOptions: false, flags: [ACK, ACK | PSH, ACK | FIN, ACK | CWR, ACK | ECE] }),
        fc.integer({ min: 200, max: 9000 }),
        (original, maxIp) => {
          const o = readTcp(original);
          const segmenter = new TcpSegmenter();
          if (segmenter.load(original, maxIp) < 1) return;
          const parts = split(original, maxIp);
          const { coalescer, written } = recording();
          for (const part of parts) coalescer.push(part);
          coalescer.flush();
          assert.deepEqual(payloads(written), o.payload);
          let seq = o.seq;
          for (const frame of written) {
            const w = readTcp(frame);
            assert.equal(w.seq, seq);
            seq = (seq + w.payload.length) % 2 ** 32;
            assert.deepEqual([w.macs, w.addresses, w.srcPort, w.dstPort, w.ack, w.window, w.options, w.ipFixed], [o.macs, o.addresses, o.srcPort, o.dstPort, o.ack, o.window, o.options, o.ipFixed]);
            assert.ok(checksumsValid(completed(frame)));
            if (!parts.some((part) => isDeepStrictEqual(part, frame))) assertSuperFrame(frame, w.gsoSize);
          }
          // Only ACK (and a final PSH) on a GSO frame cut at whole MSS: exactly the original comes back.
          const wholeMss = maxIp - o.ipHeader - o.tcpHeader >= o.gsoSize;
          if ((o.flags === ACK || o.flags === (ACK | PSH)) && o.gsoType !== GSO_NONE && wholeMss && original.length <= 65_000 && parts.length > 1) {
            assert.deepEqual(written, [original]);
          }
        },
      ),
      { numRuns: 200 },
    );
  });

  it('keeps each flow in order under any interleaving and any number of slots (property)', () => {
    const flow = (port: number): fc.Arbitrary<Uint8Array[]> =>
      fc
        .record({ bytes: fc.integer({ min: 1, max: 8000 }), mss: fc.integer({ min: 100, max: 1448 }), flags: fc.constantFrom(ACK, ACK | PSH), v6: fc.boolean() })
        .map((r) => split(tcpFrame({ v6: r.v6, srcPort: port, flags: r.flags, payload: payloadOf(r.bytes, port), gso: { size: r.mss } }), (r.v6 ? 40 : 20) + 20 + r.mss));
    fc.assert(
      fc.property(
        fc.tuple(flow(1), flow(2), flow(3), flow(4)),
        fc.array(fc.nat({ max: 3 }), { maxLength: 400 }),
        fc.integer({ min: 1, max: 4 }),
        (flows, picks, maxFlows) => {
          const queues = flows.map((parts) => [...parts]);
          const { coalescer, written } = recording({ maxFlows });
          for (const pick of picks) {
            const queue = queues[pick]!.length > 0 ? queues[pick]! : queues.find((q) => q.length > 0);
            if (queue !== undefined) coalescer.push(queue.shift()!);
          }
          for (const queue of queues) for (const part of queue.splice(0)) coalescer.push(part);
          coalescer.flush();
          flows.forEach((parts, i) => {
            const mine = written.filter((frame) => readTcp(frame).srcPort === i + 1);
            assert.deepEqual(payloads(mine), payloads(parts));
          });
          assert.equal(coalescer.stats().framesIn, flows.reduce((n, parts) => n + parts.length, 0));
        },
      ),
      { numRuns: 200 },
    );
  });

  it('never throws on random bytes or mutated frames (property)', () => {
    const coalescer = new Coalescer(() => true, { maxFlows: 2 });
    const valid = segments({ payloadBytes: 3000, mss: 1000 });
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 200 }), (bytes) => {
        coalescer.push(bytes);
        coalescer.push(concat([valid[0]!.subarray(0, IP_AT + 1), bytes]));
        coalescer.push(concat([valid[1]!.subarray(0, VNET + ETH + 20), bytes]));
      }),
      { numRuns: 300 },
    );
    fc.assert(
      fc.property(fc.array(fc.tuple(fc.nat({ max: 2 }), fc.nat(), fc.integer({ min: 0, max: 255 })), { maxLength: 8 }), fc.boolean(), (mutations, flushFirst) => {
        const frames = valid.map((frame) => frame.slice());
        for (const [which, at, value] of mutations) frames[which]![at % frames[which]!.length] = value;
        if (flushFirst) coalescer.flush();
        for (const frame of frames) coalescer.push(frame);
        for (const frame of frames) coalescer.push(frame.subarray(0, frame.length - 1));
      }),
      { numRuns: 300 },
    );
    coalescer.flush();
  });
});
